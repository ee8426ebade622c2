//! Plots: the series in the outputs marked `plots: true` — a CSV file with
//! a header, or a JSON list of objects (`[{"step": 1, "loss": 0.5}, …]`) —
//! read from the workspace's files or from a lock file's records in the
//! cache, for `mlcycle plots diff`.

use super::metrics::{read_output, Origin};
use crate::config::{Output, Pipeline, StageDef};
use crate::workspace::{LockFile, Workspace};

/// One plots output: its numeric columns, in file order (a missing or
/// non-numeric cell is NaN).
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub stage: String,
    pub path: String,
    pub columns: Vec<(String, Vec<f64>)>,
}

/// The series, and what could not be read (one line per output).
pub type Read = (Vec<Series>, Vec<String>);

/// The series the workspace's files hold now.
pub fn in_files(ws: &Workspace, p: &Pipeline) -> Read {
    collect(p, |s, o| read_output(ws, Origin::Files, s, o))
}

/// The series `lock` records, read from the cache by hash.
pub fn in_lock(ws: &Workspace, p: &Pipeline, lock: &LockFile) -> Read {
    collect(p, |s, o| read_output(ws, Origin::Lock(lock), s, o))
}

fn collect(p: &Pipeline, read: impl Fn(&StageDef, &Output) -> Result<String, String>) -> Read {
    let mut out = Vec::new();
    let mut warnings = Vec::new();
    for s in &p.stages {
        for o in s.outputs.iter().filter(|o| o.plots) {
            match read(s, o).and_then(|text| parse(&o.path, &text)) {
                Ok(columns) => out.push(Series {
                    stage: s.id.clone(),
                    path: o.path.clone(),
                    columns,
                }),
                Err(why) => warnings.push(format!(
                    "plots output `{}` of stage `{}` {why}",
                    o.path, s.id
                )),
            }
        }
    }
    (out, warnings)
}

/// The numeric columns of a series file: JSON (a list of objects) when it
/// starts with `[`, else CSV with a header row.
///
/// # Errors
/// Not a list of objects, not CSV, or no numeric column.
pub fn parse(path: &str, text: &str) -> Result<Vec<(String, Vec<f64>)>, String> {
    let mut names: Vec<String> = Vec::new();
    let mut rows: Vec<Vec<(usize, f64)>> = Vec::new();
    let index = |names: &mut Vec<String>, k: &str| match names.iter().position(|n| n == k) {
        Some(i) => i,
        None => {
            names.push(k.to_string());
            names.len() - 1
        }
    };
    if text.trim_start().starts_with('[') {
        let v: serde_json::Value =
            serde_json::from_str(text).map_err(|e| format!("is not JSON ({e})"))?;
        for item in v.as_array().into_iter().flatten() {
            let Some(obj) = item.as_object() else {
                return Err("is a JSON list whose items are not objects".into());
            };
            let mut row = Vec::new();
            for (k, v) in obj {
                let i = index(&mut names, k);
                row.push((i, v.as_f64().unwrap_or(f64::NAN)));
            }
            rows.push(row);
        }
    } else {
        let mut r = csv::ReaderBuilder::new()
            .flexible(true)
            .from_reader(text.as_bytes());
        let header: Vec<String> = r
            .headers()
            .map_err(|e| format!("is not CSV ({e})"))?
            .iter()
            .map(|h| h.trim().to_string())
            .collect();
        for h in &header {
            index(&mut names, h);
        }
        for rec in r.records() {
            let rec = rec.map_err(|e| format!("is not CSV ({e})"))?;
            rows.push(
                rec.iter()
                    .enumerate()
                    .take(header.len())
                    .map(|(i, c)| (i, c.trim().parse().unwrap_or(f64::NAN)))
                    .collect(),
            );
        }
    }
    let mut columns: Vec<(String, Vec<f64>)> = names
        .into_iter()
        .map(|n| (n, vec![f64::NAN; rows.len()]))
        .collect();
    for (r, row) in rows.iter().enumerate() {
        for (i, x) in row {
            columns[*i].1[r] = *x;
        }
    }
    columns.retain(|(_, v)| v.iter().any(|x| x.is_finite()));
    if columns.is_empty() {
        return Err(format!("has no numeric column (`{path}`)"));
    }
    Ok(columns)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_and_json_series_give_their_numeric_columns() {
        let csv = parse("a.csv", "step,loss,tag\n1,0.5,x\n2,0.25,y\n").unwrap();
        assert_eq!(
            csv,
            vec![
                ("step".into(), vec![1.0, 2.0]),
                ("loss".into(), vec![0.5, 0.25])
            ]
        );
        let json = parse(
            "a.json",
            r#"[{"step": 1, "loss": 0.5}, {"step": 2, "acc": 1}]"#,
        )
        .unwrap();
        assert_eq!(json[0], ("step".into(), vec![1.0, 2.0]));
        assert!(json[1].1[1].is_nan(), "a missing cell is NaN");
        assert_eq!(json[2].0, "acc");
        assert!(parse("a.json", r#"[1, 2]"#).is_err());
        assert!(parse("a.csv", "name\nx\n").is_err());
    }
}
