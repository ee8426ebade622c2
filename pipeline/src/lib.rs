//! The mlcycle engine: YAML pipelines, their DAG, a content-addressed
//! cache, and incremental parallel runs. It knows nothing about ML: stage
//! kinds come from a [`StageRegistry`] (the `mlcycle-stages` crate fills one
//! with the built-ins), and a command stage runs anything.
//!
//! Data flows one way, one module per arrow:
//!
//! | step | module | main type |
//! |---|---|---|
//! | open a workspace; run, status, gc | [`session`] | [`Session`] |
//! | YAML text → validated pipeline (every problem at once, with spans) | [`config`] | [`Pipeline`] |
//! | the DAG, target selection, rendering | [`graph`] | [`StageGraph`] |
//! | fresh / restorable / stale, with every reason | [`plan`], [`fingerprint`] | [`plan::StageStatus`] |
//! | the scheduler and a runner per backend (in-process, command, Slurm) | [`exec`] | [`exec::RunOptions`] |
//! | what happened | [`summary`] | [`RunSummary`] |
//! | objects by BLAKE3 hash, folder manifests | [`cache`] | [`cache::Cache`] |
//! | `mlcycle.lock`, the journal, the writer lock | [`workspace`] | [`Workspace`] |
//! | the run history, read back | [`history`] | [`history::History`] |
//! | writing a stage kind: spec, typed params, run | [`spec`], [`stage`], [`registry`] | [`StageKind`], [`StageSpec`] |
//!
//! A whole run, as a program embedding the engine does it:
//!
//! ```
//! use mlcycle_pipeline::{RunRequest, Session, SessionOptions, StageRegistry};
//!
//! let dir = tempfile::tempdir()?;
//! std::fs::write(
//!     dir.path().join("mlcycle.yaml"),
//!     "stages:\n  hello:\n    run: echo hello > ${outputs.greeting}\n    outs: [out/greeting.txt]\n",
//! )?;
//! let registry = StageRegistry::new();
//! let session = Session::open(&dir.path().join("mlcycle.yaml"), &SessionOptions::new(&registry))?;
//! let summary = session.run(&RunRequest::default(), &())?.summary;
//! assert!(summary.succeeded());
//! assert_eq!(std::fs::read_to_string(dir.path().join("out/greeting.txt"))?, "hello\n");
//! // A second run finds the stage fresh.
//! let again = session.run(&RunRequest::default(), &())?.summary;
//! assert_eq!(again.stages[0].outcome, mlcycle_pipeline::summary::Outcome::Fresh);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! On disk, a workspace holds `mlcycle.yaml`, `mlcycle.lock` and
//! `.mlcycle/` (see [`workspace`]).

pub mod cache;
pub mod config;
pub(crate) mod db;
pub mod exec;
pub mod experiments;
pub mod fingerprint;
pub mod graph;
pub(crate) mod hash;
pub mod history;
pub(crate) mod interp;
pub(crate) mod params;
pub mod plan;
pub mod registry;
pub mod session;
pub mod spec;
pub mod stage;
pub mod suggest;
pub mod summary;
pub mod workspace;

pub use config::{load_pipeline, ConfigError, LoadOptions, Pipeline};
pub use graph::StageGraph;
pub use registry::StageRegistry;
pub use session::{RunRequest, Session, SessionError, SessionOptions};
pub use spec::{ParamDoc, ParamError, StageFactory, StageKind, StageSpec};
pub use stage::{
    Artifact, Facts, Gathered, InferContext, Inferred, PortSpec, RunContext, Stage, StageError,
};
pub use summary::RunSummary;
pub use workspace::Workspace;
