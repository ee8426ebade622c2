//! Training stages: each reads a `train` table and writes a `model`.

use linfa::traits::Fit;
use linfa::{Dataset, DatasetBase};
use mlcycle_pipeline::{
    ParamDoc, ParamError, PortSpec, RunContext, Stage, StageError, StageFactory,
};
use ndarray::{Array1, Array2, Axis, ShapeBuilder};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::model::{matrix, Fitted, Lineage, Model, Task};
use crate::table::{format_number, short, ColumnData, Table};
use crate::tree::{fit_forest, Criterion, Tree, TreeParams};
use crate::util::parse_with;

/// The prepared training data.
pub struct TrainData<'a> {
    pub x: Array2<f64>,
    pub target: Target,
    pub features: Vec<String>,
    pub ctx: &'a RunContext<'a>,
}

/// A training target.
pub enum Target {
    None,
    Values(Array1<f64>),
    Classes { ids: Vec<usize>, names: Vec<String> },
}

type FitFn = fn(&Value, &TrainData<'_>) -> Result<Fitted, StageError>;
type CheckFn = fn(&Value) -> Result<Value, ParamError>;

/// A training stage kind, described by data.
pub struct Trainer {
    kind: &'static str,
    /// Bumped when the same data and params would give a different model.
    version: u32,
    summary: &'static str,
    task: Task,
    docs: &'static [ParamDoc],
    outputs: &'static [PortSpec],
    check: CheckFn,
    fit: FitFn,
}

#[derive(Debug)]
struct TrainStage {
    kind: &'static str,
    task: Task,
    params: Value,
    fit: FitFn,
}

const TRAIN_IN: &[PortSpec] = &[PortSpec::input(
    "train",
    crate::ports::TABLE,
    true,
    "the training rows; every column but the target is a feature",
)];
const MODEL_OUT: &[PortSpec] = &[PortSpec::output(
    "model",
    "model.json",
    crate::ports::MODEL,
    "the fitted model with its input schema and preprocessing (`model.json`)",
)];
const SGD_OUT: &[PortSpec] = &[
    PortSpec::output(
        "model",
        "model.json",
        crate::ports::MODEL,
        "the fitted model with its input schema and preprocessing (`model.json`)",
    ),
    PortSpec::output(
        "loss",
        "loss",
        crate::ports::PLOT,
        "the training loss per epoch: `loss.csv`, `loss.svg`, `loss.png`",
    ),
];

impl StageFactory for Trainer {
    fn kind(&self) -> &'static str {
        self.kind
    }
    fn summary(&self) -> &'static str {
        self.summary
    }
    fn version(&self) -> u32 {
        self.version
    }
    fn inputs(&self) -> &'static [PortSpec] {
        TRAIN_IN
    }
    fn outputs(&self) -> &'static [PortSpec] {
        self.outputs
    }
    fn param_docs(&self) -> &'static [ParamDoc] {
        self.docs
    }
    fn build(&self, with: &Value) -> Result<Box<dyn Stage>, ParamError> {
        let params = (self.check)(with)?;
        Ok(Box::new(TrainStage {
            kind: self.kind,
            task: self.task,
            params,
            fit: self.fit,
        }))
    }
}

impl Stage for TrainStage {
    fn params(&self) -> Value {
        self.params.clone()
    }

    fn run(&self, ctx: &RunContext<'_>) -> Result<(), StageError> {
        let path = ctx.input("train")?;
        let t = Table::read_arrow(path).map_err(|e| StageError::new(e.to_string()))?;
        if t.n_rows() == 0 {
            return Err(StageError::new("the training table `train` has no rows")
                .with_help("check the split and cleaning stages upstream"));
        }
        let features: Vec<String> = t
            .names()
            .into_iter()
            .filter(|n| t.target.as_deref() != Some(*n))
            .map(str::to_string)
            .collect();
        if features.is_empty() {
            return Err(StageError::new("the training table has no feature columns"));
        }
        let x = matrix(&t, &features).map_err(|e| {
            let help = match &e {
                crate::model::ModelError::ColumnType { .. } => {
                    "encode categorical columns with `features.one_hot`, or drop them with `features.select`"
                }
                _ => "impute or drop missing values with `preprocess.clean`",
            };
            StageError::new(format!("cannot train on this table: {e}")).with_help(help)
        })?;
        let target = match self.task {
            Task::Regression => Target::Values(regression_target(&t, self.kind)?),
            Task::Classification => {
                let (ids, names) = class_target(&t, self.kind)?;
                Target::Classes { ids, names }
            }
            Task::Clustering => Target::None,
        };
        let data = TrainData {
            x,
            target,
            features: features.clone(),
            ctx,
        };
        (ctx.log)(&format!(
            "fitting on {} rows × {} features",
            data.x.nrows(),
            data.x.ncols()
        ));
        let fitted = (self.fit)(&self.params, &data)?;
        let classes = match (&data.target, &fitted) {
            (Target::Classes { names, .. }, _) => names.clone(),
            (_, Fitted::Centroids { centroids }) => (0..centroids.len())
                .map(|i| format!("cluster {i}"))
                .collect(),
            _ => vec![],
        };
        // Memory-mapped and hashed on every core: the training table of a
        // large data set is hundreds of megabytes.
        let data_hash = blake3::Hasher::new()
            .update_mmap_rayon(path)
            .map_err(|e| StageError::new(format!("cannot read train: {e}")))?
            .finalize()
            .to_hex()
            .to_string();
        let model = Model::describe(
            self.kind,
            self.task,
            &t,
            &features,
            classes,
            self.params.clone(),
            Lineage {
                stage: ctx.stage.to_string(),
                data_hash,
                rows: t.n_rows(),
            },
            fitted,
        );
        model
            .write(ctx.output("model")?)
            .map_err(|e| StageError::new(format!("cannot write the model: {e}")))
    }
}

/// The numeric target of a regression table.
pub fn regression_target(t: &Table, kind: &str) -> Result<Array1<f64>, StageError> {
    let name = t.target.as_deref().ok_or_else(|| {
        StageError::new(format!(
            "`{kind}` needs a target column, and the table has none"
        ))
        .with_help("name it with `target:` in the dataset stage")
    })?;
    let col = t.column(name).ok_or_else(|| {
        StageError::new(format!(
            "the target column `{name}` is not in the table (was it dropped?)"
        ))
    })?;
    match &col.data {
        ColumnData::Numeric(v) => {
            if let Some(i) = v.iter().position(|x| !x.is_finite()) {
                return Err(StageError::new(format!(
                    "the target `{name}` has missing or non-finite values (first at row {})",
                    i + 1
                ))
                .with_help("drop those rows with `preprocess.clean` (missing: drop)"));
            }
            Ok(Array1::from(v.clone()))
        }
        ColumnData::Categorical(_) => Err(StageError::new(format!(
            "`{kind}` is a regression and needs a numeric target, but `{name}` is categorical"
        ))
        .with_help("use a classifier such as `train.logistic_regression`")),
    }
}

/// Class ids (index into the sorted class names) of a classification table.
/// A numeric target is accepted when it holds a few whole numbers.
pub fn class_target(t: &Table, kind: &str) -> Result<(Vec<usize>, Vec<String>), StageError> {
    let name = t.target.as_deref().ok_or_else(|| {
        StageError::new(format!(
            "`{kind}` needs a target column, and the table has none"
        ))
        .with_help("name it with `target:` in the dataset stage")
    })?;
    let col = t.column(name).ok_or_else(|| {
        StageError::new(format!(
            "the target column `{name}` is not in the table (was it dropped?)"
        ))
    })?;
    let labels: Vec<String> = match &col.data {
        ColumnData::Categorical(v) => {
            if let Some(i) = v.iter().position(Option::is_none) {
                return Err(StageError::new(format!(
                    "the target `{name}` has missing labels (first at row {})",
                    i + 1
                ))
                .with_help("drop those rows with `preprocess.clean` (missing: drop)"));
            }
            v.iter().map(|s| s.clone().unwrap_or_default()).collect()
        }
        ColumnData::Numeric(v) => {
            let mut distinct: Vec<f64> = v.clone();
            distinct.sort_by(f64::total_cmp);
            distinct.dedup();
            let whole = v.iter().all(|x| x.is_finite() && x.fract() == 0.0);
            if !whole || distinct.len() > 50 {
                return Err(StageError::new(format!(
                    "`{kind}` is a classifier, but the target `{name}` is continuous ({} distinct values, e.g. {})",
                    distinct.len(),
                    short(v[0])
                ))
                .with_help(
                    "use a regression trainer (`train.linear_regression`, `train.elastic_net`, \
                     `train.sgd_regression`), or make the target categorical with `types:` in the dataset stage",
                ));
            }
            v.iter().map(|x| format_number(*x)).collect()
        }
    };
    let mut names: Vec<String> = labels.clone();
    names.sort_by(|a, b| natural(a, b));
    names.dedup();
    if names.len() < 2 {
        return Err(StageError::new(format!(
            "the target `{name}` has a single class (`{}`); a classifier needs at least two",
            names.first().cloned().unwrap_or_default()
        )));
    }
    let ids = labels
        .iter()
        .map(|l| names.iter().position(|n| n == l).expect("a known label"))
        .collect();
    Ok((ids, names))
}

/// Numbers in numeric order, then text.
fn natural(a: &str, b: &str) -> std::cmp::Ordering {
    match (a.parse::<f64>(), b.parse::<f64>()) {
        (Ok(x), Ok(y)) => x.total_cmp(&y),
        _ => a.cmp(b),
    }
}

fn check<P: Serialize + DeserializeOwned + Validate>(with: &Value) -> Result<Value, ParamError> {
    let p: P = parse_with(with)?;
    p.validate()?;
    Ok(serde_json::to_value(p).expect("params serialize"))
}

fn params<P: DeserializeOwned>(v: &Value) -> P {
    serde_json::from_value(v.clone()).expect("params were checked at build time")
}

trait Validate {
    fn validate(&self) -> Result<(), ParamError> {
        Ok(())
    }
}

fn positive(name: &str, v: f64) -> Result<(), ParamError> {
    if v > 0.0 && v.is_finite() {
        Ok(())
    } else {
        Err(ParamError::new(
            &[name],
            format!("`{name}` must be a positive number, got {v}"),
        ))
    }
}

fn fit_error(kind: &str, e: impl std::fmt::Display) -> StageError {
    StageError::new(format!("{kind} could not be fitted: {e}"))
}

fn values<'d>(d: &'d TrainData<'_>) -> &'d Array1<f64> {
    match &d.target {
        Target::Values(v) => v,
        _ => unreachable!("regression stages get numeric targets"),
    }
}

fn classes<'d>(d: &'d TrainData<'_>) -> (&'d [usize], &'d [String]) {
    match &d.target {
        Target::Classes { ids, names } => (ids, names),
        _ => unreachable!("classification stages get class targets"),
    }
}

// ---------------------------------------------------------------- OLS

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct OlsParams {
    #[serde(default = "yes")]
    fit_intercept: bool,
}
impl Validate for OlsParams {}

fn yes() -> bool {
    true
}

fn fit_ols(p: &Value, d: &TrainData<'_>) -> Result<Fitted, StageError> {
    let p: OlsParams = params(p);
    if let Some(f) = ols_normal_equations(&d.x, values(d), p.fit_intercept) {
        return Ok(f);
    }
    (d.ctx.log)("features are (nearly) collinear: solving by QR least squares instead");
    let ds = Dataset::new(d.x.clone(), values(d).clone());
    let m = linfa_linear::LinearRegression::new()
        .with_intercept(p.fit_intercept)
        .fit(&ds)
        .map_err(|e| {
            fit_error("OLS", e).with_help(
                "the features may be collinear or fewer than the rows; try `train.elastic_net`",
            )
        })?;
    Ok(Fitted::Linear {
        coefficients: m.params().to_vec(),
        intercept: m.intercept(),
    })
}

/// OLS by the normal equations of the centred, unit-norm columns, solved by
/// Cholesky: about k/2 times fewer flops than QR of the whole matrix, and
/// well conditioned unless columns are (nearly) collinear — then `None`,
/// and the caller uses linfa's QR least squares.
fn ols_normal_equations(x: &Array2<f64>, y: &Array1<f64>, intercept: bool) -> Option<Fitted> {
    use linfa_linalg::cholesky::SolveCInplace;
    let (n, k) = x.dim();
    if n <= k {
        return None;
    }
    let mean = if intercept {
        x.mean_axis(Axis(0))?
    } else {
        Array1::zeros(k)
    };
    let ybar = if intercept { y.mean()? } else { 0.0 };
    let mut z = x - &mean;
    let norms: Vec<f64> = z.columns().into_iter().map(|c| c.dot(&c).sqrt()).collect();
    if norms.iter().any(|s| !(*s > 0.0 && s.is_finite())) {
        return None;
    }
    for (mut c, s) in z.columns_mut().into_iter().zip(&norms) {
        c /= *s;
    }
    let yc = y - ybar;
    let mut gram = gram(&z);
    let mut rhs = z.t().dot(&yc).insert_axis(Axis(1));
    gram.solvec_inplace(&mut rhs).ok()?;
    // `gram` now holds the Cholesky factor: a tiny pivot means a column is
    // almost a combination of the others.
    let smallest = (0..k).map(|i| gram[[i, i]]).fold(f64::INFINITY, f64::min);
    if smallest.is_nan() || smallest <= 1e-6 {
        return None;
    }
    let w: Vec<f64> = rhs
        .column(0)
        .iter()
        .zip(&norms)
        .map(|(w, s)| w / s)
        .collect();
    let b = ybar - w.iter().zip(mean.iter()).map(|(w, m)| w * m).sum::<f64>();
    if w.iter().any(|v| !v.is_finite()) || !b.is_finite() {
        return None;
    }
    Some(Fitted::Linear {
        coefficients: w,
        intercept: b,
    })
}

// --------------------------------------------------------- elastic net

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ElasticNetParams {
    #[serde(default = "one")]
    alpha: f64,
    #[serde(default = "half")]
    l1_ratio: f64,
    #[serde(default = "thousand")]
    max_iterations: u32,
    #[serde(default = "tol")]
    tolerance: f64,
}
fn one() -> f64 {
    1.0
}
fn half() -> f64 {
    0.5
}
fn thousand() -> u32 {
    1000
}
fn tol() -> f64 {
    1e-4
}
impl Validate for ElasticNetParams {
    fn validate(&self) -> Result<(), ParamError> {
        if !(self.alpha >= 0.0 && self.alpha.is_finite()) {
            return Err(ParamError::new(&["alpha"], "`alpha` must be ≥ 0"));
        }
        if !(0.0..=1.0).contains(&self.l1_ratio) {
            return Err(ParamError::new(
                &["l1_ratio"],
                format!("`l1_ratio` must be in [0, 1], got {}", self.l1_ratio),
            )
            .with_help("0 is ridge (L2 only), 1 is lasso (L1 only)"));
        }
        positive("tolerance", self.tolerance)
    }
}

fn fit_elastic_net(p: &Value, d: &TrainData<'_>) -> Result<Fitted, StageError> {
    let p: ElasticNetParams = params(p);
    let ds = Dataset::new(d.x.clone(), values(d).clone());
    let m = linfa_elasticnet::ElasticNet::params()
        .penalty(p.alpha)
        .l1_ratio(p.l1_ratio)
        .max_iterations(p.max_iterations)
        .tolerance(p.tolerance)
        .fit(&ds)
        .map_err(|e| fit_error("elastic net", e))?;
    Ok(Fitted::Linear {
        coefficients: m.hyperplane().to_vec(),
        intercept: m.intercept(),
    })
}

// ----------------------------------------------------------------- SGD

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SgdParams {
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
fn hundred() -> usize {
    100
}
fn seed() -> u64 {
    42
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

fn fit_sgd(p: &Value, d: &TrainData<'_>) -> Result<Fitted, StageError> {
    let p: SgdParams = params(p);
    let y = values(d);
    let (n, k) = d.x.dim();
    let huber = p.loss == "huber";
    let delta = p.huber_delta;
    let loss_of = |r: f64| {
        if huber && r.abs() > delta {
            delta * (r.abs() - delta / 2.0)
        } else if huber {
            0.5 * r * r
        } else {
            r * r
        }
    };
    // d loss / d prediction
    let grad_of = |r: f64| {
        if huber {
            r.clamp(-delta, delta)
        } else {
            2.0 * r
        }
    };
    // 1. initialize
    let mut w = Array1::<f64>::zeros(k);
    let mut b = 0.0;
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(p.seed);
    let mut order: Vec<usize> = (0..n).collect();
    let bs = if p.batch_size == 0 {
        n
    } else {
        p.batch_size.min(n)
    };
    let mut curve: Vec<(f64, f64)> = Vec::with_capacity(p.epochs);
    let every = p.log_every.max(1);
    for epoch in 1..=p.epochs {
        order.shuffle(&mut rng);
        for chunk in order.chunks(bs) {
            let mut gw = Array1::<f64>::zeros(k);
            let mut gb = 0.0;
            for &i in chunk {
                // 2. forward
                let row = d.x.row(i);
                let pred = row.dot(&w) + b;
                // 3. loss gradient
                let g = grad_of(pred - y[i]);
                gw.scaled_add(g, &row);
                gb += g;
            }
            let m = chunk.len() as f64;
            // 4. gradient step
            w.zip_mut_with(&gw, |wi, gi| *wi -= p.learning_rate * (gi / m + p.l2 * *wi));
            b -= p.learning_rate * gb / m;
        }
        // 5. repeat, watching the loss
        let pred = d.x.dot(&w) + b;
        let loss = pred
            .iter()
            .zip(y.iter())
            .map(|(a, t)| loss_of(a - t))
            .sum::<f64>()
            / n as f64;
        if !loss.is_finite() {
            return Err(StageError::new(format!(
                "SGD diverged at epoch {epoch}: the loss is {loss}"
            ))
            .with_help(
                "lower `learning_rate`, or scale the features first with `preprocess.scale`",
            ));
        }
        curve.push((epoch as f64, loss));
        if epoch % every == 0 || epoch == 1 || epoch == p.epochs {
            (d.ctx.log)(&format!(
                "epoch {epoch:>5}/{}: {} loss {}",
                p.epochs,
                p.loss,
                short(loss)
            ));
        }
    }
    let dir = d.ctx.output("loss")?;
    std::fs::create_dir_all(dir).map_err(|e| StageError::new(e.to_string()))?;
    let mut csv = String::from("epoch,loss\n");
    for (e, l) in &curve {
        csv.push_str(&format!("{e},{}\n", format_number(*l)));
    }
    std::fs::write(dir.join("loss.csv"), csv).map_err(|e| StageError::new(e.to_string()))?;
    crate::plot::curve(
        dir,
        "loss",
        "Training loss",
        ("epoch", &format!("{} loss", p.loss)),
        &[("train", curve)],
    )
    .map_err(|e| StageError::new(format!("cannot draw the loss curve: {e}")))?;
    Ok(Fitted::Linear {
        coefficients: w.to_vec(),
        intercept: b,
    })
}

// ------------------------------------------------- logistic regression

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct LogisticParams {
    /// L2 penalty.
    #[serde(default = "one")]
    alpha: f64,
    #[serde(default = "hundred_u64")]
    max_iterations: u64,
    #[serde(default = "gtol")]
    tolerance: f64,
}
fn hundred_u64() -> u64 {
    100
}
fn gtol() -> f64 {
    1e-4
}
impl Validate for LogisticParams {
    fn validate(&self) -> Result<(), ParamError> {
        if !(self.alpha >= 0.0 && self.alpha.is_finite()) {
            return Err(ParamError::new(&["alpha"], "`alpha` must be ≥ 0"));
        }
        positive("tolerance", self.tolerance)
    }
}

fn fit_logistic(p: &Value, d: &TrainData<'_>) -> Result<Fitted, StageError> {
    let p: LogisticParams = params(p);
    let (ids, names) = classes(d);
    let y = Array1::from(ids.to_vec());
    let k = d.x.ncols();
    if names.len() == 2 {
        let started = std::time::Instant::now();
        if let Some((w, b, steps)) =
            logistic_newton(&d.x, ids, p.alpha, p.max_iterations, p.tolerance)
        {
            (d.ctx.log)(&format!(
                "Newton's method: {steps} step(s) in {} ms",
                started.elapsed().as_millis()
            ));
            return Ok(Fitted::Softmax {
                coefficients: vec![vec![0.0; k], w],
                intercepts: vec![0.0, b],
            });
        }
        (d.ctx.log)(
            "Newton's method did not converge: fitting with linfa-logistic's L-BFGS instead",
        );
        let m = linfa_logistic::LogisticRegression::default()
            .alpha(p.alpha)
            .max_iterations(p.max_iterations)
            .gradient_tolerance(p.tolerance)
            .fit(&Dataset::new(d.x.clone(), y))
            .map_err(|e| fit_error("logistic regression", e))?;
        // P(pos) = sigmoid(w·x + b) = softmax([0, w·x + b])[1].
        let w = m.params().to_vec();
        let (neg, pos) = if m.labels().pos.class == 1 {
            (vec![0.0; k], w)
        } else {
            (w, vec![0.0; k])
        };
        let (bn, bp) = if m.labels().pos.class == 1 {
            (0.0, m.intercept())
        } else {
            (m.intercept(), 0.0)
        };
        return Ok(Fitted::Softmax {
            coefficients: vec![neg, pos],
            intercepts: vec![bn, bp],
        });
    }
    let m = linfa_logistic::MultiLogisticRegression::default()
        .alpha(p.alpha)
        .max_iterations(p.max_iterations)
        .gradient_tolerance(p.tolerance)
        .fit(&Dataset::new(d.x.clone(), y))
        .map_err(|e| fit_error("logistic regression", e))?;
    let mut coefficients = vec![vec![0.0; k]; names.len()];
    let mut intercepts = vec![0.0; names.len()];
    for (j, &class) in m.classes().iter().enumerate() {
        coefficients[class] = m.params().column(j).to_vec();
        intercepts[class] = m.intercept()[j];
    }
    Ok(Fitted::Softmax {
        coefficients,
        intercepts,
    })
}

/// `aᵀa`, summed over row blocks in parallel: the output is tiny and the
/// inner dimension huge, a shape one GEMM call runs on one core.
fn gram(a: &Array2<f64>) -> Array2<f64> {
    use rayon::prelude::*;
    const BLOCK: usize = 1 << 15;
    let n = a.nrows();
    let k = a.ncols();
    (0..n.div_ceil(BLOCK))
        .into_par_iter()
        .map(|i| {
            let rows = a.slice(ndarray::s![i * BLOCK..((i + 1) * BLOCK).min(n), ..]);
            rows.t().dot(&rows)
        })
        .collect::<Vec<_>>()
        .into_iter()
        .fold(Array2::zeros((k, k)), |acc, g| acc + g)
}

/// Binary logistic regression by Newton's method with a backtracking line
/// search: it minimises the same objective as linfa-logistic — the summed
/// log-loss plus `alpha`/2·|w|², the intercept unpenalised — but needs a
/// handful of passes over the data where L-BFGS needs dozens. Returns the
/// weights and intercept of class 1, or `None` when a Newton system cannot
/// be solved (the caller then uses linfa-logistic).
fn logistic_newton(
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

// -------------------------------------------------------------- trees

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct TreeStageParams {
    #[serde(default)]
    max_depth: Option<usize>,
    #[serde(default = "two")]
    min_samples_split: usize,
    #[serde(default = "one_usize")]
    min_samples_leaf: usize,
    #[serde(default = "gini")]
    criterion: Criterion,
    #[serde(default = "seed")]
    seed: u64,
}
fn two() -> usize {
    2
}
fn one_usize() -> usize {
    1
}
fn gini() -> Criterion {
    Criterion::Gini
}
impl Validate for TreeStageParams {
    fn validate(&self) -> Result<(), ParamError> {
        if self.max_depth == Some(0) {
            return Err(ParamError::new(
                &["max_depth"],
                "`max_depth` must be at least 1",
            ));
        }
        if self.min_samples_split < 2 {
            return Err(ParamError::new(
                &["min_samples_split"],
                "`min_samples_split` must be at least 2",
            ));
        }
        Ok(())
    }
}

fn fit_tree(p: &Value, d: &TrainData<'_>) -> Result<Fitted, StageError> {
    let p: TreeStageParams = params(p);
    let (ids, names) = classes(d);
    let tp = TreeParams {
        max_depth: p.max_depth,
        min_samples_split: p.min_samples_split,
        min_samples_leaf: p.min_samples_leaf,
        criterion: p.criterion,
        max_features: None,
        seed: p.seed,
    };
    let tree = Tree::fit(&d.x, ids, names.len(), (0..d.x.nrows()).collect(), &tp);
    (d.ctx.log)(&format!("{} nodes, {} leaves", tree.len(), tree.leaves()));
    Ok(Fitted::Tree { tree })
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ForestParams {
    #[serde(default = "hundred")]
    trees: usize,
    #[serde(default)]
    max_depth: Option<usize>,
    #[serde(default = "two")]
    min_samples_split: usize,
    #[serde(default = "one_usize")]
    min_samples_leaf: usize,
    /// `sqrt`, `all`, or a number of features.
    #[serde(default = "sqrt")]
    max_features: Value,
    #[serde(default = "yes")]
    bootstrap: bool,
    #[serde(default = "gini")]
    criterion: Criterion,
    #[serde(default = "seed")]
    seed: u64,
}
fn sqrt() -> Value {
    Value::String("sqrt".into())
}
impl Validate for ForestParams {
    fn validate(&self) -> Result<(), ParamError> {
        if self.trees == 0 {
            return Err(ParamError::new(&["trees"], "`trees` must be at least 1"));
        }
        match &self.max_features {
            Value::String(s) if s == "sqrt" || s == "all" => Ok(()),
            Value::Number(n) if n.as_u64().is_some_and(|n| n > 0) => Ok(()),
            other => Err(ParamError::new(
                &["max_features"],
                format!("`max_features` must be `sqrt`, `all` or a positive integer, got {other}"),
            )),
        }
    }
}

fn fit_random_forest(p: &Value, d: &TrainData<'_>) -> Result<Fitted, StageError> {
    let p: ForestParams = params(p);
    let (ids, names) = classes(d);
    let nf = d.x.ncols();
    let max_features = match &p.max_features {
        Value::String(s) if s == "sqrt" => ((nf as f64).sqrt().round() as usize).max(1),
        Value::Number(n) => (n.as_u64().unwrap_or(1) as usize).min(nf),
        _ => nf,
    };
    let tp = TreeParams {
        max_depth: p.max_depth,
        min_samples_split: p.min_samples_split,
        min_samples_leaf: p.min_samples_leaf,
        criterion: p.criterion,
        max_features: Some(max_features),
        seed: p.seed,
    };
    let trees = fit_forest(&d.x, ids, names.len(), p.trees, p.bootstrap, &tp);
    let nodes: usize = trees.iter().map(Tree::len).sum();
    (d.ctx.log)(&format!(
        "{} trees, {nodes} nodes, {max_features} of {nf} features per split",
        trees.len()
    ));
    Ok(Fitted::Forest { trees })
}

// -------------------------------------------------------- naive Bayes

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct NbParams {
    #[serde(default = "var_smoothing")]
    var_smoothing: f64,
}
fn var_smoothing() -> f64 {
    1e-9
}
impl Validate for NbParams {
    fn validate(&self) -> Result<(), ParamError> {
        positive("var_smoothing", self.var_smoothing)
    }
}

fn fit_naive_bayes(p: &Value, d: &TrainData<'_>) -> Result<Fitted, StageError> {
    let p: NbParams = params(p);
    let (ids, _) = classes(d);
    let ds = Dataset::new(d.x.clone(), Array1::from(ids.to_vec()));
    let m = linfa_bayes::GaussianNb::params()
        .var_smoothing(p.var_smoothing)
        .fit(&ds)
        .map_err(|e| fit_error("naive Bayes", e))?;
    Ok(Fitted::GaussianNb {
        model: canonical(serde_json::to_value(&m).expect("naive Bayes serializes")),
    })
}

/// Sorts object keys so that models holding hash maps serialize the same
/// bytes every time.
fn canonical(v: Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut pairs: Vec<(String, Value)> =
                m.into_iter().map(|(k, v)| (k, canonical(v))).collect();
            pairs.sort_by(|a, b| natural(&a.0, &b.0));
            Value::Object(pairs.into_iter().collect())
        }
        Value::Array(a) => Value::Array(a.into_iter().map(canonical).collect()),
        v => v,
    }
}

// ---------------------------------------------------------------- SVM

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SvmParams {
    #[serde(default = "one")]
    c: f64,
    /// `linear`, `gaussian` or `polynomial`.
    #[serde(default = "gaussian")]
    kernel: String,
    /// Gaussian kernel width (`exp(-|x-y|²/eps)`).
    #[serde(default = "one")]
    eps: f64,
    #[serde(default = "three")]
    degree: f64,
}
fn gaussian() -> String {
    "gaussian".into()
}
fn three() -> f64 {
    3.0
}
impl Validate for SvmParams {
    fn validate(&self) -> Result<(), ParamError> {
        positive("c", self.c)?;
        positive("eps", self.eps)?;
        if !["linear", "gaussian", "polynomial"].contains(&self.kernel.as_str()) {
            return Err(
                ParamError::new(&["kernel"], format!("unknown kernel `{}`", self.kernel))
                    .with_help("use `linear`, `gaussian` or `polynomial`"),
            );
        }
        Ok(())
    }
}

fn fit_svm(p: &Value, d: &TrainData<'_>) -> Result<Fitted, StageError> {
    let p: SvmParams = params(p);
    let (ids, names) = classes(d);
    let one_vs: Vec<usize> = if names.len() == 2 {
        vec![1]
    } else {
        (0..names.len()).collect()
    };
    let mut machines = Vec::new();
    for class in one_vs {
        let y: Array1<bool> = ids.iter().map(|&i| i == class).collect();
        let params = linfa_svm::Svm::<f64, bool>::params().pos_neg_weights(p.c, p.c);
        let params = match p.kernel.as_str() {
            "linear" => params.linear_kernel(),
            "polynomial" => params.polynomial_kernel(1.0, p.degree),
            _ => params.gaussian_kernel(p.eps),
        };
        let m = params
            .fit(&Dataset::new(d.x.clone(), y))
            .map_err(|e| fit_error("SVM", e))?;
        machines.push(serde_json::to_value(&m).expect("SVMs serialize"));
    }
    Ok(Fitted::Svm { machines })
}

// ------------------------------------------------------------- k-means

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KMeansParams {
    #[serde(default = "three_usize")]
    clusters: usize,
    #[serde(default = "ten")]
    runs: usize,
    #[serde(default = "three_hundred")]
    max_iterations: u64,
    #[serde(default = "gtol")]
    tolerance: f64,
    #[serde(default = "seed")]
    seed: u64,
}
fn three_usize() -> usize {
    3
}
fn ten() -> usize {
    10
}
fn three_hundred() -> u64 {
    300
}
impl Validate for KMeansParams {
    fn validate(&self) -> Result<(), ParamError> {
        if self.clusters == 0 {
            return Err(ParamError::new(
                &["clusters"],
                "`clusters` must be at least 1",
            ));
        }
        if self.runs == 0 {
            return Err(ParamError::new(&["runs"], "`runs` must be at least 1"));
        }
        positive("tolerance", self.tolerance)
    }
}

fn fit_kmeans(p: &Value, d: &TrainData<'_>) -> Result<Fitted, StageError> {
    let p: KMeansParams = params(p);
    if d.x.nrows() < p.clusters {
        return Err(StageError::new(format!(
            "{} rows cannot form {} clusters",
            d.x.nrows(),
            p.clusters
        )));
    }
    let rng = rand_xoshiro::Xoshiro256Plus::seed_from_u64(p.seed);
    let m = linfa_clustering::KMeans::params_with_rng(p.clusters, rng)
        .n_runs(p.runs)
        .max_n_iterations(p.max_iterations)
        .tolerance(p.tolerance)
        .fit(&DatasetBase::from(d.x.clone()))
        .map_err(|e| fit_error("k-means", e))?;
    (d.ctx.log)(&format!("inertia {}", short(m.inertia())));
    Ok(Fitted::Centroids {
        centroids: m
            .centroids()
            .axis_iter(Axis(0))
            .map(|r| r.to_vec())
            .collect(),
    })
}

// ------------------------------------------------------------ registry

macro_rules! doc {
    ($name:literal, $ty:literal, $doc:literal) => {
        ParamDoc {
            name: $name,
            ty: $ty,
            doc: $doc,
        }
    };
}

const SEED_DOC: ParamDoc = doc!(
    "seed",
    "integer = 42",
    "random seed: same data and seed give the same model"
);

/// Every training stage kind.
pub fn trainers() -> Vec<Trainer> {
    vec![
        Trainer {
            kind: "train.linear_regression",
            version: 2, // 2: normal equations by Cholesky (was QR)
            summary: "Ordinary least squares linear regression (normal equations by Cholesky; linfa-linear's QR for collinear features)",
            task: Task::Regression,
            docs: &[doc!("fit_intercept", "bool = true", "fit an intercept term")],
            outputs: MODEL_OUT,
            check: check::<OlsParams>,
            fit: fit_ols,
        },
        Trainer {
            kind: "train.elastic_net",
            version: 1,
            summary: "Linear regression with L1 and L2 penalties; ridge and lasso are its special cases (linfa-elasticnet)",
            task: Task::Regression,
            docs: &[
                doc!("alpha", "number = 1.0", "overall penalty strength"),
                doc!("l1_ratio", "number = 0.5", "share of L1 in the penalty: 0 is ridge, 1 is lasso"),
                doc!("max_iterations", "integer = 1000", "coordinate-descent iterations at most"),
                doc!("tolerance", "number = 0.0001", "stop when the update is smaller"),
            ],
            outputs: MODEL_OUT,
            check: check::<ElasticNetParams>,
            fit: fit_elastic_net,
        },
        Trainer {
            kind: "train.sgd_regression",
            version: 1,
            summary: "Linear regression by mini-batch gradient descent: initialize, forward, loss, gradient step, repeat",
            task: Task::Regression,
            docs: &[
                doc!("learning_rate", "number = 0.01", "step size"),
                doc!("epochs", "integer = 1000", "passes over the training rows"),
                doc!("batch_size", "integer = 32", "rows per gradient step; 0 = all rows"),
                doc!("loss", "`mse` | `huber` = mse", "squared error, or Huber (robust to outliers)"),
                doc!("huber_delta", "number = 1.0", "where Huber loss turns linear"),
                doc!("l2", "number = 0", "weight decay"),
                doc!("log_every", "integer = 100", "log the loss every this many epochs"),
                SEED_DOC,
            ],
            outputs: SGD_OUT,
            check: check::<SgdParams>,
            fit: fit_sgd,
        },
        Trainer {
            kind: "train.logistic_regression",
            version: 2, // 2: binary by Newton's method (was L-BFGS)
            summary: "Logistic regression: binary by Newton's method, multinomial by linfa-logistic's L-BFGS",
            task: Task::Classification,
            docs: &[
                doc!("alpha", "number = 1.0", "L2 penalty"),
                doc!("max_iterations", "integer = 100", "solver iterations at most"),
                doc!("tolerance", "number = 0.0001", "stop when no component of the mean gradient is larger"),
            ],
            outputs: MODEL_OUT,
            check: check::<LogisticParams>,
            fit: fit_logistic,
        },
        Trainer {
            kind: "train.decision_tree",
            version: 1,
            summary: "A classification tree (CART), reproducible",
            task: Task::Classification,
            docs: &[
                doc!("max_depth", "integer (none)", "deepest level; unlimited when absent"),
                doc!("min_samples_split", "integer = 2", "rows a node needs to be split"),
                doc!("min_samples_leaf", "integer = 1", "rows each leaf keeps at least"),
                doc!("criterion", "`gini` | `entropy` = gini", "split quality"),
                SEED_DOC,
            ],
            outputs: MODEL_OUT,
            check: check::<TreeStageParams>,
            fit: fit_tree,
        },
        Trainer {
            kind: "train.random_forest",
            version: 1,
            summary: "A random forest: bagged trees on random feature subsets, trained in parallel",
            task: Task::Classification,
            docs: &[
                doc!("trees", "integer = 100", "number of trees"),
                doc!("max_depth", "integer (none)", "deepest level of each tree"),
                doc!("min_samples_split", "integer = 2", "rows a node needs to be split"),
                doc!("min_samples_leaf", "integer = 1", "rows each leaf keeps at least"),
                doc!("max_features", "`sqrt` | `all` | integer = sqrt", "features tried per split"),
                doc!("bootstrap", "bool = true", "train each tree on a bootstrap sample"),
                doc!("criterion", "`gini` | `entropy` = gini", "split quality"),
                SEED_DOC,
            ],
            outputs: MODEL_OUT,
            check: check::<ForestParams>,
            fit: fit_random_forest,
        },
        Trainer {
            kind: "train.naive_bayes",
            version: 1,
            summary: "Gaussian naive Bayes classifier (linfa-bayes)",
            task: Task::Classification,
            docs: &[doc!("var_smoothing", "number = 1e-9", "added to variances for stability")],
            outputs: MODEL_OUT,
            check: check::<NbParams>,
            fit: fit_naive_bayes,
        },
        Trainer {
            kind: "train.svm",
            version: 1,
            summary: "Support vector classifier, one-vs-rest for several classes (linfa-svm)",
            task: Task::Classification,
            docs: &[
                doc!("c", "number = 1.0", "penalty of margin violations"),
                doc!("kernel", "`linear` | `gaussian` | `polynomial` = gaussian", "kernel"),
                doc!("eps", "number = 1.0", "Gaussian kernel width"),
                doc!("degree", "number = 3", "polynomial kernel degree"),
            ],
            outputs: MODEL_OUT,
            check: check::<SvmParams>,
            fit: fit_svm,
        },
        Trainer {
            kind: "train.kmeans",
            version: 1,
            summary: "k-means clustering, best of several k-means++ runs (linfa-clustering)",
            task: Task::Clustering,
            docs: &[
                doc!("clusters", "integer = 3", "number of clusters"),
                doc!("runs", "integer = 10", "independent runs; the lowest inertia wins"),
                doc!("max_iterations", "integer = 300", "iterations per run at most"),
                doc!("tolerance", "number = 0.0001", "stop when centroids move less"),
                SEED_DOC,
            ],
            outputs: MODEL_OUT,
            check: check::<KMeansParams>,
            fit: fit_kmeans,
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normal_equations_recover_the_plane_and_refuse_collinear_columns() {
        let n = 50;
        let x = Array2::from_shape_fn((n, 2), |(i, j)| {
            if j == 0 {
                i as f64
            } else {
                ((i * 7) % 11) as f64 * 1e4
            }
        });
        let y: Array1<f64> = x
            .rows()
            .into_iter()
            .map(|r| 3.0 * r[0] - 2e-4 * r[1] + 5.0)
            .collect();
        let Some(Fitted::Linear {
            coefficients,
            intercept,
        }) = ols_normal_equations(&x, &y, true)
        else {
            panic!("solvable")
        };
        assert!((coefficients[0] - 3.0).abs() < 1e-9, "{coefficients:?}");
        assert!((coefficients[1] + 2e-4).abs() < 1e-12, "{coefficients:?}");
        assert!((intercept - 5.0).abs() < 1e-8, "{intercept}");
        let mut twice = Array2::zeros((n, 2));
        twice.column_mut(0).assign(&x.column(0));
        twice.column_mut(1).assign(&(&x.column(0) * 2.0));
        assert!(ols_normal_equations(&twice, &y, true).is_none());
    }

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
        let (w, b, _) = logistic_newton(&x, &y, 1.0, 100, 1e-8).unwrap();
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
