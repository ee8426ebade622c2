//! General-purpose stages: bring a file into the cache, count its contents.

use std::fs;

use mlcycle_pipeline::{
    Artifact, ParamDoc, ParamError, PortSpec, RunContext, Stage, StageError, StageFactory,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Parses `with:` into `T`, mapping serde's message to a [`ParamError`]
/// that names the offending key.
pub fn parse_with<T: for<'de> Deserialize<'de>>(with: &Value) -> Result<T, ParamError> {
    serde_json::from_value(with.clone()).map_err(|e| {
        let msg = e.to_string();
        // serde reports "unknown field `x`, expected one of ..." and
        // "missing field `x`"; point at the key when we can.
        let key = msg.split('`').nth(1).map(str::to_string);
        let path: Vec<String> = match &key {
            Some(k) if msg.starts_with("unknown field") && with.get(k).is_some() => vec![k.clone()],
            _ => vec![],
        };
        ParamError {
            path,
            message: msg,
            help: None,
        }
    })
}

/// `util.import`: copies a workspace file into the pipeline as an artifact.
#[derive(Debug)]
pub struct Import;

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ImportParams {
    path: String,
}

#[derive(Debug)]
struct ImportStage(ImportParams);

const IMPORT_OUT: &[PortSpec] = &[PortSpec::output(
    "data",
    "data",
    Artifact::ANY,
    "a copy of the file",
)];

impl StageFactory for Import {
    fn kind(&self) -> &'static str {
        "util.import"
    }
    fn summary(&self) -> &'static str {
        "Bring a file from the workspace into the pipeline as an artifact"
    }
    fn version(&self) -> u32 {
        1
    }
    fn inputs(&self) -> &'static [PortSpec] {
        &[]
    }
    fn outputs(&self) -> &'static [PortSpec] {
        IMPORT_OUT
    }
    fn param_docs(&self) -> &'static [ParamDoc] {
        &[ParamDoc {
            name: "path",
            ty: "string (required)",
            doc: "file to import, relative to the workspace root",
        }]
    }
    fn build(&self, with: &Value) -> Result<Box<dyn Stage>, ParamError> {
        let p: ImportParams = parse_with(with)?;
        if p.path.trim().is_empty() {
            return Err(ParamError::new(&["path"], "`path` is empty"));
        }
        Ok(Box::new(ImportStage(p)))
    }
}

impl Stage for ImportStage {
    fn params(&self) -> Value {
        serde_json::to_value(&self.0).expect("params serialize")
    }
    fn file_deps(&self) -> Vec<String> {
        vec![self.0.path.clone()]
    }
    fn run(&self, ctx: &RunContext<'_>) -> Result<(), StageError> {
        let src = ctx.workspace.join(&self.0.path);
        let n = fs::copy(&src, ctx.output("data")?)
            .map_err(|e| StageError::new(format!("cannot copy `{}`: {e}", self.0.path)))?;
        (ctx.log)(&format!("imported {} ({n} bytes)", self.0.path));
        Ok(())
    }
}

/// `util.wc`: line, word and byte counts of a text artifact, as JSON.
#[derive(Debug)]
pub struct Wc;

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct WcParams {
    #[serde(default)]
    skip_header: bool,
}

#[derive(Debug)]
struct WcStage(WcParams);

const WC_IN: &[PortSpec] = &[PortSpec::input("data", Artifact::ANY, true, "a text file")];
const WC_OUT: &[PortSpec] = &[PortSpec::output(
    "metrics",
    "metrics.json",
    crate::ports::METRICS,
    "`{\"lines\": N, \"words\": N, \"bytes\": N}`",
)];

impl StageFactory for Wc {
    fn kind(&self) -> &'static str {
        "util.wc"
    }
    fn summary(&self) -> &'static str {
        "Count the lines, words and bytes of a text artifact (JSON metrics)"
    }
    fn version(&self) -> u32 {
        1
    }
    fn inputs(&self) -> &'static [PortSpec] {
        WC_IN
    }
    fn outputs(&self) -> &'static [PortSpec] {
        WC_OUT
    }
    fn param_docs(&self) -> &'static [ParamDoc] {
        &[ParamDoc {
            name: "skip_header",
            ty: "bool = false",
            doc: "do not count the first line",
        }]
    }
    fn build(&self, with: &Value) -> Result<Box<dyn Stage>, ParamError> {
        Ok(Box::new(WcStage(parse_with(with)?)))
    }
}

impl Stage for WcStage {
    fn params(&self) -> Value {
        serde_json::to_value(&self.0).expect("params serialize")
    }
    fn run(&self, ctx: &RunContext<'_>) -> Result<(), StageError> {
        let text = fs::read_to_string(ctx.input("data")?)
            .map_err(|e| StageError::caused_by("input `data` is not readable text", e))?;
        let mut body = text.as_str();
        if self.0.skip_header {
            body = body.split_once('\n').map(|(_, rest)| rest).unwrap_or("");
        }
        let m = serde_json::json!({
            "lines": body.lines().count(),
            "words": body.split_whitespace().count(),
            "bytes": body.len(),
        });
        let mut bytes = serde_json::to_vec_pretty(&m).expect("json");
        bytes.push(b'\n');
        fs::write(ctx.output("metrics")?, bytes)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_param_names_the_key() {
        let e = Import
            .build(&serde_json::json!({"path": "a", "pth": 1}))
            .unwrap_err();
        assert_eq!(e.path, vec!["pth"]);
        assert!(e.message.contains("unknown field"));
    }

    #[test]
    fn missing_param_is_reported() {
        let e = Import.build(&serde_json::json!({})).unwrap_err();
        assert!(e.message.contains("missing field `path`"), "{}", e.message);
    }
}

/// Reads the table wired to input `port`.
pub fn read_table(ctx: &RunContext<'_>, port: &str) -> Result<crate::table::Table, StageError> {
    crate::table::Table::read_arrow(ctx.input(port)?).map_err(StageError::from_error)
}

/// Writes `t` to output `port`.
pub fn write_table(
    ctx: &RunContext<'_>,
    port: &str,
    t: &crate::table::Table,
) -> Result<(), StageError> {
    t.write_arrow(ctx.output(port)?)
        .map_err(StageError::from_error)
}

/// The table's non-target column names (of one type when `numeric` is set).
pub fn feature_names(t: &crate::table::Table, numeric: Option<bool>) -> Vec<String> {
    t.columns
        .iter()
        .filter(|c| t.target.as_deref() != Some(c.name.as_str()))
        .filter(|c| match numeric {
            None => true,
            Some(n) => matches!(c.data, crate::table::ColumnData::Numeric(_)) == n,
        })
        .map(|c| c.name.clone())
        .collect()
}

/// Checks that `names` are feature columns of `t` of the wanted type; the
/// error names the column and suggests the nearest one.
pub fn check_columns(
    t: &crate::table::Table,
    names: &[String],
    numeric: Option<bool>,
    param: &str,
) -> Result<(), StageError> {
    for n in names {
        let Some(c) = t.column(n) else {
            let all = t.names();
            let near = mlcycle_pipeline::suggest::did_you_mean(n, &all);
            return Err(StageError::new(format!(
                "`{param}` names column `{n}`, which is not in the table"
            ))
            .with_help(if near.is_empty() {
                format!("columns: {}", all.join(", "))
            } else {
                format!("{near}; columns: {}", all.join(", "))
            }));
        };
        if t.target.as_deref() == Some(n.as_str()) {
            return Err(StageError::new(format!(
                "`{param}` names the target column `{n}`; targets are never transformed"
            )));
        }
        if let Some(want) = numeric {
            let is = matches!(c.data, crate::table::ColumnData::Numeric(_));
            if is != want {
                return Err(StageError::new(format!(
                    "column `{n}` is {}; `{param}` needs {} columns",
                    c.data.type_name(),
                    if want { "numeric" } else { "categorical" }
                ))
                .with_help(if want {
                    "encode it first with `features.one_hot`"
                } else {
                    "give it `types: {column: categorical}` in the dataset stage"
                }));
            }
        }
    }
    Ok(())
}

/// `util.export_csv`: a table as CSV, for tools that read CSV (a Python
/// script with the standard library, a spreadsheet).
#[derive(Debug)]
pub struct ExportCsv;

#[derive(Debug)]
struct ExportCsvStage;

const EXPORT_IN: &[PortSpec] = &[PortSpec::input(
    "data",
    crate::ports::TABLE,
    true,
    "the table to export",
)];
const EXPORT_OUT: &[PortSpec] = &[PortSpec::output(
    "data",
    "data.csv",
    Artifact::ANY,
    "the same rows as CSV with a header row (missing values are empty)",
)];

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct NoParams {}

impl StageFactory for ExportCsv {
    fn kind(&self) -> &'static str {
        "util.export_csv"
    }
    fn summary(&self) -> &'static str {
        "Write a table as CSV, for scripts and tools that read CSV"
    }
    fn version(&self) -> u32 {
        1
    }
    fn inputs(&self) -> &'static [PortSpec] {
        EXPORT_IN
    }
    fn outputs(&self) -> &'static [PortSpec] {
        EXPORT_OUT
    }
    fn param_docs(&self) -> &'static [ParamDoc] {
        &[]
    }
    fn build(&self, with: &Value) -> Result<Box<dyn Stage>, ParamError> {
        let _: NoParams = parse_with(with)?;
        Ok(Box::new(ExportCsvStage))
    }
}

impl Stage for ExportCsvStage {
    fn params(&self) -> Value {
        serde_json::json!({})
    }
    fn run(&self, ctx: &RunContext<'_>) -> Result<(), StageError> {
        let t = read_table(ctx, "data")?;
        t.write_csv(ctx.output("data")?)
            .map_err(StageError::from_error)
    }
}

/// The columns a stage works on: those named in `param` (checked to exist,
/// be features and have the wanted type), or every feature of that type.
pub fn chosen_columns(
    t: &crate::table::Table,
    named: &Option<Vec<String>>,
    numeric: bool,
    param: &str,
) -> Result<Vec<String>, StageError> {
    match named {
        Some(c) => {
            check_columns(t, c, Some(numeric), param)?;
            Ok(c.clone())
        }
        None => Ok(feature_names(t, Some(numeric))),
    }
}
