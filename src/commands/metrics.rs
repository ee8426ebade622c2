//! `metrics show` and `metrics diff`: the numbers in the workspace's
//! metrics outputs, and how they changed since a commit or against an
//! experiment.

use serde_json::{Map, Value};

use super::exp::{print_diff, push, DiffRow};
use super::*;
use crate::cli::{MetricsCmd, MetricsDiffArgs, MetricsShowArgs, TableFormat};
use mlcycle_pipeline::experiments::{self, metrics};
use mlcycle_pipeline::workspace::LockFile;

pub(super) fn cmd_metrics(
    cli: &Cli,
    cmd: &MetricsCmd,
    registry: &StageRegistry,
) -> Result<u8, Fail> {
    match cmd {
        MetricsCmd::Show(a) => metrics_show(cli, a, registry),
        MetricsCmd::Diff(a) => metrics_diff(cli, a, registry),
    }
}

pub(super) fn open_session(
    cli: &Cli,
    dir: Option<&Path>,
    registry: &StageRegistry,
) -> Result<Session, Fail> {
    let args: Vec<String> = dir
        .iter()
        .map(|d| d.to_string_lossy().into_owned())
        .collect();
    let Located { file, .. } = locate(cli.dir.as_deref(), &args)?;
    Ok(Session::open(
        &file,
        &SessionOptions {
            strict_sources: false,
            ..SessionOptions::new(registry)
        },
    )?)
}

fn warn(cli: &Cli, warnings: &[String]) {
    if !cli.quiet {
        for w in warnings {
            eprintln!("warning: {w}");
        }
    }
}

fn metrics_show(cli: &Cli, a: &MetricsShowArgs, registry: &StageRegistry) -> Result<u8, Fail> {
    let session = open_session(cli, a.workspace.dir.as_deref(), registry)?;
    let (m, warnings) = metrics::in_files(session.workspace(), session.pipeline());
    warn(cli, &warnings);
    print_metrics(&m, &a.format);
    Ok(0)
}

fn print_metrics(m: &Map<String, Value>, f: &TableFormat) {
    if f.json {
        outln!("{}", serde_json::to_string_pretty(m).expect("json"));
        return;
    }
    if f.csv || f.md {
        outln!(
            "{}",
            if f.md {
                "| Metric | Value |\n| --- | ---: |"
            } else {
                "Metric,Value"
            }
        );
        for (k, v) in m {
            if f.md {
                outln!("| {k} | {v} |");
            } else {
                outln!("{k},{v}");
            }
        }
        return;
    }
    if m.is_empty() {
        outln!("no metrics: mark an output `metrics: true`, or run the pipeline first");
        return;
    }
    let w = m
        .keys()
        .map(|k| k.chars().count())
        .max()
        .unwrap_or(0)
        .max(6);
    outln!("{:<w$}  Value", "Metric");
    for (k, v) in m {
        outln!("{k:<w$}  {v}");
    }
}

fn metrics_diff(cli: &Cli, a: &MetricsDiffArgs, registry: &StageRegistry) -> Result<u8, Fail> {
    let session = open_session(cli, None, registry)?;
    let ws = session.workspace();
    let (now, mut warnings) = metrics::in_files(ws, session.pipeline());
    let (label, base) = match &a.exp {
        Some(name) => {
            let store = experiments::open_for(&ws.state, name)?;
            let rec = experiments::find(&store, name)?;
            (rec.name, rec.metrics)
        }
        None => {
            let lock = committed_lock(&ws.root, &a.rev).map_err(|no| {
                CliError::Usage(format!(
                    "{}; commit the lock file, or compare with an experiment: `mlcycle metrics diff --exp NAME`",
                    no.about(&a.rev)
                ))
            })?;
            let (m, w) = metrics::in_lock(ws, session.pipeline(), &lock);
            warnings.extend(w.into_iter().map(|w| format!("{}: {w}", a.rev)));
            (a.rev.clone(), m)
        }
    };
    warn(cli, &warnings);
    let mut rows: Vec<DiffRow<'_>> = Vec::new();
    push(&mut rows, a.all, "metric", &base, &now);
    print_diff(&label, "workspace", &rows, &a.format, "the same metrics");
    Ok(0)
}

/// Why a git revision gives no lock file.
pub(super) enum NoLock {
    /// git found none (its message).
    Missing(String),
    /// The committed file does not parse.
    Unreadable(String),
}

impl NoLock {
    /// What is wrong with `rev`, as a sentence.
    pub(super) fn about(&self, rev: &str) -> String {
        match self {
            NoLock::Missing(why) => format!("no mlcycle.lock at `{rev}` in git ({why})"),
            NoLock::Unreadable(why) => format!("mlcycle.lock at `{rev}` cannot be read: {why}"),
        }
    }
}

/// `mlcycle.lock` as commit `rev` has it (`git show REV:./mlcycle.lock`).
pub(super) fn committed_lock(root: &Path, rev: &str) -> Result<LockFile, NoLock> {
    let out = std::process::Command::new("git")
        .arg("-C")
        .arg(root)
        .args([
            "show",
            &format!("{rev}:./{}", mlcycle_pipeline::workspace::LOCK_FILE),
        ])
        .output()
        .map_err(|e| NoLock::Missing(format!("git does not run: {e}")))?;
    if !out.status.success() {
        return Err(NoLock::Missing(
            String::from_utf8_lossy(&out.stderr).trim().to_string(),
        ));
    }
    serde_json::from_slice(&out.stdout).map_err(|e| NoLock::Unreadable(e.to_string()))
}
