//! ONNX models: a `model` artifact may be an ONNX file — scikit-learn via
//! skl2onnx, PyTorch via `torch.onnx.export`, LightGBM or XGBoost via
//! onnxmltools — and goes wherever a built-in model goes (evaluation,
//! comparison, bundles, promotion, `mlcycle predict`, `mlcycle serve`).
//!
//! Reading one builds a [`Model`] whose fitted part is
//! [`Fitted::Onnx`](crate::model::Fitted::Onnx): the file's bytes (base64 in
//! `model.json`), which graph inputs take which feature columns, and which
//! output holds the predictions. The input schema comes from the graph (its
//! input names and widths) and from `mlcycle.*` entries of the model's
//! `metadata_props`, which the Python helper's `save_model` writes:
//!
//! | key | value |
//! |---|---|
//! | `mlcycle.task` | `regression` or `classification` |
//! | `mlcycle.features` | JSON list of the input columns, in the input tensor's column order |
//! | `mlcycle.target` | the target column |
//! | `mlcycle.classes` | JSON list of class names, in the order of the probability columns |
//! | `mlcycle.scores` | `probabilities`, `logits` (a softmax is applied) or `decision` (the highest wins, no probabilities) |
//! | `mlcycle.output` | the graph output to read |
//! | `mlcycle.kind`, `mlcycle.stage`, `mlcycle.params`, `mlcycle.rows`, `mlcycle.data_hash` | description and lineage |
//!
//! Inference runs on tract (a pure-Rust ONNX runtime) with the ONNX-ML
//! operators it lacks added by [`ml_ops`]. A `ZipMap` (skl2onnx's default
//! dictionary output) is cut off: its input tensor is read instead.

#[cfg(feature = "onnx")]
use std::collections::BTreeMap;
use std::sync::Arc;
#[cfg(feature = "onnx")]
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

#[cfg(feature = "onnx")]
mod ml_ops;

/// An ONNX file carried by a model: its bytes and, once it has scored
/// rows, its compiled plan (shared by clones).
#[derive(Clone)]
pub struct OnnxGraph {
    bytes: Arc<Vec<u8>>,
    #[cfg(feature = "onnx")]
    plan: Arc<OnceLock<Result<Arc<runtime::Plan>, String>>>,
}

impl OnnxGraph {
    pub fn new(bytes: Vec<u8>) -> OnnxGraph {
        OnnxGraph {
            bytes: Arc::new(bytes),
            #[cfg(feature = "onnx")]
            plan: Arc::default(),
        }
    }

    /// The ONNX file.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }
}

impl PartialEq for OnnxGraph {
    fn eq(&self, other: &Self) -> bool {
        self.bytes == other.bytes
    }
}

impl std::fmt::Debug for OnnxGraph {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "OnnxGraph({} bytes)", self.bytes.len())
    }
}

impl Serialize for OnnxGraph {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use base64::Engine;
        s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(&*self.bytes))
    }
}

impl<'de> Deserialize<'de> for OnnxGraph {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use base64::Engine;
        let s = String::deserialize(d)?;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(s.as_bytes())
            .map_err(|e| serde::de::Error::custom(format!("`onnx` is not base64: {e}")))?;
        Ok(OnnxGraph::new(bytes))
    }
}

/// A graph input and the feature columns it takes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OnnxInput {
    /// The graph input's name.
    pub name: String,
    /// Element type: `float`, `double`, `int64` or `int32`.
    pub elem: String,
    /// 1 for a `[N]` input, 2 for `[N, width]`.
    pub rank: usize,
    /// How many consecutive feature columns it takes.
    pub width: usize,
}

/// What a classifier's score output holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scores {
    /// Class probabilities (rows sum to 1).
    Probabilities,
    /// Unnormalised scores; probabilities are their softmax.
    Logits,
    /// Decision scores (a classifier without probabilities: linear SVM,
    /// ridge, perceptron): the highest wins; no probabilities are given.
    Decision,
}

/// Why an ONNX file cannot be a model, or cannot score rows.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct OnnxError(pub String);

impl OnnxError {
    fn new(s: impl Into<String>) -> OnnxError {
        OnnxError(s.into())
    }
}

/// What reading an ONNX file found: the parts of a
/// [`Model`](crate::model::Model) that come from the file.
#[derive(Debug, Clone)]
pub struct OnnxModel {
    pub task: crate::model::Task,
    pub features: Vec<String>,
    pub target: Option<String>,
    pub classes: Vec<String>,
    pub kind: String,
    pub params: serde_json::Value,
    pub stage: String,
    pub rows: usize,
    pub data_hash: String,
    pub inputs: Vec<OnnxInput>,
    pub output: String,
    pub scores: Option<Scores>,
}

/// True when `bytes` look like an ONNX file rather than JSON: a protobuf
/// message starts with a field tag, never with `{` or whitespace.
pub fn looks_like_onnx(bytes: &[u8]) -> bool {
    bytes
        .first()
        .is_some_and(|b| !b.is_ascii_whitespace() && *b != b'{' && *b != b'[')
}

/// Metadata keys the reader understands.
pub const METADATA_KEYS: &[&str] = &[
    "mlcycle.task",
    "mlcycle.features",
    "mlcycle.target",
    "mlcycle.classes",
    "mlcycle.scores",
    "mlcycle.output",
    "mlcycle.kind",
    "mlcycle.stage",
    "mlcycle.params",
    "mlcycle.rows",
    "mlcycle.data_hash",
];

#[cfg(feature = "onnx")]
fn json_list(meta: &BTreeMap<String, String>, key: &str) -> Result<Option<Vec<String>>, OnnxError> {
    let Some(text) = meta.get(key) else {
        return Ok(None);
    };
    let v: serde_json::Value = serde_json::from_str(text)
        .map_err(|e| OnnxError::new(format!("metadata `{key}` is not a JSON list: {e}")))?;
    let list = v
        .as_array()
        .ok_or_else(|| OnnxError::new(format!("metadata `{key}` is not a JSON list")))?;
    Ok(Some(
        list.iter()
            .map(|x| match x {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .collect(),
    ))
}

#[cfg(feature = "onnx")]
pub use runtime::{check, inspect, run, trained_by};

#[cfg(not(feature = "onnx"))]
pub fn trained_by(_bytes: &[u8]) -> Option<String> {
    None
}

#[cfg(not(feature = "onnx"))]
pub fn check(_g: &OnnxGraph, _inputs: &[OnnxInput], _output: &str) -> Result<(), OnnxError> {
    Err(OnnxError::new(
        "this mlcycle was built without ONNX support (cargo feature `onnx`)",
    ))
}

#[cfg(not(feature = "onnx"))]
pub fn inspect(_bytes: &[u8]) -> Result<OnnxModel, OnnxError> {
    Err(OnnxError::new(
        "this mlcycle was built without ONNX support (cargo feature `onnx`)",
    ))
}

#[cfg(not(feature = "onnx"))]
pub fn run(
    _g: &OnnxGraph,
    _inputs: &[OnnxInput],
    _output: &str,
    _x: &ndarray::Array2<f64>,
) -> Result<ndarray::Array2<f64>, OnnxError> {
    Err(OnnxError::new(
        "this mlcycle was built without ONNX support (cargo feature `onnx`)",
    ))
}

#[cfg(feature = "onnx")]
mod runtime {
    use super::*;
    use crate::model::Task;
    use tract_onnx::pb::{self, type_proto, ModelProto};
    use tract_onnx::prelude::*;

    pub type Plan = TypedRunnableModel<TypedModel>;

    /// Element types an input may have, by ONNX `TensorProto.DataType`.
    fn elem_name(t: i32) -> Option<&'static str> {
        match t {
            1 => Some("float"),
            11 => Some("double"),
            7 => Some("int64"),
            6 => Some("int32"),
            _ => None,
        }
    }

    fn elem_label(t: i32) -> &'static str {
        match t {
            1 => "float",
            2 => "uint8",
            3 => "int8",
            6 => "int32",
            7 => "int64",
            8 => "string",
            9 => "bool",
            10 => "float16",
            11 => "double",
            _ => "another type",
        }
    }

    /// `(element type, dims)` of a tensor value; a dim is `None` when
    /// symbolic or unknown.
    type TensorType = (i32, Vec<Option<usize>>);

    fn tensor_type(v: &pb::ValueInfoProto) -> Option<TensorType> {
        let t = v.r#type.as_ref()?;
        // tract's protobuf schema knows tensor types only; other value
        // types (sequences, maps) decode as `None`.
        let type_proto::Value::TensorType(t) = t.value.as_ref()?;
        let dims = t
            .shape
            .as_ref()
            .map(|s| {
                s.dim
                    .iter()
                    .map(|d| match d.value {
                        Some(pb::tensor_shape_proto::dimension::Value::DimValue(v)) if v > 0 => {
                            Some(v as usize)
                        }
                        _ => None,
                    })
                    .collect()
            })
            .unwrap_or_default();
        Some((t.elem_type, dims))
    }

    /// The model as stored (with a graph).
    fn decode_raw(bytes: &[u8]) -> Result<ModelProto, OnnxError> {
        let mut r = bytes;
        let proto = tract_onnx::onnx()
            .proto_model_for_read(&mut r)
            .map_err(|e| OnnxError::new(format!("not an ONNX model: {e}")))?;
        if proto.graph.is_none() {
            return Err(OnnxError::new("not an ONNX model: it has no graph"));
        }
        Ok(proto)
    }

    /// The model as tract is given it: a `ZipMap` output cut off.
    fn decode(bytes: &[u8]) -> Result<ModelProto, OnnxError> {
        let mut proto = decode_raw(bytes)?;
        strip_zipmap(&mut proto);
        Ok(proto)
    }

    /// The stage that trained the model (`mlcycle.stage`), read from the
    /// file's metadata alone: nothing is compiled.
    pub fn trained_by(bytes: &[u8]) -> Option<String> {
        let raw = decode_raw(bytes).ok()?;
        raw.metadata_props
            .iter()
            .rev()
            .find(|p| p.key == "mlcycle.stage")
            .map(|p| p.value.clone())
    }

    /// Replaces each graph output made by a `ZipMap` (a sequence of
    /// class → probability maps, which tract cannot hold) with the
    /// probability tensor the `ZipMap` reads.
    fn strip_zipmap(proto: &mut ModelProto) {
        let graph = proto.graph.as_mut().expect("checked by decode");
        let mut renamed = BTreeMap::new();
        graph.node.retain(|n| {
            if n.op_type == "ZipMap" && n.input.len() == 1 && n.output.len() == 1 {
                renamed.insert(n.output[0].clone(), n.input[0].clone());
                false
            } else {
                true
            }
        });
        for out in &mut graph.output {
            if let Some(src) = renamed.get(&out.name) {
                out.name = src.clone();
                out.r#type = None;
            }
        }
    }

    const CLASSIFIER_OPS: &[&str] = &[
        "LinearClassifier",
        "TreeEnsembleClassifier",
        "SVMClassifier",
        "ZipMap",
    ];

    /// Reads what a model needs to know from an ONNX file (its input
    /// schema, task, classes, output) and checks that tract can run it.
    pub fn inspect(bytes: &[u8]) -> Result<OnnxModel, OnnxError> {
        let raw = decode_raw(bytes)?;
        let graph = raw.graph.as_ref().expect("checked by decode_raw");
        let meta: BTreeMap<String, String> = raw
            .metadata_props
            .iter()
            .map(|p| (p.key.clone(), p.value.clone()))
            .collect();
        for k in meta.keys().filter(|k| k.starts_with("mlcycle.")) {
            if !METADATA_KEYS.contains(&k.as_str()) {
                let hint = match mlcycle_pipeline::suggest::did_you_mean(k, METADATA_KEYS) {
                    h if h.is_empty() => String::new(),
                    h => format!(" ({h})"),
                };
                return Err(OnnxError::new(format!(
                    "unknown metadata key `{k}`{hint}; known: {}",
                    METADATA_KEYS.join(", ")
                )));
            }
        }
        let initializers: std::collections::HashSet<&str> =
            graph.initializer.iter().map(|t| t.name.as_str()).collect();
        let graph_inputs: Vec<&pb::ValueInfoProto> = graph
            .input
            .iter()
            .filter(|i| !initializers.contains(i.name.as_str()))
            .collect();
        if graph_inputs.is_empty() {
            return Err(OnnxError::new("the graph has no inputs"));
        }
        let named = json_list(&meta, "mlcycle.features")?;
        let mut inputs = vec![];
        for i in &graph_inputs {
            let (elem, dims) = tensor_type(i).ok_or_else(|| {
                OnnxError::new(format!("graph input `{}` is not a tensor", i.name))
            })?;
            let Some(elem_s) = elem_name(elem) else {
                let hint = if elem == 8 {
                    "encode categorical columns before the model, or export the estimator without its encoder"
                } else {
                    "export the model with float inputs"
                };
                return Err(OnnxError::new(format!(
                    "graph input `{}` holds {} values; mlcycle feeds numeric columns as float, double, int64 or int32 ({hint})",
                    i.name,
                    elem_label(elem)
                )));
            };
            let (rank, width) = match dims.len() {
                1 => (1, Some(1)),
                2 => (2, dims[1]),
                r => {
                    return Err(OnnxError::new(format!(
                        "graph input `{}` has rank {r}; mlcycle feeds rows as [N, features] or one column as [N]",
                        i.name
                    )))
                }
            };
            inputs.push((i.name.clone(), elem_s, rank, width));
        }
        // Widths: known from the graph, or the rest of the named features
        // for a single input of unknown width.
        let n_inputs = inputs.len();
        let width_of = |w: Option<usize>| -> Result<usize, OnnxError> {
            match (w, &named, n_inputs) {
                (Some(w), _, _) => Ok(w),
                (None, Some(n), 1) => Ok(n.len()),
                (None, _, _) => Err(OnnxError::new(
                    "the graph's input width is not fixed; name the features with metadata `mlcycle.features` \
                     (mlcycle.save_model(..., features=[...]) does)",
                )),
            }
        };
        let inputs: Vec<OnnxInput> = inputs
            .into_iter()
            .map(|(name, elem, rank, width)| {
                Ok(OnnxInput {
                    name,
                    elem: elem.into(),
                    rank,
                    width: width_of(width)?,
                })
            })
            .collect::<Result<_, OnnxError>>()?;
        let total: usize = inputs.iter().map(|i| i.width).sum();
        let features = match named {
            Some(n) => {
                if n.len() != total {
                    return Err(OnnxError::new(format!(
                        "metadata `mlcycle.features` names {} column(s) but the graph's input(s) take {total}",
                        n.len()
                    )));
                }
                n
            }
            None if inputs.iter().all(|i| i.width == 1) => {
                inputs.iter().map(|i| i.name.clone()).collect()
            }
            None => {
                return Err(OnnxError::new(format!(
                    "the graph input `{}` takes {} columns and the file does not name them: \
                     save it with mlcycle.save_model(model, features=[...]) or add metadata `mlcycle.features` \
                     (a JSON list of column names)",
                    inputs[0].name, inputs[0].width
                )))
            }
        };
        let mut seen = std::collections::HashSet::new();
        if let Some(d) = features.iter().find(|f| !seen.insert(f.as_str())) {
            return Err(OnnxError::new(format!("feature `{d}` is named twice")));
        }

        let ml_classifier = graph
            .node
            .iter()
            .find(|n| CLASSIFIER_OPS.contains(&n.op_type.as_str()));
        let task = match meta.get("mlcycle.task").map(String::as_str) {
            Some("regression") => Task::Regression,
            Some("classification") => Task::Classification,
            Some(other) => {
                return Err(OnnxError::new(format!(
                    "metadata `mlcycle.task` is `{other}`; ONNX models may be `regression` or `classification`"
                )))
            }
            None if ml_classifier.is_some() => Task::Classification,
            None => {
                let labelled = graph.output.iter().any(|o| {
                    tensor_type(o).is_some_and(|(t, d)| d.len() == 1 && matches!(t, 7 | 8))
                });
                if labelled {
                    Task::Classification
                } else {
                    Task::Regression
                }
            }
        };
        let classes = match (task, json_list(&meta, "mlcycle.classes")?) {
            (Task::Regression, _) => vec![],
            (_, Some(c)) => c,
            (_, None) => {
                let labels = ml_classifier.and_then(|n| {
                    n.attribute.iter().find_map(|a| match a.name.as_str() {
                        "classlabels_strings" => Some(
                            a.strings
                                .iter()
                                .map(|s| String::from_utf8_lossy(s).into_owned())
                                .collect::<Vec<_>>(),
                        ),
                        "classlabels_int64s" | "classlabels_ints" => {
                            Some(a.ints.iter().map(|i| i.to_string()).collect())
                        }
                        _ => None,
                    })
                });
                labels.ok_or_else(|| {
                    OnnxError::new(
                        "a classifier without class names: save it with mlcycle.save_model(model, classes=[...]) \
                         or add metadata `mlcycle.classes` (a JSON list, in the order of the score columns)",
                    )
                })?
            }
        };

        // The graph as tract will see it (ZipMap cut off).
        let mut proto = raw.clone();
        strip_zipmap(&mut proto);
        let graph = proto.graph.as_ref().expect("checked by decode");
        let outputs: Vec<(String, Option<TensorType>)> = graph
            .output
            .iter()
            .map(|o| (o.name.clone(), tensor_type(o)))
            .collect();
        let is_float =
            |t: &Option<TensorType>| t.as_ref().is_none_or(|(e, _)| matches!(e, 1 | 11 | 10));
        let output =
            match meta.get("mlcycle.output") {
                Some(o) => {
                    if !outputs.iter().any(|(n, _)| n == o) {
                        return Err(OnnxError::new(format!(
                        "metadata `mlcycle.output` names `{o}`, which is not a graph output ({})",
                        outputs.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>().join(", ")
                    )));
                    }
                    o.clone()
                }
                None => outputs
                    .iter()
                    .find(|(_, t)| is_float(t))
                    .map(|(n, _)| n.clone())
                    .ok_or_else(|| {
                        OnnxError::new("the graph has no float output to read predictions from")
                    })?,
            };
        let scores = match task {
            Task::Classification => Some(match meta.get("mlcycle.scores").map(String::as_str) {
                Some("probabilities") => Scores::Probabilities,
                Some("logits") => Scores::Logits,
                Some("decision") => Scores::Decision,
                Some(other) => {
                    return Err(OnnxError::new(format!(
                        "metadata `mlcycle.scores` is `{other}`; use `probabilities`, `logits` or `decision`"
                    )))
                }
                // A linear classifier without a score transform gives
                // decision values, not probabilities.
                None if ml_classifier.is_some_and(|n| {
                    n.op_type == "LinearClassifier"
                        && n.attribute
                            .iter()
                            .find(|a| a.name == "post_transform")
                            .is_none_or(|a| a.s == b"NONE")
                }) =>
                {
                    Scores::Decision
                }
                None => {
                    let softmaxed = graph.node.iter().any(|n| {
                        n.output.contains(&output)
                            && matches!(n.op_type.as_str(), "Softmax" | "Sigmoid" | "Normalizer")
                    });
                    if ml_classifier.is_some() || softmaxed {
                        Scores::Probabilities
                    } else {
                        Scores::Logits
                    }
                }
            }),
            _ => None,
        };
        let kind = meta.get("mlcycle.kind").cloned().unwrap_or_else(|| {
            if raw.producer_name.is_empty() {
                "onnx".into()
            } else {
                format!("onnx:{}", raw.producer_name)
            }
        });
        let params = match meta.get("mlcycle.params") {
            Some(t) => serde_json::from_str(t).map_err(|e| {
                OnnxError::new(format!("metadata `mlcycle.params` is not JSON: {e}"))
            })?,
            None => serde_json::json!({}),
        };
        let rows = match meta.get("mlcycle.rows") {
            Some(r) => r.trim().parse().map_err(|_| {
                OnnxError::new(format!("metadata `mlcycle.rows` is `{r}`, not a row count"))
            })?,
            None => 0,
        };
        let m = OnnxModel {
            task,
            features,
            target: meta.get("mlcycle.target").cloned(),
            classes,
            kind,
            params,
            stage: meta.get("mlcycle.stage").cloned().unwrap_or_default(),
            rows,
            data_hash: meta.get("mlcycle.data_hash").cloned().unwrap_or_default(),
            inputs,
            output,
            scores,
        };
        Ok(m)
    }

    /// Compiles the graph for a batch of any size, reading only `output`.
    fn compile(bytes: &[u8], inputs: &[OnnxInput], output: &str) -> Result<Plan, OnnxError> {
        let proto = decode(bytes)?;
        let mut onnx = tract_onnx::onnx();
        ml_ops::register(&mut onnx.op_register);
        let why = |e: TractError| {
            OnnxError::new(format!(
                "the ONNX runtime (tract) cannot run this graph: {}",
                format!("{e:#}").replace('\n', "; ")
            ))
        };
        let graph = proto.graph.as_ref().expect("checked by decode");
        let unknown: std::collections::BTreeSet<String> = graph
            .node
            .iter()
            .filter(|n| !onnx.op_register.0.contains_key(&n.op_type))
            .map(|n| {
                if n.domain.is_empty() {
                    n.op_type.clone()
                } else {
                    format!("{}.{}", n.domain, n.op_type)
                }
            })
            .collect();
        if !unknown.is_empty() {
            return Err(OnnxError::new(format!(
                "the graph uses operator(s) mlcycle's ONNX runtime does not implement: {}. \
                 It runs the standard operators tract implements and, of the ONNX-ML ones, \
                 TreeEnsembleClassifier, TreeEnsembleRegressor, LinearClassifier, LinearRegressor, \
                 Scaler, Normalizer, Imputer, ArrayFeatureExtractor, CategoryMapper (a ZipMap output is read as its input)",
                unknown.into_iter().collect::<Vec<_>>().join(", ")
            )));
        }
        let mut model = onnx.model_for_proto_model(&proto).map_err(why)?;
        let n = model.symbols.sym("N");
        for (ix, i) in inputs.iter().enumerate() {
            let dt = match i.elem.as_str() {
                "double" => f64::datum_type(),
                "int64" => i64::datum_type(),
                "int32" => i32::datum_type(),
                _ => f32::datum_type(),
            };
            let shape: TVec<TDim> = if i.rank == 1 {
                tvec!(n.clone().into())
            } else {
                tvec!(n.clone().into(), i.width.to_dim())
            };
            model
                .set_input_fact(ix, InferenceFact::dt_shape(dt, shape))
                .map_err(why)?;
        }
        model.set_output_names([output]).map_err(why)?;
        model
            .into_optimized()
            .and_then(|m| m.into_runnable())
            .map_err(why)
    }

    fn plan(g: &OnnxGraph, inputs: &[OnnxInput], output: &str) -> Result<Arc<Plan>, OnnxError> {
        g.plan
            .get_or_init(|| {
                compile(&g.bytes, inputs, output)
                    .map(Arc::new)
                    .map_err(|e| e.0)
            })
            .clone()
            .map_err(OnnxError)
    }

    /// Compiles the graph (once; the plan is kept) so that a model tract
    /// cannot run is refused when it is read, not when it first scores.
    pub fn check(g: &OnnxGraph, inputs: &[OnnxInput], output: &str) -> Result<(), OnnxError> {
        plan(g, inputs, output).map(|_| ())
    }

    /// Runs the graph on `x` (rows × features, in the model's feature
    /// order) and returns its `output` as rows × columns (a `[N]` output is
    /// one column).
    pub fn run(
        g: &OnnxGraph,
        inputs: &[OnnxInput],
        output: &str,
        x: &ndarray::Array2<f64>,
    ) -> Result<ndarray::Array2<f64>, OnnxError> {
        let plan = plan(g, inputs, output)?;
        let n = x.nrows();
        let mut feeds: TVec<TValue> = tvec![];
        let mut col = 0;
        for i in inputs {
            let part = x.slice(ndarray::s![.., col..col + i.width]);
            col += i.width;
            let shape: Vec<usize> = if i.rank == 1 {
                vec![n]
            } else {
                vec![n, i.width]
            };
            let t: Tensor = match i.elem.as_str() {
                "double" => {
                    tract_ndarray::Array::from_shape_vec(shape, part.iter().copied().collect())
                        .map_err(|e| OnnxError::new(e.to_string()))?
                        .into()
                }
                "int64" => tract_ndarray::Array::from_shape_vec(
                    shape,
                    part.iter().map(|v| *v as i64).collect(),
                )
                .map_err(|e| OnnxError::new(e.to_string()))?
                .into(),
                "int32" => tract_ndarray::Array::from_shape_vec(
                    shape,
                    part.iter().map(|v| *v as i32).collect(),
                )
                .map_err(|e| OnnxError::new(e.to_string()))?
                .into(),
                _ => tract_ndarray::Array::from_shape_vec(
                    shape,
                    part.iter().map(|v| *v as f32).collect(),
                )
                .map_err(|e| OnnxError::new(e.to_string()))?
                .into(),
            };
            feeds.push(t.into());
        }
        let out = plan
            .run(feeds)
            .map_err(|e| OnnxError::new(format!("the ONNX graph failed: {e:#}")))?;
        let t = out[0]
            .cast_to::<f64>()
            .map_err(|e| OnnxError::new(format!("output `{output}` is not numeric: {e}")))?;
        let v = t
            .to_array_view::<f64>()
            .map_err(|e| OnnxError::new(e.to_string()))?;
        let cols = match v.ndim() {
            1 => 1,
            2 => v.shape()[1],
            r => {
                return Err(OnnxError::new(format!(
                    "output `{output}` has rank {r}; a model's output is [N] or [N, k]"
                )))
            }
        };
        if v.shape()[0] != n {
            return Err(OnnxError::new(format!(
                "output `{output}` has {} rows for {n} input rows",
                v.shape()[0]
            )));
        }
        ndarray::Array2::from_shape_vec((n, cols), v.iter().copied().collect())
            .map_err(|e| OnnxError::new(e.to_string()))
    }
}

#[cfg(all(test, feature = "onnx"))]
mod tests;
