//! The pipeline's parameter tree: dotted lookups, overrides, merging.

use serde_json::{Map, Value};

/// Looks up `a.b.c` in a nested mapping.
pub fn get<'v>(root: &'v Value, key: &str) -> Option<&'v Value> {
    let mut cur = root;
    for part in key.split('.') {
        cur = cur.as_object()?.get(part)?;
    }
    Some(cur)
}

/// Replaces the value at an existing dotted key. Returns false when the key
/// does not exist (overrides never create keys: a typo must not pass silently).
pub fn set_existing(root: &mut Value, key: &str, value: Value) -> bool {
    let mut cur = root;
    for part in key.split('.') {
        match cur.as_object_mut().and_then(|m| m.get_mut(part)) {
            Some(next) => cur = next,
            None => return false,
        }
    }
    *cur = value;
    true
}

/// Every key in the tree, dotted, leaves and inner nodes alike.
pub fn all_keys(root: &Value) -> Vec<String> {
    fn walk(prefix: &str, v: &Value, out: &mut Vec<String>) {
        if let Value::Object(m) = v {
            for (k, child) in m {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                out.push(key.clone());
                walk(&key, child, out);
            }
        }
    }
    let mut out = Vec::new();
    walk("", root, &mut out);
    out
}

/// Deep-merges `over` into `base` (mappings merge, everything else replaces).
pub fn merge(base: &mut Value, over: Value) {
    match (base, over) {
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                match b.get_mut(&k) {
                    Some(slot) => merge(slot, v),
                    None => {
                        b.insert(k, v);
                    }
                }
            }
        }
        (slot, v) => *slot = v,
    }
}

/// A value as text for a command line: strings bare, everything else as JSON.
pub fn to_arg(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Canonical form: mappings with sorted keys, so that equal values hash equal.
pub fn canonical(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            let mut out = Map::with_capacity(m.len());
            for k in keys {
                out.insert(k.clone(), canonical(&m[k]));
            }
            Value::Object(out)
        }
        Value::Array(a) => Value::Array(a.iter().map(canonical).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn get_set_and_keys() {
        let mut p = json!({"train": {"lr": 0.01, "epochs": 10}, "seed": 1});
        assert_eq!(get(&p, "train.lr"), Some(&json!(0.01)));
        assert!(set_existing(&mut p, "train.lr", json!(0.1)));
        assert!(!set_existing(&mut p, "train.momentum", json!(0.9)));
        assert_eq!(p["train"]["lr"], json!(0.1));
        assert_eq!(
            all_keys(&p),
            vec!["train", "train.lr", "train.epochs", "seed"]
        );
    }

    #[test]
    fn merge_is_deep() {
        let mut a = json!({"t": {"lr": 1, "e": 2}});
        merge(&mut a, json!({"t": {"lr": 3}, "x": 1}));
        assert_eq!(a, json!({"t": {"lr": 3, "e": 2}, "x": 1}));
    }

    #[test]
    fn canonical_sorts_keys() {
        let a = json!({"b": 1, "a": {"d": 1, "c": 2}});
        assert_eq!(canonical(&a).to_string(), r#"{"a":{"c":2,"d":1},"b":1}"#);
    }
}
