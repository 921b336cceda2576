use std::io::Write;
use std::path::{Path, PathBuf};

use super::*;

/// A temporary directory removed when dropped.
struct Temp(PathBuf);

impl Temp {
    fn new(name: &str) -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let p =
            std::env::temp_dir().join(format!("vigil-tail-{name}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&p).unwrap();
        Self(p)
    }
}

impl Drop for Temp {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn append(p: &Path, s: &str) {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(p)
        .unwrap();
    f.write_all(s.as_bytes()).unwrap();
}

fn lines(t: &mut Tailer) -> Vec<String> {
    let p = t.poll().unwrap();
    p.lines
        .iter()
        .map(|l| String::from_utf8(l.text.clone()).unwrap())
        .collect()
}

fn tailer(p: &Path, start: StartAt) -> Tailer {
    Tailer::new(p.to_owned(), start, 1024, 1 << 20)
}

#[test]
fn config_defaults_and_all_problems() {
    let s = LogConfig {
        path: "/var/log/audit.log".into(),
        ..LogConfig::default()
    }
    .validate()
    .unwrap();
    assert_eq!(s.start_at, StartAt::End);
    assert_eq!(
        s.poll_interval.as_millis(),
        u128::from(DEFAULT_POLL_INTERVAL_MS)
    );
    let ConfigError(problems) = LogConfig {
        enabled: true,
        path: PathBuf::new(),
        poll_interval_ms: 1,
        max_line_bytes: 0,
        max_read_bytes: 0,
        from_beginning: true,
    }
    .validate()
    .unwrap_err();
    assert_eq!(problems.len(), 4, "{problems:?}");
    assert!(serde_json::from_str::<LogConfig>(r#"{"path":"/a","follow":true}"#).is_err());
}

#[test]
fn starts_at_end_unless_asked() {
    let d = Temp::new("start");
    let p = d.0.join("audit.log");
    append(&p, "old\n");
    let mut end = tailer(&p, StartAt::End);
    let mut beginning = tailer(&p, StartAt::Beginning);
    assert!(lines(&mut end).is_empty());
    assert_eq!(lines(&mut beginning), ["old"]);
    append(&p, "new\n");
    assert_eq!(lines(&mut end), ["new"]);
    assert_eq!(lines(&mut beginning), ["new"]);
}

#[test]
fn file_created_after_start_is_read_from_its_start() {
    let d = Temp::new("late");
    let p = d.0.join("audit.log");
    let mut t = tailer(&p, StartAt::End);
    assert!(lines(&mut t).is_empty());
    append(&p, "first\n");
    assert_eq!(lines(&mut t), ["first"]);
}

#[test]
fn partial_line_waits_for_its_newline() {
    let d = Temp::new("partial");
    let p = d.0.join("audit.log");
    append(&p, "");
    let mut t = tailer(&p, StartAt::End);
    assert!(lines(&mut t).is_empty());
    append(&p, "{\"a\":");
    assert!(lines(&mut t).is_empty());
    append(&p, "1}\r\n\n  \n{\"b\"");
    let got = t.poll().unwrap();
    assert_eq!(got.lines.len(), 1);
    assert_eq!(got.lines[0].text, b"{\"a\":1}");
    assert_eq!(got.lines[0].offset, 0);
    append(&p, ":2}\n");
    let got = t.poll().unwrap();
    assert_eq!(got.lines[0].text, b"{\"b\":2}");
    assert_eq!(got.lines[0].offset, 13, "offset of the line's start");
}

#[test]
fn rotation_reads_old_tail_then_new_file() {
    let d = Temp::new("rotate");
    let p = d.0.join("audit.log");
    append(&p, "");
    let mut t = tailer(&p, StartAt::End);
    assert!(lines(&mut t).is_empty());
    append(&p, "a\n");
    assert_eq!(lines(&mut t), ["a"]);
    // Written just before the rename, not yet seen.
    append(&p, "b\nunterminated");
    std::fs::rename(&p, d.0.join("audit.log.1")).unwrap();
    // Path missing for a while: keep the old file.
    assert_eq!(lines(&mut t), ["b"]);
    append(&p, "c\n");
    let got = t.poll().unwrap();
    assert!(got.notes.contains(&Note::Rotated), "{:?}", got.notes);
    let texts: Vec<&[u8]> = got.lines.iter().map(|l| &l.text[..]).collect();
    assert_eq!(texts, [&b"unterminated"[..], b"c"]);
    append(&p, "d\n");
    assert_eq!(lines(&mut t), ["d"]);
}

#[test]
fn truncation_restarts_at_zero() {
    let d = Temp::new("truncate");
    let p = d.0.join("audit.log");
    append(&p, "");
    let mut t = tailer(&p, StartAt::End);
    t.poll().unwrap();
    append(&p, "aaaa\nbbbb\n");
    assert_eq!(lines(&mut t), ["aaaa", "bbbb"]);
    std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(&p)
        .unwrap();
    append(&p, "c\n");
    let got = t.poll().unwrap();
    assert!(
        got.notes.contains(&Note::Truncated { was: 10, now: 2 }),
        "{:?}",
        got.notes
    );
    assert_eq!(got.lines[0].text, b"c");
}

#[test]
fn overlong_line_is_skipped_and_the_next_one_read() {
    let d = Temp::new("long");
    let p = d.0.join("audit.log");
    append(&p, "");
    let mut t = Tailer::new(p.clone(), StartAt::End, 8, 4);
    t.poll().unwrap();
    append(&p, "0123456789abcdef\nok\n");
    let mut texts = Vec::new();
    let mut notes = Vec::new();
    // A small read cap: the backlog takes several looks, each saying more.
    for _ in 0..10 {
        let got = t.poll().unwrap();
        texts.extend(got.lines.into_iter().map(|l| l.text));
        notes.extend(got.notes);
        if !got.more {
            break;
        }
    }
    assert_eq!(texts, [b"ok".to_vec()]);
    assert_eq!(notes, [Note::LineTooLong { offset: 0 }]);
}

#[test]
fn bad_line_is_a_reason_not_a_panic() {
    let origin = Origin {
        node: "n",
        source: "k8s-audit",
    };
    let mut out = Vec::new();
    assert!(normalise_line(b"{not json", &origin, &mut out).is_err());
    assert!(normalise_line(&[0xff, 0xfe], &origin, &mut out).is_err());
    assert!(normalise_line(br#"{"kind":"Pod"}"#, &origin, &mut out).is_err());
    assert!(out.is_empty());
    let ok = br#"{"kind":"Event","auditID":"x","verb":"create","stage":"ResponseComplete"}"#;
    assert_eq!(normalise_line(ok, &origin, &mut out), Ok(1));
    assert_eq!(out[0].source, "k8s-audit");
}
