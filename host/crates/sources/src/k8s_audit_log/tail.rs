//! Following a growing file by polling, across rotation and truncation.
//!
//! Synchronous and free of timers so that tests drive it step by step.
//! Rotation is seen as the path naming another inode: the old file is
//! read to its end first (lines written just before the rename are not
//! lost), then the new one from its start. A file shorter than the read
//! position was truncated (copy-truncate rotation): reading restarts at 0.
//! Limitation: a truncation followed, before the next look, by writes past
//! the old position is not noticed (nothing cheap tells them apart).
//!
//! Resuming from a saved [`Position`]: the same file (device and inode)
//! is read from the saved offset (from 0 if it became shorter: truncated
//! while Vigil was down). Another file at the path was rotated in while
//! Vigil was down: the old file, when still in the same directory under
//! another name (`audit-<time>.log`, `audit.log.1`), is read from the
//! saved offset to its end first, like a rotation seen live; then the new
//! file from its start.

use std::fs::File;
use std::io::{ErrorKind, Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::config::StartAt;
use super::position::Position;

/// Why the file could not be read this time (the next look retries).
#[derive(Debug, thiserror::Error)]
pub enum TailError {
    /// Opening the file failed (other than it not existing).
    #[error("cannot open {path}")]
    Open {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Reading or stating the open file failed.
    #[error("cannot read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// One complete line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// Byte offset of the line's start in its file.
    pub offset: u64,
    /// The line without its newline.
    pub text: Vec<u8>,
}

/// Something worth telling about the file besides its lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Note {
    /// A file was opened, reading from this offset.
    Opened { from: u64 },
    /// The path now names another file; the old one was read to its end.
    Rotated,
    /// The file became shorter than the read position.
    Truncated { was: u64, now: u64 },
    /// A line longer than the cap was skipped.
    LineTooLong { offset: u64 },
    /// The saved position's file was replaced while Vigil was down and is
    /// no longer in the directory: its lines after the position are lost.
    ResumeFileGone { offset: u64 },
}

/// Where the first file is read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Start {
    At(StartAt),
    Resume(Position),
}

/// What one look found.
#[derive(Debug, Default)]
pub struct Poll {
    /// Complete, non-blank lines in file order.
    pub lines: Vec<Line>,
    /// Events of the file, in order.
    pub notes: Vec<Note>,
    /// The read cap was reached: more is waiting, look again now.
    pub more: bool,
}

struct Open {
    file: File,
    dev: u64,
    ino: u64,
}

/// Follows one path.
pub struct Tailer {
    path: PathBuf,
    open: Option<Open>,
    /// Where the first file found starts being read; later files are
    /// always read from 0 (everything in them is new).
    first: Option<Start>,
    /// Read position in the open file.
    offset: u64,
    /// The current line so far (no newline yet) and where it starts.
    partial: Vec<u8>,
    partial_start: u64,
    /// Inside a line longer than the cap: bytes are dropped until its newline.
    skipping: bool,
    max_line: usize,
    max_read: usize,
}

impl Tailer {
    /// A tailer of `path`; nothing is read until [`Tailer::poll`].
    pub fn new(path: PathBuf, start_at: StartAt, max_line: usize, max_read: usize) -> Self {
        Self {
            path,
            open: None,
            first: Some(Start::At(start_at)),
            offset: 0,
            partial: Vec::new(),
            partial_start: 0,
            skipping: false,
            max_line,
            max_read: max_read.max(1),
        }
    }

    /// A tailer that resumes at `position` (see the module documentation).
    pub fn resume(path: PathBuf, position: Position, max_line: usize, max_read: usize) -> Self {
        Self {
            first: Some(Start::Resume(position)),
            ..Self::new(path, StartAt::Beginning, max_line, max_read)
        }
    }

    /// Where reading would resume after a restart: the open file and the
    /// start of its first line not yet returned. `None` before a file is open.
    pub fn position(&self) -> Option<Position> {
        self.open.as_ref().map(|o| Position {
            dev: o.dev,
            ino: o.ino,
            offset: self.partial_start,
        })
    }

    /// Changes the line and read caps (a source restarted with new settings).
    pub fn set_limits(&mut self, max_line: usize, max_read: usize) {
        self.max_line = max_line;
        self.max_read = max_read.max(1);
    }

    /// The path followed.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads what was appended since the last look (at most the read cap).
    pub fn poll(&mut self) -> Result<Poll, TailError> {
        let mut out = Poll::default();
        if self.open.is_none() && !self.open_current(&mut out)? {
            return Ok(out);
        }
        if self.path_replaced()? {
            // The old file may have got lines since the last look.
            self.read_to_end(&mut out, usize::MAX)?;
            self.finish_partial(&mut out);
            out.notes.push(Note::Rotated);
            self.open = None;
            if !self.open_current(&mut out)? {
                return Ok(out);
            }
        }
        let len = self
            .open_file()?
            .metadata()
            .map_err(|e| self.read_err(e))?
            .len();
        if len < self.offset {
            out.notes.push(Note::Truncated {
                was: self.offset,
                now: len,
            });
            self.reset(0);
        }
        out.more = self.read_to_end(&mut out, self.max_read)?;
        Ok(out)
    }

    /// Opens the file at the path; false when there is none yet.
    fn open_current(&mut self, out: &mut Poll) -> Result<bool, TailError> {
        let start = self.first.take().unwrap_or(Start::At(StartAt::Beginning));
        let file = match File::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == ErrorKind::NotFound => {
                // Mid-rotation while Vigil was down: finish the old file.
                if let Start::Resume(pos) = start {
                    return Ok(self.open_rotated(pos, out));
                }
                return Ok(false);
            }
            Err(source) => {
                // Keep the start position for the next attempt.
                self.first = Some(start);
                return Err(TailError::Open {
                    path: self.path.clone(),
                    source,
                });
            }
        };
        let meta = file.metadata().map_err(|e| self.read_err(e))?;
        let from = match start {
            Start::At(StartAt::End) => meta.len(),
            Start::At(StartAt::Beginning) => 0,
            Start::Resume(pos) if (meta.dev(), meta.ino()) == (pos.dev, pos.ino) => {
                if meta.len() < pos.offset {
                    out.notes.push(Note::Truncated {
                        was: pos.offset,
                        now: meta.len(),
                    });
                    0
                } else {
                    pos.offset
                }
            }
            Start::Resume(pos) => {
                // Replaced while down: the old file first, if it is still here;
                // the next look sees the rotation and opens the new one.
                if self.open_rotated(pos, out) {
                    return Ok(true);
                }
                0
            }
        };
        self.open = Some(Open {
            file,
            dev: meta.dev(),
            ino: meta.ino(),
        });
        self.reset(from);
        out.notes.push(Note::Opened { from });
        Ok(true)
    }

    /// Opens the file of a saved position under another name in the same
    /// directory, at the saved offset. False (and a note) when it is gone.
    fn open_rotated(&mut self, pos: Position, out: &mut Poll) -> bool {
        let dir = match self.path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
            _ => PathBuf::from("."),
        };
        let found = std::fs::read_dir(&dir).ok().and_then(|entries| {
            entries.filter_map(Result::ok).find_map(|e| {
                let m = e.metadata().ok()?;
                ((m.dev(), m.ino()) == (pos.dev, pos.ino) && m.is_file()).then(|| e.path())
            })
        });
        let Some(file) = found.and_then(|p| File::open(p).ok()) else {
            out.notes.push(Note::ResumeFileGone { offset: pos.offset });
            return false;
        };
        let len = file.metadata().map(|m| m.len()).unwrap_or(0);
        self.open = Some(Open {
            file,
            dev: pos.dev,
            ino: pos.ino,
        });
        let from = if len < pos.offset { 0 } else { pos.offset };
        self.reset(from);
        out.notes.push(Note::Opened { from });
        true
    }

    /// Whether the path now names another file than the open one. A
    /// missing path is not (yet) a rotation: the writer may still append
    /// to the file it renamed until it creates the new one.
    fn path_replaced(&self) -> Result<bool, TailError> {
        let Some(open) = &self.open else {
            return Ok(false);
        };
        match std::fs::metadata(&self.path) {
            Ok(m) => Ok(m.dev() != open.dev || m.ino() != open.ino),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(false),
            Err(e) => Err(self.read_err(e)),
        }
    }

    /// Reads up to `cap` bytes; true when the cap stopped it before the end.
    fn read_to_end(&mut self, out: &mut Poll, cap: usize) -> Result<bool, TailError> {
        let mut buf = vec![0u8; 64 * 1024];
        let mut total = 0usize;
        let offset = self.offset;
        if let Err(e) = self.open_file()?.seek(SeekFrom::Start(offset)) {
            return Err(self.read_err(e));
        }
        loop {
            if total >= cap {
                return Ok(true);
            }
            let want = buf.len().min(cap - total);
            let n = match self.open_file()?.read(&mut buf[..want]) {
                Ok(0) => return Ok(false),
                Ok(n) => n,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return Err(self.read_err(e)),
            };
            total += n;
            self.consume(&buf[..n], out);
        }
    }

    /// Splits bytes read into lines, keeping an unfinished last line.
    pub(super) fn consume(&mut self, mut chunk: &[u8], out: &mut Poll) {
        while let Some(i) = chunk.iter().position(|&b| b == b'\n') {
            let (head, rest) = (&chunk[..i], &chunk[i + 1..]);
            if self.skipping {
                self.skipping = false;
            } else if self.partial.len() + head.len() > self.max_line {
                out.notes.push(Note::LineTooLong {
                    offset: self.partial_start,
                });
                self.partial.clear();
            } else {
                self.partial.extend_from_slice(head);
                self.emit_partial(out);
            }
            self.offset += i as u64 + 1;
            self.partial_start = self.offset;
            chunk = rest;
        }
        if !self.skipping {
            if self.partial.len() + chunk.len() > self.max_line {
                out.notes.push(Note::LineTooLong {
                    offset: self.partial_start,
                });
                self.partial.clear();
                self.skipping = true;
            } else {
                self.partial.extend_from_slice(chunk);
            }
        }
        self.offset += chunk.len() as u64;
    }

    /// A rotated file's unterminated last line is complete: nothing more
    /// will be appended to it.
    fn finish_partial(&mut self, out: &mut Poll) {
        if !self.skipping {
            self.emit_partial(out);
        }
        self.partial.clear();
        self.skipping = false;
    }

    fn emit_partial(&mut self, out: &mut Poll) {
        let mut text = std::mem::take(&mut self.partial);
        if text.last() == Some(&b'\r') {
            text.pop();
        }
        if !text.iter().all(u8::is_ascii_whitespace) {
            out.lines.push(Line {
                offset: self.partial_start,
                text,
            });
        }
    }

    fn reset(&mut self, offset: u64) {
        self.offset = offset;
        self.partial.clear();
        self.partial_start = offset;
        self.skipping = false;
    }

    fn open_file(&self) -> Result<&File, TailError> {
        match &self.open {
            Some(o) => Ok(&o.file),
            None => Err(self.read_err(ErrorKind::NotFound.into())),
        }
    }

    fn read_err(&self, source: std::io::Error) -> TailError {
        TailError::Read {
            path: self.path.clone(),
            source,
        }
    }
}
