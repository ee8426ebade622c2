//! The `model` artifact: a fitted model with everything needed to score raw
//! rows — its input schema, the preprocessing chain it was trained behind,
//! the class names, its params and the lineage of the data it saw.
//!
//! On disk it is `model.json` (schema in `docs/artifacts.md`). The fitted
//! part is plain numbers where the model is a formula (linear and logistic
//! models, trees, centroids) and linfa's own serde form elsewhere (naive
//! Bayes, SVM). It is data, never code: loading it executes nothing.

use std::path::Path;

use ndarray::{Array1, Array2, ArrayView1, ShapeBuilder};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::algo::cart::Tree;
use crate::table::{ColumnData, Table};
use crate::transform::{raw_inputs, Transform};

/// Current schema version of `model.json`.
pub const MODEL_SCHEMA_VERSION: u32 = 1;

/// What a model predicts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Task {
    Regression,
    Classification,
    Clustering,
}

impl Task {
    pub fn as_str(self) -> &'static str {
        match self {
            Task::Regression => "regression",
            Task::Classification => "classification",
            Task::Clustering => "clustering",
        }
    }
}

/// A raw input column the model needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InputColumn {
    pub name: String,
    /// `numeric` or `categorical`.
    #[serde(rename = "type")]
    pub ty: String,
}

/// Where the training data came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Lineage {
    /// The stage that trained the model.
    pub stage: String,
    /// BLAKE3 of the training table file.
    pub data_hash: String,
    pub rows: usize,
}

/// The fitted parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "algorithm", rename_all = "snake_case")]
pub enum Fitted {
    /// `y = coefficients · x + intercept`.
    Linear {
        coefficients: Vec<f64>,
        intercept: f64,
    },
    /// Class scores `s_k = coefficients[k] · x + intercepts[k]`, probabilities
    /// by softmax (binary models have a zero row for the first class).
    Softmax {
        coefficients: Vec<Vec<f64>>,
        intercepts: Vec<f64>,
    },
    /// One tree (see [`Tree`]): leaves hold class probabilities, or the
    /// predicted value for a regression.
    Tree { tree: Tree },
    /// Trees whose leaves (class probabilities, or values for a
    /// regression) are averaged.
    Forest { trees: Vec<Tree> },
    /// Gradient-boosted trees (see [`crate::algo::gbm::Booster`]): raw
    /// scores summed over trees; values for a regression, probabilities by
    /// the sigmoid (two classes) or softmax.
    Boosting {
        #[serde(flatten)]
        booster: crate::algo::gbm::Booster,
    },
    /// A multilayer perceptron (see [`crate::algo::mlp::Network`]): its
    /// output is the value (regression) or class logits (softmax).
    Mlp { network: crate::algo::mlp::Network },
    /// linfa's `GaussianNb<f64, usize>` in its serde form.
    GaussianNb { model: Value },
    /// linfa's `Svm<f64, bool>`: one per pair of classes `(i, j)` in
    /// `pairs` (true = `j`), the class with the most votes wins
    /// (one-vs-one, as libsvm). Models written before `pairs` have one
    /// machine per class (one-vs-rest, the highest score wins) or one for a
    /// binary problem.
    Svm {
        machines: Vec<Value>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        pairs: Vec<(usize, usize)>,
    },
    /// Kernel SVMs (libsvm's form: support vectors, `yᵢαᵢ`, `rho`), one per
    /// pair of classes `(i, j)` in `pairs` (a positive decision value votes
    /// for `j`), the class with the most votes wins (one-vs-one).
    KernelSvm {
        kernel: crate::algo::smo::KernelFn,
        machines: Vec<crate::algo::smo::KernelMachine>,
        pairs: Vec<(usize, usize)>,
    },
    /// Linear SVMs, one per pair of classes `(i, j)` in `pairs` (a
    /// positive `coef[m]·x + intercept[m]` votes for `j`), the class with
    /// the most votes wins (one-vs-one, as [`Fitted::Svm`]).
    LinearSvm {
        coef: Vec<Vec<f64>>,
        intercept: Vec<f64>,
        pairs: Vec<(usize, usize)>,
    },
    /// Nearest centroid.
    Centroids { centroids: Vec<Vec<f64>> },
    /// An ONNX graph (see [`crate::onnx`]): which graph inputs take which
    /// feature columns, the output read, and the file itself (base64).
    Onnx {
        inputs: Vec<crate::onnx::OnnxInput>,
        output: String,
        /// A classifier's output: probabilities or logits.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        scores: Option<crate::onnx::Scores>,
        onnx: crate::onnx::OnnxGraph,
    },
}

/// `model.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Model {
    /// Always `mlcycle.model`.
    pub format: String,
    pub schema_version: u32,
    /// The stage kind that trained it, e.g. `train.linear_regression`.
    pub kind: String,
    pub task: Task,
    /// Raw columns a scored table must have.
    pub inputs: Vec<InputColumn>,
    /// Columns in the training data that the model ignores on purpose.
    #[serde(default)]
    pub ignored: Vec<String>,
    /// Preprocessing applied to raw rows before `features` are taken.
    pub transforms: Vec<Transform>,
    /// The model's feature columns (after `transforms`), in matrix order.
    pub features: Vec<String>,
    pub target: Option<String>,
    /// Class names, index = class id (classification and clustering).
    #[serde(default)]
    pub classes: Vec<String>,
    pub params: Value,
    pub lineage: Lineage,
    pub fitted: Fitted,
    /// Feature importances (aligned with `features`, summing to 1): a tree
    /// model's mean decrease in impurity, a booster's split gain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub feature_importances: Option<Vec<f64>>,
}

/// Predictions for a batch of rows.
#[derive(Debug, Clone, PartialEq)]
pub enum Predictions {
    Values(Vec<f64>),
    /// Class ids and, per row, the probability of each class.
    Classes {
        ids: Vec<usize>,
        proba: Option<Vec<Vec<f64>>>,
    },
}

/// Why a model cannot score a table, or cannot be loaded.
#[derive(Debug, Clone, PartialEq, thiserror::Error, miette::Diagnostic)]
pub enum ModelError {
    #[diagnostic(code(mlcycle::model::load))]
    #[error("{0}")]
    Load(String),
    #[diagnostic(code(mlcycle::model::missing_columns))]
    #[error("the table lacks column(s) the model needs: {}", .0.join(", "))]
    MissingColumns(Vec<String>),
    #[diagnostic(code(mlcycle::model::extra_columns))]
    #[error("the table has column(s) the model was not trained on: {}", .0.join(", "))]
    ExtraColumns(Vec<String>),
    #[diagnostic(code(mlcycle::model::column_type))]
    #[error("column `{column}` is {found}, but the model was trained on a {want} column")]
    ColumnType {
        column: String,
        found: String,
        want: String,
    },
    #[diagnostic(code(mlcycle::model::not_finite))]
    #[error("column `{column}` has {count} missing or non-finite value(s) (first at row {row})")]
    NotFinite {
        column: String,
        count: usize,
        row: usize,
    },
    #[diagnostic(code(mlcycle::model::chain))]
    #[error("the table was preprocessed differently from the model's training data ({0})")]
    Chain(String),
    #[diagnostic(code(mlcycle::model::apply))]
    #[error("{0}")]
    Apply(String),
    /// The model itself failed on valid rows (an ONNX graph's runtime
    /// error): not the caller's fault.
    #[diagnostic(code(mlcycle::model::runtime))]
    #[error("{0}")]
    Runtime(String),
    /// The model's output for a row is NaN or infinite (an input far
    /// outside the training data).
    #[diagnostic(code(mlcycle::model::no_finite_prediction))]
    #[error("row {row}: the model gives no finite prediction for these values")]
    NoFinitePrediction { row: usize },
}

/// Why a text is not a model document [`Model::from_json`] can read.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum ModelFileError {
    #[diagnostic(code(mlcycle::model::not_json))]
    #[error("not a JSON model file: {0}")]
    NotJson(#[source] serde_json::Error),
    #[diagnostic(code(mlcycle::model::other_format))]
    #[error("a `{0}` file, not a model")]
    OtherFormat(String),
    #[diagnostic(code(mlcycle::model::no_format))]
    #[error("not a model file (no `format: mlcycle.model`)")]
    NoFormat,
    #[diagnostic(code(mlcycle::model::schema_version))]
    #[error(
        "model schema version {0}; this mlcycle reads version 1 to {MODEL_SCHEMA_VERSION}: \
         use the mlcycle that wrote it, or retrain"
    )]
    SchemaVersion(u64),
    #[diagnostic(code(mlcycle::model::malformed))]
    #[error("malformed model: {0}")]
    Malformed(#[source] serde_json::Error),
}

/// How strictly [`Model::prepare`] treats columns the model does not use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Extra {
    /// Unknown columns are an error (scoring, serving).
    Refuse,
    /// Unknown columns are ignored (evaluation on a split that carries
    /// every column of the data set).
    Ignore,
}

impl Model {
    /// Loads and checks a model file: mlcycle's `model.json`, or an ONNX
    /// file (told apart by content; see [`Model::from_onnx`]).
    pub fn read(path: &Path) -> Result<Model, ModelError> {
        let bytes = std::fs::read(path)
            .map_err(|e| ModelError::Load(format!("cannot read {}: {e}", path.display())))?;
        if bytes.is_empty() {
            return Err(ModelError::Load(format!(
                "{} is empty: not a model",
                path.display()
            )));
        }
        if crate::onnx::looks_like_onnx(&bytes) {
            return Model::from_onnx(bytes)
                .map_err(|e| ModelError::Load(format!("{}: {e}", path.display())));
        }
        let text = String::from_utf8(bytes).map_err(|_| {
            ModelError::Load(format!(
                "{}: neither a JSON model nor an ONNX file",
                path.display()
            ))
        })?;
        Model::from_json(&text).map_err(|e| ModelError::Load(format!("{}: {e}", path.display())))
    }

    /// A model from an ONNX file: its schema from the graph and its
    /// `mlcycle.*` metadata (see [`crate::onnx`]). Checks that the graph
    /// compiles, so a model that cannot score is refused when it is read.
    ///
    /// # Errors
    /// Not ONNX; inputs that are not numeric tensors; unnamed features or
    /// classes; operators the runtime lacks.
    pub fn from_onnx(bytes: Vec<u8>) -> Result<Model, crate::onnx::OnnxError> {
        let info = crate::onnx::inspect(&bytes)?;
        let graph = crate::onnx::OnnxGraph::new(bytes);
        crate::onnx::check(&graph, &info.inputs, &info.output)?;
        let model = Model {
            format: "mlcycle.model".into(),
            schema_version: MODEL_SCHEMA_VERSION,
            kind: info.kind,
            task: info.task,
            inputs: info
                .features
                .iter()
                .map(|f| InputColumn {
                    name: f.clone(),
                    ty: "numeric".into(),
                })
                .collect(),
            ignored: vec![],
            transforms: vec![],
            features: info.features,
            target: info.target,
            classes: info.classes,
            params: info.params,
            lineage: Lineage {
                stage: info.stage,
                data_hash: info.data_hash,
                rows: info.rows,
            },
            fitted: Fitted::Onnx {
                inputs: info.inputs,
                output: info.output,
                scores: info.scores,
                onnx: graph,
            },
            feature_importances: None,
        };
        // Score a few rows now, so a graph that compiles but cannot run
        // (a batch size it mishandles, a type an operator lacks) or that
        // contradicts its metadata (classes, output) is refused when read,
        // not when serving.
        let probe = Array2::<f64>::zeros((3, model.features.len()));
        model
            .predict(&probe)
            .map_err(|e| crate::onnx::OnnxError(format!("the graph cannot score rows: {e}")))?;
        Ok(model)
    }

    /// Parses a model document, checking its format and schema version.
    pub fn from_json(text: &str) -> Result<Model, ModelFileError> {
        // One pass over the document in the common case (a forest's file is
        // tens of MB); the head is read on its own only to say why a
        // document is not a model this mlcycle reads.
        let parsed = serde_json::from_str::<Model>(text);
        if let Ok(m) = &parsed {
            if m.format == "mlcycle.model" && (1..=MODEL_SCHEMA_VERSION).contains(&m.schema_version)
            {
                return parsed.map_err(ModelFileError::Malformed);
            }
        }
        #[derive(Deserialize)]
        struct Head {
            format: Option<Value>,
            schema_version: Option<Value>,
        }
        let head: Head = match serde_json::from_str(text) {
            Ok(head) => head,
            // JSON, but not an object (an array, a number): not a model.
            Err(_) if serde_json::from_str::<serde::de::IgnoredAny>(text).is_ok() => {
                return Err(ModelFileError::NoFormat)
            }
            Err(e) => return Err(ModelFileError::NotJson(e)),
        };
        match head.format.as_ref().and_then(Value::as_str) {
            Some("mlcycle.model") => {}
            Some(other) => return Err(ModelFileError::OtherFormat(other.to_string())),
            None => return Err(ModelFileError::NoFormat),
        }
        let v = head
            .schema_version
            .as_ref()
            .and_then(Value::as_u64)
            .unwrap_or(0);
        if v == 0 || v > MODEL_SCHEMA_VERSION as u64 {
            return Err(ModelFileError::SchemaVersion(v));
        }
        parsed.map_err(ModelFileError::Malformed)
    }

    /// Copies the model file `from` to `to`: byte for byte, except an ONNX
    /// file, which becomes a `model.json` document holding it (so a file
    /// named `*.json` is JSON).
    pub fn copy_file(from: &Path, to: &Path) -> Result<(), ModelError> {
        let bytes = std::fs::read(from)
            .map_err(|e| ModelError::Load(format!("cannot read {}: {e}", from.display())))?;
        let out = if crate::onnx::looks_like_onnx(&bytes) {
            let m = Model::from_onnx(bytes)
                .map_err(|e| ModelError::Load(format!("{}: {e}", from.display())))?;
            let mut s = crate::util::to_json_readable(&m);
            s.push('\n');
            s.into_bytes()
        } else {
            bytes
        };
        std::fs::write(to, out)
            .map_err(|e| ModelError::Load(format!("cannot write {}: {e}", to.display())))
    }

    /// Writes `model.json` (objects indented, arrays on one line; stable
    /// key order).
    pub fn write(&self, path: &Path) -> std::io::Result<()> {
        let mut s = crate::util::to_json_readable(self);
        s.push('\n');
        std::fs::write(path, s)
    }

    /// Builds the schema part of a model from its training table.
    // Each argument is a distinct part of the document; a builder would
    // only rename them.
    #[allow(clippy::too_many_arguments)]
    pub fn describe(
        kind: &str,
        task: Task,
        train: &Table,
        features: &[String],
        classes: Vec<String>,
        params: Value,
        lineage: Lineage,
        fitted: Fitted,
    ) -> Model {
        let (need, ignored) = raw_inputs(&train.transforms, features);
        // Types of raw columns: a column that still exists untransformed
        // tells its type; otherwise the step that read it decides.
        let inputs = need
            .into_iter()
            .map(|name| {
                let ty = raw_type(&train.transforms, &name, train);
                InputColumn { name, ty }
            })
            .collect();
        Model {
            format: "mlcycle.model".into(),
            schema_version: MODEL_SCHEMA_VERSION,
            kind: kind.into(),
            task,
            inputs,
            ignored,
            transforms: train.transforms.clone(),
            features: features.to_vec(),
            target: train.target.clone(),
            classes,
            params,
            lineage,
            fitted,
            feature_importances: None,
        }
    }

    /// Checks `t` against the input schema, applies the transforms the
    /// table has not had yet, and returns the feature matrix.
    pub fn prepare(&self, t: &Table, extra: Extra) -> Result<Array2<f64>, ModelError> {
        // The table may already carry a prefix of the model's chain (a
        // scaled test split); apply the rest.
        let done = t.transforms.len();
        if done > self.transforms.len() || t.transforms[..] != self.transforms[..done] {
            return Err(ModelError::Chain(format!(
                "the table has {} preprocessing step(s) the model did not see; pass the raw table",
                done
            )));
        }
        if done == 0 {
            let missing: Vec<String> = self
                .inputs
                .iter()
                .filter(|c| t.column(&c.name).is_none())
                .map(|c| c.name.clone())
                .collect();
            if !missing.is_empty() {
                return Err(ModelError::MissingColumns(missing));
            }
            for c in &self.inputs {
                let col = t.column(&c.name).expect("checked above");
                // A column with no value at all reads from CSV as numeric:
                // every value of a categorical input is then missing.
                let as_categories = c.ty == "categorical" && col.data.as_categories().is_some();
                if col.data.type_name() != c.ty && !as_categories {
                    return Err(ModelError::ColumnType {
                        column: c.name.clone(),
                        found: col.data.type_name().into(),
                        want: c.ty.clone(),
                    });
                }
            }
            if extra == Extra::Refuse {
                let extras: Vec<String> = t
                    .names()
                    .into_iter()
                    .filter(|n| {
                        !self.inputs.iter().any(|c| c.name == *n)
                            && !self.ignored.iter().any(|c| c == n)
                            && self.target.as_deref() != Some(*n)
                    })
                    .map(str::to_string)
                    .collect();
                if !extras.is_empty() {
                    return Err(ModelError::ExtraColumns(extras));
                }
            }
        }
        // Work on a copy of the columns the model reads (of every column
        // when the table is partly transformed already), so transforms see
        // only known columns and nothing else is copied.
        let mut t = if done == 0 {
            Table {
                columns: t
                    .columns
                    .iter()
                    .filter(|c| self.inputs.iter().any(|i| i.name == c.name))
                    .cloned()
                    .collect(),
                target: None,
                transforms: vec![],
            }
        } else {
            t.clone()
        };
        for step in &self.transforms[done..] {
            if let Transform::Drop { .. } = step {
                continue;
            }
            step.apply(&mut t)
                .map_err(|e| ModelError::Apply(e.to_string()))?;
        }
        matrix_with(&t, &self.features, self.takes_missing())
    }

    /// Whether the model scores rows with a missing (NaN) feature value:
    /// gradient boosting learned where they go, and an ONNX graph decides
    /// for itself. Other models refuse them.
    pub fn takes_missing(&self) -> bool {
        matches!(self.fitted, Fitted::Onnx { .. } | Fitted::Boosting { .. })
    }

    /// Predictions from averaged tree leaves: class probabilities, or for a
    /// regression the mean of the leaves' values.
    fn tree_predictions(&self, leaves: Vec<Vec<f64>>) -> Predictions {
        match self.task {
            Task::Regression => Predictions::Values(leaves.iter().map(|v| v[0]).collect()),
            _ => classes_from_proba(leaves),
        }
    }

    /// Scores a feature matrix built by [`Model::prepare`].
    pub fn predict(&self, x: &Array2<f64>) -> Result<Predictions, ModelError> {
        let pred = self.predict_unchecked(x)?;
        // A NaN or infinite output is an error, never a `null` prediction
        // (row numbers are 1-based, as in the other row errors).
        let bad = match &pred {
            Predictions::Values(v) => v.iter().position(|x| !x.is_finite()),
            Predictions::Classes { proba: Some(p), .. } => {
                p.iter().position(|r| r.iter().any(|x| !x.is_finite()))
            }
            Predictions::Classes { proba: None, .. } => None,
        };
        match bad {
            Some(i) => Err(ModelError::NoFinitePrediction { row: i + 1 }),
            None => Ok(pred),
        }
    }

    fn predict_unchecked(&self, x: &Array2<f64>) -> Result<Predictions, ModelError> {
        Ok(match &self.fitted {
            Fitted::Linear {
                coefficients,
                intercept,
            } => {
                let w = Array1::from(coefficients.clone());
                Predictions::Values((x.dot(&w) + *intercept).to_vec())
            }
            Fitted::Softmax {
                coefficients,
                intercepts,
            } => {
                let proba: Vec<Vec<f64>> = x
                    .rows()
                    .into_iter()
                    .map(|r| {
                        let s: Vec<f64> = coefficients
                            .iter()
                            .zip(intercepts)
                            .map(|(w, b)| dot(w, r) + b)
                            .collect();
                        softmax(&s)
                    })
                    .collect();
                classes_from_proba(proba)
            }
            Fitted::Tree { tree } => self.tree_predictions(forest_proba(
                x,
                std::slice::from_ref(tree),
                self.classes.len().max(1),
            )),
            Fitted::Forest { trees } => {
                self.tree_predictions(forest_proba(x, trees, self.classes.len().max(1)))
            }
            Fitted::Mlp { network } => {
                // The network computes in float32: a larger input would
                // be infinite there and give a meaningless answer.
                if let Some(((row, col), v)) = x
                    .indexed_iter()
                    .find(|(_, v)| v.abs() > f64::from(f32::MAX))
                {
                    return Err(ModelError::Apply(format!(
                        "row {}: `{}` is {v}, beyond the float32 range (±3.4e38) the network computes in",
                        row + 1,
                        self.features.get(col).map_or("?", String::as_str)
                    )));
                }
                let out = network.forward(x);
                match self.task {
                    Task::Regression => Predictions::Values(out.column(0).to_vec()),
                    _ => classes_from_proba(
                        out.rows()
                            .into_iter()
                            .map(|r| softmax(&r.to_vec()))
                            .collect(),
                    ),
                }
            }
            Fitted::Boosting { booster } => {
                let raw = booster.raw_matrix(x);
                match self.task {
                    Task::Regression => Predictions::Values(raw.iter().map(|r| r[0]).collect()),
                    _ if booster.columns() == 1 => classes_from_proba(
                        raw.iter()
                            .map(|r| {
                                let p = crate::algo::gbm::sigmoid(r[0]);
                                vec![1.0 - p, p]
                            })
                            .collect(),
                    ),
                    _ => classes_from_proba(raw.iter().map(|r| softmax(r)).collect()),
                }
            }
            Fitted::GaussianNb { model } => {
                let nb: linfa_bayes::GaussianNb<f64, usize> = serde_json::from_value(model.clone())
                    .map_err(|e| ModelError::Load(format!("naive Bayes parameters: {e}")))?;
                classes_from_proba(nb_proba(&nb, x, self.classes.len()))
            }
            Fitted::Svm { machines, pairs } => {
                let svms: Vec<linfa_svm::Svm<f64, bool>> = machines
                    .iter()
                    .map(|m| serde_json::from_value(m.clone()))
                    .collect::<Result<_, _>>()
                    .map_err(|e| ModelError::Load(format!("SVM parameters: {e}")))?;
                let k = self.classes.len();
                let ids = x
                    .rows()
                    .into_iter()
                    .map(|r| {
                        let scores: Vec<f64> =
                            svms.iter().map(|s| s.weighted_sum(&r) - s.rho).collect();
                        if !pairs.is_empty() {
                            argmax(&ovo_votes(&scores, pairs, k))
                        } else if svms.len() == 1 {
                            usize::from(scores[0] >= 0.0)
                        } else {
                            argmax(&scores)
                        }
                    })
                    .collect();
                Predictions::Classes { ids, proba: None }
            }
            Fitted::KernelSvm {
                kernel,
                machines,
                pairs,
            } => {
                let k = self.classes.len();
                let scores: Vec<Array1<f64>> = machines
                    .iter()
                    .map(|m| crate::algo::smo::decision(m, *kernel, x.view()))
                    .collect();
                let ids = (0..x.nrows())
                    .map(|r| {
                        let s: Vec<f64> = scores.iter().map(|d| d[r]).collect();
                        argmax(&ovo_votes(&s, pairs, k))
                    })
                    .collect();
                Predictions::Classes { ids, proba: None }
            }
            Fitted::LinearSvm {
                coef,
                intercept,
                pairs,
            } => {
                let k = self.classes.len();
                let ids = x
                    .rows()
                    .into_iter()
                    .map(|r| {
                        let scores: Vec<f64> = coef
                            .iter()
                            .zip(intercept)
                            .map(|(w, b)| w.iter().zip(r).map(|(w, v)| w * v).sum::<f64>() + b)
                            .collect();
                        argmax(&ovo_votes(&scores, pairs, k))
                    })
                    .collect();
                Predictions::Classes { ids, proba: None }
            }
            Fitted::Onnx {
                inputs,
                output,
                scores,
                onnx,
            } => {
                self.check_integer_inputs(inputs, x)?;
                let y = crate::onnx::run(onnx, inputs, output, x)
                    .map_err(|e| ModelError::Runtime(e.0))?;
                self.onnx_predictions(y, *scores)?
            }
            Fitted::Centroids { centroids } => {
                let ids = x
                    .rows()
                    .into_iter()
                    .map(|r| {
                        let d: Vec<f64> = centroids
                            .iter()
                            .map(|c| -c.iter().zip(r).map(|(a, b)| (a - b) * (a - b)).sum::<f64>())
                            .collect();
                        argmax(&d)
                    })
                    .collect();
                Predictions::Classes { ids, proba: None }
            }
        })
    }
}

impl Model {
    /// An integer graph input takes whole numbers only: a fraction or a
    /// missing value would be cut silently.
    fn check_integer_inputs(
        &self,
        inputs: &[crate::onnx::OnnxInput],
        x: &Array2<f64>,
    ) -> Result<(), ModelError> {
        let mut col = 0;
        for i in inputs {
            if i.elem.starts_with("int") {
                for j in col..col + i.width {
                    let bad = x.column(j).iter().position(|v| {
                        !v.is_finite() || v.fract() != 0.0 || v.abs() > 9.007_199_254_740_992e15
                    });
                    if let Some(r) = bad {
                        return Err(ModelError::Apply(format!(
                            "column `{}` feeds the graph's integer input `{}`; row {} has {}, not a whole number",
                            self.features.get(j).map(String::as_str).unwrap_or("?"),
                            i.name,
                            r + 1,
                            x[(r, j)]
                        )));
                    }
                }
            }
            col += i.width;
        }
        Ok(())
    }

    /// Predictions from an ONNX graph's output (rows × columns).
    fn onnx_predictions(
        &self,
        y: Array2<f64>,
        scores: Option<crate::onnx::Scores>,
    ) -> Result<Predictions, ModelError> {
        match self.task {
            Task::Regression => {
                if y.ncols() != 1 {
                    return Err(ModelError::Apply(format!(
                        "the ONNX regressor's output has {} columns; mlcycle scores one target",
                        y.ncols()
                    )));
                }
                Ok(Predictions::Values(y.column(0).to_vec()))
            }
            Task::Classification => {
                let k = self.classes.len();
                if scores == Some(crate::onnx::Scores::Decision) {
                    // Decision scores: the highest wins (one column: its
                    // sign picks the second class); no probabilities.
                    let ids: Vec<usize> = if y.ncols() == k {
                        y.rows().into_iter().map(|r| argmax(&r.to_vec())).collect()
                    } else if y.ncols() == 1 && k == 2 {
                        y.column(0).iter().map(|&v| usize::from(v > 0.0)).collect()
                    } else {
                        return Err(ModelError::Apply(format!(
                            "the ONNX classifier's output has {} columns for {k} classes ({})",
                            y.ncols(),
                            self.classes.join(", ")
                        )));
                    };
                    return Ok(Predictions::Classes { ids, proba: None });
                }
                let logits = scores == Some(crate::onnx::Scores::Logits);
                let proba: Vec<Vec<f64>> = if y.ncols() == k {
                    y.rows()
                        .into_iter()
                        .map(|r| {
                            let r = r.to_vec();
                            if logits {
                                softmax(&r)
                            } else {
                                r
                            }
                        })
                        .collect()
                } else if y.ncols() == 1 && k == 2 {
                    // One column: the second class's probability (or logit).
                    y.column(0)
                        .iter()
                        .map(|&v| {
                            let p = if logits { 1.0 / (1.0 + (-v).exp()) } else { v };
                            vec![1.0 - p, p]
                        })
                        .collect()
                } else {
                    return Err(ModelError::Apply(format!(
                        "the ONNX classifier's output has {} columns for {k} classes ({})",
                        y.ncols(),
                        self.classes.join(", ")
                    )));
                };
                Ok(classes_from_proba(proba))
            }
            Task::Clustering => Err(ModelError::Apply(
                "ONNX clustering models are not supported".into(),
            )),
        }
    }
}

fn raw_type(chain: &[Transform], name: &str, train: &Table) -> String {
    for step in chain {
        if step.reads().iter().any(|r| r == name) {
            return match step {
                Transform::OneHot { .. } => "categorical".into(),
                Transform::Impute {
                    columns, values, ..
                } => {
                    let i = columns.iter().position(|c| c == name).unwrap_or(0);
                    match values.get(i) {
                        Some(crate::transform::Fill::Category(_)) => "categorical".into(),
                        _ => "numeric".into(),
                    }
                }
                _ => "numeric".into(),
            };
        }
    }
    train
        .column(name)
        .map(|c| c.data.type_name().to_string())
        .unwrap_or_else(|| "numeric".into())
}

fn dot(w: &[f64], r: ArrayView1<f64>) -> f64 {
    w.iter().zip(r).map(|(a, b)| a * b).sum()
}

/// Softmax, stable against overflow.
pub fn softmax(s: &[f64]) -> Vec<f64> {
    let m = s.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let e: Vec<f64> = s.iter().map(|v| (v - m).exp()).collect();
    let z: f64 = e.iter().sum();
    e.into_iter().map(|v| v / z).collect()
}

/// Index of the largest value; the first one wins a tie.
pub fn argmax(v: &[f64]) -> usize {
    let mut best = 0;
    for (i, x) in v.iter().enumerate() {
        if *x > v[best] {
            best = i;
        }
    }
    best
}

/// One-vs-one votes per class, with ties broken by the summed confidence
/// squashed into (−1/3, 1/3), as scikit-learn's `_ovr_decision_function`:
/// machine `m` on pair `(i, j)` votes `j` when `scores[m] ≥ 0`, else `i`.
fn ovo_votes(scores: &[f64], pairs: &[(usize, usize)], k: usize) -> Vec<f64> {
    let mut votes = vec![0.0; k];
    let mut confidence = vec![0.0; k];
    for (&s, &(i, j)) in scores.iter().zip(pairs) {
        if s >= 0.0 {
            votes[j] += 1.0;
        } else {
            votes[i] += 1.0;
        }
        confidence[i] -= s;
        confidence[j] += s;
    }
    votes
        .iter()
        .zip(&confidence)
        .map(|(v, c)| v + c / (3.0 * (c.abs() + 1.0)))
        .collect()
}

/// The mean of `trees`' leaf probabilities for each row of `x`: rows ×
/// `k`. Blocks of rows in parallel, and within a block one tree at a time
/// over every row, so that a tree's arrays stay in cache (a forest of 100
/// deep trees scored 10 000 rows in 3 s row by row, one copy of a leaf
/// per tree and row).
fn forest_proba(x: &Array2<f64>, trees: &[crate::algo::cart::Tree], k: usize) -> Vec<Vec<f64>> {
    use rayon::prelude::*;
    const BLOCK: usize = 256;
    let x = x.as_standard_layout();
    let (n, f) = x.dim();
    let xs = x.as_slice().expect("standard layout");
    let count = trees.len().max(1) as f64;
    (0..n.div_ceil(BLOCK))
        .into_par_iter()
        .flat_map_iter(|b| {
            let rows = b * BLOCK..((b + 1) * BLOCK).min(n);
            let mut out = vec![vec![0.0; k]; rows.len()];
            for t in trees {
                for (p, r) in out.iter_mut().zip(rows.clone()) {
                    for (a, v) in p.iter_mut().zip(t.leaf_of(&xs[r * f..(r + 1) * f])) {
                        *a += v;
                    }
                }
            }
            for p in &mut out {
                p.iter_mut().for_each(|a| *a /= count);
            }
            out
        })
        .collect()
}

/// Class probabilities of a Gaussian naive Bayes model, rows × `k`
/// classes: the joint log-likelihoods normalised by a log-sum-exp that
/// subtracts each row's maximum first, so rows far from every class do not
/// underflow. A class without training rows gets probability 0.
fn nb_proba(nb: &linfa_bayes::GaussianNb<f64, usize>, x: &Array2<f64>, k: usize) -> Vec<Vec<f64>> {
    use linfa_bayes::NaiveBayes;
    let n = x.nrows();
    let mut logs = vec![vec![f64::NEG_INFINITY; k]; n];
    for (&&class, jll) in &nb.joint_log_likelihood(x.view()) {
        if class < k {
            for (row, l) in logs.iter_mut().zip(jll) {
                row[class] = *l;
            }
        }
    }
    logs.into_iter()
        .map(|row| {
            let max = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let e: Vec<f64> = row.iter().map(|l| (l - max).exp()).collect();
            let sum: f64 = e.iter().sum();
            e.into_iter().map(|v| v / sum).collect()
        })
        .collect()
}

fn classes_from_proba(proba: Vec<Vec<f64>>) -> Predictions {
    Predictions::Classes {
        ids: proba.iter().map(|p| argmax(p)).collect(),
        proba: Some(proba),
    }
}

/// The feature matrix of `names` from `t`: numeric, finite, no gaps.
pub fn matrix(t: &Table, names: &[String]) -> Result<Array2<f64>, ModelError> {
    matrix_with(t, names, false)
}

/// [`matrix`], letting missing values (NaN) through when `missing_ok`: a
/// boosting model or an ONNX graph decides what a missing value means
/// (gradient boosting routes it down a learned branch).
pub(crate) fn matrix_with(
    t: &Table,
    names: &[String],
    missing_ok: bool,
) -> Result<Array2<f64>, ModelError> {
    let n = t.n_rows();
    // Column-major: each column is one contiguous copy.
    let mut data: Vec<f64> = Vec::with_capacity(n * names.len());
    for name in names {
        let col = t
            .column(name)
            .ok_or_else(|| ModelError::MissingColumns(vec![name.clone()]))?;
        let ColumnData::Numeric(v) = &col.data else {
            return Err(ModelError::ColumnType {
                column: name.clone(),
                found: "categorical".into(),
                want: "numeric".into(),
            });
        };
        let bad: Vec<usize> = (0..n)
            .filter(|&i| !(v[i].is_finite() || missing_ok && v[i].is_nan()))
            .collect();
        if let Some(&row) = bad.first() {
            return Err(ModelError::NotFinite {
                column: name.clone(),
                count: bad.len(),
                row: row + 1,
            });
        }
        data.extend_from_slice(v);
    }
    Ok(Array2::from_shape_vec((n, names.len()).f(), data).expect("n × k values"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::Column;

    /// The head is read without building the document: a file that is not
    /// JSON, JSON that is not an object, a missing or foreign format and an
    /// unknown schema version are each named.
    #[test]
    fn model_documents_are_checked_head_first() {
        assert!(matches!(
            Model::from_json("{"),
            Err(ModelFileError::NotJson(_))
        ));
        assert!(matches!(
            Model::from_json("[1, 2]"),
            Err(ModelFileError::NoFormat)
        ));
        assert!(matches!(
            Model::from_json(r#"{"a": 1}"#),
            Err(ModelFileError::NoFormat)
        ));
        assert!(matches!(
            Model::from_json(r#"{"format": "onnx"}"#),
            Err(ModelFileError::OtherFormat(f)) if f == "onnx"
        ));
        assert!(matches!(
            Model::from_json(r#"{"format": "mlcycle.model", "schema_version": 99}"#),
            Err(ModelFileError::SchemaVersion(99))
        ));
        assert!(matches!(
            Model::from_json(r#"{"format": "mlcycle.model", "schema_version": 1}"#),
            Err(ModelFileError::Malformed(_))
        ));
    }

    /// A forest's probabilities are the mean of its trees' leaves, row by
    /// row, whatever the blocks the rows are scored in.
    #[test]
    fn forest_probabilities_are_the_mean_of_the_leaves() {
        use crate::algo::cart::{Criterion, Tree, TreeParams};
        let x = Array2::from_shape_fn((600, 2), |(i, j)| ((i * (j + 3)) % 11) as f64);
        let y: Vec<usize> = (0..600)
            .map(|i| usize::from(x[[i, 0]] + x[[i, 1]] > 10.0))
            .collect();
        let p = |seed| TreeParams {
            max_depth: Some(2),
            min_samples_split: 2,
            min_samples_leaf: 1,
            criterion: Criterion::Gini,
            max_features: Some(1),
            seed,
        };
        let trees: Vec<Tree> = (0..3)
            .map(|s| {
                let labels = crate::algo::cart::Labels::Classes { y: &y, k: 2 };
                Tree::fit(&x, labels, (0..600).collect(), &p(s))
            })
            .collect();
        let got = forest_proba(&x, &trees, 2);
        assert_eq!(got.len(), 600);
        for (i, row) in got.iter().enumerate() {
            for (c, v) in row.iter().enumerate() {
                let want = trees.iter().map(|t| t.proba(x.row(i))[c]).sum::<f64>() / 3.0;
                assert_eq!(*v, want, "row {i} class {c}");
            }
        }
    }

    /// One-vs-one: the class with most votes wins; a three-way tie (each
    /// class wins one duel) goes to the most confident, as in
    /// scikit-learn's `_ovr_decision_function`.
    #[test]
    fn one_vs_one_votes_and_breaks_ties_by_confidence() {
        let pairs = [(0, 1), (0, 2), (1, 2)];
        // 0 beats 1, 0 beats 2, 1 beats 2.
        assert_eq!(argmax(&ovo_votes(&[-1.0, -1.0, -1.0], &pairs, 3)), 0);
        // 0 beats 1 (barely), 2 beats 0 (barely), 1 beats 2 (by far).
        let v = ovo_votes(&[-0.1, 0.1, -2.0], &pairs, 3);
        assert_eq!(argmax(&v), 1, "{v:?}");
    }

    /// Naive Bayes now gives class probabilities (for log loss and ROC
    /// AUC), and they stay finite for a row far from every class.
    #[test]
    fn naive_bayes_probabilities_sum_to_one_even_far_away() {
        use linfa::traits::Fit;
        let x = ndarray::array![[0.0], [0.1], [0.2], [5.0], [5.1], [5.2]];
        let y = ndarray::array![0usize, 0, 0, 1, 1, 1];
        let nb = linfa_bayes::GaussianNb::params()
            .fit(&linfa::Dataset::new(x, y))
            .unwrap();
        let q = ndarray::array![[0.1], [5.1], [2.6], [1e6]];
        let p = nb_proba(&nb, &q, 2);
        for row in &p {
            assert!(row.iter().all(|v| v.is_finite()), "{row:?}");
            assert!((row.iter().sum::<f64>() - 1.0).abs() < 1e-12, "{row:?}");
        }
        assert!(p[0][0] > 0.99 && p[1][1] > 0.99, "{p:?}");
        assert_eq!(p[3], vec![0.0, 1.0]);
    }

    fn table() -> Table {
        Table {
            columns: vec![
                Column {
                    name: "area".into(),
                    data: ColumnData::Numeric(vec![1.0, 2.0]),
                },
                Column {
                    name: "price".into(),
                    data: ColumnData::Numeric(vec![3.0, 5.0]),
                },
            ],
            target: Some("price".into()),
            transforms: vec![Transform::Scale {
                method: "standard".into(),
                columns: vec!["area".into()],
                offsets: vec![1.0],
                scales: vec![2.0],
            }],
        }
    }

    fn model() -> Model {
        Model::describe(
            "train.linear_regression",
            Task::Regression,
            &table(),
            &["area".to_string()],
            vec![],
            Value::Null,
            Lineage {
                stage: "ols".into(),
                data_hash: "00".into(),
                rows: 2,
            },
            Fitted::Linear {
                coefficients: vec![1.0],
                intercept: 3.0,
            },
        )
    }

    #[test]
    fn raw_rows_are_transformed_before_scoring() {
        let m = model();
        assert_eq!(m.inputs[0].name, "area");
        let mut raw = table();
        raw.transforms.clear();
        let x = m.prepare(&raw, Extra::Refuse).unwrap();
        assert_eq!(x.column(0).to_vec(), vec![0.0, 2.0]);
        assert_eq!(m.predict(&x).unwrap(), Predictions::Values(vec![3.0, 5.0]));
        // An already-scaled table is not scaled twice.
        let mut scaled = table();
        scaled.columns[0].data = ColumnData::Numeric(vec![0.0, 2.0]);
        let x2 = m.prepare(&scaled, Extra::Refuse).unwrap();
        assert_eq!(x2, x);
    }

    #[test]
    fn schema_problems_name_the_columns() {
        let m = model();
        let mut raw = table();
        raw.transforms.clear();
        raw.columns[0].name = "size".into();
        let e = m.prepare(&raw, Extra::Ignore).unwrap_err();
        assert_eq!(e, ModelError::MissingColumns(vec!["area".into()]));
        let mut raw = table();
        raw.transforms.clear();
        raw.columns.push(Column {
            name: "rooms".into(),
            data: ColumnData::Numeric(vec![1.0, 1.0]),
        });
        assert_eq!(
            m.prepare(&raw, Extra::Refuse).unwrap_err(),
            ModelError::ExtraColumns(vec!["rooms".into()])
        );
        assert!(m.prepare(&raw, Extra::Ignore).is_ok());
    }

    #[test]
    fn loading_checks_format_and_version() {
        let m = model();
        let text = serde_json::to_string(&m).unwrap();
        assert_eq!(Model::from_json(&text).unwrap(), m);
        let newer = text.replace("\"schema_version\":1", "\"schema_version\":99");
        assert!(Model::from_json(&newer)
            .unwrap_err()
            .to_string()
            .contains("schema version 99"));
        assert!(Model::from_json("{\"format\": \"mlcycle.transform\"}")
            .unwrap_err()
            .to_string()
            .contains("not a model"));
    }
}
