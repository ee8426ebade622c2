//! Numerics without stage plumbing: each algorithm takes `ndarray` arrays
//! and returns numbers, so it is unit-tested on arrays alone. The `train`
//! stages wrap them with parameters, logging and model files.

pub mod cart;
pub mod gbm;
pub mod kmeans;
pub mod linear_svm;
pub mod mlp;
pub mod newton;
pub mod ols;
pub mod sgd;
pub mod smo;

use ndarray::Array2;

/// Rows `0..n` split for early stopping: a seeded shuffle's first
/// `fraction` (rounded, at least one row, and one row left to train on)
/// held out. Returns (training rows, held-out rows), each ascending.
pub fn hold_out(n: usize, fraction: f64, rng: &mut impl rand::Rng) -> (Vec<usize>, Vec<usize>) {
    use rand::seq::SliceRandom;
    let mut idx: Vec<usize> = (0..n).collect();
    idx.shuffle(rng);
    let n_val = ((n as f64 * fraction).round() as usize).clamp(1, n.saturating_sub(1).max(1));
    let mut val = idx[..n_val].to_vec();
    let mut train = idx[n_val..].to_vec();
    val.sort_unstable();
    train.sort_unstable();
    (train, val)
}

/// `aᵀa`, summed over row blocks in parallel: the output is tiny and the
/// inner dimension huge, a shape one GEMM call runs on one core.
pub fn gram(a: &Array2<f64>) -> Array2<f64> {
    use rayon::prelude::*;
    const BLOCK: usize = 1 << 15;
    let n = a.nrows();
    let k = a.ncols();
    (0..n.div_ceil(BLOCK))
        .into_par_iter()
        .map(|i| {
            let rows = a.slice(ndarray::s![i * BLOCK..((i + 1) * BLOCK).min(n), ..]);
            rows.t().dot(&rows)
        })
        .collect::<Vec<_>>()
        .into_iter()
        .fold(Array2::zeros((k, k)), |acc, g| acc + g)
}
