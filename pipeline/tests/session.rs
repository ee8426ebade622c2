//! Sessions embedded in one program: each run has its own interrupt
//! handle, so stopping one run leaves another running in the same process
//! untouched (nothing process-global).

use std::time::{Duration, Instant};

use mlcycle_pipeline::exec::Interrupt;
use mlcycle_pipeline::summary::Outcome;
use mlcycle_pipeline::{RunRequest, Session, SessionOptions, StageRegistry};

fn workspace(yaml: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("mlcycle.yaml"), yaml).unwrap();
    dir
}

#[test]
fn interrupting_one_session_leaves_another_running() {
    let slow = workspace(
        "stages:\n  wait:\n    run: sleep 30 && echo done > ${outputs.wait}\n    outs: [out/wait.txt]\n",
    );
    let other = workspace(
        "stages:\n  nap:\n    run: sleep 1 && echo ok > ${outputs.nap}\n    outs: [out/nap.txt]\n",
    );
    let registry = StageRegistry::new();
    let opts = SessionOptions::new(&registry);
    let slow_session = Session::open(&slow.path().join("mlcycle.yaml"), &opts).unwrap();
    let other_session = Session::open(&other.path().join("mlcycle.yaml"), &opts).unwrap();
    let stop = Interrupt::new();
    let slow_req = RunRequest {
        interrupt: stop.clone(),
        ..RunRequest::default()
    };
    let t0 = Instant::now();
    let (slow_summary, other_summary) = std::thread::scope(|sc| {
        let a = sc.spawn(|| slow_session.run(&slow_req, &()).unwrap().summary);
        let b = sc.spawn(|| {
            other_session
                .run(&RunRequest::default(), &())
                .unwrap()
                .summary
        });
        std::thread::sleep(Duration::from_millis(300));
        stop.interrupt(Duration::from_secs(2));
        (a.join().unwrap(), b.join().unwrap())
    });
    // The interrupted run stopped well before its 30 s command would end,
    // and its stage is not recorded as done.
    assert!(t0.elapsed() < Duration::from_secs(10), "{:?}", t0.elapsed());
    assert!(slow_summary.interrupted);
    assert!(matches!(
        slow_summary.stages[0].outcome,
        Outcome::Failed { .. }
    ));
    assert!(!slow.path().join("out/wait.txt").exists());
    // The other run, in the same process, finished normally.
    assert!(!other_summary.interrupted);
    assert!(other_summary.succeeded());
    assert_eq!(
        std::fs::read_to_string(other.path().join("out/nap.txt")).unwrap(),
        "ok\n"
    );
}
