//! `train.svm`: support vector classifier, one machine per pair of classes
//! with voting for three or more classes, as libsvm and scikit-learn's
//! `SVC` do. Kernel machines use libsvm's SMO ([`crate::algo::smo`]) on a
//! kernel matrix computed by matrix products; `kernel: linear`
//! uses dual coordinate descent ([`crate::algo::linear_svm`], LIBLINEAR's
//! method), which needs no n × n kernel matrix, and finishes by SMO over
//! the linear kernel where it does not converge (a large `c`) and the
//! kernel fits in memory.

use mlcycle_pipeline::{
    InferContext, Inferred, ParamDoc, ParamError, RunContext, StageError, StageKind, StageSpec,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{classes, one, positive, train, TrainData, MODEL_OUT, TRAIN_IN};
use crate::algo::smo::KernelFn;
use crate::model::{Fitted, Task};

/// `train.svm`'s params (`with:`).
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SvmParams {
    #[serde(default = "one")]
    c: f64,
    #[serde(default)]
    kernel: Kernel,
    /// Gaussian kernel coefficient: `exp(-gamma·|x-y|²)`. `scale` (the
    /// default, scikit-learn's) is `1 / (n_features · Var(X))`, `auto` is
    /// `1 / n_features`, or a positive number.
    #[serde(default = "scale")]
    gamma: Value,
    /// linfa's width, `exp(-|x-y|²/eps)` = `1 / gamma`; when set it wins
    /// over `gamma` (kept for pipelines written before `gamma`).
    #[serde(default)]
    eps: Option<f64>,
    #[serde(default = "three")]
    degree: f64,
    /// The most memory one kernel matrix may take, in MB; by default half
    /// of the memory available when the stage starts.
    #[serde(default)]
    max_kernel_mb: Option<f64>,
    /// The target column of a table that names none (one a script wrote);
    /// when the table names one, this one replaces it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) target: Option<String>,
}

fn scale() -> Value {
    Value::String("scale".into())
}

/// The SVM's kernel.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kernel {
    /// `x·y`.
    Linear,
    /// `exp(-gamma·|x-y|²)`.
    #[default]
    Gaussian,
    /// `(x·y + 1)^degree`.
    Polynomial,
}
fn three() -> f64 {
    3.0
}

/// `train.svm`.
#[derive(Debug)]
pub struct Svm;

impl StageKind for Svm {
    type Params = SvmParams;
    const SPEC: StageSpec = StageSpec {
        kind: "train.svm",
        summary: "Support vector classifier, one-vs-one voting for several classes (libsvm's SMO; `linear`: dual coordinate descent)",
        // 4: own SMO (libsvm's), models as `kernel_svm`.
        version: 4,
        inputs: TRAIN_IN,
        outputs: MODEL_OUT,
        params: &[
            crate::TARGET_PARAM_DOC,
            ParamDoc::new("c", "number", "penalty of margin violations"),
            ParamDoc::new("kernel", "`linear` | `gaussian` | `polynomial`", "kernel"),
            ParamDoc::new("gamma", "`scale` | `auto` | number", "Gaussian kernel coefficient, exp(-gamma·|x-y|²): `scale` is 1 / (features × variance of the training matrix), scikit-learn's default; `auto` is 1 / features"),
            ParamDoc::new("eps", "number", "linfa's Gaussian width, 1 / gamma; overrides `gamma`").unset("from `gamma`"),
            ParamDoc::new("degree", "integer", "polynomial kernel degree, (x·y + 1)^degree"),
            ParamDoc::new("max_kernel_mb", "number", "refuse to train when one machine's n × n kernel matrix would take more memory than this (MB); `linear` builds none").unset("half the available memory"),
        ],
    };
    fn check(p: &mut SvmParams) -> Result<(), ParamError> {
        positive("c", p.c)?;
        if let Some(eps) = p.eps {
            positive("eps", eps)?;
        }
        if let Some(mb) = p.max_kernel_mb {
            positive("max_kernel_mb", mb)?;
        }
        // (x·y + 1)^degree of a negative base is NaN for a fractional
        // degree: the model was written with nulls and could not be read.
        if !(p.degree >= 1.0 && p.degree.fract() == 0.0 && p.degree.is_finite()) {
            return Err(ParamError::new(
                &["degree"],
                format!(
                    "`degree` must be a whole number of at least 1, got {}",
                    p.degree
                ),
            ));
        }
        match &p.gamma {
            Value::String(s) if s == "scale" || s == "auto" => Ok(()),
            Value::Number(n) if n.as_f64().is_some_and(|g| g > 0.0 && g.is_finite()) => Ok(()),
            other => Err(ParamError::new(
                &["gamma"],
                format!("`gamma` must be `scale`, `auto` or a positive number, got {other}"),
            )),
        }
    }
    fn infer(p: &SvmParams, cx: &InferContext<'_>) -> Inferred {
        let cx = &crate::shape::retargeted(cx, "train", p.target.as_deref());
        crate::shape::trainer(cx, Self::SPEC.kind, Task::Classification)
    }
    fn run(p: &SvmParams, ctx: &RunContext<'_>) -> Result<(), StageError> {
        train(Self::SPEC.kind, Task::Classification, p, ctx, |d| {
            fit_svm(p, d)
        })
    }
}

/// Bytes of one dense kernel matrix over `n` rows (the solver computes
/// the whole n × n matrix of f64).
fn kernel_bytes(n: usize) -> f64 {
    (n as f64) * (n as f64) * 8.0
}

/// A size in MB or GB, with three significant digits.
fn bytes_shown(b: f64) -> String {
    if b >= 1e9 {
        format!("{} GB", crate::table::short(b / 1e9))
    } else {
        format!("{} MB", crate::table::short(b / 1e6))
    }
}

/// The most bytes one kernel matrix may take: `max_kernel_mb`, or half
/// the memory available now.
fn kernel_limit(p: &SvmParams) -> Option<f64> {
    p.max_kernel_mb
        .map(|mb| mb * 1e6)
        .or_else(|| available_bytes().map(|b| b / 2.0))
}

/// Memory available to a new allocation, from `/proc/meminfo`.
fn available_bytes() -> Option<f64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024.0)
}

/// The Gaussian width linfa takes (`eps` = 1 / gamma).
fn gaussian_eps(p: &SvmParams, x: &ndarray::Array2<f64>) -> f64 {
    if let Some(eps) = p.eps {
        return eps;
    }
    let nf = x.ncols().max(1) as f64;
    let gamma = match &p.gamma {
        Value::Number(n) => n.as_f64().unwrap_or(1.0),
        Value::String(s) if s == "auto" => 1.0 / nf,
        // scikit-learn's `scale`: the variance of every value of X.
        _ => {
            let var = x.var(0.0);
            if var > 0.0 {
                1.0 / (nf * var)
            } else {
                1.0
            }
        }
    };
    1.0 / gamma
}

/// Stopping tolerance of the SMO solver: libsvm's `-e`, scikit-learn's
/// `SVC(tol=1e-3)`.
const SMO_TOL: f64 = 1e-3;
/// Pair updates at most (libsvm's bound for its default `max_iter`).
const SMO_MAX_ITER: usize = 10_000_000;

/// Stopping tolerance of the linear solver: the projected-gradient gap at
/// LIBLINEAR's default for its dual solvers (`-e 0.1`). At 1e-3 it rarely
/// converged within the pass limit and fell back to SMO (15x slower) for
/// the same accuracy.
const LINEAR_TOL: f64 = 0.1;
/// At most this many passes over the rows (LIBLINEAR's default).
const LINEAR_MAX_EPOCHS: usize = 1000;

fn fit_svm(p: &SvmParams, d: &TrainData<'_>) -> Result<Fitted, StageError> {
    let (ids, names) = classes(d);
    let k = names.len();
    // One machine per pair of classes (i, j), trained on their rows only,
    // true meaning `j`; a binary problem is the one pair (0, 1).
    let pairs: Vec<(usize, usize)> = (0..k)
        .flat_map(|i| (i + 1..k).map(move |j| (i, j)))
        .collect();
    if matches!(p.kernel, Kernel::Linear) {
        let fitted = fit_linear(p, d, ids, names, pairs);
        // Stopped on Ctrl-C: the machines are partial.
        d.ctx.check_interrupted()?;
        return Ok(fitted);
    }
    let mut counts = vec![0usize; k];
    for &i in ids {
        counts[i] += 1;
    }
    let largest = pairs
        .iter()
        .map(|&(i, j)| counts[i] + counts[j])
        .max()
        .unwrap_or(0);
    let limit = kernel_limit(p);
    if let Some(limit) = limit {
        if kernel_bytes(largest) > limit {
            return Err(StageError::new(format!(
                "train.svm would need a {largest} × {largest} kernel matrix ({}) for the largest pair of classes, over the {} it may take",
                bytes_shown(kernel_bytes(largest)),
                bytes_shown(limit)
            ))
            .with_help(
                "train on a sample of the rows (e.g. a smaller `train` share in preprocess.split), \
                 or use train.logistic_regression; raise `max_kernel_mb` if the machine has the memory",
            ));
        }
    }
    let kernel = match p.kernel {
        Kernel::Gaussian => KernelFn::Gaussian {
            gamma: 1.0 / gaussian_eps(p, &d.x),
        },
        // linfa's polynomial kernel, which models before this one used.
        Kernel::Polynomial => KernelFn::Polynomial {
            degree: p.degree,
            coef0: 1.0,
        },
        Kernel::Linear => unreachable!("the linear kernel is fitted above"),
    };
    let mut machines = Vec::with_capacity(pairs.len());
    for &(i, j) in &pairs {
        // One machine per pair of classes: stop between them on Ctrl-C.
        d.ctx.check_interrupted()?;
        let rows: Vec<usize> = (0..ids.len())
            .filter(|&r| ids[r] == i || ids[r] == j)
            .collect();
        let x = d.x.select(ndarray::Axis(0), &rows);
        let y: Vec<bool> = rows.iter().map(|&r| ids[r] == j).collect();
        let stop = || d.ctx.check_interrupted().is_err();
        let m = crate::algo::smo::fit(&x, &y, p.c, kernel, SMO_TOL, SMO_MAX_ITER, &stop);
        d.ctx.check_interrupted()?;
        if !m.converged {
            (d.ctx.log)(&format!(
                "warning: the SVM for classes `{}` and `{}` stopped after {} updates before converging",
                names[i], names[j], m.iterations
            ));
        }
        machines.push(m.machine);
    }
    Ok(Fitted::KernelSvm {
        kernel,
        machines,
        pairs,
    })
}

/// `kernel: linear`: one dual-coordinate-descent machine per pair of
/// classes, in parallel (each on its own rows).
fn fit_linear(
    p: &SvmParams,
    d: &TrainData<'_>,
    ids: &[usize],
    names: &[String],
    pairs: Vec<(usize, usize)>,
) -> Fitted {
    use rayon::prelude::*;
    let limit = kernel_limit(p);
    let fitted: Vec<(Vec<f64>, f64, Option<usize>)> = pairs
        .par_iter()
        .map(|&(i, j)| {
            let rows: Vec<usize> = (0..ids.len())
                .filter(|&r| ids[r] == i || ids[r] == j)
                .collect();
            let x = d.x.select(ndarray::Axis(0), &rows);
            let y: Vec<bool> = rows.iter().map(|&r| ids[r] == j).collect();
            let stop = || d.ctx.check_interrupted().is_err();
            let m =
                crate::algo::linear_svm::fit(&x, &y, p.c, LINEAR_TOL, LINEAR_MAX_EPOCHS, 0, &stop);
            if stop() {
                return (m.w, m.b, None);
            }
            if m.converged || limit.is_some_and(|l| kernel_bytes(rows.len()) > l) {
                return (m.w, m.b, (!m.converged).then_some(m.epochs));
            }
            // Coordinate descent converges slowly at a large `c`: solve the
            // same problem with SMO over the linear kernel (as libsvm's
            // `SVC(kernel='linear')`), memory allowing, and read w and b
            // off its support vectors.
            let s =
                crate::algo::smo::fit(&x, &y, p.c, KernelFn::Linear, SMO_TOL, SMO_MAX_ITER, &stop);
            let mut w = vec![0.0; x.ncols()];
            for (sv, a) in s.machine.support.iter().zip(&s.machine.dual_coef) {
                for (w, v) in w.iter_mut().zip(sv) {
                    *w += a * v;
                }
            }
            (w, -s.machine.rho, (!s.converged).then_some(s.iterations))
        })
        .collect();
    for ((_, _, stopped), (i, j)) in fitted.iter().zip(&pairs) {
        if let Some(steps) = stopped {
            (d.ctx.log)(&format!(
                "warning: the linear SVM for classes `{}` and `{}` stopped after {steps} steps before converging (try a smaller `c`)",
                names[*i], names[*j]
            ));
        }
    }
    let (coef, intercept) = fitted.into_iter().map(|(w, b, _)| (w, b)).unzip();
    Fitted::LinearSvm {
        coef,
        intercept,
        pairs,
    }
}
