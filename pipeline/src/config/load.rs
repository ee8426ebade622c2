//! Reading a YAML file into a plain value tree.
//!
//! This is the one module that knows which YAML parser the project uses
//! (`serde_norway`, the maintained fork of `serde_yaml`), so the parser can be
//! swapped in one place. It also guards the parser: a size cap and a bound on
//! alias expansion are checked *before* the document is deserialized, because
//! `serde_yaml`-family parsers can exhaust memory or abort on alias bombs.

use std::path::Path;

use saphyr_parser::{Event, Parser, SpannedEventReceiver};
use serde_json::Value;

/// The largest pipeline or params file accepted (8 MiB). A 10 000-stage
/// pipeline is about 1.5 MiB.
pub const MAX_FILE_BYTES: u64 = 8 * 1024 * 1024;

/// The largest number of YAML nodes a document may expand to once aliases
/// are followed.
pub const MAX_EXPANDED_NODES: u64 = 2_000_000;

/// Why a YAML file could not be read into a value tree.
#[derive(Debug)]
pub enum LoadFailure {
    /// The file could not be read.
    Io(std::io::Error),
    /// The file is larger than [`MAX_FILE_BYTES`].
    TooLarge { bytes: u64 },
    /// Following the aliases would build more than [`MAX_EXPANDED_NODES`] nodes.
    AliasBomb { nodes: u64, offset: usize },
    /// The text is not valid YAML (or not valid UTF-8).
    Syntax {
        message: String,
        offset: Option<usize>,
    },
}

/// Reads `path` to a string, refusing files over [`MAX_FILE_BYTES`].
pub fn read_capped(path: &Path) -> Result<String, LoadFailure> {
    let meta = std::fs::metadata(path).map_err(LoadFailure::Io)?;
    // A FIFO would block the read, /dev/zero would fill memory.
    crate::hash::regular_file(path, &meta).map_err(LoadFailure::Io)?;
    if meta.len() > MAX_FILE_BYTES {
        return Err(LoadFailure::TooLarge { bytes: meta.len() });
    }
    let bytes = std::fs::read(path).map_err(LoadFailure::Io)?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(LoadFailure::TooLarge {
            bytes: bytes.len() as u64,
        });
    }
    // A UTF-8 byte-order mark (editors on Windows write one) is not part of
    // the document: YAML allows it only before the first one, and our
    // parser would read a second top-level key as a second document.
    let bytes = match bytes.strip_prefix(b"\xEF\xBB\xBF") {
        Some(rest) => rest.to_vec(),
        None => bytes,
    };
    String::from_utf8(bytes).map_err(|e| LoadFailure::Syntax {
        message: format!("the file is not valid UTF-8 ({e})"),
        offset: Some(e.utf8_error().valid_up_to()),
    })
}

/// Parses YAML text into a JSON value tree (mappings keep their order).
pub fn parse(text: &str) -> Result<Value, LoadFailure> {
    // Anchors are the only way to expand a document; without one the
    // expansion check has nothing to find, so skip its extra parse.
    if may_have_anchor(text) {
        check_alias_expansion(text)?;
    }
    // YAML merge keys (`<<: *base`, common in params files) need the YAML
    // tree: the merge is applied there, then the tree becomes JSON. Without
    // one, the text goes straight into the JSON value tree the rest of the
    // engine uses (mappings keep their order).
    if let Some(offset) = find_deep_nesting(text) {
        return Err(LoadFailure::Syntax {
            message: format!(
                "the document nests deeper than {MAX_NESTING} levels; a pipeline never needs that"
            ),
            offset: Some(offset),
        });
    }
    if let Some((offset, digits)) = find_long_integer(text) {
        return Err(LoadFailure::Syntax {
            message: format!(
                "the integer `{digits}` does not fit in 64 bits, and would silently become an \
                 inexact floating-point number; quote it (`\"{digits}\"`) to keep it as text"
            ),
            offset: Some(offset),
        });
    }
    if has_merge_key(text) {
        return parse_with_merge(text);
    }
    let value: Value = serde_norway::from_str::<Strict>(text)
        .map(|s| s.0)
        .map_err(syntax(text))?;
    if value.is_null() {
        return Ok(Value::Object(Default::default()));
    }
    Ok(value)
}

/// A parser error as a [`LoadFailure`], placed where the parser says or,
/// for a second document (which has no place in the error), at its `---`.
fn syntax(text: &str) -> impl Fn(serde_norway::Error) -> LoadFailure + '_ {
    move |e| {
        let message = strip_location(&e.to_string());
        let offset = e.location().map(|l| l.index()).or_else(|| {
            message
                .contains("more than one document")
                .then(|| second_document(text))
                .flatten()
        });
        let message = if message.contains("more than one document") {
            "the file holds more than one YAML document (a second `---`); a pipeline is one document".into()
        } else {
            message
        };
        LoadFailure::Syntax { message, offset }
    }
}

/// The offset of the `---` (or `...`) line that ends the first document
/// with content.
fn second_document(text: &str) -> Option<usize> {
    let mut offset = 0;
    let mut content = false;
    for line in text.split_inclusive('\n') {
        let t = line.trim_end();
        if t == "---" || t.starts_with("--- ") || t == "..." {
            if content {
                return Some(offset);
            }
        } else if !t.trim_start().is_empty() && !t.trim_start().starts_with('#') {
            content = true;
        }
        offset += line.len();
    }
    None
}

/// The deepest nesting of `[` and `{` accepted (the YAML deserializer's own
/// limit); checked before parsing, because the parser takes time quadratic
/// in the depth (100 000 nested flow mappings took over half a minute).
const MAX_NESTING: usize = 128;

/// The offset of the first flow bracket nested deeper than [`MAX_NESTING`],
/// outside quoted strings and comments.
fn find_deep_nesting(text: &str) -> Option<usize> {
    let b = text.as_bytes();
    let (mut depth, mut i) = (0usize, 0usize);
    let mut quote: Option<u8> = None;
    while i < b.len() {
        let c = b[i];
        match quote {
            Some(b'\'') if c == b'\'' => quote = None,
            Some(b'"') if c == b'\\' => i += 1,
            Some(b'"') if c == b'"' => quote = None,
            Some(_) => {}
            None => match c {
                b'\'' | b'"' => quote = Some(c),
                b'#' if i == 0 || b[i - 1].is_ascii_whitespace() => {
                    while i < b.len() && b[i] != b'\n' {
                        i += 1;
                    }
                }
                b'[' | b'{' => {
                    depth += 1;
                    if depth > MAX_NESTING {
                        return Some(i);
                    }
                }
                b']' | b'}' => depth = depth.saturating_sub(1),
                b'\n' => {}
                _ => {}
            },
        }
        i += 1;
    }
    None
}

/// Whether `token` is an integer literal (sign, digits) too large for 64
/// bits.
pub fn is_long_integer(token: &str) -> bool {
    let digits = token.strip_prefix(['-', '+']).unwrap_or(token);
    !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && token.parse::<i64>().is_err()
        && token.trim_start_matches('+').parse::<u64>().is_err()
}

/// The first plain (unquoted) integer scalar in `text` too large for 64
/// bits, with its byte offset. A cheap scan: only runs of 19 digits or more
/// are looked at, and only where a plain scalar starts (after `:`, `-`,
/// `[`, `,` or `{`) and ends.
fn find_long_integer(text: &str) -> Option<(usize, &str)> {
    let b = text.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if !b[i].is_ascii_digit() {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i - start < 19 {
            continue;
        }
        let signed = start > 0 && matches!(b[start - 1], b'-' | b'+');
        let tok_start = if signed { start - 1 } else { start };
        let before = text[..tok_start].trim_end_matches([' ', '\t']);
        let opens = before.is_empty() || before.ends_with([':', '-', '[', ',', '{', '\n']);
        let after = text[i..].trim_start_matches([' ', '\t', '\r']);
        let closes = after.is_empty() || after.starts_with(['\n', ',', ']', '}', '#']);
        let token = &text[tok_start..i];
        if opens && closes && is_long_integer(token) {
            return Some((tok_start, token));
        }
    }
    None
}

/// Whether `text` may use a merge key: `<<:` at the start of a key.
fn has_merge_key(text: &str) -> bool {
    text.match_indices("<<").any(|(i, _)| {
        let before = text[..i].trim_end_matches([' ', '\t']);
        (before.is_empty() || before.ends_with(['\n', '{', ',']))
            && text[i + 2..]
                .trim_start_matches([' ', '\t'])
                .starts_with(':')
    })
}

/// [`parse`] for text with merge keys: through `serde_norway::Value`, whose
/// `apply_merge` resolves them (the merged keys come after the mapping's own).
fn parse_with_merge(text: &str) -> Result<Value, LoadFailure> {
    let mut value: serde_norway::Value = serde_norway::from_str(text).map_err(syntax(text))?;
    value.apply_merge().map_err(|e| LoadFailure::Syntax {
        message: format!(
            "cannot apply a merge key (`<<`): {}",
            strip_location(&e.to_string())
        ),
        offset: e.location().map(|l| l.index()),
    })?;
    let value = to_json(value).map_err(|message| LoadFailure::Syntax {
        message,
        offset: None,
    })?;
    if value.is_null() {
        return Ok(Value::Object(Default::default()));
    }
    Ok(value)
}

/// Whether `text` may define a YAML anchor (`&name` where a node starts).
/// A cheap scan that errs towards yes: `a && b` inside a command is not an
/// anchor, so most pipelines skip the extra, positioned parse.
fn may_have_anchor(text: &str) -> bool {
    let b = text.as_bytes();
    b.iter().enumerate().any(|(i, &c)| {
        c == b'&'
            && (i == 0
                || matches!(
                    b[i - 1],
                    b' ' | b'\t' | b'\n' | b'[' | b'{' | b',' | b'-' | b':'
                ))
            && b.get(i + 1).is_some_and(|&n| {
                !matches!(
                    n,
                    b' ' | b'\t' | b'\r' | b'\n' | b'&' | b',' | b'[' | b']' | b'{' | b'}'
                )
            })
    })
}

/// Parses one scalar as YAML would type it (`0.1` is a float, `true` a bool,
/// `abc` a string), for `-p key=value` overrides.
pub fn parse_scalar(text: &str) -> Value {
    match serde_norway::from_str::<serde_norway::Value>(text) {
        Ok(
            v @ (serde_norway::Value::Bool(_)
            | serde_norway::Value::Number(_)
            | serde_norway::Value::String(_)),
        ) => to_json(v).unwrap_or(Value::String(text.into())),
        Ok(serde_norway::Value::Null) if text.trim().is_empty() => Value::String(String::new()),
        Ok(serde_norway::Value::Null) => Value::Null,
        _ => Value::String(text.to_string()),
    }
}

/// A value tree that refuses what a plain `serde_json::Value` would accept
/// silently: a key given twice in one mapping (the last would win) and
/// numbers that are not finite (`.inf`, `.nan`, which JSON cannot hold).
struct Strict(Value);

impl<'de> serde::Deserialize<'de> for Strict {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(StrictVisitor).map(Strict)
    }
}

struct StrictVisitor;

impl<'de> serde::de::Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a YAML value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Value, E> {
        serde_json::Number::from_f64(v)
            .map(Value::Number)
            .ok_or_else(|| {
                E::custom(format!(
                    "`{v}` is not a finite number; quote it to use it as a string"
                ))
            })
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(StrictVisitor)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::new();
        while let Some(Strict(v)) = seq.next_element()? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = serde_json::Map::new();
        while let Some(Strict(k)) = map.next_key()? {
            let key = match k {
                Value::String(s) => s,
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => b.to_string(),
                Value::Null => "null".to_string(),
                _ => {
                    return Err(serde::de::Error::custom(
                        "mapping keys must be plain scalars",
                    ))
                }
            };
            if out.contains_key(&key) {
                return Err(serde::de::Error::custom(format!(
                    "the key `{key}` appears twice in the same mapping"
                )));
            }
            let Strict(v) = map.next_value()?;
            out.insert(key, v);
        }
        Ok(Value::Object(out))
    }
}

fn strip_location(msg: &str) -> String {
    // serde_norway appends " at line X column Y"; the diagnostic shows it better.
    match msg.find(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg.to_string(),
    }
}

fn to_json(value: serde_norway::Value) -> Result<Value, String> {
    use serde_norway::Value as Y;
    Ok(match value {
        Y::Null => Value::Null,
        Y::Bool(b) => Value::Bool(b),
        Y::Number(n) => {
            if let Some(i) = n.as_i64() {
                Value::from(i)
            } else if let Some(u) = n.as_u64() {
                Value::from(u)
            } else {
                let f = n.as_f64().unwrap_or(f64::NAN);
                serde_json::Number::from_f64(f)
                    .map(Value::Number)
                    .ok_or_else(|| {
                        format!("the number `{f}` is not finite; write it as a string")
                    })?
            }
        }
        Y::String(s) => Value::String(s),
        Y::Sequence(seq) => Value::Array(seq.into_iter().map(to_json).collect::<Result<_, _>>()?),
        Y::Mapping(map) => {
            let mut out = serde_json::Map::with_capacity(map.len());
            for (k, v) in map {
                let key = match k {
                    Y::String(s) => s,
                    Y::Number(n) => n.to_string(),
                    Y::Bool(b) => b.to_string(),
                    Y::Null => "null".to_string(),
                    other => {
                        return Err(format!(
                            "mapping keys must be plain scalars, found {}",
                            kind_name(&other)
                        ))
                    }
                };
                out.insert(key, to_json(v)?);
            }
            Value::Object(out)
        }
        Y::Tagged(t) => to_json(t.value)?,
    })
}

fn kind_name(v: &serde_norway::Value) -> &'static str {
    match v {
        serde_norway::Value::Sequence(_) => "a list",
        serde_norway::Value::Mapping(_) => "a mapping",
        _ => "a tagged value",
    }
}

/// Counts how many nodes the document expands to when every alias is
/// replaced by its anchored node, and refuses it past the limit.
fn check_alias_expansion(text: &str) -> Result<(), LoadFailure> {
    struct Counter {
        /// Expanded size of each finished anchor, by anchor id.
        anchors: Vec<u64>,
        /// Open collections: (anchor id, expanded size so far).
        stack: Vec<(usize, u64)>,
        total: u64,
        bomb_at: Option<usize>,
    }
    impl Counter {
        fn add(&mut self, n: u64, offset: usize) {
            self.total = self.total.saturating_add(n);
            if let Some(top) = self.stack.last_mut() {
                top.1 = top.1.saturating_add(n);
            }
            if self.total > MAX_EXPANDED_NODES && self.bomb_at.is_none() {
                self.bomb_at = Some(offset);
            }
        }
        fn record(&mut self, anchor: usize, size: u64) {
            if anchor > 0 {
                if self.anchors.len() <= anchor {
                    self.anchors.resize(anchor + 1, 0);
                }
                self.anchors[anchor] = size;
            }
        }
    }
    impl<'a> SpannedEventReceiver<'a> for Counter {
        fn on_event(&mut self, ev: Event<'a>, span: saphyr_parser::Span) {
            let at = span.start.index();
            match ev {
                Event::Scalar(_, _, anchor, _) => {
                    self.add(1, at);
                    self.record(anchor, 1);
                }
                Event::Alias(id) => {
                    let n = self.anchors.get(id).copied().unwrap_or(1);
                    self.add(n, at);
                }
                Event::SequenceStart(anchor, _) | Event::MappingStart(anchor, _) => {
                    self.add(1, at);
                    self.stack.push((anchor, 1));
                }
                Event::SequenceEnd | Event::MappingEnd => {
                    if let Some((anchor, size)) = self.stack.pop() {
                        self.record(anchor, size);
                    }
                }
                _ => {}
            }
        }
    }
    let mut counter = Counter {
        anchors: Vec::new(),
        stack: Vec::new(),
        total: 0,
        bomb_at: None,
    };
    let mut parser = Parser::new_from_str(text);
    // Syntax errors are reported by the real parse below, with its wording.
    let _ = parser.load(&mut counter, false);
    match counter.bomb_at {
        Some(offset) => Err(LoadFailure::AliasBomb {
            nodes: counter.total,
            offset: char_to_byte(text, offset),
        }),
        None => Ok(()),
    }
}

/// saphyr reports positions in characters; miette wants bytes.
pub(crate) fn char_to_byte(text: &str, chars: usize) -> usize {
    if text.is_ascii() {
        return chars.min(text.len());
    }
    text.char_indices()
        .nth(chars)
        .map(|(b, _)| b)
        .unwrap_or(text.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_nested_mapping_in_order() {
        // YAML 1.2: `yes` is a string, not a bool (no "Norway problem").
        let v = parse("b: 1\na: {x: [1, 2.5, yes]}\n").unwrap();
        assert_eq!(v.to_string(), r#"{"b":1,"a":{"x":[1,2.5,"yes"]}}"#);
    }

    #[test]
    fn alias_bomb_is_refused_before_deserializing() {
        let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..9 {
            let p = i - 1;
            text.push_str(&format!(
                "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
            ));
        }
        match parse(&text) {
            Err(LoadFailure::AliasBomb { nodes, .. }) => assert!(nodes > MAX_EXPANDED_NODES),
            other => panic!("expected an alias bomb, got {other:?}"),
        }
    }

    #[test]
    fn anchor_scan() {
        assert!(may_have_anchor("a: &x 1\nb: *x\n"));
        assert!(may_have_anchor("- &x [1]\n"));
        assert!(!may_have_anchor("run: make && make test\n"));
        assert!(!may_have_anchor("run: sleep 1 & wait\n"));
    }

    #[test]
    fn small_aliases_are_fine() {
        let v = parse("base: &b {lr: 0.1}\nother: *b\n").unwrap();
        assert_eq!(v["other"]["lr"], 0.1);
    }

    #[test]
    fn scalars_are_typed_like_yaml() {
        assert_eq!(parse_scalar("0.1"), Value::from(0.1));
        assert_eq!(parse_scalar("3"), Value::from(3));
        assert_eq!(parse_scalar("true"), Value::Bool(true));
        assert_eq!(parse_scalar("adam"), Value::from("adam"));
        assert_eq!(parse_scalar("[1"), Value::from("[1"));
    }

    #[test]
    fn duplicate_keys_and_non_finite_numbers_are_refused() {
        match parse("stages:\n  a: {run: x}\n  a: {run: y}\n") {
            Err(LoadFailure::Syntax { message, offset }) => {
                assert!(message.contains("`a` appears twice"), "{message}");
                assert!(offset.is_some());
            }
            other => panic!("expected an error, got {other:?}"),
        }
        match parse("x: .inf\n") {
            Err(LoadFailure::Syntax { message, .. }) => {
                assert!(message.contains("not a finite number"), "{message}")
            }
            other => panic!("expected an error, got {other:?}"),
        }
    }

    #[test]
    fn syntax_error_has_offset() {
        match parse("a: [1, 2\nb: 3\n") {
            Err(LoadFailure::Syntax { offset, .. }) => assert!(offset.is_some()),
            other => panic!("expected a syntax error, got {other:?}"),
        }
    }
}
