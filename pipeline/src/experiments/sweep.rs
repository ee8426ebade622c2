//! Running a sweep: each configuration in a scratch copy of the workspace,
//! all of them at once under one [`StageGate`], so shared stages run once.

use std::collections::HashSet;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde_json::{Map, Value};

use super::edit::{render, ParamFiles};
use super::grid::Config;
use super::store::{ExpRecord, ExpStage, ExpStatus, ExpStore, Finish};
use super::{flatten, ExpError};
use crate::db::Db;
use crate::exec::{Interrupt, Reporter, StageGate};
use crate::registry::StageRegistry;
use crate::session::{RunRequest, Session, SessionOptions};
use crate::summary::StageResult;
use crate::workspace::{LockFile, Workspace};

/// The name a params file from outside the workspace gets in a scratch
/// copy (the original is never written by a sweep).
const OUTSIDE_PARAMS: &str = ".mlcycle-params.yaml";

/// What a sweep reports as it goes.
pub trait SweepReporter: Send + Sync {
    /// `count` experiments are about to run.
    fn begin(&self, _count: usize) {}
    /// Another process holds the workspace; the sweep waits for it.
    fn waiting(&self, _holder: &str) {}
    /// A stage of experiment `exp` started to run.
    fn stage_started(&self, _exp: &str, _stage: &str) {}
    /// A stage of experiment `exp` ended.
    fn stage(&self, _exp: &str, _result: &StageResult) {}
    /// An experiment ended (its record as stored).
    fn finished(&self, _record: &ExpRecord) {}
    /// A configuration has the params of experiment `name`: it is that
    /// experiment, run again (resumed, or checked), not a new one.
    fn same_params(&self, _name: &str) {}
    /// Something about an experiment the user should know (metrics that
    /// could not be read).
    fn warn(&self, _exp: &str, _message: &str) {}
}

impl SweepReporter for () {}

/// A sweep to run (or queue).
pub struct SweepRequest<'a> {
    pub registry: &'a StageRegistry,
    /// The workspace's `mlcycle.yaml`.
    pub pipeline: &'a Path,
    /// The configurations to try.
    pub plan: Plan,
    /// `-n NAME`: the experiment's name (`NAME-1`, `NAME-2`, … for several).
    pub name: Option<String>,
    /// Job slots shared by every experiment.
    pub jobs: usize,
    /// Only record the experiments as queued.
    pub queue: bool,
    /// Also run every queued or interrupted experiment (`--run-all`).
    pub run_queued: bool,
    /// Go on with independent stages after a failure.
    pub keep_going: bool,
    pub interrupt: Interrupt,
    /// Run the stages as Slurm jobs with these options (their workspace
    /// root and resources are each experiment's).
    pub slurm: Option<crate::exec::slurm::SlurmOptions>,
}

/// Which configurations a sweep tries.
#[derive(Debug, Clone)]
pub enum Plan {
    /// Every combination of the axes' values (none: no new experiment).
    Grid(Vec<super::Axis>),
    /// `n` configurations drawn with `seed`.
    Random {
        axes: Vec<super::Axis>,
        n: usize,
        seed: u64,
    },
}

impl Plan {
    /// The configurations, drawn against the pipeline's params: a range
    /// `0..1` of a float param draws floats, not the integers 0 and 1.
    fn configs(&self, params: &Value) -> Result<Vec<Config>, ExpError> {
        match self {
            Plan::Grid(axes) if axes.is_empty() => Ok(Vec::new()),
            Plan::Grid(axes) => super::grid::grid(axes),
            Plan::Random { axes, n, seed } => {
                let axes: Vec<super::Axis> = axes
                    .iter()
                    .map(|a| {
                        let mut a = a.clone();
                        if let super::Values::Range { int, .. } = &mut a.values {
                            let is_int = crate::params::get(params, &a.key)
                                .is_some_and(|v| v.is_i64() || v.is_u64());
                            *int = *int && is_int;
                        }
                        a
                    })
                    .collect();
                super::grid::random(&axes, *n, *seed)
            }
        }
    }
}

/// What a sweep did.
#[derive(Debug)]
pub struct SweepDone {
    /// The experiments it ran or queued, in order, as recorded.
    pub experiments: Vec<ExpRecord>,
    /// Stages computed; every other stale stage was restored or shared.
    pub computed: usize,
    pub wall: std::time::Duration,
}

/// Runs (or queues) a sweep. See the [module docs](super).
///
/// # Errors
/// An invalid pipeline or configuration (before anything runs), or a
/// failure to read or write the workspace's state. A failed experiment is
/// not an error: its record says how it ended.
pub fn run_sweep(
    req: &SweepRequest<'_>,
    reporter: &dyn SweepReporter,
) -> Result<SweepDone, ExpError> {
    let start = Instant::now();
    let main = Session::open(
        req.pipeline,
        &SessionOptions {
            strict_sources: false,
            ..SessionOptions::new(req.registry)
        },
    )?;
    let configs = req.plan.configs(&main.pipeline().params)?;
    check_configs(req, &main, &configs)?;
    let ws = main.workspace().clone();
    let _writer = ws.lock_writer(true, |holder| reporter.waiting(holder))?;
    let store = ExpStore::open(&ws.state)?;
    let commit = git_commit(&ws.root);
    let mut names = Vec::new();
    let many = configs.len() > 1;
    let mut taken: HashSet<String> = store.names()?.into_iter().collect();
    for (i, config) in configs.iter().enumerate() {
        let set: Map<String, Value> = config.iter().cloned().collect();
        let params = all_params(main.pipeline(), config);
        if let Some(old) = store.find_by_params(&params)? {
            // The same params again: the same experiment, resumed (its
            // finished stages are fresh in its copy, or restored).
            if !old.alive() && !names.contains(&old.name) {
                reporter.same_params(&old.name);
                names.push(old.name);
            }
            continue;
        }
        let name = match &req.name {
            Some(n) if many => format!("{n}-{}", i + 1),
            Some(n) => n.clone(),
            None => generated_name(&set, &taken),
        };
        super::check_name(&name)?;
        store.insert(&name, &set, &params, commit.as_deref())?;
        taken.insert(name.clone());
        names.push(name);
    }
    if req.run_queued {
        for r in store.all()? {
            let resumable = matches!(r.status, ExpStatus::Queued | ExpStatus::Interrupted)
                || (r.status == ExpStatus::Running && !r.alive());
            if resumable && !names.contains(&r.name) {
                names.push(r.name);
            }
        }
    }
    if req.queue {
        for n in &names {
            // A resumed experiment goes back in the queue.
            if let Some(r) = store.get(n)? {
                if r.status != ExpStatus::Queued {
                    store.finish(n, &Finish::same(&r, ExpStatus::Queued))?;
                }
            }
        }
        let experiments = names
            .iter()
            .filter_map(|n| store.get(n).ok().flatten())
            .collect();
        return Ok(SweepDone {
            experiments,
            computed: 0,
            wall: start.elapsed(),
        });
    }
    // One connection to each database for all the threads (opened here,
    // so that their schemas exist before any thread writes).
    let store = Mutex::new(store);
    let main_db = Mutex::new(Db::open(&ws.db_path())?);
    reporter.begin(names.len());
    let gate = Arc::new(StageGate::new(req.jobs));
    let excluded = excluded_paths(&main);
    let ctx = Ctx {
        req,
        ws: &ws,
        store: &store,
        main_db: &main_db,
        gate: &gate,
        excluded: &excluded,
        reporter,
    };
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<(usize, Result<ExpRecord, ExpError>)>> = Mutex::new(Vec::new());
    // Experiments waiting for a shared stage hold no slot, so more of them
    // than slots may be under way.
    let workers = names.len().min((req.jobs * 2).max(4));
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some(name) = names.get(i) else { break };
                if req.interrupt.is_set() {
                    break;
                }
                let r = ctx.run_one(name);
                if let Ok(rec) = &r {
                    reporter.finished(rec);
                }
                results
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push((i, r));
            });
        }
    });
    // A stage shared by several experiments logged its steps in the one
    // that computed it: the others get them too.
    share_steps(&store.lock().unwrap_or_else(|e| e.into_inner()), &names)?;
    let mut results = results.into_inner().unwrap_or_else(|e| e.into_inner());
    results.sort_by_key(|(i, _)| *i);
    let mut experiments = Vec::with_capacity(results.len());
    for (_, r) in results {
        experiments.push(r?);
    }
    Ok(SweepDone {
        experiments,
        computed: gate.computed(),
        wall: start.elapsed(),
    })
}

/// Gives each experiment of `names` the step-wise metrics of the stages it
/// restored from another experiment's run of the same fingerprint.
fn share_steps(store: &ExpStore, names: &[String]) -> Result<(), ExpError> {
    let mut by_key: std::collections::HashMap<(String, String), Value> = Default::default();
    let mut each = Vec::with_capacity(names.len());
    for n in names {
        let lock: LockFile = match store.lock_of(n)?.map(|t| serde_json::from_str(&t)) {
            Some(Ok(l)) => l,
            _ => continue,
        };
        let steps = store.steps_of(n)?;
        for (stage, lines) in &steps {
            if let Some(e) = lock.stages.get(stage) {
                by_key.insert((stage.clone(), e.key.clone()), lines.clone());
            }
        }
        each.push((n, lock, steps));
    }
    for (n, lock, mut steps) in each {
        let mut changed = false;
        for (stage, e) in &lock.stages {
            if steps.contains_key(stage) {
                continue;
            }
            if let Some(lines) = by_key.get(&(stage.clone(), e.key.clone())) {
                steps.insert(stage.clone(), lines.clone());
                changed = true;
            }
        }
        if changed {
            store.set_steps(n, &Value::Object(steps).to_string())?;
        }
    }
    Ok(())
}

/// Every key a configuration sets must be a param of the pipeline; the
/// first configuration must make a valid pipeline (the others are checked
/// as they start: a bad one fails alone).
fn check_configs(
    req: &SweepRequest<'_>,
    main: &Session,
    configs: &[Config],
) -> Result<(), ExpError> {
    let params = &main.pipeline().params;
    for config in configs {
        for (key, v) in config {
            match crate::params::get(params, key) {
                None => {
                    let keys = crate::params::all_keys(params);
                    let mut help = crate::suggest::did_you_mean(key, &keys);
                    if help.is_empty() {
                        help = super::DECLARED_PARAMS.into();
                    }
                    return Err(ExpError::UnknownParam {
                        key: key.clone(),
                        file: "mlcycle.yaml and its params file".into(),
                        help,
                    });
                }
                Some(old) if old.is_object() || old.is_array() || v.is_object() || v.is_array() => {
                    return Err(ExpError::NotScalar { key: key.clone() })
                }
                Some(old) => {
                    if let Some(was) = type_change(old, v) {
                        return Err(ExpError::TypeChanged {
                            key: key.clone(),
                            value: render(v),
                            was,
                            old: render(old),
                        });
                    }
                }
            }
        }
    }
    if let Some(first) = configs.first() {
        // Where each param is written can be checked once: it depends on
        // the key, not the value.
        ParamFiles::of(req.pipeline)?.check(first)?;
        let overrides = overrides(first);
        Session::open(
            req.pipeline,
            &SessionOptions {
                overrides: &overrides,
                strict_sources: false,
                ..SessionOptions::new(req.registry)
            },
        )
        .map_err(|e| ExpError::Config {
            index: 1,
            set: describe(first),
            source: e,
        })?;
    }
    Ok(())
}

/// What `old` is, when `new` is a value of another type (any two numbers
/// are one type).
fn type_change(old: &Value, new: &Value) -> Option<&'static str> {
    let kind = |v: &Value| match v {
        Value::Number(_) => "a number",
        Value::String(_) => "text",
        Value::Bool(_) => "a boolean",
        Value::Null => "null",
        _ => "a mapping or list",
    };
    (kind(old) != kind(new) && !old.is_null()).then(|| kind(old))
}

/// Every param of `p` with `config` applied, by dotted key: what makes an
/// experiment the same as another.
fn all_params(p: &crate::config::Pipeline, config: &Config) -> Map<String, Value> {
    let mut tree = p.params.clone();
    for (k, v) in config {
        crate::params::set_existing(&mut tree, k, v.clone());
    }
    let mut out = Map::new();
    flatten("", &tree, &mut out);
    out
}

fn overrides(config: &Config) -> Vec<(String, String)> {
    config.iter().map(|(k, v)| (k.clone(), render(v))).collect()
}

/// `lr=0.1 epochs=10`.
pub fn describe(config: &[(String, Value)]) -> String {
    config
        .iter()
        .map(|(k, v)| format!("{k}={}", render(v)))
        .collect::<Vec<_>>()
        .join(" ")
}

/// `exp-` and six hex digits of a hash of the params and the time.
fn generated_name(set: &Map<String, Value>, taken: &HashSet<String>) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let mut h = blake3::Hasher::new();
    h.update(Value::Object(set.clone()).to_string().as_bytes());
    h.update(&nanos.to_le_bytes());
    let hex = h.finalize().to_hex();
    (6..hex.len())
        .map(|n| format!("exp-{}", &hex[..n]))
        .find(|n| !taken.contains(n))
        .expect("a 64-digit hash has a free prefix")
}

fn git_commit(root: &Path) -> Option<String> {
    let out = std::process::Command::new("git")
        .args(["rev-parse", "HEAD"])
        .current_dir(root)
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
        .filter(|s| !s.is_empty())
}

/// Paths a scratch copy leaves out: what the stages write, the lock file
/// and the cache folder when it lies in the workspace.
fn excluded_paths(main: &Session) -> HashSet<String> {
    let p = main.pipeline();
    let mut out: HashSet<String> = p
        .stages
        .iter()
        .flat_map(|s| {
            s.outputs
                .iter()
                .map(|o| o.path.trim_end_matches('/').to_string())
        })
        .collect();
    out.insert(crate::workspace::LOCK_FILE.to_string());
    if let Some(rel) = main
        .workspace()
        .cache
        .root()
        .strip_prefix(&p.root)
        .ok()
        .and_then(|r| r.to_str())
    {
        out.insert(rel.to_string());
    }
    out
}

struct Ctx<'a> {
    req: &'a SweepRequest<'a>,
    ws: &'a Workspace,
    store: &'a Mutex<ExpStore>,
    /// The workspace's database, whose run-cache each experiment adds to.
    main_db: &'a Mutex<Db>,
    gate: &'a Arc<StageGate>,
    excluded: &'a HashSet<String>,
    reporter: &'a dyn SweepReporter,
}

/// Passes an experiment's stage events on, with its name.
struct Named<'a> {
    exp: &'a str,
    inner: &'a dyn SweepReporter,
}

impl Reporter for Named<'_> {
    fn started(&self, stage: &str, _reasons: &[crate::fingerprint::StaleReason]) {
        self.inner.stage_started(self.exp, stage);
    }
    fn finished(&self, result: &StageResult) {
        self.inner.stage(self.exp, result);
    }
}

impl Ctx<'_> {
    /// The pipeline file of the scratch copy `scratch`.
    fn pipeline_in(&self, scratch: &Path) -> PathBuf {
        scratch.join(
            self.req
                .pipeline
                .file_name()
                .unwrap_or(std::ffi::OsStr::new("mlcycle.yaml")),
        )
    }

    /// The experiments database (one connection, shared by the threads).
    fn db(&self) -> std::sync::MutexGuard<'_, ExpStore> {
        self.store.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs one experiment in its scratch copy and records how it ended.
    fn run_one(&self, name: &str) -> Result<ExpRecord, ExpError> {
        let t0 = Instant::now();
        let rec = super::find(&self.db(), name)?;
        let set: Config = rec.set.clone().into_iter().collect();
        let scratch = self.ws.state.join("exps").join(name);
        self.db().start(name)?;
        let fail = |error: String| -> Result<ExpRecord, ExpError> {
            self.db().finish(
                name,
                &Finish {
                    status: ExpStatus::Failed,
                    params: &Map::new(),
                    metrics: &Map::new(),
                    stages: &[],
                    steps: None,
                    lock: None,
                    duration_ms: t0.elapsed().as_millis() as u64,
                    error: Some(&error),
                },
            )?;
            super::find(&self.db(), name)
        };
        if let Err(e) = self.prepare(&scratch, &set) {
            return fail(e.to_string());
        }
        let file = self.pipeline_in(&scratch);
        let session = match Session::open(
            &file,
            &SessionOptions {
                strict_sources: false,
                parent: Some(self.ws),
                ..SessionOptions::new(self.req.registry)
            },
        ) {
            Ok(s) => s,
            Err(e) => return fail(render_error(&e)),
        };
        let slurm = self
            .req
            .slurm
            .clone()
            .map(|t| crate::exec::slurm::SlurmOptions {
                root: session.workspace().root.clone(),
                resources: session
                    .pipeline()
                    .resources
                    .iter()
                    .map(|(id, r)| (id.clone(), r.sbatch_args()))
                    .collect(),
                params: Vec::new(),
                ..t
            });
        let run = RunRequest {
            slurm,
            jobs: Some(self.req.jobs),
            keep_going: self.req.keep_going,
            command: format!("exp run ({name})"),
            interrupt: self.req.interrupt.clone(),
            gate: Some(self.gate.clone()),
            ..RunRequest::default()
        };
        let reporter = Named {
            exp: name,
            inner: self.reporter,
        };
        let done = match session.run(&run, &reporter) {
            Ok(d) => d,
            Err(e) => return fail(render_error(&e)),
        };
        let summary = &done.summary;
        let status = if summary.interrupted {
            ExpStatus::Interrupted
        } else if summary.succeeded() && done.not_recorded.is_none() {
            ExpStatus::Done
        } else {
            ExpStatus::Failed
        };
        // Run again with nothing to compute (resumed after a kill, or the
        // same params asked again): the record of the run that did the
        // work stands.
        let redone = summary
            .stages
            .iter()
            .any(|r| matches!(r.outcome, crate::summary::Outcome::Ran));
        if rec.status == ExpStatus::Done && status == ExpStatus::Done && !redone {
            self.db()
                .finish(name, &Finish::same(&rec, ExpStatus::Done))?;
            drop(session);
            let _ = fs::remove_dir_all(&scratch);
            return super::find(&self.db(), name);
        }
        let stages: Vec<ExpStage> = summary
            .stages
            .iter()
            .map(|r| ExpStage {
                stage: r.stage.clone(),
                outcome: r.outcome.label().to_string(),
                ms: r.duration.as_millis() as u64,
            })
            .collect();
        let mut params = Map::new();
        flatten("", &session.pipeline().params, &mut params);
        let (metrics, mut warnings) =
            super::metrics::in_files(session.workspace(), session.pipeline());
        // A stage that failed or never ran has no metrics to miss.
        if status != ExpStatus::Done {
            warnings.clear();
        }
        let (steps, lost) = read_steps(&session);
        warnings.extend(lost);
        for w in &warnings {
            self.reporter.warn(name, w);
        }
        let lock_text = fs::read_to_string(session.workspace().lock_path()).ok();
        // Its results join the workspace's run-cache: applying the
        // experiment, or running the same params later, restores them.
        if let Some(lock) = lock_text
            .as_deref()
            .and_then(|t| serde_json::from_str::<LockFile>(t).ok())
        {
            self.main_db
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .save_run_cache(lock.stages.values())?;
        }
        let error = summary
            .stages
            .iter()
            .find_map(|r| match &r.outcome {
                crate::summary::Outcome::Failed { error, .. } => {
                    Some(format!("stage `{}` failed: {error}", r.stage))
                }
                _ => None,
            })
            .or_else(|| done.not_recorded.as_ref().map(ToString::to_string));
        self.db().finish(
            name,
            &Finish {
                status,
                params: &params,
                metrics: &metrics,
                stages: &stages,
                steps: Some(&steps),
                lock: lock_text.as_deref(),
                duration_ms: t0.elapsed().as_millis() as u64,
                error: error.as_deref(),
            },
        )?;
        drop(session);
        if status == ExpStatus::Done {
            // Its outputs are in the cache and its record holds the lock;
            // a failed or interrupted copy stays, to resume and to read logs.
            let _ = fs::remove_dir_all(&scratch);
        }
        super::find(&self.db(), name)
    }

    /// Brings the scratch copy up to date with the workspace's files (a
    /// failed or interrupted experiment run again sees the code as it is
    /// now; its finished stages stay fresh only if their inputs are the
    /// same) and writes the experiment's params into it.
    fn prepare(&self, scratch: &Path, set: &Config) -> Result<(), ExpError> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| ExpError::Io { path, source }
        };
        fs::create_dir_all(scratch).map_err(io(scratch))?;
        clear_sources(scratch, "", self.excluded).map_err(io(scratch))?;
        copy_tree(&self.ws.root, scratch, "", self.excluded).map_err(io(scratch))?;
        let file = self.pipeline_in(scratch);
        // A params file outside the workspace is shared by everything that
        // reads it: the experiment gets its own copy.
        if let Some(pf) = ParamFiles::of(self.req.pipeline)?.params_file {
            let inside = pf
                .canonicalize()
                .is_ok_and(|p| p.starts_with(&self.ws.root));
            if !inside {
                let copy = scratch.join(OUTSIDE_PARAMS);
                fs::copy(&pf, &copy).map_err(io(&pf))?;
                super::edit::set_params_file(&file, OUTSIDE_PARAMS)?;
            }
        }
        // Where the experiment's results go, said in its own pipeline file:
        // a Slurm job loads that file, and must store into the same cache.
        let cache = self.ws.cache.root().to_string_lossy().into_owned();
        super::edit::set_top_level(&file, "cache_dir", &cache)?;
        ParamFiles::of(&file)?.write(set)?;
        Ok(())
    }
}

fn render_error(e: &dyn miette::Diagnostic) -> String {
    let mut s = e.to_string();
    if let Some(related) = e.related() {
        for r in related {
            s.push_str(&format!("\n  - {r}"));
        }
    }
    s
}

/// Most step-wise lines kept per stage, and bytes read per stage.
const MAX_STEPS: usize = 100_000;
const MAX_STEP_BYTES: u64 = 32 * 1024 * 1024;

/// The step-wise metrics the `run:` stages appended to their
/// `MLCYCLE_STEP_METRICS` file, as JSON (stage → the objects, in order),
/// and a warning per stage that lost lines: lines that are not JSON
/// objects, and lines past the caps. A value JSON cannot hold (`NaN`,
/// `Infinity`, as Python writes them, or `1e400`) is left out of its line;
/// the line is kept.
fn read_steps(session: &Session) -> (String, Vec<String>) {
    use std::io::{BufRead, Read};
    let ws = session.workspace();
    let mut out = Map::new();
    let mut warnings = Vec::new();
    for s in &session.pipeline().stages {
        let Ok(f) = fs::File::open(ws.step_metrics_path(&s.id)) else {
            continue;
        };
        let size = f.metadata().map_or(0, |m| m.len());
        let mut reader = io::BufReader::new(f.take(MAX_STEP_BYTES));
        let (mut lines, mut bad, mut over) = (Vec::new(), 0usize, 0usize);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match reader.read_until(b'\n', &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
            let text = String::from_utf8_lossy(&buf);
            let text = text.trim();
            if text.is_empty() {
                continue;
            }
            match step_line(text) {
                Some(v) if lines.len() < MAX_STEPS => lines.push(v),
                Some(_) => over += 1,
                None => bad += 1,
            }
        }
        let mut lost = Vec::new();
        if bad > 0 {
            lost.push(format!("{bad} line(s) that are not JSON objects"));
        }
        if over > 0 {
            lost.push(format!("{over} line(s) past the first {MAX_STEPS}"));
        }
        if size > MAX_STEP_BYTES {
            lost.push(format!(
                "everything after its first {} MiB",
                MAX_STEP_BYTES / (1024 * 1024)
            ));
        }
        if !lost.is_empty() {
            warnings.push(format!(
                "step-wise metrics of stage `{}`: left out {}",
                s.id,
                lost.join(", ")
            ));
        }
        if !lines.is_empty() {
            out.insert(s.id.clone(), Value::Array(lines));
        }
    }
    (Value::Object(out).to_string(), warnings)
}

/// One step line as a JSON object: JSON, or (for `NaN`, `Infinity` and
/// numbers out of range) read as YAML with those values left out.
fn step_line(text: &str) -> Option<Value> {
    if let Ok(v @ Value::Object(_)) = serde_json::from_str::<Value>(text) {
        return Some(v);
    }
    let y: serde_norway::Value = serde_norway::from_str(text).ok()?;
    fn to_json(y: &serde_norway::Value) -> Option<Value> {
        use serde_norway::Value as Y;
        Some(match y {
            Y::Null => Value::Null,
            Y::Bool(b) => Value::Bool(*b),
            Y::Number(n) => match n.as_i64() {
                Some(i) => Value::from(i),
                None => Value::Number(serde_json::Number::from_f64(n.as_f64()?)?),
            },
            // Python's `NaN` and `Infinity` are plain words to YAML.
            Y::String(s)
                if ["NaN", "Infinity", "-Infinity"].contains(&s.as_str())
                    || s.parse::<f64>().is_ok_and(|x| !x.is_finite()) =>
            {
                return None
            }
            Y::String(s) => Value::String(s.clone()),
            Y::Sequence(items) => Value::Array(items.iter().filter_map(to_json).collect()),
            Y::Mapping(m) => Value::Object(
                m.iter()
                    .filter_map(|(k, v)| Some((k.as_str()?.to_string(), to_json(v)?)))
                    .collect(),
            ),
            Y::Tagged(t) => to_json(&t.value)?,
        })
    }
    to_json(&y).filter(Value::is_object)
}

/// The entries of folder `base/rel`, each with its path relative to `base`
/// (names that are not UTF-8 are left out).
fn children(base: &Path, rel: &str) -> io::Result<Vec<(String, fs::DirEntry)>> {
    let dir = if rel.is_empty() {
        base.to_path_buf()
    } else {
        base.join(rel)
    };
    let mut out = Vec::new();
    for entry in fs::read_dir(&dir)? {
        let entry = entry?;
        let Some(name) = entry.file_name().to_str().map(str::to_string) else {
            continue;
        };
        let child = if rel.is_empty() {
            name
        } else {
            format!("{rel}/{name}")
        };
        out.push((child, entry));
    }
    Ok(out)
}

/// Removes from the scratch copy `dst` everything but its state folder and
/// the stages' outputs (`excluded`), before the sources are copied afresh.
fn clear_sources(dst: &Path, rel: &str, excluded: &HashSet<String>) -> io::Result<()> {
    for (child, entry) in children(dst, rel)? {
        if child == crate::workspace::STATE_DIR || excluded.contains(&child) {
            continue;
        }
        let ft = entry.file_type()?;
        let prefix = format!("{child}/");
        if ft.is_dir() && excluded.iter().any(|e| e.starts_with(&prefix)) {
            clear_sources(dst, &child, excluded)?;
        } else if ft.is_dir() {
            fs::remove_dir_all(entry.path())?;
        } else {
            fs::remove_file(entry.path())?;
        }
    }
    Ok(())
}

/// Where symlink `link` (at `at`, in the workspace `root`) leads, for its
/// copy: as written when it stays inside the workspace (it then leads to
/// the copy's own file), else the absolute place it leads to.
fn link_target(root: &Path, at: &Path, link: PathBuf) -> PathBuf {
    if link.is_absolute() {
        return link;
    }
    let mut resolved = at.parent().unwrap_or(root).to_path_buf();
    for part in link.components() {
        match part {
            std::path::Component::ParentDir => {
                resolved.pop();
            }
            std::path::Component::CurDir => {}
            other => resolved.push(other),
        }
    }
    if resolved.starts_with(root) {
        link
    } else {
        resolved
    }
}

/// Copies the workspace's files from `src/rel` to `dst/rel`: reflinks where
/// the filesystem has them, symlinks as they are, and a Python virtual
/// environment (a folder holding `pyvenv.cfg`) as a link to the original,
/// since it is an environment, not data. `.mlcycle`, `.git` and `excluded`
/// paths are left out.
fn copy_tree(src: &Path, dst: &Path, rel: &str, excluded: &HashSet<String>) -> io::Result<()> {
    for (child, entry) in children(src, rel)? {
        if child == crate::workspace::STATE_DIR || child == ".git" || excluded.contains(&child) {
            continue;
        }
        let (s, d): (PathBuf, PathBuf) = (src.join(&child), dst.join(&child));
        let ft = entry.file_type()?;
        if ft.is_symlink() {
            std::os::unix::fs::symlink(link_target(src, &s, fs::read_link(&s)?), &d)?;
        } else if ft.is_dir() {
            if s.join("pyvenv.cfg").is_file() {
                std::os::unix::fs::symlink(&s, &d)?;
            } else {
                fs::create_dir_all(&d)?;
                copy_tree(src, dst, &child, excluded)?;
            }
        } else if ft.is_file() {
            reflink_copy::reflink_or_copy(&s, &d)?;
            fs::set_permissions(&d, fs::metadata(&s)?.permissions())?;
        }
    }
    Ok(())
}
