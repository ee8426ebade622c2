//! `preprocess.scale`: scale numeric features.

use mlcycle_pipeline::{
    ParamDoc, ParamError, PortSpec, RunContext, Stage, StageError, StageFactory,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{FIT_IN, FIT_OUT};
use crate::util::parse_with;

/// `preprocess.scale`: fit a scaler on the training rows.
#[derive(Debug)]
pub struct Scale;

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScaleParams {
    #[serde(default = "standard")]
    method: String,
    #[serde(default)]
    columns: Option<Vec<String>>,
}
fn standard() -> String {
    "standard".into()
}

#[derive(Debug)]
struct ScaleStage(ScaleParams);

impl StageFactory for Scale {
    fn kind(&self) -> &'static str {
        "preprocess.scale"
    }
    fn summary(&self) -> &'static str {
        "Scale numeric features: standard, min-max, max-abs (linfa-preprocessing) or L2 row normalization"
    }
    fn version(&self) -> u32 {
        1
    }
    fn inputs(&self) -> &'static [PortSpec] {
        FIT_IN
    }
    fn outputs(&self) -> &'static [PortSpec] {
        FIT_OUT
    }
    fn param_docs(&self) -> &'static [ParamDoc] {
        &[
            ParamDoc {
                name: "method",
                ty: "`standard` | `minmax` | `maxabs` | `l2` = standard",
                doc: "zero mean and unit variance; [0, 1]; [-1, 1] by the largest magnitude; or each row to unit L2 norm",
            },
            ParamDoc {
                name: "columns",
                ty: "list of strings = every numeric feature",
                doc: "columns to scale (never the target)",
            },
        ]
    }
    fn build(&self, with: &Value) -> Result<Box<dyn Stage>, ParamError> {
        let p: ScaleParams = parse_with(with)?;
        let methods = ["standard", "minmax", "maxabs", "l2"];
        if !methods.contains(&p.method.as_str()) {
            return Err(ParamError::new(
                &["method"],
                format!("unknown scaling method `{}`", p.method),
            )
            .with_help(format!("use one of: {}", methods.join(", "))));
        }
        Ok(Box::new(ScaleStage(p)))
    }
}

impl Stage for ScaleStage {
    fn params(&self) -> Value {
        serde_json::to_value(&self.0).expect("params serialize")
    }
    fn run(&self, ctx: &RunContext<'_>) -> Result<(), StageError> {
        use crate::transform::Transform;
        use linfa::traits::Fit;
        use linfa_preprocessing::linear_scaling::LinearScaler;
        let mut t = crate::util::read_table(ctx, "data")?;
        let columns = crate::util::chosen_columns(&t, &self.0.columns, true, "columns")?;
        if columns.is_empty() {
            return Err(StageError::new(
                "the table has no numeric feature columns to scale",
            ));
        }
        if t.n_rows() == 0 {
            return Err(StageError::new(
                "the table has no rows to fit the scaler on",
            ));
        }
        let step = if self.0.method == "l2" {
            Transform::Normalize {
                columns: columns.clone(),
            }
        } else {
            let x = crate::model::matrix(&t, &columns).map_err(|e| {
                StageError::caused_by("cannot fit the scaler", e)
                    .with_help("impute or drop missing values first with `preprocess.clean`")
            })?;
            let ds = linfa::DatasetBase::from(x);
            let params = match self.0.method.as_str() {
                "minmax" => LinearScaler::min_max(),
                "maxabs" => LinearScaler::max_abs(),
                _ => LinearScaler::standard(),
            };
            let s = params
                .fit(&ds)
                .map_err(|e| StageError::caused_by("cannot fit the scaler", e))?;
            // A constant column has no spread: leave its scale at 1.
            let scales = s
                .scales()
                .iter()
                .map(|v| if v.is_finite() && *v != 0.0 { *v } else { 1.0 })
                .collect();
            Transform::Scale {
                method: self.0.method.clone(),
                columns: columns.clone(),
                offsets: s.offsets().to_vec(),
                scales,
            }
        };
        (ctx.log)(&format!(
            "{} scaling of {} column(s) fitted on {} rows",
            self.0.method,
            columns.len(),
            t.n_rows()
        ));
        crate::transform::apply_all(std::slice::from_ref(&step), &mut t)
            .map_err(StageError::from_error)?;
        crate::util::write_table(ctx, "data", &t)?;
        crate::transform::write_steps(ctx.output("transform")?, &[step])
            .map_err(StageError::from_error)
    }
}
