//! Training stages: each reads a `train` table and writes a `model`.
//!
//! Each algorithm is a kind of its own file (its params, spec and fitting);
//! this module holds the plumbing every trainer shares ([`train`]: read the
//! table, prepare the target, fit, describe and write the model), and the
//! numerics they call live in [`crate::algo`].

mod decision_tree;
mod elastic_net;
mod gradient_boosting;
mod kmeans;
mod linear_regression;
mod logistic_regression;
mod mlp;
mod naive_bayes;
mod random_forest;
mod sgd_regression;
mod svm;

pub use decision_tree::DecisionTree;
pub use elastic_net::ElasticNet;
pub use gradient_boosting::GradientBoosting;
pub use kmeans::KMeans;
pub use linear_regression::LinearRegression;
pub use logistic_regression::LogisticRegression;
pub use mlp::Mlp;
pub use naive_bayes::NaiveBayes;
pub use random_forest::RandomForest;
pub use sgd_regression::SgdRegression;
pub use svm::Svm;

use mlcycle_pipeline::{ParamDoc, ParamError, PortSpec, RunContext, StageError};
use ndarray::{Array1, Array2};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::algo::cart::Criterion;
use crate::model::{Fitted, Lineage, Model, Task};
use crate::table::{format_number, short, Column, ColumnData, Table};

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

/// The `task:` param of a trainer that does both: `auto` picks
/// classification for a categorical target or one of a few whole numbers
/// (the classifiers' rule, [`numeric_class_labels`]), else regression.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskParam {
    #[default]
    Auto,
    Classification,
    Regression,
}

const TASK_DOC: ParamDoc = ParamDoc::new(
    "task",
    "`auto` | `classification` | `regression`",
    "`auto`: classification for a categorical target or a few whole numbers (≤ 50 distinct), else regression",
);

impl TaskParam {
    /// The task the shape check assumes: a regression only when asked
    /// for (`auto` accepts a categorical target).
    fn inferred(self) -> Task {
        match self {
            TaskParam::Regression => Task::Regression,
            _ => Task::Classification,
        }
    }
}

/// The task a trainer fits: fixed by its kind, or its `task:` param.
#[derive(Debug, Clone, Copy)]
enum TaskChoice {
    Is(Task),
    Param(TaskParam),
}

impl From<Task> for TaskChoice {
    fn from(t: Task) -> Self {
        TaskChoice::Is(t)
    }
}

impl From<TaskParam> for TaskChoice {
    fn from(t: TaskParam) -> Self {
        TaskChoice::Param(t)
    }
}

/// What a fit returns: the fitted parameters and, for tree models, the
/// feature importances (aligned with the features, summing to 1).
pub struct Trained {
    pub fitted: Fitted,
    pub importances: Option<Vec<f64>>,
    /// Params left to a default that depends on the data (`loss`,
    /// `criterion`, `early_stopping: auto`…), with the value the fit chose:
    /// the model's `params` record what was used, not `null`.
    pub resolved: Vec<(&'static str, Value)>,
}

impl From<Fitted> for Trained {
    fn from(fitted: Fitted) -> Self {
        Trained {
            fitted,
            importances: None,
            resolved: Vec::new(),
        }
    }
}

/// `auto`'s choice for table `t`, and why.
fn auto_task(t: &Table, kind: &str) -> Result<(Task, String), StageError> {
    let (name, col) = target_column(t, kind)?;
    Ok(match &col.data {
        ColumnData::Categorical(_) => (
            Task::Classification,
            format!("the target `{name}` is categorical"),
        ),
        ColumnData::Numeric(v) => match numeric_class_labels(v) {
            Ok(labels) => {
                let mut d = labels;
                d.sort();
                d.dedup();
                (
                    Task::Classification,
                    format!(
                        "the target `{name}` holds {} whole numbers; set `task: regression` to predict it as a number",
                        d.len()
                    ),
                )
            }
            Err(distinct) => (
                Task::Regression,
                format!("the target `{name}` is numeric with {distinct} distinct values"),
            ),
        },
    })
}

/// What every trainer does around its fit: reads the `train` table,
/// prepares the features (rows × features) and the target for `task`,
/// calls `fit`, and writes the model with its schema, params and lineage.
/// A missing feature value is refused (see [`train_with`]).
fn train<P: Serialize, R: Into<Trained>>(
    kind: &'static str,
    task: impl Into<TaskChoice>,
    params: &P,
    ctx: &RunContext<'_>,
    fit: impl FnOnce(&TrainData<'_>) -> Result<R, StageError>,
) -> Result<(), StageError> {
    train_with(kind, task, params, ctx, Missing::Refuse, fit)
}

/// What a trainer does with a missing feature value (NaN, an empty cell).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Missing {
    /// Refused, with what to do.
    Refuse,
    /// Passed to `fit` as NaN: the model learns what it means and scores
    /// such rows later (see `Model::takes_missing`).
    Learn,
}

/// [`train`], with `missing` saying whether missing feature values reach
/// the fit.
fn train_with<P: Serialize, R: Into<Trained>>(
    kind: &'static str,
    task: impl Into<TaskChoice>,
    params: &P,
    ctx: &RunContext<'_>,
    missing: Missing,
    fit: impl FnOnce(&TrainData<'_>) -> Result<R, StageError>,
) -> Result<(), StageError> {
    let path = ctx.input("train")?;
    let mut t = Table::read(path).map_err(StageError::from_error)?;
    // Every trainer's params may name the target (`target:`) of a table a
    // script wrote.
    let declared = serde_json::to_value(params)
        .ok()
        .and_then(|v| v.get("target")?.as_str().map(str::to_string));
    crate::util::declared_target(&mut t, declared.as_deref())?;
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
    let choice = task.into();
    let task = match choice {
        TaskChoice::Is(t) => t,
        TaskChoice::Param(TaskParam::Classification) => Task::Classification,
        TaskChoice::Param(TaskParam::Regression) => Task::Regression,
        TaskChoice::Param(TaskParam::Auto) => {
            let (task, why) = auto_task(&t, kind)?;
            (ctx.log)(&format!("task: {}, since {why}", task.as_str()));
            task
        }
    };
    // The target first: a table without one (`target:` forgotten) is
    // reported as that, not as whatever its columns hold.
    let explicit = matches!(choice, TaskChoice::Param(p) if p != TaskParam::Auto);
    let target = match task {
        Task::Regression => {
            if explicit {
                let (name, col) = target_column(&t, kind)?;
                if matches!(col.data, ColumnData::Categorical(_)) {
                    return Err(StageError::new(format!(
                        "`task: regression` needs a numeric target, and `{name}` is categorical"
                    ))
                    .with_help("set `task: classification`, or leave `task` out: a categorical target makes a classifier"));
                }
            }
            Target::Values(regression_target(&t, kind)?)
        }
        Task::Classification => {
            let (ids, names) = if explicit {
                class_target_asked(&t, kind)?
            } else {
                class_target(&t, kind)?
            };
            Target::Classes { ids, names }
        }
        Task::Clustering => Target::None,
    };
    let x = crate::model::matrix_with(&t, &features, missing == Missing::Learn).map_err(|e| match e {
        crate::model::ModelError::ColumnType { column, .. } => StageError::new(format!(
            "cannot train on this table: column `{column}` is categorical, and `{kind}` takes numeric features"
        ))
        .with_help("encode it with `features.one_hot`, or drop it with `features.select`"),
        e => StageError::caused_by("cannot train on this table", e)
            .with_help("impute or drop missing values with `preprocess.clean`"),
    })?;
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
    let Trained {
        fitted,
        importances,
        resolved,
    } = fit(&data)?.into();
    let mut params = serde_json::to_value(params).unwrap_or(Value::Null);
    if let Value::Object(map) = &mut params {
        for (name, value) in resolved {
            map.insert(name.to_string(), value);
        }
    }
    let classes = match (&data.target, &fitted) {
        (Target::Classes { names, .. }, _) => names.clone(),
        (_, Fitted::Centroids { centroids }) => (0..centroids.len())
            .map(|i| format!("cluster {i}"))
            .collect(),
        _ => vec![],
    };
    // Hashed on every core, as the engine hashes files: the training
    // table of a large data set is hundreds of megabytes.
    let data_hash = mlcycle_pipeline::cache::hash_file(path)
        .map_err(|e| StageError::caused_by("cannot read train", e))?;
    let mut model = Model::describe(
        kind,
        task,
        &t,
        &features,
        classes,
        params,
        Lineage {
            stage: ctx.stage.to_string(),
            data_hash,
            rows: t.n_rows(),
        },
        fitted,
    );
    model.feature_importances = importances;
    model
        .write(ctx.output("model")?)
        .map_err(|e| StageError::caused_by("cannot write the model", e))
}

/// Writes a training curve into the `loss` output: `loss.csv` (`step`,
/// `train`, and `validation` when rows were held out) and the plot
/// `loss.svg`/`loss.png`, both curves on a log scale (linear when a loss
/// reaches 0).
fn write_loss_curve(
    ctx: &RunContext<'_>,
    step: &str,
    loss: &str,
    curve: &[(usize, f64, Option<f64>)],
) -> Result<(), StageError> {
    let dir = ctx.output("loss")?;
    std::fs::create_dir_all(dir).map_err(StageError::from_error)?;
    let held_out = curve.iter().any(|c| c.2.is_some());
    let mut csv = format!(
        "{step},train{}\n",
        if held_out { ",validation" } else { "" }
    );
    for (i, t, v) in curve {
        csv.push_str(&format!("{i},{}", format_number(*t)));
        if held_out {
            csv.push_str(&format!(",{}", v.map(format_number).unwrap_or_default()));
        }
        csv.push('\n');
    }
    std::fs::write(dir.join("loss.csv"), csv).map_err(StageError::from_error)?;
    // The same curve as step metrics, for `mlcycle exp steps` and the
    // experiments view.
    let steps: Vec<Value> = curve
        .iter()
        .map(|(i, t, v)| {
            let mut m = serde_json::Map::new();
            m.insert("step".into(), Value::from(*i));
            m.insert("train_loss".into(), Value::from(*t));
            if let Some(v) = v {
                m.insert("validation_loss".into(), Value::from(*v));
            }
            Value::Object(m)
        })
        .collect();
    ctx.log_steps(&steps)?;
    let train: Vec<(f64, f64)> = curve.iter().map(|c| (c.0 as f64, c.1)).collect();
    let mut series = vec![("train", train)];
    if held_out {
        let val = curve
            .iter()
            .filter_map(|c| Some((c.0 as f64, c.2?)))
            .collect();
        series.push(("validation", val));
    }
    // A log scale unless a loss is 0 (a constant target is fitted
    // exactly), which it cannot show.
    let log_y = curve
        .iter()
        .all(|c| c.1 > 0.0 && c.2.is_none_or(|v| v > 0.0));
    crate::plot::curve_with(
        dir,
        "loss",
        "Training loss",
        (
            step,
            &if log_y {
                format!("{loss} (log scale)")
            } else {
                loss.to_string()
            },
        ),
        &series,
        crate::plot::CurveStyle {
            log_y,
            markers: false,
        },
    )
    .map_err(|e| StageError::new(format!("cannot draw the loss curve: {e}")))
}

/// The table's target column, with its name; an error for a table without
/// one, or whose target was dropped.
fn target_column<'t>(t: &'t Table, kind: &str) -> Result<(&'t str, &'t Column), StageError> {
    let name = t.target.as_deref().ok_or_else(|| {
        StageError::new(format!(
            "`{kind}` needs a target column, and the table has none"
        ))
        .with_help("name it with `target:` in the dataset stage, or in this stage's `with:` for a table a script wrote")
    })?;
    let col = t.column(name).ok_or_else(|| {
        StageError::new(format!(
            "the target column `{name}` is not in the table (was it dropped?)"
        ))
    })?;
    Ok((name, col))
}

/// The largest target magnitude a regression takes: the square of a larger
/// value overflows a float64.
const MAX_TARGET: f64 = 1e150;

/// The numeric target of a regression table.
pub fn regression_target(t: &Table, kind: &str) -> Result<Array1<f64>, StageError> {
    let (name, col) = target_column(t, kind)?;
    match &col.data {
        ColumnData::Numeric(v) => {
            if let Some(i) = v.iter().position(|x| !x.is_finite()) {
                return Err(StageError::new(format!(
                    "the target `{name}` has missing or non-finite values (first at row {})",
                    i + 1
                ))
                .with_help("drop those rows with `preprocess.clean` (missing: drop)"));
            }
            // Squared errors and variances of larger values overflow: the
            // metrics come out NaN and the trees see no gain.
            if let Some(i) = v.iter().position(|x| x.abs() > MAX_TARGET) {
                return Err(StageError::new(format!(
                    "the target `{name}` has {} at row {}: squared errors of values beyond ±{MAX_TARGET:e} overflow",
                    short(v[i]),
                    i + 1
                ))
                .with_help("rescale the target (e.g. predict its logarithm, or thousands instead of units)"));
            }
            Ok(Array1::from(v.clone()))
        }
        ColumnData::Categorical(_) => Err(StageError::new(format!(
            "`{kind}` is a regression and needs a numeric target, but `{name}` is categorical"
        ))
        .with_help("use a classifier such as `train.logistic_regression`")),
    }
}

/// The class labels of a numeric target by the classifiers' rule: every
/// value a whole number, at most 50 distinct ones (`0`/`1`, star ratings).
/// `Err` with the number of distinct values for a continuous target.
pub fn numeric_class_labels(v: &[f64]) -> Result<Vec<String>, usize> {
    let mut distinct: Vec<f64> = v.to_vec();
    distinct.sort_by(f64::total_cmp);
    distinct.dedup();
    let whole = v.iter().all(|x| x.is_finite() && x.fract() == 0.0);
    if !whole || distinct.len() > 50 {
        return Err(distinct.len());
    }
    Ok(v.iter().map(|x| format_number(*x)).collect())
}

/// Class ids (index into the sorted class names) of a classification table.
/// A numeric target is accepted when it holds a few whole numbers.
pub fn class_target(t: &Table, kind: &str) -> Result<(Vec<usize>, Vec<String>), StageError> {
    let (name, col) = target_column(t, kind)?;
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
        ColumnData::Numeric(v) => match numeric_class_labels(v) {
            Ok(labels) => labels,
            Err(distinct) => {
                return Err(StageError::new(format!(
                    "`{kind}` is a classifier, but the target `{name}` is continuous ({distinct} distinct values, e.g. {})",
                    short(v[0])
                ))
                .with_help(
                    "use a regression trainer (`train.linear_regression`, `train.elastic_net`, \
                     `train.sgd_regression`), or make the target categorical with `types:` in the dataset stage",
                ));
            }
        },
    };
    label_ids(name, labels)
}

/// Class ids (index into the sorted class names) of `labels`, a target
/// named `name`; an error for a single class.
fn label_ids(name: &str, labels: Vec<String>) -> Result<(Vec<usize>, Vec<String>), StageError> {
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

/// [`class_target`] when `task: classification` was asked for: any number
/// of whole-number classes, and for a continuous target help that names
/// the param.
fn class_target_asked(t: &Table, kind: &str) -> Result<(Vec<usize>, Vec<String>), StageError> {
    let (name, col) = target_column(t, kind)?;
    let ColumnData::Numeric(v) = &col.data else {
        return class_target(t, kind);
    };
    if v.iter().all(|x| x.is_finite() && x.fract() == 0.0) {
        let labels: Vec<String> = v.iter().map(|x| format_number(*x)).collect();
        return label_ids(name, labels);
    }
    if v.iter().any(|x| !x.is_finite()) {
        return class_target(t, kind);
    }
    Err(StageError::new(format!(
        "`task: classification` needs classes, and the target `{name}` is continuous (e.g. {})",
        v.iter()
            .find(|x| x.fract() != 0.0)
            .map_or(String::new(), |x| short(*x))
    ))
    .with_help(
        "set `task: regression`, or leave `task` out: a continuous target makes a regression",
    ))
}

/// Numbers in numeric order, then text.
fn natural(a: &str, b: &str) -> std::cmp::Ordering {
    match (a.parse::<f64>(), b.parse::<f64>()) {
        (Ok(x), Ok(y)) => x.total_cmp(&y),
        _ => a.cmp(b),
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

/// The growth limits every tree trainer shares.
fn check_tree_limits(
    max_depth: Option<usize>,
    min_samples_split: usize,
    min_samples_leaf: usize,
) -> Result<(), ParamError> {
    if max_depth == Some(0) {
        return Err(ParamError::new(
            &["max_depth"],
            "`max_depth` must be at least 1 (leave it out for no limit)",
        ));
    }
    if min_samples_split < 2 {
        return Err(ParamError::new(
            &["min_samples_split"],
            "`min_samples_split` must be at least 2",
        ));
    }
    if min_samples_leaf == 0 {
        return Err(ParamError::new(
            &["min_samples_leaf"],
            "`min_samples_leaf` must be at least 1",
        ));
    }
    Ok(())
}

/// A share strictly between 0 and 1.
fn fraction(name: &str, v: f64) -> Result<(), ParamError> {
    if v > 0.0 && v < 1.0 {
        Ok(())
    } else {
        Err(ParamError::new(
            &[name],
            format!("`{name}` must be in (0, 1), got {v}"),
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

// Params shared by several trainers: their docs, then their defaults.

const SEED_DOC: ParamDoc = ParamDoc::new(
    "seed",
    "integer",
    "random seed: same data and seed give the same model",
);
const MIN_SAMPLES_SPLIT_DOC: ParamDoc = ParamDoc::new(
    "min_samples_split",
    "integer",
    "rows a node needs to be split",
);
const MIN_SAMPLES_LEAF_DOC: ParamDoc = ParamDoc::new(
    "min_samples_leaf",
    "integer",
    "rows each leaf keeps at least",
);
const CRITERION_DOC: ParamDoc = ParamDoc::new(
    "criterion",
    "`gini` | `entropy` | `squared_error`",
    "split quality: `gini` or `entropy` for classes, `squared_error` for a regression",
)
.unset("`gini` for classes, `squared_error` for a regression");

/// A tree trainer's labels and split criterion for the prepared target;
/// an error for a criterion of the other task.
fn tree_labels<'d>(
    d: &'d TrainData<'_>,
    criterion: Option<Criterion>,
    kind: &str,
) -> Result<(crate::algo::cart::Labels<'d>, Criterion), StageError> {
    use crate::algo::cart::Labels;
    match &d.target {
        Target::Values(v) => match criterion {
            None | Some(Criterion::SquaredError) => Ok((
                Labels::Values(v.as_slice().expect("contiguous")),
                Criterion::SquaredError,
            )),
            Some(c) => Err(StageError::new(format!(
                "`{kind}` is fitting a regression, and criterion `{}` is for classes",
                serde_json::to_value(c).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default()
            ))
            .with_help("use `criterion: squared_error`, or leave it out; or set `task: classification`")),
        },
        Target::Classes { ids, names } => match criterion {
            Some(Criterion::SquaredError) => Err(StageError::new(format!(
                "`{kind}` is fitting a classification, and criterion `squared_error` is for a regression"
            ))
            .with_help("use `criterion: gini` or `entropy`, or leave it out; or set `task: regression`")),
            c => Ok((
                Labels::Classes {
                    y: ids,
                    k: names.len(),
                },
                c.unwrap_or(Criterion::Gini),
            )),
        },
        Target::None => unreachable!("tree trainers are supervised"),
    }
}

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
