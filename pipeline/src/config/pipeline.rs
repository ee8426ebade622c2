//! The validated pipeline: its stages, their inputs, outputs and action.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use serde_json::Value;

use super::resources;
use crate::stage::Stage;

/// A validated pipeline.
#[derive(Debug)]
pub struct Pipeline {
    pub name: String,
    /// The workspace root (the folder of `mlcycle.yaml`), canonicalized.
    pub root: PathBuf,
    /// The pipeline file.
    pub file: PathBuf,
    /// All params, `params_file` and `-p` overrides applied.
    pub params: Value,
    /// Stages in declaration order.
    pub stages: Vec<StageDef>,
    /// `cache_dir:` — the content-addressed cache, when not in
    /// `.mlcycle/cache` (absolute, or resolved against the workspace).
    pub cache_dir: Option<PathBuf>,
    /// `executor:` — `local` (default) or `slurm`.
    pub executor: Option<String>,
    /// Per stage id: its `resources:` over the pipeline-wide defaults (only
    /// stages that ask for something).
    pub resources: std::collections::BTreeMap<String, resources::Resources>,
    /// Deps on source files that do not exist (loaded without
    /// `strict_sources`): the stages that read them are blocked. One
    /// message per dep.
    pub missing_sources: Vec<String>,
}

impl Pipeline {
    pub fn stage_index(&self, id: &str) -> Option<usize> {
        self.stages.iter().position(|s| s.id == id)
    }

    /// The stages a name given on the command line selects: the stage of
    /// that name, or every instance of a `matrix:` or `foreach:` stage
    /// declared under it (`train` → `train@0.1-ols`, …).
    pub fn named(&self, name: &str) -> Vec<usize> {
        if let Some(i) = self.stage_index(name) {
            return vec![i];
        }
        self.stages
            .iter()
            .enumerate()
            .filter(|(_, s)| {
                s.id.strip_prefix(name)
                    .is_some_and(|rest| rest.starts_with('@'))
            })
            .map(|(i, _)| i)
            .collect()
    }
}

/// One validated stage.
#[derive(Debug)]
pub struct StageDef {
    pub id: String,
    /// `command` for `run:` stages, else the `uses:` kind.
    pub kind: String,
    /// Implementation version (0 for `run:` stages).
    pub version: u32,
    pub inputs: Vec<Input>,
    pub outputs: Vec<Output>,
    /// Param keys the stage reads, with their values.
    pub params: BTreeMap<String, Value>,
    /// The part of the definition that is fingerprinted as "configuration":
    /// the command template and env for `run:` stages, the checked `with:`
    /// params for built-ins.
    pub config: BTreeMap<String, Value>,
    pub action: Action,
    /// `always_changed: true`: never fresh, never restored (a stage that
    /// polls an API, reads the clock).
    pub always_changed: bool,
    /// `frozen: true`: never rerun once it has a result, even when stale.
    pub frozen: bool,
}

/// Where an input comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A file or folder in the workspace (or outside it, read-only), not
    /// produced by any stage.
    File(String),
    /// Output `output` of stage `stage` (indices into `Pipeline::stages`).
    Stage { stage: usize, output: usize },
}

#[derive(Debug, Clone)]
pub struct Input {
    /// Unique within the stage: the port name for built-ins, the dep as
    /// written (path or `stage.port`) for `run:` stages and for each
    /// artifact of a gathering port.
    pub key: String,
    /// Name for `${inputs.NAME}`.
    pub name: String,
    /// The path the stage reads, relative to the workspace.
    pub path: String,
    pub source: Source,
    /// For a path in the workspace (`Source::File`): the other stages that
    /// write inside it (a folder dep holding their outputs). The stage runs
    /// after them, and reads the folder as they leave it.
    pub written_by: Vec<usize>,
    /// For one of the artifacts of a gathering port ([`PortSpec::gather`],
    /// whose name `name` is): the stage id it comes from, or its path.
    ///
    /// [`PortSpec::gather`]: crate::stage::PortSpec::gather
    pub gathered: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Output {
    /// Port name (`stage.NAME` refers to it).
    pub name: String,
    /// Path relative to the workspace, `/`-separated.
    pub path: String,
    /// `persist: true`: left in place before the stage runs (the stage
    /// updates it), instead of being cleared.
    pub persist: bool,
    /// `cache: false`: recorded by hash but not stored in the cache, so the
    /// stage is never restored, only rerun.
    pub cache: bool,
    /// `metrics: true` (or a built-in's `metrics` port): a JSON or YAML
    /// mapping of metrics, recorded with each experiment.
    pub metrics: bool,
    /// `plots: true`: series (CSV with a header, or a JSON list of
    /// objects) that `mlcycle plots diff` draws across experiments and
    /// commits.
    pub plots: bool,
}

impl Output {
    /// An output with the default flags (cleared before a run, cached).
    pub fn new(name: String, path: String) -> Self {
        Self {
            name,
            path,
            persist: false,
            cache: true,
            metrics: false,
            plots: false,
        }
    }
}

/// How a stage runs.
#[derive(Clone)]
pub enum Action {
    /// A child process: one command line run by `shell` (which stops at
    /// the first failing command), or a plain argv when `shell` is `None`.
    Command {
        argv: Vec<String>,
        shell: Option<Shell>,
        env: Vec<(String, String)>,
    },
    /// An in-process stage built by its factory.
    Builtin(Arc<dyn Stage>),
}

/// The shell that runs a `run:` command line (`shell:` on the stage).
///
/// Either way the script stops at its first failing command (`-e`), as CI
/// systems and Make do: a failing middle line fails the stage instead of
/// being hidden by a later line that succeeds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shell {
    /// `sh -e -c LINE`, the default.
    Sh,
    /// `bash -e -o pipefail -c LINE`: a pipeline also fails when a command
    /// before its last one fails.
    Bash,
}

impl Shell {
    /// The name written in `shell:`.
    pub fn name(self) -> &'static str {
        match self {
            Shell::Sh => "sh",
            Shell::Bash => "bash",
        }
    }

    /// The program and the options that come before the script.
    pub fn argv(self) -> (&'static str, &'static [&'static str]) {
        match self {
            Shell::Sh => ("sh", &["-e"]),
            Shell::Bash => ("bash", &["-e", "-o", "pipefail"]),
        }
    }
}

impl fmt::Debug for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::Command { argv, shell, .. } => f
                .debug_struct("Command")
                .field("argv", argv)
                .field("shell", shell)
                .finish(),
            Action::Builtin(s) => f.debug_tuple("Builtin").field(s).finish(),
        }
    }
}

/// The environment variable suffix a dep or output name gets
/// (`MLCYCLE_IN_<NAME>`): letters and digits upper-cased, anything else `_`.
pub fn env_var_name(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect()
}
