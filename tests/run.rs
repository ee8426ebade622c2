//! End-to-end runs on temp workspaces: incremental reruns, reasons, the
//! run-cache, early cutoff, failures, targets.

mod common;

use common::Ws;

const CHAIN: &str = r#"
name: t
params:
  scale: 2
  train: {lr: 0.01, epochs: 3}
stages:
  prepare:
    run: awk '{ print $1 * ${params.scale} }' data/in.txt > ${outputs.scaled}
    deps: [data/in.txt]
    outs: [out/scaled.txt]
  left:
    run: wc -l < ${inputs.scaled} > ${outputs.left}
    deps: [prepare.scaled]
    outs: [out/left.txt]
  right:
    run: sort -n ${inputs.scaled} | tail -n 1 > ${outputs.right}
    deps: [prepare.scaled]
    outs: [out/right.txt]
  train:
    run: echo "lr=${params.train.lr} $(cat out/left.txt) $(cat out/right.txt)" > ${outputs.model}
    deps: [left.left, right.right]
    outs: [out/model.txt]
  report:
    run: cat ${inputs.model} > ${outputs.report}
    deps: [train.model]
    outs: [out/report.txt]
"#;

fn chain() -> Ws {
    let ws = Ws::new(CHAIN);
    ws.write("data/in.txt", "1\n2\n3\n");
    ws
}

#[test]
fn first_run_runs_everything_second_run_nothing() {
    let ws = chain();
    let r = ws.run(&["run"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    for s in ["prepare", "left", "right", "train", "report"] {
        assert_eq!(r.outcome(s).as_deref(), Some("ran"), "{s}: {}", r.stdout);
    }
    assert!(r.stdout.contains("first run"));
    assert_eq!(ws.read("out/report.txt"), "lr=0.01 3 6\n");
    let r = ws.run(&["run"]);
    assert_eq!(r.code, 0);
    assert!(r.stdout.contains("5 fresh"), "{}", r.stdout);
    let s = ws.run(&["status"]);
    assert_eq!(s.code, 0, "{}", s.stdout);
    assert!(s.stdout.contains("all 5 stages fresh"));
    assert!(ws.exists("mlcycle.lock"));
}

#[test]
fn param_override_reruns_only_its_readers_and_what_follows() {
    let ws = chain();
    ws.run(&["run"]);
    let r = ws.run(&["run", "-p", "train.lr=0.1"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert_eq!(r.outcome("train").as_deref(), Some("ran"));
    assert_eq!(r.outcome("report").as_deref(), Some("ran"));
    assert!(
        r.stdout.contains("param `train.lr` changed: 0.01 -> 0.1"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("3 fresh"), "{}", r.stdout);
    assert_eq!(ws.read("out/report.txt"), "lr=0.1 3 6\n");
}

#[test]
fn reverting_a_param_restores_outputs_from_the_run_cache() {
    let ws = chain();
    ws.run(&["run"]);
    ws.run(&["run", "-p", "train.lr=0.1"]);
    let st = ws.run(&["status"]);
    assert_eq!(st.code, 1);
    assert!(st.stdout.contains("restorable"), "{}", st.stdout);
    let r = ws.run(&["run"]);
    assert_eq!(
        r.outcome("train").as_deref(),
        Some("restored"),
        "{}",
        r.stdout
    );
    assert_eq!(ws.read("out/report.txt"), "lr=0.01 3 6\n");
}

#[test]
fn identical_output_leaves_dependents_fresh() {
    let ws = chain();
    ws.run(&["run"]);
    // Same line count and the same maximum after scaling: `left` and
    // `right` rerun but write identical bytes.
    ws.write("data/in.txt", "2\n1\n3\n");
    let r = ws.run(&["run", "-v"]);
    assert_eq!(r.outcome("prepare").as_deref(), Some("ran"), "{}", r.stdout);
    assert_eq!(r.outcome("left").as_deref(), Some("ran"));
    assert_eq!(r.outcome("train").as_deref(), Some("fresh"), "{}", r.stdout);
    assert_eq!(r.outcome("report").as_deref(), Some("fresh"));
    assert!(r.stdout.contains("file `data/in.txt` changed"));
}

#[test]
fn status_lists_reasons_and_exits_one_when_stale() {
    let ws = chain();
    let st = ws.run(&["status", "--json"]);
    assert_eq!(st.code, 1);
    let v: serde_json::Value = serde_json::from_str(&st.stdout).unwrap();
    assert_eq!(v["up_to_date"], false);
    assert_eq!(v["stages"][0]["reasons"][0]["reason"], "first_run");
    ws.run(&["run"]);
    ws.write("data/in.txt", "5\n");
    let st = ws.run(&["status"]);
    assert_eq!(st.code, 1);
    assert!(
        st.stdout.contains("file `data/in.txt` changed"),
        "{}",
        st.stdout
    );
    assert!(
        st.stdout.contains("upstream `prepare` is out of date"),
        "{}",
        st.stdout
    );
}

#[test]
fn modified_or_missing_outputs_are_restored() {
    let ws = chain();
    ws.run(&["run"]);
    ws.write("out/report.txt", "tampered\n");
    std::fs::remove_file(ws.path().join("out/left.txt")).unwrap();
    let st = ws.run(&["status"]);
    assert!(
        st.stdout.contains("output `out/report.txt` modified"),
        "{}",
        st.stdout
    );
    assert!(
        st.stdout.contains("output `out/left.txt` missing"),
        "{}",
        st.stdout
    );
    let r = ws.run(&["run"]);
    assert_eq!(
        r.outcome("report").as_deref(),
        Some("restored"),
        "{}",
        r.stdout
    );
    assert_eq!(r.outcome("left").as_deref(), Some("restored"));
    assert_eq!(ws.read("out/report.txt"), "lr=0.01 3 6\n");
}

#[test]
fn targets_select_what_they_need_and_downstream_adds_dependents() {
    let ws = chain();
    let r = ws.run(&["run", "left"]);
    assert_eq!(r.code, 0);
    assert_eq!(r.outcome("prepare").as_deref(), Some("ran"));
    assert_eq!(r.outcome("left").as_deref(), Some("ran"));
    assert_eq!(r.outcome("right"), None);
    let r = ws.run(&["run", "right", "--downstream"]);
    assert_eq!(r.outcome("right").as_deref(), Some("ran"), "{}", r.stdout);
    assert_eq!(r.outcome("report").as_deref(), Some("ran"));
    let r = ws.run(&["run", "trian"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("did you mean `train`?"), "{}", r.stderr);
}

#[test]
fn force_reruns_fresh_stages() {
    let ws = chain();
    ws.run(&["run"]);
    let r = ws.run(&["run", "--force", "left"]);
    assert_eq!(r.outcome("left").as_deref(), Some("ran"));
    assert!(r.stdout.contains("forced"));
}

#[test]
fn a_failed_stage_fails_the_run_and_skips_its_dependents() {
    let ws = Ws::new(
        r#"
stages:
  bad:
    run: echo "something broke" >&2; exit 3
    outs: [out/bad.txt]
  after:
    run: cp out/bad.txt out/after.txt
    deps: [bad.bad]
    outs: [out/after.txt]
  other:
    run: sleep 0.3; echo ok > out/other.txt
    outs: [out/other.txt]
"#,
    );
    let r = ws.run(&["run", "-j", "1"]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr
            .contains("stage `bad` failed: command exited with code 3"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("| something broke"), "{}", r.stderr);
    assert!(
        r.stderr.contains("full log: .mlcycle/runs/"),
        "{}",
        r.stderr
    );
    assert_eq!(r.outcome("after").as_deref(), Some("skipped"));
    assert!(r.stdout.contains("upstream `bad` failed"));
    // Without --keep-going the independent stage is not started after the failure.
    assert_eq!(
        r.outcome("other").as_deref(),
        Some("skipped"),
        "{}",
        r.stdout
    );

    let r = ws.run(&["run", "-j", "1", "--keep-going"]);
    assert_eq!(r.code, 1);
    assert_eq!(r.outcome("other").as_deref(), Some("ran"), "{}", r.stdout);
    assert_eq!(r.outcome("after").as_deref(), Some("skipped"));
}

#[test]
fn a_stage_that_does_not_write_its_output_fails() {
    let ws = Ws::new("stages:\n  lazy:\n    run: 'true'\n    outs: [out/x.txt]\n");
    let r = ws.run(&["run"]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr
            .contains("did not write its declared output `out/x.txt`"),
        "{}",
        r.stderr
    );
    // And it is not recorded as fresh.
    assert_eq!(ws.run(&["status"]).code, 1);
}

#[test]
fn argv_form_env_and_interpolation() {
    let ws = Ws::new(
        r#"
params:
  greeting: "hello world; rm -rf /"
stages:
  a:
    run: echo ${params.greeting} > ${outputs.msg}
    outs: [out dir/msg.txt]
  b:
    run: [sh, -c, 'printf "%s|%s|%s" "$GREETING" "$1" "$MLCYCLE_STAGE" > "$MLCYCLE_OUT_B"', x, '${inputs.msg}']
    deps: [a.msg]
    outs: [out/b.txt]
    env:
      GREETING: ${params.greeting}
"#,
    );
    let r = ws.run(&["run"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    // The shell string got the param quoted: one argument, nothing executed.
    assert_eq!(ws.read("out dir/msg.txt"), "hello world; rm -rf /\n");
    assert_eq!(
        ws.read("out/b.txt"),
        "hello world; rm -rf /|out dir/msg.txt|b"
    );
}

#[test]
fn builtin_stages_run_in_process() {
    let ws = Ws::new(
        r#"
stages:
  raw:
    uses: util.import
    with: {path: data/words.txt}
  count:
    uses: util.wc
    inputs: {data: raw.data}
    with: {skip_header: true}
"#,
    );
    ws.write("data/words.txt", "header\na b c\nd e\n");
    let r = ws.run(&["run"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let m: serde_json::Value =
        serde_json::from_str(&ws.read("artifacts/count/metrics.json")).unwrap();
    assert_eq!(m["lines"], 2);
    assert_eq!(m["words"], 5);
    ws.write("data/words.txt", "header\na b c\nd e f\n");
    let r = ws.run(&["run"]);
    assert!(
        r.stdout.contains("file `data/words.txt` changed"),
        "{}",
        r.stdout
    );
    assert_eq!(r.outcome("count").as_deref(), Some("ran"));
}

#[test]
fn runs_are_recorded_in_history() {
    let ws = chain();
    ws.run(&["run"]);
    ws.run(&["run", "-p", "train.lr=0.5"]);
    let r = ws.run(&["runs"]);
    assert_eq!(r.code, 0);
    assert!(r.stdout.lines().count() >= 3, "{}", r.stdout);
    let r = ws.run(&["runs", "show", "2"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout.contains("param `train.lr` changed: 0.01 -> 0.5"),
        "{}",
        r.stdout
    );
    let r = ws.run(&["runs", "show", "99"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("no run 99"));
}

#[test]
fn gc_removes_only_unreferenced_objects() {
    let ws = chain();
    ws.run(&["run"]);
    ws.run(&["run", "-p", "train.lr=0.7"]);
    // Plant an orphan object.
    let orphan = ws.path().join(".mlcycle/cache/objects/00/orphan");
    std::fs::create_dir_all(orphan.parent().unwrap()).unwrap();
    std::fs::write(&orphan, "x").unwrap();
    let r = ws.run(&["gc"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout.contains("removed 1 unreferenced objects"),
        "{}",
        r.stdout
    );
    // The run-cache still restores the old result.
    let r = ws.run(&["run"]);
    assert_eq!(
        r.outcome("train").as_deref(),
        Some("restored"),
        "{}",
        r.stdout
    );
    // --workspace-only drops what the lock does not use.
    let r = ws.run(&["gc", "--workspace-only"]);
    assert!(r.stdout.contains("run-cache entries"), "{}", r.stdout);
    let r = ws.run(&["run", "-p", "train.lr=0.7"]);
    assert_eq!(r.outcome("train").as_deref(), Some("ran"), "{}", r.stdout);
}

#[test]
fn editing_a_restored_output_never_reaches_the_cache() {
    let ws = chain();
    ws.run(&["run"]);
    std::fs::remove_file(ws.path().join("out/report.txt")).unwrap();
    ws.run(&["run"]);
    ws.write("out/report.txt", "edited\n");
    std::fs::remove_file(ws.path().join("out/report.txt")).unwrap();
    let r = ws.run(&["run"]);
    assert_eq!(r.outcome("report").as_deref(), Some("restored"));
    assert_eq!(ws.read("out/report.txt"), "lr=0.01 3 6\n");
}

#[test]
fn directory_outputs_are_cached_whole() {
    let ws = Ws::new(
        r#"
stages:
  split:
    run: mkdir -p out/parts && echo a > out/parts/a.txt && echo b > out/parts/b.txt
    outs: [out/parts]
  join:
    run: cat out/parts/a.txt out/parts/b.txt > out/joined.txt
    deps: [out/parts/a.txt]
    outs: [out/joined.txt]
"#,
    );
    let r = ws.run(&["run"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    std::fs::remove_dir_all(ws.path().join("out/parts")).unwrap();
    let r = ws.run(&["run", "-v"]);
    assert_eq!(
        r.outcome("split").as_deref(),
        Some("restored"),
        "{}",
        r.stdout
    );
    assert_eq!(r.outcome("join").as_deref(), Some("fresh"));
    assert_eq!(ws.read("out/parts/b.txt"), "b\n");
}

#[test]
fn params_file_is_merged_under_inline_params() {
    let ws = Ws::new(
        r#"
params_file: params.yaml
params:
  train: {epochs: 2}
stages:
  t:
    run: echo "${params.train.lr} ${params.train.epochs}" > ${outputs.t}
    outs: [out/t.txt]
"#,
    );
    ws.write("params.yaml", "train:\n  lr: 0.5\n  epochs: 9\n");
    let r = ws.run(&["run"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(ws.read("out/t.txt"), "0.5 2\n");
    ws.write("params.yaml", "train:\n  lr: 0.25\n  epochs: 9\n");
    let r = ws.run(&["run"]);
    assert!(
        r.stdout.contains("param `train.lr` changed: 0.5 -> 0.25"),
        "{}",
        r.stdout
    );
    ws.write("params.yaml", "train: [oops\n");
    let r = ws.run(&["validate"]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("params file `params.yaml`"),
        "{}",
        r.stderr
    );
}

#[test]
fn json_summary_for_scripts_and_quiet_prints_nothing() {
    let ws = chain();
    let r = ws.run(&["run", "--json"]);
    assert_eq!(r.code, 0);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["stages"].as_array().unwrap().len(), 5);
    assert_eq!(v["stages"][0]["outcome"], "ran");
    assert_eq!(v["stages"][0]["reasons"][0]["reason"], "first_run");
    let r = ws.run(&["run", "-q"]);
    assert_eq!(r.code, 0);
    assert_eq!(r.stdout, "");
    assert_eq!(r.stderr, "");
}

#[test]
fn a_missing_program_is_a_clear_stage_failure() {
    let ws = Ws::new("stages:\n  a:\n    run: [no-such-program-xyz, --flag]\n    outs: [a.txt]\n");
    let r = ws.run(&["run"]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains("cannot start `no-such-program-xyz`"),
        "{}",
        r.stderr
    );
}

#[test]
fn regression_a_stage_may_share_its_name_with_a_folder() {
    let ws = Ws::new("stages:\n  data:\n    run: cat data/in.txt > out.txt\n    deps: [data/in.txt]\n    outs: [out.txt]\n");
    ws.write("data/in.txt", "x\n");
    let r = ws.run(&["run", "data"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.outcome("data").as_deref(), Some("ran"));
    // And `-C DIR` applies to a pipeline file given as the first argument.
    let parent = ws.path().parent().unwrap();
    let name = ws.path().file_name().unwrap().to_str().unwrap();
    let r = common::Ws::run_in(parent, &["-C", name, "status", "mlcycle.yaml"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
}

#[test]
fn regression_restored_files_keep_their_executable_bit() {
    use std::os::unix::fs::PermissionsExt;
    let ws = Ws::new("stages:\n  tool:\n    run: printf '#!/bin/sh\\necho hi\\n' > bin/tool.sh && chmod +x bin/tool.sh\n    outs: [bin/tool.sh]\n");
    ws.run(&["run"]);
    std::fs::remove_file(ws.path().join("bin/tool.sh")).unwrap();
    let r = ws.run(&["run"]);
    assert_eq!(
        r.outcome("tool").as_deref(),
        Some("restored"),
        "{}",
        r.stdout
    );
    let mode = std::fs::metadata(ws.path().join("bin/tool.sh"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o111, 0o111, "mode {mode:o}");
}

#[test]
fn regression_a_failed_stage_says_so_and_keeps_its_old_reasons() {
    let ws = Ws::new("params: {n: 1}\nstages:\n  s:\n    run: test ${params.n} -lt 5 && echo ${params.n} > s.txt\n    outs: [s.txt]\n");
    ws.run(&["run"]);
    let r = ws.run(&["run", "-p", "n=7"]);
    assert_eq!(r.code, 1);
    let st = ws.run(&["status", "-p", "n=7"]);
    assert!(
        st.stdout.contains("its last run did not finish"),
        "{}",
        st.stdout
    );
    assert!(
        st.stdout.contains("param `n` changed: 1 -> 7"),
        "{}",
        st.stdout
    );
    // Back at the old value, the old result is restored, not trusted as is.
    let r = ws.run(&["run"]);
    assert_eq!(r.outcome("s").as_deref(), Some("restored"), "{}", r.stdout);
}

#[test]
fn regression_renaming_a_dep_reruns_the_stage() {
    // The command sees the dep under its name (here through `env`).
    let ws = Ws::new("stages:\n  s:\n    run: env | grep ^MLCYCLE_IN_ > s.txt\n    deps: [{labels: in.txt}]\n    outs: [s.txt]\n");
    ws.write("in.txt", "x\n");
    assert_eq!(ws.run(&["run"]).code, 0);
    ws.write(
        "mlcycle.yaml",
        &std::fs::read_to_string(ws.path().join("mlcycle.yaml"))
            .unwrap()
            .replace("{labels: in.txt}", "{lbl: in.txt}"),
    );
    let st = ws.run(&["status"]);
    assert_eq!(st.code, 1, "{}", st.stdout);
    assert!(
        st.stdout.contains("dep \"in.txt\" is now named `lbl`"),
        "{}",
        st.stdout
    );
}

#[test]
fn regression_force_applies_to_the_named_stages_only() {
    let ws = chain();
    ws.run(&["run"]);
    let r = ws.run(&["run", "-v", "--force", "train"]);
    assert_eq!(r.outcome("train").as_deref(), Some("ran"), "{}", r.stdout);
    assert_eq!(
        r.outcome("prepare").as_deref(),
        Some("fresh"),
        "{}",
        r.stdout
    );
}

#[test]
fn regression_dag_renders_the_selected_stages() {
    let ws = chain();
    let r = ws.run(&["dag", "--format", "text", "left"]);
    assert_eq!(r.code, 0);
    assert_eq!(
        r.stdout,
        "prepare (command) <- data/in.txt\nleft (command) <- prepare.scaled\n"
    );
}

#[test]
fn regression_runs_show_before_any_run_is_an_error() {
    let ws = chain();
    let r = ws.run(&["runs", "show", "5"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("no run 5"), "{}", r.stderr);
}

#[test]
fn regression_a_command_line_over_128_kib_still_runs() {
    // Linux refuses a single argument over 128 KiB (E2BIG): a gather stage
    // over thousands of files reaches that.
    let long = format!("echo ok > o.txt # {}", "x".repeat(140_000));
    let ws = Ws::new(&format!(
        "stages:\n  gather:\n    run: '{long}'\n    outs: [o.txt]\n"
    ));
    let r = ws.run(&["run"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(ws.read("o.txt"), "ok\n");
}

#[test]
fn cache_dir_puts_the_cache_elsewhere() {
    let shared = tempfile::tempdir().unwrap();
    let ws = Ws::new(&format!(
        "cache_dir: {}\nstages:\n  a:\n    run: echo hi > ${{outputs.o}}\n    outs: [{{o: out/a.txt}}]\n",
        shared.path().join("cache").display()
    ));
    let r = ws.run(&["run"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let objects = shared.path().join("cache").join("objects");
    assert!(objects.is_dir(), "no objects in the cache_dir");
    assert!(
        !ws.exists(".mlcycle/cache/objects"),
        "objects went to .mlcycle/cache"
    );
    // A deleted output comes back from the cache in cache_dir.
    std::fs::remove_file(ws.path().join("out/a.txt")).unwrap();
    let r = ws.run(&["run", "-v"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(ws.read("out/a.txt"), "hi\n");
}

/// A stage whose first run failed leaves what its command wrote in its
/// output folder; another stage reading a file there must not make the
/// next run refuse to start ("a source file inside an output folder"):
/// the file is the failed stage's own.
#[test]
fn regression_a_failed_first_run_does_not_block_the_next() {
    let ws = Ws::new(
        r#"stages:
  s0:
    run: mkdir -p res/s0 && echo x > res/s0/all.txt && test -f ok
    outs: ['res/s0/']
  s1:
    run: cat res/s0/all.txt > res/s1.txt
    deps: ['res/s0/', './res/s0/all.txt']
    outs: ['res/s1.txt']
"#,
    );
    let r = ws.run(&["run"]);
    assert_ne!(r.code, 0);
    assert_eq!(r.outcome("s0").as_deref(), Some("failed"), "{}", r.stdout);
    let r = ws.run(&["run"]);
    assert!(!r.stderr.contains("inside output folders"), "{}", r.stderr);
    assert_eq!(
        r.outcome("s0").as_deref(),
        Some("failed"),
        "{}{}",
        r.stdout,
        r.stderr
    );
    ws.write("ok", "");
    let r = ws.run(&["run"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert_eq!(ws.read("res/s1.txt"), "x\n");
}

/// A stage held back for CPUs when another failed is skipped because the
/// run stopped after a failure, not "interrupted": nothing was. (The held
/// stage was reported as interrupted.)
#[test]
fn stages_held_for_cpus_are_not_called_interrupted_after_a_failure() {
    let ws = Ws::new(
        r#"
stages:
  tr: {uses: dataset.csv, with: {path: tr.csv, target: y}}
  te: {uses: dataset.csv, with: {path: te.csv, target: y}}
  m: {uses: train.mlp, inputs: {train: tr.data}, with: {epochs: 20}}
  g: {uses: train.gradient_boosting, inputs: {train: tr.data}, with: {max_iter: 20}}
  ev: {uses: evaluate.classification, inputs: {model: m.model, test: te.data}}
"#,
    );
    let mut tr = String::from("a,b,y\n");
    for i in 0..40 {
        tr.push_str(&format!(
            "{i},{},{}\n",
            i % 7,
            if i % 3 == 0 { "yes" } else { "no" }
        ));
    }
    ws.write("tr.csv", &tr);
    ws.write("te.csv", "a,b,y\n1,2\n");
    let r = ws.run(&["run"]);
    assert_ne!(r.code, 0);
    assert_eq!(r.outcome("te").as_deref(), Some("failed"), "{}", r.stdout);
    assert!(!r.stdout.contains("run interrupted"), "{}", r.stdout);
}
