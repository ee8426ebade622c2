//! Following a detached Slurm run (`mlcycle run --detach`), and recording
//! its end in `mlcycle.lock` and the run history once every job is over.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::{
    detached_path, detached_state, write_json, Detached, JobState, SlurmOptions, RECORD_GRACE,
};
use crate::db::{Db, DbError};
use crate::summary::{Outcome, RunSummary, StageResult};
use crate::workspace::{StateError, Workspace};

/// What can go wrong while following a detached run.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum FollowError {
    #[error("cannot read the detached run's job list {path}")]
    #[diagnostic(
        code(mlcycle::slurm::detached),
        help("the run's folder under .mlcycle/runs/ was removed or damaged")
    )]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    #[diagnostic(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    #[diagnostic(transparent)]
    Db(#[from] DbError),
}

/// One job of a detached run, as `mlcycle runs show` prints it.
#[derive(Debug, Clone, Serialize)]
pub struct JobRow {
    pub stage: String,
    pub job: String,
    /// `ran`, `fresh`, `restored`, `failed`, or Slurm's state in lower case
    /// (`pending`, `running`, …) while the job is active.
    pub state: String,
    /// Why a job failed.
    pub detail: String,
}

/// Where a detached run stands.
#[derive(Debug, Clone)]
pub struct Progress {
    pub jobs: Vec<JobRow>,
    /// Some job is still queued or running.
    pub active: bool,
    /// Some job failed (or was lost).
    pub failed: bool,
    /// This call recorded the run's end in the lock file and the history.
    pub recorded: bool,
    /// Stages whose record a later run replaced while this one's jobs ran:
    /// the later record is kept (the run's result is only in the history).
    pub superseded: Vec<String>,
}

/// Whether run `id` of the workspace was submitted detached.
pub fn is_detached(ws: &Workspace, id: i64) -> bool {
    detached_path(&ws.runs_dir().join(id.to_string())).exists()
}

/// Looks at run `id`'s jobs, waiting for the active ones with `wait`. Once
/// all are over, records the result (under the writer lock), as a local run
/// would at its end; `on_lock_wait` hears about a wait for the writer lock,
/// and `on_change`, while waiting, about each change of the jobs' states.
pub fn follow(
    ws: &Workspace,
    id: i64,
    wait: bool,
    on_lock_wait: impl FnOnce(&str),
    mut on_change: impl FnMut(&[JobRow]),
) -> Result<Progress, FollowError> {
    let log_dir = ws.runs_dir().join(id.to_string());
    let path = detached_path(&log_dir);
    let opts = SlurmOptions {
        poll: Duration::from_millis(500),
        ..SlurmOptions::from_env(PathBuf::new(), ws.root.clone())
    };
    // When a job that ran to its end has no record yet: the record may land
    // a moment later on a shared filesystem.
    let mut record_due_since: Option<Instant> = None;
    let mut last_seen: Vec<String> = Vec::new();
    loop {
        let d = read(&path)?;
        let states: Vec<(String, String, JobState)> = d
            .jobs
            .iter()
            .map(|(s, j)| (s.clone(), j.clone(), detached_state(&opts, &log_dir, s, j)))
            .collect();
        let active = states
            .iter()
            .any(|(_, _, st)| matches!(st, JobState::Active(_)));
        if active && wait {
            let rows: Vec<JobRow> = states.iter().map(|s| row(s, false)).collect();
            let seen: Vec<String> = rows.iter().map(|r| r.state.clone()).collect();
            if seen != last_seen {
                on_change(&rows);
                last_seen = seen;
            }
            std::thread::sleep(opts.poll);
            continue;
        }
        let record_due = states.iter().any(|(_, _, st)| {
            matches!(
                st,
                JobState::Lost {
                    record_due: true,
                    ..
                }
            )
        });
        if !active && !d.finalized && record_due {
            let since = *record_due_since.get_or_insert_with(Instant::now);
            if since.elapsed() < RECORD_GRACE {
                std::thread::sleep(opts.poll);
                continue;
            }
        }
        // A job Slurm cancelled because an upstream job of the run failed
        // was skipped, as a local run skips a failed stage's dependents.
        let upstream_failed = a_job_failed(&states);
        let jobs: Vec<JobRow> = states.iter().map(|s| row(s, upstream_failed)).collect();
        let failed = jobs.iter().any(|r| r.state == "failed");
        let mut recorded = false;
        let mut superseded = Vec::new();
        if !active && !d.finalized {
            superseded = record(ws, id, &log_dir, &states, on_lock_wait)?;
            write_json(
                &path,
                &Detached {
                    jobs: d.jobs.clone(),
                    finalized: true,
                },
            )
            .map_err(|source| StateError::Write {
                path: path.clone(),
                source,
            })?;
            recorded = true;
        }
        return Ok(Progress {
            jobs,
            active,
            failed,
            recorded,
            superseded,
        });
    }
}

fn read(path: &std::path::Path) -> Result<Detached, FollowError> {
    let text = std::fs::read_to_string(path).map_err(|source| FollowError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|e| FollowError::Read {
        path: path.to_path_buf(),
        source: std::io::Error::other(e),
    })
}

/// Whether a job of the run failed by itself (not cancelled): Slurm then
/// cancels its dependents, which were skipped, not failed.
fn a_job_failed(states: &[(String, String, JobState)]) -> bool {
    states.iter().any(|(_, _, st)| match st {
        JobState::Done(r) => !r.ok,
        JobState::Lost { cancelled, .. } => !cancelled,
        JobState::Active(_) => false,
    })
}

/// Why a cancelled job of a run whose upstream job failed did not run.
fn cancelled_because(job: &str) -> String {
    format!("Slurm cancelled job {job}: an upstream job failed")
}

fn row((stage, job, st): &(String, String, JobState), upstream_failed: bool) -> JobRow {
    let (state, detail) = match st {
        JobState::Lost {
            cancelled: true, ..
        } if upstream_failed => ("skipped".to_string(), cancelled_because(job)),
        JobState::Done(r) if r.ok => (
            r.outcome.clone().unwrap_or_else(|| "ran".into()),
            String::new(),
        ),
        JobState::Done(r) => ("failed".to_string(), r.error.clone().unwrap_or_default()),
        JobState::Active(s) => (s.to_lowercase(), String::new()),
        JobState::Lost { why, .. } => ("failed".to_string(), why.clone()),
    };
    JobRow {
        stage: stage.clone(),
        job: job.clone(),
        state,
        detail,
    }
}

/// Writes the jobs' results into `mlcycle.lock` and the run history, and
/// returns the stages whose record a later run replaced (kept as it is:
/// an old run looked at late must not roll the lock back).
fn record(
    ws: &Workspace,
    id: i64,
    log_dir: &std::path::Path,
    states: &[(String, String, JobState)],
    on_lock_wait: impl FnOnce(&str),
) -> Result<Vec<String>, FollowError> {
    let _writer = ws.lock_writer(true, on_lock_wait)?;
    let mut lock = ws.read_lock()?;
    let mut results = Vec::new();
    let mut superseded = Vec::new();
    let mut to_run_cache = Vec::new();
    let upstream_failed = a_job_failed(states);
    for (s, job, st) in states {
        // The stage's record when the run was submitted (in its job spec):
        // one that differs now was written by a later run.
        let at_submit = std::fs::read_to_string(super::spec_path(log_dir, s))
            .ok()
            .and_then(|t| serde_json::from_str::<super::JobSpec>(&t).ok())
            .map(|spec| spec.own);
        let same = |a: &crate::workspace::LockEntry, b: &crate::workspace::LockEntry| {
            a.key == b.key
                && a.outs.len() == b.outs.len()
                && a.outs
                    .iter()
                    .all(|(p, o)| b.outs.get(p).is_some_and(|x| x.hash == o.hash))
        };
        let (outcome, entry, duration) = match st {
            JobState::Done(r) if r.ok => (
                match r.outcome.as_deref() {
                    Some("fresh") => Outcome::Fresh,
                    Some("restored") => Outcome::Restored,
                    _ => Outcome::Ran,
                },
                r.entry.clone(),
                Duration::from_millis(r.duration_ms),
            ),
            JobState::Done(r) => (
                Outcome::Failed {
                    error: r.error.clone().unwrap_or_default(),
                    stderr_tail: r.stderr_tail.clone(),
                    log: None,
                },
                None,
                Duration::from_millis(r.duration_ms),
            ),
            JobState::Lost {
                cancelled: true, ..
            } if upstream_failed => (
                Outcome::Skipped {
                    because: cancelled_because(job),
                },
                None,
                Duration::ZERO,
            ),
            JobState::Lost { why, .. } => (
                Outcome::Failed {
                    error: why.clone(),
                    stderr_tail: vec![],
                    log: None,
                },
                None,
                Duration::ZERO,
            ),
            JobState::Active(_) => unreachable!("the run is over"),
        };
        // The job itself put its result in the lock (through the journal):
        // that is not a later run's.
        let moved_on = match (lock.stages.get(s), &at_submit) {
            (Some(now), _) if entry.as_ref().is_some_and(|e| same(now, e)) => false,
            (Some(now), Some(Some(then))) => !same(now, then),
            (Some(_), Some(None)) => true,
            _ => false,
        };
        match entry {
            _ if moved_on => superseded.push(s.clone()),
            Some(e) => {
                // The record it replaces stays restorable, as after a
                // local run; so does this one.
                if let Some(Some(old)) =
                    at_submit.filter(|o| o.as_ref().is_some_and(|o| !same(o, &e)))
                {
                    to_run_cache.push(old);
                }
                to_run_cache.push(e.clone());
                lock.stages.insert(s.clone(), e);
            }
            // Skipped: it never ran, so its record still holds.
            None if matches!(outcome, Outcome::Skipped { .. }) => {}
            None => {
                if let Some(e) = lock.stages.get_mut(s) {
                    e.unfinished = true;
                }
            }
        }
        results.push(StageResult {
            stage: s.clone(),
            job: Some(job.clone()),
            start_ms: None,
            outcome,
            duration,
            reasons: vec![],
        });
    }
    ws.write_lock(&lock)?;
    let mut db = Db::open(&ws.db_path())?;
    db.save_run_cache(&to_run_cache)?;
    db.finish_run(
        id,
        &RunSummary {
            run_id: Some(id),
            interrupted: false,
            duration: results.iter().map(|r| r.duration).sum(),
            stages: results,
        },
    )?;
    Ok(superseded)
}
