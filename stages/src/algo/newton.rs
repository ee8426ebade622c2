//! Binary logistic regression by Newton's method.

use ndarray::{Array1, Array2, ShapeBuilder};

use super::gram;

/// Binary logistic regression by Newton's method with a backtracking line
/// search: it minimises the same objective as linfa-logistic — the summed
/// log-loss plus `alpha`/2·|w|², the intercept unpenalised — but needs a
/// handful of passes over the data where L-BFGS needs dozens. Returns the
/// weights and intercept of class 1, or `None` when a Newton system cannot
/// be solved (the caller then uses linfa-logistic).
pub fn logistic(
    x: &Array2<f64>,
    y: &[usize],
    alpha: f64,
    max_iterations: u64,
    tolerance: f64,
) -> Option<(Vec<f64>, f64, usize)> {
    use linfa_linalg::cholesky::SolveCInplace;
    let (n, k) = x.dim();
    let yf: Array1<f64> = y.iter().map(|&c| c as f64).collect();
    // log(1 + e^z) without overflow
    let softplus = |z: f64| {
        if z > 0.0 {
            z + (-z).exp().ln_1p()
        } else {
            z.exp().ln_1p()
        }
    };
    // The objective and the scores z = Xw + b it was computed from.
    let objective = |w: &Array1<f64>, b: f64| -> (f64, Array1<f64>) {
        let z = x.dot(w) + b;
        let v = z
            .iter()
            .zip(yf.iter())
            .map(|(z, y)| softplus(*z) - y * z)
            .sum::<f64>()
            + 0.5 * alpha * w.dot(w);
        (v, z)
    };
    let mut w = Array1::<f64>::zeros(k);
    let mut b = 0.0;
    let (mut current, mut z) = objective(&w, b);
    let mut xs = Array2::<f64>::zeros((n, k).f());
    let mut steps = 0;
    for _ in 0..max_iterations.max(1) {
        let p = z.mapv(|z| 1.0 / (1.0 + (-z).exp()));
        let r = &p - &yf;
        let gw = x.t().dot(&r) + alpha * &w;
        let gb = r.sum();
        let gmax = gw.iter().fold(gb.abs(), |m, g| m.max(g.abs()));
        // The tolerance applies to the mean gradient, as scikit-learn's
        // does: the summed one grows with the number of rows.
        if gmax <= tolerance * n as f64 {
            break;
        }
        // Hessian [XᵀSX + αI, XᵀS1; 1ᵀSX, Σs] with S = diag(p(1 − p)).
        let sw = p.mapv(|p| p * (1.0 - p));
        let root = sw.mapv(f64::sqrt);
        for (mut o, c) in xs.columns_mut().into_iter().zip(x.columns()) {
            ndarray::Zip::from(&mut o)
                .and(&c)
                .and(&root)
                .for_each(|o, &v, &r| *o = v * r);
        }
        let mut h = Array2::<f64>::zeros((k + 1, k + 1));
        h.slice_mut(ndarray::s![..k, ..k]).assign(&gram(&xs));
        let hb = x.t().dot(&sw);
        for i in 0..k {
            h[[i, i]] += alpha;
            h[[i, k]] = hb[i];
            h[[k, i]] = hb[i];
        }
        h[[k, k]] = sw.sum().max(1e-12 * n as f64);
        let mut step = Array2::<f64>::zeros((k + 1, 1));
        for i in 0..k {
            step[[i, 0]] = gw[i];
        }
        step[[k, 0]] = gb;
        h.solvec_inplace(&mut step).ok()?;
        let dw = step.slice(ndarray::s![..k, 0]).to_owned();
        let db = step[[k, 0]];
        let slope: f64 = gw.dot(&dw) + gb * db;
        if !slope.is_finite() || slope <= 0.0 {
            return None;
        }
        // Backtrack until the objective decreases enough (Armijo).
        let mut t = 1.0;
        loop {
            let nw = &w - &(t * &dw);
            let nb = b - t * db;
            let (next, nz) = objective(&nw, nb);
            if next <= current - 1e-4 * t * slope {
                steps += 1;
                w = nw;
                b = nb;
                current = next;
                z = nz;
                break;
            }
            t /= 2.0;
            if t < 1e-10 {
                return (w.iter().all(|v| v.is_finite())).then(|| (w.to_vec(), b, steps));
            }
        }
        if t * slope < 1e-12 * (1.0 + current.abs()) {
            break;
        }
    }
    (w.iter().all(|v| v.is_finite()) && b.is_finite()).then(|| (w.to_vec(), b, steps))
}

#[cfg(test)]
mod tests {
    use super::*;
    use linfa::traits::Fit;
    use linfa::Dataset;
    use rand::SeedableRng;
    use rand_xoshiro::Xoshiro256PlusPlus;

    #[test]
    fn newton_logistic_matches_linfa_on_the_same_objective() {
        use rand::Rng;
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(9);
        let n = 400;
        let x = Array2::from_shape_fn((n, 3), |_| rng.gen_range(-2.0..2.0));
        let y: Vec<usize> = x
            .rows()
            .into_iter()
            .map(|r| usize::from(r[0] - 0.5 * r[1] + 0.3 + rng.gen_range(-1.0..1.0) > 0.0))
            .collect();
        let (w, b, _) = logistic(&x, &y, 1.0, 100, 1e-8).unwrap();
        let m = linfa_logistic::LogisticRegression::default()
            .alpha(1.0)
            .max_iterations(1000)
            .gradient_tolerance(1e-8)
            .fit(&Dataset::new(x.clone(), Array1::from(y.clone())))
            .unwrap();
        assert_eq!(m.labels().pos.class, 1);
        for (a, l) in w.iter().zip(m.params().iter()) {
            assert!((a - l).abs() < 1e-4, "{w:?} vs {:?}", m.params());
        }
        assert!((b - m.intercept()).abs() < 1e-4, "{b} vs {}", m.intercept());
    }
}
