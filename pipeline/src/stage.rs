//! The `Stage` trait: what a built-in or custom Rust stage implements.
//!
//! A kind is written as a [`crate::StageKind`] (see [`crate::spec`]) and
//! registered under its name (`util.import`). For each `uses:` stage in a
//! pipeline, the engine checks the stage's `with:` mapping against the kind
//! and builds a [`Stage`], whose [`Stage::params`] (defaults filled in) go
//! into the stage's fingerprint. At run time the engine calls [`Stage::run`]
//! with a [`RunContext`]: input paths in, output paths to write.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::Value;

/// An input or output port of a stage kind.
#[derive(Debug, Clone, Copy)]
pub struct PortSpec {
    /// Port name, used in `inputs:` and in `stage.port` references.
    pub name: &'static str,
    /// File name the artifact is written to under `artifacts/<stage>/`.
    /// For inputs this is unused.
    pub file: &'static str,
    /// Whether an input port must be wired.
    pub required: bool,
    /// One line for `mlcycle stages KIND`.
    pub doc: &'static str,
    /// What the port carries. Wiring an output to an input of another
    /// artifact type is a validation error; [`Artifact::ANY`] matches all.
    pub artifact: Artifact,
    /// An input that gathers several artifacts (every instance of a
    /// `matrix:` stage, `train@*.model`, or a list of references): the
    /// stage reads them with [`RunContext::gathered`]. Made by
    /// [`PortSpec::gather`].
    pub many: bool,
}

impl PortSpec {
    /// An input port.
    pub const fn input(
        name: &'static str,
        artifact: Artifact,
        required: bool,
        doc: &'static str,
    ) -> Self {
        PortSpec {
            name,
            file: "",
            required,
            doc,
            artifact,
            many: false,
        }
    }

    /// An input port that takes several artifacts of one type, in the
    /// order written (`inputs: {metrics: evaluate@*.metrics}`, or a list
    /// of references). A required one needs at least one artifact.
    pub const fn gather(
        name: &'static str,
        artifact: Artifact,
        required: bool,
        doc: &'static str,
    ) -> Self {
        let mut p = Self::input(name, artifact, required, doc);
        p.many = true;
        p
    }

    /// An output port written to `file` under the stage's artifact folder.
    pub const fn output(
        name: &'static str,
        file: &'static str,
        artifact: Artifact,
        doc: &'static str,
    ) -> Self {
        PortSpec {
            name,
            file,
            required: true,
            doc,
            artifact,
            many: false,
        }
    }
}

/// The type of artifact a port carries: an open name that a stage kind
/// declares (the built-in stages declare `table`, `model`, `metrics`, …; a
/// custom kind may declare its own). The engine only checks that an output
/// feeds an input of the same name; [`Artifact::ANY`] fits everything.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Artifact(&'static str);

impl Artifact {
    /// Any file or folder (command stages, `util.*`).
    pub const ANY: Artifact = Artifact("any");

    /// The artifact type called `name` (lower case, by convention).
    pub const fn named(name: &'static str) -> Self {
        Artifact(name)
    }

    /// The name shown to users.
    pub fn as_str(self) -> &'static str {
        self.0
    }

    /// Whether an output of type `self` may feed an input of type `input`.
    pub fn fits(self, input: Artifact) -> bool {
        self == input || self == Artifact::ANY || input == Artifact::ANY
    }
}

/// Why a stage failed at run time: what failed (`message`), what to do
/// (`help`), and the error that caused it (`source`), kept whole for its
/// chain rather than flattened into the message.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct StageError {
    pub message: String,
    pub help: Option<String>,
    #[source]
    pub source: Option<Arc<dyn std::error::Error + Send + Sync + 'static>>,
}

impl StageError {
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            help: None,
            source: None,
        }
    }

    /// A failure caused by `source`: `message` says what failed
    /// ("cannot read `train.csv`"), the source why. Shown as
    /// `message: source`.
    pub fn caused_by(
        message: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Self {
            message: message.into(),
            help: None,
            source: Some(Arc::new(source)),
        }
    }

    /// A failure that is `source` itself: its text is the message, and it
    /// is kept as the source (not flattened into a string).
    pub fn from_error(source: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self {
            message: source.to_string(),
            help: None,
            source: Some(Arc::new(source)),
        }
    }

    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// The message followed by each cause in the chain (`a: b: c`), leaving
    /// out a cause whose text the message already holds.
    pub fn report(&self) -> String {
        let mut out = self.message.clone();
        let mut next = std::error::Error::source(self);
        while let Some(e) = next {
            let text = e.to_string();
            if !out.contains(&text) {
                out.push_str(": ");
                out.push_str(&text);
            }
            next = e.source();
        }
        out
    }
}

impl From<std::io::Error> for StageError {
    fn from(e: std::io::Error) -> Self {
        Self {
            message: e.to_string(),
            help: None,
            source: Some(Arc::new(e)),
        }
    }
}

/// What a running stage sees.
pub struct RunContext<'a> {
    /// The stage's id in the pipeline.
    pub stage: &'a str,
    /// The workspace root; relative paths in params are relative to it.
    pub workspace: &'a Path,
    /// Input port → file path (already verified against the cache).
    pub inputs: BTreeMap<String, PathBuf>,
    /// Gathering input port ([`PortSpec::gather`]) → its artifacts, in
    /// the order the pipeline lists them.
    pub gathered: BTreeMap<String, Vec<Gathered>>,
    /// Output port → file path to write. When the engine runs the stage
    /// this is a fresh folder of its own (under `.mlcycle/cache/tmp/`, with
    /// the output's file name); the engine moves what the stage wrote into
    /// the workspace once `run` succeeds, beneath the workspace root.
    pub outputs: BTreeMap<String, PathBuf>,
    /// Writes a line to the stage's log (shown prefixed by the stage name).
    pub log: &'a (dyn Fn(&str) + Sync),
    /// The run's id in the workspace's run history, when it has one.
    pub run_id: Option<i64>,
    /// Where the stage's step-wise metrics go (JSON lines, as a `run:`
    /// command's `MLCYCLE_STEP_METRICS`): `mlcycle exp steps` and the
    /// experiments view read them. `None` outside a workspace run.
    pub step_metrics: Option<PathBuf>,
    /// Whether the run was interrupted (Ctrl-C): a long stage checks it
    /// between steps through [`RunContext::check_interrupted`] and stops.
    pub interrupted: &'a (dyn Fn() -> bool + Sync),
}

impl RunContext<'_> {
    /// `Err` once the run is interrupted, so that a long fit stops within
    /// a step (the stage fails, and is not recorded as fresh).
    ///
    /// # Errors
    /// The run was interrupted.
    pub fn check_interrupted(&self) -> Result<(), StageError> {
        if (self.interrupted)() {
            Err(StageError::new("stopped: the run was interrupted"))
        } else {
            Ok(())
        }
    }

    /// Appends step-wise metrics, one JSON object per step (`{"step": 1,
    /// "loss": 0.5}`), to [`RunContext::step_metrics`]; nothing when there
    /// is no such file.
    ///
    /// # Errors
    /// The file cannot be written.
    pub fn log_steps(&self, steps: &[serde_json::Value]) -> Result<(), StageError> {
        use std::io::Write;
        let Some(path) = &self.step_metrics else {
            return Ok(());
        };
        let mut text = String::new();
        for s in steps {
            text.push_str(&s.to_string());
            text.push('\n');
        }
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .and_then(|mut f| f.write_all(text.as_bytes()))
            .map_err(|e| StageError::new(format!("cannot write the step metrics: {e}")))
    }
    /// The path of an input port the factory declared.
    pub fn input(&self, port: &str) -> Result<&Path, StageError> {
        self.inputs
            .get(port)
            .map(PathBuf::as_path)
            .ok_or_else(|| StageError::new(format!("input port `{port}` is not wired")))
    }
    /// The artifacts of a gathering input port ([`PortSpec::gather`]), in
    /// order; empty when the port is not wired.
    pub fn gathered(&self, port: &str) -> &[Gathered] {
        self.gathered.get(port).map(Vec::as_slice).unwrap_or(&[])
    }
    /// The path to write an output port to.
    pub fn output(&self, port: &str) -> Result<&Path, StageError> {
        self.outputs
            .get(port)
            .map(PathBuf::as_path)
            .ok_or_else(|| StageError::new(format!("output port `{port}` is not declared")))
    }
}

/// One artifact of a gathering input port.
#[derive(Debug, Clone)]
pub struct Gathered {
    /// Where it comes from: the id of the stage that wrote it
    /// (`train@ols-0`), or its path for a file of the workspace.
    pub from: String,
    /// The file to read (already verified against the cache).
    pub path: PathBuf,
}

/// What `mlcycle validate` can know of an artifact before it exists (a
/// table's columns and target, read from its source file's header), handed
/// from the stage that writes it to the stages that read it. The engine
/// does not look inside: a kind puts in a type of its own and the kinds
/// that read it downcast with [`Facts::get`].
#[derive(Clone)]
pub struct Facts(Arc<dyn std::any::Any + Send + Sync>);

impl Facts {
    pub fn new<T: std::any::Any + Send + Sync>(facts: T) -> Self {
        Facts(Arc::new(facts))
    }
    /// The facts, when they are a `T`.
    pub fn get<T: std::any::Any>(&self) -> Option<&T> {
        self.0.downcast_ref()
    }
}

impl fmt::Debug for Facts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Facts(..)")
    }
}

/// What [`crate::StageKind::infer`] sees.
pub struct InferContext<'a> {
    /// The stage's id in the pipeline.
    pub stage: &'a str,
    /// The workspace root.
    pub workspace: &'a Path,
    /// Input port → what the stage upstream said its output holds. A port
    /// is absent when nothing is known (a file, a `run:` stage, a kind
    /// that infers nothing).
    pub inputs: BTreeMap<String, Facts>,
    /// Gathering input port ([`PortSpec::gather`]) → how many artifacts
    /// it takes.
    pub gathered: BTreeMap<String, usize>,
}

impl InferContext<'_> {
    /// The facts an input brings, when they are known and a `T`.
    pub fn input<T: std::any::Any>(&self, port: &str) -> Option<&T> {
        self.inputs.get(port).and_then(Facts::get)
    }
}

/// What [`crate::StageKind::infer`] found: facts per output port, and
/// problems (at a `with:` value, or at an input with
/// [`crate::ParamError::at_input`]).
#[derive(Debug, Default)]
pub struct Inferred {
    pub outputs: BTreeMap<String, Facts>,
    pub problems: Vec<crate::spec::ParamError>,
}

impl Inferred {
    /// Facts for output `port`.
    pub fn output(mut self, port: &str, facts: Facts) -> Self {
        self.outputs.insert(port.to_string(), facts);
        self
    }
    /// Adds a problem.
    pub fn problem(mut self, e: crate::spec::ParamError) -> Self {
        self.problems.push(e);
        self
    }
}

/// A configured stage, ready to run: what [`crate::StageFactory::build`]
/// returns for a `uses:` stage.
pub trait Stage: Send + Sync + fmt::Debug {
    /// The checked params, defaults filled in. They are part of the
    /// fingerprint: any change reruns the stage.
    fn params(&self) -> Value;
    /// Files in the workspace that the stage reads besides its input ports
    /// (e.g. the CSV that an import stage loads). Their content is hashed into
    /// the fingerprint.
    fn file_deps(&self) -> Vec<String> {
        Vec::new()
    }
    /// Problems with the files the params name, found by a cheap look (see
    /// [`crate::StageKind::check_files`]); `mlcycle validate` reports them.
    fn check_files(&self, _workspace: &Path) -> Vec<crate::spec::ParamError> {
        Vec::new()
    }
    /// What the outputs will hold, given what the inputs hold (see
    /// [`crate::StageKind::infer`]).
    fn infer(&self, _cx: &InferContext<'_>) -> Inferred {
        Inferred::default()
    }
    /// Does the work: reads `ctx.inputs`, writes every `ctx.outputs` path.
    fn run(&self, ctx: &RunContext<'_>) -> Result<(), StageError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stage_errors_keep_their_source_and_report_the_chain_once() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "no such file");
        let e = StageError::caused_by("cannot read `train.csv`", io);
        assert_eq!(e.report(), "cannot read `train.csv`: no such file");
        let source = std::error::Error::source(&e).expect("the cause is kept");
        assert_eq!(source.to_string(), "no such file");
        // An io::Error converted with `?` keeps itself as the source, and
        // its text is not repeated.
        let e: StageError = std::io::Error::other("disk full").into();
        assert_eq!(e.report(), "disk full");
        assert!(std::error::Error::source(&e).is_some());
    }
}
