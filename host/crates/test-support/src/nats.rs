//! Debian's `nats-server` as the fleet and NATS output tests run it: on
//! loopback, JetStream on, its store in the test's directory, so that a
//! stopped server started again on the same store keeps its streams.

use std::ffi::OsStr;
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
        let child = Command::new(nats_server_binary())
            .args(extra)
            .args(["-a", "127.0.0.1", "-p", &port.to_string(), "-js", "-sd"])
            .arg(store)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start nats-server");
        wait_until(
            &format!("nats-server to listen on port {port}"),
            Duration::from_secs(20),
            || TcpStream::connect(("127.0.0.1", port)).is_ok(),
            String::new,
        );
        Self { child, port }
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

impl Drop for NatsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
