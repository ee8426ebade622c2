//! Reading a Parquet file into a [`Table`].
//!
//! The Parquet crate decodes to Arrow arrays; this module turns each into a
//! numeric (`f64`) or categorical (text) column. The conversion is written
//! out for the types a table holds (integers, floats, decimals, text,
//! booleans, dictionaries of those) rather than taken from `arrow-cast`,
//! whose general casts cost about 100 s of CPU in a cold build for the
//! dozen cases used here.

use std::collections::HashMap;
use std::fs::File;
use std::path::Path;

use super::convert::{column_for, read_batches};
use super::{Table, TableError};

/// A column of a Parquet schema: its name, and whether a table reads it
/// as categorical (`Err`: why a table cannot hold it).
pub type SchemaColumn = (String, Result<bool, String>);

impl Table {
    /// The columns of a Parquet file, read from its footer (no rows), each
    /// with whether a table can hold it given the declared `types`
    /// (`Err`: why not, as [`Table::read_parquet`] would say).
    ///
    /// # Errors
    /// The file cannot be opened or is not Parquet.
    pub fn parquet_schema(
        path: &Path,
        types: &HashMap<String, String>,
    ) -> Result<Vec<SchemaColumn>, TableError> {
        use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
        let shown = path.display().to_string();
        let file = File::open(path).map_err(|source| TableError::Io {
            path: shown.clone(),
            source,
        })?;
        let builder =
            ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| TableError::Format {
                path: shown,
                message: format!("not a readable Parquet file: {e}"),
            })?;
        Ok(builder
            .schema()
            .fields()
            .iter()
            .map(|f| {
                let declared = types.get(f.name()).map(String::as_str);
                (
                    f.name().clone(),
                    column_for(f, declared)
                        .map(|c| matches!(c.data, super::ColumnData::Categorical(_))),
                )
            })
            .collect())
    }

    /// Reads a Parquet file. Numeric columns (integers, floats, decimals)
    /// become numeric, text, dictionary and boolean columns categorical;
    /// `types` may override either way (a text column declared numeric
    /// must hold numbers; a boolean one reads as 1 and 0).
    ///
    /// # Errors
    /// [`TableError::Io`] when the file cannot be opened;
    /// [`TableError::Format`] when it is not Parquet, has a column of
    /// another type (lists, structs), `types` names a column it lacks,
    /// or a value does not convert (text that is not a number, ±∞).
    pub fn read_parquet(path: &Path, types: &HashMap<String, String>) -> Result<Table, TableError> {
        use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
        let shown = path.display().to_string();
        let fmt = |message: String| TableError::Format {
            path: shown.clone(),
            message,
        };
        let file = File::open(path).map_err(|source| TableError::Io {
            path: shown.clone(),
            source,
        })?;
        let reader = ParquetRecordBatchReaderBuilder::try_new(file)
            .and_then(|b| b.build())
            .map_err(|e| fmt(format!("not a readable Parquet file: {e}")))?;
        let schema = arrow_array::RecordBatchReader::schema(&reader);
        for name in types.keys() {
            if schema.field_with_name(name).is_err() {
                let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
                return Err(fmt(format!(
                    "`types` names column `{name}`, which the file does not have {}",
                    mlcycle_pipeline::suggest::did_you_mean(name, &names)
                )));
            }
        }
        // The Parquet decoder panics on some encodings it does not support
        // (a dictionary of booleans, as pandas writes a categorical of
        // bools): that is this file's problem, said as such.
        let read = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            read_batches(&schema, reader, &|name| types.get(name).cloned())
        }));
        let columns = match read {
            Ok(r) => r.map_err(fmt)?,
            Err(_) => {
                return Err(fmt(
                    "the Parquet decoder cannot read an encoding of this file (a dictionary of booleans, such as a pandas categorical of True/False, is one); write that column as plain booleans or text".into(),
                ))
            }
        };
        Ok(Table {
            columns,
            target: None,
            transforms: Vec::new(),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::super::ColumnData;
    use arrow_array::types::Int8Type;
    use arrow_array::{
        ArrayRef, BooleanArray, Date32Array, Decimal128Array, DictionaryArray, Float32Array,
        Int64Array, LargeStringArray, RecordBatch, StringArray, TimestampMillisecondArray,
        UInt16Array,
    };
    use arrow_schema::{Field, Schema};

    use super::*;

    /// Writes `columns` to a Parquet file in `dir` and returns its path.
    fn write(dir: &Path, columns: Vec<(&str, ArrayRef)>) -> std::path::PathBuf {
        let p = dir.join("t.parquet");
        let schema = Arc::new(Schema::new(
            columns
                .iter()
                .map(|(n, a)| Field::new(*n, a.data_type().clone(), true))
                .collect::<Vec<_>>(),
        ));
        let batch = RecordBatch::try_new(
            schema.clone(),
            columns.into_iter().map(|(_, a)| a).collect(),
        )
        .unwrap();
        let mut w =
            parquet::arrow::ArrowWriter::try_new(File::create(&p).unwrap(), schema, None).unwrap();
        w.write(&batch).unwrap();
        w.close().unwrap();
        p
    }

    /// `mlcycle validate` reads the schema from the footer: a target or a
    /// typed column the file lacks, and a column no table holds (a date
    /// without `types:`), are found before anything runs.
    #[test]
    fn validate_checks_target_types_and_column_types_against_the_schema() {
        use mlcycle_pipeline::StageKind;
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            vec![
                ("area", Arc::new(Int64Array::from(vec![1, 2]))),
                ("price", Arc::new(Int64Array::from(vec![3, 4]))),
                ("sold", Arc::new(Date32Array::from(vec![19000, 19001]))),
            ],
        );
        let check = |with: serde_json::Value| {
            let p: crate::dataset::ParquetParams = serde_json::from_value(with).unwrap();
            let cx = mlcycle_pipeline::InferContext {
                stage: "data",
                workspace: dir.path(),
                inputs: Default::default(),
                gathered: Default::default(),
            };
            crate::dataset::Parquet::infer(&p, &cx)
                .problems
                .into_iter()
                .map(|e| e.message)
                .collect::<Vec<_>>()
                .join("\n")
        };
        let found = check(serde_json::json!(
            {"path": "t.parquet", "target": "prise", "types": {"are": "numeric"}}
        ));
        assert!(
            found.contains(
                "the target `prise` is not a column of t.parquet (its columns: area, price, sold)"
            ),
            "{found}"
        );
        assert!(found.contains("the typed column `are`"), "{found}");
        assert!(
            !found.contains("has type Date32"),
            "a date is numeric now: {found}"
        );
        // Declared, the date reads as text; the right names pass.
        let found = check(serde_json::json!(
            {"path": "t.parquet", "target": "price", "types": {"sold": "categorical"}}
        ));
        assert_eq!(found, "");
        // A file that is not there is the missing dep's to report.
        assert_eq!(check(serde_json::json!({"path": "none.parquet"})), "");
        // A date declared numeric is its number of days since 1970.
        let found = check(serde_json::json!({"path": "t.parquet", "types": {"sold": "numeric"}}));
        assert_eq!(found, "");
        // An empty or cut file is reported, not passed.
        std::fs::write(dir.path().join("empty.parquet"), b"").unwrap();
        let found = check(serde_json::json!({"path": "empty.parquet", "target": "x"}));
        assert!(found.contains("not a readable Parquet file"), "{found}");
        let whole = std::fs::read(dir.path().join("t.parquet")).unwrap();
        std::fs::write(dir.path().join("cut.parquet"), &whole[..whole.len() / 2]).unwrap();
        let found = check(serde_json::json!({"path": "cut.parquet"}));
        assert!(found.contains("not a readable Parquet file"), "{found}");
    }

    /// `validate` follows the types a Parquet schema gives through the
    /// DAG: a text column is certainly categorical, a number certainly
    /// numeric, a declared type wins.
    #[test]
    fn validate_takes_column_types_from_the_schema() {
        use crate::shape::{Kind, TableShape};
        use mlcycle_pipeline::StageKind;
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            vec![
                ("area", Arc::new(Int64Array::from(vec![1, 2]))),
                ("city", Arc::new(StringArray::from(vec!["a", "b"]))),
                ("code", Arc::new(Int64Array::from(vec![3, 4]))),
            ],
        );
        let p: crate::dataset::ParquetParams = serde_json::from_value(serde_json::json!(
            {"path": "t.parquet", "target": "area", "types": {"code": "categorical"}}
        ))
        .unwrap();
        let cx = mlcycle_pipeline::InferContext {
            stage: "data",
            workspace: dir.path(),
            inputs: Default::default(),
            gathered: Default::default(),
        };
        let out = crate::dataset::Parquet::infer(&p, &cx);
        let shape = out.outputs["data"].get::<TableShape>().unwrap();
        assert_eq!(
            shape.columns,
            [
                ("area".to_string(), Kind::Numeric),
                ("city".to_string(), Kind::Categorical),
                ("code".to_string(), Kind::Categorical),
            ]
        );
        assert_eq!(shape.target.as_deref(), Some("area"));
        assert!(out.problems.is_empty());
    }

    #[test]
    fn every_numeric_and_text_type_converts() {
        let dir = tempfile::tempdir().unwrap();
        let dict: DictionaryArray<Int8Type> =
            vec![Some("b"), None, Some("a")].into_iter().collect();
        let p = write(
            dir.path(),
            vec![
                (
                    "i64",
                    Arc::new(Int64Array::from(vec![Some(-2), None, Some(1 << 40)])),
                ),
                ("u16", Arc::new(UInt16Array::from(vec![1, 2, 65535]))),
                (
                    "f32",
                    Arc::new(Float32Array::from(vec![Some(0.5), Some(1.25), None])),
                ),
                (
                    "dec",
                    Arc::new(
                        Decimal128Array::from(vec![Some(12345), None, Some(-5)])
                            .with_precision_and_scale(10, 2)
                            .unwrap(),
                    ),
                ),
                ("dict", Arc::new(dict)),
                (
                    "large",
                    Arc::new(LargeStringArray::from(vec!["x", "y", "z"])),
                ),
                (
                    "nums_as_text",
                    Arc::new(StringArray::from(vec![Some(" 1.5"), None, Some("7")])),
                ),
                (
                    "flag",
                    Arc::new(BooleanArray::from(vec![Some(true), Some(false), None])),
                ),
            ],
        );
        let types = HashMap::from([
            ("nums_as_text".to_string(), "numeric".to_string()),
            ("flag".to_string(), "numeric".to_string()),
            ("u16".to_string(), "categorical".to_string()),
        ]);
        let t = Table::read_parquet(&p, &types).unwrap();
        let col = |n: &str| &t.column(n).unwrap().data;
        let nums = |n: &str| match col(n) {
            ColumnData::Numeric(v) => v.clone(),
            other => panic!("{n} is {other:?}"),
        };
        let same = |a: Vec<f64>, b: &[f64]| {
            a.len() == b.len()
                && a.iter()
                    .zip(b)
                    .all(|(x, y)| (x.is_nan() && y.is_nan()) || x == y)
        };
        assert!(same(nums("i64"), &[-2.0, f64::NAN, (1u64 << 40) as f64]));
        assert!(same(nums("f32"), &[0.5, 1.25, f64::NAN]));
        assert!(same(nums("dec"), &[123.45, f64::NAN, -0.05]));
        assert!(same(nums("nums_as_text"), &[1.5, f64::NAN, 7.0]));
        assert!(same(nums("flag"), &[1.0, 0.0, f64::NAN]));
        assert_eq!(
            col("u16"),
            &ColumnData::Categorical(vec![
                Some("1".into()),
                Some("2".into()),
                Some("65535".into())
            ])
        );
        assert_eq!(
            col("dict"),
            &ColumnData::Categorical(vec![Some("b".into()), None, Some("a".into())])
        );
        assert_eq!(col("large").display(2), "z");
    }

    #[test]
    fn dates_and_timestamps_read_as_epoch_numbers_or_declared_as_iso_text() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(
            dir.path(),
            vec![
                (
                    "day",
                    Arc::new(Date32Array::from(vec![Some(0), Some(19783), None])),
                ),
                (
                    "at",
                    Arc::new(TimestampMillisecondArray::from(vec![
                        Some(1_700_000_000_500),
                        Some(0),
                        None,
                    ])),
                ),
            ],
        );
        // Undeclared: days and seconds since the Unix epoch.
        let t = Table::read_parquet(&p, &HashMap::new()).unwrap();
        let num = |n: &str| match &t.column(n).unwrap().data {
            ColumnData::Numeric(v) => v.clone(),
            other => panic!("{n} is {}", other.type_name()),
        };
        assert_eq!(num("day")[..2], [0.0, 19783.0]);
        assert!(num("day")[2].is_nan());
        assert_eq!(num("at")[..2], [1_700_000_000.5, 0.0]);
        let types = HashMap::from([
            ("day".to_string(), "categorical".to_string()),
            ("at".to_string(), "categorical".to_string()),
        ]);
        let t = Table::read_parquet(&p, &types).unwrap();
        let col = |n: &str| &t.column(n).unwrap().data;
        assert_eq!(
            col("day"),
            &ColumnData::Categorical(vec![
                Some("1970-01-01".into()),
                Some("2024-03-01".into()),
                None
            ])
        );
        assert_eq!(
            col("at"),
            &ColumnData::Categorical(vec![
                Some("2023-11-14T22:13:20.500".into()),
                Some("1970-01-01T00:00:00".into()),
                None
            ])
        );
    }

    #[test]
    fn numbers_declared_categorical_keep_their_exact_text() {
        use arrow_array::{BinaryArray, NullArray, UInt64Array};
        let dir = tempfile::tempdir().unwrap();
        let p = write(
            dir.path(),
            vec![
                (
                    "id",
                    Arc::new(Int64Array::from(vec![
                        9_007_199_254_740_993,
                        9_007_199_254_740_992,
                    ])),
                ),
                ("u", Arc::new(UInt64Array::from(vec![u64::MAX, 0]))),
                ("f", Arc::new(Float32Array::from(vec![0.1, 2.0]))),
                (
                    "d",
                    Arc::new(
                        Decimal128Array::from(vec![123_456_789_012_345_678_901_234_567, -5])
                            .with_precision_and_scale(30, 3)
                            .unwrap(),
                    ),
                ),
                (
                    "b",
                    Arc::new(BinaryArray::from(vec![&b"ab"[..], &b"c"[..]])),
                ),
                ("n", Arc::new(NullArray::new(2))),
            ],
        );
        let types: HashMap<String, String> = ["id", "u", "f", "d", "n"]
            .iter()
            .map(|c| (c.to_string(), "categorical".to_string()))
            .collect();
        let t = Table::read_parquet(&p, &types).unwrap();
        let text = |n: &str| match &t.column(n).unwrap().data {
            ColumnData::Categorical(v) => v.clone(),
            other => panic!("{n} is {other:?}"),
        };
        let some = |v: &[&str]| v.iter().map(|s| Some(s.to_string())).collect::<Vec<_>>();
        assert_eq!(text("id"), some(&["9007199254740993", "9007199254740992"]));
        assert_eq!(text("u"), some(&["18446744073709551615", "0"]));
        assert_eq!(text("f"), some(&["0.1", "2"]));
        assert_eq!(text("d"), some(&["123456789012345678901234.567", "-0.005"]));
        assert_eq!(text("b"), some(&["ab", "c"]));
        assert_eq!(text("n"), vec![None, None]);
    }

    #[test]
    fn text_that_is_not_a_number_is_refused_with_its_rows() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(
            dir.path(),
            vec![(
                "s",
                Arc::new(StringArray::from(vec!["1", "two"])) as ArrayRef,
            )],
        );
        let types = HashMap::from([("s".to_string(), "numeric".to_string())]);
        let e = Table::read_parquet(&p, &types).unwrap_err().to_string();
        assert!(
            e.contains("column `s` (rows 1..2)") && e.contains("`two` is not a number"),
            "{e}"
        );
    }
}
