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
pub(crate) use validate::paths::{walk_links, LinkStop};
pub use validate::{load_pipeline, LoadOptions};

/// The pipeline file name looked for in a workspace.
pub const PIPELINE_FILE: &str = "mlcycle.yaml";

/// Whether workspace path `rel` (relative, normalized, symlinks resolved)
/// is one of mlcycle's own files: the pipeline file, the lock file, or
/// anything under the state folder. No stage may write them.
pub fn owned_by_mlcycle(rel: &str) -> bool {
    let rel = rel.trim_end_matches('/');
    let state = crate::workspace::STATE_DIR;
    rel == state
        || rel.strip_prefix(state).is_some_and(|r| r.starts_with('/'))
        || rel == PIPELINE_FILE
        || rel == crate::workspace::LOCK_FILE
}
