//! The durable spool: SQLite in WAL mode at `DATA_DIR/spool.sqlite`.
//!
//! - `findings`: one row per finding to deliver (its native JSON record).
//! - `pending`: one row per (output, finding) not yet acknowledged by that
//!   output. An ack deletes the row; when a finding's last pending row goes,
//!   a trigger deletes the finding.
//! - `dedup`: the open dedup windows, so counts survive a restart.
//! - `meta`: the spool's size (findings and bytes), kept by triggers.
//!
//! A finding is committed here before any output sees it, and leaves only
//! once every output it was queued for acknowledged it (or refused it for
//! good, or the full-spool policy evicted it: both counted and logged).

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, params};

/// How hard a commit is made durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Sync {
    /// `synchronous=NORMAL`: a commit survives a crash or `kill -9` of
    /// Vigil; the last commits may be lost if the machine loses power.
    #[default]
    Normal,
    /// `synchronous=FULL`: every commit is `fsync`ed.
    Full,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS findings(
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL,
    created_ns INTEGER NOT NULL,
    record BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS pending(
    output TEXT NOT NULL,
    seq INTEGER NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY(output, seq)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS pending_seq ON pending(seq);
CREATE TABLE IF NOT EXISTS meta(k TEXT PRIMARY KEY, v INTEGER NOT NULL) WITHOUT ROWID;
INSERT OR IGNORE INTO meta VALUES('count', 0), ('bytes', 0);
CREATE TRIGGER IF NOT EXISTS findings_ins AFTER INSERT ON findings BEGIN
    UPDATE meta SET v = v + 1 WHERE k = 'count';
    UPDATE meta SET v = v + length(NEW.record) WHERE k = 'bytes';
END;
CREATE TRIGGER IF NOT EXISTS findings_del AFTER DELETE ON findings BEGIN
    UPDATE meta SET v = v - 1 WHERE k = 'count';
    UPDATE meta SET v = v - length(OLD.record) WHERE k = 'bytes';
END;
CREATE TRIGGER IF NOT EXISTS pending_gc AFTER DELETE ON pending
WHEN NOT EXISTS (SELECT 1 FROM pending WHERE seq = OLD.seq) BEGIN
    DELETE FROM findings WHERE seq = OLD.seq;
END;
CREATE TABLE IF NOT EXISTS dedup(
    key TEXT PRIMARY KEY,
    first_ns INTEGER NOT NULL,
    last_ns INTEGER NOT NULL,
    end_ns INTEGER NOT NULL,
    count INTEGER NOT NULL,
    record BLOB NOT NULL) WITHOUT ROWID;
";

/// Opens (creates) the spool database with the settings every connection needs.
pub fn open(path: &Path, sync: Sync) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(Duration::from_secs(30))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(
        None,
        "synchronous",
        match sync {
            Sync::Normal => "NORMAL",
            Sync::Full => "FULL",
        },
    )?;
    conn.execute_batch(SCHEMA)?;
    Ok(conn)
}

/// The spool's size.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Size {
    pub findings: u64,
    pub bytes: u64,
}

pub fn size(conn: &Connection) -> rusqlite::Result<Size> {
    let get = |k: &str| -> rusqlite::Result<u64> {
        conn.query_row("SELECT v FROM meta WHERE k = ?1", [k], |r| {
            r.get::<_, i64>(0)
        })
        .map(|v| v.max(0) as u64)
    };
    Ok(Size {
        findings: get("count")?,
        bytes: get("bytes")?,
    })
}

/// Inserts a finding queued for `outputs`; returns its sequence number.
pub fn insert(
    conn: &Connection,
    id: &str,
    created_ns: u64,
    record: &[u8],
    outputs: &[&str],
) -> rusqlite::Result<i64> {
    conn.prepare_cached("INSERT INTO findings(id, created_ns, record) VALUES (?1, ?2, ?3)")?
        .execute(params![id, created_ns as i64, record])?;
    let seq = conn.last_insert_rowid();
    let mut stmt = conn.prepare_cached("INSERT INTO pending(output, seq) VALUES (?1, ?2)")?;
    for o in outputs {
        stmt.execute(params![o, seq])?;
    }
    Ok(seq)
}

/// Deletes the oldest finding (from every output's queue); returns its id.
pub fn evict_oldest(conn: &Connection) -> rusqlite::Result<Option<String>> {
    let oldest: Option<(i64, String)> = conn
        .query_row(
            "SELECT seq, id FROM findings ORDER BY seq LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    let Some((seq, id)) = oldest else {
        return Ok(None);
    };
    conn.execute("DELETE FROM pending WHERE seq = ?1", [seq])?;
    conn.execute("DELETE FROM findings WHERE seq = ?1", [seq])?;
    Ok(Some(id))
}

/// One queued finding of an output.
#[derive(Debug, Clone)]
pub struct Queued {
    pub seq: i64,
    pub attempts: u32,
    pub created_ns: u64,
    pub record: Vec<u8>,
}

/// The oldest `limit` findings queued for `output`.
pub fn queued(conn: &Connection, output: &str, limit: usize) -> rusqlite::Result<Vec<Queued>> {
    let mut stmt = conn.prepare_cached(
        "SELECT p.seq, p.attempts, f.created_ns, f.record FROM pending p JOIN findings f ON f.seq = p.seq
         WHERE p.output = ?1 ORDER BY p.seq LIMIT ?2",
    )?;
    let rows = stmt.query_map(params![output, limit as i64], |r| {
        Ok(Queued {
            seq: r.get(0)?,
            attempts: r.get::<_, i64>(1)? as u32,
            created_ns: r.get::<_, i64>(2)? as u64,
            record: r.get(3)?,
        })
    })?;
    rows.collect()
}

/// Findings queued for `output`.
pub fn queued_count(conn: &Connection, output: &str) -> rusqlite::Result<u64> {
    conn.query_row(
        "SELECT COUNT(*) FROM pending WHERE output = ?1",
        [output],
        |r| r.get::<_, i64>(0),
    )
    .map(|n| n as u64)
}

/// Acknowledges findings for `output` (the last ack of a finding deletes it).
pub fn ack(conn: &mut Connection, output: &str, seqs: &[i64]) -> rusqlite::Result<()> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    {
        let mut stmt = tx.prepare_cached("DELETE FROM pending WHERE output = ?1 AND seq = ?2")?;
        for s in seqs {
            stmt.execute(params![output, s])?;
        }
    }
    tx.commit()
}

/// Records a failed attempt.
pub fn failed(conn: &mut Connection, output: &str, seqs: &[i64]) -> rusqlite::Result<()> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    {
        let mut stmt = tx.prepare_cached(
            "UPDATE pending SET attempts = attempts + 1 WHERE output = ?1 AND seq = ?2",
        )?;
        for s in seqs {
            stmt.execute(params![output, s])?;
        }
    }
    tx.commit()
}

/// Removes the queues of outputs that are not configured any more; returns
/// (output, findings) for each removed queue.
pub fn drop_orphans(
    conn: &mut Connection,
    outputs: &[String],
) -> rusqlite::Result<Vec<(String, u64)>> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let all: Vec<(String, i64)> = {
        let mut stmt = tx.prepare("SELECT output, COUNT(*) FROM pending GROUP BY output")?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        rows.collect::<rusqlite::Result<_>>()?
    };
    let mut dropped = Vec::new();
    for (name, n) in all {
        if !outputs.contains(&name) {
            tx.execute("DELETE FROM pending WHERE output = ?1", [&name])?;
            dropped.push((name, n as u64));
        }
    }
    tx.commit()?;
    Ok(dropped)
}

/// An open dedup window as stored.
#[derive(Debug, Clone)]
pub struct StoredWindow {
    pub key: String,
    pub first_ns: u64,
    pub last_ns: u64,
    pub end_ns: u64,
    pub count: u64,
    pub record: Vec<u8>,
}

pub fn windows(conn: &Connection) -> rusqlite::Result<Vec<StoredWindow>> {
    let mut stmt =
        conn.prepare("SELECT key, first_ns, last_ns, end_ns, count, record FROM dedup")?;
    let rows = stmt.query_map([], |r| {
        Ok(StoredWindow {
            key: r.get(0)?,
            first_ns: r.get::<_, i64>(1)? as u64,
            last_ns: r.get::<_, i64>(2)? as u64,
            end_ns: r.get::<_, i64>(3)? as u64,
            count: r.get::<_, i64>(4)? as u64,
            record: r.get(5)?,
        })
    })?;
    rows.collect()
}

pub fn open_window(conn: &Connection, w: &StoredWindow) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT OR REPLACE INTO dedup(key, first_ns, last_ns, end_ns, count, record) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        w.key,
        w.first_ns as i64,
        w.last_ns as i64,
        w.end_ns as i64,
        w.count as i64,
        w.record
    ])?;
    Ok(())
}

pub fn bump_window(conn: &Connection, key: &str, last_ns: u64) -> rusqlite::Result<()> {
    conn.prepare_cached("UPDATE dedup SET count = count + 1, last_ns = ?2 WHERE key = ?1")?
        .execute(params![key, last_ns as i64])?;
    Ok(())
}

pub fn close_window(conn: &Connection, key: &str) -> rusqlite::Result<()> {
    conn.prepare_cached("DELETE FROM dedup WHERE key = ?1")?
        .execute([key])?;
    Ok(())
}
