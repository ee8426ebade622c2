//! `train.elastic_net`: linear regression with L1 and L2 penalties (linfa-elasticnet).

use linfa::traits::Fit;
use linfa::Dataset;
use mlcycle_pipeline::{ParamError, StageError};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{fit_error, one, params, positive, values, TrainData, Validate};
use crate::model::Fitted;

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ElasticNetParams {
    #[serde(default = "one")]
    alpha: f64,
    #[serde(default = "half")]
    l1_ratio: f64,
    #[serde(default = "thousand")]
    max_iterations: u32,
    #[serde(default = "tol")]
    tolerance: f64,
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
impl Validate for ElasticNetParams {
    fn validate(&self) -> Result<(), ParamError> {
        if !(self.alpha >= 0.0 && self.alpha.is_finite()) {
            return Err(ParamError::new(&["alpha"], "`alpha` must be ≥ 0"));
        }
        if !(0.0..=1.0).contains(&self.l1_ratio) {
            return Err(ParamError::new(
                &["l1_ratio"],
                format!("`l1_ratio` must be in [0, 1], got {}", self.l1_ratio),
            )
            .with_help("0 is ridge (L2 only), 1 is lasso (L1 only)"));
        }
        positive("tolerance", self.tolerance)
    }
}

pub(super) fn fit_elastic_net(p: &Value, d: &TrainData<'_>) -> Result<Fitted, StageError> {
    let p: ElasticNetParams = params(p);
    let ds = Dataset::new(d.x.clone(), values(d).clone());
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
