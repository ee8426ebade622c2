//! Checks of shape shared by several sections: keys a mapping may hold,
//! and list items written as `path` or `name: path`.

use serde_json::{Map, Value};

use super::super::span::{Part, YamlPath};
use super::Validator;
use crate::suggest::did_you_mean;

impl Validator<'_> {
    /// Reports each key of `map` not in `allowed`, with the closest allowed
    /// key (or the list of them) as help.
    pub(super) fn unknown_keys(
        &mut self,
        map: &Map<String, Value>,
        path: &YamlPath,
        allowed: &[&str],
        what: &str,
        context: &str,
    ) {
        for k in map.keys() {
            if !allowed.contains(&k.as_str()) {
                let mut help = did_you_mean(k, allowed);
                if help.is_empty() {
                    help = format!("allowed keys: {}", allowed.join(", "));
                }
                self.push(
                    "unknown_field",
                    &path.key(k),
                    Part::Key,
                    format!("unknown {what} `{k}`{context}"),
                    "unknown key",
                    Some(help),
                );
            }
        }
    }

    /// A list item that is either `"value"` or `{name: "value"}`.
    pub(super) fn named_entry(
        &mut self,
        item: &Value,
        path: &YamlPath,
        what: &str,
    ) -> Option<(Option<String>, String)> {
        match item {
            Value::String(s) => Some((None, s.clone())),
            Value::Object(m) if m.len() == 1 => {
                let (k, v) = m.iter().next().expect("one entry");
                match v.as_str() {
                    Some(s) => Some((Some(k.clone()), s.to_string())),
                    None => {
                        self.push(
                            "type",
                            &path.key(k),
                            Part::Value,
                            format!("`{what}` entries must be paths (strings)"),
                            "not a string",
                            None,
                        );
                        None
                    }
                }
            }
            _ => {
                self.push(
                    "type",
                    path,
                    Part::Value,
                    format!("`{what}` entries must be a path or `name: path`"),
                    "not a path",
                    None,
                );
                None
            }
        }
    }
}
