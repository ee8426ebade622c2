//! Evaluation stages: score a model on held-out rows, write metrics and
//! plots, compare a challenger against a reference.

use mlcycle_pipeline::{
    ParamDoc, ParamError, PortSpec, RunContext, Stage, StageError, StageFactory,
};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::model::{Extra, Model, Predictions, Task};
use crate::table::{short, ColumnData, Table};
use crate::util::parse_with;

const EVAL_IN: &[PortSpec] = &[
    PortSpec::input("model", crate::ports::MODEL, true, "the model to evaluate"),
    PortSpec::input(
        "test",
        crate::ports::TABLE,
        true,
        "held-out rows with the target (raw: the model applies its own preprocessing)",
    ),
];
const REG_OUT: &[PortSpec] = &[
    PortSpec::output(
        "metrics",
        "metrics.json",
        crate::ports::METRICS,
        "`mse`, `rmse`, `mae`, `r2`, `rows`",
    ),
    PortSpec::output(
        "plots",
        "plots",
        crate::ports::PLOT,
        "`predicted_vs_actual`, `residuals` and, for one input column, `fit` (SVG and PNG)",
    ),
];
const CLS_OUT: &[PortSpec] = &[
    PortSpec::output(
        "metrics",
        "metrics.json",
        crate::ports::METRICS,
        "`accuracy`, precision / recall / F1 (macro and weighted), per class, confusion matrix, `roc_auc` (binary)",
    ),
    PortSpec::output(
        "plots",
        "plots",
        crate::ports::PLOT,
        "`confusion` heat map and, for binary models with scores, `roc` (SVG and PNG)",
    ),
];

fn load(ctx: &RunContext<'_>) -> Result<(Model, Table), StageError> {
    let model = Model::read(ctx.input("model")?).map_err(|e| {
        StageError::new(e.to_string()).with_help("wire a `train.*` stage's `model` output here")
    })?;
    let test = Table::read_arrow(ctx.input("test")?).map_err(|e| StageError::new(e.to_string()))?;
    if test.n_rows() == 0 {
        return Err(StageError::new("the `test` table has no rows")
            .with_help("give the split stage a larger `test` share"));
    }
    Ok((model, test))
}

/// Scores `t` with `m`; a schema mismatch names the columns.
pub fn score(m: &Model, t: &Table, port: &str) -> Result<Predictions, StageError> {
    let x = m.prepare(t, Extra::Ignore).map_err(|e| {
        StageError::new(format!("the model cannot score `{port}`: {e}")).with_help(format!(
            "the model (trained by stage `{}`) needs columns: {}",
            m.lineage.stage,
            m.inputs
                .iter()
                .map(|c| format!("{} ({})", c.name, c.ty))
                .collect::<Vec<_>>()
                .join(", ")
        ))
    })?;
    m.predict(&x).map_err(|e| StageError::new(e.to_string()))
}

fn truth_values(m: &Model, t: &Table) -> Result<Vec<f64>, StageError> {
    let name = m
        .target
        .as_deref()
        .ok_or_else(|| StageError::new("the model has no target; it cannot be evaluated"))?;
    match t.column(name).map(|c| &c.data) {
        Some(ColumnData::Numeric(v)) => {
            if let Some(i) = v.iter().position(|x| !x.is_finite()) {
                return Err(StageError::new(format!(
                    "the target `{name}` has a missing value at row {}",
                    i + 1
                )));
            }
            Ok(v.clone())
        }
        Some(ColumnData::Categorical(_)) => Err(StageError::new(format!(
            "the target `{name}` is categorical in `test`; this regression model needs numbers"
        ))),
        None => Err(StageError::new(format!(
            "the `test` table has no target column `{name}`"
        ))),
    }
}

/// Labels of the test rows as class ids; unseen labels get new ids after
/// the model's classes (they can never be predicted right).
fn truth_classes(m: &Model, t: &Table) -> Result<(Vec<usize>, Vec<String>), StageError> {
    let name = m
        .target
        .as_deref()
        .ok_or_else(|| StageError::new("the model has no target; it cannot be evaluated"))?;
    let col = t.column(name).ok_or_else(|| {
        StageError::new(format!("the `test` table has no target column `{name}`"))
    })?;
    let mut labels = m.classes.clone();
    let ids = (0..col.data.len())
        .map(|i| {
            let l = col.data.display(i);
            match labels.iter().position(|c| *c == l) {
                Some(k) => k,
                None => {
                    labels.push(l);
                    labels.len() - 1
                }
            }
        })
        .collect();
    Ok((ids, labels))
}

/// MSE, RMSE, MAE and R² of `pred` against `y`.
pub fn regression_metrics(y: &[f64], pred: &[f64]) -> Map<String, Value> {
    let n = y.len() as f64;
    let mean = y.iter().sum::<f64>() / n;
    let sse: f64 = y.iter().zip(pred).map(|(a, b)| (a - b) * (a - b)).sum();
    let sst: f64 = y.iter().map(|a| (a - mean) * (a - mean)).sum();
    let mae = y.iter().zip(pred).map(|(a, b)| (a - b).abs()).sum::<f64>() / n;
    let mse = sse / n;
    let r2 = if sst > 0.0 { 1.0 - sse / sst } else { 0.0 };
    let mut m = Map::new();
    m.insert("rows".into(), json!(y.len()));
    m.insert("mse".into(), json!(mse));
    m.insert("rmse".into(), json!(mse.sqrt()));
    m.insert("mae".into(), json!(mae));
    m.insert("r2".into(), json!(r2));
    m
}

/// Accuracy, precision/recall/F1 (macro, weighted, per class), the
/// confusion matrix, and ROC AUC for binary problems with scores.
pub fn classification_metrics(
    truth: &[usize],
    pred: &[usize],
    labels: &[String],
    proba: Option<&[Vec<f64>]>,
) -> Map<String, Value> {
    let k = labels.len();
    let mut cm = vec![vec![0u64; k]; k];
    for (&t, &p) in truth.iter().zip(pred) {
        cm[t][p] += 1;
    }
    let n = truth.len() as f64;
    let correct: u64 = (0..k).map(|i| cm[i][i]).sum();
    let mut per_class = Map::new();
    let (mut mp, mut mr, mut mf, mut wp, mut wr, mut wf) = (0.0, 0.0, 0.0, 0.0, 0.0, 0.0);
    let mut present: f64 = 0.0;
    for c in 0..k {
        let tp = cm[c][c] as f64;
        let predicted: f64 = (0..k).map(|r| cm[r][c] as f64).sum();
        let support: f64 = cm[c].iter().sum::<u64>() as f64;
        let precision = if predicted > 0.0 { tp / predicted } else { 0.0 };
        let recall = if support > 0.0 { tp / support } else { 0.0 };
        let f1 = if precision + recall > 0.0 {
            2.0 * precision * recall / (precision + recall)
        } else {
            0.0
        };
        per_class.insert(
            labels[c].clone(),
            json!({"precision": precision, "recall": recall, "f1": f1, "support": support as u64}),
        );
        if support > 0.0 {
            present += 1.0;
            mp += precision;
            mr += recall;
            mf += f1;
        }
        wp += precision * support;
        wr += recall * support;
        wf += f1 * support;
    }
    let present = present.max(1.0);
    let mut m = Map::new();
    m.insert("rows".into(), json!(truth.len()));
    m.insert("accuracy".into(), json!(correct as f64 / n));
    m.insert("precision_macro".into(), json!(mp / present));
    m.insert("recall_macro".into(), json!(mr / present));
    m.insert("f1_macro".into(), json!(mf / present));
    m.insert("precision_weighted".into(), json!(wp / n));
    m.insert("recall_weighted".into(), json!(wr / n));
    m.insert("f1_weighted".into(), json!(wf / n));
    if let (2, Some(p)) = (k, proba) {
        let scores: Vec<f64> = p.iter().map(|r| r[1]).collect();
        m.insert("roc_auc".into(), json!(roc_auc(truth, &scores)));
    }
    m.insert("per_class".into(), Value::Object(per_class));
    m.insert(
        "confusion_matrix".into(),
        json!({"labels": labels, "rows_actual_columns_predicted": cm}),
    );
    m
}

/// Area under the ROC curve by the rank statistic (ties share ranks).
pub fn roc_auc(truth: &[usize], score: &[f64]) -> f64 {
    let mut idx: Vec<usize> = (0..score.len()).collect();
    idx.sort_by(|&a, &b| score[a].total_cmp(&score[b]));
    let mut ranks = vec![0.0; score.len()];
    let mut i = 0;
    while i < idx.len() {
        let mut j = i;
        while j + 1 < idx.len() && score[idx[j + 1]] == score[idx[i]] {
            j += 1;
        }
        let r = (i + j) as f64 / 2.0 + 1.0;
        for &k in &idx[i..=j] {
            ranks[k] = r;
        }
        i = j + 1;
    }
    let pos = truth.iter().filter(|&&t| t == 1).count() as f64;
    let neg = truth.len() as f64 - pos;
    if pos == 0.0 || neg == 0.0 {
        return f64::NAN;
    }
    let sum: f64 = truth
        .iter()
        .zip(&ranks)
        .filter(|(t, _)| **t == 1)
        .map(|(_, r)| r)
        .sum();
    (sum - pos * (pos + 1.0) / 2.0) / (pos * neg)
}

fn write_metrics(ctx: &RunContext<'_>, m: &Map<String, Value>) -> Result<(), StageError> {
    let mut s = serde_json::to_string_pretty(m).expect("metrics serialize");
    s.push('\n');
    std::fs::write(ctx.output("metrics")?, s)
        .map_err(|e| StageError::new(format!("cannot write metrics: {e}")))
}

fn plot_err(e: String) -> StageError {
    StageError::new(format!("cannot draw a plot: {e}"))
}

fn model_info(m: &Model) -> Value {
    json!({"kind": m.kind, "stage": m.lineage.stage, "train_rows": m.lineage.rows})
}

/// Evaluates `model` on `test`: the metrics of its task.
pub fn evaluate(m: &Model, test: &Table) -> Result<Map<String, Value>, StageError> {
    let pred = score(m, test, "test")?;
    match (m.task, pred) {
        (Task::Regression, Predictions::Values(p)) => {
            let y = truth_values(m, test)?;
            Ok(regression_metrics(&y, &p))
        }
        (_, Predictions::Classes { ids, proba }) => {
            let (truth, labels) = truth_classes(m, test)?;
            Ok(classification_metrics(
                &truth,
                &ids,
                &labels,
                proba.as_deref(),
            ))
        }
        (_, Predictions::Values(_)) => {
            Err(StageError::new("the model predicts values, not classes"))
        }
    }
}

// ------------------------------------------------- evaluate.regression

/// `evaluate.regression`.
#[derive(Debug)]
pub struct Regression;

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct NoParams {}

#[derive(Debug)]
struct RegressionStage;

impl StageFactory for Regression {
    fn kind(&self) -> &'static str {
        "evaluate.regression"
    }
    fn summary(&self) -> &'static str {
        "Score a regression model on held-out rows: MSE, RMSE, MAE, R², prediction and residual plots"
    }
    fn version(&self) -> u32 {
        1
    }
    fn inputs(&self) -> &'static [PortSpec] {
        EVAL_IN
    }
    fn outputs(&self) -> &'static [PortSpec] {
        REG_OUT
    }
    fn param_docs(&self) -> &'static [ParamDoc] {
        &[]
    }
    fn build(&self, with: &Value) -> Result<Box<dyn Stage>, ParamError> {
        let _: NoParams = parse_with(with)?;
        Ok(Box::new(RegressionStage))
    }
}

impl Stage for RegressionStage {
    fn params(&self) -> Value {
        json!({})
    }
    fn run(&self, ctx: &RunContext<'_>) -> Result<(), StageError> {
        let (m, test) = load(ctx)?;
        if m.task != Task::Regression {
            return Err(StageError::new(format!(
                "`{}` is a {} model; `evaluate.regression` needs a regression model",
                m.kind,
                m.task.as_str()
            ))
            .with_help("use `evaluate.classification`"));
        }
        let Predictions::Values(pred) = score(&m, &test, "test")? else {
            unreachable!("regression models predict values")
        };
        let y = truth_values(&m, &test)?;
        let mut metrics = regression_metrics(&y, &pred);
        (ctx.log)(&format!(
            "{} rows: MSE {}, RMSE {}, MAE {}, R² {}",
            y.len(),
            short(metrics["mse"].as_f64().unwrap_or(f64::NAN)),
            short(metrics["rmse"].as_f64().unwrap_or(f64::NAN)),
            short(metrics["mae"].as_f64().unwrap_or(f64::NAN)),
            short(metrics["r2"].as_f64().unwrap_or(f64::NAN)),
        ));
        metrics.insert("model".into(), model_info(&m));
        write_metrics(ctx, &metrics)?;

        let dir = ctx.output("plots")?;
        let target = m.target.clone().unwrap_or_else(|| "target".into());
        let pts: Vec<(f64, f64)> = y.iter().copied().zip(pred.iter().copied()).collect();
        let (lo, hi) = y
            .iter()
            .chain(&pred)
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
                (a.min(*v), b.max(*v))
            });
        crate::plot::scatter(
            dir,
            "predicted_vs_actual",
            &format!("Predicted vs actual {target}"),
            (&format!("actual {target}"), &format!("predicted {target}")),
            &pts,
            &[("y = x", vec![(lo, lo), (hi, hi)])],
        )
        .map_err(plot_err)?;
        let res: Vec<(f64, f64)> = pred.iter().zip(&y).map(|(p, a)| (*p, a - p)).collect();
        let (plo, phi) = pred
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
                (a.min(*v), b.max(*v))
            });
        crate::plot::scatter(
            dir,
            "residuals",
            "Residuals",
            (&format!("predicted {target}"), "actual − predicted"),
            &res,
            &[("zero", vec![(plo, 0.0), (phi, 0.0)])],
        )
        .map_err(plot_err)?;
        // One numeric input: the data and the fitted curve over its range.
        if let [input] = &m.inputs[..] {
            if let Some(ColumnData::Numeric(xs)) = test.column(&input.name).map(|c| &c.data) {
                let (xlo, xhi) = xs
                    .iter()
                    .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
                        (a.min(*v), b.max(*v))
                    });
                let grid: Vec<f64> = (0..=100)
                    .map(|i| xlo + (xhi - xlo) * i as f64 / 100.0)
                    .collect();
                let mut g = Table {
                    columns: vec![crate::table::Column {
                        name: input.name.clone(),
                        data: ColumnData::Numeric(grid.clone()),
                    }],
                    target: None,
                    transforms: vec![],
                };
                g.target = None;
                if let Ok(Predictions::Values(gp)) = m
                    .prepare(&g, Extra::Ignore)
                    .map_err(|e| e.to_string())
                    .and_then(|x| m.predict(&x).map_err(|e| e.to_string()))
                {
                    let data: Vec<(f64, f64)> = xs.iter().copied().zip(y.iter().copied()).collect();
                    crate::plot::scatter(
                        dir,
                        "fit",
                        &format!(
                            "{target} by {} (test rows) and the fitted model",
                            input.name
                        ),
                        (&input.name, &target),
                        &data,
                        &[("model", grid.into_iter().zip(gp).collect())],
                    )
                    .map_err(plot_err)?;
                }
            }
        }
        Ok(())
    }
}

// --------------------------------------------- evaluate.classification

/// `evaluate.classification`.
#[derive(Debug)]
pub struct Classification;

#[derive(Debug)]
struct ClassificationStage;

impl StageFactory for Classification {
    fn kind(&self) -> &'static str {
        "evaluate.classification"
    }
    fn summary(&self) -> &'static str {
        "Score a classifier on held-out rows: accuracy, precision, recall, F1, confusion matrix, ROC AUC"
    }
    fn version(&self) -> u32 {
        1
    }
    fn inputs(&self) -> &'static [PortSpec] {
        EVAL_IN
    }
    fn outputs(&self) -> &'static [PortSpec] {
        CLS_OUT
    }
    fn param_docs(&self) -> &'static [ParamDoc] {
        &[]
    }
    fn build(&self, with: &Value) -> Result<Box<dyn Stage>, ParamError> {
        let _: NoParams = parse_with(with)?;
        Ok(Box::new(ClassificationStage))
    }
}

impl Stage for ClassificationStage {
    fn params(&self) -> Value {
        json!({})
    }
    fn run(&self, ctx: &RunContext<'_>) -> Result<(), StageError> {
        let (m, test) = load(ctx)?;
        if m.task != Task::Classification {
            return Err(StageError::new(format!(
                "`{}` is a {} model; `evaluate.classification` needs a classifier",
                m.kind,
                m.task.as_str()
            ))
            .with_help(if m.task == Task::Regression {
                "use `evaluate.regression`"
            } else {
                "clusters have no true labels to compare with"
            }));
        }
        let Predictions::Classes { ids, proba } = score(&m, &test, "test")? else {
            unreachable!("classifiers predict classes")
        };
        let (truth, labels) = truth_classes(&m, &test)?;
        let mut metrics = classification_metrics(&truth, &ids, &labels, proba.as_deref());
        (ctx.log)(&format!(
            "{} rows: accuracy {}, F1 macro {}{}",
            truth.len(),
            short(metrics["accuracy"].as_f64().unwrap_or(f64::NAN)),
            short(metrics["f1_macro"].as_f64().unwrap_or(f64::NAN)),
            metrics
                .get("roc_auc")
                .and_then(Value::as_f64)
                .map(|a| format!(", ROC AUC {}", short(a)))
                .unwrap_or_default()
        ));
        let cm: Vec<Vec<u64>> = serde_json::from_value(
            metrics["confusion_matrix"]["rows_actual_columns_predicted"].clone(),
        )
        .expect("confusion matrix");
        metrics.insert("model".into(), model_info(&m));
        write_metrics(ctx, &metrics)?;
        let dir = ctx.output("plots")?;
        crate::plot::heatmap(dir, "confusion", "Confusion matrix", &labels, &cm)
            .map_err(plot_err)?;
        if let (2, Some(p)) = (labels.len(), &proba) {
            let scores: Vec<f64> = p.iter().map(|r| r[1]).collect();
            let curve = roc_points(&truth, &scores);
            crate::plot::curve(
                dir,
                "roc",
                "ROC curve",
                ("false positive rate", "true positive rate"),
                &[("model", curve), ("chance", vec![(0.0, 0.0), (1.0, 1.0)])],
            )
            .map_err(plot_err)?;
        }
        Ok(())
    }
}

fn roc_points(truth: &[usize], score: &[f64]) -> Vec<(f64, f64)> {
    let mut idx: Vec<usize> = (0..score.len()).collect();
    idx.sort_by(|&a, &b| score[b].total_cmp(&score[a]));
    let pos = truth.iter().filter(|&&t| t == 1).count().max(1) as f64;
    let neg = (truth.len() as f64 - pos).max(1.0);
    let (mut tp, mut fp) = (0.0, 0.0);
    let mut pts = vec![(0.0, 0.0)];
    for i in idx {
        if truth[i] == 1 {
            tp += 1.0;
        } else {
            fp += 1.0;
        }
        pts.push((fp / neg, tp / pos));
    }
    pts
}

// ---------------------------------------------------- evaluate.compare

/// `evaluate.compare`.
#[derive(Debug)]
pub struct Compare;

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CompareParams {
    /// Metric that decides; default r2 (regression) or accuracy.
    #[serde(default)]
    metric: Option<String>,
    /// The challenger must beat the reference by at least this much.
    #[serde(default)]
    min_improvement: f64,
    /// Fail the stage (and stop its dependents) when the gate fails.
    #[serde(default)]
    fail: bool,
}

#[derive(Debug)]
struct CompareStage(CompareParams);

const COMPARE_IN: &[PortSpec] = &[
    PortSpec::input("model", crate::ports::MODEL, true, "the challenger"),
    PortSpec::input("reference", crate::ports::MODEL, true, "the model to beat"),
    PortSpec::input(
        "test",
        crate::ports::TABLE,
        true,
        "held-out rows both are scored on",
    ),
];
const COMPARE_OUT: &[PortSpec] = &[
    PortSpec::output(
        "metrics",
        "comparison.json",
        crate::ports::METRICS,
        "both models' metrics, the differences and `passed`",
    ),
    PortSpec::output(
        "report",
        "comparison.md",
        crate::ports::REPORT,
        "a per-metric Markdown table and the verdict",
    ),
    PortSpec::output(
        "best",
        "best.json",
        crate::ports::MODEL,
        "the winner: the challenger when it passed, else the reference",
    ),
    PortSpec::output(
        "best_metrics",
        "best_metrics.json",
        crate::ports::METRICS,
        "the winner's metrics on these rows",
    ),
];

/// Metrics where lower is better.
fn lower_is_better(metric: &str) -> bool {
    matches!(metric, "mse" | "rmse" | "mae")
}

impl StageFactory for Compare {
    fn kind(&self) -> &'static str {
        "evaluate.compare"
    }
    fn summary(&self) -> &'static str {
        "Compare a challenger model with a reference on the same rows: per-metric table and a pass/fail gate"
    }
    fn version(&self) -> u32 {
        1
    }
    fn inputs(&self) -> &'static [PortSpec] {
        COMPARE_IN
    }
    fn outputs(&self) -> &'static [PortSpec] {
        COMPARE_OUT
    }
    fn param_docs(&self) -> &'static [ParamDoc] {
        &[
            ParamDoc {
                name: "metric",
                ty: "string = r2 or accuracy",
                doc: "the metric that decides (`r2`, `mse`, `rmse`, `mae`, `accuracy`, `f1_macro`, …); lower is better for errors",
            },
            ParamDoc {
                name: "min_improvement",
                ty: "number = 0",
                doc: "the challenger must beat the reference by at least this much",
            },
            ParamDoc {
                name: "fail",
                ty: "bool = false",
                doc: "fail the stage when the challenger does not pass, so dependents do not run",
            },
        ]
    }
    fn build(&self, with: &Value) -> Result<Box<dyn Stage>, ParamError> {
        let p: CompareParams = parse_with(with)?;
        if !p.min_improvement.is_finite() {
            return Err(ParamError::new(
                &["min_improvement"],
                "must be a finite number",
            ));
        }
        Ok(Box::new(CompareStage(p)))
    }
}

impl Stage for CompareStage {
    fn params(&self) -> Value {
        serde_json::to_value(&self.0).expect("params serialize")
    }
    fn run(&self, ctx: &RunContext<'_>) -> Result<(), StageError> {
        let read = |port: &str| {
            Model::read(ctx.input(port)?).map_err(|e| StageError::new(format!("`{port}`: {e}")))
        };
        let (challenger, reference) = (read("model")?, read("reference")?);
        if challenger.task != reference.task {
            return Err(StageError::new(format!(
                "the models solve different tasks: `model` is {}, `reference` is {}",
                challenger.task.as_str(),
                reference.task.as_str()
            )));
        }
        let test =
            Table::read_arrow(ctx.input("test")?).map_err(|e| StageError::new(e.to_string()))?;
        let a = evaluate(&challenger, &test)?;
        let b = evaluate(&reference, &test)?;
        let metric = self.0.metric.clone().unwrap_or_else(|| {
            if challenger.task == Task::Regression {
                "r2".into()
            } else {
                "accuracy".into()
            }
        });
        let (Some(va), Some(vb)) = (
            a.get(&metric).and_then(Value::as_f64),
            b.get(&metric).and_then(Value::as_f64),
        ) else {
            let known: Vec<&String> = a
                .iter()
                .filter(|(_, v)| v.is_f64())
                .map(|(k, _)| k)
                .collect();
            return Err(
                StageError::new(format!("no metric `{metric}` for these models")).with_help(
                    format!(
                        "use one of: {}",
                        known
                            .iter()
                            .map(|s| s.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ),
            );
        };
        let gain = if lower_is_better(&metric) {
            vb - va
        } else {
            va - vb
        };
        let passed = gain >= self.0.min_improvement && gain.is_finite();
        let verdict = format!(
            "{}: {metric} {} vs reference {} (improvement {}{}; needed at least {})",
            if passed { "passed" } else { "failed" },
            short(va),
            short(vb),
            short(gain),
            if lower_is_better(&metric) {
                ", as a lower error"
            } else {
                ""
            },
            short(self.0.min_improvement)
        );
        (ctx.log)(&verdict);
        let mut rows = String::new();
        for (k, v) in &a {
            if let (Some(x), Some(y)) = (v.as_f64(), b.get(k).and_then(Value::as_f64)) {
                rows.push_str(&format!(
                    "| {k}{} | {} | {} | {} |\n",
                    if *k == metric { " (decides)" } else { "" },
                    short(x),
                    short(y),
                    short(x - y)
                ));
            }
        }
        let report = format!(
            "# Model comparison\n\n\
             Challenger `{}` (stage `{}`) against reference `{}` (stage `{}`) on {} rows.\n\n\
             | metric | challenger | reference | difference |\n|---|---|---|---|\n{rows}\n\
             **Gate {verdict}.**\n",
            challenger.kind,
            challenger.lineage.stage,
            reference.kind,
            reference.lineage.stage,
            test.n_rows()
        );
        std::fs::write(ctx.output("report")?, report)
            .map_err(|e| StageError::new(e.to_string()))?;
        let out = json!({
            "metric": metric,
            "challenger": a,
            "reference": b,
            "improvement": gain,
            "min_improvement": self.0.min_improvement,
            "passed": passed,
        });
        let mut s = serde_json::to_string_pretty(&out).expect("metrics serialize");
        s.push('\n');
        std::fs::write(ctx.output("metrics")?, s).map_err(|e| StageError::new(e.to_string()))?;
        let (best_port, best_metrics) = if passed {
            ("model", &a)
        } else {
            ("reference", &b)
        };
        std::fs::copy(ctx.input(best_port)?, ctx.output("best")?)
            .map_err(|e| StageError::new(format!("cannot write the best model: {e}")))?;
        let mut s = serde_json::to_string_pretty(best_metrics).expect("metrics serialize");
        s.push('\n');
        std::fs::write(ctx.output("best_metrics")?, s)
            .map_err(|e| StageError::new(e.to_string()))?;
        if self.0.fail && !passed {
            return Err(StageError::new(format!("the challenger {verdict}"))
                .with_help("set `fail: false` to record the verdict without stopping the run"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regression_metrics_match_hand_computation() {
        let m = regression_metrics(&[1.0, 2.0, 3.0], &[1.0, 2.0, 4.0]);
        assert!((m["mse"].as_f64().unwrap() - 1.0 / 3.0).abs() < 1e-12);
        assert!((m["mae"].as_f64().unwrap() - 1.0 / 3.0).abs() < 1e-12);
        assert!((m["r2"].as_f64().unwrap() - 0.5).abs() < 1e-12);
    }

    #[test]
    fn classification_metrics_match_hand_computation() {
        let labels = vec!["a".to_string(), "b".to_string()];
        let m = classification_metrics(&[0, 0, 1, 1], &[0, 1, 1, 1], &labels, None);
        assert_eq!(m["accuracy"], json!(0.75));
        // class a: p 1, r .5, f1 2/3; class b: p 2/3, r 1, f1 .8
        let f1 = m["f1_macro"].as_f64().unwrap();
        assert!((f1 - (2.0 / 3.0 + 0.8) / 2.0).abs() < 1e-12);
        assert_eq!(
            m["confusion_matrix"]["rows_actual_columns_predicted"],
            json!([[1, 1], [0, 2]])
        );
    }

    #[test]
    fn roc_auc_by_ranks() {
        assert_eq!(roc_auc(&[0, 0, 1, 1], &[0.1, 0.4, 0.35, 0.8]), 0.75);
        assert_eq!(roc_auc(&[0, 1], &[0.5, 0.5]), 0.5);
    }
}
