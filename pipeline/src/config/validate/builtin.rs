//! Built-in (`uses:`) stages: `with:` (which may use `${params.…}`), and
//! building the stage from it.

use foldhash::HashMap;
use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{Map, Value};

use super::super::span::{Part, YamlPath};
use super::super::{Action, Input, Source, StageDef};
use super::paths::{normalize_any, stem};
use super::{Draft, Validator};
use crate::interp::{self, Namespace, Piece};
use crate::params;
use crate::spec::{ParamError, StageFactory};
use crate::stage::Stage;

impl Validator<'_> {
    /// Pass 2 for a built-in stage: checks its `inputs:` and `with:`, and
    /// builds the stage when neither has a problem.
    pub(super) fn finish_builtin(
        &mut self,
        d: &Draft<'_>,
        drafts: &[Draft<'_>],
        ids: &HashMap<&str, usize>,
        out_index: &HashMap<&str, (usize, usize)>,
    ) -> Option<StageDef> {
        let before = self.issues.len();
        let mut stage_params: BTreeMap<String, Value> = BTreeMap::new();
        let mut config: BTreeMap<String, Value> = BTreeMap::new();
        let factory = d.factory.clone()?;
        let ports = factory.inputs();
        let mut inputs = self.check_inputs(d, factory.as_ref(), ports, drafts, ids, out_index);
        self.check_required_inputs(d, factory.as_ref(), ports, &inputs);
        let mut with = d
            .decl
            .get("with")
            .cloned()
            .unwrap_or(Value::Object(Map::new()));
        if with.is_null() {
            with = Value::Object(Map::new());
        }
        let wpath = d.path.key("with");
        // A problem with `inputs:` does not hide the ones in `with:`: both
        // are reported in the same run of `validate`.
        let inputs_ok = self.issues.len() == before;
        let before_with = self.issues.len();
        self.interpolate_with(d, &mut with, &wpath, &mut stage_params);
        if self.issues.len() > before_with {
            return None;
        }
        match factory.build(&with) {
            Ok(_) if !inputs_ok => None,
            Ok(stage) => {
                let checked = params::canonical(&stage.params());
                config.insert("with".into(), checked);
                // The inputs are fingerprinted by key, in no order; what a
                // gathering port holds is a list, whose order the stage
                // sees (ties keep it), so that order is fingerprinted too.
                let gathered = super::gather_order(inputs.iter().filter(|i| i.gathered.is_some()));
                if !gathered.is_empty() {
                    config.insert("gathered".into(), Value::Object(gathered));
                }
                if !self.check_file_deps(d, stage.as_ref(), &wpath, &mut inputs, out_index) {
                    return None;
                }
                // `mlcycle validate` also looks into the files the params
                // name (a CSV header for `target:`), unless a stage writes
                // them: what is there now is not what the stage will read.
                let written = inputs.iter().any(|i| {
                    matches!(i.source, Source::Stage { .. })
                        && i.gathered.is_none()
                        && !ports.iter().any(|p| p.name == i.key)
                });
                if written {
                    self.unread.insert(d.id.clone());
                }
                if !self.allow_missing && !written {
                    let problems = stage.check_files(&self.root);
                    let none = problems.is_empty();
                    for e in problems {
                        self.bad_param(d, factory.as_ref(), e, &wpath);
                    }
                    if !none {
                        return None;
                    }
                }
                Some(StageDef {
                    id: d.id.clone(),
                    kind: factory.kind().into(),
                    version: factory.version(),
                    inputs,
                    outputs: d.outputs.clone(),
                    params: stage_params,
                    config,
                    action: Action::Builtin(Arc::from(stage)),
                    always_changed: d.flag("always_changed"),
                    frozen: d.flag("frozen"),
                })
            }
            Err(errors) => {
                for e in errors {
                    self.bad_param(d, factory.as_ref(), e, &wpath);
                }
                None
            }
        }
    }

    /// Substitutes `${params.…}` in the strings of `with:`, checking that
    /// only params are referred to and that they are defined. A string that
    /// is exactly one reference takes the param's value, type and all.
    fn interpolate_with(
        &mut self,
        d: &Draft<'_>,
        v: &mut Value,
        path: &YamlPath,
        stage_params: &mut BTreeMap<String, Value>,
    ) {
        match v {
            Value::String(s) if s.contains("${") => {
                if let Some(value) = self.interpolate_string(d, s, path, stage_params) {
                    *v = value;
                }
            }
            Value::Object(m) => {
                for (k, child) in m.iter_mut() {
                    self.interpolate_with(d, child, &path.key(k.clone()), stage_params);
                }
            }
            Value::Array(a) => {
                for (i, child) in a.iter_mut().enumerate() {
                    self.interpolate_with(d, child, &path.index(i), stage_params);
                }
            }
            _ => {}
        }
    }

    /// One string of `with:` for [`Self::interpolate_with`]: its value
    /// with the params substituted, or `None` after reporting a problem.
    fn interpolate_string(
        &mut self,
        d: &Draft<'_>,
        s: &str,
        path: &YamlPath,
        stage_params: &mut BTreeMap<String, Value>,
    ) -> Option<Value> {
        let pieces = self.parse_interpolation(d, s, path)?;
        for p in &pieces {
            if let Piece::Ref(ns, name) = p {
                if *ns != Namespace::Params {
                    self.push(
                        "interpolation",
                        path,
                        Part::Value,
                        format!(
                            "stage `{}`: `with:` values may use `${{params.…}}` only",
                            d.id
                        ),
                        "here",
                        Some("built-in stages receive their inputs through `inputs:`".into()),
                    );
                    return None;
                }
                let n = self.issues.len();
                self.use_param(d, name, path, stage_params);
                if self.issues.len() != n {
                    return None;
                }
            }
        }
        // A string that is exactly one reference keeps the param's type.
        if let [Piece::Ref(Namespace::Params, name)] = pieces.as_slice() {
            Some(
                params::get(&self.params, name)
                    .cloned()
                    .unwrap_or(Value::Null),
            )
        } else {
            let params = &self.params;
            Some(Value::String(interp::render(&pieces, |_, name| {
                params::get(params, name)
                    .map(|v| params::to_arg(&params::canonical(v)))
                    .unwrap_or_default()
            })))
        }
    }

    /// Checks that the files a built stage reads (named in its `with:`)
    /// exist, and adds them to its inputs.
    fn check_file_deps(
        &mut self,
        d: &Draft<'_>,
        stage: &dyn Stage,
        wpath: &YamlPath,
        inputs: &mut Vec<Input>,
        out_index: &HashMap<&str, (usize, usize)>,
    ) -> bool {
        let mut file_deps_ok = true;
        for f in stage.file_deps() {
            // A path param is a dep like any other: another stage's output,
            // a file inside an output folder, a file that exists, or a
            // folder other stages write into.
            let found = normalize_any(&f)
                .map(|n| self.in_workspace(n))
                .and_then(|n| self.find_path(Some(&n), out_index));
            // Marked at the param that holds the path, when one does.
            let at = || {
                d.decl
                    .get("with")
                    .and_then(|w| w.as_object())
                    .and_then(|w| w.iter().find(|(_, v)| v.as_str() == Some(f.as_str())))
                    .map(|(k, _)| (wpath.key(k.clone()), Part::Value))
                    .unwrap_or((wpath.clone(), Part::Key))
            };
            if let Some(f @ (_, Source::File(rel))) = &found {
                let (p, part) = at();
                if self.refuse_own_state(&d.id, rel, &p, part) {
                    file_deps_ok = false;
                    continue;
                }
                // A named pipe or a device is refused here as in `deps:`.
                let before = self.issues.len();
                self.check_readable(d, f, &p);
                if self.issues.len() > before {
                    file_deps_ok = false;
                    continue;
                }
            }
            match found {
                Some((path, source)) => inputs.push(Input {
                    key: path.clone(),
                    name: stem(&path),
                    path,
                    source,
                    written_by: Vec::new(),
                    gathered: None,
                }),
                None if self.allow_missing && normalize_any(&f).is_some() => {
                    let path = normalize_any(&f)
                        .map(|n| self.in_workspace(n))
                        .expect("checked");
                    self.missing.push(format!(
                        "stage `{}` reads missing file `{f}` (create the file, or name the output of the stage that writes it)",
                        d.id
                    ));
                    inputs.push(Input {
                        key: path.clone(),
                        name: stem(&path),
                        source: Source::File(path.clone()),
                        path,
                        written_by: Vec::new(),
                        gathered: None,
                    });
                }
                None => {
                    file_deps_ok = false;
                    let at = at();
                    self.push(
                        "missing_input",
                        &at.0,
                        at.1,
                        format!("stage `{}` reads missing file `{f}`", d.id),
                        "not found",
                        Some(
                            "paths are relative to the workspace root; create the file, or name \
                             the output of the stage that writes it"
                                .into(),
                        ),
                    );
                }
            }
        }
        file_deps_ok
    }

    /// Reports why the stage's kind refused its `with:`, at the param the
    /// error names.
    pub(super) fn bad_param(
        &mut self,
        d: &Draft<'_>,
        factory: &dyn StageFactory,
        e: ParamError,
        wpath: &YamlPath,
    ) {
        if let Some(port) = &e.input {
            let at = d.path.key("inputs").key(port.clone());
            self.push(
                "bad_input",
                &at,
                Part::Value,
                format!("stage `{}` ({}): {}", d.id, factory.kind(), e.message),
                "this input",
                e.help,
            );
            return;
        }
        // Walk `with:` along the error's path: a segment is a list index
        // where the value there is a list.
        let mut p = wpath.clone();
        let mut at = d.decl.get("with");
        for seg in &e.path {
            match (at, seg.parse::<usize>()) {
                (Some(Value::Array(items)), Ok(i)) => {
                    p = p.index(i);
                    at = items.get(i);
                }
                _ => {
                    p = p.key(seg.clone());
                    at = at.and_then(|v| v.get(seg.as_str()));
                }
            }
        }
        let part = if e.path.is_empty() || e.at_key {
            Part::Key
        } else {
            Part::Value
        };
        self.push(
            "bad_param",
            &p,
            part,
            format!("stage `{}` ({}): {}", d.id, factory.kind(), e.message),
            "here",
            e.help.or_else(|| {
                Some(format!(
                    "`mlcycle stages {}` lists its params",
                    factory.kind()
                ))
            }),
        );
    }
}
