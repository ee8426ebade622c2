//! ONNX models anywhere a model goes: models exported during the test by
//! skl2onnx (with its defaults: ZipMap outputs, its own operator sets), by
//! the Python helper's `save_model`, and a network as PyTorch writes one,
//! are bundled, scored by `mlcycle predict` and `mlcycle serve`, and
//! evaluated, compared and explained by built-in stages. Every prediction
//! must equal onnxruntime's on the same rows within 1e-5.
//!
//! Needs a Python with scikit-learn, skl2onnx, onnx, onnxruntime and the
//! `mlcycle` helper, named by MLCYCLE_PYTHON (`.ci/run` makes one and sets
//! MLCYCLE_REQUIRE_PYTHON=1, so there its absence fails); elsewhere the tests
//! say they are skipped.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};

use common::Ws;
use serde_json::Value;

const EXPORT: &str = include_str!("onnx/export.py");

fn python() -> Option<std::ffi::OsString> {
    match std::env::var_os("MLCYCLE_PYTHON") {
        Some(p) => Some(p),
        None if std::env::var("MLCYCLE_REQUIRE_PYTHON").as_deref() == Ok("1") => {
            panic!("MLCYCLE_PYTHON is not set: .ci/run makes a venv with scikit-learn, skl2onnx and onnxruntime")
        }
        None => {
            eprintln!("skipped: set MLCYCLE_PYTHON to a python with scikit-learn, skl2onnx, onnx, onnxruntime and ./python");
            None
        }
    }
}

/// Runs export.py in a new workspace; returns it and the model names.
fn exported(python: &std::ffi::OsStr, yaml: impl Fn(&[String]) -> String) -> (Ws, Vec<String>) {
    let ws = Ws::new("name: onnx\nstages: {}\n");
    ws.write("export.py", EXPORT);
    let out = Command::new(python)
        .arg("export.py")
        .current_dir(ws.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "export.py: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let names: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    assert!(names.len() >= 16, "{names:?}");
    if std::env::var("MLCYCLE_REQUIRE_PYTHON").as_deref() == Ok("1") {
        // In CI the LightGBM exports must have run, not been skipped.
        assert!(names.iter().any(|n| n == "lightgbm_binary"), "{names:?}");
    }
    ws.write("mlcycle.yaml", &yaml(&names));
    (ws, names)
}

fn max_diff(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
}

/// Our predictions for rows.csv as one flat list: values, or every class's
/// probability row by row, in the expectation's class order.
fn ours(ws: &Ws, name: &str, expect: &Value) -> Vec<f64> {
    let classes = expect["classes"]
        .as_array()
        .filter(|_| expect.get("labels").is_none());
    let bundle = format!("artifacts/bundle@{name}/bundle");
    let mut args = vec![
        "predict", "--bundle", &bundle, "--input", "rows.csv", "--json",
    ];
    if classes.is_some() {
        args.push("--proba");
    }
    let r = ws.run(&args);
    assert_eq!(r.code, 0, "{name}: {}", r.stderr);
    let rows: Vec<Value> = r
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 40, "{name}");
    match classes {
        None => rows
            .iter()
            .map(|r| r["prediction"].as_f64().unwrap())
            .collect(),
        Some(classes) => rows
            .iter()
            .flat_map(|r| {
                classes
                    .iter()
                    .map(|c| {
                        r[format!("proba_{}", c.as_str().unwrap())]
                            .as_f64()
                            .unwrap()
                    })
                    .collect::<Vec<_>>()
            })
            .collect(),
    }
}

fn expected(ws: &Ws, name: &str) -> (Value, Vec<f64>) {
    let e: Value = serde_json::from_str(&ws.read(&format!("expect/{name}.json"))).unwrap();
    let flat = match e["task"].as_str().unwrap() {
        "regression" => e["values"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect(),
        _ => e["proba"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|r| r.as_array().unwrap().iter().map(|v| v.as_f64().unwrap()))
            .collect(),
    };
    (e, flat)
}

#[test]
fn onnx_models_score_like_onnxruntime_in_predict_and_serve() {
    let Some(python) = python() else { return };
    let (ws, names) = exported(&python, |names| {
        format!(
            "name: onnx\nstages:\n  bundle:\n    foreach: [{}]\n    uses: deploy.bundle\n    inputs: {{model: \"models/${{item}}.onnx\"}}\n",
            names.join(", ")
        )
    });
    let r = ws.run(&["run"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    for name in &names {
        let e: Value = serde_json::from_str(&ws.read(&format!("expect/{name}.json"))).unwrap();
        if let Some(labels) = e.get("labels") {
            // Decision values: the labels must be onnxruntime's, and no
            // probability is made up.
            let bundle = format!("artifacts/bundle@{name}/bundle");
            let r = ws.run(&[
                "predict", "--bundle", &bundle, "--input", "rows.csv", "--json",
            ]);
            assert_eq!(r.code, 0, "{name}: {}", r.stderr);
            let got: Vec<Value> = r
                .stdout
                .lines()
                .map(|l| serde_json::from_str::<Value>(l).unwrap())
                .collect();
            let got_labels: Vec<&Value> = got.iter().map(|r| &r["prediction"]).collect();
            assert_eq!(
                Value::from(got_labels.into_iter().cloned().collect::<Vec<_>>()),
                *labels,
                "{name}"
            );
            assert!(
                got.iter().all(|r| r.get("probability").is_none()),
                "{name}: {}",
                r.stdout
            );
            continue;
        }
        let (e, want) = expected(&ws, name);
        let got = ours(&ws, name, &e);
        let d = max_diff(&got, &want);
        assert!(d <= 1e-5, "{name}: max |mlcycle - onnxruntime| = {d}");
        // The bundle keeps the ONNX file untouched beside model.json.
        assert!(ws.exists(&format!("artifacts/bundle@{name}/bundle/model.onnx")));
    }

    // A missing value reaches the graph, which decides what it means.
    let r = ws.run(&[
        "predict",
        "--bundle",
        "artifacts/bundle@hgb_reg/bundle",
        "--input",
        "rows_nan.csv",
        "--json",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let got: Vec<f64> = r
        .stdout
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["prediction"]
                .as_f64()
                .unwrap()
        })
        .collect();
    let e: Value = serde_json::from_str(&ws.read("expect_nan_hgb_reg.json")).unwrap();
    let want: Vec<f64> = e["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    let d = max_diff(&got, &want);
    assert!(d <= 1e-5, "with NaN: max |mlcycle - onnxruntime| = {d}");

    // `mlcycle serve` scores the same rows with the same numbers.
    let rows = ws.read("rows.csv");
    let first: Vec<f64> = rows
        .lines()
        .nth(1)
        .unwrap()
        .split(',')
        .map(|v| v.parse().unwrap())
        .collect();
    for name in ["hgb_binary", "hgb_reg"] {
        let bundle = format!("artifacts/bundle@{name}/bundle");
        let mut child = ws
            .cmd(&["serve", "--bundle", &bundle, "--port", "0"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let port = common::listening_port(&mut child);
        let body = format!(
            r#"{{"dataframe_split": {{"columns": ["a", "b", "c"], "data": [[{}, {}, {}]]}}}}"#,
            first[0], first[1], first[2]
        );
        let invoke = |body: &str| {
            let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
            write!(
                c,
                "POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            )
            .unwrap();
            let mut out = String::new();
            c.read_to_string(&mut out).unwrap();
            out
        };
        let out = invoke(&body);
        // A missing value (null) is a NaN for the graph, as in predict.
        let nan = invoke(&body.replacen(&format!("[[{}, ", first[0]), "[[null, ", 1));
        let _ = child.kill();
        let _ = child.wait();
        assert!(out.starts_with("HTTP/1.1 200"), "{name}: {out}");
        assert!(nan.starts_with("HTTP/1.1 200"), "{name} with null: {nan}");
        let v: Value = serde_json::from_str(out.split("\r\n\r\n").nth(1).unwrap()).unwrap();
        let (e, want) = expected(&ws, name);
        let pred = &v["predictions"][0];
        match e["task"].as_str().unwrap() {
            "regression" => {
                let d = (pred.as_f64().unwrap() - want[0]).abs();
                assert!(d <= 1e-5, "{name}: served {pred}, onnxruntime {}", want[0]);
            }
            _ => {
                // The served class is the one onnxruntime rates highest.
                let p = &want[..2];
                let best = if p[1] > p[0] { "yes" } else { "no" };
                assert_eq!(pred.as_str(), Some(best), "{name}: {v}");
            }
        }
    }
}

#[test]
fn built_in_stages_evaluate_compare_and_explain_onnx_models() {
    let Some(python) = python() else { return };
    let (ws, _) = exported(&python, |_| {
        r#"name: onnx
stages:
  split_reg:
    uses: preprocess.split
    inputs: {data: reg.csv}
    with: {target: y, test: 0.3, seed: 1}
  split_bin:
    uses: preprocess.split
    inputs: {data: binary.csv}
    with: {target: "yes", test: 0.3, seed: 1}
  ols:
    uses: train.linear_regression
    inputs: {train: split_reg.train}
  eval_ols:
    uses: evaluate.regression
    inputs: {model: ols.model, test: split_reg.test}
  eval_hgb:
    uses: evaluate.regression
    inputs: {model: models/hgb_reg.onnx, test: split_reg.test}
  eval_net:
    uses: evaluate.regression
    inputs: {model: models/net_reg.onnx, test: split_reg.test}
  eval_bin:
    uses: evaluate.classification
    inputs: {model: models/hgb_binary.onnx, test: split_bin.test}
  compare:
    uses: evaluate.compare
    inputs: {model: models/hgb_reg.onnx, reference: ols.model, test: split_reg.test}
    with: {metric: rmse}
  ship_best:
    uses: deploy.bundle
    inputs: {model: compare.best}
  explain:
    uses: evaluate.importance
    inputs: {model: models/hgb_reg.onnx, test: split_reg.test}
    with: {n_repeats: 3, seed: 1}
  ship:
    uses: deploy.bundle
    inputs: {model: models/hgb_binary.onnx, metrics: eval_bin.metrics}
"#
        .to_string()
    });
    let r = ws.run(&["run"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let metrics = |stage: &str| -> Value {
        serde_json::from_str(&ws.read(&format!("artifacts/{stage}/metrics.json"))).unwrap()
    };
    // y = 3a + sin(2b) + noise: boosting beats a straight line.
    let (hgb, ols) = (metrics("eval_hgb"), metrics("eval_ols"));
    assert!(hgb["r2"].as_f64().unwrap() > 0.95, "{hgb}");
    assert!(hgb["rmse"].as_f64().unwrap() < ols["rmse"].as_f64().unwrap());
    assert_eq!(hgb["model"]["train_rows"], 300, "{hgb}");
    let bin = metrics("eval_bin");
    assert!(bin["accuracy"].as_f64().unwrap() > 0.9, "{bin}");
    assert!(
        bin["roc_auc"].as_f64().is_some(),
        "probabilities reach the metrics: {bin}"
    );
    // The random network scores, badly: it must run, not fit.
    assert!(metrics("eval_net")["rmse"].as_f64().is_some());
    // The target depends on a and b, never on c.
    let imp = ws.read("artifacts/explain/importance.json");
    let imp: Value = serde_json::from_str(&imp).unwrap();
    let mean = |c: &str| imp["importance"][c]["mean"].as_f64().unwrap();
    assert!(mean("a") > mean("b") && mean("b") > mean("c"), "{imp}");
    // The winner of the comparison is the ONNX model, handed on as a model
    // document that a bundle takes.
    let cmp: Value = serde_json::from_str(&ws.read("artifacts/compare/comparison.json")).unwrap();
    assert_eq!(cmp["passed"], true, "{cmp}");
    assert!(ws
        .read("artifacts/compare/best.json")
        .contains("\"algorithm\": \"onnx\""));
    assert!(ws.exists("artifacts/ship_best/bundle/model.onnx"));
    let card = ws.read("artifacts/ship/bundle/MODEL_CARD.md");
    assert!(
        card.contains("sklearn.HistGradientBoostingClassifier") || card.contains("onnx"),
        "{card}"
    );
}

#[test]
fn python_models_of_a_matrix_are_selected_and_classes_match_by_value() {
    let Some(python) = python() else { return };
    let py = python.to_string_lossy().into_owned();
    let (ws, _) = exported(&python, |_| {
        format!(
            r#"name: onnx
stages:
  split:
    uses: preprocess.split
    inputs: {{data: multi.csv}}
    with: {{target: k, test: 0.3, seed: 1}}
  fit:
    foreach: [hgb_multi, forest_multi, logistic_multi]
    run: {py} -c "import mlcycle; mlcycle.save_model('models/${{item}}.onnx', mlcycle.output('model'))"
    deps: ["models/${{item}}.onnx"]
    outs: ["out/${{item}}/model.onnx"]
  ev:
    foreach: [hgb_multi, forest_multi, logistic_multi]
    uses: evaluate.classification
    inputs: {{model: "fit@${{item}}.model", test: split.test}}
  pick:
    uses: evaluate.select
    # The metrics listed in another order than the models.
    inputs: {{models: "fit@*.model", metrics: [ev@logistic_multi.metrics, ev@hgb_multi.metrics, ev@forest_multi.metrics]}}
    with: {{metric: accuracy}}
  ship:
    uses: deploy.bundle
    inputs: {{model: pick.best}}
  ev_float:
    uses: evaluate.classification
    inputs: {{model: models/float_classes.onnx, test: split.test}}
"#
        )
    });
    let r = ws.run(&["run"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let acc = |stage: &str| -> f64 {
        let m: Value =
            serde_json::from_str(&ws.read(&format!("artifacts/{stage}/metrics.json"))).unwrap();
        m["accuracy"].as_f64().unwrap()
    };
    let board: Value = serde_json::from_str(&ws.read("artifacts/pick/summary.json")).unwrap();
    let best = board["best_model"].as_str().unwrap().to_string();
    let best_acc = ["hgb_multi", "forest_multi", "logistic_multi"]
        .iter()
        .map(|m| acc(&format!("ev@{m}")))
        .fold(0.0, f64::max);
    assert_eq!(acc(&best.replace("fit@", "ev@")), best_acc, "{board}");
    // The winner's bundle holds the ONNX file it was trained as.
    let shipped = std::fs::read(ws.path().join("artifacts/ship/bundle/model.onnx")).unwrap();
    let item = best.trim_start_matches("fit@");
    let original = std::fs::read(ws.path().join(format!("out/{item}/model.onnx"))).unwrap();
    assert_eq!(shipped, original);
    // `mlcycle show` tells what it reads from an ONNX output.
    let r = ws.run(&["show", "fit@hgb_multi.model"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout.contains("ONNX model") && r.stdout.contains("classes: 0, 1, 2"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("trained by stage `fit@hgb_multi`"),
        "{}",
        r.stdout
    );
    // `0.0` names the class the table calls `0`.
    assert_eq!(acc("ev_float"), acc("ev@hgb_multi"));

    // Classes that share nothing with the labels are refused, not scored 0.
    ws.write(
        "mlcycle.yaml",
        &format!(
            "{}  ev_wrong:\n    uses: evaluate.classification\n    inputs: {{model: models/wrong_classes.onnx, test: split.test}}\n",
            ws.read("mlcycle.yaml")
        ),
    );
    let r = ws.run(&["run"]);
    assert_ne!(r.code, 0);
    assert!(
        r.stderr
            .contains("no label of `k` in the test rows is a class of the model"),
        "{}",
        r.stderr
    );
}

#[test]
fn broken_onnx_models_are_refused_with_the_reason() {
    let Some(python) = python() else { return };
    let ws = Ws::new(
        r#"name: onnx
stages:
  split:
    uses: preprocess.split
    inputs: {data: reg.csv}
    with: {target: y, test: 0.3, seed: 1}
  eval:
    uses: evaluate.regression
    inputs: {model: model.onnx, test: split.test}
"#,
    );
    ws.write(
        "make.py",
        r#"
import sys
import numpy as np, pandas as pd
from sklearn.linear_model import LinearRegression
from skl2onnx import to_onnx
import mlcycle
rng = np.random.default_rng(0)
X = rng.normal(size=(50, 3)).astype(np.float32)
pd.DataFrame({"a": X[:, 0], "b": X[:, 1], "c": X[:, 2], "y": X[:, 0] * 2}).to_csv("reg.csv", index=False)
m = to_onnx(LinearRegression().fit(X, X[:, 0] * 2), X[:1])
case = sys.argv[1]
if case == "unnamed":
    open("model.onnx", "wb").write(m.SerializeToString())
elif case == "miscount":
    mlcycle.save_model(m, "model.onnx", features=["a", "b"])
elif case == "typo":
    open("model.onnx", "wb").write(m.SerializeToString() + mlcycle._model._metadata_bytes({"mlcycle.feature": "[]"}))
elif case == "wrong_column":
    mlcycle.save_model(m, "model.onnx", features=["a", "b", "d"])
elif case == "not_onnx":
    open("model.onnx", "wb").write(b"\x00\x01garbage")
elif case == "svr":
    from sklearn.svm import SVR
    mlcycle.save_model(SVR().fit(X, X[:, 0]), "model.onnx", features=["a", "b", "c"])
elif case == "empty":
    open("model.onnx", "wb").write(b"")
"#,
    );
    let case = |c: &str, want: &[&str]| {
        let out = Command::new(&python)
            .args(["make.py", c])
            .current_dir(ws.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let r = ws.run(&["run"]);
        assert_ne!(r.code, 0, "{c}: {}", r.stdout);
        for w in want {
            assert!(r.stderr.contains(w), "{c}: want {w:?} in:\n{}", r.stderr);
        }
    };
    case(
        "unnamed",
        &[
            "takes 3 columns and the file does not name them",
            "save_model",
        ],
    );
    case(
        "miscount",
        &["names 2 column(s) but the graph's input(s) take 3"],
    );
    case(
        "typo",
        &[
            "unknown metadata key `mlcycle.feature`",
            "did you mean `mlcycle.features`?",
        ],
    );
    case("wrong_column", &["lacks column(s) the model needs: d"]);
    case("not_onnx", &["not an ONNX model"]);
    case(
        "svr",
        &[
            "does not implement: ai.onnx.ml.SVMRegressor",
            "docs/artifacts.md",
        ],
    );
    case("empty", &["is empty: not a model"]);
}

#[test]
fn the_python_onnx_example_trains_compares_bundles_and_serves() {
    let Some(python) = python() else { return };
    let ws = common::example("python-onnx");
    let bin_dir = std::path::Path::new(&python)
        .parent()
        .unwrap()
        .to_path_buf();
    let path = std::env::join_paths(
        std::iter::once(bin_dir).chain(std::env::split_paths(&std::env::var_os("PATH").unwrap())),
    )
    .unwrap();
    let out = ws.cmd(&["run"]).env("PATH", &path).output().unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stdout}{stderr}");
    for stage in ["hgb", "eval_hgb", "eval_forest", "compare", "bundle"] {
        assert!(stdout.contains(&format!("{stage} ")), "{stage}: {stdout}");
    }
    let m: Value = serde_json::from_str(&ws.read("artifacts/eval_hgb/metrics.json")).unwrap();
    assert!(m["accuracy"].as_f64().unwrap() > 0.6, "{m}");
    assert_eq!(m["model"]["kind"], "sklearn.HistGradientBoostingClassifier");
    assert_eq!(m["model"]["stage"], "hgb");
    assert_eq!(m["model"]["train_rows"], 1198);
    // The cross-validation scores were logged step by step.
    let steps = ws.read(".mlcycle/steps/hgb.jsonl");
    assert_eq!(steps.lines().count(), 5, "{steps}");
    assert!(
        steps.lines().all(|l| l.contains("\"cv_accuracy\"")),
        "{steps}"
    );
    // The winner's bundle scores a row.
    ws.write(
        "row.csv",
        "fixed_acidity,volatile_acidity,citric_acid,residual_sugar,chlorides,free_sulfur_dioxide,total_sulfur_dioxide,density,pH,sulphates,alcohol\n7.4,0.7,0.0,1.9,0.076,11.0,34.0,0.9978,3.51,0.56,9.4\n",
    );
    let r = ws.run(&[
        "predict",
        "--bundle",
        "artifacts/bundle/bundle",
        "--input",
        "row.csv",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout.lines().nth(1).is_some_and(|l| l.contains(",5,")),
        "{}",
        r.stdout
    );
    // Nothing changed: nothing reruns, the Python stage included.
    let again = ws.cmd(&["run"]).env("PATH", &path).output().unwrap();
    assert!(String::from_utf8_lossy(&again.stdout).contains("8 fresh"));
}
