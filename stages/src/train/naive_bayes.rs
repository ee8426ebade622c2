//! `train.naive_bayes`: Gaussian naive Bayes (linfa-bayes).

use linfa::traits::Fit;
use mlcycle_pipeline::{
    InferContext, Inferred, ParamDoc, ParamError, RunContext, StageError, StageKind, StageSpec,
};
use ndarray::Array1;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{classes, fit_error, natural, positive, train, TrainData, MODEL_OUT, TRAIN_IN};
use crate::model::{Fitted, Task};

/// `train.naive_bayes`'s params (`with:`).
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NbParams {
    #[serde(default = "var_smoothing")]
    var_smoothing: f64,
    /// The target column of a table that names none (one a script wrote);
    /// when the table names one, this one replaces it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) target: Option<String>,
}
fn var_smoothing() -> f64 {
    1e-9
}

/// `train.naive_bayes`.
#[derive(Debug)]
pub struct NaiveBayes;

impl StageKind for NaiveBayes {
    type Params = NbParams;
    const SPEC: StageSpec = StageSpec {
        kind: "train.naive_bayes",
        summary: "Gaussian naive Bayes classifier (linfa-bayes)",
        version: 1,
        inputs: TRAIN_IN,
        outputs: MODEL_OUT,
        params: &[
            crate::TARGET_PARAM_DOC,
            ParamDoc::new(
                "var_smoothing",
                "number",
                "added to variances for stability",
            ),
        ],
    };
    fn check(p: &mut NbParams) -> Result<(), ParamError> {
        positive("var_smoothing", p.var_smoothing)
    }
    fn infer(p: &NbParams, cx: &InferContext<'_>) -> Inferred {
        let cx = &crate::shape::retargeted(cx, "train", p.target.as_deref());
        crate::shape::trainer(cx, Self::SPEC.kind, Task::Classification)
    }
    fn run(p: &NbParams, ctx: &RunContext<'_>) -> Result<(), StageError> {
        train(Self::SPEC.kind, Task::Classification, p, ctx, |d| {
            fit_naive_bayes(p, d)
        })
    }
}

fn fit_naive_bayes(p: &NbParams, d: &TrainData<'_>) -> Result<Fitted, StageError> {
    let (ids, _) = classes(d);
    let y = Array1::from(ids.to_vec());
    let ds = linfa::DatasetBase::new(d.x.view(), y.view());
    let m = linfa_bayes::GaussianNb::params()
        .var_smoothing(p.var_smoothing)
        .fit(&ds)
        .map_err(|e| fit_error("naive Bayes", e))?;
    Ok(Fitted::GaussianNb {
        model: canonical(serde_json::to_value(&m).expect("naive Bayes serializes")),
    })
}

/// Sorts object keys so that models holding hash maps serialize the same
/// bytes every time.
fn canonical(v: Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut pairs: Vec<(String, Value)> =
                m.into_iter().map(|(k, v)| (k, canonical(v))).collect();
            pairs.sort_by(|a, b| natural(&a.0, &b.0));
            Value::Object(pairs.into_iter().collect())
        }
        Value::Array(a) => Value::Array(a.into_iter().map(canonical).collect()),
        v => v,
    }
}
