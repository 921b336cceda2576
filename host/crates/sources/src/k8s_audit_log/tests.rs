use crate::Source as _;
use std::path::{Path, PathBuf};
use vigil_core::validate::InvalidConfig;
use vigil_test_support::TempDir;
use vigil_test_support::fixtures::append;

use super::*;

/// A fresh directory and the path of its `audit.log`, not yet created (the
/// directory goes when the first is dropped).
fn audit_log(name: &str) -> (TempDir, PathBuf) {
    let dir = TempDir::new(&format!("tail-{name}"));
    let path = dir.join("audit.log");
    (dir, path)
}

fn lines(t: &mut Tailer) -> Vec<String> {
    let p = t.poll().unwrap();
    p.lines
        .iter()
        .map(|l| String::from_utf8(l.text.clone()).unwrap())
        .collect()
}

fn texts(poll: &Poll) -> Vec<&[u8]> {
    poll.lines.iter().map(|l| &l.text[..]).collect()
}

fn tailer(p: &Path, start: StartAt) -> Tailer {
    Tailer::new(p.to_owned(), start, 1024, 1 << 20)
}

/// Tails `p`, created empty, from its end, checking that a first look
/// finds nothing: what the test writes next is all there is to read.
fn tail_empty_log(p: &Path) -> Tailer {
    append(p, "");
    let mut t = tailer(p, StartAt::End);
    assert!(lines(&mut t).is_empty());
    t
}

/// A restart: a new tailer from the position the last one saved.
fn resume(p: &Path, pos: Position) -> Tailer {
    Tailer::resume(p.to_owned(), pos, 1024, 1 << 20)
}

/// Empties `p` in place (same inode), as `copytruncate` rotation does, then
/// writes `c\n` into it.
fn truncate_and_write_c(p: &Path) {
    std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(p)
        .unwrap();
    append(p, "c\n");
}

/// After [`truncate_and_write_c`] on a 10-byte file: the truncation is
/// noted and the new content read from offset 0.
fn assert_restarted_at_zero(got: &Poll) {
    assert!(
        got.notes.contains(&Note::Truncated { was: 10, now: 2 }),
        "{:?}",
        got.notes
    );
    assert_eq!(got.lines[0].text, b"c");
}

#[test]
fn config_defaults_and_all_problems() {
    let s = LogConfig {
        path: "/var/log/audit.log".into(),
        ..LogConfig::default()
    }
    .validated()
    .unwrap();
    assert_eq!(s.start_at, StartAt::End);
    assert_eq!(
        s.poll_interval.as_millis(),
        u128::from(DEFAULT_POLL_INTERVAL_MS)
    );
    let InvalidConfig(problems) = LogConfig {
        enabled: true,
        path: PathBuf::new(),
        poll_interval_ms: 1,
        max_line_bytes: 0,
        max_read_bytes: 0,
        from_beginning: true,
        position_file: Some(PathBuf::new()),
    }
    .validated()
    .unwrap_err();
    assert_eq!(problems.len(), 5, "{problems:?}");
    assert!(serde_json::from_str::<LogConfig>(r#"{"path":"/a","follow":true}"#).is_err());
}

#[test]
fn starts_at_end_unless_asked() {
    let (_dir, p) = audit_log("start");
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
    let (_dir, p) = audit_log("late");
    let mut t = tailer(&p, StartAt::End);
    assert!(lines(&mut t).is_empty());
    append(&p, "first\n");
    assert_eq!(lines(&mut t), ["first"]);
}

#[test]
fn partial_line_waits_for_its_newline() {
    let (_dir, p) = audit_log("partial");
    let mut t = tail_empty_log(&p);
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
    let (d, p) = audit_log("rotate");
    let mut t = tail_empty_log(&p);
    append(&p, "a\n");
    assert_eq!(lines(&mut t), ["a"]);
    // Written just before the rename, not yet seen.
    append(&p, "b\nunterminated");
    std::fs::rename(&p, d.join("audit.log.1")).unwrap();
    // Path missing for a while: keep the old file.
    assert_eq!(lines(&mut t), ["b"]);
    append(&p, "c\n");
    let got = t.poll().unwrap();
    assert!(got.notes.contains(&Note::Rotated), "{:?}", got.notes);
    assert_eq!(texts(&got), [&b"unterminated"[..], b"c"]);
    append(&p, "d\n");
    assert_eq!(lines(&mut t), ["d"]);
}

#[test]
fn truncation_restarts_at_zero() {
    let (_dir, p) = audit_log("truncate");
    let mut t = tail_empty_log(&p);
    append(&p, "aaaa\nbbbb\n");
    assert_eq!(lines(&mut t), ["aaaa", "bbbb"]);
    truncate_and_write_c(&p);
    let got = t.poll().unwrap();
    assert_restarted_at_zero(&got);
}

#[test]
fn overlong_line_is_skipped_and_the_next_one_read() {
    let (_dir, p) = audit_log("long");
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

fn saved_position(t: &Tailer) -> Position {
    t.position().expect("a file is open")
}

#[test]
fn resumes_in_the_same_file_where_it_stopped() {
    let (_dir, p) = audit_log("resume");
    append(&p, "old\n");
    let mut t = tailer(&p, StartAt::End);
    assert!(lines(&mut t).is_empty());
    append(&p, "a\npartial");
    assert_eq!(lines(&mut t), ["a"]);
    let pos = saved_position(&t);
    // The unfinished line is read again after a restart.
    assert_eq!(pos.offset, 6);
    append(&p, " line\nwhile down\n");
    let mut again = resume(&p, pos);
    assert_eq!(lines(&mut again), ["partial line", "while down"]);
}

#[test]
fn resume_after_truncation_while_down_reads_from_zero() {
    let (_dir, p) = audit_log("resume-trunc");
    append(&p, "aaaa\nbbbb\n");
    let mut t = tailer(&p, StartAt::Beginning);
    assert_eq!(lines(&mut t).len(), 2);
    let pos = saved_position(&t);
    truncate_and_write_c(&p);
    let mut again = resume(&p, pos);
    let got = again.poll().unwrap();
    assert_restarted_at_zero(&got);
}

#[test]
fn resume_after_rotation_while_down_finishes_the_old_file_first() {
    let (d, p) = audit_log("resume-rot");
    let mut t = tail_empty_log(&p);
    append(&p, "one\n");
    assert_eq!(lines(&mut t), ["one"]);
    let pos = saved_position(&t);
    drop(t);
    // While down: more lines, a rotation, lines in the new file.
    append(&p, "two\n");
    std::fs::rename(&p, d.join("audit-2024-01-01T00-00-00.000.log")).unwrap();
    append(&p, "three\n");
    let mut again = resume(&p, pos);
    let mut got = Vec::new();
    let mut notes = Vec::new();
    for _ in 0..3 {
        let poll = again.poll().unwrap();
        got.extend(
            poll.lines
                .into_iter()
                .map(|l| String::from_utf8(l.text).unwrap()),
        );
        notes.extend(poll.notes);
    }
    assert_eq!(got, ["two", "three"]);
    assert!(notes.contains(&Note::Rotated), "{notes:?}");

    // The same, but the rotated file was compressed away: a noted loss,
    // and the new file is read from its start.
    let pos = saved_position(&again);
    append(&p, "four\n");
    std::fs::remove_file(&p).unwrap();
    append(&p, "five\n");
    let mut third = resume(&p, pos);
    let poll = third.poll().unwrap();
    assert!(
        poll.notes
            .iter()
            .any(|n| matches!(n, Note::ResumeFileGone { .. })),
        "{:?}",
        poll.notes
    );
    assert_eq!(texts(&poll), [&b"five"[..]]);
}

#[test]
fn position_file_round_trips_atomically() {
    let d = TempDir::new("tail-position");
    let f = d.join("k8s-audit-log.position");
    assert_eq!(position::load(&f).unwrap(), None);
    let saved = Saved {
        path: "/var/log/audit.log".into(),
        position: Position {
            dev: 2049,
            ino: 131_075,
            offset: 4096,
        },
    };
    position::save(&f, &saved).unwrap();
    assert_eq!(position::load(&f).unwrap(), Some(saved.clone()));
    let moved = Saved {
        position: Position {
            offset: 8192,
            ..saved.position
        },
        ..saved
    };
    position::save(&f, &moved).unwrap();
    assert_eq!(position::load(&f).unwrap(), Some(moved));
    // Only the position file is left: the temporary one was renamed.
    let names: Vec<_> = std::fs::read_dir(&d)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 1, "{names:?}");
    std::fs::write(&f, "{not json").unwrap();
    assert!(matches!(
        position::load(&f),
        Err(PositionError::Decode { .. })
    ));
}
