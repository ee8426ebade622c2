//! `matrix:` and `foreach:`: one stage declared, one stage per combination
//! run. A stage with `matrix: {model: [ols, sgd], fold: [0, 1]}` becomes
//! `train@ols-0`, `train@ols-1`, `train@sgd-0`, `train@sgd-1`, each with
//! `${item.model}` and `${item.fold}` replaced in its strings; `foreach:`
//! is the one-axis case over a list (`${item}`) or a mapping (`${key}`,
//! `${item}`). Expansion happens before any other check, so an instance is
//! checked like any stage, and its problems are shown at the declaration.
//! `stage@*.port` in `deps:` takes the port of every instance.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};

use serde_json::{Map, Value};

use super::super::span::{Part, Seg, YamlPath};
use super::Validator;
use crate::interp;

/// The most stages one declaration may expand into.
const MAX_INSTANCES: usize = 100_000;

/// One stage after expansion: as declared, or an instance of a matrix.
pub(super) struct Entry<'v> {
    pub id: String,
    pub decl: Cow<'v, Value>,
    /// Where it is declared (an instance: its matrix stage).
    pub path: YamlPath,
    pub instance: bool,
}

/// What `${item…}` and `${key}` stand for in one instance.
struct Binding {
    /// `${item}`: the list element, the mapping value, or (matrix) the
    /// mapping from axis to value.
    item: Value,
    /// `${key}` (`foreach:` over a mapping).
    key: Option<String>,
    /// The name after `@`.
    suffix: String,
}

impl Validator<'_> {
    /// Expands every `matrix:` and `foreach:` stage of `stages`, in file
    /// order (instances in the order of the combinations, the first axis
    /// outermost). A declaration with a problem is reported and left out.
    pub(super) fn expand_stages<'v>(
        &mut self,
        stages: &'v Map<String, Value>,
        stages_path: &YamlPath,
    ) -> Vec<Entry<'v>> {
        let mut taken: HashSet<String> = stages.keys().cloned().collect();
        let mut out = Vec::with_capacity(stages.len());
        let mut total = 0usize;
        for (id, decl) in stages {
            let path = stages_path.key(id);
            let fan = decl
                .as_object()
                .filter(|d| d.contains_key("matrix") || d.contains_key("foreach"));
            let Some(map) = fan else {
                out.push(Entry {
                    id: id.clone(),
                    decl: Cow::Borrowed(decl),
                    path,
                    instance: false,
                });
                continue;
            };
            // A declaration that failed has no instances: references to
            // it are not reported again.
            let mut instances = self
                .expand_one(id, map, &path, &mut taken)
                .unwrap_or_default();
            // The cap is on the whole pipeline: ten matrices of 100 000
            // would be a million stages from a file of a few lines.
            total += instances.len();
            if total > MAX_INSTANCES {
                self.push(
                    "matrix",
                    &path,
                    Part::Key,
                    format!("with stage `{id}`, the pipeline expands to more than {MAX_INSTANCES} stages, the most it may have"),
                    "one expansion too many",
                    None,
                );
                instances.clear();
            }
            self.matrix
                .insert(id.clone(), instances.iter().map(|e| e.id.clone()).collect());
            out.extend(instances);
        }
        out
    }

    fn expand_one<'v>(
        &mut self,
        id: &str,
        decl: &Map<String, Value>,
        path: &YamlPath,
        taken: &mut HashSet<String>,
    ) -> Option<Vec<Entry<'v>>> {
        let (key, spec) = match (decl.get("matrix"), decl.get("foreach")) {
            (Some(_), Some(_)) => {
                self.push(
                    "matrix",
                    &path.key("foreach"),
                    Part::Key,
                    format!("stage `{id}` has both `matrix:` and `foreach:`"),
                    "second fan-out",
                    Some("use `matrix:` for several axes, `foreach:` for one list".into()),
                );
                return None;
            }
            (Some(m), None) => ("matrix", m),
            (None, Some(f)) => ("foreach", f),
            (None, None) => unreachable!("only stages with one are expanded"),
        };
        let kpath = path.key(key);
        let bindings = if key == "matrix" {
            self.matrix_bindings(id, spec, &kpath)?
        } else {
            self.foreach_bindings(id, spec, &kpath)?
        };
        let mut body = decl.clone();
        body.remove(key);
        let body = Value::Object(body);
        let mut expanded = Vec::with_capacity(bindings.len());
        for (i, b) in bindings.iter().enumerate() {
            let mut decl = body.clone();
            if let Err((at, message)) = substitute(&mut decl, path, b, key) {
                // Wrong in every instance alike unless the first passed.
                let which = if i > 0 {
                    format!(" (instance `{id}@{}`)", b.suffix)
                } else {
                    String::new()
                };
                self.push(
                    "matrix",
                    &at,
                    Part::Value,
                    format!("stage `{id}`{which}: {message}"),
                    "here",
                    Some(match key {
                        "matrix" => format!("the axes are the keys of `matrix:` ({})", axes(spec)),
                        _ => "`foreach:` gives `${item}` (and `${key}` over a mapping)".into(),
                    }),
                );
                return None;
            }
            expanded.push(decl);
        }
        let mut seen: HashSet<&str> = HashSet::new();
        for b in &bindings {
            if id.len() + 1 + b.suffix.len() > super::stages::MAX_STAGE_NAME {
                self.push(
                    "matrix",
                    &kpath,
                    Part::Value,
                    format!(
                        "stage `{id}` expands to a name of {} bytes (`{id}@{}…`); the limit is {}, as a stage's log file is named after it",
                        id.len() + 1 + b.suffix.len(),
                        b.suffix.chars().take(20).collect::<String>(),
                        super::stages::MAX_STAGE_NAME
                    ),
                    "value too long",
                    Some("use shorter values, or `foreach:` over a mapping with short keys".into()),
                );
                return None;
            }
            if !seen.insert(&b.suffix) || taken.contains(&format!("{id}@{}", b.suffix)) {
                self.push(
                    "matrix",
                    &kpath,
                    Part::Key,
                    format!(
                        "stage `{id}` expands to `{id}@{}` twice (or onto a stage of that name)",
                        b.suffix
                    ),
                    "names collide",
                    Some("instance names join the values with `-`, other characters than letters, digits, `_`, `-` and `.` read `_`: make the values differ there".into()),
                );
                return None;
            }
        }
        let mut out = Vec::with_capacity(bindings.len());
        for (b, decl) in bindings.into_iter().zip(expanded) {
            let iid = format!("{id}@{}", b.suffix);
            taken.insert(iid.clone());
            out.push(Entry {
                id: iid,
                decl: Cow::Owned(decl),
                path: path.clone(),
                instance: true,
            });
        }
        Some(out)
    }

    /// `matrix:`: a mapping from axis name to a non-empty list of scalars.
    fn matrix_bindings(&mut self, id: &str, spec: &Value, at: &YamlPath) -> Option<Vec<Binding>> {
        let Some(axes) = spec.as_object().filter(|m| !m.is_empty()) else {
            self.push(
                "matrix",
                at,
                Part::Value,
                format!("`matrix` of stage `{id}` must map axis names to lists of values"),
                "expected a non-empty mapping",
                Some("e.g. `matrix: {model: [ols, sgd], fold: [0, 1, 2]}`".into()),
            );
            return None;
        };
        let mut lists: Vec<(&String, &Vec<Value>)> = Vec::new();
        let mut count: usize = 1;
        for (axis, values) in axes {
            let apath = at.key(axis.clone());
            if !valid_axis(axis) {
                self.push(
                    "matrix",
                    &apath,
                    Part::Key,
                    format!(
                        "axis name `{axis}` of stage `{id}` may only hold letters, digits and `_`"
                    ),
                    "bad name",
                    None,
                );
                return None;
            }
            let Some(list) = values.as_array().filter(|l| !l.is_empty()) else {
                self.push(
                    "matrix",
                    &apath,
                    Part::Value,
                    format!("axis `{axis}` of stage `{id}` must be a non-empty list"),
                    if values.as_array().is_some() {
                        "empty"
                    } else {
                        "not a list"
                    },
                    None,
                );
                return None;
            };
            if let Some(i) = list.iter().position(holds_template) {
                self.push(
                    "matrix",
                    &apath.index(i),
                    Part::Value,
                    format!("axis `{axis}` of stage `{id}` holds a `${{…}}`; values are taken as written"),
                    "a template in a value",
                    Some("write the value itself (a param may be used in the stage instead: `${params.KEY}`)".into()),
                );
                return None;
            }
            if let Some(i) = list.iter().position(|v| !is_scalar(v)) {
                self.push(
                    "matrix",
                    &apath.index(i),
                    Part::Value,
                    format!("axis `{axis}` of stage `{id}` holds a value that is not a string, number or boolean"),
                    "not a scalar",
                    Some("use `foreach:` over a list of mappings for structured values".into()),
                );
                return None;
            }
            count = count.saturating_mul(list.len());
            lists.push((axis, list));
        }
        if count > MAX_INSTANCES {
            self.push(
                "matrix",
                at,
                Part::Key,
                format!("`matrix` of stage `{id}` expands to more than {MAX_INSTANCES} stages, the most a pipeline may have"),
                "too many combinations",
                None,
            );
            return None;
        }
        // Every combination, the first axis outermost.
        let mut combos: Vec<Vec<&Value>> = vec![Vec::new()];
        for (_, list) in &lists {
            combos = combos
                .into_iter()
                .flat_map(|c| {
                    list.iter().map(move |v| {
                        let mut c = c.clone();
                        c.push(v);
                        c
                    })
                })
                .collect();
        }
        Some(
            combos
                .into_iter()
                .map(|values| {
                    let item: Map<String, Value> = lists
                        .iter()
                        .zip(&values)
                        .map(|((axis, _), v)| ((*axis).clone(), (*v).clone()))
                        .collect();
                    let parts: Vec<String> = values.iter().map(|v| name_part(&text(v))).collect();
                    Binding {
                        item: Value::Object(item),
                        key: None,
                        suffix: parts.join("-"),
                    }
                })
                .collect(),
        )
    }

    /// `foreach:`: a non-empty list (instances named by the value when it
    /// is a scalar, else by position) or mapping (named by the key).
    fn foreach_bindings(&mut self, id: &str, spec: &Value, at: &YamlPath) -> Option<Vec<Binding>> {
        let items: Vec<(YamlPath, &Value)> = match spec {
            Value::Array(l) => l
                .iter()
                .enumerate()
                .map(|(i, v)| (at.index(i), v))
                .collect(),
            Value::Object(m) => m.iter().map(|(k, v)| (at.key(k.clone()), v)).collect(),
            _ => Vec::new(),
        };
        for (p, v) in items {
            let why = if v.is_null() {
                "an empty value (null)"
            } else if holds_template(v) {
                "a `${…}`; values are taken as written"
            } else {
                continue;
            };
            self.push(
                "matrix",
                &p,
                Part::Value,
                format!("`foreach` of stage `{id}` holds {why}"),
                "here",
                None,
            );
            return None;
        }
        match spec {
            Value::Array(list) if !list.is_empty() => Some(
                list.iter()
                    .enumerate()
                    .map(|(i, v)| Binding {
                        item: v.clone(),
                        key: None,
                        suffix: if is_scalar(v) {
                            name_part(&text(v))
                        } else {
                            i.to_string()
                        },
                    })
                    .collect(),
            ),
            Value::Object(map) if !map.is_empty() => Some(
                map.iter()
                    .map(|(k, v)| Binding {
                        item: v.clone(),
                        key: Some(k.clone()),
                        suffix: name_part(k),
                    })
                    .collect(),
            ),
            _ => {
                self.push(
                    "matrix",
                    at,
                    Part::Value,
                    format!("`foreach` of stage `{id}` must be a non-empty list or mapping"),
                    "expected a non-empty list or mapping",
                    Some("e.g. `foreach: [small, large]`, then `${item}` in the stage".into()),
                );
                None
            }
        }
    }

    /// The stage ids `raw` (a `deps:` entry) stands for: `stage@*.port`
    /// is that port of every instance; anything else is itself. `None`
    /// when `stage` has no instances (reported).
    pub(super) fn fan_in(&mut self, raw: &str, stage: &str, at: &YamlPath) -> Option<Vec<String>> {
        let Some((base, port)) = raw.split_once("@*.") else {
            return Some(vec![raw.to_string()]);
        };
        match self.matrix.get(base) {
            Some(ids) if ids.is_empty() => None,
            Some(ids) => Some(ids.iter().map(|i| format!("{i}.{port}")).collect()),
            None => {
                let bases: Vec<&str> = self.matrix.keys().map(String::as_str).collect();
                let near = crate::suggest::did_you_mean(base, &bases);
                self.push(
                    "matrix",
                    at,
                    Part::Value,
                    format!("`{raw}` in stage `{stage}`: no stage `{base}` has `matrix:` or `foreach:`"),
                    "no instances",
                    Some(if near.is_empty() {
                        "`NAME@*.port` takes a port of every instance of a `matrix:` or `foreach:` stage".into()
                    } else {
                        near
                    }),
                );
                None
            }
        }
    }

    /// For a reference `train.model` to a stage that was expanded: the
    /// problem, reported, so the caller stops. `false` when `raw` is not one.
    pub(super) fn ref_to_matrix(&mut self, raw: &str, stage: &str, at: &YamlPath) -> bool {
        let Some((base, port)) = raw.split_once('.') else {
            return false;
        };
        let Some(ids) = self.matrix.get(base) else {
            return false;
        };
        if ids.is_empty() {
            // Its declaration was reported.
            return true;
        }
        let first = ids.first().cloned().unwrap_or_default();
        let shown: Vec<&str> = ids.iter().take(4).map(String::as_str).collect();
        self.push(
            "matrix",
            at,
            Part::Value,
            format!(
                "`{raw}` in stage `{stage}`: stage `{base}` is expanded into {} stages ({}{})",
                ids.len(),
                shown.join(", "),
                if ids.len() > 4 { ", …" } else { "" }
            ),
            "names no instance",
            Some(format!(
                "name one instance (`{first}.{port}`), or every one with `{base}@*.{port}` in `deps:` or an input that gathers"
            )),
        );
        true
    }
}

impl Validator<'_> {
    /// One problem per declaration, not per instance: a mistake in a
    /// `matrix:` stage is made by every instance alike, and 4 000 copies
    /// of it (each with its source line) bury the rest. Problems at the
    /// same place whose messages differ only in the instance named are
    /// kept once, with how many instances share them.
    pub(super) fn collapse_instance_issues(&mut self) {
        if self.matrix.values().all(Vec::is_empty) {
            return;
        }
        let mut first: HashMap<(&'static str, String), usize> = HashMap::new();
        let mut count: Vec<usize> = Vec::with_capacity(self.issues.len());
        let mut keep: Vec<bool> = Vec::with_capacity(self.issues.len());
        let mut bases: Vec<Option<String>> = Vec::with_capacity(self.issues.len());
        for (i, issue) in self.issues.iter().enumerate() {
            count.push(1);
            let base = match issue.path.as_ref().map(|p| p.0.as_slice()) {
                Some([Seg::Key(s), Seg::Key(b), ..]) if &**s == "stages" => b.to_string(),
                _ => {
                    keep.push(true);
                    bases.push(None);
                    continue;
                }
            };
            if self.matrix.get(&base).is_none_or(Vec::is_empty) {
                keep.push(true);
                bases.push(None);
                continue;
            }
            let key = format!(
                "{:?}|{:?}|{}|{}",
                issue.path,
                issue.part,
                issue.label,
                any_instance(&issue.message, &base)
            );
            match first.get(&(issue.code, key.clone())) {
                Some(&j) => {
                    count[j] += 1;
                    keep.push(false);
                }
                None => {
                    first.insert((issue.code, key), i);
                    keep.push(true);
                }
            }
            bases.push(Some(base));
        }
        let mut i = 0;
        self.issues.retain_mut(|issue| {
            let at = i;
            i += 1;
            if let (true, Some(base)) = (count[at] > 1, &bases[at]) {
                issue.message.push_str(&format!(
                    " (and the same in {} more instances of `{base}`)",
                    count[at] - 1
                ));
            }
            keep[at]
        });
    }
}

/// `message` with every instance name of `base` (`base@…`) written
/// `base@*`.
fn any_instance(message: &str, base: &str) -> String {
    let marker = format!("{base}@");
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(i) = rest.find(&marker) {
        out.push_str(&rest[..i + marker.len()]);
        out.push('*');
        rest = rest[i + marker.len()..].trim_start_matches(|c: char| {
            c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')
        });
    }
    out.push_str(rest);
    out
}

fn valid_axis(name: &str) -> bool {
    !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Whether a value (or a string inside it) holds `${`.
fn holds_template(v: &Value) -> bool {
    match v {
        Value::String(s) => s.contains("${"),
        Value::Array(a) => a.iter().any(holds_template),
        Value::Object(m) => m.values().any(holds_template),
        _ => false,
    }
}

fn is_scalar(v: &Value) -> bool {
    matches!(v, Value::String(_) | Value::Number(_) | Value::Bool(_))
}

/// A value as text: strings bare, numbers and booleans as YAML writes them.
fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A value as part of a stage name: letters, digits, `_`, `-` and `.`
/// kept, anything else `_`.
fn name_part(s: &str) -> String {
    let p: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if p.is_empty() {
        "_".into()
    } else {
        p
    }
}

fn axes(spec: &Value) -> String {
    spec.as_object()
        .map(|m| {
            m.keys()
                .map(|k| format!("`${{item.{k}}}`"))
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default()
}

/// Replaces `${item}`, `${item.NAME}` and `${key}` in every string of `v`
/// (mapping keys stay). A string that is one reference and nothing else
/// takes the value itself, type and all; inside text it is written as
/// text. `$${` and other namespaces are left for the later passes.
/// A `run:` written as one string is a shell command: values written into
/// it are quoted for the shell, so a value is one word and never code (as
/// `${params.…}` values are).
fn substitute(
    v: &mut Value,
    path: &YamlPath,
    b: &Binding,
    kind: &str,
) -> Result<(), (YamlPath, String)> {
    match v {
        Value::String(s) if s.contains("${") => {
            let quote = matches!(path.0.as_slice(), [_, _, Seg::Key(k)] if &**k == "run");
            if let Some(new) = render(s, b, kind, quote).map_err(|m| (path.clone(), m))? {
                *v = new;
            }
            Ok(())
        }
        Value::Array(items) => items
            .iter_mut()
            .enumerate()
            .try_for_each(|(i, x)| substitute(x, &path.index(i), b, kind)),
        Value::Object(m) => m
            .iter_mut()
            .try_for_each(|(k, x)| substitute(x, &path.key(k.clone()), b, kind)),
        _ => Ok(()),
    }
}

/// `s` with the references of `b` filled in; `None` when it has none.
/// Other references (and `$${` escapes) are written back for the later
/// passes. With `quote`, a value is quoted for the shell.
fn render(s: &str, b: &Binding, kind: &str, quote: bool) -> Result<Option<Value>, String> {
    let tokens = interp::tokens(s)?;
    let mut out = String::new();
    let mut found = false;
    for t in &tokens {
        let inner = match t {
            interp::Token::Lit(l) => {
                out.push_str(&interp::escape(l));
                continue;
            }
            interp::Token::Ref(inner) => *inner,
        };
        let Some(value) = item_value(inner, b, kind)? else {
            out.push_str("${");
            out.push_str(inner);
            out.push('}');
            continue;
        };
        found = true;
        // One reference alone keeps the value's type.
        if tokens.len() == 1 && !quote {
            return Ok(Some(value));
        }
        let value = text(&value);
        if quote {
            out.push_str(&shlex::try_quote(&value).map_err(|_| {
                format!("`${{{inner}}}` holds a NUL byte, which a shell command cannot")
            })?);
        } else {
            out.push_str(&value);
        }
    }
    Ok(found.then_some(Value::String(out)))
}

/// What `${inner}` stands for in `b`; `None` when it is not `item` or
/// `key` (a param, input or output, for the later passes).
fn item_value(inner: &str, b: &Binding, kind: &str) -> Result<Option<Value>, String> {
    let value = match inner.split_once('.') {
        _ if inner == "key" => match &b.key {
            Some(k) => Value::String(k.clone()),
            None => {
                return Err(format!(
                "`${{key}}` is only given by `foreach:` over a mapping (this stage has `{kind}:`)"
            ))
            }
        },
        _ if inner == "item" => {
            if kind == "matrix" {
                return Err("`${item}` needs an axis with `matrix:`: write `${item.AXIS}`".into());
            }
            b.item.clone()
        }
        Some(("item", name)) => lookup(&b.item, name).ok_or_else(|| match kind {
            "matrix" => format!("`${{item.{name}}}` is not an axis of `matrix:`"),
            _ => format!("`${{item.{name}}}`: the `foreach:` item has no field `{name}`"),
        })?,
        _ => return Ok(None),
    };
    Ok(Some(value))
}

/// `a.b` inside a mapping item.
fn lookup(item: &Value, dotted: &str) -> Option<Value> {
    let mut at = item;
    for part in dotted.split('.') {
        at = at.as_object()?.get(part)?;
    }
    Some(at.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bind(item: Value, key: Option<&str>) -> Binding {
        Binding {
            item,
            key: key.map(String::from),
            suffix: String::new(),
        }
    }

    #[test]
    fn references_are_filled_typed_alone_and_as_text_inside() {
        let b = bind(serde_json::json!({"lr": 0.01, "model": "ols"}), None);
        assert_eq!(
            render("${item.lr}", &b, "matrix", false).unwrap(),
            Some(serde_json::json!(0.01))
        );
        assert_eq!(
            render(
                "fit.py --lr ${item.lr} ${params.x} $${item.lr}",
                &b,
                "matrix",
                false
            )
            .unwrap(),
            Some(Value::String(
                "fit.py --lr 0.01 ${params.x} $${item.lr}".into()
            ))
        );
        assert_eq!(render("${params.x}", &b, "matrix", false).unwrap(), None);
        assert!(render("${item.lrr}", &b, "matrix", false)
            .unwrap_err()
            .contains("not an axis"));
        assert!(render("${item}", &b, "matrix", false).is_err());
        assert!(render("${key}", &b, "matrix", false).is_err());
        let b = bind(serde_json::json!({"rows": 10}), Some("small"));
        assert_eq!(
            render("${key}:${item.rows}", &b, "foreach", false).unwrap(),
            Some(Value::String("small:10".into()))
        );
    }

    /// A value written into a shell command is one word, never code.
    #[test]
    fn values_in_a_shell_command_are_quoted() {
        let b = bind(serde_json::json!("a;echo PWNED it's"), None);
        let out = render("printf %s ${item}", &b, "foreach", true).unwrap();
        assert_eq!(
            out,
            Some(Value::String(r#"printf %s "a;echo PWNED it's""#.into()))
        );
    }

    #[test]
    fn instance_names_keep_only_safe_characters() {
        assert_eq!(name_part("0.01"), "0.01");
        assert_eq!(name_part("a b/c"), "a_b_c");
        assert_eq!(name_part(""), "_");
    }
}
