//! `dataset.parquet`: a Parquet file as a table.

use std::collections::HashMap;

use mlcycle_pipeline::{
    ParamDoc, ParamError, PortSpec, RunContext, Stage, StageError, StageFactory,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{finish_read, TABLE_OUT};
use crate::table::Table;
use crate::util::parse_with;

/// `dataset.parquet`: a Parquet file as a table.
#[derive(Debug)]
pub struct Parquet;

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ParquetParams {
    path: String,
    #[serde(default)]
    target: Option<String>,
    #[serde(default)]
    types: std::collections::BTreeMap<String, String>,
}

#[derive(Debug)]
struct ParquetStage(ParquetParams);

impl StageFactory for Parquet {
    fn kind(&self) -> &'static str {
        "dataset.parquet"
    }
    fn summary(&self) -> &'static str {
        "Read a Parquet file into a table (numbers stay numeric, text and booleans become categorical)"
    }
    fn version(&self) -> u32 {
        1
    }
    fn inputs(&self) -> &'static [PortSpec] {
        &[]
    }
    fn outputs(&self) -> &'static [PortSpec] {
        TABLE_OUT
    }
    fn param_docs(&self) -> &'static [ParamDoc] {
        &[
            ParamDoc {
                name: "path",
                ty: "string (required)",
                doc: "Parquet file, relative to the workspace",
            },
            ParamDoc {
                name: "target",
                ty: "string = none",
                doc: "the column to predict",
            },
            ParamDoc {
                name: "types",
                ty: "map = {}",
                doc: "column → `numeric` or `categorical`, overriding the file's types (e.g. integer class codes as `categorical`)",
            },
        ]
    }
    fn build(&self, with: &Value) -> Result<Box<dyn Stage>, ParamError> {
        let p: ParquetParams = parse_with(with)?;
        for (col, ty) in &p.types {
            if ty != "numeric" && ty != "categorical" {
                return Err(ParamError::new(
                    &["types", col],
                    format!("type `{ty}` of column `{col}` must be `numeric` or `categorical`"),
                ));
            }
        }
        Ok(Box::new(ParquetStage(p)))
    }
}

impl Stage for ParquetStage {
    fn params(&self) -> Value {
        serde_json::to_value(&self.0).expect("params serialize")
    }
    fn file_deps(&self) -> Vec<String> {
        vec![self.0.path.clone()]
    }
    fn run(&self, ctx: &RunContext<'_>) -> Result<(), StageError> {
        let path = ctx.workspace.join(&self.0.path);
        let types = self.0.types.clone().into_iter().collect::<HashMap<_, _>>();
        let mut t = Table::read_parquet(&path, &types).map_err(|e| {
            StageError::new(
                e.to_string()
                    .replace(&ctx.workspace.display().to_string(), "."),
            )
        })?;
        finish_read(ctx, &mut t, self.0.target.as_deref(), &self.0.path)
    }
}
