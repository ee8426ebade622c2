//! `features.one_hot`: one-hot encode categorical columns.

use mlcycle_pipeline::{
    ParamDoc, ParamError, PortSpec, RunContext, Stage, StageError, StageFactory,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::preprocess::{FIT_IN, FIT_OUT};
use crate::table::ColumnData;
use crate::transform::{apply_all, write_steps, Transform};
use crate::util::{parse_with, read_table, write_table};

/// `features.one_hot`.
#[derive(Debug)]
pub struct OneHot;

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct OneHotParams {
    #[serde(default)]
    columns: Option<Vec<String>>,
    #[serde(default = "ignore")]
    unknown: String,
}
fn ignore() -> String {
    "ignore".into()
}

#[derive(Debug)]
struct OneHotStage(OneHotParams);

factory!(
    OneHot,
    "features.one_hot",
    "One-hot encode categorical features: one 0/1 column per category seen in training",
    &[
        ParamDoc {
            name: "columns",
            ty: "list of strings = every categorical feature",
            doc: "columns to encode",
        },
        ParamDoc {
            name: "unknown",
            ty: "`ignore` | `error` = ignore",
            doc: "a category unseen in training gives all zeros, or an error",
        },
    ],
    OneHotParams,
    OneHotStage,
    |p: &OneHotParams| if ["ignore", "error"].contains(&p.unknown.as_str()) {
        Ok(())
    } else {
        Err(
            ParamError::new(&["unknown"], format!("unknown policy `{}`", p.unknown))
                .with_help("use `ignore` or `error`"),
        )
    }
);

impl Stage for OneHotStage {
    fn params(&self) -> Value {
        serde_json::to_value(&self.0).expect("params serialize")
    }
    fn run(&self, ctx: &RunContext<'_>) -> Result<(), StageError> {
        let mut t = read_table(ctx, "data")?;
        let columns = crate::util::chosen_columns(&t, &self.0.columns, false, "columns")?;
        if columns.is_empty() {
            return Err(StageError::new(
                "the table has no categorical feature columns to encode",
            ));
        }
        let mut steps = Vec::new();
        for name in &columns {
            let Some(ColumnData::Categorical(v)) = t.column(name).map(|c| &c.data) else {
                unreachable!("checked above")
            };
            let mut cats: Vec<String> = v.iter().flatten().cloned().collect();
            cats.sort();
            cats.dedup();
            steps.push(Transform::OneHot {
                column: name.clone(),
                categories: cats,
                unknown: self.0.unknown.clone(),
            });
        }
        apply_all(&steps, &mut t).map_err(StageError::from_error)?;
        (ctx.log)(&format!(
            "{} columns: {}",
            t.columns.len(),
            t.names().join(", ")
        ));
        write_table(ctx, "data", &t)?;
        write_steps(ctx.output("transform")?, &steps).map_err(StageError::from_error)
    }
}
