//! `run` (local, Slurm, detached) and `exec`, the job side of a Slurm run.

use super::*;

pub(super) fn cmd_run(cli: &Cli, a: &RunArgs, registry: &StageRegistry) -> Result<u8, Fail> {
    let t = std::time::Instant::now();
    let (session, targets) = open(cli, &a.target, registry)?;
    let p = session.pipeline();
    tracing::debug!(
        ms = t.elapsed().as_secs_f64() * 1e3,
        stages = p.stages.len(),
        "Loaded the pipeline."
    );
    let ws = session.workspace();
    let interrupt = Interrupt::new();
    let slurm = match a
        .executor
        .unwrap_or(if p.executor.as_deref() == Some("slurm") {
            Executor::Slurm
        } else {
            Executor::Local
        }) {
        Executor::Local => None,
        Executor::Slurm => Some(SlurmOptions {
            extra: a.slurm_args.clone(),
            params: a.target.params.clone(),
            resources: p
                .resources
                .iter()
                .map(|(id, r)| (id.clone(), r.sbatch_args()))
                .collect(),
            ..SlurmOptions::from_env(
                std::env::current_exe().map_err(|e| CliError::Io(e.to_string()))?,
                ws.root.canonicalize().unwrap_or_else(|_| ws.root.clone()),
            )
        }),
    };
    let req = RunRequest {
        targets,
        downstream: a.downstream,
        force: a.force,
        force_downstream: a.force_downstream,
        jobs: a.jobs,
        keep_going: a.keep_going,
        no_wait: a.no_wait,
        command: std::env::args().skip(1).collect::<Vec<_>>().join(" "),
        slurm,
        interrupt: interrupt.clone(),
        gate: None,
    };
    let reporter = TermReporter::new(cli.quiet || a.json, cli.verbose > 0);
    if a.detach {
        // Ctrl-C while submitting stops it; the jobs already submitted are
        // cancelled.
        install_interrupt_handler(interrupt);
        let d = session.submit_detached(&req, &reporter)?;
        print_submitted(&d, a.json);
        return Ok(0);
    }
    if !cli.quiet && !a.json {
        super::status::warn_missing_sources(session.pipeline());
    }
    install_interrupt_handler(interrupt);
    let done = session.run(&req, &reporter)?;
    let s = done.summary;
    tracing::debug!(
        ms = t.elapsed().as_secs_f64() * 1e3,
        "Ran and recorded the run."
    );
    if a.json {
        outln!(
            "{}",
            serde_json::to_string_pretty(&s).expect("summary serializes")
        );
    } else {
        print_failures(&s);
        if !cli.quiet {
            out!("{}", s.table(cli.verbose > 0));
            let _ = std::io::stdout().flush();
        }
    }
    // The process ends now: let the OS reclaim the pipeline's many small
    // allocations instead of freeing them one by one.
    std::mem::forget(session);
    exit_code(&s, done.not_recorded)
}

/// A run's exit code: 130 interrupted, 1 a stage failed, else 0; an
/// error when its results could not be recorded.
pub(super) fn exit_code(
    s: &RunSummary,
    not_recorded: Option<mlcycle_pipeline::workspace::StateError>,
) -> Result<u8, Fail> {
    if let Some(e) = not_recorded {
        return Err(mlcycle_pipeline::SessionError::from(e).into());
    }
    Ok(if s.interrupted {
        EXIT_INTERRUPTED
    } else if s.succeeded() {
        0
    } else {
        EXIT_STAGE_FAILED
    })
}

pub(super) fn print_submitted(d: &Submitted, json: bool) {
    let run_id = d.run_id;
    if json {
        outln!(
            "{}",
            serde_json::json!({"run_id": run_id, "jobs": d.jobs.iter().map(|(s, j)| serde_json::json!({"stage": s, "job": j})).collect::<Vec<_>>()})
        );
    } else if d.jobs.is_empty() {
        outln!("nothing to submit: every selected stage is fresh");
    } else {
        outln!(
            "run {run_id}: submitted {} job(s) to Slurm ({}); follow it with `mlcycle runs show {run_id} --wait`",
            d.jobs.len(),
            d.jobs
                .iter()
                .map(|(s, j)| format!("{s} {j}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
}

/// Each failed stage with the tail of its stderr and where its log is.
pub(super) fn print_failures(s: &RunSummary) {
    for r in &s.stages {
        if let Outcome::Failed {
            error,
            stderr_tail,
            log,
        } = &r.outcome
        {
            let mut msg = format!("stage `{}` failed: {error}", r.stage);
            if !stderr_tail.is_empty() {
                msg.push_str("\n  last lines of its stderr:");
                for l in stderr_tail {
                    msg.push_str(&format!("\n  | {l}"));
                }
            }
            if let Some(log) = log {
                msg.push_str(&format!("\n  full log: {log}"));
            }
            eprintln!("{msg}");
        }
    }
}

pub(super) fn install_interrupt_handler(interrupt: Interrupt) {
    let _ = ctrlc::set_handler(move || {
        if interrupt.is_set() {
            eprintln!("Interrupted again: killing running commands and exiting now. The next run redoes unfinished stages.");
            interrupt.kill_all();
            interrupt.cancel_jobs();
            std::process::exit(EXIT_INTERRUPTED as i32);
        }
        eprintln!("Interrupt: stopping running stages (press Ctrl-C again to exit at once)…");
        interrupt.interrupt(Duration::from_secs(5));
    });
}

/// Runs one stage as a Slurm job (see `exec::slurm::job`).
pub(super) fn cmd_exec(cli: &Cli, a: &ExecArgs, registry: &StageRegistry) -> Result<u8, Fail> {
    let dir = cli.dir.clone().unwrap_or_else(|| PathBuf::from("."));
    let root = dir.canonicalize().unwrap_or(dir);
    let interrupt = Interrupt::new();
    install_interrupt_handler(interrupt.clone());
    let reporter = TermReporter::new(false, false);
    let done = slurm::job::exec(
        &slurm::job::JobRun {
            root: &root,
            stage: &a.stage,
            run_id: a.run,
            registry,
            interrupt,
        },
        &reporter,
    )
    .map_err(|e| CliError::Io(format!("cannot write the job's record: {e}")))?;
    // The job's log says what happened, whatever the stage printed.
    if let Some(s) = &done.summary {
        out!("{}", s.table(true));
    }
    if let Some(e) = &done.record.error {
        eprintln!("{}: {e}", a.stage);
    }
    Ok(if done.record.ok { 0 } else { EXIT_STAGE_FAILED })
}
