//! `evaluate.classification`: classification metrics and plots on held-out rows.

use mlcycle_pipeline::{
    InferContext, Inferred, PortSpec, RunContext, StageError, StageKind, StageSpec,
};
use serde_json::Value;

use super::{
    classification_metrics, load, model_info, plot_err, score, truth_classes, write_metrics,
    EVAL_IN,
};
use crate::model::{Predictions, Task};
use crate::table::short;
use crate::util::NoParams;

const CLS_OUT: &[PortSpec] = &[
    PortSpec::output(
        "metrics",
        "metrics.json",
        crate::ports::METRICS,
        "`accuracy`, precision / recall / F1 (macro, micro and weighted), per class, confusion matrix, `log_loss` and `roc_auc` (binary) or `roc_auc_ovr_macro` with probabilities; a tree model's `feature_importances`; `unseen_classes`: test labels the model never saw, by rows",
    ),
    PortSpec::output(
        "plots",
        "plots",
        crate::ports::PLOT,
        "`confusion` heat map and, for binary models with scores, `roc` (SVG and PNG)",
    ),
    super::PREDICTIONS_OUT,
];

/// `evaluate.classification`.
#[derive(Debug)]
pub struct Classification;

impl StageKind for Classification {
    type Params = NoParams;
    const SPEC: StageSpec = StageSpec {
        kind: "evaluate.classification",
        summary: "Score a classifier on held-out rows: accuracy, precision, recall, F1, confusion matrix, ROC AUC",
        version: 4,
        inputs: EVAL_IN,
        outputs: CLS_OUT,
        params: &[],
    };
    fn infer(_: &NoParams, cx: &InferContext<'_>) -> Inferred {
        crate::shape::scored_rows(cx, "test")
    }
    fn run(_: &NoParams, ctx: &RunContext<'_>) -> Result<(), StageError> {
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
        let names = |v: &[usize]| {
            crate::table::ColumnData::Categorical(
                v.iter().map(|&i| labels.get(i).cloned()).collect(),
            )
        };
        super::write_predictions(
            ctx,
            names(&truth),
            names(&ids),
            proba.as_deref().map(|p| (p, &m.classes[..])),
        )?;
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
        if let Some(imp) = super::importances(&m) {
            metrics.insert("feature_importances".into(), imp);
        }
        super::note_unseen(ctx, &m, &test, &mut metrics);
        super::note_unseen_classes(ctx, &m, &truth, &labels, &mut metrics);
        write_metrics(ctx, &metrics)?;
        let dir = ctx.output("plots")?;
        crate::plot::heatmap(dir, "confusion", "Confusion matrix", &labels, &cm)
            .map_err(plot_err)?;
        if let (2, Some(p)) = (labels.len(), &proba) {
            let scores: Vec<f64> = p.iter().map(|r| r[1]).collect();
            let curve = roc_points(&truth, &scores);
            let title = match metrics.get("roc_auc").and_then(Value::as_f64) {
                Some(auc) => format!(
                    "ROC curve, positive class `{}` (AUC {})",
                    labels[1],
                    short(auc)
                ),
                None => format!("ROC curve, positive class `{}`", labels[1]),
            };
            crate::plot::curve(
                dir,
                "roc",
                &title,
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
