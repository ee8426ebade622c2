//! A program runs a pipeline through the engine's `Session`, in-process,
//! with no CLI: the run is recorded (lock file, history) as `mlcycle run`
//! records it, and a second run finds every stage fresh.

use mlcycle::pipeline::history::History;
use mlcycle::pipeline::summary::Outcome;
use mlcycle::pipeline::{RunRequest, Session, SessionOptions};

#[test]
fn a_program_runs_the_pipeline_through_a_session() {
    let dir = tempfile::tempdir().unwrap();
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    std::fs::create_dir_all(dir.path().join("data")).unwrap();
    std::fs::copy(src.join("mlcycle.yaml"), dir.path().join("mlcycle.yaml")).unwrap();
    std::fs::copy(
        src.join("data/words.txt"),
        dir.path().join("data/words.txt"),
    )
    .unwrap();

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
