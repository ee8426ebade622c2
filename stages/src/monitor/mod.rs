//! Monitoring stages: how far the rows a model sees have moved from the
//! rows it was trained on.

pub mod profile;
pub mod stats;

use std::fmt::Write as _;

use mlcycle_pipeline::{
    ParamDoc, ParamError, PortSpec, RunContext, StageError, StageKind, StageSpec,
};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map};

use crate::table::Table;
pub use profile::{ColumnDrift, ColumnProfile, Profile};

/// PSI above which a column counts as shifted (the usual rule of thumb:
/// below 0.1 stable, 0.1–0.25 worth a look, above 0.25 shifted).
pub const SHIFTED: f64 = 0.25;

/// `monitor.drift`.
#[derive(Debug)]
pub struct Drift;

/// `monitor.drift`'s params (`with:`).
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DriftParams {
    /// Quantile bins per numeric column.
    #[serde(default = "default_bins")]
    bins: usize,
    /// Fail the stage when a column's PSI is above this (unset: never).
    #[serde(default)]
    fail_above: Option<f64>,
    /// Compare only these columns (unset: every column both tables have,
    /// the target left out).
    #[serde(default)]
    columns: Option<Vec<String>>,
    /// Fewer current rows than this are too few to judge: the figures are
    /// reported but `fail_above` does not fire.
    #[serde(default = "default_min_rows")]
    min_rows: usize,
}

fn default_min_rows() -> usize {
    30
}

fn default_bins() -> usize {
    10
}

const DRIFT_IN: &[PortSpec] = &[
    PortSpec::input(
        "reference",
        crate::ports::TABLE,
        true,
        "the rows the model was trained on (its training split)",
    ),
    PortSpec::input(
        "current",
        crate::ports::TABLE,
        true,
        "the rows to compare: `dataset.served` for what `mlcycle serve` scored, or any table",
    ),
];

const DRIFT_OUT: &[PortSpec] = &[
    PortSpec::output(
        "metrics",
        "drift.json",
        crate::ports::METRICS,
        "`max_psi`, the `shifted` columns and, per column, `psi`, `ks_statistic` and `ks_pvalue` (numeric), rows and missing values",
    ),
    PortSpec::output(
        "report",
        "drift.md",
        crate::ports::REPORT,
        "the columns by PSI, with the KS test, as a Markdown table",
    ),
    PortSpec::output(
        "plots",
        "plots",
        crate::ports::PLOT,
        "`psi` (bars per column) and `shares_COLUMN` (the change in each bin's share) for the three most shifted columns (SVG and PNG)",
    ),
];

impl StageKind for Drift {
    type Params = DriftParams;
    const SPEC: StageSpec = StageSpec {
        kind: "monitor.drift",
        summary: "Drift between the training rows and served (or any) rows: population stability index and two-sample Kolmogorov–Smirnov test per column; can fail above a threshold",
        version: 1,
        inputs: DRIFT_IN,
        outputs: DRIFT_OUT,
        params: &[
            ParamDoc::new("bins", "integer", "quantile bins per numeric column (the reference's deciles by default)"),
            ParamDoc::new("fail_above", "number", "fail the stage, so its dependents do not run, when a column's PSI is above this (0.25 is a common line)").unset("never fail"),
            ParamDoc::new("columns", "list of strings", "compare only these columns").unset("every column both tables have, the target left out"),
            ParamDoc::new("min_rows", "integer", "fewer current rows than this are too few to judge: reported, but `fail_above` does not fire"),
        ],
    };
    fn check(p: &mut DriftParams) -> Result<(), ParamError> {
        if p.bins < 2 || p.bins > 100 {
            return Err(ParamError::new(&["bins"], "must be between 2 and 100"));
        }
        if p.fail_above.is_some_and(|f| !f.is_finite() || f < 0.0) {
            return Err(ParamError::new(
                &["fail_above"],
                "must be a PSI: a number ≥ 0 (0.1 a small shift, 0.25 a large one)",
            ));
        }
        if let Some(c) = &mut p.columns {
            if c.is_empty() {
                return Err(ParamError::new(
                    &["columns"],
                    "is empty; leave it out to compare every column",
                ));
            }
            let mut seen = std::collections::HashSet::new();
            c.retain(|n| seen.insert(n.clone()));
        }
        Ok(())
    }
    fn run(p: &DriftParams, ctx: &RunContext<'_>) -> Result<(), StageError> {
        let reference = Table::read(ctx.input("reference")?).map_err(StageError::from_error)?;
        let current = Table::read(ctx.input("current")?).map_err(StageError::from_error)?;
        if reference.n_rows() == 0 {
            return Err(StageError::new("the `reference` table has no rows"));
        }
        if current.n_rows() == 0 {
            // No served traffic yet: nothing has drifted.
            let metrics = json!({
                "reference_rows": reference.n_rows(),
                "current_rows": 0,
                "bins": p.bins,
                "max_psi": null,
                "shifted": [],
                "columns": {},
            });
            let mut s = serde_json::to_string_pretty(&metrics).expect("metrics serialize");
            s.push('\n');
            std::fs::write(ctx.output("metrics")?, s).map_err(StageError::from_error)?;
            std::fs::write(
                ctx.output("report")?,
                "# Drift\n\nNo current rows yet: nothing to compare.\n",
            )
            .map_err(StageError::from_error)?;
            std::fs::create_dir_all(ctx.output("plots")?).map_err(StageError::from_error)?;
            (ctx.log)("no current rows yet: nothing to compare");
            return Ok(());
        }
        if reference.transforms != current.transforms {
            return Err(StageError::new(
                "the two tables were preprocessed differently, so their values are not comparable",
            )
            .with_help(
                "compare raw rows with raw rows: served rows are raw, so the reference is the data set's rows before any fitted step (the dataset stage's output, or a split of it)",
            ));
        }
        let profile = Profile::of(&reference, p.bins);
        let names: Vec<String> = match &p.columns {
            Some(c) => {
                for name in c {
                    if reference.target.as_deref() == Some(name.as_str()) {
                        return Err(StageError::new(format!(
                            "`columns` names `{name}`, the target: drift compares the features a model is given"
                        )));
                    }
                    if !profile.columns.contains_key(name) || current.column(name).is_none() {
                        let known: Vec<&String> = profile
                            .columns
                            .keys()
                            .filter(|k| current.column(k).is_some())
                            .collect();
                        let hint = mlcycle_pipeline::suggest::did_you_mean(name, known);
                        return Err(StageError::new(format!(
                            "`columns` names `{name}`, which is not a column of both tables{}",
                            if hint.is_empty() {
                                String::new()
                            } else {
                                format!("; {hint}")
                            }
                        )));
                    }
                }
                c.clone()
            }
            None => profile
                .columns
                .keys()
                .filter(|k| current.column(k).is_some())
                .cloned()
                .collect(),
        };
        if names.is_empty() {
            return Err(StageError::new(format!(
                "the tables share no column to compare (reference: {}; current: {})",
                reference.names().join(", "),
                current.names().join(", ")
            )));
        }
        let not_served: Vec<&String> = profile
            .columns
            .keys()
            .filter(|k| current.column(k).is_none())
            .collect();
        let mut found: Vec<(String, ColumnDrift)> = names
            .iter()
            .map(|n| {
                let col = &current.column(n).expect("checked").data;
                (n.clone(), profile.drift(n, col).expect("checked"))
            })
            .collect();
        found.sort_by(|a, b| b.1.psi.total_cmp(&a.1.psi).then_with(|| a.0.cmp(&b.0)));
        let max_psi = found.first().map(|f| f.1.psi).unwrap_or(0.0);
        let shifted: Vec<&str> = found
            .iter()
            .filter(|f| f.1.psi > SHIFTED)
            .map(|f| f.0.as_str())
            .collect();

        let mut columns = Map::new();
        for (name, d) in &found {
            columns.insert(
                name.clone(),
                serde_json::to_value(d).expect("drift serializes"),
            );
        }
        let too_few = current.n_rows() < p.min_rows;
        let metrics = json!({
            "reference_rows": reference.n_rows(),
            "current_rows": current.n_rows(),
            "too_few_rows": too_few,
            "bins": p.bins,
            // Infinite (text where numbers were) is written as a large
            // number: JSON has no infinity, and null means "no rows".
            "max_psi": finite(max_psi).or(Some(1e9)),
            "shifted": shifted,
            "columns": columns,
        });
        let mut s = serde_json::to_string_pretty(&metrics).expect("metrics serialize");
        s.push('\n');
        std::fs::write(ctx.output("metrics")?, s).map_err(StageError::from_error)?;

        let mut md = format!(
            "# Drift\n\n{} reference rows, {} current rows. PSI below 0.1: stable; 0.1–0.25: a shift worth a look; above 0.25: shifted.\n\n\
             | column | type | PSI | KS statistic | KS p-value | rows | missing |\n|---|---|---|---|---|---|---|\n",
            reference.n_rows(),
            current.n_rows()
        );
        for (name, d) in &found {
            let opt = |v: Option<f64>| v.map(|x| format!("{x:.4}")).unwrap_or_else(|| "–".into());
            let _ = writeln!(
                md,
                "| {name} | {} | {:.4} | {} | {} | {} | {} |",
                d.ty,
                d.psi,
                opt(d.ks_statistic),
                opt(d.ks_pvalue),
                d.rows,
                d.missing
            );
        }
        if !not_served.is_empty() {
            let _ = writeln!(
                md,
                "\nNot in the current rows: {}.",
                not_served
                    .iter()
                    .map(|s| format!("`{s}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        std::fs::write(ctx.output("report")?, md).map_err(StageError::from_error)?;

        let dir = ctx.output("plots")?;
        std::fs::create_dir_all(dir).map_err(StageError::from_error)?;
        let bars: Vec<(String, f64, f64)> = found
            .iter()
            .map(|(n, d)| (n.clone(), finite(d.psi).unwrap_or(10.0), 0.0))
            .collect();
        crate::plot::bars(dir, "psi", "Population stability index", "PSI", &bars)
            .map_err(|e| StageError::new(format!("cannot draw the PSI plot: {e}")))?;
        for (name, d) in found.iter().take(3).filter(|(_, d)| !d.bins.is_empty()) {
            let change: Vec<(String, f64, f64)> = d
                .bins
                .iter()
                .map(|(b, r, c)| (b.clone(), c - r, 0.0))
                .collect();
            crate::plot::bars(
                dir,
                &format!("shares_{}", crate::plot::file_safe(name)),
                &format!("{name}: current share − reference share per bin"),
                "change in share",
                &change,
            )
            .map_err(|e| StageError::new(format!("cannot draw the plot of `{name}`: {e}")))?;
        }

        let top: Vec<String> = found
            .iter()
            .take(3)
            .map(|(n, d)| format!("{n} {:.3}", d.psi))
            .collect();
        (ctx.log)(&format!(
            "{} column(s), {} current rows: max PSI {:.3} ({}){}",
            found.len(),
            current.n_rows(),
            max_psi,
            top.join(", "),
            if shifted.is_empty() {
                String::new()
            } else {
                format!("; shifted: {}", shifted.join(", "))
            }
        ));
        if too_few {
            (ctx.log)(&format!(
                "{} current rows are fewer than `min_rows: {}`: too few to judge, `fail_above` does not apply",
                current.n_rows(),
                p.min_rows
            ));
        }
        if let (Some(limit), false) = (p.fail_above, too_few) {
            // The outputs of a failed stage are not kept: the figures go
            // in the error itself.
            let over: Vec<String> = found
                .iter()
                .filter(|(_, d)| d.psi > limit)
                .map(|(n, d)| {
                    let ks = d
                        .ks_statistic
                        .zip(d.ks_pvalue)
                        .map(|(k, pv)| format!(", KS {k:.3} (p {pv:.2e})"))
                        .unwrap_or_default();
                    format!("`{n}` PSI {:.3}{ks}", d.psi)
                })
                .collect();
            if !over.is_empty() {
                return Err(StageError::new(format!(
                    "drift above `fail_above: {limit}` over {} current rows: {}",
                    current.n_rows(),
                    over.join("; ")
                ))
                .with_help(
                    "the current rows no longer look like the reference rows; raise `fail_above` \
                     (or leave it out, to get the full report) to let the pipeline go on",
                ));
            }
        }
        Ok(())
    }
}

/// JSON has no infinity: an infinite PSI (text where numbers were) is null.
fn finite(x: f64) -> Option<f64> {
    x.is_finite().then_some(x)
}
