//! The workspace database (`.mlcycle/mlcycle.db`, SQLite in WAL mode): run
//! history with per-stage outcomes, and the file-hash memo.

use foldhash::{HashMap, HashMapExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;

use crate::hash::{Digest, Memo, Stamp};
use crate::summary::{RunSummary, StageResult};
use crate::workspace::{LockEntry, LockFile};

thread_local! {
    /// One read connection per thread for run-cache lookups, which happen
    /// on the coordinator and on status's worker threads.
    static LOOKUP: std::cell::RefCell<Option<(PathBuf, Connection)>> = const { std::cell::RefCell::new(None) };
}

/// The run-cache entry for `key` in the database at `path`, if any.
pub fn lookup_run_cache(path: &Path, key: &str) -> Option<LockEntry> {
    if !path.exists() {
        return None;
    }
    LOOKUP.with(|cell| {
        let mut cell = cell.borrow_mut();
        if cell.as_ref().is_none_or(|(p, _)| p != path) {
            let conn =
                Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
                    .ok()?;
            let _ = conn.busy_timeout(Duration::from_secs(30));
            *cell = Some((path.to_path_buf(), conn));
        }
        let (_, conn) = cell.as_ref()?;
        let text: String = conn
            .query_row("SELECT entry FROM run_cache WHERE key = ?1", [key], |r| {
                r.get(0)
            })
            .optional()
            .ok()??;
        serde_json::from_str(&text).ok()
    })
}

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[error("workspace database {path}: {source}")]
#[diagnostic(
    code(mlcycle::db),
    help("the database holds run history and a hash memo; if it is damaged, delete it (history is lost, nothing else)")
)]
pub struct DbError {
    pub path: PathBuf,
    #[source]
    pub source: rusqlite::Error,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    status TEXT NOT NULL,
    command TEXT NOT NULL,
    pipeline TEXT NOT NULL,
    duration_ms INTEGER,
    ran INTEGER DEFAULT 0, fresh INTEGER DEFAULT 0, restored INTEGER DEFAULT 0,
    failed INTEGER DEFAULT 0, skipped INTEGER DEFAULT 0
);
CREATE TABLE IF NOT EXISTS stage_runs (
    run_id INTEGER NOT NULL REFERENCES runs(id),
    stage TEXT NOT NULL,
    outcome TEXT NOT NULL,
    duration_ms INTEGER NOT NULL,
    reasons TEXT NOT NULL,
    detail TEXT,
    PRIMARY KEY (run_id, stage)
);
CREATE INDEX IF NOT EXISTS stage_runs_by_stage ON stage_runs(stage, run_id);
CREATE TABLE IF NOT EXISTS run_cache (
    key TEXT PRIMARY KEY,
    entry TEXT NOT NULL
);
-- The file-hash memo. Its stamp grew ctime and the device (a file replaced
-- in place with the same size and mtime kept its old hash); the memo is
-- only a cache, so the old table is dropped rather than migrated.
DROP TABLE IF EXISTS file_memo;
CREATE TABLE IF NOT EXISTS file_stamps (
    path TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    ctime_ns INTEGER NOT NULL,
    inode INTEGER NOT NULL,
    dev INTEGER NOT NULL,
    hash TEXT NOT NULL
);
";

/// The failure recorded for a stage that was running when its run's
/// process died.
pub const DIED_IN_STAGE: &str = "the mlcycle process died while this stage ran (killed, crashed, aborted or out of memory); it is stale until it runs again";

/// An open workspace database.
pub struct Db {
    conn: Connection,
    path: PathBuf,
}

/// One row of `mlcycle runs`.
#[derive(Debug, Clone, Serialize)]
pub struct RunRow {
    pub id: i64,
    pub started_at: String,
    pub finished_at: Option<String>,
    pub status: String,
    pub command: String,
    pub pipeline: String,
    pub duration_ms: Option<i64>,
    pub ran: i64,
    pub fresh: i64,
    pub restored: i64,
    pub failed: i64,
    pub skipped: i64,
    /// Why a run that ended its stages could not be recorded (its lock
    /// file could not be written, for example).
    pub error: Option<String>,
}

/// One stage of a recorded run.
#[derive(Debug, Clone, Serialize)]
pub struct StageRow {
    pub stage: String,
    pub outcome: String,
    pub duration_ms: i64,
    /// When it started, in milliseconds after its run started (unknown
    /// for runs recorded before mlcycle kept it).
    pub start_ms: Option<i64>,
    pub reasons: Vec<String>,
    pub detail: Option<String>,
}

impl Db {
    pub fn open(path: &Path) -> Result<Self, DbError> {
        let err = |source| DbError {
            path: path.to_path_buf(),
            source,
        };
        let conn = Connection::open(path).map_err(err)?;
        conn.busy_timeout(Duration::from_secs(30)).map_err(err)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(err)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(err)?;
        conn.execute_batch(SCHEMA).map_err(err)?;
        migrate(&conn).map_err(err)?;
        Ok(Self {
            conn,
            path: path.to_path_buf(),
        })
    }

    fn err(&self, source: rusqlite::Error) -> DbError {
        DbError {
            path: self.path.clone(),
            source,
        }
    }

    pub fn load_memo(&self) -> Result<Memo, DbError> {
        let mut stmt = self
            .conn
            .prepare("SELECT path, size, mtime_ns, ctime_ns, inode, dev, hash FROM file_stamps")
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    Stamp {
                        size: r.get::<_, i64>(1)? as u64,
                        mtime_ns: r.get(2)?,
                        ctime_ns: r.get(3)?,
                        inode: r.get::<_, i64>(4)? as u64,
                        dev: r.get::<_, i64>(5)? as u64,
                    },
                    r.get::<_, String>(6)?,
                ))
            })
            .map_err(|e| self.err(e))?;
        let mut map = HashMap::new();
        for row in rows {
            let (p, s, h) = row.map_err(|e| self.err(e))?;
            map.insert(p, (s, h));
        }
        Ok(Memo::from_entries(map))
    }

    pub fn save_memo(&mut self, changed: Vec<(String, Stamp, Digest)>) -> Result<(), DbError> {
        if changed.is_empty() {
            return Ok(());
        }
        let tx = self.conn.transaction().map_err(|e| DbError {
            path: self.path.clone(),
            source: e,
        })?;
        {
            let mut stmt = tx
                .prepare_cached(
                    "INSERT INTO file_stamps (path, size, mtime_ns, ctime_ns, inode, dev, hash)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                     ON CONFLICT(path) DO UPDATE SET size=excluded.size, mtime_ns=excluded.mtime_ns,
                     ctime_ns=excluded.ctime_ns, inode=excluded.inode, dev=excluded.dev,
                     hash=excluded.hash",
                )
                .map_err(|e| DbError {
                    path: self.path.clone(),
                    source: e,
                })?;
            for (p, s, h) in changed {
                stmt.execute(params![
                    p,
                    s.size as i64,
                    s.mtime_ns,
                    s.ctime_ns,
                    s.inode as i64,
                    s.dev as i64,
                    h
                ])
                .map_err(|e| DbError {
                    path: self.path.clone(),
                    source: e,
                })?;
            }
        }
        tx.commit().map_err(|e| self.err(e))
    }

    /// Adds run-cache entries (fingerprint key → outputs), in order: the
    /// last entry for a key wins, so the newest result for a fingerprint is
    /// the one restored (after `run --force`, the forced result). One transaction per run: a run-cache entry per stage
    /// would cost a file (an inode) or a commit per stage.
    pub fn save_run_cache<'e>(
        &mut self,
        entries: impl IntoIterator<Item = &'e LockEntry>,
    ) -> Result<(), DbError> {
        let path = self.path.clone();
        let e = |source| DbError {
            path: path.clone(),
            source,
        };
        let tx = self.conn.transaction().map_err(e)?;
        {
            let mut stmt = tx
                .prepare_cached("INSERT OR REPLACE INTO run_cache (key, entry) VALUES (?1, ?2)")
                .map_err(e)?;
            for entry in entries {
                if entry.unfinished {
                    continue;
                }
                let json = serde_json::to_string(entry).expect("entries serialize");
                stmt.execute(params![entry.key, json]).map_err(e)?;
            }
        }
        tx.commit().map_err(e)
    }

    /// Every run-cache entry.
    pub fn run_cache_entries(&self) -> Result<Vec<LockEntry>, DbError> {
        let mut stmt = self
            .conn
            .prepare("SELECT entry FROM run_cache")
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], |r| r.get::<_, String>(0))
            .map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for row in rows {
            let text = row.map_err(|e| self.err(e))?;
            if let Ok(entry) = serde_json::from_str(&text) {
                out.push(entry);
            }
        }
        Ok(out)
    }

    /// Removes run-cache entries by key.
    pub fn remove_run_cache(&mut self, keys: &[String]) -> Result<(), DbError> {
        let path = self.path.clone();
        let e = |source| DbError {
            path: path.clone(),
            source,
        };
        let tx = self.conn.transaction().map_err(e)?;
        for k in keys {
            tx.execute("DELETE FROM run_cache WHERE key = ?1", [k])
                .map_err(e)?;
        }
        tx.commit().map_err(e)
    }

    /// Records a run whose stages ended but whose results could not be
    /// recorded (`mlcycle.lock` could not be written): `failed`, with why.
    pub fn fail_run(&mut self, id: i64, summary: &RunSummary, error: &str) -> Result<(), DbError> {
        self.finish_run(id, summary)?;
        self.conn
            .execute(
                "UPDATE runs SET status='failed', error=?2 WHERE id=?1",
                params![id, error],
            )
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    /// Whether any run is recorded as `running`.
    pub fn has_running(&self) -> Result<bool, DbError> {
        self.conn
            .query_row(
                "SELECT EXISTS(SELECT 1 FROM runs WHERE status='running')",
                [],
                |r| r.get(0),
            )
            .map_err(|e| self.err(e))
    }

    /// Marks runs still recorded as running as `killed`, and records, from
    /// the journal in `lock`, the stages each finished (with their outcome
    /// and time) and those it was running when its process died (as
    /// failed), so that a stage
    /// that aborted the process (out of memory, a crash) shows as the
    /// failure it was. Call it holding the writer lock: then no run can
    /// really be in progress. Returns how many runs were marked.
    pub fn mark_abandoned(&mut self, lock: &LockFile) -> Result<usize, DbError> {
        let in_flight = &lock.in_flight;
        let path = self.path.clone();
        let e = |source| DbError {
            path: path.clone(),
            source,
        };
        let tx = self.conn.transaction().map_err(e)?;
        let running: Vec<i64> = {
            let mut stmt = tx
                .prepare("SELECT id FROM runs WHERE status='running'")
                .map_err(e)?;
            let ids = stmt
                .query_map([], |r| r.get(0))
                .map_err(e)?
                .collect::<Result<Vec<i64>, _>>()
                .map_err(e)?;
            ids
        };
        for &id in &running {
            // What the run finished before it died.
            let (mut ran, mut fresh, mut restored) = (0i64, 0i64, 0i64);
            for (stage, done) in lock.finished_in.iter().filter(|(_, d)| d.run == id) {
                tx.execute(
                    "INSERT OR IGNORE INTO stage_runs (run_id, stage, outcome, duration_ms, reasons, detail) VALUES (?1, ?2, ?3, ?4, '[]', NULL)",
                    params![id, stage, done.outcome, done.ms as i64],
                )
                .map_err(e)?;
                match done.outcome.as_str() {
                    "ran" => ran += 1,
                    "fresh" => fresh += 1,
                    "restored" => restored += 1,
                    _ => {}
                }
            }
            tx.execute(
                "UPDATE runs SET ran=ran+?2, fresh=fresh+?3, restored=restored+?4 WHERE id=?1",
                params![id, ran, fresh, restored],
            )
            .map_err(e)?;
            let died_in: Vec<&str> = in_flight
                .iter()
                .filter(|(_, run)| **run == Some(id))
                .map(|(stage, _)| stage.as_str())
                .collect();
            for stage in &died_in {
                tx.execute(
                    "INSERT OR IGNORE INTO stage_runs (run_id, stage, outcome, duration_ms, reasons, detail) VALUES (?1, ?2, 'failed', 0, '[]', ?3)",
                    params![id, stage, DIED_IN_STAGE],
                )
                .map_err(e)?;
            }
            let error = if died_in.is_empty() {
                "the mlcycle process ended before the run finished (killed, crashed or out of memory)"
                    .to_string()
            } else {
                format!(
                    "the mlcycle process ended while {} ran (killed, crashed or out of memory): {}",
                    if died_in.len() == 1 {
                        "this stage"
                    } else {
                        "these stages"
                    },
                    died_in.join(", ")
                )
            };
            tx.execute(
                "UPDATE runs SET status='killed', failed=failed+?2, error=COALESCE(error, ?3) WHERE id=?1",
                params![id, died_in.len() as i64, error],
            )
            .map_err(e)?;
        }
        tx.commit().map_err(e)?;
        Ok(running.len())
    }

    /// Marks a run whose stages were handed to Slurm (`--detach`): it is
    /// finished from this process's point of view, and is completed later
    /// by [`Db::finish_run`] when it is followed to its end.
    pub fn mark_detached(&self, id: i64) -> Result<(), DbError> {
        self.conn
            .execute(
                "UPDATE runs SET status='detached', finished_at=?2 WHERE id=?1",
                params![id, now_rfc3339()],
            )
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    /// Records the start of a run and returns its id.
    pub fn start_run(&self, command: &str, pipeline: &str) -> Result<i64, DbError> {
        self.conn
            .execute(
                "INSERT INTO runs (started_at, status, command, pipeline) VALUES (?1, 'running', ?2, ?3)",
                params![now_rfc3339(), command, pipeline],
            )
            .map_err(|e| self.err(e))?;
        Ok(self.conn.last_insert_rowid())
    }

    /// Records a finished (or interrupted) run with its stages.
    pub fn finish_run(&mut self, id: i64, summary: &RunSummary) -> Result<(), DbError> {
        let path = self.path.clone();
        let e = |source| DbError {
            path: path.clone(),
            source,
        };
        let tx = self.conn.transaction().map_err(e)?;
        let c = summary.counts();
        tx.execute(
            "UPDATE runs SET finished_at=?2, status=?3, duration_ms=?4, ran=?5, fresh=?6, restored=?7, failed=?8, skipped=?9 WHERE id=?1",
            params![
                id,
                now_rfc3339(),
                summary.status(),
                summary.duration.as_millis() as i64,
                c.ran as i64,
                c.fresh as i64,
                c.restored as i64,
                c.failed as i64,
                c.skipped as i64
            ],
        )
        .map_err(e)?;
        {
            let mut stmt = tx
                .prepare_cached(
                    "INSERT OR REPLACE INTO stage_runs (run_id, stage, outcome, duration_ms, reasons, detail, start_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                )
                .map_err(e)?;
            for r in &summary.stages {
                let reasons: Vec<String> = r.reasons.iter().map(|x| x.to_string()).collect();
                stmt.execute(params![
                    id,
                    r.stage,
                    r.outcome.label(),
                    r.duration.as_millis() as i64,
                    serde_json::to_string(&reasons).unwrap_or_default(),
                    detail(r),
                    r.start_ms.map(|ms| ms as i64)
                ])
                .map_err(e)?;
            }
        }
        tx.commit().map_err(e)
    }

    pub fn runs(&self, limit: usize) -> Result<Vec<RunRow>, DbError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT id, started_at, finished_at, status, command, pipeline, duration_ms, ran, fresh, restored, failed, skipped, error
                 FROM runs ORDER BY id DESC LIMIT ?1",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([limit as i64], row_to_run)
            .map_err(|e| self.err(e))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| self.err(e))?;
        Ok(rows)
    }

    pub fn run(&self, id: i64) -> Result<Option<(RunRow, Vec<StageRow>)>, DbError> {
        let run = self
            .conn
            .query_row(
                "SELECT id, started_at, finished_at, status, command, pipeline, duration_ms, ran, fresh, restored, failed, skipped, error FROM runs WHERE id=?1",
                [id],
                row_to_run,
            )
            .optional()
            .map_err(|e| self.err(e))?;
        let Some(run) = run else { return Ok(None) };
        let mut stmt = self
            .conn
            .prepare("SELECT stage, outcome, duration_ms, reasons, detail, start_ms FROM stage_runs WHERE run_id=?1 ORDER BY rowid")
            .map_err(|e| self.err(e))?;
        let stages = stmt
            .query_map([id], row_to_stage)
            .map_err(|e| self.err(e))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| self.err(e))?;
        Ok(Some((run, stages)))
    }

    /// Each stage's outcome in the latest recorded run that had it (one
    /// pass over the `stage_runs_by_stage` index).
    pub fn last_outcomes(&self) -> Result<std::collections::HashMap<String, String>, DbError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT s.stage, s.outcome FROM stage_runs s \
                 JOIN (SELECT stage, MAX(run_id) AS run_id FROM stage_runs GROUP BY stage) m \
                 ON m.stage = s.stage AND m.run_id = s.run_id",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(|e| self.err(e))?
            .collect::<Result<_, _>>()
            .map_err(|e| self.err(e))?;
        Ok(rows)
    }

    /// The newest `limit` recorded runs of `stage`, newest first, each with
    /// its run's id and start time (by the `stage_runs_by_stage` index).
    pub fn stage_history(
        &self,
        stage: &str,
        limit: usize,
    ) -> Result<Vec<(i64, String, StageRow)>, DbError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT s.stage, s.outcome, s.duration_ms, s.reasons, s.detail, s.start_ms, s.run_id, r.started_at \
                 FROM stage_runs s JOIN runs r ON r.id = s.run_id \
                 WHERE s.stage=?1 ORDER BY s.run_id DESC LIMIT ?2",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map(params![stage, limit as i64], |r| {
                Ok((r.get(6)?, r.get(7)?, row_to_stage(r)?))
            })
            .map_err(|e| self.err(e))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| self.err(e))?;
        Ok(rows)
    }
}

fn detail(r: &StageResult) -> Option<String> {
    r.outcome.detail()
}

fn row_to_stage(r: &rusqlite::Row<'_>) -> rusqlite::Result<StageRow> {
    let reasons: String = r.get(3)?;
    Ok(StageRow {
        stage: r.get(0)?,
        outcome: r.get(1)?,
        duration_ms: r.get(2)?,
        reasons: serde_json::from_str(&reasons).unwrap_or_default(),
        detail: r.get(4)?,
        start_ms: r.get(5)?,
    })
}

fn row_to_run(r: &rusqlite::Row<'_>) -> rusqlite::Result<RunRow> {
    Ok(RunRow {
        id: r.get(0)?,
        started_at: r.get(1)?,
        finished_at: r.get(2)?,
        status: r.get(3)?,
        command: r.get(4)?,
        pipeline: r.get(5)?,
        duration_ms: r.get(6)?,
        ran: r.get(7)?,
        fresh: r.get(8)?,
        restored: r.get(9)?,
        failed: r.get(10)?,
        skipped: r.get(11)?,
        error: r.get(12)?,
    })
}

/// Brings a database from an older mlcycle up to this schema
/// (`PRAGMA user_version` counts the steps taken).
fn migrate(conn: &Connection) -> rusqlite::Result<()> {
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if version < 1 {
        let has_error = conn.prepare("SELECT error FROM runs LIMIT 0").is_ok();
        if !has_error {
            conn.execute_batch("ALTER TABLE runs ADD COLUMN error TEXT")?;
        }
        conn.pragma_update(None, "user_version", 1)?;
    }
    if version < 2 {
        // When each stage started within its run (the runs timeline).
        let has = conn
            .prepare("SELECT start_ms FROM stage_runs LIMIT 0")
            .is_ok();
        if !has {
            conn.execute_batch("ALTER TABLE stage_runs ADD COLUMN start_ms INTEGER")?;
        }
        conn.pragma_update(None, "user_version", 2)?;
    }
    Ok(())
}

/// The current UTC time as `YYYY-MM-DDTHH:MM:SSZ`.
pub fn now_rfc3339() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn timestamp_shape() {
        let t = super::now_rfc3339();
        assert_eq!(t.len(), 20);
        assert!(t.starts_with("20"));
        assert!(t.ends_with('Z'));
    }
}
