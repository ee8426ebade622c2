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
        version: 1,
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
        let rows = p.records(ctx)?;
        let base = match ctx.inputs.get("data") {
            Some(p) => Some(Table::read_arrow(p).map_err(StageError::from_error)?),
            None => None,
        };
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

impl FeedbackParams {
    /// The records of the feedback log, each row with its label added under
    /// the target's name.
    fn records(&self, ctx: &RunContext<'_>) -> Result<Vec<Map<String, Value>>, StageError> {
        let path = ctx.workspace.join(&self.path);
        let text = std::fs::read_to_string(&path)
            .map_err(|e| StageError::new(format!("cannot read {}: {e}", self.path)))?;
        let mut rows: Vec<Map<String, Value>> = Vec::new();
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let rec: Value = serde_json::from_str(line).map_err(|e| {
                StageError::new(format!(
                    "{}, line {}: not a JSON record: {e}",
                    self.path,
                    i + 1
                ))
            })?;
            let (Some(Value::Object(row)), Some(label)) = (rec.get("row"), rec.get("label")) else {
                return Err(StageError::new(format!(
                    "{}, line {}: a record needs `row` (an object) and `label`",
                    self.path,
                    i + 1
                )));
            };
            let mut row = row.clone();
            row.insert(self.target.clone(), label.clone());
            rows.push(row);
        }
        Ok(rows)
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
            ColumnData::Categorical(
                values
                    .iter()
                    .map(|v| match v {
                        None | Some(Value::Null) => None,
                        Some(Value::String(s)) => Some(s.clone()),
                        Some(other) => Some(other.to_string()),
                    })
                    .collect(),
            )
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
