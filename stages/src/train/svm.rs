//! `train.svm`: support vector classifier, one-vs-rest (linfa-svm).

use linfa::traits::Fit;
use linfa::Dataset;
use mlcycle_pipeline::{ParamError, StageError};
use ndarray::Array1;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{classes, fit_error, one, params, positive, TrainData, Validate};
use crate::model::Fitted;

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SvmParams {
    #[serde(default = "one")]
    c: f64,
    /// `linear`, `gaussian` or `polynomial`.
    #[serde(default = "gaussian")]
    kernel: String,
    /// Gaussian kernel width (`exp(-|x-y|²/eps)`).
    #[serde(default = "one")]
    eps: f64,
    #[serde(default = "three")]
    degree: f64,
}
fn gaussian() -> String {
    "gaussian".into()
}
fn three() -> f64 {
    3.0
}
impl Validate for SvmParams {
    fn validate(&self) -> Result<(), ParamError> {
        positive("c", self.c)?;
        positive("eps", self.eps)?;
        if !["linear", "gaussian", "polynomial"].contains(&self.kernel.as_str()) {
            return Err(
                ParamError::new(&["kernel"], format!("unknown kernel `{}`", self.kernel))
                    .with_help("use `linear`, `gaussian` or `polynomial`"),
            );
        }
        Ok(())
    }
}

pub(super) fn fit_svm(p: &Value, d: &TrainData<'_>) -> Result<Fitted, StageError> {
    let p: SvmParams = params(p);
    let (ids, names) = classes(d);
    let one_vs: Vec<usize> = if names.len() == 2 {
        vec![1]
    } else {
        (0..names.len()).collect()
    };
    let mut machines = Vec::new();
    for class in one_vs {
        let y: Array1<bool> = ids.iter().map(|&i| i == class).collect();
        let params = linfa_svm::Svm::<f64, bool>::params().pos_neg_weights(p.c, p.c);
        let params = match p.kernel.as_str() {
            "linear" => params.linear_kernel(),
            "polynomial" => params.polynomial_kernel(1.0, p.degree),
            _ => params.gaussian_kernel(p.eps),
        };
        let m = params
            .fit(&Dataset::new(d.x.clone(), y))
            .map_err(|e| fit_error("SVM", e))?;
        machines.push(serde_json::to_value(&m).expect("SVMs serialize"));
    }
    Ok(Fitted::Svm { machines })
}
