//! The mutation fuzzers' shared parts: a small deterministic generator (a
//! fixed seed reproduces a failure) and the iteration count.

/// xorshift64*: small, deterministic, good enough to pick mutations.
#[derive(Debug, Clone)]
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number below `n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }
}

/// `VIGIL_FUZZ_ITERS` when set (for longer local runs), else `default`.
pub fn iterations(default: usize) -> usize {
    std::env::var("VIGIL_FUZZ_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Bytes that JSON decoders treat specially: structure, odd numbers and
/// escapes, invalid UTF-8, and the audit event list's shape.
const TOKENS: [&[u8]; 14] = [
    b"{",
    b"}",
    b"[",
    b"]",
    b"\"",
    b",",
    b":",
    b"null",
    b"0",
    b"-1e999",
    b"\"\\u0000\"",
    b"\xff",
    b"\"kind\":\"EventList\"",
    b"\"items\":[{}]",
];

/// `input` with one to five mutations: a cut, a [`TOKENS`] entry inserted,
/// a byte changed, a slice repeated (nesting), or the end cut off.
pub fn mutate_json(rng: &mut Rng, input: &[u8]) -> Vec<u8> {
    let mut v = input.to_vec();
    for _ in 0..=rng.below(4) {
        let at = rng.below(v.len() + 1);
        match rng.below(5) {
            0 if !v.is_empty() => {
                let end = (at + rng.below(64)).min(v.len());
                v.drain(at.min(end)..end);
            }
            1 => {
                let t = TOKENS[rng.below(TOKENS.len())];
                v.splice(at..at, t.iter().copied());
            }
            2 if at < v.len() => v[at] = rng.next_u64() as u8,
            3 if !v.is_empty() => {
                // Duplicate a slice: nested and repeated structures.
                let from = rng.below(v.len());
                let end = (from + rng.below(256)).min(v.len());
                let chunk = v[from..end].to_vec();
                v.splice(at..at, chunk);
            }
            _ => v.truncate(at),
        }
    }
    v
}
