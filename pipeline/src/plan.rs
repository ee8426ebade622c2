//! Freshness: for each stage, whether its recorded result still holds, can
//! be restored from the run-cache, or must be recomputed — and why.

use std::collections::BTreeMap;
use std::io;
use std::path::Path;
use std::sync::Mutex;

use serde::Serialize;

use crate::cache::ManifestEntry;
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
    /// Neither run nor restored, and its dependents cannot run: a frozen
    /// stage whose recorded outputs are gone from disk and from the cache
    /// (the reasons say which).
    Blocked,
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

    /// The manifest of folder `rel` (its files' hashes through the memo)
    /// and its total size. Its JSON hashes to the folder's content hash.
    pub fn manifest(&self, root: &Path, rel: &str) -> io::Result<(Vec<ManifestEntry>, u64)> {
        // The workspace root as a dep: mlcycle's own state is not part of
        // it (it changes with every run).
        let own_state = |r: &str| {
            rel == "." && (r == "mlcycle.lock" || r == ".mlcycle/" || r.starts_with(".mlcycle/"))
        };
        crate::cache::folder_manifest(&root.join(rel), own_state, |r, a, m| {
            self.hash_file(&format!("{rel}/{r}"), a, m.clone())
        })
    }

    /// The content hash of a workspace path (file or folder).
    pub fn hash_path(&self, root: &Path, rel: &str) -> io::Result<(Digest, u64, bool)> {
        let abs = root.join(rel);
        let meta = std::fs::metadata(&abs)?;
        self.hash_with(root, rel, &abs, meta)
    }

    /// [`SharedMemo::hash_path`] for an output, whose own name is never
    /// followed: a symlink there (left by the user) is an error, not the
    /// bytes it leads to. Same cost: `lstat` is `stat` for anything else.
    pub fn hash_output(&self, root: &Path, rel: &str) -> io::Result<(Digest, u64, bool)> {
        let abs = root.join(rel);
        let meta = std::fs::symlink_metadata(&abs)?;
        if meta.file_type().is_symlink() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{rel} is a symlink, which mlcycle never writes as an output"),
            ));
        }
        self.hash_with(root, rel, &abs, meta)
    }

    fn hash_with(
        &self,
        root: &Path,
        rel: &str,
        abs: &Path,
        meta: std::fs::Metadata,
    ) -> io::Result<(Digest, u64, bool)> {
        if meta.is_dir() {
            let (entries, total) = self.manifest(root, rel)?;
            let manifest = serde_json::to_vec(&entries).map_err(io::Error::other)?;
            Ok((crate::hash::hash_bytes(&manifest), total, true))
        } else {
            let size = meta.len();
            Ok((self.hash_file(rel, abs, meta)?, size, false))
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

/// An input that cannot be read: missing (a source file absent from a
/// partial checkout, or one that vanished since validation), or unreadable.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[error("cannot read input `{path}`: {source}")]
#[diagnostic(code(mlcycle::plan::input_error))]
pub struct InputError {
    pub path: String,
    #[source]
    pub source: io::Error,
}

impl InputError {
    /// Why the stage is blocked, as a reason.
    pub fn reason(&self) -> StaleReason {
        let error = if self.source.kind() == io::ErrorKind::NotFound {
            "no such file or folder".to_string()
        } else {
            self.source.to_string()
        };
        StaleReason::InputMissing {
            path: self.path.clone(),
            error,
        }
    }
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

/// What `mlcycle.lock` (with the journal applied) says of one stage.
#[derive(Debug, Clone, Copy, Default)]
pub struct Record<'a> {
    /// Its last recorded result.
    pub entry: Option<&'a LockEntry>,
    /// A run that did not finish (killed) started it.
    pub started: bool,
}

impl<'a> Record<'a> {
    /// Stage `id`'s record in `lock`.
    pub fn of(lock: &'a LockFile, id: &str) -> Self {
        Record {
            entry: lock.stages.get(id),
            started: lock.started.contains(id),
        }
    }
}

/// Decides what to do with a stage given its fingerprint and its record.
pub fn assess(
    ws: &Workspace,
    p: &Pipeline,
    s: &StageDef,
    inputs: StageInputs<'_>,
    record: Record<'_>,
    memo: &SharedMemo,
    force: bool,
) -> Assessment {
    let (recorded, started) = (record.entry, record.started);
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
                match memo.hash_output(&ws.root, path) {
                    // There, but not readable as recorded (a folder that
                    // now holds a link or a pipe): modified, not missing.
                    Err(_) if std::fs::symlink_metadata(ws.root.join(path)).is_ok() => {
                        reasons.push(StaleReason::OutputModified { path: path.clone() })
                    }
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
            reasons = changed_since(ws, s, rec, &inputs, memo, &upstream_of);
            false
        }
        // Never recorded, but started by a run that died: not a first run.
        None if started => {
            reasons.push(StaleReason::Unfinished);
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
    let mut reasons = match flagged(ws, memo, s, &inputs, &key, recorded, outputs_ok, reasons) {
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
        _ => crate::db::lookup_run_cache(&ws.db_path(), &key).or_else(|| {
            let parent = ws.parent_db.as_deref()?;
            crate::db::lookup_run_cache(parent, &key)
        }),
    };
    let verdict = match cached {
        // `cache: false` outputs are not in the cache: such a stage reruns.
        // So does one with a `persist: true` output: restoring would roll
        // back what its runs accumulated (an append-only log).
        Some(entry)
            if s.outputs.iter().all(|o| o.cache && !o.persist)
                && entry.outs.values().all(|o| ws.cache.has_output(o)) =>
        {
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

/// What changed since the stage's record was made.
fn changed_since(
    ws: &Workspace,
    s: &StageDef,
    rec: &LockEntry,
    inputs: &StageInputs<'_>,
    memo: &SharedMemo,
    upstream_of: &dyn Fn(&str) -> Option<String>,
) -> Vec<StaleReason> {
    match rec.fingerprint() {
        Some(old) => {
            let mut r = inputs.to_fingerprint().diff(&old, upstream_of);
            name_changed_files(ws, s, &old.inputs, &inputs.inputs, memo, &mut r);
            r
        }
        None => vec![StaleReason::FormatChanged],
    }
}

/// Says which files inside a changed folder dep changed, when the folder's
/// previous manifest is in the cache (a run keeps it there, see
/// [`keep_folder_manifests`]): up to [`NAMED_FILES`] of them, and a count.
fn name_changed_files(
    ws: &Workspace,
    s: &StageDef,
    old: &BTreeMap<String, Digest>,
    new: &BTreeMap<String, Digest>,
    memo: &SharedMemo,
    reasons: &mut [StaleReason],
) {
    for r in reasons.iter_mut() {
        let StaleReason::FileChanged {
            path: key,
            files,
            more,
        } = r
        else {
            continue;
        };
        let Some(Source::File(rel)) = s.inputs.iter().find(|i| &i.key == key).map(|i| &i.source)
        else {
            continue;
        };
        let (Some(old_hash), Some(new_hash)) = (old.get(key.as_str()), new.get(key.as_str()))
        else {
            continue;
        };
        if old_hash.is_empty() || !ws.cache.has(old_hash) || Path::new(rel).is_absolute() {
            continue;
        }
        let Ok(before) = ws.cache.manifest(old_hash) else {
            continue;
        };
        let Ok((after, _)) = memo.manifest(&ws.root, rel) else {
            continue;
        };
        let after_hash = serde_json::to_vec(&after).map(|m| crate::hash::hash_bytes(&m));
        if after_hash.ok().as_ref() != Some(new_hash) {
            continue;
        }
        let changed = manifest_changes(&before, &after);
        *more = changed.len().saturating_sub(NAMED_FILES);
        *files = changed.into_iter().take(NAMED_FILES).collect();
    }
}

/// How many changed files a folder dep's reason names.
const NAMED_FILES: usize = 3;

/// The entries of `after` that are new or differ from `before`, then those
/// of `before` that are gone, each as `path (added|modified|removed)`.
fn manifest_changes(before: &[ManifestEntry], after: &[ManifestEntry]) -> Vec<String> {
    let key = |e: &ManifestEntry| e.raw.clone().unwrap_or_else(|| e.path.clone().into_bytes());
    let old: BTreeMap<Vec<u8>, &ManifestEntry> = before.iter().map(|e| (key(e), e)).collect();
    let new: BTreeMap<Vec<u8>, &ManifestEntry> = after.iter().map(|e| (key(e), e)).collect();
    let mut out = Vec::new();
    for (k, e) in &new {
        match old.get(k) {
            None => out.push(format!("{} (added)", e.path)),
            Some(o) if o.hash != e.hash || o.exec != e.exec => {
                out.push(format!("{} (modified)", e.path));
            }
            Some(_) => {}
        }
    }
    for (k, e) in &old {
        if !new.contains_key(k) {
            out.push(format!("{} (removed)", e.path));
        }
    }
    out
}

/// Keeps the manifests of stage `s`'s folder deps in the cache, so that
/// when one changes the next run can name the files that changed.
pub fn keep_folder_manifests(ws: &Workspace, s: &StageDef, memo: &SharedMemo) {
    for inp in &s.inputs {
        let Source::File(rel) = &inp.source else {
            continue;
        };
        if Path::new(rel).is_absolute() || !ws.root.join(rel).is_dir() {
            continue;
        }
        if let Ok((entries, _)) = memo.manifest(&ws.root, rel) {
            if let Ok(bytes) = serde_json::to_vec(&entries) {
                let _ = ws.cache.store_bytes(&bytes);
            }
        }
    }
}

/// Source files inside an output folder: a stage reads `path`, which lies
/// inside output `output` of stage `stage`, and the file is there although
/// that stage has never produced the folder here. Running the stage would
/// clear the folder, so the run is refused before anything is touched.
#[derive(Debug, Clone)]
pub struct SourceInOutput {
    pub reader: String,
    pub path: String,
    pub stage: String,
    pub output: String,
}

impl std::fmt::Display for SourceInOutput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "stage `{}` reads `{}`, which is inside output `{}` of stage `{}`; that stage has not written it here, and running it clears `{}`",
            self.reader, self.path, self.output, self.stage, self.output
        )
    }
}

/// Whether the stage's recorded output folder `rec` (at `out`) held
/// `inner` (a path inside it) when the stage wrote it; true when the record
/// cannot tell (its manifest is not in the cache).
fn wrote(ws: &Workspace, rec: &crate::cache::OutRecord, out: &str, inner: &str) -> bool {
    if !rec.dir {
        return true;
    }
    let Some(rel) = inner.strip_prefix(out).and_then(|r| r.strip_prefix('/')) else {
        return true;
    };
    let rel = rel.trim_end_matches('/');
    match ws.cache.manifest(&rec.hash) {
        Ok(entries) => entries.iter().any(|e| {
            let p = e.path.trim_end_matches('/');
            p == rel || p.strip_prefix(rel).is_some_and(|r| r.starts_with('/'))
        }),
        Err(_) => true,
    }
}

/// Every [`SourceInOutput`] among the stages `selected` would run.
pub fn sources_in_outputs(
    ws: &Workspace,
    p: &Pipeline,
    lock: &LockFile,
    memo: &SharedMemo,
    selected: &[bool],
) -> Vec<SourceInOutput> {
    let mut found = Vec::new();
    // Stages whose latest recorded run failed (or died in them): a failed
    // command leaves what it wrote, and a first run that failed has no
    // record in the lock to say so.
    let mut failed: Option<std::collections::HashMap<String, String>> = None;
    for reader in &p.stages {
        for inp in &reader.inputs {
            let Source::Stage { stage, output } = inp.source else {
                continue;
            };
            let out = &p.stages[stage].outputs[output];
            if !selected[stage] || inp.path == out.path {
                continue;
            }
            if std::fs::symlink_metadata(ws.root.join(&inp.path)).is_err() {
                continue;
            }
            let id = &p.stages[stage].id;
            // A stage that started here and did not finish (killed) may
            // have written the file itself.
            if lock.started.contains(id) || lock.stages.get(id).is_some_and(|e| e.unfinished) {
                continue;
            }
            let rec = lock.stages.get(id).and_then(|e| e.outs.get(&out.path));
            if rec.is_some_and(|r| wrote(ws, r, &out.path, &inp.path)) {
                continue;
            }
            let last = failed.get_or_insert_with(|| {
                let path = ws.db_path();
                path.exists()
                    .then(|| crate::db::Db::open(&path).ok())
                    .flatten()
                    .and_then(|db| db.last_outcomes().ok())
                    .unwrap_or_default()
            });
            if last.get(id).is_some_and(|o| o == "failed") {
                continue;
            }
            // Made by mlcycle before (the lock was deleted): in the cache.
            if memo
                .hash_path(&ws.root, &out.path)
                .is_ok_and(|(h, ..)| ws.cache.has(&h))
            {
                continue;
            }
            found.push(SourceInOutput {
                reader: reader.id.clone(),
                path: inp.path.clone(),
                stage: p.stages[stage].id.clone(),
                output: out.path.clone(),
            });
        }
    }
    found
}

/// What `frozen:` and `always_changed:` decide, when they decide (else the
/// reasons back, for the normal verdict).
#[allow(clippy::too_many_arguments)]
fn flagged(
    ws: &Workspace,
    memo: &SharedMemo,
    s: &StageDef,
    inputs: &StageInputs<'_>,
    key: &Digest,
    recorded: Option<&LockEntry>,
    outputs_ok: bool,
    mut reasons: Vec<StaleReason>,
) -> Result<Assessment, Vec<StaleReason>> {
    if let Some(rec) = recorded.filter(|r| s.frozen && !r.unfinished) {
        if outputs_ok && reasons.is_empty() {
            return Err(reasons);
        }
        // Kept as it is: its dependents read its recorded outputs (their
        // hashes are what they are fingerprinted with), so those must be
        // what is on disk. An output edited or deleted by hand is put back
        // from the cache (a restore, not a rerun); when the cache lacks
        // it, the stage and its dependents are blocked rather than read
        // bytes other than those recorded.
        let mut off = Vec::new();
        for (path, out) in &rec.outs {
            let reason = match memo.hash_output(&ws.root, path) {
                Err(_) if std::fs::symlink_metadata(ws.root.join(path)).is_ok() => {
                    StaleReason::OutputModified { path: path.clone() }
                }
                Err(_) => StaleReason::OutputMissing { path: path.clone() },
                Ok((h, ..)) if h != out.hash => StaleReason::OutputModified { path: path.clone() },
                Ok(_) => continue,
            };
            if !reasons.contains(&reason) {
                off.push(reason);
            }
        }
        reasons.extend(off);
        let changed: Vec<&str> = reasons
            .iter()
            .filter_map(|r| match r {
                StaleReason::OutputMissing { path } | StaleReason::OutputModified { path } => {
                    Some(path.as_str())
                }
                _ => None,
            })
            .collect();
        // Each output that changed must come back from the cache (the
        // others, `cache: false` ones included, are as recorded).
        let restorable = changed.iter().all(|path| {
            s.outputs
                .iter()
                .any(|o| o.path == *path && o.cache && !o.persist)
                && rec.outs.get(*path).is_some_and(|o| ws.cache.has_output(o))
        });
        let verdict = if changed.is_empty() {
            Verdict::Fresh
        } else if restorable {
            Verdict::Restore(rec.clone())
        } else {
            return Ok(Assessment {
                fingerprint: None,
                key: key.clone(),
                verdict: Verdict::Blocked,
                reasons: vec![StaleReason::FrozenLost { because: reasons }],
            });
        };
        return Ok(Assessment {
            fingerprint: Some(inputs.to_fingerprint()),
            key: key.clone(),
            verdict,
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
    /// (outputs in the run-cache), `stale`, or `blocked` (an input it
    /// reads, or an upstream stage's, cannot be read).
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
) -> Vec<StageStatus> {
    use rayon::prelude::*;
    // Each stage is judged against the outputs its upstream stages have on
    // record, so every stage can be assessed independently, in parallel.
    let up = |stage: usize, output: usize| recorded_output(p, &lock.stages, stage, output);
    // A stage whose input cannot be read is blocked (`Err`), not an error
    // of the whole status: the other stages are still judged.
    let assessed: Vec<(usize, Result<Assessment, InputError>)> = graph
        .order()
        .par_iter()
        .filter(|&&i| selected[i])
        .map(|&i| {
            let s = &p.stages[i];
            let a = fingerprint(ws, s, memo, &up)
                .map(|fp| assess(ws, p, s, fp, Record::of(lock, &s.id), memo, false));
            (i, a)
        })
        .collect();
    // Then, in order, a stage downstream of a stale one may change too.
    let mut stale = vec![false; p.stages.len()];
    let mut blocked = vec![false; p.stages.len()];
    let mut result = Vec::with_capacity(assessed.len());
    let mut any_blocked = false;
    for (i, a) in assessed {
        let blocked_by: Vec<&str> = if any_blocked {
            graph
                .upstream(i)
                .filter(|&u| blocked[u])
                .map(|u| p.stages[u].id.as_str())
                .collect()
        } else {
            Vec::new()
        };
        let a = match a {
            Ok(a) if blocked_by.is_empty() && !matches!(a.verdict, Verdict::Blocked) => a,
            res => {
                blocked[i] = true;
                any_blocked = true;
                let mut reasons: Vec<StaleReason> = match res {
                    Err(e) => vec![e.reason()],
                    Ok(a) if matches!(a.verdict, Verdict::Blocked) => a.reasons,
                    Ok(_) => vec![],
                };
                let mut ups = blocked_by;
                ups.sort_unstable();
                ups.dedup();
                reasons.extend(ups.into_iter().map(|u| StaleReason::UpstreamBlocked {
                    upstream: u.to_string(),
                }));
                result.push(StageStatus {
                    stage: p.stages[i].id.clone(),
                    state: "blocked",
                    reasons,
                });
                continue;
            }
        };
        let mut reasons = a.reasons;
        let frozen = matches!(reasons.first(), Some(StaleReason::Frozen { .. }));
        let mut state = match a.verdict {
            Verdict::Fresh if frozen => "frozen",
            Verdict::Fresh => "fresh",
            Verdict::Restore(_) => "restorable",
            Verdict::Run => "stale",
            Verdict::Blocked => unreachable!("a blocked stage is listed above"),
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
    result
}
