//! Rendered DAGs, as snapshots.

mod common;

use common::Ws;

const DIAMOND: &str = r#"
name: diamond
stages:
  src:
    run: echo 1 > a.txt
    outs: [a.txt]
  left:
    run: cp a.txt l.txt
    deps: [src.a]
    outs: [l.txt]
  right:
    run: cp a.txt r.txt
    deps: [a.txt]
    outs: [r.txt]
  join:
    run: cat l.txt r.txt > j.txt
    deps: [left.l, right.r]
    outs: [j.txt]
"#;

#[test]
fn mermaid_is_the_default() {
    let ws = Ws::new(DIAMOND);
    let r = ws.run(&["dag"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    insta::assert_snapshot!(r.stdout);
}

#[test]
fn dot_and_text() {
    let ws = Ws::new(DIAMOND);
    insta::assert_snapshot!("dot", ws.run(&["dag", "--format", "dot"]).stdout);
    insta::assert_snapshot!("text", ws.run(&["dag", "--format", "text"]).stdout);
}

#[test]
fn dag_and_status_need_no_writer_lock() {
    let ws = Ws::new(DIAMOND);
    // Hold the writer lock the way a running `mlcycle run` does.
    std::fs::create_dir_all(ws.path().join(".mlcycle")).unwrap();
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(ws.path().join(".mlcycle/writer.lock"))
        .unwrap();
    f.lock().unwrap();
    assert_eq!(ws.run(&["dag"]).code, 0);
    assert_eq!(ws.run(&["status"]).code, 1);
    let r = ws.run(&["run", "--no-wait"]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr
            .contains("another mlcycle process is writing to this workspace"),
        "{}",
        r.stderr
    );
}
