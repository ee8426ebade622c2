//! The subcommands: one file each (or per small family), sharing the
//! error type, the workspace lookup and `open` from here.

mod exp;
mod gc;
mod init;
mod metrics;
mod models;
mod plots;
mod run;
mod runs;
mod serve;
mod show;
mod stages;
mod status;

use exp::*;
use gc::*;
use init::*;
use metrics::*;
use models::*;
use plots::*;
use run::*;
use runs::*;
use serve::*;
use show::*;
use stages::*;
use status::*;

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
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

use crate::error::{CliError, Fail, EXIT_INTERRUPTED, EXIT_STAGE_FAILED};
use crate::output::{out, outln};

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
        Cmd::Exp(c) => cmd_exp(&cli, c, &registry),
        Cmd::Metrics(c) => cmd_metrics(&cli, c, &registry),
        Cmd::Plots(c) => cmd_plots(&cli, c, &registry),
        Cmd::Stages(a) => cmd_stages(a, &registry),
        Cmd::Show(a) => cmd_show(&cli, a, &registry),
        Cmd::Predict(a) => cmd_predict(a),
        Cmd::Models(a) => cmd_models(&cli, a),
        Cmd::History(a) => cmd_history(&cli, a),
        #[cfg(feature = "serve")]
        Cmd::Serve(a) => cmd_serve(&cli, a),
        #[cfg(feature = "serve")]
        Cmd::Ui(a) => cmd_ui(&cli, a, registry),
        Cmd::Exec(a) => cmd_exec(&cli, a, &registry),
        Cmd::Init(a) => cmd_init(&cli, a),
        Cmd::Completions { shell } => {
            let mut cmd = completion_command();
            clap_complete::generate(*shell, &mut cmd, "mlcycle", &mut std::io::stdout());
            Ok(0)
        }
    };
    let code = match res {
        Ok(code) => code,
        Err(f) => {
            eprintln!("{:?}", f.report);
            f.code
        }
    };
    if let Some(e) = crate::output::failure() {
        eprintln!("mlcycle: cannot write the output: {e}");
        if code == 0 {
            return ExitCode::from(EXIT_IO);
        }
    }
    ExitCode::from(code)
}

/// Standard output could not be written (`EX_IOERR`).
const EXIT_IO: u8 = 74;

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

/// The command line as completion scripts offer it: without hidden
/// subcommands (`exec`, which only Slurm jobs run), which the generators
/// would otherwise list.
fn completion_command() -> clap::Command {
    let full = <Cli as clap::CommandFactory>::command();
    let mut cmd = clap::Command::new("mlcycle").version(env!("CARGO_PKG_VERSION"));
    if let Some(about) = full.get_about() {
        cmd = cmd.about(about.clone());
    }
    for a in full.get_arguments() {
        cmd = cmd.arg(a.clone());
    }
    for s in full.get_subcommands().filter(|s| !s.is_hide_set()) {
        cmd = cmd.subcommand(s.clone());
    }
    cmd
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
    open_with(cli, t, registry, false, false)
}

/// [`open`], reading the lock file and the memo while the pipeline loads
/// when `read_ahead` (for `status`).
fn open_with(
    cli: &Cli,
    t: &TargetArgs,
    registry: &StageRegistry,
    read_ahead: bool,
    strict_sources: bool,
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
            read_ahead,
            strict_sources,
            parent: None,
        },
    )?;
    Ok((session, targets))
}

/// Resident memory in MiB, for debug logs.
fn rss_mb() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map(|pages| pages * 4096 / 1048576)
        .unwrap_or(0)
}
