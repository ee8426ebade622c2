//! Running stages as Slurm jobs (driver-managed).
//!
//! The driver plans exactly as a local run does; fresh and restorable
//! stages never reach Slurm. A stage that must run becomes one job that
//! re-invokes the same binary on a compute node — `mlcycle exec STAGE
//! --run ID` — in the workspace, which must be on a filesystem every node
//! shares. The driver writes a job spec (the fingerprint key it expects and
//! the lock records of the upstream stages) next to the run's logs; the job
//! recomputes the stage's fingerprint from the files it sees, refuses to
//! run when it differs, runs the stage, publishes its outputs to the cache
//! (temp file + fsync + rename, as locally) and writes a record of the
//! outcome. The driver takes the outcome from that record, not from
//! `sacct` (many clusters have no accounting database); Slurm's own job
//! state only explains a job that ended without one (out of memory, time
//! limit, cancelled).
//!
//! The driver side is this module; the job side ([`job`]) runs on the node,
//! and [`detached`] follows a `--detach` run and records its end.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

pub mod detached;
pub(crate) mod driver;
pub mod job;

use crate::exec::interrupt::Interrupt;
use crate::workspace::LockEntry;

/// How to reach Slurm.
#[derive(Debug, Clone)]
pub struct SlurmOptions {
    /// The mlcycle binary the jobs run (it must exist on every node).
    pub binary: PathBuf,
    /// The workspace root, as the nodes see it.
    pub root: PathBuf,
    pub sbatch: String,
    pub squeue: String,
    pub scontrol: String,
    pub scancel: String,
    /// Extra `sbatch` arguments for every job (e.g. `--partition=debug`).
    pub extra: Vec<String>,
    /// `-p key=value` overrides of the driver, replayed by each job.
    pub params: Vec<String>,
    /// Per stage id: its `sbatch` resource arguments.
    pub resources: BTreeMap<String, Vec<String>>,
    pub poll: Duration,
}

/// A Slurm command: the one the variable `var` names (a benchmark's or a
/// test's fake), else `name` from `PATH`.
pub(crate) fn tool(var: &str, name: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| name.to_string())
}

impl SlurmOptions {
    /// Options for `root`, with the Slurm commands from `MLCYCLE_SBATCH`,
    /// `MLCYCLE_SQUEUE`, `MLCYCLE_SCONTROL` and `MLCYCLE_SCANCEL` when set
    /// (a benchmark's fake `sbatch`), else from `PATH`.
    pub fn from_env(binary: PathBuf, root: PathBuf) -> Self {
        SlurmOptions {
            binary,
            root,
            sbatch: tool("MLCYCLE_SBATCH", "sbatch"),
            squeue: tool("MLCYCLE_SQUEUE", "squeue"),
            scontrol: tool("MLCYCLE_SCONTROL", "scontrol"),
            scancel: tool("MLCYCLE_SCANCEL", "scancel"),
            extra: vec![],
            params: vec![],
            resources: BTreeMap::new(),
            poll: Duration::from_millis(200),
        }
    }
}

/// What the driver tells a job.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JobSpec {
    pub stage: String,
    pub run_id: i64,
    /// The fingerprint key the driver computed.
    pub key: String,
    /// Lock records of the stages this one reads from.
    pub upstream: BTreeMap<String, LockEntry>,
    pub params: Vec<String>,
    /// Detached runs: upstream stages that are jobs of this run (their
    /// records hold their lock entries).
    #[serde(default)]
    pub upstream_jobs: Vec<String>,
    /// Detached runs: this stage's lock record when the run was submitted
    /// (the job may find it still fresh).
    #[serde(default)]
    pub own: Option<LockEntry>,
    #[serde(default)]
    pub forced: bool,
}

/// A detached run: its jobs, for `mlcycle runs show` to follow.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Detached {
    /// (stage, job id), in submission order.
    pub jobs: Vec<(String, String)>,
    #[serde(default)]
    pub finalized: bool,
}

pub fn detached_path(log_dir: &Path) -> PathBuf {
    log_dir.join("detached.json")
}

/// Submits every stage of a detached run up front, each job depending
/// (`afterok`) on the jobs of its upstream stages. Stages fresh when the
/// run is submitted, with no submitted stage upstream, get no job.
#[allow(clippy::too_many_arguments)]
pub fn submit_detached(
    ws: &crate::workspace::Workspace,
    p: &crate::config::Pipeline,
    graph: &crate::graph::StageGraph,
    lock: &crate::workspace::LockFile,
    memo: &crate::plan::SharedMemo,
    selected: &[bool],
    forced: &[bool],
    log_dir: &Path,
    run_id: i64,
    slurm: &SlurmOptions,
    interrupt: &Interrupt,
) -> Result<Detached, String> {
    let mut jobs: Vec<(String, String)> = Vec::new();
    let planned = (|| -> Result<(), String> {
        use crate::plan::{assess, fingerprint, Verdict};
        let mut job_of: BTreeMap<usize, String> = BTreeMap::new();
        for &i in graph.order() {
            if interrupt.is_set() {
                return Err("run interrupted while submitting".into());
            }
            if !selected[i] {
                continue;
            }
            let s = &p.stages[i];
            let ups: Vec<usize> = graph.upstream(i).collect();
            let waiting: Vec<usize> = ups
                .iter()
                .copied()
                .filter(|u| job_of.contains_key(u))
                .collect();
            if waiting.is_empty() && !forced[i] {
                let up = |stage: usize, output: usize| {
                    crate::plan::recorded_output(p, &lock.stages, stage, output)
                };
                let fp =
                    fingerprint(ws, s, memo, &up).map_err(|e| format!("stage `{}`: {e}", s.id))?;
                let a = assess(
                    ws,
                    p,
                    s,
                    fp,
                    crate::plan::Record::of(lock, &s.id),
                    memo,
                    false,
                );
                if matches!(a.verdict, Verdict::Fresh) {
                    continue;
                }
                if matches!(a.verdict, Verdict::Blocked) {
                    let why: Vec<String> = a.reasons.iter().map(ToString::to_string).collect();
                    return Err(format!("stage `{}` is blocked: {}", s.id, why.join("; ")));
                }
            }
            let spec = JobSpec {
                stage: s.id.clone(),
                run_id,
                key: String::new(),
                upstream: ups
                    .iter()
                    .filter(|u| !job_of.contains_key(u))
                    .filter_map(|&u| {
                        let id = &p.stages[u].id;
                        lock.stages.get(id).map(|e| (id.clone(), e.clone()))
                    })
                    .collect(),
                params: slurm.params.clone(),
                upstream_jobs: waiting.iter().map(|&u| p.stages[u].id.clone()).collect(),
                own: lock.stages.get(&s.id).cloned(),
                forced: forced[i],
            };
            write_json_with(&spec_path(log_dir, &s.id), &spec, false)
                .map_err(|e| format!("cannot write the job spec of `{}`: {e}", s.id))?;
            let mut deps: Vec<String> = waiting.iter().map(|u| job_of[u].clone()).collect();
            deps.sort();
            let resources = slurm.resources.get(&s.id).cloned().unwrap_or_default();
            let mut extra = resources;
            if !deps.is_empty() {
                extra.push(format!("--dependency=afterok:{}", deps.join(":")));
            }
            let job = submit(slurm, log_dir, &s.id, run_id, &extra)?;
            job_of.insert(i, job.clone());
            jobs.push((s.id.clone(), job));
        }
        Ok(())
    })();
    let written = planned.and_then(|()| {
        let d = Detached {
            jobs: jobs.clone(),
            finalized: false,
        };
        write_json(&detached_path(log_dir), &d).map_err(|e| e.to_string())?;
        Ok(d)
    });
    // Stopped midway (sbatch refused a job, Ctrl-C): the jobs already
    // submitted would run untracked; cancel them by id.
    written.map_err(|e| {
        if jobs.is_empty() {
            return e;
        }
        let ids: Vec<&str> = jobs.iter().map(|(_, j)| j.as_str()).collect();
        let _ = Command::new(&slurm.scancel).args(&ids).output();
        format!(
            "{e}; cancelled the {} job(s) already submitted ({})",
            ids.len(),
            ids.join(", ")
        )
    })
}

/// One `sbatch`; returns the job id.
fn submit(
    slurm: &SlurmOptions,
    log_dir: &Path,
    stage: &str,
    run_id: i64,
    extra: &[String],
) -> Result<String, String> {
    let out_log = log_dir.join(format!("{stage}.slurm.log"));
    let command = format!(
        "exec {} -C {} exec {} --run {}",
        shell_quote(&slurm.binary.display().to_string()),
        shell_quote(&slurm.root.display().to_string()),
        shell_quote(stage),
        run_id
    );
    let out = Command::new(&slurm.sbatch)
        .arg("--parsable")
        .arg("--kill-on-invalid-dep=yes")
        .arg(format!("--job-name=mlcycle-{run_id}-{stage}"))
        // sbatch expands `%x`, `%j`… in the log's path: a `%` of the
        // workspace's path is written `%%`.
        .arg(format!(
            "--output={}",
            out_log.display().to_string().replace('%', "%%")
        ))
        .arg(format!("--chdir={}", slurm.root.display()))
        .args(extra)
        .args(&slurm.extra)
        .arg(format!("--wrap={command}"))
        .output()
        .map_err(|e| format!("cannot run `{}`: {e}", slurm.sbatch))?;
    if !out.status.success() {
        return Err(format!(
            "sbatch refused the job of `{stage}`: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let id = String::from_utf8_lossy(&out.stdout)
        .trim()
        .split(';')
        .next()
        .unwrap_or("")
        .to_string();
    if id.is_empty() {
        return Err("sbatch printed no job id".into());
    }
    // `--parsable` prints `ID` or `ID;cluster`; anything else (a wrapper's
    // banner, `Submitted batch job N`) would be followed as a job that
    // "disappeared".
    if !id.bytes().all(|b| b.is_ascii_digit() || b == b'_') {
        return Err(format!(
            "sbatch printed `{}`, not a job id (is `{}` a wrapper that changes its output?)",
            id.chars().take(80).collect::<String>(),
            slurm.sbatch
        ));
    }
    Ok(id)
}

/// How long a job that has ended may take to show its record (on a shared
/// filesystem, a file written on a node can appear a moment later).
const RECORD_GRACE: Duration = Duration::from_secs(5);

/// Where a detached job stands.
#[derive(Debug, Clone)]
pub enum JobState {
    /// Its record: the job is over.
    Done(JobRecord),
    /// Still queued or running (Slurm's state).
    Active(String),
    /// Gone from Slurm without a record: why.
    Lost {
        why: String,
        /// The job ran to its end (`COMPLETED` or `FAILED`), so it wrote a
        /// record, which a shared filesystem may show a moment later.
        record_due: bool,
        /// Slurm cancelled it (by hand, or as the dependent of a job that
        /// failed: `--kill-on-invalid-dep`).
        cancelled: bool,
    },
}

/// The state of a detached job.
pub fn detached_state(slurm: &SlurmOptions, log_dir: &Path, stage: &str, job: &str) -> JobState {
    let record = || {
        std::fs::read_to_string(record_path(log_dir, stage))
            .ok()
            .and_then(|t| serde_json::from_str::<JobRecord>(&t).ok())
    };
    let first = record();
    if let Some(r) = &first {
        if r.ok {
            return JobState::Done(r.clone());
        }
    }
    let state = match job_state(slurm, job) {
        // Still running, or queued again after a preemption or a node
        // failure (a failed record is then its last start's: the next
        // start writes a new one).
        Seen::State(s) if is_active(&s) => return JobState::Active(s),
        // Nothing is known of the job: it is not called over.
        Seen::Unreachable(_) if first.is_none() => return JobState::Active("UNREACHABLE".into()),
        Seen::Unreachable(_) => None,
        Seen::State(s) => Some(s),
        Seen::Gone => None,
    };
    // The job may have written its record and ended between the first
    // look and Slurm's answer: look again before calling it lost.
    match record() {
        Some(r) => JobState::Done(r),
        None => JobState::Lost {
            why: explain(job, state.as_deref(), &[]),
            record_due: matches!(state.as_deref(), Some("COMPLETED" | "FAILED")),
            cancelled: state.as_deref() == Some("CANCELLED"),
        },
    }
}

/// What a job leaves for the driver.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JobRecord {
    pub ok: bool,
    /// `ran`, `restored` or `fresh` (a detached job may find its stage
    /// fresh once its inputs are known).
    #[serde(default)]
    pub outcome: Option<String>,
    pub error: Option<String>,
    #[serde(default)]
    pub stderr_tail: Vec<String>,
    pub duration_ms: u64,
    pub entry: Option<LockEntry>,
}

/// The folder of one run's job specs and records.
pub fn jobs_dir(log_dir: &Path) -> PathBuf {
    log_dir.join("jobs")
}

pub fn spec_path(log_dir: &Path, stage: &str) -> PathBuf {
    jobs_dir(log_dir).join(format!("{stage}.spec.json"))
}

pub fn record_path(log_dir: &Path, stage: &str) -> PathBuf {
    jobs_dir(log_dir).join(format!("{stage}.record.json"))
}

/// Writes `value` as JSON by temp file + fsync + rename, so a reader never
/// sees half of it and a job's record survives the node.
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> std::io::Result<()> {
    write_json_with(path, value, true)
}

/// [`write_json`], with the fsync optional: a job spec is read by the job
/// moments later, and is rewritten if the driver is restarted.
pub fn write_json_with<T: Serialize>(path: &Path, value: &T, sync: bool) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    let text = serde_json::to_vec_pretty(value).expect("job files serialize");
    {
        use std::io::Write;
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&text)?;
        if sync {
            f.sync_all()?;
        }
    }
    std::fs::rename(&tmp, path)
}

/// A job that did not succeed.
#[derive(Debug)]
pub struct JobFailure {
    pub error: String,
    pub stderr_tail: Vec<String>,
    pub log: Option<String>,
    /// The Slurm job id, once submitted.
    pub job: Option<String>,
}

/// Submits the job for `spec` and waits for its record.
pub fn run_job(
    slurm: &SlurmOptions,
    log_dir: &Path,
    spec: &JobSpec,
    resources: &[String],
    interrupt: &Interrupt,
) -> Result<(LockEntry, String), JobFailure> {
    let fail = |error: String| JobFailure {
        error,
        stderr_tail: vec![],
        log: None,
        job: None,
    };
    let spec_file = spec_path(log_dir, &spec.stage);
    let record = record_path(log_dir, &spec.stage);
    let _ = std::fs::remove_file(&record);
    write_json_with(&spec_file, spec, false)
        .map_err(|e| fail(format!("cannot write the job spec: {e}")))?;
    let out_log = log_dir.join(format!("{}.slurm.log", spec.stage));
    let job_id = submit(slurm, log_dir, &spec.stage, spec.run_id, resources).map_err(fail)?;
    interrupt.track_job(&job_id, true);
    // Kept while this process waits: if it is killed, the next run cancels
    // the job.
    let _inflight = crate::exec::orphans::record_job(
        &crate::workspace::Workspace::new(slurm.root.clone()),
        &job_id,
    );
    let asked: Vec<String> = resources.iter().chain(&slurm.extra).cloned().collect();
    let result = wait(slurm, &job_id, &record, &out_log, &asked, interrupt);
    interrupt.track_job(&job_id, false);
    result.map(|e| (e, job_id.clone())).map_err(|f| JobFailure {
        job: Some(job_id),
        ..f
    })
}

/// Waits for the job's record; when the job is gone without one, asks
/// Slurm why. A failed record of a job Slurm still runs or has queued
/// again (requeued after a preemption or a node failure) is not the end:
/// the job's next start writes a new one.
fn wait(
    slurm: &SlurmOptions,
    job_id: &str,
    record: &Path,
    out_log: &Path,
    resources: &[String],
    interrupt: &Interrupt,
) -> Result<LockEntry, JobFailure> {
    let mut last_state_check = Instant::now();
    let mut gone_since: Option<Instant> = None;
    let mut unreachable_said = false;
    let mut requeued_at: Option<Instant> = None;
    loop {
        let found = std::fs::read_to_string(record)
            .ok()
            .and_then(|t| serde_json::from_str::<JobRecord>(&t).ok());
        if let Some(r) = found {
            if let (true, Some(e)) = (r.ok, &r.entry) {
                return Ok(e.clone());
            }
            // Asked at most once a second while the job is requeued (it
            // may wait long in the queue): slurmctld serves every user.
            let asked_lately = requeued_at.is_some_and(|t| t.elapsed() < Duration::from_secs(1));
            let requeued =
                asked_lately || matches!(job_state(slurm, job_id), Seen::State(s) if is_active(&s));
            if requeued && !asked_lately {
                requeued_at = Some(Instant::now());
            }
            if !requeued {
                let mut error = r.error.unwrap_or_else(|| "the job failed".into());
                // A command killed by the node's memory limit
                // exits with a plain signal; Slurm knows why.
                if let Some(state) = final_state(slurm, job_id) {
                    error = with_slurm_cause(job_id, &state, error, resources);
                }
                return Err(JobFailure {
                    error,
                    stderr_tail: r.stderr_tail,
                    log: Some(out_log.display().to_string()),
                    job: None,
                });
            }
        }
        if interrupt.is_set() {
            let _ = Command::new(&slurm.scancel).arg(job_id).output();
            return Err(JobFailure {
                error: format!("run interrupted: Slurm job {job_id} cancelled"),
                stderr_tail: vec![],
                log: Some(out_log.display().to_string()),
                job: None,
            });
        }
        if last_state_check.elapsed() >= Duration::from_secs(1) {
            last_state_check = Instant::now();
            let state = match job_state(slurm, job_id) {
                // Slurm cannot be asked (its controller is restarting, a
                // timeout): that says nothing of the job; keep waiting.
                Seen::Unreachable(why) => {
                    if !unreachable_said {
                        unreachable_said = true;
                        tracing::warn!(job = job_id, error = %why, "Cannot ask Slurm about the job; still waiting for it.");
                    }
                    gone_since = None;
                    std::thread::sleep(slurm.poll);
                    continue;
                }
                Seen::State(s) => Some(s),
                Seen::Gone => None,
            };
            if !state.as_deref().is_some_and(is_active) {
                // The record may land a moment after the job ends on a
                // shared filesystem: give it a few seconds.
                let since = *gone_since.get_or_insert_with(Instant::now);
                if since.elapsed() >= RECORD_GRACE {
                    return Err(JobFailure {
                        error: explain(job_id, state.as_deref(), resources),
                        stderr_tail: tail(out_log),
                        log: Some(out_log.display().to_string()),
                        job: None,
                    });
                }
            } else {
                gone_since = None;
            }
        }
        std::thread::sleep(slurm.poll);
    }
}

/// A failed job's error with Slurm's reason first, when Slurm killed it
/// (memory, time limit, cancel). The job saw that kill as an interrupt
/// ("(run interrupted)"), which nobody asked for: that part is dropped.
fn with_slurm_cause(job_id: &str, state: &str, error: String, resources: &[String]) -> String {
    if !matches!(state, "OUT_OF_MEMORY" | "TIMEOUT" | "CANCELLED") {
        return error;
    }
    let error = error.replace(" (run interrupted)", "");
    format!("{}; {error}", explain(job_id, Some(state), resources))
}

/// The job's state once it has ended (waits up to 10 s for it to end).
fn final_state(slurm: &SlurmOptions, job_id: &str) -> Option<String> {
    let t = Instant::now();
    loop {
        let state = match job_state(slurm, job_id) {
            Seen::State(s) => s,
            Seen::Gone | Seen::Unreachable(_) => return None,
        };
        if !is_active(&state) || t.elapsed() > Duration::from_secs(10) {
            return Some(state);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Whether a job in Slurm's `state` may still run or is still ending: every
/// job state of `squeue(1)` that is not final.
fn is_active(state: &str) -> bool {
    matches!(
        state,
        "PENDING"
            | "CONFIGURING"
            | "RUNNING"
            | "COMPLETING"
            | "SUSPENDED"
            | "STOPPED"
            | "RESIZING"
            | "SIGNALING"
            | "STAGE_OUT"
            | "REQUEUED"
            | "REQUEUE_FED"
            | "REQUEUE_HOLD"
            | "RESV_DEL_HOLD"
            | "SPECIAL_EXIT"
    )
}

/// What Slurm says of a job.
#[derive(Debug)]
enum Seen {
    /// Its state (`RUNNING`, `COMPLETED`…).
    State(String),
    /// Slurm does not know it (long over and purged, or never existed).
    Gone,
    /// Slurm could not be asked (the controller is down or timed out):
    /// nothing is known of the job.
    Unreachable(String),
}

/// The job's state from `scontrol show job` (or `squeue -t all`).
fn job_state(slurm: &SlurmOptions, job_id: &str) -> Seen {
    let invalid = |text: &str| text.contains("Invalid job id");
    let why = match Command::new(&slurm.scontrol)
        .args(["show", "job", job_id])
        .output()
    {
        Ok(out) => {
            let text = String::from_utf8_lossy(&out.stdout);
            if let Some(s) = text
                .split_whitespace()
                .find_map(|w| w.strip_prefix("JobState="))
            {
                return Seen::State(s.to_string());
            }
            let err = String::from_utf8_lossy(&out.stderr);
            if invalid(&err) || invalid(&text) {
                return Seen::Gone;
            }
            err.trim().lines().next().unwrap_or_default().to_string()
        }
        Err(e) => format!("cannot run `{}`: {e}", slurm.scontrol),
    };
    match Command::new(&slurm.squeue)
        .args(["-h", "-t", "all", "-j", job_id, "-o", "%T"])
        .output()
    {
        Ok(out) if out.status.success() => {
            let s = String::from_utf8_lossy(&out.stdout).trim().to_string();
            if s.is_empty() {
                Seen::Gone
            } else {
                Seen::State(s)
            }
        }
        Ok(out) => {
            let err = String::from_utf8_lossy(&out.stderr);
            if invalid(&err) {
                Seen::Gone
            } else {
                let first = err.trim().lines().next().unwrap_or_default();
                Seen::Unreachable(if first.is_empty() {
                    why
                } else {
                    first.to_string()
                })
            }
        }
        Err(e) => Seen::Unreachable(if why.is_empty() {
            format!("cannot run `{}`: {e}", slurm.squeue)
        } else {
            why
        }),
    }
}

fn explain(job_id: &str, state: Option<&str>, resources: &[String]) -> String {
    let asked = |flag: &str| {
        resources
            .iter()
            .find_map(|r| r.strip_prefix(flag))
            .map(|v| format!(" (asked for {v})"))
            .unwrap_or_default()
    };
    match state {
        Some("OUT_OF_MEMORY") => format!(
            "killed by Slurm: out of memory{} (job {job_id})",
            asked("--mem=")
        ),
        Some("TIMEOUT") => format!(
            "killed by Slurm: time limit reached{} (job {job_id})",
            asked("--time=")
        ),
        Some("CANCELLED") => format!("the Slurm job {job_id} was cancelled"),
        Some("NODE_FAIL") => format!("the node of Slurm job {job_id} failed"),
        Some(s) => format!("the Slurm job {job_id} ended ({s}) without a result"),
        None => format!("the Slurm job {job_id} disappeared without a result"),
    }
}

fn tail(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .map(|t| {
            let lines: Vec<&str> = t.lines().collect();
            lines[lines.len().saturating_sub(10)..]
                .iter()
                .map(|l| l.to_string())
                .collect()
        })
        .unwrap_or_default()
}

fn shell_quote(s: &str) -> String {
    if s.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"/._-+=:,".contains(&b))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Slurm's answer for `job`, from a fake `scontrol` that first runs
    /// `before` (a job finishing while the driver asks).
    fn state_with(dir: &Path, before: &str, state: &str) -> JobState {
        state_from(
            dir,
            &format!("{before}\necho 'JobId=7 JobState={state}'"),
            "exit 1",
        )
    }

    /// The detached state of job 7 with fake `scontrol` and `squeue`
    /// scripts.
    fn state_from(dir: &Path, scontrol: &str, squeue: &str) -> JobState {
        use std::os::unix::fs::PermissionsExt;
        let tool = |name: &str, body: &str| {
            let p = dir.join(name);
            std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
            p.display().to_string()
        };
        let slurm = SlurmOptions {
            scontrol: tool("scontrol", scontrol),
            squeue: tool("squeue", squeue),
            ..SlurmOptions::from_env(PathBuf::new(), dir.to_path_buf())
        };
        detached_state(&slurm, dir, "s", "7")
    }

    /// A controller that cannot be reached says nothing of a job: it is
    /// not called lost (and its run recorded as over) while it may still
    /// run. A job Slurm no longer knows is over.
    #[test]
    fn an_unreachable_controller_is_not_a_lost_job() {
        let dir = tempfile::tempdir().unwrap();
        let down =
            "echo 'slurm_load_jobs error: Socket timed out on send/recv operation' >&2; exit 1";
        match state_from(dir.path(), down, down) {
            JobState::Active(s) => assert_eq!(s, "UNREACHABLE"),
            other => panic!("{other:?}"),
        }
        let purged = "echo 'slurm_load_jobs error: Invalid job id specified' >&2; exit 1";
        assert!(matches!(
            state_from(dir.path(), purged, purged),
            JobState::Lost {
                record_due: false,
                ..
            }
        ));
        // squeue answers when scontrol cannot.
        assert!(matches!(
            state_from(dir.path(), down, "echo RUNNING"),
            JobState::Active(s) if s == "RUNNING"
        ));
    }

    /// A job requeued (preempted, its node failed) left a failed record
    /// of its first start: while Slurm has it queued again, it is not
    /// over. Once Slurm says it ended, the record stands.
    #[test]
    fn a_requeued_jobs_failed_record_is_not_its_end() {
        let dir = tempfile::tempdir().unwrap();
        let record = record_path(dir.path(), "s");
        std::fs::create_dir_all(record.parent().unwrap()).unwrap();
        std::fs::write(
            &record,
            r#"{"ok":false,"error":"command stopped by signal 15","duration_ms":3,"entry":null}"#,
        )
        .unwrap();
        assert!(matches!(
            state_with(dir.path(), "", "PENDING"),
            JobState::Active(s) if s == "PENDING"
        ));
        match state_with(dir.path(), "", "FAILED") {
            JobState::Done(r) => assert!(!r.ok),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_job_that_ends_while_its_state_is_asked_is_not_lost() {
        let dir = tempfile::tempdir().unwrap();
        let record = record_path(dir.path(), "s");
        std::fs::create_dir_all(record.parent().unwrap()).unwrap();
        // The record is written between the driver's first look and
        // Slurm's answer.
        let write = format!(
            "echo '{{\"ok\":true,\"error\":null,\"duration_ms\":3,\"entry\":null}}' > {}",
            record.display()
        );
        match state_with(dir.path(), &write, "COMPLETED") {
            JobState::Done(r) => assert!(r.ok && r.duration_ms == 3),
            other => panic!("{other:?}"),
        }
        // Without a record: lost, and only a job that ran to its end is
        // owed one.
        std::fs::remove_file(&record).unwrap();
        for (state, due) in [("COMPLETED", true), ("FAILED", true), ("CANCELLED", false)] {
            match state_with(dir.path(), "", state) {
                JobState::Lost {
                    why, record_due, ..
                } => {
                    assert_eq!(record_due, due, "{state}");
                    assert!(why.contains("job 7"), "{why}");
                }
                other => panic!("{state}: {other:?}"),
            }
        }
        assert!(matches!(
            state_with(dir.path(), "", "RUNNING"),
            JobState::Active(s) if s == "RUNNING"
        ));
    }

    /// A time-limit kill reaches the job as SIGTERM, which it reports as
    /// an interrupt: the message names Slurm's cause, not an interrupt.
    #[test]
    fn a_slurm_kill_is_not_called_an_interrupt() {
        let r = vec!["--time=1".to_string()];
        assert_eq!(
            with_slurm_cause(
                "9",
                "TIMEOUT",
                "command stopped by signal 15 (run interrupted)".into(),
                &r
            ),
            "killed by Slurm: time limit reached (asked for 1) (job 9); command stopped by signal 15"
        );
        assert_eq!(
            with_slurm_cause("9", "FAILED", "command exited with code 3".into(), &r),
            "command exited with code 3"
        );
    }

    #[test]
    fn failures_name_the_slurm_cause_and_the_request() {
        let r = vec!["--mem=2G".to_string(), "--time=5".to_string()];
        assert_eq!(
            explain("12", Some("OUT_OF_MEMORY"), &r),
            "killed by Slurm: out of memory (asked for 2G) (job 12)"
        );
        assert!(explain("12", Some("TIMEOUT"), &r).contains("time limit reached (asked for 5)"));
        assert_eq!(shell_quote("/a b/c"), "'/a b/c'");
        assert_eq!(shell_quote("/usr/bin/mlcycle"), "/usr/bin/mlcycle");
    }
}
