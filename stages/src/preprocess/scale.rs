//! `preprocess.scale`: scale numeric features.

use mlcycle_pipeline::{
    InferContext, Inferred, ParamDoc, RunContext, StageError, StageKind, StageSpec,
};
use serde::{Deserialize, Serialize};

use super::{FIT_IN, FIT_OUT};

/// `preprocess.scale`: fit a scaler on the training rows.
#[derive(Debug)]
pub struct Scale;

/// `preprocess.scale`'s params (`with:`).
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScaleParams {
    #[serde(default)]
    method: ScaleMethod,
    #[serde(default)]
    columns: Option<Vec<String>>,
}

/// How `preprocess.scale` scales.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScaleMethod {
    /// Zero mean, unit variance.
    #[default]
    Standard,
    /// Into [0, 1].
    Minmax,
    /// Into [-1, 1] by the largest magnitude.
    Maxabs,
    /// Each row to unit L2 norm.
    L2,
}

impl ScaleMethod {
    /// The name written in `with:` and in the transform.
    pub fn as_str(self) -> &'static str {
        match self {
            ScaleMethod::Standard => "standard",
            ScaleMethod::Minmax => "minmax",
            ScaleMethod::Maxabs => "maxabs",
            ScaleMethod::L2 => "l2",
        }
    }
}

impl StageKind for Scale {
    type Params = ScaleParams;
    const SPEC: StageSpec = StageSpec {
        kind: "preprocess.scale",
        summary: "Scale numeric features: standard, min-max, max-abs (linfa-preprocessing) or L2 row normalization; missing values are left out of the fit and kept",
        version: 1,
        inputs: FIT_IN,
        outputs: FIT_OUT,
        params: &[
            ParamDoc::new("method", "`standard` | `minmax` | `maxabs` | `l2`", "zero mean and unit variance; [0, 1]; [-1, 1] by the largest magnitude; or each row to unit L2 norm"),
            ParamDoc::new("columns", "list of strings", "columns to scale (never the target)").unset("every numeric feature"),
        ],
    };
    fn infer(p: &ScaleParams, cx: &InferContext<'_>) -> Inferred {
        crate::shape::fitted_step(cx, p.columns.as_deref(), Some(true), "columns", |_| {
            crate::shape::StepShape {
                removed: vec![],
                added: Some(vec![]),
            }
        })
    }
    fn run(p: &ScaleParams, ctx: &RunContext<'_>) -> Result<(), StageError> {
        use crate::transform::Transform;
        use linfa::traits::Fit;
        use linfa_preprocessing::linear_scaling::LinearScaler;
        let mut t = crate::util::read_table(ctx, "data")?;
        let columns = crate::util::chosen_columns(&t, &p.columns, true, "columns")?;
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
        let step = if p.method == ScaleMethod::L2 {
            Transform::Normalize {
                columns: columns.clone(),
            }
        } else {
            // Missing values (NaN) are left out of the fit and kept by
            // the transform, as scikit-learn's scalers do: a model that
            // learns them (gradient boosting) still sees them, and the
            // others refuse them with what to do.
            let params = match p.method {
                ScaleMethod::Minmax => LinearScaler::min_max(),
                ScaleMethod::Maxabs => LinearScaler::max_abs(),
                ScaleMethod::Standard | ScaleMethod::L2 => LinearScaler::standard(),
            };
            let mut values: Vec<&[f64]> = Vec::with_capacity(columns.len());
            for name in &columns {
                let Some(crate::table::ColumnData::Numeric(v)) = t.column(name).map(|c| &c.data)
                else {
                    return Err(StageError::new(format!(
                        "cannot fit the scaler: `{name}` is not a numeric column"
                    )));
                };
                if let Some(row) = v.iter().position(|x| x.is_infinite()) {
                    return Err(StageError::new(format!(
                        "cannot fit the scaler: column `{name}` is infinite at row {}",
                        row + 1
                    ))
                    .with_help("drop those rows with `preprocess.clean` (outliers)"));
                }
                values.push(v);
            }
            let fit = |x: ndarray::Array2<f64>| {
                params
                    .fit(&linfa::DatasetBase::from(x))
                    .map(|s| (s.offsets().to_vec(), s.scales().to_vec()))
                    .map_err(|e| StageError::caused_by("cannot fit the scaler", e))
            };
            let (offsets, scales) = if values.iter().any(|v| v.iter().any(|x| x.is_nan())) {
                // Each column on its present values (slower: one fit per
                // column).
                let (mut offsets, mut scales) = (Vec::new(), Vec::new());
                for v in &values {
                    let present: Vec<f64> = v.iter().copied().filter(|x| !x.is_nan()).collect();
                    if present.is_empty() {
                        // Nothing to fit on: the column passes unchanged.
                        offsets.push(0.0);
                        scales.push(1.0);
                        continue;
                    }
                    let n = present.len();
                    let (o, s) =
                        fit(ndarray::Array2::from_shape_vec((n, 1), present).expect("n × 1"))?;
                    offsets.push(o[0]);
                    scales.push(s[0]);
                }
                (offsets, scales)
            } else {
                fit(crate::model::matrix(&t, &columns)
                    .map_err(|e| StageError::caused_by("cannot fit the scaler", e))?)?
            };
            // linfa gives a constant column a scale of 1 itself. Values so
            // large that the spread overflows float64 (a range past
            // 1.8e308, squares past it for the variance) give a scale of 0
            // or NaN, or an infinite mean: refused (they were scaled by 1).
            if let Some(i) = (0..columns.len())
                .find(|&i| !(scales[i].is_finite() && scales[i] != 0.0 && offsets[i].is_finite()))
            {
                return Err(StageError::new(format!(
                    "cannot fit the scaler: the spread of column `{}` overflows float64 (its values are too large for `{}` scaling)",
                    columns[i],
                    p.method.as_str()
                ))
                .with_help("drop the outliers with `preprocess.clean`, or rescale the column before (by a power of ten)"));
            }
            Transform::Scale {
                method: p.method.as_str().to_string(),
                columns: columns.clone(),
                offsets,
                scales,
            }
        };
        (ctx.log)(&format!(
            "{} scaling of {} column(s) fitted on {} rows",
            p.method.as_str(),
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
