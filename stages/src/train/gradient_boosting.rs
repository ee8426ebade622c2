//! `train.gradient_boosting`: histogram gradient-boosted trees
//! ([`crate::algo::gbm`]) for regression and classification, with its loss
//! curve. Unlike the other trainers it takes missing feature values (NaN,
//! empty cells) and learns which way each split sends them, as
//! scikit-learn's HistGradientBoosting does; its models score such rows in
//! `evaluate.*`, `predict` and `serve`.

use mlcycle_pipeline::{
    InferContext, Inferred, ParamDoc, ParamError, RunContext, StageError, StageKind, StageSpec,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{
    positive, seed, train_with, Missing, Target, TaskParam, TrainData, Trained, SEED_DOC, TASK_DOC,
};
use crate::algo::gbm::{self, GbmParams};
use crate::model::Fitted;
use crate::table::short;

/// `train.gradient_boosting`'s params (`with:`): scikit-learn's
/// `HistGradientBoosting*` names and defaults.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BoostingParams {
    #[serde(default)]
    task: TaskParam,
    #[serde(default = "lr")]
    learning_rate: f64,
    #[serde(default = "hundred")]
    max_iter: usize,
    #[serde(default = "leaves")]
    max_leaf_nodes: Option<usize>,
    #[serde(default)]
    max_depth: Option<usize>,
    #[serde(default = "twenty")]
    min_samples_leaf: usize,
    #[serde(default)]
    l2_regularization: f64,
    #[serde(default = "bins")]
    max_bins: usize,
    #[serde(default = "one")]
    subsample: f64,
    /// `auto`, `true` or `false`.
    #[serde(default = "auto")]
    early_stopping: Value,
    #[serde(default = "tenth")]
    validation_fraction: f64,
    #[serde(default = "ten")]
    n_iter_no_change: usize,
    #[serde(default = "tol")]
    tol: f64,
    #[serde(default = "ten")]
    log_every: usize,
    #[serde(default = "seed")]
    seed: u64,
    /// The target column of a table that names none (one a script wrote);
    /// when the table names one, this one replaces it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) target: Option<String>,
}
fn lr() -> f64 {
    0.1
}
fn hundred() -> usize {
    100
}
fn leaves() -> Option<usize> {
    Some(31)
}
fn twenty() -> usize {
    20
}
fn bins() -> usize {
    255
}
fn one() -> f64 {
    1.0
}
fn auto() -> Value {
    Value::String("auto".into())
}
fn tenth() -> f64 {
    0.1
}
fn ten() -> usize {
    10
}
fn tol() -> f64 {
    1e-7
}

/// Rows above which `early_stopping: auto` holds rows out (scikit-learn's).
const AUTO_EARLY_STOPPING_ROWS: usize = 10_000;

/// `train.gradient_boosting`.
#[derive(Debug)]
pub struct GradientBoosting;

const OUTPUTS: &[mlcycle_pipeline::PortSpec] = &[
    mlcycle_pipeline::PortSpec::output(
        "model",
        "model.json",
        crate::ports::MODEL,
        "the fitted model with its input schema and preprocessing (`model.json`)",
    ),
    mlcycle_pipeline::PortSpec::output(
        "loss",
        "loss",
        crate::ports::PLOT,
        "the loss per iteration on the training rows and the held-out ones: `loss.csv`, `loss.svg`, `loss.png`",
    ),
];

impl StageKind for GradientBoosting {
    type Params = BoostingParams;
    const SPEC: StageSpec = StageSpec {
        kind: "train.gradient_boosting",
        summary: "Gradient-boosted trees on binned features (scikit-learn's HistGradientBoosting), regression or classification; learns where missing values go; reproducible",
        version: 2,
        inputs: super::TRAIN_IN,
        outputs: OUTPUTS,
        params: &[
            crate::TARGET_PARAM_DOC,
            TASK_DOC,
            ParamDoc::new("learning_rate", "number", "shrinkage: each tree's leaves are scaled by it"),
            ParamDoc::new("max_iter", "integer", "boosting iterations: trees (one per class for three or more classes)"),
            ParamDoc::new("max_leaf_nodes", "integer or null", "leaves per tree, grown best first; `null`: no limit"),
            ParamDoc::new("max_depth", "integer", "deepest level of each tree").unset("unlimited"),
            ParamDoc::new("min_samples_leaf", "integer", "rows each leaf keeps at least"),
            ParamDoc::new("l2_regularization", "number", "L2 penalty on leaf values"),
            ParamDoc::new("max_bins", "integer", "bins per feature (2 to 255), cut at quantiles"),
            ParamDoc::new("subsample", "number", "share of the training rows each iteration's trees see (stochastic boosting); 1 = all"),
            ParamDoc::new("early_stopping", "`auto` | bool", "hold out `validation_fraction` of the rows and stop when their loss stalls; `auto`: above 10 000 rows"),
            ParamDoc::new("validation_fraction", "number", "share of rows held out for early stopping"),
            ParamDoc::new("n_iter_no_change", "integer", "iterations without improvement before stopping"),
            ParamDoc::new("tol", "number", "improvement of the held-out loss that counts"),
            ParamDoc::new("log_every", "integer", "log the loss every this many iterations"),
            SEED_DOC,
        ],
    };
    fn check(p: &mut BoostingParams) -> Result<(), ParamError> {
        positive("learning_rate", p.learning_rate)?;
        if p.max_iter == 0 {
            return Err(ParamError::new(
                &["max_iter"],
                "`max_iter` must be at least 1",
            ));
        }
        if p.max_leaf_nodes.is_some_and(|n| n < 2) {
            return Err(ParamError::new(
                &["max_leaf_nodes"],
                "`max_leaf_nodes` must be at least 2, or null",
            ));
        }
        if p.max_depth == Some(0) {
            return Err(ParamError::new(
                &["max_depth"],
                "`max_depth` must be at least 1",
            ));
        }
        if p.min_samples_leaf == 0 {
            return Err(ParamError::new(
                &["min_samples_leaf"],
                "`min_samples_leaf` must be at least 1",
            ));
        }
        if !(p.l2_regularization >= 0.0 && p.l2_regularization.is_finite()) {
            return Err(ParamError::new(
                &["l2_regularization"],
                "`l2_regularization` must be ≥ 0",
            ));
        }
        if !(2..=255).contains(&p.max_bins) {
            return Err(ParamError::new(
                &["max_bins"],
                format!("`max_bins` must be between 2 and 255, got {}", p.max_bins),
            ));
        }
        if !(p.subsample > 0.0 && p.subsample <= 1.0) {
            return Err(ParamError::new(
                &["subsample"],
                format!("`subsample` must be in (0, 1], got {}", p.subsample),
            ));
        }
        super::fraction("validation_fraction", p.validation_fraction)?;
        if p.n_iter_no_change == 0 {
            return Err(ParamError::new(
                &["n_iter_no_change"],
                "`n_iter_no_change` must be at least 1",
            ));
        }
        if !(p.tol >= 0.0 && p.tol.is_finite()) {
            return Err(ParamError::new(&["tol"], "`tol` must be ≥ 0"));
        }
        match &p.early_stopping {
            Value::Bool(_) => Ok(()),
            Value::String(s) if s == "auto" => Ok(()),
            other => Err(ParamError::new(
                &["early_stopping"],
                format!("`early_stopping` must be `auto`, true or false, got {other}"),
            )),
        }
    }
    fn infer(p: &BoostingParams, cx: &InferContext<'_>) -> Inferred {
        let cx = &crate::shape::retargeted(cx, "train", p.target.as_deref());
        crate::shape::trainer_with_task(cx, Self::SPEC.kind, p.task.inferred())
    }
    fn run(p: &BoostingParams, ctx: &RunContext<'_>) -> Result<(), StageError> {
        train_with(Self::SPEC.kind, p.task, p, ctx, Missing::Learn, |d| {
            fit_boosting(p, d)
        })
    }
}

fn fit_boosting(p: &BoostingParams, d: &TrainData<'_>) -> Result<Trained, StageError> {
    let n = d.x.nrows();
    let early = match &p.early_stopping {
        Value::Bool(b) => *b,
        _ => n > AUTO_EARLY_STOPPING_ROWS,
    };
    if early && n < 4 {
        return Err(StageError::new(format!(
            "early stopping holds out rows, and the training table has only {n}"
        ))
        .with_help("set `early_stopping: false`, or train on more rows"));
    }
    let gp = GbmParams {
        learning_rate: p.learning_rate,
        max_iter: p.max_iter,
        max_leaf_nodes: p.max_leaf_nodes,
        max_depth: p.max_depth,
        min_samples_leaf: p.min_samples_leaf,
        l2_regularization: p.l2_regularization,
        max_bins: p.max_bins,
        subsample: p.subsample,
        early_stopping: early,
        validation_fraction: p.validation_fraction,
        n_iter_no_change: p.n_iter_no_change,
        tol: p.tol,
        seed: p.seed,
    };
    let (target, loss_name) = match &d.target {
        Target::Values(v) => (
            gbm::Target::Values(v.as_slice().expect("contiguous")),
            "half squared error",
        ),
        Target::Classes { ids, names } => (
            gbm::Target::Classes {
                y: ids,
                k: names.len(),
            },
            "log loss",
        ),
        Target::None => unreachable!("boosting is supervised"),
    };
    if early {
        (d.ctx.log)(&format!(
            "early stopping: {} of the rows held out, patience {} iterations",
            short(p.validation_fraction),
            p.n_iter_no_change
        ));
    }
    let every = p.log_every.max(1);
    let fit = gbm::fit(&d.x, target, &gp, |s| {
        if d.ctx.check_interrupted().is_err() {
            return false;
        }
        if s.iteration % every == 0 || s.iteration == 1 {
            (d.ctx.log)(&format!(
                "iteration {:>4}/{}: {loss_name} {}{}",
                s.iteration,
                p.max_iter,
                short(s.train),
                s.validation
                    .map(|v| format!(", held out {}", short(v)))
                    .unwrap_or_default()
            ));
        }
        true
    })
    .map_err(|e| match e {
        gbm::Stopped::Diverged { iteration } => StageError::new(format!(
            "boosting diverged at iteration {iteration}: the training loss is not finite or grew to ten times the constant model's"
        ))
        .with_help("lower `learning_rate` (0.1 is the usual start)"),
        gbm::Stopped::Interrupted => StageError::new("stopped: the run was interrupted"),
    })?;
    if let Some(at) = fit.stopped_at {
        (d.ctx.log)(&format!(
            "stopped at iteration {at}: the held-out loss did not improve for {} iterations",
            p.n_iter_no_change
        ));
    }
    let leaves: usize = fit.booster.trees.iter().map(|t| t.leaves()).sum();
    (d.ctx.log)(&format!(
        "{} trees, {leaves} leaves",
        fit.booster.trees.len()
    ));
    let curve: Vec<(usize, f64, Option<f64>)> = fit
        .curve
        .iter()
        .map(|s| (s.iteration, s.train, s.validation))
        .collect();
    super::write_loss_curve(d.ctx, "iteration", loss_name, &curve)?;
    Ok(Trained {
        fitted: Fitted::Boosting {
            booster: fit.booster,
        },
        importances: Some(fit.importances),
        resolved: vec![("early_stopping", Value::Bool(early))],
    })
}
