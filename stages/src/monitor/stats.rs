//! Drift statistics between a reference sample (the training rows) and a
//! current one (the rows a served model saw).
//!
//! - **Population stability index** (PSI): `Σ (cᵢ − rᵢ) · ln(cᵢ / rᵢ)` over
//!   bins, `rᵢ` and `cᵢ` the reference's and the current sample's share of
//!   bin `i`. Numeric bins are the reference's deciles (quantile bins, as
//!   in Siddiqi, "Credit Risk Scorecards", 2006, and the usual model-risk
//!   practice); categorical bins are the categories, unseen ones pooled. An
//!   empty bin's share is floored at 1e-4 so the index stays finite. Rule of
//!   thumb: below 0.1 stable, 0.1–0.25 a shift worth a look, above 0.25 a
//!   shift.
//! - **Two-sample Kolmogorov–Smirnov test**: `D = sup |F_ref(x) − F_cur(x)|`
//!   over the pooled values, and the asymptotic p-value
//!   `Q_KS((√nₑ + 0.12 + 0.11/√nₑ) · D)`, `nₑ = n·m/(n+m)`, with
//!   `Q_KS(λ) = 2 Σ_{j≥1} (−1)^{j−1} e^{−2j²λ²}` (Press et al., "Numerical
//!   Recipes", 3rd ed., §14.3.3; scipy's `ks_2samp(method="asymp")` uses
//!   the same distribution without the small-sample correction).
//!
//! Missing values (NaN) are left out of both samples and counted apart.

/// Floor of a bin's share in the PSI, so an empty bin counts as rare, not
/// impossible.
pub const PSI_FLOOR: f64 = 1e-4;

/// Bin edges for a numeric reference: up to `bins − 1` interior quantiles
/// (duplicates dropped, so a column with few values gets fewer bins).
/// Values `≤ edges[0]` fall in bin 0, values `> edges[last]` in the last.
pub fn quantile_edges(reference: &[f64], bins: usize) -> Vec<f64> {
    let mut v: Vec<f64> = reference.iter().copied().filter(|x| !x.is_nan()).collect();
    if v.is_empty() || bins < 2 {
        return vec![];
    }
    v.sort_by(f64::total_cmp);
    let mut edges: Vec<f64> = (1..bins)
        .map(|k| {
            // Linear interpolation between order statistics (numpy's
            // default `quantile` method).
            let pos = k as f64 / bins as f64 * (v.len() - 1) as f64;
            let (lo, frac) = (pos.floor() as usize, pos.fract());
            let hi = (lo + 1).min(v.len() - 1);
            v[lo] + (v[hi] - v[lo]) * frac
        })
        .collect();
    edges.dedup();
    // The top edge must leave the maximum in the last bin, not alone.
    if edges.last() == v.last() && edges.len() > 1 {
        edges.pop();
    }
    edges
}

/// Index of the bin `x` falls in, for `edges` from [`quantile_edges`].
pub fn bin_of(edges: &[f64], x: f64) -> usize {
    edges.partition_point(|e| *e < x)
}

/// Shares of each of the `edges.len() + 1` bins among the non-missing
/// values of `xs`.
pub fn numeric_shares(edges: &[f64], xs: &[f64]) -> Vec<f64> {
    let mut counts = vec![0usize; edges.len() + 1];
    let mut n = 0usize;
    for &x in xs.iter().filter(|x| !x.is_nan()) {
        counts[bin_of(edges, x)] += 1;
        n += 1;
    }
    shares(&counts, n)
}

/// `counts` as shares of `n` (all zero when `n` is 0).
pub fn shares(counts: &[usize], n: usize) -> Vec<f64> {
    counts
        .iter()
        .map(|&c| if n == 0 { 0.0 } else { c as f64 / n as f64 })
        .collect()
}

/// The population stability index between two binnings of the same bins.
pub fn psi(reference: &[f64], current: &[f64]) -> f64 {
    reference
        .iter()
        .zip(current)
        .map(|(&r, &c)| {
            let (r, c) = (r.max(PSI_FLOOR), c.max(PSI_FLOOR));
            (c - r) * (c / r).ln()
        })
        .sum()
}

/// The two-sample Kolmogorov–Smirnov statistic `D` and its asymptotic
/// p-value; `None` when a sample has no non-missing value.
pub fn ks_2samp(a: &[f64], b: &[f64]) -> Option<(f64, f64)> {
    let mut a: Vec<f64> = a.iter().copied().filter(|x| !x.is_nan()).collect();
    let mut b: Vec<f64> = b.iter().copied().filter(|x| !x.is_nan()).collect();
    if a.is_empty() || b.is_empty() {
        return None;
    }
    a.sort_by(f64::total_cmp);
    b.sort_by(f64::total_cmp);
    let (n, m) = (a.len() as f64, b.len() as f64);
    let (mut i, mut j, mut d) = (0usize, 0usize, 0f64);
    while i < a.len() && j < b.len() {
        // Step past every copy of the smaller value in both samples, so
        // ties move both CDFs at once.
        let x = a[i].min(b[j]);
        while i < a.len() && a[i] <= x {
            i += 1;
        }
        while j < b.len() && b[j] <= x {
            j += 1;
        }
        d = d.max((i as f64 / n - j as f64 / m).abs());
    }
    let ne = n * m / (n + m);
    let lambda = (ne.sqrt() + 0.12 + 0.11 / ne.sqrt()) * d;
    Some((d, kolmogorov_q(lambda)))
}

/// `Q_KS(λ) = 2 Σ_{j≥1} (−1)^{j−1} e^{−2j²λ²}`, the probability that the
/// Kolmogorov statistic exceeds `λ`; 1 for small `λ`, where the series
/// does not converge.
pub fn kolmogorov_q(lambda: f64) -> f64 {
    if lambda < 0.2 {
        return 1.0;
    }
    let mut sum = 0.0;
    let mut sign = 1.0;
    for j in 1..=100 {
        let term = sign * (-2.0 * (j * j) as f64 * lambda * lambda).exp();
        sum += term;
        if term.abs() < 1e-12 {
            break;
        }
        sign = -sign;
    }
    (2.0 * sum).clamp(0.0, 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn psi_is_zero_for_the_same_shares_and_grows_with_a_shift() {
        let r = [0.25, 0.25, 0.25, 0.25];
        assert_eq!(psi(&r, &r), 0.0);
        // Σ (c − r) ln(c / r) by hand: 2 · (0.15 · ln 1.6) + 2 · (−0.15 · ln 0.4).
        let c = [0.4, 0.1, 0.4, 0.1];
        let want = 2.0 * 0.15 * (1.6f64).ln() + 2.0 * (-0.15) * (0.4f64).ln();
        assert!((psi(&r, &c) - want).abs() < 1e-12);
        // An empty bin is floored, not infinite.
        assert!(psi(&r, &[0.5, 0.5, 0.0, 0.0]).is_finite());
    }

    #[test]
    fn deciles_bin_uniform_values_evenly() {
        let v: Vec<f64> = (0..1000).map(f64::from).collect();
        let edges = quantile_edges(&v, 10);
        assert_eq!(edges.len(), 9);
        let s = numeric_shares(&edges, &v);
        assert!(s.iter().all(|x| (x - 0.1).abs() < 0.002), "{s:?}");
        // Few distinct values give fewer bins, the maximum not alone.
        let e = quantile_edges(&[1.0, 1.0, 2.0, 2.0, 3.0], 10);
        assert!(e.len() < 9 && !e.contains(&3.0), "{e:?}");
    }

    #[test]
    fn ks_matches_scipy() {
        // scipy.stats.ks_2samp([1..=10], [6..=15], method="asymp"):
        // statistic 0.5, p-value 0.1641 (scipy's asymptotic form has no
        // small-sample correction; with it, Numerical Recipes gives 0.1469).
        let a: Vec<f64> = (1..=10).map(f64::from).collect();
        let b: Vec<f64> = (6..=15).map(f64::from).collect();
        let (d, p) = ks_2samp(&a, &b).unwrap();
        assert_eq!(d, 0.5);
        let ne: f64 = 5.0;
        let lambda = (ne.sqrt() + 0.12 + 0.11 / ne.sqrt()) * 0.5;
        assert!((p - kolmogorov_q(lambda)).abs() < 1e-12);
        assert!(
            (kolmogorov_q(ne.sqrt() * 0.5) - 0.1641).abs() < 5e-4,
            "{}",
            kolmogorov_q(ne.sqrt() * 0.5)
        );
        // The same sample: D = 0, p = 1; ties move both CDFs together.
        assert_eq!(ks_2samp(&a, &a), Some((0.0, 1.0)));
        assert_eq!(
            ks_2samp(&[1.0, 1.0, 2.0], &[1.0, 2.0, 2.0]).unwrap().0,
            1.0 / 3.0
        );
        assert_eq!(ks_2samp(&[f64::NAN], &a), None);
    }
}
