//! Which container a kernel event belongs to, from the caller's cgroup v2
//! id (`bpf_get_current_cgroup_id`, the inode of its cgroup directory).
//!
//! The id is taken in the kernel at the moment of the call, so a process
//! that connects and exits at once is still attributed: only its cgroup
//! must still exist when userspace looks, which holds for as long as the
//! container runs. Ids are mapped to paths by walking the cgroup v2
//! hierarchy (found in `mountinfo`), and paths to container ids as the
//! procfs source does (`/docker/<id>`, `…/docker-<id>.scope`,
//! `…/cri-containerd-<id>.scope`, …). This works on pure cgroup v2 nodes
//! and on hybrid ones where the engine also places containers in the
//! unified hierarchy (Docker here does: `0::/docker/<id>`). On a node with
//! cgroup v1 only every process shares the root's id: the source refuses to
//! start there rather than call every container the host.

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::network::attribution::container_id;

/// Deepest cgroup directory walked (kubepods nest five or six levels).
const MAX_DEPTH: usize = 12;
/// Most cgroup directories walked in one scan.
const MAX_DIRS: usize = 200_000;
/// Shortest time between two scans (a burst of new ids walks once per
/// interval).
const MIN_RESCAN: Duration = Duration::from_millis(20);

/// What a cgroup id stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owner {
    /// A container's cgroup (or one below it): its 64-hex id.
    Container(String),
    /// A cgroup that holds no container: the host's own processes.
    Host,
    /// Not found in the hierarchy (gone before it was looked up, or
    /// outside what Vigil's mount shows).
    Unknown,
}

/// The cgroup v2 mount point in a `mountinfo` file (the first `cgroup2`).
pub fn cgroup2_mount(mountinfo: &str) -> Option<PathBuf> {
    mountinfo.lines().find_map(|line| {
        let (left, right) = line.split_once(" - ")?;
        (right.split_whitespace().next()? == "cgroup2")
            .then(|| left.split_whitespace().nth(4).map(unescape))
            .flatten()
    })
}

/// `mountinfo` escapes space, tab, newline and backslash as `\ooo`.
fn unescape(field: &str) -> PathBuf {
    let mut out = String::with_capacity(field.len());
    let mut rest = field;
    while let Some(i) = rest.find('\\') {
        out.push_str(&rest[..i]);
        let code = rest.get(i + 1..i + 4);
        match code.and_then(|c| u8::from_str_radix(c, 8).ok()) {
            Some(b) => {
                out.push(char::from(b));
                rest = &rest[i + 4..];
            }
            None => {
                out.push('\\');
                rest = &rest[i + 1..];
            }
        }
    }
    out.push_str(rest);
    PathBuf::from(out)
}

/// Cgroup ids mapped to their owner, learned by walking the hierarchy;
/// bounded (cleared when it reaches `cap`).
#[derive(Debug)]
pub struct Cgroups {
    root: PathBuf,
    known: HashMap<u64, Owner>,
    cap: usize,
    last_scan: Option<Instant>,
    /// Scans done, for the log and tests.
    pub scans: u64,
}

impl Cgroups {
    /// A resolver over the hierarchy mounted at `root`.
    pub fn new(root: PathBuf, cap: usize) -> Self {
        Self {
            root,
            known: HashMap::new(),
            cap: cap.max(1024),
            last_scan: None,
            scans: 0,
        }
    }

    /// The mount point walked.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The owner of cgroup `id`, walking the hierarchy again when the id is
    /// new (at most every [`MIN_RESCAN`]).
    pub fn owner(&mut self, id: u64) -> Owner {
        if let Some(owner) = self.known.get(&id) {
            return owner.clone();
        }
        // The walk starts after the event was taken, so a cgroup missing
        // from it is gone (ids are never reused) or not visible: remembered
        // as such rather than walked for again. A walk just done may predate
        // the cgroup (a container that has just started): wait out the
        // short rescan interval rather than answer from it.
        if let Some(since) = self.last_scan.map(|at| at.elapsed())
            && since < MIN_RESCAN
        {
            std::thread::sleep(MIN_RESCAN - since);
        }
        self.scan();
        if let Some(owner) = self.known.get(&id) {
            return owner.clone();
        }
        self.remember(id, Owner::Unknown);
        Owner::Unknown
    }

    fn remember(&mut self, id: u64, owner: Owner) {
        if self.known.len() >= self.cap {
            self.known.clear();
        }
        self.known.insert(id, owner);
    }

    /// Walks the hierarchy, recording every directory's id and owner.
    fn scan(&mut self) {
        self.last_scan = Some(Instant::now());
        self.scans += 1;
        let mut stack = vec![(self.root.clone(), 0usize)];
        let mut walked = 0usize;
        while let Some((dir, depth)) = stack.pop() {
            walked += 1;
            if walked > MAX_DIRS {
                tracing::warn!(
                    source = super::SOURCE,
                    root = %self.root.display(),
                    "ebpf: cgroup hierarchy larger than {MAX_DIRS} directories; scan cut short"
                );
                break;
            }
            let Ok(meta) = std::fs::metadata(&dir) else {
                continue; // removed while walking
            };
            let relative = dir.strip_prefix(&self.root).unwrap_or(&dir);
            let owner = relative
                .to_str()
                .and_then(|p| container_id(&format!("0::/{p}")).map(str::to_owned))
                .map_or(Owner::Host, Owner::Container);
            self.remember(meta.ino(), owner);
            if depth >= MAX_DEPTH {
                continue;
            }
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries.filter_map(Result::ok) {
                if entry.file_type().is_ok_and(|t| t.is_dir()) {
                    stack.push((entry.path(), depth + 1));
                }
            }
        }
    }
}
