//! The custom binary runs a pipeline that mixes its own kind with built-in
//! and command stages.

mod common;

use std::process::Command;

#[test]
fn custom_kind_runs_and_reruns_on_param_change() {
    let dir = common::workspace();
    let run = |args: &[&str]| {
        let o = Command::new(env!("CARGO_BIN_EXE_mlcycle-custom"))
            .current_dir(dir.path())
            .args(args)
            .output()
            .unwrap();
        (
            o.status.code(),
            String::from_utf8_lossy(&o.stdout).into_owned(),
        )
    };
    let (code, out) = run(&["run"]);
    assert_eq!(code, Some(0), "{out}");
    let upper = std::fs::read_to_string(dir.path().join("artifacts/shout/upper.txt")).unwrap();
    assert_eq!(upper, "> HELLO\n> WORLD\n");
    let (_, out) = run(&["run", "-p", "prefix=* "]);
    assert!(out.contains("param `prefix` changed"), "{out}");
    let (_, out) = run(&["stages", "text.upper"]);
    assert!(out.contains("Upper-case a text artifact"), "{out}");
}
