//! `train.naive_bayes`: Gaussian naive Bayes (linfa-bayes).

use linfa::traits::Fit;
use linfa::Dataset;
use mlcycle_pipeline::{ParamError, StageError};
use ndarray::Array1;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{classes, fit_error, natural, params, positive, TrainData, Validate};
use crate::model::Fitted;

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct NbParams {
    #[serde(default = "var_smoothing")]
    var_smoothing: f64,
}
fn var_smoothing() -> f64 {
    1e-9
}
impl Validate for NbParams {
    fn validate(&self) -> Result<(), ParamError> {
        positive("var_smoothing", self.var_smoothing)
    }
}

pub(super) fn fit_naive_bayes(p: &Value, d: &TrainData<'_>) -> Result<Fitted, StageError> {
    let p: NbParams = params(p);
    let (ids, _) = classes(d);
    let ds = Dataset::new(d.x.clone(), Array1::from(ids.to_vec()));
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
