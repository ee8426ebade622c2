//! One CLI convention: every command finds the workspace the same way
//! (`-C`, a first argument, or upward from the current folder), and the
//! small commands a new user reaches for (`init`, `completions`, `show`
//! with no argument) exist.

mod common;

use common::Ws;

const PIPELINE: &str = r#"
stages:
  data:
    uses: dataset.synthetic
    with: {kind: house_prices, rows: 50}
  split:
    uses: preprocess.split
    inputs: {data: data.data}
  ols:
    uses: train.linear_regression
    inputs: {train: split.train}
  bundle:
    uses: deploy.bundle
    inputs: {model: ols.model}
"#;

#[test]
fn every_command_takes_the_workspace_as_its_first_argument() {
    let ws = Ws::new(PIPELINE);
    let parent = ws.path().parent().unwrap();
    let name = ws.path().file_name().unwrap().to_str().unwrap();
    let r = Ws::run_in(parent, &["run", name]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    for args in [
        vec!["status", name],
        vec!["validate", name],
        vec!["dag", name],
        vec!["runs", name],
        vec!["runs", name, "show", "1"],
        vec!["show", name],
        vec!["show", name, "data.data"],
        vec!["models", name],
        vec!["history", name],
        vec!["gc", name, "--dry-run"],
    ] {
        let r = Ws::run_in(parent, &args);
        assert_eq!(
            r.code,
            0,
            "mlcycle {}: {}{}",
            args.join(" "),
            r.stdout,
            r.stderr
        );
        // `-C` says the same thing.
        let mut with_c = vec!["-C", name, args[0]];
        with_c.extend(&args[2..]);
        let c = Ws::run_in(parent, &with_c);
        assert_eq!(c.code, 0, "mlcycle {}: {}", with_c.join(" "), c.stderr);
    }
    let r = Ws::run_in(parent, &["runs", name]);
    assert!(r.stdout.contains("succeeded"), "{}", r.stdout);
}

#[test]
fn the_workspace_is_found_from_a_subfolder() {
    let ws = Ws::new(PIPELINE);
    let deep = ws.path().join("notes/2026");
    std::fs::create_dir_all(&deep).unwrap();
    let r = Ws::run_in(&deep, &["run", "split"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    // Outputs land in the workspace, not in the subfolder.
    assert!(ws.exists("artifacts/split/train.arrow"));
    assert!(!deep.join("artifacts").exists());
    let r = Ws::run_in(&deep, &["status", "split"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let r = Ws::run_in(&deep, &["runs"]);
    assert!(r.stdout.contains("succeeded"), "{}", r.stdout);
}

#[test]
fn outside_any_workspace_the_error_says_where_it_looked_and_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let r = Ws::run_in(dir.path(), &["status"]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr
            .contains("no mlcycle.yaml in the current folder or any folder above it"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("mlcycle init"), "{}", r.stderr);
    let r = Ws::run_in(dir.path(), &["runs", "nowhere/ws"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("is not a workspace"), "{}", r.stderr);
}

#[test]
fn init_writes_a_pipeline_that_runs_and_refuses_to_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    let r = Ws::run_in(dir.path(), &["init", "proj"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("mlcycle run proj"), "{}", r.stdout);
    let text = std::fs::read_to_string(dir.path().join("proj/mlcycle.yaml")).unwrap();
    assert!(text.contains("name: proj"), "{text}");
    let r = Ws::run_in(&dir.path().join("proj"), &["run"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert_eq!(r.outcome("rows").as_deref(), Some("ran"), "{}", r.stdout);
    let r = Ws::run_in(dir.path(), &["init", "proj"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("already exists"), "{}", r.stderr);
    assert!(r.stderr.contains("--force"), "{}", r.stderr);
    let r = Ws::run_in(dir.path(), &["init", "proj", "--force"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
}

#[test]
fn completions_are_printed_for_each_shell() {
    let dir = tempfile::tempdir().unwrap();
    for (shell, marker) in [
        ("bash", "_mlcycle()"),
        ("zsh", "#compdef mlcycle"),
        ("fish", "complete -c mlcycle"),
    ] {
        let r = Ws::run_in(dir.path(), &["completions", shell]);
        assert_eq!(r.code, 0, "{}", r.stderr);
        assert!(
            r.stdout.contains(marker),
            "{shell}: {}",
            &r.stdout[..200.min(r.stdout.len())]
        );
        assert!(r.stdout.contains("status"), "{shell}");
        // `exec` is what Slurm jobs run; it is hidden from --help and from completions.
        let offers_exec = r
            .stdout
            .lines()
            .any(|l| l.replace("executor", "").contains("exec"));
        assert!(!offers_exec, "{shell} offers the hidden `exec`");
    }
}

#[test]
fn show_without_an_artifact_lists_every_output() {
    let ws = Ws::new(PIPELINE);
    let r = ws.run(&["run", "data"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let r = ws.run(&["show"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let line = |a: &str| {
        r.stdout
            .lines()
            .find(|l| l.starts_with(a))
            .unwrap_or_else(|| panic!("no {a} in {}", r.stdout))
            .to_string()
    };
    assert!(line("data.data ").ends_with("present"), "{}", r.stdout);
    assert!(line("ols.model ").ends_with("missing"), "{}", r.stdout);
    assert!(line("split.test ").contains("artifacts/split/test.arrow"));
}

#[test]
fn predict_finds_the_bundle_inside_the_stage_folder() {
    let ws = Ws::new(PIPELINE);
    let r = ws.run(&["run"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    ws.write("rows.csv", "area\n60\n120\n");
    for bundle in ["artifacts/bundle/bundle", "artifacts/bundle"] {
        let r = ws.run(&["predict", "--bundle", bundle, "--input", "rows.csv"]);
        assert_eq!(r.code, 0, "{bundle}: {}", r.stderr);
        assert!(r.stdout.starts_with("area,prediction\n60,"), "{}", r.stdout);
    }
    let r = ws.run(&["predict", "--bundle", "artifacts", "--input", "rows.csv"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("bundle.json"), "{}", r.stderr);
    let r = ws.run(&["predict", "--bundle", "nowhere", "--input", "rows.csv"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("there is no such folder"), "{}", r.stderr);
    // Two bundles in one folder: say which, rather than "no bundle.json".
    let copy = |to: &str| {
        let dest = ws.path().join(to);
        std::fs::create_dir_all(&dest).unwrap();
        for f in std::fs::read_dir(ws.path().join("artifacts/bundle/bundle")).unwrap() {
            let f = f.unwrap();
            std::fs::copy(f.path(), dest.join(f.file_name())).unwrap();
        }
    };
    copy("two/a");
    copy("two/b");
    let r = ws.run(&["predict", "--bundle", "two", "--input", "rows.csv"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("holds 2 bundles"), "{}", r.stderr);
    assert!(
        r.stderr.contains("two/a") && r.stderr.contains("two/b"),
        "{}",
        r.stderr
    );
}

#[test]
fn serve_errors_carry_the_serve_code() {
    let ws = Ws::new(PIPELINE);
    // No champion yet: nothing to serve.
    let r = ws.run(&["serve", "--port", "0"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("mlcycle::serve"), "{}", r.stderr);
    assert!(!r.stderr.contains("mlcycle::cli::predict"), "{}", r.stderr);
}

#[test]
fn a_missing_dash_c_folder_is_an_error_not_the_workspace_around_it() {
    let ws = Ws::new(PIPELINE);
    for args in [
        vec!["-C", "typo", "status"],
        vec!["-C", "typo", "run", "data", "--force"],
        vec!["-C", "typo", "runs"],
        vec!["-C", "mlcycle.yaml", "validate"],
    ] {
        let r = ws.run(&args);
        assert_eq!(r.code, 2, "mlcycle {}: {}", args.join(" "), r.stdout);
        assert!(r.stderr.contains("mlcycle::cli::bad_dir"), "{}", r.stderr);
    }
    assert!(!ws.exists("artifacts/data"), "nothing ran");
    let r = ws.run(&["-C", "typo", "status"]);
    assert!(
        r.stderr.contains("-C typo: there is no such folder"),
        "{}",
        r.stderr
    );
}

#[test]
fn a_workspace_argument_that_is_not_one_is_named_as_looked_up() {
    let ws = Ws::new(PIPELINE);
    std::fs::create_dir_all(ws.path().join("data")).unwrap();
    let parent = ws.path().parent().unwrap();
    let name = ws.path().file_name().unwrap().to_str().unwrap();
    // Relative to -C: `-C ws runs data` looks for ws/data.
    let r = Ws::run_in(parent, &["-C", name, "runs", "data"]);
    assert_eq!(r.code, 2);
    let want = format!("{name}/data holds no mlcycle.yaml");
    assert!(r.stderr.contains(&want), "{}", r.stderr);
    // Outside any workspace, the folder given is what is reported.
    let empty = tempfile::tempdir().unwrap();
    for cmd in ["runs", "gc", "models", "history"] {
        let r = Ws::run_in(empty.path(), &[cmd, "nonexist"]);
        assert_eq!(r.code, 2, "{cmd}");
        assert!(
            r.stderr.contains("`nonexist` is not a workspace"),
            "{cmd}: {}",
            r.stderr
        );
    }
}

#[test]
fn init_quotes_folder_names_yaml_would_read_as_numbers_or_booleans() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["123", "true", "1.5", "null"] {
        let r = Ws::run_in(dir.path(), &["init", name]);
        assert_eq!(r.code, 0, "{name}: {}", r.stderr);
        let r = Ws::run_in(dir.path(), &["validate", name]);
        assert_eq!(r.code, 0, "{name}: {}", r.stderr);
        assert!(
            r.stdout.contains(&format!("pipeline `{name}` is valid")),
            "{}",
            r.stdout
        );
    }
    let text = std::fs::read_to_string(dir.path().join("123/mlcycle.yaml")).unwrap();
    assert!(
        text.contains("`${inputs.NAME}`"),
        "the template's comment is untouched"
    );
    let r = Ws::run_in(dir.path(), &["init", "a b"]);
    assert!(r.stdout.contains("`mlcycle run 'a b'`"), "{}", r.stdout);
}

#[test]
fn show_refuses_a_second_artifact() {
    let ws = Ws::new(PIPELINE);
    let r = ws.run(&["show", "data.data", "extra"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("takes one artifact"), "{}", r.stderr);
}

#[test]
fn a_hint_to_run_names_the_workspace_when_it_is_not_the_current_folder() {
    let ws = Ws::new(PIPELINE);
    let r = ws.run(&["show", "data.data"]);
    assert!(
        r.stderr.contains("run `mlcycle run data` first"),
        "{}",
        r.stderr
    );
    let parent = ws.path().parent().unwrap();
    let name = ws.path().file_name().unwrap().to_str().unwrap();
    let r = Ws::run_in(parent, &["show", name, "data.data"]);
    // The report may wrap the message: read it as one line.
    let text: Vec<&str> = r
        .stderr
        .lines()
        .map(|l| l.trim().trim_start_matches(['│', '×']).trim())
        .collect();
    let root = ws.path().canonicalize().unwrap();
    let want = format!("run `mlcycle run {} data` first", root.display());
    assert!(text.join(" ").contains(&want), "{}", r.stderr);
}
