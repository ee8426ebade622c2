//! Executing a plan: the ready queue and the local executor.

pub mod local;
pub mod queue;
pub mod slurm;

pub use local::{interrupt, interrupted, kill_all, run, Reporter, RunError, RunOptions, RunOutput};
pub use queue::DependencyQueue;
