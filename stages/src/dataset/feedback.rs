//! `dataset.feedback`: labelled feedback from `mlcycle serve` as a table.

use mlcycle_pipeline::{
    ParamDoc, ParamError, PortSpec, RunContext, Stage, StageError, StageFactory,
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::TABLE_OUT;
use crate::table::{Column, ColumnData, Table};
use crate::util::parse_with;

/// `dataset.feedback`: labelled feedback from `mlcycle serve` as a table.
#[derive(Debug)]
pub struct Feedback;

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct FeedbackParams {
    #[serde(default = "feedback_path")]
    path: String,
    /// The name the label column gets (the model's target).
    target: String,
    /// `numeric` or `categorical` labels; inferred when absent.
    #[serde(default)]
    label_type: Option<String>,
}

fn feedback_path() -> String {
    "feedback/labels.jsonl".into()
}

#[derive(Debug)]
struct FeedbackStage(FeedbackParams);

const FEEDBACK_IN: &[PortSpec] = &[PortSpec::input(
    "data",
    crate::ports::TABLE,
    false,
    "a base table to append the feedback rows to (same columns)",
)];

impl StageFactory for Feedback {
    fn kind(&self) -> &'static str {
        "dataset.feedback"
    }
    fn summary(&self) -> &'static str {
        "Labelled feedback collected by `mlcycle serve` as a table, optionally appended to a base table"
    }
    fn version(&self) -> u32 {
        1
    }
    fn inputs(&self) -> &'static [PortSpec] {
        FEEDBACK_IN
    }
    fn outputs(&self) -> &'static [PortSpec] {
        TABLE_OUT
    }
    fn param_docs(&self) -> &'static [ParamDoc] {
        &[
            ParamDoc {
                name: "target",
                ty: "string (required)",
                doc: "the name of the label column (the model's target)",
            },
            ParamDoc {
                name: "path",
                ty: "string = feedback/labels.jsonl",
                doc: "the feedback log `mlcycle serve` appends to (create it empty before the first serve)",
            },
            ParamDoc {
                name: "label_type",
                ty: "`numeric` | `categorical`",
                doc: "the label's type; inferred from the records when absent",
            },
        ]
    }
    fn build(&self, with: &Value) -> Result<Box<dyn Stage>, ParamError> {
        let p: FeedbackParams = parse_with(with)?;
        if let Some(t) = &p.label_type {
            if t != "numeric" && t != "categorical" {
                return Err(ParamError::new(
                    &["label_type"],
                    format!("`label_type` must be `numeric` or `categorical`, got `{t}`"),
                ));
            }
        }
        Ok(Box::new(FeedbackStage(p)))
    }
}

impl Stage for FeedbackStage {
    fn params(&self) -> Value {
        serde_json::to_value(&self.0).expect("params serialize")
    }
    fn file_deps(&self) -> Vec<String> {
        vec![self.0.path.clone()]
    }
    fn run(&self, ctx: &RunContext<'_>) -> Result<(), StageError> {
        let rows = self.records(ctx)?;
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
            .map(|name| self.column(name, &rows, base.as_ref()))
            .collect::<Result<Vec<_>, _>>()?;
        let fb = Table {
            columns,
            target: Some(self.0.target.clone()),
            transforms: vec![],
        };
        let n_feedback = fb.n_rows();
        let t = self.append(base, fb)?;
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

impl FeedbackStage {
    /// The records of the feedback log, each row with its label added under
    /// the target's name.
    fn records(&self, ctx: &RunContext<'_>) -> Result<Vec<Map<String, Value>>, StageError> {
        let path = ctx.workspace.join(&self.0.path);
        let text = std::fs::read_to_string(&path)
            .map_err(|e| StageError::new(format!("cannot read {}: {e}", self.0.path)))?;
        let mut rows: Vec<Map<String, Value>> = Vec::new();
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let rec: Value = serde_json::from_str(line).map_err(|e| {
                StageError::new(format!(
                    "{}, line {}: not a JSON record: {e}",
                    self.0.path,
                    i + 1
                ))
            })?;
            let (Some(Value::Object(row)), Some(label)) = (rec.get("row"), rec.get("label")) else {
                return Err(StageError::new(format!(
                    "{}, line {}: a record needs `row` (an object) and `label`",
                    self.0.path,
                    i + 1
                )));
            };
            let mut row = row.clone();
            row.insert(self.0.target.clone(), label.clone());
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
        let declared = if name == self.0.target {
            self.0.label_type.as_deref()
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
                            self.0.path,
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
                if b.target.as_deref() != Some(self.0.target.as_str()) {
                    return Err(StageError::new(format!(
                        "the base table's target is {}, but `target` is `{}`",
                        b.target
                            .as_deref()
                            .map_or("none".to_string(), |t| format!("`{t}`")),
                        self.0.target
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
