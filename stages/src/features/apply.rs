//! `features.apply`: apply fitted transforms to another table.

use mlcycle_pipeline::{
    InferContext, Inferred, PortSpec, RunContext, StageError, StageKind, StageSpec,
};

use crate::transform::{apply_all, read_steps};
use crate::util::{read_table, write_table, NoParams};

/// `features.apply`.
#[derive(Debug)]
pub struct Apply;

const APPLY_IN: &[PortSpec] = &[
    PortSpec::input("data", crate::ports::TABLE, true, "the rows to transform"),
    PortSpec::input(
        "transform",
        crate::ports::TRANSFORM,
        true,
        "a fitted step from `preprocess.scale` or a `features.*` stage",
    ),
];
const APPLY_OUT: &[PortSpec] = &[PortSpec::output(
    "data",
    "data.arrow",
    crate::ports::TABLE,
    "the rows, transformed",
)];

impl StageKind for Apply {
    type Params = NoParams;
    const SPEC: StageSpec = StageSpec {
        kind: "features.apply",
        summary: "Apply a fitted transform, unchanged, to another table (e.g. the test split)",
        version: 1,
        inputs: APPLY_IN,
        outputs: APPLY_OUT,
        params: &[],
    };
    fn infer(_: &NoParams, cx: &InferContext<'_>) -> Inferred {
        crate::shape::apply(cx)
    }
    fn run(_: &NoParams, ctx: &RunContext<'_>) -> Result<(), StageError> {
        let steps = read_steps(ctx.input("transform")?).map_err(StageError::from_error)?;
        let mut t = read_table(ctx, "data")?;
        // A category the fitted one-hot step never saw becomes all zeros:
        // say so, with its rows.
        for u in crate::transform::unseen_categories(&steps, &t) {
            (ctx.log)(&format!(
                "warning: {} row(s) have `{}` = `{}`, a category unseen when the transform was fitted (encoded as all zeros)",
                u.rows, u.column, u.value
            ));
        }
        apply_all(&steps, &mut t).map_err(|e| {
            StageError::caused_by("cannot apply the transform", e)
                .with_help("the table must have the columns the transform was fitted on")
        })?;
        write_table(ctx, "data", &t)
    }
}
