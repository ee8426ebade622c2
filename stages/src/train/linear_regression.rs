//! `train.linear_regression`: ordinary least squares, by Cholesky
//! ([`crate::algo::ols`]) or linfa-linear's QR for collinear features.

use mlcycle_pipeline::{
    InferContext, Inferred, ParamDoc, RunContext, StageError, StageKind, StageSpec,
};
use serde::{Deserialize, Serialize};

use super::{fit_error, train, values, yes, TrainData, MODEL_OUT, TRAIN_IN};
use crate::model::{Fitted, Task};

/// `train.linear_regression`'s params (`with:`).
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OlsParams {
    #[serde(default = "yes")]
    fit_intercept: bool,
    /// The target column of a table that names none (one a script wrote);
    /// when the table names one, this one replaces it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) target: Option<String>,
}

/// `train.linear_regression`.
#[derive(Debug)]
pub struct LinearRegression;

impl StageKind for LinearRegression {
    type Params = OlsParams;
    const SPEC: StageSpec = StageSpec {
        kind: "train.linear_regression",
        summary: "Ordinary least squares linear regression (normal equations by Cholesky; the minimum-norm SVD fit for collinear features)",
        version: 2, // 2: normal equations by Cholesky (was QR)
        inputs: TRAIN_IN,
        outputs: MODEL_OUT,
        params: &[
            crate::TARGET_PARAM_DOC,
            ParamDoc::new("fit_intercept", "bool", "fit an intercept term"),
        ],
    };
    fn infer(p: &OlsParams, cx: &InferContext<'_>) -> Inferred {
        let cx = &crate::shape::retargeted(cx, "train", p.target.as_deref());
        crate::shape::trainer(cx, Self::SPEC.kind, Task::Regression)
    }
    fn run(p: &OlsParams, ctx: &RunContext<'_>) -> Result<(), StageError> {
        train(Self::SPEC.kind, Task::Regression, p, ctx, |d| fit_ols(p, d))
    }
}

fn fit_ols(p: &OlsParams, d: &TrainData<'_>) -> Result<Fitted, StageError> {
    if let Some((coefficients, intercept)) =
        crate::algo::ols::normal_equations(&d.x, values(d), p.fit_intercept)
    {
        return Ok(Fitted::Linear {
            coefficients,
            intercept,
        });
    }
    (d.ctx.log)(
        "features are (nearly) collinear: taking the minimum-norm least-squares fit (SVD), as scikit-learn does",
    );
    let (coefficients, intercept) =
        crate::algo::ols::min_norm_least_squares(&d.x, values(d), p.fit_intercept).ok_or_else(
            || {
                fit_error("OLS", "the singular value decomposition failed").with_help(
                    "check the features for missing or infinite values, or try `train.elastic_net`",
                )
            },
        )?;
    Ok(Fitted::Linear {
        coefficients,
        intercept,
    })
}
