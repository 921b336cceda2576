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

use std::collections::{BTreeMap, VecDeque};
use std::ops::Range;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::{Arc, mpsc};

use rayon::Yield;

use vigil_normalize::{
    Format, LineBlock, Normalised, Normaliser, Origin, Record, Segment, normalise_records,
};

use super::read_ahead::{Ahead, Arrived, Next};

/// Records per chunk: a millisecond or so of normalising, enough to make a
/// task's overhead negligible and few enough to keep the pool balanced.
const CHUNK: usize = 512;

/// Chunks normalised ahead of the caller, per thread: bounds the memory
/// held by parsed events that wait for the plugins.
const AHEAD_PER_THREAD: usize = 4;

/// Blocks [`feed_ahead`] holds at most: the one whose last chunks the
/// plugins run on, and the next, normalised meanwhile.
const HELD_BLOCKS: usize = 2;

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

    /// Cuts the records `range` (of a block, or of a whole input) into
    /// chunks, with whether each ends a chunk (the last one may go on with
    /// the next records).
    fn cut(&mut self, range: Range<usize>) -> Vec<(Range<usize>, bool)> {
        let mut chunks = Vec::new();
        let mut start = range.start;
        while start < range.end {
            let end = range.end.min(start + CHUNK - self.in_chunk);
            self.in_chunk = (self.in_chunk + end - start) % CHUNK;
            chunks.push((start..end, self.in_chunk == 0));
            start = end;
        }
        chunks
    }
}

/// `auto` input takes its format from the first record that tells it: the
/// records are normalised one at a time until then, so that every chunk
/// after knows it. Returns how many of `records` that took (0 once the
/// format is known).
fn settle_format(
    file: &str,
    records: &[Record<'_>],
    progress: &mut Progress,
    origin: Origin<'_>,
    consume: &mut impl FnMut(Vec<Segment>, bool),
) -> usize {
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
    progress.format = normaliser.format();
    start
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
    let start = settle_format(file, records, progress, origin, &mut consume);
    let format = progress.format;
    let chunks: Vec<(&[Record<'_>], bool)> = progress
        .cut(start..records.len())
        .into_iter()
        .map(|(range, ends)| (&records[range], ends))
        .collect();
    let Some(pool) = pool else {
        for (chunk, ends) in chunks {
            consume(normalise_records(file, chunk, format, &origin), ends);
        }
        return;
    };
    let ahead = AHEAD_PER_THREAD * pool.current_num_threads().max(1);
    let (tx, mut results) = Results::channel();
    // In place: `consume` runs on this thread (it holds the plugins and the
    // output), the chunk tasks on the pool.
    // FIFO: the caller, when it helps, takes the oldest chunk (the one it
    // waits for, unless another thread took it), as the other threads do.
    pool.in_place_scope_fifo(|scope| {
        let mut spawned = 0;
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
            consume(results.take(want, pool), chunks[want].1);
        }
    });
}

/// A chunk's segments, or the panic that normalising it raised.
type ChunkResult = (usize, std::thread::Result<Vec<Segment>>);

/// The chunks' results as the pool sends them, taken in input order.
struct Results {
    rx: mpsc::Receiver<ChunkResult>,
    /// Results that came before the one taken.
    done: BTreeMap<usize, std::thread::Result<Vec<Segment>>>,
}

impl Results {
    fn channel() -> (mpsc::Sender<ChunkResult>, Self) {
        let (tx, rx) = mpsc::channel();
        let done = BTreeMap::new();
        (tx, Self { rx, done })
    }

    /// The segments of chunk `want`. While it is not ready, this thread
    /// normalises queued chunks itself (perhaps that one) rather than wait;
    /// a panic in normalising it is raised here.
    fn take(&mut self, want: usize, pool: &rayon::ThreadPool) -> Vec<Segment> {
        loop {
            if let Some(r) = self.done.remove(&want) {
                return r.unwrap_or_else(|panic| resume_unwind(panic));
            }
            let received = match self.rx.try_recv() {
                Err(mpsc::TryRecvError::Empty) => match pool.yield_now() {
                    // A chunk normalised here: perhaps the one wanted.
                    Some(Yield::Executed) => continue,
                    // Every chunk left is being normalised by another
                    // thread (or this thread is not the pool's): wait.
                    Some(Yield::Idle) | None => self.rx.recv().ok(),
                },
                other => other.ok(),
            };
            // The sender lives in the caller's scope until every chunk it
            // spawned was taken: the channel cannot close before.
            let (idx, r) = received.expect("a chunk's sender outlives its result");
            self.done.insert(idx, r);
        }
    }
}

/// What [`feed_ahead`] hands on next, in input order.
enum Step {
    /// The segments of chunk `idx` (normalised on the pool), and whether
    /// it ends a chunk.
    Chunk(usize, bool),
    /// Segments made already (lines over the cap, a failed read), and
    /// whether they end a chunk.
    Ready(Vec<Segment>, bool),
    /// A block whose format is still to be told (`auto`): its records are
    /// normalised one at a time until one tells it, after everything
    /// before was handed on.
    Settle(LineBlock),
    /// A block's records were all handed on.
    BlockEnd(Arc<LineBlock>),
}

/// What [`feed_ahead`] hands its caller, in input order.
pub(super) enum Fed {
    /// Segments, and whether they end a chunk.
    Segments(Vec<Segment>, bool),
    /// A block of this many records was handed on whole.
    BlockDone(usize),
}

/// Normalises JSON lines read ahead ([`Ahead`]) on `pool` and hands their
/// segments to `sink` in input order (a failed read as `failed` says it), like [`feed`] for each block in turn
/// — the same chunks, the same segments — but without stopping at the end
/// of a block: the next block's chunks are normalised while the plugins
/// run on the last ones of the block before, so that no thread waits at
/// each block (a block of 8 MiB is about ten chunks).
pub(super) fn feed_ahead(
    file: &str,
    input: &Ahead,
    progress: &mut Progress,
    origin: Origin<'_>,
    pool: &rayon::ThreadPool,
    failed: &dyn Fn(std::io::Error) -> Vec<Segment>,
    sink: &mut impl FnMut(Fed),
) {
    let ahead = AHEAD_PER_THREAD * pool.current_num_threads().max(1);
    let (tx, mut results) = Results::channel();
    pool.in_place_scope_fifo(|scope| {
        let mut steps: VecDeque<Step> = VecDeque::new();
        // Chunks spawned and taken so far; their difference is bounded by
        // `ahead` before more input is taken in.
        let (mut spawned, mut taken) = (0usize, 0usize);
        // Blocks taken in and not yet handed on whole: at most the one the
        // plugins run on and the next (besides those the reader holds),
        // however few records a block holds (long lines).
        let mut held = 0usize;
        // A block waits for its format (`Step::Settle`): nothing more is
        // taken in until it is told.
        let mut settling = false;
        let mut open = true;
        // Queues the chunks of `block` from its record `start` on.
        let spawn = |block: LineBlock,
                     start: usize,
                     steps: &mut VecDeque<Step>,
                     progress: &mut Progress,
                     spawned: &mut usize| {
            let block = Arc::new(block);
            let format = progress.format;
            for (range, ends) in progress.cut(start..block.len()) {
                let (tx, block, idx) = (tx.clone(), Arc::clone(&block), *spawned);
                scope.spawn_fifo(move |_| {
                    // A panic is sent too: the receiver would otherwise
                    // wait for this chunk forever.
                    let result = catch_unwind(AssertUnwindSafe(|| {
                        normalise_records(file, &block.records(range), format, &origin)
                    }));
                    // Before the result: once the block's last result is
                    // taken, its buffer can go back to the reader.
                    drop(block);
                    let _ = tx.send((idx, result));
                });
                steps.push_back(Step::Chunk(idx, ends));
                *spawned += 1;
            }
            steps.push_back(Step::BlockEnd(block));
        };
        loop {
            // Take in what was read while the window has room and no block
            // waits for its format; wait for it only when nothing else is
            // left to do.
            while open && spawned - taken < ahead && held < HELD_BLOCKS && !settling {
                match input.next(steps.is_empty()) {
                    Next::Ended => open = false,
                    Next::NotYet => break,
                    Next::Read(Arrived::Errors(bad)) => steps.push_back(Step::Ready(
                        bad.into_iter().map(Segment::Error).collect(),
                        false,
                    )),
                    Next::Read(Arrived::Failed(e)) => {
                        steps.push_back(Step::Ready(failed(e), true));
                    }
                    Next::Read(Arrived::Block(block)) => {
                        held += 1;
                        if progress.format == Format::Auto {
                            settling = true;
                            steps.push_back(Step::Settle(block));
                        } else {
                            spawn(block, 0, &mut steps, progress, &mut spawned);
                        }
                    }
                }
            }
            let Some(step) = steps.pop_front() else {
                if open {
                    continue;
                }
                break;
            };
            match step {
                Step::Chunk(idx, ends) => {
                    let segments = results.take(idx, pool);
                    taken += 1;
                    sink(Fed::Segments(segments, ends));
                }
                Step::Ready(segments, ends) => sink(Fed::Segments(segments, ends)),
                Step::Settle(block) => {
                    // Everything before was handed on: nothing is spawned
                    // while a block waits here.
                    let start = settle_format(
                        file,
                        &block.records(0..block.len()),
                        progress,
                        origin,
                        &mut |segments, ends| sink(Fed::Segments(segments, ends)),
                    );
                    settling = false;
                    spawn(block, start, &mut steps, progress, &mut spawned);
                }
                Step::BlockEnd(block) => {
                    held -= 1;
                    sink(Fed::BlockDone(block.len()));
                    // Every chunk of the block dropped its share before its
                    // result was taken.
                    if let Ok(block) = Arc::try_unwrap(block) {
                        input.give_back(block);
                    }
                }
            }
        }
    });
}
