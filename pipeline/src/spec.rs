//! Writing a stage kind: a [`StageSpec`] (kind, summary, version, ports,
//! params) and a typed `Params` struct, in one [`StageKind`] impl.
//!
//! This is the one way to write a kind, for the built-ins and for custom
//! crates alike:
//!
//! - **Params** are a `serde` struct. Defaults live in it (`#[serde(default
//!   = …)]` or a `Default` impl), choices are enums
//!   (`#[serde(rename_all = "snake_case")]`), and the catalogue takes the
//!   defaults from it, so the docs cannot drift from the code.
//! - **[`StageKind::check`]** refuses what serde cannot (ranges, rules
//!   across params) before anything runs, as linfa's `ParamGuard` does; the
//!   checked params are what [`StageKind::run`] gets, typed.
//! - A key of `with:` that no [`ParamDoc`] names is refused with the nearest
//!   valid name; a bad value is reported at its key (found by
//!   `serde_path_to_error`, not by reading serde's message).
//!
//! ```
//! use mlcycle_pipeline::{
//!     Artifact, ParamDoc, ParamError, PortSpec, RunContext, StageError, StageKind, StageSpec,
//! };
//! use serde::{Deserialize, Serialize};
//!
//! /// `text.repeat`: writes its input `times` times.
//! struct Repeat;
//!
//! #[derive(Debug, Serialize, Deserialize)]
//! #[serde(deny_unknown_fields)]
//! struct RepeatParams {
//!     #[serde(default = "two")]
//!     times: u32,
//! }
//! fn two() -> u32 {
//!     2
//! }
//!
//! impl StageKind for Repeat {
//!     type Params = RepeatParams;
//!     const SPEC: StageSpec = StageSpec {
//!         kind: "text.repeat",
//!         summary: "Repeat a text artifact",
//!         version: 1,
//!         inputs: &[PortSpec::input("text", Artifact::ANY, true, "a text file")],
//!         outputs: &[PortSpec::output("text", "repeated.txt", Artifact::ANY, "the text, repeated")],
//!         params: &[ParamDoc::new("times", "integer", "how many copies")],
//!     };
//!     fn check(p: &mut RepeatParams) -> Result<(), ParamError> {
//!         if p.times == 0 {
//!             return Err(ParamError::new(&["times"], "`times` must be at least 1"));
//!         }
//!         Ok(())
//!     }
//!     fn run(p: &RepeatParams, ctx: &RunContext<'_>) -> Result<(), StageError> {
//!         let text = std::fs::read_to_string(ctx.input("text")?)?;
//!         std::fs::write(ctx.output("text")?, text.repeat(p.times as usize))?;
//!         Ok(())
//!     }
//! }
//!
//! let mut registry = mlcycle_pipeline::StageRegistry::new();
//! registry.register(Repeat)?;
//! # Ok::<(), mlcycle_pipeline::registry::DuplicateKind>(())
//! ```

use std::fmt;
use std::marker::PhantomData;

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::stage::{InferContext, Inferred, PortSpec, RunContext, Stage, StageError};

/// What a stage kind is, as the catalogue and the validator see it.
#[derive(Debug, Clone, Copy)]
pub struct StageSpec {
    /// The kind name used in `uses:`, e.g. `util.import`.
    pub kind: &'static str,
    /// One line for `mlcycle stages`.
    pub summary: &'static str,
    /// Implementation version: bump it when the stage's output for the same
    /// inputs and params changes, so cached results are recomputed.
    pub version: u32,
    /// The input ports, in the order the catalogue lists them.
    pub inputs: &'static [PortSpec],
    /// The output ports; each is written to `artifacts/<stage>/<file>`.
    pub outputs: &'static [PortSpec],
    /// Every key `with:` may hold. The catalogue adds each one's default
    /// (or "required") from the kind's `Params`.
    pub params: &'static [ParamDoc],
}

/// A documented parameter of a stage kind. Its default is not written here:
/// the catalogue reads it from the kind's `Params`.
#[derive(Debug, Clone, Copy)]
pub struct ParamDoc {
    /// The key in `with:`.
    pub name: &'static str,
    /// The type as shown to users: `integer`, `number`, `bool`, `string`,
    /// `list of strings`, or the choices (`` `gini` | `entropy` ``).
    pub ty: &'static str,
    /// One line: what it does, with its unit.
    pub doc: &'static str,
    /// What an absent optional value means ("every numeric feature",
    /// "unlimited"), for a param whose default is no value.
    pub unset: Option<&'static str>,
}

impl ParamDoc {
    /// A param with a default (or a required one).
    pub const fn new(name: &'static str, ty: &'static str, doc: &'static str) -> Self {
        ParamDoc {
            name,
            ty,
            doc,
            unset: None,
        }
    }

    /// An optional param without a default value: `meaning` says what
    /// leaving it out does.
    pub const fn unset(mut self, meaning: &'static str) -> Self {
        self.unset = Some(meaning);
        self
    }
}

/// A `with:` value that a kind refused.
#[derive(Debug, Clone)]
pub struct ParamError {
    /// Keys inside `with:` leading to the bad value (empty: the whole mapping).
    pub path: Vec<String>,
    /// Whether the key itself is wrong (unknown), rather than its value.
    pub at_key: bool,
    /// The input port the problem is about, when it is about what an input
    /// brings rather than a `with:` value (see [`ParamError::at_input`]):
    /// it is then reported at the stage's `inputs:` entry for the port.
    pub input: Option<String>,
    pub message: String,
    pub help: Option<String>,
}

impl ParamError {
    /// A bad value at `path` (keys inside `with:`).
    pub fn new(path: &[&str], message: impl Into<String>) -> Self {
        Self {
            path: path.iter().map(|s| s.to_string()).collect(),
            at_key: false,
            input: None,
            message: message.into(),
            help: None,
        }
    }
    /// A problem with what input `port` brings (found by
    /// [`StageKind::infer`]), reported at the stage's `inputs:` entry.
    pub fn at_input(port: &str, message: impl Into<String>) -> Self {
        Self {
            path: Vec::new(),
            at_key: false,
            input: Some(port.to_string()),
            message: message.into(),
            help: None,
        }
    }
    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }
}

/// A stage kind: its spec, its typed params, how to check and run them.
/// Register it with [`crate::StageRegistry::register`]; every `StageKind`
/// is a [`StageFactory`].
pub trait StageKind: Send + Sync + 'static {
    /// The `with:` mapping, typed, with its defaults. Its serialized form
    /// (after [`Self::check`]) is part of the stage's fingerprint.
    type Params: Serialize + DeserializeOwned + fmt::Debug + Send + Sync + 'static;

    /// Name, summary, version, ports and documented params.
    const SPEC: StageSpec;

    /// The smallest valid `with:`: `{}` unless some param is required (or
    /// [`Self::check`] wants one of several). The catalogue marks a key of
    /// it "required" when the example without it does not parse, and reads
    /// every default from `Params` parsed from it.
    fn example() -> Value {
        Value::Object(Map::new())
    }

    /// Refuses what serde cannot (ranges, rules across params) and may fill
    /// in defaults that depend on other params. Runs when the pipeline is
    /// loaded, before anything runs.
    fn check(_params: &mut Self::Params) -> Result<(), ParamError> {
        Ok(())
    }

    /// Files in the workspace the stage reads besides its input ports (a
    /// path param), relative to the workspace root. Their content is hashed
    /// into the fingerprint.
    fn file_deps(_params: &Self::Params) -> Vec<String> {
        Vec::new()
    }

    /// Checks the params against the files they name, where a cheap look
    /// allows (a CSV's header row, a table's schema): a target or a column
    /// that is not there. `mlcycle validate` calls it (not `status` or
    /// `run`, which stay fast and find these when the stage runs); each
    /// problem is reported at its param. `workspace` is the workspace root.
    fn check_files(_params: &Self::Params, _workspace: &std::path::Path) -> Vec<ParamError> {
        Vec::new()
    }

    /// What the outputs will hold, from what is known of the inputs
    /// (`cx.inputs`, each output's [`crate::Facts`] from the stage upstream), with
    /// the problems that already shows: a trainer fed a table that has no
    /// target, a column a stage names that its input will not have.
    /// `mlcycle validate` calls it on every stage in dependency order, once
    /// [`Self::check_files`] passed; a kind that knows nothing returns
    /// [`Inferred::default`], and the stages after it are not checked.
    fn infer(_params: &Self::Params, _cx: &InferContext<'_>) -> Inferred {
        Inferred::default()
    }

    /// Does the work: reads `ctx.inputs`, writes every `ctx.outputs` path.
    fn run(params: &Self::Params, ctx: &RunContext<'_>) -> Result<(), StageError>;
}

mod sealed {
    pub trait Sealed {}
    impl<K: super::StageKind> Sealed for K {}
}

/// A stage kind as the registry holds it (object-safe). Implemented for
/// every [`StageKind`] and only for them: write a `StageKind`.
pub trait StageFactory: Send + Sync + sealed::Sealed {
    /// The kind's spec.
    fn spec(&self) -> StageSpec;
    /// Checks `with:` (a mapping, `{}` when absent) and builds the stage,
    /// or says everything wrong with it.
    fn build(&self, with: &Value) -> Result<Box<dyn Stage>, Vec<ParamError>>;
    /// The smallest valid `with:` (see [`StageKind::example`]).
    fn example(&self) -> Value;
    /// `with:` parsed with the kind's defaults filled in, not checked
    /// (what the catalogue reads defaults from).
    fn with_defaults(&self, with: &Value) -> Result<Value, Vec<ParamError>>;

    /// The kind name used in `uses:`.
    fn kind(&self) -> &'static str {
        self.spec().kind
    }
    /// One line for `mlcycle stages`.
    fn summary(&self) -> &'static str {
        self.spec().summary
    }
    /// Implementation version.
    fn version(&self) -> u32 {
        self.spec().version
    }
    /// The input ports.
    fn inputs(&self) -> &'static [PortSpec] {
        self.spec().inputs
    }
    /// The output ports.
    fn outputs(&self) -> &'static [PortSpec] {
        self.spec().outputs
    }
    /// The documented params.
    fn param_docs(&self) -> &'static [ParamDoc] {
        self.spec().params
    }
    /// Each param's type and default as the catalogue shows it, e.g.
    /// `integer = 100`, `string (required)`, `list of strings = every
    /// numeric feature`.
    ///
    /// A param of the example is required when the example without it does
    /// not parse; every default is what parsing fills in.
    fn param_types(&self) -> Vec<String> {
        let example = self.example();
        let defaults = self.with_defaults(&example).unwrap_or(Value::Null);
        self.param_docs()
            .iter()
            .map(|p| {
                let mut without = example.clone();
                if !remove_dotted(&mut without, p.name) {
                    return type_and_default(p, &defaults);
                }
                match self.with_defaults(&without) {
                    Err(_) => format!("{} (required)", p.ty),
                    Ok(defaults) => type_and_default(p, &defaults),
                }
            })
            .collect()
    }
}

impl<K: StageKind> StageFactory for K {
    fn spec(&self) -> StageSpec {
        K::SPEC
    }

    fn build(&self, with: &Value) -> Result<Box<dyn Stage>, Vec<ParamError>> {
        let mut params = parse_params::<K::Params>(with, K::SPEC.params)?;
        K::check(&mut params).map_err(|e| vec![e])?;
        Ok(Box::new(Built::<K> {
            params,
            kind: PhantomData,
        }))
    }

    fn example(&self) -> Value {
        K::example()
    }

    fn with_defaults(&self, with: &Value) -> Result<Value, Vec<ParamError>> {
        let params = parse_params::<K::Params>(with, K::SPEC.params)?;
        Ok(serde_json::to_value(params).unwrap_or(Value::Null))
    }
}

/// A stage of kind `K` built from checked params.
struct Built<K: StageKind> {
    params: K::Params,
    kind: PhantomData<fn() -> K>,
}

impl<K: StageKind> fmt::Debug for Built<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct(K::SPEC.kind)
            .field("params", &self.params)
            .finish()
    }
}

impl<K: StageKind> Stage for Built<K> {
    fn params(&self) -> Value {
        // A params struct is plain data with string keys: serializing it
        // cannot fail.
        serde_json::to_value(&self.params).unwrap_or(Value::Null)
    }
    fn file_deps(&self) -> Vec<String> {
        K::file_deps(&self.params)
    }
    fn check_files(&self, workspace: &std::path::Path) -> Vec<ParamError> {
        K::check_files(&self.params, workspace)
    }
    fn infer(&self, cx: &InferContext<'_>) -> Inferred {
        K::infer(&self.params, cx)
    }
    fn run(&self, ctx: &RunContext<'_>) -> Result<(), StageError> {
        K::run(&self.params, ctx)
    }
}

/// Parses `with:` into `P`, reporting every problem it can find at once:
/// `with:` that is not a mapping; each key no [`ParamDoc`] names (with the
/// nearest valid one); a choice that is not a string; then the first value
/// serde refuses, at its path, with the catalogue's words for types.
pub fn parse_params<P: DeserializeOwned>(
    with: &Value,
    docs: &[ParamDoc],
) -> Result<P, Vec<ParamError>> {
    let Value::Object(_) = with else {
        return Err(vec![ParamError::new(
            &[],
            format!(
                "`with:` must be a mapping of param names to values, not {}",
                kind_of(with)
            ),
        )
        .with_help("write `with: {name: value, …}`")]);
    };
    let mut errors = Vec::new();
    let mut known = with.clone();
    unknown_keys(&mut known, &mut Vec::new(), docs, &mut errors);
    for d in docs {
        let options = choices(d.ty);
        let at = d.name.split('.').try_fold(&known, |v, k| v.get(k));
        if let (false, Some(v)) = (options.is_empty(), at) {
            if !v.is_string() {
                errors.push(
                    ParamError::new(
                        &d.name.split('.').collect::<Vec<_>>(),
                        format!("`{}` must be one of: {}", d.name, options.join(", ")),
                    )
                    .with_help(format!("write `{}: {}`", d.name, options[0])),
                );
            }
        }
    }
    if !errors.is_empty() {
        // Values are still checked, with the refused keys taken out, so
        // that one run of `validate` shows every problem.
        if let Err(e) = deserialize::<P>(&known, docs) {
            // A required key written with a typo is one problem, not two:
            // "unknown field `pth`, did you mean `path`?" says it all.
            let typo_of_missing = errors.iter().any(|x| {
                x.help.as_deref().is_some_and(|h| {
                    h.strip_prefix("did you mean ").is_some_and(|name| {
                        e.message == format!("missing field {}", name.trim_end_matches('?'))
                    })
                })
            });
            if !typo_of_missing && !errors.iter().any(|x| x.path == e.path) {
                errors.push(e);
            }
        }
        return Err(errors);
    }
    deserialize(&known, docs).map_err(|e| vec![e])
}

fn deserialize<P: DeserializeOwned>(with: &Value, docs: &[ParamDoc]) -> Result<P, ParamError> {
    serde_path_to_error::deserialize(with).map_err(|e| {
        let path: Vec<String> = e
            .path()
            .iter()
            .filter_map(|seg| match seg {
                serde_path_to_error::Segment::Map { key } => Some(key.clone()),
                serde_path_to_error::Segment::Seq { index } => Some(index.to_string()),
                _ => None,
            })
            .collect();
        let help = choice_help(with, &path, docs);
        ParamError {
            path,
            at_key: false,
            input: None,
            message: plain_types(&e.into_inner().to_string()),
            help,
        }
    })
}

/// serde's type names in the catalogue's words: `expected usize` reads
/// `expected a whole number ≥ 0`, `expected struct Gate` `expected a
/// mapping`.
fn plain_types(message: &str) -> String {
    let mut out = message.to_string();
    for (rust, plain) in [
        ("expected usize", "expected a whole number ≥ 0"),
        ("expected u64", "expected a whole number ≥ 0"),
        ("expected u32", "expected a whole number ≥ 0"),
        ("expected u16", "expected a whole number ≥ 0"),
        ("expected u8", "expected a whole number ≥ 0"),
        ("expected i64", "expected a whole number"),
        ("expected i32", "expected a whole number"),
        ("expected f64", "expected a number"),
        ("expected f32", "expected a number"),
        ("expected a boolean", "expected true or false"),
    ] {
        out = out.replace(rust, plain);
    }
    if let Some(i) = out.find("expected struct ") {
        out.truncate(i);
        out.push_str("expected a mapping");
    }
    out
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

/// The choices a param's documented type lists: `` `a` | `b` `` gives
/// `[a, b]`; any other type none.
pub fn choices(ty: &str) -> Vec<&str> {
    if !ty.starts_with('`') {
        return Vec::new();
    }
    let parts: Option<Vec<&str>> = ty
        .split('|')
        .map(|c| c.trim().strip_prefix('`')?.strip_suffix('`'))
        .collect();
    // `` `sqrt` | `all` | integer `` also takes a number: not a choice
    // among strings only (the kind's own check judges it).
    parts.unwrap_or_default()
}

/// For a string that is not one of its param's choices: the nearest one
/// (letter case aside), or the list.
fn choice_help(with: &Value, path: &[String], docs: &[ParamDoc]) -> Option<String> {
    let name = path.join(".");
    let doc = docs.iter().find(|d| d.name == name)?;
    let options = choices(doc.ty);
    let given = path.iter().try_fold(with, |v, k| v.get(k))?.as_str()?;
    if options.is_empty() || options.contains(&given) {
        return None;
    }
    let lower = given.to_lowercase();
    let near = options
        .iter()
        .find(|o| o.to_lowercase() == lower)
        .copied()
        .or_else(|| crate::suggest::closest(&lower, options.iter().copied()));
    Some(match near {
        Some(near) => format!("did you mean `{near}`?"),
        None => format!("use one of: {}", options.join(", ")),
    })
}

/// Takes out of `v` (the `with:` mapping, or a mapping inside it) every key
/// that no [`ParamDoc`] names, reporting each. A documented name may be
/// dotted (`gate.metric`): it names a key inside a mapping, written as one
/// (`gate: {metric: r2}`), so the parent must be a mapping.
fn unknown_keys(
    v: &mut Value,
    prefix: &mut Vec<String>,
    docs: &[ParamDoc],
    errors: &mut Vec<ParamError>,
) {
    let Value::Object(m) = v else { return };
    let mut refused = Vec::new();
    for (k, child) in m.iter_mut() {
        prefix.push(k.clone());
        let dotted = prefix.join(".");
        let exact = !k.contains('.') && docs.iter().any(|d| d.name == dotted);
        let inner = format!("{dotted}.");
        let parent = !k.contains('.') && docs.iter().any(|d| d.name.starts_with(&inner));
        if !exact && !parent {
            let siblings: Vec<&str> = docs
                .iter()
                .filter_map(|d| {
                    let rest = if prefix.len() == 1 {
                        Some(d.name)
                    } else {
                        d.name
                            .strip_prefix(&format!("{}.", prefix[..prefix.len() - 1].join(".")))
                    }?;
                    Some(rest.split('.').next().unwrap_or(rest))
                })
                .collect();
            let mut e = unknown_param(prefix.clone(), k, &siblings);
            if let Some((head, tail)) = k.split_once('.') {
                if docs.iter().any(|d| d.name == dotted) {
                    e.help = Some(format!("write `{head}: {{{tail}: …}}`"));
                }
            }
            errors.push(e);
            refused.push(k.clone());
        } else if parent && !exact {
            if child.is_object() {
                unknown_keys(child, prefix, docs, errors);
            } else {
                errors.push(
                    ParamError::new(
                        &prefix.iter().map(String::as_str).collect::<Vec<_>>(),
                        format!("`{dotted}` must be a mapping, not {}", kind_of(child)),
                    )
                    .with_help(format!("write `{k}: {{name: value, …}}`")),
                );
                refused.push(k.clone());
            }
        }
        prefix.pop();
    }
    for k in refused {
        m.remove(&k);
    }
}

/// `unknown field `x`, expected …`, worded as serde does, with the nearest
/// valid name as help.
fn unknown_param(path: Vec<String>, key: &str, valid: &[&str]) -> ParamError {
    let mut valid: Vec<&str> = valid.to_vec();
    valid.dedup();
    let names: Vec<String> = valid.iter().map(|d| format!("`{d}`")).collect();
    let expected = match names.as_slice() {
        [] => "there are no fields".to_string(),
        [one] => format!("expected {one}"),
        many => format!("expected one of {}", many.join(", ")),
    };
    ParamError {
        path,
        at_key: true,
        input: None,
        message: format!("unknown field `{key}`, {expected}"),
        help: crate::suggest::closest(key, valid.iter().copied())
            .map(|s| format!("did you mean `{s}`?")),
    }
}

/// Removes the (dotted) key `name` from `v`; whether it was there.
fn remove_dotted(v: &mut Value, name: &str) -> bool {
    let (parent, last) = match name.rsplit_once('.') {
        Some((parent, last)) => (Some(parent), last),
        None => (None, name),
    };
    let holder = match parent {
        Some(parent) => parent.split('.').try_fold(v, |v, k| v.get_mut(k)),
        None => Some(v),
    };
    holder
        .and_then(Value::as_object_mut)
        .is_some_and(|m| m.remove(last).is_some())
}

/// `integer = 100`, `list of strings = every feature`.
fn type_and_default(p: &ParamDoc, defaults: &Value) -> String {
    let at = |root: &Value| p.name.split('.').try_fold(root, |v, k| v.get(k)).cloned();
    let bare = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | '/'))
    };
    match at(defaults) {
        None | Some(Value::Null) => match p.unset {
            Some(meaning) => format!("{} = {meaning}", p.ty),
            None => format!("{} (optional)", p.ty),
        },
        Some(Value::String(s)) if bare(&s) => format!("{} = {s}", p.ty),
        Some(Value::Number(n)) => match n.as_f64() {
            // 3.0 reads as 3 in the docs, as in the YAML a user writes.
            Some(x) if n.is_f64() && x.fract() == 0.0 && x.abs() < 1e15 => {
                format!("{} = {}", p.ty, x as i64)
            }
            _ => format!("{} = {n}", p.ty),
        },
        Some(v) => format!("{} = {v}", p.ty),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use serde_json::json;

    #[derive(Debug, Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct P {
        path: String,
        #[serde(default = "ten")]
        rows: u32,
        #[serde(default)]
        columns: Option<Vec<String>>,
        #[serde(default)]
        method: Method,
    }
    fn ten() -> u32 {
        10
    }
    #[derive(Debug, Default, Serialize, Deserialize)]
    #[serde(rename_all = "snake_case")]
    enum Method {
        #[default]
        Standard,
        MinMax,
    }

    struct K;
    impl StageKind for K {
        type Params = P;
        const SPEC: StageSpec = StageSpec {
            kind: "test.k",
            summary: "a test kind",
            version: 1,
            inputs: &[],
            outputs: &[],
            params: &[
                ParamDoc::new("path", "string", "a file"),
                ParamDoc::new("rows", "integer", "how many"),
                ParamDoc::new("columns", "list of strings", "which").unset("every column"),
                ParamDoc::new("method", "`standard` | `min_max`", "how"),
            ],
        };
        fn example() -> Value {
            json!({"path": "data.csv"})
        }
        fn check(p: &mut P) -> Result<(), ParamError> {
            if p.rows == 0 {
                return Err(ParamError::new(&["rows"], "`rows` must be at least 1"));
            }
            Ok(())
        }
        fn run(_: &P, _: &RunContext<'_>) -> Result<(), StageError> {
            Ok(())
        }
    }

    #[derive(Debug, Default, Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Gate {
        #[serde(default)]
        metric: Option<String>,
    }
    #[derive(Debug, Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct NestedParams {
        #[serde(default)]
        gate: Gate,
    }
    struct Nested;
    impl StageKind for Nested {
        type Params = NestedParams;
        const SPEC: StageSpec = StageSpec {
            kind: "test.nested",
            summary: "a test kind with a nested param",
            version: 1,
            inputs: &[],
            outputs: &[],
            params: &[ParamDoc::new("gate.metric", "string", "which metric")],
        };
        fn run(_: &NestedParams, _: &RunContext<'_>) -> Result<(), StageError> {
            Ok(())
        }
    }

    #[test]
    fn with_must_be_a_mapping_not_a_list_read_by_position() {
        for with in [json!(["a.csv", 3]), json!("x"), json!(5)] {
            let e = K.build(&with).unwrap_err();
            assert_eq!(e.len(), 1);
            assert!(
                e[0].message.starts_with("`with:` must be a mapping"),
                "{}",
                e[0].message
            );
        }
        // A nested mapping written as a list is refused too.
        let e = Nested.build(&json!({"gate": ["r2"]})).unwrap_err();
        assert_eq!(e[0].message, "`gate` must be a mapping, not a list");
    }

    #[test]
    fn every_unknown_key_and_a_bad_value_are_reported_together() {
        let e = K
            .build(&json!({"path": "a", "rowz": 1, "sede": 2, "method": "maxabs"}))
            .unwrap_err();
        let paths: Vec<String> = e.iter().map(|e| e.path.join(".")).collect();
        assert_eq!(paths, vec!["rowz", "sede", "method"], "{e:?}");
    }

    #[test]
    fn a_choice_must_be_a_string() {
        let e = K
            .build(&json!({"path": "a", "method": {"standard": null}}))
            .unwrap_err();
        assert_eq!(e[0].path, vec!["method"]);
        assert_eq!(e[0].message, "`method` must be one of: standard, min_max");
        assert_eq!(choices("`sqrt` | `all` | integer"), Vec::<&str>::new());
        assert_eq!(choices("`a` | `b`"), ["a", "b"]);
    }

    #[test]
    fn a_dotted_key_is_told_to_nest() {
        let e = Nested.build(&json!({"gate.metric": "r2"})).unwrap_err();
        assert!(e[0].at_key);
        assert_eq!(e[0].help.as_deref(), Some("write `gate: {metric: …}`"));
        assert!(Nested.build(&json!({"gate": {"metric": "r2"}})).is_ok());
    }

    #[test]
    fn type_errors_use_the_catalogue_words() {
        let e = K.build(&json!({"path": "a", "rows": "5"})).unwrap_err();
        assert_eq!(
            e[0].message,
            "invalid type: string \"5\", expected a whole number ≥ 0"
        );
        let e = Nested.build(&json!({"gate": {"metric": 3}})).unwrap_err();
        assert!(
            e[0].message.ends_with("expected a string"),
            "{}",
            e[0].message
        );
    }

    #[test]
    fn a_choice_in_another_letter_case_is_suggested() {
        let e = K
            .build(&json!({"path": "a", "method": "Min_Max"}))
            .unwrap_err();
        assert_eq!(e[0].help.as_deref(), Some("did you mean `min_max`?"));
    }

    #[test]
    fn the_catalogue_reads_defaults_from_params() {
        assert_eq!(
            K.param_types(),
            vec![
                "string (required)",
                "integer = 10",
                "list of strings = every column",
                "`standard` | `min_max` = standard",
            ]
        );
    }

    #[test]
    fn built_stages_carry_checked_params_with_defaults() {
        let stage = K.build(&json!({"path": "a.csv"})).unwrap();
        assert_eq!(
            stage.params(),
            json!({"path": "a.csv", "rows": 10, "columns": null, "method": "standard"})
        );
        let e = K
            .build(&json!({"path": "a.csv", "rows": 0}))
            .unwrap_err()
            .remove(0);
        assert_eq!(e.path, vec!["rows"]);
    }

    #[test]
    fn an_unknown_key_is_named_with_the_nearest_valid_one() {
        let e = K
            .build(&json!({"path": "a", "rowz": 3}))
            .unwrap_err()
            .remove(0);
        assert_eq!(e.path, vec!["rowz"]);
        assert!(e.at_key);
        assert_eq!(
            e.message,
            "unknown field `rowz`, expected one of `path`, `rows`, `columns`, `method`"
        );
        assert_eq!(e.help.as_deref(), Some("did you mean `rows`?"));
    }

    #[test]
    fn a_bad_value_is_reported_at_its_key() {
        let e = K
            .build(&json!({"path": "a", "method": "maxabs"}))
            .unwrap_err()
            .remove(0);
        assert_eq!(e.path, vec!["method"]);
        assert!(!e.at_key);
        assert_eq!(e.help.as_deref(), Some("use one of: standard, min_max"));
        let e = K
            .build(&json!({"path": "a", "method": "standrad"}))
            .unwrap_err()
            .remove(0);
        assert_eq!(e.help.as_deref(), Some("did you mean `standard`?"));
        let e = K
            .build(&json!({"path": "a", "method": "maxabs"}))
            .unwrap_err()
            .remove(0);
        assert!(
            e.message.contains("unknown variant `maxabs`"),
            "{}",
            e.message
        );
        let e = K
            .build(&json!({"path": "a", "columns": ["x", 3]}))
            .unwrap_err()
            .remove(0);
        assert_eq!(e.path, vec!["columns", "1"]);
        let e = K.build(&json!({})).unwrap_err().remove(0);
        assert!(e.path.is_empty());
        assert_eq!(e.message, "missing field `path`");
    }
}
