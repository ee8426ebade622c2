//! Every check made on a pipeline before anything runs. Problems are
//! collected as [`Issue`]s and reported together.

mod cycles;
mod outputs;
mod params;
mod parse;
mod paths;
mod resources;
mod shape;
mod stages;
mod top;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{Map, Value};

use self::parse::{cached_parse, display_name, failure, save_parse};
use self::paths::{normalize_any, stem};
use super::load;
use super::span::{Part, YamlPath};
use super::{Action, ConfigError, FileKey, Input, Issue, Output, Pipeline, Source, StageDef};
use crate::interp::{self, Namespace, Piece};
use crate::registry::{StageRegistry, COMMAND_KIND};
use crate::stage::{Artifact, StageFactory};
use crate::suggest::did_you_mean;

/// What to load a pipeline with.
pub struct LoadOptions<'a> {
    pub registry: &'a StageRegistry,
    /// `-p key=value` overrides, as given.
    pub overrides: &'a [(String, String)],
    /// A file where the parsed pipeline is kept, keyed by the BLAKE3 hash of
    /// its text, so an unchanged pipeline skips the YAML parser (JSON parses
    /// several times faster). `None`: always parse.
    pub parse_cache: Option<&'a Path>,
}

/// Reads, checks and builds the pipeline at `file`.
pub fn load_pipeline(file: &Path, opts: &LoadOptions<'_>) -> Result<Pipeline, ConfigError> {
    let name = display_name(file);
    let text = match load::read_capped(file) {
        Ok(t) => t,
        Err(f) => return Err(failure(file, &name, "", f)),
    };
    let doc = match cached_parse(opts.parse_cache, &text) {
        Some(d) => d,
        None => match load::parse(&text) {
            Ok(d) => {
                save_parse(opts.parse_cache, &text, &d);
                d
            }
            Err(f) => return Err(failure(file, &name, &text, f)),
        },
    };
    let root = file
        .parent()
        .map(|p| {
            if p.as_os_str().is_empty() {
                Path::new(".")
            } else {
                p
            }
        })
        .unwrap_or(Path::new("."));
    let root = root.canonicalize().unwrap_or_else(|_| root.to_path_buf());
    let mut v = Validator {
        issues: Vec::new(),
        registry: opts.registry,
        root: root.clone(),
        params: Value::Object(Map::new()),
        params_source: None,
        safe_dirs: HashSet::new(),
    };
    let pipeline = v.pipeline(&doc, opts.overrides, file);
    if v.issues.is_empty() {
        if let Some(p) = pipeline {
            return Ok(p);
        }
    }
    let mut sources = vec![(FileKey::Pipeline, name, text)];
    if let Some((pname, ptext)) = v.params_source.take() {
        sources.push((FileKey::Params, pname, ptext));
    }
    Err(ConfigError::locate(file, &sources, v.issues))
}

/// A stage after the first pass: its outputs are known, its inputs not yet.
struct Draft<'d> {
    id: String,
    path: YamlPath,
    decl: &'d Map<String, Value>,
    factory: Option<Arc<dyn StageFactory>>,
    outputs: Vec<Output>,
    is_run: bool,
}

struct Validator<'r> {
    issues: Vec<Issue>,
    registry: &'r StageRegistry,
    root: PathBuf,
    params: Value,
    params_source: Option<(String, String)>,
    /// Folders already checked not to be symlinks leading out.
    safe_dirs: HashSet<PathBuf>,
}

impl Validator<'_> {
    #[allow(clippy::too_many_arguments)]
    fn push(
        &mut self,
        code: &'static str,
        path: &YamlPath,
        part: Part,
        message: String,
        label: &str,
        help: Option<String>,
    ) {
        self.issues.push(Issue {
            code,
            message,
            help: help.filter(|h| !h.is_empty()),
            file: FileKey::Pipeline,
            path: Some(path.clone()),
            part,
            label: label.to_string(),
            offset: None,
        });
    }

    /// Checks the whole pipeline and builds it. The checks run in the order
    /// their problems are reported.
    fn pipeline(
        &mut self,
        doc: &Value,
        overrides: &[(String, String)],
        file: &Path,
    ) -> Option<Pipeline> {
        let top = self.check_top(doc)?;
        let name = self.check_name(top);
        self.load_params(top);
        self.apply_overrides(overrides);
        let stages = self.check_stages(top)?;
        let stages_path = YamlPath::root().key("stages");

        // Pass 1: kinds and outputs.
        let mut drafts: Vec<Draft<'_>> = Vec::with_capacity(stages.len());
        for (id, decl) in stages {
            if let Some(d) = self.draft(id, decl, &stages_path) {
                drafts.push(d);
            }
        }
        let ids: HashMap<&str, usize> = drafts
            .iter()
            .enumerate()
            .map(|(i, d)| (d.id.as_str(), i))
            .collect();
        self.check_duplicate_outputs(&drafts);

        // Pass 2: inputs, params, actions.
        let out_index = outputs::output_index(&drafts);
        let defs: Vec<Option<StageDef>> = drafts
            .iter()
            .map(|d| self.finish(d, &drafts, &ids, &out_index))
            .collect();
        self.check_cycles(&drafts, &defs);
        // Where stages run.
        let executor = self.check_executor(top);
        let cache_dir = self.check_cache_dir(top);
        let resources = self.check_resources(top, &drafts);

        if !self.issues.is_empty() || defs.iter().any(Option::is_none) {
            return None;
        }
        let defs: Vec<StageDef> = defs.into_iter().flatten().collect();

        Some(Pipeline {
            name,
            root: self.root.clone(),
            file: file.to_path_buf(),
            params: std::mem::take(&mut self.params),
            stages: defs,
            cache_dir,
            executor,
            resources,
        })
    }

    /// Resolves a dep or input written as a path or a `stage.port` reference.
    #[allow(clippy::too_many_arguments)]
    fn resolve(
        &mut self,
        stage: &Draft<'_>,
        raw: &str,
        path: &YamlPath,
        drafts: &[Draft<'_>],
        ids: &HashMap<&str, usize>,
        out_index: &HashMap<&str, (usize, usize)>,
    ) -> Option<(String, Source)> {
        // As a reference: `stage.port`.
        let mut unknown_port: Option<(usize, &str)> = None;
        let as_ref = raw.split_once('.').and_then(|(sid, port)| {
            let &si = ids.get(sid)?;
            match drafts[si].outputs.iter().position(|o| o.name == port) {
                Some(oi) => Some((si, oi)),
                None => {
                    unknown_port = Some((si, port));
                    None
                }
            }
        });
        // As a path: another stage's output (or a file inside an output
        // folder), or a file that exists.
        let norm = normalize_any(raw);
        let as_path: Option<(String, Source)> = norm.as_ref().and_then(|norm| {
            if let Some(&(si, oi)) = out_index.get(norm.as_str()) {
                return Some((
                    norm.clone(),
                    Source::Stage {
                        stage: si,
                        output: oi,
                    },
                ));
            }
            let mut prefix = norm.as_str();
            while let Some(i) = prefix.rfind('/') {
                prefix = &prefix[..i];
                if let Some(&(si, oi)) = out_index.get(prefix) {
                    return Some((
                        norm.clone(),
                        Source::Stage {
                            stage: si,
                            output: oi,
                        },
                    ));
                }
            }
            let full = if Path::new(norm).is_absolute() {
                PathBuf::from(norm)
            } else {
                self.root.join(norm)
            };
            full.exists()
                .then(|| (norm.clone(), Source::File(norm.clone())))
        });
        match (as_ref, as_path) {
            (Some((si, oi)), Some((_, src)))
                if src
                    != (Source::Stage {
                        stage: si,
                        output: oi,
                    }) =>
            {
                let port = &drafts[si].outputs[oi].name;
                self.push(
                    "ambiguous_ref",
                    path,
                    Part::Value,
                    format!(
                        "`{raw}` in stage `{}` is both output `{port}` of stage `{}` and an existing path",
                        stage.id, drafts[si].id
                    ),
                    "ambiguous",
                    Some(format!("write `./{raw}` for the path, or rename the file")),
                );
                return None;
            }
            (Some((si, oi)), _) => {
                return Some((
                    drafts[si].outputs[oi].path.clone(),
                    Source::Stage {
                        stage: si,
                        output: oi,
                    },
                ));
            }
            (None, Some(found)) => return Some(found),
            (None, None) => {}
        }
        if norm.is_none() {
            self.push(
                "dep_path",
                path,
                Part::Value,
                format!("stage `{}` has an empty dependency", stage.id),
                "empty",
                None,
            );
            return None;
        }
        // `fit.py` in stage `fit` is a missing script, not a reference to
        // the stage's own output (which a stage cannot depend on).
        let unknown_port = unknown_port.filter(|(si, _)| drafts[*si].id != stage.id);
        if let Some((si, port)) = unknown_port {
            let target = &drafts[si];
            let names: Vec<&str> = target.outputs.iter().map(|o| o.name.as_str()).collect();
            let mut help = did_you_mean(port, &names);
            if help.is_empty() {
                help = if names.is_empty() {
                    format!("stage `{}` declares no outputs", target.id)
                } else {
                    format!("stage `{}` has outputs: {}", target.id, names.join(", "))
                };
                help.push_str(&format!(
                    "; if `{raw}` is meant as a file, it does not exist"
                ));
            }
            self.push(
                "unknown_port",
                path,
                Part::Value,
                format!(
                    "stage `{}` has no output `{port}` (referenced by stage `{}`)",
                    target.id, stage.id
                ),
                "unknown output",
                Some(help),
            );
            return None;
        }
        let refs: Vec<String> = drafts
            .iter()
            .filter(|d| d.id != stage.id)
            .flat_map(|d| {
                d.outputs
                    .iter()
                    .flat_map(move |o| [format!("{}.{}", d.id, o.name), o.path.clone()])
            })
            .collect();
        let mut help = did_you_mean(raw, &refs);
        if help.is_empty() {
            help = "create the file, or refer to another stage's output as `stage.port` or by its path".into();
        }
        // `trian.model` (close to a stage name) reads as a mistyped
        // reference; `missing.csv` as a missing file.
        let near_stage = raw
            .split_once('.')
            .filter(|_| !raw.contains('/'))
            .filter(|(sid, _)| !ids.contains_key(sid))
            .and_then(|(sid, _)| {
                crate::suggest::closest(sid, drafts.iter().map(|d| d.id.as_str())).map(|_| sid)
            });
        let message = if let Some(sid) = near_stage {
            format!(
                "stage `{}` depends on `{raw}`: there is no such file, and no stage named `{sid}`",
                stage.id
            )
        } else {
            format!("stage `{}` depends on missing file `{raw}`", stage.id)
        };
        self.push(
            "missing_input",
            path,
            Part::Value,
            message,
            "not found",
            Some(help),
        );
        None
    }

    fn finish(
        &mut self,
        d: &Draft<'_>,
        drafts: &[Draft<'_>],
        ids: &HashMap<&str, usize>,
        out_index: &HashMap<&str, (usize, usize)>,
    ) -> Option<StageDef> {
        let before = self.issues.len();
        let mut inputs: Vec<Input> = Vec::new();
        let mut stage_params: BTreeMap<String, Value> = BTreeMap::new();
        let mut config: BTreeMap<String, Value> = BTreeMap::new();

        if d.is_run {
            if let Some(list) = d.decl.get("deps") {
                let lpath = d.path.key("deps");
                match list.as_array() {
                    None => self.push(
                        "type",
                        &lpath,
                        Part::Value,
                        "`deps` must be a list".into(),
                        "expected a list",
                        None,
                    ),
                    Some(list) => {
                        // Sets, not scans: a gather stage may have thousands of deps.
                        let mut keys: HashSet<String> = HashSet::new();
                        // Name → whether some dep was given that name explicitly.
                        let mut names: HashMap<String, bool> = HashMap::new();
                        for (i, item) in list.iter().enumerate() {
                            let ipath = lpath.index(i);
                            let Some((name, raw)) = self.named_entry(item, &ipath, "deps") else {
                                continue;
                            };
                            let Some((p, source)) =
                                self.resolve(d, &raw, &ipath, drafts, ids, out_index)
                            else {
                                continue;
                            };
                            let name = name.unwrap_or_else(|| match &source {
                                Source::Stage { stage, output } => {
                                    drafts[*stage].outputs[*output].name.clone()
                                }
                                Source::File(f) => stem(f),
                            });
                            if !keys.insert(raw.clone()) {
                                self.push(
                                    "duplicate_dep",
                                    &ipath,
                                    Part::Value,
                                    format!("stage `{}` lists `{raw}` twice", d.id),
                                    "listed twice",
                                    None,
                                );
                                continue;
                            }
                            // A name given explicitly must be unique among the deps.
                            let clash = match names.get(&name) {
                                Some(&was_explicit) => item.is_object() || was_explicit,
                                None => false,
                            };
                            let entry = names.entry(name.clone()).or_insert(false);
                            *entry |= item.is_object();
                            if clash {
                                self.push(
                                    "port_fed_twice",
                                    &ipath,
                                    Part::Value,
                                    format!("input `{name}` of stage `{}` is fed twice", d.id),
                                    "second feed",
                                    Some("give each dep its own name".into()),
                                );
                                continue;
                            }
                            inputs.push(Input {
                                key: raw,
                                name,
                                path: p,
                                source,
                            });
                        }
                    }
                }
            }
            if let Some(list) = d.decl.get("params") {
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
                                Some(k) => self.use_param(d, k, &lpath.index(i), &mut stage_params),
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
            // Command and environment templates.
            let (templates, shell) = match d.decl.get("run") {
                Some(Value::String(s)) => (vec![(s.clone(), d.path.key("run"))], true),
                Some(Value::Array(a)) if !a.is_empty() => {
                    let mut t = Vec::new();
                    for (i, x) in a.iter().enumerate() {
                        match x {
                            Value::String(s) => t.push((s.clone(), d.path.key("run").index(i))),
                            Value::Number(_) | Value::Bool(_) => {
                                t.push((x.to_string(), d.path.key("run").index(i)))
                            }
                            _ => self.push(
                                "type",
                                &d.path.key("run").index(i),
                                Part::Value,
                                "argv items must be strings".into(),
                                "not a string",
                                None,
                            ),
                        }
                    }
                    (t, false)
                }
                _ => {
                    self.push(
                        "type",
                        &d.path.key("run"),
                        Part::Value,
                        format!("`run` of stage `{}` must be a command line or a non-empty list of arguments", d.id),
                        "expected a command",
                        Some("write `run: python train.py` (runs with `sh -c`) or `run: [python, train.py]` (no shell)".into()),
                    );
                    (Vec::new(), true)
                }
            };
            let mut argv = Vec::new();
            for (t, p) in &templates {
                if let Some(s) = self.render(d, t, p, &inputs, &d.outputs, shell, &mut stage_params)
                {
                    argv.push(s);
                }
            }
            let mut env = Vec::new();
            let mut env_templates = BTreeMap::new();
            if let Some(e) = d.decl.get("env") {
                let epath = d.path.key("env");
                match e.as_object() {
                    None => self.push(
                        "type",
                        &epath,
                        Part::Value,
                        "`env` must be a mapping of variable names to values".into(),
                        "expected a mapping",
                        None,
                    ),
                    Some(m) => {
                        for (k, v) in m {
                            let t = match v {
                                Value::String(s) => s.clone(),
                                Value::Number(_) | Value::Bool(_) => v.to_string(),
                                _ => {
                                    self.push(
                                        "type",
                                        &epath.key(k),
                                        Part::Value,
                                        "env values must be scalars".into(),
                                        "not a scalar",
                                        None,
                                    );
                                    continue;
                                }
                            };
                            if let Some(s) = self.render(
                                d,
                                &t,
                                &epath.key(k),
                                &inputs,
                                &d.outputs,
                                false,
                                &mut stage_params,
                            ) {
                                env.push((k.clone(), s));
                            }
                            env_templates.insert(k.clone(), Value::String(t));
                        }
                    }
                }
            }
            config.insert(
                "run".into(),
                if shell {
                    Value::String(templates.first().map(|t| t.0.clone()).unwrap_or_default())
                } else {
                    Value::Array(
                        templates
                            .iter()
                            .map(|t| Value::String(t.0.clone()))
                            .collect(),
                    )
                },
            );
            if !env_templates.is_empty() {
                config.insert(
                    "env".into(),
                    Value::Object(env_templates.into_iter().collect()),
                );
            }
            // Names given to deps and outs (`- labels: in.txt`) are what the
            // command sees (`${inputs.labels}`, `MLCYCLE_IN_LABELS`): renaming
            // one reruns the stage. Default names follow from the paths, which
            // are fingerprinted already, so only explicit names are kept.
            let explicit = |list: &str| -> Map<String, Value> {
                d.decl
                    .get(list)
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(|item| item.as_object().filter(|m| m.len() == 1))
                    .flat_map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())))
                    .collect()
            };
            let (named_in, named_out) = (explicit("deps"), explicit("outs"));
            if !named_in.is_empty() || !named_out.is_empty() {
                config.insert(
                    "names".into(),
                    serde_json::json!({"inputs": named_in, "outputs": named_out}),
                );
            }
            if self.issues.len() > before {
                return None;
            }
            return Some(StageDef {
                id: d.id.clone(),
                kind: COMMAND_KIND.into(),
                version: 0,
                inputs,
                outputs: d.outputs.clone(),
                params: stage_params,
                config,
                action: Action::Command { argv, shell, env },
            });
        }

        // A built-in stage.
        let factory = d.factory.clone()?;
        let ports = factory.inputs();
        if let Some(map) = d.decl.get("inputs") {
            let ipath = d.path.key("inputs");
            match map.as_object() {
                None => self.push(
                    "type",
                    &ipath,
                    Part::Value,
                    "`inputs` must map port names to `stage.port` or a path".into(),
                    "expected a mapping",
                    None,
                ),
                Some(map) => {
                    for (port, v) in map {
                        let ppath = ipath.key(port);
                        if !ports.iter().any(|p| p.name == port) {
                            let names: Vec<&str> = ports.iter().map(|p| p.name).collect();
                            let mut help = did_you_mean(port, &names);
                            if help.is_empty() {
                                help = if names.is_empty() {
                                    format!("`{}` takes no inputs", factory.kind())
                                } else {
                                    format!("`{}` takes: {}", factory.kind(), names.join(", "))
                                };
                            }
                            self.push(
                                "unknown_input_port",
                                &ppath,
                                Part::Key,
                                format!(
                                    "stage `{}` ({}) has no input port `{port}`",
                                    d.id,
                                    factory.kind()
                                ),
                                "unknown port",
                                Some(help),
                            );
                            continue;
                        }
                        let Some(raw) = v.as_str() else {
                            self.push(
                                "type",
                                &ppath,
                                Part::Value,
                                "an input must be `stage.port` or a path".into(),
                                "not a reference",
                                None,
                            );
                            continue;
                        };
                        if let Some((p, source)) =
                            self.resolve(d, raw, &ppath, drafts, ids, out_index)
                        {
                            let want = ports
                                .iter()
                                .find(|p| p.name == port)
                                .map(|p| p.artifact)
                                .unwrap_or(Artifact::ANY);
                            if let Source::Stage { stage, output } = &source {
                                let up = &drafts[*stage];
                                let oname = up.outputs[*output].name.as_str();
                                let have = up
                                    .factory
                                    .as_ref()
                                    .and_then(|f| f.outputs().iter().find(|o| o.name == oname))
                                    .map(|o| o.artifact)
                                    .unwrap_or(Artifact::ANY);
                                if !have.fits(want) {
                                    self.push(
                                        "artifact_mismatch",
                                        &ppath,
                                        Part::Value,
                                        format!(
                                            "stage `{}` ({}) wants a {} on input `{port}`, but `{}.{oname}` is a {}",
                                            d.id,
                                            factory.kind(),
                                            want.as_str(),
                                            up.id,
                                            have.as_str()
                                        ),
                                        "wrong artifact type",
                                        Some(format!(
                                            "wire a stage output that produces a {}; `mlcycle stages {}` lists the ports",
                                            want.as_str(),
                                            factory.kind()
                                        )),
                                    );
                                    continue;
                                }
                            }
                            inputs.push(Input {
                                key: port.clone(),
                                name: port.clone(),
                                path: p,
                                source,
                            });
                        }
                    }
                }
            }
        }
        for p in ports.iter().filter(|p| p.required) {
            if !inputs.iter().any(|i| i.key == p.name)
                && d.decl.get("inputs").and_then(|m| m.get(p.name)).is_none()
            {
                self.push(
                    "missing_input_port",
                    &d.path.key("uses"),
                    Part::Key,
                    format!(
                        "stage `{}` ({}) needs input `{}`",
                        d.id,
                        factory.kind(),
                        p.name
                    ),
                    "input not wired",
                    Some(format!(
                        "add `inputs: {{{}: <stage>.<port>}}`: {}",
                        p.name, p.doc
                    )),
                );
            }
        }
        let mut with = d
            .decl
            .get("with")
            .cloned()
            .unwrap_or(Value::Object(Map::new()));
        if with.is_null() {
            with = Value::Object(Map::new());
        }
        let wpath = d.path.key("with");
        self.interpolate_with(d, &mut with, &wpath, &mut stage_params);
        if self.issues.len() > before {
            return None;
        }
        match factory.build(&with) {
            Ok(stage) => {
                let checked = crate::params::canonical(&stage.params());
                config.insert("with".into(), checked);
                let mut file_deps_ok = true;
                for f in stage.file_deps() {
                    match normalize_any(&f) {
                        Some(norm) if self.root.join(&norm).exists() => inputs.push(Input {
                            key: norm.clone(),
                            name: stem(&norm),
                            path: norm.clone(),
                            source: Source::File(norm),
                        }),
                        _ => {
                            file_deps_ok = false;
                            self.push(
                                "missing_input",
                                &wpath,
                                Part::Key,
                                format!("stage `{}` reads missing file `{f}`", d.id),
                                "here",
                                Some("paths are relative to the workspace root".into()),
                            );
                        }
                    }
                }
                if !file_deps_ok {
                    return None;
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
                })
            }
            Err(e) => {
                let mut p = wpath.clone();
                for seg in &e.path {
                    p = p.key(seg.clone());
                }
                let part = if e.path.is_empty() || e.message.starts_with("unknown field") {
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
                None
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn render(
        &mut self,
        d: &Draft<'_>,
        template: &str,
        path: &YamlPath,
        inputs: &[Input],
        outputs: &[Output],
        quote: bool,
        stage_params: &mut BTreeMap<String, Value>,
    ) -> Option<String> {
        let pieces = match interp::parse(template) {
            Ok(p) => p,
            Err(e) => {
                self.push(
                    "interpolation",
                    path,
                    Part::Value,
                    format!("stage `{}`: {e}", d.id),
                    "here",
                    None,
                );
                return None;
            }
        };
        let mut ok = true;
        for p in &pieces {
            if let Piece::Ref(ns, name) = p {
                match ns {
                    Namespace::Params => {
                        let n = self.issues.len();
                        self.use_param(d, name, path, stage_params);
                        ok &= self.issues.len() == n;
                    }
                    Namespace::Inputs | Namespace::Outputs => {
                        let names: Vec<&str> = if *ns == Namespace::Inputs {
                            inputs.iter().map(|i| i.name.as_str()).collect()
                        } else {
                            outputs.iter().map(|o| o.name.as_str()).collect()
                        };
                        let count = names.iter().filter(|n| **n == name).count();
                        if count != 1 {
                            ok = false;
                            let what = if count == 0 { "no" } else { "more than one" };
                            let mut help = if count > 1 {
                                "several entries have this name; name them: `- NAME: path`".into()
                            } else {
                                did_you_mean(name, &names)
                            };
                            if help.is_empty() {
                                help = {
                                    format!(
                                        "known {}: {}",
                                        ns.as_str(),
                                        if names.is_empty() {
                                            "none".into()
                                        } else {
                                            names.join(", ")
                                        }
                                    )
                                };
                            }
                            self.push(
                                "unknown_ref",
                                path,
                                Part::Value,
                                format!("`${{{}.{name}}}` in stage `{}`: the stage has {what} {} named `{name}`", ns.as_str(), d.id, &ns.as_str()[..ns.as_str().len() - 1]),
                                "here",
                                Some(help),
                            );
                        }
                    }
                }
            }
        }
        if !ok {
            return None;
        }
        let params = &self.params;
        Some(interp::render(&pieces, |ns, name| {
            let raw = match ns {
                Namespace::Params => crate::params::get(params, name)
                    .map(crate::params::to_arg)
                    .unwrap_or_default(),
                Namespace::Inputs => inputs
                    .iter()
                    .find(|i| i.name == name)
                    .map(|i| i.path.clone())
                    .unwrap_or_default(),
                Namespace::Outputs => outputs
                    .iter()
                    .find(|o| o.name == name)
                    .map(|o| o.path.clone())
                    .unwrap_or_default(),
            };
            if quote {
                shlex::try_quote(&raw)
                    .map(|c| c.into_owned())
                    .unwrap_or(raw)
            } else {
                raw
            }
        }))
    }

    fn interpolate_with(
        &mut self,
        d: &Draft<'_>,
        v: &mut Value,
        path: &YamlPath,
        stage_params: &mut BTreeMap<String, Value>,
    ) {
        match v {
            Value::String(s) if s.contains("${") => {
                let pieces = match interp::parse(s) {
                    Ok(p) => p,
                    Err(e) => {
                        self.push(
                            "interpolation",
                            path,
                            Part::Value,
                            format!("stage `{}`: {e}", d.id),
                            "here",
                            None,
                        );
                        return;
                    }
                };
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
                                Some(
                                    "built-in stages receive their inputs through `inputs:`".into(),
                                ),
                            );
                            return;
                        }
                        let n = self.issues.len();
                        self.use_param(d, name, path, stage_params);
                        if self.issues.len() != n {
                            return;
                        }
                    }
                }
                // A string that is exactly one reference keeps the param's type.
                if let [Piece::Ref(Namespace::Params, name)] = pieces.as_slice() {
                    *v = crate::params::get(&self.params, name)
                        .cloned()
                        .unwrap_or(Value::Null);
                } else {
                    let params = &self.params;
                    *v = Value::String(interp::render(&pieces, |_, name| {
                        crate::params::get(params, name)
                            .map(crate::params::to_arg)
                            .unwrap_or_default()
                    }));
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
}
