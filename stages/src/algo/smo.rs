//! Kernel support vector classifier (C-SVC) by sequential minimal
//! optimisation.
//!
//! Source: libsvm's `Solver::Solve` (C.-C. Chang and C.-J. Lin, "LIBSVM: a
//! library for support vector machines", ACM TIST 2011) with the
//! second-order working-set selection of R.-E. Fan, P.-H. Chen and C.-J.
//! Lin, "Working set selection using second order information for training
//! SVM", JMLR 2005; the update, the clipping and the intercept (`rho`) are
//! libsvm's, without shrinking. It minimises the dual
//!
//! ```text
//! ½ αᵀQα − Σᵢ αᵢ,  0 ≤ αᵢ ≤ C,  Σᵢ yᵢ αᵢ = 0,  Qᵢⱼ = yᵢ yⱼ K(xᵢ, xⱼ)
//! ```
//!
//! and stops when the maximal violating pair is within `tol` (libsvm's
//! `-e`, scikit-learn's `SVC(tol=1e-3)`). The kernel matrix is computed
//! whole, by one matrix product per block of rows on every core: for the
//! row counts an n × n matrix allows, this is faster than libsvm's cache of
//! columns computed one pair at a time.

use ndarray::{s, Array1, Array2, ArrayView2};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// A kernel `K(x, y)`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum KernelFn {
    /// `x·y`.
    Linear,
    /// `exp(-gamma · ‖x − y‖²)`.
    Gaussian { gamma: f64 },
    /// `(x·y + coef0)^degree`.
    Polynomial { degree: f64, coef0: f64 },
}

impl KernelFn {
    /// The kernel of two rows from their dot product and squared norms.
    fn of_dot(self, dot: f64, xx: f64, yy: f64) -> f64 {
        match self {
            KernelFn::Linear => dot,
            KernelFn::Gaussian { gamma } => (-gamma * (xx + yy - 2.0 * dot).max(0.0)).exp(),
            KernelFn::Polynomial { degree, coef0 } => (dot + coef0).powf(degree),
        }
    }

    /// `K(aᵢ, bⱼ)` for every row of `a` and `b`: `a rows × b rows`, blocks
    /// of `a`'s rows in parallel.
    pub fn matrix(self, a: ArrayView2<'_, f64>, b: ArrayView2<'_, f64>) -> Array2<f64> {
        const BLOCK: usize = 256;
        let an: Vec<f64> = a.rows().into_iter().map(|r| r.dot(&r)).collect();
        let bn: Vec<f64> = b.rows().into_iter().map(|r| r.dot(&r)).collect();
        let (n, m) = (a.nrows(), b.nrows());
        // Filled in place, a block of rows at a time: the matrix may take
        // half the memory available (`max_kernel_mb`), so no second copy.
        let mut out = Array2::zeros((n, m));
        if m == 0 {
            return out;
        }
        out.as_slice_mut()
            .expect("a new array is contiguous")
            .par_chunks_mut(BLOCK * m)
            .enumerate()
            .for_each(|(blk, chunk)| {
                let lo = blk * BLOCK;
                let hi = lo + chunk.len() / m;
                let k = a.slice(s![lo..hi, ..]).dot(&b.t());
                for ((dst, row), &xx) in chunk.chunks_mut(m).zip(k.rows()).zip(&an[lo..hi]) {
                    for ((d, &v), &yy) in dst.iter_mut().zip(row).zip(&bn) {
                        *d = self.of_dot(v, xx, yy);
                    }
                }
            });
        out
    }
}

/// A fitted two-class machine: `f(x) = Σᵢ coefᵢ K(svᵢ, x) − rho`, positive
/// for the `true` class.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KernelMachine {
    /// The support vectors (rows with αᵢ > 0), support vectors × features.
    pub support: Vec<Vec<f64>>,
    /// `yᵢ αᵢ` for each support vector.
    pub dual_coef: Vec<f64>,
    /// The intercept, subtracted.
    pub rho: f64,
}

/// The outcome of [`fit`]: the machine and the solver's iterations.
#[derive(Debug, Clone)]
pub struct SmoFit {
    pub machine: KernelMachine,
    pub iterations: usize,
    /// Whether the violating pair fell within the tolerance.
    pub converged: bool,
}

/// libsvm's `TAU`: the smallest curvature used for a working pair.
const TAU: f64 = 1e-12;

/// Fits a C-SVC to `x` (rows × features) and labels `y` (`true`: the
/// positive class) with penalty `c` and kernel `kernel`, stopping at `tol`
/// or after `max_iter` pair updates, or when `stop` says so (checked every
/// 1 000 updates: the run was interrupted).
pub fn fit(
    x: &Array2<f64>,
    y: &[bool],
    c: f64,
    kernel: KernelFn,
    tol: f64,
    max_iter: usize,
    stop: &(dyn Fn() -> bool + Sync),
) -> SmoFit {
    let n = x.nrows();
    let k = kernel.matrix(x.view(), x.view());
    let ys: Vec<f64> = y.iter().map(|&t| if t { 1.0 } else { -1.0 }).collect();
    let qd: Vec<f64> = (0..n).map(|i| k[[i, i]]).collect();
    let mut alpha = vec![0.0; n];
    let mut grad = vec![-1.0; n];
    let up = |a: f64, yt: f64| if yt > 0.0 { a < c } else { a > 0.0 };
    let low = |a: f64, yt: f64| if yt > 0.0 { a > 0.0 } else { a < c };
    let mut iterations = 0;
    let mut converged = false;
    while iterations < max_iter {
        if iterations % 1000 == 0 && stop() {
            break;
        }
        // i: the most violating index in I_up.
        let mut gmax = f64::NEG_INFINITY;
        let mut i = usize::MAX;
        for t in 0..n {
            if up(alpha[t], ys[t]) && -ys[t] * grad[t] >= gmax {
                gmax = -ys[t] * grad[t];
                i = t;
            }
        }
        // j: the second-order choice in I_low.
        let mut gmax2 = f64::NEG_INFINITY;
        let mut j = usize::MAX;
        let mut obj_min = f64::INFINITY;
        let ki = if i == usize::MAX {
            None
        } else {
            Some(k.row(i))
        };
        for t in 0..n {
            if !low(alpha[t], ys[t]) {
                continue;
            }
            let yg = ys[t] * grad[t];
            if yg >= gmax2 {
                gmax2 = yg;
            }
            let Some(ki) = ki else { continue };
            let diff = gmax + yg;
            if diff > 0.0 {
                let quad = (qd[i] + qd[t] - 2.0 * ki[t]).max(TAU);
                let obj = -diff * diff / quad;
                if obj <= obj_min {
                    obj_min = obj;
                    j = t;
                }
            }
        }
        if gmax + gmax2 < tol || i == usize::MAX || j == usize::MAX {
            converged = true;
            break;
        }
        iterations += 1;
        let (yi, yj) = (ys[i], ys[j]);
        let qij = yi * yj * k[[i, j]];
        let (old_i, old_j) = (alpha[i], alpha[j]);
        if yi != yj {
            let quad = (qd[i] + qd[j] + 2.0 * qij).max(TAU);
            let delta = (-grad[i] - grad[j]) / quad;
            let diff = alpha[i] - alpha[j];
            alpha[i] += delta;
            alpha[j] += delta;
            if diff > 0.0 {
                if alpha[j] < 0.0 {
                    alpha[j] = 0.0;
                    alpha[i] = diff;
                }
            } else if alpha[i] < 0.0 {
                alpha[i] = 0.0;
                alpha[j] = -diff;
            }
            if diff > 0.0 {
                if alpha[i] > c {
                    alpha[i] = c;
                    alpha[j] = c - diff;
                }
            } else if alpha[j] > c {
                alpha[j] = c;
                alpha[i] = c + diff;
            }
        } else {
            let quad = (qd[i] + qd[j] - 2.0 * qij).max(TAU);
            let delta = (grad[i] - grad[j]) / quad;
            let sum = alpha[i] + alpha[j];
            alpha[i] -= delta;
            alpha[j] += delta;
            if sum > c {
                if alpha[i] > c {
                    alpha[i] = c;
                    alpha[j] = sum - c;
                }
            } else if alpha[j] < 0.0 {
                alpha[j] = 0.0;
                alpha[i] = sum;
            }
            if sum > c {
                if alpha[j] > c {
                    alpha[j] = c;
                    alpha[i] = sum - c;
                }
            } else if alpha[i] < 0.0 {
                alpha[i] = 0.0;
                alpha[j] = sum;
            }
        }
        // G_t += Q_ti Δα_i + Q_tj Δα_j.
        let (di, dj) = ((alpha[i] - old_i) * yi, (alpha[j] - old_j) * yj);
        let (ri, rj) = (k.row(i), k.row(j));
        for t in 0..n {
            grad[t] += ys[t] * (ri[t] * di + rj[t] * dj);
        }
    }
    let rho = intercept(&alpha, &grad, &ys, c);
    let rows: Vec<usize> = (0..n).filter(|&i| alpha[i] > 0.0).collect();
    SmoFit {
        machine: KernelMachine {
            support: rows.iter().map(|&i| x.row(i).to_vec()).collect(),
            dual_coef: rows.iter().map(|&i| alpha[i] * ys[i]).collect(),
            rho,
        },
        iterations,
        converged,
    }
}

/// libsvm's `calculate_rho`: the mean of `yᵢ Gᵢ` over free αᵢ, or the
/// middle of its feasible interval when none is free.
fn intercept(alpha: &[f64], grad: &[f64], ys: &[f64], c: f64) -> f64 {
    let (mut ub, mut lb) = (f64::INFINITY, f64::NEG_INFINITY);
    let (mut sum, mut free) = (0.0, 0usize);
    for ((&a, &g), &y) in alpha.iter().zip(grad).zip(ys) {
        let yg = y * g;
        if a >= c {
            if y < 0.0 {
                ub = ub.min(yg);
            } else {
                lb = lb.max(yg);
            }
        } else if a <= 0.0 {
            if y > 0.0 {
                ub = ub.min(yg);
            } else {
                lb = lb.max(yg);
            }
        } else {
            free += 1;
            sum += yg;
        }
    }
    if free > 0 {
        sum / free as f64
    } else {
        (ub + lb) / 2.0
    }
}

/// The decision values of `machine` for every row of `x`.
pub fn decision(machine: &KernelMachine, kernel: KernelFn, x: ArrayView2<'_, f64>) -> Array1<f64> {
    if machine.support.is_empty() {
        return Array1::from_elem(x.nrows(), -machine.rho);
    }
    let f = machine.support[0].len();
    let sv = Array2::from_shape_fn((machine.support.len(), f), |(i, j)| machine.support[i][j]);
    let k = kernel.matrix(x, sv.view());
    let coef = Array1::from(machine.dual_coef.clone());
    k.dot(&coef) - machine.rho
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two separable groups: every training row is on its side, and the
    /// margin rows' decision values are ±1 (the KKT conditions at C large).
    #[test]
    fn separable_groups_get_the_margin() {
        let x = ndarray::array![
            [0.0, 0.0],
            [0.0, 1.0],
            [1.0, 0.0],
            [3.0, 3.0],
            [3.0, 4.0],
            [4.0, 3.0]
        ];
        let y = [false, false, false, true, true, true];
        let kernel = KernelFn::Gaussian { gamma: 0.1 };
        let m = fit(&x, &y, 1000.0, kernel, 1e-6, 100_000, &|| false);
        assert!(m.converged);
        let d = decision(&m.machine, kernel, x.view());
        for (v, &t) in d.iter().zip(&y) {
            assert_eq!(*v > 0.0, t, "{d}");
            assert!(v.abs() >= 1.0 - 1e-3, "inside the margin: {d}");
        }
        // Σ yᵢ αᵢ = 0.
        let s: f64 = m.machine.dual_coef.iter().sum();
        assert!(s.abs() < 1e-9, "{s}");
    }

    /// The same data and settings as libsvm's: on XOR (not linearly
    /// separable) the Gaussian kernel classifies every point.
    #[test]
    fn xor_is_learnt_with_a_gaussian_kernel() {
        let x = ndarray::array![[0.0, 0.0], [1.0, 1.0], [0.0, 1.0], [1.0, 0.0]];
        let y = [false, false, true, true];
        let kernel = KernelFn::Gaussian { gamma: 2.0 };
        let m = fit(&x, &y, 10.0, kernel, 1e-3, 10_000, &|| false);
        let d = decision(&m.machine, kernel, x.view());
        for (v, &t) in d.iter().zip(&y) {
            assert_eq!(*v > 0.0, t, "{d}");
        }
        let p = KernelFn::Polynomial {
            degree: 2.0,
            coef0: 1.0,
        };
        let m = fit(&x, &y, 10.0, p, 1e-3, 10_000, &|| false);
        let d = decision(&m.machine, p, x.view());
        for (v, &t) in d.iter().zip(&y) {
            assert_eq!(*v > 0.0, t, "{d}");
        }
    }
}
