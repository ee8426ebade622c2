//! `train.decision_tree`: a reproducible classification tree ([`crate::algo::cart`]).

use mlcycle_pipeline::{ParamError, StageError};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{classes, gini, one_usize, params, seed, two, TrainData, Validate};
use crate::algo::cart::{Criterion, Tree, TreeParams};
use crate::model::Fitted;

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct TreeStageParams {
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
}
impl Validate for TreeStageParams {
    fn validate(&self) -> Result<(), ParamError> {
        if self.max_depth == Some(0) {
            return Err(ParamError::new(
                &["max_depth"],
                "`max_depth` must be at least 1",
            ));
        }
        if self.min_samples_split < 2 {
            return Err(ParamError::new(
                &["min_samples_split"],
                "`min_samples_split` must be at least 2",
            ));
        }
        Ok(())
    }
}

pub(super) fn fit_tree(p: &Value, d: &TrainData<'_>) -> Result<Fitted, StageError> {
    let p: TreeStageParams = params(p);
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
