//! Experiments as a compact table for `exp show`: column names interned
//! once, each row a list of (column, value) pairs. Ten thousand experiments
//! with fifty metrics each load in a few tens of milliseconds and a few
//! tens of megabytes (a map per row would take ten times the memory).

use foldhash::HashMap;
use std::borrow::Cow;
use std::fmt;

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, Visitor};
use serde_json::Value;

use super::store::{ExpRecord, ExpStatus};

/// One value of a table cell.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Int(i64),
    Float(f64),
    Bool(bool),
    Text(Box<str>),
}

impl Cell {
    /// As a number, when it is one.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Cell::Int(i) => Some(*i as f64),
            Cell::Float(x) => Some(*x),
            _ => None,
        }
    }

    /// As JSON.
    pub fn to_json(&self) -> Value {
        match self {
            Cell::Int(i) => Value::from(*i),
            Cell::Float(x) => serde_json::Number::from_f64(*x).map_or(Value::Null, Value::Number),
            Cell::Bool(b) => Value::Bool(*b),
            Cell::Text(s) => Value::String(s.to_string()),
        }
    }

    fn from_json(v: &Value) -> Option<Self> {
        Some(match v {
            Value::Number(n) => match n.as_i64() {
                Some(i) => Cell::Int(i),
                None => Cell::Float(n.as_f64()?),
            },
            Value::Bool(b) => Cell::Bool(*b),
            Value::String(s) => Cell::Text(s.as_str().into()),
            _ => return None,
        })
    }
}

impl fmt::Display for Cell {
    /// Every digit: `0.1`, `22057.751555`, `7`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Cell::Int(i) => write!(f, "{i}"),
            Cell::Float(x) => match serde_json::Number::from_f64(*x) {
                Some(n) => write!(f, "{n}"),
                None => write!(f, "{x}"),
            },
            Cell::Bool(b) => write!(f, "{b}"),
            Cell::Text(s) => f.write_str(s),
        }
    }
}

/// One experiment's row.
#[derive(Debug, Clone)]
pub struct Row {
    pub seq: i64,
    pub name: String,
    pub status: ExpStatus,
    pub created_at: String,
    pub commit: Option<String>,
    pub duration_ms: Option<u64>,
    /// Why it failed.
    pub error: Option<String>,
    /// (index into [`Listing::params`], value), the params it sets first.
    pub params: Vec<(u32, Cell)>,
    /// (index into [`Listing::metrics`], value).
    pub metrics: Vec<(u32, Cell)>,
}

impl Row {
    /// The value of param column `i`.
    pub fn param(&self, i: u32) -> Option<&Cell> {
        self.params.iter().find(|(c, _)| *c == i).map(|(_, v)| v)
    }

    /// The value of metric column `i`.
    pub fn metric(&self, i: u32) -> Option<&Cell> {
        self.metrics.iter().find(|(c, _)| *c == i).map(|(_, v)| v)
    }
}

/// Column names in first-seen order.
#[derive(Debug, Default)]
pub struct Columns {
    pub names: Vec<String>,
    index: HashMap<String, u32>,
}

impl Columns {
    fn intern(&mut self, name: &str) -> u32 {
        if let Some(&i) = self.index.get(name) {
            return i;
        }
        let i = self.names.len() as u32;
        self.names.push(name.to_string());
        self.index.insert(name.to_string(), i);
        i
    }

    /// The index of column `name`.
    pub fn get(&self, name: &str) -> Option<u32> {
        self.index.get(name).copied()
    }
}

/// Experiments with interned columns.
#[derive(Debug, Default)]
pub struct Listing {
    pub params: Columns,
    pub metrics: Columns,
    pub rows: Vec<Row>,
}

impl Listing {
    /// A listing of records already loaded (those of a sweep just run),
    /// with only the params they set as param columns.
    pub fn from_records(records: &[ExpRecord]) -> Self {
        let mut l = Listing::default();
        for r in records {
            let params = r
                .set
                .iter()
                .filter_map(|(k, v)| Some((l.params.intern(k), Cell::from_json(v)?)))
                .collect();
            let metrics = r
                .metrics
                .iter()
                .filter_map(|(k, v)| Some((l.metrics.intern(k), Cell::from_json(v)?)))
                .collect();
            l.rows.push(Row {
                seq: r.seq,
                name: r.name.clone(),
                status: r.status,
                created_at: r.created_at.clone(),
                commit: r.commit.clone(),
                duration_ms: r.duration_ms,
                error: r.error.clone(),
                params,
                metrics,
            });
        }
        l
    }

    /// Adds one row from the stored JSON texts of its params (set, then
    /// all) and metrics.
    pub(crate) fn push_json(
        &mut self,
        mut row: Row,
        set: &str,
        params: &str,
        metrics: &str,
    ) -> Result<(), serde_json::Error> {
        let mut cells = Vec::new();
        parse_into(set, &mut self.params, &mut cells)?;
        let n = cells.len();
        parse_into(params, &mut self.params, &mut cells)?;
        // A set param appears in both: keep the first.
        let (first, rest) = cells.split_at(n);
        let rest: Vec<(u32, Cell)> = rest
            .iter()
            .filter(|(c, _)| !first.iter().any(|(f, _)| f == c))
            .cloned()
            .collect();
        cells.truncate(n);
        cells.extend(rest);
        row.params = cells;
        let mut m = Vec::new();
        parse_into(metrics, &mut self.metrics, &mut m)?;
        row.metrics = m;
        self.rows.push(row);
        Ok(())
    }
}

/// Parses a flat JSON object into (column, cell) pairs, interning keys
/// without allocating for those seen before. Nested values are skipped.
fn parse_into(
    text: &str,
    cols: &mut Columns,
    out: &mut Vec<(u32, Cell)>,
) -> Result<(), serde_json::Error> {
    let mut de = serde_json::Deserializer::from_str(text);
    FlatSeed { cols, out }.deserialize(&mut de)?;
    de.end()
}

struct FlatSeed<'a> {
    cols: &'a mut Columns,
    out: &'a mut Vec<(u32, Cell)>,
}

impl<'de> DeserializeSeed<'de> for FlatSeed<'_> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for FlatSeed<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(Key(k)) = map.next_key()? {
            if let MaybeCell(Some(c)) = map.next_value()? {
                let i = self.cols.intern(&k);
                self.out.push((i, c));
            }
        }
        Ok(())
    }
}

/// A key, borrowed from the text when it has no escapes.
struct Key<'de>(Cow<'de, str>);

impl<'de> de::Deserialize<'de> for Key<'de> {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(s)))
            }
            fn visit_str<E>(self, s: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(s.to_string())))
            }
        }
        d.deserialize_str(V)
    }
}

/// A scalar, or `None` for null and nested values.
struct MaybeCell(Option<Cell>);

impl<'de> de::Deserialize<'de> for MaybeCell {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = MaybeCell;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a value")
            }
            fn visit_i64<E>(self, v: i64) -> Result<MaybeCell, E> {
                Ok(MaybeCell(Some(Cell::Int(v))))
            }
            fn visit_u64<E>(self, v: u64) -> Result<MaybeCell, E> {
                Ok(MaybeCell(Some(match i64::try_from(v) {
                    Ok(i) => Cell::Int(i),
                    Err(_) => Cell::Float(v as f64),
                })))
            }
            fn visit_f64<E>(self, v: f64) -> Result<MaybeCell, E> {
                Ok(MaybeCell(Some(Cell::Float(v))))
            }
            fn visit_bool<E>(self, v: bool) -> Result<MaybeCell, E> {
                Ok(MaybeCell(Some(Cell::Bool(v))))
            }
            fn visit_str<E>(self, v: &str) -> Result<MaybeCell, E> {
                Ok(MaybeCell(Some(Cell::Text(v.into()))))
            }
            fn visit_unit<E>(self) -> Result<MaybeCell, E> {
                Ok(MaybeCell(None))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<MaybeCell, A::Error> {
                while m.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(MaybeCell(None))
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut s: A) -> Result<MaybeCell, A::Error> {
                while s.next_element::<IgnoredAny>()?.is_some() {}
                Ok(MaybeCell(None))
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_share_interned_columns_and_set_params_come_first() {
        let mut l = Listing::default();
        let row = |name: &str| Row {
            seq: 1,
            name: name.into(),
            status: ExpStatus::Done,
            created_at: String::new(),
            commit: None,
            duration_ms: None,
            error: None,
            params: vec![],
            metrics: vec![],
        };
        l.push_json(
            row("a"),
            r#"{"lr": 0.1}"#,
            r#"{"seed": 7, "lr": 0.1, "name": "x\"y"}"#,
            r#"{"eval.rmse": 1.5, "eval.list": [1, 2], "eval.n": null}"#,
        )
        .unwrap();
        l.push_json(
            row("b"),
            r#"{"lr": 0.2}"#,
            r#"{"seed": 7, "lr": 0.2}"#,
            "{}",
        )
        .unwrap();
        assert_eq!(l.params.names, ["lr", "seed", "name"]);
        assert_eq!(l.metrics.names, ["eval.rmse"]);
        let a = &l.rows[0];
        assert_eq!(a.params[0], (0, Cell::Float(0.1)));
        assert_eq!(a.params.len(), 3, "lr once");
        assert_eq!(a.param(2), Some(&Cell::Text("x\"y".into())));
        assert_eq!(a.metric(0), Some(&Cell::Float(1.5)));
        assert_eq!(l.rows[1].param(1), Some(&Cell::Int(7)));
    }
}
