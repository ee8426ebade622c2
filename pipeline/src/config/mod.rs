//! The pipeline file: loading, checking, and the validated [`Pipeline`].
//!
//! `mlcycle.yaml` is read by [`load`] into a plain value tree, checked by
//! [`validate`] (every problem collected, none fatal until the end), and
//! turned into a [`Pipeline`] whose stages are ready to fingerprint and run.

mod error;
pub mod load;
mod pipeline;
pub mod resources;
pub mod span;
mod validate;

pub use error::{ConfigError, FileKey, Issue, LocatedIssue};
pub use pipeline::{env_var_name, Action, Input, Output, Pipeline, Shell, Source, StageDef};
pub use span::{Part, YamlPath};
pub use validate::{load_pipeline, LoadOptions};

/// The pipeline file name looked for in a workspace.
pub const PIPELINE_FILE: &str = "mlcycle.yaml";
