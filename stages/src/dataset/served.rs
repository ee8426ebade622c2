//! `dataset.served`: the rows `mlcycle serve` scored, as a table.

use mlcycle_pipeline::{ParamDoc, ParamError, RunContext, StageError, StageKind, StageSpec};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::TABLE_OUT;
use crate::table::{Column, ColumnData, Table};

/// `dataset.served`: the rows `mlcycle serve` scored, from its log of
/// served rows, as a table (the input columns only).
#[derive(Debug)]
pub struct Served;

/// `dataset.served`'s params (`with:`).
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServedParams {
    #[serde(default = "served_path")]
    path: String,
    /// Only the last `last` rows (a window of recent traffic).
    #[serde(default)]
    last: Option<usize>,
    /// Only rows scored by this model version (`2` or `"2"`).
    #[serde(default, deserialize_with = "string_or_number")]
    model_version: Option<String>,
}

/// A version written as a number (`mlcycle models` lists them so) or a
/// string.
fn string_or_number<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    match Option::<Value>::deserialize(d)? {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        Some(other) => Err(serde::de::Error::custom(format!(
            "a model version is a number or a string, not {other}"
        ))),
    }
}

/// Where `mlcycle serve` appends the rows it scores.
pub fn served_path() -> String {
    "feedback/served.jsonl".into()
}

impl StageKind for Served {
    type Params = ServedParams;
    const SPEC: StageSpec = StageSpec {
        kind: "dataset.served",
        summary: "The rows `mlcycle serve` scored (its input columns), optionally the last N or one model version's, as a table for `monitor.drift`",
        version: 1,
        inputs: &[],
        outputs: TABLE_OUT,
        params: &[
            ParamDoc::new("path", "string", "the log of served rows `mlcycle serve` appends to (create it empty before the first serve)"),
            ParamDoc::new("last", "integer", "only the last N rows (after `model_version`)").unset("every row"),
            ParamDoc::new("model_version", "string", "only the rows this model version scored (the bundle version `mlcycle models` lists)").unset("every version"),
        ],
    };
    fn example() -> Value {
        serde_json::json!({"last": 1000})
    }
    fn check(p: &mut ServedParams) -> Result<(), ParamError> {
        if p.last == Some(0) {
            return Err(ParamError::new(&["last"], "must be at least 1"));
        }
        Ok(())
    }
    fn file_deps(p: &ServedParams) -> Vec<String> {
        vec![p.path.clone()]
    }
    fn run(p: &ServedParams, ctx: &RunContext<'_>) -> Result<(), StageError> {
        let path = ctx.workspace.join(&p.path);
        let text = std::fs::read_to_string(&path)
            .map_err(|e| StageError::new(format!("cannot read {}: {e}", p.path)))?;
        let mut rows: Vec<Map<String, Value>> = vec![];
        let mut skipped = 0usize;
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            // A torn last line (a crash mid-append) or a foreign line is
            // skipped and counted, never fatal.
            let Ok(Value::Object(mut rec)) = serde_json::from_str::<Value>(line) else {
                skipped += 1;
                continue;
            };
            if let Some(v) = &p.model_version {
                if rec.get("model_version").and_then(Value::as_str) != Some(v.as_str()) {
                    continue;
                }
            }
            match rec.remove("inputs") {
                Some(Value::Object(inputs)) => rows.push(inputs),
                _ => skipped += 1,
            }
        }
        if let Some(n) = p.last {
            let drop = rows.len().saturating_sub(n);
            rows.drain(..drop);
        }
        // No traffic yet (the first run of a loop) is an empty table, not
        // an error: `monitor.drift` reports that there is nothing to compare.
        let mut names: Vec<String> = vec![];
        for r in &rows {
            for k in r.keys() {
                if !names.contains(k) {
                    names.push(k.clone());
                }
            }
        }
        let columns = names
            .iter()
            .map(|name| {
                let values: Vec<Option<&Value>> = rows.iter().map(|r| r.get(name)).collect();
                let numeric = values
                    .iter()
                    .all(|v| matches!(v, None | Some(Value::Null) | Some(Value::Number(_))));
                let data = if numeric {
                    ColumnData::Numeric(
                        values
                            .iter()
                            .map(|v| v.and_then(Value::as_f64).unwrap_or(f64::NAN))
                            .collect(),
                    )
                } else {
                    super::json_categorical(&values)
                };
                Column {
                    name: name.clone(),
                    data,
                }
            })
            .collect();
        let t = Table {
            columns,
            target: None,
            transforms: vec![],
        };
        (ctx.log)(&format!(
            "{} served row(s){} × {} column(s){}",
            t.n_rows(),
            p.model_version
                .as_ref()
                .map(|v| format!(" of model version `{v}`"))
                .unwrap_or_default(),
            t.columns.len(),
            if skipped > 0 {
                format!("; {skipped} unreadable line(s) skipped")
            } else {
                String::new()
            }
        ));
        t.write_arrow(ctx.output("data")?)
            .map_err(StageError::from_error)
    }
}
