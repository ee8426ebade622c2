//! `dataset.csv`: a CSV file as a table.

use mlcycle_pipeline::{
    InferContext, Inferred, ParamDoc, ParamError, RunContext, StageError, StageKind, StageSpec,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{finish_read, TABLE_OUT};
use crate::table::{CsvOptions, Table};

/// `dataset.csv`: a CSV file as a table.
#[derive(Debug)]
pub struct Csv;

/// `dataset.csv`'s params (`with:`).
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CsvParams {
    path: String,
    #[serde(default)]
    target: Option<String>,
    /// Column → `numeric` or `categorical`.
    #[serde(default)]
    types: std::collections::BTreeMap<String, super::ColumnType>,
    #[serde(default = "comma")]
    delimiter: String,
}

fn comma() -> String {
    ",".into()
}

impl StageKind for Csv {
    type Params = CsvParams;
    const SPEC: StageSpec = StageSpec {
        kind: "dataset.csv",
        summary:
            "Read a CSV file into a table (types inferred or declared, bad rows reported by line)",
        version: 1,
        inputs: &[],
        outputs: TABLE_OUT,
        params: &[
            ParamDoc::new(
                "path",
                "string",
                "CSV file with a header row, relative to the workspace",
            ),
            ParamDoc::new("target", "string", "the column to predict").unset("none"),
            ParamDoc::new(
                "types",
                "map",
                "column → `numeric` or `categorical`; others are inferred",
            ),
            ParamDoc::new("delimiter", "string", "one ASCII character"),
        ],
    };
    fn example() -> Value {
        serde_json::json!({"path": "data/train.csv"})
    }
    fn check(p: &mut CsvParams) -> Result<(), ParamError> {
        if p.delimiter.len() != 1 || !p.delimiter.is_ascii() {
            return Err(ParamError::new(
                &["delimiter"],
                "`delimiter` must be one ASCII character",
            ));
        }
        Ok(())
    }
    fn file_deps(p: &CsvParams) -> Vec<String> {
        vec![p.path.clone()]
    }
    /// `target` and the `types` keys against the header row, and what the
    /// table will hold: its columns, text or numbers from the first rows.
    fn infer(p: &CsvParams, cx: &InferContext<'_>) -> Inferred {
        let path = cx.workspace.join(&p.path);
        // A missing file is reported as a missing dep, a bad header or row
        // when the stage runs, with its line.
        let Ok(sniffed) =
            Table::sniff_csv(&path, p.delimiter.as_bytes()[0], crate::shape::SNIFF_ROWS)
        else {
            return Inferred::default();
        };
        let names: Vec<String> = sniffed.iter().map(|(n, _)| n.clone()).collect();
        let problems = super::check_columns(&p.path, &names, p.target.as_deref(), &p.types);
        if !problems.is_empty() {
            return Inferred {
                problems,
                ..Inferred::default()
            };
        }
        let columns = sniffed
            .into_iter()
            .map(|(name, text)| {
                let categorical = match p.types.get(&name) {
                    Some(t) => Some(*t == super::ColumnType::Categorical),
                    None => text.then_some(true),
                };
                (name, categorical)
            })
            .collect();
        super::read_shape(cx, &p.path, columns, p.target.as_deref())
    }
    fn run(p: &CsvParams, ctx: &RunContext<'_>) -> Result<(), StageError> {
        let opts = CsvOptions {
            types: super::declared_types(&p.types),
            delimiter: Some(p.delimiter.as_bytes()[0]),
        };
        let path = ctx.workspace.join(&p.path);
        let mut t = Table::read_csv(&path, &opts).map_err(|e| {
            StageError::new(
                e.to_string()
                    .replace(&ctx.workspace.display().to_string(), "."),
            )
        })?;
        finish_read(ctx, &mut t, p.target.as_deref(), &p.path)
    }
}
