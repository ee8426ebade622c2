//! `plots diff`: the series of the `plots: true` outputs, drawn for the
//! workspace and for experiments or git revisions, one chart per output
//! and column, gathered in one HTML page.

use std::fmt::Write as _;

use super::metrics::{committed_lock, open_session};
use super::*;
use crate::cli::{PlotsCmd, PlotsDiffArgs};
use mlcycle_pipeline::experiments::{plots, ExpStore};
use mlcycle_pipeline::workspace::LockFile;

pub(super) fn cmd_plots(cli: &Cli, cmd: &PlotsCmd, registry: &StageRegistry) -> Result<u8, Fail> {
    match cmd {
        PlotsCmd::Diff(a) => plots_diff(cli, a, registry),
    }
}

fn plots_diff(cli: &Cli, a: &PlotsDiffArgs, registry: &StageRegistry) -> Result<u8, Fail> {
    let session = open_session(cli, None, registry)?;
    let ws = session.workspace();
    let p = session.pipeline();
    if !p.stages.iter().any(|s| s.outputs.iter().any(|o| o.plots)) {
        return Err(CliError::Usage(
            "no output is marked `plots: true`; mark a CSV or JSON series in `outs:`, e.g. `- out/loss.csv: {plots: true}`".into(),
        )
        .into());
    }
    let store = ExpStore::open_existing(&ws.state)?;
    let targets = if a.targets.is_empty() {
        vec!["HEAD".to_string()]
    } else {
        a.targets.clone()
    };
    // (label, its series), the workspace last.
    let mut sources: Vec<(String, Vec<plots::Series>)> = Vec::new();
    let mut warnings = Vec::new();
    for t in &targets {
        let exp = match &store {
            Some(s) => s.get(t)?,
            None => None,
        };
        let lock: LockFile = match exp {
            Some(rec) => {
                let text = store
                    .as_ref()
                    .map(|s| s.lock_of(&rec.name))
                    .transpose()?
                    .flatten()
                    .unwrap_or_default();
                serde_json::from_str(&text).map_err(|_| {
                    CliError::Usage(format!(
                        "experiment `{t}` has no recorded outputs (it did not finish)"
                    ))
                })?
            }
            None => committed_lock(&ws.root, t).map_err(|no| {
                CliError::Usage(format!(
                    "`{t}` is no experiment, and {}; name an experiment (`mlcycle exp show` lists them) or a commit whose mlcycle.lock is committed",
                    no.about(t)
                ))
            })?,
        };
        let (series, w) = plots::in_lock(ws, p, &lock);
        warnings.extend(w.into_iter().map(|w| format!("{t}: {w}")));
        sources.push((t.clone(), series));
    }
    let (now, w) = plots::in_files(ws, p);
    warnings.extend(w.into_iter().map(|w| format!("workspace: {w}")));
    sources.push(("workspace".into(), now));
    if !cli.quiet {
        for w in &warnings {
            eprintln!("warning: {w}");
        }
    }
    // Every (output, column) any source has, in order.
    let mut charts: Vec<(String, String)> = Vec::new();
    for (_, series) in &sources {
        for s in series {
            let x = x_column(s, a.x.as_deref());
            for (name, _) in &s.columns {
                let key = (s.path.clone(), name.clone());
                if Some(name.as_str()) != x.as_deref() && !charts.contains(&key) {
                    charts.push(key);
                }
            }
        }
    }
    let mut html = String::from(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>mlcycle plots diff</title>\n<style>body{font-family:sans-serif;margin:2em}img{max-width:100%}</style></head><body>\n",
    );
    let _ = writeln!(
        html,
        "<h1>Plots: {}</h1>",
        escape(
            &sources
                .iter()
                .map(|s| s.0.as_str())
                .collect::<Vec<_>>()
                .join(" vs ")
        )
    );
    for (path, col) in &charts {
        let mut lines: Vec<(String, Vec<(f64, f64)>)> = Vec::new();
        let mut xlabel = "row".to_string();
        for (label, series) in &sources {
            let Some(s) = series.iter().find(|s| &s.path == path) else {
                continue;
            };
            let Some((_, ys)) = s.columns.iter().find(|(n, _)| n == col) else {
                continue;
            };
            let x = x_column(s, a.x.as_deref());
            let xs: Option<&Vec<f64>> = x
                .as_ref()
                .and_then(|x| s.columns.iter().find(|(n, _)| n == x).map(|c| &c.1));
            if let Some(x) = &x {
                xlabel = x.clone();
            }
            let points = ys
                .iter()
                .enumerate()
                .map(|(i, y)| (xs.map_or(i as f64, |xs| xs[i]), *y))
                .filter(|(x, y)| x.is_finite() && y.is_finite())
                .collect();
            lines.push((label.clone(), points));
        }
        let file = format!(
            "{}-{}",
            path.replace(['/', '\\', '.'], "_"),
            col.replace(['/', '\\'], "_")
        );
        write_chart(
            &a.out,
            &file,
            &format!("{path}: {col}"),
            (&xlabel, col),
            &lines,
        )?;
        let _ = writeln!(
            html,
            "<h2>{} — {}</h2>\n<img src=\"{}.svg\" alt=\"{} of {} for {}\">",
            escape(path),
            escape(col),
            escape(&file),
            escape(col),
            escape(path),
            escape(
                &lines
                    .iter()
                    .map(|l| l.0.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        );
    }
    html.push_str("</body></html>\n");
    let index = a.out.join("index.html");
    std::fs::create_dir_all(&a.out)
        .and_then(|()| std::fs::write(&index, html))
        .map_err(|e| CliError::Io(format!("cannot write {}: {e}", index.display())))?;
    if !cli.quiet {
        eprintln!("wrote {} ({} chart(s))", index.display(), charts.len());
    }
    Ok(0)
}

/// Writes `<out>/<file>.svg` and `.png`: a line per named series.
pub(super) fn write_chart(
    out: &Path,
    file: &str,
    title: &str,
    labels: (&str, &str),
    lines: &[(String, Vec<(f64, f64)>)],
) -> Result<(), Fail> {
    let refs: Vec<(&str, Vec<(f64, f64)>)> =
        lines.iter().map(|(l, p)| (l.as_str(), p.clone())).collect();
    mlcycle_stages::plot::curve(out, file, title, labels, &refs).map_err(|e| {
        CliError::Io(format!(
            "cannot write the chart into {}: {e}",
            out.display()
        ))
        .into()
    })
}

/// The x column of `s`: the one asked for, else `step`, else `epoch`.
fn x_column(s: &plots::Series, asked: Option<&str>) -> Option<String> {
    let has = |n: &str| s.columns.iter().any(|(c, _)| c == n);
    match asked {
        Some(x) => has(x).then(|| x.to_string()),
        None => ["step", "epoch"]
            .into_iter()
            .find(|n| has(n))
            .map(str::to_string),
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
