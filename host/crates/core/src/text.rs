//! Text that came from outside the host (a plugin, a finding, a container
//! name) made safe to print in a log line or on a terminal.
//!
//! A plugin is untrusted: if its text reached the host's log raw, a `\n`
//! followed by a well-formed line would forge a host log record in the text
//! format, and an ESC sequence would drive the operator's terminal. Every
//! place that prints such text goes through [`escape_control`], which also
//! bounds its length so that one plugin cannot flood the log with one call.

use std::borrow::Cow;

/// `bytes` in lower-case hex, two digits per byte: the digests and ids the
/// host prints. By table: a `format!` per byte cost more than computing the
/// digest (every finding of a replay gets an id).
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    s
}

/// What a cut string ends with, after the bytes that were kept.
pub const TRUNCATED: &str = "…";

/// `s` with every control character written as an escape, cut to at most
/// `max` bytes of escaped text (on a character boundary) followed by
/// [`TRUNCATED`] when it was longer. Borrowed when nothing had to change.
///
/// Escaped: the C0 controls (`\n`, `\r`, `\t` as such, others such as ESC
/// as `\u{1b}`), DEL, the C1 controls (U+0080–U+009F: some terminals take
/// U+009B as an escape introducer) and the Unicode direction overrides and
/// isolates (U+202A–U+202E, U+2066–U+2069), which reorder what a terminal
/// shows. Everything else, including a backslash, is kept as it is: the
/// point is that the text cannot end its line or reach the terminal as a
/// command, not that it can be decoded back exactly.
pub fn escape_control(s: &str, max: usize) -> Cow<'_, str> {
    if s.len() <= max && !s.chars().any(needs_escape) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len().min(max) + TRUNCATED.len());
    for c in s.chars() {
        let before = out.len();
        push_escaped(&mut out, c);
        if out.len() > max {
            out.truncate(before);
            out.push_str(TRUNCATED);
            break;
        }
    }
    Cow::Owned(out)
}

/// Whether [`escape_control`] rewrites `c`.
pub fn needs_escape(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

fn push_escaped(out: &mut String, c: char) {
    match c {
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        c if needs_escape(c) => {
            use std::fmt::Write as _;
            // Writing to a String cannot fail.
            let _ = write!(out, "\\u{{{:x}}}", c as u32);
        }
        c => out.push(c),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn hex_is_two_lowercase_digits_per_byte() {
        assert_eq!(super::hex(&[0x00, 0x0f, 0xa5, 0xff]), "000fa5ff");
        let all: Vec<u8> = (0..=255).collect();
        let reference: String = all.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(super::hex(&all), reference);
    }

    use super::{TRUNCATED, escape_control};

    #[test]
    fn plain_text_is_borrowed() {
        assert!(matches!(
            escape_control("nginx: ok", 100),
            std::borrow::Cow::Borrowed("nginx: ok")
        ));
    }

    #[test]
    fn line_breaks_and_escapes_cannot_pass() {
        let hostile =
            "ok\n2026-01-01T00:00:00Z  INFO vigil: forged\r\x1b[31mred\x1b[0m\u{9b}2J\u{202e}";
        let out = escape_control(hostile, 1000);
        assert!(!out.chars().any(super::needs_escape), "{out}");
        assert_eq!(
            out,
            "ok\\n2026-01-01T00:00:00Z  INFO vigil: forged\\r\\u{1b}[31mred\\u{1b}[0m\\u{9b}2J\\u{202e}"
        );
    }

    #[test]
    fn long_text_is_cut_on_a_character_boundary() {
        let long = "é".repeat(100);
        let out = escape_control(&long, 11);
        assert_eq!(out, format!("{}{TRUNCATED}", "é".repeat(5)));
    }

    #[test]
    fn an_escape_is_never_cut_in_half() {
        let out = escape_control("ab\x1b", 5);
        assert_eq!(out, format!("ab{TRUNCATED}"));
    }
}
