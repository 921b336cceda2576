//! Input split into records, and records normalised: one after the other
//! ([`for_each_record`]), or a slice at a time ([`normalise_records`]) so
//! that a caller can normalise slices on several threads and still hand on
//! events and errors in input order (`vigil replay --threads`, the audit
//! log source).
//!
//! Splitting is cheap (one UTF-8 check and a `memchr` per line); the cost
//! is in normalising, which is what goes parallel.

use serde::de::IgnoredAny;
use serde_json::value::RawValue;

use super::{
    Format, InputError, Normalised, Origin, first_line_complete, line_of, normalise_record, sniff,
};
use vigil_core::model::{Event, ProcessEvent};

/// One record of an input, not yet normalised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record<'a> {
    /// The 1-based line where the record starts.
    pub line: usize,
    /// Its text, or why it has none (a line that is not UTF-8).
    pub text: Result<&'a str, String>,
}

/// What a run of records normalised to, in input order.
#[derive(Debug)]
pub enum Segment {
    /// The events of consecutive good records.
    Events(Vec<Event>),
    /// The process events of consecutive good records (Vigil JSON only).
    Processes(Vec<ProcessEvent>),
    /// One bad record.
    Error(InputError),
}

/// Splits `data` into records (JSON lines, a JSON array, or concatenated
/// multi-line documents). What makes the whole input unreadable (an invalid
/// array, a syntax error that a document stream cannot resynchronise after)
/// goes to `on_error`, before the records read up to it are returned.
pub fn split_records<'a>(
    file: &str,
    data: &'a [u8],
    on_error: &mut impl FnMut(InputError),
) -> Vec<Record<'a>> {
    let mut err = |line: usize, reason: String| {
        on_error(InputError {
            file: file.to_owned(),
            line,
            reason,
        })
    };
    let Some(first) = data.iter().position(|b| !b.is_ascii_whitespace()) else {
        return Vec::new();
    };
    let whole_document = data[first] == b'[' || !first_line_complete(data, first);
    if whole_document {
        let text = match std::str::from_utf8(data) {
            Ok(t) => t,
            Err(e) => {
                err(line_of(data, e.valid_up_to()), format!("not UTF-8: {e}"));
                return Vec::new();
            }
        };
        let docs: Vec<&RawValue> = if data[first] == b'[' {
            match serde_json::from_str::<Vec<&RawValue>>(text) {
                Ok(v) => v,
                Err(e) => {
                    err(e.line(), format!("invalid JSON array: {e}"));
                    return Vec::new();
                }
            }
        } else {
            let mut v = Vec::new();
            for item in serde_json::Deserializer::from_str(text).into_iter::<&RawValue>() {
                match item {
                    Ok(d) => v.push(d),
                    Err(e) => {
                        // A stream cannot resynchronise after a syntax error.
                        err(
                            e.line(),
                            format!("invalid JSON, the rest of the file is skipped: {e}"),
                        );
                        break;
                    }
                }
            }
            v
        };
        // Documents come in order: count the newlines once, not per document.
        let (mut offset, mut line) = (0, 1);
        return docs
            .into_iter()
            .map(|doc| {
                let at = doc.get().as_ptr() as usize - text.as_ptr() as usize;
                line += line_of(&data[offset..at], at - offset) - 1;
                offset = at;
                Record {
                    line,
                    text: Ok(doc.get()),
                }
            })
            .collect();
    }

    split_lines(data, 1)
}

/// Splits JSON lines into records, numbering them from `first_line`: blank
/// lines are skipped, a line that is not UTF-8 is a record without text.
pub(crate) fn split_lines(data: &[u8], first_line: usize) -> Vec<Record<'_>> {
    let whole = std::str::from_utf8(data).ok();
    line_spans(data, first_line, whole.is_some())
        .0
        .iter()
        .map(|span| span.record(data, whole))
        .collect()
}

/// Where one record of a block of lines is: its line number and its bytes
/// (a `\r` before the newline left out), found once by [`line_spans`] and
/// turned into a [`Record`] by [`Span::record`].
#[derive(Debug, Clone, Copy)]
struct Span {
    line: usize,
    start: usize,
    end: usize,
}

impl Span {
    /// The record: `whole` is `data` as text when all of it is UTF-8.
    fn record<'a>(&self, data: &'a [u8], whole: Option<&'a str>) -> Record<'a> {
        let text = match whole {
            // Cut at an ASCII `\n`, a line of valid UTF-8 is valid UTF-8:
            // sliced from the checked text, not checked again.
            Some(text) => Ok(&text[self.start..self.end]),
            None => std::str::from_utf8(&data[self.start..self.end])
                .map_err(|e| format!("not UTF-8: {e}")),
        };
        Record {
            line: self.line,
            text,
        }
    }
}

/// The records of `data` (`valid`: all of it is UTF-8), numbered from
/// `first_line`, and the number of newlines in `data`. Lines are cut with
/// the `memchr` crate, which picks the widest vector unit at run time
/// (`str::split` searched 8 bytes at a time: 2.3 % of a replay's
/// instructions). When the whole block is not UTF-8, each line is checked
/// alone so one bad line does not cost the others.
fn line_spans(data: &[u8], first_line: usize, valid: bool) -> (Vec<Span>, usize) {
    let mut start = 0;
    let mut spans = Vec::new();
    let mut lines = 0;
    for (idx, mut line) in lines_of(data).enumerate() {
        lines = idx + 1;
        let at = start;
        start += line.len() + 1;
        // A line that is not UTF-8 has no text: it is reported whole
        // (`Span::record` says why).
        if valid || std::str::from_utf8(line).is_ok() {
            let text = line.strip_suffix(b"\r").unwrap_or(line);
            if text.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            line = text;
        }
        spans.push(Span {
            line: first_line + idx,
            start: at,
            end: at + line.len(),
        });
    }
    // `lines_of` gives one line more than there are newlines (the one after
    // the last, possibly empty).
    (spans, lines - 1)
}

/// A block of JSON lines that owns its bytes and was cut into records when
/// it was made: what `vigil replay`'s reading thread hands on, so that the
/// UTF-8 check and the search for newlines (a pass over every byte) are
/// not made by the thread that runs the plugins. The records are the ones
/// [`crate::Block::records`] gives for the same bytes.
#[derive(Debug)]
pub struct LineBlock {
    /// The bytes, as text when all of them are UTF-8.
    data: Result<String, Vec<u8>>,
    spans: Vec<Span>,
    newlines: usize,
}

impl LineBlock {
    /// Cuts `data`, whose first line is line `first_line` of its input.
    pub fn new(first_line: usize, data: Vec<u8>) -> Self {
        let data = String::from_utf8(data).map_err(std::string::FromUtf8Error::into_bytes);
        let (spans, newlines) = match &data {
            Ok(text) => line_spans(text.as_bytes(), first_line, true),
            Err(bytes) => line_spans(bytes, first_line, false),
        };
        Self {
            data,
            spans,
            newlines,
        }
    }

    /// The newlines in the block: the line number after it is its first
    /// plus these.
    pub fn newlines(&self) -> usize {
        self.newlines
    }

    /// How many records the block holds.
    pub fn len(&self) -> usize {
        self.spans.len()
    }

    /// Whether it holds none (blank lines only).
    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// Records `range` of the block (`0..self.len()`: all of them).
    ///
    /// # Panics
    /// If `range` is not within `0..self.len()`.
    pub fn records(&self, range: std::ops::Range<usize>) -> Vec<Record<'_>> {
        let (bytes, whole) = match &self.data {
            Ok(text) => (text.as_bytes(), Some(text.as_str())),
            Err(bytes) => (bytes.as_slice(), None),
        };
        self.spans[range]
            .iter()
            .map(|span| span.record(bytes, whole))
            .collect()
    }

    /// The bytes back, for the next block to be read into.
    pub fn into_bytes(self) -> Vec<u8> {
        match self.data {
            Ok(text) => text.into_bytes(),
            Err(bytes) => bytes,
        }
    }
}

/// The lines of `data`, as `data.split(|b| *b == b'\n')` gives them (the
/// last one, after the last newline, possibly empty).
fn lines_of(data: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut start = 0;
    memchr::memchr_iter(b'\n', data)
        .map(Some)
        .chain(std::iter::once(None))
        .map(move |end| {
            let end = end.unwrap_or(data.len());
            let line = &data[start..end];
            start = end + 1;
            line
        })
}

/// Normalises records one at a time, deciding the format of `auto` input
/// from the first record that tells it (then kept for the rest of the input).
#[derive(Debug)]
pub struct Normaliser<'a> {
    file: &'a str,
    format: Format,
    origin: Origin<'a>,
}

impl<'a> Normaliser<'a> {
    /// A normaliser of `file`'s records.
    pub fn new(file: &'a str, format: Format, origin: Origin<'a>) -> Self {
        Self {
            file,
            format,
            origin,
        }
    }

    /// The format, once known ([`Format::Auto`] until a record told it).
    pub fn format(&self) -> Format {
        self.format
    }

    /// Normalises one record, appending its events to `out` or returning
    /// its process event; a bad record adds nothing (an `EventList` failing
    /// halfway leaves no half).
    pub fn record(
        &mut self,
        rec: &Record<'_>,
        out: &mut Vec<Event>,
    ) -> Result<Normalised, InputError> {
        let err = |reason: String| InputError {
            file: self.file.to_owned(),
            line: rec.line,
            reason,
        };
        let doc = rec.text.as_ref().map_err(|e| err(e.clone()))?;
        if self.format == Format::Auto {
            match sniff(doc) {
                Some(f) => self.format = f,
                None => {
                    return Err(err(match serde_json::from_str::<IgnoredAny>(doc) {
                        Err(e) => format!("invalid JSON: {e}"),
                        Ok(_) => "cannot tell the format of this record (not a Vigil event, a Kubernetes audit event or a docker inspect object); pass --format".into(),
                    }));
                }
            }
        }
        let before = out.len();
        normalise_record(doc, self.format, &self.origin, out).map_err(|e| {
            out.truncate(before);
            let what = match self.format {
                Format::K8sAudit => "Kubernetes audit event",
                Format::DockerInspect => "docker inspect object",
                Format::Vigil => "Vigil event",
                Format::Auto => "record",
            };
            err(format!("invalid {what}: {e}"))
        })
    }
}

/// Splits `data` into records and normalises each. `on_events` receives
/// the events of each good record (and may drain the vector); `on_error`
/// each bad one, and each process event (this reader takes events only:
/// [`normalise_records`] hands process events on too). Returns the number
/// of records read.
pub fn for_each_record(
    file: &str,
    data: &[u8],
    format: Format,
    origin: &Origin<'_>,
    mut on_events: impl FnMut(&mut Vec<Event>),
    mut on_error: impl FnMut(InputError),
) -> usize {
    let records = split_records(file, data, &mut on_error);
    let mut normaliser = Normaliser::new(file, format, *origin);
    let mut scratch = Vec::new();
    for rec in &records {
        scratch.clear();
        match normaliser.record(rec, &mut scratch) {
            Ok(Normalised::Events(_)) => on_events(&mut scratch),
            Ok(Normalised::Process(_)) => on_error(InputError {
                file: file.to_owned(),
                line: rec.line,
                reason: "a process event, which this reader does not take (`vigil replay` does)"
                    .into(),
            }),
            Err(e) => on_error(e),
        }
    }
    records.len()
}

/// Normalises a slice of records in the given format: the same events and
/// errors, in the same order, as [`for_each_record`] gives for them, which
/// is what lets slices be normalised on different threads. `format` should
/// be known (not `Auto`): each slice would decide it on its own.
pub fn normalise_records(
    file: &str,
    records: &[Record<'_>],
    format: Format,
    origin: &Origin<'_>,
) -> Vec<Segment> {
    let mut normaliser = Normaliser::new(file, format, *origin);
    let mut segments = Vec::new();
    // Room for an event per record, reserved once: grown one doubling at a
    // time, the vector moved every event it held (about half a kilobyte
    // each) at each doubling. Only the first run gets it: reserving for the
    // records left after every bad record would let input that alternates
    // good and bad lines hold a chunk's worth of room per good line.
    let mut events = Vec::with_capacity(records.len());
    let mut processes = Vec::new();
    for rec in records {
        match normaliser.record(rec, &mut events) {
            // Runs of each kind stay in input order: a plugin sees a
            // container's start before the programs run in it.
            // (At most one of `events` and `processes` holds anything.)
            Ok(Normalised::Events(_)) => {
                if !processes.is_empty() {
                    segments.push(Segment::Processes(std::mem::take(&mut processes)));
                }
            }
            Ok(Normalised::Process(p)) => {
                if !events.is_empty() {
                    segments.push(Segment::Events(std::mem::take(&mut events)));
                }
                processes.push(*p);
            }
            Err(e) => {
                if !events.is_empty() {
                    segments.push(Segment::Events(std::mem::take(&mut events)));
                }
                if !processes.is_empty() {
                    segments.push(Segment::Processes(std::mem::take(&mut processes)));
                }
                segments.push(Segment::Error(e));
            }
        }
    }
    if !events.is_empty() {
        segments.push(Segment::Events(events));
    }
    if !processes.is_empty() {
        segments.push(Segment::Processes(processes));
    }
    segments
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The record of line `line_no` as `split_lines` made it before it was
    /// cut with `memchr`: none if blank (a `\r` before its newline
    /// dropped), no text if not UTF-8.
    fn line_record(line_no: usize, line: Result<&str, std::str::Utf8Error>) -> Option<Record<'_>> {
        let text = match line.map(|l| l.strip_suffix('\r').unwrap_or(l)) {
            Ok(l) if l.bytes().all(|b| b.is_ascii_whitespace()) => return None,
            Ok(l) => Ok(l),
            Err(e) => Err(format!("not UTF-8: {e}")),
        };
        Some(Record {
            line: line_no,
            text,
        })
    }

    /// `split_lines` as it was, cutting with `str::split`: the reference.
    fn split_lines_by_str(data: &[u8], first_line: usize) -> Vec<Record<'_>> {
        let lines: Box<dyn Iterator<Item = Result<&str, std::str::Utf8Error>>> =
            match std::str::from_utf8(data) {
                Ok(text) => Box::new(text.split('\n').map(Ok)),
                Err(_) => Box::new(data.split(|b| *b == b'\n').map(std::str::from_utf8)),
            };
        lines
            .enumerate()
            .filter_map(|(idx, line)| line_record(first_line + idx, line))
            .collect()
    }

    #[test]
    fn lines_are_cut_as_str_split_cut_them_in_place_and_in_owned_blocks() {
        use vigil_test_support::fuzz::Rng;
        let fixed: [&[u8]; 9] = [
            b"",
            b"\n",
            b"\n\n",
            b"a",
            b"a\n",
            b"a\r\nb\r\n\r\n  \n{}",
            "é\nß\n\u{1F600}".as_bytes(),
            b"ok\n\xff\xfe\nok\n",
            b"\xe2\x82\nx",
        ];
        for data in fixed {
            let expected = split_lines_by_str(data, 7);
            assert_eq!(split_lines(data, 7), expected, "{data:?}");
            let block = LineBlock::new(7, data.to_vec());
            assert_eq!(block.records(0..block.len()), expected, "{data:?}");
        }
        // Random inputs of newlines, blanks, ASCII, multi-byte characters
        // and stray bytes, long enough that the vector search runs.
        let pieces: [&[u8]; 9] = [
            b"\n",
            b"\r",
            b" ",
            b"{\"a\":1}",
            "ü".as_bytes(),
            "\u{1F600}".as_bytes(),
            b"\xff",
            b"\xc3",
            b"0123456789abcdefghijklmnopqrstuvwxyz",
        ];
        let mut rng = Rng(0x5917_11e5);
        for _ in 0..2_000 {
            let mut data = Vec::new();
            for _ in 0..rng.below(80) {
                data.extend_from_slice(pieces[rng.below(pieces.len())]);
            }
            let expected = split_lines_by_str(&data, 1);
            assert_eq!(split_lines(&data, 1), expected, "{data:?}");
            let block = LineBlock::new(1, data.clone());
            assert_eq!(block.len(), expected.len(), "{data:?}");
            let newlines = data.iter().filter(|b| **b == b'\n').count();
            assert_eq!(block.newlines(), newlines, "{data:?}");
            assert_eq!(block.records(0..block.len()), expected, "{data:?}");
            // Any range: the records at those places.
            let from = rng.below(expected.len() + 1);
            let to = from + rng.below(expected.len() - from + 1);
            assert_eq!(block.records(from..to), expected[from..to], "{data:?}");
            assert_eq!(block.into_bytes(), data, "the bytes come back as they were");
        }
    }
}
