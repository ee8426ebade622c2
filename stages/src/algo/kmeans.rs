//! k-means clustering: Lloyd's algorithm from greedy k-means++ seeds.
//!
//! Sources: S. Lloyd, "Least squares quantization in PCM" (1982); D. Arthur
//! and S. Vassilvitskii, "k-means++: the advantages of careful seeding"
//! (SODA 2007), with the greedy local trials (`2 + ln k` candidates per
//! centre) of scikit-learn's `_kmeans_plusplus`; the stopping rule and the
//! tolerance relative to the data's variance are scikit-learn's `KMeans`
//! (`lloyd`). Distances are taken as `‖x‖² − 2·x·c + ‖c‖²`, the `x·c`
//! products as one matrix product per block of rows, as scikit-learn does:
//! comparing each row with each centre one pair at a time (linfa-clustering)
//! was 2× scikit-learn's time on the same data.

use ndarray::{s, Array1, Array2, ArrayView2, Axis};
use rand::Rng;
use rayon::prelude::*;

/// Rows per block of the assignment step.
const BLOCK: usize = 4096;

/// A fitted k-means model.
#[derive(Debug, Clone, PartialEq)]
pub struct KMeansFit {
    /// `k × features` centres.
    pub centroids: Array2<f64>,
    /// The sum over the rows of the squared distance to their centre.
    pub inertia: f64,
    /// Lloyd iterations of the winning run.
    pub iterations: usize,
}

/// The parameters of [`fit`].
#[derive(Debug, Clone, Copy)]
pub struct KMeansParams {
    /// Number of clusters (≥ 1, ≤ rows).
    pub k: usize,
    /// Independent seeded runs; the lowest inertia wins.
    pub runs: usize,
    /// Lloyd iterations per run at most.
    pub max_iter: usize,
    /// A run stops when the centres' summed squared move is at most this
    /// share of the features' mean variance.
    pub tol: f64,
}

/// Clusters the rows of `x` (rows × features). Every run draws its seeds
/// from `rng` in turn, so a seeded generator gives the same model. `None`
/// when `stop` said so (checked every Lloyd iteration: the run was
/// interrupted).
pub fn fit(
    x: &Array2<f64>,
    p: KMeansParams,
    rng: &mut impl Rng,
    stop: &dyn Fn() -> bool,
) -> Option<KMeansFit> {
    let x = &x.as_standard_layout().into_owned();
    let norms: Array1<f64> = x.rows().into_iter().map(|r| r.dot(&r)).collect();
    let mean_var = x.var_axis(Axis(0), 0.0).mean().unwrap_or(0.0);
    let tol = p.tol * mean_var;
    let mut best: Option<KMeansFit> = None;
    for _ in 0..p.runs.max(1) {
        let seeds = plus_plus(x, &norms, p.k, rng);
        let fit = lloyd(x, &norms, seeds, p.max_iter, tol, stop);
        if stop() {
            return None;
        }
        if best.as_ref().is_none_or(|b| fit.inertia < b.inertia) {
            best = Some(fit);
        }
    }
    best
}

/// Squared distances of the rows of `block` (with squared norms `norms`)
/// to each centre: `block rows × k`, clamped at 0 (rounding).
fn sq_distances(block: ArrayView2<'_, f64>, norms: &[f64], c: &Array2<f64>) -> Array2<f64> {
    let c_norms: Vec<f64> = c.rows().into_iter().map(|r| r.dot(&r)).collect();
    let mut d = block.dot(&c.t());
    for (mut row, &xn) in d.rows_mut().into_iter().zip(norms) {
        for (v, &cn) in row.iter_mut().zip(&c_norms) {
            *v = (xn - 2.0 * *v + cn).max(0.0);
        }
    }
    d
}

/// Greedy k-means++: each new centre is the best (lowest potential) of
/// `2 + ln k` rows drawn with probability proportional to their squared
/// distance to the nearest centre so far.
fn plus_plus(x: &Array2<f64>, norms: &Array1<f64>, k: usize, rng: &mut impl Rng) -> Array2<f64> {
    let n = x.nrows();
    let trials = 2 + (k as f64).ln().floor() as usize;
    let mut centres = Array2::zeros((k, x.ncols()));
    let first = rng.gen_range(0..n);
    centres.row_mut(0).assign(&x.row(first));
    let mut closest: Vec<f64> = distances_to(x, norms, &centres.slice(s![0..1, ..]).to_owned())
        .column(0)
        .to_vec();
    let mut potential: f64 = closest.iter().sum();
    for c in 1..k {
        // Candidates by inverse CDF of the squared distances.
        let mut cumsum = Vec::with_capacity(n);
        let mut acc = 0.0;
        for &d in &closest {
            acc += d;
            cumsum.push(acc);
        }
        let candidates: Vec<usize> = (0..trials)
            .map(|_| {
                let r = rng.gen::<f64>() * potential;
                cumsum.partition_point(|&v| v < r).min(n - 1)
            })
            .collect();
        let cand = x.select(Axis(0), &candidates);
        let d = distances_to(x, norms, &cand);
        let (best, best_closest, best_potential) = (0..trials)
            .map(|t| {
                let mins: Vec<f64> = closest
                    .iter()
                    .zip(d.column(t))
                    .map(|(&a, &b)| a.min(b))
                    .collect();
                let pot: f64 = mins.iter().sum();
                (t, mins, pot)
            })
            .min_by(|a, b| a.2.total_cmp(&b.2))
            .expect("at least two trials");
        centres.row_mut(c).assign(&cand.row(best));
        closest = best_closest;
        potential = best_potential;
    }
    centres
}

/// Squared distances of every row to each of `c`'s rows: `rows × c rows`,
/// blocks of rows in parallel.
fn distances_to(x: &Array2<f64>, norms: &Array1<f64>, c: &Array2<f64>) -> Array2<f64> {
    let n = x.nrows();
    let blocks: Vec<Array2<f64>> = (0..n.div_ceil(BLOCK))
        .into_par_iter()
        .map(|b| {
            let (lo, hi) = (b * BLOCK, ((b + 1) * BLOCK).min(n));
            sq_distances(
                x.slice(s![lo..hi, ..]),
                &norms.as_slice().expect("contiguous")[lo..hi],
                c,
            )
        })
        .collect();
    let views: Vec<_> = blocks.iter().map(|b| b.view()).collect();
    ndarray::concatenate(Axis(0), &views).expect("same widths")
}

/// One assignment pass: per block, the sums (`k × features`, row-major)
/// and counts of the rows each centre is nearest to, and the inertia.
struct Pass {
    sums: Vec<f64>,
    counts: Vec<usize>,
    inertia: f64,
}

/// Assigns every row of `x` (standard layout) to its nearest centre.
fn assign(x: &Array2<f64>, norms: &Array1<f64>, c: &Array2<f64>) -> Pass {
    let (n, f) = x.dim();
    let k = c.nrows();
    let norms = norms.as_slice().expect("contiguous");
    let xs = x.as_slice().expect("standard layout");
    (0..n.div_ceil(BLOCK))
        .into_par_iter()
        .map(|b| {
            let (lo, hi) = (b * BLOCK, ((b + 1) * BLOCK).min(n));
            let d = sq_distances(x.slice(s![lo..hi, ..]), &norms[lo..hi], c);
            let ds = d.as_slice().expect("a fresh product is standard layout");
            let mut pass = Pass {
                sums: vec![0.0; k * f],
                counts: vec![0; k],
                inertia: 0.0,
            };
            for (i, r) in (lo..hi).enumerate() {
                let dr = &ds[i * k..(i + 1) * k];
                let (mut j, mut best) = (0, dr[0]);
                for (t, &v) in dr.iter().enumerate().skip(1) {
                    if v < best {
                        (j, best) = (t, v);
                    }
                }
                let row = &xs[r * f..(r + 1) * f];
                for (acc, v) in pass.sums[j * f..(j + 1) * f].iter_mut().zip(row) {
                    *acc += v;
                }
                pass.counts[j] += 1;
                pass.inertia += best;
            }
            pass
        })
        .reduce_with(|mut a, b| {
            for (x, y) in a.sums.iter_mut().zip(&b.sums) {
                *x += y;
            }
            for (x, y) in a.counts.iter_mut().zip(&b.counts) {
                *x += y;
            }
            a.inertia += b.inertia;
            a
        })
        .expect("at least one row")
}

/// Euclidean distance between two rows given as slices.
fn dist(a: &[f64], b: &[f64]) -> f64 {
    // Four running sums, so the compiler can keep them in one vector
    // register (a single sum is a chain of dependent adds).
    let mut acc = [0.0; 4];
    let (a4, b4) = (a.chunks_exact(4), b.chunks_exact(4));
    let tail: f64 = a4
        .remainder()
        .iter()
        .zip(b4.remainder())
        .map(|(x, y)| (x - y) * (x - y))
        .sum();
    for (x, y) in a4.zip(b4) {
        for l in 0..4 {
            let d = x[l] - y[l];
            acc[l] += d * d;
        }
    }
    (acc[0] + acc[1] + acc[2] + acc[3] + tail).sqrt()
}

/// Where each row stands: its centre, an upper bound on the distance to
/// it, a lower bound on the distance to every other centre.
struct Bounds {
    labels: Vec<usize>,
    upper: Vec<f64>,
    lower: Vec<f64>,
}

/// The first assignment, exact: labels, both bounds (distances to the
/// nearest and second-nearest centre), and the per-centre sums and counts.
fn first_pass(
    x: &Array2<f64>,
    norms: &Array1<f64>,
    c: &Array2<f64>,
) -> (Bounds, Vec<f64>, Vec<usize>) {
    let (n, f) = x.dim();
    let k = c.nrows();
    let xs = x.as_slice().expect("standard layout");
    let d = distances_to(x, norms, c);
    let mut b = Bounds {
        labels: Vec::with_capacity(n),
        upper: Vec::with_capacity(n),
        lower: Vec::with_capacity(n),
    };
    let mut sums = vec![0.0; k * f];
    let mut counts = vec![0usize; k];
    for (i, row) in d.rows().into_iter().enumerate() {
        let (mut j, mut best, mut second) = (0, f64::INFINITY, f64::INFINITY);
        for (t, &v) in row.iter().enumerate() {
            if v < best {
                (second, best, j) = (best, v, t);
            } else if v < second {
                second = v;
            }
        }
        b.labels.push(j);
        b.upper.push(best.sqrt());
        b.lower.push(second.sqrt());
        for (acc, v) in sums[j * f..(j + 1) * f]
            .iter_mut()
            .zip(&xs[i * f..(i + 1) * f])
        {
            *acc += v;
        }
        counts[j] += 1;
    }
    (b, sums, counts)
}

/// Lloyd's iterations from `centres` until the summed squared move is at
/// most `tol`, no row changes centre, or `max_iter`; the inertia is that
/// of the final centres (a last exact assignment, as scikit-learn).
///
/// Each iteration is Lloyd's, with Hamerly's bounds (G. Hamerly, "Making
/// k-means even faster", SDM 2010) to skip rows that cannot have changed
/// centre: a row whose upper bound is below both its lower bound and half
/// the distance from its centre to the nearest other one keeps its
/// centre, and only the rest are measured. The result is the same as
/// measuring every row; late iterations measure almost none.
fn lloyd(
    x: &Array2<f64>,
    norms: &Array1<f64>,
    mut centres: Array2<f64>,
    max_iter: usize,
    tol: f64,
    stop: &dyn Fn() -> bool,
) -> KMeansFit {
    let f = x.ncols();
    let k = centres.nrows();
    let xs = x.as_slice().expect("standard layout");
    let (mut b, mut sums, mut counts) = first_pass(x, norms, &centres);
    let mut iterations = 0;
    loop {
        iterations += 1;
        if stop() {
            break;
        }
        let mut next = centres.clone();
        for (j, &count) in counts.iter().enumerate() {
            // An empty cluster keeps its centre.
            if count > 0 {
                for (v, sum) in next.row_mut(j).iter_mut().zip(&sums[j * f..(j + 1) * f]) {
                    *v = sum / count as f64;
                }
            }
        }
        let cs_old = centres.as_slice().expect("standard layout");
        let moves: Vec<f64> = (0..k)
            .map(|j| {
                dist(
                    &cs_old[j * f..(j + 1) * f],
                    &next.as_slice().expect("standard layout")[j * f..(j + 1) * f],
                )
            })
            .collect();
        let shift: f64 = moves.iter().map(|m| m * m).sum();
        centres = next;
        if shift <= tol || iterations >= max_iter.max(1) {
            break;
        }
        let cs = centres.as_slice().expect("standard layout");
        // The largest and second-largest moves, for the lower bounds.
        let mut order: Vec<usize> = (0..k).collect();
        order.sort_by(|&a, &b| moves[b].total_cmp(&moves[a]));
        let (r1, r2) = (order[0], order.get(1).copied().unwrap_or(order[0]));
        // Half the distance from each centre to its nearest other centre.
        let half: Vec<f64> = (0..k)
            .map(|j| {
                (0..k)
                    .filter(|&t| t != j)
                    .map(|t| dist(&cs[j * f..(j + 1) * f], &cs[t * f..(t + 1) * f]))
                    .fold(f64::INFINITY, f64::min)
                    / 2.0
            })
            .collect();
        // Rows in blocks, in parallel: each block returns the rows that
        // changed centre, applied to the sums in order afterwards.
        let changed: Vec<(usize, usize, usize)> = b
            .labels
            .par_chunks_mut(BLOCK)
            .zip(b.upper.par_chunks_mut(BLOCK))
            .zip(b.lower.par_chunks_mut(BLOCK))
            .enumerate()
            .flat_map_iter(|(block, ((labels, upper), lower))| {
                let mut out = Vec::new();
                for (o, ((a, u), l)) in labels.iter_mut().zip(upper).zip(lower).enumerate() {
                    let i = block * BLOCK + o;
                    *u += moves[*a];
                    *l -= if *a == r1 { moves[r2] } else { moves[r1] };
                    let m = half[*a].max(*l);
                    if *u <= m {
                        continue;
                    }
                    let row = &xs[i * f..(i + 1) * f];
                    *u = dist(row, &cs[*a * f..(*a + 1) * f]);
                    if *u <= m {
                        continue;
                    }
                    let (mut j, mut best, mut second) = (0, f64::INFINITY, f64::INFINITY);
                    for t in 0..k {
                        let v = dist(row, &cs[t * f..(t + 1) * f]);
                        if v < best {
                            (second, best, j) = (best, v, t);
                        } else if v < second {
                            second = v;
                        }
                    }
                    if j != *a {
                        out.push((i, *a, j));
                        *a = j;
                    }
                    (*u, *l) = (best, second);
                }
                out
            })
            .collect();
        if changed.is_empty() {
            break;
        }
        for &(i, from, to) in &changed {
            let row = &xs[i * f..(i + 1) * f];
            for (s, v) in sums[from * f..(from + 1) * f].iter_mut().zip(row) {
                *s -= v;
            }
            for (s, v) in sums[to * f..(to + 1) * f].iter_mut().zip(row) {
                *s += v;
            }
            counts[from] -= 1;
            counts[to] += 1;
        }
    }
    let inertia = assign(x, norms, &centres).inertia;
    KMeansFit {
        centroids: centres,
        inertia,
        iterations,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn params(k: usize) -> KMeansParams {
        KMeansParams {
            k,
            runs: 5,
            max_iter: 300,
            tol: 1e-4,
        }
    }

    /// Three tight, far-apart groups: the centres are their means and the
    /// inertia is the within-group scatter.
    #[test]
    fn separated_groups_are_found_exactly() {
        let x = ndarray::array![
            [0.0, 0.0],
            [0.0, 1.0],
            [10.0, 10.0],
            [10.0, 11.0],
            [-10.0, 5.0],
            [-10.0, 6.0]
        ];
        let mut rng = rand_xoshiro::Xoshiro256Plus::seed_from_u64(1);
        let m = fit(&x, params(3), &mut rng, &|| false).unwrap();
        let mut c: Vec<(f64, f64)> = m
            .centroids
            .rows()
            .into_iter()
            .map(|r| (r[0], r[1]))
            .collect();
        c.sort_by(|a, b| a.0.total_cmp(&b.0));
        assert_eq!(c, vec![(-10.0, 5.5), (0.0, 0.5), (10.0, 10.5)]);
        assert!((m.inertia - 1.5).abs() < 1e-12, "{}", m.inertia);
    }

    /// `tol` is relative to the data's variance (scikit-learn's rule), so
    /// the same data in other units takes the same iterations to the same
    /// (scaled) centres. With linfa's absolute tolerance, features with
    /// variances of 10⁴ ran many iterations past convergence.
    #[test]
    fn the_tolerance_does_not_depend_on_the_units() {
        let mut rng = rand_xoshiro::Xoshiro256Plus::seed_from_u64(9);
        let x = Array2::from_shape_fn((400, 3), |(i, j)| {
            ((i * 7 + j * 13) % 17) as f64 + rng.gen::<f64>() + (i % 4) as f64 * 5.0
        });
        let loose = KMeansParams {
            tol: 1e-2,
            ..params(4)
        };
        let a = fit(
            &x,
            loose,
            &mut rand_xoshiro::Xoshiro256Plus::seed_from_u64(2),
            &|| false,
        )
        .unwrap();
        let big = &x * 1000.0;
        let b = fit(
            &big,
            loose,
            &mut rand_xoshiro::Xoshiro256Plus::seed_from_u64(2),
            &|| false,
        )
        .unwrap();
        assert_eq!(a.iterations, b.iterations);
        for (p, q) in a.centroids.iter().zip(b.centroids.iter()) {
            assert!(
                (p * 1000.0 - q).abs() < 1e-6 * q.abs().max(1.0),
                "{p} vs {q}"
            );
        }
    }

    /// Hamerly's bounds only skip work: from the same seeds, the result is
    /// plain Lloyd's (every row measured every iteration).
    #[test]
    fn bounded_iterations_give_plain_lloyds_result() {
        let mut rng = rand_xoshiro::Xoshiro256Plus::seed_from_u64(5);
        let x = Array2::from_shape_fn((3000, 4), |(i, j)| {
            rng.gen::<f64>() * 10.0 + ((i % 5) * (j + 1)) as f64
        });
        let norms: Array1<f64> = x.rows().into_iter().map(|r| r.dot(&r)).collect();
        let seeds = plus_plus(
            &x,
            &norms,
            6,
            &mut rand_xoshiro::Xoshiro256Plus::seed_from_u64(1),
        );
        let fast = lloyd(&x, &norms, seeds.clone(), 300, 0.0, &|| false);
        // Plain Lloyd.
        let mut c = seeds;
        for _ in 0..300 {
            let before = c.clone();
            let pass = assign(&x, &norms, &c);
            for j in 0..6 {
                if pass.counts[j] > 0 {
                    for v in 0..4 {
                        c[[j, v]] = pass.sums[j * 4 + v] / pass.counts[j] as f64;
                    }
                }
            }
            if c == before {
                break;
            }
        }
        for (a, b) in fast.centroids.iter().zip(c.iter()) {
            assert!((a - b).abs() < 1e-9, "{a} vs {b}");
        }
    }

    /// The matrix-product distances equal the direct ones.
    #[test]
    fn block_distances_match_the_definition() {
        let x = ndarray::array![[1.0, 2.0, 3.0], [-1.0, 0.5, 2.0]];
        let c = ndarray::array![[0.0, 0.0, 0.0], [1.0, 1.0, 1.0]];
        let norms: Array1<f64> = x.rows().into_iter().map(|r| r.dot(&r)).collect();
        let d = distances_to(&x, &norms, &c);
        for i in 0..2 {
            for j in 0..2 {
                let direct: f64 = (&x.row(i) - &c.row(j)).iter().map(|v| v * v).sum();
                assert!((d[[i, j]] - direct).abs() < 1e-12);
            }
        }
    }

    /// Same seed, same model; one cluster is the mean.
    #[test]
    fn seeded_runs_repeat_and_one_cluster_is_the_mean() {
        let x = ndarray::array![[1.0], [2.0], [6.0]];
        let a = fit(
            &x,
            params(1),
            &mut rand_xoshiro::Xoshiro256Plus::seed_from_u64(3),
            &|| false,
        )
        .unwrap();
        assert_eq!(a.centroids, ndarray::array![[3.0]]);
        let y = ndarray::array![[1.0, 0.0], [2.0, 5.0], [6.0, 1.0], [7.0, 3.0], [0.0, 9.0]];
        let r1 = fit(
            &y,
            params(2),
            &mut rand_xoshiro::Xoshiro256Plus::seed_from_u64(3),
            &|| false,
        )
        .unwrap();
        let r2 = fit(
            &y,
            params(2),
            &mut rand_xoshiro::Xoshiro256Plus::seed_from_u64(3),
            &|| false,
        )
        .unwrap();
        assert_eq!(r1, r2);
    }
}
