//! Training stages: each reads a `train` table and writes a `model`.
//!
//! This module holds the kind table ([`trainers`]) and the plumbing every
//! trainer shares; each algorithm's parameters and fitting live in a file
//! of their own, and the numerics they call in [`crate::algo`].

mod decision_tree;
mod elastic_net;
mod kmeans;
mod linear_regression;
mod logistic_regression;
mod naive_bayes;
mod random_forest;
mod sgd_regression;
mod svm;

use mlcycle_pipeline::{
    ParamDoc, ParamError, PortSpec, RunContext, Stage, StageError, StageFactory,
};
use ndarray::{Array1, Array2};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use crate::algo::cart::Criterion;
use crate::model::{matrix, Fitted, Lineage, Model, Task};
use crate::table::{format_number, short, ColumnData, Table};
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
        let t = Table::read_arrow(path).map_err(StageError::from_error)?;
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
            StageError::caused_by("cannot train on this table", e).with_help(help)
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
            .map_err(|e| StageError::caused_by("cannot read train", e))?
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
            .map_err(|e| StageError::caused_by("cannot write the model", e))
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

// Defaults shared by several trainers' parameters.

fn yes() -> bool {
    true
}
fn one() -> f64 {
    1.0
}
fn two() -> usize {
    2
}
fn one_usize() -> usize {
    1
}
fn hundred() -> usize {
    100
}
fn gtol() -> f64 {
    1e-4
}
fn seed() -> u64 {
    42
}
fn gini() -> Criterion {
    Criterion::Gini
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
    let mut all = regressors();
    all.extend(classifiers());
    all.push(clusterer());
    all
}

/// The regression kinds.
fn regressors() -> Vec<Trainer> {
    vec![
        Trainer {
            kind: "train.linear_regression",
            version: 2, // 2: normal equations by Cholesky (was QR)
            summary: "Ordinary least squares linear regression (normal equations by Cholesky; linfa-linear's QR for collinear features)",
            task: Task::Regression,
            docs: &[doc!("fit_intercept", "bool = true", "fit an intercept term")],
            outputs: MODEL_OUT,
            check: check::<linear_regression::OlsParams>,
            fit: linear_regression::fit_ols,
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
            check: check::<elastic_net::ElasticNetParams>,
            fit: elastic_net::fit_elastic_net,
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
            check: check::<sgd_regression::SgdParams>,
            fit: sgd_regression::fit_sgd,
        },
    ]
}

/// The classification kinds.
fn classifiers() -> Vec<Trainer> {
    vec![
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
            check: check::<logistic_regression::LogisticParams>,
            fit: logistic_regression::fit_logistic,
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
            check: check::<decision_tree::TreeStageParams>,
            fit: decision_tree::fit_tree,
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
            check: check::<random_forest::ForestParams>,
            fit: random_forest::fit_random_forest,
        },
        Trainer {
            kind: "train.naive_bayes",
            version: 1,
            summary: "Gaussian naive Bayes classifier (linfa-bayes)",
            task: Task::Classification,
            docs: &[doc!("var_smoothing", "number = 1e-9", "added to variances for stability")],
            outputs: MODEL_OUT,
            check: check::<naive_bayes::NbParams>,
            fit: naive_bayes::fit_naive_bayes,
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
            check: check::<svm::SvmParams>,
            fit: svm::fit_svm,
        },
    ]
}

/// The clustering kind.
fn clusterer() -> Trainer {
    Trainer {
        kind: "train.kmeans",
        version: 1,
        summary: "k-means clustering, best of several k-means++ runs (linfa-clustering)",
        task: Task::Clustering,
        docs: &[
            doc!("clusters", "integer = 3", "number of clusters"),
            doc!(
                "runs",
                "integer = 10",
                "independent runs; the lowest inertia wins"
            ),
            doc!(
                "max_iterations",
                "integer = 300",
                "iterations per run at most"
            ),
            doc!(
                "tolerance",
                "number = 0.0001",
                "stop when centroids move less"
            ),
            SEED_DOC,
        ],
        outputs: MODEL_OUT,
        check: check::<kmeans::KMeansParams>,
        fit: kmeans::fit_kmeans,
    }
}
