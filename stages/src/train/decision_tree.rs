//! `train.decision_tree`: a reproducible classification tree ([`crate::algo::cart`]).

use mlcycle_pipeline::{
    InferContext, Inferred, ParamDoc, ParamError, RunContext, StageError, StageKind, StageSpec,
};
use serde::{Deserialize, Serialize};

use super::{
    classes, gini, one_usize, seed, train, two, TrainData, CRITERION_DOC, MIN_SAMPLES_LEAF_DOC,
    MIN_SAMPLES_SPLIT_DOC, MODEL_OUT, SEED_DOC, TRAIN_IN,
};
use crate::algo::cart::{Criterion, Tree, TreeParams};
use crate::model::{Fitted, Task};

/// `train.decision_tree`'s params (`with:`).
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TreeStageParams {
    #[serde(default)]
    max_depth: Option<usize>,
    #[serde(default = "two")]
    min_samples_split: usize,
    #[serde(default = "one_usize")]
    min_samples_leaf: usize,
    #[serde(default = "gini")]
    criterion: Criterion,
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
        summary: "A classification tree (CART), reproducible",
        version: 2,
        inputs: TRAIN_IN,
        outputs: MODEL_OUT,
        params: &[
            crate::TARGET_PARAM_DOC,
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
        if p.max_depth == Some(0) {
            return Err(ParamError::new(
                &["max_depth"],
                "`max_depth` must be at least 1",
            ));
        }
        if p.min_samples_split < 2 {
            return Err(ParamError::new(
                &["min_samples_split"],
                "`min_samples_split` must be at least 2",
            ));
        }
        Ok(())
    }
    fn infer(p: &TreeStageParams, cx: &InferContext<'_>) -> Inferred {
        let cx = &crate::shape::retargeted(cx, "train", p.target.as_deref());
        crate::shape::trainer(cx, Self::SPEC.kind, Task::Classification)
    }
    fn run(p: &TreeStageParams, ctx: &RunContext<'_>) -> Result<(), StageError> {
        train(Self::SPEC.kind, Task::Classification, p, ctx, |d| {
            fit_tree(p, d)
        })
    }
}

fn fit_tree(p: &TreeStageParams, d: &TrainData<'_>) -> Result<Fitted, StageError> {
    let (ids, names) = classes(d);
    let tp = TreeParams {
        max_depth: p.max_depth,
        min_samples_split: p.min_samples_split,
        min_samples_leaf: p.min_samples_leaf,
        criterion: p.criterion,
        max_features: None,
        seed: p.seed,
    };
    let tree = Tree::fit(&d.x, ids, names.len(), (0..d.x.nrows()).collect(), &tp);
    (d.ctx.log)(&format!("{} nodes, {} leaves", tree.len(), tree.leaves()));
    Ok(Fitted::Tree { tree })
}
