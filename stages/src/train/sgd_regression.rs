//! `train.sgd_regression`: the stage around [`crate::algo::sgd`], with its loss curve.

use mlcycle_pipeline::{
    InferContext, Inferred, ParamDoc, ParamError, RunContext, StageError, StageKind, StageSpec,
};
use serde::{Deserialize, Serialize};

use super::{hundred, one, positive, seed, train, values, TrainData, SEED_DOC, SGD_OUT, TRAIN_IN};
use crate::algo::sgd::{Diverged, Loss, Sgd};
use crate::model::{Fitted, Task};
use crate::table::{format_number, short};

/// `train.sgd_regression`'s params (`with:`).
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SgdParams {
    #[serde(default = "lr")]
    learning_rate: f64,
    #[serde(default = "thousand_usize")]
    epochs: usize,
    /// 0 = the whole training set per step.
    #[serde(default = "batch")]
    batch_size: usize,
    #[serde(default)]
    loss: LossName,
    #[serde(default = "one")]
    huber_delta: f64,
    #[serde(default)]
    l2: f64,
    #[serde(default = "hundred")]
    log_every: usize,
    #[serde(default = "seed")]
    seed: u64,
    /// Stop once the epoch loss has not improved by `tol` for
    /// `n_iter_no_change` epochs; `null` runs every epoch.
    #[serde(default = "tol")]
    tol: Option<f64>,
    #[serde(default = "five")]
    n_iter_no_change: usize,
    /// The target column of a table that names none (one a script wrote);
    /// when the table names one, this one replaces it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) target: Option<String>,
}
fn tol() -> Option<f64> {
    Some(1e-3)
}
fn five() -> usize {
    5
}
fn lr() -> f64 {
    0.01
}
fn thousand_usize() -> usize {
    1000
}
fn batch() -> usize {
    32
}

/// The loss `train.sgd_regression` minimises.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LossName {
    /// Mean squared error.
    #[default]
    Mse,
    /// Huber loss: squared near zero, linear beyond `huber_delta`.
    Huber,
}

impl std::fmt::Display for LossName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            LossName::Mse => "mse",
            LossName::Huber => "huber",
        })
    }
}

/// `train.sgd_regression`.
#[derive(Debug)]
pub struct SgdRegression;

impl StageKind for SgdRegression {
    type Params = SgdParams;
    const SPEC: StageSpec = StageSpec {
        kind: "train.sgd_regression",
        summary: "Linear regression by mini-batch gradient descent: initialize, forward, loss, gradient step, repeat",
        version: 2,
        inputs: TRAIN_IN,
        outputs: SGD_OUT,
        params: &[
            crate::TARGET_PARAM_DOC,
            ParamDoc::new("learning_rate", "number", "step size"),
            ParamDoc::new("epochs", "integer", "passes over the training rows"),
            ParamDoc::new("batch_size", "integer", "rows per gradient step; 0 = all rows"),
            ParamDoc::new("loss", "`mse` | `huber`", "squared error, or Huber (robust to outliers)"),
            ParamDoc::new("huber_delta", "number", "where Huber loss turns linear"),
            ParamDoc::new("l2", "number", "weight decay"),
            ParamDoc::new("log_every", "integer", "log the loss every this many epochs"),
            ParamDoc::new("tol", "number or null", "stop when the epoch loss has not fallen by this much below its best for `n_iter_no_change` epochs (scikit-learn's rule); `null` runs every epoch"),
            ParamDoc::new("n_iter_no_change", "integer", "epochs without improvement before stopping"),
            SEED_DOC,
        ],
    };
    fn check(p: &mut SgdParams) -> Result<(), ParamError> {
        positive("learning_rate", p.learning_rate)?;
        positive("huber_delta", p.huber_delta)?;
        if p.epochs == 0 {
            return Err(ParamError::new(&["epochs"], "`epochs` must be at least 1"));
        }
        if !(p.l2 >= 0.0 && p.l2.is_finite()) {
            return Err(ParamError::new(&["l2"], "`l2` must be ≥ 0"));
        }
        if let Some(t) = p.tol {
            if !(t >= 0.0 && t.is_finite()) {
                return Err(ParamError::new(&["tol"], "`tol` must be ≥ 0, or null"));
            }
        }
        if p.n_iter_no_change == 0 {
            return Err(ParamError::new(
                &["n_iter_no_change"],
                "`n_iter_no_change` must be at least 1",
            ));
        }
        Ok(())
    }
    fn infer(p: &SgdParams, cx: &InferContext<'_>) -> Inferred {
        let cx = &crate::shape::retargeted(cx, "train", p.target.as_deref());
        crate::shape::trainer(cx, Self::SPEC.kind, Task::Regression)
    }
    fn run(p: &SgdParams, ctx: &RunContext<'_>) -> Result<(), StageError> {
        train(Self::SPEC.kind, Task::Regression, p, ctx, |d| fit_sgd(p, d))
    }
}

fn fit_sgd(p: &SgdParams, d: &TrainData<'_>) -> Result<Fitted, StageError> {
    let sgd = Sgd {
        learning_rate: p.learning_rate,
        epochs: p.epochs,
        batch_size: p.batch_size,
        loss: if p.loss == LossName::Huber {
            Loss::Huber {
                delta: p.huber_delta,
            }
        } else {
            Loss::Mse
        },
        l2: p.l2,
        seed: p.seed,
        tol: p.tol,
        n_iter_no_change: p.n_iter_no_change,
    };
    let every = p.log_every.max(1);
    let fit = sgd
        .fit(&d.x, values(d), |epoch, loss| {
            if d.ctx.check_interrupted().is_err() {
                return false;
            }
            if epoch % every == 0 || epoch == 1 || epoch == p.epochs {
                (d.ctx.log)(&format!(
                    "epoch {epoch:>5}/{}: {} loss {}",
                    p.epochs,
                    p.loss,
                    short(loss)
                ));
            }
            true
        })
        .map_err(|Diverged { epoch, loss }| {
            StageError::new(format!("SGD diverged at epoch {epoch}: the loss is {loss}")).with_help(
                "lower `learning_rate`, or scale the features first with `preprocess.scale`",
            )
        })?;
    // Stopped by an interrupt: fail rather than record a partial fit.
    d.ctx.check_interrupted()?;
    if let Some(at) = fit.converged_at {
        if at % every != 0 && at != 1 {
            if let Some((_, loss)) = fit.curve.last() {
                (d.ctx.log)(&format!(
                    "epoch {at:>5}/{}: {} loss {}",
                    p.epochs,
                    p.loss,
                    short(*loss)
                ));
            }
        }
        let tol = p.tol.unwrap_or(0.0);
        (d.ctx.log)(&format!(
            "converged at epoch {at}: the loss {} for {} epochs (tol, n_iter_no_change)",
            if tol > 0.0 {
                format!("improved by less than {}", short(tol))
            } else {
                "did not improve".to_string()
            },
            p.n_iter_no_change
        ));
    }
    let curve = fit.curve;
    let dir = d.ctx.output("loss")?;
    std::fs::create_dir_all(dir).map_err(StageError::from_error)?;
    let mut csv = String::from("epoch,loss\n");
    for (e, l) in &curve {
        csv.push_str(&format!("{e},{}\n", format_number(*l)));
    }
    std::fs::write(dir.join("loss.csv"), csv).map_err(StageError::from_error)?;
    let steps: Vec<serde_json::Value> = curve
        .iter()
        .map(|(e, l)| serde_json::json!({"step": *e as u64, "train_loss": l}))
        .collect();
    d.ctx.log_steps(&steps)?;
    crate::plot::curve_with(
        dir,
        "loss",
        "Training loss",
        ("epoch", &format!("{} loss (log scale)", p.loss)),
        &[("train", curve)],
        crate::plot::CurveStyle {
            log_y: true,
            markers: false,
        },
    )
    .map_err(|e| StageError::new(format!("cannot draw the loss curve: {e}")))?;
    Ok(Fitted::Linear {
        coefficients: fit.weights.to_vec(),
        intercept: fit.intercept,
    })
}
