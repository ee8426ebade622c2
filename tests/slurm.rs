//! `--executor slurm` against a real Slurm cluster (`.ci/run` starts a
//! one-node cluster with ../shared/slurm/start-local-slurm.sh). Each test
//! says it is skipped, and passes, where `sbatch` is absent.

mod common;

use std::process::Command;

use common::Ws;

fn have_slurm() -> bool {
    let ok = Command::new("sinfo")
        .arg("-h")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !ok {
        eprintln!("skipped: no reachable Slurm cluster (sinfo failed or is not installed)");
    }
    ok
}

const DIAMOND: &str = r#"
params:
  k: 3
stages:
  src:
    run: seq 1 20 > ${outputs.nums}
    outs: [out/nums.txt]
  left:
    run: awk '{ print $1 * ${params.k} }' ${inputs.nums} > ${outputs.left}
    deps: [src.nums]
    outs: [out/left.txt]
  right:
    run: awk '{ print $1 + 1 }' ${inputs.nums} > ${outputs.right}
    deps: [src.nums]
    outs: [out/right.txt]
  join:
    run: paste ${inputs.left} ${inputs.right} > ${outputs.join}
    deps: [left.left, right.right]
    outs: [out/join.txt]
  houses:
    uses: dataset.synthetic
    with: {kind: house_prices}
  ols:
    uses: train.linear_regression
    inputs: {train: houses.data}
"#;

fn jobs(stderr: &str) -> usize {
    stderr.matches("done as Slurm job").count()
}

#[test]
fn a_diamond_on_slurm_equals_the_local_run_and_reruns_only_what_changed() {
    if !have_slurm() {
        return;
    }
    let local = Ws::new(DIAMOND);
    assert_eq!(local.run(&["run"]).code, 0);
    let ws = Ws::new(DIAMOND);
    let r = ws.run(&["run", "--executor", "slurm"]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert_eq!(jobs(&r.stderr), 6, "{}", r.stderr);
    // The summary names each stage's job, and the job's log is kept.
    assert!(
        r.stdout.lines().next().unwrap().contains("JOB"),
        "{}",
        r.stdout
    );
    let logs = ws.run(&["runs", "show", "1", "--logs", "left"]);
    assert_eq!(logs.code, 0, "{}", logs.stderr);
    assert!(logs.stdout.contains("Slurm job log"), "{}", logs.stdout);
    assert!(logs.stdout.contains("left   ran"), "{}", logs.stdout);
    for f in [
        "out/nums.txt",
        "out/left.txt",
        "out/right.txt",
        "out/join.txt",
        "artifacts/houses/data.arrow",
        "artifacts/ols/model.json",
    ] {
        assert_eq!(
            std::fs::read(ws.path().join(f)).unwrap(),
            std::fs::read(local.path().join(f)).unwrap(),
            "{f} differs from the local run"
        );
    }
    // Nothing changed: nothing is submitted.
    let r = ws.run(&["run", "--executor", "slurm"]);
    assert_eq!(r.code, 0);
    assert_eq!(jobs(&r.stderr), 0, "{}", r.stderr);
    assert!(r.stdout.contains("6 fresh"), "{}", r.stdout);
    // A param only `left` reads: `left` and `join` are submitted, no more.
    let r = ws.run(&["run", "--executor", "slurm", "-p", "k=5"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(jobs(&r.stderr), 2, "{}", r.stderr);
    assert_eq!(r.outcome("left").as_deref(), Some("ran"));
    assert_eq!(r.outcome("join").as_deref(), Some("ran"));
    // The same result as running it here.
    assert_eq!(local.run(&["run", "-p", "k=5"]).code, 0);
    assert_eq!(
        std::fs::read(ws.path().join("out/join.txt")).unwrap(),
        std::fs::read(local.path().join("out/join.txt")).unwrap()
    );
}

#[test]
fn a_failing_job_stops_its_dependents_and_an_oom_kill_is_named() {
    if !have_slurm() {
        return;
    }
    let ws = Ws::new(
        r#"
executor: slurm
resources: {time: 90s}
stages:
  a:
    run: echo "something broke" >&2; exit 3
    outs: [out/a.txt]
  b:
    run: cat ${inputs.a} > ${outputs.b}
    deps: [a.a]
    outs: [out/b.txt]
  hog:
    run: python3 -c "x = bytearray(800 * 1024 * 1024); import time; time.sleep(2)" && touch ${outputs.m}
    outs: [out/m.txt]
    resources: {mem: 100M}
"#,
    );
    // `executor: slurm` in the file: no flag needed.
    let r = ws.run(&["run", "--keep-going"]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr
            .contains("stage `a` failed: command exited with code 3"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("something broke"), "{}", r.stderr);
    assert_eq!(r.outcome("b").as_deref(), Some("skipped"), "{}", r.stdout);
    assert!(
        r.stderr
            .contains("killed by Slurm: out of memory (asked for 100M)"),
        "{}",
        r.stderr
    );
    // The pipeline-wide `time: 90s` reached Slurm as 2 whole minutes.
    let jobs = Command::new("squeue")
        .args(["-h", "-t", "all", "-o", "%i %j %l"])
        .output()
        .unwrap();
    let listing = String::from_utf8_lossy(&jobs.stdout).to_string();
    let a_line = listing
        .lines()
        .rfind(|l| l.contains("-a"))
        .unwrap_or_default()
        .to_string();
    assert!(a_line.ends_with("2:00"), "{listing}");
    // `b` was never submitted, so nothing of this run is left in the queue.
    let q = Command::new("squeue")
        .args(["-h", "-o", "%j"])
        .output()
        .unwrap();
    let queued = String::from_utf8_lossy(&q.stdout).to_string();
    assert!(
        !queued.contains("-b\n") && !queued.ends_with("-b"),
        "{queued}"
    );
}

#[test]
fn a_detached_run_is_followed_to_its_end_and_cancels_what_cannot_run() {
    if !have_slurm() {
        return;
    }
    let ws = Ws::new(DIAMOND);
    let r = ws.run(&["run", "--executor", "slurm", "--detach"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("submitted 6 job(s)"), "{}", r.stdout);
    let f = ws.run(&["runs", "show", "1", "--wait"]);
    assert_eq!(f.code, 0, "{}\n{}", f.stdout, f.stderr);
    assert!(
        f.stdout.contains("is over; its result is recorded"),
        "{}",
        f.stdout
    );
    // The lock now has every stage: nothing is stale.
    assert_eq!(ws.run(&["status"]).code, 0);
    let local = Ws::new(DIAMOND);
    assert_eq!(local.run(&["run"]).code, 0);
    assert_eq!(
        std::fs::read(ws.path().join("out/join.txt")).unwrap(),
        std::fs::read(local.path().join("out/join.txt")).unwrap()
    );
    // Nothing to do: nothing is submitted.
    let r = ws.run(&["run", "--executor", "slurm", "--detach"]);
    assert!(r.stdout.contains("nothing to submit"), "{}", r.stdout);

    // A failing upstream job: Slurm cancels its dependents
    // (--kill-on-invalid-dep), none is left pending.
    let bad = Ws::new(
        r#"
stages:
  a:
    run: sleep 1; exit 4
    outs: [out/a.txt]
  b:
    run: cat ${inputs.a} > ${outputs.b}
    deps: [a.a]
    outs: [out/b.txt]
"#,
    );
    let r = bad.run(&["run", "--executor", "slurm", "--detach"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let f = bad.run(&["runs", "show", "1", "--wait"]);
    assert_eq!(f.code, 1, "{}", f.stdout);
    let b_line = f.stdout.lines().find(|l| l.starts_with("b ")).unwrap();
    assert!(b_line.contains("cancelled"), "{}", f.stdout);
    assert_eq!(bad.run(&["status"]).code, 1);
}

/// A job's record can land on a shared filesystem a moment after Slurm
/// says the job ended. Following a detached run must wait for it, not
/// record the stage as failed ("ended (COMPLETED) without a result").
/// Fake `sbatch`/`scontrol`: runs everywhere, no cluster needed.
#[test]
fn a_record_that_lands_after_its_job_ended_is_waited_for() {
    use std::os::unix::fs::PermissionsExt;
    let ws =
        Ws::new("stages:\n  one:\n    run: echo 1 > ${outputs.o}\n    outs: [{o: out/o.txt}]\n");
    let tools = tempfile::tempdir().unwrap();
    let wrap = tools.path().join("wrap.sh");
    let script = |name: &str, body: String| {
        let p = tools.path().join(name);
        std::fs::write(&p, body).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        p
    };
    // sbatch keeps the job's command for the test to run later.
    let sbatch = script(
        "sbatch",
        format!(
            "#!/bin/sh\nfor a in \"$@\"; do case \"$a\" in --wrap=*) printf '%s\\n' \"${{a#--wrap=}}\" > {};; esac; done\necho 101\n",
            wrap.display()
        ),
    );
    // Slurm already says the job is over.
    let scontrol = script(
        "scontrol",
        "#!/bin/sh\necho 'JobId=101 JobState=COMPLETED Reason=None'\n".into(),
    );
    let with_tools = |args: &[&str]| {
        let mut c = ws.cmd(args);
        c.env("MLCYCLE_SBATCH", &sbatch)
            .env("MLCYCLE_SCONTROL", &scontrol)
            .env("MLCYCLE_SQUEUE", "false")
            .env("MLCYCLE_SCANCEL", "true");
        let o = c.output().unwrap();
        (
            o.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    let (code, out, err) = with_tools(&["run", "--executor", "slurm", "--detach"]);
    assert_eq!(code, 0, "{out}\n{err}");
    // The job runs, and its record appears, 1.5 s after Slurm said it ended.
    let command = std::fs::read_to_string(&wrap).unwrap();
    let late = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(1500));
        Command::new("sh")
            .arg("-c")
            .arg(command.trim())
            .output()
            .unwrap()
    });
    let (code, out, err) = with_tools(&["runs", "show", "1"]);
    let job = late.join().unwrap();
    assert!(
        job.status.success(),
        "{}",
        String::from_utf8_lossy(&job.stderr)
    );
    assert_eq!(code, 0, "{out}\n{err}");
    let row = out
        .lines()
        .find(|l| l.starts_with("one "))
        .unwrap_or_default();
    assert!(row.contains(" ran"), "{out}");
    assert!(out.contains("is over; its result is recorded"), "{out}");
    assert_eq!(ws.read("out/o.txt"), "1\n");
    assert_eq!(ws.run(&["status"]).code, 0);
}

#[test]
fn ctrl_c_cancels_the_runs_jobs() {
    if !have_slurm() {
        return;
    }
    let ws = Ws::new(
        "stages:\n  interrupted_slow:\n    run: sleep 60; echo > ${outputs.o}\n    outs: [{o: out/o.txt}]\n",
    );
    let child = ws
        .cmd(&["run", "--executor", "slurm"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let running = || {
        let q = Command::new("squeue")
            .args(["-h", "-o", "%j %T"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&q.stdout)
            .lines()
            .any(|l| l.contains("-interrupted_slow RUNNING"))
    };
    let t = std::time::Instant::now();
    while !running() {
        assert!(t.elapsed().as_secs() < 30, "the job never started");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("cancelled"), "{stdout}");
    // Cancelled: it leaves the queue (it may show as completing briefly).
    let t = std::time::Instant::now();
    loop {
        let q = Command::new("squeue")
            .args(["-h", "-o", "%j %T"])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&q.stdout).to_string();
        let alive = text.lines().any(|l| {
            l.contains("-interrupted_slow ") && (l.ends_with("RUNNING") || l.ends_with("PENDING"))
        });
        if !alive {
            break;
        }
        assert!(
            t.elapsed().as_secs() < 10,
            "the job is still queued: {text}"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

#[test]
fn a_sweep_runs_its_distinct_stages_as_slurm_jobs_and_shares_the_rest() {
    if !have_slurm() {
        return;
    }
    let ws = Ws::new(DIAMOND);
    let r = ws.run(&[
        "exp",
        "run",
        "--executor",
        "slurm",
        "-j",
        "4",
        "-n",
        "k",
        "-S",
        "k=2,3",
    ]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    // src, right, houses and ols are the same in both configurations: one
    // job each; left and join differ: one each per configuration.
    assert_eq!(r.stderr.matches("as Slurm job").count(), 8, "{}", r.stderr);
    assert!(!ws.exists("out"), "the workspace is untouched");
    let r = ws.run(&["exp", "apply", "k-2"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let local = Ws::new(DIAMOND);
    assert_eq!(local.run(&["run", "-p", "k=3"]).code, 0);
    assert_eq!(
        std::fs::read(ws.path().join("out/join.txt")).unwrap(),
        std::fs::read(local.path().join("out/join.txt")).unwrap()
    );
}
