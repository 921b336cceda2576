//! `memcmp` and `bcmp` for plugin components (feature `word-memcmp`, on by
//! default).
//!
//! Why: on `wasm32-unknown-unknown` there is no libc, so every comparison of
//! strings or byte slices (`==` on `str`, `HashMap` lookups, `match` on a
//! string) ends in `compiler_builtins`' `memcmp`, which compares one byte at
//! a time. Wasm has no instruction for it (unlike `memory.copy` for
//! `memcpy`). In a replay with all built-ins, that loop was 2.5 % of the
//! native profile, most of it inside container-churn's and k8s-evasion's
//! map lookups. This one compares eight bytes at a time; `compiler_builtins`
//! defines its own as weak symbols, so these take their place at link time.

// Natively only the tests call `compare`: the platform's libc has a `memcmp`.
#![cfg_attr(
    not(all(target_arch = "wasm32", feature = "word-memcmp")),
    allow(dead_code, reason = "exported on wasm32 only; tested natively")
)]

/// `memcmp`'s contract on `n` bytes of `a` and `b`: negative, zero or positive
/// as the first differing byte (unsigned) of `a` is less than, equal to or
/// greater than that of `b`; zero when all are equal.
///
/// # Safety
/// `a` and `b` must be valid for reads of `n` bytes.
#[inline]
#[allow(unsafe_code, reason = "raw unaligned loads; see # Safety")]
pub(crate) unsafe fn compare(a: *const u8, b: *const u8, n: usize) -> i32 {
    let mut i = 0;
    while i + 8 <= n {
        // SAFETY: `i + 8 <= n`, within both ranges.
        let (x, y) = unsafe {
            (
                a.add(i).cast::<u64>().read_unaligned(),
                b.add(i).cast::<u64>().read_unaligned(),
            )
        };
        if x != y {
            return first_difference(x.to_le(), y.to_le());
        }
        i += 8;
    }
    // The last 0–7 bytes, one at a time: no loop that the optimiser could
    // turn back into a call to `memcmp`.
    while i < n {
        // SAFETY: `i < n`.
        let (x, y) = unsafe { (*a.add(i), *b.add(i)) };
        if x != y {
            return i32::from(x) - i32::from(y);
        }
        i += 1;
    }
    0
}

/// The sign of the first differing byte of two little-endian words that
/// differ: their lowest differing byte.
#[inline]
fn first_difference(x: u64, y: u64) -> i32 {
    let shift = (x ^ y).trailing_zeros() & !7;
    i32::from((x >> shift) as u8) - i32::from((y >> shift) as u8)
}

#[cfg(all(target_arch = "wasm32", feature = "word-memcmp"))]
mod exported {
    #![allow(unsafe_code, reason = "the C ABI symbols the compiler calls")]

    /// The C `memcmp`, for the compiler's calls inside the component.
    ///
    /// # Safety
    /// As C's `memcmp`.
    #[unsafe(no_mangle)]
    pub unsafe extern "C" fn memcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
        // SAFETY: the caller's contract.
        unsafe { super::compare(a, b, n) }
    }

    /// `bcmp`: `memcmp` whose result only says equal (0) or not.
    ///
    /// # Safety
    /// As C's `memcmp`.
    #[unsafe(no_mangle)]
    pub unsafe extern "C" fn bcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
        // SAFETY: the caller's contract.
        unsafe { super::compare(a, b, n) }
    }
}

#[cfg(test)]
mod tests {
    use super::compare;

    #[allow(unsafe_code, reason = "the function under test takes raw pointers")]
    fn cmp(a: &[u8], b: &[u8]) -> i32 {
        assert_eq!(a.len(), b.len());
        // SAFETY: both slices hold `a.len()` bytes.
        unsafe { compare(a.as_ptr(), b.as_ptr(), a.len()) }
    }

    /// The reference: the first differing byte, as unsigned.
    fn reference(a: &[u8], b: &[u8]) -> i32 {
        a.iter()
            .zip(b)
            .find(|(x, y)| x != y)
            .map_or(0, |(x, y)| i32::from(*x) - i32::from(*y))
    }

    #[test]
    fn agrees_with_the_byte_loop_on_every_length_and_position() {
        let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for n in 0..80usize {
            let a: Vec<u8> = (0..n).map(|_| next() as u8).collect();
            assert_eq!(cmp(&a, &a), 0, "equal, length {n}");
            // Every single-byte difference, both ways, with high bytes too
            // (the comparison is unsigned).
            for at in 0..n {
                for delta in [1u8, 0x7f, 0x80, 0xff] {
                    let mut b = a.clone();
                    b[at] = b[at].wrapping_add(delta);
                    let (r, s) = (cmp(&a, &b), reference(&a, &b));
                    assert_eq!(r.signum(), s.signum(), "n {n} at {at} delta {delta}");
                    assert_eq!(r, s, "the byte difference itself, n {n} at {at}");
                    assert_eq!(cmp(&b, &a), -s, "reversed, n {n} at {at}");
                }
            }
            // Two differences: the first one decides.
            if n >= 2 {
                let mut b = a.clone();
                b[n - 1] ^= 0x80;
                b[0] = b[0].wrapping_add(1);
                assert_eq!(cmp(&a, &b), reference(&a, &b), "n {n}");
            }
        }
    }

    #[test]
    fn unaligned_slices_compare_alike() {
        let a: Vec<u8> = (0u8..=255).collect();
        let mut b = a.clone();
        b[200] = 0;
        for start in 0..8 {
            let (x, y) = (&a[start..start + 240], &b[start..start + 240]);
            assert_eq!(cmp(x, y), reference(x, y), "offset {start}");
            assert!(cmp(x, y) > 0);
        }
    }
}
