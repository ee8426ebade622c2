//! A reference profile of a table (what a model was trained on) and the
//! drift of another sample of the same columns against it.
//!
//! The profile is small enough to ship in a bundle (`reference.json`), so
//! `mlcycle serve` measures drift against the same numbers as
//! `monitor.drift`: per numeric column its decile edges, the reference's
//! share of each bin, and up to [`SAMPLE`] evenly spaced order statistics
//! (the Kolmogorov–Smirnov test's reference distribution); per categorical
//! column the share of each category.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::stats;
use crate::table::{ColumnData, Table};

/// Order statistics kept per numeric column: the KS statistic against
/// them differs from the one against every reference row by at most
/// `1 / SAMPLE`.
pub const SAMPLE: usize = 2000;

/// The profile of one column.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ColumnProfile {
    Numeric {
        /// Interior bin edges (the reference's deciles, deduplicated).
        edges: Vec<f64>,
        /// The reference's smallest and largest value: values outside
        /// them fall in bins of their own (which the reference leaves
        /// empty), so a value never seen in training counts as a shift.
        #[serde(default)]
        bounds: Option<(f64, f64)>,
        /// The reference's share of each bin: below the minimum (with
        /// `bounds`), the `edges.len() + 1` bins, above the maximum.
        shares: Vec<f64>,
        /// Evenly spaced order statistics of the reference (sorted).
        sample: Vec<f64>,
        /// Non-missing reference values.
        rows: usize,
        /// Missing reference values.
        #[serde(default)]
        missing: usize,
    },
    Categorical {
        /// Each category's share of the non-missing reference values.
        shares: BTreeMap<String, f64>,
        rows: usize,
        #[serde(default)]
        missing: usize,
    },
}

/// Profiles of a table's columns (the target left out).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Profile {
    /// Always `mlcycle.reference`.
    pub format: String,
    pub rows: usize,
    pub columns: BTreeMap<String, ColumnProfile>,
}

/// The drift of one column.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ColumnDrift {
    /// `numeric` or `categorical`.
    #[serde(rename = "type")]
    pub ty: &'static str,
    pub psi: f64,
    /// Two-sample Kolmogorov–Smirnov statistic and p-value (numeric).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ks_statistic: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ks_pvalue: Option<f64>,
    /// Non-missing current values compared.
    pub rows: usize,
    /// Missing current values (left out).
    pub missing: usize,
    /// Categories the reference never had (categorical).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unseen: Vec<String>,
    /// The reference's and the current share of each bin, for plots.
    #[serde(skip)]
    pub bins: Vec<(String, f64, f64)>,
}

impl Profile {
    /// Profiles every column of `t` but its target, with `bins` quantile
    /// bins per numeric column.
    pub fn of(t: &Table, bins: usize) -> Profile {
        let mut columns = BTreeMap::new();
        for c in &t.columns {
            if t.target.as_deref() == Some(c.name.as_str()) {
                continue;
            }
            columns.insert(c.name.clone(), column_profile(&c.data, bins));
        }
        Profile {
            format: "mlcycle.reference".into(),
            rows: t.n_rows(),
            columns,
        }
    }

    /// The drift of `current` (one column's values) against column `name`;
    /// `None` when the profile has no such column.
    pub fn drift(&self, name: &str, current: &ColumnData) -> Option<ColumnDrift> {
        Some(column_drift(self.columns.get(name)?, current))
    }
}

/// Shares of `xs` in the bins of `edges`, with a bin below and one above
/// `bounds` first and last when there are bounds.
fn bounded_shares(edges: &[f64], bounds: Option<(f64, f64)>, xs: &[f64]) -> Vec<f64> {
    let Some((lo, hi)) = bounds else {
        return stats::numeric_shares(edges, xs);
    };
    let mut counts = vec![0usize; edges.len() + 3];
    for &x in xs {
        let i = if x < lo {
            0
        } else if x > hi {
            edges.len() + 2
        } else {
            1 + stats::bin_of(edges, x)
        };
        counts[i] += 1;
    }
    stats::shares(&counts, xs.len())
}

fn column_profile(data: &ColumnData, bins: usize) -> ColumnProfile {
    match data {
        ColumnData::Numeric(v) => {
            let mut values: Vec<f64> = v.iter().copied().filter(|x| !x.is_nan()).collect();
            values.sort_by(f64::total_cmp);
            let edges = stats::quantile_edges(&values, bins);
            let bounds = values.first().zip(values.last()).map(|(a, b)| (*a, *b));
            let shares = bounded_shares(&edges, bounds, &values);
            let sample = if values.len() <= SAMPLE {
                values.clone()
            } else {
                (0..SAMPLE)
                    .map(|k| values[k * (values.len() - 1) / (SAMPLE - 1)])
                    .collect()
            };
            ColumnProfile::Numeric {
                edges,
                bounds,
                shares,
                sample,
                rows: values.len(),
                missing: v.len() - values.len(),
            }
        }
        ColumnData::Categorical(v) => {
            let mut counts: BTreeMap<String, usize> = BTreeMap::new();
            let mut n = 0;
            for s in v.iter().flatten() {
                *counts.entry(s.clone()).or_default() += 1;
                n += 1;
            }
            ColumnProfile::Categorical {
                shares: counts
                    .into_iter()
                    .map(|(k, c)| (k, c as f64 / n.max(1) as f64))
                    .collect(),
                rows: n,
                missing: v.len() - n,
            }
        }
    }
}

/// Missing values as one more bin: when either sample has some, every
/// share becomes a share of all rows and the missing rate is compared too
/// (a feature that stops arriving is a shift).
fn with_missing(d: &mut ColumnDrift, ref_rows: usize, ref_missing: usize) {
    if ref_missing == 0 && d.missing == 0 {
        return;
    }
    let rt = (ref_rows + ref_missing).max(1) as f64;
    let ct = (d.rows + d.missing).max(1) as f64;
    let (rr, cr) = (ref_rows as f64 / rt, d.rows as f64 / ct);
    for b in &mut d.bins {
        b.1 *= rr;
        b.2 *= cr;
    }
    d.bins.push((
        "(missing)".into(),
        ref_missing as f64 / rt,
        d.missing as f64 / ct,
    ));
    let (r, c): (Vec<f64>, Vec<f64>) = d.bins.iter().map(|b| (b.1, b.2)).unzip();
    if d.psi.is_finite() {
        d.psi = stats::psi(&r, &c);
    }
}

fn column_drift(p: &ColumnProfile, current: &ColumnData) -> ColumnDrift {
    let mut d = column_drift_present(p, current);
    let (rows, missing) = match p {
        ColumnProfile::Numeric { rows, missing, .. }
        | ColumnProfile::Categorical { rows, missing, .. } => (*rows, *missing),
    };
    with_missing(&mut d, rows, missing);
    d
}

/// The drift of the non-missing values.
fn column_drift_present(p: &ColumnProfile, current: &ColumnData) -> ColumnDrift {
    match (p, current) {
        (
            ColumnProfile::Numeric {
                edges,
                bounds,
                shares,
                sample,
                rows,
                ..
            },
            ColumnData::Numeric(v),
        ) => {
            let present: Vec<f64> = v.iter().copied().filter(|x| !x.is_nan()).collect();
            let cur = bounded_shares(edges, *bounds, &present);
            let ks = stats::ks_2samp(sample, &present).map(|(d, _)| {
                // The p-value for the whole reference, not the sample.
                let (n, m) = (*rows as f64, present.len() as f64);
                let ne = n * m / (n + m);
                (
                    d,
                    stats::kolmogorov_q((ne.sqrt() + 0.12 + 0.11 / ne.sqrt()) * d),
                )
            });
            let inner = |i: usize| match (i.checked_sub(1).map(|j| edges[j]), edges.get(i)) {
                (None, Some(hi)) => format!("≤ {}", crate::plot::tick(*hi)),
                (Some(lo), None) => format!("> {}", crate::plot::tick(lo)),
                (Some(lo), Some(hi)) => {
                    format!("{} – {}", crate::plot::tick(lo), crate::plot::tick(*hi))
                }
                (None, None) => "all".into(),
            };
            let label = |i: usize| match bounds {
                None => inner(i),
                Some((lo, _)) if i == 0 => format!("< {} (below training)", crate::plot::tick(*lo)),
                Some((_, hi)) if i == shares.len() - 1 => {
                    format!("> {} (above training)", crate::plot::tick(*hi))
                }
                Some(_) => inner(i - 1),
            };
            ColumnDrift {
                ty: "numeric",
                psi: if present.is_empty() {
                    0.0
                } else {
                    stats::psi(shares, &cur)
                },
                ks_statistic: ks.map(|k| k.0),
                ks_pvalue: ks.map(|k| k.1),
                rows: present.len(),
                missing: v.len() - present.len(),
                unseen: vec![],
                bins: (0..shares.len())
                    .map(|i| (label(i), shares[i], cur[i]))
                    .collect(),
            }
        }
        (ColumnProfile::Categorical { shares, .. }, current) => {
            // Categories by their text; a numeric column compared with a
            // categorical reference is read the same way.
            let mut counts: BTreeMap<String, usize> = BTreeMap::new();
            let mut n = 0;
            let mut missing = 0;
            for i in 0..current.len() {
                let s = current.display(i);
                if s.is_empty() {
                    missing += 1;
                    continue;
                }
                *counts.entry(s).or_default() += 1;
                n += 1;
            }
            let unseen: Vec<String> = counts
                .keys()
                .filter(|k| !shares.contains_key(*k))
                .cloned()
                .collect();
            let mut bins: Vec<(String, f64, f64)> = shares
                .iter()
                .map(|(k, r)| {
                    let c = counts.get(k).copied().unwrap_or(0) as f64 / n.max(1) as f64;
                    (k.clone(), *r, c)
                })
                .collect();
            if !unseen.is_empty() {
                let c: usize = unseen.iter().map(|k| counts[k]).sum();
                bins.push(("(unseen)".into(), 0.0, c as f64 / n.max(1) as f64));
            }
            let (r, c): (Vec<f64>, Vec<f64>) = bins.iter().map(|b| (b.1, b.2)).unzip();
            ColumnDrift {
                ty: "categorical",
                psi: if n == 0 { 0.0 } else { stats::psi(&r, &c) },
                ks_statistic: None,
                ks_pvalue: None,
                rows: n,
                missing,
                unseen,
                bins,
            }
        }
        (ColumnProfile::Numeric { .. }, ColumnData::Categorical(v)) => {
            // Text where the reference had numbers: all of it is new.
            let n = v.iter().flatten().count();
            ColumnDrift {
                ty: "numeric",
                psi: if n == 0 { 0.0 } else { f64::INFINITY },
                ks_statistic: None,
                ks_pvalue: None,
                rows: n,
                missing: v.len() - n,
                unseen: vec!["(text)".into()],
                bins: vec![],
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::Column;

    fn table(cols: Vec<(&str, ColumnData)>) -> Table {
        Table {
            columns: cols
                .into_iter()
                .map(|(n, d)| Column {
                    name: n.into(),
                    data: d,
                })
                .collect(),
            target: Some("y".into()),
            transforms: vec![],
        }
    }

    #[test]
    fn a_shifted_column_drifts_and_the_same_one_does_not() {
        let x: Vec<f64> = (0..1000).map(|i| f64::from(i) / 10.0).collect();
        let city: Vec<Option<String>> = (0..1000)
            .map(|i| Some(if i % 4 == 0 { "north" } else { "south" }.into()))
            .collect();
        let reference = table(vec![
            ("x", ColumnData::Numeric(x.clone())),
            ("city", ColumnData::Categorical(city.clone())),
            ("y", ColumnData::Numeric(x.clone())),
        ]);
        let p = Profile::of(&reference, 10);
        assert!(!p.columns.contains_key("y"), "the target is left out");
        let same = p.drift("x", &ColumnData::Numeric(x.clone())).unwrap();
        assert!(
            same.psi < 1e-9 && same.ks_statistic == Some(0.0),
            "{same:?}"
        );
        let shifted: Vec<f64> = x.iter().map(|v| v + 30.0).collect();
        let d = p.drift("x", &ColumnData::Numeric(shifted)).unwrap();
        assert!(d.psi > 0.25, "{d:?}");
        assert!((d.ks_statistic.unwrap() - 0.3).abs() < 0.002, "{d:?}");
        assert!(d.ks_pvalue.unwrap() < 1e-10);
        let flipped: Vec<Option<String>> = (0..400)
            .map(|i| Some(if i % 4 == 0 { "south" } else { "north" }.into()))
            .chain([Some("east".into()), None])
            .collect();
        let c = p.drift("city", &ColumnData::Categorical(flipped)).unwrap();
        assert!(c.psi > 0.25, "{c:?}");
        assert_eq!(c.unseen, ["east"]);
        assert_eq!((c.rows, c.missing), (401, 1));
        assert!(p.drift("nope", &ColumnData::Numeric(vec![])).is_none());
    }

    #[test]
    fn values_outside_the_training_range_and_missing_values_count() {
        // A constant column served below its value, and values above the
        // largest one seen: both blind to deciles alone.
        let reference = table(vec![
            ("c", ColumnData::Numeric(vec![5.0; 300])),
            (
                "k",
                ColumnData::Numeric((0..300).map(|i| f64::from(i % 5)).collect()),
            ),
        ]);
        let p = Profile::of(&reference, 10);
        let d = p.drift("c", &ColumnData::Numeric(vec![4.0; 100])).unwrap();
        assert!(d.psi > 0.25, "{d:?}");
        let k: Vec<f64> = (0..100)
            .map(|i| if i < 17 { 5.0 } else { f64::from(i % 5) })
            .collect();
        let d = p.drift("k", &ColumnData::Numeric(k)).unwrap();
        assert!(d.psi > 0.25, "{d:?}");
        // A feature that stops arriving (all null) is a shift.
        let d = p
            .drift("k", &ColumnData::Numeric(vec![f64::NAN; 100]))
            .unwrap();
        assert!(d.psi > 0.25 && d.missing == 100, "{d:?}");
    }

    #[test]
    fn the_sample_keeps_the_extremes_and_round_trips() {
        let x: Vec<f64> = (0..10_000).map(f64::from).collect();
        let p = Profile::of(&table(vec![("x", ColumnData::Numeric(x))]), 10);
        let ColumnProfile::Numeric { sample, rows, .. } = &p.columns["x"] else {
            panic!()
        };
        assert_eq!((sample.len(), *rows), (SAMPLE, 10_000));
        assert_eq!((sample[0], *sample.last().unwrap()), (0.0, 9999.0));
        let text = serde_json::to_string(&p).unwrap();
        assert_eq!(serde_json::from_str::<Profile>(&text).unwrap(), p);
    }
}
