//! The artifact types the built-in stages declare on their ports. The
//! engine knows none of them: to it they are open names, and only `any`
//! fits every port.

use mlcycle_pipeline::Artifact;

/// A table: named numeric and categorical columns, optional target
/// (Arrow IPC; see `table`).
pub const TABLE: Artifact = Artifact::named("table");
/// A fitted preprocessing step (`transform.json`).
pub const TRANSFORM: Artifact = Artifact::named("transform");
/// A fitted model with its input schema (`model.json`).
pub const MODEL: Artifact = Artifact::named("model");
/// Metrics as JSON.
pub const METRICS: Artifact = Artifact::named("metrics");
/// A plot (SVG and PNG).
pub const PLOT: Artifact = Artifact::named("plot");
/// A Markdown report.
pub const REPORT: Artifact = Artifact::named("report");
/// A deployable model bundle (a folder).
pub const BUNDLE: Artifact = Artifact::named("bundle");
