//! The experiment records: `.mlcycle/experiments.db` (SQLite), one row per
//! experiment with its params, metrics, stage outcomes and lock.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{params, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::ExpError;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS experiments (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL,
    finished_at TEXT,
    status TEXT NOT NULL,
    pid INTEGER,
    commit_id TEXT,
    set_params TEXT NOT NULL,
    params TEXT NOT NULL DEFAULT '{}',
    metrics TEXT NOT NULL DEFAULT '{}',
    stages TEXT NOT NULL DEFAULT '[]',
    steps TEXT NOT NULL DEFAULT '{}',
    lock TEXT,
    duration_ms INTEGER,
    error TEXT
);
CREATE INDEX IF NOT EXISTS experiments_params ON experiments (params);
";

/// Where an experiment stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ExpStatus {
    /// Waiting for `exp run --run-all`.
    Queued,
    /// Running (or its process died: see [`ExpRecord::alive`]).
    Running,
    /// Every stage ended fresh, restored or ran.
    Done,
    /// A stage failed.
    Failed,
    /// Stopped by Ctrl-C; the next `exp run` of it resumes.
    Interrupted,
}

impl ExpStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Done => "done",
            Self::Failed => "failed",
            Self::Interrupted => "interrupted",
        }
    }

    fn parse(s: &str) -> Self {
        match s {
            "queued" => Self::Queued,
            "running" => Self::Running,
            "done" => Self::Done,
            "interrupted" => Self::Interrupted,
            _ => Self::Failed,
        }
    }
}

/// One stage of an experiment: how it ended and how long it took.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ExpStage {
    pub stage: String,
    pub outcome: String,
    pub ms: u64,
}

/// One recorded experiment.
#[derive(Debug, Clone, Serialize)]
pub struct ExpRecord {
    /// Creation order (1, 2, …).
    pub seq: i64,
    pub name: String,
    pub created_at: String,
    pub finished_at: Option<String>,
    pub status: ExpStatus,
    /// The git commit of the workspace when the experiment was made.
    pub commit: Option<String>,
    /// The params the experiment sets (`-S`), in order.
    pub set: Map<String, Value>,
    /// Every param of the pipeline as the experiment ran it, by dotted key.
    pub params: Map<String, Value>,
    /// Every metric its stages wrote, as `STAGE.KEY`.
    pub metrics: Map<String, Value>,
    pub stages: Vec<ExpStage>,
    pub duration_ms: Option<u64>,
    pub error: Option<String>,
    #[serde(skip)]
    pub pid: Option<u32>,
}

impl ExpRecord {
    /// Whether a `running` experiment's process is still alive.
    pub fn alive(&self) -> bool {
        self.status == ExpStatus::Running
            && self
                .pid
                .is_some_and(|pid| Path::new(&format!("/proc/{pid}")).exists())
    }
}

/// What a finished experiment records.
pub struct Finish<'a> {
    pub status: ExpStatus,
    pub params: &'a Map<String, Value>,
    pub metrics: &'a Map<String, Value>,
    pub stages: &'a [ExpStage],
    /// Step-wise metrics by stage (JSON), when the run logged any.
    pub steps: Option<&'a str>,
    pub lock: Option<&'a str>,
    pub duration_ms: u64,
    pub error: Option<&'a str>,
}

impl Finish<'_> {
    /// The record of `r` as it stands, with another status.
    pub fn same(r: &ExpRecord, status: ExpStatus) -> Finish<'_> {
        Finish {
            status,
            params: &r.params,
            metrics: &r.metrics,
            stages: &r.stages,
            steps: None,
            lock: None,
            duration_ms: r.duration_ms.unwrap_or(0),
            error: r.error.as_deref(),
        }
    }
}

/// The experiments database of a workspace.
pub struct ExpStore {
    conn: Connection,
    path: PathBuf,
}

const COLUMNS: &str = "seq, name, created_at, finished_at, status, pid, commit_id, set_params, params, metrics, stages, duration_ms, error";

impl ExpStore {
    /// Opens (creating) `.mlcycle/experiments.db` in the state folder `state`.
    ///
    /// # Errors
    /// The database cannot be opened or created.
    pub fn open(state: &Path) -> Result<Self, ExpError> {
        let path = state.join("experiments.db");
        let err = |source| ExpError::Db {
            path: path.clone(),
            source,
        };
        std::fs::create_dir_all(state).map_err(|source| ExpError::Io {
            path: state.to_path_buf(),
            source,
        })?;
        let conn = Connection::open(&path).map_err(err)?;
        conn.busy_timeout(Duration::from_secs(30)).map_err(err)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(err)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(err)?;
        conn.execute_batch(SCHEMA).map_err(err)?;
        Ok(Self { conn, path })
    }

    /// Opens the database only if it exists (`exp show` in a workspace
    /// that never ran one has nothing to show).
    pub fn open_existing(state: &Path) -> Result<Option<Self>, ExpError> {
        if state.join("experiments.db").exists() {
            Self::open(state).map(Some)
        } else {
            Ok(None)
        }
    }

    fn err(&self, source: rusqlite::Error) -> ExpError {
        ExpError::Db {
            path: self.path.clone(),
            source,
        }
    }

    /// The experiment whose params are exactly `params` (every param, by
    /// dotted key), if any.
    pub fn find_by_params(
        &self,
        params: &Map<String, Value>,
    ) -> Result<Option<ExpRecord>, ExpError> {
        let json = Value::Object(params.clone()).to_string();
        self.conn
            .query_row(
                &format!(
                    "SELECT {COLUMNS} FROM experiments WHERE params = ?1 ORDER BY seq DESC LIMIT 1"
                ),
                [json],
                row_to_record,
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    /// Records a new queued experiment.
    ///
    /// # Errors
    /// The name is taken, or the database fails.
    pub fn insert(
        &self,
        name: &str,
        set: &Map<String, Value>,
        params: &Map<String, Value>,
        commit: Option<&str>,
    ) -> Result<(), ExpError> {
        if self.get(name)?.is_some() {
            return Err(ExpError::NameTaken { name: name.into() });
        }
        self.conn
            .execute(
                "INSERT INTO experiments (name, created_at, status, commit_id, set_params, params) VALUES (?1, ?2, 'queued', ?3, ?4, ?5)",
                params![
                    name,
                    crate::db::now_rfc3339(),
                    commit,
                    Value::Object(set.clone()).to_string(),
                    Value::Object(params.clone()).to_string()
                ],
            )
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    /// Marks an experiment as started by this process.
    pub fn start(&self, name: &str) -> Result<(), ExpError> {
        self.conn
            .execute(
                "UPDATE experiments SET status='running', pid=?2, error=NULL WHERE name=?1",
                params![name, std::process::id()],
            )
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    /// Records how an experiment ended.
    pub fn finish(&self, name: &str, f: &Finish<'_>) -> Result<(), ExpError> {
        self.conn
            .execute(
                "UPDATE experiments SET status=?2, finished_at=?3, params=?4, metrics=?5, stages=?6, lock=COALESCE(?7, lock), duration_ms=?8, error=?9, steps=COALESCE(?10, steps), pid=NULL WHERE name=?1",
                params![
                    name,
                    f.status.as_str(),
                    crate::db::now_rfc3339(),
                    Value::Object(f.params.clone()).to_string(),
                    Value::Object(f.metrics.clone()).to_string(),
                    serde_json::to_string(f.stages).unwrap_or_else(|_| "[]".into()),
                    f.lock,
                    f.duration_ms as i64,
                    f.error,
                    f.steps,
                ],
            )
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    /// One experiment.
    pub fn get(&self, name: &str) -> Result<Option<ExpRecord>, ExpError> {
        self.conn
            .query_row(
                &format!("SELECT {COLUMNS} FROM experiments WHERE name = ?1"),
                [name],
                row_to_record,
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    /// The step-wise metrics an experiment's stages logged: stage → list
    /// of JSON objects, in the order written.
    pub fn steps_of(&self, name: &str) -> Result<Map<String, Value>, ExpError> {
        let text: Option<String> = self
            .conn
            .query_row(
                "SELECT steps FROM experiments WHERE name = ?1",
                [name],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.err(e))?;
        Ok(text.as_deref().map(object).unwrap_or_default())
    }

    /// Replaces an experiment's step-wise metrics (JSON: stage → lines).
    pub fn set_steps(&self, name: &str, steps: &str) -> Result<(), ExpError> {
        self.conn
            .execute(
                "UPDATE experiments SET steps = ?2 WHERE name = ?1",
                [name, steps],
            )
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    /// The lock file an experiment ended with.
    pub fn lock_of(&self, name: &str) -> Result<Option<String>, ExpError> {
        self.conn
            .query_row(
                "SELECT lock FROM experiments WHERE name = ?1",
                [name],
                |r| r.get::<_, Option<String>>(0),
            )
            .optional()
            .map(Option::flatten)
            .map_err(|e| self.err(e))
    }

    /// Every experiment, oldest first, handed to `each` one at a time.
    pub fn for_each(&self, mut each: impl FnMut(ExpRecord)) -> Result<(), ExpError> {
        let mut stmt = self
            .conn
            .prepare(&format!("SELECT {COLUMNS} FROM experiments ORDER BY seq"))
            .map_err(|e| self.err(e))?;
        let rows = stmt.query_map([], row_to_record).map_err(|e| self.err(e))?;
        for r in rows {
            each(r.map_err(|e| self.err(e))?);
        }
        Ok(())
    }

    /// Every experiment as a compact table (`exp show`), oldest first.
    pub fn listing(&self) -> Result<super::listing::Listing, ExpError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT seq, name, created_at, status, commit_id, duration_ms, set_params, params, metrics, error, pid FROM experiments ORDER BY seq",
            )
            .map_err(|e| self.err(e))?;
        let mut rows = stmt.query([]).map_err(|e| self.err(e))?;
        let mut out = super::listing::Listing::default();
        while let Some(r) = rows.next().map_err(|e| self.err(e))? {
            let text = |i: usize| -> rusqlite::Result<&str> {
                r.get_ref(i)?.as_str().map_err(|e| {
                    rusqlite::Error::FromSqlConversionFailure(
                        i,
                        rusqlite::types::Type::Text,
                        Box::new(e),
                    )
                })
            };
            let mut status = ExpStatus::parse(text(3).map_err(|e| self.err(e))?);
            let pid: Option<i64> = r.get(10).map_err(|e| self.err(e))?;
            // A `running` experiment whose process is gone was killed: it
            // resumes when run again, as an interrupted one does.
            if status == ExpStatus::Running
                && !pid.is_some_and(|p| Path::new(&format!("/proc/{p}")).exists())
            {
                status = ExpStatus::Interrupted;
            }
            let row = super::listing::Row {
                seq: r.get(0).map_err(|e| self.err(e))?,
                name: r.get(1).map_err(|e| self.err(e))?,
                created_at: r.get(2).map_err(|e| self.err(e))?,
                status,
                error: r.get(9).map_err(|e| self.err(e))?,
                commit: r.get(4).map_err(|e| self.err(e))?,
                duration_ms: r
                    .get::<_, Option<i64>>(5)
                    .map_err(|e| self.err(e))?
                    .map(|d| d.max(0) as u64),
                params: Vec::new(),
                metrics: Vec::new(),
            };
            let (set, params, metrics) = (
                text(6).map_err(|e| self.err(e))?,
                text(7).map_err(|e| self.err(e))?,
                text(8).map_err(|e| self.err(e))?,
            );
            // A row that does not parse (edited by hand) shows without values.
            if out.push_json(row.clone(), set, params, metrics).is_err() {
                out.rows.push(row);
            }
        }
        Ok(out)
    }

    /// Every experiment, oldest first.
    pub fn all(&self) -> Result<Vec<ExpRecord>, ExpError> {
        let mut out = Vec::new();
        self.for_each(|r| out.push(r))?;
        Ok(out)
    }

    /// Deletes an experiment's record. Returns whether it existed.
    pub fn remove(&self, name: &str) -> Result<bool, ExpError> {
        self.conn
            .execute("DELETE FROM experiments WHERE name = ?1", [name])
            .map(|n| n > 0)
            .map_err(|e| self.err(e))
    }

    /// Renames an experiment.
    ///
    /// # Errors
    /// No experiment `old`, or `new` is taken.
    pub fn rename(&self, old: &str, new: &str) -> Result<(), ExpError> {
        if self.get(new)?.is_some() {
            return Err(ExpError::NameTaken { name: new.into() });
        }
        let n = self
            .conn
            .execute(
                "UPDATE experiments SET name = ?2 WHERE name = ?1",
                [old, new],
            )
            .map_err(|e| self.err(e))?;
        if n == 0 {
            return Err(ExpError::NoSuchExperiment {
                name: old.into(),
                help: String::new(),
            });
        }
        Ok(())
    }

    /// All names (for "did you mean").
    pub fn names(&self) -> Result<Vec<String>, ExpError> {
        let mut stmt = self
            .conn
            .prepare("SELECT name FROM experiments ORDER BY seq")
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], |r| r.get::<_, String>(0))
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<Vec<_>, _>>().map_err(|e| self.err(e))
    }
}

fn object(text: &str) -> Map<String, Value> {
    match serde_json::from_str(text) {
        Ok(Value::Object(m)) => m,
        _ => Map::new(),
    }
}

fn row_to_record(r: &rusqlite::Row<'_>) -> rusqlite::Result<ExpRecord> {
    Ok(ExpRecord {
        seq: r.get(0)?,
        name: r.get(1)?,
        created_at: r.get(2)?,
        finished_at: r.get(3)?,
        status: ExpStatus::parse(&r.get::<_, String>(4)?),
        pid: r
            .get::<_, Option<i64>>(5)?
            .and_then(|p| u32::try_from(p).ok()),
        commit: r.get(6)?,
        set: object(&r.get::<_, String>(7)?),
        params: object(&r.get::<_, String>(8)?),
        metrics: object(&r.get::<_, String>(9)?),
        stages: serde_json::from_str(&r.get::<_, String>(10)?).unwrap_or_default(),
        duration_ms: r.get::<_, Option<i64>>(11)?.map(|d| d.max(0) as u64),
        error: r.get(12)?,
    })
}
