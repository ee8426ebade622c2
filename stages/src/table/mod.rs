//! The `table` artifact: named columns, numeric or categorical, with an
//! optional target column.
//!
//! On disk a table is an Arrow IPC file (`.arrow`, also called Feather v2),
//! which pandas (`pd.read_feather`) and polars (`pl.read_ipc`) open directly.
//! The target column's name is kept in the schema metadata under
//! `mlcycle.target`. CSV is the format on the way in and out.

use std::collections::HashMap;
use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use arrow_array::{ArrayRef, Float64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};

use rayon::prelude::*;

use crate::steps::Transform;

mod convert;
#[cfg(feature = "parquet")]
mod parquet;

/// Schema metadata key holding the target column's name.
pub const TARGET_KEY: &str = "mlcycle.target";
/// Schema metadata key holding the applied transform chain (JSON).
pub const TRANSFORMS_KEY: &str = "mlcycle.transforms";

/// A column's values. Missing numeric values are NaN; missing categories `None`.
#[derive(Debug, Clone, PartialEq)]
pub enum ColumnData {
    Numeric(Vec<f64>),
    Categorical(Vec<Option<String>>),
}

impl ColumnData {
    pub fn len(&self) -> usize {
        match self {
            ColumnData::Numeric(v) => v.len(),
            ColumnData::Categorical(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn type_name(&self) -> &'static str {
        match self {
            ColumnData::Numeric(_) => "numeric",
            ColumnData::Categorical(_) => "categorical",
        }
    }

    /// The column's values as categories: a categorical column's own, or
    /// all missing for a numeric column with no value at all (a CSV
    /// column whose every cell is empty reads as numeric NaN). `None` for
    /// a numeric column with a value.
    pub fn as_categories(&self) -> Option<std::borrow::Cow<'_, [Option<String>]>> {
        match self {
            ColumnData::Categorical(v) => Some(v.as_slice().into()),
            ColumnData::Numeric(v) if v.iter().all(|x| x.is_nan()) => {
                Some(vec![None; v.len()].into())
            }
            ColumnData::Numeric(_) => None,
        }
    }

    /// The value at `row`, as shown to people.
    pub fn display(&self, row: usize) -> String {
        match self {
            ColumnData::Numeric(v) if v[row].is_nan() => String::new(),
            ColumnData::Numeric(v) => format_number(v[row]),
            ColumnData::Categorical(v) => v[row].clone().unwrap_or_default(),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    pub name: String,
    pub data: ColumnData,
}

/// Named columns of equal length.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Table {
    pub columns: Vec<Column>,
    pub target: Option<String>,
    /// Fitted preprocessing steps applied to these rows so far, in order
    /// (schema metadata `mlcycle.transforms`).
    pub transforms: Vec<Transform>,
}

/// What can go wrong reading or writing a table.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum TableError {
    #[diagnostic(code(mlcycle::table::io))]
    #[error("cannot read {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[diagnostic(code(mlcycle::table::format))]
    #[error("{path}: {message}")]
    Format { path: String, message: String },
    #[diagnostic(code(mlcycle::table::row))]
    #[error("{path}, line {line}: {message}")]
    Row {
        path: String,
        line: u64,
        message: String,
    },
}

/// How to read a CSV file.
#[derive(Debug, Clone, Default)]
pub struct CsvOptions {
    /// Column name → `numeric` or `categorical`; other columns are inferred:
    /// numeric when every non-empty value parses as a number.
    pub types: HashMap<String, String>,
    pub delimiter: Option<u8>,
}

impl Table {
    pub fn n_rows(&self) -> usize {
        self.columns.first().map(|c| c.data.len()).unwrap_or(0)
    }

    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.name == name)
    }

    pub fn names(&self) -> Vec<&str> {
        self.columns.iter().map(|c| c.name.as_str()).collect()
    }

    /// The rows at `rows`, in that order.
    pub fn take(&self, rows: &[usize]) -> Table {
        Table {
            columns: self
                .columns
                .iter()
                .map(|c| Column {
                    name: c.name.clone(),
                    data: match &c.data {
                        ColumnData::Numeric(v) => {
                            ColumnData::Numeric(rows.iter().map(|&i| v[i]).collect())
                        }
                        ColumnData::Categorical(v) => {
                            ColumnData::Categorical(rows.iter().map(|&i| v[i].clone()).collect())
                        }
                    },
                })
                .collect(),
            target: self.target.clone(),
            transforms: self.transforms.clone(),
        }
    }

    /// Reads a CSV file with a header row.
    pub fn read_csv(path: &Path, opts: &CsvOptions) -> Result<Table, TableError> {
        let shown = path.display().to_string();
        let mut rdr = csv::ReaderBuilder::new()
            .has_headers(true)
            .delimiter(opts.delimiter.unwrap_or(b','))
            .from_path(path)
            .map_err(|e| csv_error(&shown, e))?;
        let headers = csv_headers(&mut rdr, &shown, opts)?;
        // One pass parses numbers as they stream by (no string per cell);
        // a column that turns out to hold text is read again as text. A
        // large file without quotes is cut at line ends and its pieces
        // parsed in parallel.
        let declared: Vec<Option<&str>> = headers
            .iter()
            .map(|h| opts.types.get(h).map(String::as_str))
            .collect();
        let mut body_start = rdr.position().byte() as usize;
        drop(rdr);
        let buf = std::fs::read(path).map_err(|source| TableError::Io {
            path: shown.clone(),
            source,
        })?;
        // After a CRLF header the reader stops between `\r` and `\n`: the
        // body then began with that `\n`, uncounted, and every line number
        // of a CRLF file came out one too low.
        if buf.get(body_start) == Some(&b'\n') {
            body_start += 1;
        }
        let body = &buf[body_start.min(buf.len())..];
        let delimiter = opts.delimiter.unwrap_or(b',');
        let first_line = 1 + buf[..body_start.min(buf.len())]
            .iter()
            .filter(|&&b| b == b'\n')
            .count() as u64;
        let pieces = split_at_lines(body, first_line);
        let parsed: Vec<Result<Vec<Acc>, TableError>> = pieces
            .par_iter()
            .map(|(chunk, line0)| {
                parse_chunk(chunk, *line0, delimiter, &headers, &declared, &shown)
            })
            .collect();
        let mut acc = merge_pieces(parsed, &declared)?;
        if acc.iter().any(|a| matches!(a, Acc::NotNumeric)) {
            reread_as_text(body, delimiter, first_line, &headers, &mut acc, &shown)?;
        }
        let columns = headers
            .into_iter()
            .zip(acc)
            .map(|(name, a)| Column {
                name,
                data: match a {
                    Acc::Num(v) => ColumnData::Numeric(v),
                    Acc::Text(v) => ColumnData::Categorical(v),
                    Acc::NotNumeric => unreachable!("re-read as text above"),
                },
            })
            .collect();
        Ok(Table {
            columns,
            target: None,
            transforms: Vec::new(),
        })
    }

    /// The columns of a CSV file as far as its first `rows` rows (and
    /// 8 MiB) tell: each name with whether a value there is not a number,
    /// which makes [`Table::read_csv`] read the column as text. A column
    /// of numbers may still hold text further down. For `mlcycle
    /// validate`, which must not read a large file whole.
    ///
    /// # Errors
    /// The file cannot be read, or its header row is bad.
    pub fn sniff_csv(
        path: &Path,
        delimiter: u8,
        rows: usize,
    ) -> Result<Vec<(String, bool)>, TableError> {
        let shown = path.display().to_string();
        let file = std::fs::File::open(path).map_err(|source| TableError::Io {
            path: shown.clone(),
            source,
        })?;
        // Capped: an unclosed quote must not make it read all.
        let mut rdr = csv::ReaderBuilder::new()
            .has_headers(true)
            .flexible(true)
            .delimiter(delimiter)
            .from_reader(std::io::Read::take(file, 8 << 20));
        let headers = csv_headers(&mut rdr, &shown, &CsvOptions::default())?;
        let mut text = vec![false; headers.len()];
        let mut rec = csv::ByteRecord::new();
        for _ in 0..rows {
            // A bad row is reported when the stage runs, with its line.
            match rdr.read_byte_record(&mut rec) {
                Ok(true) => {}
                Ok(false) | Err(_) => break,
            }
            for (seen, field) in text.iter_mut().zip(rec.iter()) {
                let v = std::str::from_utf8(field.trim_ascii()).unwrap_or("\u{fffd}");
                *seen |= !is_missing(v) && v.parse::<f64>().is_err();
            }
        }
        Ok(headers.into_iter().zip(text).collect())
    }

    /// Writes a CSV file with a header row.
    pub fn write_csv(&self, path: &Path) -> Result<(), TableError> {
        let shown = path.display().to_string();
        let mut w = csv::Writer::from_path(path).map_err(|e| csv_error(&shown, e))?;
        w.write_record(self.names())
            .map_err(|e| csv_error(&shown, e))?;
        for row in 0..self.n_rows() {
            w.write_record(self.columns.iter().map(|c| c.data.display(row)))
                .map_err(|e| csv_error(&shown, e))?;
        }
        w.flush().map_err(|source| TableError::Io {
            path: shown,
            source,
        })
    }

    /// Writes an Arrow IPC file.
    pub fn write_arrow(&self, path: &Path) -> Result<(), TableError> {
        let shown = path.display().to_string();
        let fmt = |e: arrow_schema::ArrowError| TableError::Format {
            path: shown.clone(),
            message: e.to_string(),
        };
        let fields: Vec<Field> = self
            .columns
            .iter()
            .map(|c| match c.data {
                ColumnData::Numeric(_) => Field::new(&c.name, DataType::Float64, true),
                ColumnData::Categorical(_) => Field::new(&c.name, DataType::Utf8, true),
            })
            .collect();
        let mut meta = HashMap::new();
        if let Some(t) = &self.target {
            meta.insert(TARGET_KEY.to_string(), t.clone());
        }
        if !self.transforms.is_empty() {
            meta.insert(
                TRANSFORMS_KEY.to_string(),
                serde_json::to_string(&self.transforms).expect("transforms serialize"),
            );
        }
        let schema = Arc::new(Schema::new_with_metadata(fields, meta));
        let arrays: Vec<ArrayRef> = self
            .columns
            .iter()
            .map(|c| -> ArrayRef {
                match &c.data {
                    ColumnData::Numeric(v) => {
                        // Values as they are, with a validity mask only when
                        // there are gaps (NaN = missing).
                        let nulls = v.iter().any(|x| x.is_nan()).then(|| {
                            arrow_buffer::NullBuffer::from(
                                v.iter().map(|x| !x.is_nan()).collect::<Vec<bool>>(),
                            )
                        });
                        Arc::new(Float64Array::new(v.clone().into(), nulls))
                    }
                    ColumnData::Categorical(v) => Arc::new(StringArray::from(
                        v.iter().map(|x| x.as_deref()).collect::<Vec<_>>(),
                    )),
                }
            })
            .collect();
        let batch = if arrays.is_empty() {
            RecordBatch::new_empty(schema.clone())
        } else {
            RecordBatch::try_new(schema.clone(), arrays).map_err(fmt)?
        };
        let file = File::create(path).map_err(|source| TableError::Io {
            path: shown.clone(),
            source,
        })?;
        let mut w = arrow_ipc::writer::FileWriter::try_new(file, &schema).map_err(fmt)?;
        w.write(&batch).map_err(fmt)?;
        w.finish().map_err(fmt)
    }

    /// Reads a table from any file a stage may be given: Arrow IPC
    /// (Feather v2, file or stream format, any compression pandas, polars
    /// or pyarrow use), Parquet, or CSV (`.csv`, `.tsv`; types inferred as
    /// `dataset.csv` does). The format is told by the file's first bytes,
    /// not its name. A table read from a file mlcycle did not write names
    /// no target: the consuming stage's `target:` does.
    ///
    /// # Errors
    /// The file cannot be read, is none of those formats, or holds a
    /// column a table cannot ([`convert`] lists what it can).
    pub fn read(path: &Path) -> Result<Table, TableError> {
        use std::io::Read as _;
        let shown = path.display().to_string();
        let mut head = [0u8; 8];
        let n = File::open(path)
            .and_then(|mut f| f.read(&mut head))
            .map_err(|source| TableError::Io {
                path: shown.clone(),
                source,
            })?;
        let head = &head[..n];
        if head.starts_with(b"ARROW1") {
            return Table::read_arrow(path);
        }
        if head.starts_with(&[0xff, 0xff, 0xff, 0xff]) {
            return Table::read_ipc(path, true);
        }
        if head.starts_with(b"PAR1") {
            #[cfg(feature = "parquet")]
            return Table::read_parquet(path, &std::collections::HashMap::new());
            #[cfg(not(feature = "parquet"))]
            return Err(TableError::Format {
                path: shown,
                message: "a Parquet file, and this mlcycle was built without Parquet support (the `parquet` feature)".into(),
            });
        }
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        match ext.as_deref() {
            Some("csv") | Some("txt") => Table::read_csv(path, &CsvOptions::default()),
            Some("tsv") => Table::read_csv(
                path,
                &CsvOptions {
                    delimiter: Some(b'\t'),
                    ..CsvOptions::default()
                },
            ),
            _ => Err(TableError::Format {
                path: shown,
                message:
                    "not a table: neither Arrow IPC (Feather), Parquet, nor a `.csv` or `.tsv` file"
                        .into(),
            }),
        }
    }

    /// Names `target` the table's target column (when given), replacing the
    /// one it had: a table a script wrote names none.
    ///
    /// # Errors
    /// The table has no such column (the message suggests the nearest).
    pub fn set_target(&mut self, target: Option<&str>) -> Result<(), String> {
        let Some(t) = target else { return Ok(()) };
        if self.column(t).is_none() {
            let names = self.names();
            let near = mlcycle_pipeline::suggest::did_you_mean(t, &names);
            return Err(if near.is_empty() {
                format!(
                    "`target: {t}` names no column of the table; its columns: {}",
                    names.join(", ")
                )
            } else {
                format!("`target: {t}` names no column of the table; {near}")
            });
        }
        // A column a fitted step changed (scaled, imputed, encoded) is a
        // feature of the chain, not raw values a model could predict.
        let steps = serde_json::to_value(&self.transforms).unwrap_or_default();
        let touched = steps.as_array().into_iter().flatten().find(|step| {
            step.get("columns")
                .and_then(|c| c.as_array())
                .is_some_and(|c| c.iter().any(|n| n.as_str() == Some(t)))
        });
        if let Some(step) = touched {
            return Err(format!(
                "`target: {t}` names a column that a fitted `{}` step upstream changed; name the target before that step (in the stage that reads the raw table)",
                step.get("op").and_then(|o| o.as_str()).unwrap_or("preprocessing")
            ));
        }
        self.target = Some(t.to_string());
        Ok(())
    }

    /// The target and transform chain a table's schema metadata records.
    fn metadata(
        schema: &arrow_schema::Schema,
        fmt: &dyn Fn(String) -> TableError,
    ) -> Result<(Option<String>, Vec<Transform>), TableError> {
        let target = schema.metadata().get(TARGET_KEY).cloned();
        let transforms = match schema.metadata().get(TRANSFORMS_KEY) {
            None => Vec::new(),
            Some(json) => serde_json::from_str(json).map_err(|e| {
                fmt(format!(
                    "the transform chain in its metadata is unreadable ({e}); was it written by a newer mlcycle?"
                ))
            })?,
        };
        Ok((target, transforms))
    }

    /// Reads an Arrow IPC (Feather v2) file: one written by
    /// [`Table::write_arrow`], or by pandas, polars or pyarrow with their
    /// defaults (LZ4 or ZSTD compressed, any numeric, text, boolean,
    /// dictionary, date or timestamp column; see [`convert`] for how each
    /// becomes a column).
    pub fn read_arrow(path: &Path) -> Result<Table, TableError> {
        Table::read_ipc(path, false)
    }

    /// Reads an Arrow IPC file, or with `stream` an IPC stream (what
    /// polars' `write_ipc_stream` and `pyarrow.ipc.new_stream` write).
    fn read_ipc(path: &Path, stream: bool) -> Result<Table, TableError> {
        use arrow_array::RecordBatchReader;
        let shown = path.display().to_string();
        let fmt = |message: String| TableError::Format {
            path: shown.clone(),
            message,
        };
        let file = File::open(path).map_err(|source| TableError::Io {
            path: shown.clone(),
            source,
        })?;
        let reader: Box<dyn RecordBatchReader> = if stream {
            Box::new(
                arrow_ipc::reader::StreamReader::try_new(std::io::BufReader::new(file), None)
                    .map_err(|e| fmt(format!("not an Arrow IPC stream: {e}")))?,
            )
        } else {
            Box::new(
                arrow_ipc::reader::FileReader::try_new(file, None)
                    .map_err(|e| fmt(format!("not an Arrow IPC file: {e}")))?,
            )
        };
        let schema = reader.schema();
        let (target, transforms) = Self::metadata(&schema, &fmt)?;
        let columns = convert::read_batches(&schema, reader, &|_| None).map_err(fmt)?;
        Ok(Table {
            columns,
            target,
            transforms,
        })
    }

    /// A text rendering of the schema and the first `rows` rows.
    pub fn preview(&self, rows: usize) -> String {
        let mut s = format!("{} rows × {} columns", self.n_rows(), self.columns.len());
        if let Some(t) = &self.target {
            s.push_str(&format!(", target `{t}`"));
        }
        s.push('\n');
        for c in &self.columns {
            s.push_str(&format!("  {:<20} {}\n", c.name, c.data.type_name()));
        }
        let n = rows.min(self.n_rows());
        if n == 0 {
            return s;
        }
        let cells: Vec<Vec<String>> = (0..n)
            .map(|r| self.columns.iter().map(|c| c.data.display(r)).collect())
            .collect();
        let widths: Vec<usize> = self
            .columns
            .iter()
            .enumerate()
            .map(|(i, c)| {
                cells
                    .iter()
                    .map(|r| r[i].len())
                    .max()
                    .unwrap_or(0)
                    .max(c.name.len())
            })
            .collect();
        s.push('\n');
        let line = |vals: Vec<&str>| {
            vals.iter()
                .zip(&widths)
                .map(|(v, w)| format!("{v:>w$}"))
                .collect::<Vec<_>>()
                .join("  ")
        };
        s.push_str(&line(self.names()));
        s.push('\n');
        for r in &cells {
            s.push_str(&line(r.iter().map(String::as_str).collect()));
            s.push('\n');
        }
        s
    }
}

/// Whether a CSV cell stands for a missing value: empty, `NA`, `NaN` or
/// `null` (any case).
pub fn is_missing(v: &str) -> bool {
    v.is_empty()
        || v.eq_ignore_ascii_case("na")
        || v.eq_ignore_ascii_case("nan")
        || v.eq_ignore_ascii_case("null")
}

pub fn format_number(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        format!("{x:.0}")
    } else {
        format!("{x}")
    }
}

/// A number for people: 6 significant digits, no trailing zeros.
pub fn short(x: f64) -> String {
    if !x.is_finite() || x == 0.0 {
        return format!("{x}");
    }
    let mag = x.abs().log10().floor() as i32;
    if !(-4..15).contains(&mag) {
        return format!("{x:.5e}");
    }
    let decimals = (5 - mag).max(0) as usize;
    let s = format!("{x:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// A column while a CSV file is parsed.
enum Acc {
    Num(Vec<f64>),
    Text(Vec<Option<String>>),
    /// Held a value that is not a number: to be read again as text.
    NotNumeric,
}

/// Pieces of a CSV body cut at line ends, each with its first line number;
/// one piece when the file is small or has quotes (a quoted field may hold
/// a line break).
fn split_at_lines(body: &[u8], first_line: u64) -> Vec<(&[u8], u64)> {
    const MIN_PIECE: usize = 4 << 20;
    let threads = rayon::current_num_threads().max(1);
    if body.len() < 2 * MIN_PIECE || threads == 1 || body.contains(&b'"') {
        return vec![(body, first_line)];
    }
    let target = (body.len() / (threads * 2)).max(MIN_PIECE);
    let mut out = Vec::new();
    let (mut start, mut line) = (0usize, first_line);
    while start < body.len() {
        let mut end = (start + target).min(body.len());
        if end < body.len() {
            end += body[end..]
                .iter()
                .position(|&b| b == b'\n')
                .map_or(body.len() - end, |i| i + 1);
        }
        let piece = &body[start..end];
        out.push((piece, line));
        line += piece.iter().filter(|&&b| b == b'\n').count() as u64;
        start = end;
    }
    out
}

/// Parses CSV records (no header) into one accumulator per column.
fn parse_chunk(
    chunk: &[u8],
    first_line: u64,
    delimiter: u8,
    headers: &[String],
    declared: &[Option<&str>],
    shown: &str,
) -> Result<Vec<Acc>, TableError> {
    let mut acc: Vec<Acc> = declared
        .iter()
        .map(|d| match d {
            Some("categorical") => Acc::Text(Vec::new()),
            _ => Acc::Num(Vec::new()),
        })
        .collect();
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(false)
        .delimiter(delimiter)
        .from_reader(chunk);
    let mut rec = csv::ByteRecord::new();
    let row_error = |line: u64, message: String| TableError::Row {
        path: shown.to_string(),
        line,
        message,
    };
    loop {
        match rdr.read_byte_record(&mut rec) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => {
                return Err(match e.position() {
                    Some(p) => row_error(
                        first_line + line_in(chunk, p) - 1,
                        csv_message(&e, headers.len()),
                    ),
                    None => csv_error(shown, e),
                })
            }
        }
        let line = first_line + rec.position().map_or(1, |p| line_in(chunk, p)) - 1;
        if rec.len() != headers.len() {
            return Err(row_error(
                line,
                format!("{} fields, the header has {}", rec.len(), headers.len()),
            ));
        }
        for (i, field) in rec.iter().enumerate() {
            let v = field.trim_ascii();
            match &mut acc[i] {
                Acc::NotNumeric => {}
                Acc::Text(out) => {
                    let s = String::from_utf8(v.to_vec()).map_err(|_| {
                        row_error(
                            line,
                            format!("column `{}`: the value is not valid UTF-8", headers[i]),
                        )
                    })?;
                    out.push((!is_missing(&s)).then_some(s));
                }
                Acc::Num(out) => {
                    let text = std::str::from_utf8(v).unwrap_or("\u{fffd}");
                    if is_missing(text) {
                        out.push(f64::NAN);
                        continue;
                    }
                    match text.parse::<f64>() {
                        Ok(x) if x.is_finite() => out.push(x),
                        Ok(_) => {
                            return Err(row_error(
                                line,
                                format!("column `{}`: `{text}` is not a finite number", headers[i]),
                            ))
                        }
                        Err(_) if declared[i] == Some("numeric") => {
                            return Err(row_error(
                                line,
                                format!(
                                    "column `{}` is numeric, but `{text}` is not a number; fix the value or declare the column `categorical` under `types:`",
                                    headers[i]
                                ),
                            ))
                        }
                        Err(_) => acc[i] = Acc::NotNumeric,
                    }
                }
            }
        }
    }
    Ok(acc)
}

/// The line of `chunk` a record starts on (from 1). The csv reader puts a
/// record's start after the previous record's terminator, which with CRLF
/// line ends is before its `\n`: one line too early, so the `\n` is
/// stepped over here.
fn line_in(chunk: &[u8], p: &csv::Position) -> u64 {
    p.line() + u64::from(chunk.get(p.byte() as usize) == Some(&b'\n'))
}

/// A csv error's text without the crate's own record and line numbers
/// ("CSV error: record 2 (line: 3, byte: 8): …"), which contradicted the
/// line the error is reported at; `header` is the header's field count.
pub(crate) fn csv_message(e: &csv::Error, header: usize) -> String {
    match e.kind() {
        csv::ErrorKind::UnequalLengths { len, .. } => {
            format!("{len} fields, the header has {header}")
        }
        csv::ErrorKind::Utf8 { err, .. } => {
            format!("not UTF-8 text (field {})", err.field() + 1)
        }
        _ => e.to_string(),
    }
}

fn csv_error(path: &str, e: csv::Error) -> TableError {
    let message = match e.kind() {
        csv::ErrorKind::UnequalLengths { expected_len, .. } => {
            csv_message(&e, *expected_len as usize)
        }
        _ => csv_message(&e, 0),
    };
    match e.position() {
        Some(p) => TableError::Row {
            path: path.to_string(),
            line: p.line(),
            message,
        },
        None => TableError::Format {
            path: path.to_string(),
            message: e.to_string(),
        },
    }
}

/// An empty column for a Parquet field: numeric or text, as `declared` in
/// `types` or else by the field's type; `Err` is the message for a type a
/// table cannot hold.
/// The header row of a CSV file, checked: non-empty, unique names, and
/// every column named in `opts.types` present with a known type.
fn csv_headers<R: std::io::Read>(
    rdr: &mut csv::Reader<R>,
    shown: &str,
    opts: &CsvOptions,
) -> Result<Vec<String>, TableError> {
    let headers: Vec<String> = rdr
        .headers()
        .map_err(|e| csv_error(shown, e))?
        .iter()
        .map(|h| h.trim().to_string())
        .collect();
    if headers.is_empty() || headers.iter().all(|h| h.is_empty()) {
        return Err(TableError::Format {
            path: shown.to_string(),
            message: "the file has no header row".into(),
        });
    }
    let mut seen = std::collections::HashSet::new();
    for h in &headers {
        if h.is_empty() || !seen.insert(h) {
            return Err(TableError::Format {
                path: shown.to_string(),
                message: format!("column names must be non-empty and unique (found `{h}`)"),
            });
        }
    }
    for (name, ty) in &opts.types {
        if !headers.contains(name) {
            let hint = mlcycle_pipeline::suggest::did_you_mean(name, &headers);
            return Err(TableError::Format {
                path: shown.to_string(),
                message: format!(
                    "`types` names column `{name}`, which the file does not have {hint}"
                )
                .trim_end()
                .to_string(),
            });
        }
        if ty != "numeric" && ty != "categorical" {
            return Err(TableError::Format {
                path: shown.to_string(),
                message: format!(
                    "column type `{ty}` for `{name}` must be `numeric` or `categorical`"
                ),
            });
        }
    }
    Ok(headers)
}

/// The parsed pieces of a CSV body joined column by column; a column that
/// is text in one piece is `NotNumeric`.
fn merge_pieces(
    parsed: Vec<Result<Vec<Acc>, TableError>>,
    declared: &[Option<&str>],
) -> Result<Vec<Acc>, TableError> {
    let mut acc: Vec<Acc> = Vec::new();
    for part in parsed {
        let part = part?;
        if acc.is_empty() {
            acc = part;
            continue;
        }
        for (a, b) in acc.iter_mut().zip(part) {
            match (a, b) {
                (Acc::Num(x), Acc::Num(y)) => x.extend(y),
                (Acc::Text(x), Acc::Text(y)) => x.extend(y),
                (a, _) => *a = Acc::NotNumeric,
            }
        }
    }
    if acc.is_empty() {
        acc = declared
            .iter()
            .map(|d| match d {
                Some("categorical") => Acc::Text(Vec::new()),
                _ => Acc::Num(Vec::new()),
            })
            .collect();
    }
    Ok(acc)
}

/// Reads the `NotNumeric` columns of a CSV body again, as text.
fn reread_as_text(
    body: &[u8],
    delimiter: u8,
    first_line: u64,
    headers: &[String],
    acc: &mut [Acc],
    shown: &str,
) -> Result<(), TableError> {
    let utf8 = |b: &[u8], line: u64, name: &str| -> Result<String, TableError> {
        String::from_utf8(b.to_vec()).map_err(|_| TableError::Row {
            path: shown.to_string(),
            line,
            message: format!("column `{name}`: the value is not valid UTF-8"),
        })
    };
    let mut rec = csv::ByteRecord::new();
    let mut again = csv::ReaderBuilder::new()
        .has_headers(false)
        .delimiter(delimiter)
        .from_reader(body);
    let redo: Vec<usize> = (0..acc.len())
        .filter(|&i| matches!(acc[i], Acc::NotNumeric))
        .collect();
    let mut text: Vec<Vec<Option<String>>> = vec![Vec::new(); redo.len()];
    while again
        .read_byte_record(&mut rec)
        .map_err(|e| csv_error(shown, e))?
    {
        let line = first_line + rec.position().map_or(1, |p| line_in(body, p)) - 1;
        for (k, &i) in redo.iter().enumerate() {
            let s = utf8(rec[i].trim_ascii(), line, &headers[i])?;
            text[k].push((!is_missing(&s)).then_some(s));
        }
    }
    for (k, i) in redo.into_iter().enumerate() {
        acc[i] = Acc::Text(std::mem::take(&mut text[k]));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(feature = "parquet")]
    #[test]
    fn parquet_columns_are_typed_and_overridable() {
        use arrow_array::{BooleanArray, Int32Array};
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.parquet");
        let schema = Arc::new(Schema::new(vec![
            Field::new("n", DataType::Int32, true),
            Field::new("s", DataType::Utf8, true),
            Field::new("b", DataType::Boolean, false),
        ]));
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(Int32Array::from(vec![Some(1), None, Some(3)])),
                Arc::new(StringArray::from(vec![Some("a"), Some("b"), None])),
                Arc::new(BooleanArray::from(vec![true, false, true])),
            ],
        )
        .unwrap();
        let mut w = ::parquet::arrow::ArrowWriter::try_new(File::create(&p).unwrap(), schema, None)
            .unwrap();
        w.write(&batch).unwrap();
        w.close().unwrap();
        let t = Table::read_parquet(&p, &HashMap::new()).unwrap();
        assert_eq!(t.columns[0].data.type_name(), "numeric");
        assert!(
            matches!(&t.columns[0].data, ColumnData::Numeric(v) if v[1].is_nan() && v[2] == 3.0)
        );
        assert_eq!(
            t.columns[1].data,
            ColumnData::Categorical(vec![Some("a".into()), Some("b".into()), None])
        );
        assert_eq!(t.columns[2].data.display(0), "true");
        let types = HashMap::from([("n".to_string(), "categorical".to_string())]);
        let t = Table::read_parquet(&p, &types).unwrap();
        assert_eq!(t.columns[0].data.display(2), "3");
        let types = HashMap::from([("s".to_string(), "numeric".to_string())]);
        let e = Table::read_parquet(&p, &types).unwrap_err().to_string();
        assert!(
            e.contains("column `s`") && e.contains("not readable as numbers"),
            "{e}"
        );
        let types = HashMap::from([("zz".to_string(), "numeric".to_string())]);
        assert!(Table::read_parquet(&p, &types).is_err());
    }

    #[test]
    fn a_column_that_turns_to_text_late_keeps_its_original_text() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.csv");
        std::fs::write(&p, "x,code\n1,1.50\n2,007\n3,\n4,B12\n").unwrap();
        let t = Table::read_csv(&p, &CsvOptions::default()).unwrap();
        assert_eq!(t.columns[0].data.type_name(), "numeric");
        assert_eq!(
            t.columns[1].data,
            ColumnData::Categorical(vec![
                Some("1.50".into()),
                Some("007".into()),
                None,
                Some("B12".into())
            ])
        );
    }

    #[test]
    fn a_large_file_is_parsed_in_pieces_with_the_right_lines() {
        // Over 8 MiB without quotes: parsed in pieces in parallel.
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("big.csv");
        let rows = 600_000;
        let mut text = String::from("a,b,c\n");
        for i in 0..rows {
            let c = if i == rows - 5 {
                "x".to_string()
            } else {
                i.to_string()
            };
            text.push_str(&format!("{i},{}.25,{c}\n", i % 97));
        }
        assert!(text.len() > 8 << 20);
        std::fs::write(&p, &text).unwrap();
        let t = Table::read_csv(&p, &CsvOptions::default()).unwrap();
        assert_eq!(t.n_rows(), rows);
        let ColumnData::Numeric(a) = &t.columns[0].data else {
            panic!("a is numeric")
        };
        assert!(a.iter().enumerate().all(|(i, v)| *v == i as f64));
        assert_eq!(t.columns[2].data.type_name(), "categorical");
        assert_eq!(t.columns[2].data.display(rows - 5), "x");
        assert_eq!(t.columns[2].data.display(rows - 1), (rows - 1).to_string());
        // A bad value deep in the file is reported at its own line.
        let opts = CsvOptions {
            types: HashMap::from([("c".to_string(), "numeric".to_string())]),
            ..Default::default()
        };
        let e = Table::read_csv(&p, &opts).unwrap_err().to_string();
        assert!(e.contains(&format!("line {}", rows - 5 + 2)), "{e}");
    }

    #[test]
    fn short_numbers_keep_six_digits() {
        assert_eq!(short(486544403.6654981), "486544404");
        assert_eq!(short(0.9836496439159657), "0.98365");
        assert_eq!(short(22057.751555), "22057.8");
        assert_eq!(short(2.0), "2");
        assert_eq!(short(1.5e-7), "1.50000e-7");
    }

    #[test]
    fn csv_types_are_inferred_and_missing_values_kept() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.csv");
        std::fs::write(&p, "area,city,price\n120,Oslo,300\n,Bergen,\n80.5,,150\n").unwrap();
        let t = Table::read_csv(&p, &CsvOptions::default()).unwrap();
        assert_eq!(t.n_rows(), 3);
        match &t.column("area").unwrap().data {
            ColumnData::Numeric(v) => {
                assert_eq!(v[0], 120.0);
                assert!(v[1].is_nan());
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            t.column("city").unwrap().data,
            ColumnData::Categorical(vec![Some("Oslo".into()), Some("Bergen".into()), None])
        );
    }

    #[test]
    fn a_bad_number_names_the_line_and_column() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.csv");
        std::fs::write(&p, "area,price\n120,300\n90,abc\n").unwrap();
        let mut opts = CsvOptions::default();
        opts.types.insert("price".into(), "numeric".into());
        let e = Table::read_csv(&p, &opts).unwrap_err().to_string();
        assert!(e.contains("line 3"), "{e}");
        assert!(e.contains("column `price`"), "{e}");
    }

    /// What pandas, polars and pyarrow write with their defaults: LZ4- or
    /// ZSTD-compressed IPC, integers, booleans, dictionaries, dates and
    /// timestamps, no target; and the IPC stream format.
    #[test]
    fn compressed_ipc_files_and_streams_of_every_common_type_read() {
        use arrow_array::types::Int32Type;
        use arrow_array::{
            BooleanArray, Date32Array, DictionaryArray, Int64Array, TimestampNanosecondArray,
            UInt8Array,
        };
        use arrow_ipc::writer::{FileWriter, IpcWriteOptions, StreamWriter};
        use arrow_ipc::CompressionType;
        let dir = tempfile::tempdir().unwrap();
        let cols: Vec<(&str, ArrayRef)> = vec![
            (
                "n",
                Arc::new(Int64Array::from(vec![Some(1), None, Some(3)])),
            ),
            ("u", Arc::new(UInt8Array::from(vec![7, 8, 9]))),
            ("b", Arc::new(BooleanArray::from(vec![true, false, true]))),
            (
                "c",
                Arc::new(
                    vec![Some("x"), Some("y"), None]
                        .into_iter()
                        .collect::<DictionaryArray<Int32Type>>(),
                ),
            ),
            // 2024-01-01 is day 19723 of the Unix epoch.
            ("d", Arc::new(Date32Array::from(vec![19723, 19724, 19725]))),
            (
                "t",
                Arc::new(
                    TimestampNanosecondArray::from(vec![1_704_067_200_500_000_000, 0, 1])
                        .with_timezone("Europe/Paris"),
                ),
            ),
        ];
        let schema = Arc::new(Schema::new(
            cols.iter()
                .map(|(n, a)| Field::new(*n, a.data_type().clone(), true))
                .collect::<Vec<_>>(),
        ));
        let batch =
            RecordBatch::try_new(schema.clone(), cols.into_iter().map(|(_, a)| a).collect())
                .unwrap();
        for (name, compression) in [
            ("lz4.arrow", Some(CompressionType::LZ4_FRAME)),
            ("zstd.feather", Some(CompressionType::ZSTD)),
            ("plain.ipc", None),
        ] {
            let p = dir.path().join(name);
            let opts = IpcWriteOptions::default()
                .try_with_compression(compression)
                .unwrap();
            let mut w =
                FileWriter::try_new_with_options(File::create(&p).unwrap(), &schema, opts).unwrap();
            w.write(&batch).unwrap();
            w.finish().unwrap();
            let t = Table::read(&p).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(t.target, None);
            assert_eq!(t.n_rows(), 3);
            let num = |c: &str| match &t.column(c).unwrap().data {
                ColumnData::Numeric(v) => v.clone(),
                other => panic!("{c} is {}", other.type_name()),
            };
            let n = num("n");
            assert_eq!((n[0], n[2]), (1.0, 3.0));
            assert!(n[1].is_nan(), "a null is missing");
            assert_eq!(num("u"), vec![7.0, 8.0, 9.0]);
            assert_eq!(num("d"), vec![19723.0, 19724.0, 19725.0], "days since 1970");
            assert_eq!(
                num("t"),
                vec![1_704_067_200.5, 0.0, 1e-9],
                "seconds since 1970, UTC"
            );
            assert_eq!(
                t.column("b").unwrap().data,
                ColumnData::Categorical(vec![
                    Some("true".into()),
                    Some("false".into()),
                    Some("true".into())
                ])
            );
            assert_eq!(
                t.column("c").unwrap().data,
                ColumnData::Categorical(vec![Some("x".into()), Some("y".into()), None])
            );
        }
        let p = dir.path().join("stream.arrows");
        let mut w = StreamWriter::try_new(File::create(&p).unwrap(), &schema).unwrap();
        w.write(&batch).unwrap();
        w.finish().unwrap();
        assert_eq!(Table::read(&p).unwrap().n_rows(), 3);
        // A CSV by its name; anything else is refused, naming the formats.
        let csv = dir.path().join("t.csv");
        std::fs::write(&csv, "area,price\n1,2\n").unwrap();
        let mut t = Table::read(&csv).unwrap();
        t.set_target(Some("price")).unwrap();
        assert_eq!(t.target.as_deref(), Some("price"));
        let e = t.set_target(Some("prise")).unwrap_err();
        assert!(e.contains("did you mean `price`?"), "{e}");
        // A column a fitted step changed cannot become the target.
        t.transforms.push(crate::steps::Transform::Scale {
            method: "standard".into(),
            columns: vec!["area".into()],
            offsets: vec![0.0],
            scales: vec![1.0],
        });
        let e = t.set_target(Some("area")).unwrap_err();
        assert!(e.contains("fitted `scale` step"), "{e}");
        // Two columns of one name would read as one: refused.
        let dup = dir.path().join("dup.arrow");
        let schema = Arc::new(Schema::new(vec![
            Field::new("x", DataType::Float64, false),
            Field::new("x", DataType::Float64, false),
        ]));
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(Float64Array::from(vec![1.0])) as ArrayRef,
                Arc::new(Float64Array::from(vec![2.0])) as ArrayRef,
            ],
        )
        .unwrap();
        let mut w = FileWriter::try_new(File::create(&dup).unwrap(), &schema).unwrap();
        w.write(&batch).unwrap();
        w.finish().unwrap();
        let e = Table::read(&dup).unwrap_err().to_string();
        assert!(e.contains("two columns are named `x`"), "{e}");
        let junk = dir.path().join("t.bin");
        std::fs::write(&junk, "hello").unwrap();
        let e = Table::read(&junk).unwrap_err().to_string();
        assert!(e.contains("neither Arrow IPC"), "{e}");
    }

    #[test]
    fn arrow_roundtrip_keeps_types_missing_values_and_target() {
        let dir = tempfile::tempdir().unwrap();
        let t = Table {
            columns: vec![
                Column {
                    name: "x".into(),
                    data: ColumnData::Numeric(vec![1.5, f64::NAN, 3.0]),
                },
                Column {
                    name: "c".into(),
                    data: ColumnData::Categorical(vec![Some("a".into()), None, Some("b".into())]),
                },
            ],
            target: Some("x".into()),
            transforms: vec![crate::steps::Transform::Drop {
                columns: vec!["gone".into()],
            }],
        };
        let p = dir.path().join("t.arrow");
        t.write_arrow(&p).unwrap();
        let back = Table::read_arrow(&p).unwrap();
        assert_eq!(back.target.as_deref(), Some("x"));
        assert_eq!(back.columns[1], t.columns[1]);
        match &back.columns[0].data {
            ColumnData::Numeric(v) => assert!(v[0] == 1.5 && v[1].is_nan() && v[2] == 3.0),
            other => panic!("{other:?}"),
        }
        // Writing is deterministic: same table, same bytes.
        let p2 = dir.path().join("t2.arrow");
        t.write_arrow(&p2).unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), std::fs::read(&p2).unwrap());
    }
}
