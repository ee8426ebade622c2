//! `train.logistic_regression`: binary by Newton's method
//! ([`crate::algo::newton`]), multinomial by linfa-logistic's L-BFGS.

use linfa::traits::Fit;
use linfa::Dataset;
use mlcycle_pipeline::{ParamError, StageError};
use ndarray::Array1;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{classes, fit_error, gtol, one, params, positive, TrainData, Validate};
use crate::model::Fitted;

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct LogisticParams {
    /// L2 penalty.
    #[serde(default = "one")]
    alpha: f64,
    #[serde(default = "hundred_u64")]
    max_iterations: u64,
    #[serde(default = "gtol")]
    tolerance: f64,
}
fn hundred_u64() -> u64 {
    100
}
impl Validate for LogisticParams {
    fn validate(&self) -> Result<(), ParamError> {
        if !(self.alpha >= 0.0 && self.alpha.is_finite()) {
            return Err(ParamError::new(&["alpha"], "`alpha` must be ≥ 0"));
        }
        positive("tolerance", self.tolerance)
    }
}

pub(super) fn fit_logistic(p: &Value, d: &TrainData<'_>) -> Result<Fitted, StageError> {
    let p: LogisticParams = params(p);
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
