//! Programs executed on the node (WIT 0.1.3): the host's types for the WIT
//! `process-event` and the `process-filter` a plugin reads them through.
//! Like Swarm events (see [`super::Batch`]) they are not an `event-body`
//! case: they travel beside events and reach only plugins that export the
//! `processes` interface.

mod record;

use serde::{Deserialize, Serialize};
use wasmtime::component::{ComponentType, Lift, Lower};

pub use record::{PROCESS_BODY_KIND, ParsedProcessRecord, ProcessRecord, read_process_record};

use super::{ContainerRef, Timestamp};

/// The action of an `exec`.
pub const PROCESS_EXEC: &str = "exec";

/// The action of a write to a watched file by a named process (the
/// `file-integrity` source; `path` names the file).
pub const PROCESS_WRITE: &str = "write";

/// One program executed (see `wit/types.wit`).
#[derive(
    ComponentType, Lift, Lower, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq,
)]
#[component(record)]
#[serde(default)]
pub struct ProcessEvent {
    #[component(name = "id")]
    pub id: String,
    #[component(name = "time")]
    pub time: Timestamp,
    #[component(name = "node")]
    pub node: String,
    #[component(name = "source")]
    pub source: String,
    #[component(name = "action")]
    pub action: String,
    #[component(name = "pid")]
    pub pid: u32,
    #[component(name = "namespace-pid")]
    pub namespace_pid: u32,
    #[component(name = "parent-pid")]
    pub parent_pid: u32,
    #[component(name = "parent-name")]
    pub parent_name: String,
    #[component(name = "uid")]
    pub uid: u32,
    #[component(name = "binary")]
    pub binary: String,
    #[component(name = "args")]
    pub args: Vec<String>,
    #[component(name = "args-truncated")]
    pub args_truncated: bool,
    #[component(name = "container")]
    pub container: Option<ContainerRef>,
    #[component(name = "container-tty")]
    pub container_tty: Option<bool>,
    #[component(name = "path")]
    pub path: Option<String>,
}

/// Multi-call binaries that, called by their own name, run the program
/// their first argument names (`busybox sh -c …`), as busybox does.
pub const MULTI_CALL_BINARIES: &[&str] = &["busybox", "toybox"];

impl ProcessEvent {
    /// The executed file's name: the last component of `binary`.
    pub fn binary_name(&self) -> &str {
        last_component(&self.binary)
    }

    /// The names the program goes by: the executed file's name, then the
    /// last component of `argv[0]`, then — when `argv[0]` names a
    /// multi-call binary ([`MULTI_CALL_BINARIES`]) — that of `argv[1]`, the
    /// program it runs. Empty names are left out; a name may repeat.
    ///
    /// Why more than the file: a multi-call binary is one file under many
    /// names, and runs the program `argv[0]` names (`/proc/self/exe` with
    /// `argv[0]` `sh`, as busybox runs its own applets; a symlink `sh` →
    /// `busybox`) or, called as itself, the one `argv[1]` names (`busybox
    /// sh`). Matching any of these names only widens what is seen: a
    /// program renamed on disk is still caught by the name it is called by.
    pub fn program_names(&self) -> impl Iterator<Item = &str> {
        let argv0 = self.args.first().map(|a| last_component(a));
        let applet = argv0
            .filter(|n| MULTI_CALL_BINARIES.contains(n))
            .and_then(|_| self.args.get(1))
            .map(|a| last_component(a));
        [Some(self.binary_name()), argv0, applet]
            .into_iter()
            .flatten()
            .filter(|n| !n.is_empty())
    }
}

fn last_component(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or_default()
}

/// Which process events a plugin reads; validated and evaluated in
/// [`crate::subscription`].
#[derive(
    ComponentType, Lift, Lower, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq,
)]
#[component(record)]
#[serde(default, deny_unknown_fields)]
pub struct ProcessFilter {
    #[component(name = "binaries")]
    pub binaries: Vec<String>,
    #[component(name = "containers-only")]
    pub containers_only: bool,
    #[component(name = "writes")]
    pub writes: bool,
}
