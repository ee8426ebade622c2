//! `train.decision_tree`: a reproducible classification or regression tree
//! ([`crate::algo::cart`]).

use mlcycle_pipeline::{
    InferContext, Inferred, ParamDoc, ParamError, RunContext, StageError, StageKind, StageSpec,
};
use serde::{Deserialize, Serialize};

use super::{
    one_usize, seed, train, tree_labels, two, TaskParam, TrainData, Trained, CRITERION_DOC,
    MIN_SAMPLES_LEAF_DOC, MIN_SAMPLES_SPLIT_DOC, MODEL_OUT, SEED_DOC, TASK_DOC, TRAIN_IN,
};
use crate::algo::cart::{Criterion, Tree, TreeParams};
use crate::model::Fitted;

/// `train.decision_tree`'s params (`with:`).
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TreeStageParams {
    #[serde(default)]
    task: TaskParam,
    #[serde(default)]
    max_depth: Option<usize>,
    #[serde(default = "two")]
    min_samples_split: usize,
    #[serde(default = "one_usize")]
    min_samples_leaf: usize,
    #[serde(default)]
    criterion: Option<Criterion>,
    #[serde(default = "seed")]
    seed: u64,
    /// The target column of a table that names none (one a script wrote);
    /// when the table names one, this one replaces it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) target: Option<String>,
}

/// `train.decision_tree`.
#[derive(Debug)]
pub struct DecisionTree;

impl StageKind for DecisionTree {
    type Params = TreeStageParams;
    const SPEC: StageSpec = StageSpec {
        kind: "train.decision_tree",
        summary:
            "A classification or regression tree (CART), reproducible, with feature importances",
        version: 4,
        inputs: TRAIN_IN,
        outputs: MODEL_OUT,
        params: &[
            crate::TARGET_PARAM_DOC,
            TASK_DOC,
            ParamDoc::new(
                "max_depth",
                "integer",
                "deepest level; unlimited when absent",
            )
            .unset("unlimited"),
            MIN_SAMPLES_SPLIT_DOC,
            MIN_SAMPLES_LEAF_DOC,
            CRITERION_DOC,
            SEED_DOC,
        ],
    };
    fn check(p: &mut TreeStageParams) -> Result<(), ParamError> {
        super::check_tree_limits(p.max_depth, p.min_samples_split, p.min_samples_leaf)
    }
    fn infer(p: &TreeStageParams, cx: &InferContext<'_>) -> Inferred {
        let cx = &crate::shape::retargeted(cx, "train", p.target.as_deref());
        crate::shape::trainer_with_task(cx, Self::SPEC.kind, p.task.inferred())
    }
    fn run(p: &TreeStageParams, ctx: &RunContext<'_>) -> Result<(), StageError> {
        train(Self::SPEC.kind, p.task, p, ctx, |d| fit_tree(p, d))
    }
}

fn fit_tree(p: &TreeStageParams, d: &TrainData<'_>) -> Result<Trained, StageError> {
    let (labels, criterion) = tree_labels(d, p.criterion, DecisionTree::SPEC.kind)?;
    let tp = TreeParams {
        max_depth: p.max_depth,
        min_samples_split: p.min_samples_split,
        min_samples_leaf: p.min_samples_leaf,
        criterion,
        max_features: None,
        seed: p.seed,
    };
    let (tree, importances) =
        Tree::fit_with_importances(&d.x, labels, (0..d.x.nrows()).collect(), &tp);
    (d.ctx.log)(&format!("{} nodes, {} leaves", tree.len(), tree.leaves()));
    Ok(Trained {
        fitted: Fitted::Tree { tree },
        importances: Some(importances),
        resolved: vec![("criterion", serde_json::json!(criterion))],
    })
}
