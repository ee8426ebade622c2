//! Feature stages: choose, encode and derive feature columns.
//!
//! Every fitted step is recorded in the output table (and written as a
//! `transform` artifact), so a model trained downstream applies it to raw
//! rows by itself.
//!
//! One file per kind; this module holds what they share.

macro_rules! factory {
    ($ty:ident, $kind:literal, $summary:literal, $docs:expr, $params:ty, $stage:ident, $check:expr) => {
        impl StageFactory for $ty {
            fn kind(&self) -> &'static str {
                $kind
            }
            fn summary(&self) -> &'static str {
                $summary
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
                $docs
            }
            fn build(&self, with: &Value) -> Result<Box<dyn Stage>, ParamError> {
                let p: $params = parse_with(with)?;
                #[allow(clippy::redundant_closure_call)]
                ($check)(&p)?;
                Ok(Box::new($stage(p)))
            }
        }
    };
}

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
