//! `features.polynomial`: polynomial feature expansion.

use mlcycle_pipeline::{
    InferContext, Inferred, ParamDoc, ParamError, RunContext, StageError, StageKind, StageSpec,
};
use serde::{Deserialize, Serialize};

use super::finish;
use crate::preprocess::{FIT_IN, FIT_OUT};
use crate::transform::Transform;
use crate::util::read_table;

/// `features.polynomial`.
#[derive(Debug)]
pub struct Polynomial;

/// `features.polynomial`'s params (`with:`).
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolyParams {
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

impl StageKind for Polynomial {
    type Params = PolyParams;
    const SPEC: StageSpec = StageSpec {
        kind: "features.polynomial",
        summary: "Add polynomial and interaction terms of numeric features",
        version: 1,
        inputs: FIT_IN,
        outputs: FIT_OUT,
        params: &[
            ParamDoc::new(
                "degree",
                "integer",
                "highest total degree of the added terms (2 to 5)",
            ),
            ParamDoc::new(
                "interaction_only",
                "bool",
                "only products of distinct columns (`a*b`), no powers (`a^2`)",
            ),
            ParamDoc::new("columns", "list of strings", "columns to combine")
                .unset("every numeric feature"),
        ],
    };
    fn check(p: &mut PolyParams) -> Result<(), ParamError> {
        if (2..=5).contains(&p.degree) {
            Ok(())
        } else {
            Err(ParamError::new(
                &["degree"],
                format!("`degree` must be 2 to 5, got {}", p.degree),
            ))
        }
    }
    fn infer(p: &PolyParams, cx: &InferContext<'_>) -> Inferred {
        // The terms are named by the columns they multiply: added, with
        // names this check does not predict.
        crate::shape::fitted_step(cx, p.columns.as_deref(), Some(true), "columns", |_| {
            crate::shape::StepShape {
                removed: vec![],
                added: None,
            }
        })
    }
    fn run(p: &PolyParams, ctx: &RunContext<'_>) -> Result<(), StageError> {
        let t = read_table(ctx, "data")?;
        let columns = crate::util::chosen_columns(&t, &p.columns, true, "columns")?;
        if columns.is_empty() {
            return Err(StageError::new("the table has no numeric feature columns"));
        }
        finish(
            ctx,
            t,
            Transform::Polynomial {
                columns,
                degree: p.degree,
                interaction_only: p.interaction_only,
            },
        )
    }
}
