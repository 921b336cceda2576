//! JSON-lines input read one block ahead, on a thread of its own, while
//! the replay normalises and runs the plugins on the block before.
//!
//! Why: reading (the `read` system calls, the page cache) is a tenth of a
//! replay's time, and it ran on the dispatching thread, the one that a
//! replay on two cores waits for. With a pool (`--threads` over 1) the
//! blocks are read by a thread that does nothing else, and handed over as
//! copies, at most [`AHEAD`] waiting, so memory stays bounded whatever the
//! input's size. On one thread, reading stays inline: a second thread
//! would only take turns on the same core.
//!
//! What the caller sees does not change: the same blocks, the same errors,
//! in the same order.

use std::io::Read;
use std::sync::mpsc;

use vigil_normalize::{Block, InputError, LineBlocks};

/// Blocks read and waiting for the caller, besides the one it works on and
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

/// A block as sent between threads.
enum Sent {
    Errors(Vec<InputError>),
    Block { first_line: usize, data: Vec<u8> },
    Failed(std::io::Error),
}

/// Reads every block of `blocks` and gives them to `each` until the input
/// ends or fails; `ahead`: on a reading thread (see the module docs).
pub(super) fn blocks<R: Read + Send>(
    mut blocks: LineBlocks<R>,
    ahead: bool,
    mut each: impl FnMut(Input<'_>),
) {
    if !ahead {
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
    let (tx, rx) = mpsc::sync_channel::<Sent>(AHEAD);
    // Buffers the caller is done with, reused by the reader.
    let (give_back, reuse) = mpsc::channel::<Vec<u8>>();
    std::thread::scope(|scope| {
        let reader = std::thread::Builder::new()
            .name("vigil-replay-read".into())
            .spawn_scoped(scope, move || {
                loop {
                    let mut bad = Vec::new();
                    let block = blocks.next_block(&mut |e| bad.push(e));
                    if !bad.is_empty() && tx.send(Sent::Errors(bad)).is_err() {
                        return;
                    }
                    let sent = match block {
                        Ok(Some(block)) => {
                            let mut data = reuse.try_recv().unwrap_or_default();
                            data.clear();
                            data.extend_from_slice(block.data);
                            Sent::Block {
                                first_line: block.first_line,
                                data,
                            }
                        }
                        Ok(None) => return,
                        Err(e) => Sent::Failed(e),
                    };
                    let last = matches!(sent, Sent::Failed(_));
                    // The caller gone (it panicked): stop reading.
                    if tx.send(sent).is_err() || last {
                        return;
                    }
                }
            });
        let reader = match reader {
            Ok(reader) => reader,
            Err(e) => {
                return each(Input::Failed(std::io::Error::other(format!(
                    "cannot start the reading thread: {e}"
                ))));
            }
        };
        // Ends when the reader has sent its last and dropped `tx`.
        for sent in rx {
            match sent {
                Sent::Errors(bad) => each(Input::Errors(bad)),
                Sent::Block { first_line, data } => {
                    each(Input::Block(Block {
                        first_line,
                        data: &data,
                    }));
                    let _ = give_back.send(data);
                }
                Sent::Failed(e) => each(Input::Failed(e)),
            }
        }
        if let Err(panic) = reader.join() {
            std::panic::resume_unwind(panic);
        }
    });
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

    /// What the caller saw, as text.
    fn seen(data: &[u8], fail: bool, ahead: bool) -> Vec<String> {
        let reader = Trickle {
            data: data.to_vec(),
            at: 0,
            fail,
        };
        let mut got = Vec::new();
        blocks(LineBlocks::new("in", reader, 16, 24), ahead, |input| {
            got.push(match input {
                Input::Errors(bad) => format!(
                    "errors {:?}",
                    bad.iter().map(|e| e.line).collect::<Vec<_>>()
                ),
                Input::Block(b) => {
                    format!(
                        "block {} {:?}",
                        b.first_line,
                        String::from_utf8_lossy(b.data)
                    )
                }
                Input::Failed(e) => format!("failed {e}"),
            });
        });
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
