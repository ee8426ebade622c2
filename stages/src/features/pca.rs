//! `features.pca`: principal components.

use mlcycle_pipeline::{
    ParamDoc, ParamError, PortSpec, RunContext, Stage, StageError, StageFactory,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::finish;
use crate::preprocess::{FIT_IN, FIT_OUT};
use crate::transform::Transform;
use crate::util::{parse_with, read_table};

/// `features.pca`.
#[derive(Debug)]
pub struct Pca;

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct PcaParams {
    components: usize,
    #[serde(default)]
    columns: Option<Vec<String>>,
}

#[derive(Debug)]
struct PcaStage(PcaParams);

factory!(
    Pca,
    "features.pca",
    "Replace numeric features by their first principal components (linfa-reduction)",
    &[
        ParamDoc {
            name: "components",
            ty: "integer (required)",
            doc: "number of components kept (`pc1`, `pc2`, …)",
        },
        ParamDoc {
            name: "columns",
            ty: "list of strings = every numeric feature",
            doc: "columns to project",
        },
    ],
    PcaParams,
    PcaStage,
    |p: &PcaParams| if p.components > 0 {
        Ok(())
    } else {
        Err(ParamError::new(
            &["components"],
            "`components` must be at least 1",
        ))
    }
);

impl Stage for PcaStage {
    fn params(&self) -> Value {
        serde_json::to_value(&self.0).expect("params serialize")
    }
    fn run(&self, ctx: &RunContext<'_>) -> Result<(), StageError> {
        use linfa::traits::Fit;
        let t = read_table(ctx, "data")?;
        let columns = crate::util::chosen_columns(&t, &self.0.columns, true, "columns")?;
        if self.0.components > columns.len() {
            return Err(StageError::new(format!(
                "{} components asked of {} column(s)",
                self.0.components,
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
        let pca = linfa_reduction::Pca::params(self.0.components)
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
