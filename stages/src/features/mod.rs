//! Feature stages: choose, encode and derive feature columns.
//!
//! Every fitted step is recorded in the output table (and written as a
//! `transform` artifact), so a model trained downstream applies it to raw
//! rows by itself.
//!
//! One file per kind; this module holds what they share.

mod apply;
mod one_hot;
mod pca;
mod polynomial;
mod select;

use mlcycle_pipeline::{RunContext, StageError};

pub use apply::Apply;
pub use one_hot::OneHot;
pub use pca::Pca;
pub use polynomial::Polynomial;
pub use select::Select;

use crate::table::Table;
use crate::transform::{apply_all, write_steps, Transform};
use crate::util::write_table;

/// Applies the fitted `step` to `t` (the stage's input, already read),
/// writes the table and the transform.
fn finish(ctx: &RunContext<'_>, mut t: Table, step: Transform) -> Result<(), StageError> {
    apply_all(std::slice::from_ref(&step), &mut t).map_err(StageError::from_error)?;
    (ctx.log)(&format!(
        "{} columns: {}",
        t.columns.len(),
        t.names().join(", ")
    ));
    write_table(ctx, "data", &t)?;
    write_steps(ctx.output("transform")?, &[step]).map_err(StageError::from_error)
}
