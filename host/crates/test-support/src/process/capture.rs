//! One output stream of the child, read line by line on a thread of its own
//! (so a full pipe never blocks the process under test) into a buffer the
//! test can look at any time, each line with the moment it arrived.

use std::io::{BufRead, BufReader, Read};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// A line as it arrived, without its newline.
#[derive(Debug, Clone)]
pub(crate) struct Line {
    pub(crate) at: Instant,
    pub(crate) text: String,
}

#[derive(Debug, Default)]
pub(crate) struct Captured {
    lines: Mutex<Vec<Line>>,
    /// The stream reached its end (the process closed it, usually by exiting).
    closed: AtomicBool,
}

impl Captured {
    /// Starts the reader thread.
    pub(crate) fn read(stream: impl Read + Send + 'static) -> Arc<Self> {
        let captured = Arc::new(Self::default());
        let sink = captured.clone();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stream);
            let mut buf = Vec::new();
            loop {
                buf.clear();
                match reader.read_until(b'\n', &mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        let at = Instant::now();
                        if buf.last() == Some(&b'\n') {
                            buf.pop();
                        }
                        // Lossy: one stray byte must not end the capture.
                        let text = String::from_utf8_lossy(&buf).into_owned();
                        sink.lock().push(Line { at, text });
                    }
                }
            }
            sink.closed.store(true, Ordering::SeqCst);
        });
        captured
    }

    fn lock(&self) -> MutexGuard<'_, Vec<Line>> {
        self.lines.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn lines(&self) -> Vec<Line> {
        self.lock().clone()
    }

    /// Every line so far, joined with `\n`.
    pub(crate) fn text(&self) -> String {
        let lines = self.lock();
        let mut text = String::with_capacity(lines.iter().map(|l| l.text.len() + 1).sum());
        for (i, line) in lines.iter().enumerate() {
            if i > 0 {
                text.push('\n');
            }
            text.push_str(&line.text);
        }
        text
    }

    /// Waits (at most `timeout`) for the end of the stream, so that what the
    /// process wrote just before exiting is in the buffer.
    pub(crate) fn wait_closed(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while !self.closed.load(Ordering::SeqCst) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}
