//! `features.select`: keep or drop columns.

use mlcycle_pipeline::{
    ParamDoc, ParamError, PortSpec, RunContext, Stage, StageError, StageFactory,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::finish;
use crate::preprocess::{FIT_IN, FIT_OUT};
use crate::transform::Transform;
use crate::util::{check_columns, feature_names, parse_with, read_table};

/// `features.select`.
#[derive(Debug)]
pub struct Select;

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SelectParams {
    #[serde(default)]
    keep: Option<Vec<String>>,
    #[serde(default)]
    drop: Option<Vec<String>>,
}

#[derive(Debug)]
struct SelectStage(SelectParams);

factory!(
    Select,
    "features.select",
    "Keep or drop feature columns (the target always stays)",
    &[
        ParamDoc {
            name: "keep",
            ty: "list of strings",
            doc: "the feature columns to keep; every other feature is dropped",
        },
        ParamDoc {
            name: "drop",
            ty: "list of strings",
            doc: "the feature columns to drop",
        },
    ],
    SelectParams,
    SelectStage,
    |p: &SelectParams| match (&p.keep, &p.drop) {
        (Some(_), Some(_)) => Err(ParamError::new(
            &["drop"],
            "give `keep` or `drop`, not both"
        )),
        (None, None) => Err(ParamError::new(
            &[],
            "give `keep:` or `drop:` (a list of columns)"
        )),
        _ => Ok(()),
    }
);

impl Stage for SelectStage {
    fn params(&self) -> Value {
        serde_json::to_value(&self.0).expect("params serialize")
    }
    fn run(&self, ctx: &RunContext<'_>) -> Result<(), StageError> {
        let t = read_table(ctx, "data")?;
        let features = feature_names(&t, None);
        let dropped: Vec<String> = match (&self.0.keep, &self.0.drop) {
            (Some(keep), _) => {
                check_columns(&t, keep, None, "keep")?;
                features.into_iter().filter(|f| !keep.contains(f)).collect()
            }
            (_, Some(drop)) => {
                check_columns(&t, drop, None, "drop")?;
                drop.clone()
            }
            _ => unreachable!("checked at build"),
        };
        finish(ctx, t, Transform::Drop { columns: dropped })
    }
}
