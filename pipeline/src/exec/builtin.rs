//! The in-process runner: a built-in (or custom Rust) stage's `run` on a
//! worker thread, its log lines streamed to the reporter and the stage
//! log. A panic in a stage is a failure of that stage, not of the run.

use std::sync::Mutex;

use super::runner::{in_place, Failure, Produced, RunFailure, Runner, StageJob, StageLog};
use super::scheduler::Reporter;
use crate::config::{Action, StageDef};
use crate::stage::{Gathered, RunContext};
use crate::workspace::Workspace;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::beneath::Beneath;

/// Runs built-in stages (anything registered in the stage registry).
pub(crate) struct BuiltinRunner;

impl Runner for BuiltinRunner {
    fn run(&self, job: &StageJob<'_>) -> Result<Produced, RunFailure> {
        let Action::Builtin(stage) = &job.stage.action else {
            unreachable!("the in-process runner gets built-in stages")
        };
        // A pool of its own, of the stage's CPU share: in the process-wide
        // pool a stage's parallel work queued behind another's (a logistic
        // regression that takes 0.09 s alone took 3 s beside a random
        // forest).
        let run = || {
            run_builtin(
                job.ws,
                job.stage,
                stage.as_ref(),
                job.log_path,
                job.reporter,
                job.run_id,
                job.interrupt,
            )
        };
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(job.cpus.max(1))
            .thread_name(|i| format!("mlcycle-stage-{i}"))
            .build();
        in_place(match pool {
            Ok(pool) => pool.install(run),
            Err(_) => run(),
        })
    }
}

fn run_builtin(
    ws: &Workspace,
    s: &StageDef,
    stage: &dyn crate::stage::Stage,
    log_path: &Path,
    reporter: &dyn Reporter,
    run_id: Option<i64>,
    interrupt: &super::Interrupt,
) -> Result<(), Failure> {
    let interrupted = || interrupt.is_set();
    let log = Mutex::new(StageLog::new(log_path));
    let logger = |line: &str| {
        log.lock()
            .unwrap_or_else(|e| e.into_inner())
            .line("  ", line);
        reporter.line(&s.id, line, false);
    };
    let staging = Staging::new(ws, s).map_err(|e| {
        (
            format!("cannot make the folder the stage writes its outputs in: {e}"),
            vec![],
        )
    })?;
    // Step-wise metrics: a fresh file for each run, as for `run:` stages.
    let steps = ws.step_metrics_path(&s.id);
    if let Some(dir) = steps.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    let _ = std::fs::remove_file(&steps);
    let ctx = RunContext {
        stage: &s.id,
        workspace: &ws.root,
        inputs: s
            .inputs
            .iter()
            .filter(|i| i.gathered.is_none())
            .map(|i| (i.key.clone(), ws.root.join(&i.path)))
            .collect(),
        gathered: gathered(ws, s),
        outputs: s
            .outputs
            .iter()
            .zip(&staging.paths)
            .map(|(o, staged)| (o.name.clone(), staged.clone()))
            .collect(),
        log: &logger,
        run_id,
        step_metrics: Some(steps),
        interrupted: &interrupted,
    };
    let ran = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| stage.run(&ctx))) {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => {
            let msg = match &e.help {
                Some(h) => format!("{} (help: {h})", e.report()),
                None => e.report(),
            };
            Err((staging.unstaged(msg), vec![]))
        }
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            Err((
                staging.unstaged(format!("the stage panicked: {what}")),
                vec![],
            ))
        }
    };
    ran?;
    staging.publish(ws, s).map_err(|e| (e, vec![]))
}

/// The artifacts of the stage's gathering ports, by port, in order.
fn gathered(ws: &Workspace, s: &StageDef) -> BTreeMap<String, Vec<Gathered>> {
    let mut by_port: BTreeMap<String, Vec<Gathered>> = BTreeMap::new();
    for i in &s.inputs {
        if let Some(from) = &i.gathered {
            by_port.entry(i.name.clone()).or_default().push(Gathered {
                from: from.clone(),
                path: ws.root.join(&i.path),
            });
        }
    }
    by_port
}

/// Where a built-in stage writes its outputs: a fresh folder in the
/// cache's temp area, which only mlcycle writes. Once the stage succeeds,
/// each output is moved into the workspace with one rename beneath the
/// root ([`Beneath::publish`]), so a stage's writes never go through a
/// symlink that leads out of the workspace, even one put there while the
/// stage ran. Each output keeps its file name (stages choose a format by
/// its extension). A failed stage leaves nothing behind.
struct Staging {
    dir: PathBuf,
    /// One per output of the stage, in order.
    paths: Vec<PathBuf>,
    /// The outputs' paths as written in the pipeline.
    rels: Vec<String>,
}

impl Staging {
    fn new(ws: &Workspace, s: &StageDef) -> std::io::Result<Self> {
        let dir = ws.cache.staging_path();
        let mut paths = Vec::with_capacity(s.outputs.len());
        for (i, o) in s.outputs.iter().enumerate() {
            let rel = o.path.trim_end_matches('/');
            let name = rel.rsplit('/').next().unwrap_or(rel);
            let folder = dir.join(i.to_string());
            std::fs::create_dir_all(&folder)?;
            let staged = folder.join(name);
            if o.persist {
                // A persistent output is updated by the stage: it starts
                // from what the workspace holds.
                copy_tree(&ws.root.join(rel), &staged)?;
            }
            paths.push(staged);
        }
        let rels = s.outputs.iter().map(|o| o.path.clone()).collect();
        Ok(Self { dir, paths, rels })
    }

    /// A stage's message with the staged paths written as the user wrote
    /// them (`out/model.json`, not the temp folder).
    fn unstaged(&self, mut msg: String) -> String {
        for (staged, rel) in self.paths.iter().zip(&self.rels) {
            msg = msg.replace(&staged.display().to_string(), rel);
        }
        msg
    }

    /// Moves every output the stage wrote into the workspace. An output it
    /// did not write is left for the store step to report.
    fn publish(&self, ws: &Workspace, s: &StageDef) -> Result<(), String> {
        let beneath = Beneath::open(&ws.root)
            .map_err(|e| format!("cannot open the workspace root to write in it: {e}"))?;
        for (o, staged) in s.outputs.iter().zip(&self.paths) {
            if std::fs::symlink_metadata(staged).is_err() {
                continue;
            }
            beneath
                .publish(staged, o.path.trim_end_matches('/'))
                .map_err(|e| format!("cannot put output `{}` in place: {e}", o.path))?;
        }
        Ok(())
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Copies the file or folder at `from` to `to` (nothing when `from` is
/// not there).
fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    let meta = match std::fs::metadata(from) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    if !meta.is_dir() {
        return std::fs::copy(from, to).map(drop);
    }
    std::fs::create_dir_all(to)?;
    for e in std::fs::read_dir(from)? {
        let e = e?;
        copy_tree(&e.path(), &to.join(e.file_name()))?;
    }
    Ok(())
}
