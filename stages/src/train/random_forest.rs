//! `train.random_forest`: bagged CART trees ([`crate::algo::cart`]) trained in parallel.

use mlcycle_pipeline::{ParamError, StageError};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{classes, gini, hundred, one_usize, params, seed, two, yes, TrainData, Validate};
use crate::algo::cart::{fit_forest, Criterion, Tree, TreeParams};
use crate::model::Fitted;

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ForestParams {
    #[serde(default = "hundred")]
    trees: usize,
    #[serde(default)]
    max_depth: Option<usize>,
    #[serde(default = "two")]
    min_samples_split: usize,
    #[serde(default = "one_usize")]
    min_samples_leaf: usize,
    /// `sqrt`, `all`, or a number of features.
    #[serde(default = "sqrt")]
    max_features: Value,
    #[serde(default = "yes")]
    bootstrap: bool,
    #[serde(default = "gini")]
    criterion: Criterion,
    #[serde(default = "seed")]
    seed: u64,
}
fn sqrt() -> Value {
    Value::String("sqrt".into())
}
impl Validate for ForestParams {
    fn validate(&self) -> Result<(), ParamError> {
        if self.trees == 0 {
            return Err(ParamError::new(&["trees"], "`trees` must be at least 1"));
        }
        match &self.max_features {
            Value::String(s) if s == "sqrt" || s == "all" => Ok(()),
            Value::Number(n) if n.as_u64().is_some_and(|n| n > 0) => Ok(()),
            other => Err(ParamError::new(
                &["max_features"],
                format!("`max_features` must be `sqrt`, `all` or a positive integer, got {other}"),
            )),
        }
    }
}

pub(super) fn fit_random_forest(p: &Value, d: &TrainData<'_>) -> Result<Fitted, StageError> {
    let p: ForestParams = params(p);
    let (ids, names) = classes(d);
    let nf = d.x.ncols();
    let max_features = match &p.max_features {
        Value::String(s) if s == "sqrt" => ((nf as f64).sqrt().round() as usize).max(1),
        Value::Number(n) => (n.as_u64().unwrap_or(1) as usize).min(nf),
        _ => nf,
    };
    let tp = TreeParams {
        max_depth: p.max_depth,
        min_samples_split: p.min_samples_split,
        min_samples_leaf: p.min_samples_leaf,
        criterion: p.criterion,
        max_features: Some(max_features),
        seed: p.seed,
    };
    let trees = fit_forest(&d.x, ids, names.len(), p.trees, p.bootstrap, &tp);
    let nodes: usize = trees.iter().map(Tree::len).sum();
    (d.ctx.log)(&format!(
        "{} trees, {nodes} nodes, {max_features} of {nf} features per split",
        trees.len()
    ));
    Ok(Fitted::Forest { trees })
}
