//! The mlcycle engine.
//!
//! Data flows one way: YAML text → [`config::load_pipeline`] (all problems
//! reported at once, with source spans) → a validated [`config::Pipeline`]
//! → [`graph::StageGraph`] → a freshness [`plan`] per stage (fresh,
//! restorable, or stale with its reasons) → the local executor
//! ([`exec::run`]) → a [`summary::RunSummary`]. The engine knows nothing
//! about ML: stages come from a [`registry::StageRegistry`].
//!
//! On disk, a workspace holds `mlcycle.yaml`, `mlcycle.lock` and
//! `.mlcycle/` (see [`workspace`]).

pub mod cache;
pub mod config;
pub mod db;
pub mod exec;
pub mod fingerprint;
pub mod graph;
pub mod hash;
pub mod history;
pub mod interp;
pub mod params;
pub mod plan;
pub mod registry;
pub mod session;
pub mod stage;
pub mod suggest;
pub mod summary;
pub mod workspace;

pub use config::{load_pipeline, ConfigError, LoadOptions, Pipeline};
pub use graph::StageGraph;
pub use registry::StageRegistry;
pub use session::{RunRequest, Session, SessionError, SessionOptions};
pub use stage::{
    Artifact, ParamDoc, ParamError, PortSpec, RunContext, Stage, StageError, StageFactory,
};
pub use summary::RunSummary;
pub use workspace::Workspace;
