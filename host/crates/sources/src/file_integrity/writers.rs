//! Who wrote a watched file: a fanotify group (`FAN_MODIFY`,
//! `FAN_CLOSE_WRITE`) marked on the directories the inotify watches cover,
//! whose events carry the writer's pid at the time of the write. The pid is
//! resolved at once through `/proc` (binary, command line, parent, uid,
//! cgroup → container, as the `network` and `ebpf` sources attribute their
//! events) and handed to the pipeline as a `write` process event (WIT
//! 0.1.3) naming the file as the file-integrity event does.
//!
//! Why fanotify and not inotify or eBPF: inotify never says who; a kernel
//! program would have to resolve a written inode to a watched path in the
//! kernel. fanotify marks the same inodes inotify watches (a write through
//! a container's bind mount is a write to the host's inode, so it is seen)
//! and reports the writer in the listener's PID namespace: the host's.
//!
//! Bounded: the kernel's queue (16384 events; an overflow is counted in
//! `gaps` and logged), at most one event per file and writer per
//! `max_delay` (a process writing a file in 4 KiB chunks is one write), a
//! capped table for that. A writer gone before `/proc` was read (a
//! short-lived `echo >>` whose container also went) cannot be named: it is
//! counted in `unattributed` and logged; the change itself is still
//! reported by the file-integrity event. A replace by rename is named only
//! when the new content was written under the watched name itself (the
//! temporary file of an atomic writer is not a watched path). Files are
//! recognised by inode: a write through a container's bind mount names the
//! file by its path inside that mount.
//!
//! Needs `CAP_SYS_ADMIN` (fanotify_init): without it the writers are not
//! named, with the reason logged, and the source runs as before.

mod internal_events;
mod procfs;
#[cfg(test)]
mod tests;

use std::collections::{BTreeSet, HashMap};
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::fanotify::{EventFFlags, Fanotify, InitFlags, MarkFlags, MaskFlags};
use tokio::runtime::Handle;
use vigil_core::metrics::SourceMetrics;
use vigil_core::model::{PROCESS_WRITE, ProcessEvent};
use vigil_core::time::wall_now;

use self::internal_events::{
    FileIntegrityMarkFailed, FileIntegrityWriteSeen, FileIntegrityWriterMissed,
    FileIntegrityWritersOverflowed, FileIntegrityWritersReadFailed,
    FileIntegrityWritersUnavailable,
};
pub use self::procfs::{Writer, read_writer};
use super::spec::PathSpec;
use super::watch::{dir_id, nearest_dir};
use crate::SourceContext;
use crate::network::attribution::{ContainerNames, ContainerRoots, container_id};

/// How long a poll waits, so that shutdown is seen.
const POLL: u16 = 250;
/// How often the marks are brought up to date (a directory created later).
const REARM_EVERY: Duration = Duration::from_secs(2);
/// Shortest time between two re-indexes prompted by an unknown inode
/// (writes to unwatched siblings in a watched directory are common).
const REINDEX_EVERY: Duration = Duration::from_millis(500);
/// Most (file, writer) pairs remembered for coalescing.
const MAX_RECENT: usize = 4_096;
/// Containers whose names are cached.
const MAX_CONTAINERS: usize = 1_024;

/// Why writers cannot be named.
#[derive(Debug, thiserror::Error)]
pub enum WritersError {
    /// The kernel refused the fanotify group (no `CAP_SYS_ADMIN`, a kernel
    /// without fanotify).
    #[error("fanotify_init refused (needs CAP_SYS_ADMIN and CONFIG_FANOTIFY)")]
    Init(#[source] Errno),
    /// The thread could not be spawned.
    #[error("cannot start the writers thread")]
    Spawn(#[source] std::io::Error),
}

/// Where the writers' details are read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriterSettings {
    /// `/proc` (the host's PID namespace: Vigil must run in it).
    pub proc_root: PathBuf,
    /// Where container names, images and terminal settings are read.
    pub containers: ContainerRoots,
    /// At most one write event per file and writer per this long.
    pub coalesce: Duration,
}

/// [`start`], or `None` with the reason logged: the source runs on
/// without naming writers.
pub fn start_or_log(
    settings: WriterSettings,
    specs: Vec<PathSpec>,
    ctx: SourceContext,
    rt: Handle,
) -> Option<std::thread::JoinHandle<()>> {
    start(settings, specs, ctx, rt)
        .map_err(|error| FileIntegrityWritersUnavailable { error: &error }.emit())
        .ok()
}

/// Creates the fanotify group (failing here means: writers not named) and
/// starts its thread, which runs until `ctx.shutdown` turns true.
pub fn start(
    settings: WriterSettings,
    specs: Vec<PathSpec>,
    ctx: SourceContext,
    rt: Handle,
) -> Result<std::thread::JoinHandle<()>, WritersError> {
    let mut marks = Marks::new(group()?, specs);
    marks.arm();
    tracing::info!(
        source = super::SOURCE,
        dirs = marks.marked.len(),
        "file-integrity: writers named (fanotify on {} directories)",
        marks.marked.len()
    );
    std::thread::Builder::new()
        .name("vigil-fim-writers".into())
        .spawn(move || run(marks, settings, ctx, rt))
        .map_err(WritersError::Spawn)
}

/// A notification-only group whose events carry an open read-only file
/// descriptor (the path is read from it) and the writer's pid.
fn group() -> Result<Fanotify, WritersError> {
    Fanotify::init(
        InitFlags::FAN_CLASS_NOTIF | InitFlags::FAN_CLOEXEC | InitFlags::FAN_NONBLOCK,
        EventFFlags::O_RDONLY | EventFFlags::O_CLOEXEC | EventFFlags::O_LARGEFILE,
    )
    .map_err(WritersError::Init)
}

/// The group, its marks, and the watched paths they stand for.
struct Marks {
    group: Fanotify,
    specs: Vec<PathSpec>,
    /// Marked directory → its (device, inode) when marked.
    marked: HashMap<PathBuf, (u64, u64)>,
    /// A watched file's (device, inode) → its path as the specs name it.
    /// By inode, not by path: the path of a write through a container's
    /// bind mount is relative to that mount (`/runc` for the host's
    /// `/usr/bin/runc` mounted at `/w`), and a spec may name a symlink.
    files: HashMap<(u64, u64), PathBuf>,
    last_armed: Instant,
    last_indexed: Instant,
}

impl Marks {
    fn new(group: Fanotify, specs: Vec<PathSpec>) -> Self {
        Self {
            group,
            specs,
            marked: HashMap::new(),
            files: HashMap::new(),
            last_armed: Instant::now(),
            last_indexed: Instant::now(),
        }
    }

    /// Marks every directory the specs need (the inotify anchors) not
    /// marked yet, and indexes the watched files by inode. Marks of
    /// removed directories go with their inodes.
    fn arm(&mut self) {
        self.last_armed = Instant::now();
        let wanted: BTreeSet<PathBuf> = self
            .specs
            .iter()
            .flat_map(PathSpec::anchors)
            .filter_map(|a| nearest_dir(&a))
            .collect();
        for dir in wanted {
            let Some(id) = dir_id(&dir) else { continue };
            if self.marked.get(&dir) == Some(&id) {
                continue;
            }
            let mask =
                MaskFlags::FAN_MODIFY | MaskFlags::FAN_CLOSE_WRITE | MaskFlags::FAN_EVENT_ON_CHILD;
            match self.group.mark(
                MarkFlags::FAN_MARK_ADD | MarkFlags::FAN_MARK_ONLYDIR,
                mask,
                nix::fcntl::AT_FDCWD,
                Some(dir.as_path()),
            ) {
                Ok(()) => {
                    self.marked.insert(dir, id);
                }
                Err(error) => FileIntegrityMarkFailed { dir: &dir, error }.emit(),
            }
        }
        self.index();
    }

    fn index(&mut self) {
        self.last_indexed = Instant::now();
        self.files.clear();
        for spec in &self.specs {
            for p in spec.existing() {
                if let Ok(m) = std::fs::metadata(&p)
                    && m.is_file()
                {
                    self.files.insert((m.dev(), m.ino()), p);
                }
            }
        }
    }

    /// The watched path a written file stands for, if any: by its inode
    /// (`id`), else by the path the kernel gave (a host write to a file
    /// created since the last index); an unknown inode re-indexes at most
    /// every [`REINDEX_EVERY`] (a file replaced since, by rename).
    fn watched(&mut self, id: (u64, u64), path: &Path) -> Option<PathBuf> {
        if let Some(name) = self.files.get(&id) {
            return Some(name.clone());
        }
        if self.specs.iter().any(|s| s.selects(path)) {
            return Some(path.to_path_buf());
        }
        if self.last_indexed.elapsed() >= REINDEX_EVERY {
            self.index();
            return self.files.get(&id).cloned();
        }
        None
    }
}

/// One write as the kernel reported it.
struct Raw {
    pid: i32,
    path: PathBuf,
}

fn run(mut marks: Marks, settings: WriterSettings, ctx: SourceContext, rt: Handle) {
    let mut names = ContainerNames::new(&settings.containers, MAX_CONTAINERS, super::SOURCE);
    let mut recent = Recent::new(settings.coalesce);
    loop {
        if *ctx.shutdown.borrow() {
            return;
        }
        if marks.last_armed.elapsed() >= REARM_EVERY {
            marks.arm();
        }
        let ready = {
            let mut fds = [PollFd::new(marks.group.as_fd(), PollFlags::POLLIN)];
            poll(&mut fds, PollTimeout::from(POLL))
        };
        match ready {
            Ok(0) | Err(Errno::EINTR) => continue,
            Ok(_) => {}
            Err(error) => {
                FileIntegrityWritersReadFailed { error }.emit();
                std::thread::sleep(Duration::from_millis(u64::from(POLL)));
                continue;
            }
        }
        let mut out = Vec::new();
        for raw in drain(&mut marks, &ctx.metrics) {
            if !recent.first(&raw.path, raw.pid) {
                continue;
            }
            let key = raw.path.to_string_lossy().into_owned();
            match read_writer(&settings.proc_root, raw.pid) {
                Ok(w) => {
                    let event = write_event(&ctx, key, w, &mut names);
                    FileIntegrityWriteSeen { event: &event }.emit(&ctx.metrics);
                    out.push(event);
                }
                Err(error) => FileIntegrityWriterMissed {
                    pid: raw.pid,
                    path: &key,
                    error: &error,
                }
                .emit(&ctx.metrics),
            }
        }
        if !out.is_empty() && !rt.block_on(ctx.send_processes(out)) {
            return;
        }
    }
}

/// Reads every queued event: the writes to watched paths, in order.
/// Each event's file descriptor is closed as soon as its path is known.
fn drain(marks: &mut Marks, metrics: &SourceMetrics) -> Vec<Raw> {
    let mut out = Vec::new();
    loop {
        let events = match marks.group.read_events() {
            Ok(events) if events.is_empty() => break,
            Ok(events) => events,
            Err(Errno::EAGAIN | Errno::EINTR) => break,
            Err(error) => {
                FileIntegrityWritersReadFailed { error }.emit();
                break;
            }
        };
        for event in events {
            if event.mask().contains(MaskFlags::FAN_Q_OVERFLOW) {
                FileIntegrityWritersOverflowed.emit(metrics);
                continue;
            }
            let Some(fd) = event.fd() else { continue };
            let link = format!("/proc/self/fd/{}", fd.as_raw_fd());
            // The magic link resolves to the open file whatever mount it
            // was opened through.
            let (Ok(meta), Ok(path)) = (std::fs::metadata(&link), std::fs::read_link(&link)) else {
                continue;
            };
            if let Some(path) = marks.watched((meta.dev(), meta.ino()), &path) {
                out.push(Raw {
                    pid: event.pid(),
                    path,
                });
            }
        }
    }
    out
}

/// The `write` process event of a resolved writer.
fn write_event(
    ctx: &SourceContext,
    path: String,
    w: Writer,
    names: &mut ContainerNames,
) -> ProcessEvent {
    let (container, container_tty) = match container_id(&w.cgroup) {
        Some(id) => {
            let (c, tty) = names.get_with_tty(id);
            (Some(c), tty)
        }
        None => (None, None),
    };
    ProcessEvent {
        id: ctx.next_id(),
        time: wall_now(),
        node: ctx.node.to_string(),
        source: super::SOURCE.to_owned(),
        action: PROCESS_WRITE.to_owned(),
        pid: w.pid,
        namespace_pid: w.namespace_pid,
        parent_pid: w.parent_pid,
        parent_name: w.parent_name,
        uid: w.uid,
        binary: w.binary,
        args: w.args,
        args_truncated: w.args_truncated,
        container,
        container_tty,
        path: Some(path),
    }
}

/// The (file, writer) pairs reported lately, so that a burst of writes of
/// one process to one file is one event. Bounded: expired pairs are
/// dropped when the table is full, and if that frees nothing it starts
/// over (a duplicate event, never a lost one).
pub struct Recent {
    window: Duration,
    seen: HashMap<(PathBuf, i32), Instant>,
}

impl Recent {
    /// Pairs are remembered for `window`.
    pub fn new(window: Duration) -> Self {
        Self {
            window,
            seen: HashMap::new(),
        }
    }

    /// True when `pid` has not written `path` within the window (and
    /// remembers that it has now).
    pub fn first(&mut self, path: &Path, pid: i32) -> bool {
        self.first_at(path, pid, Instant::now())
    }

    fn first_at(&mut self, path: &Path, pid: i32, now: Instant) -> bool {
        let key = (path.to_path_buf(), pid);
        if let Some(at) = self.seen.get(&key)
            && now.saturating_duration_since(*at) < self.window
        {
            return false;
        }
        if self.seen.len() >= MAX_RECENT {
            let window = self.window;
            self.seen
                .retain(|_, at| now.saturating_duration_since(*at) < window);
            if self.seen.len() >= MAX_RECENT {
                self.seen.clear();
            }
        }
        self.seen.insert(key, now);
        true
    }
}
