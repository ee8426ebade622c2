//! `dataset.feedback`: labelled feedback from `mlcycle serve` as a table.

use mlcycle_pipeline::{ParamDoc, PortSpec, RunContext, StageError, StageKind, StageSpec};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::TABLE_OUT;
use crate::table::{Column, ColumnData, Table};

/// `dataset.feedback`: labelled feedback from `mlcycle serve` as a table.
#[derive(Debug)]
pub struct Feedback;

/// `dataset.feedback`'s params (`with:`).
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeedbackParams {
    #[serde(default = "feedback_path")]
    path: String,
    /// The name the label column gets (the model's target).
    target: String,
    /// `numeric` or `categorical` labels; inferred when absent.
    #[serde(default)]
    label_type: Option<super::ColumnType>,
}

fn feedback_path() -> String {
    "feedback/labels.jsonl".into()
}

const FEEDBACK_IN: &[PortSpec] = &[PortSpec::input(
    "data",
    crate::ports::TABLE,
    false,
    "a base table to append the feedback rows to (same columns)",
)];

impl StageKind for Feedback {
    type Params = FeedbackParams;
    const SPEC: StageSpec = StageSpec {
        kind: "dataset.feedback",
        summary: "Labelled feedback collected by `mlcycle serve` as a table, optionally appended to a base table",
        // 2: the latest label of a prediction wins; bad lines are skipped.
        version: 2,
        inputs: FEEDBACK_IN,
        outputs: TABLE_OUT,
        params: &[
            ParamDoc::new("target", "string", "the name of the label column (the model's target)"),
            ParamDoc::new("path", "string", "the feedback log `mlcycle serve` appends to (create it empty before the first serve)"),
            ParamDoc::new("label_type", "`numeric` | `categorical`", "the label's type; inferred from the records when absent").unset("inferred from the records"),
        ],
    };
    fn example() -> Value {
        serde_json::json!({"target": "price"})
    }
    fn file_deps(p: &FeedbackParams) -> Vec<String> {
        vec![p.path.clone()]
    }
    fn run(p: &FeedbackParams, ctx: &RunContext<'_>) -> Result<(), StageError> {
        let (records, mut skipped) = p.records(ctx)?;
        let base = match ctx.inputs.get("data") {
            Some(p) => Some(Table::read(p).map_err(StageError::from_error)?),
            None => None,
        };
        // A record whose label (or a numeric feature) is not a number where
        // one belongs is skipped and reported: one bad line never fails
        // the whole retrain.
        // Without a declared or base type, the labels are numbers when most
        // of them are (a stray string must not turn prices into text).
        let labels = records.iter().filter_map(|(_, r)| r.get(&p.target));
        let (numbers, all) =
            labels.fold((0, 0), |(n, a), v| (n + usize::from(v.is_number()), a + 1));
        let target_numeric = numbers * 2 > all;
        let mut rows = Vec::with_capacity(records.len());
        for (line, row) in records {
            match row
                .iter()
                .find(|(k, v)| p.numeric(k, base.as_ref(), target_numeric) && !is_number_or_null(v))
            {
                Some((k, v)) => skipped.push(format!("line {line}: {v} for numeric column `{k}`")),
                None => rows.push(row),
            }
        }
        if !skipped.is_empty() {
            (ctx.log)(&format!(
                "skipped {} bad feedback record(s) in {}: {}",
                skipped.len(),
                p.path,
                skipped.join("; ")
            ));
        }
        // Columns: the base table's, else every key seen, in first-seen order.
        let mut names: Vec<String> = match &base {
            Some(b) => b.names().into_iter().map(str::to_string).collect(),
            None => Vec::new(),
        };
        if base.is_none() {
            for r in &rows {
                for k in r.keys() {
                    if !names.contains(k) {
                        names.push(k.clone());
                    }
                }
            }
        }
        let columns = names
            .iter()
            .map(|name| p.column(name, &rows, base.as_ref()))
            .collect::<Result<Vec<_>, _>>()?;
        let fb = Table {
            columns,
            target: Some(p.target.clone()),
            transforms: vec![],
        };
        let n_feedback = fb.n_rows();
        let t = p.append(base, fb)?;
        (ctx.log)(&format!(
            "{n_feedback} feedback row(s){}",
            if ctx.inputs.contains_key("data") {
                format!(", {} rows with the base table", t.n_rows())
            } else {
                String::new()
            }
        ));
        t.write_arrow(ctx.output("data")?)
            .map_err(StageError::from_error)
    }
}

/// A usable value for a numeric column: null (missing), or a number whose
/// square stays finite (`1e308` would turn the retrain's MSE and R² into
/// NaN; `mlcycle serve` refuses such labels too).
fn is_number_or_null(v: &Value) -> bool {
    v.is_null()
        || v.as_f64()
            .is_some_and(|x| x.is_finite() && x.abs() <= 1e150)
}

impl FeedbackParams {
    /// The records of the feedback log (with their line numbers), each row
    /// with its label added under the target's name, and the lines skipped
    /// as unreadable. A prediction labelled again (the same
    /// `prediction_id`) keeps its latest label, in the place of the first.
    #[allow(clippy::type_complexity)]
    fn records(
        &self,
        ctx: &RunContext<'_>,
    ) -> Result<(Vec<(usize, Map<String, Value>)>, Vec<String>), StageError> {
        let path = ctx.workspace.join(&self.path);
        let text = std::fs::read_to_string(&path)
            .map_err(|e| StageError::new(format!("cannot read {}: {e}", self.path)))?;
        let mut rows: Vec<(usize, Map<String, Value>)> = Vec::new();
        let mut by_id: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
        let mut skipped = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let n = i + 1;
            if line.trim().is_empty() {
                continue;
            }
            let rec: Value = match serde_json::from_str(line) {
                Ok(v) => v,
                Err(e) => {
                    skipped.push(format!("line {n}: not a JSON record ({e})"));
                    continue;
                }
            };
            let (Some(Value::Object(row)), Some(label)) = (rec.get("row"), rec.get("label")) else {
                skipped.push(format!(
                    "line {n}: a record needs `row` (an object) and `label`"
                ));
                continue;
            };
            if label.is_null() || label.is_object() || label.is_array() || label == "" {
                skipped.push(format!("line {n}: `label` {label} is not a value"));
                continue;
            }
            let mut row = row.clone();
            row.insert(self.target.clone(), label.clone());
            match rec.get("prediction_id").and_then(Value::as_str) {
                Some(id) => match by_id.get(id) {
                    Some(&at) => rows[at] = (n, row),
                    None => {
                        by_id.insert(id.to_string(), rows.len());
                        rows.push((n, row));
                    }
                },
                None => rows.push((n, row)),
            }
        }
        Ok((rows, skipped))
    }

    /// Whether column `name` must hold numbers: declared (`label_type`),
    /// else as in the base table, else (the target) as most labels are.
    fn numeric(&self, name: &str, base: Option<&Table>, target_numeric: bool) -> bool {
        if name == self.target {
            if let Some(t) = self.label_type {
                return t.as_str() == "numeric";
            }
        }
        match base.and_then(|b| b.column(name)) {
            Some(c) => c.data.type_name() == "numeric",
            None => name == self.target && target_numeric,
        }
    }

    /// The column `name` of the feedback rows, typed by `label_type`, else
    /// by the base table, else by its values.
    fn column(
        &self,
        name: &str,
        rows: &[Map<String, Value>],
        base: Option<&Table>,
    ) -> Result<Column, StageError> {
        let values: Vec<Option<&Value>> = rows.iter().map(|r| r.get(name)).collect();
        let declared = if name == self.target {
            self.label_type.map(super::ColumnType::as_str)
        } else {
            None
        };
        let base_type = base
            .and_then(|b| b.column(name))
            .map(|c| c.data.type_name());
        let numeric = match declared.or(base_type) {
            Some(t) => t == "numeric",
            None => values
                .iter()
                .all(|v| matches!(v, None | Some(Value::Null) | Some(Value::Number(_)))),
        };
        let data = if numeric {
            let mut out = Vec::with_capacity(values.len());
            for (i, v) in values.iter().enumerate() {
                out.push(match v {
                    None | Some(Value::Null) => f64::NAN,
                    Some(Value::Number(n)) => n.as_f64().unwrap_or(f64::NAN),
                    Some(other) => {
                        return Err(StageError::new(format!(
                            "{}: record {} has {other} for numeric column `{name}`",
                            self.path,
                            i + 1
                        )))
                    }
                });
            }
            ColumnData::Numeric(out)
        } else {
            super::json_categorical(&values)
        };
        Ok(Column {
            name: name.to_string(),
            data,
        })
    }

    /// The feedback table appended to the base table, if there is one.
    fn append(&self, base: Option<Table>, fb: Table) -> Result<Table, StageError> {
        Ok(match base {
            None => fb,
            Some(mut b) => {
                if b.target.as_deref() != Some(self.target.as_str()) {
                    return Err(StageError::new(format!(
                        "the base table's target is {}, but `target` is `{}`",
                        b.target
                            .as_deref()
                            .map_or("none".to_string(), |t| format!("`{t}`")),
                        self.target
                    )));
                }
                for (bc, fc) in b.columns.iter_mut().zip(fb.columns) {
                    match (&mut bc.data, fc.data) {
                        (ColumnData::Numeric(a), ColumnData::Numeric(x)) => a.extend(x),
                        (ColumnData::Categorical(a), ColumnData::Categorical(x)) => a.extend(x),
                        _ => unreachable!("typed by the base table"),
                    }
                }
                b
            }
        })
    }
}
