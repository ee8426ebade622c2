//! Preprocessing stages, one file per kind: `clean`, `split`, `fold`,
//! `scale` and `augment`.

mod augment;
mod clean;
mod fold;
mod scale;
mod split;

use mlcycle_pipeline::PortSpec;

pub use augment::Augment;
pub use clean::Clean;
pub use fold::Fold;
pub use scale::Scale;
pub use split::Split;

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
