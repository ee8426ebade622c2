//! Classification and regression trees (CART; Breiman et al., 1984) and
//! random forests (Breiman, 2001), used by the `train.decision_tree` and
//! `train.random_forest` stages; the splitting rules are scikit-learn's
//! (`sklearn.tree._splitter.BestSplitter`).
//!
//! linfa-trees 0.8.1 is not reproducible: it sums impurities over a
//! `HashMap` in random order and breaks ties by that order, so the same
//! data gives different trees run to run, which breaks byte-identical
//! artifacts and cache keys. This implementation counts classes in arrays,
//! sorts with the row index as a tie-break, and keeps the first best split,
//! so the same data and seed always give the same tree.
//!
//! A tree is stored as parallel arrays, like scikit-learn's `tree_`:
//! node `i` splits on `feature[i]` at `threshold[i]` (`x < threshold` goes
//! `left`), or is a leaf (`feature[i] == -1`) with class probabilities
//! `value[i]` (a classification tree) or the mean target `value[i][0]` (a
//! regression tree).
//!
//! Feature importances are scikit-learn's mean decrease in impurity: each
//! split adds `n·impurity(node) − n_left·impurity(left) −
//! n_right·impurity(right)` to its feature, and a tree's totals are scaled
//! to sum to 1.

use ndarray::{Array2, ArrayView1};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// A fitted tree.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Tree {
    pub feature: Vec<i32>,
    /// `x < threshold` goes left. `+∞` (a split of every value from the
    /// missing ones) is written as `null`: JSON has no infinity.
    #[serde(with = "thresholds")]
    pub threshold: Vec<f64>,
    pub left: Vec<u32>,
    pub right: Vec<u32>,
    /// Class probabilities (classification) or `[mean]` (regression) at
    /// leaves; empty at inner nodes.
    pub value: Vec<Vec<f64>>,
    /// Per node, whether a missing value (NaN) goes left; empty when the
    /// tree was grown without missing values (CART), and then a missing
    /// value goes right, as `NaN < threshold` is false. Only boosting
    /// trees learn it (scikit-learn's `missing_go_to_left`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub missing_left: Vec<bool>,
}

/// `threshold` in JSON: numbers, and `null` for `+∞`.
mod thresholds {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer>(v: &[f64], s: S) -> Result<S::Ok, S::Error> {
        let as_json: Vec<Option<f64>> = v
            .iter()
            .map(|t| (*t != f64::INFINITY).then_some(*t))
            .collect();
        as_json.serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<f64>, D::Error> {
        let v: Vec<Option<f64>> = Vec::deserialize(d)?;
        Ok(v.into_iter().map(|t| t.unwrap_or(f64::INFINITY)).collect())
    }
}

/// What a tree is fitted to.
#[derive(Debug, Clone, Copy)]
pub enum Labels<'a> {
    /// Class ids in `0..k`, one per row.
    Classes { y: &'a [usize], k: usize },
    /// Numeric targets, one per row.
    Values(&'a [f64]),
}

/// Split quality.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Criterion {
    Gini,
    Entropy,
    /// Variance reduction (regression).
    SquaredError,
}

/// Tree-growing settings.
#[derive(Debug, Clone)]
pub struct TreeParams {
    pub max_depth: Option<usize>,
    pub min_samples_split: usize,
    pub min_samples_leaf: usize,
    pub criterion: Criterion,
    /// Features tried at each split (None = all).
    pub max_features: Option<usize>,
    pub seed: u64,
}

impl Tree {
    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.feature.len()
    }

    pub fn is_empty(&self) -> bool {
        self.feature.is_empty()
    }

    /// Number of leaves.
    pub fn leaves(&self) -> usize {
        self.feature.iter().filter(|f| **f < 0).count()
    }

    /// Class probabilities for one row.
    pub fn proba(&self, x: ArrayView1<f64>) -> Vec<f64> {
        self.leaf(x).to_vec()
    }

    /// The class probabilities of the leaf `x` falls in, borrowed (a
    /// forest sums them without a copy per tree and row).
    pub fn leaf(&self, x: ArrayView1<f64>) -> &[f64] {
        match x.as_slice() {
            Some(row) => self.leaf_of(row),
            None => self.leaf_of(&x.to_vec()),
        }
    }

    /// [`Tree::leaf`] for a row as a slice (`features` long).
    pub fn leaf_of(&self, x: &[f64]) -> &[f64] {
        let mut i = 0;
        while self.feature[i] >= 0 {
            let v = x[self.feature[i] as usize];
            let left = if v.is_nan() {
                self.missing_left.get(i).copied().unwrap_or(false)
            } else {
                v < self.threshold[i]
            };
            i = if left { self.left[i] } else { self.right[i] } as usize;
        }
        &self.value[i]
    }

    /// Grows a tree on the rows `rows` of `x` (rows × features) for
    /// `labels`.
    pub fn fit(x: &Array2<f64>, labels: Labels<'_>, rows: Vec<usize>, p: &TreeParams) -> Tree {
        Tree::fit_with_importances(x, labels, rows, p).0
    }

    /// [`Tree::fit`], and the tree's feature importances (mean decrease in
    /// impurity, summing to 1; all zero for a single leaf).
    pub fn fit_with_importances(
        x: &Array2<f64>,
        labels: Labels<'_>,
        rows: Vec<usize>,
        p: &TreeParams,
    ) -> (Tree, Vec<f64>) {
        let (y, k, v) = match labels {
            Labels::Classes { y, k } => (y, k, &[][..]),
            Labels::Values(v) => (&[][..], 0, v),
        };
        let mut b = Builder {
            x,
            y,
            v,
            k,
            p,
            tree: Tree::default(),
            rng: Xoshiro256PlusPlus::seed_from_u64(p.seed),
            features: (0..x.ncols()).collect(),
            importance: vec![0.0; x.ncols()],
        };
        b.grow(rows, 0);
        let mut imp = b.importance;
        normalize(&mut imp);
        (b.tree, imp)
    }
}

/// Scales `v` to sum to 1 (left alone when it sums to 0).
pub fn normalize(v: &mut [f64]) {
    let total: f64 = v.iter().sum();
    if total > 0.0 {
        v.iter_mut().for_each(|x| *x /= total);
    }
}

struct Builder<'a> {
    x: &'a Array2<f64>,
    /// Class ids (classification; empty for regression).
    y: &'a [usize],
    /// Targets (regression; empty for classification).
    v: &'a [f64],
    /// Number of classes (0 for regression).
    k: usize,
    p: &'a TreeParams,
    tree: Tree,
    rng: Xoshiro256PlusPlus,
    features: Vec<usize>,
    /// Impurity decrease per feature, unscaled.
    importance: Vec<f64>,
}

/// A node's target statistics: class counts, or (sum, sum of squares) of
/// the targets.
#[derive(Clone)]
enum Stats {
    Counts(Vec<f64>),
    Moments { sum: f64, sq: f64 },
}

impl Builder<'_> {
    fn impurity(&self, counts: &[f64], n: f64) -> f64 {
        match self.p.criterion {
            Criterion::Gini => 1.0 - counts.iter().map(|c| (c / n) * (c / n)).sum::<f64>(),
            Criterion::Entropy => -counts
                .iter()
                .filter(|c| **c > 0.0)
                .map(|c| (c / n) * (c / n).log2())
                .sum::<f64>(),
            // Regression nodes are scored by `node_impurity`.
            Criterion::SquaredError => 0.0,
        }
    }

    /// `n · impurity` of a node with `stats`.
    fn weighted_impurity(&self, stats: &Stats, n: f64) -> f64 {
        match stats {
            Stats::Counts(c) => n * self.impurity(c, n),
            Stats::Moments { sum, sq } => (sq - sum * sum / n).max(0.0),
        }
    }

    fn push_leaf(&mut self, stats: &Stats, n: f64) -> u32 {
        let id = self.tree.feature.len() as u32;
        self.tree.feature.push(-1);
        self.tree.threshold.push(0.0);
        self.tree.left.push(0);
        self.tree.right.push(0);
        self.tree.value.push(match stats {
            Stats::Counts(c) => c.iter().map(|c| c / n).collect(),
            Stats::Moments { sum, .. } => vec![sum / n],
        });
        id
    }

    fn grow(&mut self, rows: Vec<usize>, depth: usize) -> u32 {
        let n = rows.len() as f64;
        let (stats, pure) = if self.k > 0 {
            let mut counts = vec![0.0; self.k];
            for &r in &rows {
                counts[self.y[r]] += 1.0;
            }
            let pure = counts.iter().filter(|c| **c > 0.0).count() <= 1;
            (Stats::Counts(counts), pure)
        } else {
            let (mut sum, mut sq) = (0.0, 0.0);
            for &r in &rows {
                sum += self.v[r];
                sq += self.v[r] * self.v[r];
            }
            let first = rows.first().map(|&r| self.v[r]);
            let pure = rows.iter().all(|&r| Some(self.v[r]) == first);
            (Stats::Moments { sum, sq }, pure)
        };
        if pure
            || rows.len() < self.p.min_samples_split
            || rows.len() < 2 * self.p.min_samples_leaf
            || self.p.max_depth.is_some_and(|d| depth >= d)
        {
            return self.push_leaf(&stats, n);
        }
        // Candidate features: with `max_features`, a seeded shuffle; the
        // first `max_features` are searched, and, as in scikit-learn, the
        // search goes on through the rest, one at a time, only while no
        // valid split has been found.
        let (first, rest): (Vec<usize>, Vec<usize>) = match self.p.max_features {
            Some(m) if m < self.features.len() => {
                let mut f = self.features.clone();
                f.shuffle(&mut self.rng);
                let rest = f.split_off(m.max(1));
                f.sort_unstable();
                (f, rest)
            }
            _ => (self.features.clone(), Vec::new()),
        };
        let mut best: Option<(f64, usize, f64)> = None; // (score, feature, threshold)
        let mut order = rows.clone();
        for &f in &first {
            self.best_split(f, &stats, &mut order, &mut best);
        }
        for &f in &rest {
            if best.is_some() {
                break;
            }
            self.best_split(f, &stats, &mut order, &mut best);
        }
        // A valid split is taken even when it does not lower the impurity
        // (scikit-learn's `min_impurity_decrease = 0`): a balanced XOR
        // gains nothing at its first split and everything at the second.
        let Some((score, f, t)) = best else {
            return self.push_leaf(&stats, n);
        };
        // `score · n` is the children's weighted impurity (classification);
        // for regression it is `−(Σ_l²/n_l + Σ_r²/n_r)`, and
        // `Σ(y²) − Σ²/n − (Σ(y²) + score)` is the decrease.
        self.importance[f] += match &stats {
            Stats::Counts(_) => self.weighted_impurity(&stats, n) - score * n,
            Stats::Moments { sum, .. } => -sum * sum / n - score,
        }
        .max(0.0);
        let id = self.tree.feature.len();
        self.tree.feature.push(f as i32);
        self.tree.threshold.push(t);
        self.tree.left.push(0);
        self.tree.right.push(0);
        self.tree.value.push(Vec::new());
        let (l, r): (Vec<usize>, Vec<usize>) = rows.into_iter().partition(|&r| self.x[[r, f]] < t);
        let li = self.grow(l, depth + 1);
        let ri = self.grow(r, depth + 1);
        self.tree.left[id] = li;
        self.tree.right[id] = ri;
        id as u32
    }
}

impl Builder<'_> {
    /// Updates `best` with the best split on feature `f` of the rows in
    /// `order` (target statistics `stats`): the first lowest weighted child
    /// impurity, between two distinct values, leaving at least
    /// `min_samples_leaf` rows on each side.
    fn best_split(
        &self,
        f: usize,
        stats: &Stats,
        order: &mut [usize],
        best: &mut Option<(f64, usize, f64)>,
    ) {
        let n = order.len() as f64;
        let min_leaf = self.p.min_samples_leaf.max(1);
        // Sort (value, row) pairs held together: comparing through row
        // indices read the matrix column-wise at random (half the forest's
        // fit time). Ties go by row, so the order is the same as before.
        let mut keyed: Vec<(f64, usize)> = order.iter().map(|&r| (self.x[[r, f]], r)).collect();
        keyed.sort_unstable_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        for (o, &(_, r)) in order.iter_mut().zip(&keyed) {
            *o = r;
        }
        let mut left = vec![0.0; self.k];
        let (mut right, total) = match stats {
            Stats::Counts(c) => (c.clone(), 0.0),
            Stats::Moments { sum, .. } => (Vec::new(), *sum),
        };
        let mut sum_left = 0.0;
        for i in 0..keyed.len() - 1 {
            let r = keyed[i].1;
            if self.k > 0 {
                left[self.y[r]] += 1.0;
                right[self.y[r]] -= 1.0;
            } else {
                sum_left += self.v[r];
            }
            let (a, b) = (keyed[i].0, keyed[i + 1].0);
            if a == b || i + 1 < min_leaf || order.len() - i - 1 < min_leaf {
                continue;
            }
            let nl = (i + 1) as f64;
            let nr = n - nl;
            let score = if self.k > 0 {
                (nl * self.impurity(&left, nl) + nr * self.impurity(&right, nr)) / n
            } else {
                // scikit-learn's proxy for the children's squared error:
                // minimising it maximises the variance reduction.
                let sum_right = total - sum_left;
                -(sum_left * sum_left / nl + sum_right * sum_right / nr)
            };
            if best.is_none_or(|(s, _, _)| score < s - 1e-12) {
                let mut t = a / 2.0 + b / 2.0;
                if t <= a {
                    t = b;
                }
                *best = Some((score, f, t));
            }
        }
    }
}

/// Grows `n_trees` trees on bootstrap samples, in parallel; tree `i` uses
/// seed `seed + i`, so the forest does not depend on the thread count.
/// Returns the trees and the forest's feature importances (the mean of the
/// trees', as scikit-learn's `feature_importances_`); `None` when `stop`
/// said so before every tree was grown (the run was interrupted).
pub fn fit_forest(
    x: &Array2<f64>,
    labels: Labels<'_>,
    n_trees: usize,
    bootstrap: bool,
    p: &TreeParams,
    stop: &(dyn Fn() -> bool + Sync),
) -> Option<(Vec<Tree>, Vec<f64>)> {
    let n = x.nrows();
    let fitted: Vec<(Tree, Vec<f64>)> = (0..n_trees)
        .into_par_iter()
        .map(|i| {
            if stop() {
                return None;
            }
            let seed = p.seed.wrapping_add(i as u64);
            let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed ^ 0x9e37_79b9_7f4a_7c15);
            let rows: Vec<usize> = if bootstrap {
                (0..n).map(|_| rng.gen_range(0..n)).collect()
            } else {
                (0..n).collect()
            };
            let tp = TreeParams { seed, ..p.clone() };
            Some(Tree::fit_with_importances(x, labels, rows, &tp))
        })
        .collect::<Option<_>>()?;
    let mut importance = vec![0.0; x.ncols()];
    for (_, imp) in &fitted {
        for (a, b) in importance.iter_mut().zip(imp) {
            *a += b;
        }
    }
    normalize(&mut importance);
    Some((fitted.into_iter().map(|(t, _)| t).collect(), importance))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data() -> (Array2<f64>, Vec<usize>) {
        let mut x = Array2::zeros((200, 2));
        let mut y = vec![0; 200];
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(1);
        for i in 0..200 {
            let a: f64 = rng.gen_range(-1.0..1.0);
            let b: f64 = rng.gen_range(-1.0..1.0);
            x[[i, 0]] = a;
            x[[i, 1]] = b;
            y[i] = usize::from(a + b > 0.0) + usize::from(a > 0.5);
        }
        (x, y)
    }

    fn cls(y: &[usize], k: usize) -> Labels<'_> {
        Labels::Classes { y, k }
    }

    fn params() -> TreeParams {
        TreeParams {
            max_depth: None,
            min_samples_split: 2,
            min_samples_leaf: 1,
            criterion: Criterion::Gini,
            max_features: None,
            seed: 0,
        }
    }

    #[test]
    fn a_full_tree_fits_its_training_data_and_is_reproducible() {
        let (x, y) = data();
        let t = Tree::fit(&x, cls(&y, 3), (0..200).collect(), &params());
        for (i, want) in y.iter().enumerate() {
            let p = t.proba(x.row(i));
            assert_eq!(crate::model::argmax(&p), *want);
        }
        let again = Tree::fit(&x, cls(&y, 3), (0..200).collect(), &params());
        assert_eq!(t, again);
    }

    /// A balanced XOR: no first split lowers the impurity. The tree was a
    /// single leaf at 50 %; scikit-learn (and now this tree) splits anyway
    /// and fits it exactly.
    #[test]
    fn a_split_that_gains_nothing_is_still_taken() {
        let x = ndarray::array![[0.0, 0.0], [1.0, 1.0], [0.0, 1.0], [1.0, 0.0]];
        let y = [0, 0, 1, 1];
        let t = Tree::fit(&x, cls(&y, 2), (0..4).collect(), &params());
        for (i, want) in y.iter().enumerate() {
            assert_eq!(crate::model::argmax(&t.proba(x.row(i))), *want, "{t:?}");
        }
        assert_eq!(t.leaves(), 4);
    }

    /// With `max_features`, a node whose sampled features are all constant
    /// searches on through the others (as scikit-learn does) instead of
    /// becoming a leaf.
    #[test]
    fn sampled_features_without_a_split_do_not_stop_the_search() {
        // Feature 0 is constant; only feature 1 separates the classes.
        let x = ndarray::array![[1.0, 0.0], [1.0, 1.0], [1.0, 2.0], [1.0, 3.0]];
        let y = [0, 0, 1, 1];
        for seed in 0..8 {
            let p = TreeParams {
                max_features: Some(1),
                seed,
                ..params()
            };
            let t = Tree::fit(&x, cls(&y, 2), (0..4).collect(), &p);
            assert_eq!(t.leaves(), 2, "seed {seed}: {t:?}");
        }
    }

    #[test]
    fn depth_limit_is_respected() {
        let (x, y) = data();
        let p = TreeParams {
            max_depth: Some(1),
            ..params()
        };
        let t = Tree::fit(&x, cls(&y, 3), (0..200).collect(), &p);
        assert_eq!(t.len(), 3);
        assert_eq!(t.leaves(), 2);
    }

    #[test]
    fn forests_are_seeded() {
        let (x, y) = data();
        let p = TreeParams {
            max_features: Some(1),
            ..params()
        };
        let a = fit_forest(&x, cls(&y, 3), 8, true, &p, &|| false)
            .unwrap()
            .0;
        let b = fit_forest(&x, cls(&y, 3), 8, true, &p, &|| false)
            .unwrap()
            .0;
        assert_eq!(a, b);
        let c = fit_forest(
            &x,
            cls(&y, 3),
            8,
            true,
            &TreeParams { seed: 5, ..p },
            &|| false,
        )
        .unwrap()
        .0;
        assert_ne!(a, c);
    }

    /// A regression tree fits a step function exactly, predicts leaf
    /// means, and puts all the importance on the one feature that matters.
    #[test]
    fn a_regression_tree_fits_a_step_function() {
        let (x, _) = data();
        let y: Vec<f64> = (0..200)
            .map(|i| if x[[i, 0]] < 0.25 { 1.0 } else { 5.0 })
            .collect();
        let p = TreeParams {
            criterion: Criterion::SquaredError,
            ..params()
        };
        let (t, imp) = Tree::fit_with_importances(&x, Labels::Values(&y), (0..200).collect(), &p);
        assert_eq!(t.leaves(), 2, "{t:?}");
        for (i, want) in y.iter().enumerate() {
            assert_eq!(t.leaf(x.row(i)), &[*want]);
        }
        assert_eq!(imp, vec![1.0, 0.0]);
    }

    /// Importances follow the features that carry the signal, and sum to 1.
    #[test]
    fn importances_rank_the_informative_feature_first() {
        let (x, y) = data();
        let p = TreeParams {
            max_depth: Some(4),
            ..params()
        };
        let (_, imp) = Tree::fit_with_importances(&x, cls(&y, 3), (0..200).collect(), &p);
        assert!((imp.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        // y depends on a + b and on a alone: feature 0 matters more.
        assert!(imp[0] > imp[1], "{imp:?}");
        let v: Vec<f64> = (0..200).map(|i| 3.0 * x[[i, 1]]).collect();
        let (trees, imp) = fit_forest(
            &x,
            Labels::Values(&v),
            4,
            true,
            &TreeParams {
                criterion: Criterion::SquaredError,
                ..p
            },
            &|| false,
        )
        .unwrap();
        assert_eq!(trees.len(), 4);
        assert!(imp[1] > 0.9, "{imp:?}");
    }
}
