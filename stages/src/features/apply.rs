//! `features.apply`: apply fitted transforms to another table.

use mlcycle_pipeline::{
    ParamDoc, ParamError, PortSpec, RunContext, Stage, StageError, StageFactory,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::transform::{apply_all, read_steps};
use crate::util::{parse_with, read_table, write_table};

/// `features.apply`.
#[derive(Debug)]
pub struct Apply;

#[derive(Debug)]
struct ApplyStage;

const APPLY_IN: &[PortSpec] = &[
    PortSpec::input("data", crate::ports::TABLE, true, "the rows to transform"),
    PortSpec::input(
        "transform",
        crate::ports::TRANSFORM,
        true,
        "a fitted step from `preprocess.scale` or a `features.*` stage",
    ),
];
const APPLY_OUT: &[PortSpec] = &[PortSpec::output(
    "data",
    "data.arrow",
    crate::ports::TABLE,
    "the rows, transformed",
)];

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct NoParams {}

impl StageFactory for Apply {
    fn kind(&self) -> &'static str {
        "features.apply"
    }
    fn summary(&self) -> &'static str {
        "Apply a fitted transform, unchanged, to another table (e.g. the test split)"
    }
    fn version(&self) -> u32 {
        1
    }
    fn inputs(&self) -> &'static [PortSpec] {
        APPLY_IN
    }
    fn outputs(&self) -> &'static [PortSpec] {
        APPLY_OUT
    }
    fn param_docs(&self) -> &'static [ParamDoc] {
        &[]
    }
    fn build(&self, with: &Value) -> Result<Box<dyn Stage>, ParamError> {
        let _: NoParams = parse_with(with)?;
        Ok(Box::new(ApplyStage))
    }
}

impl Stage for ApplyStage {
    fn params(&self) -> Value {
        serde_json::json!({})
    }
    fn run(&self, ctx: &RunContext<'_>) -> Result<(), StageError> {
        let steps = read_steps(ctx.input("transform")?).map_err(StageError::from_error)?;
        let mut t = read_table(ctx, "data")?;
        apply_all(&steps, &mut t).map_err(|e| {
            StageError::caused_by("cannot apply the transform", e)
                .with_help("the table must have the columns the transform was fitted on")
        })?;
        write_table(ctx, "data", &t)
    }
}
