//! `evaluate.leaderboard` and `evaluate.select`: gather the metrics of
//! several stages (every instance of a `matrix:` stage, typically), rank
//! them by one metric and summarise them across instances.
//!
//! The summary follows scikit-learn's `cv_results_` of `GridSearchCV`:
//! each metric's mean and (population, `ddof = 0`) standard deviation
//! across the gathered runs, and the rank of each run by the deciding
//! metric (1 is best; ties share the better rank, as `rankdata(method =
//! "min")`). `evaluate.select` also hands on the best run's model, as
//! `GridSearchCV`'s `best_estimator_`.

use std::fmt::Write as _;

use mlcycle_pipeline::{
    Gathered, InferContext, Inferred, ParamDoc, ParamError, PortSpec, RunContext, StageError,
    StageKind, StageSpec,
};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::table::short;

/// `evaluate.leaderboard`.
#[derive(Debug)]
pub struct Leaderboard;

/// `evaluate.select`.
#[derive(Debug)]
pub struct Select;

/// The params both kinds take (`with:`).
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RankParams {
    /// The metric that ranks the runs (a key of the metrics files; a
    /// nested one as `a.b`). Unset: `r2` when every run has it, else
    /// `accuracy`.
    #[serde(default)]
    metric: Option<String>,
    /// Whether a larger value is better. Unset: known for the metrics the
    /// built-in stages write (errors and losses are lower-is-better);
    /// required for any other metric.
    #[serde(default)]
    greater_is_better: Option<bool>,
}

const METRIC_DOC: &str =
    "the metric that ranks the runs (`r2`, `accuracy`, `rmse`, …; a nested key as `a.b`)";
const GREATER_DOC: &str =
    "whether a larger value is better; needed for a metric the built-in stages do not write";

const LEADERBOARD_IN: &[PortSpec] = &[PortSpec::gather(
    "metrics",
    crate::ports::METRICS,
    true,
    "the metrics of each run, e.g. `evaluate@*.metrics` (JSON or YAML)",
)];
const SELECT_IN: &[PortSpec] = &[
    PortSpec::gather(
        "models",
        crate::ports::MODEL,
        true,
        "the candidate models, e.g. `train@*.model`",
    ),
    PortSpec::gather(
        "metrics",
        crate::ports::METRICS,
        true,
        "each candidate's metrics: matched to its model by the model's stage when the metrics name it (`evaluate.*` do), else by position",
    ),
];
const SUMMARY_OUT: PortSpec = PortSpec::output(
    "metrics",
    "summary.json",
    crate::ports::METRICS,
    "the deciding metric, the best run, and each metric's mean and std across runs",
);
const TABLE_OUT: PortSpec = PortSpec::output(
    "leaderboard",
    "leaderboard.csv",
    mlcycle_pipeline::Artifact::ANY,
    "one row per run, best first: rank, stage, every numeric metric",
);
const REPORT_OUT: PortSpec = PortSpec::output(
    "report",
    "leaderboard.md",
    crate::ports::REPORT,
    "the leaderboard as a Markdown table, with the mean and std",
);
const LEADERBOARD_OUT: &[PortSpec] = &[SUMMARY_OUT, TABLE_OUT, REPORT_OUT];
const SELECT_OUT: &[PortSpec] = &[
    PortSpec::output(
        "best",
        "best.json",
        crate::ports::MODEL,
        "the best run's model, unchanged (an ONNX model as a model document holding it)",
    ),
    PortSpec::output(
        "best_metrics",
        "best_metrics.json",
        crate::ports::METRICS,
        "the best run's metrics",
    ),
    SUMMARY_OUT,
    TABLE_OUT,
    REPORT_OUT,
];

const PARAMS: &[ParamDoc] = &[
    ParamDoc::new("metric", "string", METRIC_DOC).unset("r2, else accuracy"),
    ParamDoc::new("greater_is_better", "bool", GREATER_DOC).unset("known for built-in metrics"),
];

impl StageKind for Leaderboard {
    type Params = RankParams;
    const SPEC: StageSpec = StageSpec {
        kind: "evaluate.leaderboard",
        summary: "Rank the metrics of several runs (every instance of a matrix stage): leaderboard, mean and std across runs",
        version: 1,
        inputs: LEADERBOARD_IN,
        outputs: LEADERBOARD_OUT,
        params: PARAMS,
    };
    fn check(p: &mut RankParams) -> Result<(), ParamError> {
        p.check()
    }
    fn run(p: &RankParams, ctx: &RunContext<'_>) -> Result<(), StageError> {
        let runs = read_runs(ctx.gathered("metrics"))?;
        let board = Board::rank(p, runs)?;
        board.write(ctx)?;
        (ctx.log)(&board.verdict());
        Ok(())
    }
}

impl StageKind for Select {
    type Params = RankParams;
    const SPEC: StageSpec = StageSpec {
        kind: "evaluate.select",
        summary: "Pick the best of several models (every instance of a matrix stage) by their metrics; leaderboard, mean and std",
        version: 1,
        inputs: SELECT_IN,
        outputs: SELECT_OUT,
        params: PARAMS,
    };
    fn check(p: &mut RankParams) -> Result<(), ParamError> {
        p.check()
    }
    fn infer(_: &RankParams, cx: &InferContext<'_>) -> Inferred {
        let count = |port: &str| cx.gathered.get(port).copied().unwrap_or(0);
        let (models, metrics) = (count("models"), count("metrics"));
        let mut out = Inferred::default();
        if models > 0 && metrics > 0 && models != metrics {
            out.problems.push(
                ParamError::at_input(
                    "metrics",
                    format!("`models` gathers {models} artifacts but `metrics` gathers {metrics}"),
                )
                .with_help("gather one metrics file per model"),
            );
        }
        out
    }
    fn run(p: &RankParams, ctx: &RunContext<'_>) -> Result<(), StageError> {
        let models = ctx.gathered("models");
        let metrics = ctx.gathered("metrics");
        if models.len() != metrics.len() {
            return Err(StageError::new(format!(
                "`models` gathers {} artifacts but `metrics` gathers {}",
                models.len(),
                metrics.len()
            ))
            .with_help("gather one metrics file per model"));
        }
        let runs = read_runs(metrics)?;
        let paired = pair(models, &runs)?;
        let models: Vec<&Gathered> = paired.iter().map(|&m| &models[m]).collect();
        let mut board = Board::rank(p, runs)?;
        board.models = Some(models.iter().map(|m| m.from.clone()).collect());
        board.write(ctx)?;
        let best = board.order[0];
        crate::model::Model::copy_file(&models[best].path, ctx.output("best")?).map_err(|e| {
            StageError::caused_by(
                format!("cannot copy the model of `{}`", models[best].from),
                e,
            )
        })?;
        write_json(
            ctx.output("best_metrics")?,
            &Value::Object(board.runs[best].raw.clone()),
        )?;
        (ctx.log)(&format!(
            "{}; its model comes from `{}`",
            board.verdict(),
            models[best].from
        ));
        Ok(())
    }
}

impl RankParams {
    fn check(&self) -> Result<(), ParamError> {
        if let Some(m) = &self.metric {
            if m.trim().is_empty() {
                return Err(ParamError::new(&["metric"], "must name a metric"));
            }
            if self.greater_is_better.is_none() && direction(m).is_none() {
                return Err(ParamError::new(
                    &["greater_is_better"],
                    format!("the direction of `{m}` is not known"),
                )
                .with_help(format!(
                    "add `greater_is_better: true` (a score) or `false` (an error or a loss) for `{m}`"
                )));
            }
        }
        Ok(())
    }
}

/// Whether a larger value of `metric` (its last dotted segment) is better,
/// for the metrics the built-in stages write and the usual loss names.
fn direction(metric: &str) -> Option<bool> {
    let last = metric.rsplit('.').next().unwrap_or(metric);
    if super::lower_is_better(last)
        || matches!(last, "loss" | "error" | "val_loss" | "test_loss" | "mape")
    {
        return Some(false);
    }
    let score = matches!(
        last,
        "r2" | "accuracy" | "balanced_accuracy" | "explained_variance" | "score"
    ) || [
        "precision",
        "recall",
        "f1",
        "roc_auc",
        "average_precision",
        "auc",
    ]
    .iter()
    .any(|p| last == *p || last.starts_with(&format!("{p}_")));
    score.then_some(true)
}

/// One gathered run: where it comes from and its numeric metrics,
/// flattened (`a.b`), in the file's order.
struct Run {
    from: String,
    numbers: Vec<(String, f64)>,
    raw: Map<String, Value>,
}

impl Run {
    fn get(&self, key: &str) -> Option<f64> {
        self.numbers.iter().find(|(k, _)| k == key).map(|(_, v)| *v)
    }
}

fn read_runs(gathered: &[Gathered]) -> Result<Vec<Run>, StageError> {
    if gathered.is_empty() {
        return Err(StageError::new("`metrics` gathers no files")
            .with_help("wire it: `metrics: evaluate@*.metrics`"));
    }
    gathered
        .iter()
        .map(|g| {
            let text = std::fs::read_to_string(&g.path).map_err(|e| {
                StageError::caused_by(format!("cannot read the metrics of `{}`", g.from), e)
            })?;
            let yaml = g
                .path
                .extension()
                .is_some_and(|e| e == "yaml" || e == "yml");
            let value: Value = if yaml {
                serde_norway::from_str(&text).map_err(|e| {
                    StageError::caused_by(format!("the metrics of `{}` are not YAML", g.from), e)
                })?
            } else {
                serde_json::from_str(&text).map_err(|e| {
                    StageError::caused_by(format!("the metrics of `{}` are not JSON", g.from), e)
                })?
            };
            let Value::Object(raw) = value else {
                return Err(StageError::new(format!(
                    "the metrics of `{}` are not a mapping of names to values",
                    g.from
                )));
            };
            let mut numbers = Vec::new();
            flatten("", &raw, &mut numbers);
            Ok(Run {
                from: g.from.clone(),
                numbers,
                raw,
            })
        })
        .collect()
}

/// The finite numbers of `map`, nested keys joined by `.`.
fn flatten(prefix: &str, map: &Map<String, Value>, out: &mut Vec<(String, f64)>) {
    for (k, v) in map {
        let key = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        match v {
            Value::Object(inner) => flatten(&key, inner, out),
            Value::Number(n) => {
                // A literal `a.b` and a nested `a: {b}` read alike: the
                // first in the file counts.
                if let Some(x) = n.as_f64().filter(|x| x.is_finite()) {
                    if !out.iter().any(|(k, _)| *k == key) {
                        out.push((key, x));
                    }
                }
            }
            _ => {}
        }
    }
}

/// The runs ranked by one metric.
struct Board {
    metric: String,
    greater_is_better: bool,
    runs: Vec<Run>,
    /// Indices into `runs`, best first; ties keep the gathered order.
    order: Vec<usize>,
    /// Rank of each run (by index into `runs`), 1 = best.
    ranks: Vec<usize>,
    /// Every metric all runs have, in the first run's order.
    columns: Vec<String>,
    /// `evaluate.select`: the stage each run's model comes from.
    models: Option<Vec<String>>,
}

impl Board {
    fn rank(p: &RankParams, runs: Vec<Run>) -> Result<Board, StageError> {
        let metric = match &p.metric {
            Some(m) => m.clone(),
            None => ["r2", "accuracy"]
                .into_iter()
                .find(|m| runs.iter().all(|r| r.get(m).is_some()))
                .map(str::to_string)
                .ok_or_else(|| {
                    let all = common(&runs);
                    StageError::new("the runs do not all have `r2`, nor all `accuracy`, to rank by")
                        .with_help(if all.is_empty() {
                            "no numeric metric is common to all runs: gather metrics of one kind"
                                .to_string()
                        } else {
                            format!("set `metric:` to one they all have: {}", all.join(", "))
                        })
                })?,
        };
        let greater_is_better = p
            .greater_is_better
            .or_else(|| direction(&metric))
            .ok_or_else(|| {
                StageError::new(format!("the direction of `{metric}` is not known"))
                    .with_help("set `greater_is_better: true` or `false`")
            })?;
        let mut values = Vec::with_capacity(runs.len());
        for r in &runs {
            let v = r.get(&metric).ok_or_else(|| {
                StageError::new(format!(
                    "the metrics of `{}` have no number `{metric}`{}",
                    r.from,
                    super::why_absent(&r.raw, metric.rsplit('.').next().unwrap_or(&metric))
                ))
                .with_help(format!(
                    "metrics all runs have: {}",
                    common(&runs).join(", ")
                ))
            })?;
            values.push(if greater_is_better { -v } else { v });
        }
        let mut order: Vec<usize> = (0..runs.len()).collect();
        order.sort_by(|&a, &b| values[a].total_cmp(&values[b]));
        let mut ranks = vec![0; runs.len()];
        for (pos, &i) in order.iter().enumerate() {
            ranks[i] = if pos > 0 && values[order[pos - 1]] == values[i] {
                ranks[order[pos - 1]]
            } else {
                pos + 1
            };
        }
        let columns = common(&runs);
        Ok(Board {
            metric,
            greater_is_better,
            runs,
            order,
            ranks,
            columns,
            models: None,
        })
    }

    fn best(&self) -> &Run {
        &self.runs[self.order[0]]
    }

    /// Mean and population standard deviation of `key` across the runs.
    fn mean_std(&self, key: &str) -> (f64, f64) {
        let xs: Vec<f64> = self.runs.iter().filter_map(|r| r.get(key)).collect();
        let n = xs.len() as f64;
        // Scaled by the largest magnitude when squares could overflow (a
        // diverged run's error of 1e85); plain sums otherwise.
        let big = xs.iter().fold(0.0f64, |m, x| m.max(x.abs()));
        let scale = if big > 1e100 { big } else { 1.0 };
        if !scale.is_finite() {
            return (xs.iter().sum::<f64>() / n, 0.0);
        }
        let mean = xs.iter().map(|x| x / scale).sum::<f64>() / n;
        let var = xs.iter().map(|x| (x / scale - mean).powi(2)).sum::<f64>() / n;
        (mean * scale, var.sqrt() * scale)
    }

    fn verdict(&self) -> String {
        let (mean, std) = self.mean_std(&self.metric);
        format!(
            "best of {} runs by {} ({}): `{}` with {}; mean {} ± {}",
            self.runs.len(),
            self.metric,
            if self.greater_is_better {
                "higher is better"
            } else {
                "lower is better"
            },
            self.best().from,
            short(self.best().get(&self.metric).unwrap_or(f64::NAN)),
            short(mean),
            short(std)
        )
    }

    fn write(&self, ctx: &RunContext<'_>) -> Result<(), StageError> {
        let mut mean = Map::new();
        let mut std = Map::new();
        for c in &self.columns {
            let (m, s) = self.mean_std(c);
            mean.insert(c.clone(), json!(m));
            std.insert(c.clone(), json!(s));
        }
        let summary = json!({
            "metric": self.metric,
            "greater_is_better": self.greater_is_better,
            "count": self.runs.len(),
            "best": self.best().from,
            "best_value": self.best().get(&self.metric),
            "mean": mean,
            "std": std,
        });
        let mut summary = summary;
        if let Some(m) = &self.models {
            summary["best_model"] = json!(m[self.order[0]]);
        }
        write_json(ctx.output("metrics")?, &summary)?;

        let mut csv = csv::Writer::from_writer(Vec::new());
        let fixed: Vec<&str> = ["rank", "stage"]
            .into_iter()
            .chain(self.models.is_some().then_some("model"))
            .collect();
        // A metric named like a fixed column is written `metric:NAME`.
        let header = fixed
            .iter()
            .map(|s| s.to_string())
            .chain(self.columns.iter().map(|c| {
                if fixed.contains(&c.as_str()) {
                    format!("metric:{c}")
                } else {
                    c.clone()
                }
            }));
        let csv_err = |e: csv::Error| StageError::caused_by("cannot write the leaderboard", e);
        csv.write_record(header).map_err(csv_err)?;
        for &i in &self.order {
            let r = &self.runs[i];
            let row = [self.ranks[i].to_string(), r.from.clone()]
                .into_iter()
                .chain(self.models.as_ref().map(|m| m[i].clone()))
                .chain(
                    self.columns
                        .iter()
                        .map(|c| r.get(c).map(number).unwrap_or_default()),
                );
            csv.write_record(row).map_err(csv_err)?;
        }
        let bytes = csv
            .into_inner()
            .map_err(|e| StageError::caused_by("cannot write the leaderboard", e.into_error()))?;
        std::fs::write(ctx.output("leaderboard")?, bytes).map_err(StageError::from_error)?;

        std::fs::write(ctx.output("report")?, self.markdown()).map_err(StageError::from_error)
    }

    fn markdown(&self) -> String {
        let mut md = format!(
            "# Leaderboard\n\n{} runs ranked by `{}` ({}).\n\n| rank | stage |{}",
            self.runs.len(),
            self.metric,
            if self.greater_is_better {
                "higher is better"
            } else {
                "lower is better"
            },
            if self.models.is_some() {
                " model |"
            } else {
                ""
            }
        );
        for c in &self.columns {
            let _ = write!(md, " {} |", cell(c));
        }
        md.push_str("\n|---:|---|");
        if self.models.is_some() {
            md.push_str("---|");
        }
        md.push_str(&"---:|".repeat(self.columns.len()));
        md.push('\n');
        for &i in &self.order {
            let r = &self.runs[i];
            let _ = write!(md, "| {} | `{}` |", self.ranks[i], cell(&r.from));
            if let Some(m) = &self.models {
                let _ = write!(md, " `{}` |", cell(&m[i]));
            }
            for c in &self.columns {
                let _ = write!(md, " {} |", r.get(c).map(short).unwrap_or_default());
            }
            md.push('\n');
        }
        for (label, pick) in [("mean", 0), ("std", 1)] {
            let _ = write!(md, "| | {label} |");
            if self.models.is_some() {
                md.push_str(" |");
            }
            for c in &self.columns {
                let ms = self.mean_std(c);
                let _ = write!(md, " {} |", short(if pick == 0 { ms.0 } else { ms.1 }));
            }
            md.push('\n');
        }
        md
    }
}

/// `v` as JSON writes it: the shortest text that reads back the same,
/// with an exponent for very large or small values (`1.7e171`, not 172
/// digits).
fn number(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        return format!("{v:.0}");
    }
    serde_json::Number::from_f64(v).map_or_else(|| v.to_string(), |n| n.to_string())
}

/// `s` for a Markdown table cell: `|` escaped.
fn cell(s: &str) -> String {
    s.replace('|', "\\|")
}

/// For `evaluate.select`: the index of the model each run's metrics
/// belong to. Metrics that name the model they scored (`model.stage`, as
/// `evaluate.*` write) are matched to the model trained by that stage (its
/// `lineage.stage`), whatever order the two lists are in; otherwise the
/// lists pair by position.
fn pair(models: &[Gathered], runs: &[Run]) -> Result<Vec<usize>, StageError> {
    let scored: Vec<Option<&str>> = runs
        .iter()
        .map(|r| {
            r.raw
                .get("model")
                .and_then(|m| m.get("stage"))
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
        })
        .collect();
    if scored.iter().any(Option::is_none) {
        return Ok((0..runs.len()).collect());
    }
    // The stage a model names (`lineage.stage` in model.json, metadata in
    // an ONNX file, read without compiling it); one that names none is the
    // gathered stage's.
    let trained_by: Vec<Option<String>> = models
        .iter()
        .map(|m| {
            let bytes = std::fs::read(&m.path).ok()?;
            let stage = if crate::onnx::looks_like_onnx(&bytes) {
                crate::onnx::trained_by(&bytes).unwrap_or_default()
            } else {
                let v: Value = serde_json::from_slice(&bytes).ok()?;
                v.get("lineage")?.get("stage")?.as_str()?.to_string()
            };
            Some(if stage.is_empty() {
                m.from.clone()
            } else {
                stage
            })
        })
        .collect();
    let mut out = Vec::with_capacity(runs.len());
    for (r, stage) in runs.iter().zip(scored.iter().flatten()) {
        let matches: Vec<usize> = (0..models.len())
            .filter(|&i| trained_by[i].as_deref() == Some(*stage))
            .collect();
        match matches.as_slice() {
            [one] => out.push(*one),
            [] => {
                return Err(StageError::new(format!(
                    "the metrics of `{}` score the model of stage `{stage}`, which `models` does not gather",
                    r.from
                ))
                .with_help(format!(
                    "gather the models the metrics score; `models` holds those of: {}",
                    models
                        .iter()
                        .map(|m| format!("`{}`", m.from))
                        .collect::<Vec<_>>()
                        .join(", ")
                )))
            }
            _ => {
                return Err(StageError::new(format!(
                    "`models` gathers several models of stage `{stage}`, which the metrics of `{}` score",
                    r.from
                )))
            }
        }
    }
    Ok(out)
}

/// The numeric metrics every run has, in the first run's order.
fn common(runs: &[Run]) -> Vec<String> {
    let Some(first) = runs.first() else {
        return Vec::new();
    };
    first
        .numbers
        .iter()
        .map(|(k, _)| k.clone())
        .filter(|k| runs.iter().all(|r| r.get(k).is_some()))
        .collect()
}

fn write_json(path: &std::path::Path, v: &Value) -> Result<(), StageError> {
    let mut s = serde_json::to_string_pretty(v).expect("metrics serialize");
    s.push('\n');
    std::fs::write(path, s).map_err(StageError::from_error)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(from: &str, json: Value) -> Run {
        let Value::Object(raw) = json else {
            unreachable!()
        };
        let mut numbers = Vec::new();
        flatten("", &raw, &mut numbers);
        Run {
            from: from.into(),
            numbers,
            raw,
        }
    }

    fn params(metric: Option<&str>, greater: Option<bool>) -> RankParams {
        RankParams {
            metric: metric.map(str::to_string),
            greater_is_better: greater,
        }
    }

    #[test]
    fn ranks_by_r2_by_default_with_ties_sharing_the_better_rank() {
        let b = Board::rank(
            &params(None, None),
            vec![
                run("t@a", json!({"r2": 0.5, "mse": 2.0})),
                run("t@b", json!({"r2": 0.9, "mse": 1.0})),
                run("t@c", json!({"r2": 0.5, "mse": 3.0})),
            ],
        )
        .unwrap();
        assert_eq!(b.metric, "r2");
        assert_eq!(b.order, vec![1, 0, 2]);
        assert_eq!(b.ranks, vec![2, 1, 2]);
        let (mean, std) = b.mean_std("mse");
        assert!((mean - 2.0).abs() < 1e-12);
        // Population std (ddof = 0), as scikit-learn's cv_results_.
        assert!((std - (2.0f64 / 3.0).sqrt()).abs() < 1e-12);
    }

    #[test]
    fn an_error_metric_ranks_lowest_first() {
        let b = Board::rank(
            &params(Some("rmse"), None),
            vec![
                run("a", json!({"rmse": 3.0})),
                run("b", json!({"rmse": 1.0})),
            ],
        )
        .unwrap();
        assert_eq!(b.best().from, "b");
    }

    #[test]
    fn nested_metrics_are_addressed_with_dots() {
        let b = Board::rank(
            &params(Some("val.loss"), None),
            vec![
                run("a", json!({"val": {"loss": 0.2}})),
                run("b", json!({"val": {"loss": 0.1}})),
            ],
        )
        .unwrap();
        assert_eq!(b.best().from, "b");
        assert_eq!(b.columns, vec!["val.loss"]);
    }

    #[test]
    fn a_missing_metric_names_the_run_that_lacks_it() {
        let Err(e) = Board::rank(
            &params(Some("r2"), None),
            vec![run("a", json!({"r2": 1.0})), run("b", json!({"mse": 1.0}))],
        ) else {
            panic!("ranked without the metric")
        };
        assert!(e.message.contains("`b`"), "{}", e.message);
        // A probability metric left out for a class the model never saw
        // says so.
        let Err(e) = Board::rank(
            &params(Some("log_loss"), None),
            vec![
                run("a", json!({"log_loss": 0.2})),
                run("b", json!({"accuracy": 0.5, "unseen_classes": {"c": 2}})),
            ],
        ) else {
            panic!("ranked without the metric")
        };
        assert!(
            e.message.contains("never saw (`c`: 2 row(s))"),
            "{}",
            e.message
        );
    }

    #[test]
    fn an_unknown_metric_needs_a_direction() {
        assert!(params(Some("custom_metric"), None).check().is_err());
        assert!(params(Some("custom_metric"), Some(true)).check().is_ok());
        assert_eq!(direction("f1_macro"), Some(true));
        assert_eq!(direction("roc_auc_ovr_macro"), Some(true));
        assert_eq!(direction("test.log_loss"), Some(false));
    }
}
