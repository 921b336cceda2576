//! A writer's details from `/proc/<pid>`, read the moment its write is
//! reported. The cgroup file decides the container, so it is read first
//! and is the only one that must be readable: a process that already
//! exited (a zombie has no `exe`) is still named by its cgroup and status.

use std::path::{Path, PathBuf};

/// Bytes of the command line kept, as the `ebpf` source keeps of argv.
pub const MAX_ARGS_BYTES: usize = 256;

/// What `/proc` said about a writer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Writer {
    /// Its pid in the host's PID namespace (as fanotify reported it).
    pub pid: u32,
    /// Its pid in its own PID namespace (the last `NSpid` field).
    pub namespace_pid: u32,
    /// Its parent's pid.
    pub parent_pid: u32,
    /// Its parent's `comm`.
    pub parent_name: String,
    /// Its real uid.
    pub uid: u32,
    /// Its executable (`/proc/<pid>/exe`), empty when unreadable (exited).
    pub binary: String,
    /// Its command line, cut after [`MAX_ARGS_BYTES`].
    pub args: Vec<String>,
    /// True when `args` was cut.
    pub args_truncated: bool,
    /// The text of `/proc/<pid>/cgroup`.
    pub cgroup: String,
}

/// Why a writer could not be named.
#[derive(Debug, thiserror::Error)]
pub enum WriterError {
    /// fanotify reported no usable pid (a writer in a PID namespace the
    /// listener cannot see).
    #[error("no pid reported ({0})")]
    NoPid(i32),
    /// The process was gone before it could be looked up.
    #[error("cannot read {path} (the writer exited before it was looked up)")]
    Gone {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Reads the details of `pid` under `proc_root`.
///
/// # Errors
/// When the pid is not positive or its cgroup or status cannot be read.
pub fn read_writer(proc_root: &Path, pid: i32) -> Result<Writer, WriterError> {
    let Ok(pid) = u32::try_from(pid) else {
        return Err(WriterError::NoPid(pid));
    };
    if pid == 0 {
        return Err(WriterError::NoPid(0));
    }
    let dir = proc_root.join(pid.to_string());
    let read = |name: &str| {
        let path = dir.join(name);
        std::fs::read(&path).map_err(|source| WriterError::Gone { path, source })
    };
    let cgroup = String::from_utf8_lossy(&read("cgroup")?).into_owned();
    let status = String::from_utf8_lossy(&read("status")?).into_owned();
    let fields = status_fields(&status);
    let binary = std::fs::read_link(dir.join("exe"))
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default();
    let (args, args_truncated) = read("cmdline").map(|c| cmdline(&c)).unwrap_or_default();
    let parent_name = std::fs::read(proc_root.join(fields.parent_pid.to_string()).join("comm"))
        .map(|c| String::from_utf8_lossy(&c).trim_end().to_owned())
        .unwrap_or_default();
    Ok(Writer {
        pid,
        namespace_pid: fields.namespace_pid.unwrap_or(pid),
        parent_pid: fields.parent_pid,
        parent_name,
        uid: fields.uid,
        binary,
        args,
        args_truncated,
        cgroup,
    })
}

/// The fields of `/proc/<pid>/status` a writer needs.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct StatusFields {
    /// `PPid`.
    pub parent_pid: u32,
    /// The real uid (first of `Uid`).
    pub uid: u32,
    /// The innermost pid of `NSpid`; none on kernels without it.
    pub namespace_pid: Option<u32>,
}

/// Parses the `PPid`, `Uid` and `NSpid` lines; missing or malformed lines
/// leave their field at its default.
pub fn status_fields(status: &str) -> StatusFields {
    let mut out = StatusFields::default();
    for line in status.lines() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let mut values = value.split_whitespace();
        match key {
            "PPid" => out.parent_pid = values.next().and_then(|v| v.parse().ok()).unwrap_or(0),
            "Uid" => out.uid = values.next().and_then(|v| v.parse().ok()).unwrap_or(0),
            "NSpid" => out.namespace_pid = values.next_back().and_then(|v| v.parse().ok()),
            _ => {}
        }
    }
    out
}

/// The arguments of a `cmdline` file (NUL-separated, usually
/// NUL-terminated), cut after [`MAX_ARGS_BYTES`]; true when cut.
pub fn cmdline(raw: &[u8]) -> (Vec<String>, bool) {
    let raw = raw.strip_suffix(b"\0").unwrap_or(raw);
    if raw.is_empty() {
        return (Vec::new(), false);
    }
    let truncated = raw.len() > MAX_ARGS_BYTES;
    let kept = &raw[..raw.len().min(MAX_ARGS_BYTES)];
    let args = kept
        .split(|b| *b == 0)
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    (args, truncated)
}
