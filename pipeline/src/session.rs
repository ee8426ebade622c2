//! A session: one workspace opened for `status`, `run` and `gc`.
//!
//! The session loads and validates the pipeline, builds its graph, and owns
//! everything a run persists: it takes the writer lock, reads `mlcycle.lock`
//! (with the journal of a killed run applied), runs the selected stages,
//! then writes the lock file, the file-hash memo, the run-cache and the run
//! history. A program that embeds the engine runs a pipeline in a few lines:
//!
//! ```no_run
//! use mlcycle_pipeline::{Session, SessionOptions, StageRegistry};
//! use mlcycle_pipeline::session::RunRequest;
//!
//! let registry = StageRegistry::new(); // or mlcycle_stages::builtin_registry()
//! let session = Session::open("mlcycle.yaml".as_ref(), &SessionOptions::new(&registry))?;
//! let done = session.run(&RunRequest::default(), &())?;
//! println!("{}", done.summary.table(false));
//! # Ok::<(), mlcycle_pipeline::session::SessionError>(())
//! ```

use foldhash::{HashSet, HashSetExt};
use std::path::{Path, PathBuf};

use crate::config::{load_pipeline, ConfigError, LoadOptions, Pipeline};
use crate::db::{Db, DbError};
use crate::exec::slurm::{self, SlurmOptions};
use crate::exec::{self, Interrupt, Reporter, RunError, RunOptions, StageGate};
use crate::graph::{StageGraph, UnknownTarget};
use crate::hash::Memo;
use crate::plan::{self, InputError, SharedMemo, StageStatus};
use crate::registry::StageRegistry;
use crate::summary::RunSummary;
use crate::workspace::{LockFile, StateError, Workspace, WriterLock};

/// What can go wrong in a session. Each variant keeps its source and its
/// diagnostic (code and help).
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum SessionError {
    #[error(transparent)]
    #[diagnostic(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    #[diagnostic(transparent)]
    Target(#[from] UnknownTarget),
    #[error(transparent)]
    #[diagnostic(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    #[diagnostic(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    #[diagnostic(transparent)]
    Run(#[from] RunError),
    #[error(transparent)]
    #[diagnostic(code(mlcycle::input))]
    Input(#[from] InputError),
    #[error("{} source file(s) lie inside output folders:\n{}", .0.len(), .0.iter().map(|s| format!("  - {s}")).collect::<Vec<_>>().join("\n"))]
    #[diagnostic(
        code(mlcycle::sources_in_outputs),
        help("move each file out of the output folder (a stage's output folder holds only what it writes), or delete it if that stage makes it; nothing was run or changed")
    )]
    SourcesInOutputs(Vec<plan::SourceInOutput>),
    #[error("cannot submit the run to Slurm: {0}")]
    #[diagnostic(code(mlcycle::slurm::submit))]
    Submit(String),
    #[error("cannot list the cache at {path}")]
    #[diagnostic(code(mlcycle::cache::list))]
    Cache {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// How to open a session.
#[derive(Clone, Copy)]
pub struct SessionOptions<'a> {
    /// The stage kinds the pipeline may use.
    pub registry: &'a StageRegistry,
    /// `-p key=value` overrides, as given.
    pub overrides: &'a [(String, String)],
    /// Read `mlcycle.lock` and the memo on another thread while the
    /// pipeline loads, for a [`Session::status`] to come. (A run reads them
    /// again under the writer lock.)
    pub read_ahead: bool,
    /// Refuse deps on missing source files (`validate`); otherwise only
    /// the stages that read them are blocked.
    pub strict_sources: bool,
    /// The workspace this one is a scratch copy of (an experiment's): its
    /// run-cache is consulted after this one's. (The copy's pipeline file
    /// names the parent's cache in `cache_dir:`, so that Slurm jobs, which
    /// load that file alone, store there too.)
    pub parent: Option<&'a Workspace>,
}

impl<'a> SessionOptions<'a> {
    /// Options with no param overrides.
    pub fn new(registry: &'a StageRegistry) -> Self {
        Self {
            registry,
            overrides: &[],
            read_ahead: false,
            strict_sources: true,
            parent: None,
        }
    }
}

/// The lock file and the memo (with its database), as status reads them.
type StateRead = (Result<LockFile, StateError>, (Option<Db>, Memo));

fn read_state(ws: &Workspace) -> StateRead {
    std::thread::scope(|sc| {
        let lock = sc.spawn(|| ws.read_lock());
        let memo = open_memo(ws);
        (lock.join().expect("reading the lock does not panic"), memo)
    })
}

/// A loaded, validated pipeline and its workspace.
pub struct Session {
    pipeline: Pipeline,
    graph: StageGraph,
    ws: Workspace,
    /// The state read ahead while the pipeline loaded (`read_ahead`).
    ahead: std::sync::Mutex<Option<std::thread::JoinHandle<StateRead>>>,
}

/// What to run, and how.
#[derive(Debug, Clone, Default)]
pub struct RunRequest {
    /// Stage names to run (with what they need); empty: every stage.
    pub targets: Vec<String>,
    /// Also run what depends on the targets.
    pub downstream: bool,
    /// Rerun the targets (every stage when there are none) even when fresh.
    pub force: bool,
    /// Rerun the targets and every stage after them even when fresh (and
    /// select those stages, as `downstream` does).
    pub force_downstream: bool,
    /// Stages running at once; `None`: one per core.
    pub jobs: Option<usize>,
    /// Go on with independent stages after a failure.
    pub keep_going: bool,
    /// Fail at once, instead of waiting, when another process holds the
    /// workspace.
    pub no_wait: bool,
    /// The command line, for the run history.
    pub command: String,
    /// Run stale stages as Slurm jobs.
    pub slurm: Option<SlurmOptions>,
    /// Stops the run when triggered.
    pub interrupt: Interrupt,
    /// Shared with the other runs of an experiment sweep in this process.
    pub gate: Option<std::sync::Arc<StageGate>>,
}

/// A finished run: its summary (which carries the run id).
#[derive(Debug)]
pub struct RunDone {
    pub summary: RunSummary,
    /// Why the results could not be written to `mlcycle.lock` (a full
    /// disk): the run failed, though its stages ended as `summary` says.
    pub not_recorded: Option<StateError>,
}

/// The jobs of a run handed to Slurm with `--detach`.
#[derive(Debug)]
pub struct Submitted {
    pub run_id: i64,
    /// (stage, job id), in submission order.
    pub jobs: Vec<(String, String)>,
}

/// What `gc` keeps and removes.
#[derive(Debug, Clone, Copy, Default)]
pub struct GcOptions {
    /// Count only; delete nothing.
    pub dry_run: bool,
    /// Keep only what `mlcycle.lock` references: drop the run-cache entries
    /// of other fingerprints (reverting a param then reruns).
    pub workspace_only: bool,
    /// Fail at once when another process holds the workspace.
    pub no_wait: bool,
}

/// What `gc` did (or would do, with `dry_run`).
#[derive(Debug, Clone, Default)]
pub struct GcReport {
    pub removed_objects: usize,
    pub removed_bytes: u64,
    pub removed_entries: usize,
    pub removed_tmp: usize,
    pub kept_objects: usize,
}

impl Session {
    /// Loads and validates the pipeline file `file` (`mlcycle.yaml`).
    ///
    /// # Errors
    /// Every problem of the pipeline at once ([`SessionError::Config`]).
    pub fn open(file: &Path, opts: &SessionOptions<'_>) -> Result<Self, SessionError> {
        // Once the workspace has state, keep the parsed pipeline there.
        let state = file
            .parent()
            .unwrap_or(Path::new("."))
            .join(crate::workspace::STATE_DIR);
        let parse_cache = state.is_dir().then(|| state.join("parsed-pipeline.json"));
        // The lock file and the memo do not depend on the pipeline (only
        // the cache folder does), so they can be read while it loads.
        let ahead = opts.read_ahead.then(|| {
            let ws = Workspace::new(file.parent().unwrap_or(Path::new(".")));
            std::thread::spawn(move || read_state(&ws))
        });
        let pipeline = load_pipeline(
            file,
            &LoadOptions {
                registry: opts.registry,
                overrides: opts.overrides,
                parse_cache: parse_cache.as_deref(),
                strict_sources: opts.strict_sources,
            },
        )?;
        let graph = StageGraph::build(&pipeline);
        let mut ws = Workspace::for_pipeline(&pipeline);
        if let Some(parent) = opts.parent {
            ws.parent_db = Some(parent.db_path());
        }
        Ok(Self {
            pipeline,
            graph,
            ws,
            ahead: std::sync::Mutex::new(ahead),
        })
    }

    /// The validated pipeline.
    pub fn pipeline(&self) -> &Pipeline {
        &self.pipeline
    }

    /// Its DAG.
    pub fn graph(&self) -> &StageGraph {
        &self.graph
    }

    /// Its workspace (paths of the lock file, the state folder, the cache).
    pub fn workspace(&self) -> &Workspace {
        &self.ws
    }

    /// The stages a command about `targets` considers (all when empty).
    pub fn select(&self, targets: &[String], downstream: bool) -> Result<Vec<bool>, UnknownTarget> {
        self.graph.select(&self.pipeline, targets, downstream)
    }

    /// What a run of the selected stages would do, and why. Writes nothing
    /// but the file-hash memo (best effort: it only saves work next time).
    pub fn status(&self, selected: &[bool]) -> Result<Vec<StageStatus>, SessionError> {
        let ahead = self.ahead.lock().unwrap_or_else(|e| e.into_inner()).take();
        let (lock, (db, memo)) = match ahead {
            Some(h) => h.join().expect("reading the lock does not panic"),
            None => read_state(&self.ws),
        };
        let lock = lock?;
        let memo = SharedMemo::new(memo);
        let st = plan::status(
            &self.ws,
            &self.pipeline,
            &self.graph,
            &lock,
            &memo,
            selected,
        );
        if let Some(mut db) = db {
            let _ = db.save_memo(memo.into_inner().take_changed());
        }
        // Freeing the lock's many small allocations takes a few ms at
        // 10 000 stages; do it off the caller's path (a CLI exits first, a
        // long-lived program still gets the memory back).
        std::thread::spawn(move || drop(lock));
        Ok(st)
    }

    /// Refuses source files inside output folders that a run would clear
    /// (see [`plan::sources_in_outputs`]), as `run` does before it starts.
    ///
    /// # Errors
    /// [`SessionError::SourcesInOutputs`], or a lock file that cannot be read.
    pub fn check_sources_in_outputs(&self) -> Result<(), SessionError> {
        let p = &self.pipeline;
        let inside = p
            .stages
            .iter()
            .flat_map(|s| &s.inputs)
            .any(|i| match i.source {
                crate::config::Source::Stage { stage, output } => {
                    i.path != p.stages[stage].outputs[output].path
                }
                crate::config::Source::File(_) => false,
            });
        if !inside {
            return Ok(());
        }
        let lock = self.ws.read_lock()?;
        let memo = SharedMemo::default();
        let all = vec![true; self.pipeline.stages.len()];
        let found = plan::sources_in_outputs(&self.ws, &self.pipeline, &lock, &memo, &all);
        if found.is_empty() {
            Ok(())
        } else {
            Err(SessionError::SourcesInOutputs(found))
        }
    }

    /// Takes the workspace's writer lock; `reporter` hears about a wait.
    fn writer(&self, no_wait: bool, reporter: &dyn Reporter) -> Result<WriterLock, StateError> {
        self.ws
            .lock_writer(!no_wait, |holder| reporter.waiting(holder))
    }

    /// Runs the stale stages among those `req` selects and records the run:
    /// `mlcycle.lock`, the memo, the run-cache and the run history.
    ///
    /// # Errors
    /// An unknown target, a busy workspace with `no_wait`, or a failure to
    /// read or write the workspace state. A stage that fails is not an
    /// error: it is in the summary.
    pub fn run(&self, req: &RunRequest, reporter: &dyn Reporter) -> Result<RunDone, SessionError> {
        let Started {
            _writer,
            lock,
            mut db,
            mut memo,
            run_id,
            opts,
        } = self.start(req, reporter)?;
        let overlaps = {
            let shared = SharedMemo::new(std::mem::take(&mut memo));
            let found =
                plan::sources_in_outputs(&self.ws, &self.pipeline, &lock, &shared, &opts.selected);
            memo = shared.into_inner();
            found
        };
        if !overlaps.is_empty() {
            let e = SessionError::SourcesInOutputs(overlaps);
            db.fail_run(run_id, &RunSummary::default(), &e.to_string())?;
            return Err(e);
        }
        if let Err(e) = self.ws.cache.clean_tmp() {
            tracing::debug!(error = %e, "Could not clean cache temp files.");
        }
        let out = exec::run(
            &self.ws,
            &self.pipeline,
            &self.graph,
            lock,
            memo,
            &opts,
            reporter,
        )?;
        reporter.finish();
        let mut memo = out.memo;
        if out.lock_changed || self.ws.journal_path().exists() {
            if let Err(e) = self.ws.write_lock(&out.lock) {
                // The stages' results are in the journal (the next run
                // reads them back); the run itself failed, and says why.
                let _ = db.save_memo(memo.take_changed());
                db.fail_run(run_id, &out.summary, &e.to_string())?;
                return Ok(RunDone {
                    summary: out.summary,
                    not_recorded: Some(e),
                });
            }
        }
        db.save_memo(memo.take_changed())?;
        db.save_run_cache(
            out.replaced
                .iter()
                .chain(out.ran.iter().filter_map(|id| out.lock.stages.get(id))),
        )?;
        db.finish_run(run_id, &out.summary)?;
        Ok(RunDone {
            summary: out.summary,
            not_recorded: None,
        })
    }

    /// What every run starts with: the selection, the writer lock, the
    /// lock file and memo read under it, and the run recorded as started
    /// (runs that a killed process left `running` are marked `killed`).
    fn start(&self, req: &RunRequest, reporter: &dyn Reporter) -> Result<Started, SessionError> {
        let selected = self.select(&req.targets, req.downstream || req.force_downstream)?;
        self.ws.ensure_state_dir()?;
        let writer = self.writer(req.no_wait, reporter)?;
        let lock = self.ws.read_lock()?;
        // Holding the writer lock, no other process writes the lock file:
        // temp files of it are a killed run's.
        self.ws.clean_lock_temps();
        let mut db = Db::open(&self.ws.db_path())?;
        let memo = db.load_memo()?;
        db.mark_abandoned(&lock)?;
        // Commands a killed run left running would race this run's.
        exec::orphans::reap(&self.ws);
        let run_id = db.start_run(&req.command, &self.pipeline.name)?;
        Ok(Started {
            _writer: writer,
            lock,
            db,
            memo,
            run_id,
            opts: self.run_options(req, selected, run_id),
        })
    }

    /// The stages a run forces: with `force`, the targets (all stages when
    /// none is named); with `force_downstream`, the targets and every stage
    /// after them. What they need runs only if it is stale.
    fn forced(&self, req: &RunRequest) -> Vec<bool> {
        let p = &self.pipeline;
        let named: Vec<bool> = if req.targets.is_empty() {
            vec![true; p.stages.len()]
        } else {
            let mut named = vec![false; p.stages.len()];
            for t in &req.targets {
                for i in p.named(t) {
                    named[i] = true;
                }
            }
            named
        };
        let after = if req.force_downstream {
            self.graph
                .descendants((0..p.stages.len()).filter(|&i| named[i]))
        } else {
            vec![false; p.stages.len()]
        };
        (0..p.stages.len())
            .map(|i| (req.force && named[i]) || after[i])
            .collect()
    }

    fn run_options(&self, req: &RunRequest, selected: Vec<bool>, run_id: i64) -> RunOptions {
        RunOptions {
            jobs: req.jobs.unwrap_or_else(|| {
                std::thread::available_parallelism()
                    .map(|n| n.get())
                    .unwrap_or(2)
            }),
            forced: self.forced(req),
            keep_going: req.keep_going,
            selected,
            log_dir: self.ws.runs_dir().join(run_id.to_string()),
            run_id: Some(run_id),
            slurm: req.slurm.clone(),
            interrupt: req.interrupt.clone(),
            gate: req.gate.clone(),
        }
    }

    /// Hands every stale stage of the selection, and everything downstream
    /// of one, to Slurm with `afterok` dependencies, and returns at once.
    /// `mlcycle runs show ID --wait` follows the run and records its end.
    pub fn submit_detached(
        &self,
        req: &RunRequest,
        reporter: &dyn Reporter,
    ) -> Result<Submitted, SessionError> {
        let Some(slurm) = &req.slurm else {
            return Err(SessionError::Submit(
                "`--detach` needs the Slurm executor (`--executor slurm` or `executor: slurm`)"
                    .into(),
            ));
        };
        let Started {
            _writer,
            lock,
            mut db,
            memo,
            run_id,
            opts,
        } = self.start(req, reporter)?;
        let shared = SharedMemo::new(memo);
        let submitted = slurm::submit_detached(
            &self.ws,
            &self.pipeline,
            &self.graph,
            &lock,
            &shared,
            &opts.selected,
            &opts.forced,
            &opts.log_dir,
            run_id,
            slurm,
            &req.interrupt,
        );
        let d = match submitted {
            Ok(d) => d,
            Err(e) => {
                // The run ended here, with the reason (not "killed").
                let summary = RunSummary {
                    run_id: Some(run_id),
                    interrupted: req.interrupt.is_set(),
                    duration: std::time::Duration::ZERO,
                    stages: vec![],
                };
                let _ = db.fail_run(run_id, &summary, &e);
                return Err(SessionError::Submit(e));
            }
        };
        db.save_memo(shared.into_inner().take_changed())?;
        db.mark_detached(run_id)?;
        Ok(Submitted {
            run_id,
            jobs: d.jobs,
        })
    }

    /// Deletes cache objects that neither `mlcycle.lock` nor a run-cache
    /// entry references, and stale temp files.
    pub fn gc(&self, opts: &GcOptions, reporter: &dyn Reporter) -> Result<GcReport, SessionError> {
        let ws = &self.ws;
        let _writer = self.writer(opts.no_wait, reporter)?;
        let lock = ws.read_lock()?;
        let mut keep = HashSet::new();
        for e in lock.stages.values() {
            for o in e.outs.values() {
                ws.cache.referenced(o, &mut keep);
            }
        }
        let lock_keys: HashSet<&str> = lock.stages.values().map(|e| e.key.as_str()).collect();
        let mut db = ws
            .db_path()
            .exists()
            .then(|| Db::open(&ws.db_path()))
            .transpose()?;
        let entries = match &db {
            Some(db) => db.run_cache_entries()?,
            None => Vec::new(),
        };
        let mut dropped = Vec::new();
        for entry in entries {
            if opts.workspace_only && !lock_keys.contains(entry.key.as_str()) {
                dropped.push(entry.key);
                continue;
            }
            for o in entry.outs.values() {
                ws.cache.referenced(o, &mut keep);
            }
        }
        if let (Some(db), false) = (&mut db, opts.dry_run) {
            db.remove_run_cache(&dropped)?;
        }
        let objects = ws.cache.objects().map_err(|source| SessionError::Cache {
            path: ws.cache.root().to_path_buf(),
            source,
        })?;
        let mut report = GcReport {
            removed_entries: dropped.len(),
            ..GcReport::default()
        };
        for (hash, size) in &objects {
            if keep.contains(hash) {
                report.kept_objects += 1;
                continue;
            }
            report.removed_objects += 1;
            report.removed_bytes += size;
            if !opts.dry_run {
                if let Err(e) = ws.cache.remove(hash) {
                    tracing::warn!(object = %hash, error = %e, "Could not delete object.");
                }
            }
        }
        if !opts.dry_run {
            report.removed_tmp = ws.cache.clean_tmp().unwrap_or(0);
        }
        Ok(report)
    }
}

/// A run just started, holding the workspace's writer lock.
struct Started {
    _writer: WriterLock,
    lock: LockFile,
    db: Db,
    memo: Memo,
    run_id: i64,
    opts: RunOptions,
}

/// The workspace database and its memo, when the workspace has one; a
/// damaged database only costs the memo.
fn open_memo(ws: &Workspace) -> (Option<Db>, Memo) {
    if !ws.db_path().exists() {
        return (None, Memo::default());
    }
    match Db::open(&ws.db_path()) {
        Ok(db) => {
            let memo = db.load_memo().unwrap_or_default();
            (Some(db), memo)
        }
        Err(e) => {
            tracing::warn!(error = %e, "Could not open the workspace database; hashing without the memo.");
            (None, Memo::default())
        }
    }
}
