//! `train.sgd_regression`: the stage around [`crate::algo::sgd`], with its loss curve.

use mlcycle_pipeline::{ParamError, StageError};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{hundred, one, params, positive, seed, values, TrainData, Validate};
use crate::algo::sgd::{Diverged, Loss, Sgd};
use crate::model::Fitted;
use crate::table::{format_number, short};

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SgdParams {
    #[serde(default = "lr")]
    learning_rate: f64,
    #[serde(default = "thousand_usize")]
    epochs: usize,
    /// 0 = the whole training set per step.
    #[serde(default = "batch")]
    batch_size: usize,
    #[serde(default = "mse")]
    loss: String,
    #[serde(default = "one")]
    huber_delta: f64,
    #[serde(default)]
    l2: f64,
    #[serde(default = "hundred")]
    log_every: usize,
    #[serde(default = "seed")]
    seed: u64,
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
fn mse() -> String {
    "mse".into()
}
impl Validate for SgdParams {
    fn validate(&self) -> Result<(), ParamError> {
        positive("learning_rate", self.learning_rate)?;
        positive("huber_delta", self.huber_delta)?;
        if self.epochs == 0 {
            return Err(ParamError::new(&["epochs"], "`epochs` must be at least 1"));
        }
        if !(self.l2 >= 0.0 && self.l2.is_finite()) {
            return Err(ParamError::new(&["l2"], "`l2` must be ≥ 0"));
        }
        if !["mse", "huber"].contains(&self.loss.as_str()) {
            return Err(
                ParamError::new(&["loss"], format!("unknown loss `{}`", self.loss))
                    .with_help("use `mse` or `huber`"),
            );
        }
        Ok(())
    }
}

pub(super) fn fit_sgd(p: &Value, d: &TrainData<'_>) -> Result<Fitted, StageError> {
    let p: SgdParams = params(p);
    let sgd = Sgd {
        learning_rate: p.learning_rate,
        epochs: p.epochs,
        batch_size: p.batch_size,
        loss: if p.loss == "huber" {
            Loss::Huber {
                delta: p.huber_delta,
            }
        } else {
            Loss::Mse
        },
        l2: p.l2,
        seed: p.seed,
    };
    let every = p.log_every.max(1);
    let fit = sgd
        .fit(&d.x, values(d), |epoch, loss| {
            if epoch % every == 0 || epoch == 1 || epoch == p.epochs {
                (d.ctx.log)(&format!(
                    "epoch {epoch:>5}/{}: {} loss {}",
                    p.epochs,
                    p.loss,
                    short(loss)
                ));
            }
        })
        .map_err(|Diverged { epoch, loss }| {
            StageError::new(format!("SGD diverged at epoch {epoch}: the loss is {loss}")).with_help(
                "lower `learning_rate`, or scale the features first with `preprocess.scale`",
            )
        })?;
    let curve = fit.curve;
    let dir = d.ctx.output("loss")?;
    std::fs::create_dir_all(dir).map_err(StageError::from_error)?;
    let mut csv = String::from("epoch,loss\n");
    for (e, l) in &curve {
        csv.push_str(&format!("{e},{}\n", format_number(*l)));
    }
    std::fs::write(dir.join("loss.csv"), csv).map_err(StageError::from_error)?;
    crate::plot::curve(
        dir,
        "loss",
        "Training loss",
        ("epoch", &format!("{} loss", p.loss)),
        &[("train", curve)],
    )
    .map_err(|e| StageError::new(format!("cannot draw the loss curve: {e}")))?;
    Ok(Fitted::Linear {
        coefficients: fit.weights.to_vec(),
        intercept: fit.intercept,
    })
}
