//! `runs`: the run history, and following a detached Slurm run.

use super::*;
use mlcycle_pipeline::history::{RunRow, StageRow};

pub(super) fn cmd_runs(cli: &Cli, a: &RunsArgs) -> Result<u8, Fail> {
    let dir = locate_root(cli.dir.as_deref(), a.workspace.dir.as_deref())?;
    let ws = Workspace::new(dir.canonicalize().unwrap_or(dir));
    let db = History::open(&ws)?;
    if !db.exists() {
        if let Some(RunsCmd::Show { id, .. }) = &a.show {
            return Err(CliError::NoRun { id: *id }.into());
        }
        if a.json {
            outln!("[]");
        } else {
            outln!("no runs recorded yet");
        }
        return Ok(0);
    }
    let Some(RunsCmd::Show { id, logs, wait }) = &a.show else {
        return list_runs(&db, a.limit, a.json);
    };
    let Some((run, stages)) = db.run(*id)? else {
        return Err(CliError::NoRun { id: *id }.into());
    };
    if logs.is_none() && detached::is_detached(&ws, *id) {
        drop(db);
        return follow_detached(&ws, *id, *wait, a.json);
    }
    if let Some(stage) = logs {
        return print_logs(&ws, *id, stage, &stages);
    }
    if a.json {
        let v = serde_json::json!({"run": run, "stages": stages});
        outln!("{}", serde_json::to_string_pretty(&v).expect("json"));
        return Ok(0);
    }
    print_run(&ws, &run, &stages);
    Ok(0)
}

/// The newest `limit` runs as a table (or JSON).
fn list_runs(db: &History, limit: usize, json: bool) -> Result<u8, Fail> {
    let runs = db.runs(limit)?;
    if json {
        outln!("{}", serde_json::to_string_pretty(&runs).expect("json"));
        return Ok(0);
    }
    outln!(
        "{:>4}  {:<20}  {:<11}  {:>8}  {:>4} {:>5} {:>8} {:>6} {:>7}",
        "ID",
        "STARTED",
        "STATUS",
        "TIME",
        "RAN",
        "FRESH",
        "RESTORED",
        "FAILED",
        "SKIPPED"
    );
    for r in runs {
        let t = r
            .duration_ms
            .map(|d| fmt_duration(Duration::from_millis(d as u64)))
            .unwrap_or_else(|| "-".into());
        outln!(
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
    Ok(0)
}

/// `runs show ID --logs STAGE`: the stage's output log, and its Slurm job
/// log when it ran as a job.
fn print_logs(ws: &Workspace, id: i64, stage: &str, stages: &[StageRow]) -> Result<u8, Fail> {
    let dir = ws.runs_dir().join(id.to_string());
    let mut found = false;
    for (file, title) in [
        (format!("{stage}.log"), "output"),
        (format!("{stage}.slurm.log"), "Slurm job log"),
    ] {
        let path = dir.join(&file);
        if let Ok(text) = std::fs::read_to_string(&path) {
            found = true;
            outln!("== {stage}: {title} ({})", path.display());
            out!("{text}");
            if !text.ends_with('\n') && !text.is_empty() {
                outln!();
            }
        }
    }
    if found {
        return Ok(0);
    }
    let known: Vec<&str> = stages.iter().map(|s| s.stage.as_str()).collect();
    Err(CliError::Usage(format!(
        "run {id} kept no log for stage `{stage}`{}",
        if let Some(row) = stages.iter().find(|s| s.stage == stage) {
            match (row.outcome.as_str(), row.detail.as_deref()) {
                ("failed", Some(d)) if d == mlcycle_pipeline::history::DIED_IN_STAGE => {
                    " (the mlcycle process died while it ran, before it printed anything)"
                        .to_string()
                }
                ("failed", _) => " (it failed before it printed anything)".to_string(),
                ("skipped", _) => " (it was skipped: it never started)".to_string(),
                _ => " (it was fresh or restored, or printed nothing)".to_string(),
            }
        } else {
            format!("; the run's stages: {}", known.join(", "))
        }
    ))
    .into())
}

/// One run: its command, and every stage's outcome, time and reasons.
fn print_run(ws: &Workspace, run: &RunRow, stages: &[StageRow]) {
    outln!("run {}  {}  {}", run.id, run.status, run.started_at);
    outln!("command: mlcycle {}", run.command);
    if let Some(e) = &run.error {
        outln!("error: {e}");
    }
    let w = stages
        .iter()
        .map(|s| s.stage.chars().count())
        .max()
        .unwrap_or(5)
        .max(5);
    outln!("{:<w$}  {:<8}  {:>9}  REASON", "STAGE", "OUTCOME", "TIME");
    for s in stages {
        let why = match &s.detail {
            Some(d) => d.clone(),
            None => s.reasons.join("; "),
        };
        // How long a stage the process died in ran is not known.
        let time = if s.detail.as_deref() == Some(mlcycle_pipeline::history::DIED_IN_STAGE) {
            "?".to_string()
        } else {
            fmt_duration(Duration::from_millis(s.duration_ms as u64))
        };
        outln!("{:<w$}  {:<8}  {:>9}  {}", s.stage, s.outcome, time, why);
    }
    let logs = ws.runs_dir().join(run.id.to_string());
    if logs.is_dir() {
        outln!(
            "stage logs: {}",
            logs.strip_prefix(&ws.root).unwrap_or(&logs).display()
        );
    }
}

/// How many jobs are in each state, in the order first seen:
/// `2 pending, 1 running, 3 ran`.
fn tally(rows: &[detached::JobRow]) -> String {
    let mut counts: Vec<(&str, usize)> = Vec::new();
    for r in rows {
        match counts.iter_mut().find(|(s, _)| *s == r.state) {
            Some((_, n)) => *n += 1,
            None => counts.push((&r.state, 1)),
        }
    }
    counts
        .iter()
        .map(|(s, n)| format!("{n} {s}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Shows a detached Slurm run's jobs; once all are over, the library
/// records the result in `mlcycle.lock` and the run history.
pub(super) fn follow_detached(ws: &Workspace, id: i64, wait: bool, json: bool) -> Result<u8, Fail> {
    // While waiting, a line on the terminal each time the jobs' states
    // change (`2 pending, 1 running, 3 done`), so a job held pending
    // does not look like a hang.
    let tell = wait && !json && std::io::stderr().is_terminal();
    let pr = detached::follow(
        ws,
        id,
        wait,
        |holder| {
            eprintln!("Waiting for another mlcycle process to finish with this workspace{holder}…");
        },
        |rows| {
            if tell {
                eprintln!("run {id}: {}", tally(rows));
            }
        },
    )?;
    if json {
        outln!(
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
        outln!("{:<w$}  {:>8}  {:<10}  DETAIL", "STAGE", "JOB", "STATE");
        for r in &pr.jobs {
            outln!(
                "{:<w$}  {:>8}  {:<10}  {}",
                r.stage,
                r.job,
                r.state,
                r.detail
            );
        }
        if pr.active {
            outln!("run {id} is still going; `--wait` follows it to the end");
        } else if pr.recorded {
            outln!("run {id} is over; its result is recorded in mlcycle.lock");
            if !pr.superseded.is_empty() {
                outln!(
                    "kept the newer record a later run wrote for {}",
                    pr.superseded
                        .iter()
                        .map(|s| format!("`{s}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            }
        }
    }
    Ok(if pr.active || !pr.failed {
        0
    } else {
        EXIT_STAGE_FAILED
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tally_counts_states_in_the_order_first_seen() {
        let row = |state: &str| detached::JobRow {
            stage: "s".into(),
            job: "1".into(),
            state: state.into(),
            detail: String::new(),
        };
        let rows = [row("pending"), row("running"), row("pending"), row("ran")];
        assert_eq!(tally(&rows), "2 pending, 1 running, 1 ran");
    }
}
