//! The run history, read back: what `mlcycle runs` lists. Runs are written
//! by [`crate::Session`]; this side only reads.

use crate::db::Db;
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
        let db = path.exists().then(|| Db::open(&path)).transpose()?;
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

    /// Run `id` with its stages, if recorded.
    pub fn run(&self, id: i64) -> Result<Option<(RunRow, Vec<StageRow>)>, DbError> {
        match &self.db {
            Some(db) => db.run(id),
            None => Ok(None),
        }
    }
}
