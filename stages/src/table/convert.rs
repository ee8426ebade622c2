//! Arrow arrays to table columns, for every file a table is read from
//! (Arrow IPC / Feather as pandas, polars and pyarrow write it, and
//! Parquet): each column becomes numeric (`f64`, a null is NaN) or
//! categorical (text, a null is `None`).
//!
//! The conversion is written out for the types a table holds (integers,
//! floats, decimals, text, booleans, dates, timestamps, dictionaries of
//! those) rather than taken from `arrow-cast`, whose general casts cost
//! about 100 s of CPU in a cold build for the dozen cases used here.
//!
//! Dates and timestamps are numeric by default, so that a model can use
//! them: a date is the number of days since 1970-01-01, a timestamp the
//! number of seconds since 1970-01-01T00:00:00 UTC (fractional below a
//! second; a time zone only changes how the instant is shown, not its
//! value). Declared `categorical` (`types:` of `dataset.parquet`), they
//! read as ISO 8601 text instead.

use arrow_array::cast::AsArray;
use arrow_array::temporal_conversions::{as_datetime, date32_to_datetime, date64_to_datetime};
use arrow_array::types::{
    ArrowPrimitiveType, Decimal128Type, Decimal256Type, Decimal32Type, Decimal64Type, DecimalType,
    Float16Type, Float32Type, Float64Type, Int16Type, Int32Type, Int64Type, Int8Type, UInt16Type,
    UInt32Type, UInt64Type, UInt8Type,
};
use arrow_array::types::{
    Date32Type, Date64Type, TimestampMicrosecondType, TimestampMillisecondType,
    TimestampNanosecondType, TimestampSecondType,
};
use arrow_array::{Array, RecordBatch};
use arrow_schema::{ArrowError, DataType, Field, Schema, TimeUnit};

use super::{Column, ColumnData};

/// Reads record `batches` of `schema` into columns, each of the type
/// `declared(name)` gives (`numeric` or `categorical`) or else the one its
/// Arrow type implies. Errors name the column (and rows for a value that
/// is not a number).
pub(super) fn read_batches(
    schema: &Schema,
    batches: impl Iterator<Item = Result<RecordBatch, ArrowError>>,
    declared: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<Column>, String> {
    let mut columns: Vec<Column> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for f in schema.fields() {
        // A table addresses its columns by name: two of one name would
        // read as one (the first), silently.
        if f.name().is_empty() {
            return Err(
                "a column has an empty name; column names must be non-empty and unique".into(),
            );
        }
        if !seen.insert(f.name().as_str()) {
            return Err(format!(
                "two columns are named `{}`; column names must be non-empty and unique",
                f.name()
            ));
        }
        let d = declared(f.name());
        columns.push(column_for(f, d.as_deref())?);
    }
    let mut row0 = 0usize;
    for batch in batches {
        let batch = batch.map_err(|e| e.to_string())?;
        for (col, array) in columns.iter_mut().zip(batch.columns()) {
            match &mut col.data {
                ColumnData::Numeric(v) => {
                    let start = v.len();
                    numbers(array.as_ref(), v).map_err(|e| {
                        format!(
                            "column `{}` (rows {}..{}): not readable as numbers: {e}",
                            col.name,
                            row0 + 1,
                            row0 + batch.num_rows()
                        )
                    })?;
                    if let Some(i) = v[start..].iter().position(|x| x.is_infinite()) {
                        return Err(format!(
                            "column `{}`, row {}: {} is not a finite number",
                            col.name,
                            row0 + i + 1,
                            v[start + i]
                        ));
                    }
                }
                ColumnData::Categorical(v) => {
                    texts(array.as_ref(), v).map_err(|e| format!("column `{}`: {e}", col.name))?
                }
            }
        }
        row0 += batch.num_rows();
    }
    Ok(columns)
}

/// An empty column of the type `declared`, or else the type the field's
/// Arrow type implies.
/// Whether [`numbers`] converts an array of type `t`.
fn holds_numbers(t: &DataType) -> bool {
    match t {
        DataType::Null
        | DataType::Boolean
        | DataType::Utf8
        | DataType::LargeUtf8
        | DataType::Utf8View
        | DataType::Date32
        | DataType::Date64
        | DataType::Timestamp(_, _) => true,
        DataType::Dictionary(_, values) => holds_numbers(values),
        t => t.is_numeric(),
    }
}

pub(super) fn column_for(f: &Field, declared: Option<&str>) -> Result<Column, String> {
    let numeric = match declared {
        Some("numeric") if !holds_numbers(f.data_type()) => {
            return Err(format!(
                "column `{}` is declared `numeric`, but the type {} does not hold numbers",
                f.name(),
                f.data_type()
            ))
        }
        Some("numeric") => true,
        Some(_) => false,
        None => match f.data_type() {
            t if t.is_numeric() => true,
            DataType::Utf8
            | DataType::LargeUtf8
            | DataType::Utf8View
            | DataType::Boolean
            | DataType::Binary
            | DataType::LargeBinary
            | DataType::BinaryView
            | DataType::Null
            | DataType::Dictionary(_, _) => false,
            // Days or seconds since the Unix epoch (see the module's doc).
            DataType::Date32 | DataType::Date64 | DataType::Timestamp(_, _) => true,
            other => {
                return Err(format!(
                    "column `{}` has type {other}; tables hold numbers and text",
                    f.name()
                ))
            }
        },
    };
    Ok(Column {
        name: f.name().clone(),
        data: if numeric {
            ColumnData::Numeric(Vec::new())
        } else {
            ColumnData::Categorical(Vec::new())
        },
    })
}

/// Appends `array`'s values as numbers (a null is NaN).
pub(super) fn numbers(array: &dyn Array, out: &mut Vec<f64>) -> Result<(), String> {
    fn primitive<T: ArrowPrimitiveType>(
        array: &dyn Array,
        out: &mut Vec<f64>,
        to_f64: impl Fn(T::Native) -> f64,
    ) -> bool {
        let Some(a) = array.as_primitive_opt::<T>() else {
            return false;
        };
        out.extend(a.iter().map(|x| x.map_or(f64::NAN, &to_f64)));
        true
    }
    let scale = |s: i8| 10f64.powi(i32::from(s));
    let done = match array.data_type() {
        DataType::Int8 => primitive::<Int8Type>(array, out, f64::from),
        DataType::Int16 => primitive::<Int16Type>(array, out, f64::from),
        DataType::Int32 => primitive::<Int32Type>(array, out, f64::from),
        DataType::Int64 => primitive::<Int64Type>(array, out, |x| x as f64),
        DataType::UInt8 => primitive::<UInt8Type>(array, out, f64::from),
        DataType::UInt16 => primitive::<UInt16Type>(array, out, f64::from),
        DataType::UInt32 => primitive::<UInt32Type>(array, out, f64::from),
        DataType::UInt64 => primitive::<UInt64Type>(array, out, |x| x as f64),
        DataType::Float16 => primitive::<Float16Type>(array, out, |x| x.to_f64()),
        DataType::Float32 => primitive::<Float32Type>(array, out, f64::from),
        DataType::Float64 => primitive::<Float64Type>(array, out, |x| x),
        DataType::Decimal32(_, s) => {
            let d = scale(*s);
            primitive::<Decimal32Type>(array, out, |x| f64::from(x) / d)
        }
        DataType::Decimal64(_, s) => {
            let d = scale(*s);
            primitive::<Decimal64Type>(array, out, |x| x as f64 / d)
        }
        DataType::Decimal128(_, s) => {
            let d = scale(*s);
            primitive::<Decimal128Type>(array, out, |x| x as f64 / d)
        }
        DataType::Decimal256(_, s) => {
            let d = scale(*s);
            primitive::<Decimal256Type>(array, out, |x| {
                x.to_string().parse::<f64>().map_or(f64::NAN, |v| v / d)
            })
        }
        DataType::Null => {
            out.extend(std::iter::repeat_n(f64::NAN, array.len()));
            true
        }
        // Days since 1970-01-01.
        DataType::Date32 => primitive::<Date32Type>(array, out, f64::from),
        DataType::Date64 => primitive::<Date64Type>(array, out, |ms| ms as f64 / 86_400_000.0),
        // Seconds since 1970-01-01T00:00:00 UTC.
        DataType::Timestamp(unit, _) => {
            let per_second = match unit {
                TimeUnit::Second => 1.0,
                TimeUnit::Millisecond => 1e3,
                TimeUnit::Microsecond => 1e6,
                TimeUnit::Nanosecond => 1e9,
            };
            let Some(a) = array
                .as_primitive_opt::<TimestampSecondType>()
                .map(|a| a.values().clone())
                .or_else(|| {
                    array
                        .as_primitive_opt::<TimestampMillisecondType>()
                        .map(|a| a.values().clone())
                })
                .or_else(|| {
                    array
                        .as_primitive_opt::<TimestampMicrosecondType>()
                        .map(|a| a.values().clone())
                })
                .or_else(|| {
                    array
                        .as_primitive_opt::<TimestampNanosecondType>()
                        .map(|a| a.values().clone())
                })
            else {
                return Err(format!(
                    "the type {} does not hold numbers",
                    array.data_type()
                ));
            };
            out.extend(a.iter().enumerate().map(|(i, &v)| {
                if array.is_null(i) {
                    f64::NAN
                } else {
                    v as f64 / per_second
                }
            }));
            true
        }
        DataType::Boolean => {
            let a = array.as_boolean();
            out.extend(
                a.iter()
                    .map(|b| b.map_or(f64::NAN, |b| f64::from(u8::from(b)))),
            );
            true
        }
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => {
            let mut text = Vec::with_capacity(array.len());
            texts(array, &mut text)?;
            for t in text {
                out.push(match t {
                    None => f64::NAN,
                    Some(t) => t
                        .trim()
                        .parse::<f64>()
                        .map_err(|_| format!("`{t}` is not a number"))?,
                });
            }
            true
        }
        DataType::Dictionary(_, _) => {
            let dict = array.as_any_dictionary();
            let mut values = Vec::with_capacity(dict.values().len());
            numbers(dict.values().as_ref(), &mut values)?;
            let keys = dict.normalized_keys();
            out.extend(keys.iter().enumerate().map(|(i, &k)| {
                if array.is_null(i) {
                    f64::NAN
                } else {
                    values.get(k).copied().unwrap_or(f64::NAN)
                }
            }));
            true
        }
        _ => false,
    };
    if done {
        Ok(())
    } else {
        Err(format!(
            "the type {} does not hold numbers",
            array.data_type()
        ))
    }
}

/// Appends `array`'s values as text (a null is `None`). Dates become
/// `2024-03-01`, timestamps `2024-03-01T12:00:00` (the instant in UTC,
/// fractional seconds only when there are some).
pub(super) fn texts(array: &dyn Array, out: &mut Vec<Option<String>>) -> Result<(), String> {
    match array.data_type() {
        DataType::Utf8 => out.extend(
            array
                .as_string::<i32>()
                .iter()
                .map(|s| s.map(str::to_string)),
        ),
        DataType::LargeUtf8 => {
            out.extend(
                array
                    .as_string::<i64>()
                    .iter()
                    .map(|s| s.map(str::to_string)),
            );
        }
        DataType::Utf8View => {
            out.extend(array.as_string_view().iter().map(|s| s.map(str::to_string)));
        }
        DataType::Boolean => {
            out.extend(array.as_boolean().iter().map(|b| b.map(|b| b.to_string())));
        }
        DataType::Dictionary(_, _) => {
            let dict = array.as_any_dictionary();
            let mut values = Vec::with_capacity(dict.values().len());
            texts(dict.values().as_ref(), &mut values)?;
            let keys = dict.normalized_keys();
            out.extend(keys.iter().enumerate().map(|(i, &k)| {
                if array.is_null(i) {
                    None
                } else {
                    values.get(k).cloned().flatten()
                }
            }));
        }
        DataType::Date32 => out.extend(
            array
                .as_primitive::<Date32Type>()
                .iter()
                .map(|d| Some(date32_to_datetime(d?)?.date().to_string())),
        ),
        DataType::Date64 => out.extend(
            array
                .as_primitive::<Date64Type>()
                .iter()
                .map(|d| Some(date64_to_datetime(d?)?.date().to_string())),
        ),
        DataType::Timestamp(unit, _) => match unit {
            TimeUnit::Second => timestamps::<TimestampSecondType>(array, out),
            TimeUnit::Millisecond => timestamps::<TimestampMillisecondType>(array, out),
            TimeUnit::Microsecond => timestamps::<TimestampMicrosecondType>(array, out),
            TimeUnit::Nanosecond => timestamps::<TimestampNanosecondType>(array, out),
        },
        // A numeric column declared categorical: each value's exact text,
        // from its own type (never through f64, which would merge large
        // integer ids and print 0.1f32 as 0.10000000149011612).
        DataType::Int8 => exact::<Int8Type>(array, out, |x| x.to_string()),
        DataType::Int16 => exact::<Int16Type>(array, out, |x| x.to_string()),
        DataType::Int32 => exact::<Int32Type>(array, out, |x| x.to_string()),
        DataType::Int64 => exact::<Int64Type>(array, out, |x| x.to_string()),
        DataType::UInt8 => exact::<UInt8Type>(array, out, |x| x.to_string()),
        DataType::UInt16 => exact::<UInt16Type>(array, out, |x| x.to_string()),
        DataType::UInt32 => exact::<UInt32Type>(array, out, |x| x.to_string()),
        DataType::UInt64 => exact::<UInt64Type>(array, out, |x| x.to_string()),
        DataType::Float16 => exact::<Float16Type>(array, out, |x| x.to_string()),
        DataType::Float32 => exact::<Float32Type>(array, out, |x| x.to_string()),
        DataType::Float64 => exact::<Float64Type>(array, out, |x| x.to_string()),
        DataType::Decimal32(p, s) => decimals::<Decimal32Type>(array, out, *p, *s),
        DataType::Decimal64(p, s) => decimals::<Decimal64Type>(array, out, *p, *s),
        DataType::Decimal128(p, s) => decimals::<Decimal128Type>(array, out, *p, *s),
        DataType::Decimal256(p, s) => decimals::<Decimal256Type>(array, out, *p, *s),
        DataType::Binary => binary(array.as_binary::<i32>().iter(), out)?,
        DataType::LargeBinary => binary(array.as_binary::<i64>().iter(), out)?,
        DataType::BinaryView => binary(array.as_binary_view().iter(), out)?,
        DataType::Null => out.extend(std::iter::repeat_n(None, array.len())),
        other => return Err(format!("the type {other} does not hold text")),
    }
    Ok(())
}

/// Appends a primitive array's values as text, each by `text`.
fn exact<T: ArrowPrimitiveType>(
    array: &dyn Array,
    out: &mut Vec<Option<String>>,
    text: impl Fn(T::Native) -> String,
) {
    out.extend(array.as_primitive::<T>().iter().map(|x| x.map(&text)));
}

/// Appends a decimal array's values as exact decimal text (`12.50`).
fn decimals<T: DecimalType>(
    array: &dyn Array,
    out: &mut Vec<Option<String>>,
    precision: u8,
    scale: i8,
) {
    exact::<T>(array, out, |x| T::format_decimal(x, precision, scale));
}

/// Appends byte strings as text; bytes that are not UTF-8 are an error.
fn binary<'a>(
    values: impl Iterator<Item = Option<&'a [u8]>>,
    out: &mut Vec<Option<String>>,
) -> Result<(), String> {
    for (i, v) in values.enumerate() {
        out.push(match v {
            None => None,
            Some(b) => Some(
                String::from_utf8(b.to_vec())
                    .map_err(|_| format!("row {} is not UTF-8 text", i + 1))?,
            ),
        });
    }
    Ok(())
}

/// Appends a timestamp array's values as ISO 8601 text.
fn timestamps<T: ArrowPrimitiveType<Native = i64>>(
    array: &dyn Array,
    out: &mut Vec<Option<String>>,
) {
    out.extend(array.as_primitive::<T>().iter().map(|v| {
        Some(
            as_datetime::<T>(v?)?
                .format("%Y-%m-%dT%H:%M:%S%.f")
                .to_string(),
        )
    }));
}
