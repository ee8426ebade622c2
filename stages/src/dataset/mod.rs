//! Dataset stages: tables from CSV and Parquet files, seeded synthetic
//! data, linfa's built-in data sets, and feedback collected by `mlcycle
//! serve`. One file per kind.

mod builtin;
mod csv;
mod feedback;
#[cfg(feature = "parquet")]
mod parquet;
mod served;
mod synthetic;

use mlcycle_pipeline::{PortSpec, RunContext, StageError};

pub use self::csv::Csv;
pub use builtin::Builtin;
pub use feedback::Feedback;
#[cfg(feature = "parquet")]
pub use parquet::{Parquet, ParquetParams};
pub use served::{served_path, Served};
pub use synthetic::Synthetic;

pub(crate) use synthetic::normal;

use crate::table::Table;

/// A column type declared in `types:` or `label_type:`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ColumnType {
    /// Numbers (`f64`); a missing value is NaN.
    Numeric,
    /// Text labels.
    Categorical,
}

impl ColumnType {
    /// The name written in `with:` and used by [`crate::table`].
    pub fn as_str(self) -> &'static str {
        match self {
            ColumnType::Numeric => "numeric",
            ColumnType::Categorical => "categorical",
        }
    }
}

/// `types:` as [`crate::table`] takes it.
fn declared_types(
    types: &std::collections::BTreeMap<String, ColumnType>,
) -> std::collections::HashMap<String, String> {
    types
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().to_string()))
        .collect()
}

const TABLE_OUT: &[PortSpec] = &[PortSpec::output(
    "data",
    "data.arrow",
    crate::ports::TABLE,
    "the table (Arrow IPC; pandas `read_feather`, polars `read_ipc`)",
)];

/// `mlcycle validate`'s check of a dataset stage's `target` and `types`
/// against the columns its file has (`names`, from a CSV header or a
/// Parquet schema): one error per name the file lacks, with the nearest.
fn check_columns(
    path: &str,
    names: &[String],
    target: Option<&str>,
    types: &std::collections::BTreeMap<String, ColumnType>,
) -> Vec<mlcycle_pipeline::ParamError> {
    let absent = |name: &str, at: &[&str], what: &str| {
        let near = mlcycle_pipeline::suggest::did_you_mean(name, names);
        mlcycle_pipeline::ParamError::new(
            at,
            format!(
                "{what} `{name}` is not a column of {path} (its columns: {})",
                names.join(", ")
            ),
        )
        .with_help(if near.is_empty() {
            format!("name one of the columns of {path}")
        } else {
            near
        })
    };
    let mut problems = Vec::new();
    if let Some(t) = target.filter(|t| !names.iter().any(|n| n == t)) {
        problems.push(absent(t, &["target"], "the target"));
    }
    for name in types.keys().filter(|k| !names.contains(k)) {
        problems.push(absent(name, &["types", name.as_str()], "the typed column"));
    }
    problems
}

/// What a dataset stage's `data` output will hold: `columns` with
/// `Some(categorical)` where the type is certain.
fn read_shape(
    cx: &mlcycle_pipeline::InferContext<'_>,
    file: &str,
    columns: Vec<(String, Option<bool>)>,
    target: Option<&str>,
) -> mlcycle_pipeline::Inferred {
    use crate::shape::Kind;
    let columns = columns
        .into_iter()
        .map(|(name, categorical)| {
            let kind = match categorical {
                Some(true) => Kind::Categorical,
                Some(false) => Kind::Numeric,
                None => Kind::Unsure,
            };
            (name, kind)
        })
        .collect();
    let shape = crate::shape::TableShape::read(cx.stage, file, columns, target);
    mlcycle_pipeline::Inferred::default().output("data", mlcycle_pipeline::Facts::new(shape))
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
        .map_err(StageError::from_error)
}

/// JSON values as a categorical column: strings as they are, other values
/// as their JSON text, null, absent and the empty string (an empty CSV
/// cell) as missing.
fn json_categorical(values: &[Option<&serde_json::Value>]) -> crate::table::ColumnData {
    use serde_json::Value;
    crate::table::ColumnData::Categorical(
        values
            .iter()
            .map(|v| match v {
                None | Some(Value::Null) => None,
                Some(Value::String(s)) if s.is_empty() => None,
                Some(Value::String(s)) => Some(s.clone()),
                Some(other) => Some(other.to_string()),
            })
            .collect(),
    )
}
