//! What stages write: the `outs:` of `run:` stages, and no path written by
//! two stages.

use foldhash::{HashMap, HashMapExt};

use serde_json::{Map, Value};

use super::super::span::{Part, YamlPath};
use super::super::Output;
use super::paths::{normalize_output, stem};
use super::{Draft, Validator};

/// The keys an output's mapping may have.
const OUT_KEYS: &[&str] = &["path", "persist", "cache", "metrics", "plots"];

/// `persist:`, `cache:`, `metrics:` and `plots:` of one output.
struct OutFlags {
    persist: bool,
    cache: bool,
    metrics: bool,
    plots: bool,
}

impl Default for OutFlags {
    fn default() -> Self {
        Self {
            persist: false,
            cache: true,
            metrics: false,
            plots: false,
        }
    }
}

impl Validator<'_> {
    /// Checks the `outs:` of a `run:` stage: a list of paths inside the
    /// workspace, each optionally named, with no name used twice.
    pub(super) fn run_outputs(
        &mut self,
        id: &str,
        decl: &Map<String, Value>,
        path: &YamlPath,
    ) -> Vec<Output> {
        let mut outs = Vec::new();
        let Some(list) = decl.get("outs") else {
            return outs;
        };
        let lpath = path.key("outs");
        let Some(list) = list.as_array() else {
            self.push(
                "type",
                &lpath,
                Part::Value,
                "`outs` must be a list of paths".into(),
                "expected a list",
                None,
            );
            return outs;
        };
        let mut names: HashMap<String, usize> = HashMap::new();
        for (i, item) in list.iter().enumerate() {
            let ipath = lpath.index(i);
            let Some((name, raw, flags)) = self.output_entry(id, item, &ipath) else {
                continue;
            };
            let norm = match normalize_output(&self.root, &raw, &mut self.paths) {
                Ok(p) => p,
                Err(why) => {
                    self.push(
                        "output_path",
                        &ipath,
                        Part::Value,
                        format!("stage `{id}` output `{raw}` {why}"),
                        "refused",
                        Some("outputs must be relative paths inside the workspace, e.g. `out/model.bin`".into()),
                    );
                    continue;
                }
            };
            let name = name.unwrap_or_else(|| stem(&norm));
            if let Some(prev) = names.insert(name.clone(), i) {
                self.push(
                    "duplicate_output_name",
                    &ipath,
                    Part::Value,
                    format!("stage `{id}` has two outputs named `{name}` (items {prev} and {i})"),
                    "same name",
                    Some(format!("name one of them: `- other_name: {raw}`")),
                );
            }
            outs.push(Output {
                persist: flags.persist,
                cache: flags.cache,
                metrics: flags.metrics,
                plots: flags.plots,
                ..Output::new(name, norm)
            });
        }
        outs
    }

    /// One `outs:` item: `path`, `name: path`, `path: {persist: …, cache: …}`
    /// (as in DVC) or `name: {path: …, persist: …, cache: …}`.
    fn output_entry(
        &mut self,
        id: &str,
        item: &Value,
        path: &YamlPath,
    ) -> Option<(Option<String>, String, OutFlags)> {
        let Some((key, Value::Object(m))) = item
            .as_object()
            .filter(|m| m.len() == 1)
            .and_then(|m| m.iter().next())
        else {
            let (name, raw) = self.named_entry(item, path, "outs")?;
            return Some((name, raw, OutFlags::default()));
        };
        let fpath = path.key(key);
        self.unknown_keys(
            m,
            &fpath,
            OUT_KEYS,
            "key",
            &format!(" of an output of stage `{id}`"),
        );
        let mut flags = OutFlags::default();
        for (flag, slot) in [
            ("persist", &mut flags.persist),
            ("cache", &mut flags.cache),
            ("metrics", &mut flags.metrics),
            ("plots", &mut flags.plots),
        ] {
            match m.get(flag) {
                None => {}
                Some(Value::Bool(b)) => *slot = *b,
                Some(_) => self.push(
                    "type",
                    &fpath.key(flag),
                    Part::Value,
                    format!("`{flag}` of output `{key}` of stage `{id}` must be true or false"),
                    "not a boolean",
                    None,
                ),
            }
        }
        match m.get("path") {
            None => Some((None, key.clone(), flags)),
            Some(Value::String(p)) => Some((Some(key.clone()), p.clone(), flags)),
            Some(_) => {
                self.push(
                    "type",
                    &fpath.key("path"),
                    Part::Value,
                    format!("`path` of output `{key}` of stage `{id}` must be a path (a string)"),
                    "not a string",
                    None,
                );
                None
            }
        }
    }

    /// Checks that no two stages write the same path, and that no stage
    /// writes inside another stage's output folder.
    pub(super) fn check_duplicate_outputs(&mut self, drafts: &[Draft<'_>]) {
        let mut by_path: HashMap<&str, (usize, usize)> = HashMap::new();
        let mut conflicts = Vec::new();
        for (si, d) in drafts.iter().enumerate() {
            for (oi, o) in d.outputs.iter().enumerate() {
                if let Some(&(sj, _)) = by_path.get(o.path.as_str()) {
                    conflicts.push((si, oi, sj, o.path.clone()));
                } else {
                    by_path.insert(o.path.as_str(), (si, oi));
                }
            }
        }
        // An output inside another stage's output folder: look each path's
        // ancestors up (sorting would miss `out` / `out.txt` / `out/x.txt`).
        for (si, d) in drafts.iter().enumerate() {
            for (oi, o) in d.outputs.iter().enumerate() {
                let mut prefix = o.path.as_str();
                while let Some(i) = prefix.rfind('/') {
                    prefix = &prefix[..i];
                    if let Some(&(sj, _)) = by_path.get(prefix) {
                        if sj != si {
                            conflicts.push((si, oi, sj, o.path.clone()));
                        }
                        break;
                    }
                }
            }
        }
        for (si, oi, sj, p) in conflicts {
            let d = &drafts[si];
            let other = drafts[sj].id.clone();
            let path = out_path(d, oi);
            self.push(
                "duplicate_output",
                &path,
                Part::Value,
                format!(
                    "stage `{}` writes `{p}`, which stage `{other}` also writes",
                    d.id
                ),
                "written twice",
                Some(
                    "each file may have one producer; give one of the stages another output path"
                        .into(),
                ),
            );
        }
    }
}

/// Each output path, mapped to the stage and output that write it (the
/// first, when two do).
pub(super) fn output_index<'a>(drafts: &'a [Draft<'_>]) -> HashMap<&'a str, (usize, usize)> {
    let mut out_index: HashMap<&str, (usize, usize)> = HashMap::new();
    for (si, d) in drafts.iter().enumerate() {
        for (oi, o) in d.outputs.iter().enumerate() {
            out_index.entry(o.path.as_str()).or_insert((si, oi));
        }
    }
    out_index
}

/// Where output `oi` of a stage is declared: its `outs:` item, or `uses:`
/// for a built-in stage.
fn out_path(d: &Draft<'_>, oi: usize) -> YamlPath {
    if d.is_run {
        d.path.key("outs").index(oi)
    } else {
        d.path.key("uses")
    }
}
