//! `train.mlp`: a multilayer perceptron ([`crate::algo::mlp`]) for
//! regression and classification, with its loss curves.

use mlcycle_pipeline::{
    InferContext, Inferred, ParamDoc, ParamError, PortSpec, RunContext, StageError, StageKind,
    StageSpec,
};
use serde::{Deserialize, Serialize};

use super::{positive, seed, train, Target, TaskParam, TrainData, Trained, SEED_DOC, TASK_DOC};
use crate::algo::mlp::{self, Activation, MlpParams};
use crate::model::Fitted;
use crate::table::short;

/// `train.mlp`'s params (`with:`).
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MlpStageParams {
    #[serde(default)]
    task: TaskParam,
    #[serde(default = "layers")]
    layers: Vec<usize>,
    #[serde(default = "relu")]
    activation: Activation,
    #[serde(default)]
    loss: Option<LossName>,
    #[serde(default = "one")]
    huber_delta: f64,
    #[serde(default)]
    optimizer: OptimizerName,
    #[serde(default = "lr")]
    learning_rate: f64,
    #[serde(default = "momentum")]
    momentum: f64,
    #[serde(default = "beta1")]
    beta1: f64,
    #[serde(default = "beta2")]
    beta2: f64,
    #[serde(default = "epsilon")]
    epsilon: f64,
    #[serde(default = "epochs")]
    epochs: usize,
    #[serde(default = "batch")]
    batch_size: usize,
    #[serde(default)]
    l1: f64,
    #[serde(default)]
    l2: f64,
    #[serde(default)]
    dropout: f64,
    #[serde(default)]
    early_stopping: bool,
    #[serde(default = "tenth")]
    validation_fraction: f64,
    #[serde(default = "ten")]
    patience: usize,
    #[serde(default = "tol")]
    tol: f64,
    #[serde(default = "yes")]
    standardize_target: bool,
    #[serde(default = "ten")]
    log_every: usize,
    #[serde(default = "seed")]
    seed: u64,
    /// The target column of a table that names none (one a script wrote);
    /// when the table names one, this one replaces it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) target: Option<String>,
}
fn layers() -> Vec<usize> {
    vec![64, 64]
}
fn relu() -> Activation {
    Activation::Relu
}
fn one() -> f64 {
    1.0
}
fn lr() -> f64 {
    0.001
}
fn momentum() -> f64 {
    0.9
}
fn beta1() -> f64 {
    0.9
}
fn beta2() -> f64 {
    0.999
}
fn epsilon() -> f64 {
    1e-8
}
fn epochs() -> usize {
    200
}
fn batch() -> usize {
    32
}
fn tenth() -> f64 {
    0.1
}
fn ten() -> usize {
    10
}
fn tol() -> f64 {
    1e-4
}
fn yes() -> bool {
    true
}

/// `loss:`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LossName {
    Mse,
    Huber,
    CrossEntropy,
}

/// `optimizer:`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OptimizerName {
    #[default]
    Adam,
    Sgd,
}

const OUTPUTS: &[PortSpec] = &[
    PortSpec::output(
        "model",
        "model.json",
        crate::ports::MODEL,
        "the fitted network with its input schema and preprocessing (`model.json`)",
    ),
    PortSpec::output(
        "loss",
        "loss",
        crate::ports::PLOT,
        "the loss per epoch on the training rows and, with early stopping, the held-out ones: `loss.csv`, `loss.svg`, `loss.png`",
    ),
];

/// The largest network `train.mlp` takes: 100 million weights, about
/// 2 GB for the weights, their gradients, Adam's two moments and the best
/// epoch's copy.
const MAX_WEIGHTS: usize = 100_000_000;

/// `train.mlp`.
#[derive(Debug)]
pub struct Mlp;

impl StageKind for Mlp {
    type Params = MlpStageParams;
    const SPEC: StageSpec = StageSpec {
        kind: "train.mlp",
        summary: "A neural network (multilayer perceptron) trained by backpropagation with Adam or SGD, regression or classification, reproducible",
        version: 2,
        inputs: super::TRAIN_IN,
        outputs: OUTPUTS,
        params: &[
            crate::TARGET_PARAM_DOC,
            TASK_DOC,
            ParamDoc::new("layers", "list of integers", "widths of the hidden layers, input side first; `[]`: a linear model"),
            ParamDoc::new("activation", "`relu` | `sigmoid` | `tanh`", "the hidden layers' non-linearity"),
            ParamDoc::new("loss", "`mse` | `huber` | `cross_entropy`", "what is minimised")
                .unset("`mse` for a regression, `cross_entropy` for classes"),
            ParamDoc::new("huber_delta", "number", "where Huber loss turns linear (on the standardised target)"),
            ParamDoc::new("optimizer", "`adam` | `sgd`", "the update rule (PyTorch's `Adam`, or `SGD` with momentum)"),
            ParamDoc::new("learning_rate", "number", "step size"),
            ParamDoc::new("momentum", "number", "SGD's momentum, 0 to <1"),
            ParamDoc::new("beta1", "number", "Adam's decay of the gradient mean"),
            ParamDoc::new("beta2", "number", "Adam's decay of the squared gradient mean"),
            ParamDoc::new("epsilon", "number", "Adam's term for numerical stability"),
            ParamDoc::new("epochs", "integer", "passes over the training rows"),
            ParamDoc::new("batch_size", "integer", "rows per gradient step"),
            ParamDoc::new("l1", "number", "L1 penalty on the weights (`l1·Σ|w|`)"),
            ParamDoc::new("l2", "number", "L2 penalty on the weights (`l2/2·Σw²`, PyTorch's `weight_decay`)"),
            ParamDoc::new("dropout", "number", "probability of zeroing each hidden unit while training, 0 to <1"),
            ParamDoc::new("early_stopping", "bool", "hold out `validation_fraction` of the rows, stop after `patience` epochs without improvement and keep the best epoch's weights"),
            ParamDoc::new("validation_fraction", "number", "share of rows held out for early stopping"),
            ParamDoc::new("patience", "integer", "epochs without improvement before stopping"),
            ParamDoc::new("tol", "number", "improvement of the held-out loss that counts"),
            ParamDoc::new("standardize_target", "bool", "fit a regression on the standardised target (predictions are mapped back)"),
            ParamDoc::new("log_every", "integer", "log the loss every this many epochs"),
            SEED_DOC,
        ],
    };
    fn check(p: &mut MlpStageParams) -> Result<(), ParamError> {
        positive("learning_rate", p.learning_rate)?;
        positive("huber_delta", p.huber_delta)?;
        positive("epsilon", p.epsilon)?;
        if let Some(i) = p.layers.iter().position(|w| *w == 0) {
            return Err(ParamError::new(
                &["layers"],
                format!(
                    "layer {} has width 0; every hidden layer needs at least one unit",
                    i + 1
                ),
            ));
        }
        // Saturating: a width near `usize::MAX` must not wrap to a small
        // count. A single layer wider than the cap is too large with any
        // input.
        let hidden: usize = p
            .layers
            .windows(2)
            .map(|w| w[0].saturating_mul(w[1]))
            .fold(0, usize::saturating_add)
            .max(p.layers.iter().copied().max().unwrap_or(0));
        if hidden > MAX_WEIGHTS {
            return Err(ParamError::new(
                &["layers"],
                format!(
                    "layers {:?} have at least {hidden} weights; `train.mlp` trains on the CPU and holds five float32 copies of each (at least {} GB): at most {MAX_WEIGHTS} weights",
                    p.layers,
                    hidden.saturating_mul(20) / 1_000_000_000
                ),
            ));
        }
        if p.epochs == 0 {
            return Err(ParamError::new(&["epochs"], "`epochs` must be at least 1"));
        }
        if p.batch_size == 0 {
            return Err(ParamError::new(
                &["batch_size"],
                "`batch_size` must be at least 1",
            ));
        }
        for (name, v) in [
            ("momentum", p.momentum),
            ("beta1", p.beta1),
            ("beta2", p.beta2),
            ("dropout", p.dropout),
        ] {
            if !(0.0..1.0).contains(&v) {
                return Err(ParamError::new(
                    &[name],
                    format!("`{name}` must be at least 0 and below 1, got {v}"),
                ));
            }
        }
        for (name, v) in [("l1", p.l1), ("l2", p.l2), ("tol", p.tol)] {
            if !(v >= 0.0 && v.is_finite()) {
                return Err(ParamError::new(
                    &[name],
                    format!("`{name}` must be ≥ 0, got {v}"),
                ));
            }
        }
        super::fraction("validation_fraction", p.validation_fraction)?;
        if p.patience == 0 {
            return Err(ParamError::new(
                &["patience"],
                "`patience` must be at least 1",
            ));
        }
        match (p.task, p.loss) {
            (super::TaskParam::Regression, Some(LossName::CrossEntropy)) => Err(ParamError::new(
                &["loss"],
                "`cross_entropy` is a classification loss, and `task` is `regression`",
            )),
            (super::TaskParam::Classification, Some(LossName::Mse | LossName::Huber)) => {
                Err(ParamError::new(
                    &["loss"],
                    "`mse` and `huber` are regression losses, and `task` is `classification`",
                ))
            }
            _ => Ok(()),
        }
    }
    fn infer(p: &MlpStageParams, cx: &InferContext<'_>) -> Inferred {
        let cx = &crate::shape::retargeted(cx, "train", p.target.as_deref());
        crate::shape::trainer_with_task(cx, Self::SPEC.kind, p.task.inferred())
    }
    fn run(p: &MlpStageParams, ctx: &RunContext<'_>) -> Result<(), StageError> {
        train(Self::SPEC.kind, p.task, p, ctx, |d| fit_mlp(p, d))
    }
}

fn fit_mlp(p: &MlpStageParams, d: &TrainData<'_>) -> Result<Trained, StageError> {
    let kind = Mlp::SPEC.kind;
    let (target, loss) = match (&d.target, p.loss) {
        (Target::Values(v), None | Some(LossName::Mse)) => (
            mlp::Target::Values(v.as_slice().expect("contiguous")),
            mlp::Loss::Mse,
        ),
        (Target::Values(v), Some(LossName::Huber)) => (
            mlp::Target::Values(v.as_slice().expect("contiguous")),
            mlp::Loss::Huber {
                delta: p.huber_delta as f32,
            },
        ),
        (Target::Values(_), Some(LossName::CrossEntropy)) => {
            return Err(StageError::new(format!(
                "`{kind}` is fitting a regression, and `cross_entropy` is a classification loss"
            ))
            .with_help("use `loss: mse` or `huber`; or set `task: classification`"))
        }
        (Target::Classes { ids, names }, None | Some(LossName::CrossEntropy)) => (
            mlp::Target::Classes {
                y: ids,
                k: names.len(),
            },
            mlp::Loss::CrossEntropy,
        ),
        (Target::Classes { .. }, Some(_)) => {
            return Err(StageError::new(format!(
                "`{kind}` is fitting a classification (`task: {}`), and `mse` and `huber` are regression losses",
                name_of(&p.task)
            ))
            .with_help("use `loss: cross_entropy`, or leave `loss` out; for a numeric target, set `task: regression`"))
        }
        (Target::None, _) => unreachable!("the network is supervised"),
    };
    if let Some(((row, col), v)) =
        d.x.indexed_iter()
            .find(|(_, v)| v.abs() > f64::from(f32::MAX))
    {
        return Err(StageError::new(format!(
            "column `{}` has {v} at row {}, beyond the float32 range (±3.4e38) the network computes in",
            d.features[col],
            row + 1
        ))
        .with_help("scale the features first with `preprocess.scale`, or drop the row with `preprocess.clean` (outliers)"));
    }
    let loss_name = match loss {
        mlp::Loss::Mse => "MSE",
        mlp::Loss::Huber { .. } => "Huber loss",
        mlp::Loss::CrossEntropy => "cross-entropy",
    };
    if p.early_stopping && d.x.nrows() < 2 {
        return Err(StageError::new(
            "early stopping holds out rows, and the training table has only one",
        )
        .with_help("set `early_stopping: false`, or train on more rows"));
    }
    let mut sizes = vec![d.x.ncols()];
    sizes.extend(&p.layers);
    sizes.push(match &target {
        mlp::Target::Values(_) => 1,
        mlp::Target::Classes { k, .. } => *k,
    });
    let weights: usize = sizes
        .windows(2)
        .map(|w| w[0].saturating_mul(w[1]))
        .fold(0, usize::saturating_add);
    if weights > MAX_WEIGHTS {
        return Err(StageError::new(format!(
            "the network {} has {weights} weights; `train.mlp` trains on the CPU and holds five float32 copies of each: at most {MAX_WEIGHTS} weights",
            sizes.iter().map(ToString::to_string).collect::<Vec<_>>().join(" → ")
        ))
        .with_help("use narrower `layers`, or fewer input columns"));
    }
    let mp = MlpParams {
        hidden: p.layers.clone(),
        activation: p.activation,
        loss,
        optimizer: match p.optimizer {
            OptimizerName::Adam => mlp::Optimizer::Adam {
                beta1: p.beta1 as f32,
                beta2: p.beta2 as f32,
                epsilon: p.epsilon as f32,
            },
            OptimizerName::Sgd => mlp::Optimizer::Sgd {
                momentum: p.momentum as f32,
            },
        },
        learning_rate: p.learning_rate as f32,
        epochs: p.epochs,
        batch_size: p.batch_size,
        l1: p.l1 as f32,
        l2: p.l2 as f32,
        dropout: p.dropout as f32,
        early_stopping: p.early_stopping,
        validation_fraction: p.validation_fraction,
        patience: p.patience,
        tol: p.tol,
        standardize_target: p.standardize_target,
        seed: p.seed,
    };
    let widths: Vec<String> = std::iter::once(d.x.ncols())
        .chain(p.layers.iter().copied())
        .map(|w| w.to_string())
        .collect();
    (d.ctx.log)(&format!(
        "network {} → {}{}, {}, {} epochs of batches of {}",
        widths.join(" → "),
        match &target {
            mlp::Target::Values(_) => 1,
            mlp::Target::Classes { k, .. } => *k,
        },
        if p.layers.is_empty() {
            " (no hidden layer: a linear model)".to_string()
        } else {
            format!(" ({})", name_of(&p.activation))
        },
        name_of(&p.optimizer),
        p.epochs,
        p.batch_size
    ));
    let every = p.log_every.max(1);
    let scaled = matches!(target, mlp::Target::Values(_)) && p.standardize_target;
    let fit = mlp::fit(&d.x, target, &mp, |e| {
        if d.ctx.check_interrupted().is_err() {
            return false;
        }
        if e.epoch % every == 0 || e.epoch == 1 || e.epoch == p.epochs {
            (d.ctx.log)(&format!(
                "epoch {:>5}/{}: {loss_name} {}{}{}",
                e.epoch,
                p.epochs,
                short(e.train),
                e.validation
                    .map(|v| format!(", held out {}", short(v)))
                    .unwrap_or_default(),
                if scaled { " (standardised target)" } else { "" }
            ));
        }
        true
    })
    .map_err(|e| match e {
        mlp::Stopped::Diverged { epoch } => StageError::new(format!(
            "the network diverged at epoch {epoch}: its loss is not finite, or twice that of a constant prediction"
        ))
        .with_help("lower `learning_rate`, and scale the features first with `preprocess.scale`"),
        mlp::Stopped::Interrupted => StageError::new("stopped: the run was interrupted"),
    })?;
    if let Some(at) = fit.stopped_at {
        (d.ctx.log)(&format!(
            "stopped at epoch {at}: the held-out loss did not improve for {} epochs; keeping epoch {}",
            p.patience, fit.best_epoch
        ));
    } else if p.early_stopping && fit.best_epoch < fit.curve.len() {
        (d.ctx.log)(&format!(
            "keeping epoch {}, the lowest held-out loss",
            fit.best_epoch
        ));
    }
    let curve: Vec<(usize, f64, Option<f64>)> = fit
        .curve
        .iter()
        .map(|e| (e.epoch, e.train, e.validation))
        .collect();
    super::write_loss_curve(
        d.ctx,
        "epoch",
        &format!("{loss_name}{}", if scaled { " (standardised)" } else { "" }),
        &curve,
    )?;
    let loss_param = match loss {
        mlp::Loss::Mse => LossName::Mse,
        mlp::Loss::Huber { .. } => LossName::Huber,
        mlp::Loss::CrossEntropy => LossName::CrossEntropy,
    };
    Ok(Trained {
        fitted: Fitted::Mlp {
            network: fit.network,
        },
        importances: None,
        resolved: vec![("loss", serde_json::json!(loss_param))],
    })
}

/// The YAML name of a param value.
fn name_of(v: &impl Serialize) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}
