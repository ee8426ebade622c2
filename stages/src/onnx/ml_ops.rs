//! ONNX-ML operators (`ai.onnx.ml` domain) that scikit-learn exports use and
//! tract 0.21 does not implement: `TreeEnsembleRegressor`,
//! `LinearRegressor`, `LinearClassifier`, `Scaler`, `Normalizer` and
//! `Imputer`; and `TreeEnsembleClassifier`, whose tract version refuses a
//! binary model with a base value (every scikit-learn gradient-boosting
//! classifier of two classes). They are registered with tract's ONNX op register, so a graph
//! mixing them with standard operators runs as one plan.
//!
//! Semantics follow the ONNX-ML operator specification
//! (<https://onnx.ai/onnx/operators/index_ml.html>) and, where it is silent
//! (a binary classifier with one coefficient row), onnxruntime's CPU
//! kernels, which are what the exporters' own tests check against.
//! Everything is computed in `f32`, as onnxruntime does.

use tract_onnx::model::{OnnxOpRegister, ParsingContext};
use tract_onnx::pb::NodeProto;
use tract_onnx::pb_helpers::*;
use tract_onnx::tract_hir::internal::*;
use tract_onnx::tract_hir::tract_ndarray::{Array1, Array2, ArrayView2, Axis, Ix2};

/// Adds the operators of this module to `reg`.
pub fn register(reg: &mut OnnxOpRegister) {
    reg.insert("TreeEnsembleRegressor", tree_regressor);
    reg.insert("TreeEnsembleClassifier", tree_classifier);
    reg.insert("LinearRegressor", linear_regressor);
    reg.insert("LinearClassifier", linear_classifier);
    reg.insert("Scaler", scaler);
    reg.insert("Normalizer", normalizer);
    reg.insert("Imputer", imputer);
}

/// The score transform of a regressor or classifier (`post_transform`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Post {
    None,
    Logistic,
    Softmax,
    SoftmaxZero,
}

fn post_transform(node: &NodeProto) -> TractResult<Post> {
    Ok(match node.get_attr_opt::<&str>("post_transform")?.unwrap_or("NONE") {
        "NONE" => Post::None,
        "LOGISTIC" => Post::Logistic,
        "SOFTMAX" => Post::Softmax,
        "SOFTMAX_ZERO" => Post::SoftmaxZero,
        other => bail!("post_transform {other} is not supported (NONE, LOGISTIC, SOFTMAX, SOFTMAX_ZERO are)"),
    })
}

/// `values` for each of `n` columns: one value for all, or one per column.
fn per_column<'a>(
    op: &str,
    values: &'a [f32],
    n: usize,
) -> TractResult<impl Fn(usize) -> f32 + 'a> {
    ensure!(
        values.len() == 1 || values.len() == n,
        "{op} has {} values for {n} columns",
        values.len()
    );
    Ok(move |j: usize| {
        if values.len() == 1 {
            values[0]
        } else {
            values[j]
        }
    })
}

/// Index of the largest value (the first of ties).
fn argmax<'a>(v: impl Iterator<Item = &'a f32>) -> usize {
    v.enumerate()
        .fold((0, f32::NEG_INFINITY), |(bi, bv), (i, &x)| {
            if x > bv {
                (i, x)
            } else {
                (bi, bv)
            }
        })
        .0
}

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

/// Applies `post` to each row of `scores` in place.
fn apply_post(post: Post, scores: &mut Array2<f32>) {
    match post {
        Post::None => {}
        Post::Logistic => scores.mapv_inplace(sigmoid),
        Post::Softmax | Post::SoftmaxZero => {
            for mut row in scores.rows_mut() {
                let zero = post == Post::SoftmaxZero;
                let max = row
                    .iter()
                    .filter(|v| !zero || **v != 0.0)
                    .fold(f32::NEG_INFINITY, |a, &b| a.max(b));
                let mut sum = 0.0;
                for v in row.iter_mut() {
                    if zero && *v == 0.0 {
                        continue;
                    }
                    *v = (*v - max).exp();
                    sum += *v;
                }
                if sum > 0.0 {
                    row.mapv_inplace(|v| v / sum);
                }
            }
        }
    }
}

/// How an [`MlOp`] maps its input rows to outputs.
#[derive(Debug, Clone)]
enum Kind {
    /// `LinearRegressor`: `targets × features` coefficients.
    Linear {
        coef: Array2<f32>,
        intercepts: Array1<f32>,
        post: Post,
    },
    /// `LinearClassifier`: one row of coefficients per class, or one row
    /// for a binary problem (the score of the second class).
    LinearClassifier {
        coef: Array2<f32>,
        intercepts: Array1<f32>,
        post: Post,
        labels: Labels,
    },
    /// `TreeEnsembleRegressor`.
    Trees {
        ensemble: Trees,
        base: Option<Array1<f32>>,
        post: Post,
    },
    /// `TreeEnsembleClassifier`: summed leaf weights per class.
    TreeClassifier {
        ensemble: Trees,
        base: Vec<f32>,
        post: Post,
        labels: Labels,
        /// The binary layout: one class's column scored (its index), and
        /// whether every weight is positive (then the score is already a
        /// probability).
        binary: Option<(usize, bool)>,
    },
    /// `Scaler`: `(x - offset) * scale`, per column (or one value for all).
    Scaler { offset: Vec<f32>, scale: Vec<f32> },
    /// `Normalizer`: each row divided by its `MAX`, `L1` or `L2` norm.
    Normalizer { norm: Norm },
    /// `Imputer`: `replaced` (NaN by default) becomes the column's value.
    Imputer { values: Vec<f32>, replaced: f32 },
}

#[derive(Debug, Clone, Copy)]
enum Norm {
    Max,
    L1,
    L2,
}

/// Class labels of a classifier: integers or strings.
#[derive(Debug, Clone)]
enum Labels {
    Ints(Vec<i64>),
    Strings(Vec<String>),
}

impl Labels {
    fn len(&self) -> usize {
        match self {
            Labels::Ints(v) => v.len(),
            Labels::Strings(v) => v.len(),
        }
    }
    fn datum_type(&self) -> DatumType {
        match self {
            Labels::Ints(_) => i64::datum_type(),
            Labels::Strings(_) => String::datum_type(),
        }
    }
    fn pick(&self, ids: &[usize]) -> Tensor {
        match self {
            Labels::Ints(v) => tensor1(&ids.iter().map(|&i| v[i]).collect::<Vec<_>>()),
            Labels::Strings(v) => tensor1(&ids.iter().map(|&i| v[i].clone()).collect::<Vec<_>>()),
        }
    }
}

/// Class labels: integers under `ints` (`classlabels_ints` for
/// `LinearClassifier`, `classlabels_int64s` for `TreeEnsembleClassifier`),
/// or `classlabels_strings`.
fn class_labels(node: &NodeProto, ints: &str) -> TractResult<Labels> {
    let int_labels = node.get_attr_opt_slice::<i64>(ints)?;
    let strs = node.get_attr_opt_tvec::<&str>("classlabels_strings")?;
    match (int_labels, strs) {
        (Some(v), None) => Ok(Labels::Ints(v.to_vec())),
        (None, Some(v)) => Ok(Labels::Strings(v.iter().map(|s| s.to_string()).collect())),
        _ => bail!("exactly one of {ints} and classlabels_strings must be set"),
    }
}

/// One operator of this module, as a typed tract op: a pure function of
/// its `N × F` input.
#[derive(Debug, Clone)]
struct MlOp {
    name: &'static str,
    kind: Kind,
}

impl MlOp {
    /// Output facts for an input of `n` rows and `width` columns.
    fn facts(&self, n: &TDim, width: &TDim) -> TVec<TypedFact> {
        match &self.kind {
            Kind::Linear { coef, .. } => tvec!(f32::fact([n.clone(), coef.nrows().into()])),
            Kind::Trees { ensemble, .. } => {
                tvec!(f32::fact([n.clone(), ensemble.n_out.into()]))
            }
            Kind::LinearClassifier { labels, .. } | Kind::TreeClassifier { labels, .. } => tvec!(
                labels.datum_type().fact([n.clone()]),
                f32::fact([n.clone(), labels.len().max(2).into()])
            ),
            Kind::Scaler { .. } | Kind::Normalizer { .. } | Kind::Imputer { .. } => {
                tvec!(f32::fact([n.clone(), width.clone()]))
            }
        }
    }

    fn compute(&self, x: ArrayView2<f32>) -> TractResult<TVec<Tensor>> {
        let check_width = |want: usize| -> TractResult<()> {
            ensure!(
                x.ncols() == want,
                "{} expects {want} input columns, got {}",
                self.name,
                x.ncols()
            );
            Ok(())
        };
        Ok(match &self.kind {
            Kind::Linear {
                coef,
                intercepts,
                post,
            } => {
                check_width(coef.ncols())?;
                let mut y = x.dot(&coef.t()) + intercepts;
                apply_post(*post, &mut y);
                tvec!(y.into_tensor())
            }
            Kind::LinearClassifier {
                coef,
                intercepts,
                post,
                labels,
            } => {
                check_width(coef.ncols())?;
                let raw = x.dot(&coef.t()) + intercepts;
                let (scores, ids) = if coef.nrows() == 1 && labels.len() == 2 {
                    // Binary with one row: the row scores the second class;
                    // onnxruntime adds the first as its complement.
                    let s = raw.column(0);
                    let ids: Vec<usize> = s.iter().map(|&v| usize::from(v > 0.0)).collect();
                    let mut scores = Array2::<f32>::zeros((x.nrows(), 2));
                    for (mut row, &v) in scores.rows_mut().into_iter().zip(s.iter()) {
                        match post {
                            Post::None => {
                                row[0] = -v;
                                row[1] = v;
                            }
                            Post::Logistic => {
                                row[1] = sigmoid(v);
                                row[0] = 1.0 - row[1];
                            }
                            Post::Softmax | Post::SoftmaxZero => {
                                row[1] = sigmoid(2.0 * v);
                                row[0] = 1.0 - row[1];
                            }
                        }
                    }
                    (scores, ids)
                } else {
                    ensure!(
                        coef.nrows() == labels.len(),
                        "LinearClassifier has {} coefficient rows for {} classes",
                        coef.nrows(),
                        labels.len()
                    );
                    let mut scores = raw;
                    apply_post(*post, &mut scores);
                    let ids = scores
                        .rows()
                        .into_iter()
                        .map(|r| argmax(r.iter()))
                        .collect();
                    (scores, ids)
                };
                tvec!(labels.pick(&ids), scores.into_tensor())
            }
            Kind::TreeClassifier {
                ensemble,
                base,
                post,
                labels,
                binary,
            } => {
                let mut raw = ensemble.eval(x)?;
                let (scores, ids) = match binary {
                    // onnxruntime's binary case: one column holds the
                    // score `s` of the second class.
                    Some((col, all_positive)) => {
                        let b = base.first().copied().unwrap_or(0.0);
                        let mut scores = Array2::<f32>::zeros((x.nrows(), 2));
                        let mut ids = Vec::with_capacity(x.nrows());
                        for (mut row, raw) in scores.rows_mut().into_iter().zip(raw.rows()) {
                            let s = raw[*col] + b;
                            if *all_positive {
                                ids.push(usize::from(s > 0.5));
                                row[0] = 1.0 - s;
                                row[1] = s;
                            } else {
                                ids.push(usize::from(s > 0.0));
                                if *post == Post::Logistic {
                                    row[0] = sigmoid(-s);
                                    row[1] = sigmoid(s);
                                } else {
                                    row[0] = -s;
                                    row[1] = s;
                                }
                            }
                        }
                        (scores, ids)
                    }
                    None => {
                        if base.len() == raw.ncols() {
                            raw += &Array1::from(base.clone());
                        }
                        apply_post(*post, &mut raw);
                        let ids = raw.rows().into_iter().map(|r| argmax(r.iter())).collect();
                        (raw, ids)
                    }
                };
                tvec!(labels.pick(&ids), scores.into_tensor())
            }
            Kind::Trees {
                ensemble,
                base,
                post,
            } => {
                let mut y = ensemble.eval(x)?;
                if let Some(b) = base {
                    y += b;
                }
                apply_post(*post, &mut y);
                tvec!(y.into_tensor())
            }
            Kind::Scaler { offset, scale } => {
                let (offset, scale) = (
                    per_column(self.name, offset, x.ncols())?,
                    per_column(self.name, scale, x.ncols())?,
                );
                let mut y = x.to_owned();
                for (j, mut col) in y.axis_iter_mut(Axis(1)).enumerate() {
                    let (o, s) = (offset(j), scale(j));
                    col.mapv_inplace(|v| (v - o) * s);
                }
                tvec!(y.into_tensor())
            }
            Kind::Normalizer { norm } => {
                let mut y = x.to_owned();
                for mut row in y.rows_mut() {
                    let d = match norm {
                        Norm::Max => row.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b)),
                        Norm::L1 => row.iter().map(|v| v.abs()).sum(),
                        Norm::L2 => row.iter().map(|v| v * v).sum::<f32>().sqrt(),
                    };
                    if d != 0.0 {
                        row.mapv_inplace(|v| v / d);
                    }
                }
                tvec!(y.into_tensor())
            }
            Kind::Imputer { values, replaced } => {
                let fill = per_column(self.name, values, x.ncols())?;
                let mut y = x.to_owned();
                for (j, mut col) in y.axis_iter_mut(Axis(1)).enumerate() {
                    let fill = fill(j);
                    col.mapv_inplace(|v| {
                        let hit = if replaced.is_nan() {
                            v.is_nan()
                        } else {
                            v == *replaced
                        };
                        if hit {
                            fill
                        } else {
                            v
                        }
                    });
                }
                tvec!(y.into_tensor())
            }
        })
    }
}

impl Op for MlOp {
    fn name(&self) -> Cow<'_, str> {
        self.name.into()
    }

    op_as_typed_op!();
}

impl EvalOp for MlOp {
    fn is_stateless(&self) -> bool {
        true
    }

    fn eval(&self, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let input = args_1!(inputs);
        let input = input.cast_to::<f32>()?;
        let view = input.to_array_view::<f32>()?;
        let x = match view.ndim() {
            2 => view.into_dimensionality::<Ix2>()?,
            // A single row.
            1 => {
                let n = view.len();
                view.into_shape_with_order((1, n))?
            }
            r => bail!("{} takes a matrix (rank 2), got rank {r}", self.name),
        };
        Ok(self
            .compute(x)?
            .into_iter()
            .map(|t| t.into_tvalue())
            .collect())
    }
}

impl TypedOp for MlOp {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        let shape = &inputs[0].shape;
        ensure!(
            shape.rank() == 2,
            "{} takes a matrix (rank 2), got rank {}",
            self.name,
            shape.rank()
        );
        Ok(self.facts(&shape[0], &shape[1]))
    }

    as_op!();
}

/// The inference-time face of [`MlOp`]: shape rules, then one typed node.
#[derive(Debug, Clone)]
struct MlExpansion(MlOp);

impl Expansion for MlExpansion {
    fn name(&self) -> Cow<'_, str> {
        self.0.name.into()
    }

    fn rules<'r, 'p: 'r, 's: 'r>(
        &'s self,
        s: &mut Solver<'r>,
        inputs: &'p [TensorProxy],
        outputs: &'p [TensorProxy],
    ) -> InferenceResult {
        check_input_arity(inputs, 1)?;
        let n_out = self.nboutputs()?;
        check_output_arity(outputs, n_out)?;
        s.equals(&inputs[0].rank, 2)?;
        match &self.0.kind {
            Kind::LinearClassifier { labels, .. } | Kind::TreeClassifier { labels, .. } => {
                s.equals(&outputs[0].datum_type, labels.datum_type())?;
                s.equals(&outputs[0].rank, 1)?;
                s.equals(&outputs[0].shape[0], &inputs[0].shape[0])?;
                s.equals(&outputs[1].datum_type, f32::datum_type())?;
                s.equals(&outputs[1].rank, 2)?;
                s.equals(&outputs[1].shape[0], &inputs[0].shape[0])?;
                s.equals(&outputs[1].shape[1], labels.len().max(2).to_dim())?;
            }
            Kind::Linear { coef, .. } => {
                s.equals(&outputs[0].datum_type, f32::datum_type())?;
                s.equals(&outputs[0].rank, 2)?;
                s.equals(&outputs[0].shape[0], &inputs[0].shape[0])?;
                s.equals(&outputs[0].shape[1], coef.nrows().to_dim())?;
            }
            Kind::Trees { ensemble, .. } => {
                s.equals(&outputs[0].datum_type, f32::datum_type())?;
                s.equals(&outputs[0].rank, 2)?;
                s.equals(&outputs[0].shape[0], &inputs[0].shape[0])?;
                s.equals(&outputs[0].shape[1], ensemble.n_out.to_dim())?;
            }
            Kind::Scaler { .. } | Kind::Normalizer { .. } | Kind::Imputer { .. } => {
                s.equals(&outputs[0].datum_type, f32::datum_type())?;
                s.equals(&outputs[0].shape, &inputs[0].shape)?;
            }
        }
        Ok(())
    }

    fn nboutputs(&self) -> TractResult<usize> {
        Ok(match self.0.kind {
            Kind::LinearClassifier { .. } | Kind::TreeClassifier { .. } => 2,
            _ => 1,
        })
    }

    fn wire(
        &self,
        prefix: &str,
        model: &mut TypedModel,
        inputs: &[OutletId],
    ) -> TractResult<TVec<OutletId>> {
        model.wire_node(prefix, self.0.clone(), inputs)
    }
}

type Built = TractResult<(Box<dyn InferenceOp>, Vec<String>)>;

fn built(name: &'static str, kind: Kind) -> Built {
    Ok((expand(MlExpansion(MlOp { name, kind })), vec![]))
}

fn floats(node: &NodeProto, attr: &str) -> TractResult<Vec<f32>> {
    Ok(node.get_attr_opt_vec::<f32>(attr)?.unwrap_or_default())
}

/// Coefficients as `rows × (len / rows)`.
fn coefficients(node: &NodeProto, rows: usize) -> TractResult<Array2<f32>> {
    let c = node.get_attr_vec::<f32>("coefficients")?;
    node.expect_attr(
        "coefficients",
        rows > 0 && !c.is_empty() && c.len() % rows == 0,
        || format!("a multiple of {rows} values, got {}", c.len()),
    )?;
    Ok(Array2::from_shape_vec((rows, c.len() / rows), c)?)
}

fn intercepts(node: &NodeProto, rows: usize) -> TractResult<Array1<f32>> {
    let b = floats(node, "intercepts")?;
    if b.is_empty() {
        return Ok(Array1::zeros(rows));
    }
    node.expect_attr("intercepts", b.len() == rows, || {
        format!("{rows} values, got {}", b.len())
    })?;
    Ok(Array1::from(b))
}

fn linear_regressor(_ctx: &ParsingContext, node: &NodeProto) -> Built {
    let targets = node.get_attr_opt::<i64>("targets")?.unwrap_or(1).max(1) as usize;
    let coef = coefficients(node, targets)?;
    let intercepts = intercepts(node, targets)?;
    let post = post_transform(node)?;
    built(
        "LinearRegressor",
        Kind::Linear {
            coef,
            intercepts,
            post,
        },
    )
}

fn linear_classifier(_ctx: &ParsingContext, node: &NodeProto) -> Built {
    let labels = class_labels(node, "classlabels_ints")?;
    let n_coef = node.get_attr_slice::<f32>("coefficients")?.len();
    let n_b = floats(node, "intercepts")?.len();
    // One row per class, or one row for a binary problem.
    let rows = if labels.len() == 2 && n_b == 1 {
        1
    } else if n_b > 0 {
        n_b
    } else if labels.len() == 2 && n_coef % 2 == 1 {
        1
    } else {
        labels.len()
    };
    let coef = coefficients(node, rows)?;
    let intercepts = intercepts(node, rows)?;
    let post = post_transform(node)?;
    built(
        "LinearClassifier",
        Kind::LinearClassifier {
            coef,
            intercepts,
            post,
            labels,
        },
    )
}

fn scaler(_ctx: &ParsingContext, node: &NodeProto) -> Built {
    let offset = floats(node, "offset")?;
    let scale = floats(node, "scale")?;
    let offset = if offset.is_empty() { vec![0.0] } else { offset };
    let scale = if scale.is_empty() { vec![1.0] } else { scale };
    built("Scaler", Kind::Scaler { offset, scale })
}

fn normalizer(_ctx: &ParsingContext, node: &NodeProto) -> Built {
    let norm = match node.get_attr_opt::<&str>("norm")?.unwrap_or("MAX") {
        "MAX" => Norm::Max,
        "L1" => Norm::L1,
        "L2" => Norm::L2,
        other => bail!("Normalizer norm {other} is not one of MAX, L1, L2"),
    };
    built("Normalizer", Kind::Normalizer { norm })
}

fn imputer(_ctx: &ParsingContext, node: &NodeProto) -> Built {
    let values = floats(node, "imputed_value_floats")?;
    node.expect_attr(
        "imputed_value_floats",
        !values.is_empty(),
        "float values (integer imputation is not supported)",
    )?;
    let replaced = node
        .get_attr_opt::<f32>("replaced_value_float")?
        .unwrap_or(f32::NAN);
    built("Imputer", Kind::Imputer { values, replaced })
}

fn tree_classifier(_ctx: &ParsingContext, node: &NodeProto) -> Built {
    let labels = class_labels(node, "classlabels_int64s")?;
    let ensemble = tree_ensemble(node, "class", labels.len())?;
    let base = floats(node, "base_values")?;
    let post = post_transform(node)?;
    let ids = node.get_attr_slice::<i64>("class_ids")?;
    let mut used: Vec<i64> = ids.to_vec();
    used.sort_unstable();
    used.dedup();
    // onnxruntime's binary case: two labels, one class id in the leaves.
    let binary = (labels.len() == 2 && used.len() == 1).then(|| {
        let weights = node.get_attr_slice::<f32>("class_weights").unwrap_or(&[]);
        (used[0] as usize, weights.iter().all(|w| *w >= 0.0))
    });
    if binary.is_none() && !base.is_empty() {
        node.expect_attr("base_values", base.len() == labels.len(), || {
            format!("{} values (one per class)", labels.len())
        })?;
    }
    built(
        "TreeEnsembleClassifier",
        Kind::TreeClassifier {
            ensemble,
            base,
            post,
            labels,
            binary,
        },
    )
}

fn tree_regressor(_ctx: &ParsingContext, node: &NodeProto) -> Built {
    let n_targets = node.get_attr_opt::<i64>("n_targets")?.unwrap_or(1).max(1) as usize;
    let ensemble = tree_ensemble(node, "target", n_targets)?;
    let base = node
        .get_attr_opt_vec::<f32>("base_values")?
        .filter(|b| !b.is_empty());
    if let Some(b) = &base {
        node.expect_attr("base_values", b.len() == ensemble.n_out, || {
            format!("{} values (n_targets)", ensemble.n_out)
        })?;
    }
    let post = post_transform(node)?;
    built(
        "TreeEnsembleRegressor",
        Kind::Trees {
            ensemble,
            base: base.map(Array1::from),
            post,
        },
    )
}

fn node_mode(s: &str) -> TractResult<Option<Cmp>> {
    Ok(match s {
        "BRANCH_LEQ" => Some(Cmp::Leq),
        "BRANCH_LT" => Some(Cmp::Lt),
        "BRANCH_GTE" => Some(Cmp::Gte),
        "BRANCH_GT" => Some(Cmp::Gt),
        "BRANCH_EQ" => Some(Cmp::Eq),
        "BRANCH_NEQ" => Some(Cmp::Neq),
        "LEAF" => None,
        _ => bail!("unsupported node mode {s}"),
    })
}

fn vec_attr<'a, T: AttrTVecType<'a>>(
    node: &'a NodeProto,
    attr: &str,
    n: usize,
) -> TractResult<Vec<T>> {
    let v = node.get_attr_vec(attr)?;
    node.expect_attr(attr, v.len() == n, || {
        format!("{n} values, got {}", v.len())
    })?;
    Ok(v)
}

/// A branch's test: `x <op> threshold` sends a row to the true child.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cmp {
    Leq,
    Lt,
    Gte,
    Gt,
    Eq,
    Neq,
}

/// How the trees' leaf weights combine (`aggregate_function`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Aggregate {
    Sum,
    Average,
    Min,
    Max,
}

/// One node of a tree ensemble.
#[derive(Debug, Clone, Copy)]
enum Node {
    Branch {
        feature: u32,
        threshold: f32,
        cmp: Cmp,
        /// Where a missing value (NaN) goes.
        nan_true: bool,
        yes: u32,
        no: u32,
    },
    /// `leaves[start..end]`: (output column, weight) pairs.
    Leaf { start: u32, end: u32 },
}

/// The trees of a `TreeEnsembleRegressor` or `TreeEnsembleClassifier`,
/// flattened: every tree's nodes in one array (children by absolute index),
/// the roots, and the leaves' weights.
///
/// tract has an evaluator for these, but 0.21's walks to a leaf's weights
/// by skipping through the leaf array from its start (so a 900-tree
/// gradient-boosting model scored 400 rows in 6 s) and builds an error
/// value for every leaf it reaches; this one is a plain loop.
#[derive(Debug, Clone)]
struct Trees {
    roots: Vec<u32>,
    nodes: Vec<Node>,
    leaves: Vec<(u32, f32)>,
    n_out: usize,
    n_features: usize,
    aggregate: Aggregate,
}

impl Trees {
    /// Scores `x` (rows × features): rows × `n_out`.
    fn eval(&self, x: ArrayView2<f32>) -> TractResult<Array2<f32>> {
        ensure!(
            x.ncols() >= self.n_features,
            "the trees read feature {} of rows with {} columns",
            self.n_features.saturating_sub(1),
            x.ncols()
        );
        let mut out = Array2::<f32>::zeros((x.nrows(), self.n_out));
        let mut seen = vec![false; self.n_out];
        for (row, mut y) in x.rows().into_iter().zip(out.rows_mut()) {
            seen.iter_mut().for_each(|s| *s = false);
            for &root in &self.roots {
                let mut at = root as usize;
                let (start, end) = loop {
                    match self.nodes[at] {
                        Node::Leaf { start, end } => break (start as usize, end as usize),
                        Node::Branch {
                            feature,
                            threshold,
                            cmp,
                            nan_true,
                            yes,
                            no,
                        } => {
                            let v = row[feature as usize];
                            let go = if v.is_nan() {
                                nan_true
                            } else {
                                match cmp {
                                    Cmp::Leq => v <= threshold,
                                    Cmp::Lt => v < threshold,
                                    Cmp::Gte => v >= threshold,
                                    Cmp::Gt => v > threshold,
                                    Cmp::Eq => v == threshold,
                                    Cmp::Neq => v != threshold,
                                }
                            };
                            at = if go { yes } else { no } as usize;
                        }
                    }
                };
                for &(k, w) in &self.leaves[start..end] {
                    let (k, slot) = (k as usize, &mut y[k as usize]);
                    *slot = match self.aggregate {
                        Aggregate::Sum | Aggregate::Average => *slot + w,
                        Aggregate::Min if seen[k] => slot.min(w),
                        Aggregate::Max if seen[k] => slot.max(w),
                        Aggregate::Min | Aggregate::Max => w,
                    };
                    seen[k] = true;
                }
            }
            if self.aggregate == Aggregate::Average && !self.roots.is_empty() {
                let n = self.roots.len() as f32;
                y.mapv_inplace(|v| v / n);
            }
        }
        Ok(out)
    }
}

/// The trees of a `TreeEnsembleRegressor` (leaf attributes `target_*`) or
/// `TreeEnsembleClassifier` (`class_*`), with `n_out` output columns.
fn tree_ensemble(node: &NodeProto, prefix: &str, n_out: usize) -> TractResult<Trees> {
    let attr = |name: &str| format!("{prefix}_{name}");
    if node.get_attr_opt_vec::<f32>("nodes_values")?.is_none()
        && node
            .attribute
            .iter()
            .any(|a| a.name == "nodes_values_as_tensor")
    {
        bail!("double-precision tree attributes (nodes_values_as_tensor) are not supported: export with float thresholds (ai.onnx.ml opset 1 to 3)");
    }
    let n_nodes = node.get_attr_slice::<i64>("nodes_featureids")?.len();
    node.expect_attr("nodes_featureids", n_nodes != 0, "at least one node")?;
    let node_ids = vec_attr::<usize>(node, "nodes_nodeids", n_nodes)?;
    let tree_ids = vec_attr::<usize>(node, "nodes_treeids", n_nodes)?;
    let feature_ids = vec_attr::<usize>(node, "nodes_featureids", n_nodes)?;
    let true_ids = vec_attr::<usize>(node, "nodes_truenodeids", n_nodes)?;
    let false_ids = vec_attr::<usize>(node, "nodes_falsenodeids", n_nodes)?;
    let values = vec_attr::<f32>(node, "nodes_values", n_nodes)?;
    let nan_true: Vec<bool> =
        match node.get_attr_opt_vec::<i64>("nodes_missing_value_tracks_true")? {
            Some(v) if !v.is_empty() => {
                node.expect_attr(
                    "nodes_missing_value_tracks_true",
                    v.len() == n_nodes,
                    || format!("{n_nodes} values"),
                )?;
                v.into_iter().map(|b| b != 0).collect()
            }
            _ => vec![false; n_nodes],
        };
    let modes: Vec<Option<Cmp>> = vec_attr::<&str>(node, "nodes_modes", n_nodes)?
        .iter()
        .map(|s| node_mode(s))
        .collect::<TractResult<_>>()?;
    let aggregate = match node
        .get_attr_opt::<&str>("aggregate_function")?
        .unwrap_or("SUM")
    {
        "SUM" => Aggregate::Sum,
        "AVERAGE" => Aggregate::Average,
        "MAX" => Aggregate::Max,
        "MIN" => Aggregate::Min,
        other => bail!("aggregate_function {other} is not one of SUM, AVERAGE, MIN, MAX"),
    };
    let n_leaves = node.get_attr_slice::<i64>(&attr("ids"))?.len();
    node.expect_attr(&attr("ids"), n_leaves != 0, "at least one leaf")?;
    let leaf_node_ids = vec_attr::<usize>(node, &attr("nodeids"), n_leaves)?;
    let leaf_tree_ids = vec_attr::<usize>(node, &attr("treeids"), n_leaves)?;
    let leaf_out = vec_attr::<usize>(node, &attr("ids"), n_leaves)?;
    let leaf_weights = vec_attr::<f32>(node, &attr("weights"), n_leaves)?;
    node.expect_attr(&attr("ids"), leaf_out.iter().all(|&t| t < n_out), || {
        format!("ids below the number of outputs ({n_out})")
    })?;

    // Each node's index in the flat array, by (tree id, node id).
    let mut order: Vec<usize> = (0..n_nodes).collect();
    order.sort_by_key(|&i| (tree_ids[i], node_ids[i]));
    let index: std::collections::HashMap<(usize, usize), u32> = order
        .iter()
        .enumerate()
        .map(|(at, &i)| ((tree_ids[i], node_ids[i]), at as u32))
        .collect();
    node.expect(index.len() == n_nodes, "each (tree, node) id pair once")?;
    let mut by_leaf: std::collections::HashMap<(usize, usize), Vec<(u32, f32)>> =
        std::collections::HashMap::new();
    for l in 0..n_leaves {
        by_leaf
            .entry((leaf_tree_ids[l], leaf_node_ids[l]))
            .or_default()
            .push((leaf_out[l] as u32, leaf_weights[l]));
    }
    let child = |tree: usize, id: usize, what: &str| -> TractResult<u32> {
        index.get(&(tree, id)).copied().ok_or_else(|| {
            format_err!("tree {tree} names {what} node {id}, which it does not have")
        })
    };

    let mut roots = vec![];
    let mut nodes = Vec::with_capacity(n_nodes);
    let mut leaves = vec![];
    let mut current = None;
    for &i in &order {
        let tree = tree_ids[i];
        if current != Some(tree) {
            current = Some(tree);
            // The root is the lowest node id of the tree.
            roots.push(nodes.len() as u32);
        }
        nodes.push(match modes[i] {
            Some(cmp) => Node::Branch {
                feature: feature_ids[i] as u32,
                threshold: values[i],
                cmp,
                nan_true: nan_true[i],
                yes: child(tree, true_ids[i], "a true")?,
                no: child(tree, false_ids[i], "a false")?,
            },
            None => {
                let start = leaves.len() as u32;
                if let Some(w) = by_leaf.remove(&(tree, node_ids[i])) {
                    leaves.extend(w);
                }
                Node::Leaf {
                    start,
                    end: leaves.len() as u32,
                }
            }
        });
    }
    node.expect(by_leaf.is_empty(), "every leaf weight to name a leaf node")?;
    // A walk must end: no node is its own descendant.
    node.expect(acyclic(&nodes), "trees without cycles")?;
    let n_features = feature_ids
        .iter()
        .zip(&modes)
        .filter(|(_, m)| m.is_some())
        .map(|(f, _)| f + 1)
        .max()
        .unwrap_or(0);
    Ok(Trees {
        roots,
        nodes,
        leaves,
        n_out,
        n_features,
        aggregate,
    })
}

/// Whether following children from any node can never come back to it
/// (a depth-first search with colours; O(nodes)).
fn acyclic(nodes: &[Node]) -> bool {
    // 0 = unvisited, 1 = on the current path, 2 = done.
    let mut colour = vec![0u8; nodes.len()];
    for start in 0..nodes.len() {
        if colour[start] != 0 {
            continue;
        }
        let mut stack = vec![(start, false)];
        while let Some((at, leaving)) = stack.pop() {
            if leaving {
                colour[at] = 2;
                continue;
            }
            match colour[at] {
                1 => return false,
                2 => continue,
                _ => {}
            }
            colour[at] = 1;
            stack.push((at, true));
            if let Node::Branch { yes, no, .. } = nodes[at] {
                for c in [yes as usize, no as usize] {
                    match colour[c] {
                        1 => return false,
                        0 => stack.push((c, false)),
                        _ => {}
                    }
                }
            }
        }
    }
    true
}
