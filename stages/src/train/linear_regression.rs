//! `train.linear_regression`: ordinary least squares, by Cholesky
//! ([`crate::algo::ols`]) or linfa-linear's QR for collinear features.

use linfa::traits::Fit;
use linfa::Dataset;
use mlcycle_pipeline::StageError;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{fit_error, params, values, yes, TrainData, Validate};
use crate::model::Fitted;

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct OlsParams {
    #[serde(default = "yes")]
    fit_intercept: bool,
}
impl Validate for OlsParams {}

pub(super) fn fit_ols(p: &Value, d: &TrainData<'_>) -> Result<Fitted, StageError> {
    let p: OlsParams = params(p);
    if let Some((coefficients, intercept)) =
        crate::algo::ols::normal_equations(&d.x, values(d), p.fit_intercept)
    {
        return Ok(Fitted::Linear {
            coefficients,
            intercept,
        });
    }
    (d.ctx.log)("features are (nearly) collinear: solving by QR least squares instead");
    let ds = Dataset::new(d.x.clone(), values(d).clone());
    let m = linfa_linear::LinearRegression::new()
        .with_intercept(p.fit_intercept)
        .fit(&ds)
        .map_err(|e| {
            fit_error("OLS", e).with_help(
                "the features may be collinear or fewer than the rows; try `train.elastic_net`",
            )
        })?;
    Ok(Fitted::Linear {
        coefficients: m.params().to_vec(),
        intercept: m.intercept(),
    })
}
