//! `features.polynomial`: polynomial feature expansion.

use mlcycle_pipeline::{
    ParamDoc, ParamError, PortSpec, RunContext, Stage, StageError, StageFactory,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::finish;
use crate::preprocess::{FIT_IN, FIT_OUT};
use crate::transform::Transform;
use crate::util::{parse_with, read_table};

/// `features.polynomial`.
#[derive(Debug)]
pub struct Polynomial;

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct PolyParams {
    #[serde(default = "two")]
    degree: u32,
    #[serde(default)]
    interaction_only: bool,
    #[serde(default)]
    columns: Option<Vec<String>>,
}
fn two() -> u32 {
    2
}

#[derive(Debug)]
struct PolyStage(PolyParams);

factory!(
    Polynomial,
    "features.polynomial",
    "Add polynomial and interaction terms of numeric features",
    &[
        ParamDoc {
            name: "degree",
            ty: "integer = 2",
            doc: "highest total degree of the added terms (2 to 5)",
        },
        ParamDoc {
            name: "interaction_only",
            ty: "bool = false",
            doc: "only products of distinct columns (`a*b`), no powers (`a^2`)",
        },
        ParamDoc {
            name: "columns",
            ty: "list of strings = every numeric feature",
            doc: "columns to combine",
        },
    ],
    PolyParams,
    PolyStage,
    |p: &PolyParams| if (2..=5).contains(&p.degree) {
        Ok(())
    } else {
        Err(ParamError::new(
            &["degree"],
            format!("`degree` must be 2 to 5, got {}", p.degree),
        ))
    }
);

impl Stage for PolyStage {
    fn params(&self) -> Value {
        serde_json::to_value(&self.0).expect("params serialize")
    }
    fn run(&self, ctx: &RunContext<'_>) -> Result<(), StageError> {
        let t = read_table(ctx, "data")?;
        let columns = crate::util::chosen_columns(&t, &self.0.columns, true, "columns")?;
        if columns.is_empty() {
            return Err(StageError::new("the table has no numeric feature columns"));
        }
        finish(
            ctx,
            t,
            Transform::Polynomial {
                columns,
                degree: self.0.degree,
                interaction_only: self.0.interaction_only,
            },
        )
    }
}
