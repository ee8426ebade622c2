//! `preprocess.augment`: more training rows, by Gaussian jitter of numeric
//! features or by oversampling minority classes.

use mlcycle_pipeline::{
    InferContext, Inferred, ParamDoc, ParamError, PortSpec, RunContext, StageError, StageKind,
    StageSpec,
};
use rand::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::split::default_seed;
use crate::table::ColumnData;

/// `preprocess.augment`: more training rows.
#[derive(Debug)]
pub struct Augment;

/// `preprocess.augment`'s params (`with:`).
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AugmentParams {
    method: AugmentMethod,
    #[serde(default = "noise")]
    noise: f64,
    #[serde(default = "one_copy")]
    copies: usize,
    #[serde(default = "default_seed")]
    seed: u64,
}
/// How `preprocess.augment` adds rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AugmentMethod {
    /// Noisy copies of every row.
    Jitter,
    /// Random repeats of the smaller classes' rows.
    Oversample,
}

fn noise() -> f64 {
    0.05
}
fn one_copy() -> usize {
    1
}

const AUGMENT_OUT: &[PortSpec] = &[PortSpec::output(
    "data",
    "data.arrow",
    crate::ports::TABLE,
    "the original rows followed by the added ones",
)];

impl StageKind for Augment {
    type Params = AugmentParams;
    const SPEC: StageSpec = StageSpec {
        kind: "preprocess.augment",
        summary: "Add training rows: Gaussian jitter of numeric features, or random oversampling of minority classes",
        version: 1,
        inputs: &[PortSpec::input(
            "data",
            crate::ports::TABLE,
            true,
            "the training rows to add to",
        )],
        outputs: AUGMENT_OUT,
        params: &[
            ParamDoc::new("method", "`jitter` | `oversample`", "add noisy copies of every row, or repeat random rows of the smaller classes until every class is as large as the largest"),
            ParamDoc::new("noise", "number", "jitter: noise standard deviation, as a share of each feature's standard deviation"),
            ParamDoc::new("copies", "integer", "jitter: noisy copies per row"),
            ParamDoc::new("seed", "integer", "random seed"),
        ],
    };
    fn example() -> Value {
        serde_json::json!({"method": "jitter"})
    }
    fn check(p: &mut AugmentParams) -> Result<(), ParamError> {
        if !(p.noise >= 0.0 && p.noise.is_finite()) {
            return Err(ParamError::new(&["noise"], "`noise` must be ≥ 0"));
        }
        Ok(())
    }
    fn infer(_: &AugmentParams, cx: &InferContext<'_>) -> Inferred {
        crate::shape::through(cx, "data", &["data"])
    }
    fn run(p: &AugmentParams, ctx: &RunContext<'_>) -> Result<(), StageError> {
        use rand::Rng;
        let t = crate::util::read_table(ctx, "data")?;
        let n = t.n_rows();
        if n == 0 {
            return Err(StageError::new("the table has no rows to augment"));
        }
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(p.seed);
        let out = if p.method == AugmentMethod::Oversample {
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
