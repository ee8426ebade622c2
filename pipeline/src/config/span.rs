//! Source positions for paths inside a YAML document.
//!
//! Semantic checks work on plain values and name what they reject by a
//! [`YamlPath`]; only when there is something to report is the text parsed a
//! second time, with positions, to turn each path into a byte span.

use foldhash::{HashMap, HashMapExt};
use std::fmt;

use saphyr_parser::{Event, Parser, SpannedEventReceiver};

/// One step into a YAML document.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Seg {
    /// Shared: a path is cloned for every child built from it.
    Key(std::sync::Arc<str>),
    Index(usize),
}

/// A path from the document root to a node, e.g. `stages.train.with.lr`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct YamlPath(pub Vec<Seg>);

impl YamlPath {
    pub fn root() -> Self {
        Self(Vec::new())
    }
    pub fn key(&self, k: impl AsRef<str>) -> Self {
        let mut v = Vec::with_capacity(self.0.len() + 1);
        v.extend(self.0.iter().cloned());
        v.push(Seg::Key(k.as_ref().into()));
        Self(v)
    }
    pub fn index(&self, i: usize) -> Self {
        let mut v = Vec::with_capacity(self.0.len() + 1);
        v.extend(self.0.iter().cloned());
        v.push(Seg::Index(i));
        Self(v)
    }
    pub fn parent(&self) -> Option<Self> {
        if self.0.is_empty() {
            None
        } else {
            Some(Self(self.0[..self.0.len() - 1].to_vec()))
        }
    }
}

impl fmt::Display for YamlPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, s) in self.0.iter().enumerate() {
            match s {
                Seg::Key(k) if i == 0 => write!(f, "{k}")?,
                Seg::Key(k) => write!(f, ".{k}")?,
                Seg::Index(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}

/// Which part of a mapping entry a diagnostic points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    Key,
    Value,
}

/// A byte range `(start, end)`.
type Range = (usize, usize);

/// Byte ranges of each node's key (when it is a mapping value) and value.
#[derive(Debug, Default)]
pub struct SpanIndex {
    nodes: HashMap<YamlPath, (Option<Range>, Range)>,
}

impl SpanIndex {
    /// Parses `text` with positions. A text that fails to parse yields the
    /// spans found before the error.
    pub fn build(text: &str) -> Self {
        let mut b = Builder {
            offsets: CharOffsets::new(text),
            index: SpanIndex::default(),
            stack: Vec::new(),
            anchors: HashMap::new(),
        };
        let mut parser = Parser::new_from_str(text);
        let _ = parser.load(&mut b, false);
        b.index
    }

    /// The byte range `(offset, len)` of the node at `path` (its key or its
    /// value), falling back to the nearest enclosing node that has one.
    pub fn locate(&self, path: &YamlPath, part: Part) -> Option<(usize, usize)> {
        let mut p = Some(path.clone());
        let mut first = true;
        while let Some(cur) = p {
            if let Some((key, value)) = self.nodes.get(&cur) {
                let (s, e) = match (part, key, first) {
                    (Part::Key, Some(k), true) => *k,
                    // An enclosing node: point at its key, which is short.
                    (_, Some(k), false) => *k,
                    _ => *value,
                };
                return Some((s, e.saturating_sub(s).max(1)));
            }
            first = false;
            p = cur.parent();
        }
        None
    }
}

enum Frame {
    Map {
        path: YamlPath,
        start: usize,
        pending_key: Option<(String, (usize, usize))>,
    },
    Seq {
        path: YamlPath,
        start: usize,
        next: usize,
    },
}

/// Converts saphyr's character positions to byte offsets in O(1).
struct CharOffsets {
    /// `None` for ASCII text, where the two are equal.
    table: Option<Vec<usize>>,
    len: usize,
}

impl CharOffsets {
    fn new(text: &str) -> Self {
        let table = (!text.is_ascii()).then(|| {
            let mut t: Vec<usize> = text.char_indices().map(|(b, _)| b).collect();
            t.push(text.len());
            t
        });
        Self {
            table,
            len: text.len(),
        }
    }
    fn byte(&self, chars: usize) -> usize {
        match &self.table {
            None => chars.min(self.len),
            Some(t) => t.get(chars).copied().unwrap_or(self.len),
        }
    }
}

struct Builder {
    offsets: CharOffsets,
    index: SpanIndex,
    stack: Vec<Frame>,
    anchors: HashMap<usize, String>,
}

impl Builder {
    fn range(&self, span: &saphyr_parser::Span) -> (usize, usize) {
        (
            self.offsets.byte(span.start.index()),
            self.offsets.byte(span.end.index()),
        )
    }

    /// Where the next value goes, and the key span if it is a mapping value.
    /// Returns `None` when the event is a mapping key.
    fn slot(
        &mut self,
        scalar_key: Option<(&str, (usize, usize))>,
    ) -> Option<(YamlPath, Option<(usize, usize)>)> {
        match self.stack.last_mut() {
            None => Some((YamlPath::root(), None)),
            Some(Frame::Seq { path, next, .. }) => {
                let p = path.index(*next);
                *next += 1;
                Some((p, None))
            }
            Some(Frame::Map {
                path, pending_key, ..
            }) => match pending_key.take() {
                Some((k, kspan)) => Some((path.key(k), Some(kspan))),
                None => {
                    // This node is a key.
                    let (k, span) = scalar_key
                        .map(|(k, s)| (k.to_string(), s))
                        .unwrap_or_else(|| ("?".to_string(), (0, 0)));
                    *pending_key = Some((k, span));
                    None
                }
            },
        }
    }
}

impl<'a> SpannedEventReceiver<'a> for Builder {
    fn on_event(&mut self, ev: Event<'a>, span: saphyr_parser::Span) {
        let r = self.range(&span);
        match ev {
            Event::Scalar(text, _, anchor, _) => {
                if anchor > 0 {
                    self.anchors.insert(anchor, text.to_string());
                }
                if let Some((path, key)) = self.slot(Some((&text, r))) {
                    self.index.nodes.insert(path, (key, r));
                }
            }
            Event::Alias(id) => {
                let name = self.anchors.get(&id).cloned().unwrap_or_default();
                if let Some((path, key)) = self.slot(Some((&name, r))) {
                    self.index.nodes.insert(path, (key, r));
                }
            }
            Event::MappingStart(..) | Event::SequenceStart(..) => {
                let is_map = matches!(ev, Event::MappingStart(..));
                let (path, key) = match self.slot(None) {
                    Some(s) => s,
                    // A collection used as a key: give it a throwaway path.
                    None => (YamlPath::root().key("?"), None),
                };
                if let Some(k) = key {
                    self.index.nodes.insert(path.clone(), (Some(k), r));
                }
                self.stack.push(if is_map {
                    Frame::Map {
                        path,
                        start: r.0,
                        pending_key: None,
                    }
                } else {
                    Frame::Seq {
                        path,
                        start: r.0,
                        next: 0,
                    }
                });
            }
            Event::MappingEnd | Event::SequenceEnd => {
                if let Some(frame) = self.stack.pop() {
                    let (path, start) = match frame {
                        Frame::Map { path, start, .. } | Frame::Seq { path, start, .. } => {
                            (path, start)
                        }
                    };
                    let end = r.1.max(start + 1);
                    let entry = self.index.nodes.entry(path).or_insert((None, (start, end)));
                    entry.1 = (start, end);
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locates_keys_and_values() {
        let text = "name: x\nstages:\n  train:\n    uses: train.lin\n    with: {lr: 0.1}\n";
        let idx = SpanIndex::build(text);
        let p = YamlPath::root().key("stages").key("train").key("uses");
        let (o, l) = idx.locate(&p, Part::Value).unwrap();
        assert_eq!(&text[o..o + l], "train.lin");
        let (o, l) = idx.locate(&p, Part::Key).unwrap();
        assert_eq!(&text[o..o + l], "uses");
        let lr = YamlPath::root()
            .key("stages")
            .key("train")
            .key("with")
            .key("lr");
        let (o, l) = idx.locate(&lr, Part::Value).unwrap();
        assert_eq!(&text[o..o + l], "0.1");
    }

    #[test]
    fn falls_back_to_the_parent() {
        let text = "stages:\n  a:\n    run: echo\n";
        let idx = SpanIndex::build(text);
        let p = YamlPath::root().key("stages").key("a").key("deps").index(3);
        let (o, l) = idx.locate(&p, Part::Value).unwrap();
        assert_eq!(&text[o..o + l], "a");
    }

    #[test]
    fn sequence_items() {
        let text = "deps:\n  - a.txt\n  - b.txt\n";
        let idx = SpanIndex::build(text);
        let (o, l) = idx
            .locate(&YamlPath::root().key("deps").index(1), Part::Value)
            .unwrap();
        assert_eq!(&text[o..o + l], "b.txt");
    }
}
