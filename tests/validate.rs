//! Bad input: every problem is reported at once, with file:line:column, the
//! stage, and what to do. Snapshots keep the wording honest.

mod common;

use common::Ws;

/// `mlcycle validate` output with the temp path removed.
fn validate(ws: &Ws, args: &[&str]) -> (i32, String) {
    let mut a = vec!["validate"];
    a.extend_from_slice(args);
    let r = ws.run(&a);
    let text = r.stderr.replace(&ws.path().display().to_string(), "[WS]");
    (r.code, text)
}

#[test]
fn every_problem_is_reported_at_once() {
    let ws = Ws::new(
        r#"name: bad
params:
  train:
    lr: 0.1
stagse: {}
stages:
  prep:
    run: cat in.txt > out/a.txt
    deps: [in.txt, missing.csv]
    outs: [out/a.txt]
    param: [x]
  train:
    run: echo ${params.train.lrr} > out/m.txt
    deps: [prep.aa]
    outs: [out/a.txt, ../escape.txt, /etc/x]
  both:
    uses: util.import
    run: echo
  eval:
    uses: util.imprt
  a:
    run: cat ${inputs.b} > out/b.txt
    deps: [b.c]
    outs: [out/b.txt]
  b:
    run: cat out/b.txt > out/c.txt
    deps: [out/b.txt]
    outs: [out/c.txt]
"#,
    );
    ws.write("in.txt", "x\n");
    let (code, text) = validate(&ws, &[]);
    assert_eq!(code, 2);
    insta::assert_snapshot!(text);
}

#[test]
fn malformed_yaml_points_at_the_spot() {
    let ws = Ws::new("name: x\nstages:\n  a:\n    run: [echo, hi\n  b: {}\n");
    let (code, text) = validate(&ws, &[]);
    assert_eq!(code, 2);
    insta::assert_snapshot!(text);
}

#[test]
fn unknown_param_override_is_refused_with_a_suggestion() {
    let ws = Ws::new("params: {train: {lr: 0.1}}\nstages:\n  a:\n    run: echo ${params.train.lr} > o.txt\n    outs: [o.txt]\n");
    let (code, text) = validate(&ws, &["-p", "train.lrr=3"]);
    assert_eq!(code, 2);
    assert!(
        text.contains("the pipeline has no param `train.lrr`"),
        "{text}"
    );
    assert!(text.contains("did you mean `train.lr`?"), "{text}");
    let r = ws.run(&["run", "-p", "train.lr"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("is not KEY=VALUE"), "{}", r.stderr);
}

#[test]
fn output_through_a_symlink_out_of_the_workspace_is_refused() {
    let ws = Ws::new("stages:\n  a:\n    run: echo > link/x\n    outs: [link/x]\n");
    let outside = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(outside.path(), ws.path().join("link")).unwrap();
    let (code, text) = validate(&ws, &[]);
    assert_eq!(code, 2);
    assert!(text.contains("goes through symlink `link`"), "{text}");
    assert!(text.contains("leads outside"), "{text}");
}

#[test]
fn a_cycle_prints_the_whole_chain() {
    let ws = Ws::new(
        "stages:\n  a:\n    run: cp c.txt a.txt\n    deps: [c.txt]\n    outs: [a.txt]\n  b:\n    run: cp a.txt b.txt\n    deps: [a.a]\n    outs: [b.txt]\n  c:\n    run: cp b.txt c.txt\n    deps: [b.txt]\n    outs: [c.txt]\n",
    );
    let (code, text) = validate(&ws, &[]);
    assert_eq!(code, 2);
    assert!(
        text.contains("the stages form a cycle: a → b → c → a"),
        "{text}"
    );
    assert!(text.contains("[mlcycle.yaml:2:3]"), "{text}");
}

#[test]
fn a_50_mb_pipeline_file_is_refused_before_parsing() {
    let ws = Ws::new("");
    let mut big = String::from("name: big\nparams:\n  blob: \"");
    big.push_str(&"x".repeat(50 * 1024 * 1024));
    big.push_str("\"\nstages: {}\n");
    ws.write("mlcycle.yaml", &big);
    let (code, text) = validate(&ws, &[]);
    assert_eq!(code, 2);
    assert!(
        text.contains("the file is 50.0 MiB; pipeline files are capped at 8 MiB"),
        "{text}"
    );
}

#[test]
fn an_alias_bomb_is_refused_without_expanding_it() {
    let mut y = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..10 {
        let p = i - 1;
        y.push_str(&format!(
            "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
        ));
    }
    y.push_str("stages: {}\n");
    let ws = Ws::new(&y);
    let (code, text) = validate(&ws, &[]);
    assert_eq!(code, 2);
    assert!(
        text.contains("YAML aliases expand this document to more than"),
        "{text}"
    );
}

#[test]
fn wrong_stage_shapes_and_bad_with_params() {
    let ws = Ws::new(
        r#"stages:
  nothing: {}
  mixed:
    run: echo hi > o.txt
    outs: [o.txt]
    with: {x: 1}
  imp:
    uses: util.import
    with: {pth: data.csv}
  wc:
    uses: util.wc
    inputs: {dta: imp.data}
  argv:
    run: []
"#,
    );
    let (code, text) = validate(&ws, &[]);
    assert_eq!(code, 2);
    insta::assert_snapshot!(text);
}

#[test]
fn a_mistyped_workspace_path_is_named() {
    let ws = Ws::new("stages: {}\n");
    std::fs::create_dir(ws.path().join("examples")).unwrap();
    let r = ws.run(&["run", "examples/chian"]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr
            .contains("`examples/chian` is not a workspace: there is no folder examples/chian"),
        "{}",
        r.stderr
    );
    // Outside any workspace, a folder without a pipeline is named too.
    std::fs::remove_file(ws.path().join("mlcycle.yaml")).unwrap();
    let r = ws.run(&["run", "examples"]);
    assert!(
        r.stderr
            .contains("`examples` is not a workspace: ./examples holds no mlcycle.yaml"),
        "{}",
        r.stderr
    );
}

#[test]
fn missing_pipeline_file_says_where_it_looked() {
    let ws = Ws::new("");
    std::fs::remove_file(ws.path().join("mlcycle.yaml")).unwrap();
    let r = ws.run(&["run"]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("no mlcycle.yaml in the current folder"),
        "{}",
        r.stderr
    );
}

#[test]
fn a_valid_pipeline_validates() {
    let ws = Ws::new("params: {n: 3}\nstages:\n  a:\n    run: seq ${params.n} > a.txt\n    outs: [a.txt]\n  b:\n    run: wc -l a.txt > b.txt\n    deps: [a.txt]\n    outs: [b.txt]\n");
    let r = ws.run(&["validate"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout
            .contains("is valid: 2 stages, 1 stage-to-stage input"),
        "{}",
        r.stdout
    );
}

#[test]
fn regression_output_inside_another_stages_output_folder_is_refused() {
    // `out.txt` sorts between `out` and `out/x.txt`; the check must not rely on order.
    let ws = Ws::new(
        "stages:\n  a:\n    run: mkdir -p out\n    outs: [out]\n  b:\n    run: echo > out/x.txt\n    outs: [out/x.txt]\n  c:\n    run: echo > out.txt\n    outs: [out.txt]\n",
    );
    let (code, text) = validate(&ws, &[]);
    assert_eq!(code, 2);
    assert!(
        text.contains("stage `b` writes `out/x.txt`, which stage `a` also writes"),
        "{text}"
    );
}

#[test]
fn regression_duplicate_yaml_keys_are_refused() {
    let ws = Ws::new("stages:\n  a:\n    run: echo 1 > a.txt\n    outs: [a.txt]\n  a:\n    run: echo 2 > a.txt\n    outs: [a.txt]\n");
    let (code, text) = validate(&ws, &[]);
    assert_eq!(code, 2);
    assert!(
        text.contains("the key `a` appears twice in the same mapping"),
        "{text}"
    );
    assert!(text.contains("[mlcycle.yaml:"), "{text}");
}

#[test]
fn regression_non_finite_params_are_refused() {
    let ws = Ws::new("params: {x: .inf}\nstages: {}\n");
    let (code, text) = validate(&ws, &[]);
    assert_eq!(code, 2);
    assert!(text.contains("is not a finite number"), "{text}");
}

#[test]
fn regression_params_file_syntax_errors_have_a_position() {
    let ws = Ws::new("params_file: params.yaml\nstages: {}\n");
    ws.write("params.yaml", "train:\n  lr: [1, 2\n  epochs: 3\n");
    let (code, text) = validate(&ws, &[]);
    assert_eq!(code, 2);
    assert!(
        text.contains("params file `params.yaml`: invalid YAML"),
        "{text}"
    );
    assert!(text.contains("[params.yaml:"), "{text}");
}

#[test]
fn regression_named_dep_clashes_are_caught_in_either_order() {
    let ws = Ws::new("stages:\n  a:\n    run: cat ${inputs.x}\n    deps: [{x: a.txt}, b/x.txt]\n");
    ws.write("a.txt", "a");
    ws.write("b/x.txt", "b");
    let (code, text) = validate(&ws, &[]);
    assert_eq!(code, 2);
    assert!(
        text.contains("input `x` of stage `a` is fed twice"),
        "{text}"
    );
}

#[test]
fn regression_validate_refuses_stage_names() {
    let ws = Ws::new("stages:\n  a:\n    run: echo > a.txt\n    outs: [a.txt]\n");
    let (code, text) = validate(&ws, &["nosuch"]);
    assert_eq!(code, 2);
    assert!(text.contains("takes no stage names"), "{text}");
}

#[test]
fn a_reference_that_is_also_a_file_is_ambiguous() {
    let ws = Ws::new(
        "stages:\n  data:\n    run: echo > out/csv.txt\n    outs: [out/csv.txt]\n  use:\n    run: cat data.csv > u.txt\n    deps: [data.csv]\n    outs: [u.txt]\n",
    );
    ws.write("data.csv", "a,b\n");
    let (code, text) = validate(&ws, &[]);
    assert_eq!(code, 2);
    assert!(
        text.contains("is both output `csv` of stage `data`"),
        "{text}"
    );
    assert!(text.contains("write `./data.csv`"), "{text}");
    // The suggested spelling resolves to the file.
    let yaml = std::fs::read_to_string(ws.path().join("mlcycle.yaml")).unwrap();
    ws.write(
        "mlcycle.yaml",
        &yaml.replace("deps: [data.csv]", "deps: [./data.csv]"),
    );
    assert_eq!(validate(&ws, &[]).0, 0);
}

#[test]
fn regression_a_missing_script_named_after_its_stage_is_a_missing_file() {
    // `fit.py` in stage `fit` used to read as "stage `fit` has no output
    // `py`": a stage's own outputs are never its inputs.
    let ws = Ws::new(
        "stages:\n  fit:\n    run: python3 fit.py > ${outputs.m}\n    deps: [fit.py]\n    outs: [m.json]\n  other:\n    run: cat fit.py\n    deps: [fit.py]\n",
    );
    let (code, text) = validate(&ws, &[]);
    assert_eq!(code, 2);
    assert!(
        text.contains("stage `fit` depends on missing file `fit.py`"),
        "{text}"
    );
    // From another stage it reads as a reference, and says both readings.
    assert!(text.contains("if `fit.py` is meant as a file"), "{text}");
}

#[test]
fn bad_executor_and_resources_are_all_reported_with_suggestions() {
    let ws = Ws::new(
        "executor: cluster\nresources: {tim: 5}\nstages:\n  a:\n    run: echo\n    resources: {mem: lots, cpus: 0}\n",
    );
    let (code, text) = validate(&ws, &[]);
    assert_eq!(code, 2);
    insta::assert_snapshot!(text);
}

/// A stage's `inputs:` problems do not hide its `with:` problems, and every
/// unknown `with:` key is named, with a bad value beside them.
#[test]
fn inputs_and_with_problems_of_one_stage_are_all_reported() {
    let ws = Ws::new(
        "stages:\n  syn:\n    uses: dataset.synthetic\n    with: {kind: blobs, rowz: 10, sede: 3}\n  svm:\n    uses: train.svm\n    inputs: {train: syn.dta}\n    with: {kernal: linear, c: -1}\n",
    );
    let (code, text) = validate(&ws, &[]);
    assert_eq!(code, 2);
    for needle in [
        "unknown field `rowz`",
        "unknown field `sede`",
        "no output `dta`",
        "unknown field `kernal`",
    ] {
        assert!(text.contains(needle), "`{needle}` missing from:\n{text}");
    }
}

/// `mlcycle validate` reads a CSV's header row: a `target` (or a `types`
/// key) that is not a column is reported at the param, with the header
/// and the nearest name, before anything runs (it was found only when the
/// stage ran). `status` does not read data files.
#[test]
fn a_target_that_is_not_in_the_csv_header_is_a_validation_error() {
    let ws = Ws::new(
        "stages:\n  data: {uses: dataset.csv, with: {path: d.csv, target: prise, types: {are: numeric}}}\n",
    );
    ws.write("d.csv", "area,price\n1,2\n");
    let (code, err) = validate(&ws, &[]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("the target `prise` is not a column of d.csv"),
        "{err}"
    );
    assert!(err.contains("(its columns: area, price)"), "{err}");
    assert!(err.contains("did you mean `price`?"), "{err}");
    assert!(err.contains("the typed column `are`"), "{err}");
    assert!(err.contains("mlcycle.yaml:2:"), "{err}");
    assert_eq!(ws.run(&["status"]).code, 1);
}

/// `mlcycle validate` follows what the data will hold through the DAG
/// (columns from the CSV header, text from its first rows, the target from
/// the dataset stage) and reports, at the stage that would fail, what used
/// to show only when it ran: a trainer fed a table without a target, a
/// text column that reaches a model un-encoded, a regression on a text
/// target, rows scored without the target, and a column a step names that
/// the table will not have. A pipeline that encodes first passes.
#[test]
fn faults_that_flow_through_the_dag_are_found_by_validate() {
    let ws = Ws::new(
        r#"name: flow
stages:
  data:
    uses: dataset.csv
    with: {path: h.csv}
  split:
    uses: preprocess.split
    inputs: {data: data.data}
  fit:
    uses: train.linear_regression
    inputs: {train: split.train}
  priced:
    uses: dataset.csv
    with: {path: h.csv, target: price}
  forest:
    uses: train.random_forest
    inputs: {train: priced.data}
  by_city:
    uses: dataset.csv
    with: {path: h.csv, target: city}
  sgd:
    uses: train.sgd_regression
    inputs: {train: by_city.data}
  scale:
    uses: preprocess.scale
    inputs: {data: priced.data}
    with: {columns: [area, romos]}
  enc:
    uses: features.one_hot
    inputs: {data: priced.data}
  ols:
    uses: train.linear_regression
    inputs: {train: enc.data}
  unlabelled:
    uses: dataset.csv
    with: {path: u.csv}
  eval:
    uses: evaluate.regression
    inputs: {model: ols.model, test: unlabelled.data}
"#,
    );
    ws.write(
        "h.csv",
        "area,city,rooms,price\n50,paris,2,100\n70,lyon,3,150\n",
    );
    ws.write("u.csv", "area,city,rooms\n50,paris,2\n");
    let (code, text) = validate(&ws, &[]);
    assert_eq!(code, 2, "{text}");
    insta::assert_snapshot!(text);
    // `status` and `run` do not read data files to validate.
    assert_eq!(ws.run(&["status"]).code, 1);

    // Encoded before training, scored on rows with the target: valid.
    let ws = Ws::new(
        r#"name: fine
stages:
  data: {uses: dataset.csv, with: {path: h.csv, target: price}}
  split: {uses: preprocess.split, inputs: {data: data.data}}
  enc: {uses: features.one_hot, inputs: {data: split.train}}
  keep:
    uses: features.select
    inputs: {data: enc.data}
    with: {keep: [area, city=paris]}
  fit: {uses: train.linear_regression, inputs: {train: keep.data}}
  test: {uses: features.apply, inputs: {data: split.test, transform: enc.transform}}
  eval: {uses: evaluate.regression, inputs: {model: fit.model, test: split.test}}
"#,
    );
    ws.write(
        "h.csv",
        "area,city,rooms,price\n50,paris,2,100\n70,lyon,3,150\n",
    );
    let (code, text) = validate(&ws, &[]);
    assert_eq!(code, 0, "{text}");
}

/// A CSV column whose first rows are numbers is not called numeric for
/// certain: text further down is the run's to report, never a false alarm
/// from `validate`.
#[test]
fn validate_raises_no_alarm_on_what_the_first_rows_cannot_tell() {
    let ws = Ws::new(
        "stages:\n  data: {uses: dataset.csv, with: {path: d.csv, target: y}}\n  fit: {uses: train.logistic_regression, inputs: {train: data.data}}\n",
    );
    let mut csv = String::from("a,b,y\n");
    for i in 0..1500 {
        csv.push_str(&format!("{i},{},{}\n", i % 7, i % 2));
    }
    csv.push_str("5,text,1\n");
    ws.write("d.csv", &csv);
    let (code, text) = validate(&ws, &[]);
    assert_eq!(code, 0, "{text}");
    let r = ws.run(&["run"]);
    assert_ne!(r.code, 0);
    assert!(
        r.stdout.contains("column `b` is categorical"),
        "{}",
        r.stdout
    );
}

/// Pipelines that run, which the DAG check must not refuse (each was once
/// refused): outlier removal on the target, `columns` unread without
/// outliers, a fitted step applied to a wider table, PCA beside a column
/// only unsure to be numbers, and a CSV that a `run:` stage rewrites.
#[test]
fn regression_validate_refuses_no_pipeline_that_runs() {
    let ws = Ws::new(
        r#"name: fine
stages:
  data: {uses: dataset.csv, with: {path: a.csv, target: price}}
  wide: {uses: dataset.csv, with: {path: b.csv}}
  clean:
    uses: preprocess.clean
    inputs: {data: data.data}
    with: {outliers: zscore, columns: [price]}
  unread:
    uses: preprocess.clean
    inputs: {data: data.data}
    with: {columns: [nosuch]}
  keep: {uses: features.select, inputs: {data: data.data}, with: {keep: [area]}}
  fit: {uses: train.linear_regression, inputs: {train: keep.data}}
  kb: {uses: features.apply, inputs: {data: wide.data, transform: keep.transform}}
  eval: {uses: evaluate.regression, inputs: {model: fit.model, test: kb.data}}
  late: {uses: dataset.csv, with: {path: late.csv, target: y}}
  pca: {uses: features.pca, inputs: {data: late.data}, with: {components: 1}}
  enc: {uses: features.one_hot, inputs: {data: pca.data}, with: {columns: [code]}}
  gen:
    run: "printf 'a,y\n1,2\n2,4\n3,6\n4,8\n' > ${outputs.d}"
    outs: [{d: out/d.csv}]
  gen_data: {uses: dataset.csv, with: {path: out/d.csv, target: y}}
  gen_fit: {uses: train.linear_regression, inputs: {train: gen_data.data}}
"#,
    );
    ws.write(
        "a.csv",
        "area,city,price\n1,x,2\n2,y,4\n3,x,6\n4,y,9\n5,x,10\n",
    );
    ws.write("b.csv", "area,city,price\n1,x,2\n2,y,4\n");
    let mut late = String::from("a,b,code,y\n");
    for i in 0..1200 {
        late.push_str(&format!("{i},{},{},{}\n", i % 5, i % 3, i % 2));
    }
    late.push_str("1,2,text,1\n");
    ws.write("late.csv", &late);
    // What is on disk now is not what `gen` will write.
    ws.write("out/d.csv", "a,city,y\n1,x,2\n");
    let (code, text) = validate(&ws, &[]);
    assert_eq!(code, 0, "{text}");
    let r = ws.run(&["run"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
}

/// Faults the DAG check once let through: the reference of a comparison
/// scored on rows without its target, a step fitted on a narrow table and
/// applied to a wider one, and a regression on a bundled data set whose
/// target is a class.
#[test]
fn regression_validate_follows_references_applied_steps_and_bundled_data() {
    let ws = Ws::new(
        r#"name: faults
stages:
  a: {uses: dataset.csv, with: {path: a.csv, target: price}}
  b: {uses: dataset.csv, with: {path: b.csv, target: price}}
  z: {uses: dataset.csv, with: {path: z.csv, target: z}}
  enc: {uses: features.one_hot, inputs: {data: a.data}}
  fit: {uses: train.linear_regression, inputs: {train: enc.data}}
  wide: {uses: features.apply, inputs: {data: b.data, transform: enc.transform}}
  refit: {uses: train.linear_regression, inputs: {train: wide.data}}
  zfit: {uses: train.linear_regression, inputs: {train: z.data}}
  cmp: {uses: evaluate.compare, inputs: {model: fit.model, reference: zfit.model, test: a.data}}
  iris: {uses: dataset.builtin, with: {name: iris}}
  ols: {uses: train.linear_regression, inputs: {train: iris.data}}
"#,
    );
    ws.write("a.csv", "area,city,price\n1,x,2\n2,y,4\n");
    ws.write("b.csv", "area,city,color,price\n1,x,red,2\n2,y,blue,4\n");
    ws.write("z.csv", "area,z\n1,2\n2,4\n");
    let (code, text) = validate(&ws, &[]);
    assert_eq!(code, 2, "{text}");
    for needle in [
        "stage `refit` (train.linear_regression): column `color` will reach it categorical",
        "stage `cmp` (evaluate.compare): the `reference` predicts `z`",
        "stage `ols` (train.linear_regression): `train.linear_regression` is a regression and needs a numeric target, but `species` will be categorical",
    ] {
        assert!(
            text.replace('\n', " ").replace("  │ ", "").contains(needle),
            "`{needle}` missing from:\n{text}"
        );
    }
}

/// A port is named after its file (`out/gb_metrics.json` is
/// `MLCYCLE_OUT_GB_METRICS`): a command, or a script it runs, that reads a
/// variable the stage does not set is caught before anything runs, with
/// the nearest name, instead of a KeyError after a long training run.
#[test]
fn a_command_or_script_reading_an_unset_port_variable_is_refused() {
    let ws = Ws::new(
        r#"name: env
stages:
  train:
    run: python3 train.py && cp x "$MLCYCLE_OUT_METRICS"
    deps: [train.py, {data: in.csv}]
    outs: [out/gb_metrics.json]
"#,
    );
    ws.write("in.csv", "a\n1\n");
    ws.write(
        "train.py",
        "import os\nopen(os.environ['MLCYCLE_IN_DATA']).read()\nout = os.environ['MLCYCLE_OUT_GB_METRIC']\n",
    );
    let (code, text) = validate(&ws, &[]);
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("unknown_env"), "{text}");
    assert!(
        text.contains("the command of stage `train` reads `$MLCYCLE_OUT_METRICS`"),
        "{text}"
    );
    assert!(
        text.contains("`train.py`, run by stage `train`, reads `MLCYCLE_OUT_GB_METRIC`"),
        "{text}"
    );
    assert!(
        text.contains("did you mean `MLCYCLE_OUT_GB_METRICS`?"),
        "{text}"
    );
    assert!(
        !text.contains("MLCYCLE_IN_DATA`,"),
        "a variable the stage sets is fine: {text}"
    );
    // `status` reads the command line, not the scripts.
    ws.write(
        "mlcycle.yaml",
        &ws.read("mlcycle.yaml")
            .replace("\"$MLCYCLE_OUT_METRICS\"", "\"$MLCYCLE_OUT_GB_METRICS\""),
    );
    let r = ws.run(&["status"]);
    assert_eq!(r.code, 1, "stale, not invalid: {}{}", r.stdout, r.stderr);
    let (code, text) = validate(&ws, &[]);
    assert_eq!(code, 2, "validate still reads train.py: {text}");
}

/// What the shell does not expand is not a read: comments, single quotes,
/// escapes, `${NAME:-default}`, a name the command sets itself, an argv
/// list; a script the command does not run is not scanned; and a variable
/// from the environment mlcycle was started in never reaches a stage.
#[test]
fn regression_port_variables_the_shell_does_not_read_are_not_refused() {
    let ws = Ws::new(
        r#"name: env
stages:
  a:
    run: "mkdir -p out && echo '$MLCYCLE_IN_FOO' $${MLCYCLE_OUT_Y:-none} > out/a.txt # not $MLCYCLE_IN_BAR"
    outs: [out/a.txt]
  b:
    run: [sh, -c, 'echo $MLCYCLE_IN_FOO > out/b.txt']
    outs: [out/b.txt]
  c:
    run: "wc -l lint.py > out/c.txt && MLCYCLE_IN_X=1; env | grep ^MLCYCLE_ | sort >> out/c.txt"
    deps: [lint.py]
    outs: [out/c.txt]
"#,
    );
    ws.write(
        "lint.py",
        "import os
os.environ['MLCYCLE_IN_NOPE']
",
    );
    let (code, text) = validate(&ws, &[]);
    assert_eq!(code, 0, "{text}");
    let r = ws
        .cmd(&["run"])
        .env("MLCYCLE_IN_GHOST", "stale")
        .env("MLCYCLE_OUT_GHOST", "stale")
        .output()
        .unwrap();
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let env = ws.read("out/c.txt");
    assert!(env.contains("MLCYCLE_IN_LINT="), "{env}");
    assert!(
        !env.contains("GHOST"),
        "an inherited port variable leaked: {env}"
    );
}

/// A stage's `target:` replaces the table's target for `validate` too, as
/// it does when the stage runs: dropping the old target is no longer
/// "dropping the target", and the trainer predicts the new one.
#[test]
fn regression_validate_follows_a_target_override() {
    let ws = Ws::new(
        r#"name: ovr
stages:
  data:
    uses: dataset.csv
    with: {path: d.csv, target: city}
  split:
    uses: preprocess.split
    inputs: {data: data.data}
    with: {target: price, test: 0.25}
  drop:
    uses: features.select
    inputs: {data: split.train}
    with: {drop: [city]}
  ols:
    uses: train.linear_regression
    inputs: {train: drop.data}
"#,
    );
    let mut csv = String::from("area,city,price\n");
    for i in 0..40 {
        csv.push_str(&format!(
            "{},{},{}\n",
            50 + i,
            if i % 2 == 0 { "a" } else { "b" },
            1000 + 7 * i
        ));
    }
    ws.write("d.csv", &csv);
    let (code, text) = validate(&ws, &[]);
    assert_eq!(code, 0, "{text}");
    let r = ws.run(&["run"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
}

/// A refused `deps:` or `outs:` entry is reported once: the `${…}` that
/// names it does not add a second, misleading "no output named" error.
#[test]
fn a_refused_entry_is_not_reported_again_as_an_unknown_reference() {
    for (yaml, first) in [
        (
            "stages:\n  s:\n    run: echo > ${outputs.f}\n    outs: [{f: out/f.txt, cache: false}]\n",
            "`outs` entries must be a path or `name: path`",
        ),
        (
            "stages:\n  s:\n    run: cat ${inputs.m} > ${outputs.o}\n    deps: [{m: missing.txt}]\n    outs: [{o: out/o.txt}]\n",
            "missing.txt",
        ),
    ] {
        let ws = Ws::new(yaml);
        let r = ws.run(&["validate"]);
        assert_eq!(r.code, 2, "{}", r.stderr);
        assert!(r.stderr.contains(first), "{}", r.stderr);
        assert!(!r.stderr.contains("unknown_ref"), "{}", r.stderr);
    }
}
