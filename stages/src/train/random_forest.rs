//! `train.random_forest`: bagged CART trees ([`crate::algo::cart`]) trained in parallel.

use mlcycle_pipeline::{
    InferContext, Inferred, ParamDoc, ParamError, RunContext, StageError, StageKind, StageSpec,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{
    hundred, one_usize, seed, train, tree_labels, two, yes, TaskParam, TrainData, Trained,
    CRITERION_DOC, MIN_SAMPLES_LEAF_DOC, MIN_SAMPLES_SPLIT_DOC, MODEL_OUT, SEED_DOC, TASK_DOC,
    TRAIN_IN,
};
use crate::algo::cart::{fit_forest, Criterion, Tree, TreeParams};
use crate::model::Fitted;

/// `train.random_forest`'s params (`with:`).
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForestParams {
    #[serde(default)]
    task: TaskParam,
    #[serde(default = "hundred")]
    trees: usize,
    #[serde(default)]
    max_depth: Option<usize>,
    #[serde(default = "two")]
    min_samples_split: usize,
    #[serde(default = "one_usize")]
    min_samples_leaf: usize,
    /// `sqrt`, `all`, or a number of features; absent: `sqrt` for classes,
    /// `all` for a regression (scikit-learn's defaults).
    #[serde(default)]
    max_features: Option<Value>,
    #[serde(default = "yes")]
    bootstrap: bool,
    #[serde(default)]
    criterion: Option<Criterion>,
    #[serde(default = "seed")]
    seed: u64,
    /// The target column of a table that names none (one a script wrote);
    /// when the table names one, this one replaces it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) target: Option<String>,
}

/// `train.random_forest`.
#[derive(Debug)]
pub struct RandomForest;

impl StageKind for RandomForest {
    type Params = ForestParams;
    const SPEC: StageSpec = StageSpec {
        kind: "train.random_forest",
        summary: "A random forest of classification or regression trees: bagged trees on random feature subsets, trained in parallel",
        version: 4,
        inputs: TRAIN_IN,
        outputs: MODEL_OUT,
        params: &[
            crate::TARGET_PARAM_DOC,
            TASK_DOC,
            ParamDoc::new("trees", "integer", "number of trees"),
            ParamDoc::new("max_depth", "integer", "deepest level of each tree").unset("unlimited"),
            MIN_SAMPLES_SPLIT_DOC,
            MIN_SAMPLES_LEAF_DOC,
            ParamDoc::new(
                "max_features",
                "`sqrt` | `all` | integer",
                "features tried per split",
            )
            .unset("`sqrt` for classes, `all` for a regression"),
            ParamDoc::new("bootstrap", "bool", "train each tree on a bootstrap sample"),
            CRITERION_DOC,
            SEED_DOC,
        ],
    };
    fn check(p: &mut ForestParams) -> Result<(), ParamError> {
        if p.trees == 0 {
            return Err(ParamError::new(&["trees"], "`trees` must be at least 1"));
        }
        super::check_tree_limits(p.max_depth, p.min_samples_split, p.min_samples_leaf)?;
        match &p.max_features {
            None => Ok(()),
            Some(Value::String(s)) if s == "sqrt" || s == "all" => Ok(()),
            Some(Value::Number(n)) if n.as_u64().is_some_and(|n| n > 0) => Ok(()),
            Some(other) => Err(ParamError::new(
                &["max_features"],
                format!("`max_features` must be `sqrt`, `all` or a positive integer, got {other}"),
            )),
        }
    }
    fn infer(p: &ForestParams, cx: &InferContext<'_>) -> Inferred {
        let cx = &crate::shape::retargeted(cx, "train", p.target.as_deref());
        crate::shape::trainer_with_task(cx, Self::SPEC.kind, p.task.inferred())
    }
    fn run(p: &ForestParams, ctx: &RunContext<'_>) -> Result<(), StageError> {
        train(Self::SPEC.kind, p.task, p, ctx, |d| fit_random_forest(p, d))
    }
}

fn fit_random_forest(p: &ForestParams, d: &TrainData<'_>) -> Result<Trained, StageError> {
    let (labels, criterion) = tree_labels(d, p.criterion, RandomForest::SPEC.kind)?;
    let nf = d.x.ncols();
    let regression = criterion == Criterion::SquaredError;
    let max_features = match &p.max_features {
        // scikit-learn: `max(1, int(sqrt(n_features)))`, floored.
        Some(Value::String(s)) if s == "sqrt" => ((nf as f64).sqrt().floor() as usize).max(1),
        None if !regression => ((nf as f64).sqrt().floor() as usize).max(1),
        Some(Value::Number(n)) => (n.as_u64().unwrap_or(1) as usize).min(nf),
        _ => nf,
    };
    let tp = TreeParams {
        max_depth: p.max_depth,
        min_samples_split: p.min_samples_split,
        min_samples_leaf: p.min_samples_leaf,
        criterion,
        max_features: Some(max_features),
        seed: p.seed,
    };
    let stop = || d.ctx.check_interrupted().is_err();
    let (trees, importances) = fit_forest(&d.x, labels, p.trees, p.bootstrap, &tp, &stop)
        .ok_or_else(|| StageError::new("stopped: the run was interrupted"))?;
    let nodes: usize = trees.iter().map(Tree::len).sum();
    (d.ctx.log)(&format!(
        "{} trees, {nodes} nodes, {max_features} of {nf} features per split",
        trees.len()
    ));
    Ok(Trained {
        fitted: Fitted::Forest { trees },
        importances: Some(importances),
        resolved: vec![
            ("criterion", serde_json::json!(criterion)),
            ("max_features", serde_json::json!(max_features)),
        ],
    })
}
