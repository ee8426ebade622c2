//! Every check made on a pipeline before anything runs. Problems are
//! collected as [`Issue`]s and reported together.

mod builtin;
mod command;
mod cycles;
mod flow;
mod folders;
mod inputs;
mod matrix;
mod outputs;
mod params;
mod parse;
pub(crate) mod paths;
mod refs;
mod resources;
mod shape;
mod stages;
mod top;

use foldhash::{HashMap, HashSet};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use inputs::gather_order;

use serde_json::{Map, Value};

use self::parse::{cached_parse, display_name, failure, save_parse};
use self::paths::PathCache;
use super::load;
use super::span::{Part, YamlPath};
use super::{ConfigError, FileKey, Issue, Output, Pipeline, StageDef};
use crate::registry::StageRegistry;
use crate::spec::StageFactory;

/// What to load a pipeline with.
pub struct LoadOptions<'a> {
    pub registry: &'a StageRegistry,
    /// `-p key=value` overrides, as given.
    pub overrides: &'a [(String, String)],
    /// A file where the parsed pipeline is kept, keyed by the BLAKE3 hash of
    /// its text, so an unchanged pipeline skips the YAML parser (JSON parses
    /// several times faster). `None`: always parse.
    pub parse_cache: Option<&'a Path>,
    /// Refuse a dep on a file that does not exist and no stage writes
    /// (`validate`). Otherwise the stages that read it are only blocked
    /// ([`Pipeline::missing_sources`]), and the others can run.
    pub strict_sources: bool,
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
        paths: PathCache::default(),
        allow_missing: !opts.strict_sources,
        missing: Vec::new(),
        matrix: BTreeMap::new(),
        fanned: HashSet::default(),
        unread: HashSet::default(),
    };
    let pipeline = v.pipeline(&doc, opts.overrides, file, may_hold_nul(&text));
    v.collapse_instance_issues();
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

/// Whether YAML `text` can hold a NUL byte once parsed: a raw one, or an
/// escape that makes one. A scan of the text is much cheaper than a walk
/// of the parsed document, and almost every file has none.
fn may_hold_nul(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.contains(&0)
        || (bytes.contains(&b'\\')
            && ["\\0", "\\x00", "\\u0000", "\\U00000000"]
                .iter()
                .any(|e| text.contains(e)))
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

impl Draft<'_> {
    /// A boolean stage flag (`always_changed:`, `frozen:`); its type is
    /// checked with the stage's keys.
    fn flag(&self, key: &str) -> bool {
        self.decl.get(key).and_then(Value::as_bool).unwrap_or(false)
    }
}

/// Runs the checks, collecting every problem found as an [`Issue`].
struct Validator<'r> {
    issues: Vec<Issue>,
    registry: &'r StageRegistry,
    root: PathBuf,
    params: Value,
    params_source: Option<(String, String)>,
    /// What path checks learned about the workspace's folders.
    paths: PathCache,
    /// Accept deps on missing source files (see [`LoadOptions::strict_sources`]).
    allow_missing: bool,
    /// The missing source files accepted, as messages.
    missing: Vec<String>,
    /// A `matrix:` or `foreach:` stage's name → its instances' names
    /// (none when its declaration was refused: it is not reported again).
    matrix: BTreeMap<String, Vec<String>>,
    /// (stage, input name) given to every instance by one
    /// `NAME: stage@*.port` dep: `${inputs.NAME}` is all their paths.
    fanned: HashSet<(String, String)>,
    /// Built-in stages that read a file another stage writes: their files
    /// are not looked into, nor is what they will hold followed.
    unread: HashSet<String>,
}

impl Validator<'_> {
    /// Records a problem at `path` in the pipeline file.
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
        may_hold_nul: bool,
    ) -> Option<Pipeline> {
        if may_hold_nul {
            self.check_nul(doc, &YamlPath::root(), FileKey::Pipeline);
        }
        let top = self.check_top(doc)?;
        let name = self.check_name(top);
        self.load_params(top);
        self.apply_overrides(overrides);
        let stages = self.check_stages(top)?;
        let stages_path = YamlPath::root().key("stages");

        // `matrix:` and `foreach:` stages become one stage per instance.
        let entries = self.expand_stages(stages, &stages_path);

        // Pass 1: kinds and outputs.
        let mut drafts: Vec<Draft<'_>> = Vec::with_capacity(entries.len());
        for e in &entries {
            if let Some(d) = self.draft(&e.id, &e.decl, e.path.clone(), e.instance) {
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
        let mut defs: Vec<Option<StageDef>> = drafts
            .iter()
            .map(|d| self.finish(d, &drafts, &ids, &out_index))
            .collect();
        self.link_folder_deps(&drafts, &mut defs);
        self.check_cycles(&drafts, &defs);
        // `validate` also follows what the data will hold through the DAG
        // (the files were looked into above).
        if !self.allow_missing {
            self.check_flow(&drafts, &defs);
        }
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
            missing_sources: std::mem::take(&mut self.missing),
        })
    }

    /// Pass 2 for one stage: its inputs, params and action, checked and
    /// built by kind of stage.
    fn finish(
        &mut self,
        d: &Draft<'_>,
        drafts: &[Draft<'_>],
        ids: &HashMap<&str, usize>,
        out_index: &HashMap<&str, (usize, usize)>,
    ) -> Option<StageDef> {
        if d.is_run {
            self.finish_command(d, drafts, ids, out_index)
        } else {
            self.finish_builtin(d, drafts, ids, out_index)
        }
    }
}
