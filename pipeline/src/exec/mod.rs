//! Executing a plan: the ready queue, the local executor, Slurm, and the
//! interrupt handle that stops a run.

pub mod interrupt;
pub mod local;
pub mod queue;
pub mod slurm;

pub use interrupt::Interrupt;
pub use local::{run, Reporter, RunError, RunOptions, RunOutput};
pub use queue::DependencyQueue;
