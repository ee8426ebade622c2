//! `train.svm`: support vector classifier, one-vs-rest (linfa-svm).

use linfa::traits::Fit;
use linfa::Dataset;
use mlcycle_pipeline::{ParamDoc, ParamError, RunContext, StageError, StageKind, StageSpec};
use ndarray::Array1;
use serde::{Deserialize, Serialize};

use super::{classes, fit_error, one, positive, train, TrainData, MODEL_OUT, TRAIN_IN};
use crate::model::{Fitted, Task};

/// `train.svm`'s params (`with:`).
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SvmParams {
    #[serde(default = "one")]
    c: f64,
    #[serde(default)]
    kernel: Kernel,
    /// Gaussian kernel width (`exp(-|x-y|²/eps)`).
    #[serde(default = "one")]
    eps: f64,
    #[serde(default = "three")]
    degree: f64,
}

/// The SVM's kernel.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kernel {
    /// `x·y`.
    Linear,
    /// `exp(-|x-y|²/eps)`.
    #[default]
    Gaussian,
    /// `(x·y + 1)^degree`.
    Polynomial,
}
fn three() -> f64 {
    3.0
}

/// `train.svm`.
#[derive(Debug)]
pub struct Svm;

impl StageKind for Svm {
    type Params = SvmParams;
    const SPEC: StageSpec = StageSpec {
        kind: "train.svm",
        summary: "Support vector classifier, one-vs-rest for several classes (linfa-svm)",
        version: 1,
        inputs: TRAIN_IN,
        outputs: MODEL_OUT,
        params: &[
            ParamDoc::new("c", "number", "penalty of margin violations"),
            ParamDoc::new("kernel", "`linear` | `gaussian` | `polynomial`", "kernel"),
            ParamDoc::new("eps", "number", "Gaussian kernel width"),
            ParamDoc::new("degree", "number", "polynomial kernel degree"),
        ],
    };
    fn check(p: &mut SvmParams) -> Result<(), ParamError> {
        positive("c", p.c)?;
        positive("eps", p.eps)?;
        Ok(())
    }
    fn run(p: &SvmParams, ctx: &RunContext<'_>) -> Result<(), StageError> {
        train(Self::SPEC.kind, Task::Classification, p, ctx, |d| {
            fit_svm(p, d)
        })
    }
}

fn fit_svm(p: &SvmParams, d: &TrainData<'_>) -> Result<Fitted, StageError> {
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
        let params = match p.kernel {
            Kernel::Linear => params.linear_kernel(),
            Kernel::Polynomial => params.polynomial_kernel(1.0, p.degree),
            Kernel::Gaussian => params.gaussian_kernel(p.eps),
        };
        let m = params
            .fit(&Dataset::new(d.x.clone(), y))
            .map_err(|e| fit_error("SVM", e))?;
        machines.push(serde_json::to_value(&m).expect("SVMs serialize"));
    }
    Ok(Fitted::Svm { machines })
}
