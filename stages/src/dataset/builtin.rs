//! `dataset.builtin`: the data sets that ship with linfa-datasets.

use mlcycle_pipeline::{
    InferContext, Inferred, ParamDoc, ParamError, RunContext, StageError, StageKind, StageSpec,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::TABLE_OUT;
use crate::table::{Column, ColumnData, Table};

/// `dataset.builtin`: the data sets that ship with linfa-datasets.
#[derive(Debug)]
pub struct Builtin;

/// `dataset.builtin`'s params (`with:`).
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BuiltinParams {
    name: String,
    /// linnerud: which of its three targets.
    #[serde(default)]
    target: Option<String>,
}

const BUILTIN_NAMES: &[&str] = &["iris", "diabetes", "winequality", "linnerud"];
const LINNERUD_TARGETS: &[&str] = &["Weight", "Waist", "Pulse"];

impl StageKind for Builtin {
    type Params = BuiltinParams;
    const SPEC: StageSpec = StageSpec {
        kind: "dataset.builtin",
        summary: "A classic data set bundled in the binary: iris, diabetes, winequality, linnerud (linfa-datasets)",
        version: 1,
        inputs: &[],
        outputs: TABLE_OUT,
        params: &[
            ParamDoc::new("name", "string", "`iris` (150 × 4 → species), `diabetes` (441 × 10 → progression; linfa-datasets 0.8.1 skips the first of the usual 442 rows), `winequality` (1599 × 11 → quality class), `linnerud` (20 × 3 → one of 3 body measures)"),
            ParamDoc::new("target", "string", "linnerud only: `Weight`, `Waist` or `Pulse`").unset("Weight (linnerud); the data set's own target otherwise"),
        ],
    };
    fn example() -> Value {
        serde_json::json!({"name": "iris"})
    }
    fn check(p: &mut BuiltinParams) -> Result<(), ParamError> {
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
            (Some(_), "linnerud") => {}
            // Filled in, so `target: Weight` is the same stage as none.
            (None, "linnerud") => p.target = Some("Weight".into()),
            (None, _) => {}
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
        Ok(())
    }
    /// The target and its type; the feature columns are all numbers.
    fn infer(p: &BuiltinParams, cx: &InferContext<'_>) -> Inferred {
        use crate::shape::Kind;
        let (target, kind) = match p.name.as_str() {
            "iris" => ("species", Kind::Categorical),
            "winequality" => ("quality", Kind::Categorical),
            "diabetes" => ("progression", Kind::Numeric),
            _ => (p.target.as_deref().unwrap_or("Weight"), Kind::Numeric),
        };
        let mut shape = crate::shape::TableShape::read(
            cx.stage,
            &format!("the {} data set", p.name),
            vec![(target.to_string(), kind)],
            Some(target),
        );
        shape.complete = false;
        Inferred::default().output("data", mlcycle_pipeline::Facts::new(shape))
    }
    fn run(p: &BuiltinParams, ctx: &RunContext<'_>) -> Result<(), StageError> {
        let t = p.table();
        (ctx.log)(&format!(
            "{}: {} rows × {} columns, target `{}`",
            p.name,
            t.n_rows(),
            t.columns.len(),
            t.target.as_deref().unwrap_or_default()
        ));
        t.write_arrow(ctx.output("data")?)
            .map_err(StageError::from_error)
    }
}

impl BuiltinParams {
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
        let (mut columns, target) = match self.name.as_str() {
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
                let want = self.target.as_deref().unwrap_or("Weight");
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
