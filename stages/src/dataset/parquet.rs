//! `dataset.parquet`: a Parquet file as a table.

use mlcycle_pipeline::{
    InferContext, Inferred, ParamDoc, ParamError, RunContext, StageError, StageKind, StageSpec,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{finish_read, TABLE_OUT};
use crate::table::Table;

/// `dataset.parquet`: a Parquet file as a table.
#[derive(Debug)]
pub struct Parquet;

/// `dataset.parquet`'s params (`with:`).
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParquetParams {
    path: String,
    #[serde(default)]
    target: Option<String>,
    #[serde(default)]
    types: std::collections::BTreeMap<String, super::ColumnType>,
}

impl StageKind for Parquet {
    type Params = ParquetParams;
    const SPEC: StageSpec = StageSpec {
        kind: "dataset.parquet",
        summary: "Read a Parquet file into a table (numbers stay numeric, text and booleans become categorical)",
        // 2: columns converted by table/parquet.rs (was arrow-cast).
        version: 2,
        inputs: &[],
        outputs: TABLE_OUT,
        params: &[
            ParamDoc::new("path", "string", "Parquet file, relative to the workspace"),
            ParamDoc::new("target", "string", "the column to predict").unset("none"),
            ParamDoc::new("types", "map", "column → `numeric` or `categorical`, overriding the file's types (e.g. integer class codes as `categorical`)"),
        ],
    };
    fn example() -> Value {
        serde_json::json!({"path": "data/train.parquet"})
    }
    fn file_deps(p: &ParquetParams) -> Vec<String> {
        vec![p.path.clone()]
    }
    /// `target` and the `types` keys against the file's schema (read from
    /// its footer, no rows), and every column's type: a date column
    /// without `types:` is reported here rather than at run time. Then
    /// what the table will hold, with each column's type.
    fn infer(p: &ParquetParams, cx: &InferContext<'_>) -> Inferred {
        let path = cx.workspace.join(&p.path);
        // A missing file is reported as a missing dep.
        if !path.exists() {
            return Inferred::default();
        }
        let fields = match Table::parquet_schema(&path, &super::declared_types(&p.types)) {
            Ok(fields) => fields,
            Err(e) => {
                let why = e
                    .to_string()
                    .replace(&cx.workspace.display().to_string(), ".");
                return Inferred::default().problem(ParamError::new(&["path"], why).with_help(
                    "the file must be a whole Parquet file (written by pandas `to_parquet`, polars, Spark or Arrow)",
                ));
            }
        };
        let names: Vec<String> = fields.iter().map(|(n, _)| n.clone()).collect();
        let mut problems = super::check_columns(&p.path, &names, p.target.as_deref(), &p.types);
        for (name, problem) in &fields {
            if let Err(why) = problem {
                problems.push(
                    ParamError::new(&["path"], format!("{}: {why}", p.path)).with_help(format!(
                        "declare `{name}` `categorical` under `types:`, or drop the column from the file"
                    )),
                );
            }
        }
        if !problems.is_empty() {
            return Inferred {
                problems,
                ..Inferred::default()
            };
        }
        let columns = fields
            .into_iter()
            .map(|(name, categorical)| (name, categorical.ok()))
            .collect();
        super::read_shape(cx, &p.path, columns, p.target.as_deref())
    }
    fn run(p: &ParquetParams, ctx: &RunContext<'_>) -> Result<(), StageError> {
        let path = ctx.workspace.join(&p.path);
        let types = super::declared_types(&p.types);
        let mut t = Table::read_parquet(&path, &types).map_err(|e| {
            StageError::new(
                e.to_string()
                    .replace(&ctx.workspace.display().to_string(), "."),
            )
        })?;
        finish_read(ctx, &mut t, p.target.as_deref(), &p.path)
    }
}
