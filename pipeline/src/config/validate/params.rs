//! Params: `params_file:`, the inline `params:`, `-p` overrides, and the
//! params a stage reads.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{Map, Value};

use super::super::load::{self, LoadFailure};
use super::super::span::{Part, YamlPath};
use super::super::{FileKey, Issue};
use super::parse::failure_message;
use super::{Draft, Validator};
use crate::params;
use crate::suggest::did_you_mean;

impl Validator<'_> {
    /// Loads the params: those of `params_file:`, with the inline `params:`
    /// (which must be a mapping) merged over them.
    pub(super) fn load_params(&mut self, top: &Map<String, Value>) {
        let mut merged = Value::Object(Map::new());
        if let Some(pf) = top.get("params_file") {
            if let Some(value) = self.params_file(pf) {
                merged = value;
            }
        }
        if let Some(inline) = top.get("params") {
            if inline.is_object() {
                params::merge(&mut merged, inline.clone());
            } else if !inline.is_null() {
                self.push(
                    "type",
                    &YamlPath::root().key("params"),
                    Part::Value,
                    "`params` must be a mapping of names to values".into(),
                    "expected a mapping",
                    None,
                );
            }
        }
        self.params = merged;
    }

    /// Checks `params_file:`: a path, relative to the pipeline file, of a
    /// YAML mapping. Its text is kept so that problems can point into it.
    fn params_file(&mut self, pf: &Value) -> Option<Value> {
        let p = YamlPath::root().key("params_file");
        let Some(rel) = pf.as_str() else {
            self.push(
                "type",
                &p,
                Part::Value,
                "`params_file` must be a path".into(),
                "not a string",
                None,
            );
            return None;
        };
        let full = self.root.join(rel);
        let name = Path::new(rel).to_string_lossy().into_owned();
        let text = self.read_params_file(rel, &full, &name, &p)?;
        let mut merged = None;
        match load::parse(&text) {
            Ok(value) if value.is_object() => {
                self.check_nul(&value, &YamlPath::root(), FileKey::Params);
                merged = Some(value);
            }
            Ok(_) => self.params_issue(format!("params file `{rel}` must hold a mapping"), None),
            Err(LoadFailure::Syntax { message, offset }) => self.params_issue(
                format!("params file `{rel}`: invalid YAML: {message}"),
                offset,
            ),
            Err(other) => self.params_issue(
                format!(
                    "params file `{rel}`: {}",
                    failure_message(&full, &name, other)
                ),
                None,
            ),
        }
        self.params_source = Some((name, text));
        merged
    }

    /// Reads the text of the params file, reporting a file that cannot be
    /// read (or is too large) at `params_file:`.
    fn read_params_file(
        &mut self,
        rel: &str,
        full: &Path,
        name: &str,
        p: &YamlPath,
    ) -> Option<String> {
        match load::read_capped(full) {
            Ok(t) => Some(t),
            Err(LoadFailure::Io(e)) => {
                self.push(
                    "params_file",
                    p,
                    Part::Value,
                    format!("cannot read params file `{rel}`: {e}"),
                    "this file",
                    Some("the path is relative to the folder of the pipeline file".into()),
                );
                None
            }
            Err(other) => {
                let msg = failure_message(full, name, other);
                self.push(
                    "params_file",
                    p,
                    Part::Value,
                    format!("params file `{rel}`: {msg}"),
                    "this file",
                    None,
                );
                None
            }
        }
    }

    /// Reports a problem inside the params file, at `offset` in it when
    /// known (else at its top).
    fn params_issue(&mut self, message: String, offset: Option<usize>) {
        self.issues.push(Issue {
            code: "params_file",
            message,
            help: None,
            file: FileKey::Params,
            path: if offset.is_some() {
                None
            } else {
                Some(YamlPath::root())
            },
            part: Part::Value,
            label: "here".into(),
            offset,
        });
    }

    /// Applies `-p key=value` overrides, which may only change params that
    /// exist.
    pub(super) fn apply_overrides(&mut self, overrides: &[(String, String)]) {
        for (key, raw) in overrides {
            if load::is_long_integer(raw.trim()) {
                self.override_issue(
                    "long_integer",
                    format!("`-p {key}={raw}`: the integer does not fit in 64 bits and would become an inexact floating-point number"),
                    Some(format!("quote it to pass it as text: -p '{key}=\"{raw}\"'")),
                );
                continue;
            }
            let value = load::parse_scalar(raw);
            // A NUL byte, typed or from a YAML escape (`"a\0b"`), cannot be
            // passed to a command.
            if key.contains('\0') || value.as_str().is_some_and(|v| v.contains('\0')) {
                self.override_issue(
                    "nul_byte",
                    format!(
                        "`-p {}=…`: a NUL byte cannot be passed to a command",
                        key.replace('\0', "\\0")
                    ),
                    None,
                );
                continue;
            }
            if !params::set_existing(&mut self.params, key, value) {
                let keys = params::all_keys(&self.params);
                let mut help = did_you_mean(key, &keys);
                if help.is_empty() {
                    help = "overrides change existing params only; declare the param under `params:` first".into();
                }
                self.issues.push(Issue {
                    code: "unknown_param",
                    message: format!("`-p {key}={raw}`: the pipeline has no param `{key}`"),
                    help: Some(help),
                    file: FileKey::Pipeline,
                    path: Some(YamlPath::root().key("params")),
                    part: Part::Key,
                    label: "params are declared here".into(),
                    offset: None,
                });
            }
        }
    }

    /// A problem with a `-p` override, which has no place in a file: shown
    /// at the top of the pipeline.
    fn override_issue(&mut self, code: &'static str, message: String, help: Option<String>) {
        self.issues.push(Issue {
            code,
            message,
            help,
            file: FileKey::Pipeline,
            path: Some(YamlPath::root()),
            part: Part::Key,
            label: "overridden here".into(),
            offset: None,
        });
    }

    /// Checks that the param `key` read by stage `d` is defined, and records
    /// its value among the stage's params.
    pub(super) fn use_param(
        &mut self,
        d: &Draft<'_>,
        key: &str,
        path: &YamlPath,
        into: &mut BTreeMap<String, Value>,
    ) {
        match params::get(&self.params, key) {
            // Mappings in key order: reordering a subtree's keys in the
            // params file changes no value, so it must not change the
            // stage's key (nor what `$MLCYCLE_PARAMS` shows the command).
            Some(v) => {
                into.insert(key.to_string(), params::canonical(v));
            }
            None => {
                let keys = params::all_keys(&self.params);
                let mut help = did_you_mean(key, &keys);
                if help.is_empty() {
                    help = "declare it under the top-level `params:`".into();
                }
                self.push(
                    "undefined_param",
                    path,
                    Part::Value,
                    format!("stage `{}` reads param `{key}`, which is not defined", d.id),
                    "undefined param",
                    Some(help),
                );
            }
        }
    }

    /// Checks the `params:` of a `run:` stage: a list of param keys, each
    /// defined; their values are recorded among the stage's params.
    pub(super) fn check_stage_params(
        &mut self,
        d: &Draft<'_>,
        stage_params: &mut BTreeMap<String, Value>,
    ) {
        let Some(list) = d.decl.get("params") else {
            return;
        };
        let lpath = d.path.key("params");
        match list.as_array() {
            None => self.push(
                "type",
                &lpath,
                Part::Value,
                "`params` must be a list of param keys".into(),
                "expected a list",
                None,
            ),
            Some(list) => {
                for (i, item) in list.iter().enumerate() {
                    match item.as_str() {
                        Some(k) => self.use_param(d, k, &lpath.index(i), stage_params),
                        None => self.push(
                            "type",
                            &lpath.index(i),
                            Part::Value,
                            "param keys must be strings like `train.lr`".into(),
                            "not a string",
                            None,
                        ),
                    }
                }
            }
        }
    }
}

impl Validator<'_> {
    /// Reports every string (key or value) in `v` that holds a NUL byte: no
    /// command line, environment variable or file name can carry one, so it
    /// is refused here, at its key, rather than when the stage starts.
    pub(super) fn check_nul(&mut self, v: &Value, path: &YamlPath, file: FileKey) {
        // Nearly every document has none: look first, without building a
        // path for every node (that cost a fifth of a no-op `status`).
        if !has_nul(v) {
            return;
        }
        let report = |this: &mut Self, path: &YamlPath, part: Part| {
            this.issues.push(Issue {
                code: "nul_byte",
                message: "a NUL byte cannot be passed to a command or a file name".into(),
                help: Some("remove the `\\0` (or `\\x00`) from the string".into()),
                file,
                path: Some(path.clone()),
                part,
                label: "holds a NUL byte".into(),
                offset: None,
            });
        };
        match v {
            Value::String(s) if s.contains('\0') => report(self, path, Part::Value),
            Value::Array(a) => {
                for (i, x) in a.iter().enumerate() {
                    self.check_nul(x, &path.index(i), file);
                }
            }
            Value::Object(m) => {
                for (k, x) in m {
                    let p = path.key(k.clone());
                    if k.contains('\0') {
                        report(self, &p, Part::Key);
                    }
                    self.check_nul(x, &p, file);
                }
            }
            _ => {}
        }
    }
}

/// Whether any string (key or value) in `v` holds a NUL byte.
fn has_nul(v: &Value) -> bool {
    match v {
        Value::String(s) => s.as_bytes().contains(&0),
        Value::Array(a) => a.iter().any(has_nul),
        Value::Object(m) => m
            .iter()
            .any(|(k, x)| k.as_bytes().contains(&0) || has_nul(x)),
        _ => false,
    }
}
