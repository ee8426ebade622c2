//! The Slurm runner: a stale stage becomes one job that runs
//! `mlcycle exec STAGE --run ID` on a node (see [`super::job`]), which
//! stores the outputs in the shared cache itself.

use std::path::Path;

use super::{run_job, JobSpec, SlurmOptions};
use crate::exec::runner::{Produced, RunFailure, Runner, StageJob};

/// Runs every stage as a Slurm job.
pub(crate) struct SlurmRunner<'a> {
    pub slurm: &'a SlurmOptions,
    /// The run's log folder (job specs and records live under it).
    pub log_dir: &'a Path,
}

impl Runner for SlurmRunner<'_> {
    fn run(&self, job: &StageJob<'_>) -> Result<Produced, RunFailure> {
        let id = &job.stage.id;
        let spec = JobSpec {
            stage: id.clone(),
            run_id: job.run_id.unwrap_or(0),
            key: job.key.to_string(),
            upstream: job.upstream.clone(),
            params: self.slurm.params.clone(),
            upstream_jobs: vec![],
            own: None,
            forced: true,
        };
        let resources = self
            .slurm
            .resources
            .get(id)
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        match run_job(self.slurm, self.log_dir, &spec, resources, job.interrupt) {
            Ok((entry, job_id)) => {
                job.reporter
                    .line(id, &format!("done as Slurm job {job_id}"), false);
                Ok(Produced::Stored { entry, job: job_id })
            }
            Err(f) => Err(RunFailure {
                error: f.error,
                stderr_tail: f.stderr_tail,
                log: f.log,
                job: f.job,
            }),
        }
    }

    fn local(&self) -> bool {
        false
    }
}
