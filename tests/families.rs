//! The model families beyond the linear ones, end to end: `train.mlp`,
//! `train.gradient_boosting`, and regression trees and forests — what they
//! learn on tiny fixtures, their bad-input errors, byte-identical
//! artifacts for a seed, and scoring by `predict` and `serve`.

mod common;

use std::fmt::Write as _;

use common::Ws;

fn metrics(ws: &Ws, stage: &str) -> serde_json::Value {
    serde_json::from_str(&ws.read(&format!("artifacts/{stage}/metrics.json"))).unwrap()
}

/// A workspace whose stage `m` of `kind` (with `with`) trains on `csv`
/// (target `y`).
fn one_stage(kind: &str, with: &str, csv: &str) -> Ws {
    let ws = Ws::new(&format!(
        "stages:\n  data: {{uses: dataset.csv, with: {{path: d.csv, target: y}}}}\n  m: {{uses: {kind}, inputs: {{train: data.data}}, with: {with}}}\n"
    ));
    ws.write("d.csv", csv);
    ws
}

fn run_ok(ws: &Ws) -> common::Run {
    let r = ws.run(&["run"]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    r
}

/// XOR's four corners, each `copies` times.
fn xor_csv(copies: usize) -> String {
    let mut s = String::from("x1,x2,label\n");
    for _ in 0..copies {
        for (a, b) in [(0, 0), (0, 1), (1, 0), (1, 1)] {
            let label = if a != b { "yes" } else { "no" };
            writeln!(s, "{a},{b},{label}").unwrap();
        }
    }
    s
}

/// `y = sin(x)` on 200 points of [−π, π].
fn sine_csv() -> String {
    let mut s = String::from("x,y\n");
    for i in 0..200 {
        let x = -3.1 + 6.2 * f64::from(i) / 199.0;
        writeln!(s, "{x},{}", x.sin()).unwrap();
    }
    s
}

/// A smooth non-linear function of four features (two of them noise-free
/// signal, one quadratic, one unused), on a deterministic grid-like spread.
fn friedman_csv(rows: usize) -> String {
    let mut s = String::from("a,b,c,d,y\n");
    for i in 0..rows {
        let f = |k: usize| (((i * (2 * k + 7) + k * 13) % 101) as f64 / 50.0) - 1.0;
        let (a, b, c, d) = (f(0), f(1), f(2), f(3));
        let y = 10.0 * (3.0 * a * b).sin() + 5.0 * c * c + 2.0 * a;
        writeln!(s, "{a},{b},{c},{d},{y}").unwrap();
    }
    s
}

#[test]
fn a_network_learns_xor_and_a_sine_through_the_pipeline() {
    let ws = Ws::new(
        r#"
stages:
  xor: {uses: dataset.csv, with: {path: xor.csv, target: label}}
  net:
    uses: train.mlp
    inputs: {train: xor.data}
    with: {layers: [8], activation: tanh, learning_rate: 0.05, epochs: 300, batch_size: 4, log_every: 100}
  eval_xor: {uses: evaluate.classification, inputs: {model: net.model, test: xor.data}}
  sine: {uses: dataset.csv, with: {path: sine.csv, target: y}}
  wave:
    uses: train.mlp
    inputs: {train: sine.data}
    with: {layers: [32, 32], activation: tanh, loss: huber, learning_rate: 0.01, epochs: 300, batch_size: 16}
  eval_sine: {uses: evaluate.regression, inputs: {model: wave.model, test: sine.data}}
"#,
    );
    ws.write("xor.csv", &xor_csv(10));
    ws.write("sine.csv", &sine_csv());
    let r = run_ok(&ws);
    assert_eq!(metrics(&ws, "eval_xor")["accuracy"], 1.0);
    let r2 = metrics(&ws, "eval_sine")["r2"].as_f64().unwrap();
    assert!(r2 > 0.99, "sine R² {r2}");
    // The loss is logged every `log_every` epochs, and drawn.
    assert!(
        r.stderr.contains("epoch   100/300: cross-entropy"),
        "{}",
        r.stderr
    );
    assert!(r
        .stderr
        .contains("task: classification, since the target `label` is categorical"));
    assert!(
        r.stderr
            .contains("wave | task: regression, since the target `y` is numeric"),
        "{}",
        r.stderr
    );
    let csv = ws.read("artifacts/net/loss/loss.csv");
    assert!(csv.starts_with("epoch,train\n1,"), "{csv}");
    assert_eq!(csv.lines().count(), 301);
    for f in ["loss.svg", "loss.png"] {
        assert!(ws.exists(&format!("artifacts/wave/loss/{f}")), "{f}");
    }
}

#[test]
fn boosting_beats_a_single_tree_and_forests_and_trees_do_regression() {
    let ws = Ws::new(
        r#"
stages:
  data: {uses: dataset.csv, with: {path: f.csv, target: y}}
  split: {uses: preprocess.split, inputs: {data: data.data}, with: {test: 0.25, seed: 1}}
  tree: {uses: train.decision_tree, inputs: {train: split.train}, with: {max_depth: 6}}
  forest: {uses: train.random_forest, inputs: {train: split.train}, with: {trees: 50}}
  boost: {uses: train.gradient_boosting, inputs: {train: split.train}, with: {max_iter: 200, min_samples_leaf: 5}}
  eval_tree: {uses: evaluate.regression, inputs: {model: tree.model, test: split.test}}
  eval_forest: {uses: evaluate.regression, inputs: {model: forest.model, test: split.test}}
  eval_boost: {uses: evaluate.regression, inputs: {model: boost.model, test: split.test}}
"#,
    );
    ws.write("f.csv", &friedman_csv(2000));
    let r = run_ok(&ws);
    let r2 = |s: &str| metrics(&ws, s)["r2"].as_f64().unwrap();
    let (tree, forest, boost) = (r2("eval_tree"), r2("eval_forest"), r2("eval_boost"));
    assert!(boost > 0.97, "boosting R² {boost}");
    assert!(boost > tree + 0.02, "boosting {boost} vs tree {tree}");
    assert!(forest > tree, "forest {forest} vs tree {tree}");
    // Every tree model reports importances; `d` is unused.
    for s in ["eval_tree", "eval_forest", "eval_boost"] {
        let imp = &metrics(&ws, s)["feature_importances"];
        let d = imp["d"].as_f64().unwrap();
        let total: f64 = ["a", "b", "c", "d"]
            .iter()
            .map(|f| imp[f].as_f64().unwrap())
            .sum();
        assert!((total - 1.0).abs() < 1e-9, "{s}: {imp}");
        let least = ["a", "b", "c"]
            .iter()
            .map(|f| imp[f].as_f64().unwrap())
            .fold(f64::INFINITY, f64::min);
        assert!(d < least, "{s}: {imp}");
    }
    let model: serde_json::Value =
        serde_json::from_str(&ws.read("artifacts/boost/model.json")).unwrap();
    assert_eq!(model["task"], "regression");
    assert_eq!(model["fitted"]["algorithm"], "boosting");
    assert!(ws
        .read("artifacts/boost/loss/loss.csv")
        .starts_with("iteration,train\n"));
    assert!(
        r.stderr.contains("iteration  200/200: half squared error"),
        "{}",
        r.stderr
    );
}

#[test]
fn boosting_classifies_with_probabilities_and_stops_early() {
    let ws = Ws::new(
        r#"
stages:
  xor: {uses: dataset.csv, with: {path: xor.csv, target: label}}
  boost:
    uses: train.gradient_boosting
    inputs: {train: xor.data}
    with: {min_samples_leaf: 1, early_stopping: true, validation_fraction: 0.2, n_iter_no_change: 5, max_iter: 1000}
  eval: {uses: evaluate.classification, inputs: {model: boost.model, test: xor.data}}
"#,
    );
    ws.write("xor.csv", &xor_csv(25));
    let r = run_ok(&ws);
    let m = metrics(&ws, "eval");
    assert_eq!(m["accuracy"], 1.0, "{m}");
    assert!(m["log_loss"].as_f64().unwrap() < 0.1, "{m}");
    assert!(r.stderr.contains("stopped at iteration"), "{}", r.stderr);
    let csv = ws.read("artifacts/boost/loss/loss.csv");
    assert!(csv.starts_with("iteration,train,validation\n"), "{csv}");
    assert!(csv.lines().count() < 1001);
}

/// The same seed gives byte-identical models (the run-cache and early
/// cutoff depend on it), with every random part on: dropout, held-out
/// rows, row subsampling, bootstrap samples.
#[test]
fn the_same_seed_gives_byte_identical_models() {
    let yaml = r#"
stages:
  data: {uses: dataset.csv, with: {path: f.csv, target: y}}
  net:
    uses: train.mlp
    inputs: {train: data.data}
    with: {layers: [16, 8], dropout: 0.2, l1: 0.0001, l2: 0.001, early_stopping: true, epochs: 30, optimizer: sgd, learning_rate: 0.01}
  boost: {uses: train.gradient_boosting, inputs: {train: data.data}, with: {subsample: 0.5, early_stopping: true, max_iter: 30}}
  forest: {uses: train.random_forest, inputs: {train: data.data}, with: {trees: 10}}
"#;
    let a = Ws::new(yaml);
    let b = Ws::new(yaml);
    for ws in [&a, &b] {
        ws.write("f.csv", &friedman_csv(500));
        run_ok(ws);
    }
    for s in ["net", "boost", "forest"] {
        let file = format!("artifacts/{s}/model.json");
        assert!(a.read(&file) == b.read(&file), "{s}'s model differs");
    }
    // Another seed, another network.
    let c = Ws::new(&yaml.replace("learning_rate: 0.01}", "learning_rate: 0.01, seed: 7}"));
    c.write("f.csv", &friedman_csv(500));
    run_ok(&c);
    assert_ne!(
        a.read("artifacts/net/model.json"),
        c.read("artifacts/net/model.json")
    );
}

#[test]
fn bad_inputs_are_refused_with_what_to_do() {
    // A text feature.
    let ws = Ws::new(
        r#"
stages:
  data: {uses: dataset.csv, with: {path: d.csv, target: y}}
  net: {uses: train.mlp, inputs: {train: data.data}}
"#,
    );
    ws.write("d.csv", "x,colour,y\n1,red,2\n2,blue,3\n3,red,4\n");
    let r = ws.run(&["run"]);
    assert_ne!(r.code, 0);
    assert!(
        r.stderr.contains("`colour`") && r.stderr.contains("features.one_hot"),
        "{}",
        r.stderr
    );

    // Missing values in a feature (boosting learns them: see
    // `boosting_learns_missing_values_and_scores_them_everywhere`).
    for kind in ["train.mlp", "train.random_forest", "train.decision_tree"] {
        let ws = one_stage(kind, "{}", "x,y\n1,2\n,3\n3,4\n4,5\n");
        let r = ws.run(&["run"]);
        assert_ne!(r.code, 0, "{kind}");
        assert!(
            r.stderr.contains("preprocess.clean"),
            "{kind}: {}",
            r.stderr
        );
    }

    // A categorical target for a regression: the help names `task`.
    for (kind, with, says) in [
        ("train.mlp", "{task: regression}", "task: classification"),
        ("train.mlp", "{loss: mse}", "regression losses"),
        (
            "train.gradient_boosting",
            "{task: regression}",
            "task: classification",
        ),
        (
            "train.decision_tree",
            "{task: regression}",
            "task: classification",
        ),
    ] {
        let ws = one_stage(kind, with, "x,y\n1,a\n2,b\n3,a\n");
        let r = ws.run(&["run"]);
        assert_ne!(r.code, 0, "{kind} {with}");
        assert!(r.stderr.contains(says), "{kind} {with}: {}", r.stderr);
    }

    // A criterion or loss of the other task, and out-of-range params.
    for (kind, with, says) in [
        (
            "train.random_forest",
            "{criterion: squared_error}",
            "is for a regression",
        ),
        (
            "train.mlp",
            "{task: classification, loss: huber}",
            "regression losses",
        ),
        (
            "train.mlp",
            "{dropout: 1.0}",
            "`dropout` must be at least 0 and below 1",
        ),
        ("train.mlp", "{layers: [8, 0]}", "layer 2 has width 0"),
        (
            "train.mlp",
            "{layers: [100000, 100000]}",
            "at most 100000000",
        ),
        (
            "train.random_forest",
            "{max_depth: 0}",
            "`max_depth` must be at least 1",
        ),
        (
            "train.random_forest",
            "{min_samples_split: 1}",
            "`min_samples_split` must be at least 2",
        ),
        (
            "train.decision_tree",
            "{min_samples_leaf: 0}",
            "`min_samples_leaf` must be at least 1",
        ),
        ("train.mlp", "{activation: softsign}", "relu"),
        (
            "train.gradient_boosting",
            "{max_bins: 300}",
            "between 2 and 255",
        ),
        (
            "train.gradient_boosting",
            "{early_stopping: sometimes}",
            "`early_stopping` must be",
        ),
    ] {
        let ws = one_stage(kind, with, "x,y\n1,a\n2,b\n3,a\n4,b\n");
        let r = ws.run(&["run"]);
        assert_ne!(r.code, 0, "{kind} {with}");
        assert!(r.stderr.contains(says), "{kind} {with}: {}", r.stderr);
    }

    // Boosting whose steps overshoot is refused, not shipped: it hung
    // drawing an infinite loss, or wrote `null` leaves, or a model off by
    // 1e18.
    let mut hr = String::from("a,y\n");
    for i in 0..60 {
        hr.push_str(&format!("{i},{}\n", f64::from(i) / 2.0));
    }
    for lr in ["2.5", "10"] {
        let ws = one_stage(
            "train.gradient_boosting",
            &format!("{{learning_rate: {lr}, min_samples_leaf: 5}}"),
            &hr,
        );
        let r = ws.run(&["run"]);
        assert_ne!(r.code, 0, "lr {lr}: {}", r.stdout);
        assert!(
            r.stderr.contains("boosting diverged") && r.stderr.contains("learning_rate"),
            "lr {lr}: {}",
            r.stderr
        );
    }
    let mut h = String::from("a,y\n");
    for i in 0..60 {
        h.push_str(&format!(
            "{i},{}\n",
            if (i * 7) % 5 < 2 { "yes" } else { "no" }
        ));
    }
    for lr in ["3", "10"] {
        let ws = one_stage(
            "train.gradient_boosting",
            &format!("{{learning_rate: {lr}}}"),
            &h,
        );
        let r = ws.run(&["run"]);
        assert_ne!(r.code, 0, "classes, lr {lr}: {}", r.stdout);
        assert!(
            r.stderr.contains("boosting diverged"),
            "lr {lr}: {}",
            r.stderr
        );
    }

    // Divergence that stays finite: the loss grew 10 000-fold at 2.1 and
    // the model shipped with R² −12 418; the network at Adam's 100 too.
    let ws = one_stage(
        "train.gradient_boosting",
        "{learning_rate: 2.1, max_iter: 50, min_samples_leaf: 5}",
        &hr,
    );
    let r = ws.run(&["run"]);
    assert!(r.stderr.contains("boosting diverged"), "{}", r.stderr);
    let ws = one_stage(
        "train.mlp",
        "{layers: [16], epochs: 50, learning_rate: 100}",
        &friedman_csv(300),
    );
    let r = ws.run(&["run"]);
    assert!(r.stderr.contains("the network diverged"), "{}", r.stderr);

    // A target whose squares overflow (metrics came out NaN, a network
    // wrote `null`, trees saw no gain).
    let mut huge = String::from("x,y\n");
    for i in 0..50 {
        huge.push_str(&format!("{i},{}e200\n", i + 3));
    }
    for kind in [
        "train.mlp",
        "train.random_forest",
        "train.gradient_boosting",
    ] {
        let ws = one_stage(kind, "{task: regression}", &huge);
        let r = ws.run(&["run"]);
        assert_ne!(r.code, 0, "{kind}");
        assert!(
            r.stderr.contains("rescale the target"),
            "{kind}: {}",
            r.stderr
        );
    }

    // A width near usize::MAX must not wrap the weight count.
    let ws = one_stage("train.mlp", "{layers: [4611686018427387904]}", "x,y\n1,2\n");
    let r = ws.run(&["validate"]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("at most 100000000"), "{}", r.stderr);

    // Values beyond float32, the network's arithmetic, are named.
    let ws = one_stage(
        "train.mlp",
        "{epochs: 5}",
        "a,y\n1.5e308,1\n1.7e308,2\n1,3\n",
    );
    let r = ws.run(&["run"]);
    assert_ne!(r.code, 0);
    assert!(
        r.stderr.contains("column `a`") && r.stderr.contains("float32"),
        "{}",
        r.stderr
    );

    // An explicit task: the help names the param, and a whole-number
    // target with more than 50 values may be classes when asked.
    let ws = one_stage(
        "train.random_forest",
        "{task: regression}",
        "x,y\n1,a\n2,b\n3,a\n",
    );
    let r = ws.run(&["run"]);
    assert!(r.stderr.contains("task: classification"), "{}", r.stderr);
    let mut whole = String::from("x,y\n");
    for i in 0..120 {
        whole.push_str(&format!("{i},{}\n", i % 60));
    }
    let ws = one_stage("train.decision_tree", "{task: classification}", &whole);
    let r = ws.run(&["run"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let ws = one_stage("train.decision_tree", "{task: classification}", &sine_csv());
    let r = ws.run(&["run"]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("task: regression"), "{}", r.stderr);

    // A learning rate that blows up says what to change.
    let ws = Ws::new(
        r#"
stages:
  data: {uses: dataset.csv, with: {path: d.csv, target: y}}
  net: {uses: train.mlp, inputs: {train: data.data}, with: {optimizer: sgd, learning_rate: 1000000, standardize_target: false}}
"#,
    );
    ws.write("d.csv", "x,y\n1,1000\n2,2000\n3,3000\n4,4000\n5,5000\n");
    let r = ws.run(&["run"]);
    assert_ne!(r.code, 0);
    assert!(
        r.stderr.contains("diverged") && r.stderr.contains("learning_rate"),
        "{}",
        r.stderr
    );
}

/// The new models travel in a bundle and are scored by `predict` and
/// `serve` like the others.
#[test]
fn networks_and_boosters_are_bundled_predicted_and_served() {
    let ws = Ws::new(
        r#"
stages:
  xor: {uses: dataset.csv, with: {path: xor.csv, target: label}}
  net:
    uses: train.mlp
    inputs: {train: xor.data}
    with: {layers: [8], activation: tanh, learning_rate: 0.05, epochs: 300, batch_size: 4}
  boost: {uses: train.gradient_boosting, inputs: {train: xor.data}, with: {min_samples_leaf: 1}}
  net_bundle: {uses: deploy.bundle, inputs: {model: net.model}, with: {name: xor-net}}
  boost_bundle: {uses: deploy.bundle, inputs: {model: boost.model}, with: {name: xor-boost}}
"#,
    );
    // Three more `1,0` rows: on a balanced XOR no first split gains
    // anything, and boosting (as scikit-learn's) takes no split that gains
    // nothing.
    ws.write("xor.csv", &(xor_csv(10) + "1,0,yes\n1,0,yes\n1,0,yes\n"));
    run_ok(&ws);
    ws.write("rows.csv", "x1,x2\n0,1\n1,1\n");
    for b in ["net_bundle", "boost_bundle"] {
        let labels = predicted(&ws, &format!("artifacts/{b}/bundle"));
        assert_eq!(labels, ["yes", "no"], "{b}");
    }
    // Served: the network's answer over HTTP.
    let out = serve_posts(
        &ws,
        "artifacts/net_bundle/bundle",
        &[r#"{"instances": [{"x1": 1, "x2": 0}]}"#],
    )
    .remove(0);
    assert!(out.starts_with("HTTP/1.1 200"), "{out}");
    assert!(out.contains(r#""prediction":"yes""#), "{out}");
}

/// Gradient boosting learns what a missing value means, as scikit-learn's
/// HistGradientBoosting does: a table with empty cells is scaled (the
/// scaler fits on the present values and keeps the missing ones, as
/// scikit-learn's does) and trains, and rows with missing values are
/// scored by `evaluate.*`, `predict` (an empty cell) and `serve` (a JSON
/// `null`). Before, the scaler and the trainer refused them.
#[test]
fn boosting_learns_missing_values_and_scores_them_everywhere() {
    // `y` is 100 where `x` is missing, else `x` (0 to 300).
    let mut csv = String::from("x,z,y\n");
    for i in 0..300 {
        if i % 3 == 0 {
            writeln!(csv, ",{},100", i % 7).unwrap();
        } else {
            writeln!(csv, "{i},{},{i}", i % 7).unwrap();
        }
    }
    let ws = Ws::new(
        r#"
stages:
  data: {uses: dataset.csv, with: {path: d.csv, target: y}}
  scale: {uses: preprocess.scale, inputs: {data: data.data}}
  boost: {uses: train.gradient_boosting, inputs: {train: scale.data}, with: {min_samples_leaf: 5}}
  eval: {uses: evaluate.regression, inputs: {model: boost.model, test: data.data}}
  bundle: {uses: deploy.bundle, inputs: {model: boost.model}, with: {name: gaps}}
"#,
    );
    ws.write("d.csv", &csv);
    run_ok(&ws);
    let r2 = metrics(&ws, "eval")["r2"].as_f64().unwrap();
    assert!(r2 > 0.99, "{r2}");
    let model: serde_json::Value =
        serde_json::from_str(&ws.read("artifacts/boost/model.json")).unwrap();
    // `early_stopping: auto` is recorded as what it chose.
    assert_eq!(model["params"]["early_stopping"], serde_json::json!(false));
    // The scaler's mean of `x` is that of its present values.
    let present: Vec<f64> = (0..300).filter(|i| i % 3 != 0).map(f64::from).collect();
    let mean = present.iter().sum::<f64>() / present.len() as f64;
    let step: serde_json::Value =
        serde_json::from_str(&ws.read("artifacts/scale/transform.json")).unwrap();
    let offset = step.pointer("/steps/0/offsets/0");
    assert!(
        (offset.and_then(serde_json::Value::as_f64).unwrap() - mean).abs() < 1e-9,
        "{step}"
    );
    ws.write("rows.csv", "x,z\n,3\n150,2\n");
    let values: Vec<f64> = predicted(&ws, "artifacts/bundle/bundle")
        .iter()
        .map(|v| v.parse().unwrap())
        .collect();
    assert!((values[0] - 100.0).abs() < 5.0, "{values:?}");
    assert!((values[1] - 150.0).abs() < 10.0, "{values:?}");
    let out = serve_posts(
        &ws,
        "artifacts/bundle/bundle",
        &[r#"{"instances": [{"x": null, "z": 1}]}"#],
    )
    .remove(0);
    assert!(out.starts_with("HTTP/1.1 200"), "{out}");
    let body = &out[out.find("\r\n\r\n").unwrap() + 4..];
    let body = body.trim_start_matches(|c: char| c.is_ascii_hexdigit() || c.is_whitespace());
    let v: serde_json::Value = serde_json::Deserializer::from_str(body)
        .into_iter()
        .next()
        .unwrap()
        .unwrap();
    let got = v["predictions"][0]["prediction"].as_f64().unwrap();
    assert!((got - 100.0).abs() < 5.0, "{out}");
}

/// A missing category marks the class here; `features.one_hot` with
/// `drop: first` encoded it as all zeros, the code of the dropped
/// category, so no model could tell them apart (accuracy 0.77). It now
/// has its own column, and a category missing at scoring time that
/// training never had is counted as unseen.
#[test]
fn a_missing_category_has_its_own_one_hot_column() {
    let mut csv = String::from("a,color,label\n");
    for i in 0..600 {
        let (color, label) = match i % 4 {
            0 => ("red", "A"),
            1 => ("green", "B"),
            2 => ("blue", "B"),
            _ => ("", "C"),
        };
        writeln!(csv, "{},{color},{label}", i % 10).unwrap();
    }
    let ws = Ws::new(
        r#"
stages:
  data: {uses: dataset.csv, with: {path: d.csv, target: label}}
  onehot: {uses: features.one_hot, inputs: {data: data.data}, with: {drop: first}}
  boost: {uses: train.gradient_boosting, inputs: {train: onehot.data}}
  eval: {uses: evaluate.classification, inputs: {model: boost.model, test: data.data}}
"#,
    );
    ws.write("d.csv", &csv);
    run_ok(&ws);
    assert_eq!(metrics(&ws, "eval")["accuracy"], 1.0);
    let step = ws.read("artifacts/onehot/transform.json");
    assert!(step.contains(r#""missing": true"#), "{step}");
    // A test table whose colour is empty in every row reads as a numeric
    // column of NaN: it is scored as all missing (it was refused as "numeric").
    ws.write(
        "mlcycle.yaml",
        &(ws.read("mlcycle.yaml")
            + "  gaps: {uses: dataset.csv, with: {path: gaps.csv, target: label}}\n  eval_gaps: {uses: evaluate.classification, inputs: {model: boost.model, test: gaps.data}}\n"),
    );
    ws.write("gaps.csv", "a,color,label\n1,,C\n2,,C\n");
    run_ok(&ws);
    assert_eq!(metrics(&ws, "eval_gaps")["accuracy"], 1.0);
    // A real category spelled `(missing)` beside missing values would
    // share its column name: refused.
    ws.write("d.csv", &(csv.clone() + "1,(missing),A\n"));
    let r = ws.run(&["run"]);
    assert_ne!(r.code, 0);
    assert!(
        r.stderr
            .contains("column `color` has missing values and a category named `(missing)`"),
        "{}",
        r.stderr
    );
}

/// The params a fit chose from the data are recorded as chosen: a tree's
/// `criterion`, a forest's `max_features` and a network's `loss` were
/// `null` in `model.json`.
#[test]
fn defaults_chosen_from_the_data_are_recorded_in_the_model() {
    let ws = Ws::new(
        r#"
stages:
  data: {uses: dataset.csv, with: {path: d.csv, target: y}}
  tree: {uses: train.decision_tree, inputs: {train: data.data}}
  forest: {uses: train.random_forest, inputs: {train: data.data}, with: {trees: 5}}
  net: {uses: train.mlp, inputs: {train: data.data}, with: {epochs: 2}}
"#,
    );
    ws.write("d.csv", &friedman_csv(100));
    run_ok(&ws);
    let params = |stage: &str| -> serde_json::Value {
        let m: serde_json::Value =
            serde_json::from_str(&ws.read(&format!("artifacts/{stage}/model.json"))).unwrap();
        m["params"].clone()
    };
    assert_eq!(params("tree")["criterion"], "squared_error");
    assert_eq!(params("forest")["criterion"], "squared_error");
    assert_eq!(params("forest")["max_features"], 4);
    assert_eq!(params("net")["loss"], "mse");
}

/// One HTTP POST with a JSON body; the whole response.
fn post(port: u16, path: &str, body: &str) -> String {
    use std::io::{Read, Write};
    let mut c = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    c.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    write!(
        c,
        "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut out = String::new();
    let _ = c.read_to_string(&mut out);
    out
}

/// Serves `bundle` of `ws`, POSTs each body to `/predict`, stops the
/// server; the whole responses, in order.
fn serve_posts(ws: &Ws, bundle: &str, bodies: &[&str]) -> Vec<String> {
    let mut child = ws
        .cmd(&["serve", "--port", "0", "--bundle", bundle])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let port = common::listening_port(&mut child);
    let out = bodies.iter().map(|b| post(port, "/predict", b)).collect();
    let _ = child.kill();
    let _ = child.wait();
    out
}

/// `mlcycle predict` of `bundle` on `rows.csv` of `ws`: the `prediction`
/// column of its output.
fn predicted(ws: &Ws, bundle: &str) -> Vec<String> {
    let p = ws.run(&["predict", "--bundle", bundle, "--input", "rows.csv"]);
    assert_eq!(p.code, 0, "{}", p.stderr);
    let mut lines = p.stdout.lines();
    let at = lines
        .next()
        .and_then(|h| h.split(',').position(|c| c == "prediction"))
        .unwrap_or_else(|| panic!("no prediction column: {}", p.stdout));
    lines
        .map(|l| l.split(',').nth(at).unwrap().to_string())
        .collect()
}

/// A built-in trainer's loss curve is also its step-wise metrics: an
/// experiment records them, `mlcycle exp steps` lists them and `exp plot`
/// overlays them, as for a `run:` script's `MLCYCLE_STEP_METRICS`.
#[test]
fn training_curves_are_step_metrics_of_experiments() {
    let ws = Ws::new(
        r#"
params:
  lr: 0.01
stages:
  sine: {uses: dataset.csv, with: {path: sine.csv, target: y}}
  net:
    uses: train.mlp
    inputs: {train: sine.data}
    with: {layers: [8], learning_rate: "${params.lr}", epochs: 12, early_stopping: true}
  boost: {uses: train.gradient_boosting, inputs: {train: sine.data}, with: {max_iter: 7}}
"#,
    );
    ws.write("sine.csv", &sine_csv());
    let r = ws.run(&["exp", "run", "-S", "lr=0.01,0.02", "--json"]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let show = ws.run(&["exp", "show", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&show.stdout).unwrap();
    let names: Vec<String> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names.len(), 2, "{v}");
    let steps = ws.run(&["exp", "steps", &names[0]]);
    assert_eq!(steps.code, 0, "{}", steps.stderr);
    let net: Vec<&str> = steps
        .stdout
        .lines()
        .filter(|l| l.starts_with("net "))
        .collect();
    assert_eq!(net.len(), 12, "{}", steps.stdout);
    let boost = steps
        .stdout
        .lines()
        .filter(|l| l.starts_with("boost "))
        .count();
    assert_eq!(boost, 7, "{}", steps.stdout);
    assert!(steps.stdout.contains("validation_loss"), "{}", steps.stdout);
    let plot = ws.run(&[
        "exp",
        "plot",
        &names[0],
        &names[1],
        "--metric",
        "train_loss",
        "--stage",
        "net",
    ]);
    assert_eq!(plot.code, 0, "{}", plot.stderr);
    assert!(ws.exists("plots/train_loss.svg"));
}

/// A network asked for values beyond float32 answers with an error (it
/// gave the same finite number for 1e39 and -1e39), in `predict` and
/// `serve` alike.
#[test]
fn inputs_beyond_the_networks_float32_range_are_refused_when_scoring() {
    let ws = Ws::new(
        r#"
stages:
  sine: {uses: dataset.csv, with: {path: sine.csv, target: y}}
  net: {uses: train.mlp, inputs: {train: sine.data}, with: {layers: [8], epochs: 20}}
  b: {uses: deploy.bundle, inputs: {model: net.model}, with: {name: s}}
"#,
    );
    ws.write("sine.csv", &sine_csv());
    run_ok(&ws);
    ws.write("rows.csv", "x\n1e39\n");
    let p = ws.run(&[
        "predict",
        "--bundle",
        "artifacts/b/bundle",
        "--input",
        "rows.csv",
    ]);
    assert_ne!(p.code, 0, "{}", p.stdout);
    assert!(p.stderr.contains("float32"), "{}", p.stderr);
    let mut answers = serve_posts(
        &ws,
        "artifacts/b/bundle",
        &[
            r#"{"instances": [{"x": 1e39}]}"#,
            r#"{"instances": [{"x": 0.5}]}"#,
        ],
    );
    let (out, ok) = (answers.remove(0), answers.remove(0));
    assert!(out.starts_with("HTTP/1.1 422"), "{out}");
    assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
}

/// One Ctrl-C stops a built-in trainer between steps (it trained on to
/// the last one and was then recorded as fresh); the next run trains it
/// again.
#[test]
fn an_interrupt_stops_a_long_fit_and_leaves_it_stale() {
    use std::io::BufRead;
    for (kind, with) in [
        ("train.mlp", "{layers: [64, 64], epochs: 1000000}"),
        (
            "train.gradient_boosting",
            "{max_iter: 1000000, min_samples_leaf: 1, max_leaf_nodes: 2}",
        ),
        ("train.sgd_regression", "{epochs: 1000000, tol: null}"),
        ("train.kmeans", "{clusters: 3, runs: 1000000}"),
    ] {
        let ws = Ws::new(&format!(
            "stages:\n  sine: {{uses: dataset.csv, with: {{path: sine.csv, target: y}}}}\n  fit: {{uses: {kind}, inputs: {{train: sine.data}}, with: {with}}}\n"
        ));
        ws.write("sine.csv", &sine_csv());
        let mut child = ws
            .cmd(&["run"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut err = std::io::BufReader::new(child.stderr.take().unwrap());
        let mut line = String::new();
        while !line.contains("fitting on") {
            line.clear();
            assert!(
                err.read_line(&mut line).unwrap() > 0,
                "{kind}: the run ended early"
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
        let t = std::time::Instant::now();
        std::process::Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status()
            .unwrap();
        std::thread::spawn(move || std::io::copy(&mut err, &mut std::io::sink()));
        let status = child.wait().unwrap();
        assert!(
            t.elapsed().as_secs() < 5,
            "{kind} took {:?} to stop",
            t.elapsed()
        );
        assert_ne!(status.code(), Some(0), "{kind}");
        let s = ws.run(&["status"]);
        assert!(
            !s.stdout.contains("all 2 stages fresh"),
            "{kind}: {}",
            s.stdout
        );
    }
}
