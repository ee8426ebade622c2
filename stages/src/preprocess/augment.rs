//! `preprocess.augment`: more training rows, by Gaussian jitter of numeric
//! features or by oversampling minority classes.

use mlcycle_pipeline::{
    ParamDoc, ParamError, PortSpec, RunContext, Stage, StageError, StageFactory,
};
use rand::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::clean::CLEAN_IN;
use super::split::default_seed;
use crate::table::ColumnData;
use crate::util::parse_with;

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
