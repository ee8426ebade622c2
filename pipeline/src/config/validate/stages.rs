//! Each stage on the first pass: its name, its keys, whether it runs a
//! command (`run:`) or a built-in kind (`uses:`), and that kind.

use std::sync::Arc;

use serde_json::{Map, Value};

use super::super::span::{Part, YamlPath};
use super::super::Output;
use super::paths::normalize_output;
use super::{Draft, Validator};
use crate::registry::COMMAND_KIND;
use crate::spec::StageFactory;

const STAGE_KEYS: &[&str] = &[
    "uses",
    "with",
    "inputs",
    "run",
    "deps",
    "outs",
    "params",
    "env",
    "desc",
    "resources",
    "shell",
    "always_changed",
    "frozen",
    "matrix",
    "foreach",
];
/// The longest stage name: its log file `<stage>.log` (and the run
/// script `<stage>.sh`) must stay within a file name's 255 bytes.
pub(super) const MAX_STAGE_NAME: usize = 200;
const RUN_ONLY: &[&str] = &["deps", "outs", "params", "env", "shell"];
const USES_ONLY: &[&str] = &["with", "inputs"];

impl Validator<'_> {
    /// Checks one stage's name, keys and kind, and finds its outputs.
    pub(super) fn draft<'d>(
        &mut self,
        id: &str,
        decl: &'d Value,
        path: YamlPath,
        instance: bool,
    ) -> Option<Draft<'d>> {
        // An instance's name (`train@ols-0`) is made from a checked one.
        let base = if instance {
            id.split_once('@').map_or(id, |(b, _)| b)
        } else {
            id
        };
        self.check_stage_name(base, &path);
        let Some(decl) = decl.as_object() else {
            self.push(
                "type",
                &path,
                Part::Value,
                format!("stage `{id}` must be a mapping with `run:` or `uses:`"),
                "expected a mapping",
                None,
            );
            return None;
        };
        self.unknown_keys(decl, &path, STAGE_KEYS, "key", &format!(" in stage `{id}`"));
        for flag in ["always_changed", "frozen"] {
            if decl.get(flag).is_some_and(|v| !v.is_boolean()) {
                self.push(
                    "type",
                    &path.key(flag),
                    Part::Value,
                    format!("`{flag}` of stage `{id}` must be true or false"),
                    "not a boolean",
                    None,
                );
            }
        }
        if decl.get("desc").is_some_and(|d| !d.is_string()) {
            self.push(
                "type",
                &path.key("desc"),
                Part::Value,
                format!("`desc` of stage `{id}` must be a string"),
                "not a string",
                None,
            );
        }
        let has_run = self.check_action(id, decl, &path)?;
        let (outputs, factory) = if has_run {
            (self.run_outputs(id, decl, &path), None)
        } else {
            self.check_kind(id, decl, &path)
        };
        Some(Draft {
            id: id.to_string(),
            path,
            decl,
            factory,
            outputs,
            is_run: has_run,
        })
    }

    /// Checks that a stage name holds only letters, digits, `_` and `-`,
    /// and is short enough to name files after (its log, `<stage>.log`,
    /// within the 255 bytes a file name may have).
    fn check_stage_name(&mut self, id: &str, path: &YamlPath) {
        if id.len() > MAX_STAGE_NAME {
            self.push(
                "stage_name",
                path,
                Part::Key,
                format!(
                    "stage name `{}…` is {} characters long; the limit is {MAX_STAGE_NAME}",
                    &id[..id.char_indices().nth(40).map_or(id.len(), |(i, _)| i)],
                    id.chars().count()
                ),
                "too long",
                Some("files are named after stages (their logs), and a file name has at most 255 bytes".into()),
            );
            return;
        }
        if id.is_empty()
            || !id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            self.push(
                "stage_name",
                path,
                Part::Key,
                format!("stage name `{id}` may only hold letters, digits, `_` and `-`"),
                "invalid name",
                Some("dots separate a stage from its port in references (`stage.port`), so names cannot contain them".into()),
            );
        }
    }

    /// Checks that a stage has exactly one of `run:` and `uses:`, and no key
    /// that belongs to the other way. Returns whether it is a `run:` stage.
    fn check_action(
        &mut self,
        id: &str,
        decl: &Map<String, Value>,
        path: &YamlPath,
    ) -> Option<bool> {
        let has_run = decl.contains_key("run");
        let has_uses = decl.contains_key("uses");
        if has_run && has_uses {
            self.push(
                "run_and_uses",
                &path.key("uses"),
                Part::Key,
                format!("stage `{id}` has both `uses:` and `run:`"),
                "second way to run",
                Some("a stage is either a built-in (`uses:` with `with:`/`inputs:`) or a command (`run:` with `deps:`/`outs:`); split it into two stages".into()),
            );
            return None;
        }
        if !has_run && !has_uses {
            self.push(
                "no_action",
                path,
                Part::Key,
                format!("stage `{id}` has neither `run:` nor `uses:`"),
                "nothing to run",
                Some("add `run: <command>` or `uses: <kind>` (see `mlcycle stages`)".into()),
            );
            return None;
        }
        let (wrong, right) = if has_run {
            (USES_ONLY, "run")
        } else {
            (RUN_ONLY, "uses")
        };
        for k in wrong {
            if decl.contains_key(*k) {
                let help = if has_run {
                    "`run:` stages declare what they read with `deps:` and what they write with `outs:`"
                } else {
                    "built-in stages are wired with `inputs:` and configured with `with:`"
                };
                self.push(
                    "misplaced_field",
                    &path.key(*k),
                    Part::Key,
                    format!("`{k}` does not apply to a `{right}:` stage (`{id}`)"),
                    "not for this kind of stage",
                    Some(help.into()),
                );
            }
        }
        Some(has_run)
    }

    /// Checks that `uses:` names a registered stage kind; the kind's output
    /// ports give the stage's outputs, under `artifacts/<stage>/`.
    fn check_kind(
        &mut self,
        id: &str,
        decl: &Map<String, Value>,
        path: &YamlPath,
    ) -> (Vec<Output>, Option<Arc<dyn StageFactory>>) {
        let mut outputs = Vec::new();
        let mut factory = None;
        let kind_path = path.key("uses");
        match decl["uses"].as_str() {
            None => self.push(
                "type",
                &kind_path,
                Part::Value,
                "`uses` must be a stage kind name".into(),
                "not a string",
                None,
            ),
            Some(kind) => match self.registry.get(kind) {
                Some(f) => {
                    for port in f.outputs() {
                        let at = format!("artifacts/{id}/{}", port.file);
                        // `artifacts` may be a symlink: inside the workspace
                        // it is resolved, out of it the stage is refused.
                        match normalize_output(&self.root, &at, &mut self.paths) {
                            Ok(p) => outputs.push(Output {
                                metrics: port.name == "metrics"
                                    && port.artifact.as_str() == "metrics",
                                ..Output::new(port.name.to_string(), p)
                            }),
                            Err(why) => self.push(
                                "output_path",
                                &kind_path,
                                Part::Value,
                                format!("stage `{id}` output `{at}` {why}"),
                                "refused",
                                Some("built-in stages write under `artifacts/`; make it a folder of the workspace".into()),
                            ),
                        }
                    }
                    factory = Some(f.clone());
                }
                None => {
                    let help = match self.registry.suggest(kind) {
                        Some(s) => {
                            format!("did you mean `{s}`? `mlcycle stages` lists every kind")
                        }
                        None if kind == COMMAND_KIND => {
                            "command stages are written with `run:`".to_string()
                        }
                        None => "`mlcycle stages` lists every kind".to_string(),
                    };
                    self.push(
                        "unknown_kind",
                        &kind_path,
                        Part::Value,
                        format!("stage `{id}` uses unknown stage kind `{kind}`"),
                        "unknown kind",
                        Some(help),
                    );
                }
            },
        }
        (outputs, factory)
    }
}
