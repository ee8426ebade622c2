//! The job side of a Slurm run (`mlcycle exec STAGE --run ID` on a node):
//! check that the inputs are those the driver planned with, run the stage,
//! and leave a record for the driver.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use super::{record_path, spec_path, write_json, JobRecord, JobSpec};
use crate::config::{load_pipeline, LoadOptions, Pipeline};
use crate::exec::{self, Interrupt, Reporter, RunOptions};
use crate::graph::StageGraph;
use crate::plan::{self, SharedMemo};
use crate::registry::StageRegistry;
use crate::summary::{Outcome, RunSummary};
use crate::workspace::{LockEntry, Workspace};

/// One job to run.
pub struct JobRun<'a> {
    /// The workspace root, as this node sees it.
    pub root: &'a Path,
    pub stage: &'a str,
    pub run_id: i64,
    pub registry: &'a StageRegistry,
    pub interrupt: Interrupt,
}

/// What the job did: the record it left for the driver, and the summary
/// of its one-stage run when it got that far.
pub struct JobOutcome {
    pub record: JobRecord,
    pub summary: Option<RunSummary>,
}

/// Runs the job and writes its record (temp file + fsync + rename).
///
/// # Errors
/// Only when the record cannot be written; every other failure is in the
/// record.
pub fn exec(job: &JobRun<'_>, reporter: &dyn Reporter) -> std::io::Result<JobOutcome> {
    let t0 = Instant::now();
    let log_dir = Workspace::new(job.root)
        .runs_dir()
        .join(job.run_id.to_string());
    let duration_ms = || t0.elapsed().as_millis() as u64;
    let (record, summary) = match run(job, &log_dir, reporter) {
        Ok((outcome, entry, summary)) => (
            JobRecord {
                ok: true,
                outcome: Some(outcome),
                error: None,
                stderr_tail: vec![],
                duration_ms: duration_ms(),
                entry,
            },
            Some(summary),
        ),
        Err(Failed {
            error,
            tail,
            summary,
        }) => (
            JobRecord {
                ok: false,
                // "failed" when the stage itself failed; none when the job
                // could not get that far.
                outcome: summary.as_ref().map(|_| "failed".to_string()),
                error: Some(error),
                stderr_tail: tail,
                duration_ms: duration_ms(),
                entry: None,
            },
            summary,
        ),
    };
    write_json(&record_path(&log_dir, job.stage), &record)?;
    Ok(JobOutcome { record, summary })
}

struct Failed {
    error: String,
    tail: Vec<String>,
    summary: Option<RunSummary>,
}

impl From<String> for Failed {
    fn from(error: String) -> Self {
        Failed {
            error,
            tail: vec![],
            summary: None,
        }
    }
}

type Done = (String, Option<LockEntry>, RunSummary);

fn run(job: &JobRun<'_>, log_dir: &Path, reporter: &dyn Reporter) -> Result<Done, Failed> {
    let spec: JobSpec = std::fs::read_to_string(spec_path(log_dir, job.stage))
        .map_err(|e| e.to_string())
        .and_then(|t| serde_json::from_str(&t).map_err(|e| e.to_string()))
        .map_err(|e| format!("cannot read the job spec: {e}"))?;
    let p = load(job, &spec)?;
    let ws = Workspace::for_pipeline(&p);
    let Some(i) = p.stage_index(job.stage) else {
        return Err(format!("the pipeline has no stage `{}`", job.stage).into());
    };
    let detached = spec.key.is_empty();
    let upstream = upstream_entries(&spec, log_dir)?;
    let memo = SharedMemo::new(Default::default());
    if !detached {
        check_inputs(&ws, &p, i, &spec, &upstream, &memo)?;
    }
    let mut lock = ws
        .read_lock()
        .map_err(|e| format!("cannot read the lock file: {e}"))?;
    lock.stages = upstream;
    if let Some(own) = &spec.own {
        lock.stages.insert(job.stage.to_string(), own.clone());
    }
    let mut selected = vec![false; p.stages.len()];
    selected[i] = true;
    let mut forced = vec![false; p.stages.len()];
    // A driver-managed job runs because the driver decided so; a detached
    // one decides here, now that its inputs exist.
    forced[i] = !detached || spec.forced;
    let opts = RunOptions {
        jobs: 1,
        forced,
        keep_going: false,
        selected,
        log_dir: log_dir.to_path_buf(),
        run_id: Some(job.run_id),
        slurm: None,
        interrupt: job.interrupt.clone(),
        gate: None,
    };
    let graph = StageGraph::build(&p);
    let out = exec::run(&ws, &p, &graph, lock, memo.into_inner(), &opts, reporter)
        .map_err(|e| format!("cannot run the stage: {e}"))?;
    reporter.finish();
    let result = out.summary.stages.iter().find(|r| r.stage == job.stage);
    match result.map(|r| &r.outcome) {
        Some(o @ (Outcome::Ran | Outcome::Restored | Outcome::Fresh)) => Ok((
            o.label().to_string(),
            out.lock.stages.get(job.stage).cloned(),
            out.summary,
        )),
        Some(Outcome::Failed {
            error, stderr_tail, ..
        }) => Err(Failed {
            error: error.clone(),
            tail: stderr_tail.clone(),
            summary: Some(out.summary),
        }),
        _ => Err(Failed {
            error: "the stage did not run".into(),
            tail: vec![],
            summary: Some(out.summary),
        }),
    }
}

/// Loads the pipeline with the driver's `-p` overrides.
fn load(job: &JobRun<'_>, spec: &JobSpec) -> Result<Pipeline, Failed> {
    let overrides: Vec<(String, String)> = spec
        .params
        .iter()
        .filter_map(|p| p.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.to_string()))
        .collect();
    let file = job.root.join(crate::config::PIPELINE_FILE);
    load_pipeline(
        &file,
        &LoadOptions {
            registry: job.registry,
            overrides: &overrides,
            parse_cache: None,
            strict_sources: false,
        },
    )
    .map_err(|e| {
        format!(
            "the pipeline does not load here: {:?}",
            miette::Report::new(e)
        )
        .into()
    })
}

/// The lock records of the upstream stages: from the spec, and for a
/// detached run from the records their jobs left.
fn upstream_entries(spec: &JobSpec, log_dir: &Path) -> Result<BTreeMap<String, LockEntry>, Failed> {
    let mut upstream = spec.upstream.clone();
    for u in &spec.upstream_jobs {
        match std::fs::read_to_string(record_path(log_dir, u))
            .ok()
            .and_then(|t| serde_json::from_str::<JobRecord>(&t).ok())
        {
            Some(JobRecord {
                ok: true,
                entry: Some(e),
                ..
            }) => {
                upstream.insert(u.clone(), e);
            }
            _ => return Err(format!("upstream stage `{u}` left no successful result").into()),
        }
    }
    Ok(upstream)
}

/// The fingerprint of what this node sees must be the one the driver
/// planned with.
fn check_inputs(
    ws: &Workspace,
    p: &Pipeline,
    i: usize,
    spec: &JobSpec,
    upstream: &BTreeMap<String, LockEntry>,
    memo: &SharedMemo,
) -> Result<(), Failed> {
    let up = |stage: usize, output: usize| plan::recorded_output(p, upstream, stage, output);
    let s = &p.stages[i];
    let seen = plan::fingerprint(ws, s, memo, &up)
        .map(|fp| plan::assess(ws, p, s, fp, plan::Record::default(), memo, true).key);
    match seen {
        Ok(k) if k == spec.key => Ok(()),
        Ok(_) => Err(
            "the inputs on this node differ from those the driver planned with \
                      (is the workspace on a filesystem every node shares?)"
                .to_string()
                .into(),
        ),
        Err(e) => Err(format!("cannot read the inputs: {e}").into()),
    }
}
