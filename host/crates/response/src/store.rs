//! The quarantine records: `DATA_DIR/quarantine/quarantine.db` (SQLite,
//! WAL), one row per quarantine with every action taken on it and the
//! findings that asked for it. `vigil run` writes it; `vigil quarantine
//! list|release` read and update it, possibly while `vigil run` runs (each
//! claim is one immediate transaction, so two processes never quarantine
//! the same target twice).

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::policy::Mode;
use vigil_core::model::Severity;
use vigil_core::time::format_rfc3339;
use vigil_core::time::wall_now;

/// Bumped when the tables change shape; an unknown version is refused.
const SCHEMA_VERSION: i64 = 1;
/// The database's file name under `DATA_DIR/quarantine/`.
pub const DB_FILE: &str = "quarantine.db";

/// Why the store failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot create the quarantine directory {path}")]
    Dir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("quarantine files refused")]
    Private(#[from] vigil_core::fsperm::FsPermError),
    #[error("cannot open the quarantine database {path}")]
    Open {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error(
        "quarantine database schema version {found} is not supported (expected {SCHEMA_VERSION})"
    )]
    Version { found: i64 },
    #[error("quarantine database error")]
    Sql(#[from] rusqlite::Error),
    #[error("corrupt quarantine record {id}: {reason}")]
    Corrupt { id: String, reason: String },
}

/// What is quarantined.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TargetKind {
    /// A Docker container (target: its full id).
    Docker,
    /// A Kubernetes pod (target: `namespace/name`).
    Kubernetes,
}

impl TargetKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Docker => "docker",
            Self::Kubernetes => "kubernetes",
        }
    }
    fn parse(s: &str) -> Option<Self> {
        match s {
            "docker" => Some(Self::Docker),
            "kubernetes" => Some(Self::Kubernetes),
            _ => None,
        }
    }
}

/// Where a quarantine stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum State {
    /// Dry run: the actions were planned and recorded, nothing was touched.
    DryRun,
    /// Actions under way (or interrupted: the next finding resumes them).
    Isolating,
    /// Every action succeeded.
    Quarantined,
    /// Some actions succeeded, some could not be taken (see the actions);
    /// the next finding for the target retries the missing ones.
    Partial,
    /// No action succeeded.
    Failed,
    /// Released by an operator (`vigil quarantine release`).
    Released,
    /// A release was attempted and did not complete; run it again.
    ReleaseFailed,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::DryRun => "dry-run",
            Self::Isolating => "isolating",
            Self::Quarantined => "quarantined",
            Self::Partial => "partial",
            Self::Failed => "failed",
            Self::Released => "released",
            Self::ReleaseFailed => "release-failed",
        }
    }
    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "dry-run" => Self::DryRun,
            "isolating" => Self::Isolating,
            "quarantined" => Self::Quarantined,
            "partial" => Self::Partial,
            "failed" => Self::Failed,
            "released" => Self::Released,
            "release-failed" => Self::ReleaseFailed,
            _ => return None,
        })
    }
}

/// How an action went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// Done.
    Ok,
    /// Not needed or not possible, for the reason given (host network, already paused …).
    Skipped,
    /// Tried and failed.
    Failed,
    /// Dry run: would have been done.
    Planned,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Skipped => "skipped",
            Self::Failed => "failed",
            Self::Planned => "planned",
        }
    }
    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "ok" => Self::Ok,
            "skipped" => Self::Skipped,
            "failed" => Self::Failed,
            "planned" => Self::Planned,
            _ => return None,
        })
    }
}

/// One action taken (or planned) on a target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Action {
    /// RFC 3339 UTC.
    pub time: String,
    /// `disconnect`, `pause`, `mark`, `evidence`, `label`, `network-policy`,
    /// and on release `unpause`, `reconnect`, `unmark`, `unlabel`, `delete-network-policy`.
    pub action: String,
    pub outcome: Outcome,
    /// What exactly (the network, the reason for a skip, the error).
    pub detail: String,
}

/// A quarantine, as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Quarantine {
    /// `q` and 12 hex digits; also the Kubernetes label value and the evidence directory name.
    pub id: String,
    pub kind: TargetKind,
    /// The container id, or the pod's `namespace/name`.
    pub target: String,
    /// The container name, or the pod name.
    pub target_name: String,
    /// The node Vigil ran on.
    pub node: String,
    /// The rule of the finding that triggered it.
    pub rule: String,
    pub severity: Severity,
    /// The id of that finding.
    pub finding_id: String,
    pub mode: Mode,
    pub state: State,
    /// RFC 3339 UTC.
    pub created: String,
    pub updated: String,
    /// What release needs (Docker: the networks and the original name;
    /// Kubernetes: the namespace, pod and policy names).
    pub detail: serde_json::Value,
    /// The evidence bundle directory (empty for dry runs).
    pub evidence_dir: String,
    /// Every action, oldest first.
    pub actions: Vec<Action>,
    /// Ids of the findings that named this target while quarantined.
    pub findings: Vec<String>,
}

/// A quarantine about to be created.
#[derive(Debug, Clone)]
pub struct NewQuarantine {
    pub kind: TargetKind,
    pub target: String,
    pub target_name: String,
    pub node: String,
    pub rule: String,
    pub severity: Severity,
    pub finding_id: String,
    pub mode: Mode,
}

/// The outcome of [`Store::claim`].
#[derive(Debug)]
pub enum Claim {
    /// A new record, state `isolating` (enforce) or `dry-run`: act on it.
    New(Quarantine),
    /// A record in the same mode already covers this target (not released).
    Existing(Quarantine),
    /// An operator released this target from a quarantine for this rule:
    /// it is not quarantined again for it.
    Released(Quarantine),
}

/// The open database.
pub struct Store {
    conn: Connection,
    dir: PathBuf,
}

impl Store {
    /// The quarantine directory of a data directory.
    pub fn dir_of(data_dir: &Path) -> PathBuf {
        data_dir.join("quarantine")
    }

    /// Opens (or creates) `DATA_DIR/quarantine/quarantine.db`.
    pub fn open(data_dir: &Path) -> Result<Self, StoreError> {
        use std::os::unix::fs::DirBuilderExt;
        let dir = Self::dir_of(data_dir);
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .map_err(|source| StoreError::Dir {
                path: dir.clone(),
                source,
            })?;
        let path = dir.join(DB_FILE);
        // Created 0600 before SQLite opens it (see `vigil_core::fsperm`).
        vigil_core::fsperm::private_sqlite(&path)?;
        let conn = Connection::open(&path).map_err(|source| StoreError::Open {
            path: path.clone(),
            source,
        })?;
        conn.busy_timeout(Duration::from_secs(10))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
             CREATE TABLE IF NOT EXISTS quarantines (
                 id TEXT PRIMARY KEY, kind TEXT NOT NULL, target TEXT NOT NULL,
                 target_name TEXT NOT NULL, node TEXT NOT NULL, rule TEXT NOT NULL,
                 severity TEXT NOT NULL, finding_id TEXT NOT NULL, mode TEXT NOT NULL,
                 state TEXT NOT NULL, created TEXT NOT NULL, updated TEXT NOT NULL,
                 detail TEXT NOT NULL, evidence_dir TEXT NOT NULL);
             CREATE INDEX IF NOT EXISTS quarantines_target ON quarantines (kind, target);
             CREATE TABLE IF NOT EXISTS actions (
                 quarantine TEXT NOT NULL, seq INTEGER PRIMARY KEY AUTOINCREMENT,
                 time TEXT NOT NULL, action TEXT NOT NULL, outcome TEXT NOT NULL, detail TEXT NOT NULL);
             CREATE TABLE IF NOT EXISTS findings (
                 quarantine TEXT NOT NULL, finding_id TEXT NOT NULL, rule TEXT NOT NULL,
                 time TEXT NOT NULL, PRIMARY KEY (quarantine, finding_id));
             INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', 1);",
        )?;
        let found: i64 = conn.query_row(
            "SELECT value FROM meta WHERE key = 'schema_version'",
            [],
            |r| r.get(0),
        )?;
        if found != SCHEMA_VERSION {
            return Err(StoreError::Version { found });
        }
        Ok(Self { conn, dir })
    }

    /// The quarantine directory (`DATA_DIR/quarantine`).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Finds or creates the record for a target, atomically: a record in
    /// the same mode that is not released is returned as is; a target
    /// released for this rule is not claimed again; otherwise a new record.
    pub fn claim(&mut self, q: &NewQuarantine) -> Result<Claim, StoreError> {
        let tx = Transaction::new(&mut self.conn, TransactionBehavior::Immediate)?;
        let existing: Option<String> = tx
            .query_row(
                "SELECT id FROM quarantines WHERE kind = ?1 AND target = ?2 AND mode = ?3
                 AND state <> 'released' ORDER BY created DESC LIMIT 1",
                params![q.kind.as_str(), q.target, q.mode.as_str()],
                |r| r.get(0),
            )
            .optional()?;
        if let Some(id) = existing {
            let rec = load(&tx, &id)?;
            tx.commit()?;
            return Ok(Claim::Existing(rec));
        }
        let released: Option<String> = tx
            .query_row(
                "SELECT q.id FROM quarantines q WHERE q.kind = ?1 AND q.target = ?2 AND q.mode = ?3
                 AND q.state = 'released' AND (q.rule = ?4 OR EXISTS
                   (SELECT 1 FROM findings f WHERE f.quarantine = q.id AND f.rule = ?4))
                 ORDER BY q.created DESC LIMIT 1",
                params![q.kind.as_str(), q.target, q.mode.as_str(), q.rule],
                |r| r.get(0),
            )
            .optional()?;
        if let Some(id) = released {
            let rec = load(&tx, &id)?;
            tx.commit()?;
            return Ok(Claim::Released(rec));
        }
        let now = format_rfc3339(wall_now());
        let id = new_id(q);
        let state = if q.mode == Mode::Enforce {
            State::Isolating
        } else {
            State::DryRun
        };
        let evidence_dir = if q.mode == Mode::Enforce {
            self.dir.join(&id).to_string_lossy().into_owned()
        } else {
            String::new()
        };
        tx.execute(
            "INSERT INTO quarantines (id, kind, target, target_name, node, rule, severity,
             finding_id, mode, state, created, updated, detail, evidence_dir)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?11, '{}', ?12)",
            params![
                id,
                q.kind.as_str(),
                q.target,
                q.target_name,
                q.node,
                q.rule,
                q.severity.as_str(),
                q.finding_id,
                q.mode.as_str(),
                state.as_str(),
                now,
                evidence_dir
            ],
        )?;
        tx.execute(
            "INSERT OR IGNORE INTO findings (quarantine, finding_id, rule, time) VALUES (?1, ?2, ?3, ?4)",
            params![id, q.finding_id, q.rule, now],
        )?;
        let rec = load(&tx, &id)?;
        tx.commit()?;
        Ok(Claim::New(rec))
    }

    /// Attaches a finding to a quarantine; false if it was already attached.
    pub fn add_finding(&self, id: &str, finding_id: &str, rule: &str) -> Result<bool, StoreError> {
        let n = self.conn.execute(
            "INSERT OR IGNORE INTO findings (quarantine, finding_id, rule, time) VALUES (?1, ?2, ?3, ?4)",
            params![id, finding_id, rule, format_rfc3339(wall_now())],
        )?;
        Ok(n > 0)
    }

    /// Records one action.
    pub fn action(
        &self,
        id: &str,
        action: &str,
        outcome: Outcome,
        detail: &str,
    ) -> Result<Action, StoreError> {
        let a = Action {
            time: format_rfc3339(wall_now()),
            action: action.to_owned(),
            outcome,
            detail: detail.to_owned(),
        };
        self.conn.execute(
            "INSERT INTO actions (quarantine, time, action, outcome, detail) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![id, a.time, a.action, a.outcome.as_str(), a.detail],
        )?;
        Ok(a)
    }

    /// Sets the state and the release detail.
    pub fn update(
        &self,
        id: &str,
        state: State,
        detail: &serde_json::Value,
    ) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE quarantines SET state = ?2, detail = ?3, updated = ?4 WHERE id = ?1",
            params![
                id,
                state.as_str(),
                detail.to_string(),
                format_rfc3339(wall_now())
            ],
        )?;
        Ok(())
    }

    /// One record with its actions and findings.
    pub fn get(&self, id: &str) -> Result<Option<Quarantine>, StoreError> {
        let found: Option<String> = self
            .conn
            .query_row(
                "SELECT id FROM quarantines WHERE id = ?1",
                params![id],
                |r| r.get(0),
            )
            .optional()?;
        found.map(|id| load(&self.conn, &id)).transpose()
    }

    /// Every record, oldest first.
    pub fn list(&self) -> Result<Vec<Quarantine>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT id FROM quarantines ORDER BY created, id")?;
        let ids: Vec<String> = stmt
            .query_map([], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        ids.iter().map(|id| load(&self.conn, id)).collect()
    }
}

fn new_id(q: &NewQuarantine) -> String {
    let mut h = Sha256::new();
    h.update(q.kind.as_str());
    h.update([0]);
    h.update(q.target.as_bytes());
    h.update([0]);
    h.update(q.mode.as_str());
    h.update(wall_now().to_le_bytes());
    h.update(std::process::id().to_le_bytes());
    let hex = vigil_core::text::hex(&h.finalize()[..6]);
    format!("q{hex}")
}

fn corrupt(id: &str, reason: impl Into<String>) -> StoreError {
    StoreError::Corrupt {
        id: id.to_owned(),
        reason: reason.into(),
    }
}

fn load(conn: &Connection, id: &str) -> Result<Quarantine, StoreError> {
    type Row = (
        String,
        String,
        String,
        String,
        String,
        String,
        String,
        String,
        String,
        String,
        String,
        String,
        String,
        String,
    );
    let r: Row = conn.query_row(
        "SELECT id, kind, target, target_name, node, rule, severity, finding_id, mode, state,
         created, updated, detail, evidence_dir FROM quarantines WHERE id = ?1",
        params![id],
        |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
                r.get(6)?,
                r.get(7)?,
                r.get(8)?,
                r.get(9)?,
                r.get(10)?,
                r.get(11)?,
                r.get(12)?,
                r.get(13)?,
            ))
        },
    )?;
    let kind = TargetKind::parse(&r.1).ok_or_else(|| corrupt(id, format!("kind {:?}", r.1)))?;
    let severity: Severity = serde_json::from_value(serde_json::Value::String(r.6.clone()))
        .map_err(|_| corrupt(id, format!("severity {:?}", r.6)))?;
    let mode = Mode::parse(&r.8).ok_or_else(|| corrupt(id, format!("mode {:?}", r.8)))?;
    let state = State::parse(&r.9).ok_or_else(|| corrupt(id, format!("state {:?}", r.9)))?;
    let detail = serde_json::from_str(&r.12).map_err(|e| corrupt(id, format!("detail: {e}")))?;
    let mut stmt = conn.prepare(
        "SELECT time, action, outcome, detail FROM actions WHERE quarantine = ?1 ORDER BY seq",
    )?;
    let actions = stmt
        .query_map(params![id], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, String>(2)?,
                row.get::<_, String>(3)?,
            ))
        })?
        .map(|row| {
            let (time, action, outcome, detail) = row?;
            let outcome = Outcome::parse(&outcome)
                .ok_or_else(|| corrupt(id, format!("outcome {outcome:?}")))?;
            Ok(Action {
                time,
                action,
                outcome,
                detail,
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    let mut stmt =
        conn.prepare("SELECT finding_id FROM findings WHERE quarantine = ?1 ORDER BY rowid")?;
    let findings = stmt
        .query_map(params![id], |row| row.get(0))?
        .collect::<Result<Vec<String>, _>>()?;
    Ok(Quarantine {
        id: r.0,
        kind,
        target: r.2,
        target_name: r.3,
        node: r.4,
        rule: r.5,
        severity,
        finding_id: r.7,
        mode,
        state,
        created: r.10,
        updated: r.11,
        detail,
        evidence_dir: r.13,
        actions,
        findings,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp() -> PathBuf {
        let d = std::env::temp_dir().join(format!(
            "vigil-qstore-{}-{}",
            std::process::id(),
            wall_now()
        ));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn proto(mode: Mode, rule: &str) -> NewQuarantine {
        NewQuarantine {
            kind: TargetKind::Docker,
            target: "abc".into(),
            target_name: "evil".into(),
            node: "n".into(),
            rule: rule.into(),
            severity: Severity::Critical,
            finding_id: format!("f-{rule}"),
            mode,
        }
    }

    #[test]
    fn claims_are_idempotent_per_mode_and_released_rules_stay_released() {
        let dir = temp();
        let mut s = Store::open(&dir).unwrap();
        let Claim::New(q) = s.claim(&proto(Mode::Enforce, "r/a")).unwrap() else {
            panic!("first claim is new")
        };
        assert_eq!(q.state, State::Isolating);
        assert!(q.id.starts_with('q') && q.id.len() == 13, "{}", q.id);
        assert!(
            matches!(s.claim(&proto(Mode::Enforce, "r/b")).unwrap(), Claim::Existing(e) if e.id == q.id)
        );
        // A dry-run record does not stand in for an enforced one, nor the reverse.
        assert!(
            matches!(s.claim(&proto(Mode::DryRun, "r/a")).unwrap(), Claim::New(d) if d.state == State::DryRun)
        );
        assert!(s.add_finding(&q.id, "f-2", "r/b").unwrap());
        assert!(!s.add_finding(&q.id, "f-2", "r/b").unwrap());
        s.action(&q.id, "pause", Outcome::Ok, "paused").unwrap();
        s.update(&q.id, State::Released, &serde_json::json!({"networks": []}))
            .unwrap();
        // Released for r/a and r/b (attached finding): not claimed again for those …
        assert!(matches!(
            s.claim(&proto(Mode::Enforce, "r/a")).unwrap(),
            Claim::Released(_)
        ));
        assert!(matches!(
            s.claim(&proto(Mode::Enforce, "r/b")).unwrap(),
            Claim::Released(_)
        ));
        // … but a new rule is a new quarantine.
        assert!(matches!(
            s.claim(&proto(Mode::Enforce, "r/c")).unwrap(),
            Claim::New(_)
        ));
        drop(s);
        let s = Store::open(&dir).unwrap();
        let all = s.list().unwrap();
        assert_eq!(all.len(), 3);
        let first = s.get(&q.id).unwrap().unwrap();
        assert_eq!(first.state, State::Released);
        assert_eq!(first.actions[0].action, "pause");
        assert_eq!(first.findings, ["f-r/a", "f-2"]);
        let _ = std::fs::remove_dir_all(dir);
    }
}
