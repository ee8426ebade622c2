//! `preprocess.split`: seeded train / test / validation split and folds.

use mlcycle_pipeline::{
    InferContext, Inferred, ParamDoc, ParamError, PortSpec, RunContext, StageError, StageKind,
    StageSpec,
};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus;
use serde::{Deserialize, Serialize};

use crate::table::{ColumnData, Table};

/// `preprocess.split`: seeded train / test / validation split.
#[derive(Debug)]
pub struct Split;

/// `preprocess.split`'s params (`with:`).
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SplitParams {
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
    /// The target column of a table that names none (one a script wrote);
    /// when the table names one, this one replaces it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) target: Option<String>,
}

fn default_test() -> f64 {
    0.2
}
pub(super) fn default_seed() -> u64 {
    42
}

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

impl StageKind for Split {
    type Params = SplitParams;
    const SPEC: StageSpec = StageSpec {
        kind: "preprocess.split",
        summary: "Split a table into train, test and validation rows (seeded, optionally stratified)",
        version: 2,
        inputs: SPLIT_IN,
        outputs: SPLIT_OUT,
        params: &[
            crate::TARGET_PARAM_DOC,
            ParamDoc::new("test", "number", "share of rows for the test split"),
            ParamDoc::new("validation", "number", "share of rows for the validation split"),
            ParamDoc::new("seed", "integer", "shuffle seed: the same seed gives the same split"),
            ParamDoc::new("stratify", "bool", "keep each class's share in every split (needs a categorical target)"),
            ParamDoc::new("folds", "integer", "also assign the training rows to this many cross-validation folds (seeded; stratified with `stratify`), written to `folds`"),
        ],
    };
    fn check(p: &mut SplitParams) -> Result<(), ParamError> {
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
        Ok(())
    }
    fn infer(p: &SplitParams, cx: &InferContext<'_>) -> Inferred {
        let cx = &crate::shape::retargeted(cx, "data", p.target.as_deref());
        crate::shape::through(cx, "data", &["train", "test", "validation"]).output(
            "folds",
            mlcycle_pipeline::Facts::new(super::fold::FoldCount(p.folds)),
        )
    }
    fn run(p: &SplitParams, ctx: &RunContext<'_>) -> Result<(), StageError> {
        let mut t = Table::read(ctx.input("data")?).map_err(StageError::from_error)?;
        crate::util::declared_target(&mut t, p.target.as_deref())?;
        if t.n_rows() < 2 {
            return Err(StageError::new(format!(
                "input `data` has {} rows; a split needs at least 2",
                t.n_rows()
            )));
        }
        refuse_fitted_imputation(&t)?;
        let [train, test, validation] = p.split(&t)?;
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
        let folds = p.folds(&t, &train)?;
        for (port, rows) in [("train", train), ("test", test), ("validation", validation)] {
            t.take(&rows)
                .write_arrow(ctx.output(port)?)
                .map_err(StageError::from_error)?;
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
        .map_err(StageError::from_error)
    }
}

impl SplitParams {
    /// Row indices of (train, test, validation).
    fn split(&self, t: &Table) -> Result<[Vec<usize>; 3], StageError> {
        let p = self;
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(p.seed);
        let groups: Vec<Vec<usize>> = if p.stratify {
            let target = t.target.as_deref().ok_or_else(|| {
                StageError::new("`stratify` needs a target column")
                    .with_help("name it with `target:` in the dataset stage, or in this stage's `with:` for a table a script wrote")
            })?;
            let col = t.column(target).expect("the target column exists");
            // Class labels: categories, or a few whole numbers (the
            // classifiers' rule, see `train::class_target`).
            let values: Vec<Option<String>> = match &col.data {
                ColumnData::Categorical(values) => values.clone(),
                ColumnData::Numeric(v) => match crate::train::numeric_class_labels(v) {
                    Ok(labels) => labels.into_iter().map(Some).collect(),
                    Err(distinct) => {
                        return Err(StageError::new(format!(
                            "`stratify` keeps each class's share, but the target `{target}` is continuous ({distinct} distinct values, e.g. {})",
                            crate::table::short(v[0])
                        ))
                        .with_help("set `stratify: false` for a regression target"));
                    }
                },
            };
            let values = &values;
            let mut classes: Vec<&Option<String>> = values.iter().collect();
            classes.sort();
            classes.dedup();
            // As scikit-learn's `train_test_split(stratify=…)`: a class of
            // one row cannot be in two parts.
            if let Some(c) = classes
                .iter()
                .find(|c| values.iter().filter(|v| v == *c).count() < 2)
            {
                return Err(StageError::new(format!(
                    "`stratify`: class `{}` of the target `{target}` has a single row; every class needs at least 2",
                    c.as_deref().unwrap_or("(missing)")
                ))
                .with_help("set `stratify: false`, or drop the rare classes first"));
            }
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

impl SplitParams {
    /// The fold of each training row (rows in `train` order): shuffled by
    /// the seed, dealt round-robin — within each class when stratified.
    fn folds(&self, t: &Table, train: &[usize]) -> Result<Vec<usize>, StageError> {
        let k = self.folds;
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
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(self.seed ^ 0xf01d);
        let groups: Vec<Vec<usize>> = match (
            &self.stratify,
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

/// A table whose gaps were filled from its own rows (`missing: mean`,
/// `median` or `mode` in `preprocess.clean`) before this split:
/// the fill values saw the test rows, and they travel inside the model.
fn refuse_fitted_imputation(t: &Table) -> Result<(), StageError> {
    let fitted = t.transforms.iter().find_map(|s| match s {
        crate::transform::Transform::Impute {
            columns,
            strategy: Some(how),
            ..
        } if how != "constant" => Some((how.clone(), columns.clone())),
        _ => None,
    });
    let Some((how, columns)) = fitted else {
        return Ok(());
    };
    Err(StageError::new(format!(
        "the rows were imputed before this split (`missing: {how}` on {}): the fill values were computed on every row, test rows included, and the model would carry them (a leak)",
        columns.iter().map(|c| format!("`{c}`")).collect::<Vec<_>>().join(", ")
    ))
    .with_help(
        "split first and clean the `train` output (`inputs: {data: split.train}`): the model then fills the test rows' gaps with the training rows' values; or use `missing: drop` or `missing: constant` before the split",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::Column;
    use mlcycle_pipeline::StageFactory;

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

    fn stage(with: serde_json::Value) -> SplitParams {
        let mut p: SplitParams = serde_json::from_value(with).unwrap();
        Split::check(&mut p).unwrap();
        p
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

    /// Whole-number class labels (0/1) stratify as the classifiers take
    /// them; they were refused as "regression targets".
    #[test]
    fn integer_class_labels_stratify() {
        let t = Table {
            columns: vec![Column {
                name: "y".into(),
                data: ColumnData::Numeric((0..40).map(|i| f64::from(i % 4 == 0)).collect()),
            }],
            target: Some("y".into()),
            transforms: vec![],
        };
        let p = stage(serde_json::json!({"test": 0.2, "stratify": true}));
        let [_, test, _] = p.split(&t).unwrap();
        let ones = test.iter().filter(|&&r| r % 4 == 0).count();
        assert_eq!((test.len(), ones), (8, 2));
        let cont = Table {
            columns: vec![Column {
                name: "y".into(),
                data: ColumnData::Numeric((0..40).map(|i| f64::from(i) + 0.5).collect()),
            }],
            ..t
        };
        let e = p.split(&cont).unwrap_err();
        assert!(e.to_string().contains("continuous"), "{e}");
        // A class of one row cannot be stratified (scikit-learn refuses).
        let single = Table {
            columns: vec![Column {
                name: "y".into(),
                data: ColumnData::Numeric((0..40).map(|i| f64::from(i == 7)).collect()),
            }],
            ..cont
        };
        let e = p.split(&single).unwrap_err();
        assert!(e.to_string().contains("class `1`"), "{e}");
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
                .remove(0)
                .path,
            vec!["test"]
        );
        assert!(Split
            .build(&serde_json::json!({"test": 0.6, "validation": 0.5}))
            .is_err());
    }
}
