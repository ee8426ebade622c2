//! `train.elastic_net`: linear regression with L1 and L2 penalties (linfa-elasticnet).

use linfa::traits::Fit;
use mlcycle_pipeline::{
    InferContext, Inferred, ParamDoc, ParamError, RunContext, StageError, StageKind, StageSpec,
};
use serde::{Deserialize, Serialize};

use super::{fit_error, one, positive, train, values, TrainData, MODEL_OUT, TRAIN_IN};
use crate::model::{Fitted, Task};

/// `train.elastic_net`'s params (`with:`).
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ElasticNetParams {
    #[serde(default = "one")]
    alpha: f64,
    #[serde(default = "half")]
    l1_ratio: f64,
    #[serde(default = "thousand")]
    max_iterations: u32,
    #[serde(default = "tol")]
    tolerance: f64,
    /// The target column of a table that names none (one a script wrote);
    /// when the table names one, this one replaces it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) target: Option<String>,
}
fn half() -> f64 {
    0.5
}
fn thousand() -> u32 {
    1000
}
fn tol() -> f64 {
    1e-4
}

/// `train.elastic_net`.
#[derive(Debug)]
pub struct ElasticNet;

impl StageKind for ElasticNet {
    type Params = ElasticNetParams;
    const SPEC: StageSpec = StageSpec {
        kind: "train.elastic_net",
        summary: "Linear regression with L1 and L2 penalties; ridge and lasso are its special cases (linfa-elasticnet)",
        version: 1,
        inputs: TRAIN_IN,
        outputs: MODEL_OUT,
        params: &[
            crate::TARGET_PARAM_DOC,
            ParamDoc::new("alpha", "number", "overall penalty strength"),
            ParamDoc::new("l1_ratio", "number", "share of L1 in the penalty: 0 is ridge, 1 is lasso"),
            ParamDoc::new("max_iterations", "integer", "coordinate-descent iterations at most"),
            ParamDoc::new("tolerance", "number", "stop when the update is smaller"),
        ],
    };
    fn check(p: &mut ElasticNetParams) -> Result<(), ParamError> {
        if !(p.alpha >= 0.0 && p.alpha.is_finite()) {
            return Err(ParamError::new(&["alpha"], "`alpha` must be ≥ 0"));
        }
        if !(0.0..=1.0).contains(&p.l1_ratio) {
            return Err(ParamError::new(
                &["l1_ratio"],
                format!("`l1_ratio` must be in [0, 1], got {}", p.l1_ratio),
            )
            .with_help("0 is ridge (L2 only), 1 is lasso (L1 only)"));
        }
        positive("tolerance", p.tolerance)
    }
    fn infer(p: &ElasticNetParams, cx: &InferContext<'_>) -> Inferred {
        let cx = &crate::shape::retargeted(cx, "train", p.target.as_deref());
        crate::shape::trainer(cx, Self::SPEC.kind, Task::Regression)
    }
    fn run(p: &ElasticNetParams, ctx: &RunContext<'_>) -> Result<(), StageError> {
        train(Self::SPEC.kind, Task::Regression, p, ctx, |d| {
            fit_elastic_net(p, d)
        })
    }
}

fn fit_elastic_net(p: &ElasticNetParams, d: &TrainData<'_>) -> Result<Fitted, StageError> {
    let ds = linfa::DatasetBase::new(d.x.view(), values(d).view());
    let m = linfa_elasticnet::ElasticNet::params()
        .penalty(p.alpha)
        .l1_ratio(p.l1_ratio)
        .max_iterations(p.max_iterations)
        .tolerance(p.tolerance)
        .fit(&ds)
        .map_err(|e| fit_error("elastic net", e))?;
    Ok(Fitted::Linear {
        coefficients: m.hyperplane().to_vec(),
        intercept: m.intercept(),
    })
}
