//! The top level of the pipeline file: that it is a mapping of known keys,
//! its `name`, the `stages` mapping, `executor:` and `cache_dir:`.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use super::super::span::{Part, YamlPath};
use super::Validator;

const TOP_KEYS: &[&str] = &[
    "name",
    "params",
    "params_file",
    "stages",
    "executor",
    "resources",
    "cache_dir",
];

impl Validator<'_> {
    /// Checks that the document is a mapping, and reports its unknown
    /// top-level keys.
    pub(super) fn check_top<'v>(&mut self, doc: &'v Value) -> Option<&'v Map<String, Value>> {
        let root_path = YamlPath::root();
        let Some(top) = doc.as_object() else {
            self.push(
                "not_a_mapping",
                &root_path,
                Part::Value,
                "a pipeline file must be a mapping with `name`, `params` and `stages`".into(),
                "expected a mapping",
                None,
            );
            return None;
        };
        self.unknown_keys(top, &root_path, TOP_KEYS, "top-level key", "");
        Some(top)
    }

    /// Checks that `name:` is a string; without it the pipeline is named
    /// after its folder.
    pub(super) fn check_name(&mut self, top: &Map<String, Value>) -> String {
        match top.get("name") {
            None => self
                .root
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "pipeline".into()),
            Some(Value::String(s)) => s.clone(),
            Some(_) => {
                self.push(
                    "type",
                    &YamlPath::root().key("name"),
                    Part::Value,
                    "`name` must be a string".into(),
                    "not a string",
                    None,
                );
                String::new()
            }
        }
    }

    /// Checks that `stages:` is there and is a mapping.
    pub(super) fn check_stages<'v>(
        &mut self,
        top: &'v Map<String, Value>,
    ) -> Option<&'v Map<String, Value>> {
        let root_path = YamlPath::root();
        let Some(stages) = top.get("stages") else {
            self.push(
                "missing_stages",
                &root_path,
                Part::Value,
                "the pipeline has no `stages` mapping".into(),
                "add `stages:` here",
                Some("declare stages as `stages: {name: {run: ...}}`".into()),
            );
            return None;
        };
        let Some(stages) = stages.as_object() else {
            self.push(
                "type",
                &root_path.key("stages"),
                Part::Value,
                "`stages` must be a mapping from stage name to stage".into(),
                "expected a mapping",
                None,
            );
            return None;
        };
        Some(stages)
    }

    /// Checks that `executor:`, where stages run, is `local` or `slurm`.
    pub(super) fn check_executor(&mut self, top: &Map<String, Value>) -> Option<String> {
        match top.get("executor") {
            None => None,
            Some(Value::String(e)) if e == "local" || e == "slurm" => Some(e.clone()),
            Some(other) => {
                self.push(
                    "executor",
                    &YamlPath::root().key("executor"),
                    Part::Value,
                    format!("`executor` must be `local` or `slurm`, got {other}"),
                    "unknown executor",
                    Some("`mlcycle run --executor` overrides it for one run".into()),
                );
                None
            }
        }
    }

    /// Checks that `cache_dir:` is a folder path, and resolves a relative
    /// one against the workspace.
    pub(super) fn check_cache_dir(&mut self, top: &Map<String, Value>) -> Option<PathBuf> {
        match top.get("cache_dir") {
            None => None,
            Some(Value::String(d)) if !d.trim().is_empty() => {
                let p = Path::new(d.trim());
                Some(if p.is_absolute() {
                    p.to_path_buf()
                } else {
                    self.root.join(p)
                })
            }
            Some(other) => {
                self.push(
                    "type",
                    &YamlPath::root().key("cache_dir"),
                    Part::Value,
                    format!("`cache_dir` must be a folder path, got {other}"),
                    "not a path",
                    Some("e.g. `cache_dir: /shared/mlcycle-cache`".into()),
                );
                None
            }
        }
    }
}
