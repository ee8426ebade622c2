//! Ordinary least squares by the normal equations, solved by Cholesky.

use ndarray::{Array1, Array2, Axis};

use super::gram;

/// OLS by the normal equations of the centred, unit-norm columns, solved by
/// Cholesky: about k/2 times fewer flops than QR of the whole matrix, and
/// well conditioned unless columns are (nearly) collinear — then `None`,
/// and the caller uses [`min_norm_least_squares`]. Returns the coefficients
/// and the intercept.
pub fn normal_equations(
    x: &Array2<f64>,
    y: &Array1<f64>,
    intercept: bool,
) -> Option<(Vec<f64>, f64)> {
    use linfa_linalg::cholesky::SolveCInplace;
    let (n, k) = x.dim();
    if n <= k {
        return None;
    }
    let (mut z, mean, ybar) = centred(x, y, intercept)?;
    let norms: Vec<f64> = z.columns().into_iter().map(|c| c.dot(&c).sqrt()).collect();
    if norms.iter().any(|s| !(*s > 0.0 && s.is_finite())) {
        return None;
    }
    for (mut c, s) in z.columns_mut().into_iter().zip(&norms) {
        c /= *s;
    }
    let yc = y - ybar;
    let mut gram = gram(&z);
    let mut rhs = z.t().dot(&yc).insert_axis(Axis(1));
    gram.solvec_inplace(&mut rhs).ok()?;
    // `gram` now holds the Cholesky factor: a tiny pivot means a column is
    // almost a combination of the others.
    let smallest = (0..k).map(|i| gram[[i, i]]).fold(f64::INFINITY, f64::min);
    if smallest.is_nan() || smallest <= 1e-6 {
        return None;
    }
    let w: Vec<f64> = rhs
        .column(0)
        .iter()
        .zip(&norms)
        .map(|(w, s)| w / s)
        .collect();
    let b = ybar - w.iter().zip(mean.iter()).map(|(w, m)| w * m).sum::<f64>();
    if w.iter().any(|v| !v.is_finite()) || !b.is_finite() {
        return None;
    }
    Some((w, b))
}

/// `x` minus its column means, the means, and the mean of `y` (zeros and
/// `x` itself without an intercept); `None` for no rows.
fn centred(
    x: &Array2<f64>,
    y: &Array1<f64>,
    intercept: bool,
) -> Option<(Array2<f64>, Array1<f64>, f64)> {
    if !intercept {
        return Some((x.clone(), Array1::zeros(x.ncols()), 0.0));
    }
    let mean = x.mean_axis(Axis(0))?;
    Some((x - &mean, mean, y.mean()?))
}

/// The minimum-norm least-squares solution, by SVD of the centred design
/// (as `numpy.linalg.lstsq` and so scikit-learn's `LinearRegression`):
/// singular values below `eps · max(n, k) · s_max` count as zero. When
/// columns are collinear (one-hot levels beside an intercept, a column
/// repeated) there are many exact fits; this one has the smallest
/// coefficients, so a row unlike the training rows (an unseen category, all
/// zeros) gets a prediction near the mean instead of ±10¹⁶. Returns the
/// coefficients and the intercept; `None` if the SVD fails.
pub fn min_norm_least_squares(
    x: &Array2<f64>,
    y: &Array1<f64>,
    intercept: bool,
) -> Option<(Vec<f64>, f64)> {
    use linfa_linalg::svd::SVD;
    let (n, k) = x.dim();
    if n == 0 || k == 0 {
        return None;
    }
    let (z, mean, ybar) = centred(x, y, intercept)?;
    let yc = y - ybar;
    // The SVD of the wide or tall matrix, whichever is thinner to compute.
    let (u, sigma, vt) = z.svd(true, true).ok()?;
    let (u, vt) = (u?, vt?);
    let s_max = sigma.iter().copied().fold(0.0, f64::max);
    let cutoff = f64::EPSILON * n.max(k) as f64 * s_max;
    // w = V · S⁺ · Uᵀ · y
    let uty = u.t().dot(&yc);
    let scaled: Array1<f64> = uty
        .iter()
        .zip(&sigma)
        .map(|(a, s)| if *s > cutoff { a / s } else { 0.0 })
        .collect();
    let w = vt.t().dot(&scaled);
    let b = ybar - w.dot(&mean);
    if w.iter().any(|v| !v.is_finite()) || !b.is_finite() {
        return None;
    }
    Some((w.to_vec(), b))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One-hot levels that sum to 1 beside an intercept: scikit-learn's
    /// `LinearRegression().fit(X, y)` on these rows gives coefficients
    /// [-1, 1] and intercept 11 (the minimum-norm fit), and an all-zero row
    /// (an unseen category) scores 11, not ±10¹⁶.
    #[test]
    fn min_norm_fit_of_a_singular_design_matches_scikit_learn() {
        let x = ndarray::array![[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]];
        let y = ndarray::array![10.0, 10.0, 12.0, 12.0];
        let (w, b) = min_norm_least_squares(&x, &y, true).unwrap();
        assert!(
            (w[0] + 1.0).abs() < 1e-12 && (w[1] - 1.0).abs() < 1e-12,
            "{w:?}"
        );
        assert!((b - 11.0).abs() < 1e-12, "{b}");
        // A full-rank design gets the ordinary least-squares fit.
        let x = ndarray::array![[0.0], [1.0], [2.0]];
        let y = ndarray::array![1.0, 3.0, 5.0];
        let (w, b) = min_norm_least_squares(&x, &y, true).unwrap();
        assert!((w[0] - 2.0).abs() < 1e-12 && (b - 1.0).abs() < 1e-12);
    }

    #[test]
    fn normal_equations_recover_the_plane_and_refuse_collinear_columns() {
        let n = 50;
        let x = Array2::from_shape_fn((n, 2), |(i, j)| {
            if j == 0 {
                i as f64
            } else {
                ((i * 7) % 11) as f64 * 1e4
            }
        });
        let y: Array1<f64> = x
            .rows()
            .into_iter()
            .map(|r| 3.0 * r[0] - 2e-4 * r[1] + 5.0)
            .collect();
        let (coefficients, intercept) = normal_equations(&x, &y, true).expect("solvable");
        assert!((coefficients[0] - 3.0).abs() < 1e-9, "{coefficients:?}");
        assert!((coefficients[1] + 2e-4).abs() < 1e-12, "{coefficients:?}");
        assert!((intercept - 5.0).abs() < 1e-8, "{intercept}");
        let mut twice = Array2::zeros((n, 2));
        twice.column_mut(0).assign(&x.column(0));
        twice.column_mut(1).assign(&(&x.column(0) * 2.0));
        assert!(normal_equations(&twice, &y, true).is_none());
    }
}
