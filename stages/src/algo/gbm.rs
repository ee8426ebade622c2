//! Histogram gradient boosting (Friedman, "Greedy function approximation",
//! 2001; Ke et al., "LightGBM", 2017), the algorithm and defaults of
//! scikit-learn's `HistGradientBoostingRegressor` / `…Classifier`, used by
//! `train.gradient_boosting`.
//!
//! Each feature is cut into at most `max_bins` bins at quantiles of the
//! training values; a tree is grown best-first (the leaf whose split gains
//! most is split next, up to `max_leaf_nodes` leaves) on per-bin sums of the
//! loss's gradients and hessians, a child's histogram is its parent's minus
//! its sibling's, and a leaf's value is the Newton step
//! `−learning_rate · G / (H + l2)`. Split gain is
//! `G_l²/(H_l+λ) + G_r²/(H_r+λ) − G²/(H+λ)` (XGBoost's, without the ½).
//!
//! Losses: squared error (regression), binary log loss (one tree per
//! iteration) and the multinomial log loss (one tree per class and
//! iteration). Trees are stored with thresholds on raw values, as
//! [`Tree`]s whose leaves hold `[value]`, so scoring needs no bins.
//!
//! Missing values (NaN) are learned as scikit-learn learns them: each
//! feature has one more bin for them, and every split tries sending them
//! left and right and keeps the better; a node whose rows had none sends
//! them to the child with more rows. A split may also part the missing
//! values from every other value (threshold `+∞`).
//!
//! Reproducible: sums run in row order within a feature, features in
//! parallel but each on its own, ties go to the lowest feature and bin, and
//! every random draw (validation split, row subsampling) comes from `seed`;
//! the same data and params give the same trees on any thread count.

use ndarray::Array2;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::cart::Tree;

/// What is boosted.
#[derive(Debug, Clone, Copy)]
pub enum Target<'a> {
    /// Squared error on numeric targets.
    Values(&'a [f64]),
    /// Log loss on class ids in `0..k` (`k ≥ 2`).
    Classes { y: &'a [usize], k: usize },
}

/// Boosting settings (scikit-learn's names and defaults).
#[derive(Debug, Clone)]
pub struct GbmParams {
    pub learning_rate: f64,
    /// Boosting iterations (trees per class).
    pub max_iter: usize,
    pub max_leaf_nodes: Option<usize>,
    pub max_depth: Option<usize>,
    pub min_samples_leaf: usize,
    pub l2_regularization: f64,
    /// At most 255.
    pub max_bins: usize,
    /// Share of the training rows each tree sees (1 = all).
    pub subsample: f64,
    /// Hold out `validation_fraction` of the rows and stop when their loss
    /// has not fallen by `tol` in `n_iter_no_change` iterations.
    pub early_stopping: bool,
    pub validation_fraction: f64,
    pub n_iter_no_change: usize,
    pub tol: f64,
    pub seed: u64,
}

/// A fitted ensemble: `raw_k(x) = base[k] + Σ trees[i·K + k](x)`; for
/// classes, probabilities by the sigmoid (`K = 1`, two classes) or softmax.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Booster {
    /// The starting raw score per tree column (`K` long).
    pub base: Vec<f64>,
    /// Iteration-major: tree `i` belongs to column `i % K`.
    pub trees: Vec<Tree>,
}

/// One iteration's losses: training rows, and held-out rows when early
/// stopping holds some out.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Step {
    pub iteration: usize,
    pub train: f64,
    pub validation: Option<f64>,
}

/// Why boosting ended without a model.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Stopped {
    /// The training loss became non-finite, or ten times the starting
    /// (constant model's) loss, at this iteration: the steps overshoot (a
    /// learning rate too large). Boosting lowers the training loss at
    /// every sane learning rate; at 2.1 it grew 10 000-fold and shipped.
    Diverged { iteration: usize },
    /// The step callback asked to stop (the run was interrupted).
    Interrupted,
}

/// The result of [`fit`].
#[derive(Debug, Clone)]
pub struct Fit {
    pub booster: Booster,
    /// Total split gain per feature, scaled to sum to 1.
    pub importances: Vec<f64>,
    pub curve: Vec<Step>,
    /// The iteration early stopping ended at, if it did.
    pub stopped_at: Option<usize>,
}

impl Booster {
    /// Number of raw scores per row (`K`).
    pub fn columns(&self) -> usize {
        self.base.len()
    }

    /// Raw scores of one row (`features` long): `K` values.
    pub fn raw(&self, row: &[f64]) -> Vec<f64> {
        let k = self.columns();
        let mut out = self.base.clone();
        for (i, t) in self.trees.iter().enumerate() {
            out[i % k] += t.leaf_of(row)[0];
        }
        out
    }

    /// Raw scores of every row of `x` (rows × features): rows × `K`, in
    /// blocks of rows in parallel.
    pub fn raw_matrix(&self, x: &Array2<f64>) -> Vec<Vec<f64>> {
        let x = x.as_standard_layout();
        let f = x.ncols();
        let xs = x.as_slice().expect("standard layout");
        xs.par_chunks(f.max(1) * 256)
            .flat_map_iter(|block| block.chunks(f.max(1)).map(|r| self.raw(r)))
            .collect()
    }
}

/// The logistic function.
pub fn sigmoid(z: f64) -> f64 {
    1.0 / (1.0 + (-z).exp())
}

/// Softmax in place.
fn softmax(v: &mut [f64]) {
    let m = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let mut s = 0.0;
    for x in v.iter_mut() {
        *x = (*x - m).exp();
        s += *x;
    }
    v.iter_mut().for_each(|x| *x /= s);
}

/// Quantile bins of the training values: per feature, the cut points
/// (`x < cut[b]` is bin `≤ b`), and each row's bin, feature-major. A
/// feature has `cuts.len() + 1` value bins and then one bin for missing
/// values (NaN), so its histogram is `cuts.len() + 2` cells long.
struct Bins {
    cuts: Vec<Vec<f64>>,
    /// `codes[f * n + i]`: the bin of training row `i` in feature `f`.
    codes: Vec<u8>,
    n: usize,
    /// Where feature `f`'s bins start in a histogram.
    offset: Vec<usize>,
    total: usize,
}

/// Rows per parallel task of the gradient pass.
const GRAIN: usize = 8192;

/// At most this many training rows measure the training loss.
const TRAIN_LOSS_ROWS: usize = 10_000;

/// At most this many rows decide the cut points (scikit-learn's 200 000).
const BIN_SAMPLE: usize = 200_000;

impl Bins {
    fn new(x: &Array2<f64>, rows: &[usize], max_bins: usize, seed: u64) -> Bins {
        let sample: Vec<usize> = if rows.len() > BIN_SAMPLE {
            let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed ^ 0xb175);
            let mut s: Vec<usize> = rows
                .choose_multiple(&mut rng, BIN_SAMPLE)
                .copied()
                .collect();
            s.sort_unstable();
            s
        } else {
            rows.to_vec()
        };
        let n = rows.len();
        let per_feature: Vec<(Vec<f64>, Vec<u8>)> = (0..x.ncols())
            .into_par_iter()
            .map(|f| {
                let mut v: Vec<f64> = sample
                    .iter()
                    .map(|&r| x[[r, f]])
                    .filter(|v| !v.is_nan())
                    .collect();
                v.sort_unstable_by(f64::total_cmp);
                let cuts = cut_points(&v, max_bins);
                // At most 254 cuts: value bins 0..=254, the missing bin
                // right after them, so every code fits a byte.
                let missing = (cuts.len() + 1) as u8;
                let codes = rows
                    .iter()
                    .map(|&r| {
                        let value = x[[r, f]];
                        if value.is_nan() {
                            missing
                        } else {
                            cuts.partition_point(|c| *c <= value) as u8
                        }
                    })
                    .collect();
                (cuts, codes)
            })
            .collect();
        let mut cuts = Vec::with_capacity(per_feature.len());
        let mut codes = Vec::with_capacity(n * per_feature.len());
        let mut offset = Vec::with_capacity(per_feature.len());
        let mut total = 0;
        for (c, k) in per_feature {
            offset.push(total);
            total += c.len() + 2;
            cuts.push(c);
            codes.extend(k);
        }
        Bins {
            cuts,
            codes,
            n,
            offset,
            total,
        }
    }

    fn features(&self) -> usize {
        self.cuts.len()
    }

    /// Histogram cells of feature `f`: its value bins, then the missing bin.
    fn width(&self, f: usize) -> usize {
        self.cuts[f].len() + 2
    }

    fn column(&self, f: usize) -> &[u8] {
        &self.codes[f * self.n..(f + 1) * self.n]
    }
}

/// Cut points between the sorted values `v`: midpoints between
/// consecutive distinct values when there are at most `max_bins` of them,
/// else midpoints at `max_bins` quantiles (scikit-learn's
/// `_find_binning_thresholds`).
fn cut_points(v: &[f64], max_bins: usize) -> Vec<f64> {
    if v.is_empty() {
        return Vec::new();
    }
    let mut distinct = v.to_vec();
    distinct.dedup();
    let mid = |a: f64, b: f64| {
        let t = a / 2.0 + b / 2.0;
        if t <= a {
            b
        } else {
            t
        }
    };
    if distinct.len() <= max_bins {
        return distinct.windows(2).map(|w| mid(w[0], w[1])).collect();
    }
    let n = v.len();
    let mut cuts: Vec<f64> = (1..max_bins)
        .map(|i| {
            // The `midpoint` percentile of `i / max_bins`.
            let pos = i as f64 / max_bins as f64 * (n - 1) as f64;
            let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
            (v[lo] + v[hi]) / 2.0
        })
        .collect();
    cuts.dedup();
    // A cut equal to the smallest value would leave bin 0 empty.
    cuts.retain(|c| *c > v[0]);
    cuts
}

/// Per-bin sums of gradients, hessians and rows.
#[derive(Debug, Clone, Copy, Default)]
struct Cell {
    g: f64,
    h: f64,
    n: u32,
}

/// A leaf of the tree being grown.
struct Leaf {
    node: usize,
    depth: usize,
    /// The leaf's rows: a range of the tree's index buffer.
    rows: std::ops::Range<usize>,
    hist: Vec<Cell>,
    sum: Cell,
    split: Option<Split>,
}

#[derive(Debug, Clone, Copy)]
struct Split {
    gain: f64,
    feature: usize,
    /// Value bins `0..=bin` go left; `bin` is the last value bin when the
    /// split parts the missing values from all the others.
    bin: usize,
    /// Missing values go left.
    missing_left: bool,
    left: Cell,
}

/// Growth limits and regularisation for one tree.
struct Grow<'a> {
    bins: &'a Bins,
    /// Gradients and hessians of the training rows, float32 as in
    /// scikit-learn (histograms sum them in float64).
    g: &'a [f32],
    h: &'a [f32],
    /// Every hessian is 1 (squared error): counts stand for their sums.
    const_h: bool,
    p: &'a GbmParams,
    /// Histograms of finished leaves, reused (a fresh one is zeroed pages).
    pool: std::sync::Mutex<Vec<Vec<Cell>>>,
    /// A node's gradients and hessians in its row order, reused.
    ordered: std::sync::Mutex<(Vec<f32>, Vec<f32>)>,
}

/// scikit-learn's `min_hessian_to_split`.
const MIN_HESSIAN: f64 = 1e-3;

impl Grow<'_> {
    fn recycle(&self, hist: Vec<Cell>) {
        if !hist.is_empty() {
            self.pool.lock().expect("not poisoned").push(hist);
        }
    }

    fn histogram(&self, rows: &[u32]) -> Vec<Cell> {
        let b = self.bins;
        let pooled = self.pool.lock().expect("not poisoned").pop();
        let mut hist = match pooled {
            Some(mut h) => {
                h.fill(Cell::default());
                h
            }
            None => vec![Cell::default(); b.total],
        };
        // The rows' gradients in row order, so the per-feature loops read
        // them sequentially; the root's rows are every row in order.
        let identity = rows.len() == b.n;
        // Reused buffers: a fresh one per node was fresh pages to zero.
        let mut ordered = self.ordered.lock().expect("not poisoned");
        let (og, oh) = &mut *ordered;
        if !identity {
            og.clear();
            og.extend(rows.iter().map(|&r| self.g[r as usize]));
            if !self.const_h {
                oh.clear();
                oh.extend(rows.iter().map(|&r| self.h[r as usize]));
            }
        }
        let (g, h): (&[f32], &[f32]) = if identity {
            (self.g, self.h)
        } else {
            (&og[..], &oh[..])
        };
        let const_h = self.const_h;
        // One feature per task: each sums in row order, so the result does
        // not depend on the thread count.
        let mut parts: Vec<&mut [Cell]> = Vec::with_capacity(b.features());
        let mut rest = hist.as_mut_slice();
        for f in 0..b.features() {
            let (head, tail) = rest.split_at_mut(b.width(f));
            parts.push(head);
            rest = tail;
        }
        let fill = |(f, cells): (usize, &mut [Cell])| {
            let col = b.column(f);
            if identity {
                for (i, &code) in col.iter().enumerate() {
                    let c = &mut cells[code as usize];
                    c.g += f64::from(g[i]);
                    if !const_h {
                        c.h += f64::from(h[i]);
                    }
                    c.n += 1;
                }
            } else {
                for (i, &r) in rows.iter().enumerate() {
                    let c = &mut cells[col[r as usize] as usize];
                    c.g += f64::from(g[i]);
                    if !const_h {
                        c.h += f64::from(h[i]);
                    }
                    c.n += 1;
                }
            }
            if const_h {
                for c in cells.iter_mut() {
                    c.h = f64::from(c.n);
                }
            }
        };
        // A task per feature pays even for small nodes (measured).
        parts.into_par_iter().enumerate().for_each(fill);
        hist
    }

    fn score(&self, c: Cell) -> f64 {
        c.g * c.g / (c.h + self.p.l2_regularization)
    }

    /// The best split of a leaf, if one gains anything within the limits.
    fn best_split(&self, hist: &[Cell], sum: Cell, depth: usize) -> Option<Split> {
        let min_leaf = self.p.min_samples_leaf.max(1) as u32;
        if self.p.max_depth.is_some_and(|d| depth >= d) || sum.n < 2 * min_leaf {
            return None;
        }
        let parent = self.score(sum);
        let b = self.bins;
        let per_feature: Vec<Option<Split>> = (0..b.features())
            .into_par_iter()
            .map(|f| {
                let cells = &hist[b.offset[f]..b.offset[f] + b.width(f)];
                let (values, missing) = cells.split_at(cells.len() - 1);
                let missing = missing[0];
                let mut best: Option<Split> = None;
                // Missing values right, then (when the node has any) left:
                // scikit-learn's two scans. Going right, the last value bin
                // may join the left side too: the split of every value from
                // the missing ones.
                let scans: &[bool] = if missing.n > 0 {
                    &[false, true]
                } else {
                    &[false]
                };
                for &missing_left in scans {
                    let mut left = if missing_left {
                        missing
                    } else {
                        Cell::default()
                    };
                    let last = if missing.n > 0 && !missing_left {
                        values.len()
                    } else {
                        values.len() - 1
                    };
                    for (bin, c) in values[..last].iter().enumerate() {
                        left.g += c.g;
                        left.h += c.h;
                        left.n += c.n;
                        let right = Cell {
                            g: sum.g - left.g,
                            h: sum.h - left.h,
                            n: sum.n - left.n,
                        };
                        if left.n < min_leaf || left.h < MIN_HESSIAN {
                            continue;
                        }
                        if right.n < min_leaf || right.h < MIN_HESSIAN {
                            break;
                        }
                        let gain = self.score(left) + self.score(right) - parent;
                        if gain > 0.0 && best.is_none_or(|s| gain > s.gain) {
                            best = Some(Split {
                                gain,
                                feature: f,
                                bin,
                                // With no missing rows here, scikit-learn's
                                // rule for unseen missing values: the child
                                // with more rows.
                                missing_left: if missing.n > 0 {
                                    missing_left
                                } else {
                                    2 * left.n > sum.n
                                },
                                left,
                            });
                        }
                    }
                }
                best
            })
            .collect();
        per_feature
            .into_iter()
            .flatten()
            .fold(None, |acc: Option<Split>, s| match acc {
                Some(a) if a.gain >= s.gain => Some(a),
                _ => Some(s),
            })
    }

    /// Grows one tree on the rows in `idx` (positions in the training
    /// rows, ascending), which it reorders so that each leaf's rows are one
    /// range of it; returns the tree and each leaf's range and value, and
    /// adds the gain of each split to `gains`.
    fn tree(
        &self,
        idx: &mut [u32],
        scratch: &mut Vec<u32>,
        gains: &mut [f64],
    ) -> (Tree, Vec<(std::ops::Range<usize>, f64)>) {
        let max_leaves = self.p.max_leaf_nodes.unwrap_or(usize::MAX).max(2);
        let mut tree = Tree::default();
        let new_node = |tree: &mut Tree| {
            tree.feature.push(-1);
            tree.threshold.push(0.0);
            tree.left.push(0);
            tree.right.push(0);
            tree.value.push(Vec::new());
            tree.missing_left.push(false);
            tree.feature.len() - 1
        };
        let hist = self.histogram(idx);
        let sum = total(
            &hist[..if self.bins.features() == 0 {
                1
            } else {
                self.bins.width(0)
            }],
        );
        let root = Leaf {
            node: new_node(&mut tree),
            depth: 0,
            split: self.best_split(&hist, sum, 0),
            rows: 0..idx.len(),
            hist,
            sum,
        };
        let mut open = vec![root];
        let mut done: Vec<Leaf> = Vec::new();
        while open.len() + done.len() < max_leaves {
            // The leaf with the largest gain; the oldest on a tie.
            let Some(i) = open
                .iter()
                .enumerate()
                .filter_map(|(i, l)| l.split.map(|s| (i, s.gain, l.node)))
                .max_by(|a, b| a.1.total_cmp(&b.1).then(b.2.cmp(&a.2)))
                .map(|(i, _, _)| i)
            else {
                break;
            };
            let leaf = open.swap_remove(i);
            let s = leaf.split.expect("chosen for its split");
            gains[s.feature] += s.gain;
            tree.feature[leaf.node] = s.feature as i32;
            let cuts = &self.bins.cuts[s.feature];
            // Past the last cut: every value goes left, only the missing
            // ones right.
            tree.threshold[leaf.node] = cuts.get(s.bin).copied().unwrap_or(f64::INFINITY);
            tree.missing_left[leaf.node] = s.missing_left;
            // Stable partition of the leaf's range: left rows move up in
            // place, right rows wait in `scratch`.
            let col = self.bins.column(s.feature);
            let bin = s.bin as u8;
            let missing_bin = (cuts.len() + 1) as u8;
            let goes_left = |code: u8| {
                if code == missing_bin {
                    s.missing_left
                } else {
                    code <= bin
                }
            };
            let range = leaf.rows.clone();
            scratch.clear();
            let mut w = range.start;
            for i in range.clone() {
                let r = idx[i];
                if goes_left(col[r as usize]) {
                    idx[w] = r;
                    w += 1;
                } else {
                    scratch.push(r);
                }
            }
            idx[w..range.end].copy_from_slice(scratch);
            let (l_range, r_range) = (range.start..w, w..range.end);
            let right_sum = Cell {
                g: leaf.sum.g - s.left.g,
                h: leaf.sum.h - s.left.h,
                n: leaf.sum.n - s.left.n,
            };
            // The smaller child's histogram is built, the other's is the
            // parent's minus it.
            let left_smaller = l_range.len() <= r_range.len();
            let small = if left_smaller {
                &idx[l_range.clone()]
            } else {
                &idx[r_range.clone()]
            };
            let small_hist = self.histogram(small);
            let mut large_hist = leaf.hist;
            for (a, b) in large_hist.iter_mut().zip(&small_hist) {
                a.g -= b.g;
                a.h -= b.h;
                a.n -= b.n;
            }
            let (l_hist, r_hist) = if left_smaller {
                (small_hist, large_hist)
            } else {
                (large_hist, small_hist)
            };
            let depth = leaf.depth + 1;
            let l_node = new_node(&mut tree);
            let r_node = new_node(&mut tree);
            tree.left[leaf.node] = l_node as u32;
            tree.right[leaf.node] = r_node as u32;
            for (node, rows, hist, sum) in [
                (l_node, l_range, l_hist, s.left),
                (r_node, r_range, r_hist, right_sum),
            ] {
                let split = self.best_split(&hist, sum, depth);
                let mut child = Leaf {
                    node,
                    depth,
                    rows,
                    hist,
                    sum,
                    split,
                };
                if child.split.is_some() {
                    open.push(child);
                } else {
                    self.recycle(std::mem::take(&mut child.hist));
                    done.push(child);
                }
            }
        }
        let mut leaves = Vec::with_capacity(open.len() + done.len());
        for mut leaf in open.into_iter().chain(done) {
            self.recycle(std::mem::take(&mut leaf.hist));
            let v = -self.p.learning_rate * leaf.sum.g / (leaf.sum.h + self.p.l2_regularization);
            tree.value[leaf.node] = vec![v];
            leaves.push((leaf.rows, v));
        }
        (tree, leaves)
    }
}

fn total(cells: &[Cell]) -> Cell {
    cells.iter().fold(Cell::default(), |a, c| Cell {
        g: a.g + c.g,
        h: a.h + c.h,
        n: a.n + c.n,
    })
}

/// The loss of raw scores `raw` (rows × K, row-major) against the target,
/// over `rows`: half the mean squared error (regression; scikit-learn's
/// `HalfSquaredError`), or the mean log loss.
fn loss(target: &Target<'_>, raw: &[f64], k: usize, rows: &[usize]) -> f64 {
    let n = rows.len().max(1) as f64;
    match target {
        Target::Values(y) => rows.iter().map(|&r| (raw[r] - y[r]).powi(2)).sum::<f64>() / (2.0 * n),
        Target::Classes { y, .. } if k == 1 => {
            rows.iter()
                .map(|&r| {
                    // log(1 + e^z) − y·z, stable for large |z|.
                    let z = raw[r];
                    let softplus = if z > 0.0 {
                        z + (-z).exp().ln_1p()
                    } else {
                        z.exp().ln_1p()
                    };
                    softplus - if y[r] == 1 { z } else { 0.0 }
                })
                .sum::<f64>()
                / n
        }
        Target::Classes { y, .. } => {
            rows.iter()
                .map(|&r| {
                    let s = &raw[r * k..(r + 1) * k];
                    let m = s.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                    let lse = m + s.iter().map(|v| (v - m).exp()).sum::<f64>().ln();
                    lse - s[y[r]]
                })
                .sum::<f64>()
                / n
        }
    }
}

/// Fits a booster to the rows of `x` (rows × features, finite values or
/// NaN for a missing one).
/// `on_step` sees each iteration's losses as it ends, and returns `false`
/// to stop.
///
/// # Errors
/// [`Stopped`]: the loss diverged, or `on_step` asked to stop.
pub fn fit(
    x: &Array2<f64>,
    target: Target<'_>,
    p: &GbmParams,
    mut on_step: impl FnMut(&Step) -> bool,
) -> Result<Fit, Stopped> {
    let n_all = x.nrows();
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(p.seed);
    // Held-out rows for early stopping: a seeded shuffle's first share.
    let (train_rows, val_rows): (Vec<usize>, Vec<usize>) = if p.early_stopping {
        super::hold_out(n_all, p.validation_fraction, &mut rng)
    } else {
        ((0..n_all).collect(), Vec::new())
    };
    let n = train_rows.len();
    let bins = Bins::new(x, &train_rows, p.max_bins.clamp(2, 255), p.seed);
    // Targets of the training rows, by position.
    let (k, tv, ty): (usize, Vec<f64>, Vec<usize>) = match target {
        Target::Values(v) => (1, train_rows.iter().map(|&r| v[r]).collect(), vec![]),
        Target::Classes { y, k } => (
            if k == 2 { 1 } else { k },
            vec![],
            train_rows.iter().map(|&r| y[r]).collect(),
        ),
    };
    let local = match target {
        Target::Values(_) => Target::Values(&tv),
        Target::Classes { k: kk, .. } => Target::Classes { y: &ty, k: kk },
    };
    let base: Vec<f64> = match target {
        Target::Values(_) => vec![tv.iter().sum::<f64>() / n.max(1) as f64],
        Target::Classes { k: kk, .. } => {
            let mut count = vec![0.0; kk];
            for &c in &ty {
                count[c] += 1.0;
            }
            let prior: Vec<f64> = count
                .iter()
                .map(|c| (c / n as f64).clamp(1e-15, 1.0 - 1e-15))
                .collect();
            if k == 1 {
                vec![(prior[1] / prior[0]).ln()]
            } else {
                let logs: Vec<f64> = prior.iter().map(|p| p.ln()).collect();
                let mean = logs.iter().sum::<f64>() / kk as f64;
                logs.iter().map(|l| l - mean).collect()
            }
        }
    };
    let mut raw: Vec<f64> = (0..n).flat_map(|_| base.iter().copied()).collect();
    let mut val_raw: Vec<f64> = (0..val_rows.len())
        .flat_map(|_| base.iter().copied())
        .collect();
    let val_target: (Vec<f64>, Vec<usize>) = match target {
        Target::Values(v) => (val_rows.iter().map(|&r| v[r]).collect(), vec![]),
        Target::Classes { y, .. } => (vec![], val_rows.iter().map(|&r| y[r]).collect()),
    };
    let val_local = match target {
        Target::Values(_) => Target::Values(&val_target.0),
        Target::Classes { k: kk, .. } => Target::Classes {
            y: &val_target.1,
            k: kk,
        },
    };
    let all_val: Vec<usize> = (0..val_rows.len()).collect();
    let xc = x.as_standard_layout();
    let nf = x.ncols().max(1);
    let xs = xc.as_slice().expect("standard layout");
    let row_of = |r: usize| &xs[r * nf..(r + 1) * nf];

    let mut g = vec![0.0f32; n * k];
    let mut h = vec![0.0f32; n * k];
    // The training loss is measured on at most 10 000 training rows (as
    // scikit-learn's): on every row it cost as much as a tree.
    let small: Vec<usize> = if n > TRAIN_LOSS_ROWS {
        let mut s: Vec<usize> = (0..n).collect();
        let mut r = Xoshiro256PlusPlus::seed_from_u64(p.seed ^ 0x5eed);
        s.shuffle(&mut r);
        s.truncate(TRAIN_LOSS_ROWS);
        s.sort_unstable();
        s
    } else {
        (0..n).collect()
    };
    let const_h = matches!(local, Target::Values(_));
    let start_loss = loss(&local, &raw, k, &small);
    let mut pool: Vec<Vec<Cell>> = Vec::new();
    let mut ordered: (Vec<f32>, Vec<f32>) = (Vec::with_capacity(n), Vec::with_capacity(n));
    let mut idx: Vec<u32> = Vec::with_capacity(n);
    let mut scratch: Vec<u32> = Vec::with_capacity(n);
    let mut gains = vec![0.0; x.ncols()];
    let mut trees = Vec::with_capacity(p.max_iter * k);
    let mut curve: Vec<Step> = Vec::with_capacity(p.max_iter);
    let mut stopped_at = None;
    for iteration in 1..=p.max_iter {
        // Gradients and hessians, column-major by tree column.
        match local {
            Target::Values(y) => {
                for i in 0..n {
                    g[i] = (raw[i] - y[i]) as f32;
                    h[i] = 1.0;
                }
            }
            Target::Classes { y, .. } if k == 1 => {
                // Element-wise, so chunks on every core give the same bits.
                g.par_chunks_mut(GRAIN)
                    .zip(h.par_chunks_mut(GRAIN))
                    .enumerate()
                    .for_each(|(c, (gs, hs))| {
                        let at = c * GRAIN;
                        for (j, (g, h)) in gs.iter_mut().zip(hs).enumerate() {
                            let q = sigmoid(raw[at + j]);
                            *g = (q - if y[at + j] == 1 { 1.0 } else { 0.0 }) as f32;
                            *h = (q * (1.0 - q)) as f32;
                        }
                    });
            }
            Target::Classes { y, .. } => {
                let mut q = vec![0.0; k];
                for i in 0..n {
                    q.copy_from_slice(&raw[i * k..(i + 1) * k]);
                    softmax(&mut q);
                    for c in 0..k {
                        let yc = if y[i] == c { 1.0 } else { 0.0 };
                        g[c * n + i] = (q[c] - yc) as f32;
                        h[c * n + i] = (q[c] * (1.0 - q[c])) as f32;
                    }
                }
            }
        }
        let rows: Vec<u32> = if p.subsample < 1.0 {
            let m = ((n as f64 * p.subsample).round() as usize).max(1);
            let mut s: Vec<u32> = (0..n as u32).collect();
            s.shuffle(&mut rng);
            s.truncate(m);
            s.sort_unstable();
            s
        } else {
            (0..n as u32).collect()
        };
        for c in 0..k {
            let grow = Grow {
                bins: &bins,
                g: &g[c * n..(c + 1) * n],
                h: &h[c * n..(c + 1) * n],
                const_h,
                p,
                pool: std::sync::Mutex::new(std::mem::take(&mut pool)),
                ordered: std::sync::Mutex::new(std::mem::take(&mut ordered)),
            };
            idx.clear();
            idx.extend_from_slice(&rows);
            let (tree, leaves) = grow.tree(&mut idx, &mut scratch, &mut gains);
            pool = grow.pool.into_inner().expect("not poisoned");
            ordered = grow.ordered.into_inner().expect("not poisoned");
            // A leaf whose hessians all underflowed (a learning rate so
            // large that every probability is 0 or 1) has no finite value.
            if tree.value.iter().flatten().any(|v| !v.is_finite()) {
                return Err(Stopped::Diverged { iteration });
            }
            if rows.len() == n {
                for (members, v) in leaves {
                    for &r in &idx[members] {
                        raw[r as usize * k + c] += v;
                    }
                }
            } else {
                for (i, &r) in train_rows.iter().enumerate() {
                    raw[i * k + c] += tree.leaf_of(row_of(r))[0];
                }
            }
            for (i, &r) in val_rows.iter().enumerate() {
                val_raw[i * k + c] += tree.leaf_of(row_of(r))[0];
            }
            trees.push(tree);
        }
        let step = Step {
            iteration,
            train: loss(&local, &raw, k, &small),
            validation: (!val_rows.is_empty()).then(|| loss(&val_local, &val_raw, k, &all_val)),
        };
        let diverged = !step.train.is_finite()
            || step.validation.is_some_and(|v| !v.is_finite())
            || (start_loss > 0.0 && step.train > 10.0 * start_loss);
        if diverged {
            return Err(Stopped::Diverged { iteration });
        }
        let go_on = on_step(&step);
        curve.push(step);
        if !go_on {
            return Err(Stopped::Interrupted);
        }
        // scikit-learn's rule: stop when none of the last
        // `n_iter_no_change` losses beat the one before them by `tol`.
        if p.early_stopping && curve.len() > p.n_iter_no_change {
            let reference = curve[curve.len() - 1 - p.n_iter_no_change]
                .validation
                .unwrap_or(f64::INFINITY);
            let improved = curve[curve.len() - p.n_iter_no_change..]
                .iter()
                .any(|s| s.validation.unwrap_or(f64::INFINITY) < reference - p.tol);
            if !improved {
                stopped_at = Some(iteration);
                break;
            }
        }
    }
    super::cart::normalize(&mut gains);
    Ok(Fit {
        booster: Booster { base, trees },
        importances: gains,
        curve,
        stopped_at,
    })
}

/// Seeded random values for tests and benchmarks.
#[cfg(test)]
fn uniform(rng: &mut Xoshiro256PlusPlus) -> f64 {
    use rand::Rng;
    rng.gen_range(-1.0..1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params() -> GbmParams {
        GbmParams {
            learning_rate: 0.1,
            max_iter: 100,
            max_leaf_nodes: Some(31),
            max_depth: None,
            min_samples_leaf: 20,
            l2_regularization: 0.0,
            max_bins: 255,
            subsample: 1.0,
            early_stopping: false,
            validation_fraction: 0.1,
            n_iter_no_change: 10,
            tol: 1e-7,
            seed: 0,
        }
    }

    fn friedman(n: usize, seed: u64) -> (Array2<f64>, Vec<f64>) {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
        let mut x = Array2::zeros((n, 4));
        let mut y = vec![0.0; n];
        for i in 0..n {
            for f in 0..4 {
                x[[i, f]] = uniform(&mut rng);
            }
            y[i] = (3.0 * x[[i, 0]] * x[[i, 1]]).sin() * 2.0 + x[[i, 2]].powi(2) * 3.0;
        }
        (x, y)
    }

    fn mse(b: &Booster, x: &Array2<f64>, y: &[f64]) -> f64 {
        let raw = b.raw_matrix(x);
        raw.iter()
            .zip(y)
            .map(|(r, y)| (r[0] - y).powi(2))
            .sum::<f64>()
            / y.len() as f64
    }

    #[test]
    fn cut_points_split_distinct_values_and_quantiles() {
        assert_eq!(cut_points(&[1.0, 1.0, 2.0, 4.0], 255), vec![1.5, 3.0]);
        let v: Vec<f64> = (0..1000).map(f64::from).collect();
        let c = cut_points(&v, 4);
        assert_eq!(c.len(), 3);
        assert!(c[0] > 200.0 && c[0] < 300.0, "{c:?}");
        assert!(cut_points(&[7.0; 10], 255).is_empty());
    }

    #[test]
    fn boosting_fits_a_non_linear_function_and_learns_the_features_that_matter() {
        let (x, y) = friedman(2000, 1);
        let (xt, yt) = friedman(500, 2);
        let fit = fit(&x, Target::Values(&y), &params(), |_| true).unwrap();
        let var = {
            let m = yt.iter().sum::<f64>() / yt.len() as f64;
            yt.iter().map(|v| (v - m).powi(2)).sum::<f64>() / yt.len() as f64
        };
        let err = mse(&fit.booster, &xt, &yt);
        assert!(err < 0.05 * var, "test mse {err} vs variance {var}");
        // Feature 3 is noise.
        assert!(fit.importances[3] < 0.02, "{:?}", fit.importances);
        assert!(fit.curve.last().unwrap().train < fit.curve[0].train);
    }

    #[test]
    fn the_same_seed_gives_the_same_trees_and_subsampling_changes_them() {
        let (x, y) = friedman(600, 3);
        let p = GbmParams {
            subsample: 0.5,
            max_iter: 20,
            ..params()
        };
        let a = fit(&x, Target::Values(&y), &p, |_| true).unwrap().booster;
        let b = fit(&x, Target::Values(&y), &p, |_| true).unwrap().booster;
        assert_eq!(a, b);
        let c = fit(&x, Target::Values(&y), &GbmParams { seed: 9, ..p }, |_| {
            true
        })
        .unwrap()
        .booster;
        assert_ne!(a, c);
    }

    #[test]
    fn early_stopping_ends_when_the_held_out_loss_stalls() {
        let (x, y) = friedman(1000, 4);
        let p = GbmParams {
            early_stopping: true,
            max_iter: 2000,
            learning_rate: 0.5,
            ..params()
        };
        let f = fit(&x, Target::Values(&y), &p, |_| true).unwrap();
        let at = f.stopped_at.expect("stops before 2000 iterations");
        assert!(at < 2000);
        assert_eq!(f.booster.trees.len(), at);
        assert!(f.curve.iter().all(|s| s.validation.is_some()));
    }

    #[test]
    fn depth_and_leaf_limits_hold() {
        let (x, y) = friedman(1000, 5);
        let p = GbmParams {
            max_depth: Some(2),
            max_leaf_nodes: None,
            max_iter: 3,
            ..params()
        };
        let f = fit(&x, Target::Values(&y), &p, |_| true).unwrap();
        assert!(f.booster.trees.iter().all(|t| t.leaves() <= 4));
        let p = GbmParams {
            max_leaf_nodes: Some(5),
            max_iter: 3,
            ..params()
        };
        let f = fit(&x, Target::Values(&y), &p, |_| true).unwrap();
        assert!(f.booster.trees.iter().all(|t| t.leaves() == 5));
    }

    /// XOR-like classes: binary (one tree per iteration) and three classes
    /// (one per class).
    #[test]
    fn classes_are_learned_binary_and_multiclass() {
        let (x, _) = friedman(2000, 6);
        let bin: Vec<usize> = (0..2000)
            .map(|i| usize::from((x[[i, 0]] > 0.0) != (x[[i, 1]] > 0.0)))
            .collect();
        let f = fit(&x, Target::Classes { y: &bin, k: 2 }, &params(), |_| true).unwrap();
        assert_eq!(f.booster.columns(), 1);
        let right = (0..2000)
            .filter(|&i| {
                usize::from(sigmoid(f.booster.raw(x.row(i).as_slice().unwrap())[0]) > 0.5) == bin[i]
            })
            .count();
        assert!(right > 1950, "{right} of 2000");
        let three: Vec<usize> = (0..2000)
            .map(|i| {
                if x[[i, 0]] < -0.3 {
                    0
                } else if x[[i, 1]] < 0.2 {
                    1
                } else {
                    2
                }
            })
            .collect();
        let f = fit(&x, Target::Classes { y: &three, k: 3 }, &params(), |_| true).unwrap();
        assert_eq!(f.booster.columns(), 3);
        assert_eq!(f.booster.trees.len(), 300);
        let right = (0..2000)
            .filter(|&i| {
                let r = f.booster.raw(x.row(i).as_slice().unwrap());
                crate::model::argmax(&r) == three[i]
            })
            .count();
        assert!(right > 1950, "{right} of 2000");
    }

    /// Boosting beats one tree of the same depth on a smooth function.
    #[test]
    fn boosting_beats_a_single_tree() {
        use super::super::cart::{Criterion, Labels, TreeParams};
        let (x, y) = friedman(2000, 7);
        let (xt, yt) = friedman(1000, 8);
        let tree = Tree::fit(
            &x,
            Labels::Values(&y),
            (0..2000).collect(),
            &TreeParams {
                max_depth: Some(6),
                min_samples_split: 2,
                min_samples_leaf: 1,
                criterion: Criterion::SquaredError,
                max_features: None,
                seed: 0,
            },
        );
        let tree_mse = (0..1000)
            .map(|i| (tree.leaf(xt.row(i))[0] - yt[i]).powi(2))
            .sum::<f64>()
            / 1000.0;
        let f = fit(&x, Target::Values(&y), &params(), |_| true).unwrap();
        let boost_mse = mse(&f.booster, &xt, &yt);
        assert!(
            boost_mse < tree_mse / 2.0,
            "boosting {boost_mse} vs tree {tree_mse}"
        );
    }

    /// A learning rate that overshoots every Newton step makes the loss
    /// grow without bound: refused, not shipped as a model of nonsense.
    #[test]
    fn an_overshooting_learning_rate_is_reported_as_divergence() {
        let (x, y) = friedman(500, 9);
        let p = GbmParams {
            learning_rate: 3.0,
            min_samples_leaf: 5,
            ..params()
        };
        assert!(matches!(
            fit(&x, Target::Values(&y), &p, |_| true),
            Err(Stopped::Diverged { .. })
        ));
        // A periodic label of a row index: leaves overfit, and at this rate
        // every probability saturates to 0 or 1.
        let xi = Array2::from_shape_fn((60, 1), |(i, _)| i as f64);
        let bin: Vec<usize> = (0..60).map(|i| usize::from((i * 7) % 5 < 2)).collect();
        let p = GbmParams {
            learning_rate: 10.0,
            ..params()
        };
        assert!(matches!(
            fit(&xi, Target::Classes { y: &bin, k: 2 }, &p, |_| true),
            Err(Stopped::Diverged { .. })
        ));
        let stop = fit(&x, Target::Values(&y), &params(), |s| s.iteration < 3);
        assert!(matches!(stop, Err(Stopped::Interrupted)));
    }
    /// One feature, `x` in −1..1 and a quarter of it missing: the target is
    /// `x` where it is present and `missing` where not.
    fn with_missing(n: usize, missing: f64) -> (Array2<f64>, Vec<f64>) {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(7);
        let mut x = Array2::zeros((n, 1));
        let mut y = vec![0.0; n];
        for i in 0..n {
            if i % 4 == 0 {
                x[[i, 0]] = f64::NAN;
                y[i] = missing;
            } else {
                x[[i, 0]] = uniform(&mut rng);
                y[i] = x[[i, 0]];
            }
        }
        (x, y)
    }

    /// scikit-learn's rule: missing values get their own branch when they
    /// carry signal, on either side of the values they sit beside.
    #[test]
    fn missing_values_are_learned_as_their_own_branch() {
        for missing in [5.0, -5.0, 0.3] {
            let (x, y) = with_missing(2000, missing);
            let fit = fit(&x, Target::Values(&y), &params(), |_| true).unwrap();
            let b = &fit.booster;
            let at = |v: f64| b.raw(&[v])[0];
            assert!(
                (at(f64::NAN) - missing).abs() < 0.1,
                "{missing}: {}",
                at(f64::NAN)
            );
            assert!((at(-0.5) + 0.5).abs() < 0.1, "{}", at(-0.5));
            assert!((at(0.5) - 0.5).abs() < 0.1, "{}", at(0.5));
            assert!(mse(b, &x, &y) < 0.01);
        }
    }

    /// A split can part the missing values from every present one: its
    /// threshold is +∞, which JSON cannot hold, and the model still reads
    /// back the same.
    #[test]
    fn a_split_of_the_missing_values_from_all_others_survives_json() {
        let n = 200;
        let x = Array2::from_shape_fn((n, 1), |(i, _)| if i % 2 == 0 { f64::NAN } else { 1.0 });
        let y: Vec<f64> = (0..n).map(|i| if i % 2 == 0 { 1.0 } else { 0.0 }).collect();
        let fit = fit(&x, Target::Values(&y), &params(), |_| true).unwrap();
        let b = fit.booster;
        assert_eq!(b.trees[0].threshold[0], f64::INFINITY);
        let json = serde_json::to_string(&b).unwrap();
        assert!(json.contains("null"), "{json}");
        let back: Booster = serde_json::from_str(&json).unwrap();
        assert_eq!(back, b);
        assert!((back.raw(&[f64::NAN])[0] - 1.0).abs() < 1e-3);
        assert!(back.raw(&[1.0])[0].abs() < 1e-3);
        assert!(back.raw(&[1e300])[0].abs() < 1e-3);
    }

    /// A missing value never seen in training goes to the child with more
    /// rows (scikit-learn's rule): 80 % of the rows sit below the step.
    #[test]
    fn an_unseen_missing_value_follows_the_larger_child() {
        let n = 1000;
        let x = Array2::from_shape_fn((n, 1), |(i, _)| i as f64 / n as f64);
        let y: Vec<f64> = (0..n).map(|i| if i < 800 { 0.0 } else { 10.0 }).collect();
        let b = fit(&x, Target::Values(&y), &params(), |_| true)
            .unwrap()
            .booster;
        assert!(
            (b.raw(&[f64::NAN])[0] - 0.0).abs() < 0.5,
            "{}",
            b.raw(&[f64::NAN])[0]
        );
        let y: Vec<f64> = (0..n).map(|i| if i < 200 { 0.0 } else { 10.0 }).collect();
        let b = fit(&x, Target::Values(&y), &params(), |_| true)
            .unwrap()
            .booster;
        assert!(
            (b.raw(&[f64::NAN])[0] - 10.0).abs() < 0.5,
            "{}",
            b.raw(&[f64::NAN])[0]
        );
    }

    /// Classes too: a missing value that marks the positive class, and
    /// a column that is missing everywhere (no cut points) is harmless.
    #[test]
    fn missing_values_mark_a_class_and_an_all_missing_column_is_ignored() {
        let n = 1200;
        let mut x = Array2::zeros((n, 2));
        let mut y = vec![0usize; n];
        for i in 0..n {
            x[[i, 1]] = f64::NAN;
            if i % 3 == 0 {
                x[[i, 0]] = f64::NAN;
                y[i] = 1;
            } else {
                x[[i, 0]] = i as f64;
                y[i] = usize::from(i % 3 == 1 && i > n / 2);
            }
        }
        let fit = fit(&x, Target::Classes { y: &y, k: 2 }, &params(), |_| true).unwrap();
        let p = |v: f64| sigmoid(fit.booster.raw(&[v, f64::NAN])[0]);
        assert!(p(f64::NAN) > 0.95, "{}", p(f64::NAN));
        assert!(p(10.0) < 0.05, "{}", p(10.0));
        assert_eq!(fit.importances[1], 0.0);
    }
}
