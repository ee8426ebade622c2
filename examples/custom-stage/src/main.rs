//! `mlcycle-custom`: the whole `mlcycle` CLI plus one stage kind of our own,
//! `text.upper` (see `lib.rs`).
//!
//! The recipe: build a registry (starting from the built-ins), register your
//! factories, and hand the registry to `mlcycle::main_with_registry`.

use std::process::ExitCode;

fn main() -> ExitCode {
    mlcycle::main_with_registry(mlcycle_custom_stage_example::registry())
}
