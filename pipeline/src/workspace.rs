//! The state a workspace keeps on disk: `mlcycle.lock`, the journal of the
//! run in progress, the writer lock, the cache and the database.
//!
//! ```text
//! mlcycle.lock            per stage: fingerprint, key, output hashes (for git)
//! .mlcycle/cache/         content-addressed objects, run-cache entries
//! .mlcycle/journal.jsonl  stages finished (or started) by the current run
//! .mlcycle/writer.lock    held by the one process that may write
//! .mlcycle/mlcycle.db     run history and the file-hash memo (SQLite)
//! .mlcycle/runs/ID/       per-run stage logs
//! ```

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::cache::{Cache, OutRecord};
use crate::fingerprint::StageFingerprint;

pub const LOCK_FILE: &str = "mlcycle.lock";
/// The folder of a workspace's state (cache, database, journal, logs).
pub const STATE_DIR: &str = ".mlcycle";
const LOCK_SCHEMA: u32 = 1;

/// One stage's record in `mlcycle.lock` and in the run-cache.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LockEntry {
    pub key: String,
    /// The fingerprint the key was computed from, kept as raw JSON: it is
    /// only parsed when the key no longer matches and the reasons are needed,
    /// so reading the lock of a large pipeline stays cheap.
    #[serde(serialize_with = "pretty_raw")]
    fingerprint: Box<RawValue>,
    /// Output path → stored content.
    pub outs: BTreeMap<String, OutRecord>,
    /// The stage started again but did not finish (it failed, or the run
    /// was interrupted or killed): the record must not count as fresh.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub unfinished: bool,
}

impl LockEntry {
    pub fn new(
        key: String,
        fingerprint: &StageFingerprint,
        outs: BTreeMap<String, OutRecord>,
    ) -> Self {
        Self {
            key,
            fingerprint: serde_json::value::to_raw_value(fingerprint)
                .expect("fingerprints serialize"),
            outs,
            unfinished: false,
        }
    }

    /// The recorded fingerprint; `None` when it is in an unreadable format.
    pub fn fingerprint(&self) -> Option<StageFingerprint> {
        serde_json::from_str(self.fingerprint.get()).ok()
    }

    /// Replaces the fingerprint (and key) of a restored entry.
    pub fn set_fingerprint(&mut self, key: String, fingerprint: &StageFingerprint) {
        self.key = key;
        self.unfinished = false;
        self.fingerprint =
            serde_json::value::to_raw_value(fingerprint).expect("fingerprints serialize");
    }
}

/// Writes the raw fingerprint as a nested value, so the pretty-printed lock
/// file shows one field per line.
fn pretty_raw<S: serde::Serializer>(raw: &RawValue, s: S) -> Result<S::Ok, S::Error> {
    let v: serde_json::Value =
        serde_json::from_str(raw.get()).map_err(serde::ser::Error::custom)?;
    v.serialize(s)
}

/// `mlcycle.lock`: the last recorded result of every stage.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct LockFile {
    pub schema: u32,
    pub stages: BTreeMap<String, LockEntry>,
    /// Stages the journal of an unfinished run says started (not written
    /// to the file): what their outputs hold may be their own partial work.
    #[serde(skip)]
    pub started: std::collections::BTreeSet<String>,
    /// Stages the journal says started and never finished, each with the
    /// run that started it (`None` in a journal from before runs were
    /// named): the process died while they ran.
    #[serde(skip)]
    pub in_flight: BTreeMap<String, Option<i64>>,
    /// Stages the journal says finished, with the run that finished them,
    /// how (`ran`, `fresh`, `restored`) and in how many milliseconds: what
    /// a run that then died had done.
    #[serde(skip)]
    pub finished_in: BTreeMap<String, Finished>,
}

/// A stage's finish as the journal records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finished {
    pub run: i64,
    pub outcome: String,
    pub ms: u64,
}

#[derive(Debug, Serialize, Deserialize)]
struct JournalLine {
    stage: String,
    /// `None`: the stage started; its old record no longer holds.
    entry: Option<LockEntry>,
    /// The run (its id in the run history) that started the stage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    run: Option<i64>,
    /// A finished stage's outcome (`ran`, `fresh`, `restored`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    outcome: Option<String>,
    /// A finished stage's duration, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ms: Option<u64>,
}

/// Errors reading or writing workspace state.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum StateError {
    #[error("cannot read {path}: {source}")]
    #[diagnostic(code(mlcycle::state::read), help("if the file was edited by hand, restore it from git or delete it (every stage then reruns or is restored from the cache)"))]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{path} is not a valid lock file: {source}")]
    #[diagnostic(code(mlcycle::state::lock_format), help("restore it from git, or delete it: stages are then restored from the run-cache or rerun"))]
    Parse {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("cannot write {path}: {source}")]
    #[diagnostic(code(mlcycle::state::write))]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("another mlcycle process is writing to this workspace{holder}")]
    #[diagnostic(
        code(mlcycle::state::busy),
        help("wait for it to finish, or run without `--no-wait` to wait automatically")
    )]
    Busy { holder: String },
}

/// A workspace's paths.
#[derive(Debug, Clone)]
pub struct Workspace {
    pub root: PathBuf,
    pub state: PathBuf,
    pub cache: Cache,
    /// The database of the workspace this one is a scratch copy of (an
    /// experiment's): its run-cache is consulted after this one's.
    pub parent_db: Option<PathBuf>,
}

/// The exclusive writer lock; released when dropped (or when the process dies).
#[derive(Debug)]
pub struct WriterLock {
    _file: File,
}

impl Workspace {
    /// The workspace of a loaded pipeline, with its `cache_dir:` if set.
    pub fn for_pipeline(p: &crate::config::Pipeline) -> Self {
        let mut ws = Self::new(&p.root);
        if let Some(dir) = &p.cache_dir {
            ws.cache = Cache::new(dir.clone());
        }
        ws
    }

    pub fn new(root: impl Into<PathBuf>) -> Self {
        let root = root.into();
        let state = root.join(STATE_DIR);
        Self {
            cache: Cache::new(state.join("cache")),
            root,
            state,
            parent_db: None,
        }
    }

    pub fn lock_path(&self) -> PathBuf {
        self.root.join(LOCK_FILE)
    }
    pub fn journal_path(&self) -> PathBuf {
        self.state.join("journal.jsonl")
    }
    pub fn db_path(&self) -> PathBuf {
        self.state.join("mlcycle.db")
    }
    /// Where a `run:` command appends its step-wise metrics (JSON lines),
    /// given to it as `MLCYCLE_STEP_METRICS`: one file per stage, of its
    /// last run.
    pub fn step_metrics_path(&self, stage: &str) -> PathBuf {
        self.state.join("steps").join(format!("{stage}.jsonl"))
    }
    pub fn runs_dir(&self) -> PathBuf {
        self.state.join("runs")
    }

    /// Creates `.mlcycle/` with a `.gitignore` so its contents stay out of git.
    pub fn ensure_state_dir(&self) -> Result<(), StateError> {
        let w = |source| StateError::Write {
            path: self.state.clone(),
            source,
        };
        fs::create_dir_all(&self.state).map_err(w)?;
        let gi = self.state.join(".gitignore");
        if !gi.exists() {
            fs::write(&gi, "*\n").map_err(w)?;
        }
        Ok(())
    }

    /// Takes the writer lock. When another process holds it, calls
    /// `on_wait` once and blocks (or fails at once when `wait` is false).
    pub fn lock_writer(
        &self,
        wait: bool,
        on_wait: impl FnOnce(&str),
    ) -> Result<WriterLock, StateError> {
        self.ensure_state_dir()?;
        let path = self.state.join("writer.lock");
        let w = |source| StateError::Write {
            path: path.clone(),
            source,
        };
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(w)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => {
                let holder = fs::read_to_string(&path)
                    .ok()
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .map(|s| format!(" ({s})"))
                    .unwrap_or_default();
                if !wait {
                    return Err(StateError::Busy { holder });
                }
                on_wait(&holder);
                file.lock().map_err(w)?;
            }
            Err(fs::TryLockError::Error(e)) => return Err(w(e)),
        }
        file.set_len(0).map_err(w)?;
        let _ = writeln!(file, "pid {}", std::process::id());
        Ok(WriterLock { _file: file })
    }

    /// Reads `mlcycle.lock` with the journal of an unfinished run applied.
    pub fn read_lock(&self) -> Result<LockFile, StateError> {
        let path = self.lock_path();
        let mut lock = match fs::read(&path) {
            Ok(bytes) => {
                // One UTF-8 check of the whole file is cheaper than
                // `from_slice`'s check of every string (the lock of a
                // 10 000-stage pipeline is 7 MB); a file that is not UTF-8
                // goes through `from_slice` for its error.
                let parsed = match std::str::from_utf8(&bytes) {
                    Ok(text) => serde_json::from_str::<LockFile>(text),
                    Err(_) => serde_json::from_slice::<LockFile>(&bytes),
                };
                parsed.map_err(|source| StateError::Parse {
                    path: path.clone(),
                    source,
                })?
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => LockFile {
                schema: LOCK_SCHEMA,
                ..Default::default()
            },
            Err(source) => return Err(StateError::Read { path, source }),
        };
        self.apply_journal(&mut lock)?;
        Ok(lock)
    }

    fn apply_journal(&self, lock: &mut LockFile) -> Result<(), StateError> {
        let path = self.journal_path();
        let file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(source) => return Err(StateError::Read { path, source }),
        };
        for line in io::BufReader::new(file).lines() {
            let Ok(line) = line else { break };
            // A line cut short by a crash is skipped, not the end: a later
            // run appends its own lines after it (on a line of their own,
            // see `open_journal`), and those must not be lost.
            let Ok(j) = serde_json::from_str::<JournalLine>(&line) else {
                continue;
            };
            match j.entry {
                Some(e) => {
                    lock.in_flight.remove(&j.stage);
                    match (j.run, j.outcome) {
                        (Some(run), Some(outcome)) => {
                            let ms = j.ms.unwrap_or(0);
                            lock.finished_in
                                .insert(j.stage.clone(), Finished { run, outcome, ms });
                        }
                        _ => {
                            lock.finished_in.remove(&j.stage);
                        }
                    }
                    lock.stages.insert(j.stage, e);
                }
                None => {
                    if let Some(e) = lock.stages.get_mut(&j.stage) {
                        e.unfinished = true;
                    }
                    lock.finished_in.remove(&j.stage);
                    lock.in_flight.insert(j.stage.clone(), j.run);
                    lock.started.insert(j.stage);
                }
            }
        }
        Ok(())
    }

    /// Writes `mlcycle.lock` atomically and clears the journal. The JSON is
    /// streamed to the temp file rather than built in memory first.
    pub fn write_lock(&self, lock: &LockFile) -> Result<(), StateError> {
        let path = self.lock_path();
        #[derive(Serialize)]
        struct Out<'a> {
            schema: u32,
            stages: &'a BTreeMap<String, LockEntry>,
        }
        let out = Out {
            schema: LOCK_SCHEMA,
            stages: &lock.stages,
        };
        // The temp file lives in `.mlcycle/` (same file system, renamed
        // across): one a kill leaves never shows in the workspace.
        self.ensure_state_dir()?;
        write_atomic_in(&path, &self.state, |w| {
            serde_json::to_writer_pretty(&mut *w, &out).map_err(io::Error::other)?;
            w.write_all(b"\n")
        })
        .map_err(|source| StateError::Write { path, source })?;
        match fs::remove_file(self.journal_path()) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(StateError::Write {
                path: self.journal_path(),
                source,
            }),
        }
    }

    /// Removes temp files of `mlcycle.lock` that a killed run left (in
    /// `.mlcycle/`, or in the workspace root where older versions wrote
    /// them). Call it holding the writer lock.
    pub fn clean_lock_temps(&self) {
        let prefix = format!(".{LOCK_FILE}.tmp-");
        for dir in [&self.state, &self.root] {
            let Ok(rd) = fs::read_dir(dir) else { continue };
            for e in rd.flatten() {
                if e.file_name().to_string_lossy().starts_with(&prefix) {
                    let _ = fs::remove_file(e.path());
                }
            }
        }
    }

    /// Opens the journal for appending.
    pub fn open_journal(&self) -> Result<Journal, StateError> {
        self.ensure_state_dir()?;
        let path = self.journal_path();
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .read(true)
            .open(&path)
            .map_err(|source| StateError::Write {
                path: path.clone(),
                source,
            })?;
        // A killed run may have left a torn last line: end it, so that this
        // run's first line is not glued to it (and lost with it).
        if ends_torn(&mut file).map_err(|source| StateError::Write {
            path: path.clone(),
            source,
        })? {
            file.write_all(b"\n")
                .map_err(|source| StateError::Write { path, source })?;
        }
        Ok(Journal { file })
    }
}

/// Whether `file` is non-empty and does not end with a newline.
fn ends_torn(file: &mut File) -> io::Result<bool> {
    use std::io::{Seek, SeekFrom};
    let len = file.metadata()?.len();
    if len == 0 {
        return Ok(false);
    }
    file.seek(SeekFrom::Start(len - 1))?;
    let mut last = [0u8; 1];
    file.read_exact(&mut last)?;
    Ok(last[0] != b'\n')
}

/// The append-only record of a run in progress. A killed run leaves it
/// behind, and the next reader applies it over `mlcycle.lock`.
#[derive(Debug)]
pub struct Journal {
    file: File,
}

impl Journal {
    /// Records that `stage` started, in run `run`: its previous record no
    /// longer holds. A run that dies before the matching
    /// [`finished`](Self::finished) line is read back by the next run as
    /// having failed in this stage.
    pub fn started(&mut self, stage: &str, run: Option<i64>) -> io::Result<()> {
        self.append(&JournalLine {
            stage: stage.into(),
            entry: None,
            run,
            outcome: None,
            ms: None,
        })
    }
    /// Records a finished stage, finished by run `run` with `outcome`
    /// (`ran`, `fresh`, `restored`) in `ms` milliseconds.
    pub fn finished(
        &mut self,
        stage: &str,
        entry: &LockEntry,
        run: Option<i64>,
        outcome: &str,
        ms: u64,
    ) -> io::Result<()> {
        self.append(&JournalLine {
            stage: stage.into(),
            entry: Some(entry.clone()),
            run,
            outcome: Some(outcome.into()),
            ms: Some(ms),
        })
    }
    fn append(&mut self, line: &JournalLine) -> io::Result<()> {
        let mut bytes = serde_json::to_vec(line).map_err(io::Error::other)?;
        bytes.push(b'\n');
        // One write per line: a kill leaves whole lines or a cut last line.
        self.file.write_all(&bytes)
    }
}

/// Writes `bytes` to `path` via a temp file, fsync and rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    write_atomic_with(path, |w| w.write_all(bytes))
}

/// Writes to `path` via a temp file (filled by `fill`), fsync and rename.
pub fn write_atomic_with(
    path: &Path,
    fill: impl FnOnce(&mut dyn Write) -> io::Result<()>,
) -> io::Result<()> {
    write_atomic_in(path, path.parent().unwrap_or(Path::new(".")), fill)
}

/// [`write_atomic_with`], the temp file in folder `dir` (on the same file
/// system as `path`).
pub fn write_atomic_in(
    path: &Path,
    dir: &Path,
    fill: impl FnOnce(&mut dyn Write) -> io::Result<()>,
) -> io::Result<()> {
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        path.file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default(),
        std::process::id()
    ));
    let result = (|| {
        let mut w = io::BufWriter::with_capacity(256 * 1024, File::create(&tmp)?);
        fill(&mut w)?;
        let f = w.into_inner().map_err(|e| e.into_error())?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fingerprint::FINGERPRINT_SCHEMA;

    fn entry(key: &str) -> LockEntry {
        let fp = StageFingerprint {
            schema: FINGERPRINT_SCHEMA,
            stage: key.into(),
            kind: "command".into(),
            version: 0,
            config: Default::default(),
            params: Default::default(),
            inputs: Default::default(),
            outputs: vec![],
        };
        LockEntry::new(key.into(), &fp, Default::default())
    }

    #[test]
    fn the_lock_file_is_pretty_and_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let ws = Workspace::new(dir.path());
        let mut lock = LockFile::default();
        lock.stages.insert("a".into(), entry("k1"));
        ws.write_lock(&lock).unwrap();
        let text = std::fs::read_to_string(ws.lock_path()).unwrap();
        assert!(text.contains("\n        \"kind\": \"command\","), "{text}");
        let back = ws.read_lock().unwrap();
        assert_eq!(back.stages["a"].fingerprint().unwrap().kind, "command");
    }

    #[test]
    fn journal_overrides_lock_and_a_started_stage_loses_its_record() {
        let dir = tempfile::tempdir().unwrap();
        let ws = Workspace::new(dir.path());
        let mut lock = LockFile::default();
        lock.stages.insert("a".into(), entry("k1"));
        lock.stages.insert("b".into(), entry("k2"));
        ws.write_lock(&lock).unwrap();
        let mut j = ws.open_journal().unwrap();
        j.finished("a", &entry("k3"), Some(7), "ran", 12).unwrap();
        j.started("b", Some(7)).unwrap();
        drop(j);
        // A torn last line, as a kill -9 mid-write would leave.
        let mut f = OpenOptions::new()
            .append(true)
            .open(ws.journal_path())
            .unwrap();
        f.write_all(b"{\"stage\":\"a\",\"ent").unwrap();
        let read = ws.read_lock().unwrap();
        assert_eq!(read.stages["a"].key, "k3");
        assert!(read.stages["b"].unfinished);
        // `b` started in run 7 and never finished: the process died in it.
        assert_eq!(read.in_flight.get("b"), Some(&Some(7)));
        assert!(!read.in_flight.contains_key("a"));
        let done = &read.finished_in["a"];
        assert_eq!((done.run, done.outcome.as_str(), done.ms), (7, "ran", 12));
        ws.write_lock(&read).unwrap();
        assert!(!ws.journal_path().exists());
    }

    /// A killed run leaves a torn last line; the next run's lines, written
    /// after it, are still read (they were swallowed, so a second kill lost
    /// stages that had finished).
    #[test]
    fn lines_after_a_torn_line_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        let ws = Workspace::new(dir.path());
        ws.write_lock(&LockFile::default()).unwrap();
        let mut j = ws.open_journal().unwrap();
        j.finished("a", &entry("k1"), None, "ran", 0).unwrap();
        drop(j);
        let mut f = OpenOptions::new()
            .append(true)
            .open(ws.journal_path())
            .unwrap();
        f.write_all(b"{\"stage\":\"b\",\"ent").unwrap();
        drop(f);
        // The next run (killed too) appends its own lines.
        let mut j = ws.open_journal().unwrap();
        j.finished("c", &entry("k3"), None, "ran", 0).unwrap();
        drop(j);
        let read = ws.read_lock().unwrap();
        assert_eq!(read.stages["a"].key, "k1");
        assert_eq!(read.stages["c"].key, "k3");
        assert!(!read.stages.contains_key("b"));
    }

    #[test]
    fn second_writer_is_refused_without_wait() {
        let dir = tempfile::tempdir().unwrap();
        let ws = Workspace::new(dir.path());
        let _held = ws.lock_writer(false, |_| {}).unwrap();
        let err = ws.lock_writer(false, |_| {}).unwrap_err();
        assert!(matches!(err, StateError::Busy { .. }), "{err}");
    }
}
