//! Debian's `nats-server` as the fleet and NATS output tests run it: on
//! loopback, JetStream on, its store in the test's directory, so that a
//! stopped server started again on the same store keeps its streams.

use std::ffi::OsStr;
use std::fs::File;
use std::io::Read;
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::fixtures::nats_server_binary;
use crate::net::free_port;
use crate::wait::wait_until;

/// A running `nats-server`, killed when dropped (pass or fail).
#[derive(Debug)]
pub struct NatsServer {
    child: Child,
    port: u16,
}

impl NatsServer {
    /// `nats-server` on `127.0.0.1:PORT` (a free port when `port` is 0)
    /// with JetStream storing in `store`, once it accepts connections.
    pub fn start(store: &Path, port: u16) -> Self {
        Self::start_with(store, port, std::iter::empty::<&str>())
    }

    /// [`NatsServer::start`] with `extra` flags: `-c FILE` (users and their
    /// permissions), `--user …`, `--tls …`. The address, port and store
    /// given here win over a configuration file's.
    pub fn start_with(
        store: &Path,
        port: u16,
        extra: impl IntoIterator<Item = impl AsRef<OsStr>>,
    ) -> Self {
        let port = if port == 0 { free_port() } else { port };
        // Its log beside the store (`…/js` → `…/js.nats-server.log`),
        // appended across restarts: a server that does not come up says why
        // in the panic below.
        let log = store.with_extension("nats-server.log");
        if let Some(dir) = log.parent() {
            std::fs::create_dir_all(dir).expect("create the nats-server log's directory");
        }
        let log_file = File::options()
            .create(true)
            .append(true)
            .open(&log)
            .expect("open the nats-server log");
        let child = Command::new(nats_server_binary())
            .args(extra)
            .args(["-a", "127.0.0.1", "-p", &port.to_string(), "-js", "-sd"])
            .arg(store)
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .expect("start nats-server");
        // Owned before waiting, so that a panic below kills it too.
        let mut server = Self { child, port };
        wait_until(
            &format!("nats-server to greet on port {port}"),
            Duration::from_secs(20),
            || {
                if let Ok(Some(status)) = server.child.try_wait() {
                    panic!(
                        "nats-server exited ({status}) before it listened on port {port}:\n{}",
                        std::fs::read_to_string(&log).unwrap_or_default()
                    );
                }
                greets(port)
            },
            || std::fs::read_to_string(&log).unwrap_or_default(),
        );
        server
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Kills the server now: a server going away under the test. Its store
    /// stays, for a restart on the same port.
    pub fn stop(self) {
        drop(self);
    }
}

/// Whether a NATS server answers on `port` with its `INFO` greeting. A mere
/// accepted connection is not enough: while nothing listens on a port of
/// the ephemeral range, a connection to it can be given that very port as
/// its own and connect to itself (TCP simultaneous open): the likely cause
/// of a `fleet_live` run that went on before its server was there.
fn greets(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    if s.local_addr().ok() == s.peer_addr().ok() {
        return false;
    }
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let mut greeting = [0u8; 5];
    s.read_exact(&mut greeting).is_ok() && &greeting == b"INFO "
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
