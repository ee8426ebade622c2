//! The built-in ML stages end to end: the examples, reproducibility, and a
//! clear error for each kind of bad input.

mod common;

use common::{example, Ws};

fn metric(ws: &Ws, file: &str, key: &str) -> f64 {
    let v: serde_json::Value = serde_json::from_str(&ws.read(file)).unwrap();
    v[key]
        .as_f64()
        .unwrap_or_else(|| panic!("{file} has no {key}: {v}"))
}

#[test]
fn house_prices_example_trains_evaluates_bundles_and_predicts() {
    let ws = example("house-prices");
    let r = ws.run(&["run"]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    // clean removed the three bad rows and said so
    let report: serde_json::Value =
        serde_json::from_str(&ws.read("artifacts/clean/report.json")).unwrap();
    assert_eq!(report["rows_out"], 100, "{report}");
    assert_eq!(report["duplicates"], 1, "{report}");
    // OLS and SGD reach the same quality on the held-out rows
    let ols = metric(&ws, "artifacts/eval_ols/metrics.json", "r2");
    let sgd = metric(&ws, "artifacts/eval_sgd/metrics.json", "r2");
    assert!(ols > 0.95, "OLS R² {ols}");
    assert!((ols - sgd).abs() < 0.01, "OLS {ols} vs SGD {sgd}");
    // the SGD loss is logged every 100 epochs and drawn
    assert!(r.stderr.contains("epoch   100/1000"), "{}", r.stderr);
    for f in ["loss.csv", "loss.svg", "loss.png"] {
        assert!(ws.exists(&format!("artifacts/sgd/loss/{f}")), "{f}");
    }
    for f in ["fit", "predicted_vs_actual", "residuals"] {
        assert!(
            ws.exists(&format!("artifacts/eval_ols/plots/{f}.png")),
            "{f}"
        );
    }
    let card = ws.read("artifacts/bundle/bundle/MODEL_CARD.md");
    assert!(card.contains("| `area` | numeric |"), "{card}");

    ws.write("rows.csv", "area\n100\n200\n");
    let p = ws.run(&[
        "predict",
        "--bundle",
        "artifacts/bundle/bundle",
        "--input",
        "rows.csv",
    ]);
    assert_eq!(p.code, 0, "{}", p.stderr);
    let prices: Vec<f64> = p
        .stdout
        .lines()
        .skip(1)
        .map(|l| l.split(',').nth(1).unwrap().parse().unwrap())
        .collect();
    // price ≈ 50 000 + 3 000 × area
    assert!((prices[0] - 350_000.0).abs() < 30_000.0, "{}", p.stdout);
    assert!((prices[1] - 650_000.0).abs() < 30_000.0, "{}", p.stdout);
    // The evaluation reports the coefficients on the raw `area` scale (the
    // scaler undone): they give the bundle's predictions.
    let m: serde_json::Value =
        serde_json::from_str(&ws.read("artifacts/eval_ols/metrics.json")).unwrap();
    let c = &m["coefficients"];
    assert_eq!(c["space"], "raw columns", "{m}");
    let (b, a) = (
        c["intercept"].as_f64().unwrap(),
        c["by_feature"]["area"].as_f64().unwrap(),
    );
    for (area, price) in [(100.0, prices[0]), (200.0, prices[1])] {
        assert!(
            (b + a * area - price).abs() < 1e-6 * price,
            "{b} + {a} × {area} vs {price}"
        );
    }

    let again = ws.run(&["status"]);
    assert_eq!(again.code, 0, "{}", again.stdout);
}

#[test]
fn iris_example_compares_two_classifiers_and_bundles_the_better() {
    let ws = example("iris");
    let r = ws.run(&["run"]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let cmp: serde_json::Value =
        serde_json::from_str(&ws.read("artifacts/compare/comparison.json")).unwrap();
    let (a, b) = (
        cmp["challenger"]["accuracy"].as_f64().unwrap(),
        cmp["reference"]["accuracy"].as_f64().unwrap(),
    );
    assert!(a > 0.85 && b > 0.85, "{cmp}");
    let bundled: serde_json::Value =
        serde_json::from_str(&ws.read("artifacts/bundle/bundle/model.json")).unwrap();
    let want = if cmp["passed"] == true {
        "train.random_forest"
    } else {
        "train.logistic_regression"
    };
    assert_eq!(bundled["kind"], want);
    for f in ["confusion.svg", "confusion.png"] {
        assert!(
            ws.exists(&format!("artifacts/eval_forest/plots/{f}")),
            "{f}"
        );
    }
    ws.write(
        "flowers.csv",
        "sepal_length,sepal_width,petal_length,petal_width\n5.1,3.5,1.4,0.2\n6.7,3.0,5.2,2.3\n",
    );
    let p = ws.run(&[
        "predict",
        "--bundle",
        "artifacts/bundle/bundle",
        "--input",
        "flowers.csv",
        "--json",
    ]);
    assert_eq!(p.code, 0, "{}", p.stderr);
    assert!(
        p.stdout.contains(r#""prediction":"setosa""#),
        "{}",
        p.stdout
    );
    assert!(
        p.stdout.contains(r#""prediction":"virginica""#),
        "{}",
        p.stdout
    );
}

const EVERY_TRAINER: &str = r#"
name: every-trainer
stages:
  reg:
    uses: dataset.synthetic
    with: {kind: regression, rows: 300, features: 4, seed: 3}
  blobs:
    uses: dataset.synthetic
    with: {kind: blobs, rows: 300, features: 3, classes: 3, seed: 3}
  ols: {uses: train.linear_regression, inputs: {train: reg.data}}
  enet: {uses: train.elastic_net, inputs: {train: reg.data}, with: {alpha: 0.1}}
  sgd: {uses: train.sgd_regression, inputs: {train: reg.data}, with: {epochs: 50}}
  logistic: {uses: train.logistic_regression, inputs: {train: blobs.data}}
  tree: {uses: train.decision_tree, inputs: {train: blobs.data}}
  forest: {uses: train.random_forest, inputs: {train: blobs.data}, with: {trees: 20}}
  bayes: {uses: train.naive_bayes, inputs: {train: blobs.data}}
  svm: {uses: train.svm, inputs: {train: blobs.data}}
  kmeans: {uses: train.kmeans, inputs: {train: blobs.data}}
  eval_tree: {uses: evaluate.classification, inputs: {model: tree.model, test: blobs.data}}
  eval_svm: {uses: evaluate.classification, inputs: {model: svm.model, test: blobs.data}}
  eval_bayes: {uses: evaluate.classification, inputs: {model: bayes.model, test: blobs.data}}
"#;

#[test]
fn every_trainer_gives_byte_identical_models_for_the_same_inputs() {
    let a = Ws::new(EVERY_TRAINER);
    let b = Ws::new(EVERY_TRAINER);
    for ws in [&a, &b] {
        let r = ws.run(&["run", "--jobs", "4"]);
        assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    }
    for stage in [
        "ols", "enet", "sgd", "logistic", "tree", "forest", "bayes", "svm", "kmeans",
    ] {
        let file = format!("artifacts/{stage}/model.json");
        assert_eq!(a.read(&file), b.read(&file), "{stage} is not reproducible");
    }
    // well-separated blobs: the classifiers must do well on what they saw
    for e in ["eval_tree", "eval_svm", "eval_bayes"] {
        let acc = metric(&a, &format!("artifacts/{e}/metrics.json"), "accuracy");
        assert!(acc > 0.9, "{e}: accuracy {acc}");
    }
}

#[test]
fn a_classifier_given_a_continuous_target_says_what_to_use() {
    let ws = Ws::new(
        r#"
stages:
  houses: {uses: dataset.synthetic, with: {kind: house_prices}}
  clf: {uses: train.logistic_regression, inputs: {train: houses.data}}
"#,
    );
    let r = ws.run(&["run"]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr
            .contains("is a classifier, but the target `price` is continuous"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("train.linear_regression"), "{}", r.stderr);
}

#[test]
fn non_finite_and_categorical_features_are_named_with_the_fix() {
    let ws = Ws::new(
        r#"
stages:
  data: {uses: dataset.csv, with: {path: d.csv, target: y}}
  ols: {uses: train.linear_regression, inputs: {train: data.data}}
"#,
    );
    // Infinity is refused where it is read, with its line.
    ws.write("d.csv", "x,y\n1,2\ninf,3\n3,4\n");
    let r = ws.run(&["run"]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr
            .contains("line 3: column `x`: `inf` is not a finite number"),
        "{}",
        r.stderr
    );
    // A gap reaches the trainer, which names the column and row.
    ws.write("d.csv", "x,y\n1,2\n,3\n3,4\n");
    let r = ws.run(&["run"]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr
            .contains("column `x` has 1 missing or non-finite value(s) (first at row 2)"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("preprocess.clean"), "{}", r.stderr);

    ws.write("d.csv", "x,c,y\n1,a,2\n2,b,3\n3,a,4\n");
    let r = ws.run(&["run"]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains("column `c` is categorical"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("features.one_hot"), "{}", r.stderr);
    // Training, not scoring: no word of a model "trained on" anything.
    assert!(!r.stderr.contains("trained on"), "{}", r.stderr);
}

/// Forgetting `target:` on a table with a text column was reported as
/// "column `species` is categorical, but the model was trained on a
/// numeric column": the missing target is the fault, and is named first.
#[test]
fn regression_a_forgotten_target_is_reported_as_such() {
    let ws = Ws::new(
        r#"
stages:
  data: {uses: dataset.csv, with: {path: d.csv}}
  fit: {uses: train.logistic_regression, inputs: {train: data.data}}
"#,
    );
    ws.write("d.csv", "x,species\n1,a\n2,b\n3,a\n4,b\n");
    let r = ws.run(&["run"]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr
            .contains("needs a target column, and the table has none"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("`target:`"), "{}", r.stderr);
    assert!(!r.stderr.contains("trained on"), "{}", r.stderr);
}

#[test]
fn cleaning_everything_away_is_an_error_with_the_counts() {
    let ws = Ws::new(
        r#"
stages:
  data: {uses: dataset.csv, with: {path: d.csv, target: y}}
  clean: {uses: preprocess.clean, inputs: {data: data.data}}
"#,
    );
    ws.write("d.csv", "x,y\n1,\n2,\n");
    let r = ws.run(&["run"]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains("no rows are left after cleaning (of 2)"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("missing_rows_dropped"), "{}", r.stderr);
}

#[test]
fn a_model_scored_on_a_table_without_its_columns_names_them() {
    let ws = Ws::new(
        r#"
stages:
  houses: {uses: dataset.synthetic, with: {kind: house_prices}}
  other: {uses: dataset.synthetic, with: {kind: regression, features: 2}}
  ols: {uses: train.linear_regression, inputs: {train: houses.data}}
  eval: {uses: evaluate.regression, inputs: {model: ols.model, test: other.data}}
"#,
    );
    let r = ws.run(&["run"]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr
            .contains("the table lacks column(s) the model needs: area"),
        "{}",
        r.stderr
    );
    ws.run(&["run", "ols"]);
    ws.write("rows.csv", "area,rooms\n50,2\n");
    ws.write(
        "mlcycle.yaml",
        r#"
stages:
  houses: {uses: dataset.synthetic, with: {kind: house_prices}}
  ols: {uses: train.linear_regression, inputs: {train: houses.data}}
  bundle: {uses: deploy.bundle, inputs: {model: ols.model}}
"#,
    );
    assert_eq!(ws.run(&["run"]).code, 0);
    let p = ws.run(&[
        "predict",
        "--bundle",
        "artifacts/bundle/bundle",
        "--input",
        "rows.csv",
    ]);
    assert_eq!(p.code, 2);
    assert!(
        p.stderr.contains("the model was not trained"),
        "{}",
        p.stderr
    );
    assert!(p.stderr.contains("on: rooms"), "{}", p.stderr);
}

#[test]
fn a_tampered_bundle_is_refused() {
    let ws = Ws::new(
        r#"
stages:
  houses: {uses: dataset.synthetic, with: {kind: house_prices}}
  ols: {uses: train.linear_regression, inputs: {train: houses.data}}
  bundle: {uses: deploy.bundle, inputs: {model: ols.model}}
"#,
    );
    assert_eq!(ws.run(&["run"]).code, 0);
    let model = ws.path().join("artifacts/bundle/bundle/model.json");
    let mut perms = std::fs::metadata(&model).unwrap().permissions();
    #[allow(clippy::permissions_set_readonly_false)]
    perms.set_readonly(false);
    std::fs::set_permissions(&model, perms).unwrap();
    let text = std::fs::read_to_string(&model)
        .unwrap()
        .replace("\"intercept\"", "\"intercept\" ");
    std::fs::write(&model, text).unwrap();
    ws.write("rows.csv", "area\n50\n");
    let p = ws.run(&[
        "predict",
        "--bundle",
        "artifacts/bundle/bundle",
        "--input",
        "rows.csv",
    ]);
    assert_eq!(p.code, 2);
    assert!(
        p.stderr.contains("does not match its manifest"),
        "{}",
        p.stderr
    );
}

#[test]
fn wiring_a_model_into_a_table_port_is_a_validation_error() {
    let ws = Ws::new(
        "stages:\n  houses:\n    uses: dataset.synthetic\n    with: {kind: house_prices}\n  ols:\n    uses: train.linear_regression\n    inputs: {train: houses.data}\n  split:\n    uses: preprocess.split\n    inputs: {data: ols.model}\n",
    );
    let r = ws.run(&["validate"]);
    assert_eq!(r.code, 2);
    insta::assert_snapshot!(r.stderr);
}

#[test]
fn a_scaler_is_fitted_on_training_rows_only() {
    // The test split is scored through the model's own copy of the
    // scaler fitted on train; scaling train and test separately would
    // shift the test rows. The test rows here are far from the training
    // rows, so a leak would show as a large error.
    let ws = Ws::new(
        r#"
stages:
  train: {uses: dataset.csv, with: {path: train.csv, target: y}}
  test: {uses: dataset.csv, with: {path: test.csv, target: y}}
  scale: {uses: preprocess.scale, inputs: {data: train.data}}
  ols: {uses: train.linear_regression, inputs: {train: scale.data}}
  eval: {uses: evaluate.regression, inputs: {model: ols.model, test: test.data}}
"#,
    );
    ws.write("train.csv", "x,y\n1,3\n2,5\n3,7\n4,9\n");
    ws.write("test.csv", "x,y\n100,201\n200,401\n");
    let r = ws.run(&["run"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let mse = metric(&ws, "artifacts/eval/metrics.json", "mse");
    assert!(mse < 1e-6, "mse {mse}");
    let steps = ws.read("artifacts/scale/transform.json");
    assert!(steps.contains("\"op\": \"scale\""), "{steps}");
}

/// A spread past float64 was scaled by 1 (the fallback of a constant
/// column): `minmax` wrote infinities, `standard` left the values near
/// ±1e307. Each method now refuses the column.
#[test]
fn a_scaler_refuses_a_spread_that_overflows() {
    for method in ["minmax", "standard"] {
        let ws = Ws::new(&format!(
            "stages:\n  data: {{uses: dataset.csv, with: {{path: d.csv, target: y}}}}\n  scale: {{uses: preprocess.scale, inputs: {{data: data.data}}, with: {{method: {method}}}}}\n"
        ));
        ws.write("d.csv", "a,b,y\n-1.5e308,2,1\n1.5e308,4,2\n0,5,3\n,8,5\n");
        let r = ws.run(&["run"]);
        assert_ne!(r.code, 0, "{method}");
        assert!(
            r.stderr
                .contains("the spread of column `a` overflows float64"),
            "{method}: {}",
            r.stderr
        );
    }
}

#[test]
fn python_stage_example_mixes_a_python_model_with_built_in_stages() {
    if std::process::Command::new("python3")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("skipped: python3 is not installed");
        return;
    }
    let ws = example("python-stage");
    let r = ws.run(&["run"]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    // the built-in evaluator scored the model written by Python
    let r2 = metric(&ws, "artifacts/evaluate/metrics.json", "r2");
    assert!((0.35..0.6).contains(&r2), "R² {r2}");
    assert!(ws.read("out/report.md").contains("R²"));
    // a param only the Python stage reads reruns it and what follows, only
    let r = ws.run(&["run", "-p", "ridge.alpha=10"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    for stage in ["fit", "evaluate", "report"] {
        assert_eq!(
            r.outcome(stage).as_deref(),
            Some("ran"),
            "{stage}: {}",
            r.stdout
        );
    }
    assert!(r.stdout.contains("3 ran, 3 fresh"), "{}", r.stdout);
}

/// A challenger exactly level with the reference does not replace it:
/// before, a tie at `min_improvement: 0` passed and `best` was the
/// challenger. The verdict says it was a tie.
#[test]
fn a_tie_keeps_the_reference_model() {
    let ws = Ws::new(
        r#"
stages:
  reg:
    uses: dataset.synthetic
    with: {kind: regression, rows: 200, features: 3, seed: 5}
  ols: {uses: train.linear_regression, inputs: {train: reg.data}}
  again: {uses: train.linear_regression, inputs: {train: reg.data}}
  cmp: {uses: evaluate.compare, inputs: {model: again.model, reference: ols.model, test: reg.data}}
"#,
    );
    let r = ws.run(&["run"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v: serde_json::Value =
        serde_json::from_str(&ws.read("artifacts/cmp/comparison.json")).unwrap();
    assert_eq!(v["improvement"], 0.0, "{v}");
    assert_eq!(v["passed"], false, "{v}");
    assert_eq!(
        ws.read("artifacts/cmp/best.json"),
        ws.read("artifacts/ols/model.json")
    );
    assert!(
        r.stderr.contains("a tie, which keeps the reference"),
        "{}",
        r.stderr
    );
}

/// `train.svm` at its defaults is within reach of scikit-learn's `SVC()`:
/// `gamma: scale` (it was a fixed width of 1 whatever the features'
/// scale) and one-vs-one voting for three classes (it was the argmax of
/// one-vs-rest scores). On this split of iris the old defaults scored
/// 0.933; scikit-learn's `SVC()` scores about 0.98 on iris splits.
#[test]
fn svm_defaults_are_scale_aware_and_vote_one_vs_one() {
    let ws = Ws::new(
        r#"
stages:
  data: {uses: dataset.builtin, with: {name: iris}}
  split: {uses: preprocess.split, inputs: {data: data.data}, with: {test: 0.3, seed: 1, stratify: true}}
  svm: {uses: train.svm, inputs: {train: split.train}}
  ev: {uses: evaluate.classification, inputs: {model: svm.model, test: split.test}}
"#,
    );
    let r = ws.run(&["run"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let acc = metric(&ws, "artifacts/ev/metrics.json", "accuracy");
    assert!(acc >= 0.95, "accuracy {acc}");
    let model = ws.read("artifacts/svm/model.json");
    assert!(model.contains("\"pairs\""), "{model}");
}

/// A kernel matrix that does not fit in memory is refused before it is
/// allocated, with the size and what to do (it aborted the whole run at
/// 80 000 rows, asking for 51 GB).
#[test]
fn svm_refuses_a_kernel_matrix_over_its_memory_limit() {
    let ws = Ws::new(
        r#"
stages:
  data: {uses: dataset.builtin, with: {name: iris}}
  svm: {uses: train.svm, inputs: {train: data.data}, with: {max_kernel_mb: 0.05}}
"#,
    );
    let r = ws.run(&["run"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("100 × 100 kernel matrix"), "{}", r.stderr);
    assert!(r.stderr.contains("max_kernel_mb"), "{}", r.stderr);
    let bad = Ws::new(
        "stages:\n  data: {uses: dataset.builtin, with: {name: iris}}\n  svm: {uses: train.svm, inputs: {train: data.data}, with: {gamma: big}}\n",
    );
    let r = bad.run(&["validate"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("`gamma` must be"), "{}", r.stderr);
    // A fractional degree made NaN kernels and a model written with nulls.
    let bad = Ws::new(
        "stages:\n  data: {uses: dataset.builtin, with: {name: iris}}\n  svm: {uses: train.svm, inputs: {train: data.data}, with: {kernel: polynomial, degree: 2.5}}\n",
    );
    let r = bad.run(&["validate"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains("`degree` must be a whole number"),
        "{}",
        r.stderr
    );
}

/// `kernel: linear` needs no kernel matrix: it trains under a memory limit
/// that refuses the Gaussian kernel, with the Gaussian's accuracy on iris,
/// voting one-vs-one (it was SMO on an n × n matrix, 32–52× slower than
/// libsvm at 1 600–4 000 rows, and refused like any kernel).
#[test]
fn a_linear_svm_builds_no_kernel_matrix() {
    let ws = Ws::new(
        r#"
stages:
  data: {uses: dataset.builtin, with: {name: iris}}
  split: {uses: preprocess.split, inputs: {data: data.data}, with: {test: 0.3, seed: 1, stratify: true}}
  svm: {uses: train.svm, inputs: {train: split.train}, with: {kernel: linear, max_kernel_mb: 0.001}}
  ev: {uses: evaluate.classification, inputs: {model: svm.model, test: split.test}}
"#,
    );
    let r = ws.run(&["run"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let acc = metric(&ws, "artifacts/ev/metrics.json", "accuracy");
    assert!(acc >= 0.95, "accuracy {acc}");
    let model: serde_json::Value =
        serde_json::from_str(&ws.read("artifacts/svm/model.json")).unwrap();
    let fitted = &model["fitted"];
    assert_eq!(fitted["algorithm"], "linear_svm", "{model}");
    assert_eq!(fitted["pairs"].as_array().map(Vec::len), Some(3), "{model}");
    assert_eq!(
        fitted["coef"][0].as_array().map(Vec::len),
        Some(4),
        "{model}"
    );

    // At a large `c` coordinate descent stopped after 1 000 passes without
    // converging (accuracy 0.652 against SVC's 0.830 in a break test); it
    // now finishes by SMO over the linear kernel, as libsvm does.
    let big = Ws::new(
        r#"
stages:
  data: {uses: dataset.builtin, with: {name: iris}}
  split: {uses: preprocess.split, inputs: {data: data.data}, with: {test: 0.3, seed: 1, stratify: true}}
  scale: {uses: preprocess.scale, inputs: {data: split.train}}
  svm: {uses: train.svm, inputs: {train: scale.data}, with: {kernel: linear, c: 1000}}
  ev: {uses: evaluate.classification, inputs: {model: svm.model, test: split.test}}
"#,
    );
    let r = big.run(&["run"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(!r.stderr.contains("before converging"), "{}", r.stderr);
    let acc = metric(&big, "artifacts/ev/metrics.json", "accuracy");
    assert!(acc >= 0.9, "accuracy {acc}");
}

/// One-hot levels beside an intercept, scored with a category written
/// differently from training (`1` where training read `1.0`): the model
/// predicted 57 546 924 568 164 010 with exit 0 (a QR fit with ±10¹⁶
/// coefficients, the unseen spelling encoded as all zeros). Now `1` and
/// `1.0` are one category, the collinear fit is the minimum-norm one
/// (scikit-learn's), an unseen category is warned about with its rows,
/// and `drop: first` gives one column fewer.
#[test]
fn one_hot_with_an_intercept_never_predicts_nonsense() {
    let ws = Ws::new(
        r#"
stages:
  data: {uses: dataset.csv, with: {path: ins.csv, target: charges, types: {sex: categorical}}}
  onehot: {uses: features.one_hot, inputs: {data: data.data}}
  ols: {uses: train.linear_regression, inputs: {train: onehot.data}}
  bundle: {uses: deploy.bundle, inputs: {model: ols.model}}
  first: {uses: features.one_hot, inputs: {data: data.data}, with: {drop: first}}
  ols_first: {uses: train.linear_regression, inputs: {train: first.data}}
  test: {uses: dataset.csv, with: {path: t.csv, target: charges, types: {sex: categorical}}}
  ev: {uses: evaluate.regression, inputs: {model: ols.model, test: test.data}}
  encode_test: {uses: features.apply, inputs: {transform: onehot.transform, data: test.data}}
"#,
    );
    ws.write(
        "t.csv",
        "age,sex,charges
30,1,8500
40,2,11000
41,2,11200
",
    );
    let mut csv = String::from("age,sex,charges\n");
    for i in 0..40 {
        let age = 20 + i;
        let sex = i % 2;
        csv.push_str(&format!(
            "{age},{sex}.0,{}\n",
            250 * age + 1000 * sex + (i * 37) % 300
        ));
    }
    ws.write("ins.csv", &csv);
    let r = ws.run(&["run"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.contains("minimum-norm"), "{}", r.stderr);
    // evaluate.* say so too, and count them in the metrics.
    assert!(
        r.stderr.contains("2 test row(s) have `sex` = `2`"),
        "{}",
        r.stderr
    );
    let m: serde_json::Value = serde_json::from_str(&ws.read("artifacts/ev/metrics.json")).unwrap();
    assert_eq!(m["unknown_categories"]["sex=2"], 2, "{m}");
    assert!(
        r.stderr
            .contains("encode_test | warning: 2 row(s) have `sex` = `2`"),
        "{}",
        r.stderr
    );
    ws.write("rows.csv", "age,sex\n30,1\n30,1.0\n30,0\n30,2\n");
    let r = ws.run(&[
        "predict",
        "--bundle",
        "artifacts/bundle/bundle",
        "--input",
        "rows.csv",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let preds: Vec<f64> = r
        .stdout
        .lines()
        .skip(1)
        .map(|l| l.rsplit(',').next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(preds[0], preds[1], "{}", r.stdout);
    assert!(preds.iter().all(|p| p.abs() < 1e5), "{}", r.stdout);
    assert!(r.stderr.contains("unseen"), "{}", r.stderr);
    assert!(r.stderr.contains("value=2"), "{}", r.stderr);
    let model: serde_json::Value =
        serde_json::from_str(&ws.read("artifacts/ols_first/model.json")).unwrap();
    assert_eq!(model["features"], serde_json::json!(["age", "sex=1"]));
}

/// Imputing from every row and then splitting leaked the test rows'
/// values into the model (the medians travel in it). The split now
/// refuses, naming the fix; imputing the training split alone is fine and
/// the model fills the test rows' gaps with the training median.
#[test]
fn imputing_before_the_split_is_refused_as_a_leak() {
    let leaky = r#"
stages:
  data: {uses: dataset.csv, with: {path: d.csv, target: y}}
  clean: {uses: preprocess.clean, inputs: {data: data.data}, with: {missing: median}}
  split: {uses: preprocess.split, inputs: {data: clean.data}, with: {test: 0.25, seed: 1}}
"#;
    let mut csv = String::from("x,y\n");
    for i in 0..40 {
        let x = if i % 7 == 3 {
            String::new()
        } else {
            i.to_string()
        };
        csv.push_str(&format!("{x},{}\n", 2 * i + 1));
    }
    let ws = Ws::new(leaky);
    ws.write("d.csv", &csv);
    let r = ws.run(&["run"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr.contains("imputed before this split"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("split.train"), "{}", r.stderr);
    let fine = Ws::new(
        r#"
stages:
  data: {uses: dataset.csv, with: {path: d.csv, target: y}}
  split: {uses: preprocess.split, inputs: {data: data.data}, with: {test: 0.25, seed: 1}}
  clean: {uses: preprocess.clean, inputs: {data: split.train}, with: {missing: median}}
  ols: {uses: train.linear_regression, inputs: {train: clean.data}}
  ev: {uses: evaluate.regression, inputs: {model: ols.model, test: split.test}}
"#,
    );
    fine.write("d.csv", &csv);
    let r = fine.run(&["run"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    // Every feature gets a fill value, also one without gaps in the
    // training rows: a later row's gap there is filled too (as
    // scikit-learn's SimpleImputer; it was an error at scoring time).
    let later = Ws::new(
        r#"
stages:
  train: {uses: dataset.csv, with: {path: train.csv, target: y}}
  test: {uses: dataset.csv, with: {path: test.csv, target: y}}
  clean: {uses: preprocess.clean, inputs: {data: train.data}, with: {missing: median}}
  ols: {uses: train.linear_regression, inputs: {train: clean.data}}
  ev: {uses: evaluate.regression, inputs: {model: ols.model, test: test.data}}
"#,
    );
    later.write(
        "train.csv",
        "a,b,y
1,1,3
,2,5
3,3,7
4,5,9
5,4,11
",
    );
    later.write(
        "test.csv",
        "a,b,y
2,,5
,3,7
",
    );
    let r = later.run(&["run"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
}

/// `evaluate.*` writes a predictions table (row, truth, prediction and
/// every class probability) and `mlcycle predict --proba` prints every
/// class's probability; a model without probabilities says so.
#[test]
fn predictions_tables_and_every_class_probability() {
    let ws = Ws::new(
        r#"
stages:
  data: {uses: dataset.builtin, with: {name: iris}}
  split: {uses: preprocess.split, inputs: {data: data.data}, with: {test: 0.3, seed: 1, stratify: true}}
  lr: {uses: train.logistic_regression, inputs: {train: split.train}}
  ev: {uses: evaluate.classification, inputs: {model: lr.model, test: split.test}}
  bundle: {uses: deploy.bundle, inputs: {model: lr.model}}
  svm: {uses: train.svm, inputs: {train: split.train}}
  svm_bundle: {uses: deploy.bundle, inputs: {model: svm.model}}
"#,
    );
    let r = ws.run(&["run"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let s = ws.run(&["show", "ev.predictions", "-n", "0"]);
    assert!(s.stdout.starts_with("45 rows × 6 columns"), "{}", s.stdout);
    for c in [
        "row",
        "truth",
        "prediction",
        "proba_setosa",
        "proba_virginica",
    ] {
        assert!(s.stdout.contains(c), "{c}: {}", s.stdout);
    }
    ws.write(
        "rows.csv",
        "sepal_length,sepal_width,petal_length,petal_width\n5.1,3.5,1.4,0.2\n6.7,3.0,5.2,2.3\n",
    );
    let r = ws.run(&[
        "predict",
        "--bundle",
        "artifacts/bundle/bundle",
        "--input",
        "rows.csv",
        "--proba",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let mut lines = r.stdout.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    assert_eq!(
        &header[header.len() - 3..],
        ["proba_setosa", "proba_versicolor", "proba_virginica"],
        "{}",
        r.stdout
    );
    for l in lines {
        let p: f64 = l
            .split(',')
            .rev()
            .take(3)
            .map(|v| v.parse::<f64>().unwrap())
            .sum();
        assert!((p - 1.0).abs() < 1e-9, "{l}");
    }
    let r = ws.run(&[
        "predict",
        "--bundle",
        "artifacts/svm_bundle/bundle",
        "--input",
        "rows.csv",
        "--proba",
    ]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("no class probabilities"), "{}", r.stderr);
}

/// Permutation importance finds the column the target depends on, gives a
/// column of pure noise about nothing, is the same for the same seed, and
/// draws partial dependence for the top column.
#[test]
fn permutation_importance_finds_the_column_the_target_depends_on() {
    let mut csv = String::from("signal,noise,y\n");
    let mut state = 7u64;
    let mut next = || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 11) as f64 / (1u64 << 53) as f64
    };
    for _ in 0..300 {
        let (s, n) = (next() * 10.0, next() * 10.0);
        csv.push_str(&format!("{s},{n},{}\n", 3.0 * s + 1.0));
    }
    let ws = common::Ws::new(
        r#"name: imp
stages:
  data:
    uses: dataset.csv
    with: {path: data.csv, target: y}
  split:
    uses: preprocess.split
    inputs: {data: data.data}
    with: {test: 0.3, seed: 1}
  ols:
    uses: train.linear_regression
    inputs: {train: split.train}
  imp:
    uses: evaluate.importance
    inputs: {model: ols.model, test: split.test}
    with: {n_repeats: 4, top: 1}
"#,
    );
    ws.write("data.csv", &csv);
    let r = ws.run(&["run"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let first = ws.read("artifacts/imp/importance.json");
    let v: serde_json::Value = serde_json::from_str(&first).unwrap();
    assert_eq!(v["scoring"], "r2");
    let signal = v["importance"]["signal"]["mean"].as_f64().unwrap();
    let noise = v["importance"]["noise"]["mean"].as_f64().unwrap();
    // Shuffling the signal of an exact fit costs about 2 × its R² (1).
    assert!(signal > 1.5, "{first}");
    assert!(noise.abs() < 1e-6, "{first}");
    assert!(ws.exists("artifacts/imp/plots/importance.svg"));
    assert!(ws.exists("artifacts/imp/plots/partial_dependence_signal.png"));
    assert!(
        !ws.exists("artifacts/imp/plots/partial_dependence_noise.svg"),
        "top: 1"
    );
    let r = ws.run(&["run", "--force", "imp"]);
    assert_eq!(r.code, 0);
    assert_eq!(ws.read("artifacts/imp/importance.json"), first, "seeded");

    // A score the model has not is named with the ones it has.
    ws.write(
        "mlcycle.yaml",
        &ws.read("mlcycle.yaml")
            .replace("{n_repeats: 4, top: 1}", "{scoring: accuracy}"),
    );
    let r = ws.run(&["run"]);
    assert_ne!(r.code, 0);
    assert!(
        r.stderr
            .contains("`scoring: accuracy` is not a metric of this model"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("rmse"), "{}", r.stderr);
    ws.write(
        "mlcycle.yaml",
        &ws.read("mlcycle.yaml")
            .replace("{scoring: accuracy}", "{n_repeats: 0}"),
    );
    let r = ws.run(&["validate"]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("must be between 1 and 1000"),
        "{}",
        r.stderr
    );
}

/// Four model families on the wine data shipped in the binary: each scores
/// above the majority class on held-out rows, the selection ranks them, and
/// the bundle holds the winner.
#[test]
fn wine_quality_example_ranks_four_model_families_and_bundles_the_best() {
    let ws = example("wine-quality");
    let r = ws.run(&["run"]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let mut scores = Vec::new();
    for (stage, kind) in [
        ("logistic", "train.logistic_regression"),
        ("forest", "train.random_forest"),
        ("boosting", "train.gradient_boosting"),
        ("mlp", "train.mlp"),
    ] {
        let acc = metric(
            &ws,
            &format!("artifacts/eval_{stage}/metrics.json"),
            "accuracy",
        );
        // The majority grade (5) is 43 % of the wines.
        assert!(acc > 0.55, "{stage}: accuracy {acc}");
        scores.push((acc, kind));
    }
    let best = scores
        .iter()
        .copied()
        .fold((f64::MIN, ""), |a, b| if b.0 > a.0 { b } else { a });
    let bundled: serde_json::Value =
        serde_json::from_str(&ws.read("artifacts/bundle/bundle/model.json")).unwrap();
    assert_eq!(bundled["kind"], best.1, "{scores:?}");
    // Tree models explain themselves; the network drew its loss curves.
    let m: serde_json::Value =
        serde_json::from_str(&ws.read("artifacts/eval_boosting/metrics.json")).unwrap();
    assert_eq!(
        m["feature_importances"].as_object().unwrap().len(),
        11,
        "{m}"
    );
    assert!(ws
        .read("artifacts/mlp/loss/loss.csv")
        .starts_with("epoch,train,validation\n"));
}

/// A logistic regression trained on classes `a` (x < 20) and `b`,
/// evaluated on `test.csv` (to write).
fn classes_a_and_b() -> Ws {
    let ws = Ws::new(
        r#"
stages:
  train: {uses: dataset.csv, with: {path: train.csv, target: y}}
  test: {uses: dataset.csv, with: {path: test.csv, target: y}}
  m: {uses: train.logistic_regression, inputs: {train: train.data}}
  eval: {uses: evaluate.classification, inputs: {model: m.model, test: test.data}}
"#,
    );
    let mut train = String::from("x,y\n");
    for i in 0..40 {
        train.push_str(&format!("{i},{}\n", if i < 20 { "a" } else { "b" }));
    }
    ws.write("train.csv", &train);
    ws
}

/// A missing label in the test rows is refused, as `evaluate.regression`
/// refuses it: it was counted as a class named `` the model never saw.
#[test]
fn a_missing_test_label_is_refused() {
    let ws = classes_a_and_b();
    ws.write("test.csv", "x,y\n1,a\n30,\n");
    let r = ws.run(&["run"]);
    assert_ne!(r.code, 0);
    assert!(
        r.stderr
            .contains("the target `y` has a missing value at row 2"),
        "{}",
        r.stderr
    );
}

/// A test class the model never saw is named, counted and logged: its
/// rows are errors, and `log_loss` and ROC AUC, undefined, are left out
/// with the reason (they used to vanish without a word).
#[test]
fn a_test_class_the_model_never_saw_is_reported() {
    let ws = classes_a_and_b();
    ws.write("test.csv", "x,y\n1,a\n30,b\n5,c\n35,c\n");
    let r = ws.run(&["run"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("2 test row(s) have class `c`, which the model never saw"),
        "{}",
        r.stderr
    );
    let m: serde_json::Value =
        serde_json::from_str(&ws.read("artifacts/eval/metrics.json")).unwrap();
    assert_eq!(m["unseen_classes"], serde_json::json!({"c": 2}), "{m}");
    assert!(
        m.get("log_loss").is_none() && m.get("roc_auc").is_none(),
        "{m}"
    );
    assert_eq!(m["accuracy"], serde_json::json!(0.5), "{m}");
    // A stage that needs the missing metric says why it is missing.
    ws.write(
        "mlcycle.yaml",
        &(ws.read("mlcycle.yaml")
            + "  imp: {uses: evaluate.importance, inputs: {model: m.model, test: test.data}, with: {scoring: log_loss}}\n"),
    );
    let r = ws.run(&["run"]);
    assert_ne!(r.code, 0);
    assert!(
        r.stderr.contains(
            "`scoring: log_loss` is not a metric of this model: the test rows hold class(es) the model never saw (`c`: 2 row(s))"
        ),
        "{}",
        r.stderr
    );
}
