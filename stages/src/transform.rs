//! The `transform` artifact: fitted preprocessing steps.
//!
//! A transform is fitted on the training rows only and then applied,
//! unchanged, to every other table: the test split, the rows a bundle
//! scores, the rows a server receives. Every table carries the chain of
//! transforms applied to it so far (Arrow schema metadata
//! `mlcycle.transforms`), and a model stores that chain, so a model always
//! takes raw rows and applies its own preprocessing — no leakage, and no
//! preprocessing to forget at serving time.
//!
//! On disk a transform artifact is `transform.json`:
//! `{"format": "mlcycle.transform", "schema_version": 1, "steps": [...]}`,
//! each step a JSON object tagged by `op` (see [`Transform`]).

use std::collections::BTreeSet;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::table::{Column, ColumnData, Table};

pub use crate::steps::{Fill, Transform, TRANSFORM_SCHEMA_VERSION};

/// Why a transform could not be applied to a table.
#[derive(Debug, Clone, PartialEq, thiserror::Error, miette::Diagnostic)]
pub enum ApplyError {
    #[diagnostic(code(mlcycle::transform::missing))]
    #[error("column `{column}` is missing (the `{op}` step needs it)")]
    Missing { column: String, op: &'static str },
    #[diagnostic(code(mlcycle::transform::column_type))]
    #[error("column `{column}` is {found}; the `{op}` step needs a {want} column")]
    Type {
        column: String,
        found: &'static str,
        want: &'static str,
        op: &'static str,
    },
    #[diagnostic(code(mlcycle::transform::unknown_category))]
    #[error("row {row}: column `{column}` has the category `{value}`, unseen when the one-hot encoder was fitted (known: {known})")]
    UnknownCategory {
        /// Counted from 1.
        row: usize,
        column: String,
        value: String,
        known: String,
    },
}

impl Transform {
    /// Short name of the step.
    pub fn op(&self) -> &'static str {
        match self {
            Transform::Impute { .. } => "impute",
            Transform::Scale { .. } => "scale",
            Transform::Normalize { .. } => "normalize",
            Transform::OneHot { .. } => "one_hot",
            Transform::Polynomial { .. } => "polynomial",
            Transform::Pca { .. } => "pca",
            Transform::Drop { .. } => "drop",
        }
    }

    /// Columns this step reads.
    pub fn reads(&self) -> Vec<String> {
        match self {
            Transform::Impute { columns, .. }
            | Transform::Scale { columns, .. }
            | Transform::Normalize { columns }
            | Transform::Polynomial { columns, .. }
            | Transform::Pca { columns, .. } => columns.clone(),
            Transform::OneHot { column, .. } => vec![column.clone()],
            Transform::Drop { .. } => vec![],
        }
    }

    /// Columns this step creates (not counting columns it changes in place).
    pub fn creates(&self) -> Vec<String> {
        match self {
            Transform::OneHot {
                column,
                categories,
                drop,
                missing,
                ..
            } => one_hot_names(
                column,
                &OneHotCategories {
                    categories,
                    drop: drop.as_deref(),
                    missing: *missing,
                },
            ),
            Transform::Polynomial {
                columns,
                degree,
                interaction_only,
            } => polynomial_terms(columns.len(), *degree, *interaction_only)
                .iter()
                .map(|t| term_name(columns, t))
                .collect(),
            Transform::Pca { components, .. } => {
                (1..=components.len()).map(|i| format!("pc{i}")).collect()
            }
            _ => vec![],
        }
    }

    /// Applies the step to `t` in place.
    pub fn apply(&self, t: &mut Table) -> Result<(), ApplyError> {
        let op = self.op();
        match self {
            Transform::Impute {
                columns, values, ..
            } => apply_impute(t, columns, values, op)?,
            Transform::Scale {
                columns,
                offsets,
                scales,
                ..
            } => {
                for ((name, off), sc) in columns.iter().zip(offsets).zip(scales) {
                    let v = numeric_mut(t, name, op)?;
                    v.iter_mut().for_each(|x| *x = (*x - off) * sc);
                }
            }
            Transform::Normalize { columns } => apply_normalize(t, columns, op)?,
            Transform::OneHot {
                column,
                categories,
                unknown,
                drop,
                missing,
            } => apply_one_hot(
                t,
                column,
                OneHotCategories {
                    categories,
                    drop: drop.as_deref(),
                    missing: *missing,
                },
                unknown,
                op,
            )?,
            Transform::Polynomial {
                columns,
                degree,
                interaction_only,
            } => {
                let vals: Vec<Vec<f64>> = columns
                    .iter()
                    .map(|n| numeric(t, n, op).map(|v| v.to_vec()))
                    .collect::<Result<_, _>>()?;
                let n = t.n_rows();
                for term in polynomial_terms(columns.len(), *degree, *interaction_only) {
                    let v = (0..n)
                        .map(|r| term.iter().map(|&i| vals[i][r]).product())
                        .collect();
                    insert_before_target(
                        t,
                        Column {
                            name: term_name(columns, &term),
                            data: ColumnData::Numeric(v),
                        },
                    );
                }
            }
            Transform::Pca {
                columns,
                mean,
                components,
            } => {
                let vals: Vec<Vec<f64>> = columns
                    .iter()
                    .map(|n| numeric(t, n, op).map(|v| v.to_vec()))
                    .collect::<Result<_, _>>()?;
                let n = t.n_rows();
                t.columns.retain(|c| !columns.contains(&c.name));
                for (k, comp) in components.iter().enumerate() {
                    let v = (0..n)
                        .map(|r| {
                            comp.iter()
                                .enumerate()
                                .map(|(j, w)| (vals[j][r] - mean[j]) * w)
                                .sum()
                        })
                        .collect();
                    insert_before_target(
                        t,
                        Column {
                            name: format!("pc{}", k + 1),
                            data: ColumnData::Numeric(v),
                        },
                    );
                }
            }
            Transform::Drop { columns } => t.columns.retain(|c| !columns.contains(&c.name)),
        }
        Ok(())
    }
}

/// Fills the missing values of `columns` with `values`.
fn apply_impute(
    t: &mut Table,
    columns: &[String],
    values: &[Fill],
    op: &'static str,
) -> Result<(), ApplyError> {
    for (name, fill) in columns.iter().zip(values) {
        let col = column_mut(t, name, op)?;
        match (&mut col.data, fill) {
            (ColumnData::Numeric(v), Fill::Number(x)) => {
                v.iter_mut().filter(|v| v.is_nan()).for_each(|v| *v = *x)
            }
            (ColumnData::Categorical(v), Fill::Category(c)) => v
                .iter_mut()
                .filter(|v| v.is_none())
                .for_each(|v| *v = Some(c.clone())),
            (data, fill) => {
                return Err(ApplyError::Type {
                    column: name.clone(),
                    found: data.type_name(),
                    want: match fill {
                        Fill::Number(_) => "numeric",
                        Fill::Category(_) => "categorical",
                    },
                    op,
                })
            }
        }
    }
    Ok(())
}

/// Scales each row of `columns` to unit L2 norm; a missing value (NaN)
/// is left out of the norm and stays missing.
fn apply_normalize(t: &mut Table, columns: &[String], op: &'static str) -> Result<(), ApplyError> {
    for name in columns {
        numeric(t, name, op)?;
    }
    let idx: Vec<usize> = columns
        .iter()
        .map(|n| t.columns.iter().position(|c| &c.name == n).unwrap())
        .collect();
    for row in 0..t.n_rows() {
        let norm = idx
            .iter()
            .map(|&i| match &t.columns[i].data {
                ColumnData::Numeric(v) if !v[row].is_nan() => v[row] * v[row],
                _ => 0.0,
            })
            .sum::<f64>()
            .sqrt();
        if norm > 0.0 {
            for &i in &idx {
                if let ColumnData::Numeric(v) = &mut t.columns[i].data {
                    v[row] /= norm;
                }
            }
        }
    }
    Ok(())
}

/// The spelling under which a category is matched: a value that is a
/// plain decimal number loses the zeros after its point (`1.0` and `1`
/// are the category `1`, `2.50` is `2.5`), so a column read as text from
/// a CSV written by pandas (`1.0`) and one sent by a client (`1`) agree.
/// Anything else is kept as written: `007` stays `007`.
pub fn category_key(v: &str) -> std::borrow::Cow<'_, str> {
    let digits = v.strip_prefix('-').unwrap_or(v);
    let Some((int, frac)) = digits.split_once('.') else {
        return v.into();
    };
    if int.is_empty()
        || frac.is_empty()
        || !int.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
        || !frac.ends_with('0')
    {
        return v.into();
    }
    let kept = frac.trim_end_matches('0');
    let sign = if v.starts_with('-') { "-" } else { "" };
    if kept.is_empty() {
        format!("{sign}{int}").into()
    } else {
        format!("{sign}{int}.{kept}").into()
    }
}

/// How a missing value is named among the categories: in the name of its
/// one-hot column (`color=(missing)`) and where it is reported unseen.
pub const MISSING_CATEGORY: &str = "(missing)";

/// What a one-hot step knows of its column.
struct OneHotCategories<'a> {
    categories: &'a [String],
    drop: Option<&'a str>,
    /// Missing values have a column of their own (the last).
    missing: bool,
}

/// The columns a one-hot step makes of `column`: `column=category` for
/// each category but `drop`, then `column=(missing)` when training had
/// missing values.
fn one_hot_names(column: &str, known: &OneHotCategories<'_>) -> Vec<String> {
    known
        .categories
        .iter()
        .filter(|c| Some(c.as_str()) != known.drop)
        .map(|c| format!("{column}={c}"))
        .chain(
            known
                .missing
                .then(|| format!("{column}={MISSING_CATEGORY}")),
        )
        .collect()
}

/// Replaces `column` by one 0/1 column per category (but `drop`), and
/// one for missing values when training had them.
fn apply_one_hot(
    t: &mut Table,
    column: &str,
    known: OneHotCategories<'_>,
    unknown: &str,
    op: &'static str,
) -> Result<(), ApplyError> {
    let names = one_hot_names(column, &known);
    let OneHotCategories {
        categories,
        drop,
        missing,
    } = known;
    let pos = t
        .columns
        .iter()
        .position(|c| c.name == column)
        .ok_or_else(|| ApplyError::Missing {
            column: column.to_string(),
            op,
        })?;
    let Some(values) = t.columns[pos].data.as_categories() else {
        return Err(ApplyError::Type {
            column: column.to_string(),
            found: "numeric",
            want: "categorical",
            op,
        });
    };
    // Categories of models fitted before `category_key` may be spelled
    // `1.0`: match by key on both sides.
    let keys: Vec<std::borrow::Cow<'_, str>> = categories.iter().map(|c| category_key(c)).collect();
    let kept: Vec<usize> = (0..categories.len())
        .filter(|&k| Some(categories[k].as_str()) != drop)
        .collect();
    let mut new: Vec<Vec<f64>> = vec![vec![0.0; values.len()]; kept.len() + usize::from(missing)];
    for (row, v) in values.iter().enumerate() {
        let Some(v) = v else {
            if missing {
                new[kept.len()][row] = 1.0;
            } else if unknown == "error" {
                return Err(ApplyError::UnknownCategory {
                    row: row + 1,
                    column: column.to_string(),
                    value: MISSING_CATEGORY.to_string(),
                    known: categories.join(", "),
                });
            }
            continue;
        };
        let key = category_key(v);
        match keys.iter().position(|c| *c == key) {
            Some(k) => {
                if let Some(slot) = kept.iter().position(|&i| i == k) {
                    new[slot][row] = 1.0;
                }
            }
            None if unknown == "error" => {
                return Err(ApplyError::UnknownCategory {
                    row: row + 1,
                    column: column.to_string(),
                    value: v.clone(),
                    known: categories.join(", "),
                })
            }
            None => {}
        }
    }
    let cols = names
        .into_iter()
        .zip(new)
        .map(|(name, v)| Column {
            name,
            data: ColumnData::Numeric(v),
        })
        .collect::<Vec<_>>();
    t.columns.splice(pos..=pos, cols);
    Ok(())
}

/// A category met at scoring time that the one-hot encoder of `column` did
/// not see in training, and how many rows had it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UnseenCategory {
    pub column: String,
    pub value: String,
    pub rows: usize,
}

/// The categories of `t`'s raw columns that the one-hot steps of `chain`
/// did not see in training, which encode as all zeros, with their row
/// counts, in the order met; a missing value, when training had none, as
/// [`MISSING_CATEGORY`]. Steps with `unknown: error` are left out: they
/// refuse such rows instead.
pub fn unseen_categories(chain: &[Transform], t: &Table) -> Vec<UnseenCategory> {
    let mut out: Vec<UnseenCategory> = Vec::new();
    for step in chain {
        let Transform::OneHot {
            column,
            categories,
            unknown,
            missing,
            ..
        } = step
        else {
            continue;
        };
        if unknown == "error" {
            continue;
        }
        let Some(values) = t.column(column).and_then(|c| c.data.as_categories()) else {
            continue;
        };
        let keys: Vec<std::borrow::Cow<'_, str>> =
            categories.iter().map(|c| category_key(c)).collect();
        for v in values.iter() {
            let v = match v {
                Some(v) if keys.iter().any(|k| *k == category_key(v)) => continue,
                Some(v) => v.as_str(),
                None if *missing => continue,
                None => MISSING_CATEGORY,
            };
            match out.iter_mut().find(|u| u.column == *column && u.value == v) {
                Some(u) => u.rows += 1,
                None => out.push(UnseenCategory {
                    column: column.clone(),
                    value: v.to_string(),
                    rows: 1,
                }),
            }
        }
    }
    out
}

/// Applies `steps` in order and records them in the table's chain.
pub fn apply_all(steps: &[Transform], t: &mut Table) -> Result<(), ApplyError> {
    for s in steps {
        s.apply(t)?;
        t.transforms.push(s.clone());
    }
    Ok(())
}

/// The raw columns a model with `features` (after `chain`) needs, in the
/// order of the chain's own column lists, plus the columns the chain drops on purpose.
pub fn raw_inputs(chain: &[Transform], features: &[String]) -> (Vec<String>, Vec<String>) {
    let mut need: Vec<String> = features.to_vec();
    let mut dropped = BTreeSet::new();
    for step in chain.iter().rev() {
        let created = step.creates();
        need.retain(|n| !created.contains(n));
        if let Transform::Drop { columns } = step {
            dropped.extend(columns.iter().cloned());
        }
        let uses = !created.is_empty() || step.reads().iter().any(|r| need.contains(r));
        if uses {
            for r in step.reads() {
                if !need.contains(&r) {
                    need.push(r);
                }
            }
        }
    }
    (need, dropped.into_iter().collect())
}

/// Why a file is not a `transform.json` this mlcycle can read.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum TransformFileError {
    #[diagnostic(code(mlcycle::transform::read))]
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[diagnostic(code(mlcycle::transform::not_transform))]
    #[error("{path} is not a transform artifact: {source}")]
    NotTransform {
        path: String,
        #[source]
        source: serde_json::Error,
    },
    #[diagnostic(code(mlcycle::transform::other_format))]
    #[error("{path} is a `{format}` file, not a transform")]
    OtherFormat { path: String, format: String },
    #[diagnostic(code(mlcycle::transform::schema_version))]
    #[error(
        "{path} has transform schema version {found}; this mlcycle reads up to {TRANSFORM_SCHEMA_VERSION}: upgrade mlcycle"
    )]
    SchemaVersion { path: String, found: u32 },
}

/// Reads `transform.json`.
pub fn read_steps(path: &Path) -> Result<Vec<Transform>, TransformFileError> {
    #[derive(Deserialize)]
    struct File {
        format: String,
        schema_version: u32,
        steps: Vec<Transform>,
    }
    let shown = || path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| TransformFileError::Read {
        path: shown(),
        source,
    })?;
    let f: File =
        serde_json::from_str(&text).map_err(|source| TransformFileError::NotTransform {
            path: shown(),
            source,
        })?;
    if f.format != "mlcycle.transform" {
        return Err(TransformFileError::OtherFormat {
            path: shown(),
            format: f.format,
        });
    }
    if f.schema_version > TRANSFORM_SCHEMA_VERSION {
        return Err(TransformFileError::SchemaVersion {
            path: shown(),
            found: f.schema_version,
        });
    }
    Ok(f.steps)
}

/// Writes `transform.json`.
pub fn write_steps(path: &Path, steps: &[Transform]) -> std::io::Result<()> {
    let v = serde_json::json!({
        "format": "mlcycle.transform",
        "schema_version": TRANSFORM_SCHEMA_VERSION,
        "steps": steps,
    });
    let mut s = serde_json::to_string_pretty(&v).expect("transforms serialize");
    s.push('\n');
    std::fs::write(path, s)
}

/// Index tuples of the polynomial terms of degree 2..=`degree`.
fn polynomial_terms(n: usize, degree: u32, interaction_only: bool) -> Vec<Vec<usize>> {
    let mut out = Vec::new();
    let mut cur: Vec<Vec<usize>> = (0..n).map(|i| vec![i]).collect();
    for _ in 2..=degree {
        let mut next = Vec::new();
        for t in &cur {
            let last = *t.last().unwrap();
            let start = if interaction_only { last + 1 } else { last };
            for j in start..n {
                let mut u = t.clone();
                u.push(j);
                next.push(u);
            }
        }
        out.extend(next.iter().cloned());
        cur = next;
    }
    out
}

fn term_name(columns: &[String], term: &[usize]) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut i = 0;
    while i < term.len() {
        let mut k = 1;
        while i + k < term.len() && term[i + k] == term[i] {
            k += 1;
        }
        let name = &columns[term[i]];
        parts.push(if k == 1 {
            name.clone()
        } else {
            format!("{name}^{k}")
        });
        i += k;
    }
    parts.join("*")
}

fn insert_before_target(t: &mut Table, col: Column) {
    let pos = t
        .target
        .as_ref()
        .and_then(|n| t.columns.iter().position(|c| &c.name == n))
        .unwrap_or(t.columns.len());
    t.columns.insert(pos, col);
}

fn column_mut<'t>(
    t: &'t mut Table,
    name: &str,
    op: &'static str,
) -> Result<&'t mut Column, ApplyError> {
    t.columns
        .iter_mut()
        .find(|c| c.name == name)
        .ok_or_else(|| ApplyError::Missing {
            column: name.to_string(),
            op,
        })
}

fn numeric<'t>(t: &'t Table, name: &str, op: &'static str) -> Result<&'t [f64], ApplyError> {
    match t.column(name).map(|c| &c.data) {
        None => Err(ApplyError::Missing {
            column: name.to_string(),
            op,
        }),
        Some(ColumnData::Numeric(v)) => Ok(v),
        Some(ColumnData::Categorical(_)) => Err(ApplyError::Type {
            column: name.to_string(),
            found: "categorical",
            want: "numeric",
            op,
        }),
    }
}

fn numeric_mut<'t>(
    t: &'t mut Table,
    name: &str,
    op: &'static str,
) -> Result<&'t mut Vec<f64>, ApplyError> {
    match &mut column_mut(t, name, op)?.data {
        ColumnData::Numeric(v) => Ok(v),
        ColumnData::Categorical(_) => Err(ApplyError::Type {
            column: name.to_string(),
            found: "categorical",
            want: "numeric",
            op,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t() -> Table {
        Table {
            columns: vec![
                Column {
                    name: "a".into(),
                    data: ColumnData::Numeric(vec![1.0, 2.0, f64::NAN]),
                },
                Column {
                    name: "b".into(),
                    data: ColumnData::Numeric(vec![3.0, 4.0, 5.0]),
                },
                Column {
                    name: "c".into(),
                    data: ColumnData::Categorical(vec![Some("x".into()), None, Some("y".into())]),
                },
                Column {
                    name: "y".into(),
                    data: ColumnData::Numeric(vec![0.0, 1.0, 2.0]),
                },
            ],
            target: Some("y".into()),
            transforms: vec![],
        }
    }

    #[test]
    fn polynomial_terms_match_sklearn_order() {
        let cols = vec!["a".to_string(), "b".to_string()];
        let names: Vec<String> = polynomial_terms(2, 2, false)
            .iter()
            .map(|t| term_name(&cols, t))
            .collect();
        assert_eq!(names, ["a^2", "a*b", "b^2"]);
        assert_eq!(polynomial_terms(3, 3, true).len(), 4);
    }

    #[test]
    fn numeric_categories_have_one_spelling() {
        for (v, key) in [
            ("1.0", "1"),
            ("1", "1"),
            ("2.50", "2.5"),
            ("-3.000", "-3"),
            ("007", "007"),
            ("1.05", "1.05"),
            ("a.0", "a.0"),
            (".0", ".0"),
            ("1.", "1."),
        ] {
            assert_eq!(category_key(v), key, "{v}");
        }
    }

    #[test]
    fn unseen_categories_are_counted_and_dropped_levels_are_known() {
        let chain = vec![Transform::OneHot {
            column: "c".into(),
            categories: vec!["1".into(), "x".into()],
            unknown: "ignore".into(),
            drop: Some("1".into()),
            missing: false,
        }];
        let mut tab = Table {
            columns: vec![Column {
                name: "c".into(),
                data: ColumnData::Categorical(vec![
                    Some("1.0".into()),
                    Some("z".into()),
                    Some("x".into()),
                    Some("z".into()),
                    None,
                ]),
            }],
            target: None,
            transforms: vec![],
        };
        let u = unseen_categories(&chain, &tab);
        // A missing value training never had is unseen too.
        assert_eq!(
            u,
            vec![
                UnseenCategory {
                    column: "c".into(),
                    value: "z".into(),
                    rows: 2
                },
                UnseenCategory {
                    column: "c".into(),
                    value: MISSING_CATEGORY.into(),
                    rows: 1
                }
            ]
        );
        let raw = tab.clone();
        apply_all(&chain, &mut tab).unwrap();
        assert_eq!(tab.names(), ["c=x"]);
        assert_eq!(
            tab.column("c=x").unwrap().data,
            ColumnData::Numeric(vec![0.0, 0.0, 1.0, 0.0, 0.0])
        );
        // `unknown: error` refuses the missing value, and is not counted
        // (predict warned "scored as all zeros", then failed).
        let mut strict = chain.clone();
        let Transform::OneHot { unknown, .. } = &mut strict[0] else {
            unreachable!()
        };
        *unknown = "error".into();
        assert!(unseen_categories(&strict, &raw).is_empty());
        let mut t2 = raw.clone();
        t2.columns[0].data = ColumnData::Categorical(vec![Some("x".into()), None]);
        let e = apply_all(&strict, &mut t2).unwrap_err().to_string();
        assert!(
            e.contains("row 2: column `c` has the category `(missing)`"),
            "{e}"
        );
    }

    /// Missing values seen in training get their own column, never the
    /// code of the dropped category (both were all zeros with `drop:
    /// first`, so a model could not tell them apart).
    #[test]
    fn missing_values_seen_in_training_get_their_own_column() {
        let chain = vec![Transform::OneHot {
            column: "c".into(),
            categories: vec!["a".into(), "b".into()],
            unknown: "ignore".into(),
            drop: Some("a".into()),
            missing: true,
        }];
        let mut tab = Table {
            columns: vec![Column {
                name: "c".into(),
                data: ColumnData::Categorical(vec![Some("a".into()), Some("b".into()), None]),
            }],
            target: None,
            transforms: vec![],
        };
        assert!(unseen_categories(&chain, &tab).is_empty());
        assert_eq!(chain[0].creates(), ["c=b", "c=(missing)"]);
        apply_all(&chain, &mut tab).unwrap();
        assert_eq!(tab.names(), ["c=b", "c=(missing)"]);
        assert_eq!(
            tab.column("c=(missing)").unwrap().data,
            ColumnData::Numeric(vec![0.0, 0.0, 1.0])
        );
        assert_eq!(
            tab.column("c=b").unwrap().data,
            ColumnData::Numeric(vec![0.0, 1.0, 0.0])
        );
    }

    /// A missing value stays missing through scaling and L2 rows, and is
    /// left out of its row's norm (it made the whole row skip the scaling).
    #[test]
    fn missing_values_pass_through_scaling_and_normalizing() {
        let mut tab = t();
        let chain = vec![
            Transform::Normalize {
                columns: vec!["a".into(), "b".into()],
            },
            Transform::Scale {
                method: "standard".into(),
                columns: vec!["b".into()],
                offsets: vec![0.5],
                scales: vec![2.0],
            },
        ];
        apply_all(&chain, &mut tab).unwrap();
        let ColumnData::Numeric(a) = &tab.column("a").unwrap().data else {
            panic!()
        };
        let ColumnData::Numeric(b) = &tab.column("b").unwrap().data else {
            panic!()
        };
        assert!(a[2].is_nan(), "{a:?}");
        // Row 3 is (NaN, 5): its norm is 5, so b becomes 1, then (1 − 0.5)·2.
        assert_eq!(b[2], 1.0);
        assert!((a[0] - 1.0 / 10f64.sqrt()).abs() < 1e-12, "{a:?}");
    }

    #[test]
    fn chain_applies_and_traces_raw_inputs() {
        let mut tab = t();
        let chain = vec![
            Transform::Impute {
                columns: vec!["a".into()],
                values: vec![Fill::Number(0.0)],
                strategy: None,
            },
            Transform::OneHot {
                column: "c".into(),
                categories: vec!["x".into(), "y".into()],
                unknown: "ignore".into(),
                drop: None,
                missing: false,
            },
            Transform::Polynomial {
                columns: vec!["a".into(), "b".into()],
                degree: 2,
                interaction_only: true,
            },
        ];
        apply_all(&chain, &mut tab).unwrap();
        assert_eq!(tab.names(), ["a", "b", "c=x", "c=y", "a*b", "y"]);
        assert_eq!(
            tab.column("a*b").unwrap().data,
            ColumnData::Numeric(vec![3.0, 8.0, 0.0])
        );
        assert_eq!(tab.transforms.len(), 3);
        let features: Vec<String> = ["c=x", "a*b"].iter().map(|s| s.to_string()).collect();
        let (need, _) = raw_inputs(&chain, &features);
        assert_eq!(need, ["a", "b", "c"]);
    }

    #[test]
    fn missing_and_mistyped_columns_are_named() {
        let mut tab = t();
        let e = Transform::Scale {
            method: "standard".into(),
            columns: vec!["zz".into()],
            offsets: vec![0.0],
            scales: vec![1.0],
        }
        .apply(&mut tab)
        .unwrap_err();
        assert!(e.to_string().contains("`zz` is missing"), "{e}");
        let e = Transform::Normalize {
            columns: vec!["c".into()],
        }
        .apply(&mut tab)
        .unwrap_err();
        assert!(e.to_string().contains("categorical"), "{e}");
    }
}
