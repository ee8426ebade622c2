//! `dataset.builtin`: the data sets that ship with linfa-datasets.

use mlcycle_pipeline::{
    ParamDoc, ParamError, PortSpec, RunContext, Stage, StageError, StageFactory,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::TABLE_OUT;
use crate::table::{Column, ColumnData, Table};
use crate::util::parse_with;

/// `dataset.builtin`: the data sets that ship with linfa-datasets.
#[derive(Debug)]
pub struct Builtin;

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct BuiltinParams {
    name: String,
    /// linnerud: which of its three targets.
    #[serde(default)]
    target: Option<String>,
}

#[derive(Debug)]
struct BuiltinStage(BuiltinParams);

const BUILTIN_NAMES: &[&str] = &["iris", "diabetes", "winequality", "linnerud"];
const LINNERUD_TARGETS: &[&str] = &["Weight", "Waist", "Pulse"];

impl StageFactory for Builtin {
    fn kind(&self) -> &'static str {
        "dataset.builtin"
    }
    fn summary(&self) -> &'static str {
        "A classic data set bundled in the binary: iris, diabetes, winequality, linnerud (linfa-datasets)"
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
                name: "name",
                ty: "string (required)",
                doc: "`iris` (150 × 4 → species), `diabetes` (441 × 10 → progression; linfa-datasets 0.8.1 skips the first of the usual 442 rows), `winequality` (1599 × 11 → quality class), `linnerud` (20 × 3 → one of 3 body measures)",
            },
            ParamDoc {
                name: "target",
                ty: "string = Weight",
                doc: "linnerud only: `Weight`, `Waist` or `Pulse`",
            },
        ]
    }
    fn build(&self, with: &Value) -> Result<Box<dyn Stage>, ParamError> {
        let p: BuiltinParams = parse_with(with)?;
        if !BUILTIN_NAMES.contains(&p.name.as_str()) {
            let near = mlcycle_pipeline::suggest::did_you_mean(&p.name, BUILTIN_NAMES);
            return Err(
                ParamError::new(&["name"], format!("no built-in data set `{}`", p.name)).with_help(
                    if near.is_empty() {
                        format!("choose one of: {}", BUILTIN_NAMES.join(", "))
                    } else {
                        near
                    },
                ),
            );
        }
        match (&p.target, p.name.as_str()) {
            (Some(t), "linnerud") if !LINNERUD_TARGETS.contains(&t.as_str()) => {
                return Err(
                    ParamError::new(&["target"], format!("linnerud has no target `{t}`"))
                        .with_help(format!("choose one of: {}", LINNERUD_TARGETS.join(", "))),
                )
            }
            (Some(_), "linnerud") | (None, _) => {}
            (Some(_), _) => {
                return Err(ParamError::new(
                    &["target"],
                    format!(
                        "`target` applies to linnerud only; `{}` has one target",
                        p.name
                    ),
                ))
            }
        }
        Ok(Box::new(BuiltinStage(p)))
    }
}

impl BuiltinStage {
    fn table(&self) -> Table {
        let numeric = |name: &str, v: Vec<f64>| Column {
            name: name.to_string(),
            data: ColumnData::Numeric(v),
        };
        let features = |records: &ndarray::Array2<f64>, names: &[String]| -> Vec<Column> {
            names
                .iter()
                .enumerate()
                .map(|(j, n)| numeric(n, records.column(j).to_vec()))
                .collect()
        };
        let (mut columns, target) = match self.0.name.as_str() {
            "iris" => {
                let d = linfa_datasets::iris();
                let species = ["setosa", "versicolor", "virginica"];
                let mut c = features(&d.records, d.feature_names());
                c.push(Column {
                    name: "species".into(),
                    data: ColumnData::Categorical(
                        d.targets
                            .iter()
                            .map(|&t| Some(species[t].to_string()))
                            .collect(),
                    ),
                });
                (c, "species")
            }
            "diabetes" => {
                let d = linfa_datasets::diabetes();
                let mut c = features(&d.records, d.feature_names());
                c.push(numeric("progression", d.targets.to_vec()));
                (c, "progression")
            }
            "winequality" => {
                let d = linfa_datasets::winequality();
                let mut c = features(&d.records, d.feature_names());
                c.push(Column {
                    name: "quality".into(),
                    data: ColumnData::Categorical(
                        d.targets.iter().map(|t| Some(t.to_string())).collect(),
                    ),
                });
                (c, "quality")
            }
            _ => {
                let d = linfa_datasets::linnerud();
                let want = self.0.target.as_deref().unwrap_or("Weight");
                let j = LINNERUD_TARGETS
                    .iter()
                    .position(|t| *t == want)
                    .unwrap_or(0);
                let mut c = features(&d.records, d.feature_names());
                c.push(numeric(want, d.targets.column(j).to_vec()));
                (c, want)
            }
        };
        for c in &mut columns {
            c.name = c.name.replace(' ', "_");
        }
        Table {
            columns,
            target: Some(target.to_string()),
            transforms: vec![],
        }
    }
}

impl Stage for BuiltinStage {
    fn params(&self) -> Value {
        serde_json::to_value(&self.0).expect("params serialize")
    }
    fn run(&self, ctx: &RunContext<'_>) -> Result<(), StageError> {
        let t = self.table();
        (ctx.log)(&format!(
            "{}: {} rows × {} columns, target `{}`",
            self.0.name,
            t.n_rows(),
            t.columns.len(),
            t.target.as_deref().unwrap_or_default()
        ));
        t.write_arrow(ctx.output("data")?)
            .map_err(StageError::from_error)
    }
}
