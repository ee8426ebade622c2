//! Freshness: for each stage, whether its recorded result still holds, can
//! be restored from the run-cache, or must be recomputed — and why.

use std::collections::BTreeMap;
use std::io;
use std::path::Path;
use std::sync::Mutex;

use serde::Serialize;

use crate::config::{Pipeline, Source, StageDef};
use crate::fingerprint::{FingerprintRef, StageFingerprint, StaleReason, FINGERPRINT_SCHEMA};
use crate::graph::StageGraph;
use crate::hash::{Digest, Memo, Stamp};
use crate::workspace::{LockEntry, LockFile, Workspace};

/// What to do with a stage.
#[derive(Debug, Clone)]
pub enum Verdict {
    Fresh,
    /// Outputs for this exact fingerprint are in the run-cache.
    Restore(LockEntry),
    Run,
}

#[derive(Debug, Clone)]
pub struct Assessment {
    /// Built only when the stage is not fresh (it is then recorded).
    pub fingerprint: Option<StageFingerprint>,
    pub key: Digest,
    pub verdict: Verdict,
    pub reasons: Vec<StaleReason>,
}

/// The memo, shared by worker threads.
#[derive(Debug, Default)]
pub struct SharedMemo(pub Mutex<Memo>);

impl SharedMemo {
    pub fn new(m: Memo) -> Self {
        Self(Mutex::new(m))
    }

    pub fn into_inner(self) -> Memo {
        self.0.into_inner().unwrap_or_else(|e| e.into_inner())
    }

    /// The content hash of a workspace path (file or folder).
    pub fn hash_path(&self, root: &Path, rel: &str) -> io::Result<(Digest, u64, bool)> {
        let abs = root.join(rel);
        let meta = std::fs::metadata(&abs)?;
        if meta.is_dir() {
            // The workspace root as a dep: mlcycle's own state is not part
            // of it (it changes with every run).
            let own_state = |r: &str| {
                rel == "."
                    && (r == "mlcycle.lock" || r == ".mlcycle/" || r.starts_with(".mlcycle/"))
            };
            let (entries, total) = crate::cache::folder_manifest(&abs, own_state, |r, a, m| {
                self.hash_file(&format!("{rel}/{r}"), a, m.clone())
            })?;
            let manifest = serde_json::to_vec(&entries).map_err(io::Error::other)?;
            Ok((crate::hash::hash_bytes(&manifest), total, true))
        } else {
            let size = meta.len();
            Ok((self.hash_file(rel, &abs, meta)?, size, false))
        }
    }

    fn hash_file(&self, key: &str, abs: &Path, meta: std::fs::Metadata) -> io::Result<Digest> {
        crate::hash::regular_file(abs, &meta)?;
        let stamp = Stamp::of(&meta);
        {
            let memo = self.0.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(h) = memo.lookup(key, &stamp) {
                return Ok(h);
            }
        }
        // Hash without holding the lock, so threads hash in parallel.
        let h = crate::hash::hash_file(abs)?;
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .record(key, stamp, h.clone());
        Ok(h)
    }

    pub fn record(&self, key: &str, stamp: Stamp, hash: Digest) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .record(key, stamp, hash);
    }
}

/// An input that vanished between validation and use.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[error("cannot read input `{path}`: {source}")]
#[diagnostic(code(mlcycle::plan::input_error))]
pub struct InputError {
    pub path: String,
    #[source]
    pub source: io::Error,
}

/// A stage with the content hashes of its inputs: everything its
/// fingerprint needs, without copying the stage's definition.
pub struct StageInputs<'a> {
    pub stage: &'a StageDef,
    pub inputs: BTreeMap<String, Digest>,
}

impl StageInputs<'_> {
    pub fn key(&self) -> Digest {
        let mut outputs: Vec<&str> = self.stage.outputs.iter().map(|o| o.path.as_str()).collect();
        outputs.sort_unstable();
        FingerprintRef {
            schema: FINGERPRINT_SCHEMA,
            stage: &self.stage.id,
            kind: &self.stage.kind,
            version: self.stage.version,
            config: &self.stage.config,
            params: &self.stage.params,
            inputs: &self.inputs,
            outputs,
        }
        .key()
    }

    pub fn to_fingerprint(&self) -> StageFingerprint {
        let s = self.stage;
        let mut outputs: Vec<String> = s.outputs.iter().map(|o| o.path.clone()).collect();
        outputs.sort_unstable();
        StageFingerprint {
            schema: FINGERPRINT_SCHEMA,
            stage: s.id.clone(),
            kind: s.kind.clone(),
            version: s.version,
            config: s.config.clone(),
            params: s.params.clone(),
            inputs: self.inputs.clone(),
            outputs,
        }
    }
}

/// Hashes the inputs of stage `s`. `upstream` gives the content hash of
/// another stage's output (None when that stage has no result yet).
pub fn fingerprint<'a>(
    ws: &Workspace,
    s: &'a StageDef,
    memo: &SharedMemo,
    upstream: &dyn Fn(usize, usize) -> Option<Digest>,
) -> Result<StageInputs<'a>, InputError> {
    let mut inputs = BTreeMap::new();
    for inp in &s.inputs {
        let h = match inp.source {
            Source::Stage { stage, output } => upstream(stage, output).unwrap_or_default(),
            Source::File(ref f) => {
                let root = if Path::new(f).is_absolute() {
                    Path::new("/")
                } else {
                    ws.root.as_path()
                };
                match memo.hash_path(root, f) {
                    Ok((h, ..)) => h,
                    // A folder that other stages fill does not exist before
                    // they first run: no content yet, as for an upstream
                    // output without a result.
                    Err(e)
                        if e.kind() == std::io::ErrorKind::NotFound
                            && !inp.written_by.is_empty() =>
                    {
                        Digest::default()
                    }
                    Err(source) => {
                        return Err(InputError {
                            path: f.clone(),
                            source,
                        })
                    }
                }
            }
        };
        inputs.insert(inp.key.clone(), h);
    }
    Ok(StageInputs { stage: s, inputs })
}

/// Decides what to do with a stage given its fingerprint and its record.
pub fn assess(
    ws: &Workspace,
    p: &Pipeline,
    s: &StageDef,
    inputs: StageInputs<'_>,
    recorded: Option<&LockEntry>,
    memo: &SharedMemo,
    force: bool,
) -> Assessment {
    let key = inputs.key();
    let upstream_of = |input_key: &str| -> Option<String> {
        s.inputs
            .iter()
            .find(|i| i.key == input_key)
            .and_then(|i| match i.source {
                Source::Stage { stage, .. } => Some(p.stages[stage].id.clone()),
                Source::File(_) => None,
            })
    };
    let mut reasons = Vec::new();
    let outputs_ok = match recorded {
        Some(rec) if rec.unfinished => {
            reasons.push(StaleReason::Unfinished);
            if rec.key != key {
                if let Some(old) = rec.fingerprint() {
                    reasons.extend(
                        inputs
                            .to_fingerprint()
                            .diff(&old, &upstream_of)
                            .into_iter()
                            .filter(|r| *r != StaleReason::FormatChanged),
                    );
                }
            }
            false
        }
        Some(rec) if rec.key == key => {
            for (path, out) in &rec.outs {
                match memo.hash_path(&ws.root, path) {
                    Err(_) => reasons.push(StaleReason::OutputMissing { path: path.clone() }),
                    Ok((h, _, _)) if h != out.hash => {
                        reasons.push(StaleReason::OutputModified { path: path.clone() })
                    }
                    Ok(_) => {}
                }
            }
            reasons.is_empty()
        }
        Some(rec) => {
            reasons = match rec.fingerprint() {
                Some(old) => inputs.to_fingerprint().diff(&old, &upstream_of),
                None => vec![StaleReason::FormatChanged],
            };
            false
        }
        None => {
            reasons.push(StaleReason::FirstRun);
            false
        }
    };
    if force {
        return Assessment {
            fingerprint: Some(inputs.to_fingerprint()),
            key,
            verdict: Verdict::Run,
            reasons: vec![StaleReason::Forced],
        };
    }
    let mut reasons = match flagged(s, &inputs, &key, recorded, outputs_ok, reasons) {
        Ok(done) => return done,
        Err(reasons) => reasons,
    };
    if outputs_ok {
        return Assessment {
            fingerprint: None,
            key,
            verdict: Verdict::Fresh,
            reasons,
        };
    }
    let cached = match recorded {
        Some(rec) if rec.key == key && !rec.unfinished => Some(rec.clone()),
        _ => crate::db::lookup_run_cache(&ws.db_path(), &key),
    };
    let verdict = match cached {
        Some(entry) if entry.outs.values().all(|o| ws.cache.has_output(o)) => {
            Verdict::Restore(entry)
        }
        _ => Verdict::Run,
    };
    // Restored without a record: not a "first run".
    if recorded.is_none() && matches!(verdict, Verdict::Restore(_)) {
        for r in &mut reasons {
            if *r == StaleReason::FirstRun {
                *r = StaleReason::NotRecorded;
            }
        }
    }
    Assessment {
        fingerprint: Some(inputs.to_fingerprint()),
        key,
        verdict,
        reasons,
    }
}

/// What `frozen:` and `always_changed:` decide, when they decide (else the
/// reasons back, for the normal verdict).
fn flagged(
    s: &StageDef,
    inputs: &StageInputs<'_>,
    key: &Digest,
    recorded: Option<&LockEntry>,
    outputs_ok: bool,
    reasons: Vec<StaleReason>,
) -> Result<Assessment, Vec<StaleReason>> {
    if s.frozen && recorded.is_some_and(|r| !r.unfinished) && !(outputs_ok && reasons.is_empty()) {
        // Kept as it is: its recorded outputs (and their hashes, which its
        // dependents read) stay, even when they changed on disk.
        return Ok(Assessment {
            fingerprint: None,
            key: key.clone(),
            verdict: Verdict::Fresh,
            reasons: vec![StaleReason::Frozen { because: reasons }],
        });
    }
    if s.always_changed {
        return Ok(Assessment {
            fingerprint: Some(inputs.to_fingerprint()),
            key: key.clone(),
            verdict: Verdict::Run,
            reasons: vec![StaleReason::AlwaysChanged],
        });
    }
    Err(reasons)
}

/// The content hash that output `output` of stage `stage` presents
/// downstream, according to the lock records `records` (stage id → record).
/// Every fingerprint of a stage's inputs goes through this one lookup.
pub fn recorded_output(
    p: &Pipeline,
    records: &BTreeMap<String, LockEntry>,
    stage: usize,
    output: usize,
) -> Option<Digest> {
    let path = &p.stages[stage].outputs[output].path;
    records
        .get(&p.stages[stage].id)
        .and_then(|e| e.outs.get(path))
        .map(|o| o.hash.clone())
}

/// One stage's line in `mlcycle status`.
#[derive(Debug, Clone, Serialize)]
pub struct StageStatus {
    pub stage: String,
    /// `fresh`, `frozen` (kept although it would run), `restorable`
    /// (outputs in the run-cache) or `stale`.
    pub state: &'static str,
    pub reasons: Vec<StaleReason>,
}

/// What a run would do, without running or writing anything but the memo.
pub fn status(
    ws: &Workspace,
    p: &Pipeline,
    graph: &StageGraph,
    lock: &LockFile,
    memo: &SharedMemo,
    selected: &[bool],
) -> Result<Vec<StageStatus>, InputError> {
    use rayon::prelude::*;
    // Each stage is judged against the outputs its upstream stages have on
    // record, so every stage can be assessed independently, in parallel.
    let up = |stage: usize, output: usize| recorded_output(p, &lock.stages, stage, output);
    let assessed: Vec<(usize, Assessment)> = graph
        .order()
        .par_iter()
        .filter(|&&i| selected[i])
        .map(|&i| {
            let s = &p.stages[i];
            let fp = fingerprint(ws, s, memo, &up)?;
            Ok((i, assess(ws, p, s, fp, lock.stages.get(&s.id), memo, false)))
        })
        .collect::<Result<_, InputError>>()?;
    // Then, in order, a stage downstream of a stale one may change too.
    let mut stale = vec![false; p.stages.len()];
    let mut result = Vec::with_capacity(assessed.len());
    for (i, a) in assessed {
        let mut reasons = a.reasons;
        let frozen = matches!(reasons.first(), Some(StaleReason::Frozen { .. }));
        let mut state = match a.verdict {
            Verdict::Fresh if frozen => "frozen",
            Verdict::Fresh => "fresh",
            Verdict::Restore(_) => "restorable",
            Verdict::Run => "stale",
        };
        let mut ups: Vec<&str> = graph
            .upstream(i)
            .filter(|&u| stale[u])
            .map(|u| p.stages[u].id.as_str())
            .collect();
        if !ups.is_empty() {
            ups.sort();
            ups.dedup();
            for u in ups {
                reasons.push(StaleReason::UpstreamStale {
                    upstream: u.to_string(),
                });
            }
            if state == "fresh" {
                state = "stale";
            }
        }
        if state == "fresh" {
            reasons.clear();
        } else if state != "frozen" {
            stale[i] = true;
        }
        result.push(StageStatus {
            stage: p.stages[i].id.clone(),
            state,
            reasons,
        });
    }
    Ok(result)
}
