//! What a run did: one [`StageResult`] per stage, and the table printed
//! after every run.

use std::fmt::Write;
use std::time::Duration;

use serde::Serialize;

use crate::fingerprint::StaleReason;

/// What happened to one stage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    /// Its recorded result still holds; nothing was done.
    Fresh,
    /// Its outputs were restored from the run-cache without running it.
    Restored,
    /// It ran and succeeded.
    Ran,
    /// It ran and failed.
    Failed {
        error: String,
        stderr_tail: Vec<String>,
        log: Option<String>,
    },
    /// It did not run because of another stage.
    Skipped { because: String },
}

impl Outcome {
    pub fn label(&self) -> &'static str {
        match self {
            Outcome::Fresh => "fresh",
            Outcome::Restored => "restored",
            Outcome::Ran => "ran",
            Outcome::Failed { .. } => "failed",
            Outcome::Skipped { .. } => "skipped",
        }
    }

    pub fn detail(&self) -> Option<String> {
        match self {
            Outcome::Failed { error, .. } => Some(error.clone()),
            Outcome::Skipped { because } => Some(because.clone()),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct StageResult {
    pub stage: String,
    #[serde(flatten)]
    pub outcome: Outcome,
    #[serde(serialize_with = "ser_ms", rename = "duration_ms")]
    pub duration: Duration,
    /// Why it ran (or was restored); empty when fresh.
    pub reasons: Vec<StaleReason>,
    /// The Slurm job that ran it, under `--executor slurm`.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub job: Option<String>,
    /// When it started, in milliseconds after the run started (for a
    /// timeline of what ran in parallel); unknown for a stage settled
    /// elsewhere (a detached Slurm run).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub start_ms: Option<u64>,
}

fn ser_ms<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64((d.as_secs_f64() * 1e6).round() / 1e3)
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Counts {
    pub ran: usize,
    pub fresh: usize,
    pub restored: usize,
    pub failed: usize,
    pub skipped: usize,
}

/// A whole run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RunSummary {
    pub run_id: Option<i64>,
    pub interrupted: bool,
    #[serde(serialize_with = "ser_ms", rename = "duration_ms")]
    pub duration: Duration,
    /// In the order the stages finished.
    pub stages: Vec<StageResult>,
}

impl RunSummary {
    pub fn counts(&self) -> Counts {
        let mut c = Counts::default();
        for s in &self.stages {
            match s.outcome {
                Outcome::Fresh => c.fresh += 1,
                Outcome::Restored => c.restored += 1,
                Outcome::Ran => c.ran += 1,
                Outcome::Failed { .. } => c.failed += 1,
                Outcome::Skipped { .. } => c.skipped += 1,
            }
        }
        c
    }

    pub fn succeeded(&self) -> bool {
        !self.interrupted
            && self
                .stages
                .iter()
                .all(|s| !matches!(s.outcome, Outcome::Failed { .. } | Outcome::Skipped { .. }))
    }

    pub fn status(&self) -> &'static str {
        if self.interrupted {
            "interrupted"
        } else if self.succeeded() {
            "succeeded"
        } else {
            "failed"
        }
    }

    /// The table shown after a run. Fresh stages are counted, not listed,
    /// unless `all` is set, so a no-op run of 10 000 stages stays one line.
    pub fn table(&self, all: bool) -> String {
        let rows: Vec<&StageResult> = self
            .stages
            .iter()
            .filter(|s| all || s.outcome != Outcome::Fresh)
            .collect();
        let mut out = String::new();
        if !rows.is_empty() {
            let w_stage = rows
                .iter()
                .map(|r| r.stage.chars().count())
                .max()
                .unwrap_or(5)
                .max(5);
            let jobs = rows.iter().any(|r| r.job.is_some());
            let w_job = rows
                .iter()
                .filter_map(|r| r.job.as_ref().map(|j| j.len()))
                .max()
                .unwrap_or(0)
                .max(3);
            if jobs {
                let _ = writeln!(
                    out,
                    "{:<w_stage$}  {:<8}  {:>9}  {:<w_job$}  REASON",
                    "STAGE", "OUTCOME", "TIME", "JOB"
                );
            } else {
                let _ = writeln!(
                    out,
                    "{:<w_stage$}  {:<8}  {:>9}  REASON",
                    "STAGE", "OUTCOME", "TIME"
                );
            }
            for r in rows {
                let reason = match &r.outcome {
                    Outcome::Failed { error, .. } => error.clone(),
                    Outcome::Skipped { because } => because.clone(),
                    _ => r
                        .reasons
                        .iter()
                        .map(|x| x.to_string())
                        .collect::<Vec<_>>()
                        .join("; "),
                };
                if jobs {
                    let _ = writeln!(
                        out,
                        "{:<w_stage$}  {:<8}  {:>9}  {:<w_job$}  {}",
                        r.stage,
                        r.outcome.label(),
                        fmt_duration(r.duration),
                        r.job.as_deref().unwrap_or("-"),
                        reason
                    );
                } else {
                    let _ = writeln!(
                        out,
                        "{:<w_stage$}  {:<8}  {:>9}  {}",
                        r.stage,
                        r.outcome.label(),
                        fmt_duration(r.duration),
                        reason
                    );
                }
            }
        }
        let c = self.counts();
        let mut parts = Vec::new();
        for (n, what) in [
            (c.ran, "ran"),
            (c.restored, "restored"),
            (c.fresh, "fresh"),
            (c.failed, "failed"),
            (c.skipped, "skipped"),
        ] {
            if n > 0 {
                parts.push(format!("{n} {what}"));
            }
        }
        if parts.is_empty() {
            parts.push("no stages".into());
        }
        let _ = writeln!(
            out,
            "{}{} in {}",
            if self.interrupted {
                "interrupted: "
            } else {
                ""
            },
            parts.join(", "),
            fmt_duration(self.duration)
        );
        out
    }
}

/// `412ms`, `3.20s`, `2m05s`.
pub fn fmt_duration(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1000.0;
    if ms < 1000.0 {
        format!("{ms:.0}ms")
    } else if ms < 60_000.0 {
        format!("{:.2}s", ms / 1000.0)
    } else {
        let s = d.as_secs();
        format!("{}m{:02}s", s / 60, s % 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_lists_non_fresh_and_counts_fresh() {
        let s = RunSummary {
            run_id: Some(1),
            interrupted: false,
            duration: Duration::from_millis(1500),
            stages: vec![
                StageResult {
                    stage: "prep".into(),
                    job: None,
                    start_ms: None,
                    outcome: Outcome::Fresh,
                    duration: Duration::ZERO,
                    reasons: vec![],
                },
                StageResult {
                    stage: "train".into(),
                    job: None,
                    start_ms: None,
                    outcome: Outcome::Ran,
                    duration: Duration::from_millis(1200),
                    reasons: vec![StaleReason::ParamChanged {
                        key: "train.lr".into(),
                        old: Some("0.01".into()),
                        new: Some("0.1".into()),
                    }],
                },
                StageResult {
                    stage: "eval".into(),
                    job: None,
                    start_ms: None,
                    outcome: Outcome::Skipped {
                        because: "upstream `train` failed".into(),
                    },
                    duration: Duration::ZERO,
                    reasons: vec![],
                },
            ],
        };
        insta::assert_snapshot!(s.table(false), @r"
        STAGE  OUTCOME        TIME  REASON
        train  ran           1.20s  param `train.lr` changed: 0.01 -> 0.1
        eval   skipped         0ms  upstream `train` failed
        1 ran, 1 fresh, 1 skipped in 1.50s
        ");
        assert!(!s.succeeded());
    }
}
