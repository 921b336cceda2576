//! The records of one input, normalised in chunks and handed on in input
//! order: on the caller's thread, or on a thread pool a few chunks ahead of
//! the caller, which meanwhile runs the plugins on the chunks before. The
//! caller is one of the pool's threads (see [`super::replay`]): when the
//! chunk it needs next is not ready, it normalises a queued chunk itself
//! rather than wait.
//!
//! Chunks are consumed strictly in order (out-of-order results wait in a
//! small map), so what the caller sees — events, errors, their order — does
//! not depend on the number of threads.

use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::mpsc;

use rayon::Yield;

use vigil_normalize::{Format, Normalised, Normaliser, Origin, Record, Segment, normalise_records};

/// Records per chunk: a millisecond or so of normalising, enough to make a
/// task's overhead negligible and few enough to keep the pool balanced.
const CHUNK: usize = 512;

/// Chunks normalised ahead of the caller, per thread: bounds the memory
/// held by parsed events that wait for the plugins.
const AHEAD_PER_THREAD: usize = 4;

/// Where an input's feeding stands between two of its blocks.
#[derive(Debug, Clone, Copy)]
pub(super) struct Progress {
    /// The format, once a record told it (`auto`).
    pub format: Format,
    /// Records already in the current chunk: chunks are cut at the same
    /// records whatever the blocks, so that the output does not depend on
    /// the block size.
    in_chunk: usize,
}

impl Progress {
    pub fn new(format: Format) -> Self {
        Self {
            format,
            in_chunk: 0,
        }
    }
}

/// Normalises `records` (the next records of an input) and gives `consume`
/// their segments in input order, with whether they end a chunk (a
/// chunk cut by the end of `records` goes on with the next call's).
pub(super) fn feed(
    file: &str,
    records: &[Record<'_>],
    progress: &mut Progress,
    origin: Origin<'_>,
    pool: Option<&rayon::ThreadPool>,
    mut consume: impl FnMut(Vec<Segment>, bool),
) {
    // `auto` input takes its format from the first record that tells it:
    // one at a time until then, so that every chunk after knows it.
    let mut normaliser = Normaliser::new(file, progress.format, origin);
    let mut start = 0;
    while normaliser.format() == Format::Auto && start < records.len() {
        let mut events = Vec::new();
        consume(
            vec![match normaliser.record(&records[start], &mut events) {
                Ok(Normalised::Events(_)) => Segment::Events(events),
                Ok(Normalised::Process(p)) => Segment::Processes(vec![*p]),
                Err(e) => Segment::Error(e),
            }],
            true,
        );
        start += 1;
    }
    let format = normaliser.format();
    progress.format = format;
    let mut chunks: Vec<(&[Record<'_>], bool)> = Vec::new();
    let mut rest = &records[start..];
    while !rest.is_empty() {
        let (chunk, after) = rest.split_at(rest.len().min(CHUNK - progress.in_chunk));
        progress.in_chunk = (progress.in_chunk + chunk.len()) % CHUNK;
        chunks.push((chunk, progress.in_chunk == 0));
        rest = after;
    }
    let Some(pool) = pool else {
        for (chunk, ends) in chunks {
            consume(normalise_records(file, chunk, format, &origin), ends);
        }
        return;
    };
    let ahead = AHEAD_PER_THREAD * pool.current_num_threads().max(1);
    let (tx, rx) = mpsc::channel();
    // In place: `consume` runs on this thread (it holds the plugins and the
    // output), the chunk tasks on the pool.
    // FIFO: the caller, when it helps, takes the oldest chunk (the one it
    // waits for, unless another thread took it), as the other threads do.
    pool.in_place_scope_fifo(|scope| {
        let mut spawned = 0;
        let mut done: BTreeMap<usize, std::thread::Result<Vec<Segment>>> = BTreeMap::new();
        for want in 0..chunks.len() {
            while spawned < chunks.len() && spawned < want + ahead {
                let (tx, chunk, idx) = (tx.clone(), chunks[spawned].0, spawned);
                scope.spawn_fifo(move |_| {
                    // A panic is sent too: the receiver would otherwise wait
                    // for this chunk forever.
                    let result = catch_unwind(AssertUnwindSafe(|| {
                        normalise_records(file, chunk, format, &origin)
                    }));
                    let _ = tx.send((idx, result));
                });
                spawned += 1;
            }
            let segments = loop {
                if let Some(r) = done.remove(&want) {
                    break r;
                }
                let received = match rx.try_recv() {
                    Err(mpsc::TryRecvError::Empty) => match pool.yield_now() {
                        // A chunk normalised here: perhaps the one wanted.
                        Some(Yield::Executed) => continue,
                        // Every chunk left is being normalised by another
                        // thread (or this thread is not the pool's): wait.
                        Some(Yield::Idle) | None => rx.recv().map_err(|_| ()),
                    },
                    other => other.map_err(|_| ()),
                };
                match received {
                    Ok((idx, r)) => {
                        done.insert(idx, r);
                    }
                    // Unreachable while `tx` lives in this scope.
                    Err(()) => return,
                }
            };
            match segments {
                Ok(s) => consume(s, chunks[want].1),
                Err(panic) => resume_unwind(panic),
            }
        }
    });
}
