//! `features.pca`: principal components.

use mlcycle_pipeline::{
    InferContext, Inferred, ParamDoc, ParamError, RunContext, StageError, StageKind, StageSpec,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::finish;
use crate::preprocess::{FIT_IN, FIT_OUT};
use crate::transform::Transform;
use crate::util::read_table;

/// `features.pca`.
#[derive(Debug)]
pub struct Pca;

/// `features.pca`'s params (`with:`).
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PcaParams {
    components: usize,
    #[serde(default)]
    columns: Option<Vec<String>>,
}

impl StageKind for Pca {
    type Params = PcaParams;
    const SPEC: StageSpec = StageSpec {
        kind: "features.pca",
        summary: "Replace numeric features by their first principal components (linfa-reduction)",
        version: 1,
        inputs: FIT_IN,
        outputs: FIT_OUT,
        params: &[
            ParamDoc::new(
                "components",
                "integer",
                "number of components kept (`pc1`, `pc2`, …)",
            ),
            ParamDoc::new("columns", "list of strings", "columns to project")
                .unset("every numeric feature"),
        ],
    };
    fn example() -> Value {
        serde_json::json!({"components": 2})
    }
    fn check(p: &mut PcaParams) -> Result<(), ParamError> {
        if p.components > 0 {
            Ok(())
        } else {
            Err(ParamError::new(
                &["components"],
                "`components` must be at least 1",
            ))
        }
    }
    fn infer(p: &PcaParams, cx: &InferContext<'_>) -> Inferred {
        // Names one per component are listed up to this many; past it the
        // table's columns are left open rather than allocated.
        const LISTED: usize = 10_000;
        let k = p.components;
        let mut most = None;
        let mut out =
            crate::shape::fitted_step(cx, p.columns.as_deref(), Some(true), "columns", |t| {
                // At most as many components as columns projected.
                most = match &p.columns {
                    Some(named) => Some(named.len()),
                    None => t.numeric_at_most(),
                };
                crate::shape::StepShape {
                    removed: p.columns.clone().unwrap_or_else(|| t.default_columns(true)),
                    added: (k <= most.unwrap_or(k).min(LISTED)).then(|| {
                        (1..=k)
                            .map(|i| (format!("pc{i}"), crate::shape::Kind::Numeric))
                            .collect()
                    }),
                }
            });
        if let Some(most) = most.filter(|&m| k > m) {
            out.problems.push(
                ParamError::new(
                    &["components"],
                    format!("{k} components asked of at most {most} numeric column(s)"),
                )
                .with_help(format!("ask for at most {most}")),
            );
        }
        out
    }
    fn run(p: &PcaParams, ctx: &RunContext<'_>) -> Result<(), StageError> {
        use linfa::traits::Fit;
        let t = read_table(ctx, "data")?;
        let columns = crate::util::chosen_columns(&t, &p.columns, true, "columns")?;
        if p.components > columns.len() {
            return Err(StageError::new(format!(
                "{} components asked of {} column(s)",
                p.components,
                columns.len()
            ))
            .with_help("lower `components`"));
        }
        if t.n_rows() < 2 {
            return Err(StageError::new("PCA needs at least 2 rows"));
        }
        let x = crate::model::matrix(&t, &columns).map_err(|e| {
            StageError::caused_by("cannot fit PCA", e)
                .with_help("impute or drop missing values first with `preprocess.clean`")
        })?;
        let pca = linfa_reduction::Pca::params(p.components)
            .fit(&linfa::DatasetBase::from(x))
            .map_err(|e| StageError::caused_by("cannot fit PCA", e))?;
        let ratio = pca.explained_variance_ratio();
        (ctx.log)(&format!(
            "explained variance ratio: {}",
            ratio
                .iter()
                .map(|r| crate::table::short(*r))
                .collect::<Vec<_>>()
                .join(", ")
        ));
        finish(
            ctx,
            t,
            Transform::Pca {
                columns,
                mean: pca.mean().to_vec(),
                components: pca
                    .components()
                    .rows()
                    .into_iter()
                    .map(|r| r.to_vec())
                    .collect(),
            },
        )
    }
}
