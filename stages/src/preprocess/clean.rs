//! `preprocess.clean`: duplicates, missing values, outliers.

use mlcycle_pipeline::{
    InferContext, Inferred, ParamDoc, ParamError, PortSpec, RunContext, StageError, StageKind,
    StageSpec,
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::table::{Column, ColumnData, Table};
use crate::transform::{Fill, Transform};

/// `preprocess.clean`: duplicates, missing values, outliers.
#[derive(Debug)]
pub struct Clean;

/// `preprocess.clean`'s params (`with:`).
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CleanParams {
    #[serde(default = "yes")]
    duplicates: bool,
    #[serde(default)]
    missing: Missing,
    #[serde(default)]
    fill: Option<Value>,
    #[serde(default)]
    outliers: Outliers,
    #[serde(default)]
    threshold: Option<f64>,
    #[serde(default)]
    columns: Option<Vec<String>>,
    /// The target column of a table that names none (one a script wrote);
    /// when the table names one, this one replaces it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) target: Option<String>,
}
fn yes() -> bool {
    true
}

/// What `preprocess.clean` does with missing values.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Missing {
    /// Drop the row.
    #[default]
    Drop,
    /// Fill with the column's mean (numeric columns).
    Mean,
    /// Fill with the column's median (numeric columns).
    Median,
    /// Fill with the most frequent value.
    Mode,
    /// Fill with `fill`.
    Constant,
    /// Leave the gap.
    Keep,
}

impl Missing {
    /// The name written in `with:`.
    pub fn as_str(self) -> &'static str {
        match self {
            Missing::Drop => "drop",
            Missing::Mean => "mean",
            Missing::Median => "median",
            Missing::Mode => "mode",
            Missing::Constant => "constant",
            Missing::Keep => "keep",
        }
    }
}

/// Which rows `preprocess.clean` drops as outliers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outliers {
    /// None.
    #[default]
    None,
    /// Beyond `threshold` standard deviations from the mean.
    Zscore,
    /// Beyond `threshold` interquartile ranges outside the quartiles.
    Iqr,
}

pub(super) const CLEAN_IN: &[PortSpec] = &[PortSpec::input(
    "data",
    crate::ports::TABLE,
    true,
    "the table to clean",
)];
const CLEAN_OUT: &[PortSpec] = &[
    PortSpec::output(
        "data",
        "data.arrow",
        crate::ports::TABLE,
        "the cleaned table",
    ),
    PortSpec::output(
        "report",
        "report.json",
        crate::ports::METRICS,
        "rows in and out, and what was removed or filled, per reason and column",
    ),
];

impl StageKind for Clean {
    type Params = CleanParams;
    const SPEC: StageSpec = StageSpec {
        kind: "preprocess.clean",
        summary: "Drop duplicate rows, drop or impute missing values, drop outliers (z-score or IQR); reports what it removed",
        version: 3,
        inputs: CLEAN_IN,
        outputs: CLEAN_OUT,
        params: &[
            crate::TARGET_PARAM_DOC,
            ParamDoc::new("duplicates", "bool", "drop rows identical to an earlier row"),
            ParamDoc::new("missing", "`drop` | `mean` | `median` | `mode` | `constant` | `keep`", "rows with a missing feature are dropped, or the gap is filled (mean/median: numeric columns; mode: any; constant: `fill`). Rows with a missing target are always dropped unless `keep`"),
            ParamDoc::new("fill", "number or string", "the value for `missing: constant`"),
            ParamDoc::new("outliers", "`none` | `zscore` | `iqr`", "drop rows whose value is more than `threshold` standard deviations from the mean (zscore), or more than `threshold` IQRs outside the quartiles (iqr)"),
            ParamDoc::new("threshold", "number", "outlier cut-off").unset("3 (zscore), 1.5 (iqr)"),
            ParamDoc::new("columns", "list of strings", "columns checked for outliers").unset("every numeric column"),
        ],
    };
    fn check(p: &mut CleanParams) -> Result<(), ParamError> {
        if p.missing == Missing::Constant
            && !matches!(p.fill, Some(Value::Number(_) | Value::String(_)))
        {
            return Err(ParamError::new(
                &["missing"],
                "`missing: constant` needs `fill:` (a number or a string)",
            ));
        }
        if let Some(t) = p.threshold {
            if !(t > 0.0 && t.is_finite()) {
                return Err(ParamError::new(
                    &["threshold"],
                    "`threshold` must be positive",
                ));
            }
        }
        // The default cut-off depends on the method: filled in here, so a
        // threshold written at its default is the same stage as none.
        p.threshold = match p.outliers {
            Outliers::None => p.threshold,
            Outliers::Zscore => Some(p.threshold.unwrap_or(3.0)),
            Outliers::Iqr => Some(p.threshold.unwrap_or(1.5)),
        };
        Ok(())
    }
    fn infer(p: &CleanParams, cx: &InferContext<'_>) -> Inferred {
        let cx = &crate::shape::retargeted(cx, "data", p.target.as_deref());
        let mut out = crate::shape::through(cx, "data", &["data"]);
        // `columns` is read only to drop outliers, the target among them.
        if let (Some(t), Some(named), false) = (
            crate::shape::table(cx, "data"),
            &p.columns,
            matches!(p.outliers, Outliers::None),
        ) {
            out.problems = t.check_named(named, Some(true), "columns", true);
        }
        out
    }
    fn run(p: &CleanParams, ctx: &RunContext<'_>) -> Result<(), StageError> {
        let mut t = crate::util::read_table(ctx, "data")?;
        crate::util::declared_target(&mut t, p.target.as_deref())?;
        let rows_in = t.n_rows();
        let mut report = serde_json::Map::new();
        report.insert("rows_in".into(), rows_in.into());
        if p.duplicates {
            t = drop_duplicates(t, &mut report);
        }
        if p.missing != Missing::Keep {
            t = p.drop_missing(t, &mut report);
        }
        if matches!(
            p.missing,
            Missing::Mean | Missing::Median | Missing::Mode | Missing::Constant
        ) {
            p.impute(&mut t, &mut report)?;
        }
        if p.outliers != Outliers::None {
            t = p.drop_outliers(t, &mut report)?;
        }
        report.insert("rows_out".into(), t.n_rows().into());
        (ctx.log)(&format!(
            "{rows_in} rows in, {} out{}",
            t.n_rows(),
            describe_removals(&report)
        ));
        if t.n_rows() == 0 {
            return Err(StageError::new(format!(
                "no rows are left after cleaning (of {rows_in}): {}",
                serde_json::to_string(&report).unwrap_or_default()
            ))
            .with_help("impute instead of dropping (`missing: mean`), or loosen `threshold`"));
        }
        crate::util::write_table(ctx, "data", &t)?;
        let mut s = serde_json::to_string_pretty(&report).expect("report serializes");
        s.push('\n');
        std::fs::write(ctx.output("report")?, s).map_err(StageError::from_error)
    }
}

/// `: 1 duplicate, 1 with a missing value, 2 outliers (price), 3 values imputed`.
fn describe_removals(r: &serde_json::Map<String, Value>) -> String {
    let n = |k: &str| r.get(k).and_then(Value::as_u64).unwrap_or(0);
    let per = |k: &str| -> Vec<(String, u64)> {
        r.get(k)
            .and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .map(|(c, v)| (c.clone(), v.as_u64().unwrap_or(0)))
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut parts = Vec::new();
    if n("duplicates") > 0 {
        parts.push(format!("{} duplicate(s)", n("duplicates")));
    }
    if n("missing_rows_dropped") > 0 {
        parts.push(format!(
            "{} with a missing value",
            n("missing_rows_dropped")
        ));
    }
    let out = per("outliers");
    if !out.is_empty() {
        let total: u64 = out.iter().map(|p| p.1).sum();
        let cols: Vec<&str> = out.iter().map(|p| p.0.as_str()).collect();
        parts.push(format!("{total} outlier row(s) ({})", cols.join(", ")));
    }
    let imp = per("imputed");
    if !imp.is_empty() {
        let total: u64 = imp.iter().map(|p| p.1).sum();
        let cols: Vec<&str> = imp.iter().map(|p| p.0.as_str()).collect();
        parts.push(format!("{total} value(s) imputed ({})", cols.join(", ")));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!(": {}", parts.join(", "))
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n == 0 {
        return f64::NAN;
    }
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn quantile(sorted: &[f64], q: f64) -> f64 {
    let pos = q * (sorted.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

/// Whether row `r` of a column is missing.
fn missing_at(c: &ColumnData, r: usize) -> bool {
    match c {
        ColumnData::Numeric(v) => !v[r].is_finite(),
        ColumnData::Categorical(v) => v[r].is_none(),
    }
}

/// The table without repeated rows (the first of each is kept).
fn drop_duplicates(t: Table, report: &mut Map<String, Value>) -> Table {
    let mut seen = std::collections::HashSet::new();
    let keep: Vec<usize> = (0..t.n_rows())
        .filter(|&r| {
            let key: Vec<String> = t
                .columns
                .iter()
                .map(|c| match &c.data {
                    ColumnData::Numeric(v) => format!("{:?}", v[r].to_bits()),
                    ColumnData::Categorical(v) => format!("{:?}", v[r]),
                })
                .collect();
            seen.insert(key)
        })
        .collect();
    report.insert("duplicates".into(), (t.n_rows() - keep.len()).into());
    t.take(&keep)
}

impl CleanParams {
    /// Drops rows with a missing value: in any column (`missing: drop`), or
    /// else in the target.
    fn drop_missing(&self, t: Table, report: &mut Map<String, Value>) -> Table {
        let p = self;
        let target = t.target.clone();
        let keep: Vec<usize> = (0..t.n_rows())
            .filter(|&r| {
                !t.columns.iter().any(|c| {
                    (p.missing == Missing::Drop || target.as_deref() == Some(c.name.as_str()))
                        && missing_at(&c.data, r)
                })
            })
            .collect();
        report.insert(
            "missing_rows_dropped".into(),
            (t.n_rows() - keep.len()).into(),
        );
        t.take(&keep)
    }

    /// Fills the gaps of every feature column, recorded as an `Impute` step.
    fn impute(&self, t: &mut Table, report: &mut Map<String, Value>) -> Result<(), StageError> {
        let mut columns = Vec::new();
        let mut values = Vec::new();
        let mut filled = serde_json::Map::new();
        for c in &t.columns {
            if t.target.as_deref() == Some(c.name.as_str()) {
                continue;
            }
            let gaps = (0..c.data.len())
                .filter(|&r| missing_at(&c.data, r))
                .count();
            // Every feature gets a fill value, gaps here or not (as
            // scikit-learn's SimpleImputer): the model fills the gaps of
            // rows it scores later, in any column. A column the strategy
            // cannot fill (a mean of text) is an error only with gaps.
            let fill = match self.fill_for(c, gaps) {
                Ok(fill) => fill,
                Err(_) if gaps == 0 => continue,
                Err(e) => return Err(e),
            };
            if gaps > 0 {
                filled.insert(c.name.clone(), gaps.into());
            }
            columns.push(c.name.clone());
            values.push(fill);
        }
        report.insert("imputed".into(), Value::Object(filled));
        if !columns.is_empty() {
            let strategy = Some(self.missing.as_str().to_string());
            let step = Transform::Impute {
                columns,
                values,
                strategy,
            };
            crate::transform::apply_all(&[step], t).map_err(StageError::from_error)?;
        }
        Ok(())
    }

    /// The value that fills the `gaps` missing values of column `c`.
    fn fill_for(&self, c: &Column, gaps: usize) -> Result<Fill, StageError> {
        let p = self;
        let how = p.missing.as_str();
        Ok(match (&c.data, p.missing) {
            (_, Missing::Constant) => match (&c.data, p.fill.as_ref()) {
                (ColumnData::Numeric(_), Some(Value::Number(n))) => {
                    Fill::Number(n.as_f64().unwrap_or(0.0))
                }
                (ColumnData::Categorical(_), Some(Value::String(s))) => Fill::Category(s.clone()),
                (ColumnData::Categorical(_), Some(Value::Number(n))) => {
                    Fill::Category(n.to_string())
                }
                _ => {
                    return Err(StageError::new(format!(
                        "column `{}` is numeric, but `fill` is not a number",
                        c.name
                    ))
                    .with_help("use a numeric `fill`, or `missing: mode`"))
                }
            },
            (ColumnData::Numeric(v), missing) => {
                let known: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
                if known.is_empty() {
                    return Err(StageError::new(format!(
                        "column `{}` has no values at all to compute a {how} from",
                        c.name
                    ))
                    .with_help("drop the column with `features.select`"));
                }
                Fill::Number(match missing {
                    Missing::Mean => known.iter().sum::<f64>() / known.len() as f64,
                    Missing::Median => median(known),
                    _ => {
                        // mode: the most frequent value, smallest on ties
                        let mut s = known.clone();
                        s.sort_by(f64::total_cmp);
                        let mut best = (s[0], 0);
                        let mut i = 0;
                        while i < s.len() {
                            let j = s[i..].iter().take_while(|x| **x == s[i]).count();
                            if j > best.1 {
                                best = (s[i], j);
                            }
                            i += j;
                        }
                        best.0
                    }
                })
            }
            (ColumnData::Categorical(v), Missing::Mode) => {
                let mut counts = std::collections::BTreeMap::new();
                for x in v.iter().flatten() {
                    *counts.entry(x.clone()).or_insert(0usize) += 1;
                }
                let Some(best) = counts.iter().max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0)))
                else {
                    return Err(StageError::new(format!(
                        "column `{}` has no values at all",
                        c.name
                    )));
                };
                Fill::Category(best.0.clone())
            }
            (ColumnData::Categorical(_), _) => {
                return Err(StageError::new(format!(
                "column `{}` is categorical and has {gaps} missing value(s); a {how} needs numbers",
                c.name
            ))
                .with_help("use `missing: mode`, `constant` or `drop`"))
            }
        })
    }

    /// Drops rows with an outlier in one of the checked numeric columns.
    fn drop_outliers(
        &self,
        t: Table,
        report: &mut Map<String, Value>,
    ) -> Result<Table, StageError> {
        let p = self;
        let cols = match &p.columns {
            Some(c) => {
                for n in c {
                    if t.column(n).is_none() {
                        crate::util::check_columns(
                            &t,
                            std::slice::from_ref(n),
                            Some(true),
                            "columns",
                        )?;
                    }
                }
                c.clone()
            }
            None => t
                .columns
                .iter()
                .filter(|c| matches!(c.data, ColumnData::Numeric(_)))
                .map(|c| c.name.clone())
                .collect(),
        };
        let mut drop_row = vec![false; t.n_rows()];
        let mut per_col = serde_json::Map::new();
        for name in &cols {
            let Some(ColumnData::Numeric(v)) = t.column(name).map(|c| &c.data) else {
                return Err(StageError::new(format!(
                    "column `{name}` is categorical; outliers are found in numeric columns"
                )));
            };
            let known: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
            if known.len() < 3 {
                continue;
            }
            let (lo, hi) = if p.outliers == Outliers::Zscore {
                let k = p.threshold.unwrap_or(3.0);
                let n = known.len() as f64;
                let mean = known.iter().sum::<f64>() / n;
                let sd = (known.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / n).sqrt();
                (mean - k * sd, mean + k * sd)
            } else {
                let k = p.threshold.unwrap_or(1.5);
                let mut s = known.clone();
                s.sort_by(f64::total_cmp);
                let (q1, q3) = (quantile(&s, 0.25), quantile(&s, 0.75));
                (q1 - k * (q3 - q1), q3 + k * (q3 - q1))
            };
            let mut n = 0usize;
            for (r, x) in v.iter().enumerate() {
                if x.is_finite() && (*x < lo || *x > hi) {
                    n += usize::from(!drop_row[r]);
                    drop_row[r] = true;
                }
            }
            if n > 0 {
                per_col.insert(name.clone(), n.into());
            }
        }
        let keep: Vec<usize> = (0..t.n_rows()).filter(|&r| !drop_row[r]).collect();
        report.insert("outliers".into(), Value::Object(per_col));
        Ok(t.take(&keep))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mlcycle_pipeline::StageFactory;

    /// A threshold written at its default is the same stage (the same
    /// fingerprint) as none.
    #[test]
    fn the_default_threshold_is_filled_in() {
        for (method, default) in [("zscore", 3.0), ("iqr", 1.5)] {
            let bare = Clean
                .build(&serde_json::json!({"outliers": method}))
                .unwrap();
            let explicit = Clean
                .build(&serde_json::json!({"outliers": method, "threshold": default}))
                .unwrap();
            assert_eq!(bare.params(), explicit.params(), "{method}");
        }
    }
}
