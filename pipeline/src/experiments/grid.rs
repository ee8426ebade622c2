//! What a sweep tries: `-S key=values` axes, expanded as a grid (every
//! combination) or sampled at random (`--random N`, seeded).

use rand::{Rng, SeedableRng};
use serde_json::Value;

use super::ExpError;
use crate::config::load;

/// Most configurations one sweep may expand to.
pub const MAX_CONFIGS: usize = 10_000;

/// One `-S` axis: a param key and the values it takes.
#[derive(Debug, Clone, PartialEq)]
pub struct Axis {
    /// The dotted param key (`train.lr`).
    pub key: String,
    pub values: Values,
}

/// The values of an axis.
#[derive(Debug, Clone, PartialEq)]
pub enum Values {
    /// `a,b,c` or a YAML flow list `[a, "b,c"]`: each value once (grid) or
    /// one of them, uniformly (random).
    List(Vec<Value>),
    /// `lo..hi`: random sampling only; integers when both ends are.
    Range { lo: f64, hi: f64, int: bool },
}

/// One configuration: the params it sets, in `-S` order.
pub type Config = Vec<(String, Value)>;

/// Parses one `-S KEY=VALUES` argument.
///
/// # Errors
/// No `=`, an empty key or value list, or a range whose ends are not
/// numbers or are reversed.
pub fn parse_axis(arg: &str) -> Result<Axis, ExpError> {
    let bad = |why: &str| ExpError::BadSet {
        arg: arg.to_string(),
        why: why.to_string(),
    };
    let (key, raw) = arg.split_once('=').ok_or_else(|| bad("it has no `=`"))?;
    let key = key.trim();
    if key.is_empty() {
        return Err(bad("the param key is empty"));
    }
    let raw = raw.trim();
    if raw.is_empty() {
        return Err(bad("no value is given"));
    }
    if let Some((lo, hi)) = raw.split_once("..").filter(|_| !raw.starts_with('[')) {
        let num = |s: &str| match load::parse_scalar(s.trim()) {
            Value::Number(n) => Some((n.as_f64()?, n.is_i64() || n.is_u64())),
            _ => None,
        };
        if let (Some((lo, li)), Some((hi, hi_int))) = (num(lo), num(hi)) {
            if lo > hi {
                return Err(bad("the range's low end is above its high end"));
            }
            return Ok(Axis {
                key: key.to_string(),
                values: Values::Range {
                    lo,
                    hi,
                    int: li && hi_int,
                },
            });
        }
    }
    let values = if raw.starts_with('[') {
        match load::parse(raw) {
            Ok(Value::Array(items)) if !items.is_empty() => items,
            Ok(Value::Array(_)) => return Err(bad("the list is empty")),
            _ => return Err(bad("it is not a YAML flow list like `[0.1, 0.2]`")),
        }
    } else if raw.contains(['"', '\'']) {
        // Quoted values may hold commas: read the list as YAML does.
        match load::parse(&format!("[{raw}]")) {
            Ok(Value::Array(items)) if items.iter().all(|v| !v.is_object() && !v.is_array()) => {
                items
            }
            _ => {
                return Err(bad(
                    "its quotes do not pair up (write `KEY='a, b',c` or `KEY=[\"a, b\", c]`)",
                ))
            }
        }
    } else {
        raw.split(',')
            .map(|v| load::parse_scalar(v.trim()))
            .collect()
    };
    if values.iter().any(|v| v.as_str().is_some_and(str::is_empty)) {
        return Err(bad("one of its values is empty (two commas in a row?)"));
    }
    Ok(Axis {
        key: key.to_string(),
        values: Values::List(values),
    })
}

/// Every combination of the axes' values, the last axis varying fastest.
///
/// # Errors
/// A range (only `--random` samples one), two axes on one key, or more
/// than [`MAX_CONFIGS`] combinations.
pub fn grid(axes: &[Axis]) -> Result<Vec<Config>, ExpError> {
    check_keys(axes)?;
    let mut lists = Vec::with_capacity(axes.len());
    let mut total: usize = 1;
    for a in axes {
        let Values::List(vs) = &a.values else {
            return Err(ExpError::RangeInGrid { key: a.key.clone() });
        };
        total = total.saturating_mul(vs.len());
        lists.push(vs);
    }
    if total > MAX_CONFIGS {
        return Err(ExpError::TooMany { count: total });
    }
    let mut out: Vec<Config> = vec![Vec::new()];
    for (a, vs) in axes.iter().zip(lists) {
        out = out
            .into_iter()
            .flat_map(|c| {
                vs.iter().map(move |v| {
                    let mut c = c.clone();
                    c.push((a.key.clone(), v.clone()));
                    c
                })
            })
            .collect();
    }
    Ok(out)
}

/// `n` configurations drawn at random (a Xoshiro256++ generator seeded with
/// `seed`, so the same command draws the same sweep); repeats are dropped.
///
/// # Errors
/// Two axes on one key, or `n` above [`MAX_CONFIGS`].
pub fn random(axes: &[Axis], n: usize, seed: u64) -> Result<Vec<Config>, ExpError> {
    check_keys(axes)?;
    if n > MAX_CONFIGS {
        return Err(ExpError::TooMany { count: n });
    }
    let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(seed);
    let mut out: Vec<Config> = Vec::with_capacity(n);
    // Lists may have fewer combinations than asked: stop after many repeats.
    let mut misses = 0;
    while out.len() < n && misses < 1000 {
        let c: Config = axes
            .iter()
            .map(|a| (a.key.clone(), draw(&a.values, &mut rng)))
            .collect();
        if out.contains(&c) {
            misses += 1;
        } else {
            out.push(c);
        }
    }
    Ok(out)
}

fn draw(values: &Values, rng: &mut impl Rng) -> Value {
    match values {
        Values::List(vs) => vs[rng.gen_range(0..vs.len())].clone(),
        Values::Range { lo, hi, int: true } => Value::from(rng.gen_range(*lo as i64..=*hi as i64)),
        Values::Range { lo, hi, int: false } => {
            let x = if lo == hi {
                *lo
            } else {
                rng.gen_range(*lo..*hi)
            };
            // Six significant digits: a table of runs stays readable.
            let x: f64 = format!("{x:.6e}").parse().unwrap_or(x);
            serde_json::Number::from_f64(x).map_or(Value::Null, Value::Number)
        }
    }
}

fn check_keys(axes: &[Axis]) -> Result<(), ExpError> {
    for (i, a) in axes.iter().enumerate() {
        if axes[..i].iter().any(|b| b.key == a.key) {
            return Err(ExpError::BadSet {
                arg: a.key.clone(),
                why: "the key is set twice; give all its values in one `-S`".into(),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn values_are_typed_like_yaml_scalars() {
        let a = parse_axis("train.lr=0.1, 1e-3,abc,true").unwrap();
        assert_eq!(
            a.values,
            Values::List(vec![json!(0.1), json!(0.001), json!("abc"), json!(true)])
        );
        let a = parse_axis("name=[a, \"b,c\"]").unwrap();
        assert_eq!(a.values, Values::List(vec![json!("a"), json!("b,c")]));
        let a = parse_axis("tag=\"x, y\",z").unwrap();
        assert_eq!(a.values, Values::List(vec![json!("x, y"), json!("z")]));
        assert!(parse_axis("tag=\"x, y").is_err(), "an unpaired quote");
        assert_eq!(
            parse_axis("n=1..5").unwrap().values,
            Values::Range {
                lo: 1.0,
                hi: 5.0,
                int: true
            }
        );
        for bad in ["lr", "=1", "lr=", "lr=1,,2", "lr=5..1", "lr=[]"] {
            assert!(parse_axis(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_grid_has_every_combination_last_axis_fastest() {
        let axes = [parse_axis("a=1,2").unwrap(), parse_axis("b=x,y,z").unwrap()];
        let g = grid(&axes).unwrap();
        assert_eq!(g.len(), 6);
        assert_eq!(g[0], vec![("a".into(), json!(1)), ("b".into(), json!("x"))]);
        assert_eq!(g[1][1].1, json!("y"));
        assert_eq!(g[3][0].1, json!(2));
        assert!(matches!(
            grid(&[parse_axis("a=0..1").unwrap()]),
            Err(ExpError::RangeInGrid { .. })
        ));
        let dup = [parse_axis("a=1").unwrap(), parse_axis("a=2").unwrap()];
        assert!(grid(&dup).is_err());
    }

    #[test]
    fn random_draws_are_seeded_in_range_and_distinct() {
        let axes = [
            parse_axis("lr=0.001..0.1").unwrap(),
            parse_axis("epochs=10..20").unwrap(),
        ];
        let a = random(&axes, 20, 7).unwrap();
        assert_eq!(a, random(&axes, 20, 7).unwrap());
        assert_ne!(a, random(&axes, 20, 8).unwrap());
        for c in &a {
            let lr = c[0].1.as_f64().unwrap();
            assert!((0.001..0.1).contains(&lr));
            let e = c[1].1.as_i64().unwrap();
            assert!((10..=20).contains(&e));
        }
        // Two values, asked for five: two distinct configurations.
        assert_eq!(
            random(&[parse_axis("x=1,2").unwrap()], 5, 1).unwrap().len(),
            2
        );
    }
}
