//! The `mlcycle` command line.
//!
//! A crate with its own stage kinds builds a registry (usually starting from
//! [`mlcycle_stages::builtin_registry`]), registers its kinds, and calls
//! [`main_with_registry`] from its `main`: the result is the full `mlcycle`
//! CLI that also knows the custom kinds.

mod cli;
mod commands;
mod report;

use std::process::ExitCode;

pub use mlcycle_pipeline as pipeline;
pub use mlcycle_pipeline::StageRegistry;

/// Runs the CLI with the given stage registry and returns the exit code.
pub fn main_with_registry(registry: StageRegistry) -> ExitCode {
    commands::main(registry)
}
