//! The subcommands.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use miette::{Diagnostic, Report};
use mlcycle_pipeline::config::PIPELINE_FILE;
use mlcycle_pipeline::exec::slurm::{self, detached, SlurmOptions};
use mlcycle_pipeline::exec::Interrupt;
use mlcycle_pipeline::history::History;
use mlcycle_pipeline::plan::StageStatus;
use mlcycle_pipeline::session::{GcOptions, Submitted};
use mlcycle_pipeline::summary::{fmt_duration, Outcome, RunSummary};
use mlcycle_pipeline::{Pipeline, RunRequest, Session, SessionOptions, StageRegistry, Workspace};

use crate::cli::{
    Cli, Cmd, DagFormat, ExecArgs, Executor, GcArgs, HistoryArgs, InitArgs, ModelsArgs, ModelsCmd,
    PredictArgs, RunArgs, RunsArgs, RunsCmd, ShowArgs, StagesArgs, StatusArgs, TargetArgs,
    WorkspaceArg,
};
use crate::locate::{locate, locate_root, Located};
use crate::report::TermReporter;

const EXIT_STAGE_FAILED: u8 = 1;
const EXIT_USAGE: u8 = 2;
const EXIT_INTERRUPTED: u8 = 130;

/// A failure to report, with the exit code it implies.
pub(crate) struct Fail {
    report: Report,
    code: u8,
}

impl<E: Diagnostic + Send + Sync + 'static> From<E> for Fail {
    fn from(e: E) -> Self {
        Fail {
            report: Report::new(e),
            code: EXIT_USAGE,
        }
    }
}

#[derive(Debug, thiserror::Error, Diagnostic)]
pub(crate) enum CliError {
    #[error("no {PIPELINE_FILE} in {dir}")]
    #[diagnostic(code(mlcycle::cli::no_pipeline), help("run mlcycle in a workspace folder (or below one), or name one: `mlcycle run path/to/workspace` or `-C path`; `mlcycle init` starts one"))]
    NoPipeline { dir: String },
    #[error("`{arg}` is not a workspace: {what}")]
    #[diagnostic(
        code(mlcycle::cli::not_a_workspace),
        help("a workspace is a folder with an mlcycle.yaml at its root; stage names have no `/`")
    )]
    NotAWorkspace { arg: String, what: String },
    #[error("`{arg}` is not KEY=VALUE")]
    #[diagnostic(
        code(mlcycle::cli::param),
        help("write overrides as `-p train.lr=0.1`")
    )]
    BadParam { arg: String },
    #[error("no run {id} in this workspace")]
    #[diagnostic(
        code(mlcycle::cli::no_run),
        help("`mlcycle runs` lists the recorded runs")
    )]
    NoRun { id: i64 },
    #[error("{message}")]
    #[diagnostic(code(mlcycle::cli::predict), help("{help}"))]
    Predict { message: String, help: String },
    #[cfg(feature = "serve")]
    #[error("{message}")]
    #[diagnostic(code(mlcycle::serve), help("{help}"))]
    Serve { message: String, help: String },
    #[error("{path} already exists")]
    #[diagnostic(
        code(mlcycle::cli::init_exists),
        help("this folder is a workspace already; `--force` overwrites the file")
    )]
    InitExists { path: String },
    #[error("unknown stage kind `{kind}`")]
    #[diagnostic(code(mlcycle::cli::unknown_kind))]
    UnknownKind {
        kind: String,
        #[help]
        help: Option<String>,
    },
    #[error("{0}")]
    #[diagnostic(code(mlcycle::cli::io))]
    Io(String),
    #[error("{0}")]
    #[diagnostic(code(mlcycle::cli::usage))]
    Usage(String),
}

pub fn main(registry: StageRegistry) -> ExitCode {
    let cli = Cli::parse();
    init_tracing(cli.verbose, cli.quiet);
    miette::set_hook(Box::new(|_| {
        Box::new(
            miette::MietteHandlerOpts::new()
                .terminal_links(false)
                .build(),
        )
    }))
    .ok();
    let res = match &cli.command {
        Cmd::Run(a) => cmd_run(&cli, a, &registry),
        Cmd::Status(a) => cmd_status(&cli, a, &registry),
        Cmd::Dag(a) => cmd_dag(&cli, &a.target, a.format, &registry),
        Cmd::Validate(a) => cmd_validate(&cli, a, &registry),
        Cmd::Gc(a) => cmd_gc(&cli, a, &registry),
        Cmd::Runs(a) => cmd_runs(&cli, a),
        Cmd::Stages(a) => cmd_stages(a, &registry),
        Cmd::Show(a) => cmd_show(&cli, a, &registry),
        Cmd::Predict(a) => cmd_predict(a),
        Cmd::Models(a) => cmd_models(&cli, a),
        Cmd::History(a) => cmd_history(&cli, a),
        #[cfg(feature = "serve")]
        Cmd::Serve(a) => cmd_serve(&cli, a),
        Cmd::Exec(a) => cmd_exec(&cli, a, &registry),
        Cmd::Init(a) => cmd_init(&cli, a),
        Cmd::Completions { shell } => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(*shell, &mut cmd, "mlcycle", &mut std::io::stdout());
            Ok(0)
        }
    };
    match res {
        Ok(code) => ExitCode::from(code),
        Err(f) => {
            eprintln!("{:?}", f.report);
            ExitCode::from(f.code)
        }
    }
}

fn init_tracing(verbose: u8, quiet: bool) {
    use tracing_subscriber::EnvFilter;
    let default = if quiet {
        "error"
    } else {
        match verbose {
            0 => "warn",
            1 => "info,mlcycle=debug,mlcycle_pipeline=debug",
            _ => "debug,mlcycle=trace,mlcycle_pipeline=trace",
        }
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let ansi = std::io::stderr().is_terminal()
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .with_target(false)
        .without_time()
        .try_init();
}

fn parse_overrides(params: &[String]) -> Result<Vec<(String, String)>, Fail> {
    params
        .iter()
        .map(|p| match p.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.to_string())),
            _ => Err(CliError::BadParam { arg: p.clone() }.into()),
        })
        .collect()
}

fn open(
    cli: &Cli,
    t: &TargetArgs,
    registry: &StageRegistry,
) -> Result<(Session, Vec<String>), Fail> {
    let Located {
        file,
        rest: targets,
    } = locate(cli.dir.as_deref(), &t.args)?;
    let overrides = parse_overrides(&t.params)?;
    let session = Session::open(
        &file,
        &SessionOptions {
            registry,
            overrides: &overrides,
        },
    )?;
    Ok((session, targets))
}

fn cmd_run(cli: &Cli, a: &RunArgs, registry: &StageRegistry) -> Result<u8, Fail> {
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
        jobs: a.jobs,
        keep_going: a.keep_going,
        no_wait: a.no_wait,
        command: std::env::args().skip(1).collect::<Vec<_>>().join(" "),
        slurm,
        interrupt: interrupt.clone(),
    };
    let reporter = TermReporter::new(cli.quiet || a.json, cli.verbose > 0);
    if a.detach {
        let d = session.submit_detached(&req, &reporter)?;
        print_submitted(&d, a.json);
        return Ok(0);
    }
    install_interrupt_handler(interrupt);
    let s = session.run(&req, &reporter)?.summary;
    tracing::debug!(
        ms = t.elapsed().as_secs_f64() * 1e3,
        "Ran and recorded the run."
    );
    if a.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&s).expect("summary serializes")
        );
    } else {
        print_failures(&s);
        if !cli.quiet {
            print!("{}", s.table(cli.verbose > 0));
            let _ = std::io::stdout().flush();
        }
    }
    // The process ends now: let the OS reclaim the pipeline's many small
    // allocations instead of freeing them one by one.
    std::mem::forget(session);
    Ok(if s.interrupted {
        EXIT_INTERRUPTED
    } else if s.succeeded() {
        0
    } else {
        EXIT_STAGE_FAILED
    })
}

fn print_submitted(d: &Submitted, json: bool) {
    let run_id = d.run_id;
    if json {
        println!(
            "{}",
            serde_json::json!({"run_id": run_id, "jobs": d.jobs.iter().map(|(s, j)| serde_json::json!({"stage": s, "job": j})).collect::<Vec<_>>()})
        );
    } else if d.jobs.is_empty() {
        println!("nothing to submit: every selected stage is fresh");
    } else {
        println!(
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
fn print_failures(s: &RunSummary) {
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

fn install_interrupt_handler(interrupt: Interrupt) {
    let _ = ctrlc::set_handler(move || {
        if interrupt.is_set() {
            eprintln!("Interrupted again: killing running commands and exiting now. The next run redoes unfinished stages.");
            interrupt.kill_all();
            std::process::exit(EXIT_INTERRUPTED as i32);
        }
        eprintln!("Interrupt: stopping running stages (press Ctrl-C again to exit at once)…");
        interrupt.interrupt(Duration::from_secs(5));
    });
}

fn cmd_status(cli: &Cli, a: &StatusArgs, registry: &StageRegistry) -> Result<u8, Fail> {
    let t = std::time::Instant::now();
    let (session, targets) = open(cli, &a.target, registry)?;
    tracing::debug!(
        ms = t.elapsed().as_secs_f64() * 1e3,
        stages = session.pipeline().stages.len(),
        rss_mb = rss_mb(),
        "Loaded the pipeline."
    );
    let selected = session.select(&targets, a.downstream)?;
    let st = session.status(&selected)?;
    tracing::debug!(
        ms = t.elapsed().as_secs_f64() * 1e3,
        rss_mb = rss_mb(),
        "Assessed every stage."
    );
    let stale: Vec<_> = st.iter().filter(|s| s.state != "fresh").collect();
    if a.json {
        let v = serde_json::json!({
            "pipeline": session.pipeline().name,
            "up_to_date": stale.is_empty(),
            "stages": st,
        });
        println!("{}", serde_json::to_string_pretty(&v).expect("json"));
    } else if !cli.quiet {
        print!("{}", status_table(&st, &stale, cli.verbose > 0));
    }
    // The process ends now: let the OS reclaim the plan's many small
    // allocations instead of freeing them one by one.
    std::mem::forget(session);
    Ok(if stale.is_empty() { 0 } else { 1 })
}

fn status_table(st: &[StageStatus], stale: &[&StageStatus], verbose: bool) -> String {
    let mut out = String::new();
    let rows: Vec<&StageStatus> = if verbose {
        st.iter().collect()
    } else {
        stale.to_vec()
    };
    if !rows.is_empty() {
        let w = rows
            .iter()
            .map(|r| r.stage.chars().count())
            .max()
            .unwrap_or(5)
            .max(5);
        out.push_str(&format!("{:<w$}  {:<10}  REASON\n", "STAGE", "STATE"));
        for r in rows {
            let why: Vec<String> = r.reasons.iter().map(|x| x.to_string()).collect();
            out.push_str(&format!(
                "{:<w$}  {:<10}  {}\n",
                r.stage,
                r.state,
                why.join("; ")
            ));
        }
    }
    if stale.is_empty() {
        out.push_str(&format!("all {} stages fresh\n", st.len()));
    } else {
        out.push_str(&format!(
            "{} of {} stages would run or be restored\n",
            stale.len(),
            st.len()
        ));
    }
    out
}

fn cmd_dag(
    cli: &Cli,
    t: &TargetArgs,
    format: DagFormat,
    registry: &StageRegistry,
) -> Result<u8, Fail> {
    let (session, targets) = open(cli, t, registry)?;
    let (p, g) = (session.pipeline(), session.graph());
    let keep = session.select(&targets, false)?;
    let s = match format {
        DagFormat::Mermaid => g.mermaid(p, &keep),
        DagFormat::Dot => g.dot(p, &keep),
        DagFormat::Text => g.text(p, &keep),
    };
    print!("{s}");
    Ok(0)
}

fn cmd_validate(cli: &Cli, t: &TargetArgs, registry: &StageRegistry) -> Result<u8, Fail> {
    let (session, targets) = open(cli, t, registry)?;
    let p = session.pipeline();
    if let Some(name) = targets.first() {
        return Err(CliError::Usage(format!(
            "`validate` checks the whole pipeline and takes no stage names (got `{name}`); pass a workspace folder or nothing"
        ))
        .into());
    }
    let edges: usize = p
        .stages
        .iter()
        .map(|s| {
            s.inputs
                .iter()
                .filter(|i| matches!(i.source, mlcycle_pipeline::config::Source::Stage { .. }))
                .count()
        })
        .sum();
    if !cli.quiet {
        let plural =
            |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
        println!(
            "pipeline `{}` is valid: {}, {}",
            p.name,
            plural(p.stages.len(), "stage", "stages"),
            plural(edges, "stage-to-stage input", "stage-to-stage inputs")
        );
    }
    Ok(0)
}

fn cmd_gc(cli: &Cli, a: &GcArgs, registry: &StageRegistry) -> Result<u8, Fail> {
    let args: Vec<String> = a
        .workspace
        .dir
        .iter()
        .map(|d| d.display().to_string())
        .collect();
    let (session, _) = open(
        cli,
        &TargetArgs {
            args,
            params: vec![],
        },
        registry,
    )?;
    let r = session.gc(
        &GcOptions {
            dry_run: a.dry_run,
            workspace_only: a.workspace_only,
            no_wait: a.no_wait,
        },
        &TermReporter::new(cli.quiet, false),
    )?;
    if !cli.quiet {
        let verb = if a.dry_run { "would remove" } else { "removed" };
        println!(
            "{verb} {} unreferenced objects ({}), {} run-cache entries, {} temp files; kept {} objects",
            r.removed_objects,
            human_bytes(r.removed_bytes),
            r.removed_entries,
            r.removed_tmp,
            r.kept_objects
        );
    }
    Ok(0)
}

fn human_bytes(b: u64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = b as f64;
    let mut u = 0;
    while v >= 1024.0 && u < units.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{b} B")
    } else {
        format!("{v:.1} {}", units[u])
    }
}

fn cmd_runs(cli: &Cli, a: &RunsArgs) -> Result<u8, Fail> {
    let dir = locate_root(cli.dir.as_deref(), a.workspace.dir.as_deref())?;
    let ws = Workspace::new(dir.canonicalize().unwrap_or(dir));
    let db = History::open(&ws)?;
    if !db.exists() {
        if let Some(RunsCmd::Show { id, .. }) = &a.show {
            return Err(CliError::NoRun { id: *id }.into());
        }
        if a.json {
            println!("[]");
        } else {
            println!("no runs recorded yet");
        }
        return Ok(0);
    }
    match &a.show {
        None => {
            let runs = db.runs(a.limit)?;
            if a.json {
                println!("{}", serde_json::to_string_pretty(&runs).expect("json"));
                return Ok(0);
            }
            println!(
                "{:>4}  {:<20}  {:<11}  {:>8}  {:>4} {:>5} {:>8} {:>6} {:>7}",
                "ID", "STARTED", "STATUS", "TIME", "RAN", "FRESH", "RESTORED", "FAILED", "SKIPPED"
            );
            for r in runs {
                let t = r
                    .duration_ms
                    .map(|d| fmt_duration(Duration::from_millis(d as u64)))
                    .unwrap_or_else(|| "-".into());
                println!(
                    "{:>4}  {:<20}  {:<11}  {:>8}  {:>4} {:>5} {:>8} {:>6} {:>7}",
                    r.id,
                    r.started_at,
                    r.status,
                    t,
                    r.ran,
                    r.fresh,
                    r.restored,
                    r.failed,
                    r.skipped
                );
            }
        }
        Some(RunsCmd::Show { id, logs, wait }) => {
            let Some((run, stages)) = db.run(*id)? else {
                return Err(CliError::NoRun { id: *id }.into());
            };
            if logs.is_none() && detached::is_detached(&ws, *id) {
                drop(db);
                return follow_detached(&ws, *id, *wait, a.json);
            }
            if let Some(stage) = logs {
                let dir = ws.runs_dir().join(id.to_string());
                let mut found = false;
                for (file, title) in [
                    (format!("{stage}.log"), "output"),
                    (format!("{stage}.slurm.log"), "Slurm job log"),
                ] {
                    let path = dir.join(&file);
                    if let Ok(text) = std::fs::read_to_string(&path) {
                        found = true;
                        println!("== {stage}: {title} ({})", path.display());
                        print!("{text}");
                        if !text.ends_with('\n') && !text.is_empty() {
                            println!();
                        }
                    }
                }
                if !found {
                    let known: Vec<&str> = stages.iter().map(|s| s.stage.as_str()).collect();
                    return Err(CliError::Usage(format!(
                        "run {id} kept no log for stage `{stage}`{}",
                        if known.contains(&stage.as_str()) {
                            " (it was fresh or restored, or wrote nothing)".to_string()
                        } else {
                            format!("; the run's stages: {}", known.join(", "))
                        }
                    ))
                    .into());
                }
                return Ok(0);
            }
            if a.json {
                let v = serde_json::json!({"run": run, "stages": stages});
                println!("{}", serde_json::to_string_pretty(&v).expect("json"));
                return Ok(0);
            }
            println!("run {}  {}  {}", run.id, run.status, run.started_at);
            println!("command: mlcycle {}", run.command);
            let w = stages
                .iter()
                .map(|s| s.stage.chars().count())
                .max()
                .unwrap_or(5)
                .max(5);
            println!("{:<w$}  {:<8}  {:>9}  REASON", "STAGE", "OUTCOME", "TIME");
            for s in stages {
                let why = match &s.detail {
                    Some(d) => d.clone(),
                    None => s.reasons.join("; "),
                };
                println!(
                    "{:<w$}  {:<8}  {:>9}  {}",
                    s.stage,
                    s.outcome,
                    fmt_duration(Duration::from_millis(s.duration_ms as u64)),
                    why
                );
            }
            let logs = ws.runs_dir().join(run.id.to_string());
            if logs.is_dir() {
                println!(
                    "stage logs: {}",
                    logs.strip_prefix(&ws.root).unwrap_or(&logs).display()
                );
            }
        }
    }
    Ok(0)
}

fn cmd_show(cli: &Cli, a: &ShowArgs, registry: &StageRegistry) -> Result<u8, Fail> {
    let (session, rest) = open(
        cli,
        &TargetArgs {
            args: a.args.clone(),
            params: vec![],
        },
        registry,
    )?;
    let p = session.pipeline();
    let Some(artifact) = rest.first() else {
        print!("{}", artifact_list(p));
        return Ok(0);
    };
    let usage = || {
        CliError::Usage(format!(
            "`{artifact}` is not `STAGE.PORT`; `mlcycle show` lists the artifacts"
        ))
    };
    let (sid, port) = artifact.split_once('.').ok_or_else(usage)?;
    let Some(stage) = p.stages.iter().find(|s| s.id == sid) else {
        let help = mlcycle_pipeline::suggest::closest(sid, p.stages.iter().map(|s| s.id.as_str()))
            .map(|s| format!("did you mean `{s}`?"));
        return Err(CliError::Usage(format!(
            "the pipeline has no stage `{sid}`{}",
            help.map(|h| format!("; {h}")).unwrap_or_default()
        ))
        .into());
    };
    let Some(out) = stage.outputs.iter().find(|o| o.name == port) else {
        let names: Vec<&str> = stage.outputs.iter().map(|o| o.name.as_str()).collect();
        return Err(CliError::Usage(format!(
            "stage `{sid}` has no output `{port}` (it has: {})",
            names.join(", ")
        ))
        .into());
    };
    let path = p.root.join(&out.path);
    if !path.exists() {
        return Err(CliError::Usage(format!(
            "`{}` has not been produced yet ({} is missing); run `mlcycle run {sid}` first",
            artifact, out.path
        ))
        .into());
    }
    let text = if out.path.ends_with(".arrow") {
        mlcycle_stages::table::Table::read_arrow(&path)
            .map_err(|e| CliError::Io(e.to_string()))?
            .preview(a.rows)
    } else if path.is_dir() {
        let files =
            mlcycle_pipeline::cache::walk_files(&path).map_err(|e| CliError::Io(e.to_string()))?;
        files.iter().map(|(r, _)| format!("{r}\n")).collect()
    } else {
        let bytes = std::fs::read(&path)
            .map_err(|e| CliError::Io(format!("cannot read {}: {e}", out.path)))?;
        match String::from_utf8(bytes) {
            Ok(s) => s,
            Err(e) => format!(
                "{} ({} bytes of binary data)\n",
                out.path,
                e.as_bytes().len()
            ),
        }
    };
    print!("{text}");
    Ok(0)
}

/// Every stage's outputs: `STAGE.PORT`, the path, and whether it exists.
fn artifact_list(p: &Pipeline) -> String {
    let rows: Vec<(String, &str, &str)> = p
        .stages
        .iter()
        .flat_map(|s| {
            s.outputs.iter().map(move |o| {
                let state = match std::fs::symlink_metadata(p.root.join(&o.path)) {
                    Ok(_) => "present",
                    Err(_) => "missing",
                };
                (format!("{}.{}", s.id, o.name), o.path.as_str(), state)
            })
        })
        .collect();
    if rows.is_empty() {
        return "the pipeline declares no outputs\n".into();
    }
    let w = rows
        .iter()
        .map(|r| r.0.chars().count())
        .max()
        .unwrap_or(8)
        .max(8);
    let pw = rows
        .iter()
        .map(|r| r.1.chars().count())
        .max()
        .unwrap_or(4)
        .max(4);
    let mut out = format!("{:<w$}  {:<pw$}  STATE\n", "ARTIFACT", "PATH");
    for (name, path, state) in rows {
        out.push_str(&format!("{name:<w$}  {path:<pw$}  {state}\n"));
    }
    out.push_str("`mlcycle show STAGE.PORT` prints one (a table's schema and first rows)\n");
    out
}

const INIT_PIPELINE: &str = "\
# An mlcycle pipeline: stages, what each reads and writes, and its params.
# `mlcycle validate` checks this file; `mlcycle run` runs what is stale;
# `mlcycle stages` lists the built-in kinds. Reference: docs/pipeline-yaml.md
name: NAME

params:
  seed: 42

stages:
  # A built-in stage: `uses:` a kind, `with:` its params.
  data:
    uses: dataset.synthetic
    with: {kind: regression, rows: 200, features: 3, seed: \"${params.seed}\"}
  # A command in any language: declare what it reads (`deps:`) and
  # writes (`outs:`); `${inputs.NAME}` and `${outputs.NAME}` name them.
  rows:
    run: wc -c < ${inputs.data} > ${outputs.bytes}
    deps: [data.data]
    outs: [out/bytes.txt]
";

fn cmd_init(cli: &Cli, a: &InitArgs) -> Result<u8, Fail> {
    let dir = match (&cli.dir, &a.dir) {
        (Some(c), Some(d)) => c.join(d),
        (Some(c), None) => c.clone(),
        (None, Some(d)) => d.clone(),
        (None, None) => PathBuf::from("."),
    };
    let file = dir.join(PIPELINE_FILE);
    if file.exists() && !a.force {
        return Err(CliError::InitExists {
            path: file.display().to_string(),
        }
        .into());
    }
    std::fs::create_dir_all(&dir)
        .map_err(|e| CliError::Io(format!("cannot create {}: {e}", dir.display())))?;
    let name = std::path::absolute(&dir)
        .ok()
        .and_then(|d| d.file_name().map(|n| n.to_string_lossy().into_owned()))
        .filter(|n| {
            !n.is_empty()
                && n.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        })
        .unwrap_or_else(|| "pipeline".into());
    std::fs::write(&file, INIT_PIPELINE.replace("NAME", &name))
        .map_err(|e| CliError::Io(format!("cannot write {}: {e}", file.display())))?;
    Workspace::new(&dir).ensure_state_dir()?;
    if !cli.quiet {
        println!(
            "wrote {}; `mlcycle run{}` runs it",
            file.display(),
            if dir == Path::new(".") {
                String::new()
            } else {
                format!(" {}", dir.display())
            }
        );
    }
    Ok(0)
}

/// The workspace's model registry (`-C` or the current folder).
fn open_registry(
    cli: &Cli,
    w: &WorkspaceArg,
) -> Result<mlcycle_stages::deploy::registry::ModelRegistry, Fail> {
    let dir = locate_root(cli.dir.as_deref(), w.dir.as_deref())?;
    let ws = Workspace::new(dir.canonicalize().unwrap_or(dir));
    let state = ws
        .db_path()
        .parent()
        .expect("the db is in a folder")
        .to_path_buf();
    mlcycle_stages::deploy::registry::ModelRegistry::open(&state)
        .map_err(|e| CliError::Io(e.to_string()).into())
}

/// A metric of a registered version for the table, if it has it.
fn headline(m: &serde_json::Value) -> String {
    for k in ["r2", "accuracy", "rmse", "f1_macro"] {
        if let Some(v) = m.get(k).and_then(serde_json::Value::as_f64) {
            return format!("{k} {}", mlcycle_stages::table::short(v));
        }
    }
    "-".into()
}

fn cmd_models(cli: &Cli, a: &ModelsArgs) -> Result<u8, Fail> {
    let mut reg = open_registry(cli, &a.workspace)?;
    let fail = |e: mlcycle_stages::deploy::registry::RegistryError| -> Fail {
        CliError::Usage(format!("{e}; `mlcycle models` lists the versions")).into()
    };
    match &a.cmd {
        Some(ModelsCmd::Promote { version, reason }) => {
            let e = reg.promote(*version, "promote", reason).map_err(fail)?;
            println!(
                "version {} is the champion (was {})",
                e.version,
                e.previous.map_or("none".to_string(), |p| p.to_string())
            );
            return Ok(0);
        }
        Some(ModelsCmd::Rollback { reason }) => {
            let e = reg.rollback(reason).map_err(fail)?;
            println!(
                "version {} is the champion again (was {})",
                e.version,
                e.previous.map_or("none".to_string(), |p| p.to_string())
            );
            return Ok(0);
        }
        None => {}
    }
    let versions = reg.list().map_err(fail)?;
    let champion = reg.champion_version().map_err(fail)?;
    if a.json {
        let v = serde_json::json!({
            "champion": champion,
            "versions": versions,
            "events": reg.events().map_err(fail)?,
        });
        println!("{}", serde_json::to_string_pretty(&v).expect("json"));
        return Ok(0);
    }
    if versions.is_empty() {
        println!("no model versions yet: a `deploy.promote` stage registers them");
        return Ok(0);
    }
    println!(
        "{:>7}  {:<20}  {:<26}  {:<16}  {:>6}  {:<20}",
        "VERSION", "NAME", "KIND", "METRIC", "RUN", "REGISTERED"
    );
    for v in &versions {
        println!(
            "{:>7}  {:<20}  {:<26}  {:<16}  {:>6}  {:<20}{}",
            v.version,
            v.name,
            v.kind,
            headline(&v.metrics),
            v.run_id.map_or("-".to_string(), |r| r.to_string()),
            v.created_at,
            if Some(v.version) == champion {
                "  champion"
            } else {
                ""
            }
        );
    }
    Ok(0)
}

fn cmd_history(cli: &Cli, a: &HistoryArgs) -> Result<u8, Fail> {
    let reg = open_registry(cli, &a.workspace)?;
    let decisions = reg.decisions().map_err(|e| CliError::Io(e.to_string()))?;
    if a.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&decisions).expect("json")
        );
    } else if decisions.is_empty() {
        println!("no promotion decisions yet: a `deploy.promote` stage makes them");
    } else {
        println!(
            "{:>4}  {:>10}  {:>9}  {:<10}  {:>9}  {:>8}  {:<22}  {:<8}  MESSAGE",
            "RUN",
            "TRAIN ROWS",
            "TEST ROWS",
            "METRIC",
            "CANDIDATE",
            "CHAMPION",
            "SCORES (NEW / CHAMPION)",
            "DECISION"
        );
        for d in &decisions {
            let num = |v: Option<f64>| v.map_or("-".to_string(), mlcycle_stages::table::short);
            println!(
                "{:>4}  {:>10}  {:>9}  {:<10}  {:>9}  {:>8}  {:<23}  {:<8}  {}",
                d.run_id.map_or("-".to_string(), |r| r.to_string()),
                d.train_rows.map_or("-".to_string(), |r| r.to_string()),
                d.rows,
                d.metric,
                format!("v{}", d.candidate),
                d.champion.map_or("-".to_string(), |c| format!("v{c}")),
                format!("{} / {}", num(d.candidate_value), num(d.champion_value)),
                if d.promoted { "promoted" } else { "kept" },
                d.message
            );
        }
    }
    if let Some(dir) = &a.plot {
        let pts =
            |f: &dyn Fn(&mlcycle_stages::deploy::registry::Decision) -> Option<f64>| -> Vec<(f64, f64)> {
                decisions
                    .iter()
                    .enumerate()
                    .filter_map(|(i, d)| f(d).map(|v| ((i + 1) as f64, v)))
                    .collect()
            };
        let metric = decisions
            .last()
            .map_or("metric".to_string(), |d| d.metric.clone());
        mlcycle_stages::plot::curve(
            dir,
            "history",
            &format!("{metric} over iterations"),
            ("decision", &metric),
            &[
                ("candidate", pts(&|d| d.candidate_value)),
                ("champion before", pts(&|d| d.champion_value)),
            ],
        )
        .map_err(CliError::Io)?;
        eprintln!("wrote {0}/history.svg and {0}/history.png", dir.display());
    }
    Ok(0)
}

/// Runs one stage as a Slurm job (see `exec::slurm::job`).
fn cmd_exec(cli: &Cli, a: &ExecArgs, registry: &StageRegistry) -> Result<u8, Fail> {
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
        print!("{}", s.table(true));
    }
    if let Some(e) = &done.record.error {
        eprintln!("{}: {e}", a.stage);
    }
    Ok(if done.record.ok { 0 } else { EXIT_STAGE_FAILED })
}

/// Shows a detached Slurm run's jobs; once all are over, the library
/// records the result in `mlcycle.lock` and the run history.
fn follow_detached(ws: &Workspace, id: i64, wait: bool, json: bool) -> Result<u8, Fail> {
    let pr = detached::follow(ws, id, wait, |holder| {
        eprintln!("Waiting for another mlcycle process to finish with this workspace{holder}…");
    })?;
    if json {
        println!(
            "{}",
            serde_json::json!({"run_id": id, "over": !pr.active, "jobs": pr.jobs})
        );
    } else {
        let w = pr
            .jobs
            .iter()
            .map(|r| r.stage.len())
            .max()
            .unwrap_or(5)
            .max(5);
        println!("{:<w$}  {:>8}  {:<10}  DETAIL", "STAGE", "JOB", "STATE");
        for r in &pr.jobs {
            println!(
                "{:<w$}  {:>8}  {:<10}  {}",
                r.stage, r.job, r.state, r.detail
            );
        }
        if pr.active {
            println!("run {id} is still going; `--wait` follows it to the end");
        } else if pr.recorded {
            println!("run {id} is over; its result is recorded in mlcycle.lock");
        }
    }
    Ok(if pr.active || !pr.failed {
        0
    } else {
        EXIT_STAGE_FAILED
    })
}

#[cfg(feature = "serve")]
fn cmd_serve(cli: &Cli, a: &crate::cli::ServeArgs) -> Result<u8, Fail> {
    use mlcycle_stages::deploy::serve;
    // A bundle can be served from outside any workspace: its prediction log
    // then lives in the current (or `-C`) folder.
    let dir = match locate_root(cli.dir.as_deref(), a.workspace.dir.as_deref()) {
        Ok(d) => d,
        Err(_) if a.bundle.is_some() && a.workspace.dir.is_none() => {
            cli.dir.clone().unwrap_or_else(|| PathBuf::from("."))
        }
        Err(e) => return Err(e),
    };
    let ws = Workspace::new(dir.canonicalize().unwrap_or(dir.clone()));
    let addr: std::net::SocketAddr = format!("{}:{}", a.host, a.port)
        .parse()
        .or_else(|_| {
            use std::net::ToSocketAddrs;
            (a.host.as_str(), a.port)
                .to_socket_addrs()
                .ok()
                .and_then(|mut it| it.next())
                .ok_or(())
        })
        .map_err(|_| CliError::Usage(format!("`{}` is not a host to listen on", a.host)))?;
    if !(a.header_timeout > 0.0 && a.header_timeout.is_finite()) {
        return Err(CliError::Usage(
            "`--header-timeout` must be a positive number of seconds".into(),
        )
        .into());
    }
    let state = ws
        .db_path()
        .parent()
        .expect("the db is in a folder")
        .to_path_buf();
    std::fs::create_dir_all(&state).map_err(|e| CliError::Io(e.to_string()))?;
    serve::serve(serve::ServeOptions {
        addr,
        workers: a
            .workers
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get())),
        max_body: a.max_body,
        header_timeout: std::time::Duration::from_secs_f64(a.header_timeout),
        feedback_quota: a.feedback_quota,
        bundle: a.bundle.clone(),
        feedback_log: ws.root.join("feedback").join("labels.jsonl"),
        state,
        poll: std::time::Duration::from_millis(500),
    })
    .map_err(|e| CliError::Serve {
        message: e,
        help: "`mlcycle models` shows the registry; `--bundle DIR` serves a bundle folder".into(),
    })?;
    Ok(0)
}

fn cmd_predict(a: &PredictArgs) -> Result<u8, Fail> {
    use mlcycle_stages::deploy::Bundle;
    let bundle = Bundle::load(&a.bundle).map_err(|e| CliError::Predict {
        message: e.to_string(),
        help: "rebuild the bundle with `mlcycle run`; a bundle is the folder with bundle.json"
            .into(),
    })?;
    // `-` reads standard input through a temporary file (the CSV reader
    // reports line numbers from a path).
    let stdin_copy;
    let input: &std::path::Path = if a.input.as_os_str() == "-" {
        let mut tmp = tempfile::NamedTempFile::new().map_err(|e| CliError::Io(e.to_string()))?;
        std::io::copy(&mut std::io::stdin().lock(), &mut tmp)
            .map_err(|e| CliError::Io(format!("cannot read standard input: {e}")))?;
        stdin_copy = tmp.into_temp_path();
        &stdin_copy
    } else {
        &a.input
    };
    let needs = || {
        bundle
            .model
            .inputs
            .iter()
            .map(|c| format!("{} ({})", c.name, c.ty))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let shown = a.input.display().to_string();
    let shown = if shown == "-" {
        "standard input".to_string()
    } else {
        shown
    };
    let rows = bundle.read_csv(input).map_err(|e| CliError::Predict {
        message: e.replace(&input.display().to_string(), &shown),
        help: format!("the model needs columns: {}", needs()),
    })?;
    let pred = bundle.predict(&rows).map_err(|e| CliError::Predict {
        message: format!("cannot score {shown}: {e}"),
        help: format!(
            "the model `{}` (version {}) needs columns: {}",
            bundle.manifest.name,
            bundle.manifest.version,
            needs()
        ),
    })?;
    let scored = bundle.with_predictions(&rows, &pred);
    tracing::info!(
        rows = rows.n_rows(),
        model = %bundle.manifest.name,
        version = %bundle.manifest.version,
        "Scored rows"
    );
    let text = if a.json {
        let mut s = String::new();
        for r in 0..scored.n_rows() {
            let mut obj = serde_json::Map::new();
            for c in &scored.columns {
                let v = match &c.data {
                    mlcycle_stages::table::ColumnData::Numeric(v) if v[r].is_finite() => {
                        serde_json::json!(v[r])
                    }
                    mlcycle_stages::table::ColumnData::Numeric(_) => serde_json::Value::Null,
                    mlcycle_stages::table::ColumnData::Categorical(v) => serde_json::json!(v[r]),
                };
                obj.insert(c.name.clone(), v);
            }
            s.push_str(&serde_json::Value::Object(obj).to_string());
            s.push('\n');
        }
        s
    } else {
        let tmp = tempfile::NamedTempFile::new().map_err(|e| CliError::Io(e.to_string()))?;
        scored
            .write_csv(tmp.path())
            .map_err(|e| CliError::Io(e.to_string()))?;
        std::fs::read_to_string(tmp.path()).map_err(|e| CliError::Io(e.to_string()))?
    };
    match &a.output {
        Some(p) => std::fs::write(p, text)
            .map_err(|e| CliError::Io(format!("cannot write {}: {e}", p.display())))?,
        None => {
            use std::io::Write;
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(text.as_bytes());
        }
    }
    Ok(0)
}

fn cmd_stages(a: &StagesArgs, registry: &StageRegistry) -> Result<u8, Fail> {
    if a.markdown {
        print!("{}", mlcycle_stages::catalogue_markdown(registry));
        return Ok(0);
    }
    match &a.kind {
        None => {
            let w = registry
                .kinds()
                .map(|f| f.kind().len())
                .max()
                .unwrap_or(7)
                .max(7);
            println!(
                "{:<w$}  run a command (`run:` stages; see docs/pipeline-yaml.md)",
                "command"
            );
            for f in registry.kinds() {
                println!("{:<w$}  {}", f.kind(), f.summary());
            }
        }
        Some(kind) => {
            let Some(f) = registry.get(kind) else {
                let help = registry
                    .suggest(kind)
                    .map(|s| format!("did you mean `{s}`?"));
                return Err(CliError::UnknownKind {
                    kind: kind.clone(),
                    help,
                }
                .into());
            };
            println!(
                "{} (version {})\n  {}\n",
                f.kind(),
                f.version(),
                f.summary()
            );
            println!("inputs:");
            if f.inputs().is_empty() {
                println!("  (none)");
            }
            for p in f.inputs() {
                println!(
                    "  {:<12} [{}] {}{}",
                    p.name,
                    p.artifact.as_str(),
                    p.doc,
                    if p.required { "" } else { " (optional)" }
                );
            }
            println!("outputs:");
            for p in f.outputs() {
                println!(
                    "  {:<12} [{}] {} (artifacts/<stage>/{})",
                    p.name,
                    p.artifact.as_str(),
                    p.doc,
                    p.file
                );
            }
            println!("params (with:):");
            if f.param_docs().is_empty() {
                println!("  (none)");
            }
            for p in f.param_docs() {
                println!("  {:<12} {:<20} {}", p.name, p.ty, p.doc);
            }
        }
    }
    Ok(0)
}

/// Resident memory in MiB, for debug logs.
fn rss_mb() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map(|pages| pages * 4096 / 1048576)
        .unwrap_or(0)
}
