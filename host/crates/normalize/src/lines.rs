//! JSON-lines input read in bounded blocks (`vigil replay`): memory stays
//! that of one block however large the input, and a block is handed on as
//! soon as it is read, so a pipe is processed while it is written.
//!
//! A block is whole lines: read until the buffer is full (or the input
//! ends, or, on a pipe, nothing more is ready), cut after the last newline,
//! the tail kept for the next block. A line longer than the buffer grows it,
//! up to a cap past which that line is reported and skipped.

use std::io::{ErrorKind, Read};

use super::{first_line_complete, records::split_lines};
use crate::{InputError, LineBlock, Record};

/// One block of whole lines.
#[derive(Debug)]
pub struct Block<'a> {
    /// The 1-based line number of the block's first line.
    pub first_line: usize,
    /// The lines, the last one's newline included (except at the end of
    /// input without a final newline).
    pub data: &'a [u8],
}

impl Block<'_> {
    /// The block's records, numbered as lines of the whole input: the same
    /// records [`crate::split_records`] gives for JSON lines.
    pub fn records(&self) -> Vec<Record<'_>> {
        split_lines(self.data, self.first_line)
    }
}

/// Says whether more input can be read at once without waiting (see
/// [`LineBlocks::yield_when_idle`]).
pub type ReadyCheck = Box<dyn FnMut() -> bool + Send>;

/// An input read as blocks of whole lines from a reused buffer.
pub struct LineBlocks<R> {
    file: String,
    reader: R,
    buf: Vec<u8>,
    /// Start of what the last block did not return.
    start: usize,
    /// End of what was read.
    end: usize,
    /// Line number of `buf[start]`.
    line: usize,
    block: usize,
    max_line: usize,
    eof: bool,
    /// Discarding the rest of a line over `max_line`.
    skipping: bool,
    ready: Option<ReadyCheck>,
    /// A failed read, kept until the whole lines read before it have been
    /// handed on; then it ends the input.
    failed: Option<std::io::Error>,
}

impl<R> std::fmt::Debug for LineBlocks<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LineBlocks")
            .field("file", &self.file)
            .field("block", &self.block)
            .field("max_line", &self.max_line)
            .field("line", &self.line)
            .finish_non_exhaustive()
    }
}

impl<R: Read> LineBlocks<R> {
    /// Reads `file` (its name, for errors) from `reader` in blocks of
    /// `block` bytes; a line may grow the buffer up to `max_line` bytes
    /// (at least `block`).
    pub fn new(file: &str, reader: R, block: usize, max_line: usize) -> Self {
        let block = block.max(1);
        Self {
            file: file.to_owned(),
            reader,
            buf: vec![0; block],
            start: 0,
            end: 0,
            line: 1,
            block,
            max_line: max_line.max(block),
            eof: false,
            skipping: false,
            ready: None,
            failed: None,
        }
    }

    /// Hands a block on as soon as it holds a whole line and `ready` says
    /// nothing more can be read at once (a pipe whose writer is slower than
    /// the reader: `tail -f … | vigil replay -`), instead of waiting for a
    /// full buffer.
    #[must_use]
    pub fn yield_when_idle(mut self, ready: ReadyCheck) -> Self {
        self.ready = Some(ready);
        self
    }

    /// Reads until the first line that is not blank is complete (or the
    /// input ends, or that line reaches the cap) and returns it with what
    /// was read around it, without consuming anything: what decides
    /// whether the input is JSON lines ([`is_json_lines`]).
    pub fn head(&mut self) -> std::io::Result<&[u8]> {
        loop {
            let data = &self.buf[self.start..self.end];
            if let Some(first) = data.iter().position(|b| !b.is_ascii_whitespace())
                && data[first..].contains(&b'\n')
            {
                break;
            }
            if self.eof {
                break;
            }
            if self.end == self.buf.len() {
                if self.buf.len() > self.max_line {
                    break;
                }
                self.grow();
            }
            self.read_some()?;
        }
        Ok(&self.buf[self.start..self.end])
    }

    /// The whole input (what was read so far and the rest), or `None` if
    /// it is larger than `cap` bytes: for inputs that are not JSON lines.
    pub fn read_whole(mut self, cap: usize) -> std::io::Result<Option<Vec<u8>>> {
        let mut data = self.buf.split_off(self.start);
        data.truncate(self.end - self.start);
        if data.len() > cap {
            return Ok(None);
        }
        let room = (cap - data.len()) as u64 + 1;
        (&mut self.reader).take(room).read_to_end(&mut data)?;
        Ok((data.len() <= cap).then_some(data))
    }

    /// The next block of whole lines, `None` at the end of input. A line
    /// over the cap goes to `on_error` with its line number, and is skipped.
    ///
    /// # Errors
    /// A failed read, once the whole lines read before it have been handed
    /// on (only the incomplete line it cut short is lost). Nothing follows.
    pub fn next_block(
        &mut self,
        on_error: &mut dyn FnMut(InputError),
    ) -> std::io::Result<Option<Block<'_>>> {
        let Some(len) = self.cut(on_error)? else {
            return Ok(None);
        };
        let first_line = self.line;
        self.line += bytecount(&self.buf[..len]);
        Ok(Some(Block {
            first_line,
            data: &self.buf[..len],
        }))
    }

    /// The length of the next block of whole lines (the start of the
    /// buffer, `self.line` its first line's number, not yet advanced past
    /// it), `None` at the end of input; see [`Self::next_block`].
    fn cut(&mut self, on_error: &mut dyn FnMut(InputError)) -> std::io::Result<Option<usize>> {
        self.compact();
        loop {
            self.fill();
            if self.skipping {
                match self.buf[..self.end].iter().position(|b| *b == b'\n') {
                    Some(p) => {
                        self.start = p + 1;
                        self.line += 1;
                        self.skipping = false;
                        self.compact();
                    }
                    None => {
                        self.end = 0;
                        if let Some(e) = self.failed.take() {
                            return Err(self.fail(e));
                        }
                        if self.eof {
                            return Ok(None);
                        }
                    }
                }
                continue;
            }
            let last_newline = self.buf[..self.end].iter().rposition(|b| *b == b'\n');
            // A failed read ends the input once no whole line is left: the
            // line it cut short is lost.
            if last_newline.is_none()
                && let Some(e) = self.failed.take()
            {
                return Err(self.fail(e));
            }
            match last_newline {
                Some(p) => {
                    self.start = p + 1;
                    return Ok(Some(p + 1));
                }
                None if self.eof => {
                    if self.end == 0 {
                        return Ok(None);
                    }
                    self.start = self.end;
                    return Ok(Some(self.end));
                }
                // The buffer is full and holds part of one line.
                // (Room for one byte more than the cap: a line of exactly
                // `max_line` bytes still shows its newline, or the end.)
                None if self.buf.len() <= self.max_line => self.grow(),
                None => {
                    on_error(InputError {
                        file: self.file.clone(),
                        line: self.line,
                        reason: format!(
                            "line longer than {} bytes (the limit of one line), skipped",
                            self.max_line
                        ),
                    });
                    self.skipping = true;
                    self.end = 0;
                }
            }
        }
    }

    /// [`Self::next_block`], the block handed over as the buffer itself,
    /// cut into records ([`LineBlock`]): the reader goes on in `spare` (a
    /// buffer handed back, or a new one), where only the start of the next
    /// line is copied. A thread that reads ahead for others (`vigil replay`
    /// on several threads) so copies no block, and the newlines are
    /// searched once, for the records and the line numbers alike.
    ///
    /// # Errors
    /// As [`Self::next_block`].
    pub fn next_line_block(
        &mut self,
        spare: Vec<u8>,
        on_error: &mut dyn FnMut(InputError),
    ) -> std::io::Result<Option<LineBlock>> {
        let Some(len) = self.cut(on_error)? else {
            return Ok(None);
        };
        // A buffer that a long line grew is not kept for the lines after it
        // (as `compact` shrinks the reader's own).
        let mut next = if spare.capacity() > self.buf.len() {
            Vec::new()
        } else {
            spare
        };
        // What the buffer held is read over: only its length matters (a
        // block handed back is nearly full, so little is filled here).
        next.resize(self.buf.len(), 0);
        let rest = self.end - self.start;
        next[..rest].copy_from_slice(&self.buf[self.start..self.end]);
        let mut bytes = std::mem::replace(&mut self.buf, next);
        bytes.truncate(len);
        self.start = 0;
        self.end = rest;
        let block = LineBlock::new(self.line, bytes);
        self.line += block.newlines();
        Ok(Some(block))
    }

    /// Moves what is left to the front of the buffer, and gives back what a
    /// long line grew it by once that line is gone.
    fn compact(&mut self) {
        self.buf.copy_within(self.start..self.end, 0);
        self.end -= self.start;
        self.start = 0;
        if self.buf.len() > self.block && self.end < self.block {
            self.buf.truncate(self.block);
            self.buf.shrink_to_fit();
        }
    }

    /// Ends the input at a failed read: nothing follows it.
    fn fail(&mut self, e: std::io::Error) -> std::io::Error {
        self.start = 0;
        self.end = 0;
        self.eof = true;
        e
    }

    fn grow(&mut self) {
        let len = self.buf.len().saturating_mul(2).min(self.max_line + 1);
        self.buf.resize(len, 0);
    }

    /// Reads until the buffer is full or the input ends, or, with a ready
    /// check, until it holds a whole line and nothing more is ready. A
    /// failed read is kept in `failed` (the whole lines read before it are
    /// handed on first), and nothing is read after it.
    fn fill(&mut self) {
        let mut whole_line = self.ready.is_some() && self.buf[..self.end].contains(&b'\n');
        while !self.eof && self.failed.is_none() && self.end < self.buf.len() {
            if whole_line && self.ready.as_mut().is_some_and(|ready| !ready()) {
                break;
            }
            let before = self.end;
            if let Err(e) = self.read_some() {
                self.failed = Some(e);
                break;
            }
            if self.ready.is_some() && !whole_line {
                whole_line = self.buf[before..self.end].contains(&b'\n');
            }
        }
    }

    fn read_some(&mut self) -> std::io::Result<()> {
        loop {
            match self.reader.read(&mut self.buf[self.end..]) {
                Ok(0) => {
                    self.eof = true;
                    return Ok(());
                }
                Ok(n) => {
                    self.end += n;
                    return Ok(());
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
}

/// Whether an input that starts with `head` (see [`LineBlocks::head`]) is
/// JSON lines: not a JSON array, and its first line a whole document. The
/// same decision [`crate::split_records`] makes on the whole input; `None`
/// for an input of blanks only.
pub fn is_json_lines(head: &[u8]) -> Option<bool> {
    let first = head.iter().position(|b| !b.is_ascii_whitespace())?;
    Some(head[first] != b'[' && first_line_complete(head, first))
}

/// The newlines in `data`. Lines are long (an audit event is about 1.7 kB):
/// a SIMD search from one to the next costs a tenth of a byte-by-byte
/// count, which was 5 % of an all-built-ins replay on one core.
fn bytecount(data: &[u8]) -> usize {
    memchr::memchr_iter(b'\n', data).count()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use super::*;

    /// Reads at most `n` bytes per call, like a pipe.
    struct Trickle<'a>(&'a [u8], usize);

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = self.1.min(buf.len()).min(self.0.len());
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    /// A record: its line and its text, or why it has none.
    type Line = (usize, Result<String, String>);

    /// Every record (line, text or error) and every error, reading `data`
    /// in blocks of `block` bytes with lines capped at `max_line`.
    fn read_all(
        data: &[u8],
        block: usize,
        max_line: usize,
        trickle: usize,
    ) -> (Vec<Line>, Vec<(usize, String)>) {
        let inline = read_with(data, block, max_line, trickle, false);
        let owned = read_with(data, block, max_line, trickle, true);
        assert_eq!(owned, inline, "blocks handed over as buffers");
        inline
    }

    /// [`read_all`] with `next_block`, or with `next_line_block` given a
    /// new buffer and the last block's in turn.
    fn read_with(
        data: &[u8],
        block: usize,
        max_line: usize,
        trickle: usize,
        owned: bool,
    ) -> (Vec<Line>, Vec<(usize, String)>) {
        let mut blocks = LineBlocks::new("f", Trickle(data, trickle), block, max_line);
        let (mut records, mut errors) = (Vec::new(), Vec::new());
        let mut spare = Vec::new();
        for n in 0.. {
            let mut errs = Vec::new();
            let got = if owned {
                blocks
                    .next_line_block(std::mem::take(&mut spare), &mut |e| errs.push(e))
                    .unwrap()
            } else {
                blocks
                    .next_block(&mut |e| errs.push(e))
                    .unwrap()
                    .map(|b| LineBlock::new(b.first_line, b.data.to_vec()))
            };
            errors.extend(errs.into_iter().map(|e| (e.line, e.reason)));
            let Some(block) = got else {
                break;
            };
            for r in block.records(0..block.len()) {
                records.push((r.line, r.text.map(str::to_owned)));
            }
            if n % 2 == 1 {
                spare = block.into_bytes();
            }
        }
        (records, errors)
    }

    fn whole(data: &[u8]) -> Vec<(usize, Result<String, String>)> {
        crate::split_records("f", data, &mut |e| panic!("{e}"))
            .into_iter()
            .map(|r| (r.line, r.text.map(str::to_owned)))
            .collect()
    }

    #[test]
    fn any_block_size_gives_the_records_of_the_whole_input() {
        let data: &[u8] = b"{\"a\":1}\r\n\n  \n{\"b\":\"a longer line than the block\"}\n\xff\xfe{}\n{\"c\":3}\r\n{\"d\":4}";
        let expected = whole(data);
        assert_eq!(expected.len(), 5);
        assert_eq!(expected[0], (1, Ok("{\"a\":1}".to_owned())));
        assert!(matches!(&expected[2], (5, Err(e)) if e.starts_with("not UTF-8")));
        assert_eq!(expected[4], (7, Ok("{\"d\":4}".to_owned())));
        for block in 1..data.len() + 2 {
            for trickle in [1, 3, 7, usize::MAX] {
                let (records, errors) = read_all(data, block, 1 << 20, trickle);
                assert_eq!(records, expected, "block {block}, trickle {trickle}");
                assert!(errors.is_empty());
            }
        }
    }

    #[test]
    fn a_line_over_the_cap_is_reported_with_its_number_and_skipped() {
        let long = "x".repeat(100);
        let data = format!("{{\"a\":1}}\n\n{long}\n{{\"b\":2}}\n{long}");
        for block in [4, 16, 64] {
            for trickle in [5, usize::MAX] {
                let (records, errors) = read_all(data.as_bytes(), block, 64, trickle);
                assert_eq!(
                    records,
                    vec![(1, Ok("{\"a\":1}".into())), (4, Ok("{\"b\":2}".into()))],
                    "block {block}"
                );
                let lines: Vec<usize> = errors.iter().map(|e| e.0).collect();
                assert_eq!(lines, vec![3, 5], "block {block}: {errors:?}");
                assert!(errors[0].1.contains("longer than 64 bytes"), "{errors:?}");
            }
        }
        // Exactly at the cap (the newline not counted) is not over it.
        for data in [&b"0123456789\n"[..], b"0123456789"] {
            let (records, errors) = read_all(data, 4, 10, usize::MAX);
            assert_eq!(records, vec![(1, Ok("0123456789".into()))]);
            assert!(errors.is_empty());
        }
        let (records, errors) = read_all(b"0123456789a\n{}", 4, 10, usize::MAX);
        assert_eq!(records, vec![(2, Ok("{}".into()))]);
        assert_eq!(errors.len(), 1);
    }

    /// Gives `data` a few bytes per read, then fails.
    struct FailsAfter<'a>(&'a [u8], usize);

    impl Read for FailsAfter<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            if self.0.is_empty() {
                return Err(std::io::Error::other("disk on fire"));
            }
            let n = self.1.min(buf.len()).min(self.0.len());
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    #[test]
    fn a_failed_read_loses_only_the_line_it_cut_short() {
        let data = b"{\"a\":1}\n{\"b\":2}\n{\"c\":3}\n{\"cut";
        for block in [4, 9, 16, 1 << 16] {
            for trickle in [1, 5, usize::MAX] {
                let mut blocks = LineBlocks::new("f", FailsAfter(data, trickle), block, 1 << 10);
                let mut lines = Vec::new();
                let failure = loop {
                    match blocks.next_block(&mut |e| panic!("{e}")) {
                        Ok(Some(b)) => lines.extend(b.records().into_iter().map(|r| r.line)),
                        Ok(None) => panic!("ended without the failure"),
                        Err(e) => break e,
                    }
                };
                assert_eq!(lines, [1, 2, 3], "block {block}, trickle {trickle}");
                assert_eq!(failure.to_string(), "disk on fire");
                // Nothing follows a failure.
                assert!(blocks.next_block(&mut |e| panic!("{e}")).unwrap().is_none());
            }
        }
    }

    #[test]
    fn a_failed_read_while_a_long_line_is_skipped_keeps_the_lines_after_it() {
        let long = "x".repeat(40);
        for tail in ["", "{\"cut"] {
            let data = format!("{{\"a\":1}}\n{long}\n{{\"b\":2}}\n{{\"c\":3}}\n{tail}");
            for block in [8, 16, 32] {
                for trickle in [1, 7, usize::MAX] {
                    let mut blocks =
                        LineBlocks::new("f", FailsAfter(data.as_bytes(), trickle), block, 32);
                    let (mut lines, mut skipped) = (Vec::new(), Vec::new());
                    let failure = loop {
                        match blocks.next_block(&mut |e| skipped.push(e.line)) {
                            Ok(Some(b)) => lines.extend(b.records().into_iter().map(|r| r.line)),
                            Ok(None) => panic!("ended without the failure"),
                            Err(e) => break e,
                        }
                    };
                    let at = format!("tail {tail:?}, block {block}, trickle {trickle}");
                    assert_eq!(lines, [1, 3, 4], "{at}");
                    assert_eq!(skipped, [2], "{at}");
                    assert_eq!(failure.to_string(), "disk on fire", "{at}");
                    assert!(blocks.next_block(&mut |e| panic!("{e}")).unwrap().is_none());
                }
            }
        }
    }

    #[test]
    fn the_buffer_shrinks_back_after_a_long_line() {
        let data = format!("{}\n{}\n", "y".repeat(1000), "{}\n".repeat(10));
        let mut blocks = LineBlocks::new("f", data.as_bytes(), 16, 4096);
        let mut lens = Vec::new();
        while blocks.next_block(&mut |e| panic!("{e}")).unwrap().is_some() {
            lens.push(blocks.buf.len());
        }
        assert!(lens[0] >= 1000);
        assert_eq!(*lens.last().unwrap(), 16);
    }

    #[test]
    fn handed_over_buffers_shrink_back_after_a_long_line() {
        let data = format!("{}\n{}\n", "y".repeat(1000), "{}\n".repeat(10));
        let mut blocks = LineBlocks::new("f", data.as_bytes(), 16, 4096);
        let (mut spare, mut caps) = (Vec::new(), Vec::new());
        while let Some(block) = blocks
            .next_line_block(std::mem::take(&mut spare), &mut |e| panic!("{e}"))
            .unwrap()
        {
            spare = block.into_bytes();
            caps.push(spare.capacity());
        }
        assert!(caps[0] >= 1000, "{caps:?}");
        // Neither the reader's buffer nor one handed back stays grown.
        assert!(caps[2..].iter().all(|&c| c <= 16), "{caps:?}");
        assert_eq!(blocks.buf.len(), 16);
    }

    #[test]
    fn an_idle_pipe_hands_on_the_lines_it_has() {
        // One line ready, nothing more for now: handed on without waiting
        // for the buffer to fill.
        let mut blocks = LineBlocks::new("f", Trickle(b"{\"a\":1}\n{\"b\"", 100), 1 << 20, 1 << 20)
            .yield_when_idle(Box::new(|| false));
        let b = blocks.next_block(&mut |e| panic!("{e}")).unwrap().unwrap();
        assert_eq!(b.data, b"{\"a\":1}\n");
    }

    #[test]
    fn the_head_decides_json_lines_as_split_records_does() {
        for (data, lines) in [
            (&b"\n\n{\"a\":1}\n{\"b\":2}\n"[..], Some(true)),
            (b"  [{\"a\":1},\n{\"b\":2}]", Some(false)),
            (b"{\n  \"a\": 1\n}\n", Some(false)),
            (b"{\"a\":1}", Some(true)),
            (b"not json\n", Some(true)),
            (b"  \n\n", None),
        ] {
            let mut blocks = LineBlocks::new("f", Trickle(data, 2), 4, 1 << 10);
            assert_eq!(is_json_lines(blocks.head().unwrap()), lines, "{data:?}");
            // Nothing was consumed: the whole input follows.
            assert_eq!(blocks.read_whole(1 << 10).unwrap().unwrap(), data);
        }
        let blocks = LineBlocks::new("f", &b"[1, 2, 3]"[..], 4, 16);
        assert_eq!(blocks.read_whole(8).unwrap(), None);
    }
}
