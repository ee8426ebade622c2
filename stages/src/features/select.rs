//! `features.select`: keep or drop columns.

use mlcycle_pipeline::{
    InferContext, Inferred, ParamDoc, ParamError, RunContext, StageError, StageKind, StageSpec,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::finish;
use crate::preprocess::{FIT_IN, FIT_OUT};
use crate::transform::Transform;
use crate::util::{check_columns, feature_names, read_table};

/// `features.select`.
#[derive(Debug)]
pub struct Select;

/// `features.select`'s params (`with:`).
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SelectParams {
    #[serde(default)]
    keep: Option<Vec<String>>,
    #[serde(default)]
    drop: Option<Vec<String>>,
}

impl StageKind for Select {
    type Params = SelectParams;
    const SPEC: StageSpec = StageSpec {
        kind: "features.select",
        summary: "Keep or drop feature columns (the target always stays)",
        version: 1,
        inputs: FIT_IN,
        outputs: FIT_OUT,
        params: &[
            ParamDoc::new(
                "keep",
                "list of strings",
                "the feature columns to keep; every other feature is dropped",
            ),
            ParamDoc::new("drop", "list of strings", "the feature columns to drop"),
        ],
    };
    fn example() -> Value {
        serde_json::json!({"drop": ["id"]})
    }
    fn check(p: &mut SelectParams) -> Result<(), ParamError> {
        match (&p.keep, &p.drop) {
            (Some(_), Some(_)) => Err(ParamError::new(
                &["drop"],
                "give `keep` or `drop`, not both",
            )),
            (None, None) => Err(ParamError::new(
                &[],
                "give `keep:` or `drop:` (a list of columns)",
            )),
            _ => Ok(()),
        }
    }
    fn infer(p: &SelectParams, cx: &InferContext<'_>) -> Inferred {
        let mut out = crate::shape::fitted_step(cx, p.keep.as_deref(), None, "keep", |t| {
            // Fixed on the fitted table: what `features.apply` drops.
            let mut removed: Vec<String> = match &p.keep {
                Some(keep) => t
                    .columns
                    .iter()
                    .map(|(n, _)| n)
                    .filter(|n| !keep.contains(n) && t.target.as_ref() != Some(*n))
                    .cloned()
                    .collect(),
                None => vec![],
            };
            removed.extend(p.drop.iter().flatten().cloned());
            crate::shape::StepShape {
                removed,
                added: Some(vec![]),
            }
        });
        if let (Some(t), Some(drop)) = (crate::shape::table(cx, "data"), &p.drop) {
            out.problems
                .extend(t.check_named(drop, None, "drop", false));
        }
        out
    }
    fn run(p: &SelectParams, ctx: &RunContext<'_>) -> Result<(), StageError> {
        let t = read_table(ctx, "data")?;
        let features = feature_names(&t, None);
        let dropped: Vec<String> = match (&p.keep, &p.drop) {
            (Some(keep), _) => {
                check_columns(&t, keep, None, "keep")?;
                features.into_iter().filter(|f| !keep.contains(f)).collect()
            }
            (_, Some(drop)) => {
                check_columns(&t, drop, None, "drop")?;
                drop.clone()
            }
            _ => unreachable!("checked at build"),
        };
        finish(ctx, t, Transform::Drop { columns: dropped })
    }
}
