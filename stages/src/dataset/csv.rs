//! `dataset.csv`: a CSV file as a table.

use std::collections::HashMap;

use mlcycle_pipeline::{
    ParamDoc, ParamError, PortSpec, RunContext, Stage, StageError, StageFactory,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{finish_read, TABLE_OUT};
use crate::table::{CsvOptions, Table};
use crate::util::parse_with;

/// `dataset.csv`: a CSV file as a table.
#[derive(Debug)]
pub struct Csv;

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CsvParams {
    path: String,
    #[serde(default)]
    target: Option<String>,
    /// Column → `numeric` or `categorical`.
    #[serde(default)]
    types: std::collections::BTreeMap<String, String>,
    #[serde(default = "comma")]
    delimiter: String,
}

fn comma() -> String {
    ",".into()
}

#[derive(Debug)]
struct CsvStage(CsvParams);

impl StageFactory for Csv {
    fn kind(&self) -> &'static str {
        "dataset.csv"
    }
    fn summary(&self) -> &'static str {
        "Read a CSV file into a table (types inferred or declared, bad rows reported by line)"
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
                doc: "CSV file with a header row, relative to the workspace",
            },
            ParamDoc {
                name: "target",
                ty: "string = none",
                doc: "the column to predict",
            },
            ParamDoc {
                name: "types",
                ty: "map = {}",
                doc: "column → `numeric` or `categorical`; others are inferred",
            },
            ParamDoc {
                name: "delimiter",
                ty: "string = \",\"",
                doc: "one ASCII character",
            },
        ]
    }
    fn build(&self, with: &Value) -> Result<Box<dyn Stage>, ParamError> {
        let p: CsvParams = parse_with(with)?;
        if p.delimiter.len() != 1 || !p.delimiter.is_ascii() {
            return Err(ParamError::new(
                &["delimiter"],
                "`delimiter` must be one ASCII character",
            ));
        }
        for (col, ty) in &p.types {
            if ty != "numeric" && ty != "categorical" {
                return Err(ParamError::new(
                    &["types", col],
                    format!("type `{ty}` of column `{col}` must be `numeric` or `categorical`"),
                ));
            }
        }
        Ok(Box::new(CsvStage(p)))
    }
}

impl Stage for CsvStage {
    fn params(&self) -> Value {
        serde_json::to_value(&self.0).expect("params serialize")
    }
    fn file_deps(&self) -> Vec<String> {
        vec![self.0.path.clone()]
    }
    fn run(&self, ctx: &RunContext<'_>) -> Result<(), StageError> {
        let opts = CsvOptions {
            types: self.0.types.clone().into_iter().collect::<HashMap<_, _>>(),
            delimiter: Some(self.0.delimiter.as_bytes()[0]),
        };
        let path = ctx.workspace.join(&self.0.path);
        let mut t = Table::read_csv(&path, &opts).map_err(|e| {
            StageError::new(
                e.to_string()
                    .replace(&ctx.workspace.display().to_string(), "."),
            )
        })?;
        finish_read(ctx, &mut t, self.0.target.as_deref(), &self.0.path)
    }
}
