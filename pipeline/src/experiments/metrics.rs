//! Metrics: the numbers in the outputs marked `metrics: true` (and the
//! built-in stages' `metrics` ports), by `STAGE.KEY`, read from the
//! workspace's files or from a lock file's records in the cache.

use serde_json::{Map, Value};

use crate::config::{load, Output, Pipeline, StageDef};
use crate::workspace::{LockFile, Workspace};

/// Metrics by `STAGE.KEY`, and what could not be read (one line per output).
pub type Read = (Map<String, Value>, Vec<String>);

/// The metrics the workspace's files hold now.
pub fn in_files(ws: &Workspace, p: &Pipeline) -> Read {
    collect(p, |s, o| read_output(ws, Origin::Files, s, o))
}

/// The metrics `lock` records: each metrics output's bytes, from the cache
/// by the hash the lock gives.
pub fn in_lock(ws: &Workspace, p: &Pipeline, lock: &LockFile) -> Read {
    collect(p, |s, o| read_output(ws, Origin::Lock(lock), s, o))
}

/// Where an output's bytes are read from.
#[derive(Clone, Copy)]
pub(crate) enum Origin<'a> {
    /// The workspace's file.
    Files,
    /// The cache object a lock file records for it.
    Lock(&'a LockFile),
}

/// The text of output `o` of stage `s` (a file of at most 8 MiB), or why
/// it cannot be read, as the end of a sentence about the output.
pub(crate) fn read_output(
    ws: &Workspace,
    origin: Origin<'_>,
    s: &StageDef,
    o: &Output,
) -> Result<String, String> {
    let folder = || "is a folder; mark the file in it instead".to_string();
    match origin {
        Origin::Files => {
            let path = ws.root.join(&o.path);
            if path.is_dir() {
                return Err(folder());
            }
            load::read_capped(&path)
                .map_err(|_| "cannot be read (missing, not UTF-8, or over 8 MiB)".into())
        }
        Origin::Lock(lock) => {
            let rec = lock
                .stages
                .get(&s.id)
                .and_then(|e| e.outs.get(&o.path))
                .ok_or("has no record in that lock file")?;
            if rec.dir {
                return Err(folder());
            }
            load::read_capped(&ws.cache.object_path(&rec.hash))
                .map_err(|_| "is not in the cache (removed by `mlcycle gc`?)".into())
        }
    }
}

fn collect(p: &Pipeline, read: impl Fn(&StageDef, &Output) -> Result<String, String>) -> Read {
    let mut out = Map::new();
    let mut warnings = Vec::new();
    for s in &p.stages {
        for o in s.outputs.iter().filter(|o| o.metrics) {
            let parsed = read(s, o).and_then(|text| {
                serde_norway::from_str::<serde_norway::Value>(&text)
                    .map_err(|e| format!("is not JSON or YAML ({e})"))
            });
            match parsed {
                Ok(v @ serde_norway::Value::Mapping(_)) => numbers(&s.id, &v, &mut out),
                Ok(_) => warnings.push(format!(
                    "metrics output `{}` of stage `{}` holds no mapping of names to numbers",
                    o.path, s.id
                )),
                Err(why) => warnings.push(format!(
                    "metrics output `{}` of stage `{}` {why}",
                    o.path, s.id
                )),
            }
        }
    }
    (out, warnings)
}

/// The finite numbers of a YAML/JSON tree by dotted key (empty keys, text,
/// lists, NaN and infinities are left out).
fn numbers(prefix: &str, v: &serde_norway::Value, out: &mut Map<String, Value>) {
    use serde_norway::Value as Y;
    match v {
        Y::Mapping(m) => {
            for (k, child) in m {
                let key = match k {
                    Y::String(s) => s.clone(),
                    Y::Number(n) => n.to_string(),
                    Y::Bool(b) => b.to_string(),
                    _ => continue,
                };
                if key.is_empty() {
                    continue;
                }
                numbers(&format!("{prefix}.{key}"), child, out);
            }
        }
        Y::Number(n) => {
            let v = if let Some(i) = n.as_i64() {
                Value::from(i)
            } else if let Some(x) = n.as_f64().filter(|x| x.is_finite()) {
                serde_json::Number::from_f64(x).map_or(Value::Null, Value::Number)
            } else {
                return;
            };
            if !v.is_null() {
                out.insert(prefix.to_string(), v);
            }
        }
        Y::Tagged(t) => numbers(prefix, &t.value, out),
        _ => {}
    }
}
