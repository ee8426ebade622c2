//! The in-process runner: a built-in (or custom Rust) stage's `run` on a
//! worker thread, its log lines streamed to the reporter and the stage
//! log. A panic in a stage is a failure of that stage, not of the run.

use std::sync::Mutex;

use super::runner::{in_place, Failure, Produced, RunFailure, Runner, StageJob, StageLog};
use super::scheduler::Reporter;
use crate::config::{Action, StageDef};
use crate::stage::RunContext;
use crate::workspace::Workspace;
use std::path::Path;

/// Runs built-in stages (anything registered in the stage registry).
pub(crate) struct BuiltinRunner;

impl Runner for BuiltinRunner {
    fn run(&self, job: &StageJob<'_>) -> Result<Produced, RunFailure> {
        let Action::Builtin(stage) = &job.stage.action else {
            unreachable!("the in-process runner gets built-in stages")
        };
        in_place(run_builtin(
            job.ws,
            job.stage,
            stage.as_ref(),
            job.log_path,
            job.reporter,
            job.run_id,
        ))
    }
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
                Some(h) => format!("{} (help: {h})", e.report()),
                None => e.report(),
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
