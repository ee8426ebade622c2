//! Dataset stages: tables from CSV files, and seeded synthetic data.

use std::collections::HashMap;

use mlcycle_pipeline::{
    ParamDoc, ParamError, PortSpec, RunContext, Stage, StageError, StageFactory,
};
use rand::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::table::{Column, ColumnData, CsvOptions, Table};
use crate::util::parse_with;

const TABLE_OUT: &[PortSpec] = &[PortSpec::output(
    "data",
    "data.arrow",
    crate::ports::TABLE,
    "the table (Arrow IPC; pandas `read_feather`, polars `read_ipc`)",
)];

/// `dataset.csv`: a CSV file as a table.
#[derive(Debug)]
pub struct Csv;

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CsvParams {
    path: String,
    #[serde(default)]
    target: Option<String>,
    /// Column → `numeric` or `categorical`.
    #[serde(default)]
    types: std::collections::BTreeMap<String, String>,
    #[serde(default = "comma")]
    delimiter: String,
}

fn comma() -> String {
    ",".into()
}

#[derive(Debug)]
struct CsvStage(CsvParams);

impl StageFactory for Csv {
    fn kind(&self) -> &'static str {
        "dataset.csv"
    }
    fn summary(&self) -> &'static str {
        "Read a CSV file into a table (types inferred or declared, bad rows reported by line)"
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
                name: "path",
                ty: "string (required)",
                doc: "CSV file with a header row, relative to the workspace",
            },
            ParamDoc {
                name: "target",
                ty: "string = none",
                doc: "the column to predict",
            },
            ParamDoc {
                name: "types",
                ty: "map = {}",
                doc: "column → `numeric` or `categorical`; others are inferred",
            },
            ParamDoc {
                name: "delimiter",
                ty: "string = \",\"",
                doc: "one ASCII character",
            },
        ]
    }
    fn build(&self, with: &Value) -> Result<Box<dyn Stage>, ParamError> {
        let p: CsvParams = parse_with(with)?;
        if p.delimiter.len() != 1 || !p.delimiter.is_ascii() {
            return Err(ParamError::new(
                &["delimiter"],
                "`delimiter` must be one ASCII character",
            ));
        }
        for (col, ty) in &p.types {
            if ty != "numeric" && ty != "categorical" {
                return Err(ParamError::new(
                    &["types", col],
                    format!("type `{ty}` of column `{col}` must be `numeric` or `categorical`"),
                ));
            }
        }
        Ok(Box::new(CsvStage(p)))
    }
}

impl Stage for CsvStage {
    fn params(&self) -> Value {
        serde_json::to_value(&self.0).expect("params serialize")
    }
    fn file_deps(&self) -> Vec<String> {
        vec![self.0.path.clone()]
    }
    fn run(&self, ctx: &RunContext<'_>) -> Result<(), StageError> {
        let opts = CsvOptions {
            types: self.0.types.clone().into_iter().collect::<HashMap<_, _>>(),
            delimiter: Some(self.0.delimiter.as_bytes()[0]),
        };
        let path = ctx.workspace.join(&self.0.path);
        let mut t = Table::read_csv(&path, &opts).map_err(|e| {
            StageError::new(
                e.to_string()
                    .replace(&ctx.workspace.display().to_string(), "."),
            )
        })?;
        finish_read(ctx, &mut t, self.0.target.as_deref(), &self.0.path)
    }
}

/// Sets the target (checking it exists), logs, and writes the table.
fn finish_read(
    ctx: &RunContext<'_>,
    t: &mut Table,
    target: Option<&str>,
    path: &str,
) -> Result<(), StageError> {
    if let Some(target) = target {
        if t.column(target).is_none() {
            let names = t.names();
            return Err(StageError::new(format!(
                "target column `{target}` is not in {path} {}",
                mlcycle_pipeline::suggest::did_you_mean(target, &names)
            ))
            .with_help(format!("the columns are: {}", names.join(", "))));
        }
        t.target = Some(target.to_string());
    }
    (ctx.log)(&format!(
        "read {} rows × {} columns from {path}",
        t.n_rows(),
        t.columns.len(),
    ));
    t.write_arrow(ctx.output("data")?)
        .map_err(|e| StageError::new(e.to_string()))
}

/// `dataset.parquet`: a Parquet file as a table.
#[cfg(feature = "parquet")]
#[derive(Debug)]
pub struct Parquet;

#[cfg(feature = "parquet")]
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ParquetParams {
    path: String,
    #[serde(default)]
    target: Option<String>,
    #[serde(default)]
    types: std::collections::BTreeMap<String, String>,
}

#[cfg(feature = "parquet")]
#[derive(Debug)]
struct ParquetStage(ParquetParams);

#[cfg(feature = "parquet")]
impl StageFactory for Parquet {
    fn kind(&self) -> &'static str {
        "dataset.parquet"
    }
    fn summary(&self) -> &'static str {
        "Read a Parquet file into a table (numbers stay numeric, text and booleans become categorical)"
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
                name: "path",
                ty: "string (required)",
                doc: "Parquet file, relative to the workspace",
            },
            ParamDoc {
                name: "target",
                ty: "string = none",
                doc: "the column to predict",
            },
            ParamDoc {
                name: "types",
                ty: "map = {}",
                doc: "column → `numeric` or `categorical`, overriding the file's types (e.g. integer class codes as `categorical`)",
            },
        ]
    }
    fn build(&self, with: &Value) -> Result<Box<dyn Stage>, ParamError> {
        let p: ParquetParams = parse_with(with)?;
        for (col, ty) in &p.types {
            if ty != "numeric" && ty != "categorical" {
                return Err(ParamError::new(
                    &["types", col],
                    format!("type `{ty}` of column `{col}` must be `numeric` or `categorical`"),
                ));
            }
        }
        Ok(Box::new(ParquetStage(p)))
    }
}

#[cfg(feature = "parquet")]
impl Stage for ParquetStage {
    fn params(&self) -> Value {
        serde_json::to_value(&self.0).expect("params serialize")
    }
    fn file_deps(&self) -> Vec<String> {
        vec![self.0.path.clone()]
    }
    fn run(&self, ctx: &RunContext<'_>) -> Result<(), StageError> {
        let path = ctx.workspace.join(&self.0.path);
        let types = self.0.types.clone().into_iter().collect::<HashMap<_, _>>();
        let mut t = Table::read_parquet(&path, &types).map_err(|e| {
            StageError::new(
                e.to_string()
                    .replace(&ctx.workspace.display().to_string(), "."),
            )
        })?;
        finish_read(ctx, &mut t, self.0.target.as_deref(), &self.0.path)
    }
}

/// `dataset.synthetic`: seeded synthetic data.
#[derive(Debug)]
pub struct Synthetic;

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SyntheticParams {
    kind: SyntheticKind,
    #[serde(default = "default_rows")]
    rows: usize,
    #[serde(default = "default_seed")]
    seed: u64,
    /// Standard deviation of the noise (house_prices: in price units).
    #[serde(default)]
    noise: Option<f64>,
    /// regression and blobs: number of feature columns.
    #[serde(default = "default_features")]
    features: usize,
    /// blobs: number of classes.
    #[serde(default = "default_classes")]
    classes: usize,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum SyntheticKind {
    HousePrices,
    Regression,
    Blobs,
}

fn default_rows() -> usize {
    100
}
fn default_seed() -> u64 {
    42
}
fn default_features() -> usize {
    3
}
fn default_classes() -> usize {
    3
}

#[derive(Debug)]
struct SyntheticStage(SyntheticParams);

impl StageFactory for Synthetic {
    fn kind(&self) -> &'static str {
        "dataset.synthetic"
    }
    fn summary(&self) -> &'static str {
        "Seeded synthetic data: house prices (area → price), regression, classification blobs"
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
                name: "kind",
                ty: "string (required)",
                doc: "`house_prices` (area in m² → price), `regression` (x1..xN → y) or `blobs` (x1..xN → class)",
            },
            ParamDoc {
                name: "rows",
                ty: "integer = 100",
                doc: "number of rows",
            },
            ParamDoc {
                name: "seed",
                ty: "integer = 42",
                doc: "random seed: the same seed gives the same bytes",
            },
            ParamDoc {
                name: "noise",
                ty: "number = 20000 | 1 | 1",
                doc: "noise standard deviation (house_prices, regression) or blob spread",
            },
            ParamDoc {
                name: "features",
                ty: "integer = 3",
                doc: "regression, blobs: feature columns",
            },
            ParamDoc {
                name: "classes",
                ty: "integer = 3",
                doc: "blobs: number of classes",
            },
        ]
    }
    fn build(&self, with: &Value) -> Result<Box<dyn Stage>, ParamError> {
        let mut p: SyntheticParams = parse_with(with)?;
        if p.rows == 0 {
            return Err(ParamError::new(&["rows"], "`rows` must be at least 1"));
        }
        if p.features == 0 {
            return Err(ParamError::new(
                &["features"],
                "`features` must be at least 1",
            ));
        }
        if p.classes < 2 {
            return Err(ParamError::new(
                &["classes"],
                "`classes` must be at least 2",
            ));
        }
        let noise = p.noise.get_or_insert(match p.kind {
            SyntheticKind::HousePrices => 20_000.0,
            SyntheticKind::Regression | SyntheticKind::Blobs => 1.0,
        });
        if !noise.is_finite() || *noise < 0.0 {
            return Err(ParamError::new(
                &["noise"],
                "`noise` must be a finite number ≥ 0",
            ));
        }
        Ok(Box::new(SyntheticStage(p)))
    }
}

/// A standard normal sample (Box–Muller).
pub(crate) fn normal(rng: &mut impl Rng) -> f64 {
    let u1: f64 = rng.gen_range(f64::EPSILON..1.0);
    let u2: f64 = rng.gen();
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

/// Rounds to 6 significant decimals so the CSV/Arrow output is stable and readable.
fn round6(x: f64) -> f64 {
    (x * 1e6).round() / 1e6
}

impl SyntheticStage {
    fn generate(&self) -> Table {
        let p = &self.0;
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(p.seed);
        let noise = p.noise.unwrap_or(1.0);
        let numeric = |name: &str, v: Vec<f64>| Column {
            name: name.to_string(),
            data: ColumnData::Numeric(v),
        };
        match p.kind {
            SyntheticKind::HousePrices => {
                let area: Vec<f64> = (0..p.rows)
                    .map(|_| (rng.gen_range(40.0..250.0f64) * 10.0).round() / 10.0)
                    .collect();
                let price: Vec<f64> = area
                    .iter()
                    .map(|a| (3_000.0 * a + 50_000.0 + noise * normal(&mut rng)).round())
                    .collect();
                Table {
                    columns: vec![numeric("area", area), numeric("price", price)],
                    target: Some("price".into()),
                    transforms: vec![],
                }
            }
            SyntheticKind::Regression => {
                let weights: Vec<f64> = (0..p.features)
                    .map(|_| round6(rng.gen_range(-5.0..5.0)))
                    .collect();
                let mut cols: Vec<Vec<f64>> = vec![Vec::with_capacity(p.rows); p.features];
                let mut y = Vec::with_capacity(p.rows);
                for _ in 0..p.rows {
                    let mut acc = 1.0;
                    for (j, w) in weights.iter().enumerate() {
                        let x = round6(normal(&mut rng));
                        acc += w * x;
                        cols[j].push(x);
                    }
                    y.push(round6(acc + noise * normal(&mut rng)));
                }
                let mut columns: Vec<Column> = cols
                    .into_iter()
                    .enumerate()
                    .map(|(j, v)| numeric(&format!("x{}", j + 1), v))
                    .collect();
                columns.push(numeric("y", y));
                Table {
                    columns,
                    target: Some("y".into()),
                    transforms: vec![],
                }
            }
            SyntheticKind::Blobs => {
                let centers: Vec<Vec<f64>> = (0..p.classes)
                    .map(|_| {
                        (0..p.features)
                            .map(|_| rng.gen_range(-10.0..10.0))
                            .collect()
                    })
                    .collect();
                let mut cols: Vec<Vec<f64>> = vec![Vec::with_capacity(p.rows); p.features];
                let mut class = Vec::with_capacity(p.rows);
                for i in 0..p.rows {
                    let c = i % p.classes;
                    for (j, col) in cols.iter_mut().enumerate() {
                        col.push(round6(centers[c][j] + noise * normal(&mut rng)));
                    }
                    class.push(Some(format!("c{c}")));
                }
                let mut columns: Vec<Column> = cols
                    .into_iter()
                    .enumerate()
                    .map(|(j, v)| numeric(&format!("x{}", j + 1), v))
                    .collect();
                columns.push(Column {
                    name: "class".into(),
                    data: ColumnData::Categorical(class),
                });
                Table {
                    columns,
                    target: Some("class".into()),
                    transforms: vec![],
                }
            }
        }
    }
}

impl Stage for SyntheticStage {
    fn params(&self) -> Value {
        serde_json::to_value(&self.0).expect("params serialize")
    }
    fn run(&self, ctx: &RunContext<'_>) -> Result<(), StageError> {
        let t = self.generate();
        (ctx.log)(&format!(
            "generated {} rows × {} columns",
            t.n_rows(),
            t.columns.len()
        ));
        t.write_arrow(ctx.output("data")?)
            .map_err(|e| StageError::new(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build(with: Value) -> SyntheticStage {
        let p: SyntheticParams = serde_json::from_value(with).unwrap();
        let mut p = p;
        p.noise.get_or_insert(20_000.0);
        SyntheticStage(p)
    }

    #[test]
    fn house_prices_are_seeded_and_plausible() {
        let a =
            build(serde_json::json!({"kind": "house_prices", "rows": 50, "seed": 7})).generate();
        let b =
            build(serde_json::json!({"kind": "house_prices", "rows": 50, "seed": 7})).generate();
        assert_eq!(a, b);
        let c =
            build(serde_json::json!({"kind": "house_prices", "rows": 50, "seed": 8})).generate();
        assert_ne!(a, c);
        match (&a.columns[0].data, &a.columns[1].data) {
            (ColumnData::Numeric(area), ColumnData::Numeric(price)) => {
                assert!(area.iter().all(|x| (40.0..250.0).contains(x)));
                assert!(price
                    .iter()
                    .zip(area)
                    .all(|(p, a)| (*p - (3_000.0 * a + 50_000.0)).abs() < 200_000.0));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(a.target.as_deref(), Some("price"));
    }

    #[test]
    fn bad_params_name_the_key() {
        let e = Synthetic
            .build(&serde_json::json!({"kind": "house_prices", "rows": 0}))
            .unwrap_err();
        assert_eq!(e.path, vec!["rows"]);
        let e = Synthetic
            .build(&serde_json::json!({"kind": "houses"}))
            .unwrap_err();
        assert!(e.message.contains("unknown variant"), "{}", e.message);
        let e = Csv
            .build(&serde_json::json!({"path": "a.csv", "types": {"x": "float"}}))
            .unwrap_err();
        assert_eq!(e.path, vec!["types", "x"]);
    }
}

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
            .map_err(|e| StageError::new(e.to_string()))
    }
}

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
        let path = ctx.workspace.join(&self.0.path);
        let text = std::fs::read_to_string(&path)
            .map_err(|e| StageError::new(format!("cannot read {}: {e}", self.0.path)))?;
        let mut rows: Vec<serde_json::Map<String, Value>> = Vec::new();
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
        let base = match ctx.inputs.get("data") {
            Some(p) => Some(Table::read_arrow(p).map_err(|e| StageError::new(e.to_string()))?),
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
        let mut columns = Vec::with_capacity(names.len());
        for name in &names {
            let values: Vec<Option<&Value>> = rows.iter().map(|r| r.get(name)).collect();
            let declared = if *name == self.0.target {
                self.0.label_type.as_deref()
            } else {
                None
            };
            let base_type = base
                .as_ref()
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
            columns.push(Column {
                name: name.clone(),
                data,
            });
        }
        let fb = Table {
            columns,
            target: Some(self.0.target.clone()),
            transforms: vec![],
        };
        let n_feedback = fb.n_rows();
        let t = match base {
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
        };
        (ctx.log)(&format!(
            "{n_feedback} feedback row(s){}",
            if ctx.inputs.contains_key("data") {
                format!(", {} rows with the base table", t.n_rows())
            } else {
                String::new()
            }
        ));
        t.write_arrow(ctx.output("data")?)
            .map_err(|e| StageError::new(e.to_string()))
    }
}
