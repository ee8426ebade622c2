//! The scheduler: a coordinator thread and `jobs` worker threads.
//!
//! The coordinator owns the ready queue, the journal and the results. It
//! fingerprints each ready stage and decides (fresh / restore / run); only
//! real work goes to a worker, which restores the outputs from the cache or
//! hands the stage to its [`Runner`] — in-process for built-ins, a child
//! process for `run:` stages, a job for Slurm — and stores what it wrote.

use foldhash::{HashSet, HashSetExt};
use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::builtin::BuiltinRunner;
use super::command::CommandRunner;
use super::gate::{Admission, StageGate};
use super::interrupt::Interrupt;
use super::outputs;
use super::queue::DependencyQueue;
use super::runner::{Produced, RunFailure, Runner, StageJob};
use super::slurm::driver::SlurmRunner;
use crate::cache::OutRecord;
use crate::config::{Action, Pipeline, StageDef};
use crate::fingerprint::StaleReason;
use crate::graph::StageGraph;
use crate::hash::Memo;
use crate::plan::{self, Assessment, SharedMemo, Verdict};
use crate::summary::{Outcome, RunSummary, StageResult};
use crate::workspace::{Journal, LockEntry, LockFile, StateError, Workspace};

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
    /// Shared with other runs in this process (an experiment sweep): job
    /// slots, and one computation per stage fingerprint.
    pub gate: Option<Arc<StageGate>>,
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
    /// A stage is about to run: the journal records it, then the sender
    /// hears back, so that no output is touched before the mark is down.
    Started(usize, mpsc::Sender<()>),
    Done(usize, Box<Settled>),
}

/// A stage's result, with its new lock record when it has one.
type Settled = (StageResult, Option<LockEntry>);

struct Job {
    stage: usize,
    assessment: Assessment,
    t0: Instant,
    /// Lock records of the upstream stages (for a Slurm job's spec).
    upstream: BTreeMap<String, LockEntry>,
    /// What the stage's record says it wrote (bytes it may replace freely).
    recorded: BTreeMap<String, OutRecord>,
    /// The cores it holds of the run's CPU budget while it runs.
    cpus: usize,
}

/// What every worker shares.
struct Shared<'a> {
    ws: &'a Workspace,
    p: &'a Pipeline,
    memo: &'a SharedMemo,
    opts: &'a RunOptions,
    reporter: &'a dyn Reporter,
    slurm: Option<SlurmRunner<'a>>,
}

impl Shared<'_> {
    fn runner(&self, s: &StageDef) -> &dyn Runner {
        if let Some(r) = &self.slurm {
            return r;
        }
        match s.action {
            Action::Command { .. } => &CommandRunner,
            Action::Builtin(_) => &BuiltinRunner,
        }
    }
}

/// Runs the selected stages of `p`.
pub fn run(
    ws: &Workspace,
    p: &Pipeline,
    graph: &StageGraph,
    lock: LockFile,
    memo: Memo,
    opts: &RunOptions,
    reporter: &dyn Reporter,
) -> Result<RunOutput, RunError> {
    let start = Instant::now();
    let total = opts.selected.iter().filter(|s| **s).count();
    reporter.begin(total);
    let memo = SharedMemo::new(memo);
    let shared = Shared {
        ws,
        p,
        memo: &memo,
        opts,
        reporter,
        slurm: opts.slurm.as_ref().map(|slurm| SlurmRunner {
            slurm,
            log_dir: &opts.log_dir,
        }),
    };
    let mut c = Coordinator::new(&shared, graph, lock, total)?;
    let jobs = opts.jobs.max(1).min(total.max(1));
    std::thread::scope(|scope| -> Result<(), RunError> {
        let (job_tx, job_rx) = mpsc::channel::<Job>();
        let job_rx = Arc::new(Mutex::new(job_rx));
        let (msg_tx, msg_rx) = mpsc::channel::<Msg>();
        for _ in 0..jobs {
            let (job_rx, msg_tx, shared) = (job_rx.clone(), msg_tx.clone(), &shared);
            scope.spawn(move || worker(shared, &job_rx, &msg_tx));
        }
        drop(msg_tx);
        c.coordinate(&job_tx, &msg_rx, jobs)
    })?;
    let out = c.finish(start);
    Ok(RunOutput {
        memo: memo.into_inner(),
        ..out
    })
}

/// The machine's cores.
fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
}

/// The cores stage `s` holds while it runs here: its `resources: {cpus}`,
/// else one for a command (one process) and every core of the machine for
/// an in-process stage (its parallel numerics use them all); never more
/// than the machine has. Under Slurm nothing is held here.
fn stage_cpus(p: &Pipeline, s: &StageDef, slurm: bool) -> usize {
    if slurm {
        return 0;
    }
    let asked = p.resources.get(&s.id).and_then(|r| r.cpus);
    match (asked, &s.action) {
        (Some(n), _) => usize::try_from(n).unwrap_or(usize::MAX).clamp(1, cores()),
        (None, Action::Command { .. }) => 1,
        (None, Action::Builtin(_)) => cores(),
    }
}

/// A worker: takes jobs until the channel closes.
fn worker(shared: &Shared<'_>, jobs: &Mutex<mpsc::Receiver<Job>>, msg: &mpsc::Sender<Msg>) {
    loop {
        let job = jobs.lock().unwrap_or_else(|e| e.into_inner()).recv();
        let Ok(job) = job else { break };
        let i = job.stage;
        let settled = execute(shared, job, msg);
        if msg.send(Msg::Done(i, Box::new(settled))).is_err() {
            break;
        }
    }
}

/// The coordinator's state: the queue, the lock being updated, the
/// journal and the results so far.
struct Coordinator<'a> {
    shared: &'a Shared<'a>,
    graph: &'a StageGraph,
    queue: DependencyQueue,
    lock: LockFile,
    journal: Journal,
    results: Vec<StageResult>,
    replaced: Vec<LockEntry>,
    ran: Vec<String>,
    /// Results decided without a worker (fresh stages, failures to
    /// fingerprint, skips), handled like worker results.
    local: VecDeque<(usize, Settled)>,
    /// Stages that cannot read an input: they fail without stopping the run.
    blocked: HashSet<usize>,
    /// Every recorded output by path, built when first needed.
    by_path: Option<foldhash::HashMap<String, OutRecord>>,
    stopping: bool,
    /// When the run started: each result's `start_ms` is counted from it.
    started: Instant,
}

impl<'a> Coordinator<'a> {
    fn new(
        shared: &'a Shared<'a>,
        graph: &'a StageGraph,
        lock: LockFile,
        total: usize,
    ) -> Result<Self, RunError> {
        let n = shared.p.stages.len();
        let deps: Vec<Vec<usize>> = (0..n).map(|i| graph.upstream(i).collect()).collect();
        Ok(Self {
            shared,
            graph,
            queue: DependencyQueue::new(&deps, graph.order(), &shared.opts.selected),
            lock,
            journal: shared.ws.open_journal()?,
            results: Vec::with_capacity(total),
            replaced: Vec::new(),
            ran: Vec::new(),
            local: VecDeque::new(),
            blocked: HashSet::new(),
            by_path: None,
            stopping: false,
            started: Instant::now(),
        })
    }

    fn journal_err(&self, source: std::io::Error) -> StateError {
        StateError::Write {
            path: self.shared.ws.journal_path(),
            source,
        }
    }

    /// Dispatches ready stages and settles results until nothing is left.
    fn coordinate(
        &mut self,
        job_tx: &mpsc::Sender<Job>,
        msg_rx: &mpsc::Receiver<Msg>,
        jobs: usize,
    ) -> Result<(), RunError> {
        let shared = self.shared;
        let interrupt = &shared.opts.interrupt;
        let mut in_flight = 0usize;
        // The CPU budget is `--jobs` (as Snakemake's `--cores`, which is
        // its `-j` locally): a stage starts when its cores fit beside those
        // in use, or when nothing else runs.
        let budget = jobs;
        let mut used = 0usize;
        let mut held: Option<Job> = None;
        let mut holding = vec![0usize; shared.p.stages.len()];
        loop {
            if !self.stopping && interrupt.is_set() {
                self.stopping = true;
            }
            if self.stopping {
                if let Some(job) = held.take() {
                    let r = skipped(shared.p, job.stage, self.stop_reason().into());
                    self.local.push_back((job.stage, (r, None)));
                }
                self.skip_unstarted();
            } else {
                while in_flight < jobs && self.local.is_empty() {
                    let job = match held.take() {
                        Some(job) => job,
                        None => {
                            let Some(i) = self.queue.pop() else { break };
                            let Some(job) = self.decide(i) else { break };
                            job
                        }
                    };
                    if in_flight > 0 && used + job.cpus > budget {
                        held = Some(job);
                        break;
                    }
                    used += job.cpus;
                    holding[job.stage] = job.cpus;
                    // A stage's time starts when it gets its cores, not
                    // while it waits for them.
                    let mut job = job;
                    job.t0 = Instant::now();
                    if job_tx.send(job).is_err() {
                        break;
                    }
                    in_flight += 1;
                }
            }
            let (i, (result, entry)) = if let Some(x) = self.local.pop_front() {
                x
            } else if in_flight > 0 {
                match msg_rx.recv() {
                    Ok(Msg::Started(i, ack)) => {
                        // Invalidate the record before the stage touches its
                        // outputs: the worker waits for this line. (It did
                        // not: a run killed between the command's start and
                        // this line left files the next run took for
                        // sources inside an output folder.)
                        let id = &shared.p.stages[i].id;
                        let r = self.journal.started(id, shared.opts.run_id);
                        r.map_err(|e| self.journal_err(e))?;
                        let _ = ack.send(());
                        continue;
                    }
                    Ok(Msg::Done(i, done)) => {
                        in_flight -= 1;
                        used -= std::mem::take(&mut holding[i]);
                        (i, *done)
                    }
                    Err(_) => break,
                }
            } else {
                break;
            };
            self.settle(i, result, entry)?;
        }
        Ok(())
    }

    /// Why a stage that has not started is skipped while the run stops.
    fn stop_reason(&self) -> &'static str {
        if self.shared.opts.interrupt.is_set() {
            "run interrupted"
        } else {
            "run stopped after a failure"
        }
    }

    fn skip_unstarted(&mut self) {
        let why = self.stop_reason();
        for i in self.queue.drain_unstarted() {
            let r = skipped(self.shared.p, i, why.to_string());
            self.local.push_back((i, (r, None)));
        }
    }

    /// Fingerprints ready stage `i` and decides: a fresh stage (or one that
    /// cannot be fingerprinted) is settled here; a stale one becomes a job.
    /// Deciding is cheap (the memo spares re-reading files), so it happens
    /// on the coordinator; only real work goes to a worker.
    fn decide(&mut self, i: usize) -> Option<Job> {
        let Shared {
            ws, p, memo, opts, ..
        } = *self.shared;
        let t0 = Instant::now();
        let s = &p.stages[i];
        let lock = &self.lock;
        // The lock holds what each stage presents downstream now.
        let up =
            |stage: usize, output: usize| plan::recorded_output(p, &lock.stages, stage, output);
        let fp = match plan::fingerprint(ws, s, memo, &up) {
            Ok(fp) => fp,
            Err(e) => {
                // Blocked: it fails, its dependents are skipped, and the
                // rest of the run goes on (a partial checkout still runs
                // what it can).
                self.blocked.insert(i);
                let error = format!("blocked: {}", e.reason());
                self.local.push_back((i, (failed(s, error, t0), None)));
                return None;
            }
        };
        let a = plan::assess(
            ws,
            p,
            s,
            fp,
            plan::Record::of(lock, &s.id),
            memo,
            opts.forced[i],
        );
        if matches!(a.verdict, Verdict::Fresh) {
            let r = result(s, Outcome::Fresh, t0, vec![]);
            self.local.push_back((i, (r, None)));
            return None;
        }
        if matches!(a.verdict, Verdict::Blocked) {
            self.blocked.insert(i);
            let why: Vec<String> = a.reasons.iter().map(ToString::to_string).collect();
            let error = format!("blocked: {}", why.join("; "));
            self.local.push_back((i, (failed(s, error, t0), None)));
            return None;
        }
        let upstream = if opts.slurm.is_some() {
            self.graph
                .upstream(i)
                .filter_map(|u| {
                    let id = &p.stages[u].id;
                    lock.stages.get(id).map(|e| (id.clone(), e.clone()))
                })
                .collect()
        } else {
            BTreeMap::new()
        };
        let mut recorded = lock
            .stages
            .get(&s.id)
            .map(|e| e.outs.clone())
            .unwrap_or_default();
        // An output another record holds (the stage renamed, or the path
        // moved between stages) is mlcycle's too.
        if s.outputs.iter().any(|o| !recorded.contains_key(&o.path)) {
            let by_path = self.by_path.get_or_insert_with(|| {
                lock.stages
                    .values()
                    .flat_map(|e| e.outs.iter())
                    .map(|(p, r)| (p.clone(), r.clone()))
                    .collect()
            });
            for o in &s.outputs {
                if let Some(r) = by_path
                    .get(&o.path)
                    .filter(|_| !recorded.contains_key(&o.path))
                {
                    recorded.insert(o.path.clone(), r.clone());
                }
            }
        }
        // A restore copies files; only a stage that runs holds cores.
        let cpus = if matches!(a.verdict, Verdict::Restore(_)) {
            0
        } else {
            stage_cpus(self.shared.p, s, self.shared.slurm.is_some())
        };
        Some(Job {
            stage: i,
            assessment: a,
            t0,
            upstream,
            recorded,
            cpus,
        })
    }

    /// Records stage `i`'s result: in the journal and the lock when it has
    /// a new record; a failure cancels its dependents.
    fn settle(
        &mut self,
        i: usize,
        mut result: StageResult,
        entry: Option<LockEntry>,
    ) -> Result<(), RunError> {
        let p = self.shared.p;
        // Settled as it finishes: it started its duration ago.
        let since = self.started.elapsed().saturating_sub(result.duration);
        result.start_ms.get_or_insert(since.as_millis() as u64);
        let id = &p.stages[i].id;
        match &result.outcome {
            Outcome::Failed { .. } => {
                let blocked = self.blocked.contains(&i);
                // Keep the old fingerprint, so the next run can say what
                // changed, but never let the record pass as fresh. (A
                // blocked stage never started: its record still holds.)
                if let Some(e) = self.lock.stages.get_mut(id).filter(|_| !blocked) {
                    e.unfinished = true;
                }
                for d in self.queue.cancel_dependents(i) {
                    let why = if blocked { "is blocked" } else { "failed" };
                    let r = skipped(p, d, format!("upstream `{id}` {why}"));
                    self.local.push_back((d, (r, None)));
                }
                if !self.shared.opts.keep_going && !blocked {
                    self.stopping = true;
                }
            }
            Outcome::Skipped { .. } => {}
            Outcome::Fresh | Outcome::Restored | Outcome::Ran => {
                if let Some(e) = entry {
                    let ms = result.duration.as_millis() as u64;
                    let (run, how) = (self.shared.opts.run_id, result.outcome.label());
                    let r = self.journal.finished(id, &e, run, how, ms);
                    r.map_err(|err| self.journal_err(err))?;
                    if let Some(old) = self.lock.stages.insert(id.clone(), e) {
                        self.replaced.push(old);
                    }
                    if matches!(result.outcome, Outcome::Ran) {
                        self.ran.push(id.clone());
                    }
                }
                self.queue.finish(i);
            }
        }
        self.shared.reporter.finished(&result);
        self.results.push(result);
        Ok(())
    }

    /// The run's output (the memo is filled in by the caller); stages no
    /// longer in the pipeline leave the lock.
    fn finish(self, start: Instant) -> RunOutput {
        let p = self.shared.p;
        let mut lock = self.lock;
        let ids: HashSet<&str> = p.stages.iter().map(|s| s.id.as_str()).collect();
        let before = lock.stages.len();
        lock.stages.retain(|k, _| ids.contains(k.as_str()));
        let lock_changed =
            lock.stages.len() != before || self.results.iter().any(|r| r.outcome != Outcome::Fresh);
        RunOutput {
            lock_changed,
            replaced: self.replaced,
            ran: self.ran,
            summary: RunSummary {
                run_id: self.shared.opts.run_id,
                interrupted: self.shared.opts.interrupt.is_set(),
                duration: start.elapsed(),
                stages: self.results,
            },
            lock,
            memo: Memo::default(),
        }
    }
}

fn result(s: &StageDef, outcome: Outcome, t0: Instant, reasons: Vec<StaleReason>) -> StageResult {
    StageResult {
        stage: s.id.clone(),
        job: None,
        start_ms: None,
        outcome,
        duration: t0.elapsed(),
        reasons,
    }
}

fn skipped(p: &Pipeline, i: usize, because: String) -> StageResult {
    StageResult {
        stage: p.stages[i].id.clone(),
        job: None,
        start_ms: None,
        outcome: Outcome::Skipped { because },
        duration: Duration::ZERO,
        reasons: vec![],
    }
}

fn failed(s: &StageDef, error: String, t0: Instant) -> StageResult {
    let outcome = Outcome::Failed {
        error,
        stderr_tail: vec![],
        log: None,
    };
    result(s, outcome, t0, vec![])
}

/// A failed stage with its stderr tail, log and reasons.
fn failure(s: &StageDef, f: RunFailure, t0: Instant, reasons: Vec<StaleReason>) -> Settled {
    let outcome = Outcome::Failed {
        error: f.error,
        stderr_tail: f.stderr_tail,
        log: f.log,
    };
    let mut r = result(s, outcome, t0, reasons);
    r.job = f.job;
    (r, None)
}

/// Restores or runs one stale stage (on a worker thread).
fn execute(shared: &Shared<'_>, job: Job, msg: &mpsc::Sender<Msg>) -> Settled {
    let Shared {
        ws, p, memo, opts, ..
    } = *shared;
    let mut t0 = job.t0;
    let s = &p.stages[job.stage];
    let a = job.assessment;
    let key = a.key.clone();
    let fingerprint = a
        .fingerprint
        .as_ref()
        .expect("a stale stage carries its fingerprint");
    // Restores `entry`'s outputs; `None` when they cannot be restored.
    let restore = |entry: &LockEntry, reasons: &[StaleReason]| {
        if !outputs::restore(ws, memo, s, &entry.outs, &job.recorded, opts.run_id) {
            return None;
        }
        let mut entry = entry.clone();
        entry.set_fingerprint(key.clone(), fingerprint);
        Some((
            result(s, Outcome::Restored, t0, reasons.to_vec()),
            Some(entry),
        ))
    };
    if let Verdict::Restore(entry) = &a.verdict {
        if s.frozen && !opts.forced[job.stage] {
            // A frozen stage's recorded outputs are put back as recorded
            // (its record, and so its key, stay); it never reruns. Those
            // kept out of the cache were found unchanged.
            let cached: BTreeMap<String, OutRecord> = entry
                .outs
                .iter()
                .filter(|(path, _)| {
                    s.outputs
                        .iter()
                        .any(|o| &o.path == *path && o.cache && !o.persist)
                })
                .map(|(p, o)| (p.clone(), o.clone()))
                .collect();
            if outputs::restore(ws, memo, s, &cached, &job.recorded, opts.run_id) {
                return (
                    result(s, Outcome::Restored, t0, a.reasons.clone()),
                    Some(entry.clone()),
                );
            }
            let f = RunFailure {
                error: "frozen, and its recorded outputs could not be restored from the cache: put the files back, or rerun the stage with `run --force`".into(),
                stderr_tail: vec![],
                log: None,
                job: None,
            };
            return failure(s, f, t0, a.reasons.clone());
        }
        if let Some(done) = restore(entry, &a.reasons) {
            return done;
        }
    }
    let interrupted = || (skipped(p, job.stage, "run interrupted".into()), None);
    if opts.interrupt.is_set() {
        return interrupted();
    }
    let pass = match &opts.gate {
        None => None,
        Some(gate) => {
            // Results kept out of the cache cannot be handed to another run.
            let share = s.outputs.iter().all(|o| o.cache && !o.persist) && !s.always_changed;
            let cpus = stage_cpus(p, s, shared.slurm.is_some()).max(job.cpus);
            let admitted = match gate.enter(share.then_some(key.as_str()), cpus, &opts.interrupt) {
                Admission::Ran(entry) => match restore(&entry, &a.reasons) {
                    Some(done) => return done,
                    // Its bytes left the cache: compute it here.
                    None => gate.enter(None, cpus, &opts.interrupt),
                },
                other => other,
            };
            match admitted {
                Admission::Run(pass) => Some(pass),
                _ => return interrupted(),
            }
        }
    };
    // The time spent waiting for the gate is not the stage's.
    if pass.is_some() {
        t0 = Instant::now();
    }
    let work = Work {
        i: job.stage,
        upstream: &job.upstream,
        recorded: &job.recorded,
        cpus: job.cpus,
        key: &key,
        fingerprint,
        t0,
    };
    let settled = compute(shared, &work, a.reasons, msg);
    if let Some(pass) = pass {
        pass.finish(settled.1.as_ref());
    }
    settled
}

/// A stale stage about to be computed.
struct Work<'j> {
    i: usize,
    upstream: &'j BTreeMap<String, LockEntry>,
    recorded: &'j BTreeMap<String, OutRecord>,
    /// The cores it holds of the run's budget.
    cpus: usize,
    key: &'j str,
    fingerprint: &'j crate::fingerprint::StageFingerprint,
    t0: Instant,
}

/// Runs stale stage `w.i` with its runner and stores what it wrote.
fn compute(
    shared: &Shared<'_>,
    w: &Work<'_>,
    reasons: Vec<StaleReason>,
    msg: &mpsc::Sender<Msg>,
) -> Settled {
    let Work {
        i,
        upstream,
        recorded,
        key,
        fingerprint,
        t0,
        ..
    } = *w;
    let Shared {
        ws,
        p,
        memo,
        opts,
        reporter,
        ..
    } = *shared;
    let s = &p.stages[i];
    plan::keep_folder_manifests(ws, s, memo);
    let (ack_tx, ack_rx) = mpsc::channel();
    let _ = msg.send(Msg::Started(i, ack_tx));
    if ack_rx.recv().is_err() {
        // The journal could not record the start: the run is stopping.
        return (skipped(p, i, "run stopped".into()), None);
    }
    reporter.started(&s.id, &reasons);
    let runner = shared.runner(s);
    let log_path = opts.log_dir.join(format!("{}.log", s.id));
    let log_shown = log_path
        .strip_prefix(&ws.root)
        .unwrap_or(&log_path)
        .display()
        .to_string();
    let shown = || log_path.exists().then(|| log_shown.clone());
    let fail = |error: String, log: Option<String>| RunFailure {
        error,
        stderr_tail: vec![],
        log,
        job: None,
    };
    if runner.local() {
        if let Err(e) = outputs::prepare(ws, memo, s, recorded, opts.run_id) {
            return failure(s, fail(e, None), t0, reasons);
        }
    }
    let stage_job = StageJob {
        ws,
        stage: s,
        log_path: &log_path,
        reporter,
        interrupt: &opts.interrupt,
        run_id: opts.run_id,
        key,
        upstream,
        // The pool size (a restore that fell back to running holds none of
        // the budget, but still gets its cores).
        cpus: stage_cpus(shared.p, s, shared.slurm.is_some()).max(w.cpus),
    };
    let stored = match runner.run(&stage_job) {
        Ok(Produced::Stored { entry, job }) => {
            let mut r = result(s, Outcome::Ran, t0, reasons);
            r.job = Some(job);
            return (r, Some(entry));
        }
        Ok(Produced::InPlace) => outputs::store(ws, memo, s),
        // A stage that printed nothing has no log file to point at.
        Err(f) if f.log.is_none() => Err(RunFailure { log: shown(), ..f }),
        Err(f) => Err(f),
    };
    match &stored {
        Ok(_) => outputs::forget_leftovers(ws, s),
        Err(_) if runner.local() => outputs::note_leftovers(ws, memo, s),
        Err(_) => {}
    }
    match stored {
        Ok(outs) => {
            let entry = LockEntry::new(key.to_string(), fingerprint, outs);
            (result(s, Outcome::Ran, t0, reasons), Some(entry))
        }
        Err(f) if f.log.is_none() && f.job.is_none() => {
            failure(s, RunFailure { log: shown(), ..f }, t0, reasons)
        }
        Err(f) => failure(s, f, t0, reasons),
    }
}
