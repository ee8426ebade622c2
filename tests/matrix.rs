//! `matrix:` and `foreach:`: one declaration, one stage per combination,
//! each cached and rerun on its own; `stage@*.port` gathers them all.

mod common;

use common::Ws;

const SWEEP: &str = r#"name: sweep
params:
  scale: 2
stages:
  prep:
    run: "echo prep >> log.txt && mkdir -p out && echo 1 > out/data.txt"
    outs: [{data: out/data.txt}]
  train:
    matrix:
      lr: [0.1, 0.01]
      model: [ols, sgd]
    deps: [prep.data]
    outs: [{model: "out/${item.model}-${item.lr}.txt"}]
    run: "echo train-${item.model}-${item.lr} >> log.txt && echo ${item.model} ${item.lr} ${params.scale} > ${outputs.model}"
  report:
    foreach: [ols, sgd]
    deps: ["train@0.1-${item}.model"]
    outs: [{r: "out/report-${item}.txt"}]
    run: "cat ${inputs.model} > ${outputs.r}"
  gather:
    deps: [{models: "train@*.model"}]
    outs: [out/all.txt]
    run: "cat ${inputs.models} > out/all.txt"
"#;

fn log_lines(ws: &Ws) -> Vec<String> {
    ws.read("log.txt").lines().map(str::to_string).collect()
}

#[test]
fn a_matrix_expands_into_stages_that_run_and_cache_one_by_one() {
    let ws = Ws::new(SWEEP);
    let r = ws.run(&["run"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    for id in [
        "train@0.1-ols",
        "train@0.1-sgd",
        "train@0.01-ols",
        "train@0.01-sgd",
        "report@ols",
        "report@sgd",
        "gather",
    ] {
        assert_eq!(r.outcome(id).as_deref(), Some("ran"), "{id}: {}", r.stdout);
    }
    // Shared upstream work ran once; each combination once.
    let log = log_lines(&ws);
    assert_eq!(log.iter().filter(|l| *l == "prep").count(), 1, "{log:?}");
    assert_eq!(log.len(), 5, "{log:?}");
    assert_eq!(ws.read("out/sgd-0.01.txt").trim(), "sgd 0.01 2");
    assert_eq!(ws.read("out/report-sgd.txt").trim(), "sgd 0.1 2");
    // The gather stage got every instance's output, in order.
    assert_eq!(
        ws.read("out/all.txt"),
        "ols 0.1 2\nsgd 0.1 2\nols 0.01 2\nsgd 0.01 2\n"
    );

    // Nothing changed: nothing runs.
    let r = ws.run(&["run"]);
    assert_eq!(r.code, 0);
    assert_eq!(log_lines(&ws).len(), 5);

    // One more value on an axis: only the new instances (and the gather)
    // run; the others stay fresh.
    let more = SWEEP.replace("lr: [0.1, 0.01]", "lr: [0.1, 0.01, 1]");
    ws.write("mlcycle.yaml", &more);
    let r = ws.run(&["run"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let mut new = log_lines(&ws).split_off(5);
    new.sort();
    assert_eq!(new, ["train-ols-1", "train-sgd-1"], "{}", r.stdout);
    assert_eq!(r.outcome("gather").as_deref(), Some("ran"));
    assert!(r.stdout.contains("3 ran, 7 fresh"), "{}", r.stdout);
}

#[test]
fn a_matrix_stage_is_addressed_by_its_name_or_an_instance() {
    let ws = Ws::new(SWEEP);
    // The declared name selects every instance (and what they need).
    let r = ws.run(&["run", "train"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert_eq!(log_lines(&ws).len(), 5);
    assert!(r.outcome("gather").is_none(), "{}", r.stdout);
    // One instance by its name.
    let r = ws.run(&["status", "report@sgd"]);
    assert!(r.stdout.contains("report@sgd"), "{}", r.stdout);
    assert!(!r.stdout.contains("report@ols"), "{}", r.stdout);
    let r = ws.run(&["dag", "--format", "text"]);
    assert!(r.stdout.contains("train@0.01-sgd"), "{}", r.stdout);
    // `--force` by the declared name forces every instance.
    let r = ws.run(&["run", "--force", "train"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert_eq!(log_lines(&ws).len(), 9, "{}", r.stdout);
}

/// A value written into a `run:` command is one shell word, never code.
#[test]
fn regression_item_values_cannot_inject_shell_code() {
    let ws = Ws::new(
        r#"name: q
stages:
  a:
    foreach: ["it's", "x y", "a;touch pwned"]
    outs: ["out-${item}.txt"]
    run: printf '[%s]' ${item} > out-${item}.txt
"#,
    );
    let r = ws.run(&["run"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(!ws.exists("pwned"));
    assert_eq!(ws.read("out-x y.txt"), "[x y]");
    assert_eq!(ws.read("out-it's.txt"), "[it's]");
}

/// Every mistake is reported at the matrix, with its line and column.
#[test]
fn matrix_mistakes_are_reported_where_they_are_written() {
    let ws = Ws::new(
        r#"name: bad
stages:
  empty:
    matrix: {lr: []}
    run: "echo ${item.lr}"
  axis:
    matrix: {lr: [1, 2]}
    run: "echo ${item.rate}"
  clash:
    matrix: {a: [x-y, x], b: [z, y-z]}
    run: "echo ${item.a}"
  both:
    matrix: {a: [1]}
    foreach: [1]
    run: "echo"
  plain:
    run: "echo ${item.a}"
  fine:
    foreach: [1, 2]
    outs: ["o-${item}.txt"]
    run: "echo > o-${item}.txt"
  base_ref:
    deps: [fine.o-1]
    run: "echo"
  star:
    deps: ["plain@*.out"]
    run: "echo"
"#,
    );
    let r = ws.run(&["validate"]);
    assert_eq!(r.code, 2);
    let text = r.stderr.replace(&ws.path().display().to_string(), "[WS]");
    insta::assert_snapshot!(text);
}

/// A `foreach:` over a mapping gives `${key}` and the item's fields, typed
/// where a value is one reference alone (a number stays a number in
/// `with:`).
#[test]
fn foreach_over_a_mapping_fills_keys_and_typed_fields() {
    let ws = Ws::new(
        r#"name: each
stages:
  data:
    foreach:
      small: {rows: 20}
      large: {rows: 50}
    uses: dataset.synthetic
    with: {kind: house_prices, rows: "${item.rows}"}
  count:
    foreach: [small, large]
    deps: ["data@${item}.data"]
    outs: ["out/${item}.txt"]
    run: "mkdir -p out && echo ${key} > /dev/null"
"#,
    );
    let r = ws.run(&["validate"]);
    // `${key}` is given only over a mapping.
    assert_eq!(r.code, 2);
    assert!(
        r.stderr
            .contains("`${key}` is only given by `foreach:` over a mapping"),
        "{}",
        r.stderr
    );
    let fixed = std::fs::read_to_string(ws.path().join("mlcycle.yaml"))
        .unwrap()
        .replace(
            "echo ${key} > /dev/null",
            "wc -c < ${inputs.data} > out/${item}.txt",
        );
    ws.write("mlcycle.yaml", &fixed);
    let r = ws.run(&["run"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert_eq!(r.outcome("data@small").as_deref(), Some("ran"));
    let small: u64 = ws.read("out/small.txt").trim().parse().unwrap();
    let large: u64 = ws.read("out/large.txt").trim().parse().unwrap();
    assert!(small < large, "{small} {large}");
}

/// A mistake in a declaration is reported once, not once per instance (4 000
/// instances printed 77 MB in about a minute), and a gather of a port the
/// instances lack is reported once too.
#[test]
fn regression_a_mistake_is_reported_once_per_declaration() {
    let values: Vec<String> = (0..50).map(|i| i.to_string()).collect();
    let ws = Ws::new(&format!(
        r#"name: flood
stages:
  a:
    foreach: [{}]
    outs: ["o-${{item}}.txt"]
    run: echo ${{inputs.nope}} > o-${{item}}.txt
  g:
    deps: ["a@*.nope"]
    run: "true"
"#,
        values.join(", ")
    ));
    let r = ws.run(&["validate"]);
    assert_eq!(r.code, 2);
    let text = r.stderr.replace("\n  │ ", " ");
    assert!(text.contains("has 2 problems"), "{text}");
    assert!(
        text.contains("(and the same in 49 more instances of `a`)"),
        "{text}"
    );
}

/// The order of a gather is part of what its command sees: reordering the
/// instances reruns it (it stayed fresh with the old order's output).
#[test]
fn regression_reordering_the_instances_reruns_the_gather() {
    let yaml = r#"name: order
stages:
  t:
    foreach: [a, b, c]
    outs: [{m: "m-${item}.txt"}]
    run: echo ${item} > m-${item}.txt
  g:
    deps: [{ms: "t@*.m"}]
    outs: [all.txt]
    run: cat ${inputs.ms} > all.txt
"#;
    let ws = Ws::new(yaml);
    assert_eq!(ws.run(&["run"]).code, 0);
    assert_eq!(ws.read("all.txt"), "a\nb\nc\n");
    ws.write("mlcycle.yaml", &yaml.replace("[a, b, c]", "[c, a, b]"));
    let r = ws.run(&["run"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert_eq!(r.outcome("g").as_deref(), Some("ran"), "{}", r.stdout);
    assert_eq!(ws.read("all.txt"), "c\na\nb\n");
}

const SELECT: &str = r#"name: select
stages:
  data:
    uses: dataset.synthetic
    with: {kind: house_prices, rows: 200, seed: 1}
  split:
    uses: preprocess.split
    inputs: {data: data.data}
    with: {test: 0.25, seed: 1}
  train:
    foreach: [elastic_net, linear_regression]
    uses: train.${item}
    inputs: {train: split.train}
  evaluate:
    foreach: [elastic_net, linear_regression]
    uses: evaluate.regression
    inputs: {model: "train@${item}.model", test: split.test}
  pick:
    uses: evaluate.select
    inputs: {models: "train@*.model", metrics: "evaluate@*.metrics"}
    with: {metric: rmse}
  board:
    uses: evaluate.leaderboard
    inputs: {metrics: ["evaluate@linear_regression.metrics", "evaluate@elastic_net.metrics"]}
  bundle:
    uses: deploy.bundle
    inputs: {model: pick.best}
"#;

/// A built-in stage's gathering input takes every instance (`train@*.model`)
/// or a list: `evaluate.select` hands on the best model unchanged, ranks the
/// runs and averages their metrics; a new instance reruns the gather only.
#[test]
fn a_built_in_stage_gathers_every_instance_and_picks_the_best() {
    let ws = Ws::new(SELECT);
    let r = ws.run(&["run"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let best = std::fs::read(ws.path().join("artifacts/pick/best.json")).unwrap();
    let ols = std::fs::read(
        ws.path()
            .join("artifacts/train@linear_regression/model.json"),
    )
    .unwrap();
    assert_eq!(best, ols, "the least RMSE is the least-squares fit");
    let board = ws.read("artifacts/pick/leaderboard.csv");
    let rows: Vec<&str> = board.lines().collect();
    assert!(rows[0].starts_with("rank,stage,model,"), "{board}");
    assert!(
        rows[1].starts_with("1,evaluate@linear_regression,train@linear_regression,"),
        "{board}"
    );
    assert!(
        rows[2].starts_with("2,evaluate@elastic_net,train@elastic_net,"),
        "{board}"
    );
    let summary: serde_json::Value =
        serde_json::from_str(&ws.read("artifacts/pick/summary.json")).unwrap();
    assert_eq!(summary["count"], 2);
    assert_eq!(summary["best_model"], "train@linear_regression");
    let rmse = |stage: &str| {
        let m: serde_json::Value =
            serde_json::from_str(&ws.read(&format!("artifacts/{stage}/metrics.json"))).unwrap();
        m["rmse"].as_f64().unwrap()
    };
    let mean = (rmse("evaluate@elastic_net") + rmse("evaluate@linear_regression")) / 2.0;
    let got = summary["mean"]["rmse"].as_f64().unwrap();
    assert!((got - mean).abs() <= 1e-9 * mean, "{got} vs {mean}");
    // The list feeds `board` by r2 (the default) in the order written.
    let board: serde_json::Value =
        serde_json::from_str(&ws.read("artifacts/board/summary.json")).unwrap();
    assert_eq!(board["metric"], "r2");
    assert_eq!(board["best"], "evaluate@linear_regression");

    // A third candidate: only it and what gathers it run.
    ws.write(
        "mlcycle.yaml",
        &SELECT.replace(
            "[elastic_net, linear_regression]",
            "[elastic_net, linear_regression, sgd_regression]",
        ),
    );
    let r = ws.run(&["status"]);
    assert!(
        r.stdout.contains("new input `train@sgd_regression.model`")
            && !r.stdout.contains("gathered"),
        "{}",
        r.stdout
    );
    let r = ws.run(&["run"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert_eq!(r.outcome("pick").as_deref(), Some("ran"), "{}", r.stdout);
    assert_eq!(r.outcome("train@sgd_regression").as_deref(), Some("ran"));
    assert_eq!(r.outcome("train@linear_regression"), None, "{}", r.stdout);
    assert_eq!(r.outcome("board"), None, "{}", r.stdout);
    let board = ws.read("artifacts/pick/leaderboard.csv");
    assert_eq!(board.lines().count(), 4, "{board}");
}

/// The order of a gathered list is what the stage sees (ties keep it), so
/// reordering it reruns the stage, as it does a `run:` gather.
#[test]
fn regression_reordering_a_built_in_gather_reruns_it() {
    let ws = Ws::new(SELECT);
    assert_eq!(ws.run(&["run"]).code, 0);
    ws.write(
        "mlcycle.yaml",
        &SELECT.replace(
            r#"["evaluate@linear_regression.metrics", "evaluate@elastic_net.metrics"]"#,
            r#"["evaluate@elastic_net.metrics", "evaluate@linear_regression.metrics"]"#,
        ),
    );
    let r = ws.run(&["run"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert_eq!(r.outcome("board").as_deref(), Some("ran"), "{}", r.stdout);
    assert!(
        r.stdout.contains("order of gathered `metrics` changed"),
        "{}",
        r.stdout
    );
    assert_eq!(r.outcome("pick"), None, "{}", r.stdout);
}

/// Metrics listed in another order than the models still pick the model
/// they scored: pairing is by the model's stage, never by position alone.
#[test]
fn regression_select_pairs_each_metrics_file_with_the_model_it_scored() {
    let ws = Ws::new(&SELECT.replace(
        "  evaluate:\n    foreach: [elastic_net, linear_regression]",
        "  evaluate:\n    foreach: [linear_regression, elastic_net]",
    ));
    let r = ws.run(&["run"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let best = std::fs::read(ws.path().join("artifacts/pick/best.json")).unwrap();
    let ols = std::fs::read(
        ws.path()
            .join("artifacts/train@linear_regression/model.json"),
    )
    .unwrap();
    assert_eq!(best, ols, "the least-squares fit has the least RMSE");
    let board = ws.read("artifacts/pick/leaderboard.csv");
    assert!(
        board.contains("1,evaluate@linear_regression,train@linear_regression,"),
        "{board}"
    );
}

/// A path and the reference to the stage that writes it are one artifact:
/// gathering both is a duplicate. Models and metrics in different numbers
/// are refused before anything runs.
#[test]
fn regression_aliases_and_uneven_gathers_are_refused_by_validate() {
    let ws = Ws::new(&SELECT.replace(
        r#"    inputs: {metrics: ["evaluate@linear_regression.metrics", "evaluate@elastic_net.metrics"]}"#,
        r#"    inputs: {metrics: ["evaluate@*.metrics", "artifacts/evaluate@elastic_net/metrics.json"]}"#,
    ).replace(
        r#"inputs: {models: "train@*.model", metrics: "evaluate@*.metrics"}"#,
        r#"inputs: {models: "train@*.model", metrics: ["evaluate@linear_regression.metrics"]}"#,
    ));
    let r = ws.run(&["validate"]);
    assert_eq!(r.code, 2, "{}{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("duplicate_dep"), "{}", r.stderr);
    assert!(r.stderr.contains("stage `board` gathers"), "{}", r.stderr);
    assert!(
        r.stderr.contains("`models` gathers 2 artifacts but"),
        "{}",
        r.stderr
    );
}

#[test]
fn gathering_mistakes_are_reported_where_they_are_written() {
    let ws = Ws::new(&SELECT.replace(
        r#"    inputs: {models: "train@*.model", metrics: "evaluate@*.metrics"}
    with: {metric: rmse}"#,
        r#"    inputs: {models: "evaluate@*.metrics", metrics: [evaluate@*.metrics, evaluate@elastic_net.metrics]}
    with: {metric: custom_score}
  empty:
    uses: evaluate.leaderboard
    inputs: {metrics: []}
  typo:
    uses: evaluate.leaderboard
    inputs: {metrics: "evaluat@*.metrics"}
  declared:
    uses: evaluate.leaderboard
    inputs: {metrics: [train.model, 3]}
  one:
    uses: evaluate.regression
    inputs: {model: "train@*.model", test: split.test}"#,
    ));
    let r = ws.run(&["validate"]);
    assert_eq!(r.code, 2);
    let text = r.stderr.replace(&ws.path().display().to_string(), "[WS]");
    insta::assert_snapshot!(text);
}
