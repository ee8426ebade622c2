//! Experiments: a sweep runs as one DAG (shared stages once), leaves the
//! workspace alone, is recorded, shown, compared, applied, and resumes
//! after a kill.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::Ws;
use serde_json::Value;

const PIPELINE: &str = r#"name: sweep
params_file: params.yaml
params:
  log: LOG
stages:
  prep:
    run: echo prep >> ${params.log} && sleep ${params.prep_sleep} && mkdir -p out && echo data > out/data.txt
    outs: [out/data.txt]
  train:
    deps: [out/data.txt]
    run: >-
      echo train-${params.train.lr}-${params.train.epochs} >> ${params.log} &&
      sleep ${params.train_sleep} &&
      awk -v lr=${params.train.lr} -v e=${params.train.epochs}
      'BEGIN { printf "{\"score\": %g, \"model\": \"m\"}\n", lr * e }' > out/metrics.json
    outs:
      - out/metrics.json: {metrics: true}
"#;

const PARAMS: &str = "# training knobs\ntrain:\n  lr: 0.1     # step size\n  epochs: 10\nprep_sleep: 0\ntrain_sleep: 0\n";

/// A workspace with the sweep pipeline; its side log is outside it.
fn sweep_ws() -> (Ws, tempfile::TempDir) {
    let side = tempfile::tempdir().unwrap();
    let log = side.path().join("count.txt");
    let ws = Ws::new(&PIPELINE.replace("LOG", &log.display().to_string()));
    ws.write("params.yaml", PARAMS);
    (ws, side)
}

fn side_log(side: &tempfile::TempDir) -> Vec<String> {
    std::fs::read_to_string(side.path().join("count.txt"))
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

/// Every file of the workspace but its state folder, with its bytes.
fn tree(root: &Path) -> Vec<(String, Vec<u8>)> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, Vec<u8>)>) {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap())
            .collect();
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let p = e.path();
            let rel = p.strip_prefix(root).unwrap().display().to_string();
            if rel == ".mlcycle" {
                continue;
            }
            if p.is_dir() {
                out.push((format!("{rel}/"), vec![]));
                walk(root, &p, out);
            } else {
                out.push((rel, std::fs::read(&p).unwrap()));
            }
        }
    }
    let mut out = Vec::new();
    walk(root, root, &mut out);
    out
}

fn show_json(ws: &Ws) -> Vec<Value> {
    let r = ws.run(&["exp", "show", "--json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    serde_json::from_str::<Value>(&r.stdout)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

#[test]
fn a_grid_sweep_runs_shared_stages_once_and_leaves_the_workspace_alone() {
    let (ws, side) = sweep_ws();
    let before = tree(ws.path());
    let r = ws.run(&[
        "exp",
        "run",
        "-S",
        "train.lr=0.1,0.2",
        "-S",
        "train.epochs=10,20",
        "-j",
        "2",
    ]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let log = side_log(&side);
    // The data stage is the same in every configuration: it ran once.
    assert_eq!(log.iter().filter(|l| *l == "prep").count(), 1, "{log:?}");
    let mut trains: Vec<&String> = log.iter().filter(|l| l.starts_with("train")).collect();
    trains.sort();
    assert_eq!(
        trains,
        [
            "train-0.1-10",
            "train-0.1-20",
            "train-0.2-10",
            "train-0.2-20"
        ],
        "{log:?}"
    );
    // Nothing of the workspace changed: no outputs, no lock, same params.
    assert_eq!(tree(ws.path()), before);
    // Each experiment is recorded with its params and metrics.
    let rows = show_json(&ws);
    assert_eq!(rows.len(), 4);
    for row in &rows {
        assert_eq!(row["status"], "done", "{row}");
        let lr = row["params"]["train.lr"].as_f64().unwrap();
        let e = row["params"]["train.epochs"].as_f64().unwrap();
        let score = row["metrics"]["train.score"].as_f64().unwrap();
        assert!((score - lr * e).abs() < 1e-9, "{row}");
        // Text in a metrics file is not a metric.
        assert!(row["metrics"].get("train.model").is_none(), "{row}");
    }
    // The scratch copies of finished experiments are gone.
    let exps = ws.path().join(".mlcycle/exps");
    assert!(
        !exps.exists() || std::fs::read_dir(&exps).unwrap().next().is_none(),
        "scratch copies left behind"
    );
}

#[test]
fn a_second_sweep_reuses_what_the_first_computed() {
    let (ws, side) = sweep_ws();
    let r = ws.run(&["exp", "run", "-S", "train.lr=0.1,0.2"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let r = ws.run(&["exp", "run", "-S", "train.lr=0.2,0.3"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let log = side_log(&side);
    let mut sorted = log.clone();
    sorted.sort();
    // Data prepared once; lr 0.2 is not computed a second time.
    assert_eq!(
        sorted,
        ["prep", "train-0.1-10", "train-0.2-10", "train-0.3-10"],
        "{log:?}"
    );
    assert_eq!(log.iter().filter(|l| *l == "prep").count(), 1, "{log:?}");
    assert_eq!(
        log.iter().filter(|l| *l == "train-0.2-10").count(),
        1,
        "the same params again are the same experiment: {log:?}"
    );
    // Three experiments: lr 0.2 was not recorded twice.
    assert_eq!(show_json(&ws).len(), 3);
}

#[test]
fn apply_writes_the_params_in_place_and_restores_the_outputs() {
    let (ws, side) = sweep_ws();
    let r = ws.run(&[
        "exp",
        "run",
        "-n",
        "grid",
        "-S",
        "train.lr=0.1,0.2",
        "-S",
        "train.epochs=10,20",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let ran = side_log(&side).len();
    // grid-4 is lr 0.2, epochs 20 (the last axis varies fastest).
    let r = ws.run(&["exp", "apply", "grid-4"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert_eq!(
        ws.read("params.yaml"),
        "# training knobs\ntrain:\n  lr: 0.2     # step size\n  epochs: 20\nprep_sleep: 0\ntrain_sleep: 0\n",
        "only the values change; comments and layout stay"
    );
    let m: Value = serde_json::from_str(&ws.read("out/metrics.json")).unwrap();
    assert_eq!(m["score"].as_f64(), Some(4.0));
    assert_eq!(side_log(&side).len(), ran, "nothing was computed again");
    assert!(r.stdout.contains("restored"), "{}", r.stdout);
    let st = ws.run(&["status"]);
    assert_eq!(st.code, 0, "the workspace is fresh: {}", st.stdout);
}

#[test]
fn apply_refuses_an_experiment_that_did_not_finish_and_names_are_checked() {
    let (ws, _side) = sweep_ws();
    let r = ws.run(&["exp", "run", "--queue", "-n", "later", "-S", "train.lr=0.5"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let r = ws.run(&["exp", "apply", "later"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("is queued"), "{}", r.stderr);
    let r = ws.run(&["exp", "apply", "latr"]);
    assert!(
        r.stderr.contains("later"),
        "a near name is suggested: {}",
        r.stderr
    );
    let r = ws.run(&["exp", "rename", "later", "no/slash"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    // The queue runs with --run-all.
    let r = ws.run(&["exp", "run", "--run-all"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(show_json(&ws)[0]["status"], "done");
    let r = ws.run(&["exp", "rename", "later", "lr-half"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let r = ws.run(&["exp", "remove", "lr-half"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(show_json(&ws).is_empty());
}

#[test]
fn bad_sweeps_are_refused_before_anything_runs() {
    let (ws, side) = sweep_ws();
    for (args, says) in [
        (vec!["-S", "train.lrr=0.1"], "did you mean `train.lr`"),
        (vec!["-S", "train.lr=0.1..0.5"], "a grid needs a list"),
        (vec!["-S", "train=1"], "a mapping or a list"),
        (vec!["-S", "train.lr"], "has no `=`"),
        (
            vec!["-S", "train.lr=0.1", "-S", "train.lr=0.2"],
            "set twice",
        ),
    ] {
        let mut full = vec!["exp", "run"];
        full.extend(args.iter().copied());
        let r = ws.run(&full);
        assert_eq!(r.code, 2, "{args:?}: {}", r.stderr);
        assert!(r.stderr.contains(says), "{args:?}: {}", r.stderr);
    }
    assert!(side_log(&side).is_empty());
    assert!(show_json(&ws).is_empty());
}

#[test]
fn random_search_is_seeded() {
    let (ws, _side) = sweep_ws();
    let args = [
        "exp",
        "run",
        "--random",
        "3",
        "--seed",
        "5",
        "-S",
        "train.lr=0.01..1",
        "-S",
        "train.epochs=[5, 10, 20]",
    ];
    let r = ws.run(&args);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let rows = show_json(&ws);
    assert_eq!(rows.len(), 3);
    for row in &rows {
        let lr = row["params"]["train.lr"].as_f64().unwrap();
        assert!((0.01..1.0).contains(&lr), "{row}");
        let e = row["params"]["train.epochs"].as_i64().unwrap();
        assert!([5, 10, 20].contains(&e), "{row}");
    }
    // The same seed draws the same configurations: nothing new.
    let r = ws.run(&args);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(show_json(&ws).len(), 3);
}

#[test]
fn a_sweep_killed_and_started_again_resumes() {
    let (ws, side) = sweep_ws();
    ws.write(
        "params.yaml",
        &PARAMS.replace("train_sleep: 0", "train_sleep: 0.4"),
    );
    let args = [
        "exp",
        "run",
        "-j",
        "1",
        "-S",
        "train.lr=0.1,0.2,0.3,0.4,0.5,0.6",
    ];
    let mut child = ws
        .cmd(&args)
        .stderr(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    let done = loop {
        std::thread::sleep(Duration::from_millis(100));
        let done: Vec<String> = show_json(&ws)
            .iter()
            .filter(|r| r["status"] == "done")
            .map(|r| r["params"]["train.lr"].to_string())
            .collect();
        if done.len() >= 2 || t0.elapsed() > Duration::from_secs(60) {
            break done;
        }
    };
    // kill -9: no chance to record anything more.
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(done.len() >= 2 && done.len() < 6, "{done:?}");
    // Let a command the kill orphaned finish its line.
    std::thread::sleep(Duration::from_millis(600));
    let r = ws.run(&args);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let log = side_log(&side);
    for lr in &done {
        let line = format!("train-{lr}-10");
        assert_eq!(
            log.iter().filter(|l| **l == line).count(),
            1,
            "{line} finished before the kill and ran again: {log:?}"
        );
    }
    assert_eq!(log.iter().filter(|l| *l == "prep").count(), 1, "{log:?}");
    let rows = show_json(&ws);
    assert_eq!(rows.len(), 6, "{rows:?}");
    assert!(rows.iter().all(|r| r["status"] == "done"), "{rows:?}");
}

/// The text table, with creation times replaced.
fn stable(text: &str) -> String {
    text.lines()
        .map(|l| {
            let b = l.as_bytes();
            let mut out = String::new();
            let mut i = 0;
            while i < l.len() {
                let is_stamp = i + 16 <= b.len()
                    && b[i..i + 16].iter().enumerate().all(|(j, c)| match j {
                        4 | 7 => *c == b'-',
                        10 => *c == b' ',
                        13 => *c == b':',
                        _ => c.is_ascii_digit(),
                    });
                if is_stamp {
                    out.push_str("YYYY-MM-DD hh:mm");
                    i += 16;
                } else {
                    out.push(b[i] as char);
                    i += 1;
                }
            }
            out
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn the_experiments_table() {
    let (ws, _side) = sweep_ws();
    let r = ws.run(&[
        "exp",
        "run",
        "-n",
        "lr",
        "-S",
        "train.lr=0.3,0.1,0.2",
        "-S",
        "train.epochs=7",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let show = |extra: &[&str]| {
        let mut args = vec!["exp", "show"];
        args.extend(extra);
        let r = ws.run(&args);
        assert_eq!(r.code, 0, "{}", r.stderr);
        stable(&r.stdout)
    };
    let text = [
        "$ exp show --only-changed --sort-by train.score".to_string(),
        show(&["--only-changed", "--sort-by", "train.score"]),
        "$ exp show --filter train.score>1 --columns train. --md".into(),
        show(&["--filter", "train.score>1", "--columns", "train.", "--md"]),
        "$ exp show --only-changed --csv".into(),
        show(&["--only-changed", "--csv"]),
        "$ exp diff lr-1 lr-2".into(),
        {
            let r = ws.run(&["exp", "diff", "lr-1", "lr-2"]);
            r.stdout
        },
    ]
    .join("\n");
    insta::assert_snapshot!(text);
}

/// A one-stage pipeline: `s` runs `cmd` (which may use `${params.…}`).
fn one_stage(params: &str, cmd: &str, extra: &str) -> Ws {
    Ws::new(&format!(
        "params:\n{params}\nstages:\n  s:\n    run: {cmd}\n    outs: [out/o.txt]\n{extra}"
    ))
}

#[test]
fn regression_a_params_file_outside_the_workspace_is_never_written() {
    let shared = tempfile::tempdir().unwrap();
    let pf = shared.path().join("p.yaml");
    std::fs::write(&pf, "lr: 0.1  # keep\n").unwrap();
    let ws = Ws::new(&format!(
        "params_file: {}\nstages:\n  s:\n    run: mkdir -p out && echo ${{params.lr}} > out/o.txt\n    outs: [out/o.txt]\n",
        pf.display()
    ));
    let r = ws.run(&["exp", "run", "-S", "lr=0.5,0.7"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert_eq!(std::fs::read_to_string(&pf).unwrap(), "lr: 0.1  # keep\n");
    let rows = show_json(&ws);
    assert!(rows.iter().all(|r| r["status"] == "done"), "{rows:?}");
}

#[test]
fn regression_a_failed_experiment_run_again_sees_the_fixed_code() {
    let ws = one_stage("  a: 1", "sh step.sh ${params.a}", "    deps: [step.sh]\n");
    ws.write(
        "step.sh",
        "mkdir -p out; if [ \"$1\" = 2 ]; then exit 1; fi; echo v1 $1 > out/o.txt\n",
    );
    let r = ws.run(&["exp", "run", "-n", "g", "-S", "a=1,2"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        ws.exists(".mlcycle/exps/g-2"),
        "a failed experiment keeps its copy"
    );
    ws.write("step.sh", "mkdir -p out; echo v2 $1 > out/o.txt\n");
    let r = ws.run(&["exp", "run", "-n", "g", "-S", "a=1,2"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stderr.contains("g-2 has these params already"),
        "{}",
        r.stderr
    );
    let r = ws.run(&["exp", "apply", "g-2"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(ws.read("out/o.txt").trim(), "v2 2");
}

#[test]
fn regression_relative_symlinks_out_of_the_workspace_still_lead_there() {
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("o.txt"), "far\n").unwrap();
    let ws = one_stage(
        "  p: 1",
        "mkdir -p out && cat data/far/o.txt > out/o.txt && echo ${params.p} >> out/o.txt",
        "",
    );
    std::fs::create_dir_all(ws.path().join("data")).unwrap();
    // A relative link from data/ to the folder outside.
    let rel = pathdiff(outside.path(), &ws.path().join("data"));
    std::os::unix::fs::symlink(&rel, ws.path().join("data/far")).unwrap();
    let r = ws.run(&["exp", "run", "-S", "p=2,3"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
}

/// `to` relative to `from` (both absolute), with `..` steps.
fn pathdiff(to: &Path, from: &Path) -> std::path::PathBuf {
    let (to, from) = (to.canonicalize().unwrap(), from.canonicalize().unwrap());
    let common = to
        .components()
        .zip(from.components())
        .take_while(|(a, b)| a == b)
        .count();
    let mut out = std::path::PathBuf::new();
    for _ in from.components().skip(common) {
        out.push("..");
    }
    for c in to.components().skip(common) {
        out.push(c);
    }
    out
}

#[test]
fn regression_params_that_cannot_be_written_in_place_are_refused_before_anything_runs() {
    let (ws, side) = sweep_ws();
    ws.write(
        "params.yaml",
        "base: &base\n  lr: 0.1\n  epochs: 5\ntrain:\n  <<: *base\n  epochs: 10\nnote: |\n  text\nprep_sleep: 0\ntrain_sleep: 0\n",
    );
    for (set, says) in [
        (
            "base.lr=9",
            ["params.yaml (line 2)", "anchor", "`train.lr`"],
        ),
        (
            "train.lr=9",
            ["params.yaml (line", "merge key", "`train.lr`"],
        ),
        ("note=new", ["params.yaml (line 7)", "block", "scalar"]),
    ] {
        let r = ws.run(&["exp", "run", "-S", set]);
        assert_eq!(r.code, 2, "{set}: {}", r.stderr);
        for s in says {
            assert!(r.stderr.contains(s), "{set}: {s}: {}", r.stderr);
        }
    }
    assert!(side_log(&side).is_empty());
    assert!(show_json(&ws).is_empty(), "nothing recorded");
}

#[test]
fn regression_a_value_of_another_type_is_refused_and_ranges_follow_the_param() {
    let (ws, _side) = sweep_ws();
    for set in ["train.epochs=abc", "train.lr=.inf", "train.lr=true"] {
        let r = ws.run(&["exp", "run", "-S", set]);
        assert_eq!(r.code, 2, "{set}: {}", r.stderr);
        assert!(
            r.stderr.contains("would change the param's type"),
            "{set}: {}",
            r.stderr
        );
    }
    // lr is a float: the range 0..1 draws floats, not the integers 0 and 1.
    let r = ws.run(&["exp", "run", "--random", "4", "-S", "train.lr=0..1"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let rows = show_json(&ws);
    assert_eq!(rows.len(), 4);
    assert!(
        rows.iter().all(|r| r["params"]["train.lr"].is_f64()),
        "{rows:?}"
    );
}

#[test]
fn regression_metrics_files_keep_what_they_can_and_say_what_they_cannot() {
    let ws = Ws::new(
        "params:\n  p: 1\nstages:\n  s:\n    run: >-\n      mkdir -p out/dir &&\n      printf 'acc: 4\\nbad: .nan\\n\"\": 3\\nnested: {f1: 0.5, tag: x}\\n' > out/m.yaml &&\n      echo '{}' > out/dir/m.json && echo ${params.p} > out/o.txt\n    outs:\n      - out/m.yaml: {metrics: true}\n      - out/dir: {metrics: true}\n      - out/o.txt\n",
    );
    let r = ws.run(&["exp", "run", "-S", "p=2"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stderr.contains("`out/dir` of stage `s` is a folder"),
        "{}",
        r.stderr
    );
    let rows = show_json(&ws);
    let m = &rows[0]["metrics"];
    assert_eq!(m["s.acc"], 4, "{m}");
    assert_eq!(m["s.nested.f1"], 0.5, "{m}");
    assert_eq!(m.as_object().unwrap().len(), 2, "{m}");
}

#[test]
fn regression_show_refuses_unknown_columns_and_compares_like_with_like() {
    let (ws, _side) = sweep_ws();
    let r = ws.run(&["exp", "run", "-S", "train.lr=0.1,0.2"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let r = ws.run(&["exp", "show", "--filter", "train.scor<1"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("`train.score`"), "{}", r.stderr);
    // `<` compares numbers: a text value is refused.
    let r = ws.run(&["exp", "show", "--json", "--filter", "train.score<abc"]);
    assert_eq!(r.code, 2, "{}", r.stdout);
    // A text value matches no number.
    let r = ws.run(&["exp", "show", "--json", "--filter", "train.score=abc"]);
    assert_eq!(r.stdout.trim(), "[]", "{}", r.stdout);
    let r = ws.run(&[
        "exp",
        "show",
        "--json",
        "--filter",
        "status=done",
        "--filter",
        "train.score>=1.5",
    ]);
    let rows: Vec<Value> = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(rows.len(), 1, "{rows:?}");
}

#[test]
fn the_sweep_example_prepares_the_data_once_and_cross_validates_each_configuration() {
    let ws = common::example("sweep");
    let r = ws.run(&[
        "exp",
        "run",
        "--json",
        "-S",
        "sgd.learning_rate=0.01,0.1",
        "-S",
        "sgd.epochs=100,1000",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let records: Vec<Value> = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(records.len(), 4);
    // The stages every configuration shares were computed by one of them;
    // the others restored them.
    for stage in ["data", "clean", "split", "fold@0", "fold@4"] {
        let ran = records
            .iter()
            .filter(|rec| {
                rec["stages"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|s| s["stage"] == stage && s["outcome"] == "ran")
            })
            .count();
        assert_eq!(ran, 1, "{stage} computed {ran} times");
    }
    for rec in &records {
        let m = &rec["metrics"];
        assert_eq!(m["cv.count"], 5, "{m}");
        assert!(m["cv.mean.rmse"].as_f64().unwrap() > 0.0, "{m}");
        assert!(m["cv.std.rmse"].as_f64().unwrap() > 0.0, "{m}");
        assert!(m["eval.r2"].as_f64().is_some(), "{m}");
    }
}

#[test]
fn step_wise_metrics_a_command_appends_land_in_the_record() {
    let ws = one_stage(
        "  lr: 0.1",
        r#"'for i in 1 2 3; do echo "{\"step\": $i, \"loss\": $i}" >> "$MLCYCLE_STEP_METRICS"; done; echo not-json >> "$MLCYCLE_STEP_METRICS"; mkdir -p out && echo ${params.lr} > out/o.txt'"#,
        "",
    );
    let r = ws.run(&["exp", "run", "-n", "t", "-S", "lr=0.2"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let r = ws.run(&["exp", "steps", "t", "--json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let steps: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(
        steps,
        serde_json::json!({"s": [
            {"step": 1, "loss": 1}, {"step": 2, "loss": 2}, {"step": 3, "loss": 3}
        ]})
    );
    let r = ws.run(&["exp", "steps", "t", "--csv"]);
    assert_eq!(r.stdout, "Stage,step,loss\ns,1,1\ns,2,2\ns,3,3\n");
    let r = ws.run(&["exp", "steps", "t", "--stage", "nope"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("stages with steps: s"), "{}", r.stderr);
}

fn git(ws: &Ws, args: &[&str]) {
    let ok = std::process::Command::new("git")
        .current_dir(ws.path())
        .args(args)
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@example.invalid")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@example.invalid")
        .status()
        .expect("git runs")
        .success();
    assert!(ok, "git {args:?}");
}

#[test]
fn metrics_show_and_diff_against_the_committed_lock_and_an_experiment() {
    let (ws, _side) = sweep_ws();
    let r = ws.run(&["run"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let r = ws.run(&["metrics", "show", "--json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let m: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(m, serde_json::json!({"train.score": 1}));
    git(&ws, &["init", "-q"]);
    git(&ws, &["add", "-A"]);
    git(&ws, &["commit", "-q", "-m", "baseline"]);
    let r = ws.run(&["exp", "run", "-n", "big", "-S", "train.lr=0.5"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    // The experiment and the workspace agree: nothing to show.
    let r = ws.run(&["metrics", "diff", "--exp", "big", "--csv"]);
    assert_eq!(
        r.stdout,
        "Kind,Key,big,workspace,Change\nmetric,train.score,5,1,-4\n"
    );
    let r = ws.run(&["exp", "apply", "big"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    // Against the commit: the score went from 1 to 5.
    let r = ws.run(&["metrics", "diff", "--csv"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        r.stdout,
        "Kind,Key,HEAD,workspace,Change\nmetric,train.score,1,5,+4\n"
    );
    let r = ws.run(&["metrics", "diff", "--exp", "big"]);
    assert!(r.stdout.contains("have the same metrics"), "{}", r.stdout);
    let r = ws.run(&["metrics", "diff", "nope"]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("no mlcycle.lock at `nope`"),
        "{}",
        r.stderr
    );
}

#[test]
fn exp_plot_overlays_a_step_wise_metric_of_several_experiments() {
    let ws = one_stage(
        "  lr: 1",
        r#"'for i in 1 2 3; do echo "{\"step\": $i, \"loss\": $(( ${params.lr} * i ))}" >> "$MLCYCLE_STEP_METRICS"; done; mkdir -p out && echo ${params.lr} > out/o.txt'"#,
        "",
    );
    let r = ws.run(&["exp", "run", "-n", "p", "-S", "lr=2,3"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let r = ws.run(&[
        "exp", "plot", "p-1", "p-2", "--metric", "loss", "-o", "charts",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let svg = ws.read("charts/loss.svg");
    assert!(
        svg.contains("p-1") && svg.contains("p-2"),
        "a legend entry per experiment"
    );
    assert!(ws.exists("charts/loss.png"));
    let r = ws.run(&["exp", "plot", "p-1", "--metric", "acc"]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("logged no step-wise `acc`"),
        "{}",
        r.stderr
    );
}

#[test]
fn regression_step_lines_keep_what_json_cannot_hold_out_and_shared_stages_share_them() {
    // `prep` is shared by both configurations and logs a diverged loss the
    // way Python writes it; `train` logs a key with a comma and a bar.
    let ws = Ws::new(
        r#"params:
  lr: 1
stages:
  prep:
    run: 'printf "%s\n" "{\"step\": 1, \"loss\": NaN, \"ok\": 2}" "{\"step\": 2, \"loss\": 1e400}" "oops" >> "$MLCYCLE_STEP_METRICS"; mkdir -p out && echo d > out/d.txt'
    outs: [out/d.txt]
  train:
    deps: [out/d.txt]
    run: 'echo "{\"step\": 1, \"a,b\": \"c|d\"}" >> "$MLCYCLE_STEP_METRICS"; echo ${params.lr} > out/m.txt'
    outs: [out/m.txt]
"#,
    );
    let r = ws.run(&["exp", "run", "-n", "s", "-S", "lr=1,2"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("left out 1 line(s) that are not JSON objects"),
        "{}",
        r.stderr
    );
    for name in ["s-1", "s-2"] {
        let r = ws.run(&["exp", "steps", name, "--stage", "prep", "--json"]);
        assert_eq!(r.code, 0, "{name}: {}", r.stderr);
        let v: Value = serde_json::from_str(&r.stdout).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"prep": [{"step": 1, "ok": 2}, {"step": 2}]}),
            "{name}"
        );
    }
    let r = ws.run(&["exp", "steps", "s-1", "--stage", "train", "--csv"]);
    assert_eq!(r.stdout, "Stage,step,\"a,b\"\ntrain,1,c|d\n");
    let r = ws.run(&["exp", "steps", "s-1", "--stage", "train", "--md"]);
    assert!(r.stdout.contains("| train | 1 | c\\|d |"), "{}", r.stdout);
}

#[test]
fn regression_show_rejects_what_it_cannot_honour_and_keeps_float_types_visible() {
    let (ws, _side) = sweep_ws();
    let r = ws.run(&["exp", "run", "-n", "f", "-S", "train.epochs=10,10.0"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let r = ws.run(&[
        "exp",
        "show",
        "--only-changed",
        "--columns",
        "train.epochs",
        "--csv",
    ]);
    assert!(
        r.stdout.contains(",10\n") && r.stdout.contains(",10.0\n"),
        "{}",
        r.stdout
    );
    let r = ws.run(&["exp", "show", "--columns", "train.epochz"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    for f in ["train.lr==0.1", "train.lr>abc", "train.lr<"] {
        let r = ws.run(&["exp", "show", "--filter", f]);
        assert_eq!(r.code, 2, "{f}: {}", r.stderr);
    }
    let r = ws.run(&["exp", "rename", "f-1", "f-1"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    let r = ws.run(&["exp", "run", "--random", "0", "-S", "train.lr=0..1"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
}

#[test]
fn plots_diff_overlays_a_series_across_a_commit_an_experiment_and_the_workspace() {
    let ws = one_stage(
        "  lr: 1",
        r#"'mkdir -p out && printf "step,loss,tag\n1,$(( ${params.lr} * 4 )),a\n2,$(( ${params.lr} * 2 )),b\n" > out/loss.csv && echo ${params.lr} > out/o.txt'"#,
        "",
    );
    let yaml = ws.read("mlcycle.yaml").replace(
        "outs: [out/o.txt]",
        "outs: [out/o.txt, {out/loss.csv: {plots: true}}]",
    );
    ws.write("mlcycle.yaml", &yaml);
    assert_eq!(ws.run(&["run"]).code, 0);
    git(&ws, &["init", "-q"]);
    git(&ws, &["add", "-A"]);
    git(&ws, &["commit", "-q", "-m", "baseline"]);
    let r = ws.run(&["exp", "run", "-n", "big", "-S", "lr=3"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let r = ws.run(&["plots", "diff", "HEAD", "big", "-o", "charts"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stderr.contains("(1 chart(s))"),
        "one chart: loss by step (tag is text): {}",
        r.stderr
    );
    let html = ws.read("charts/index.html");
    assert!(html.contains("HEAD vs big vs workspace"), "{html}");
    let svg = ws.read("charts/out_loss_csv-loss.svg");
    for label in ["HEAD", "big", "workspace"] {
        assert!(svg.contains(label), "{label} in the legend");
    }
    let r = ws.run(&["plots", "diff", "nope"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
}

#[test]
fn validate_catches_a_fold_the_split_does_not_make() {
    let ws = common::example("sweep");
    let yaml = ws.read("mlcycle.yaml");
    ws.write("mlcycle.yaml", &yaml.replace("folds: 5,", "folds: 4,"));
    let r = ws.run(&["validate"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("makes 4 folds"), "{}", r.stderr);
    assert!(r.stderr.contains("fold@4"), "{}", r.stderr);
    ws.write("mlcycle.yaml", &yaml.replace("folds: 5,", "folds: 0,"));
    let r = ws.run(&["validate"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("no folds"), "{}", r.stderr);
}

#[test]
fn exp_steps_stage_selects_the_instances_of_a_matrix_stage() {
    let ws = Ws::new(
        r#"params:
  lr: 1
stages:
  t:
    matrix: {m: [a, b]}
    run: 'echo "{\"step\": 1, \"m\": 1}" >> "$MLCYCLE_STEP_METRICS"; mkdir -p out && echo ${params.lr} > out/${item.m}.txt'
    outs: ["out/${item.m}.txt"]
"#,
    );
    let r = ws.run(&["exp", "run", "-n", "x", "-S", "lr=2"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let r = ws.run(&["exp", "steps", "x", "--stage", "t", "--csv"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout, "Stage,step,m\nt@a,1,1\nt@b,1,1\n");
}
