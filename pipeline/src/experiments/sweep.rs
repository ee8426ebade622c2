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
use crate::config::load;
use crate::db::Db;
use crate::exec::{Interrupt, Reporter, StageGate};
use crate::registry::StageRegistry;
use crate::session::{RunRequest, Session, SessionOptions};
use crate::summary::StageResult;
use crate::workspace::{LockFile, Workspace};

/// Marks a scratch copy as complete (a copy cut short by a kill is redone).
const READY: &str = ".mlcycle-exp-ready";

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
}

impl SweepReporter for () {}

/// A sweep to run (or queue).
pub struct SweepRequest<'a> {
    pub registry: &'a StageRegistry,
    /// The workspace's `mlcycle.yaml`.
    pub pipeline: &'a Path,
    /// The configurations to try (each: the params it sets).
    pub configs: Vec<Config>,
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
    check_configs(req, &main)?;
    let ws = main.workspace().clone();
    let _writer = ws
        .lock_writer(true, |holder| reporter.waiting(holder))
        .map_err(|e| ExpError::from(crate::session::SessionError::from(e)))?;
    let store = ExpStore::open(&ws.state)?;
    let commit = git_commit(&ws.root);
    let mut names = Vec::new();
    let many = req.configs.len() > 1;
    let mut taken: HashSet<String> = store.names()?.into_iter().collect();
    for (i, config) in req.configs.iter().enumerate() {
        let set: Map<String, Value> = config.iter().cloned().collect();
        let params = all_params(main.pipeline(), config);
        if let Some(old) = store.find_by_params(&params)? {
            // The same params again: the same experiment, resumed (its
            // finished stages are fresh in its copy, or restored).
            if !old.alive() && !names.contains(&old.name) {
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
    drop(store);
    reporter.begin(names.len());
    let gate = Arc::new(StageGate::new(req.jobs));
    let excluded = excluded_paths(&main);
    let ctx = Ctx {
        req,
        ws: &ws,
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

/// Every key a configuration sets must be a param of the pipeline; the
/// first configuration must make a valid pipeline (the others are checked
/// as they start: a bad one fails alone).
fn check_configs(req: &SweepRequest<'_>, main: &Session) -> Result<(), ExpError> {
    let params = &main.pipeline().params;
    for config in &req.configs {
        for (key, v) in config {
            match crate::params::get(params, key) {
                None => {
                    let keys = crate::params::all_keys(params);
                    let mut help = crate::suggest::did_you_mean(key, &keys);
                    if help.is_empty() {
                        help = "experiments set params the pipeline declares (under `params:` or in its `params_file:`)".into();
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
                Some(_) => {}
            }
        }
    }
    if let Some(first) = req.configs.first() {
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
    /// Runs one experiment in its scratch copy and records how it ended.
    fn run_one(&self, name: &str) -> Result<ExpRecord, ExpError> {
        let t0 = Instant::now();
        let store = ExpStore::open(&self.ws.state)?;
        let rec = super::find(&store, name)?;
        let set: Config = rec.set.clone().into_iter().collect();
        let scratch = self.ws.state.join("exps").join(name);
        store.start(name)?;
        let fail = |error: String| -> Result<ExpRecord, ExpError> {
            store.finish(
                name,
                &Finish {
                    status: ExpStatus::Failed,
                    params: &Map::new(),
                    metrics: &Map::new(),
                    stages: &[],
                    lock: None,
                    duration_ms: t0.elapsed().as_millis() as u64,
                    error: Some(&error),
                },
            )?;
            super::find(&store, name)
        };
        if let Err(e) = self.prepare(&scratch, &set) {
            return fail(e.to_string());
        }
        let file = scratch.join(
            self.req
                .pipeline
                .file_name()
                .unwrap_or(std::ffi::OsStr::new("mlcycle.yaml")),
        );
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
        let run = RunRequest {
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
        let metrics = read_metrics(&session);
        let lock_text = fs::read_to_string(session.workspace().lock_path()).ok();
        // Its results join the workspace's run-cache: applying the
        // experiment, or running the same params later, restores them.
        if let Some(lock) = lock_text
            .as_deref()
            .and_then(|t| serde_json::from_str::<LockFile>(t).ok())
        {
            let mut db = Db::open(&self.ws.db_path())
                .map_err(|e| ExpError::from(crate::session::SessionError::from(e)))?;
            db.save_run_cache(lock.stages.values())
                .map_err(|e| ExpError::from(crate::session::SessionError::from(e)))?;
        }
        // Run again with nothing to compute (resumed after a kill, or the
        // same params asked again): the record of the run that did the
        // work stands.
        let redone = summary
            .stages
            .iter()
            .any(|r| matches!(r.outcome, crate::summary::Outcome::Ran));
        if rec.status == ExpStatus::Done && status == ExpStatus::Done && !redone {
            store.finish(name, &Finish::same(&rec, ExpStatus::Done))?;
            drop(session);
            let _ = fs::remove_dir_all(&scratch);
            return super::find(&store, name);
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
        store.finish(
            name,
            &Finish {
                status,
                params: &params,
                metrics: &metrics,
                stages: &stages,
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
        super::find(&store, name)
    }

    /// Makes the scratch copy (unless a complete one is there) and writes
    /// the experiment's params into it.
    fn prepare(&self, scratch: &Path, set: &Config) -> Result<(), ExpError> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| ExpError::Io { path, source }
        };
        if !scratch.join(READY).exists() {
            if scratch.exists() {
                fs::remove_dir_all(scratch).map_err(io(scratch))?;
            }
            fs::create_dir_all(scratch).map_err(io(scratch))?;
            copy_tree(&self.ws.root, scratch, "", self.excluded).map_err(io(scratch))?;
            fs::write(scratch.join(READY), b"").map_err(io(scratch))?;
        }
        let file = scratch.join(
            self.req
                .pipeline
                .file_name()
                .unwrap_or(std::ffi::OsStr::new("mlcycle.yaml")),
        );
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

/// The metrics the stages wrote (`metrics: true` outputs, and built-in
/// `metrics` ports), flattened as `STAGE.KEY`: their numbers.
fn read_metrics(session: &Session) -> Map<String, Value> {
    let root = &session.workspace().root;
    let mut out = Map::new();
    for s in &session.pipeline().stages {
        for o in s.outputs.iter().filter(|o| o.metrics) {
            let Ok(text) = load::read_capped(&root.join(&o.path)) else {
                continue;
            };
            if let Ok(v @ Value::Object(_)) = load::parse(&text) {
                let mut leaves = Map::new();
                flatten(&s.id, &v, &mut leaves);
                // Metrics are numbers; text (a model's kind) is not one.
                out.extend(leaves.into_iter().filter(|(_, v)| v.is_number()));
            }
        }
    }
    out
}

/// Copies the workspace's files from `src/rel` to `dst/rel`: reflinks where
/// the filesystem has them, symlinks as they are, and a Python virtual
/// environment (a folder holding `pyvenv.cfg`) as a link to the original,
/// since it is an environment, not data. `.mlcycle`, `.git` and `excluded`
/// paths are left out.
fn copy_tree(src: &Path, dst: &Path, rel: &str, excluded: &HashSet<String>) -> io::Result<()> {
    let from = if rel.is_empty() {
        src.to_path_buf()
    } else {
        src.join(rel)
    };
    for entry in fs::read_dir(&from)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let child = if rel.is_empty() {
            name.to_string()
        } else {
            format!("{rel}/{name}")
        };
        if child == crate::workspace::STATE_DIR || child == ".git" || excluded.contains(&child) {
            continue;
        }
        let (s, d): (PathBuf, PathBuf) = (src.join(&child), dst.join(&child));
        let ft = entry.file_type()?;
        if ft.is_symlink() {
            std::os::unix::fs::symlink(fs::read_link(&s)?, &d)?;
        } else if ft.is_dir() {
            if s.join("pyvenv.cfg").is_file() {
                std::os::unix::fs::symlink(&s, &d)?;
            } else {
                fs::create_dir(&d)?;
                copy_tree(src, dst, &child, excluded)?;
            }
        } else if ft.is_file() {
            reflink_copy::reflink_or_copy(&s, &d)?;
            fs::set_permissions(&d, fs::metadata(&s)?.permissions())?;
        }
    }
    Ok(())
}
