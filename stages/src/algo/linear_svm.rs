//! Linear support vector machine by dual coordinate descent.
//!
//! Source: C.-J. Hsieh, K.-W. Chang, C.-J. Lin, S. S. Keerthi and
//! S. Sundararajan, "A Dual Coordinate Descent Method for Large-scale
//! Linear SVM", ICML 2008 (Algorithm 1, L1-loss), as LIBLINEAR's
//! `solve_l2r_l1l2_svc` implements it, without shrinking. It minimises
//!
//! ```text
//! ½‖w‖² + C · Σᵢ max(0, 1 − yᵢ (w·xᵢ + b))
//! ```
//!
//! over the dual variables `0 ≤ αᵢ ≤ C`, keeping `w = Σᵢ αᵢ yᵢ xᵢ` up to
//! date, so one pass costs O(rows × features) and memory is O(rows): no
//! n × n kernel matrix, which is what makes a kernel SVM (SMO) slow and
//! memory-bound on many rows. The intercept is learnt as the weight of a
//! constant feature of 1, so it is regularised as in LIBLINEAR (libsvm's
//! `SVC(kernel="linear")` leaves it free); on standardised features the
//! two agree closely.

use ndarray::{Array2, ArrayView1};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus;

/// A fitted linear SVM: the decision function is `w·x + b`, positive for
/// the `true` class.
#[derive(Debug, Clone, PartialEq)]
pub struct LinearSvm {
    /// One weight per feature.
    pub w: Vec<f64>,
    /// The intercept.
    pub b: f64,
    /// Passes over the rows taken.
    pub epochs: usize,
    /// Whether the projected-gradient gap fell below the tolerance.
    pub converged: bool,
}

impl LinearSvm {
    /// `w·x + b` for one row.
    pub fn decision(&self, x: ArrayView1<'_, f64>) -> f64 {
        self.w.iter().zip(x).map(|(w, v)| w * v).sum::<f64>() + self.b
    }
}

/// Fits a linear SVM to `x` (rows × features) with labels `y` (`true` is
/// the positive class) and penalty `c` (> 0). Rows are visited in a
/// seeded random order each pass (`seed`), so a fit is reproducible. It
/// stops when the largest and smallest projected gradients are within
/// `tol` of each other (LIBLINEAR's criterion), or after `max_epochs`,
/// or when `stop` (asked before each pass) says so: the run was
/// interrupted, and the machine is unconverged.
pub fn fit(
    x: &Array2<f64>,
    y: &[bool],
    c: f64,
    tol: f64,
    max_epochs: usize,
    seed: u64,
    stop: &(dyn Fn() -> bool + Sync),
) -> LinearSvm {
    let (n, k) = x.dim();
    let sign: Vec<f64> = y.iter().map(|&t| if t { 1.0 } else { -1.0 }).collect();
    // ‖xᵢ‖² + 1 (the constant feature of the intercept).
    let q: Vec<f64> = x.rows().into_iter().map(|r| r.dot(&r) + 1.0).collect();
    let mut alpha = vec![0.0; n];
    let mut w = vec![0.0; k];
    let mut b = 0.0;
    let mut order: Vec<usize> = (0..n).collect();
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let mut epochs = 0;
    let mut converged = false;
    while epochs < max_epochs && !stop() {
        epochs += 1;
        order.shuffle(&mut rng);
        let (mut pg_max, mut pg_min) = (f64::NEG_INFINITY, f64::INFINITY);
        for &i in &order {
            let row = x.row(i);
            let yi = sign[i];
            let g = yi * (w.iter().zip(row).map(|(w, v)| w * v).sum::<f64>() + b) - 1.0;
            let pg = if alpha[i] <= 0.0 {
                g.min(0.0)
            } else if alpha[i] >= c {
                g.max(0.0)
            } else {
                g
            };
            pg_max = pg_max.max(pg);
            pg_min = pg_min.min(pg);
            if pg.abs() > 1e-12 {
                let old = alpha[i];
                alpha[i] = (old - g / q[i]).clamp(0.0, c);
                let step = (alpha[i] - old) * yi;
                for (w, v) in w.iter_mut().zip(row) {
                    *w += step * v;
                }
                b += step;
            }
        }
        if pg_max - pg_min <= tol {
            converged = true;
            break;
        }
    }
    LinearSvm {
        w,
        b,
        epochs,
        converged,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two separable points: the maximum-margin line is x = 0, the margin
    /// points sit at the decision values ±1.
    #[test]
    fn separable_points_get_the_maximum_margin() {
        let x = ndarray::array![[-1.0], [1.0], [-2.0], [2.0]];
        let y = [false, true, false, true];
        let m = fit(&x, &y, 100.0, 1e-6, 10_000, 1, &|| false);
        assert!(m.converged);
        assert!((m.decision(x.row(0)) + 1.0).abs() < 1e-3, "{m:?}");
        assert!((m.decision(x.row(1)) - 1.0).abs() < 1e-3, "{m:?}");
        assert!(m.b.abs() < 1e-3, "{m:?}");
    }

    /// The dual's optimum satisfies the KKT conditions of the primal: rows
    /// beyond the margin have αᵢ = 0, so on overlapping data the solution
    /// classifies most rows right and stays bounded by C.
    #[test]
    fn overlapping_classes_are_separated_as_well_as_a_line_can() {
        let x = ndarray::array![[0.0, 0.0], [0.1, 0.2], [1.0, 1.0], [0.9, 1.1], [0.6, 0.4]];
        let y = [false, false, true, true, false];
        let m = fit(&x, &y, 1.0, 1e-4, 10_000, 7, &|| false);
        let right = (0..5)
            .filter(|&i| (m.decision(x.row(i)) >= 0.0) == y[i])
            .count();
        assert!(right >= 4, "{m:?}");
        // Same seed, same model.
        assert_eq!(m, fit(&x, &y, 1.0, 1e-4, 10_000, 7, &|| false));
    }

    /// An interrupt ends the passes at once (Ctrl-C waited for up to
    /// `max_epochs` passes per pair of classes), unconverged.
    #[test]
    fn a_stop_ends_the_passes() {
        let x = ndarray::array![[0.0, 0.0], [0.1, 0.2], [1.0, 1.0], [0.9, 1.1], [0.6, 0.4]];
        let y = [false, false, true, true, false];
        let passes = std::sync::atomic::AtomicUsize::new(0);
        let stop = || passes.fetch_add(1, std::sync::atomic::Ordering::Relaxed) >= 2;
        let m = fit(&x, &y, 1e6, 0.0, 10_000, 7, &stop);
        assert_eq!(m.epochs, 2, "{m:?}");
        assert!(!m.converged);
    }
}
