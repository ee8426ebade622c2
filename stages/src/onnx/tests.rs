//! ONNX graphs built by hand, one ONNX-ML operator at a time, scored
//! through [`Model::from_onnx`] and checked against values computed from
//! the operator specification.

use prost::Message;
use tract_onnx::pb::{
    attribute_proto::AttributeType, tensor_shape_proto, type_proto, AttributeProto, GraphProto,
    ModelProto, NodeProto, OperatorSetIdProto, StringStringEntryProto, TensorShapeProto, TypeProto,
    ValueInfoProto,
};

use crate::model::{Model, Predictions, Task};

fn ints(name: &str, v: &[i64]) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: AttributeType::Ints as i32,
        ints: v.to_vec(),
        ..Default::default()
    }
}
fn int(name: &str, v: i64) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: AttributeType::Int as i32,
        i: v,
        ..Default::default()
    }
}
fn floats(name: &str, v: &[f32]) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: AttributeType::Floats as i32,
        floats: v.to_vec(),
        ..Default::default()
    }
}
fn string(name: &str, v: &str) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: AttributeType::String as i32,
        s: v.as_bytes().to_vec(),
        ..Default::default()
    }
}
fn strings(name: &str, v: &[&str]) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: AttributeType::Strings as i32,
        strings: v.iter().map(|s| s.as_bytes().to_vec()).collect(),
        ..Default::default()
    }
}

fn tensor(name: &str, elem: i32, dims: &[Option<i64>]) -> ValueInfoProto {
    ValueInfoProto {
        name: name.into(),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: elem,
                shape: Some(TensorShapeProto {
                    dim: dims
                        .iter()
                        .map(|d| tensor_shape_proto::Dimension {
                            value: Some(match d {
                                Some(v) => tensor_shape_proto::dimension::Value::DimValue(*v),
                                None => tensor_shape_proto::dimension::Value::DimParam("N".into()),
                            }),
                            ..Default::default()
                        })
                        .collect(),
                }),
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn ml(op: &str, inputs: &[&str], outputs: &[&str], attribute: Vec<AttributeProto>) -> NodeProto {
    NodeProto {
        op_type: op.into(),
        domain: "ai.onnx.ml".into(),
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: outputs.iter().map(|s| s.to_string()).collect(),
        attribute,
        ..Default::default()
    }
}

/// A model of `nodes` from input `x` (`width` float columns) to `outputs`.
fn onnx(
    nodes: Vec<NodeProto>,
    width: i64,
    outputs: Vec<ValueInfoProto>,
    meta: &[(&str, &str)],
) -> Vec<u8> {
    ModelProto {
        ir_version: 8,
        producer_name: "hand".into(),
        opset_import: vec![
            OperatorSetIdProto {
                domain: String::new(),
                version: 17,
            },
            OperatorSetIdProto {
                domain: "ai.onnx.ml".into(),
                version: 3,
            },
        ],
        metadata_props: meta
            .iter()
            .map(|(k, v)| StringStringEntryProto {
                key: k.to_string(),
                value: v.to_string(),
            })
            .collect(),
        graph: Some(GraphProto {
            name: "g".into(),
            node: nodes,
            input: vec![tensor("x", 1, &[None, Some(width)])],
            output: outputs,
            ..Default::default()
        }),
        ..Default::default()
    }
    .encode_to_vec()
}

fn score(bytes: Vec<u8>, rows: &[&[f64]]) -> (Model, Predictions) {
    let m = Model::from_onnx(bytes).unwrap();
    let x = ndarray::Array2::from_shape_vec(
        (rows.len(), rows[0].len()),
        rows.iter().flat_map(|r| r.iter().copied()).collect(),
    )
    .unwrap();
    let p = m.predict(&x).unwrap();
    (m, p)
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-6
}

#[test]
fn tree_regressor_follows_gte_nan_and_average() {
    // Tree 0: x0 >= 1 (NaN goes true) ? 10 : 20. Tree 1: x1 <= 0 ? 1 : 3.
    // AVERAGE of the two, plus base 0.5.
    let node = ml(
        "TreeEnsembleRegressor",
        &["x"],
        &["y"],
        vec![
            int("n_targets", 1),
            string("aggregate_function", "AVERAGE"),
            floats("base_values", &[0.5]),
            ints("nodes_treeids", &[0, 0, 0, 1, 1, 1]),
            ints("nodes_nodeids", &[0, 1, 2, 0, 1, 2]),
            ints("nodes_featureids", &[0, 0, 0, 1, 0, 0]),
            floats("nodes_values", &[1.0, 0.0, 0.0, 0.0, 0.0, 0.0]),
            strings(
                "nodes_modes",
                &["BRANCH_GTE", "LEAF", "LEAF", "BRANCH_LEQ", "LEAF", "LEAF"],
            ),
            ints("nodes_truenodeids", &[1, 0, 0, 1, 0, 0]),
            ints("nodes_falsenodeids", &[2, 0, 0, 2, 0, 0]),
            ints("nodes_missing_value_tracks_true", &[1, 0, 0, 0, 0, 0]),
            ints("target_treeids", &[0, 0, 1, 1]),
            ints("target_nodeids", &[1, 2, 1, 2]),
            ints("target_ids", &[0, 0, 0, 0]),
            floats("target_weights", &[10.0, 20.0, 1.0, 3.0]),
        ],
    );
    let bytes = onnx(
        vec![node],
        2,
        vec![tensor("y", 1, &[None, Some(1)])],
        &[("mlcycle.features", r#"["a", "b"]"#)],
    );
    let (m, p) = score(bytes, &[&[1.0, -1.0], &[0.5, 2.0], &[f64::NAN, 0.0]]);
    assert_eq!(m.task, Task::Regression);
    assert_eq!(m.features, ["a", "b"]);
    let Predictions::Values(v) = p else { panic!() };
    // (10 + 1) / 2 + 0.5; (20 + 3) / 2 + 0.5; NaN >= 1 goes true: (10 + 1) / 2 + 0.5.
    assert_eq!(v, [6.0, 12.0, 6.0]);
}

#[test]
fn binary_tree_classifier_with_a_base_value_scores_like_onnxruntime() {
    // scikit-learn's binary gradient boosting: one class id, one base
    // value, LOGISTIC: p(second class) = sigmoid(leaf + base).
    let node = ml(
        "TreeEnsembleClassifier",
        &["x"],
        &["label", "probabilities"],
        vec![
            strings("classlabels_strings", &["no", "yes"]),
            floats("base_values", &[-0.25]),
            string("post_transform", "LOGISTIC"),
            ints("nodes_treeids", &[0, 0, 0]),
            ints("nodes_nodeids", &[0, 1, 2]),
            ints("nodes_featureids", &[0, 0, 0]),
            floats("nodes_values", &[0.0, 0.0, 0.0]),
            strings("nodes_modes", &["BRANCH_LEQ", "LEAF", "LEAF"]),
            ints("nodes_truenodeids", &[1, 0, 0]),
            ints("nodes_falsenodeids", &[2, 0, 0]),
            ints("class_treeids", &[0, 0]),
            ints("class_nodeids", &[1, 2]),
            ints("class_ids", &[0, 0]),
            floats("class_weights", &[-1.5, 2.0]),
        ],
    );
    let zipmap = ml(
        "ZipMap",
        &["probabilities"],
        &["output_probability"],
        vec![],
    );
    let out = ValueInfoProto {
        name: "output_probability".into(),
        ..Default::default()
    };
    let bytes = onnx(
        vec![node, zipmap],
        1,
        vec![tensor("label", 8, &[None]), out],
        &[("mlcycle.features", r#"["v"]"#)],
    );
    let (m, p) = score(bytes, &[&[-1.0], &[1.0]]);
    assert_eq!(m.task, Task::Classification);
    assert_eq!(m.classes, ["no", "yes"]);
    let Predictions::Classes { ids, proba } = p else {
        panic!()
    };
    let proba = proba.unwrap();
    let s = |z: f64| 1.0 / (1.0 + (-z).exp());
    assert_eq!(ids, [0, 1]);
    assert!(
        close(proba[0][1], s(-1.75)) && close(proba[0][0], s(1.75)),
        "{proba:?}"
    );
    assert!(close(proba[1][1], s(1.75)), "{proba:?}");
}

#[test]
fn scaler_imputer_and_linear_models_compose() {
    // Imputer (NaN -> 4), Scaler ((x - 1) * 2), then y = 3 x0 - x1 + 0.5.
    let nodes = vec![
        ml(
            "Imputer",
            &["x"],
            &["xi"],
            vec![floats("imputed_value_floats", &[4.0, 4.0])],
        ),
        ml(
            "Scaler",
            &["xi"],
            &["xs"],
            vec![floats("offset", &[1.0]), floats("scale", &[2.0])],
        ),
        ml(
            "LinearRegressor",
            &["xs"],
            &["y"],
            vec![
                floats("coefficients", &[3.0, -1.0]),
                floats("intercepts", &[0.5]),
            ],
        ),
    ];
    let bytes = onnx(
        nodes,
        2,
        vec![tensor("y", 1, &[None, Some(1)])],
        &[("mlcycle.features", r#"["a", "b"]"#)],
    );
    let (_, p) = score(bytes, &[&[2.0, 3.0], &[f64::NAN, 1.0]]);
    let Predictions::Values(v) = p else { panic!() };
    // Row 1: xs = (2, 4) -> 6 - 4 + 0.5. Row 2: xs = (6, 0) -> 18.5.
    assert_eq!(v, [2.5, 18.5]);
}

#[test]
fn binary_linear_classifier_with_one_row_adds_the_complement() {
    let node = ml(
        "LinearClassifier",
        &["x"],
        &["label", "scores"],
        vec![
            ints("classlabels_ints", &[0, 1]),
            floats("coefficients", &[2.0]),
            floats("intercepts", &[-1.0]),
            string("post_transform", "LOGISTIC"),
        ],
    );
    let bytes = onnx(
        vec![node],
        1,
        vec![
            tensor("label", 7, &[None]),
            tensor("scores", 1, &[None, Some(2)]),
        ],
        &[("mlcycle.features", r#"["v"]"#)],
    );
    let (m, p) = score(bytes, &[&[0.0], &[1.0]]);
    assert_eq!(m.classes, ["0", "1"]);
    let Predictions::Classes { ids, proba } = p else {
        panic!()
    };
    let proba = proba.unwrap();
    let s = |z: f64| 1.0 / (1.0 + (-z).exp());
    assert_eq!(ids, [0, 1]);
    assert!(close(proba[0][1], s(-1.0)) && close(proba[0][0], 1.0 - s(-1.0)));
    assert!(close(proba[1][1], s(1.0)));
}

#[test]
fn what_the_file_does_not_say_is_asked_for() {
    let lin = || {
        ml(
            "LinearRegressor",
            &["x"],
            &["y"],
            vec![floats("coefficients", &[1.0, 1.0])],
        )
    };
    let out = || vec![tensor("y", 1, &[None, Some(1)])];
    let err = |meta: &[(&str, &str)]| {
        Model::from_onnx(onnx(vec![lin()], 2, out(), meta))
            .unwrap_err()
            .0
    };
    let e = err(&[]);
    assert!(
        e.contains("takes 2 columns and the file does not name them"),
        "{e}"
    );
    let e = err(&[("mlcycle.features", r#"["a"]"#)]);
    assert!(
        e.contains("names 1 column(s) but the graph's input(s) take 2"),
        "{e}"
    );
    let e = err(&[("mlcycle.features", r#"["a", "a"]"#)]);
    assert!(e.contains("feature `a` is named twice"), "{e}");
    let e = err(&[("mlcycle.feature", r#"["a", "b"]"#)]);
    assert!(e.contains("did you mean `mlcycle.features`?"), "{e}");
    let e = err(&[
        ("mlcycle.features", r#"["a", "b"]"#),
        ("mlcycle.task", "clustering"),
    ]);
    assert!(e.contains("`regression` or `classification`"), "{e}");
    assert!(Model::from_onnx(b"\x08\x01garbage".to_vec()).is_err());
    // An operator tract lacks is named.
    let svm = ml("SVMRegressor", &["x"], &["y"], vec![]);
    let e = Model::from_onnx(onnx(
        vec![svm],
        2,
        out(),
        &[("mlcycle.features", r#"["a", "b"]"#)],
    ))
    .unwrap_err()
    .0;
    assert!(e.contains("SVMRegressor"), "{e}");
}

#[test]
fn the_graph_travels_in_model_json() {
    let node = ml(
        "LinearRegressor",
        &["x"],
        &["y"],
        vec![floats("coefficients", &[2.0])],
    );
    let bytes = onnx(
        vec![node],
        1,
        vec![tensor("y", 1, &[None, Some(1)])],
        &[("mlcycle.features", r#"["v"]"#), ("mlcycle.target", "t")],
    );
    let m = Model::from_onnx(bytes).unwrap();
    let text = serde_json::to_string(&m).unwrap();
    let back = Model::from_json(&text).unwrap();
    assert_eq!(back, m);
    assert_eq!(back.target.as_deref(), Some("t"));
    let p = back
        .predict(&ndarray::Array2::from_shape_vec((1, 1), vec![3.0]).unwrap())
        .unwrap();
    assert_eq!(p, Predictions::Values(vec![6.0]));
}

#[test]
fn an_integer_input_takes_whole_numbers_only() {
    let node = ml(
        "LinearRegressor",
        &["x"],
        &["y"],
        vec![floats("coefficients", &[2.0])],
    );
    let mut proto = ModelProto::decode(
        &onnx(
            vec![node],
            1,
            vec![tensor("y", 1, &[None, Some(1)])],
            &[("mlcycle.features", r#"["n"]"#)],
        )[..],
    )
    .unwrap();
    proto.graph.as_mut().unwrap().input[0] = tensor("x", 7, &[None, Some(1)]);
    let m = Model::from_onnx(proto.encode_to_vec()).unwrap();
    let x = |v: f64| ndarray::Array2::from_shape_vec((1, 1), vec![v]).unwrap();
    assert_eq!(m.predict(&x(3.0)).unwrap(), Predictions::Values(vec![6.0]));
    for bad in [1.5, f64::NAN] {
        let e = m.predict(&x(bad)).unwrap_err().to_string();
        assert!(
            e.contains("column `n` feeds the graph's integer input `x`"),
            "{e}"
        );
    }
}

#[test]
fn a_linear_classifier_without_a_transform_gives_decisions_not_probabilities() {
    // A linear SVM: LinearClassifier, post_transform NONE, one row.
    let node = ml(
        "LinearClassifier",
        &["x"],
        &["label", "scores"],
        vec![
            ints("classlabels_ints", &[0, 1]),
            floats("coefficients", &[1.0]),
            floats("intercepts", &[-0.5]),
        ],
    );
    let bytes = onnx(
        vec![node],
        1,
        vec![
            tensor("label", 7, &[None]),
            tensor("scores", 1, &[None, Some(2)]),
        ],
        &[("mlcycle.features", r#"["v"]"#)],
    );
    let (_, p) = score(bytes, &[&[0.0], &[0.4], &[0.6], &[3.0]]);
    // The sign of the decision picks the class, and no probability is
    // made up from it.
    assert_eq!(
        p,
        Predictions::Classes {
            ids: vec![0, 0, 1, 1],
            proba: None
        }
    );
}
