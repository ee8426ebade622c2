//! The CLI's own errors (`mlcycle::cli::*` codes) and the exit code each
//! failure implies. Library errors (config, session, stages) come in
//! through `Fail`'s `From` with their own codes and spans.

use miette::{Diagnostic, Report};
use mlcycle_pipeline::config::PIPELINE_FILE;

pub(crate) const EXIT_STAGE_FAILED: u8 = 1;
pub(crate) const EXIT_USAGE: u8 = 2;
pub(crate) const EXIT_INTERRUPTED: u8 = 130;

/// A failure to report, with the exit code it implies.
pub(crate) struct Fail {
    pub(crate) report: Report,
    pub(crate) code: u8,
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
    #[error("{path} already exists")]
    #[diagnostic(
        code(mlcycle::cli::init_exists),
        help("this folder is a workspace already; `--force` overwrites the file")
    )]
    InitExists { path: String },
    #[error("-C {dir}: {what}")]
    #[diagnostic(
        code(mlcycle::cli::bad_dir),
        help("`-C` names the workspace folder (or a folder inside one)")
    )]
    BadDir { dir: String, what: &'static str },
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
