//! The local executor: a coordinator thread and `jobs` worker threads.
//!
//! The coordinator owns the ready queue, the journal and the results; the
//! workers fingerprint a stage, decide (fresh / restore / run), run it —
//! built-ins in-process, `run:` stages as child processes in their own
//! process group — and store its outputs in the cache.

use std::collections::BTreeMap;
use std::collections::{HashSet, VecDeque};
use std::fs::{self, File};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::interrupt::Interrupt;
use super::queue::DependencyQueue;
use crate::cache::OutRecord;
use crate::config::{Action, Pipeline, StageDef};
use crate::fingerprint::StaleReason;
use crate::graph::StageGraph;
use crate::hash::{Memo, Stamp};
use crate::plan::{self, Assessment, SharedMemo, Verdict};
use crate::stage::RunContext;
use crate::summary::{Outcome, RunSummary, StageResult};
use crate::workspace::{LockEntry, LockFile, StateError, Workspace};

/// What the executor tells the user interface.
pub trait Reporter: Send + Sync {
    /// `total` stages are selected.
    fn begin(&self, _total: usize) {}
    /// A stage starts running (not called for fresh or restored stages).
    fn started(&self, _stage: &str, _reasons: &[StaleReason]) {}
    /// A line a running stage printed (`stderr`: on its error stream).
    fn line(&self, _stage: &str, _line: &str, _stderr: bool) {}
    fn finished(&self, _result: &StageResult) {}
    /// Another process holds the workspace (`holder` says which, when
    /// known); the run waits for it.
    fn waiting(&self, _holder: &str) {}
    /// The run is over (clear progress displays).
    fn finish(&self) {}
}

/// Reports nothing.
impl Reporter for () {}

#[derive(Debug, Clone)]
pub struct RunOptions {
    pub jobs: usize,
    /// Per stage: rerun even when fresh.
    pub forced: Vec<bool>,
    pub keep_going: bool,
    /// Which stages to consider (from [`StageGraph::select`]).
    pub selected: Vec<bool>,
    /// Folder for this run's stage logs.
    pub log_dir: PathBuf,
    pub run_id: Option<i64>,
    /// Run stages as Slurm jobs instead of here.
    pub slurm: Option<super::slurm::SlurmOptions>,
    /// Stops the run when triggered (a Ctrl-C handler holds a clone).
    pub interrupt: Interrupt,
}

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum RunError {
    #[error(transparent)]
    #[diagnostic(transparent)]
    State(#[from] StateError),
}

/// The result of a run: its summary, the updated lock and memo.
pub struct RunOutput {
    pub summary: RunSummary,
    pub lock: LockFile,
    /// Whether `lock` differs from the lock the run started with (a no-op
    /// run leaves `mlcycle.lock` untouched).
    pub lock_changed: bool,
    /// Records a new result replaced in the lock, to keep in the run-cache
    /// (the new results themselves are the lock entries of `ran`).
    pub replaced: Vec<LockEntry>,
    /// Stages that ran: their lock entries are new run-cache entries.
    pub ran: Vec<String>,
    pub memo: Memo,
}

enum Msg {
    Started(usize),
    Done(usize, Box<(StageResult, Option<LockEntry>)>),
}

struct Job {
    stage: usize,
    assessment: Assessment,
    t0: Instant,
    /// Lock records of the upstream stages (for a Slurm job's spec).
    upstream: BTreeMap<String, LockEntry>,
}

/// Runs the selected stages of `p`.
pub fn run(
    ws: &Workspace,
    p: &Pipeline,
    graph: &StageGraph,
    mut lock: LockFile,
    memo: Memo,
    opts: &RunOptions,
    reporter: &dyn Reporter,
) -> Result<RunOutput, RunError> {
    let start = Instant::now();
    let n = p.stages.len();
    let deps: Vec<Vec<usize>> = (0..n).map(|i| graph.upstream(i).collect()).collect();
    let mut queue = DependencyQueue::new(&deps, graph.order(), &opts.selected);
    let total = opts.selected.iter().filter(|s| **s).count();
    reporter.begin(total);
    let mut journal = ws.open_journal()?;
    let memo = SharedMemo::new(memo);
    let mut results: Vec<StageResult> = Vec::with_capacity(total);
    let mut replaced: Vec<LockEntry> = Vec::new();
    let mut ran: Vec<String> = Vec::new();
    let jobs = opts.jobs.max(1);
    let journal_err = |source| StateError::Write {
        path: ws.journal_path(),
        source,
    };

    std::thread::scope(|scope| -> Result<(), RunError> {
        let (job_tx, job_rx) = mpsc::channel::<Job>();
        let job_rx = Arc::new(Mutex::new(job_rx));
        let (msg_tx, msg_rx) = mpsc::channel::<Msg>();
        for _ in 0..jobs.min(total.max(1)) {
            let job_rx = job_rx.clone();
            let msg_tx = msg_tx.clone();
            let memo = &memo;
            scope.spawn(move || loop {
                let job = {
                    let rx = job_rx.lock().unwrap_or_else(|e| e.into_inner());
                    rx.recv()
                };
                let Ok(job) = job else { break };
                let i = job.stage;
                let (result, entry) = execute(ws, p, job, memo, opts, reporter, &msg_tx);
                if msg_tx
                    .send(Msg::Done(i, Box::new((result, entry))))
                    .is_err()
                {
                    break;
                }
            });
        }
        drop(msg_tx);

        let mut in_flight = 0usize;
        let mut stopping = false;
        // Results decided without a worker (fresh stages, failures to
        // fingerprint, skips), handled like worker results.
        let mut local: VecDeque<(usize, StageResult, Option<LockEntry>)> = VecDeque::new();
        loop {
            if !stopping && opts.interrupt.is_set() {
                stopping = true;
            }
            if stopping {
                let why = if opts.interrupt.is_set() {
                    "run interrupted"
                } else {
                    "run stopped after a failure"
                };
                for i in queue.drain_unstarted() {
                    local.push_back((i, skipped(p, i, why.to_string()), None));
                }
            } else {
                while in_flight < jobs && local.is_empty() {
                    let Some(i) = queue.pop() else { break };
                    // Deciding is cheap (the memo spares re-reading files), so
                    // it happens here; only real work goes to a worker.
                    let t0 = Instant::now();
                    let s = &p.stages[i];
                    let up = |stage: usize, output: usize| -> Option<String> {
                        let path = &p.stages[stage].outputs[output].path;
                        // The lock holds what each stage presents downstream now.
                        lock.stages
                            .get(&p.stages[stage].id)
                            .and_then(|e| e.outs.get(path))
                            .map(|o| o.hash.clone())
                    };
                    let fp = match plan::fingerprint(ws, s, &memo, &up) {
                        Ok(fp) => fp,
                        Err(e) => {
                            local.push_back((i, failed(s, e.to_string(), t0), None));
                            break;
                        }
                    };
                    let a =
                        plan::assess(ws, p, s, fp, lock.stages.get(&s.id), &memo, opts.forced[i]);
                    if matches!(a.verdict, Verdict::Fresh) {
                        let r = StageResult {
                            stage: s.id.clone(),
                            job: None,
                            outcome: Outcome::Fresh,
                            duration: t0.elapsed(),
                            reasons: vec![],
                        };
                        local.push_back((i, r, None));
                        break;
                    }
                    let upstream = if opts.slurm.is_some() {
                        graph
                            .upstream(i)
                            .filter_map(|u| {
                                let id = &p.stages[u].id;
                                lock.stages.get(id).map(|e| (id.clone(), e.clone()))
                            })
                            .collect()
                    } else {
                        BTreeMap::new()
                    };
                    if job_tx
                        .send(Job {
                            stage: i,
                            assessment: a,
                            t0,
                            upstream,
                        })
                        .is_err()
                    {
                        break;
                    }
                    in_flight += 1;
                }
            }
            let (i, result, entry) = if let Some(x) = local.pop_front() {
                x
            } else if in_flight > 0 {
                match msg_rx.recv() {
                    Ok(Msg::Started(i)) => {
                        // Invalidate the record before the stage touches its outputs.
                        journal.started(&p.stages[i].id).map_err(journal_err)?;
                        continue;
                    }
                    Ok(Msg::Done(i, done)) => {
                        in_flight -= 1;
                        let (r, e) = *done;
                        (i, r, e)
                    }
                    Err(_) => break,
                }
            } else {
                break;
            };
            let id = &p.stages[i].id;
            match &result.outcome {
                Outcome::Failed { .. } => {
                    // Keep the old fingerprint, so the next run can say what
                    // changed, but never let the record pass as fresh.
                    if let Some(e) = lock.stages.get_mut(id) {
                        e.unfinished = true;
                    }
                    for d in queue.cancel_dependents(i) {
                        local.push_back((
                            d,
                            skipped(p, d, format!("upstream `{id}` failed")),
                            None,
                        ));
                    }
                    if !opts.keep_going {
                        stopping = true;
                    }
                }
                Outcome::Skipped { .. } => {}
                Outcome::Fresh | Outcome::Restored | Outcome::Ran => {
                    if let Some(e) = entry {
                        journal.finished(id, &e).map_err(journal_err)?;
                        if let Some(old) = lock.stages.insert(id.clone(), e) {
                            replaced.push(old);
                        }
                        if matches!(result.outcome, Outcome::Ran) {
                            ran.push(id.clone());
                        }
                    }
                    queue.finish(i);
                }
            }
            reporter.finished(&result);
            results.push(result);
        }
        drop(job_tx);
        Ok(())
    })?;

    // Forget stages that are no longer in the pipeline.
    let ids: HashSet<&str> = p.stages.iter().map(|s| s.id.as_str()).collect();
    let before = lock.stages.len();
    lock.stages.retain(|k, _| ids.contains(k.as_str()));
    let lock_changed =
        lock.stages.len() != before || results.iter().any(|r| r.outcome != Outcome::Fresh);
    Ok(RunOutput {
        lock_changed,
        replaced,
        ran,
        summary: RunSummary {
            run_id: opts.run_id,
            interrupted: opts.interrupt.is_set(),
            duration: start.elapsed(),
            stages: results,
        },
        lock,
        memo: memo.into_inner(),
    })
}

fn skipped(p: &Pipeline, i: usize, because: String) -> StageResult {
    StageResult {
        stage: p.stages[i].id.clone(),
        job: None,
        outcome: Outcome::Skipped { because },
        duration: Duration::ZERO,
        reasons: vec![],
    }
}

fn failed(s: &StageDef, error: String, t0: Instant) -> StageResult {
    StageResult {
        stage: s.id.clone(),
        job: None,
        outcome: Outcome::Failed {
            error,
            stderr_tail: vec![],
            log: None,
        },
        duration: t0.elapsed(),
        reasons: vec![],
    }
}

/// Restores or runs one stale stage (on a worker thread).
fn execute(
    ws: &Workspace,
    p: &Pipeline,
    job: Job,
    memo: &SharedMemo,
    opts: &RunOptions,
    reporter: &dyn Reporter,
    msg: &mpsc::Sender<Msg>,
) -> (StageResult, Option<LockEntry>) {
    let t0 = job.t0;
    let s = &p.stages[job.stage];
    let a = job.assessment;
    let fail =
        |error: String, tail: Vec<String>, log: Option<String>, reasons: Vec<StaleReason>| {
            (
                StageResult {
                    stage: s.id.clone(),
                    job: None,
                    outcome: Outcome::Failed {
                        error,
                        stderr_tail: tail,
                        log,
                    },
                    duration: t0.elapsed(),
                    reasons,
                },
                None,
            )
        };
    let done = |outcome: Outcome, entry: LockEntry, reasons: Vec<StaleReason>| {
        (
            StageResult {
                stage: s.id.clone(),
                job: None,
                outcome,
                duration: t0.elapsed(),
                reasons,
            },
            Some(entry),
        )
    };
    if let Verdict::Restore(entry) = &a.verdict {
        let mut ok = true;
        for (path, rec) in &entry.outs {
            let abs = ws.root.join(path);
            if let Err(e) = ws.cache.restore(rec, &abs) {
                tracing::warn!(stage = %s.id, path = %path, error = %e, "Restore failed; running the stage instead.");
                ok = false;
                break;
            }
            record_stamp(memo, &ws.root, path, rec);
        }
        if ok {
            let mut entry = entry.clone();
            entry.set_fingerprint(
                a.key,
                a.fingerprint
                    .as_ref()
                    .expect("a stale stage carries its fingerprint"),
            );
            return done(Outcome::Restored, entry, a.reasons);
        }
    }
    if opts.interrupt.is_set() {
        return (skipped(p, job.stage, "run interrupted".into()), None);
    }

    // Run it.
    let _ = msg.send(Msg::Started(job.stage));
    reporter.started(&s.id, &a.reasons);
    if let Some(slurm) = &opts.slurm {
        let spec = super::slurm::JobSpec {
            stage: s.id.clone(),
            run_id: opts.run_id.unwrap_or(0),
            key: a.key.clone(),
            upstream: job.upstream,
            params: slurm.params.clone(),
            upstream_jobs: vec![],
            own: None,
            forced: true,
        };
        let resources = slurm.resources.get(&s.id).map(Vec::as_slice).unwrap_or(&[]);
        return match super::slurm::run_job(slurm, &opts.log_dir, &spec, resources, &opts.interrupt)
        {
            Ok((entry, job_id)) => {
                reporter.line(&s.id, &format!("done as Slurm job {job_id}"), false);
                let (mut r, e) = done(Outcome::Ran, entry, a.reasons);
                r.job = Some(job_id);
                (r, e)
            }
            Err(f) => {
                let (mut r, e) = fail(f.error, f.stderr_tail, f.log, a.reasons);
                r.job = f.job;
                (r, e)
            }
        };
    }
    for o in &s.outputs {
        let abs = ws.root.join(&o.path);
        let removed = match fs::symlink_metadata(&abs) {
            Ok(m) if m.is_dir() => fs::remove_dir_all(&abs),
            Ok(_) => fs::remove_file(&abs),
            Err(_) => Ok(()),
        };
        if let Err(e) = removed {
            return fail(
                format!("cannot remove old output `{}`: {e}", o.path),
                vec![],
                None,
                a.reasons,
            );
        }
        if let Some(parent) = abs.parent() {
            if let Err(e) = fs::create_dir_all(parent) {
                return fail(
                    format!("cannot create folder for output `{}`: {e}", o.path),
                    vec![],
                    None,
                    a.reasons,
                );
            }
        }
    }
    let log_path = opts.log_dir.join(format!("{}.log", s.id));
    let log_shown = log_path
        .strip_prefix(&ws.root)
        .unwrap_or(&log_path)
        .display()
        .to_string();
    let res = match &s.action {
        Action::Command { argv, shell, env } => {
            let line = CommandLine {
                argv,
                shell: *shell,
                env,
            };
            run_command(ws, s, line, &log_path, reporter, &opts.interrupt)
        }
        Action::Builtin(stage) => {
            run_builtin(ws, s, stage.as_ref(), &log_path, reporter, opts.run_id)
        }
    };
    if let Err((error, tail)) = res {
        // A stage that printed nothing has no log file to point at.
        let log = log_path.exists().then_some(log_shown);
        return fail(error, tail, log, a.reasons);
    }

    // Store the outputs.
    let mut outs = std::collections::BTreeMap::new();
    for o in &s.outputs {
        let abs = ws.root.join(&o.path);
        let meta = match fs::metadata(&abs) {
            Ok(m) => m,
            Err(_) => {
                return fail(
                    format!(
                        "the stage succeeded but did not write its declared output `{}`",
                        o.path
                    ),
                    vec![],
                    log_path.exists().then(|| log_shown.clone()),
                    a.reasons,
                )
            }
        };
        let stored = if meta.is_dir() {
            ws.cache.store_dir(&abs)
        } else {
            ws.cache.store_file(&abs).map(|(hash, size)| {
                if let Ok(after) = fs::metadata(&abs) {
                    if Stamp::of(&after) == Stamp::of(&meta) {
                        memo.record(&o.path, Stamp::of(&after), hash.clone());
                    }
                }
                OutRecord {
                    hash,
                    size,
                    dir: false,
                    exec: meta.permissions().mode() & 0o111 != 0,
                }
            })
        };
        match stored {
            Ok(rec) => {
                outs.insert(o.path.clone(), rec);
            }
            Err(e) => {
                return fail(
                    format!("cannot store output `{}` in the cache: {e}", o.path),
                    vec![],
                    log_path.exists().then(|| log_shown.clone()),
                    a.reasons,
                )
            }
        }
    }
    let entry = LockEntry::new(
        a.key,
        a.fingerprint
            .as_ref()
            .expect("a stale stage carries its fingerprint"),
        outs,
    );
    done(Outcome::Ran, entry, a.reasons)
}

fn record_stamp(memo: &SharedMemo, root: &Path, path: &str, rec: &OutRecord) {
    if rec.dir {
        return;
    }
    if let Ok(m) = fs::metadata(root.join(path)) {
        memo.record(path, Stamp::of(&m), rec.hash.clone());
    }
}

type Failure = (String, Vec<String>);

const TAIL_LINES: usize = 20;

/// Command lines longer than this run from a script file (see run_command).
const MAX_INLINE_SCRIPT: usize = 64 * 1024;

/// A stage's log file, created on its first line: a quiet stage leaves none.
struct StageLog {
    path: PathBuf,
    file: Option<File>,
}

impl StageLog {
    fn new(path: &Path) -> Self {
        Self {
            path: path.to_path_buf(),
            file: None,
        }
    }

    fn line(&mut self, prefix: &str, line: &str) {
        if self.file.is_none() {
            if let Some(parent) = self.path.parent() {
                let _ = fs::create_dir_all(parent);
            }
            match File::create(&self.path) {
                Ok(f) => self.file = Some(f),
                Err(e) => {
                    tracing::warn!(path = %self.path.display(), error = %e, "Cannot create the stage log.");
                    return;
                }
            }
        }
        if let Some(f) = &mut self.file {
            let _ = writeln!(f, "{prefix}{line}");
        }
    }
}

/// What a command stage runs: `argv` (one shell string when `shell`), with
/// extra environment variables.
struct CommandLine<'a> {
    argv: &'a [String],
    shell: bool,
    env: &'a [(String, String)],
}

fn run_command(
    ws: &Workspace,
    s: &StageDef,
    line: CommandLine<'_>,
    log_path: &Path,
    reporter: &dyn Reporter,
    interrupt: &Interrupt,
) -> Result<(), Failure> {
    let CommandLine { argv, shell, env } = line;
    let log = Arc::new(Mutex::new(StageLog::new(log_path)));
    let mut cmd = if shell && argv[0].len() > MAX_INLINE_SCRIPT {
        // Linux caps one argument at 128 KiB: a long command line (a gather
        // stage over thousands of files) runs from a script file instead.
        let script = log_path.with_extension("sh");
        if let Some(parent) = script.parent() {
            let _ = fs::create_dir_all(parent);
        }
        fs::write(&script, &argv[0]).map_err(|e| {
            (
                format!("cannot write the command to {}: {e}", script.display()),
                vec![],
            )
        })?;
        let mut c = Command::new("sh");
        c.arg(script);
        c
    } else if shell {
        let mut c = Command::new("sh");
        c.arg("-c").arg(&argv[0]);
        c
    } else {
        let mut c = Command::new(&argv[0]);
        c.args(&argv[1..]);
        c
    };
    cmd.current_dir(&ws.root)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .env("MLCYCLE_STAGE", &s.id)
        .env("MLCYCLE_WORKSPACE", &ws.root)
        .env(
            "MLCYCLE_PARAMS",
            serde_json::to_string(&s.params).unwrap_or_else(|_| "{}".into()),
        );
    for inp in &s.inputs {
        cmd.env(format!("MLCYCLE_IN_{}", env_name(&inp.name)), &inp.path);
    }
    for o in &s.outputs {
        cmd.env(format!("MLCYCLE_OUT_{}", env_name(&o.name)), &o.path);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    if interrupt.is_set() {
        return Err(("run interrupted".into(), vec![]));
    }
    let mut child = cmd.spawn().map_err(|e| {
        let prog = if shell {
            "sh".to_string()
        } else {
            argv[0].clone()
        };
        (format!("cannot start `{prog}`: {e}"), vec![])
    })?;
    let pid = child.id() as i32;
    interrupt.track_group(pid, true);
    let tail = Arc::new(Mutex::new(VecDeque::with_capacity(TAIL_LINES)));
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let status = std::thread::scope(|sc| {
        if let Some(out) = stdout {
            let log = log.clone();
            sc.spawn(move || pump(out, &s.id, false, &log, None, reporter));
        }
        if let Some(err) = stderr {
            let log = log.clone();
            let tail = tail.clone();
            sc.spawn(move || pump(err, &s.id, true, &log, Some(&tail), reporter));
        }
        child.wait()
    });
    interrupt.track_group(pid, false);
    let tail: Vec<String> = tail
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .cloned()
        .collect();
    let status = status.map_err(|e| (format!("cannot wait for the command: {e}"), tail.clone()))?;
    if status.success() {
        return Ok(());
    }
    use std::os::unix::process::ExitStatusExt;
    let why = match (status.code(), status.signal()) {
        (Some(c), _) => format!("command exited with code {c}"),
        (None, Some(sig)) if interrupt.is_set() => {
            format!("command stopped by signal {sig} (run interrupted)")
        }
        (None, Some(sig)) => format!("command killed by signal {sig}"),
        _ => "command failed".to_string(),
    };
    Err((why, tail))
}

fn pump(
    stream: impl Read,
    stage: &str,
    is_err: bool,
    log: &Mutex<StageLog>,
    tail: Option<&Mutex<VecDeque<String>>>,
    reporter: &dyn Reporter,
) {
    let mut r = BufReader::new(stream);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        match r.read_until(b'\n', &mut buf) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        let line = String::from_utf8_lossy(&buf);
        let line = line.trim_end_matches(['\n', '\r']);
        log.lock()
            .unwrap_or_else(|e| e.into_inner())
            .line(if is_err { "! " } else { "  " }, line);
        if let Some(t) = tail {
            let mut t = t.lock().unwrap_or_else(|e| e.into_inner());
            if t.len() == TAIL_LINES {
                t.pop_front();
            }
            t.push_back(line.to_string());
        }
        reporter.line(stage, line, is_err);
    }
}

fn env_name(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect()
}

fn run_builtin(
    ws: &Workspace,
    s: &StageDef,
    stage: &dyn crate::stage::Stage,
    log_path: &Path,
    reporter: &dyn Reporter,
    run_id: Option<i64>,
) -> Result<(), Failure> {
    let log = Mutex::new(StageLog::new(log_path));
    let logger = |line: &str| {
        log.lock()
            .unwrap_or_else(|e| e.into_inner())
            .line("  ", line);
        reporter.line(&s.id, line, false);
    };
    let ctx = RunContext {
        stage: &s.id,
        workspace: &ws.root,
        inputs: s
            .inputs
            .iter()
            .map(|i| (i.key.clone(), ws.root.join(&i.path)))
            .collect(),
        outputs: s
            .outputs
            .iter()
            .map(|o| (o.name.clone(), ws.root.join(&o.path)))
            .collect(),
        log: &logger,
        run_id,
    };
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| stage.run(&ctx))) {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => {
            let msg = match &e.help {
                Some(h) => format!("{} (help: {h})", e.message),
                None => e.message.clone(),
            };
            Err((msg, vec![]))
        }
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            Err((format!("the stage panicked: {what}"), vec![]))
        }
    }
}
