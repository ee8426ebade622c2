//! Executing a plan. The [`scheduler`] decides and dispatches; a runner per
//! backend produces a stale stage's outputs: in-process built-ins
//! (`builtin.rs`), commands (`command.rs`) and Slurm jobs
//! ([`slurm`]). [`queue`] is the pure ready queue; [`interrupt`] the
//! handle that stops a run.

mod beneath;
mod builtin;
mod command;
pub mod gate;
pub mod interrupt;
pub mod orphans;
mod outputs;
pub mod queue;
mod runner;
pub mod scheduler;
pub mod slurm;

pub use gate::StageGate;
pub use interrupt::Interrupt;
pub use queue::DependencyQueue;
pub use scheduler::{run, Reporter, RunError, RunOptions, RunOutput};
