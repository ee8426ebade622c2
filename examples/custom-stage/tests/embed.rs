//! A program runs a pipeline through the engine's `Session`, in-process,
//! with no CLI: the run is recorded (lock file, history) as `mlcycle run`
//! records it, and a second run finds every stage fresh.

mod common;

use mlcycle::pipeline::history::History;
use mlcycle::pipeline::summary::Outcome;
use mlcycle::pipeline::{RunRequest, Session, SessionOptions};

#[test]
fn a_program_runs_the_pipeline_through_a_session() {
    let dir = common::workspace();

    let registry = mlcycle_custom_stage_example::registry();
    let file = dir.path().join("mlcycle.yaml");
    let session = Session::open(&file, &SessionOptions::new(&registry)).unwrap();
    let first = session.run(&RunRequest::default(), &()).unwrap().summary;
    assert!(first.succeeded());
    assert!(first.stages.iter().all(|s| s.outcome == Outcome::Ran));
    let upper = std::fs::read_to_string(dir.path().join("artifacts/shout/upper.txt")).unwrap();
    assert_eq!(upper, "> HELLO\n> WORLD\n");
    assert!(dir.path().join("mlcycle.lock").is_file());

    let all = session.select(&[], false).unwrap();
    assert!(session
        .status(&all)
        .unwrap()
        .iter()
        .all(|s| s.state == "fresh"));
    let second = session.run(&RunRequest::default(), &()).unwrap().summary;
    assert!(second.stages.iter().all(|s| s.outcome == Outcome::Fresh));
    let runs = History::open(session.workspace())
        .unwrap()
        .runs(10)
        .unwrap();
    assert_eq!(runs.len(), 2);
}
