//! `evaluate.importance`: which input columns a model relies on, by
//! permutation importance, and how its prediction moves with the most
//! important ones, by partial dependence.
//!
//! Permutation importance is Breiman's (2001, "Random Forests", §10) in the
//! model-agnostic form of scikit-learn's `permutation_importance`: the drop
//! of a score when one column's values are shuffled across the held-out
//! rows, repeated with seeded shuffles; the mean and the population std
//! (`ddof = 0`) of the drops. Partial dependence is Friedman's (2001,
//! "Greedy function approximation", §8.2) by brute force, as scikit-learn's
//! `partial_dependence(method="brute")`: the mean prediction over all rows
//! with the column set to each value of a grid of its percentiles (5th to
//! 95th).

use std::fmt::Write as _;

use mlcycle_pipeline::{
    InferContext, Inferred, ParamDoc, ParamError, PortSpec, RunContext, StageError, StageKind,
    StageSpec,
};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::{evaluate, load, plot_err, score, EVAL_IN};
use crate::model::{Model, Predictions, Task};
use crate::table::{short, ColumnData, Table};

/// `evaluate.importance`.
#[derive(Debug)]
pub struct Importance;

/// `evaluate.importance`'s params (`with:`).
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportanceParams {
    /// The score whose drop is measured; unset: `r2` or `accuracy`.
    #[serde(default)]
    scoring: Option<String>,
    /// Shuffles per column.
    #[serde(default = "default_repeats")]
    n_repeats: usize,
    #[serde(default = "default_seed")]
    seed: u64,
    /// Partial-dependence plots for this many of the most important
    /// numeric columns.
    #[serde(default = "default_top")]
    top: usize,
    /// Points of each partial-dependence grid.
    #[serde(default = "default_grid")]
    grid: usize,
}

fn default_repeats() -> usize {
    5
}
fn default_seed() -> u64 {
    42
}
fn default_top() -> usize {
    3
}
fn default_grid() -> usize {
    20
}

const IMPORTANCE_OUT: &[PortSpec] = &[
    PortSpec::output(
        "metrics",
        "importance.json",
        crate::ports::METRICS,
        "`scoring`, the `baseline` score and, per input column, the `mean` and `std` of the score's drop",
    ),
    PortSpec::output(
        "report",
        "importance.md",
        crate::ports::REPORT,
        "the columns ranked by importance, as a Markdown table",
    ),
    PortSpec::output(
        "plots",
        "plots",
        crate::ports::PLOT,
        "`importance` (bars with ± std) and `partial_dependence_COLUMN` for the top numeric columns (SVG and PNG)",
    ),
];

impl StageKind for Importance {
    type Params = ImportanceParams;
    const SPEC: StageSpec = StageSpec {
        kind: "evaluate.importance",
        summary: "Which input columns a model relies on (permutation importance on held-out rows) and how its prediction moves with them (partial dependence)",
        version: 1,
        inputs: EVAL_IN,
        outputs: IMPORTANCE_OUT,
        params: &[
            ParamDoc::new("scoring", "string", "the metric whose drop measures importance (`r2`, `rmse`, `mae`, `accuracy`, `f1_macro`, …; an error's rise counts as a drop)").unset("r2 or accuracy"),
            ParamDoc::new("n_repeats", "integer", "seeded shuffles of each column (the spread of their drops is the std)"),
            ParamDoc::new("seed", "integer", "seed of the shuffles"),
            ParamDoc::new("top", "integer", "partial-dependence plots for this many of the most important numeric columns (0: none)"),
            ParamDoc::new("grid", "integer", "points of each partial-dependence curve, from the column's 5th to 95th percentile"),
        ],
    };
    fn check(p: &mut ImportanceParams) -> Result<(), ParamError> {
        if p.n_repeats == 0 || p.n_repeats > 1000 {
            return Err(ParamError::new(
                &["n_repeats"],
                "must be between 1 and 1000",
            ));
        }
        if p.grid < 2 || p.grid > 1000 {
            return Err(ParamError::new(&["grid"], "must be between 2 and 1000"));
        }
        Ok(())
    }
    fn infer(_: &ImportanceParams, cx: &InferContext<'_>) -> Inferred {
        crate::shape::scored_rows(cx, "test")
    }
    fn run(p: &ImportanceParams, ctx: &RunContext<'_>) -> Result<(), StageError> {
        let (m, test) = load(ctx)?;
        let scoring = p.scoring.clone().unwrap_or_else(|| {
            if m.task == Task::Regression {
                "r2".into()
            } else {
                "accuracy".into()
            }
        });
        let lower = super::lower_is_better(&scoring);
        let value = |metrics: &Map<String, Value>| -> Result<f64, StageError> {
            metrics
                .get(&scoring)
                .and_then(Value::as_f64)
                .ok_or_else(|| {
                    let known: Vec<&str> = metrics
                        .iter()
                        .filter(|(_, v)| v.is_f64())
                        .map(|(k, _)| k.as_str())
                        .collect();
                    StageError::new(format!(
                        "`scoring: {scoring}` is not a metric of this model{}",
                        super::why_absent(metrics, &scoring)
                    ))
                    .with_help(format!("the metrics are: {}", known.join(", ")))
                })
        };
        let baseline = value(&evaluate(&m, &test)?)?;
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(p.seed);
        let columns: Vec<String> = m.inputs.iter().map(|c| c.name.clone()).collect();
        let mut found: Vec<(String, f64, f64)> = Vec::with_capacity(columns.len());
        for (i, name) in columns.iter().enumerate() {
            (ctx.log)(&format!("column {}/{}: {name}", i + 1, columns.len()));
            let mut drops = Vec::with_capacity(p.n_repeats);
            for _ in 0..p.n_repeats {
                ctx.check_interrupted()?;
                let mut t = test.clone();
                permute(&mut t, name, &mut rng)?;
                let s = value(&evaluate(&m, &t)?)?;
                drops.push(if lower { s - baseline } else { baseline - s });
            }
            let n = drops.len() as f64;
            let mean = drops.iter().sum::<f64>() / n;
            let std = (drops.iter().map(|d| (d - mean).powi(2)).sum::<f64>() / n).sqrt();
            found.push((name.clone(), mean, std));
        }
        found.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));

        let mut per_column = Map::new();
        for (name, mean, std) in &found {
            per_column.insert(name.clone(), json!({"mean": mean, "std": std}));
        }
        let metrics = json!({
            "scoring": scoring,
            "baseline": baseline,
            "n_repeats": p.n_repeats,
            "rows": test.n_rows(),
            "importance": per_column,
        });
        let mut s = serde_json::to_string_pretty(&metrics).expect("metrics serialize");
        s.push('\n');
        std::fs::write(ctx.output("metrics")?, s).map_err(StageError::from_error)?;

        let mut md = format!(
            "# Permutation importance\n\n`{}` on {} held-out rows: {} (baseline), {} shuffles per column{}.\n\n| column | drop of {scoring} | std |\n|---|---:|---:|\n",
            m.kind,
            test.n_rows(),
            short(baseline),
            p.n_repeats,
            if lower { "; a rise of an error counts as a drop" } else { "" }
        );
        for (name, mean, std) in &found {
            let _ = writeln!(
                md,
                "| `{}` | {} | {} |",
                name.replace('|', "\\|"),
                short(*mean),
                short(*std)
            );
        }
        std::fs::write(ctx.output("report")?, md).map_err(StageError::from_error)?;

        let dir = ctx.output("plots")?;
        crate::plot::bars(
            dir,
            "importance",
            &format!("Permutation importance ({scoring})"),
            &format!("drop of {scoring} when the column is shuffled"),
            &found,
        )
        .map_err(plot_err)?;
        let numeric_top: Vec<&str> = found
            .iter()
            .map(|f| f.0.as_str())
            .filter(|c| {
                matches!(
                    test.column(c).map(|c| &c.data),
                    Some(ColumnData::Numeric(_))
                )
            })
            .take(p.top)
            .collect();
        for name in numeric_top {
            partial_dependence(&m, &test, name, p.grid, dir)?;
        }
        (ctx.log)(&format!(
            "most important: {}",
            found
                .iter()
                .take(3)
                .map(|(n, v, _)| format!("{n} ({})", short(*v)))
                .collect::<Vec<_>>()
                .join(", ")
        ));
        Ok(())
    }
}

/// Shuffles the values of column `name` across the rows of `t`.
fn permute(t: &mut Table, name: &str, rng: &mut Xoshiro256PlusPlus) -> Result<(), StageError> {
    let col = t
        .columns
        .iter_mut()
        .find(|c| c.name == name)
        .ok_or_else(|| StageError::new(format!("the `test` table has no column `{name}`")))?;
    match &mut col.data {
        ColumnData::Numeric(v) => v.shuffle(rng),
        ColumnData::Categorical(v) => v.shuffle(rng),
    }
    Ok(())
}

/// Draws the mean prediction with column `name` set to each point of a
/// grid of its percentiles: for a regression the predicted value, for a
/// classifier each class's mean probability.
fn partial_dependence(
    m: &Model,
    test: &Table,
    name: &str,
    grid: usize,
    dir: &std::path::Path,
) -> Result<(), StageError> {
    let Some(ColumnData::Numeric(values)) = test.column(name).map(|c| &c.data) else {
        return Ok(());
    };
    let mut sorted: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    if sorted.is_empty() {
        return Ok(());
    }
    sorted.sort_by(f64::total_cmp);
    let pct = |q: f64| sorted[((sorted.len() - 1) as f64 * q).round() as usize];
    let (lo, hi) = (pct(0.05), pct(0.95));
    let points: Vec<f64> = if hi > lo {
        (0..grid)
            .map(|i| lo + (hi - lo) * i as f64 / (grid - 1) as f64)
            .collect()
    } else {
        vec![lo]
    };
    let n_classes = m.classes.len();
    let mut series: Vec<Vec<(f64, f64)>> = vec![Vec::new(); n_classes.max(1)];
    for &x in &points {
        let mut t = test.clone();
        if let Some(c) = t.columns.iter_mut().find(|c| c.name == name) {
            c.data = ColumnData::Numeric(vec![x; values.len()]);
        }
        match score(m, &t, "test")? {
            Predictions::Values(p) => {
                series[0].push((x, p.iter().sum::<f64>() / p.len().max(1) as f64));
            }
            Predictions::Classes {
                proba: Some(proba), ..
            } => {
                for (k, s) in series.iter_mut().enumerate() {
                    let mean = proba
                        .iter()
                        .map(|r| r.get(k).copied().unwrap_or(0.0))
                        .sum::<f64>()
                        / proba.len().max(1) as f64;
                    s.push((x, mean));
                }
            }
            Predictions::Classes { ids, proba: None } => {
                for (k, s) in series.iter_mut().enumerate() {
                    let share =
                        ids.iter().filter(|&&i| i == k).count() as f64 / ids.len().max(1) as f64;
                    s.push((x, share));
                }
            }
        }
    }
    let labels: Vec<String> = if n_classes == 0 {
        vec!["mean prediction".into()]
    } else {
        m.classes.clone()
    };
    let named: Vec<(&str, Vec<(f64, f64)>)> =
        labels.iter().map(String::as_str).zip(series).collect();
    let file = crate::plot::file_safe(name);
    crate::plot::curve(
        dir,
        &format!("partial_dependence_{file}"),
        &format!("Partial dependence on {name}"),
        (
            name,
            if n_classes == 0 {
                "mean prediction"
            } else {
                "mean class probability"
            },
        ),
        &named,
    )
    .map_err(plot_err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shuffle_keeps_the_values_and_is_seeded() {
        let mut t = Table {
            columns: vec![crate::table::Column {
                name: "x".into(),
                data: ColumnData::Numeric((0..50).map(f64::from).collect()),
            }],
            target: None,
            transforms: vec![],
        };
        let mut a = t.clone();
        permute(&mut t, "x", &mut Xoshiro256PlusPlus::seed_from_u64(1)).unwrap();
        permute(&mut a, "x", &mut Xoshiro256PlusPlus::seed_from_u64(1)).unwrap();
        assert_eq!(t.columns[0].data, a.columns[0].data);
        let ColumnData::Numeric(mut v) = t.columns[0].data.clone() else {
            unreachable!()
        };
        assert_ne!(v, (0..50).map(f64::from).collect::<Vec<_>>());
        v.sort_by(f64::total_cmp);
        assert_eq!(v, (0..50).map(f64::from).collect::<Vec<_>>());
    }
}
