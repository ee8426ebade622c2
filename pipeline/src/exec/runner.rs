//! What runs a stale stage: one [`Runner`] per backend — in-process
//! built-ins ([`super::builtin`]), commands as child processes
//! ([`super::command`]) and Slurm jobs ([`super::slurm::driver`]). The
//! scheduler decides what runs; a runner only produces the outputs.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use super::interrupt::Interrupt;
use super::scheduler::Reporter;
use crate::config::StageDef;
use crate::workspace::{LockEntry, Workspace};

/// A failure: the message and the last lines the stage wrote to stderr.
pub(crate) type Failure = (String, Vec<String>);

/// Lines of stderr kept for the failure report.
pub(crate) const TAIL_LINES: usize = 20;

/// What a runner needs to run one stage.
pub(crate) struct StageJob<'a> {
    pub ws: &'a Workspace,
    pub stage: &'a StageDef,
    /// The stage's log file (created on its first line).
    pub log_path: &'a Path,
    pub reporter: &'a dyn Reporter,
    pub interrupt: &'a Interrupt,
    pub run_id: Option<i64>,
    /// The fingerprint key the scheduler computed (a Slurm job checks it).
    pub key: &'a str,
    /// Lock records of the upstream stages (for a Slurm job's spec).
    pub upstream: &'a BTreeMap<String, LockEntry>,
    /// The cores the stage may use here (its share of the run's CPU
    /// budget): an in-process stage gets a thread pool of this size.
    pub cpus: usize,
}

/// What a runner left behind.
pub(crate) enum Produced {
    /// The outputs are in the workspace; the scheduler stores them.
    InPlace,
    /// The outputs were stored elsewhere (on a Slurm node): their record,
    /// and the Slurm job id.
    Stored { entry: LockEntry, job: String },
}

/// A runner's failure: what went wrong, the tail of stderr, the log to
/// read, and the Slurm job id when there was one.
pub(crate) struct RunFailure {
    pub error: String,
    pub stderr_tail: Vec<String>,
    pub log: Option<String>,
    pub job: Option<String>,
}

/// The result of a runner that leaves its outputs in place, from its
/// `(message, stderr tail)` failure.
pub(crate) fn in_place(r: Result<(), Failure>) -> Result<Produced, RunFailure> {
    r.map(|()| Produced::InPlace)
        .map_err(|(error, stderr_tail)| RunFailure {
            error,
            stderr_tail,
            log: None,
            job: None,
        })
}

/// Produces a stale stage's outputs.
pub(crate) trait Runner: Sync {
    /// Runs `job.stage`. The scheduler has cleared its old outputs (for
    /// local runners) and reported the start.
    fn run(&self, job: &StageJob<'_>) -> Result<Produced, RunFailure>;
    /// Whether the scheduler clears and later stores the outputs here
    /// (false for runners that do both on another machine).
    fn local(&self) -> bool {
        true
    }
}

/// A stage's log file, created on its first line: a quiet stage leaves none.
pub(crate) struct StageLog {
    path: PathBuf,
    file: Option<File>,
}

impl StageLog {
    pub(crate) fn new(path: &Path) -> Self {
        Self {
            path: path.to_path_buf(),
            file: None,
        }
    }

    pub(crate) fn line(&mut self, prefix: &str, line: &str) {
        if self.file.is_none() {
            if let Some(parent) = self.path.parent() {
                let _ = fs::create_dir_all(parent);
            }
            match File::create(&self.path) {
                Ok(f) => self.file = Some(f),
                Err(e) => {
                    tracing::warn!(path = %self.path.display(), error = %e, "Cannot create the stage log.");
                    return;
                }
            }
        }
        if let Some(f) = &mut self.file {
            let _ = writeln!(f, "{prefix}{line}");
        }
    }
}
