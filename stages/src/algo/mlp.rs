//! A multilayer perceptron trained by backpropagation (Rumelhart, Hinton and
//! Williams, 1986) with mini-batch SGD with momentum or Adam (Kingma and Ba,
//! 2015), used by `train.mlp`. The layer, loss and optimiser formulas are
//! PyTorch's (`nn.Linear`'s initialisation, `MSELoss`, `HuberLoss`,
//! `CrossEntropyLoss`, `optim.SGD`, `optim.Adam`), so that a network set up
//! the same way in PyTorch trains the same way.
//!
//! Shapes: inputs are rows × features; layer `l` has weights
//! `fan_in × fan_out` and biases `fan_out`, and computes `a·W + b`; hidden
//! layers apply the activation (then dropout while training); the output
//! layer is linear (one unit for a regression, one per class for a
//! classifier, turned into probabilities by softmax). Arithmetic is `f32`,
//! as in PyTorch; matrix products are ndarray's (`matrixmultiply`).
//!
//! Reproducible: initial weights, the epoch's row order, dropout masks and
//! the held-out split all come from one generator seeded by `seed`, and the
//! products are computed the same way on every run, so the same data and
//! seed give bit-identical weights on the same machine.

use ndarray::linalg::general_mat_mul;
use ndarray::{Array1, Array2, Axis};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use serde::{Deserialize, Serialize};

/// A hidden layer's non-linearity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    Relu,
    Sigmoid,
    Tanh,
}

/// What the network minimises.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum Loss {
    /// Mean squared error (regression).
    Mse,
    /// Huber loss with threshold `delta` (regression): squared below it,
    /// linear above.
    Huber { delta: f32 },
    /// Softmax and negative log-likelihood (classification).
    CrossEntropy,
}

/// The update rule.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Optimizer {
    /// `v = momentum·v + g; w -= lr·v` (PyTorch's SGD, no dampening).
    Sgd { momentum: f32 },
    /// Adam with bias correction.
    Adam {
        beta1: f32,
        beta2: f32,
        epsilon: f32,
    },
}

/// Training settings.
#[derive(Debug, Clone)]
pub struct MlpParams {
    /// Widths of the hidden layers.
    pub hidden: Vec<usize>,
    pub activation: Activation,
    pub loss: Loss,
    pub optimizer: Optimizer,
    pub learning_rate: f32,
    pub epochs: usize,
    /// Rows per step (the last batch of an epoch may be smaller).
    pub batch_size: usize,
    /// Penalty `l1·Σ|w|` on the weights (not the biases).
    pub l1: f32,
    /// Penalty `l2/2·Σw²` on the weights (PyTorch's `weight_decay`).
    pub l2: f32,
    /// Probability of zeroing a hidden unit while training.
    pub dropout: f32,
    /// Hold out `validation_fraction` of the rows; stop after `patience`
    /// epochs without a held-out loss `tol` below the best, and keep the
    /// best epoch's weights.
    pub early_stopping: bool,
    pub validation_fraction: f64,
    pub patience: usize,
    pub tol: f64,
    /// Standardise a regression target (the loss is on the standardised
    /// scale; predictions are mapped back).
    pub standardize_target: bool,
    pub seed: u64,
}

/// What the network is fitted to.
#[derive(Debug, Clone, Copy)]
pub enum Target<'a> {
    Values(&'a [f64]),
    Classes { y: &'a [usize], k: usize },
}

/// One dense layer: `weights` is fan_in × fan_out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Dense {
    pub weights: Array2<f32>,
    pub bias: Array1<f32>,
}

/// A fitted network.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Network {
    pub activation: Activation,
    /// Hidden layers, then the output layer.
    pub layers: Vec<Dense>,
    /// A regression's output is `out · target_scale + target_mean`.
    pub target_mean: f64,
    pub target_scale: f64,
}

/// One epoch's losses.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Epoch {
    pub epoch: usize,
    /// Mean loss over the epoch's batches (dropout on, no penalty).
    pub train: f64,
    /// Loss on the held-out rows after the epoch, when early stopping.
    pub validation: Option<f64>,
}

/// The result of [`fit`].
#[derive(Debug, Clone)]
pub struct MlpFit {
    pub network: Network,
    pub curve: Vec<Epoch>,
    /// The epoch whose weights were kept (early stopping), else the last.
    pub best_epoch: usize,
    pub stopped_at: Option<usize>,
}

/// Why training ended without a network.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Stopped {
    /// The loss became NaN or infinite at this epoch.
    Diverged { epoch: usize },
    /// The epoch callback asked to stop (the run was interrupted).
    Interrupted,
}

impl Activation {
    fn apply(self, z: &mut Array2<f32>) {
        match self {
            Activation::Relu => z.mapv_inplace(|v| v.max(0.0)),
            Activation::Sigmoid => z.mapv_inplace(|v| 1.0 / (1.0 + (-v).exp())),
            Activation::Tanh => z.mapv_inplace(f32::tanh),
        }
    }

    /// The derivative, from the activation's output `h`.
    fn derivative(self, h: f32) -> f32 {
        match self {
            Activation::Relu => {
                if h > 0.0 {
                    1.0
                } else {
                    0.0
                }
            }
            Activation::Sigmoid => h * (1.0 - h),
            Activation::Tanh => 1.0 - h * h,
        }
    }
}

impl Network {
    /// Output-layer values for rows × features `x`: rows × outputs (a
    /// regression's on the target's scale; a classifier's logits).
    pub fn forward(&self, x: &Array2<f64>) -> Array2<f64> {
        let mut a = x.mapv(|v| v as f32);
        let last = self.layers.len() - 1;
        for (l, layer) in self.layers.iter().enumerate() {
            let mut z = a.dot(&layer.weights) + &layer.bias;
            if l < last {
                self.activation.apply(&mut z);
            }
            a = z;
        }
        a.mapv(|v| f64::from(v) * self.target_scale + self.target_mean)
    }
}

/// The loss of outputs `z` (B × out) against a batch's targets, and its
/// gradient with respect to `z` (written into `dz`), both averaged over
/// the batch.
fn loss_and_grad(loss: Loss, z: &Array2<f32>, y: &Batch<'_>, dz: &mut Array2<f32>) -> f64 {
    let b = z.nrows() as f32;
    let mut total = 0.0f64;
    match (loss, y) {
        (Loss::Mse, Batch::Values(v)) => {
            for (i, t) in v.iter().enumerate() {
                let r = z[[i, 0]] - t;
                total += f64::from(r * r);
                dz[[i, 0]] = 2.0 * r / b;
            }
        }
        (Loss::Huber { delta }, Batch::Values(v)) => {
            for (i, t) in v.iter().enumerate() {
                let r = z[[i, 0]] - t;
                if r.abs() < delta {
                    total += f64::from(0.5 * r * r);
                    dz[[i, 0]] = r / b;
                } else {
                    total += f64::from(delta * (r.abs() - 0.5 * delta));
                    dz[[i, 0]] = delta * r.signum() / b;
                }
            }
        }
        (_, Batch::Classes(c)) => {
            for (i, &label) in c.iter().enumerate() {
                let row = z.row(i);
                let m = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                let s: f32 = row.iter().map(|v| (v - m).exp()).sum();
                let lse = m + s.ln();
                total += f64::from(lse - row[label]);
                for (k, v) in row.iter().enumerate() {
                    let p = (v - lse).exp();
                    dz[[i, k]] = (p - if k == label { 1.0 } else { 0.0 }) / b;
                }
            }
        }
        (_, Batch::Values(_)) => unreachable!("a regression loss for values"),
    }
    total / f64::from(b)
}

/// A batch's targets.
enum Batch<'a> {
    Values(&'a [f32]),
    Classes(&'a [usize]),
}

/// Optimiser state for one parameter array.
#[derive(Clone)]
struct Slot {
    m: Vec<f32>,
    v: Vec<f32>,
}

impl Slot {
    fn new(n: usize) -> Slot {
        Slot {
            m: vec![0.0; n],
            v: vec![0.0; n],
        }
    }

    /// One update of `w` by gradient `g` at step `t` (1-based).
    fn step(&mut self, w: &mut [f32], g: &[f32], opt: Optimizer, lr: f32, t: i32) {
        match opt {
            Optimizer::Sgd { momentum } => {
                for ((w, g), m) in w.iter_mut().zip(g).zip(&mut self.m) {
                    *m = if t == 1 { *g } else { momentum * *m + g };
                    *w -= lr * *m;
                }
            }
            Optimizer::Adam {
                beta1,
                beta2,
                epsilon,
            } => {
                let c1 = 1.0 - beta1.powi(t);
                let c2 = (1.0 - beta2.powi(t)).sqrt();
                let step = lr / c1;
                for (((w, g), m), v) in w.iter_mut().zip(g).zip(&mut self.m).zip(&mut self.v) {
                    *m = beta1 * *m + (1.0 - beta1) * g;
                    *v = beta2 * *v + (1.0 - beta2) * g * g;
                    *w -= step * *m / (v.sqrt() / c2 + epsilon);
                }
            }
        }
    }
}

/// Trains a network on `x` (rows × features, finite). `on_epoch` sees each
/// epoch's losses as it ends, and returns `false` to stop.
///
/// # Errors
/// [`Stopped::Diverged`] when a loss becomes NaN or infinite;
/// [`Stopped::Interrupted`] when `on_epoch` returned `false`.
pub fn fit(
    x: &Array2<f64>,
    target: Target<'_>,
    p: &MlpParams,
    mut on_epoch: impl FnMut(&Epoch) -> bool,
) -> Result<MlpFit, Stopped> {
    let n_all = x.nrows();
    let d = x.ncols();
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(p.seed);
    let (outputs, mean, scale) = match target {
        Target::Values(v) if p.standardize_target => {
            let n = v.len().max(1) as f64;
            let mean = v.iter().sum::<f64>() / n;
            let sd = (v.iter().map(|y| (y - mean).powi(2)).sum::<f64>() / n).sqrt();
            (1, mean, if sd > 0.0 { sd } else { 1.0 })
        }
        Target::Values(_) => (1, 0.0, 1.0),
        Target::Classes { k, .. } => (k, 0.0, 1.0),
    };
    if !(mean.is_finite() && scale.is_finite()) {
        return Err(Stopped::Diverged { epoch: 0 });
    }
    let xs = x.mapv(|v| v as f32);
    let ys: Vec<f32> = match target {
        Target::Values(v) => v.iter().map(|y| ((y - mean) / scale) as f32).collect(),
        Target::Classes { .. } => Vec::new(),
    };
    let classes: &[usize] = match target {
        Target::Classes { y, .. } => y,
        Target::Values(_) => &[],
    };

    // Layers, initialised as PyTorch's `nn.Linear`: U(−1/√fan_in, 1/√fan_in).
    let mut sizes = vec![d];
    sizes.extend(&p.hidden);
    sizes.push(outputs);
    let mut layers: Vec<Dense> = sizes
        .windows(2)
        .map(|w| {
            let bound = 1.0 / (w[0] as f32).sqrt();
            let weights = Array2::from_shape_fn((w[0], w[1]), |_| rng.gen_range(-bound..bound));
            let bias = Array1::from_shape_fn(w[1], |_| rng.gen_range(-bound..bound));
            Dense { weights, bias }
        })
        .collect();

    let (train_rows, val_rows): (Vec<usize>, Vec<usize>) = if p.early_stopping && n_all > 1 {
        super::hold_out(n_all, p.validation_fraction, &mut rng)
    } else {
        ((0..n_all).collect(), Vec::new())
    };
    let val_x = xs.select(Axis(0), &val_rows);
    let val_y: Vec<f32> = val_rows
        .iter()
        .filter_map(|&r| ys.get(r).copied())
        .collect();
    let val_c: Vec<usize> = val_rows
        .iter()
        .filter_map(|&r| classes.get(r).copied())
        .collect();

    let mut slots: Vec<(Slot, Slot)> = layers
        .iter()
        .map(|l| (Slot::new(l.weights.len()), Slot::new(l.bias.len())))
        .collect();
    let last = layers.len() - 1;
    let keep = 1.0 - p.dropout;
    let mut t = 0i32;
    let mut order = train_rows.clone();
    let mut curve = Vec::with_capacity(p.epochs);
    let mut best: Option<(f64, usize, Vec<Dense>)> = None;
    let mut since_best = 0;
    let mut stopped_at = None;
    // Per-batch buffers: activations (after dropout), hidden outputs
    // before dropout, dropout masks.
    let mut acts: Vec<Array2<f32>> = Vec::new();
    let mut hs: Vec<Array2<f32>> = Vec::new();
    let mut masks: Vec<Array2<f32>> = Vec::new();
    for epoch in 1..=p.epochs {
        order.shuffle(&mut rng);
        let mut sum = 0.0;
        for batch in order.chunks(p.batch_size.max(1)) {
            let b = batch.len();
            let xb = xs.select(Axis(0), batch);
            let yb: Vec<f32>;
            let cb: Vec<usize>;
            let target_b = if classes.is_empty() {
                yb = batch.iter().map(|&r| ys[r]).collect();
                Batch::Values(&yb)
            } else {
                cb = batch.iter().map(|&r| classes[r]).collect();
                Batch::Classes(&cb)
            };
            // Forward.
            acts.clear();
            hs.clear();
            masks.clear();
            acts.push(xb);
            for (l, layer) in layers.iter().enumerate() {
                let mut z = Array2::from_shape_fn((b, layer.bias.len()), |(_, j)| layer.bias[j]);
                general_mat_mul(1.0, &acts[l], &layer.weights, 1.0, &mut z);
                if l < last {
                    p.activation.apply(&mut z);
                    if p.dropout > 0.0 {
                        let mask = Array2::from_shape_fn(z.dim(), |_| {
                            if rng.gen::<f32>() < p.dropout {
                                0.0
                            } else {
                                1.0 / keep
                            }
                        });
                        hs.push(z.clone());
                        z *= &mask;
                        masks.push(mask);
                    } else {
                        hs.push(z.clone());
                    }
                }
                acts.push(z);
            }
            let out = acts.pop().expect("an output layer");
            let mut dz = Array2::<f32>::zeros(out.dim());
            let l = loss_and_grad(p.loss, &out, &target_b, &mut dz);
            if !l.is_finite() {
                return Err(Stopped::Diverged { epoch });
            }
            sum += l * b as f64;
            // Backward, one layer at a time from the output.
            t += 1;
            for li in (0..layers.len()).rev() {
                let a_in = &acts[li];
                let mut gw = Array2::<f32>::zeros(layers[li].weights.dim());
                general_mat_mul(1.0, &a_in.t(), &dz, 0.0, &mut gw);
                let gb = dz.sum_axis(Axis(0));
                if li > 0 {
                    let mut da = Array2::<f32>::zeros((b, layers[li].weights.nrows()));
                    general_mat_mul(1.0, &dz, &layers[li].weights.t(), 0.0, &mut da);
                    let h = &hs[li - 1];
                    ndarray::Zip::from(&mut da).and(h).for_each(|g, &h| {
                        *g *= p.activation.derivative(h);
                    });
                    if p.dropout > 0.0 {
                        da *= &masks[li - 1];
                    }
                    dz = da;
                }
                let layer = &mut layers[li];
                if p.l2 > 0.0 {
                    gw.scaled_add(p.l2, &layer.weights);
                }
                if p.l1 > 0.0 {
                    ndarray::Zip::from(&mut gw)
                        .and(&layer.weights)
                        .for_each(|g, &w| *g += p.l1 * sign(w));
                }
                let (sw, sb) = &mut slots[li];
                sw.step(
                    layer.weights.as_slice_mut().expect("standard layout"),
                    gw.as_slice().expect("standard layout"),
                    p.optimizer,
                    p.learning_rate,
                    t,
                );
                sb.step(
                    layer.bias.as_slice_mut().expect("contiguous"),
                    gb.as_slice().expect("contiguous"),
                    p.optimizer,
                    p.learning_rate,
                    t,
                );
            }
        }
        let train = sum / train_rows.len().max(1) as f64;
        let validation = (!val_rows.is_empty()).then(|| {
            let mut a = val_x.clone();
            for (l, layer) in layers.iter().enumerate() {
                let mut z = a.dot(&layer.weights) + &layer.bias;
                if l < last {
                    p.activation.apply(&mut z);
                }
                a = z;
            }
            let mut dz = Array2::<f32>::zeros(a.dim());
            let batch = if classes.is_empty() {
                Batch::Values(&val_y)
            } else {
                Batch::Classes(&val_c)
            };
            loss_and_grad(p.loss, &a, &batch, &mut dz)
        });
        if !train.is_finite() || validation.is_some_and(|v| !v.is_finite()) {
            return Err(Stopped::Diverged { epoch });
        }
        let e = Epoch {
            epoch,
            train,
            validation,
        };
        let go_on = on_epoch(&e);
        curve.push(e);
        if !go_on {
            return Err(Stopped::Interrupted);
        }
        if let Some(v) = validation {
            if best.as_ref().is_none_or(|(b, _, _)| v < b - p.tol) {
                best = Some((v, epoch, layers.clone()));
                since_best = 0;
            } else {
                since_best += 1;
                if since_best >= p.patience {
                    stopped_at = Some(epoch);
                    break;
                }
            }
        }
    }
    let last_epoch = curve.len();
    // Trained to a loss twice the constant model's (worse than predicting
    // the mean or the class shares): the steps overshoot (Adam at a
    // learning rate of 100 ended at an MSE of 54 000 on a standardised
    // target, and shipped).
    let baseline = constant_loss(p.loss, &ys, classes, outputs);
    if curve
        .last()
        .is_some_and(|e| baseline > 0.0 && e.train > 2.0 * baseline)
    {
        return Err(Stopped::Diverged { epoch: last_epoch });
    }
    let (layers, best_epoch) = match best {
        Some((_, e, kept)) => (kept, e),
        None => (layers, last_epoch),
    };
    let finite = layers
        .iter()
        .all(|l| l.weights.iter().all(|v| v.is_finite()) && l.bias.iter().all(|v| v.is_finite()));
    if !finite {
        return Err(Stopped::Diverged { epoch: last_epoch });
    }
    Ok(MlpFit {
        network: Network {
            activation: p.activation,
            layers,
            target_mean: mean,
            target_scale: scale,
        },
        curve,
        best_epoch,
        stopped_at,
    })
}

/// The training loss of the best constant model: the mean (squared error
/// or Huber), or the class shares (cross-entropy).
fn constant_loss(loss: Loss, ys: &[f32], classes: &[usize], k: usize) -> f64 {
    let n = ys.len().max(classes.len()).max(1) as f64;
    match loss {
        Loss::CrossEntropy => {
            let mut count = vec![0.0; k.max(1)];
            for &c in classes {
                count[c] += 1.0;
            }
            count
                .iter()
                .filter(|c| **c > 0.0)
                .map(|c| -(c / n) * (c / n).ln())
                .sum()
        }
        Loss::Mse | Loss::Huber { .. } => {
            let mean = ys.iter().map(|&y| f64::from(y)).sum::<f64>() / n;
            let r = ys.iter().map(|&y| f64::from(y) - mean);
            match loss {
                Loss::Huber { delta } => {
                    let d = f64::from(delta);
                    r.map(|r| {
                        if r.abs() < d {
                            0.5 * r * r
                        } else {
                            d * (r.abs() - 0.5 * d)
                        }
                    })
                    .sum::<f64>()
                        / n
                }
                _ => r.map(|r| r * r).sum::<f64>() / n,
            }
        }
    }
}

fn sign(w: f32) -> f32 {
    if w > 0.0 {
        1.0
    } else if w < 0.0 {
        -1.0
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params() -> MlpParams {
        MlpParams {
            hidden: vec![16],
            activation: Activation::Tanh,
            loss: Loss::CrossEntropy,
            optimizer: Optimizer::Adam {
                beta1: 0.9,
                beta2: 0.999,
                epsilon: 1e-8,
            },
            learning_rate: 0.05,
            epochs: 300,
            batch_size: 4,
            l1: 0.0,
            l2: 0.0,
            dropout: 0.0,
            early_stopping: false,
            validation_fraction: 0.1,
            patience: 10,
            tol: 1e-4,
            standardize_target: true,
            seed: 1,
        }
    }

    fn xor() -> (Array2<f64>, Vec<usize>) {
        (
            ndarray::array![[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]],
            vec![0, 1, 1, 0],
        )
    }

    fn argmax(r: ndarray::ArrayView1<f64>) -> usize {
        crate::model::argmax(&r.to_vec())
    }

    /// The classic: no line separates XOR, one hidden layer does.
    #[test]
    fn a_network_learns_xor_with_each_optimizer_and_activation() {
        let (x, y) = xor();
        for (opt, act) in [
            (params().optimizer, Activation::Tanh),
            (Optimizer::Sgd { momentum: 0.9 }, Activation::Relu),
            (params().optimizer, Activation::Sigmoid),
        ] {
            let p = MlpParams {
                optimizer: opt,
                activation: act,
                learning_rate: if matches!(opt, Optimizer::Sgd { .. }) {
                    0.1
                } else {
                    0.05
                },
                epochs: 500,
                ..params()
            };
            let f = fit(&x, Target::Classes { y: &y, k: 2 }, &p, |_| true).unwrap();
            let out = f.network.forward(&x);
            for (i, want) in y.iter().enumerate() {
                assert_eq!(
                    argmax(out.row(i)),
                    *want,
                    "{opt:?} {act:?}: row {i}: {out:?}"
                );
            }
            assert!(f.curve.last().unwrap().train < 0.1, "{opt:?} {act:?}");
        }
    }

    /// A sine on [−π, π], by MSE and by Huber loss.
    #[test]
    fn a_network_fits_a_sine() {
        let x = Array2::from_shape_fn((200, 1), |(i, _)| -3.1 + 6.2 * i as f64 / 199.0);
        let y: Vec<f64> = x.column(0).iter().map(|v| 3.0 * v.sin() + 10.0).collect();
        for loss in [Loss::Mse, Loss::Huber { delta: 1.0 }] {
            let p = MlpParams {
                hidden: vec![32, 32],
                loss,
                learning_rate: 0.01,
                epochs: 400,
                batch_size: 16,
                ..params()
            };
            let f = fit(&x, Target::Values(&y), &p, |_| true).unwrap();
            let out = f.network.forward(&x);
            let mse = out
                .column(0)
                .iter()
                .zip(&y)
                .map(|(a, b)| (a - b).powi(2))
                .sum::<f64>()
                / 200.0;
            assert!(mse < 0.01, "{loss:?}: mse {mse}");
        }
    }

    #[test]
    fn the_same_seed_gives_identical_weights_and_another_seed_differs() {
        let x = Array2::from_shape_fn((64, 3), |(i, j)| ((i * 7 + j * 3) % 11) as f64 / 11.0);
        let y: Vec<usize> = (0..64).map(|i| i % 3).collect();
        let p = MlpParams {
            dropout: 0.2,
            l1: 1e-4,
            l2: 1e-3,
            early_stopping: true,
            epochs: 20,
            ..params()
        };
        let a = fit(&x, Target::Classes { y: &y, k: 3 }, &p, |_| true).unwrap();
        let b = fit(&x, Target::Classes { y: &y, k: 3 }, &p, |_| true).unwrap();
        assert_eq!(a.network, b.network);
        assert_eq!(
            serde_json::to_string(&a.network).unwrap(),
            serde_json::to_string(&b.network).unwrap()
        );
        let c = fit(
            &x,
            Target::Classes { y: &y, k: 3 },
            &MlpParams { seed: 2, ..p },
            |_| true,
        )
        .unwrap();
        assert_ne!(a.network, c.network);
    }

    /// Noise cannot be learned: the held-out loss stops improving, training
    /// stops `patience` epochs after the best, and the best weights are kept.
    #[test]
    fn early_stopping_keeps_the_best_epoch() {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(3);
        let x = Array2::from_shape_fn((200, 5), |_| rng.gen_range(-1.0..1.0));
        let y: Vec<f64> = (0..200).map(|_| rng.gen_range(-1.0..1.0)).collect();
        let p = MlpParams {
            hidden: vec![64],
            loss: Loss::Mse,
            early_stopping: true,
            patience: 5,
            epochs: 1000,
            learning_rate: 0.01,
            batch_size: 8,
            ..params()
        };
        let f = fit(&x, Target::Values(&y), &p, |_| true).unwrap();
        let stop = f.stopped_at.expect("stops early on noise");
        assert_eq!(stop, f.best_epoch + 5);
        let best = f.curve[f.best_epoch - 1].validation.unwrap();
        assert!(f.curve.iter().all(|e| e.validation.unwrap() >= best - 1e-4));
    }

    #[test]
    fn a_huge_learning_rate_diverges() {
        let x = Array2::from_shape_fn((50, 2), |(i, j)| (i + j) as f64);
        let y: Vec<f64> = (0..50).map(|i| i as f64 * 1e3).collect();
        let p = MlpParams {
            loss: Loss::Mse,
            optimizer: Optimizer::Sgd { momentum: 0.9 },
            learning_rate: 1e3,
            standardize_target: false,
            ..params()
        };
        assert!(fit(&x, Target::Values(&y), &p, |_| true).is_err());
    }
}
