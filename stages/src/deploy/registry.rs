//! The model registry: numbered model versions and the champion, in the
//! workspace database (`.mlcycle/mlcycle.db`).
//!
//! Registering a bundle copies its folder to `.mlcycle/models/<version>/`
//! (read-only), so a version stays servable whatever later runs write to
//! `artifacts/`. One version is the champion; every change of champion —
//! a promotion by a pipeline, `mlcycle models promote`, a rollback — is an
//! event with its reason, and the champion is the version of the latest
//! event. Promotion decisions, including "kept", are kept for the
//! iteration history.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS models (
    version     INTEGER PRIMARY KEY AUTOINCREMENT,
    name        TEXT NOT NULL,
    bundle_hash TEXT NOT NULL,
    kind        TEXT NOT NULL,
    task        TEXT NOT NULL,
    metrics     TEXT NOT NULL,
    params      TEXT NOT NULL,
    data_hash   TEXT NOT NULL,
    run_id      INTEGER,
    stage       TEXT NOT NULL,
    created_at  TEXT NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS models_bundle ON models(bundle_hash);
CREATE TABLE IF NOT EXISTS champion_events (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    version   INTEGER NOT NULL,
    previous  INTEGER,
    action    TEXT NOT NULL,
    reason    TEXT NOT NULL,
    at        TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS decisions (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id      INTEGER,
    stage       TEXT NOT NULL,
    candidate   INTEGER NOT NULL,
    champion    INTEGER,
    metric      TEXT NOT NULL,
    candidate_value REAL,
    champion_value  REAL,
    promoted    INTEGER NOT NULL,
    rows        INTEGER NOT NULL,
    train_rows  INTEGER,
    message     TEXT NOT NULL,
    at          TEXT NOT NULL
);
";

/// What can go wrong with the registry.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum RegistryError {
    #[diagnostic(code(mlcycle::registry::db))]
    #[error("model registry: {0}")]
    Db(#[from] rusqlite::Error),
    #[diagnostic(code(mlcycle::registry::io))]
    #[error("model registry: {0}")]
    Io(#[from] io::Error),
    #[diagnostic(code(mlcycle::registry::no_version))]
    #[error("there is no model version {0}")]
    NoVersion(i64),
    #[diagnostic(code(mlcycle::registry::refused))]
    #[error("{0}")]
    Refused(String),
}

/// A registered model version.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelVersion {
    pub version: i64,
    pub name: String,
    /// The bundle's own version (a content hash).
    pub bundle_hash: String,
    pub kind: String,
    pub task: String,
    pub metrics: serde_json::Value,
    pub params: serde_json::Value,
    pub data_hash: String,
    pub run_id: Option<i64>,
    pub stage: String,
    pub created_at: String,
    /// The registered copy of the bundle.
    pub path: PathBuf,
}

/// A change of champion.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChampionEvent {
    pub id: i64,
    pub version: i64,
    pub previous: Option<i64>,
    pub action: String,
    pub reason: String,
    pub at: String,
}

/// A promotion decision made by a pipeline.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Decision {
    pub run_id: Option<i64>,
    pub stage: String,
    pub candidate: i64,
    pub champion: Option<i64>,
    pub metric: String,
    pub candidate_value: Option<f64>,
    pub champion_value: Option<f64>,
    pub promoted: bool,
    /// Held-out rows the decision was made on.
    pub rows: i64,
    /// Rows the candidate was trained on (the data set's size).
    pub train_rows: Option<i64>,
    pub message: String,
    pub at: String,
}

/// A bundle to register.
#[derive(Debug, Clone)]
pub struct NewModel<'a> {
    pub name: &'a str,
    pub bundle_hash: &'a str,
    pub kind: &'a str,
    pub task: &'a str,
    pub metrics: &'a serde_json::Value,
    pub params: &'a serde_json::Value,
    pub data_hash: &'a str,
    pub run_id: Option<i64>,
    pub stage: &'a str,
}

/// The registry of one workspace.
pub struct ModelRegistry {
    conn: Connection,
    models_dir: PathBuf,
}

impl ModelRegistry {
    /// Opens the registry in the workspace state folder (`.mlcycle`).
    pub fn open(state_dir: &Path) -> Result<Self, RegistryError> {
        fs::create_dir_all(state_dir)?;
        let conn = super::store::open(&state_dir.join("mlcycle.db"))?;
        conn.execute_batch(SCHEMA)?;
        Ok(ModelRegistry {
            conn,
            models_dir: state_dir.join("models"),
        })
    }

    fn row(&self, r: &rusqlite::Row<'_>) -> rusqlite::Result<ModelVersion> {
        let version: i64 = r.get(0)?;
        let text = |i: usize| -> rusqlite::Result<serde_json::Value> {
            let s: String = r.get(i)?;
            Ok(serde_json::from_str(&s).unwrap_or(serde_json::Value::Null))
        };
        Ok(ModelVersion {
            version,
            name: r.get(1)?,
            bundle_hash: r.get(2)?,
            kind: r.get(3)?,
            task: r.get(4)?,
            metrics: text(5)?,
            params: text(6)?,
            data_hash: r.get(7)?,
            run_id: r.get(8)?,
            stage: r.get(9)?,
            created_at: r.get(10)?,
            path: self.models_dir.join(version.to_string()),
        })
    }

    const COLUMNS: &'static str = "version, name, bundle_hash, kind, task, metrics, params, \
                                   data_hash, run_id, stage, created_at";

    /// Registers a bundle folder, or returns the version that already holds
    /// the same bundle.
    pub fn register(
        &mut self,
        m: &NewModel<'_>,
        bundle_dir: &Path,
    ) -> Result<(ModelVersion, bool), RegistryError> {
        if let Some(v) = self.by_bundle(m.bundle_hash)? {
            return Ok((v, false));
        }
        let tx = self.conn.transaction()?;
        tx.execute(
            "INSERT INTO models (name, bundle_hash, kind, task, metrics, params, data_hash, run_id, stage, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            params![
                m.name,
                m.bundle_hash,
                m.kind,
                m.task,
                m.metrics.to_string(),
                m.params.to_string(),
                m.data_hash,
                m.run_id,
                m.stage,
                super::store::now_rfc3339()
            ],
        )?;
        let version = tx.last_insert_rowid();
        // Copy the bundle beside the database before the row is committed:
        // a crash leaves at worst an orphan folder, never a row without
        // its files.
        let dest = self.models_dir.join(version.to_string());
        let tmp = self
            .models_dir
            .join(format!(".tmp-{version}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&tmp);
        copy_dir(bundle_dir, &tmp)?;
        let _ = fs::remove_dir_all(&dest);
        fs::rename(&tmp, &dest)?;
        tx.commit()?;
        let v = self.get(version)?;
        Ok((v, true))
    }

    fn by_bundle(&self, hash: &str) -> Result<Option<ModelVersion>, RegistryError> {
        Ok(self
            .conn
            .query_row(
                &format!(
                    "SELECT {} FROM models WHERE bundle_hash = ?1",
                    Self::COLUMNS
                ),
                [hash],
                |r| self.row(r),
            )
            .optional()?)
    }

    /// One version.
    pub fn get(&self, version: i64) -> Result<ModelVersion, RegistryError> {
        self.conn
            .query_row(
                &format!("SELECT {} FROM models WHERE version = ?1", Self::COLUMNS),
                [version],
                |r| self.row(r),
            )
            .optional()?
            .ok_or(RegistryError::NoVersion(version))
    }

    /// Every version, oldest first.
    pub fn list(&self) -> Result<Vec<ModelVersion>, RegistryError> {
        let mut st = self.conn.prepare(&format!(
            "SELECT {} FROM models ORDER BY version",
            Self::COLUMNS
        ))?;
        let rows = st.query_map([], |r| self.row(r))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The champion's version, if any.
    pub fn champion_version(&self) -> Result<Option<i64>, RegistryError> {
        Ok(self
            .conn
            .query_row(
                "SELECT version FROM champion_events ORDER BY id DESC LIMIT 1",
                [],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// The champion, if any.
    pub fn champion(&self) -> Result<Option<ModelVersion>, RegistryError> {
        match self.champion_version()? {
            Some(v) => Ok(Some(self.get(v)?)),
            None => Ok(None),
        }
    }

    /// Makes `version` the champion.
    pub fn promote(
        &mut self,
        version: i64,
        action: &str,
        reason: &str,
    ) -> Result<ChampionEvent, RegistryError> {
        self.get(version)?;
        let previous = self.champion_version()?;
        if previous == Some(version) {
            // Already the champion: recording "N replaced N" would leave
            // rollback nothing to go back to.
            return Ok(self.events()?.pop().expect("a champion has an event"));
        }
        self.conn.execute(
            "INSERT INTO champion_events (version, previous, action, reason, at) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![version, previous, action, reason, super::store::now_rfc3339()],
        )?;
        Ok(self.events()?.pop().expect("just inserted"))
    }

    /// Makes the champion before the current one the champion again.
    pub fn rollback(&mut self, reason: &str) -> Result<ChampionEvent, RegistryError> {
        let events = self.events()?;
        let Some(current) = events.last() else {
            return Err(RegistryError::Refused(
                "there is no champion to roll back".into(),
            ));
        };
        // The champion the current one replaced.
        let Some(target) = current.previous else {
            return Err(RegistryError::Refused(format!(
                "version {} is the only champion there has been; nothing to roll back to",
                current.version
            )));
        };
        self.promote(target, "rollback", reason)
    }

    /// Every champion change, oldest first.
    pub fn events(&self) -> Result<Vec<ChampionEvent>, RegistryError> {
        let mut st = self.conn.prepare(
            "SELECT id, version, previous, action, reason, at FROM champion_events ORDER BY id",
        )?;
        let rows = st.query_map([], |r| {
            Ok(ChampionEvent {
                id: r.get(0)?,
                version: r.get(1)?,
                previous: r.get(2)?,
                action: r.get(3)?,
                reason: r.get(4)?,
                at: r.get(5)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Records a promotion decision.
    pub fn record_decision(&mut self, d: &Decision) -> Result<(), RegistryError> {
        self.conn.execute(
            "INSERT INTO decisions (run_id, stage, candidate, champion, metric, candidate_value, champion_value, promoted, rows, message, at, train_rows)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
            params![
                d.run_id,
                d.stage,
                d.candidate,
                d.champion,
                d.metric,
                d.candidate_value,
                d.champion_value,
                d.promoted,
                d.rows,
                d.message,
                d.at,
                d.train_rows
            ],
        )?;
        Ok(())
    }

    /// Every promotion decision, oldest first.
    pub fn decisions(&self) -> Result<Vec<Decision>, RegistryError> {
        let mut st = self.conn.prepare(
            "SELECT run_id, stage, candidate, champion, metric, candidate_value, champion_value, promoted, rows, message, at, train_rows
             FROM decisions ORDER BY id",
        )?;
        let rows = st.query_map([], |r| {
            Ok(Decision {
                run_id: r.get(0)?,
                stage: r.get(1)?,
                candidate: r.get(2)?,
                champion: r.get(3)?,
                metric: r.get(4)?,
                candidate_value: r.get(5)?,
                champion_value: r.get(6)?,
                promoted: r.get(7)?,
                rows: r.get(8)?,
                message: r.get(9)?,
                at: r.get(10)?,
                train_rows: r.get(11)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

fn copy_dir(from: &Path, to: &Path) -> io::Result<()> {
    fs::create_dir_all(to)?;
    for e in fs::read_dir(from)? {
        let e = e?;
        let dst = to.join(e.file_name());
        if e.file_type()?.is_dir() {
            copy_dir(&e.path(), &dst)?;
        } else {
            fs::copy(e.path(), &dst)?;
            let mut perms = fs::metadata(&dst)?.permissions();
            perms.set_readonly(true);
            fs::set_permissions(&dst, perms)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bundle(dir: &Path, tag: &str) -> PathBuf {
        let b = dir.join(format!("b-{tag}"));
        fs::create_dir_all(&b).unwrap();
        fs::write(b.join("model.json"), tag).unwrap();
        b
    }

    fn new<'a>(hash: &'a str, m: &'a serde_json::Value) -> NewModel<'a> {
        NewModel {
            name: "m",
            bundle_hash: hash,
            kind: "train.linear_regression",
            task: "regression",
            metrics: m,
            params: m,
            data_hash: "d",
            run_id: Some(1),
            stage: "bundle",
        }
    }

    #[test]
    fn versions_champions_and_rollbacks() {
        let dir = tempfile::tempdir().unwrap();
        let mut r = ModelRegistry::open(&dir.path().join(".mlcycle")).unwrap();
        let m = serde_json::json!({"r2": 0.8});
        let (v1, fresh) = r
            .register(&new("h1", &m), &bundle(dir.path(), "a"))
            .unwrap();
        assert!(fresh);
        assert_eq!(v1.version, 1);
        assert_eq!(fs::read_to_string(v1.path.join("model.json")).unwrap(), "a");
        // the same bundle again is the same version
        let (again, fresh) = r
            .register(&new("h1", &m), &bundle(dir.path(), "a"))
            .unwrap();
        assert!(!fresh);
        assert_eq!(again.version, 1);
        let (v2, _) = r
            .register(&new("h2", &m), &bundle(dir.path(), "b"))
            .unwrap();
        assert_eq!(r.champion().unwrap(), None);
        assert!(r.rollback("x").is_err());
        r.promote(1, "promote", "first").unwrap();
        r.promote(v2.version, "promote", "better").unwrap();
        assert_eq!(r.champion_version().unwrap(), Some(2));
        let e = r.rollback("bad in production").unwrap();
        assert_eq!((e.version, e.previous), (1, Some(2)));
        assert_eq!(r.champion_version().unwrap(), Some(1));
        assert_eq!(r.events().unwrap().len(), 3);
        // Promoting the champion again records nothing, so a rollback
        // still goes back to the one before.
        r.promote(v2.version, "promote", "better").unwrap();
        r.promote(v2.version, "promote", "again").unwrap();
        assert_eq!(r.events().unwrap().len(), 4);
        assert_eq!(r.rollback("x").unwrap().version, 1);
        assert!(matches!(
            r.promote(9, "promote", ""),
            Err(RegistryError::NoVersion(9))
        ));
    }
}
