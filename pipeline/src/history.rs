//! The run history, read back: what `mlcycle runs` lists. Runs are written
//! by [`crate::Session`]; this side reads, and settles the record of a
//! run whose process died (so `mlcycle runs` never shows a dead run as
//! `running`).

use crate::db::Db;
/// The detail recorded for a stage the mlcycle process died in.
pub use crate::db::DIED_IN_STAGE;
pub use crate::db::{now_rfc3339, DbError, RunRow, StageRow};
use crate::workspace::Workspace;

/// The recorded runs of a workspace.
pub struct History {
    db: Option<Db>,
}

impl History {
    /// Opens the history of `ws`; a workspace that never ran has an empty
    /// one (and no database is created).
    pub fn open(ws: &Workspace) -> Result<Self, DbError> {
        let path = ws.db_path();
        let mut db = path.exists().then(|| Db::open(&path)).transpose()?;
        if let Some(db) = &mut db {
            settle_dead_runs(ws, db)?;
        }
        Ok(Self { db })
    }

    /// Whether any run was ever recorded (the database exists).
    pub fn exists(&self) -> bool {
        self.db.is_some()
    }

    /// The newest `limit` runs, newest first.
    pub fn runs(&self, limit: usize) -> Result<Vec<RunRow>, DbError> {
        match &self.db {
            Some(db) => db.runs(limit),
            None => Ok(vec![]),
        }
    }

    /// The newest `limit` recorded runs of one stage, newest first: (run
    /// id, run start, the stage's row).
    pub fn stage_history(
        &self,
        stage: &str,
        limit: usize,
    ) -> Result<Vec<(i64, String, StageRow)>, DbError> {
        match &self.db {
            Some(db) => db.stage_history(stage, limit),
            None => Ok(vec![]),
        }
    }

    /// Each stage's outcome in the latest recorded run that had it.
    pub fn last_outcomes(&self) -> Result<std::collections::HashMap<String, String>, DbError> {
        match &self.db {
            Some(db) => db.last_outcomes(),
            None => Ok(Default::default()),
        }
    }

    /// Run `id` with its stages, if recorded.
    pub fn run(&self, id: i64) -> Result<Option<(RunRow, Vec<StageRow>)>, DbError> {
        match &self.db {
            Some(db) => db.run(id),
            None => Ok(None),
        }
    }
}

/// Marks runs recorded as `running` whose process is gone as `killed`,
/// with what they finished and the stages they were running (as failed),
/// as the next run would.
/// Only when no run holds the writer lock (taken without waiting and let
/// go at once); a run in progress is left as it is.
fn settle_dead_runs(ws: &Workspace, db: &mut Db) -> Result<(), DbError> {
    if !db.has_running()? {
        return Ok(());
    }
    let Ok(_writer) = ws.lock_writer(false, |_| {}) else {
        return Ok(());
    };
    // The journal names the stages the dead run was in; if it cannot be
    // read, the run is still marked, with no stage to blame.
    let lock = ws.read_lock().unwrap_or_default();
    db.mark_abandoned(&lock).map(|_| ())
}
