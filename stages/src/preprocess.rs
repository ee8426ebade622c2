//! Preprocessing stages.

use mlcycle_pipeline::{
    ParamDoc, ParamError, PortSpec, RunContext, Stage, StageError, StageFactory,
};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::table::{ColumnData, Table};
use crate::util::parse_with;

/// `preprocess.split`: seeded train / test / validation split.
#[derive(Debug)]
pub struct Split;

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SplitParams {
    #[serde(default = "default_test")]
    test: f64,
    #[serde(default)]
    validation: f64,
    #[serde(default = "default_seed")]
    seed: u64,
    /// Keep each class's share in every split (categorical targets).
    #[serde(default)]
    stratify: bool,
    /// Number of cross-validation folds of the training rows (0 = none).
    #[serde(default)]
    folds: usize,
}

fn default_test() -> f64 {
    0.2
}
fn default_seed() -> u64 {
    42
}

#[derive(Debug)]
struct SplitStage(SplitParams);

const SPLIT_IN: &[PortSpec] = &[PortSpec::input(
    "data",
    crate::ports::TABLE,
    true,
    "the table to split",
)];
const SPLIT_OUT: &[PortSpec] = &[
    PortSpec::output("train", "train.arrow", crate::ports::TABLE, "the training rows"),
    PortSpec::output(
        "test",
        "test.arrow",
        crate::ports::TABLE,
        "the held-out test rows",
    ),
    PortSpec::output(
        "validation",
        "validation.arrow",
        crate::ports::TABLE,
        "the validation rows (none when `validation` is 0)",
    ),
    PortSpec::output(
        "folds",
        "folds.arrow",
        crate::ports::TABLE,
        "k-fold assignment of the training rows: `row` (0-based, in `train`) and `fold` (0..k); empty when `folds` is 0",
    ),
];

impl StageFactory for Split {
    fn kind(&self) -> &'static str {
        "preprocess.split"
    }
    fn summary(&self) -> &'static str {
        "Split a table into train, test and validation rows (seeded, optionally stratified)"
    }
    fn version(&self) -> u32 {
        1
    }
    fn inputs(&self) -> &'static [PortSpec] {
        SPLIT_IN
    }
    fn outputs(&self) -> &'static [PortSpec] {
        SPLIT_OUT
    }
    fn param_docs(&self) -> &'static [ParamDoc] {
        &[
            ParamDoc {
                name: "test",
                ty: "number = 0.2",
                doc: "share of rows for the test split",
            },
            ParamDoc {
                name: "validation",
                ty: "number = 0",
                doc: "share of rows for the validation split",
            },
            ParamDoc {
                name: "seed",
                ty: "integer = 42",
                doc: "shuffle seed: the same seed gives the same split",
            },
            ParamDoc {
                name: "stratify",
                ty: "bool = false",
                doc: "keep each class's share in every split (needs a categorical target)",
            },
            ParamDoc {
                name: "folds",
                ty: "integer = 0",
                doc: "also assign the training rows to this many cross-validation folds (seeded; stratified with `stratify`), written to `folds`",
            },
        ]
    }
    fn build(&self, with: &Value) -> Result<Box<dyn Stage>, ParamError> {
        let p: SplitParams = parse_with(with)?;
        for (name, v) in [("test", p.test), ("validation", p.validation)] {
            if !(0.0..1.0).contains(&v) {
                return Err(ParamError::new(
                    &[name],
                    format!("`{name}` must be a share in [0, 1), got {v}"),
                ));
            }
        }
        if p.folds == 1 {
            return Err(ParamError::new(
                &["folds"],
                "`folds` must be 0 (none) or at least 2",
            ));
        }
        if p.test + p.validation >= 1.0 {
            return Err(ParamError::new(
                &["test"],
                "`test` + `validation` must leave rows for training (sum < 1)",
            ));
        }
        Ok(Box::new(SplitStage(p)))
    }
}

impl SplitStage {
    /// Row indices of (train, test, validation).
    fn split(&self, t: &Table) -> Result<[Vec<usize>; 3], StageError> {
        let p = &self.0;
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(p.seed);
        let groups: Vec<Vec<usize>> = if p.stratify {
            let target = t.target.as_deref().ok_or_else(|| {
                StageError::new("`stratify` needs a target column")
                    .with_help("name it with `target:` in the dataset stage")
            })?;
            let col = t.column(target).expect("the target column exists");
            let ColumnData::Categorical(values) = &col.data else {
                return Err(StageError::new(format!(
                    "`stratify` needs a categorical target; `{target}` is numeric"
                ))
                .with_help("set `stratify: false` for regression targets"));
            };
            let mut classes: Vec<&Option<String>> = values.iter().collect();
            classes.sort();
            classes.dedup();
            classes
                .into_iter()
                .map(|c| (0..values.len()).filter(|&i| &values[i] == c).collect())
                .collect()
        } else {
            vec![(0..t.n_rows()).collect()]
        };
        let mut out: [Vec<usize>; 3] = Default::default();
        for mut g in groups {
            g.shuffle(&mut rng);
            let n = g.len() as f64;
            let n_test = (n * p.test).round() as usize;
            let n_val = (n * p.validation).round() as usize;
            out[1].extend_from_slice(&g[..n_test]);
            out[2].extend_from_slice(&g[n_test..n_test + n_val]);
            out[0].extend_from_slice(&g[n_test + n_val..]);
        }
        for part in &mut out {
            part.sort_unstable();
        }
        Ok(out)
    }
}

impl Stage for SplitStage {
    fn params(&self) -> Value {
        serde_json::to_value(&self.0).expect("params serialize")
    }
    fn run(&self, ctx: &RunContext<'_>) -> Result<(), StageError> {
        let t =
            Table::read_arrow(ctx.input("data")?).map_err(|e| StageError::new(e.to_string()))?;
        if t.n_rows() < 2 {
            return Err(StageError::new(format!(
                "input `data` has {} rows; a split needs at least 2",
                t.n_rows()
            )));
        }
        let [train, test, validation] = self.split(&t)?;
        if train.is_empty() {
            return Err(StageError::new("no rows are left for training")
                .with_help("lower `test` or `validation`"));
        }
        (ctx.log)(&format!(
            "{} rows: {} train, {} test, {} validation",
            t.n_rows(),
            train.len(),
            test.len(),
            validation.len()
        ));
        let folds = self.folds(&t, &train)?;
        for (port, rows) in [("train", train), ("test", test), ("validation", validation)] {
            t.take(&rows)
                .write_arrow(ctx.output(port)?)
                .map_err(|e| StageError::new(e.to_string()))?;
        }
        let (rows, fold): (Vec<f64>, Vec<f64>) = folds
            .iter()
            .enumerate()
            .map(|(i, f)| (i as f64, *f as f64))
            .unzip();
        Table {
            columns: vec![
                crate::table::Column {
                    name: "row".into(),
                    data: ColumnData::Numeric(rows),
                },
                crate::table::Column {
                    name: "fold".into(),
                    data: ColumnData::Numeric(fold),
                },
            ],
            target: None,
            transforms: vec![],
        }
        .write_arrow(ctx.output("folds")?)
        .map_err(|e| StageError::new(e.to_string()))
    }
}

impl SplitStage {
    /// The fold of each training row (rows in `train` order): shuffled by
    /// the seed, dealt round-robin — within each class when stratified.
    fn folds(&self, t: &Table, train: &[usize]) -> Result<Vec<usize>, StageError> {
        let k = self.0.folds;
        if k == 0 {
            return Ok(vec![]);
        }
        if train.len() < k {
            return Err(StageError::new(format!(
                "{} training rows cannot make {k} folds",
                train.len()
            ))
            .with_help("lower `folds`"));
        }
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(self.0.seed ^ 0xf01d);
        let groups: Vec<Vec<usize>> = match (
            &self.0.stratify,
            t.target.as_deref().and_then(|n| t.column(n)),
        ) {
            (true, Some(col)) => {
                let mut by: std::collections::BTreeMap<String, Vec<usize>> = Default::default();
                for (pos, &r) in train.iter().enumerate() {
                    by.entry(col.data.display(r)).or_default().push(pos);
                }
                by.into_values().collect()
            }
            _ => vec![(0..train.len()).collect()],
        };
        let mut fold = vec![0; train.len()];
        let mut next = 0;
        for mut g in groups {
            g.shuffle(&mut rng);
            for pos in g {
                fold[pos] = next % k;
                next += 1;
            }
        }
        Ok(fold)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::Column;

    fn table(n: usize) -> Table {
        Table {
            columns: vec![
                Column {
                    name: "x".into(),
                    data: ColumnData::Numeric((0..n).map(|i| i as f64).collect()),
                },
                Column {
                    name: "y".into(),
                    data: ColumnData::Categorical(
                        (0..n)
                            .map(|i| Some(if i % 4 == 0 { "a" } else { "b" }.to_string()))
                            .collect(),
                    ),
                },
            ],
            target: Some("y".into()),
            transforms: vec![],
        }
    }

    fn stage(with: Value) -> SplitStage {
        SplitStage(serde_json::from_value(with).unwrap())
    }

    #[test]
    fn splits_are_disjoint_complete_and_seeded() {
        let t = table(100);
        let [a, b, c] = stage(serde_json::json!({"test": 0.2, "validation": 0.1}))
            .split(&t)
            .unwrap();
        assert_eq!((a.len(), b.len(), c.len()), (70, 20, 10));
        let mut all: Vec<usize> = a.iter().chain(&b).chain(&c).copied().collect();
        all.sort();
        assert_eq!(all, (0..100).collect::<Vec<_>>());
        let again = stage(serde_json::json!({"test": 0.2, "validation": 0.1}))
            .split(&t)
            .unwrap();
        assert_eq!(again[1], b);
        let other = stage(serde_json::json!({"test": 0.2, "validation": 0.1, "seed": 7}))
            .split(&t)
            .unwrap();
        assert_ne!(other[1], b);
    }

    #[test]
    fn stratified_split_keeps_class_shares() {
        let t = table(100);
        let [_, test, _] = stage(serde_json::json!({"test": 0.2, "stratify": true}))
            .split(&t)
            .unwrap();
        let a = test.iter().filter(|&&i| i % 4 == 0).count();
        assert_eq!((a, test.len()), (5, 20));
    }

    #[test]
    fn folds_are_balanced_seeded_and_stratified() {
        let t = table(100);
        let s = stage(serde_json::json!({"test": 0.2, "folds": 4, "stratify": true}));
        let [train, _, _] = s.split(&t).unwrap();
        let f = s.folds(&t, &train).unwrap();
        assert_eq!(f.len(), 80);
        for k in 0..4 {
            let members: Vec<usize> = (0..80).filter(|&i| f[i] == k).collect();
            assert_eq!(members.len(), 20);
            // class `a` (every 4th row) spread evenly: 20 in train, 5 per fold
            let a = members.iter().filter(|&&i| train[i] % 4 == 0).count();
            assert_eq!(a, 5, "fold {k}");
        }
        assert_eq!(s.folds(&t, &train).unwrap(), f);
    }

    #[test]
    fn shares_are_checked() {
        assert_eq!(
            Split
                .build(&serde_json::json!({"test": 1.5}))
                .unwrap_err()
                .path,
            vec!["test"]
        );
        assert!(Split
            .build(&serde_json::json!({"test": 0.6, "validation": 0.5}))
            .is_err());
    }
}

// ------------------------------------------------------------- clean

/// `preprocess.clean`: duplicates, missing values, outliers.
#[derive(Debug)]
pub struct Clean;

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CleanParams {
    #[serde(default = "yes")]
    duplicates: bool,
    #[serde(default = "drop")]
    missing: String,
    #[serde(default)]
    fill: Option<Value>,
    #[serde(default = "none")]
    outliers: String,
    #[serde(default)]
    threshold: Option<f64>,
    #[serde(default)]
    columns: Option<Vec<String>>,
}
fn yes() -> bool {
    true
}
fn drop() -> String {
    "drop".into()
}
fn none() -> String {
    "none".into()
}

#[derive(Debug)]
struct CleanStage(CleanParams);

const CLEAN_IN: &[PortSpec] = &[PortSpec::input(
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

impl StageFactory for Clean {
    fn kind(&self) -> &'static str {
        "preprocess.clean"
    }
    fn summary(&self) -> &'static str {
        "Drop duplicate rows, drop or impute missing values, drop outliers (z-score or IQR); reports what it removed"
    }
    fn version(&self) -> u32 {
        1
    }
    fn inputs(&self) -> &'static [PortSpec] {
        CLEAN_IN
    }
    fn outputs(&self) -> &'static [PortSpec] {
        CLEAN_OUT
    }
    fn param_docs(&self) -> &'static [ParamDoc] {
        &[
            ParamDoc {
                name: "duplicates",
                ty: "bool = true",
                doc: "drop rows identical to an earlier row",
            },
            ParamDoc {
                name: "missing",
                ty: "`drop` | `mean` | `median` | `mode` | `constant` | `keep` = drop",
                doc: "rows with a missing feature are dropped, or the gap is filled (mean/median: numeric columns; mode: any; constant: `fill`). Rows with a missing target are always dropped unless `keep`",
            },
            ParamDoc {
                name: "fill",
                ty: "number or string",
                doc: "the value for `missing: constant`",
            },
            ParamDoc {
                name: "outliers",
                ty: "`none` | `zscore` | `iqr` = none",
                doc: "drop rows whose value is more than `threshold` standard deviations from the mean (zscore), or more than `threshold` IQRs outside the quartiles (iqr)",
            },
            ParamDoc {
                name: "threshold",
                ty: "number = 3 (zscore), 1.5 (iqr)",
                doc: "outlier cut-off",
            },
            ParamDoc {
                name: "columns",
                ty: "list of strings = every numeric column",
                doc: "columns checked for outliers",
            },
        ]
    }
    fn build(&self, with: &Value) -> Result<Box<dyn Stage>, ParamError> {
        let p: CleanParams = parse_with(with)?;
        let modes = ["drop", "mean", "median", "mode", "constant", "keep"];
        if !modes.contains(&p.missing.as_str()) {
            return Err(ParamError::new(
                &["missing"],
                format!("unknown `missing` policy `{}`", p.missing),
            )
            .with_help(format!("use one of: {}", modes.join(", "))));
        }
        if p.missing == "constant" && !matches!(p.fill, Some(Value::Number(_) | Value::String(_))) {
            return Err(ParamError::new(
                &["missing"],
                "`missing: constant` needs `fill:` (a number or a string)",
            ));
        }
        if !["none", "zscore", "iqr"].contains(&p.outliers.as_str()) {
            return Err(ParamError::new(
                &["outliers"],
                format!("unknown outlier method `{}`", p.outliers),
            )
            .with_help("use `none`, `zscore` or `iqr`"));
        }
        if let Some(t) = p.threshold {
            if !(t > 0.0 && t.is_finite()) {
                return Err(ParamError::new(
                    &["threshold"],
                    "`threshold` must be positive",
                ));
            }
        }
        Ok(Box::new(CleanStage(p)))
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

impl Stage for CleanStage {
    fn params(&self) -> Value {
        serde_json::to_value(&self.0).expect("params serialize")
    }
    fn run(&self, ctx: &RunContext<'_>) -> Result<(), StageError> {
        use crate::transform::{Fill, Transform};
        let p = &self.0;
        let mut t = crate::util::read_table(ctx, "data")?;
        let rows_in = t.n_rows();
        let mut report = serde_json::Map::new();
        report.insert("rows_in".into(), rows_in.into());
        // Duplicates.
        if p.duplicates {
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
            t = t.take(&keep);
        }
        // Missing values.
        let missing_at = |c: &ColumnData, r: usize| match c {
            ColumnData::Numeric(v) => !v[r].is_finite(),
            ColumnData::Categorical(v) => v[r].is_none(),
        };
        if p.missing != "keep" {
            let target = t.target.clone();
            let keep: Vec<usize> = (0..t.n_rows())
                .filter(|&r| {
                    !t.columns.iter().any(|c| {
                        (p.missing == "drop" || target.as_deref() == Some(c.name.as_str()))
                            && missing_at(&c.data, r)
                    })
                })
                .collect();
            report.insert(
                "missing_rows_dropped".into(),
                (t.n_rows() - keep.len()).into(),
            );
            t = t.take(&keep);
        }
        if ["mean", "median", "mode", "constant"].contains(&p.missing.as_str()) {
            let mut columns = Vec::new();
            let mut values = Vec::new();
            let mut filled = serde_json::Map::new();
            for c in &t.columns {
                let gaps = (0..c.data.len())
                    .filter(|&r| missing_at(&c.data, r))
                    .count();
                if gaps == 0 || t.target.as_deref() == Some(c.name.as_str()) {
                    continue;
                }
                let fill = match (&c.data, p.missing.as_str()) {
                    (_, "constant") => match (&c.data, p.fill.as_ref()) {
                        (ColumnData::Numeric(_), Some(Value::Number(n))) => {
                            Fill::Number(n.as_f64().unwrap_or(0.0))
                        }
                        (ColumnData::Categorical(_), Some(Value::String(s))) => {
                            Fill::Category(s.clone())
                        }
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
                    (ColumnData::Numeric(v), how) => {
                        let known: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
                        if known.is_empty() {
                            return Err(StageError::new(format!(
                                "column `{}` has no values at all to compute a {how} from",
                                c.name
                            ))
                            .with_help("drop the column with `features.select`"));
                        }
                        Fill::Number(match how {
                            "mean" => known.iter().sum::<f64>() / known.len() as f64,
                            "median" => median(known),
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
                    (ColumnData::Categorical(v), "mode") => {
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
                    (ColumnData::Categorical(_), how) => {
                        return Err(StageError::new(format!(
                            "column `{}` is categorical and has {gaps} missing value(s); a {how} needs numbers",
                            c.name
                        ))
                        .with_help("use `missing: mode`, `constant` or `drop`"))
                    }
                };
                filled.insert(c.name.clone(), gaps.into());
                columns.push(c.name.clone());
                values.push(fill);
            }
            report.insert("imputed".into(), Value::Object(filled));
            if !columns.is_empty() {
                crate::transform::apply_all(&[Transform::Impute { columns, values }], &mut t)
                    .map_err(|e| StageError::new(e.to_string()))?;
            }
        }
        // Outliers.
        if p.outliers != "none" {
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
                let (lo, hi) = if p.outliers == "zscore" {
                    let k = p.threshold.unwrap_or(3.0);
                    let n = known.len() as f64;
                    let mean = known.iter().sum::<f64>() / n;
                    let sd =
                        (known.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / n).sqrt();
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
            t = t.take(&keep);
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
        std::fs::write(ctx.output("report")?, s).map_err(|e| StageError::new(e.to_string()))
    }
}

// ------------------------------------------------------------- scale

/// `preprocess.scale`: fit a scaler on the training rows.
#[derive(Debug)]
pub struct Scale;

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScaleParams {
    #[serde(default = "standard")]
    method: String,
    #[serde(default)]
    columns: Option<Vec<String>>,
}
fn standard() -> String {
    "standard".into()
}

#[derive(Debug)]
struct ScaleStage(ScaleParams);

/// Input and outputs shared by the stages that fit a transform.
pub(crate) const FIT_IN: &[PortSpec] = &[PortSpec::input(
    "data",
    crate::ports::TABLE,
    true,
    "the rows to fit on (the training split: fitting on test rows leaks)",
)];
pub(crate) const FIT_OUT: &[PortSpec] = &[
    PortSpec::output(
        "data",
        "data.arrow",
        crate::ports::TABLE,
        "the rows, transformed; the step is recorded in the table",
    ),
    PortSpec::output(
        "transform",
        "transform.json",
        crate::ports::TRANSFORM,
        "the fitted step, to apply to other tables with `features.apply`",
    ),
];

impl StageFactory for Scale {
    fn kind(&self) -> &'static str {
        "preprocess.scale"
    }
    fn summary(&self) -> &'static str {
        "Scale numeric features: standard, min-max, max-abs (linfa-preprocessing) or L2 row normalization"
    }
    fn version(&self) -> u32 {
        1
    }
    fn inputs(&self) -> &'static [PortSpec] {
        FIT_IN
    }
    fn outputs(&self) -> &'static [PortSpec] {
        FIT_OUT
    }
    fn param_docs(&self) -> &'static [ParamDoc] {
        &[
            ParamDoc {
                name: "method",
                ty: "`standard` | `minmax` | `maxabs` | `l2` = standard",
                doc: "zero mean and unit variance; [0, 1]; [-1, 1] by the largest magnitude; or each row to unit L2 norm",
            },
            ParamDoc {
                name: "columns",
                ty: "list of strings = every numeric feature",
                doc: "columns to scale (never the target)",
            },
        ]
    }
    fn build(&self, with: &Value) -> Result<Box<dyn Stage>, ParamError> {
        let p: ScaleParams = parse_with(with)?;
        let methods = ["standard", "minmax", "maxabs", "l2"];
        if !methods.contains(&p.method.as_str()) {
            return Err(ParamError::new(
                &["method"],
                format!("unknown scaling method `{}`", p.method),
            )
            .with_help(format!("use one of: {}", methods.join(", "))));
        }
        Ok(Box::new(ScaleStage(p)))
    }
}

impl Stage for ScaleStage {
    fn params(&self) -> Value {
        serde_json::to_value(&self.0).expect("params serialize")
    }
    fn run(&self, ctx: &RunContext<'_>) -> Result<(), StageError> {
        use crate::transform::Transform;
        use linfa::traits::Fit;
        use linfa_preprocessing::linear_scaling::LinearScaler;
        let mut t = crate::util::read_table(ctx, "data")?;
        let columns = crate::util::chosen_columns(&t, &self.0.columns, true, "columns")?;
        if columns.is_empty() {
            return Err(StageError::new(
                "the table has no numeric feature columns to scale",
            ));
        }
        if t.n_rows() == 0 {
            return Err(StageError::new(
                "the table has no rows to fit the scaler on",
            ));
        }
        let step = if self.0.method == "l2" {
            Transform::Normalize {
                columns: columns.clone(),
            }
        } else {
            let x = crate::model::matrix(&t, &columns).map_err(|e| {
                StageError::new(format!("cannot fit the scaler: {e}"))
                    .with_help("impute or drop missing values first with `preprocess.clean`")
            })?;
            let ds = linfa::DatasetBase::from(x);
            let params = match self.0.method.as_str() {
                "minmax" => LinearScaler::min_max(),
                "maxabs" => LinearScaler::max_abs(),
                _ => LinearScaler::standard(),
            };
            let s = params
                .fit(&ds)
                .map_err(|e| StageError::new(format!("cannot fit the scaler: {e}")))?;
            // A constant column has no spread: leave its scale at 1.
            let scales = s
                .scales()
                .iter()
                .map(|v| if v.is_finite() && *v != 0.0 { *v } else { 1.0 })
                .collect();
            Transform::Scale {
                method: self.0.method.clone(),
                columns: columns.clone(),
                offsets: s.offsets().to_vec(),
                scales,
            }
        };
        (ctx.log)(&format!(
            "{} scaling of {} column(s) fitted on {} rows",
            self.0.method,
            columns.len(),
            t.n_rows()
        ));
        crate::transform::apply_all(std::slice::from_ref(&step), &mut t)
            .map_err(|e| StageError::new(e.to_string()))?;
        crate::util::write_table(ctx, "data", &t)?;
        crate::transform::write_steps(ctx.output("transform")?, &[step])
            .map_err(|e| StageError::new(e.to_string()))
    }
}

// ----------------------------------------------------------- augment

/// `preprocess.augment`: more training rows.
#[derive(Debug)]
pub struct Augment;

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct AugmentParams {
    method: String,
    #[serde(default = "noise")]
    noise: f64,
    #[serde(default = "one_copy")]
    copies: usize,
    #[serde(default = "default_seed")]
    seed: u64,
}
fn noise() -> f64 {
    0.05
}
fn one_copy() -> usize {
    1
}

#[derive(Debug)]
struct AugmentStage(AugmentParams);

const AUGMENT_OUT: &[PortSpec] = &[PortSpec::output(
    "data",
    "data.arrow",
    crate::ports::TABLE,
    "the original rows followed by the added ones",
)];

impl StageFactory for Augment {
    fn kind(&self) -> &'static str {
        "preprocess.augment"
    }
    fn summary(&self) -> &'static str {
        "Add training rows: Gaussian jitter of numeric features, or random oversampling of minority classes"
    }
    fn version(&self) -> u32 {
        1
    }
    fn inputs(&self) -> &'static [PortSpec] {
        CLEAN_IN
    }
    fn outputs(&self) -> &'static [PortSpec] {
        AUGMENT_OUT
    }
    fn param_docs(&self) -> &'static [ParamDoc] {
        &[
            ParamDoc {
                name: "method",
                ty: "`jitter` | `oversample` (required)",
                doc: "add noisy copies of every row, or repeat random rows of the smaller classes until every class is as large as the largest",
            },
            ParamDoc {
                name: "noise",
                ty: "number = 0.05",
                doc: "jitter: noise standard deviation, as a share of each feature's standard deviation",
            },
            ParamDoc {
                name: "copies",
                ty: "integer = 1",
                doc: "jitter: noisy copies per row",
            },
            ParamDoc {
                name: "seed",
                ty: "integer = 42",
                doc: "random seed",
            },
        ]
    }
    fn build(&self, with: &Value) -> Result<Box<dyn Stage>, ParamError> {
        let p: AugmentParams = parse_with(with)?;
        if !["jitter", "oversample"].contains(&p.method.as_str()) {
            return Err(ParamError::new(
                &["method"],
                format!("unknown augmentation `{}`", p.method),
            )
            .with_help("use `jitter` or `oversample`"));
        }
        if !(p.noise >= 0.0 && p.noise.is_finite()) {
            return Err(ParamError::new(&["noise"], "`noise` must be ≥ 0"));
        }
        Ok(Box::new(AugmentStage(p)))
    }
}

impl Stage for AugmentStage {
    fn params(&self) -> Value {
        serde_json::to_value(&self.0).expect("params serialize")
    }
    fn run(&self, ctx: &RunContext<'_>) -> Result<(), StageError> {
        use rand::Rng;
        let p = &self.0;
        let t = crate::util::read_table(ctx, "data")?;
        let n = t.n_rows();
        if n == 0 {
            return Err(StageError::new("the table has no rows to augment"));
        }
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(p.seed);
        let out = if p.method == "oversample" {
            let target = t.target.as_deref().ok_or_else(|| {
                StageError::new("oversampling needs a target column (the classes to balance)")
            })?;
            let col = t.column(target).expect("the target exists");
            let labels: Vec<String> = (0..n).map(|r| col.data.display(r)).collect();
            let mut by_class: std::collections::BTreeMap<&str, Vec<usize>> = Default::default();
            for (r, l) in labels.iter().enumerate() {
                by_class.entry(l).or_default().push(r);
            }
            let largest = by_class.values().map(Vec::len).max().unwrap_or(0);
            let mut rows: Vec<usize> = (0..n).collect();
            for members in by_class.values() {
                for _ in members.len()..largest {
                    rows.push(members[rng.gen_range(0..members.len())]);
                }
            }
            (ctx.log)(&format!(
                "{} classes balanced to {largest} rows each: {} rows added",
                by_class.len(),
                rows.len() - n
            ));
            t.take(&rows)
        } else {
            let mut rows: Vec<usize> = (0..n).collect();
            for _ in 0..p.copies {
                rows.extend(0..n);
            }
            let mut out = t.take(&rows);
            for c in &mut out.columns {
                if t.target.as_deref() == Some(c.name.as_str()) {
                    continue;
                }
                if let ColumnData::Numeric(v) = &mut c.data {
                    let known: Vec<f64> =
                        v[..n].iter().copied().filter(|x| x.is_finite()).collect();
                    let m = known.iter().sum::<f64>() / known.len().max(1) as f64;
                    let sd = (known.iter().map(|x| (x - m) * (x - m)).sum::<f64>()
                        / known.len().max(1) as f64)
                        .sqrt();
                    for x in &mut v[n..] {
                        *x += p.noise * sd * crate::dataset::normal(&mut rng);
                    }
                }
            }
            (ctx.log)(&format!("{} jittered rows added", n * p.copies));
            out
        };
        crate::util::write_table(ctx, "data", &out)
    }
}
