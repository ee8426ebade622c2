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
}

fn default_test() -> f64 {
    0.2
}
fn default_seed() -> u64 {
    42
}

#[derive(Debug)]
struct SplitStage(SplitParams);

const SPLIT_IN: &[PortSpec] = &[PortSpec {
    name: "data",
    file: "",
    required: true,
    doc: "the table to split",
}];
const SPLIT_OUT: &[PortSpec] = &[
    PortSpec {
        name: "train",
        file: "train.arrow",
        required: true,
        doc: "the training rows",
    },
    PortSpec {
        name: "test",
        file: "test.arrow",
        required: true,
        doc: "the held-out test rows",
    },
    PortSpec {
        name: "validation",
        file: "validation.arrow",
        required: true,
        doc: "the validation rows (none when `validation` is 0)",
    },
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
        for (port, rows) in [("train", train), ("test", test), ("validation", validation)] {
            t.take(&rows)
                .write_arrow(ctx.output(port)?)
                .map_err(|e| StageError::new(e.to_string()))?;
        }
        Ok(())
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
