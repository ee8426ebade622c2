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

/// A stage kind for the test below: while it runs, its output's folder
/// (`artifacts/<stage>/`) is swapped for a symlink to a folder outside the
/// workspace, as a stage running beside it could do after the engine's
/// checks, and then it writes its output.
struct SwapThenWrite;

#[derive(Debug, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct SwapParams {
    outside: String,
}

impl mlcycle_pipeline::StageKind for SwapThenWrite {
    type Params = SwapParams;
    const SPEC: mlcycle_pipeline::StageSpec = mlcycle_pipeline::StageSpec {
        kind: "test.swap_then_write",
        summary: "Swaps its output folder for a symlink to outside, then writes",
        version: 1,
        inputs: &[],
        outputs: &[mlcycle_pipeline::PortSpec::output(
            "out",
            "x.txt",
            mlcycle_pipeline::Artifact::ANY,
            "a text file",
        )],
        params: &[mlcycle_pipeline::ParamDoc::new(
            "outside",
            "string",
            "a folder outside the workspace",
        )],
    };

    fn run(
        p: &SwapParams,
        ctx: &mlcycle_pipeline::RunContext<'_>,
    ) -> Result<(), mlcycle_pipeline::StageError> {
        let folder = ctx.workspace.join("artifacts").join(ctx.stage);
        std::fs::remove_dir_all(&folder)?;
        std::os::unix::fs::symlink(&p.outside, &folder)?;
        std::fs::write(ctx.output("out")?, "written by the stage")?;
        Ok(())
    }
}

/// A built-in stage's writes stay inside the workspace at the moment they
/// happen, not only when the engine checked the path: before, the output
/// landed in the folder outside (the check after the stage failed it, too
/// late).
#[test]
fn a_stage_cannot_write_through_a_folder_swapped_for_a_symlink_while_it_runs() {
    let outside = tempfile::tempdir().unwrap();
    let ws = workspace(&format!(
        "stages:\n  swap:\n    uses: test.swap_then_write\n    with: {{outside: {}}}\n",
        outside.path().display()
    ));
    let mut registry = StageRegistry::new();
    registry.register(SwapThenWrite).unwrap();
    let opts = SessionOptions::new(&registry);
    let session = Session::open(&ws.path().join("mlcycle.yaml"), &opts).unwrap();
    let summary = session.run(&RunRequest::default(), &()).unwrap().summary;
    assert!(!summary.succeeded());
    let Outcome::Failed { error, .. } = &summary.stages[0].outcome else {
        panic!("{:?}", summary.stages[0].outcome)
    };
    assert!(error.contains("outside the workspace"), "{error}");
    assert!(error.contains("artifacts/swap/x.txt"), "{error}");
    let left: Vec<_> = std::fs::read_dir(outside.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert!(left.is_empty(), "written outside: {left:?}");
}

/// A stage kind that sleeps and writes when it ran and how many threads
/// its pool has.
struct Nap;

#[derive(Debug, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct NapParams {}

impl mlcycle_pipeline::StageKind for Nap {
    type Params = NapParams;
    const SPEC: mlcycle_pipeline::StageSpec = mlcycle_pipeline::StageSpec {
        kind: "test.nap",
        summary: "Sleeps 300 ms, writes its start, end and pool size",
        version: 1,
        inputs: &[],
        outputs: &[mlcycle_pipeline::PortSpec::output(
            "out",
            "nap.txt",
            mlcycle_pipeline::Artifact::ANY,
            "start end threads",
        )],
        params: &[],
    };

    fn run(
        _: &NapParams,
        ctx: &mlcycle_pipeline::RunContext<'_>,
    ) -> Result<(), mlcycle_pipeline::StageError> {
        let now = || {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_millis()
        };
        let start = now();
        std::thread::sleep(Duration::from_millis(300));
        let text = format!("{start} {} {}", now(), rayon::current_num_threads());
        std::fs::write(ctx.output("out")?, text)?;
        Ok(())
    }
}

fn naps(yaml: &str) -> Vec<(u128, u128, usize)> {
    let ws = workspace(yaml);
    let mut registry = StageRegistry::new();
    registry.register(Nap).unwrap();
    let session = Session::open(
        &ws.path().join("mlcycle.yaml"),
        &SessionOptions::new(&registry),
    )
    .unwrap();
    let summary = session.run(&RunRequest::default(), &()).unwrap().summary;
    assert!(summary.succeeded());
    ["a", "b"]
        .iter()
        .map(|s| {
            let t =
                std::fs::read_to_string(ws.path().join(format!("artifacts/{s}/nap.txt"))).unwrap();
            let v: Vec<&str> = t.split(' ').collect();
            (
                v[0].parse().unwrap(),
                v[1].parse().unwrap(),
                v[2].parse().unwrap(),
            )
        })
        .collect()
}

/// In-process stages hold a share of the CPU budget: by default all the
/// cores, in a thread pool of their own, so two of them run one after the
/// other (they shared the process-wide pool and ran side by side, and one
/// stage's parallel work queued behind the other's); with
/// `resources: {cpus: 1}` they fit side by side, each with one thread.
#[test]
fn in_process_stages_hold_their_share_of_the_cpu_budget() {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let by_default = naps("stages:\n  a: {uses: test.nap}\n  b: {uses: test.nap}\n");
    let (a, b) = (by_default[0], by_default[1]);
    assert!(a.1 <= b.0 || b.1 <= a.0, "overlapped: {a:?} {b:?}");
    assert_eq!((a.2, b.2), (cores, cores));
    if cores >= 2 {
        let small = naps(
            "stages:\n  a: {uses: test.nap, resources: {cpus: 1}}\n  b: {uses: test.nap, resources: {cpus: 1}}\n",
        );
        let (a, b) = (small[0], small[1]);
        assert!(a.0 < b.1 && b.0 < a.1, "did not overlap: {a:?} {b:?}");
        assert_eq!((a.2, b.2), (1, 1));
    }
}
