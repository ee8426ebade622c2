//! The `mlcycle` command line.
//!
//! A crate with its own stage kinds builds a registry (usually starting from
//! [`mlcycle_stages::builtin_registry`]), registers its kinds, and calls
//! [`main_with_registry`] from its `main`: the result is the full `mlcycle`
//! CLI that also knows the custom kinds.

mod cli;
mod commands;
mod error;
mod locate;
#[macro_use]
mod output;
mod report;
#[cfg(feature = "serve")]
mod ui;

use std::process::ExitCode;

pub use mlcycle_pipeline as pipeline;
pub use mlcycle_pipeline::StageRegistry;

/// Runs the CLI with the given stage registry and returns the exit code.
pub fn main_with_registry(registry: StageRegistry) -> ExitCode {
    // `mlcycle status --json | head -1` should end quietly, as other Unix
    // tools do, rather than panic on the closed pipe.
    // SAFETY: restoring a signal's default disposition has no memory-safety
    // preconditions; it happens before any thread is spawned.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    commands::main(registry)
}

/// Clap's message when `args` (program name first) is not a valid
/// `mlcycle` command line, `None` when it is. For the tests that check every
/// command shown in the docs.
#[doc(hidden)]
pub fn check_args(args: &[String]) -> Option<String> {
    use clap::Parser;
    cli::Cli::try_parse_from(args).err().map(|e| e.to_string())
}
