//! Stage fingerprints, and the reasons a stage is stale.
//!
//! A [`StageFingerprint`] holds everything a stage's result depends on. Its
//! key is the BLAKE3 hash of its canonical JSON. When the key differs from
//! the recorded one, [`StageFingerprint::diff`] says why, field by field.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::hash::Digest;

/// Bumped when the fingerprint's layout changes; old records then read as
/// "fingerprint format changed" and their stages rerun.
///
/// 2: the stage's name is part of it (a command sees it as `$MLCYCLE_STAGE`,
/// a built-in kind in its context: a renamed stage must not be restored
/// from another stage's result), and outputs are sorted (their order in
/// `outs:` changes nothing).
pub const FINGERPRINT_SCHEMA: u32 = 2;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StageFingerprint {
    pub schema: u32,
    /// The stage's name.
    #[serde(default)]
    pub stage: String,
    pub kind: String,
    pub version: u32,
    /// Command template and env (`run:` stages) or checked `with:` params.
    #[serde(default)]
    pub config: BTreeMap<String, Value>,
    /// Param key → value, for the params the stage reads.
    #[serde(default)]
    pub params: BTreeMap<String, Value>,
    /// Input key → content hash.
    #[serde(default)]
    pub inputs: BTreeMap<String, Digest>,
    /// Declared output paths, sorted.
    #[serde(default)]
    pub outputs: Vec<String>,
}

/// A borrowed view with the same serialized form as [`StageFingerprint`],
/// so a key can be computed without copying a stage's config and params.
#[derive(Serialize)]
pub struct FingerprintRef<'a> {
    pub schema: u32,
    pub stage: &'a str,
    pub kind: &'a str,
    pub version: u32,
    pub config: &'a BTreeMap<String, Value>,
    pub params: &'a BTreeMap<String, Value>,
    pub inputs: &'a BTreeMap<String, Digest>,
    pub outputs: Vec<&'a str>,
}

impl FingerprintRef<'_> {
    /// BLAKE3 of the canonical JSON. The JSON is written to a per-thread
    /// buffer and hashed in one call: serde_json writes a token at a time,
    /// and feeding those to the hasher one by one cost more than the
    /// hashing itself (a fifth of a no-op `status` at 10 000 stages).
    pub fn key(&self) -> Digest {
        thread_local! {
            static BUF: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
        }
        BUF.with(|buf| {
            let mut buf = buf.borrow_mut();
            buf.clear();
            serde_json::to_writer(&mut *buf, self).expect("fingerprints serialize");
            blake3::hash(&buf).to_hex().to_string()
        })
    }
}

impl StageFingerprint {
    /// The fingerprint's key: BLAKE3 of its canonical JSON.
    pub fn key(&self) -> Digest {
        FingerprintRef {
            schema: self.schema,
            stage: &self.stage,
            kind: &self.kind,
            version: self.version,
            config: &self.config,
            params: &self.params,
            inputs: &self.inputs,
            outputs: self.outputs.iter().map(String::as_str).collect(),
        }
        .key()
    }

    /// Every difference from `old` (the recorded fingerprint) to `self`.
    /// `upstream` names the stage that produces an input, for messages.
    pub fn diff(
        &self,
        old: &StageFingerprint,
        upstream: &dyn Fn(&str) -> Option<String>,
    ) -> Vec<StaleReason> {
        let mut out = Vec::new();
        if old.schema != self.schema {
            out.push(StaleReason::FormatChanged);
            return out;
        }
        if old.kind != self.kind {
            out.push(StaleReason::KindChanged {
                old: old.kind.clone(),
                new: self.kind.clone(),
            });
        } else if old.version != self.version {
            out.push(StaleReason::ImplementationChanged {
                old: old.version,
                new: self.version,
            });
        }
        for (k, v) in &self.config {
            match old.config.get(k) {
                Some(o) if o == v => {}
                o => diff_values(k, o, Some(v), &mut out),
            }
        }
        for (k, o) in &old.config {
            if !self.config.contains_key(k) {
                diff_values(k, Some(o), None, &mut out);
            }
        }
        for (k, v) in &self.params {
            match old.params.get(k) {
                Some(o) if o == v => {}
                o => out.push(StaleReason::ParamChanged {
                    key: k.clone(),
                    old: o.map(show),
                    new: Some(show(v)),
                }),
            }
        }
        for (k, o) in &old.params {
            if !self.params.contains_key(k) {
                out.push(StaleReason::ParamChanged {
                    key: k.clone(),
                    old: Some(show(o)),
                    new: None,
                });
            }
        }
        for (k, h) in &self.inputs {
            match old.inputs.get(k) {
                Some(o) if o == h => {}
                Some(_) => out.push(match upstream(k) {
                    Some(stage) => StaleReason::InputChanged {
                        input: k.clone(),
                        upstream: stage,
                    },
                    None => StaleReason::FileChanged {
                        path: k.clone(),
                        files: Vec::new(),
                        more: 0,
                    },
                }),
                None => out.push(StaleReason::InputAdded { input: k.clone() }),
            }
        }
        for k in old.inputs.keys() {
            if !self.inputs.contains_key(k) {
                out.push(StaleReason::InputRemoved { input: k.clone() });
            }
        }
        if old.outputs != self.outputs {
            out.push(StaleReason::OutputsChanged);
        }
        // A `with:` value taken from a pipeline param changes with it: say it once.
        let param_changes: Vec<(Option<String>, Option<String>)> = out
            .iter()
            .filter_map(|r| match r {
                StaleReason::ParamChanged { old, new, .. } => Some((old.clone(), new.clone())),
                _ => None,
            })
            .collect();
        out.retain(|r| match r {
            StaleReason::ConfigChanged { field, old, new } if field.starts_with("with.") => {
                !param_changes.contains(&(old.clone(), new.clone()))
            }
            // A gather's order (`gathered.NAME`) is said only when it is
            // all that changed: an added or removed artifact is its own
            // reason.
            StaleReason::ConfigChanged { field, old, new } if field.starts_with("gathered.") => {
                let set = |v: &Option<String>| {
                    let list: Option<Vec<String>> =
                        v.as_deref().and_then(|t| serde_json::from_str(t).ok());
                    list.map(|mut l| {
                        l.sort();
                        l
                    })
                };
                matches!((set(old), set(new)), (Some(a), Some(b)) if a == b)
            }
            _ => true,
        });
        if out.is_empty() {
            out.push(StaleReason::FormatChanged);
        }
        out
    }
}

fn show(v: &Value) -> String {
    v.to_string()
}

fn diff_values(prefix: &str, old: Option<&Value>, new: Option<&Value>, out: &mut Vec<StaleReason>) {
    match (old, new) {
        (Some(Value::Object(a)), Some(Value::Object(b))) => {
            for (k, v) in b {
                let p = format!("{prefix}.{k}");
                match a.get(k) {
                    Some(o) if o == v => {}
                    o => diff_values(&p, o, Some(v), out),
                }
            }
            for (k, o) in a {
                if !b.contains_key(k) {
                    diff_values(&format!("{prefix}.{k}"), Some(o), None, out);
                }
            }
        }
        _ => out.push(StaleReason::ConfigChanged {
            field: prefix.to_string(),
            old: old.map(show),
            new: new.map(show),
        }),
    }
}

/// Why a stage must run (or, for status, would run).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum StaleReason {
    /// No record of the stage: it never ran here.
    FirstRun,
    /// `--force` was given.
    Forced,
    /// The stage's last run failed or was interrupted.
    Unfinished,
    /// The record was written by another fingerprint format.
    FormatChanged,
    KindChanged {
        old: String,
        new: String,
    },
    ImplementationChanged {
        old: u32,
        new: u32,
    },
    ParamChanged {
        key: String,
        old: Option<String>,
        new: Option<String>,
    },
    /// The command, env or a `with:` value changed.
    ConfigChanged {
        field: String,
        old: Option<String>,
        new: Option<String>,
    },
    /// An input produced by another stage has new content.
    InputChanged {
        input: String,
        upstream: String,
    },
    /// A file the stage reads changed.
    FileChanged {
        path: String,
        /// For a folder: files inside it that changed (`a.csv (modified)`),
        /// when known.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        files: Vec<String>,
        /// How many more changed than `files` names.
        #[serde(default, skip_serializing_if = "is_zero")]
        more: usize,
    },
    InputAdded {
        input: String,
    },
    InputRemoved {
        input: String,
    },
    OutputsChanged,
    OutputMissing {
        path: String,
    },
    OutputModified {
        path: String,
    },
    /// (status only) an upstream stage is stale or restorable, which may change this
    /// stage's inputs.
    UpstreamStale {
        upstream: String,
    },
    /// `always_changed: true`: the stage runs every time.
    AlwaysChanged,
    /// No record in `mlcycle.lock` (deleted, or from another checkout), but
    /// the run-cache has a result for the stage as it is now.
    NotRecorded,
    /// `frozen: true`: the stage would run for `because`, but is kept.
    Frozen {
        because: Vec<StaleReason>,
    },
    /// `frozen: true`, and outputs it recorded are gone from disk (missing
    /// or edited, in `because`) and from the cache: its dependents cannot
    /// read what it recorded.
    FrozenLost {
        because: Vec<StaleReason>,
    },
    /// A file the stage reads cannot be read (missing from a partial
    /// checkout, unreadable): the stage is blocked until it can.
    InputMissing {
        path: String,
        error: String,
    },
    /// (status only) an upstream stage is blocked, so this one is too.
    UpstreamBlocked {
        upstream: String,
    },
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

impl fmt::Display for StaleReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let opt = |o: &Option<String>| o.clone().unwrap_or_else(|| "(none)".into());
        match self {
            StaleReason::FirstRun => write!(f, "first run"),
            StaleReason::AlwaysChanged => write!(f, "always changed (`always_changed: true`)"),
            StaleReason::NotRecorded => write!(
                f,
                "not in mlcycle.lock; the run-cache has its result for these inputs"
            ),
            StaleReason::Frozen { because } => {
                let why: Vec<String> = because.iter().map(ToString::to_string).collect();
                if why.is_empty() {
                    write!(f, "frozen")
                } else {
                    write!(f, "frozen (kept although {})", why.join("; "))
                }
            }
            StaleReason::FrozenLost { because } => {
                let why: Vec<String> = because.iter().map(ToString::to_string).collect();
                write!(
                    f,
                    "frozen, and its recorded outputs cannot be put back from the cache ({}): put the files back, or rerun the stage with `run --force`",
                    why.join("; ")
                )
            }
            StaleReason::Forced => write!(f, "forced"),
            StaleReason::Unfinished => write!(
                f,
                "its last run did not finish (it failed or was interrupted)"
            ),
            StaleReason::FormatChanged => write!(f, "recorded fingerprint has another format"),
            StaleReason::KindChanged { old, new } => {
                write!(f, "stage kind changed: {old} -> {new}")
            }
            StaleReason::ImplementationChanged { old, new } => {
                write!(f, "stage implementation changed: version {old} -> {new}")
            }
            StaleReason::ParamChanged { key, old, new } => match (old, new) {
                (Some(o), Some(n)) => write!(f, "param `{key}` changed: {o} -> {n}"),
                (None, _) => write!(f, "param `{key}` is now read"),
                (_, None) => write!(f, "param `{key}` is no longer read"),
            },
            StaleReason::ConfigChanged { field, old, new } => {
                if field == "run" {
                    return write!(f, "command changed: {} -> {}", opt(old), opt(new));
                }
                if let Some(k) = field.strip_prefix("gathered.") {
                    return write!(
                        f,
                        "order of gathered `{k}` changed: {} -> {}",
                        opt(old),
                        opt(new)
                    );
                }
                if let Some(k) = field.strip_prefix("with.") {
                    return write!(f, "param `{k}` changed: {} -> {}", opt(old), opt(new));
                }
                if let Some(k) = field.strip_prefix("env.") {
                    return write!(
                        f,
                        "environment variable `{k}` changed: {} -> {}",
                        opt(old),
                        opt(new)
                    );
                }
                // Names given to deps and outputs (`- src: data.csv`): say
                // which path got or lost which name, not the internal key.
                let named = field
                    .strip_prefix("names.inputs.")
                    .map(|k| ("dep", k))
                    .or_else(|| field.strip_prefix("names.outputs.").map(|k| ("output", k)));
                match (named, old, new) {
                    (Some((what, k)), None, Some(n)) => write!(f, "{what} {n} is now named `{k}`"),
                    (Some((what, k)), Some(o), None) => {
                        write!(f, "{what} {o} is no longer named `{k}`")
                    }
                    (Some((what, k)), Some(o), Some(n)) => {
                        write!(f, "{what} named `{k}` is now {n} (was {o})")
                    }
                    _ => write!(f, "`{field}` changed: {} -> {}", opt(old), opt(new)),
                }
            }
            StaleReason::InputChanged { input, upstream } => {
                write!(
                    f,
                    "input `{input}` changed (stage `{upstream}` produced new output)"
                )
            }
            StaleReason::FileChanged { path, files, more } => {
                if files.is_empty() {
                    return write!(f, "file `{path}` changed");
                }
                write!(f, "folder `{path}` changed: {}", files.join(", "))?;
                if *more > 0 {
                    write!(f, " and {more} more")?;
                }
                Ok(())
            }
            StaleReason::InputAdded { input } => write!(f, "new input `{input}`"),
            StaleReason::InputRemoved { input } => write!(f, "input `{input}` removed"),
            StaleReason::OutputsChanged => write!(f, "declared outputs changed"),
            StaleReason::OutputMissing { path } => write!(f, "output `{path}` missing"),
            StaleReason::OutputModified { path } => write!(f, "output `{path}` modified"),
            StaleReason::UpstreamStale { upstream } => {
                write!(f, "upstream `{upstream}` is out of date")
            }
            StaleReason::InputMissing { path, error } => {
                write!(f, "input `{path}` cannot be read: {error}")
            }
            StaleReason::UpstreamBlocked { upstream } => {
                write!(f, "upstream `{upstream}` is blocked")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fp() -> StageFingerprint {
        StageFingerprint {
            schema: FINGERPRINT_SCHEMA,
            stage: "train".into(),
            kind: "command".into(),
            version: 0,
            config: [("run".to_string(), json!("python train.py"))].into(),
            params: [("train.lr".to_string(), json!(0.01))].into(),
            inputs: [
                ("prep.data".to_string(), "aa".to_string()),
                ("train.py".to_string(), "bb".to_string()),
            ]
            .into(),
            outputs: vec!["model.bin".into()],
        }
    }

    #[test]
    fn same_fingerprint_same_key() {
        assert_eq!(fp().key(), fp().key());
        // The streamed key is the hash of the serialized fingerprint.
        assert_eq!(
            fp().key(),
            crate::hash::hash_bytes(&serde_json::to_vec(&fp()).unwrap())
        );
        let mut other = fp();
        other.params.insert("train.lr".into(), json!(0.1));
        assert_ne!(fp().key(), other.key());
    }

    #[test]
    fn diff_lists_every_reason() {
        let old = fp();
        let mut new = fp();
        new.params.insert("train.lr".into(), json!(0.1));
        new.inputs.insert("prep.data".into(), "cc".into());
        new.inputs.insert("train.py".into(), "dd".into());
        new.config.insert("run".into(), json!("python train2.py"));
        let up = |k: &str| (k == "prep.data").then(|| "prep".to_string());
        let reasons: Vec<String> = new.diff(&old, &up).iter().map(|r| r.to_string()).collect();
        assert_eq!(
            reasons,
            vec![
                "command changed: \"python train.py\" -> \"python train2.py\"",
                "param `train.lr` changed: 0.01 -> 0.1",
                "input `prep.data` changed (stage `prep` produced new output)",
                "file `train.py` changed",
            ]
        );
    }

    #[test]
    fn with_params_diff_by_key() {
        let mut old = fp();
        old.config
            .insert("with".into(), json!({"alpha": 1, "beta": 2}));
        let mut new = old.clone();
        new.config
            .insert("with".into(), json!({"alpha": 3, "beta": 2}));
        let r = new.diff(&old, &|_| None);
        assert_eq!(r[0].to_string(), "param `alpha` changed: 1 -> 3");
    }

    #[test]
    fn param_fed_into_with_is_reported_once() {
        let mut old = fp();
        old.params = [("prefix".to_string(), json!("a"))].into();
        old.config.insert("with".into(), json!({"prefix": "a"}));
        let mut new = old.clone();
        new.params = [("prefix".to_string(), json!("b"))].into();
        new.config.insert("with".into(), json!({"prefix": "b"}));
        let r: Vec<String> = new
            .diff(&old, &|_| None)
            .iter()
            .map(|r| r.to_string())
            .collect();
        assert_eq!(r, vec!["param `prefix` changed: \"a\" -> \"b\""]);
    }

    #[test]
    fn version_bump_is_reported() {
        let old = fp();
        let mut new = fp();
        new.version = 2;
        assert_eq!(
            new.diff(&old, &|_| None)[0].to_string(),
            "stage implementation changed: version 0 -> 2"
        );
    }
}
