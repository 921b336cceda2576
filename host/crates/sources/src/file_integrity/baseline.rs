//! The baseline: the last known state of every watched path, kept in SQLite
//! so that a change made while Vigil was down is found at the next start.
//!
//! An in-memory copy answers every comparison; SQLite is only written when
//! something changed, one transaction per batch of changes.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use rusqlite::{Connection, params};

use vigil_core::model::FileState;

/// Bumped when the tables change shape; an unknown version is refused
/// rather than misread.
const SCHEMA_VERSION: i64 = 1;

/// Why the baseline could not be used.
#[derive(Debug, thiserror::Error)]
pub enum BaselineError {
    /// The database file is not a private file of Vigil's user.
    #[error("baseline files refused")]
    Private(#[from] vigil_core::fsperm::FsPermError),
    /// The database file could not be opened or created.
    #[error("cannot open the baseline database {path}")]
    Open {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    /// The tables could not be created or checked.
    #[error("cannot prepare the baseline schema")]
    Schema(#[source] rusqlite::Error),
    /// The database was written by an incompatible version.
    #[error("baseline schema version {found} is not supported (expected {SCHEMA_VERSION})")]
    Version { found: i64 },
    /// Reading the stored states failed.
    #[error("cannot load the baseline")]
    Load(#[source] rusqlite::Error),
    /// Writing changes failed; the in-memory copy is left as it was.
    #[error("cannot write the baseline")]
    Write(#[source] rusqlite::Error),
}

/// One path's new state (`None`: gone) to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Update {
    /// The path.
    pub path: String,
    /// Its state now.
    pub state: Option<FileState>,
}

/// The stored baseline and its in-memory copy.
pub struct Baseline {
    conn: Connection,
    files: BTreeMap<String, FileState>,
    specs: BTreeSet<String>,
}

impl Baseline {
    /// Opens (or creates) the database at `path`.
    pub fn open(path: &Path) -> Result<Self, BaselineError> {
        // Created 0600 before SQLite opens it (see `vigil_core::fsperm`).
        vigil_core::fsperm::private_sqlite(path)?;
        let conn = Connection::open(path).map_err(|source| BaselineError::Open {
            path: path.to_owned(),
            source,
        })?;
        Self::init(conn)
    }

    /// A baseline that lives in memory only (tests).
    #[cfg(test)]
    pub fn in_memory() -> Result<Self, BaselineError> {
        let conn = Connection::open_in_memory().map_err(|source| BaselineError::Open {
            path: PathBuf::from(":memory:"),
            source,
        })?;
        Self::init(conn)
    }

    fn init(conn: Connection) -> Result<Self, BaselineError> {
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
             CREATE TABLE IF NOT EXISTS specs (spec TEXT PRIMARY KEY);
             CREATE TABLE IF NOT EXISTS files (
                 path TEXT PRIMARY KEY,
                 sha256 TEXT NOT NULL,
                 size INTEGER NOT NULL,
                 mode INTEGER NOT NULL,
                 uid INTEGER NOT NULL,
                 gid INTEGER NOT NULL,
                 mtime INTEGER NOT NULL
             );",
        )
        .map_err(BaselineError::Schema)?;
        conn.execute(
            "INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', ?1)",
            params![SCHEMA_VERSION],
        )
        .map_err(BaselineError::Schema)?;
        let found: i64 = conn
            .query_row(
                "SELECT value FROM meta WHERE key = 'schema_version'",
                [],
                |r| r.get(0),
            )
            .map_err(BaselineError::Schema)?;
        if found != SCHEMA_VERSION {
            return Err(BaselineError::Version { found });
        }
        let files = load_files(&conn)?;
        let specs = load_specs(&conn)?;
        Ok(Self { conn, files, specs })
    }

    /// The recorded state of `path`.
    pub fn get(&self, path: &str) -> Option<&FileState> {
        self.files.get(path)
    }

    /// Every recorded path.
    pub fn paths(&self) -> impl Iterator<Item = &str> {
        self.files.keys().map(String::as_str)
    }

    /// How many paths are recorded.
    pub fn len(&self) -> usize {
        self.files.len()
    }

    /// The watched-path specs the baseline was recorded for: a spec not in
    /// this set is new (first start, or added to the configuration) and is
    /// recorded silently rather than reported as a flood of creations.
    pub fn specs(&self) -> &BTreeSet<String> {
        &self.specs
    }

    /// Records new states and the current spec set in one transaction; the
    /// in-memory copy changes only if the transaction committed.
    pub fn apply(
        &mut self,
        updates: &[Update],
        specs: Option<&BTreeSet<String>>,
    ) -> Result<(), BaselineError> {
        let tx = self.conn.transaction().map_err(BaselineError::Write)?;
        for u in updates {
            match &u.state {
                Some(s) => tx.execute(
                    "INSERT OR REPLACE INTO files (path, sha256, size, mode, uid, gid, mtime)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                    params![
                        u.path,
                        s.sha256,
                        s.size as i64,
                        s.mode,
                        s.uid,
                        s.gid,
                        s.mtime as i64
                    ],
                ),
                None => tx.execute("DELETE FROM files WHERE path = ?1", params![u.path]),
            }
            .map_err(BaselineError::Write)?;
        }
        if let Some(specs) = specs {
            tx.execute("DELETE FROM specs", [])
                .map_err(BaselineError::Write)?;
            for s in specs {
                tx.execute("INSERT INTO specs (spec) VALUES (?1)", params![s])
                    .map_err(BaselineError::Write)?;
            }
        }
        tx.commit().map_err(BaselineError::Write)?;
        for u in updates {
            match &u.state {
                Some(s) => self.files.insert(u.path.clone(), s.clone()),
                None => self.files.remove(&u.path),
            };
        }
        if let Some(specs) = specs {
            self.specs = specs.clone();
        }
        Ok(())
    }
}

fn load_files(conn: &Connection) -> Result<BTreeMap<String, FileState>, BaselineError> {
    let mut stmt = conn
        .prepare("SELECT path, sha256, size, mode, uid, gid, mtime FROM files")
        .map_err(BaselineError::Load)?;
    let rows = stmt
        .query_map([], |r| {
            // SQLite integers are i64; u64 sizes and times are stored bit-for-bit.
            Ok((
                r.get::<_, String>(0)?,
                FileState {
                    sha256: r.get(1)?,
                    size: r.get::<_, i64>(2)? as u64,
                    mode: r.get(3)?,
                    uid: r.get(4)?,
                    gid: r.get(5)?,
                    mtime: r.get::<_, i64>(6)? as u64,
                },
            ))
        })
        .map_err(BaselineError::Load)?;
    rows.collect::<Result<_, _>>().map_err(BaselineError::Load)
}

fn load_specs(conn: &Connection) -> Result<BTreeSet<String>, BaselineError> {
    let mut stmt = conn
        .prepare("SELECT spec FROM specs")
        .map_err(BaselineError::Load)?;
    let rows = stmt
        .query_map([], |r| r.get::<_, String>(0))
        .map_err(BaselineError::Load)?;
    rows.collect::<Result<_, _>>().map_err(BaselineError::Load)
}
