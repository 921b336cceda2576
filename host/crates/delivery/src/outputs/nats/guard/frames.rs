//! The server→client half of the NATS protocol, read one operation at a
//! time under hard caps: a control line ends within [`Limits::line`] bytes
//! (`INFO` within [`Limits::info_line`]), a `MSG`/`HMSG` declares at most
//! [`Limits::payload`] bytes, and an operation whose first byte has
//! arrived is complete within [`Limits::op_deadline`]. Anything else —
//! an unknown operation, a bad size, a payload not followed by `\r\n` — is
//! a [`Violation`]. What is buffered is therefore at most one operation
//! (line plus payload) and one read chunk beyond it, whatever the server
//! sends.

use std::time::Duration;

use serde_json::{Map, Value};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::time::Instant;

/// Bytes asked of the socket per read.
const CHUNK: usize = 8 * 1024;

/// The caps of one connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Limits {
    /// Longest control line other than `INFO`, `\r\n` excluded.
    pub(crate) line: usize,
    /// Longest `INFO` line (it carries the server's JSON description).
    pub(crate) info_line: usize,
    /// Largest payload a `MSG`/`HMSG` may declare (headers included).
    pub(crate) payload: usize,
    /// Time for an operation to arrive whole once its first byte has.
    pub(crate) op_deadline: Duration,
}

/// How the server broke the protocol; the connection is closed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Violation {
    /// No `\r\n` within the cap of the operation's control line.
    #[error("{op} control line longer than {cap} bytes (no \\r\\n within the cap)")]
    LineTooLong { op: String, cap: usize },
    /// A `MSG`/`HMSG` announcing more than the payload cap.
    #[error(
        "{op} declaring a payload of {size} bytes, over the cap of {cap} bytes (max_read_payload_bytes)"
    )]
    PayloadTooLarge { op: String, size: u64, cap: usize },
    /// A started operation that did not arrive whole in time.
    #[error("partial {op} ({got} bytes buffered) and then nothing for {} ms", .deadline.as_millis())]
    Stalled {
        op: String,
        got: usize,
        deadline: Duration,
    },
    /// An operation that does not parse.
    #[error("malformed {op}: {why}")]
    Malformed { op: String, why: &'static str },
    /// An operation a server never sends.
    #[error("unknown operation {op:?}")]
    Unknown { op: String },
}

/// Why no operation was read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ReadError {
    /// The server broke the protocol (counted).
    #[error(transparent)]
    Violation(#[from] Violation),
    /// The connection closed inside an operation.
    #[error("connection closed inside a {op}")]
    Truncated { op: String },
    /// The socket failed.
    #[error("read failed")]
    Io(#[source] std::io::Error),
}

/// One whole operation as received.
#[derive(Debug, PartialEq)]
pub(crate) enum Frame {
    /// `INFO`, parsed (the relay rewrites it).
    Info(Map<String, Value>),
    /// Any other operation, its bytes as they came (control line, `\r\n`,
    /// and for `MSG`/`HMSG` the payload and its `\r\n`).
    Raw(Vec<u8>),
}

/// Reads [`Frame`]s from `R` within [`Limits`].
pub(crate) struct FrameReader<R> {
    inner: R,
    /// Received and not yet returned.
    buf: Vec<u8>,
    limits: Limits,
}

impl<R: AsyncRead + Unpin> FrameReader<R> {
    pub(crate) fn new(inner: R, buf: Vec<u8>, limits: Limits) -> Self {
        Self { inner, buf, limits }
    }

    /// The reader and the bytes received beyond the last frame.
    pub(crate) fn into_parts(self) -> (R, Vec<u8>) {
        (self.inner, self.buf)
    }

    /// The next operation, or `None` at a clean end of the stream. The
    /// wait for an operation's first byte is unbounded (an idle connection
    /// is the client's to detect with its pings) unless `deadline` is
    /// given; the operation itself then has [`Limits::op_deadline`].
    pub(crate) async fn next(
        &mut self,
        deadline: Option<Instant>,
    ) -> Result<Option<Frame>, ReadError> {
        if self.buf.is_empty() {
            let n = match deadline {
                Some(d) => tokio::time::timeout_at(d, self.fill()).await.map_err(|_| {
                    Violation::Stalled {
                        op: "INFO".into(),
                        got: 0,
                        deadline: self.limits.op_deadline,
                    }
                })?,
                None => self.fill().await,
            }?;
            if n == 0 {
                return Ok(None);
            }
        }
        let until = deadline.unwrap_or_else(|| Instant::now() + self.limits.op_deadline);
        let line_end = self.line_end(until).await?;
        let line = &self.buf[..line_end];
        let op = op_name(line);
        let payload = match op.as_str() {
            "INFO" => {
                let json = line.get(4..).unwrap_or_default();
                let info = serde_json::from_slice::<Map<String, Value>>(json).map_err(|_| {
                    Violation::Malformed {
                        op: op.clone(),
                        why: "not a JSON object",
                    }
                })?;
                self.buf.drain(..line_end + 2);
                return Ok(Some(Frame::Info(info)));
            }
            "MSG" | "HMSG" => payload_size(&op, line, self.limits.payload)?,
            "PING" | "PONG" | "+OK" => {
                if line.len() > op.len() && !line[op.len()..].iter().all(u8::is_ascii_whitespace) {
                    return Err(Violation::Malformed {
                        op,
                        why: "arguments where none belong",
                    }
                    .into());
                }
                0
            }
            "-ERR" => 0,
            _ => return Err(Violation::Unknown { op }.into()),
        };
        let mut total = line_end + 2;
        if op == "MSG" || op == "HMSG" {
            total += payload + 2;
            self.fill_to(total, until, &op).await?;
            if &self.buf[total - 2..total] != b"\r\n" {
                return Err(Violation::Malformed {
                    op,
                    why: "payload not followed by \\r\\n",
                }
                .into());
            }
        }
        let frame: Vec<u8> = self.buf.drain(..total).collect();
        Ok(Some(Frame::Raw(frame)))
    }

    /// Reads one chunk into the buffer; the number of bytes read.
    async fn fill(&mut self) -> Result<usize, ReadError> {
        let start = self.buf.len();
        self.buf.resize(start + CHUNK, 0);
        let r = self.inner.read(&mut self.buf[start..]).await;
        let n = *r.as_ref().unwrap_or(&0);
        self.buf.truncate(start + n);
        r.map_err(ReadError::Io)
    }

    /// Where the control line at the start of the buffer ends (the index
    /// of its `\r`), reading more as needed within the line cap.
    async fn line_end(&mut self, until: Instant) -> Result<usize, ReadError> {
        let mut scanned: usize = 0;
        loop {
            let cap = if op_name(&self.buf) == "INFO" {
                self.limits.info_line
            } else {
                self.limits.line
            };
            let window = &self.buf[..self.buf.len().min(cap + 2)];
            // Resumes one byte early: a `\r` may have ended the last read.
            let from = scanned.saturating_sub(1).min(window.len());
            if let Some(i) = window[from..].windows(2).position(|w| w == b"\r\n") {
                return Ok(from + i);
            }
            scanned = window.len();
            if self.buf.len() >= cap + 2 {
                return Err(Violation::LineTooLong {
                    op: op_name(&self.buf),
                    cap,
                }
                .into());
            }
            self.read_before(until, "control line").await?;
        }
    }

    /// Reads until the buffer holds `total` bytes.
    async fn fill_to(&mut self, total: usize, until: Instant, op: &str) -> Result<(), ReadError> {
        while self.buf.len() < total {
            self.read_before(until, op).await?;
        }
        Ok(())
    }

    async fn read_before(&mut self, until: Instant, what: &str) -> Result<(), ReadError> {
        let op = match what {
            "control line" => op_name(&self.buf),
            op => op.to_owned(),
        };
        let got = self.buf.len();
        match tokio::time::timeout_at(until, self.fill()).await {
            Err(_) => Err(Violation::Stalled {
                op,
                got,
                deadline: self.limits.op_deadline,
            }
            .into()),
            Ok(Ok(0)) => Err(ReadError::Truncated { op }),
            Ok(r) => r.map(|_| ()),
        }
    }
}

/// The operation's name: its first word, upper case, printable ASCII only
/// and at most 8 characters (it goes into logs).
pub(crate) fn op_name(line: &[u8]) -> String {
    line.iter()
        .take_while(|b| !b.is_ascii_whitespace())
        .take(8)
        .map(|b| {
            if b.is_ascii_graphic() {
                char::from(b.to_ascii_uppercase())
            } else {
                '?'
            }
        })
        .collect()
}

/// The payload size a `MSG` (`MSG subject sid [reply] size`) or `HMSG`
/// (`HMSG subject sid [reply] header_size total_size`) line declares,
/// checked against the cap.
fn payload_size(op: &str, line: &[u8], cap: usize) -> Result<usize, Violation> {
    let malformed = |why| Violation::Malformed {
        op: op.to_owned(),
        why,
    };
    let text = std::str::from_utf8(line).map_err(|_| malformed("not UTF-8"))?;
    let args: Vec<&str> = text.split_ascii_whitespace().skip(1).collect();
    let size = |s: &str| {
        s.parse::<u64>()
            .map_err(|_| malformed("a size that is not a number"))
    };
    let total = match (op, args.len()) {
        ("MSG", 3 | 4) => size(args[args.len() - 1])?,
        ("HMSG", 4 | 5) => {
            let headers = size(args[args.len() - 2])?;
            let total = size(args[args.len() - 1])?;
            if headers > total {
                return Err(malformed("headers larger than the whole message"));
            }
            total
        }
        _ => return Err(malformed("wrong number of arguments")),
    };
    match usize::try_from(total) {
        Ok(n) if n <= cap => Ok(n),
        _ => Err(Violation::PayloadTooLarge {
            op: op.to_owned(),
            size: total,
            cap,
        }),
    }
}
