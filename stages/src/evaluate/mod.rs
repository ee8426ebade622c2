//! Evaluation stages: score a model on held-out rows, write metrics and
//! plots, compare a challenger against a reference.

mod classification;
mod compare;
mod importance;
mod leaderboard;
mod regression;

use mlcycle_pipeline::{PortSpec, RunContext, StageError};
use serde_json::{json, Map, Value};

use crate::model::{Extra, Model, Predictions, Task};
use crate::table::{ColumnData, Table};

pub use classification::Classification;
pub use compare::Compare;
pub use importance::Importance;
pub use leaderboard::{Leaderboard, Select};
pub use regression::Regression;

const EVAL_IN: &[PortSpec] = &[
    PortSpec::input("model", crate::ports::MODEL, true, "the model to evaluate"),
    PortSpec::input(
        "test",
        crate::ports::TABLE,
        true,
        "held-out rows with the target (raw: the model applies its own preprocessing)",
    ),
];

fn load(ctx: &RunContext<'_>) -> Result<(Model, Table), StageError> {
    let path = ctx.input("model")?;
    let model = Model::read(path).map_err(|e| {
        let onnx = std::fs::read(path).is_ok_and(|b| crate::onnx::looks_like_onnx(&b));
        StageError::from_error(e).with_help(if onnx {
            "docs/artifacts.md (ONNX models) says what an ONNX model must say and which operators run"
        } else {
            "wire a `train.*` stage's `model` output here"
        })
    })?;
    let test = Table::read(ctx.input("test")?).map_err(StageError::from_error)?;
    if test.n_rows() == 0 {
        return Err(StageError::new("the `test` table has no rows")
            .with_help("give the split stage a larger `test` share"));
    }
    Ok((model, test))
}

/// Scores `t` with `m`; a schema mismatch names the columns.
pub fn score(m: &Model, t: &Table, port: &str) -> Result<Predictions, StageError> {
    let x = m.prepare(t, Extra::Ignore).map_err(|e| {
        StageError::caused_by(format!("the model cannot score `{port}`"), e).with_help(format!(
            "the model{} needs columns: {}",
            if m.lineage.stage.is_empty() {
                String::new()
            } else {
                format!(" (trained by stage `{}`)", m.lineage.stage)
            },
            m.inputs
                .iter()
                .map(|c| format!("{} ({})", c.name, c.ty))
                .collect::<Vec<_>>()
                .join(", ")
        ))
    })?;
    m.predict(&x).map_err(StageError::from_error)
}

/// The column holding the truth: the model's target, or for a model that
/// names none (an ONNX file without `mlcycle.target`), the table's.
fn target_of<'a>(m: &'a Model, t: &'a Table) -> Result<&'a str, StageError> {
    m.target.as_deref().or(t.target.as_deref()).ok_or_else(|| {
        StageError::new("neither the model nor the test table names a target")
            .with_help("give the split stage `target:`, or save the model with its target")
    })
}

fn truth_values(m: &Model, t: &Table) -> Result<Vec<f64>, StageError> {
    let name = target_of(m, t)?;
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
    let name = target_of(m, t)?;
    let col = t.column(name).ok_or_else(|| {
        StageError::new(format!("the `test` table has no target column `{name}`"))
    })?;
    // A missing label is no class: it was counted as the class ``.
    let missing = |i: usize| match &col.data {
        ColumnData::Numeric(v) => v[i].is_nan(),
        ColumnData::Categorical(v) => v[i].is_none(),
    };
    if let Some(i) = (0..col.data.len()).find(|&i| missing(i)) {
        return Err(StageError::new(format!(
            "the target `{name}` has a missing value at row {}",
            i + 1
        ))
        .with_help("drop those rows with `preprocess.clean` (missing: drop)"));
    }
    let mut labels = m.classes.clone();
    // `1` and `1.0` name one class: a model trained in Python on a numeric
    // target may call its classes `0.0`, `1.0`.
    let same = |c: &str, l: &str| {
        c == l || matches!((c.parse::<f64>(), l.parse::<f64>()), (Ok(a), Ok(b)) if a == b)
    };
    let ids: Vec<usize> = (0..col.data.len())
        .map(|i| {
            let l = col.data.display(i);
            match labels.iter().position(|c| same(c, &l)) {
                Some(k) => k,
                None => {
                    labels.push(l);
                    labels.len() - 1
                }
            }
        })
        .collect();
    if !ids.is_empty() && ids.iter().all(|&k| k >= m.classes.len()) {
        // Every score would be 0 for a reason no metric shows.
        return Err(StageError::new(format!(
            "no label of `{name}` in the test rows is a class of the model: the model's classes are {}; the labels are {}",
            list(&m.classes),
            list(&labels[m.classes.len()..])
        ))
        .with_help("the model names its classes differently from the table (an ONNX model's `mlcycle.classes`, or 0/1 against false/true)"));
    }
    Ok((ids, labels))
}

/// Up to 8 names, quoted.
fn list(names: &[String]) -> String {
    let mut s: Vec<String> = names.iter().take(8).map(|n| format!("`{n}`")).collect();
    if names.len() > 8 {
        s.push(format!("… ({} in all)", names.len()));
    }
    s.join(", ")
}

/// MSE, RMSE, MAE and R² of `pred` against `y`.
pub fn regression_metrics(y: &[f64], pred: &[f64]) -> Map<String, Value> {
    let n = y.len() as f64;
    let mean = y.iter().sum::<f64>() / n;
    let sse: f64 = y.iter().zip(pred).map(|(a, b)| (a - b) * (a - b)).sum();
    let sst: f64 = y.iter().map(|a| (a - mean) * (a - mean)).sum();
    let mae = y.iter().zip(pred).map(|(a, b)| (a - b).abs()).sum::<f64>() / n;
    let mse = sse / n;
    // scikit-learn's `r2_score`: a constant target predicted exactly is a
    // perfect score (1), predicted with any error is 0.
    let r2 = if sst > 0.0 {
        1.0 - sse / sst
    } else if sse == 0.0 {
        1.0
    } else {
        0.0
    };
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
        // scikit-learn's convention: the macro average runs over every
        // label in the truth or the predictions (a class predicted but
        // absent from the test rows counts, with recall 0).
        if support > 0.0 || predicted > 0.0 {
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
    // Micro averages pool every decision; with one label per row all
    // three equal the accuracy (as in scikit-learn).
    let micro = correct as f64 / n;
    m.insert("precision_micro".into(), json!(micro));
    m.insert("recall_micro".into(), json!(micro));
    m.insert("f1_micro".into(), json!(micro));
    m.insert("precision_weighted".into(), json!(wp / n));
    m.insert("recall_weighted".into(), json!(wr / n));
    m.insert("f1_weighted".into(), json!(wf / n));
    // Probabilities cover the model's classes; a test label it never saw
    // has none, and then neither log loss nor AUC is defined (scikit-learn
    // raises or gives NaN): they are left out.
    let classes = proba.and_then(|p| p.first()).map_or(0, Vec::len);
    let all_known = truth.iter().all(|&t| t < classes);
    if let Some(p) = proba.filter(|_| all_known) {
        if let Some(l) = log_loss(truth, p) {
            m.insert("log_loss".into(), json!(l));
        }
        if classes == 2 {
            let scores: Vec<f64> = p.iter().map(|r| r[1]).collect();
            let auc = roc_auc(truth, &scores);
            if auc.is_finite() {
                m.insert("roc_auc".into(), json!(auc));
            }
        } else if classes > 2 {
            if let Some(auc) = roc_auc_ovr_macro(truth, p) {
                m.insert("roc_auc_ovr_macro".into(), json!(auc));
            }
        }
    }
    m.insert("per_class".into(), Value::Object(per_class));
    m.insert(
        "confusion_matrix".into(),
        json!({"labels": labels, "rows_actual_columns_predicted": cm}),
    );
    m
}

/// Mean negative log-likelihood of the true class (scikit-learn's
/// `log_loss`, probabilities clipped to [ε, 1 − ε] with ε the f64 machine
/// epsilon). `proba` is rows × the model's classes; `None` when a test
/// label is one the model never saw (it has no probability for it).
pub fn log_loss(truth: &[usize], proba: &[Vec<f64>]) -> Option<f64> {
    let eps = f64::EPSILON;
    let mut sum = 0.0;
    for (&t, row) in truth.iter().zip(proba) {
        let p = *row.get(t)?;
        sum -= p.clamp(eps, 1.0 - eps).ln();
    }
    Some(sum / truth.len() as f64)
}

/// One-vs-rest ROC AUC averaged over the classes (scikit-learn's
/// `roc_auc_score(multi_class="ovr", average="macro")`): class `c`'s
/// probability scores "is `c`" against "is not". `proba` is rows × classes.
/// As in scikit-learn, every class must have both positive and negative
/// test rows; `None` (left out of the metrics) otherwise.
pub fn roc_auc_ovr_macro(truth: &[usize], proba: &[Vec<f64>]) -> Option<f64> {
    let classes = proba.first().map_or(0, Vec::len);
    let aucs: Vec<f64> = (0..classes)
        .map(|c| {
            let is_c: Vec<usize> = truth.iter().map(|&t| usize::from(t == c)).collect();
            let scores: Vec<f64> = proba.iter().map(|r| r[c]).collect();
            roc_auc(&is_c, &scores)
        })
        .collect();
    let defined = !aucs.is_empty() && aucs.iter().all(|a| a.is_finite());
    defined.then(|| aucs.iter().sum::<f64>() / aucs.len() as f64)
}

/// Area under the ROC curve by the rank statistic (ties share ranks);
/// `truth` is 1 for the positive class. NaN when the rows hold only one
/// of the two.
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

/// Metrics where lower is better: the errors and the log loss.
pub fn lower_is_better(metric: &str) -> bool {
    matches!(metric, "mse" | "rmse" | "mae" | "log_loss")
}

/// Whether a challenger that is better than the reference by `gain` (in
/// the deciding metric, positive when better) passes a gate asking for at
/// least `need`. A tie (`gain` of exactly 0) keeps the reference unless the
/// gate tolerates a loss (`need` < 0): replacing a model by one no better
/// is churn, and a tie at `need` = 0 used to hand the win to the
/// challenger.
pub fn passes_gate(gain: f64, need: f64) -> bool {
    gain.is_finite() && gain >= need && (gain != 0.0 || need < 0.0)
}

fn write_metrics(ctx: &RunContext<'_>, m: &Map<String, Value>) -> Result<(), StageError> {
    let mut s = serde_json::to_string_pretty(m).expect("metrics serialize");
    s.push('\n');
    std::fs::write(ctx.output("metrics")?, s)
        .map_err(|e| StageError::caused_by("cannot write metrics", e))
}

/// The predictions table of an `evaluate.*` stage: `row` (the test row's
/// 0-based index), `truth`, `prediction` and, for a model with class
/// probabilities, `proba_<class>` per class (rows × 3 + classes). Written
/// as Arrow IPC like every table (`mlcycle show`, pandas `read_feather`).
fn write_predictions(
    ctx: &RunContext<'_>,
    truth: ColumnData,
    prediction: ColumnData,
    proba: Option<(&[Vec<f64>], &[String])>,
) -> Result<(), StageError> {
    let n = truth.len();
    let mut columns = vec![
        crate::table::Column {
            name: "row".into(),
            data: ColumnData::Numeric((0..n).map(|i| i as f64).collect()),
        },
        crate::table::Column {
            name: "truth".into(),
            data: truth,
        },
        crate::table::Column {
            name: "prediction".into(),
            data: prediction,
        },
    ];
    if let Some((p, classes)) = proba {
        for (k, class) in classes.iter().enumerate() {
            columns.push(crate::table::Column {
                name: format!("proba_{class}"),
                data: ColumnData::Numeric(
                    p.iter().map(|r| r.get(k).copied().unwrap_or(0.0)).collect(),
                ),
            });
        }
    }
    let t = Table {
        columns,
        target: None,
        transforms: vec![],
    };
    t.write_arrow(ctx.output("predictions")?)
        .map_err(|e| StageError::caused_by("cannot write the predictions", e))
}

/// Logs and records (as `unknown_categories` in the metrics: rows per
/// `column=value`) the test rows' categories that the model's one-hot
/// steps never saw: they are scored as all zeros, so the metrics of those
/// rows say little about the model.
fn note_unseen(ctx: &RunContext<'_>, m: &Model, t: &Table, metrics: &mut Map<String, Value>) {
    let unseen = crate::transform::unseen_categories(&m.transforms, t);
    if unseen.is_empty() {
        return;
    }
    let mut rec = Map::new();
    for u in &unseen {
        (ctx.log)(&format!(
            "warning: {} test row(s) have `{}` = `{}`, a category unseen in training (scored as all zeros)",
            u.rows, u.column, u.value
        ));
        rec.insert(format!("{}={}", u.column, u.value), json!(u.rows));
    }
    metrics.insert("unknown_categories".into(), Value::Object(rec));
}

/// Test labels that are no class of the model: each is logged as a
/// warning and counted under `unseen_classes`, since such rows are always
/// wrong and leave `log_loss` and ROC AUC undefined (left out of the
/// metrics). `labels` are the model's classes, then the unseen ones.
fn note_unseen_classes(
    ctx: &RunContext<'_>,
    m: &Model,
    truth: &[usize],
    labels: &[String],
    metrics: &mut Map<String, Value>,
) {
    let Some(rec) = unseen_classes(m, truth, labels) else {
        return;
    };
    for (label, n) in &rec {
        (ctx.log)(&format!(
            "warning: {n} test row(s) have class `{label}`, which the model never saw: they count as errors, and log_loss and ROC AUC are left out (undefined)"
        ));
    }
    metrics.insert("unseen_classes".into(), Value::Object(rec));
}

/// Test labels that are no class of the model, with their row counts
/// (`labels` are the model's classes, then the unseen ones); `None` when
/// every label is known.
fn unseen_classes(m: &Model, truth: &[usize], labels: &[String]) -> Option<Map<String, Value>> {
    let known = m.classes.len();
    let mut counts = vec![0usize; labels.len().saturating_sub(known)];
    for &t in truth.iter().filter(|&&t| t >= known) {
        counts[t - known] += 1;
    }
    (!counts.is_empty()).then(|| {
        labels[known..]
            .iter()
            .zip(&counts)
            .map(|(l, n)| (l.clone(), json!(n)))
            .collect()
    })
}

/// Why `metric` is absent from `metrics`, when the metrics tell: a
/// probability metric is undefined when the test rows hold classes the
/// model never saw (`unseen_classes`). Empty otherwise.
pub fn why_absent(metrics: &Map<String, Value>, metric: &str) -> String {
    let probability = matches!(metric, "log_loss" | "roc_auc" | "roc_auc_ovr_macro");
    match metrics.get("unseen_classes").and_then(Value::as_object) {
        Some(u) if probability => format!(
            ": the test rows hold class(es) the model never saw ({}), which leave it undefined",
            u.iter()
                .map(|(k, v)| format!("`{k}`: {v} row(s)"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        _ => String::new(),
    }
}

/// The `predictions` output port of the `evaluate.*` stages.
const PREDICTIONS_OUT: PortSpec = PortSpec::output(
    "predictions",
    "predictions.arrow",
    crate::ports::TABLE,
    "one row per test row: `row` (its index), `truth`, `prediction` and, with class probabilities, `proba_<class>`",
);

fn plot_err(e: String) -> StageError {
    StageError::new(format!("cannot draw a plot: {e}"))
}

/// A tree model's feature importances by feature name (the model's
/// features, after its preprocessing), largest first; `None` for a model
/// without them.
fn importances(m: &Model) -> Option<Value> {
    let imp = m.feature_importances.as_ref()?;
    let mut pairs: Vec<(&String, f64)> = m.features.iter().zip(imp.iter().copied()).collect();
    pairs.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(b.0)));
    Some(Value::Object(
        pairs
            .into_iter()
            .map(|(f, v)| (f.clone(), serde_json::json!(v)))
            .collect(),
    ))
}

/// A linear regression's coefficients by feature name, on the scale of
/// the raw columns: a `scale` step's `(x - offset) · scale` is undone
/// (`coef · scale`, and the intercept takes `- coef · scale · offset`), so
/// that a coefficient is the change of the prediction per unit of its
/// column. With a step that mixes columns (row normalisation, PCA,
/// polynomial terms) they stay in the model's feature space, and
/// `space` says so. `None` for a model that is not linear.
fn coefficients(m: &Model) -> Option<Value> {
    use crate::steps::Transform;
    let crate::model::Fitted::Linear {
        coefficients,
        intercept,
    } = &m.fitted
    else {
        return None;
    };
    let mixing = m.transforms.iter().any(|t| {
        matches!(
            t,
            Transform::Normalize { .. } | Transform::Pca { .. } | Transform::Polynomial { .. }
        )
    });
    let mut coef: Vec<f64> = coefficients.clone();
    let mut b = *intercept;
    if !mixing {
        // Undo the scalings, last first (a column scaled twice).
        for t in m.transforms.iter().rev() {
            let Transform::Scale {
                columns,
                offsets,
                scales,
                ..
            } = t
            else {
                continue;
            };
            for (k, col) in columns.iter().enumerate() {
                let Some(j) = m.features.iter().position(|f| f == col) else {
                    continue;
                };
                let s = scales.get(k).copied().unwrap_or(1.0);
                let o = offsets.get(k).copied().unwrap_or(0.0);
                if s.is_finite() {
                    coef[j] *= s;
                    b -= coef[j] * o;
                }
            }
        }
    }
    let by_name: Map<String, Value> = m
        .features
        .iter()
        .zip(&coef)
        .map(|(f, c)| (f.clone(), json!(c)))
        .collect();
    Some(json!({
        "intercept": b,
        "by_feature": by_name,
        "space": if mixing { "model features" } else { "raw columns" },
    }))
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
            let mut metrics = classification_metrics(&truth, &ids, &labels, proba.as_deref());
            if let Some(u) = unseen_classes(m, &truth, &labels) {
                metrics.insert("unseen_classes".into(), Value::Object(u));
            }
            Ok(metrics)
        }
        (_, Predictions::Values(_)) => {
            Err(StageError::new("the model predicts values, not classes"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coefficients_are_reported_on_the_raw_columns_scale() {
        // y = 2·area + 1, fitted on area standardised as (area - 10) · 0.2:
        // the model's coefficient is 10, its intercept 21.
        let m = Model {
            format: "mlcycle.model".into(),
            schema_version: crate::model::MODEL_SCHEMA_VERSION,
            kind: "train.linear_regression".into(),
            task: Task::Regression,
            inputs: vec![],
            ignored: vec![],
            transforms: vec![crate::steps::Transform::Scale {
                method: "standard".into(),
                columns: vec!["area".into()],
                offsets: vec![10.0],
                scales: vec![0.2],
            }],
            features: vec!["area".into()],
            target: Some("y".into()),
            classes: vec![],
            params: Value::Null,
            lineage: crate::model::Lineage {
                stage: "t".into(),
                data_hash: String::new(),
                rows: 0,
            },
            fitted: crate::model::Fitted::Linear {
                coefficients: vec![10.0],
                intercept: 21.0,
            },
            feature_importances: None,
        };
        let c = coefficients(&m).unwrap();
        assert_eq!(c["space"], "raw columns");
        assert!(
            (c["by_feature"]["area"].as_f64().unwrap() - 2.0).abs() < 1e-12,
            "{c}"
        );
        assert!(
            (c["intercept"].as_f64().unwrap() - 1.0).abs() < 1e-12,
            "{c}"
        );
    }

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

    /// scikit-learn 1.9: `precision_score(["a"]*4, ["a","a","b","b"],
    /// average="macro")` is 0.5 (recall 0.25, F1 1/3) (labels are truth ∪ predicted); it was 1.0
    /// averaged over the classes in the truth alone.
    #[test]
    fn macro_averages_run_over_truth_and_predicted_labels() {
        let labels = vec!["a".to_string(), "b".to_string()];
        let m = classification_metrics(&[0, 0, 0, 0], &[0, 0, 1, 1], &labels, None);
        assert_eq!(m["precision_macro"], json!(0.5));
        assert_eq!(m["recall_macro"], json!(0.25));
        // f1_a = 2·1·0.5/1.5 = 2/3, f1_b = 0
        assert!((m["f1_macro"].as_f64().unwrap() - 1.0 / 3.0).abs() < 1e-12);
        assert_eq!(m["precision_micro"], json!(0.5));
        // A class neither present nor predicted stays out.
        let labels3 = vec!["a".into(), "b".into(), "c".into()];
        let m = classification_metrics(&[0, 1], &[0, 1], &labels3, None);
        assert_eq!(m["precision_macro"], json!(1.0));
    }

    /// scikit-learn's `r2_score([3, 3], [3, 3])` is 1.0 (it was 0).
    #[test]
    fn r2_of_a_perfect_constant_prediction_is_one() {
        assert_eq!(
            regression_metrics(&[3.0, 3.0], &[3.0, 3.0])["r2"],
            json!(1.0)
        );
        assert_eq!(
            regression_metrics(&[3.0, 3.0], &[3.0, 4.0])["r2"],
            json!(0.0)
        );
    }

    /// scikit-learn 1.9: `log_loss([0, 1, 1], [[.9, .1], [.2, .8], [.6,
    /// .4]])` = 0.414931599615397, `roc_auc_score([0, 1, 2, 2],
    /// [[.7,.2,.1],[.2,.5,.3],[.1,.3,.6],[.3,.3,.4]], multi_class="ovr")`
    /// = 1.0 (every class's own column ranks it first).
    #[test]
    fn log_loss_and_one_vs_rest_auc() {
        let p = vec![vec![0.9, 0.1], vec![0.2, 0.8], vec![0.6, 0.4]];
        let l = log_loss(&[0, 1, 1], &p).unwrap();
        let want = -(0.9f64.ln() + 0.8f64.ln() + 0.4f64.ln()) / 3.0;
        assert!((l - want).abs() < 1e-12, "{l}");
        assert!(log_loss(&[2], &[vec![0.5, 0.5]]).is_none());
        let p3 = vec![
            vec![0.7, 0.2, 0.1],
            vec![0.2, 0.5, 0.3],
            vec![0.1, 0.3, 0.6],
            vec![0.3, 0.3, 0.4],
        ];
        assert_eq!(roc_auc_ovr_macro(&[0, 1, 2, 2], &p3), Some(1.0));
        // A class absent from the truth: undefined, as scikit-learn's NaN.
        assert_eq!(roc_auc_ovr_macro(&[0, 1, 1, 0], &p3), None);
        // A test label the model never saw: no log loss, no AUC.
        let labels2: Vec<String> = ["a", "b", "zz"].map(String::from).to_vec();
        let p2 = vec![vec![0.9, 0.1], vec![0.2, 0.8], vec![0.5, 0.5]];
        let m = classification_metrics(&[0, 1, 2], &[0, 1, 1], &labels2, Some(&p2));
        assert!(
            m.get("roc_auc").is_none() && m.get("log_loss").is_none(),
            "{m:?}"
        );
        let labels: Vec<String> = ["a", "b", "c"].map(String::from).to_vec();
        let m = classification_metrics(&[0, 1, 2, 2], &[0, 1, 2, 2], &labels, Some(&p3));
        assert_eq!(m["roc_auc_ovr_macro"], json!(1.0));
        assert!(m.get("roc_auc").is_none());
    }

    #[test]
    fn errors_and_log_loss_are_lower_is_better() {
        for m in ["mse", "rmse", "mae", "log_loss"] {
            assert!(lower_is_better(m), "{m}");
        }
        assert!(!lower_is_better("r2") && !lower_is_better("roc_auc"));
    }

    #[test]
    fn a_tie_keeps_the_reference() {
        assert!(!passes_gate(0.0, 0.0));
        assert!(passes_gate(1e-12, 0.0));
        assert!(passes_gate(0.0, -0.01));
        assert!(!passes_gate(-0.02, -0.01));
        assert!(passes_gate(0.01, 0.01));
        assert!(!passes_gate(f64::NAN, 0.0));
    }

    #[test]
    fn roc_auc_by_ranks() {
        assert_eq!(roc_auc(&[0, 0, 1, 1], &[0.1, 0.4, 0.35, 0.8]), 0.75);
        assert_eq!(roc_auc(&[0, 1], &[0.5, 0.5]), 0.5);
    }
}
