//! JSON-lines input read one block ahead, on a thread of its own, while
//! the replay normalises and runs the plugins on the block before.
//!
//! Why: reading (the `read` system calls, the page cache) is a tenth of a
//! replay's time, and it ran on the dispatching thread, the one that a
//! replay on two cores waits for. With a pool (`--threads` over 1) the
//! blocks are read by a thread that does nothing else and handed over cut
//! into records ([`LineBlock`]: the UTF-8 check and the newline search are
//! that thread's work too). The buffers themselves are handed over, and
//! come back when done; at most [`AHEAD`] wait, so memory stays bounded
//! whatever the input's size. On one thread, reading
//! stays inline: a second thread would only take turns on the same core.
//!
//! What the caller sees does not change: the same blocks, the same errors,
//! in the same order.

use std::io::Read;
use std::sync::mpsc;

use vigil_normalize::{Block, InputError, LineBlock, LineBlocks};

/// Blocks read and waiting for the caller, besides the ones it works on and
/// the one being read.
const AHEAD: usize = 1;

/// What reading gave, in input order.
pub(super) enum Input<'a> {
    /// Lines skipped (over the length cap), before the block that follows.
    Errors(Vec<InputError>),
    /// The next block of whole lines.
    Block(Block<'a>),
    /// Reading failed: nothing follows.
    Failed(std::io::Error),
}

/// What the reading thread gave, in input order (see [`Ahead`]).
pub(super) enum Arrived {
    /// Lines skipped (over the length cap), before the block that follows.
    Errors(Vec<InputError>),
    /// The next block of whole lines, cut into records.
    Block(LineBlock),
    /// Reading failed: nothing follows.
    Failed(std::io::Error),
}

/// Reads every block of `blocks` on the caller's thread and gives them to
/// `each` until the input ends or fails.
pub(super) fn blocks<R: Read + Send>(mut blocks: LineBlocks<R>, mut each: impl FnMut(Input<'_>)) {
    loop {
        let mut bad = Vec::new();
        let block = blocks.next_block(&mut |e| bad.push(e));
        if !bad.is_empty() {
            each(Input::Errors(bad));
        }
        match block {
            Ok(Some(block)) => each(Input::Block(block)),
            Ok(None) => return,
            Err(e) => return each(Input::Failed(e)),
        }
    }
}

/// The input as read by the reading thread, taken in order with
/// [`Ahead::next`].
pub(super) struct Ahead {
    rx: mpsc::Receiver<Arrived>,
    give_back: mpsc::Sender<Vec<u8>>,
}

/// What [`Ahead::next`] found.
pub(super) enum Next {
    /// What was read next.
    Read(Arrived),
    /// Nothing yet (only when not waiting).
    NotYet,
    /// The input has ended (after its last block, or its failure).
    Ended,
}

impl Ahead {
    /// What was read next; with `wait`, waits for it rather than answer
    /// [`Next::NotYet`].
    pub fn next(&self, wait: bool) -> Next {
        let got = if wait {
            self.rx.recv().map_err(|_| mpsc::TryRecvError::Disconnected)
        } else {
            self.rx.try_recv()
        };
        match got {
            Ok(read) => Next::Read(read),
            Err(mpsc::TryRecvError::Empty) => Next::NotYet,
            Err(mpsc::TryRecvError::Disconnected) => Next::Ended,
        }
    }

    /// A block the caller is done with: its buffer is read into again.
    pub fn give_back(&self, block: LineBlock) {
        let _ = self.give_back.send(block.into_bytes());
    }
}

/// Reads `blocks` on a thread of its own and runs `with` on what it reads
/// (see the module docs); returns when both are done.
///
/// # Errors
/// When the reading thread cannot be started (nothing was read).
pub(super) fn ahead<R: Read + Send, T>(
    mut blocks: LineBlocks<R>,
    with: impl FnOnce(&Ahead) -> T,
) -> std::io::Result<T> {
    let (tx, rx) = mpsc::sync_channel::<Arrived>(AHEAD);
    // Buffers the caller is done with, reused by the reader.
    let (give_back, reuse) = mpsc::channel::<Vec<u8>>();
    std::thread::scope(|scope| {
        let reader = std::thread::Builder::new()
            .name("vigil-replay-read".into())
            .spawn_scoped(scope, move || {
                loop {
                    let mut bad = Vec::new();
                    let spare = reuse.try_recv().unwrap_or_default();
                    let block = blocks.next_line_block(spare, &mut |e| bad.push(e));
                    if !bad.is_empty() && tx.send(Arrived::Errors(bad)).is_err() {
                        return;
                    }
                    let read = match block {
                        Ok(Some(block)) => Arrived::Block(block),
                        Ok(None) => return,
                        Err(e) => Arrived::Failed(e),
                    };
                    let last = matches!(read, Arrived::Failed(_));
                    // The caller gone (it panicked): stop reading.
                    if tx.send(read).is_err() || last {
                        return;
                    }
                }
            });
        let reader = match reader {
            Ok(reader) => reader,
            Err(e) => {
                return Err(std::io::Error::other(format!(
                    "cannot start the reading thread: {e}"
                )));
            }
        };
        let result = with(&Ahead { rx, give_back });
        // The caller returns once the reader has sent its last (or when it
        // panics, which the scope carries on).
        if let Err(panic) = reader.join() {
            std::panic::resume_unwind(panic);
        }
        Ok(result)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Gives `data` a few bytes per read, then fails (or ends).
    struct Trickle {
        data: Vec<u8>,
        at: usize,
        fail: bool,
    }

    impl Read for Trickle {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            if self.at == self.data.len() {
                return if self.fail {
                    Err(std::io::Error::other("disk on fire"))
                } else {
                    Ok(0)
                };
            }
            let n = buf.len().min(7).min(self.data.len() - self.at);
            buf[..n].copy_from_slice(&self.data[self.at..self.at + n]);
            self.at += n;
            Ok(n)
        }
    }

    /// A block's records, as text.
    fn shown(records: &[vigil_normalize::Record<'_>]) -> String {
        let lines: Vec<String> = records
            .iter()
            .map(|r| format!("{} {:?}", r.line, r.text))
            .collect();
        format!("block {}", lines.join(" | "))
    }

    /// What the caller saw, as text.
    fn seen(data: &[u8], fail: bool, read_ahead: bool) -> Vec<String> {
        let reader = Trickle {
            data: data.to_vec(),
            at: 0,
            fail,
        };
        let lines = LineBlocks::new("in", reader, 16, 24);
        let mut got = Vec::new();
        if !read_ahead {
            blocks(lines, |input| {
                got.push(match input {
                    Input::Errors(bad) => format!(
                        "errors {:?}",
                        bad.iter().map(|e| e.line).collect::<Vec<_>>()
                    ),
                    Input::Block(b) => shown(&b.records()),
                    Input::Failed(e) => format!("failed {e}"),
                });
            });
            return got;
        }
        ahead(lines, |input| {
            loop {
                let arrived = match input.next(got.len() % 2 == 0) {
                    Next::Read(arrived) => arrived,
                    Next::NotYet => continue,
                    Next::Ended => break,
                };
                got.push(match arrived {
                    Arrived::Errors(bad) => format!(
                        "errors {:?}",
                        bad.iter().map(|e| e.line).collect::<Vec<_>>()
                    ),
                    Arrived::Block(b) => {
                        let text = shown(&b.records(0..b.len()));
                        input.give_back(b);
                        text
                    }
                    Arrived::Failed(e) => format!("failed {e}"),
                });
            }
        })
        .expect("the reading thread starts");
        got
    }

    #[test]
    fn reading_ahead_shows_the_same_blocks_errors_and_failure() {
        let lines = "one\ntwo\nthree three\n{\"much longer than the cap of a line\"}\nlast\n";
        for (data, tail) in [
            (format!("{lines}no newline"), true),
            (lines.to_owned(), false),
        ] {
            for fail in [false, true] {
                let inline = seen(data.as_bytes(), fail, false);
                assert_eq!(seen(data.as_bytes(), fail, true), inline, "fail: {fail}");
                assert!(inline.iter().any(|s| s == "errors [4]"), "{inline:?}");
                // A failure ends the input where it happens: the whole lines
                // read before it are shown, the line it cut short is not.
                assert!(inline.iter().any(|s| s.contains("last")), "{inline:?}");
                assert_eq!(
                    inline.iter().any(|s| s.contains("no newline")),
                    tail && !fail,
                    "{inline:?}"
                );
                assert_eq!(
                    inline.last().is_some_and(|s| s == "failed disk on fire"),
                    fail,
                    "{inline:?}"
                );
            }
        }
    }
}
