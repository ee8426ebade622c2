//! Writes param values into the files they come from — the inline
//! `params:` of `mlcycle.yaml`, or its `params_file:` — replacing only the
//! value's text, so the rest of the file (comments, order, layout) stays as
//! it was.

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::ExpError;
use crate::config::load;
use crate::config::span::{Part, SpanIndex, YamlPath};
use crate::params;

/// Where a pipeline's params live: `mlcycle.yaml` and its `params_file:`.
#[derive(Debug, Clone)]
pub struct ParamFiles {
    pub pipeline: PathBuf,
    pub params_file: Option<PathBuf>,
}

impl ParamFiles {
    /// Reads `params_file:` from the pipeline file `pipeline`.
    ///
    /// # Errors
    /// The file cannot be read or is not valid YAML (validation says more).
    pub fn of(pipeline: &Path) -> Result<Self, ExpError> {
        let doc = read_yaml(pipeline)?.1;
        let params_file = doc
            .get("params_file")
            .and_then(Value::as_str)
            .map(|rel| pipeline.parent().unwrap_or(Path::new(".")).join(rel));
        Ok(Self {
            pipeline: pipeline.to_path_buf(),
            params_file,
        })
    }

    /// Writes each `(key, value)` where the key is set: in the inline
    /// `params:` when it is there (it wins over the params file), else in
    /// the params file. Each file is written atomically, once. Returns the
    /// files changed.
    ///
    /// # Errors
    /// A key set in neither file, a value that cannot be edited in place
    /// (it comes from an anchor or a merge key), or a file that cannot be
    /// read or written. Nothing is written then.
    pub fn write(&self, values: &[(String, Value)]) -> Result<Vec<PathBuf>, ExpError> {
        let mut changed = Vec::new();
        for (path, text) in self.edits(values)? {
            let old = std::fs::read_to_string(&path).unwrap_or_default();
            if old != text {
                crate::workspace::write_atomic(&path, text.as_bytes()).map_err(|source| {
                    ExpError::Io {
                        path: path.clone(),
                        source,
                    }
                })?;
                changed.push(path);
            }
        }
        Ok(changed)
    }

    /// Checks that [`write`](Self::write) can write `values`, writing nothing.
    ///
    /// # Errors
    /// As `write`.
    pub fn check(&self, values: &[(String, Value)]) -> Result<(), ExpError> {
        self.edits(values).map(drop)
    }

    /// Each file to change, with its new text.
    fn edits(&self, values: &[(String, Value)]) -> Result<Vec<(PathBuf, String)>, ExpError> {
        let (ptext, pdoc) = read_yaml(&self.pipeline)?;
        let inline = pdoc.get("params").cloned().unwrap_or(Value::Null);
        let mut in_pipeline = Vec::new();
        let mut in_file = Vec::new();
        for (key, v) in values {
            if params::get(&inline, key).is_some() {
                in_pipeline.push((key.clone(), v.clone()));
            } else {
                in_file.push((key.clone(), v.clone()));
            }
        }
        let mut edits = Vec::new();
        if !in_pipeline.is_empty() {
            let base = YamlPath::root().key("params");
            edits.push((
                self.pipeline.clone(),
                edit_text(&ptext, &base, &in_pipeline, &self.pipeline)?,
            ));
        }
        if !in_file.is_empty() {
            let Some(pf) = &self.params_file else {
                let (key, _) = &in_file[0];
                return Err(unknown(key, &self.pipeline));
            };
            let text = read_yaml(pf)?.0;
            edits.push((
                pf.clone(),
                edit_text(&text, &YamlPath::root(), &in_file, pf)?,
            ));
        }
        Ok(edits)
    }
}

/// Points `params_file:` of the pipeline file `pipeline` at `rel`.
///
/// # Errors
/// The file cannot be read, edited or written.
pub fn set_params_file(pipeline: &Path, rel: &str) -> Result<(), ExpError> {
    set_top_level(pipeline, "params_file", rel)
}

/// Sets the top-level key `key` of the pipeline file `pipeline` to the
/// text `value`: its value replaced when the key is there, else a line
/// added at the top (after a `---` marker).
///
/// # Errors
/// The file cannot be read, edited or written.
pub fn set_top_level(pipeline: &Path, key: &str, value: &str) -> Result<(), ExpError> {
    let (text, doc) = read_yaml(pipeline)?;
    let v = Value::String(value.into());
    let out = if doc.get(key).is_some() {
        edit_text(&text, &YamlPath::root(), &[(key.to_string(), v)], pipeline)?
    } else {
        let line = format!("{key}: {}\n", render(&v));
        match text.strip_prefix("---\n") {
            Some(rest) => format!("---\n{line}{rest}"),
            None => format!("{line}{text}"),
        }
    };
    crate::workspace::write_atomic(pipeline, out.as_bytes()).map_err(|source| ExpError::Io {
        path: pipeline.to_path_buf(),
        source,
    })
}

/// The 1-based line of byte offset `at`.
fn line_of(text: &str, at: usize) -> usize {
    text[..at.min(text.len())].matches('\n').count() + 1
}

fn file_name(file: &Path) -> String {
    file.file_name().map_or_else(
        || file.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

fn unknown(key: &str, file: &Path) -> ExpError {
    ExpError::UnknownParam {
        key: key.into(),
        file: file_name(file),
        help: super::DECLARED_PARAMS.into(),
    }
}

fn read_yaml(path: &Path) -> Result<(String, Value), ExpError> {
    let text = load::read_capped(path).map_err(|_| ExpError::Io {
        path: path.to_path_buf(),
        source: std::io::Error::other("cannot read it as a YAML file of at most 8 MiB"),
    })?;
    let doc = load::parse(&text).map_err(|_| ExpError::Invalid {
        file: path.to_path_buf(),
    })?;
    Ok((text, doc))
}

/// `text` with the value of each key under `base` replaced; checked by
/// parsing the result again.
fn edit_text(
    text: &str,
    base: &YamlPath,
    values: &[(String, Value)],
    file: &Path,
) -> Result<String, ExpError> {
    let doc = load::parse(text).map_err(|_| ExpError::Invalid {
        file: file.to_path_buf(),
    })?;
    let under = |root: &Value| -> Value {
        base.0.iter().fold(root.clone(), |v, seg| match seg {
            crate::config::span::Seg::Key(k) => v.get(&**k).cloned().unwrap_or(Value::Null),
            crate::config::span::Seg::Index(i) => v.get(i).cloned().unwrap_or(Value::Null),
        })
    };
    let spans = SpanIndex::build(text);
    let mut cuts = Vec::with_capacity(values.len());
    let scope = under(&doc);
    for (key, v) in values {
        let Some(old) = params::get(&scope, key) else {
            return Err(unknown(key, file));
        };
        if old.is_object() || old.is_array() || v.is_object() || v.is_array() {
            return Err(ExpError::NotScalar { key: key.clone() });
        }
        let path = key.split('.').fold(base.clone(), |p, part| p.key(part));
        // Problems are shown at the key's line.
        let key_at = spans.locate(&path, Part::Key).map_or(0, |(s, _)| s);
        let not_editable = |why: &str| ExpError::NotEditable {
            key: key.clone(),
            file: file_name(file),
            line: line_of(text, key_at),
            why: why.into(),
        };
        let (start, len) = spans
            .locate(&path, Part::Value)
            .ok_or_else(|| not_editable("its value has no text of its own there"))?;
        // A block scalar's span is its content; its indicator comes before.
        let indicator = text[..start]
            .trim_end()
            .rsplit([' ', '\t', '\n'])
            .next()
            .unwrap_or("");
        if indicator.starts_with(['|', '>']) || text[start..].starts_with(['|', '>']) {
            return Err(not_editable("its value is a block scalar (`|` or `>`)"));
        }
        cuts.push((key, key_at, start, start + len, render(v)));
    }
    cuts.sort_by_key(|c| std::cmp::Reverse(c.2));
    let mut out = text.to_string();
    for (_, _, s, e, new) in &cuts {
        out.replace_range(*s..*e, new);
    }
    // The edit must change exactly what was asked: a value that an anchor
    // or a merge key supplies has no text of its own to replace, and one
    // that defines an anchor would change its aliases too.
    let again = load::parse(&out).ok();
    let mut before = serde_json::Map::new();
    super::flatten("", &scope, &mut before);
    let mut after = serde_json::Map::new();
    if let Some(d) = &again {
        super::flatten("", &under(d), &mut after);
    }
    for (key, key_at, _, _, _) in &cuts {
        let at = |why: String| ExpError::NotEditable {
            key: key.to_string(),
            file: file_name(file),
            line: line_of(text, *key_at),
            why,
        };
        let want = values.iter().find(|(k, _)| k == *key).map(|(_, v)| v);
        if after.get(key.as_str()) != want {
            return Err(at("its value comes from an anchor or a merge key".into()));
        }
        let others: Vec<&String> = after
            .iter()
            .filter(|(k, v)| !values.iter().any(|(vk, _)| vk == *k) && before.get(*k) != Some(*v))
            .map(|(k, _)| k)
            .collect();
        if !others.is_empty() {
            let names: Vec<String> = others.iter().map(|k| format!("`{k}`")).collect();
            return Err(at(format!(
                "it is part of an anchor that {} also use(s)",
                names.join(", ")
            )));
        }
    }
    Ok(out)
}

/// A scalar as YAML text that parses back to the same value.
pub fn render(v: &Value) -> String {
    match v {
        Value::String(s) => {
            let plain = !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '/'))
                && load::parse_scalar(s) == *v;
            if plain {
                s.clone()
            } else {
                Value::String(s.clone()).to_string()
            }
        }
        Value::Null => "null".into(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn edit(text: &str, values: &[(&str, Value)]) -> Result<String, ExpError> {
        let values: Vec<(String, Value)> = values
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect();
        edit_text(text, &YamlPath::root(), &values, Path::new("params.yaml"))
    }

    #[test]
    fn only_the_values_change_comments_and_layout_stay() {
        let text = "# tuned by hand\ntrain:\n  lr: 0.01   # the step\n  epochs: 10\n  opt: {name: sgd, momentum: 0.9}\nseed: 7\n";
        let out = edit(
            text,
            &[
                ("train.lr", json!(0.1)),
                ("train.opt.name", json!("adam w")),
                ("seed", json!(8)),
            ],
        )
        .unwrap();
        assert_eq!(
            out,
            "# tuned by hand\ntrain:\n  lr: 0.1   # the step\n  epochs: 10\n  opt: {name: \"adam w\", momentum: 0.9}\nseed: 8\n"
        );
    }

    #[test]
    fn strings_that_would_change_type_are_quoted() {
        for v in [
            json!("true"),
            json!("1.5"),
            json!(""),
            json!("a: b"),
            json!("#x"),
        ] {
            let out = edit("k: x\n", &[("k", v.clone())]).unwrap();
            assert_eq!(load::parse(&out).unwrap()["k"], v, "{out}");
        }
    }

    #[test]
    fn unknown_keys_mappings_and_merged_values_are_refused() {
        assert!(matches!(
            edit("a: 1\n", &[("b", json!(2))]),
            Err(ExpError::UnknownParam { .. })
        ));
        assert!(matches!(
            edit("a: {b: 1}\n", &[("a", json!(2))]),
            Err(ExpError::NotScalar { .. })
        ));
        let merged = "base: &b {lr: 0.1}\ntrain:\n  <<: *b\n  epochs: 3\n";
        assert!(matches!(
            edit(merged, &[("train.lr", json!(0.2))]),
            Err(ExpError::NotEditable { .. })
        ));
    }
}
