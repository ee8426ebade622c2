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
    /// `target` and the `types` keys against the file's header row.
    fn check_files(p: &CsvParams, workspace: &std::path::Path) -> Vec<ParamError> {
        let Ok(file) = std::fs::File::open(workspace.join(&p.path)) else {
            // A missing file is reported as a missing dep.
            return Vec::new();
        };
        let mut r = csv::ReaderBuilder::new()
            .delimiter(p.delimiter.as_bytes().first().copied().unwrap_or(b','))
            .from_reader(std::io::BufReader::new(file));
        let Ok(header) = r.headers() else {
            return Vec::new();
        };
        let names: Vec<String> = header.iter().map(|h| h.trim().to_string()).collect();
        super::check_columns(&p.path, &names, p.target.as_deref(), &p.types)
    }
    /// The columns from the header, text or numbers from the first rows.
    fn infer(p: &CsvParams, cx: &InferContext<'_>) -> Inferred {
        let opts = CsvOptions {
            types: super::declared_types(&p.types),
            delimiter: Some(p.delimiter.as_bytes()[0]),
        };
        let path = cx.workspace.join(&p.path);
        match Table::sniff_csv(&path, &opts, crate::shape::SNIFF_ROWS) {
            Ok(columns) => super::read_shape(cx, &p.path, columns, p.target.as_deref()),
            // Reported when the stage runs, with the line.
            Err(_) => Inferred::default(),
        }
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
