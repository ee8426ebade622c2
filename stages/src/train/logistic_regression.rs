//! `train.logistic_regression`: binary by Newton's method
//! ([`crate::algo::newton`]), multinomial by linfa-logistic's L-BFGS.

use linfa::traits::Fit;
use linfa::Dataset;
use mlcycle_pipeline::{
    InferContext, Inferred, ParamDoc, ParamError, RunContext, StageError, StageKind, StageSpec,
};
use ndarray::Array1;
use serde::{Deserialize, Serialize};

use super::{classes, fit_error, gtol, one, positive, train, TrainData, MODEL_OUT, TRAIN_IN};
use crate::model::{Fitted, Task};

/// `train.logistic_regression`'s params (`with:`).
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogisticParams {
    /// L2 penalty.
    #[serde(default = "one")]
    alpha: f64,
    #[serde(default = "hundred_u64")]
    max_iterations: u64,
    #[serde(default = "gtol")]
    tolerance: f64,
    /// The target column of a table that names none (one a script wrote);
    /// when the table names one, this one replaces it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) target: Option<String>,
}
fn hundred_u64() -> u64 {
    100
}

/// `train.logistic_regression`.
#[derive(Debug)]
pub struct LogisticRegression;

impl StageKind for LogisticRegression {
    type Params = LogisticParams;
    const SPEC: StageSpec = StageSpec {
        kind: "train.logistic_regression",
        summary:
            "Logistic regression: binary by Newton's method, multinomial by linfa-logistic's L-BFGS",
        version: 2, // 2: binary by Newton's method (was L-BFGS)
        inputs: TRAIN_IN,
        outputs: MODEL_OUT,
        params: &[
            crate::TARGET_PARAM_DOC,
            ParamDoc::new("alpha", "number", "L2 penalty"),
            ParamDoc::new("max_iterations", "integer", "solver iterations at most"),
            ParamDoc::new(
                "tolerance",
                "number",
                "stop when no component of the mean gradient is larger",
            ),
        ],
    };
    fn check(p: &mut LogisticParams) -> Result<(), ParamError> {
        if !(p.alpha >= 0.0 && p.alpha.is_finite()) {
            return Err(ParamError::new(&["alpha"], "`alpha` must be ≥ 0"));
        }
        positive("tolerance", p.tolerance)
    }
    fn infer(p: &LogisticParams, cx: &InferContext<'_>) -> Inferred {
        let cx = &crate::shape::retargeted(cx, "train", p.target.as_deref());
        crate::shape::trainer(cx, Self::SPEC.kind, Task::Classification)
    }
    fn run(p: &LogisticParams, ctx: &RunContext<'_>) -> Result<(), StageError> {
        train(Self::SPEC.kind, Task::Classification, p, ctx, |d| {
            fit_logistic(p, d)
        })
    }
}

fn fit_logistic(p: &LogisticParams, d: &TrainData<'_>) -> Result<Fitted, StageError> {
    let (ids, names) = classes(d);
    let y = Array1::from(ids.to_vec());
    let k = d.x.ncols();
    if names.len() == 2 {
        let started = std::time::Instant::now();
        if let Some((w, b, steps)) =
            crate::algo::newton::logistic(&d.x, ids, p.alpha, p.max_iterations, p.tolerance)
        {
            (d.ctx.log)(&format!(
                "Newton's method: {steps} step(s) in {} ms",
                started.elapsed().as_millis()
            ));
            return Ok(Fitted::Softmax {
                coefficients: vec![vec![0.0; k], w],
                intercepts: vec![0.0, b],
            });
        }
        (d.ctx.log)(
            "Newton's method did not converge: fitting with linfa-logistic's L-BFGS instead",
        );
        let m = linfa_logistic::LogisticRegression::default()
            .alpha(p.alpha)
            .max_iterations(p.max_iterations)
            .gradient_tolerance(p.tolerance)
            .fit(&Dataset::new(d.x.clone(), y))
            .map_err(|e| fit_error("logistic regression", e))?;
        // P(pos) = sigmoid(w·x + b) = softmax([0, w·x + b])[1].
        let w = m.params().to_vec();
        let (neg, pos) = if m.labels().pos.class == 1 {
            (vec![0.0; k], w)
        } else {
            (w, vec![0.0; k])
        };
        let (bn, bp) = if m.labels().pos.class == 1 {
            (0.0, m.intercept())
        } else {
            (m.intercept(), 0.0)
        };
        return Ok(Fitted::Softmax {
            coefficients: vec![neg, pos],
            intercepts: vec![bn, bp],
        });
    }
    let m = linfa_logistic::MultiLogisticRegression::default()
        .alpha(p.alpha)
        .max_iterations(p.max_iterations)
        .gradient_tolerance(p.tolerance)
        .fit(&Dataset::new(d.x.clone(), y))
        .map_err(|e| fit_error("logistic regression", e))?;
    let mut coefficients = vec![vec![0.0; k]; names.len()];
    let mut intercepts = vec![0.0; names.len()];
    for (j, &class) in m.classes().iter().enumerate() {
        coefficients[class] = m.params().column(j).to_vec();
        intercepts[class] = m.intercept()[j];
    }
    Ok(Fitted::Softmax {
        coefficients,
        intercepts,
    })
}
