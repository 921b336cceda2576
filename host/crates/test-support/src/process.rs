//! [`VigilProcess`]: the binary under test, running. Its output is kept
//! whole for the test to search; every wait has a timeout, notices when the
//! process died instead, and fails with everything the process said.

mod capture;
#[cfg(test)]
mod tests;

use std::ffi::OsStr;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use serde_json::Value;

use self::capture::Captured;
use crate::wait::POLL;

/// How long the output threads may take to reach the end of the streams once
/// the process has exited (a grandchild could hold them open).
const DRAIN: Duration = Duration::from_secs(5);

/// How long a graceful [`VigilProcess::stop`] may take: the spool's shutdown
/// grace and the sources' last writes are well within it.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(60);

/// `BIN` with the environment the tests need: no `VIGIL_LOG`/`RUST_LOG` of
/// the shell running them (the tests read the default log lines).
pub fn vigil_command(bin: impl AsRef<OsStr>) -> Command {
    let mut command = Command::new(bin);
    command.env_remove("VIGIL_LOG").env_remove("RUST_LOG");
    command
}

/// Keeps `command` away from any Kubernetes of the machine running the
/// tests: no `$KUBECONFIG`, no in-cluster service account variables, and
/// `HOME` (created) in place of the user's, so no `~/.kube/config` either.
/// A test that wants a cluster sets `KUBECONFIG` after this.
pub fn without_kubernetes<'a>(command: &'a mut Command, home: &Path) -> &'a mut Command {
    std::fs::create_dir_all(home)
        .unwrap_or_else(|e| panic!("cannot create {}: {e}", home.display()));
    command
        .env_remove("KUBECONFIG")
        .env_remove("KUBERNETES_SERVICE_HOST")
        .env("HOME", home)
}

/// A signal for [`VigilProcess::signal`] (sent with `kill(1)`: no `unsafe`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// Reload the configuration.
    Hup,
    /// Stop, as Ctrl-C does.
    Int,
    /// Stop, as systemd and the kubelet do.
    Term,
}

impl Signal {
    fn name(self) -> &'static str {
        match self {
            Self::Hup => "HUP",
            Self::Int => "INT",
            Self::Term => "TERM",
        }
    }
}

/// A running `vigil` (usually `vigil run`): stdin is empty, stdout and
/// stderr are captured line by line. SIGKILLed and reaped when dropped.
#[derive(Debug)]
pub struct VigilProcess {
    child: Mutex<Child>,
    stdout: Arc<Captured>,
    stderr: Arc<Captured>,
}

impl VigilProcess {
    /// Starts `command` (see [`vigil_command`]) with its output captured.
    pub fn spawn(command: &mut Command) -> Self {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {:?}: {e}", command.get_program()));
        let stdout = Captured::read(child.stdout.take().expect("stdout is piped"));
        let stderr = Captured::read(child.stderr.take().expect("stderr is piped"));
        Self {
            child: Mutex::new(child),
            stdout,
            stderr,
        }
    }

    fn child(&self) -> MutexGuard<'_, Child> {
        self.child.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn id(&self) -> u32 {
        self.child().id()
    }

    /// Its exit status, once it has exited.
    pub fn exited(&self) -> Option<ExitStatus> {
        self.child().try_wait().ok().flatten()
    }

    /// Everything on stderr so far (the log), lines joined with `\n`.
    pub fn stderr_text(&self) -> String {
        self.stderr.text()
    }

    /// Everything on stdout so far, lines joined with `\n`.
    pub fn stdout_text(&self) -> String {
        self.stdout.text()
    }

    /// Every stdout line so far as JSON (`vigil run` writes one finding per
    /// line); panics on a line that is not JSON.
    pub fn findings(&self) -> Vec<Value> {
        self.findings_with_arrival()
            .into_iter()
            .map(|(_, f)| f)
            .collect()
    }

    /// [`Self::findings`] with the moment each line was read.
    pub fn findings_with_arrival(&self) -> Vec<(Instant, Value)> {
        self.stdout
            .lines()
            .into_iter()
            .map(|line| {
                let finding = serde_json::from_str(&line.text).unwrap_or_else(|e| {
                    panic!("vigil's stdout line is not JSON ({e}): {}", line.text)
                });
                (line.at, finding)
            })
            .collect()
    }

    /// Polls `poll` until it gives a value. Panics after `timeout`, or as
    /// soon as the process has exited, with `what`, `show()` and the log.
    pub fn wait_for_showing<T>(
        &self,
        what: &str,
        timeout: Duration,
        mut poll: impl FnMut() -> Option<T>,
        show: impl Fn() -> String,
    ) -> T {
        let outcome = crate::wait_for(
            what,
            timeout,
            || match poll() {
                Some(value) => Some(Ok(value)),
                None => self.exited().map(Err),
            },
            || format!("{}\n--- vigil stderr\n{}", show(), self.stderr_text()),
        );
        match outcome {
            Ok(value) => value,
            Err(status) => {
                // What it wrote last may still be in the pipe.
                self.stderr.wait_closed(DRAIN);
                self.stdout.wait_closed(DRAIN);
                if let Some(value) = poll() {
                    return value;
                }
                panic!(
                    "vigil exited ({status}) while the test waited for {what}\n{}\n--- vigil stderr\n{}",
                    show(),
                    self.stderr_text()
                );
            }
        }
    }

    /// [`Self::wait_for_showing`] with the log only.
    pub fn wait_for<T>(&self, what: &str, timeout: Duration, poll: impl FnMut() -> Option<T>) -> T {
        self.wait_for_showing(what, timeout, poll, String::new)
    }

    /// [`Self::wait_for`] a condition.
    pub fn wait_until(&self, what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
        self.wait_for(what, timeout, || done().then_some(()));
    }

    /// Waits until the log contains `needle`.
    pub fn wait_for_stderr(&self, needle: &str, timeout: Duration) {
        self.wait_until(&format!("{needle:?} in the log"), timeout, || {
            self.stderr_text().contains(needle)
        });
    }

    /// Waits for a finding `pick` accepts; returns the first such one.
    pub fn wait_for_finding(
        &self,
        what: &str,
        timeout: Duration,
        pick: impl Fn(&Value) -> bool,
    ) -> Value {
        self.wait_for_finding_with_arrival(what, timeout, pick).1
    }

    /// [`Self::wait_for_finding`], with the moment its line was read.
    pub fn wait_for_finding_with_arrival(
        &self,
        what: &str,
        timeout: Duration,
        pick: impl Fn(&Value) -> bool,
    ) -> (Instant, Value) {
        self.wait_for_showing(
            &format!("the finding {what}"),
            timeout,
            || {
                self.findings_with_arrival()
                    .into_iter()
                    .find(|(_, f)| pick(f))
            },
            || self.show_stdout(),
        )
    }

    /// Waits for a finding of `rule`.
    pub fn wait_for_rule(&self, rule: &str, timeout: Duration) -> Value {
        self.wait_for_finding(rule, timeout, |f| f["rule_id"] == rule)
    }

    /// Waits until the findings so far satisfy `done`; returns them.
    pub fn wait_for_findings(
        &self,
        what: &str,
        timeout: Duration,
        done: impl Fn(&[Value]) -> bool,
    ) -> Vec<Value> {
        self.wait_for_showing(
            what,
            timeout,
            || Some(self.findings()).filter(|f| done(f)),
            || self.show_stdout(),
        )
    }

    fn show_stdout(&self) -> String {
        format!("--- vigil stdout\n{}", self.stdout_text())
    }

    /// The admin endpoint's bound address, from the startup log line
    /// `admin endpoint: listening … address=ADDR`.
    pub fn admin_addr(&self) -> SocketAddr {
        let log = self.stderr_text();
        let line = log
            .lines()
            .find(|l| l.contains("admin endpoint: listening"))
            .unwrap_or_else(|| panic!("no admin endpoint address in the log:\n{log}"));
        line.split_whitespace()
            .find_map(|field| field.strip_prefix("address="))
            .and_then(|addr| addr.parse().ok())
            .unwrap_or_else(|| panic!("no address=ADDR in {line:?}"))
    }

    /// `GET /metrics` of the admin endpoint: the body.
    pub fn metrics(&self) -> String {
        crate::net::http_get(self.admin_addr(), "/metrics").1
    }

    /// Waits until `/metrics` has the line `line`, exactly.
    pub fn wait_for_metric(&self, line: &str, timeout: Duration) {
        let last = Mutex::new(String::new());
        self.wait_for_showing(
            &format!("{line:?} in /metrics"),
            timeout,
            || {
                let body = self.metrics();
                let found = body.lines().any(|l| l == line);
                *last.lock().unwrap_or_else(PoisonError::into_inner) = body;
                found.then_some(())
            },
            || {
                let body = last.lock().unwrap_or_else(PoisonError::into_inner);
                format!("--- /metrics\n{body}")
            },
        );
    }

    /// Sends `signal`; panics if it cannot be sent to the running process.
    pub fn signal(&self, signal: Signal) {
        let pid = self.id().to_string();
        let status = Command::new("kill")
            .arg(format!("-{}", signal.name()))
            .arg(&pid)
            .status()
            .expect("run kill(1)");
        assert!(
            status.success() || self.exited().is_some(),
            "kill -{} {pid} failed ({status})",
            signal.name()
        );
    }

    /// A graceful stop: SIGTERM, then waits for the exit; returns the whole
    /// log (its output stays readable). Panics (with the log) if it is still
    /// running after [`STOP_TIMEOUT`].
    pub fn stop(&self) -> String {
        self.stop_with(Signal::Term, STOP_TIMEOUT)
    }

    /// Stops it with `signal`; see [`Self::stop`].
    pub fn stop_with(&self, signal: Signal, timeout: Duration) -> String {
        if self.exited().is_none() {
            self.signal(signal);
        }
        let deadline = Instant::now() + timeout;
        while self.exited().is_none() {
            assert!(
                Instant::now() < deadline,
                "vigil still running {timeout:?} after SIG{}\n--- vigil stderr\n{}",
                signal.name(),
                self.stderr_text()
            );
            std::thread::sleep(POLL);
        }
        self.stderr.wait_closed(DRAIN);
        self.stdout.wait_closed(DRAIN);
        self.stderr_text()
    }

    /// SIGKILL (no chance to clean up), then reaps it.
    pub fn kill(self) {
        drop(self);
    }
}

impl Drop for VigilProcess {
    fn drop(&mut self) {
        let child = self.child.get_mut().unwrap_or_else(PoisonError::into_inner);
        let _ = child.kill();
        let _ = child.wait();
    }
}
