//! General-purpose stages: bring a file into the cache, count its contents.

use std::fs;

use mlcycle_pipeline::{
    Artifact, ParamDoc, ParamError, PortSpec, RunContext, StageError, StageKind, StageSpec,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `util.import`: copies a workspace file into the pipeline as an artifact.
#[derive(Debug)]
pub struct Import;

/// `util.import`'s params.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportParams {
    path: String,
}

impl StageKind for Import {
    type Params = ImportParams;
    const SPEC: StageSpec = StageSpec {
        kind: "util.import",
        summary: "Bring a file from the workspace into the pipeline as an artifact",
        version: 1,
        inputs: &[],
        outputs: &[PortSpec::output(
            "data",
            "data",
            Artifact::ANY,
            "a copy of the file",
        )],
        params: &[ParamDoc::new(
            "path",
            "string",
            "file to import, relative to the workspace root",
        )],
    };
    fn example() -> Value {
        serde_json::json!({"path": "data/raw.csv"})
    }
    fn check(p: &mut ImportParams) -> Result<(), ParamError> {
        if p.path.trim().is_empty() {
            return Err(ParamError::new(&["path"], "`path` is empty"));
        }
        Ok(())
    }
    fn file_deps(p: &ImportParams) -> Vec<String> {
        vec![p.path.clone()]
    }
    fn run(p: &ImportParams, ctx: &RunContext<'_>) -> Result<(), StageError> {
        let src = ctx.workspace.join(&p.path);
        let n = fs::copy(&src, ctx.output("data")?)
            .map_err(|e| StageError::caused_by(format!("cannot copy `{}`", p.path), e))?;
        (ctx.log)(&format!("imported {} ({n} bytes)", p.path));
        Ok(())
    }
}

/// `util.wc`: line, word and byte counts of a text artifact, as JSON.
#[derive(Debug)]
pub struct Wc;

/// `util.wc`'s params.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WcParams {
    #[serde(default)]
    skip_header: bool,
}

impl StageKind for Wc {
    type Params = WcParams;
    const SPEC: StageSpec = StageSpec {
        kind: "util.wc",
        summary: "Count the lines, words and bytes of a text artifact (JSON metrics)",
        version: 1,
        inputs: &[PortSpec::input("data", Artifact::ANY, true, "a text file")],
        outputs: &[PortSpec::output(
            "metrics",
            "metrics.json",
            crate::ports::METRICS,
            "`{\"lines\": N, \"words\": N, \"bytes\": N}`",
        )],
        params: &[ParamDoc::new(
            "skip_header",
            "bool",
            "do not count the first line",
        )],
    };
    fn run(p: &WcParams, ctx: &RunContext<'_>) -> Result<(), StageError> {
        let text = fs::read_to_string(ctx.input("data")?)
            .map_err(|e| StageError::caused_by("input `data` is not readable text", e))?;
        let mut body = text.as_str();
        if p.skip_header {
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

/// The name a choice enum is written with in `with:` (its serde name).
pub fn choice_name<T: Serialize>(choice: &T) -> String {
    match serde_json::to_value(choice) {
        Ok(Value::String(s)) => s,
        _ => String::new(),
    }
}

/// Reads the table wired to input `port`.
pub fn read_table(ctx: &RunContext<'_>, port: &str) -> Result<crate::table::Table, StageError> {
    crate::table::Table::read(ctx.input(port)?).map_err(StageError::from_error)
}

/// Names the target column of `t` as a stage's `target:` param says, when
/// it is set (a table a script wrote carries none).
pub fn declared_target(
    t: &mut crate::table::Table,
    target: Option<&str>,
) -> Result<(), StageError> {
    t.set_target(target).map_err(|e| {
        StageError::new(e).with_help("`target:` names a column of the table this stage reads")
    })
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

/// A kind without params: `with:` must be empty.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoParams {}

impl StageKind for ExportCsv {
    type Params = NoParams;
    const SPEC: StageSpec = StageSpec {
        kind: "util.export_csv",
        summary: "Write a table as CSV, for scripts and tools that read CSV",
        version: 1,
        inputs: &[PortSpec::input(
            "data",
            crate::ports::TABLE,
            true,
            "the table to export",
        )],
        outputs: &[PortSpec::output(
            "data",
            "data.csv",
            Artifact::ANY,
            "the same rows as CSV with a header row (missing values are empty)",
        )],
        params: &[],
    };
    fn run(_: &NoParams, ctx: &RunContext<'_>) -> Result<(), StageError> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use mlcycle_pipeline::StageFactory;

    #[test]
    fn unknown_param_names_the_key() {
        let e = Import
            .build(&serde_json::json!({"path": "a", "pth": 1}))
            .unwrap_err()
            .remove(0);
        assert_eq!(e.path, vec!["pth"]);
        assert!(e.message.contains("unknown field"));
        assert_eq!(e.help.as_deref(), Some("did you mean `path`?"));
    }

    #[test]
    fn missing_param_is_reported() {
        let e = Import.build(&serde_json::json!({})).unwrap_err().remove(0);
        assert!(e.message.contains("missing field `path`"), "{}", e.message);
    }
}

/// `value` as JSON with its objects indented one key a line and its
/// arrays on one line each, whatever they hold. Model files are mostly
/// arrays of numbers (a forest's trees): pretty-printed, every number took
/// a line of its own, and a 100-tree forest's file was 97 MB.
pub fn to_json_readable<T: serde::Serialize + ?Sized>(value: &T) -> String {
    let mut out = Vec::new();
    let mut ser = serde_json::Serializer::with_formatter(&mut out, Readable::default());
    value.serialize(&mut ser).expect("values serialize to JSON");
    String::from_utf8(out).expect("serde_json writes UTF-8")
}

/// serde_json's pretty formatter outside arrays, its compact one inside.
#[derive(Default)]
struct Readable {
    pretty: serde_json::ser::PrettyFormatter<'static>,
    /// How many arrays the writer is inside.
    arrays: usize,
}

impl Readable {
    fn compact(&self) -> bool {
        self.arrays > 0
    }
}

macro_rules! either {
    ($self:ident, $method:ident ( $($arg:expr),* )) => {
        if $self.compact() {
            serde_json::ser::CompactFormatter.$method($($arg),*)
        } else {
            $self.pretty.$method($($arg),*)
        }
    };
}

impl serde_json::ser::Formatter for Readable {
    fn begin_array<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.arrays += 1;
        serde_json::ser::CompactFormatter.begin_array(w)
    }
    fn end_array<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.arrays -= 1;
        serde_json::ser::CompactFormatter.end_array(w)
    }
    fn begin_array_value<W: ?Sized + std::io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        serde_json::ser::CompactFormatter.begin_array_value(w, first)
    }
    fn end_array_value<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        serde_json::ser::CompactFormatter.end_array_value(w)
    }
    fn begin_object<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        either!(self, begin_object(w))
    }
    fn end_object<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        either!(self, end_object(w))
    }
    fn begin_object_key<W: ?Sized + std::io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        either!(self, begin_object_key(w, first))
    }
    fn begin_object_value<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        either!(self, begin_object_value(w))
    }
    fn end_object_value<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        either!(self, end_object_value(w))
    }
}

#[cfg(test)]
mod readable_tests {
    /// Objects are indented a key a line; arrays, and all they hold, take
    /// one line; the text reads back as the same value.
    #[test]
    fn objects_indent_and_arrays_stay_on_one_line() {
        let v = serde_json::json!({
            "format": "mlcycle.model",
            "fitted": {"trees": [{"threshold": [0.5, 1.5], "value": [[0.25, 0.75], []]}]},
            "empty": {}
        });
        let text = super::to_json_readable(&v);
        assert_eq!(
            text,
            "{\n  \"format\": \"mlcycle.model\",\n  \"fitted\": {\n    \"trees\": [{\"threshold\":[0.5,1.5],\"value\":[[0.25,0.75],[]]}]\n  },\n  \"empty\": {}\n}"
        );
        assert_eq!(serde_json::from_str::<serde_json::Value>(&text).unwrap(), v);
    }
}
