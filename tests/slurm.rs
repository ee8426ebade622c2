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

/// The cluster's queue: one `NAME STATE` line per job.
fn queue() -> String {
    let q = Command::new("squeue")
        .args(["-h", "-o", "%j %T"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&q.stdout).into_owned()
}

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
    // Cancelled because `a` failed: skipped, as a local run skips it.
    assert!(b_line.contains("skipped"), "{}", f.stdout);
    let shown = bad.run(&["runs", "show", "1"]);
    assert_eq!(shown.code, 1, "{}", shown.stdout);
    assert_eq!(bad.run(&["status"]).code, 1);
}

/// Fake Slurm commands, for what a real cluster cannot be made to do on
/// cue: `sbatch` keeps each job's command (`jobs/ID`, ids from 101) for the
/// test to run; `scontrol` prints the state in `state` (COMPLETED unless
/// the test writes another).
struct FakeSlurm {
    dir: tempfile::TempDir,
}

impl FakeSlurm {
    fn new() -> Self {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().display().to_string();
        std::fs::create_dir_all(dir.path().join("jobs")).unwrap();
        std::fs::write(dir.path().join("state"), "COMPLETED").unwrap();
        let script = |name: &str, body: String| {
            let p = dir.path().join(name);
            std::fs::write(&p, body).unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        };
        // A job named in `refuse` is refused, as sbatch refuses a bad
        // partition.
        script(
            "sbatch",
            format!(
                "#!/bin/sh\nfor a in \"$@\"; do case \"$a\" in --job-name=*) name=\"${{a#--job-name=}}\";; --wrap=*) w=\"${{a#--wrap=}}\";; esac; done\nif [ -f {d}/refuse ] && grep -qx \"$name\" {d}/refuse; then echo 'sbatch: error: invalid partition specified: gpu' >&2; exit 1; fi\nid=$((101 + $(ls {d}/jobs | wc -l)))\nprintf '%s\\n' \"$w\" > {d}/jobs/$id\necho $id\n"
            ),
        );
        script(
            "scancel",
            format!("#!/bin/sh\necho \"$@\" >> {d}/cancelled\n"),
        );
        script(
            "scontrol",
            format!("#!/bin/sh\necho \"JobId=$3 JobState=$(cat {d}/state)\"\n"),
        );
        FakeSlurm { dir }
    }

    /// Runs mlcycle in `ws` with these Slurm commands.
    fn run(&self, ws: &Ws, args: &[&str]) -> common::Run {
        let mut c = ws.cmd(args);
        c.env("MLCYCLE_SBATCH", self.dir.path().join("sbatch"))
            .env("MLCYCLE_SCONTROL", self.dir.path().join("scontrol"))
            .env("MLCYCLE_SQUEUE", "false")
            .env("MLCYCLE_SCANCEL", self.dir.path().join("scancel"));
        common::Run::from(c.output().unwrap())
    }

    /// The command of job `id`, as a shell command line.
    fn job(&self, id: u32) -> Command {
        let line = std::fs::read_to_string(self.dir.path().join(format!("jobs/{id}"))).unwrap();
        let mut c = Command::new("sh");
        c.arg("-c").arg(line.trim());
        c
    }
}

/// A job's record can land on a shared filesystem a moment after Slurm
/// says the job ended. Following a detached run must wait for it, not
/// record the stage as failed ("ended (COMPLETED) without a result").
#[test]
fn a_record_that_lands_after_its_job_ended_is_waited_for() {
    let ws =
        Ws::new("stages:\n  one:\n    run: echo 1 > ${outputs.o}\n    outs: [{o: out/o.txt}]\n");
    let slurm = FakeSlurm::new();
    let r = slurm.run(&ws, &["run", "--executor", "slurm", "--detach"]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    // The job runs, and its record appears, 1.5 s after Slurm said it ended.
    let mut job = slurm.job(101);
    let late = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(1500));
        job.output().unwrap()
    });
    let r = slurm.run(&ws, &["runs", "show", "1"]);
    let job = late.join().unwrap();
    assert!(
        job.status.success(),
        "{}",
        String::from_utf8_lossy(&job.stderr)
    );
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let row = r
        .stdout
        .lines()
        .find(|l| l.starts_with("one "))
        .unwrap_or_default();
    assert!(row.contains(" ran"), "{}", r.stdout);
    assert!(
        r.stdout.contains("is over; its result is recorded"),
        "{}",
        r.stdout
    );
    assert_eq!(ws.read("out/o.txt"), "1\n");
    assert_eq!(ws.run(&["status"]).code, 0);
}

/// A detached run looked at only after a later run replaced a stage's
/// record must not roll the lock back to its own, older result (status
/// then called current outputs "modified" and the stages out of date).
#[test]
fn an_old_detached_run_looked_at_late_keeps_the_newer_records() {
    let yaml = "params: {k: 1}\nstages:\n  a: {run: 'echo ${params.k} > ${outputs.a}', outs: [out/a.txt]}\n  b: {run: 'cat ${inputs.a} > ${outputs.b}', deps: [a.a], outs: [out/b.txt]}\n";
    let ws = Ws::new(yaml);
    let slurm = FakeSlurm::new();
    let r = slurm.run(&ws, &["run", "--executor", "slurm", "--detach"]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    for id in [101, 102] {
        let o = slurm.job(id).output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    // Nobody follows run 1; a later local run changes both stages.
    ws.write("mlcycle.yaml", &yaml.replace("k: 1", "k: 2"));
    assert_eq!(ws.run(&["run"]).code, 0);
    let r = slurm.run(&ws, &["runs", "show", "1"]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert!(
        r.stdout
            .contains("kept the newer record a later run wrote for `a`, `b`"),
        "{}",
        r.stdout
    );
    let st = ws.run(&["status"]);
    assert_eq!(st.code, 0, "{}", st.stdout);
    assert_eq!(ws.read("out/b.txt"), "2\n");
}

/// A detached submission stopped midway (sbatch refuses a later job)
/// cancels the jobs it already submitted, and the run is recorded as
/// failed with sbatch's reason. They used to run untracked, and the run
/// read as "killed".
#[test]
fn a_detached_submission_that_fails_midway_cancels_what_it_submitted() {
    let ws = Ws::new(
        "stages:\n  prep:\n    run: echo p > ${outputs.o}\n    outs: [{o: out/prep.txt}]\n  train:\n    run: cat ${inputs.p} > ${outputs.o}\n    deps: [{p: prep.o}]\n    outs: [{o: out/train.txt}]\n",
    );
    let slurm = FakeSlurm::new();
    std::fs::write(slurm.dir.path().join("refuse"), "mlcycle-1-train\n").unwrap();
    let r = slurm.run(&ws, &["run", "--executor", "slurm", "--detach"]);
    assert_ne!(r.code, 0, "{}", r.stdout);
    // The message as one line (the renderer wraps it).
    let err: Vec<&str> = r.stderr.split_whitespace().filter(|w| *w != "│").collect();
    let err = err.join(" ");
    assert!(
        err.contains("sbatch refused the job of `train`")
            && err.contains("cancelled the 1 job(s) already submitted (101)"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_to_string(slurm.dir.path().join("cancelled")).unwrap(),
        "101\n"
    );
    let shown = ws.run(&["runs", "show", "1"]);
    let text = format!("{}{}", shown.stdout, shown.stderr);
    assert!(text.contains("failed"), "{text}");
    assert!(!text.contains("killed"), "{text}");
    assert!(text.contains("sbatch refused"), "{text}");
}

/// sbatch output that is not a job id (a wrapper's banner) is refused at
/// once, not followed as a job that then "disappeared".
#[test]
fn sbatch_output_that_is_not_a_job_id_is_refused() {
    let ws =
        Ws::new("stages:\n  one:\n    run: echo 1 > ${outputs.o}\n    outs: [{o: out/o.txt}]\n");
    let slurm = FakeSlurm::new();
    std::fs::write(
        slurm.dir.path().join("sbatch"),
        "#!/bin/sh\necho 'Submitted batch job 12345'\n",
    )
    .unwrap();
    let r = slurm.run(&ws, &["run", "--executor", "slurm"]);
    assert_eq!(r.code, 1, "{}\n{}", r.stdout, r.stderr);
    assert!(
        r.stderr
            .contains("sbatch printed `Submitted batch job 12345`, not a job id"),
        "{}",
        r.stderr
    );
}

/// A detached run's results go to the run-cache, as a local run's do (a
/// change undone is then restored, not rerun), and looking at it claims no
/// later run replaced them (its own jobs' journal entries are not a later
/// run's).
#[test]
fn a_detached_runs_results_are_restorable() {
    let ws = Ws::new("params: {p: 1}\nstages:\n  a: {run: 'echo v${params.p} > ${outputs.o}', outs: [{o: out/a.txt}]}\n");
    let slurm = FakeSlurm::new();
    for (run, job, p) in [(1, 101, "p=1"), (2, 102, "p=2")] {
        let r = slurm.run(&ws, &["run", "--executor", "slurm", "--detach", "-p", p]);
        assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
        assert!(slurm.job(job).output().unwrap().status.success());
        let shown = slurm.run(&ws, &["runs", "show", &run.to_string()]);
        assert!(
            shown.stdout.contains("is over; its result is recorded"),
            "{}",
            shown.stdout
        );
        assert!(
            !shown.stdout.contains("kept the newer record"),
            "{}",
            shown.stdout
        );
    }
    assert_eq!(ws.read("out/a.txt"), "v2\n");
    let st = ws.run(&["status"]);
    assert_eq!(
        st.outcome("a").as_deref(),
        Some("restorable"),
        "{}",
        st.stdout
    );
    let r = ws.run(&["run"]);
    assert_eq!(r.outcome("a").as_deref(), Some("restored"), "{}", r.stdout);
    assert_eq!(ws.read("out/a.txt"), "v1\n");
}

/// A controller that times out says nothing of a job: a detached run is
/// not recorded as over (its jobs "disappeared") while it cannot be asked.
#[test]
fn an_unreachable_controller_does_not_end_a_detached_run() {
    let ws =
        Ws::new("stages:\n  one:\n    run: echo 1 > ${outputs.o}\n    outs: [{o: out/o.txt}]\n");
    let slurm = FakeSlurm::new();
    assert_eq!(
        slurm
            .run(&ws, &["run", "--executor", "slurm", "--detach"])
            .code,
        0
    );
    std::fs::write(
        slurm.dir.path().join("scontrol"),
        "#!/bin/sh\necho 'slurm_load_jobs error: Socket timed out on send/recv operation' >&2\nexit 1\n",
    )
    .unwrap();
    let r = slurm.run(&ws, &["runs", "show", "1"]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("unreachable"), "{}", r.stdout);
    assert!(r.stdout.contains("is still going"), "{}", r.stdout);
    // The job ends and leaves its record: then the run is over.
    assert!(slurm.job(101).output().unwrap().status.success());
    let r = slurm.run(&ws, &["runs", "show", "1"]);
    assert!(
        r.stdout.contains("is over; its result is recorded"),
        "{}",
        r.stdout
    );
    assert_eq!(ws.run(&["status"]).code, 0);
}

#[test]
fn ctrl_c_cancels_the_runs_jobs() {
    interrupt_cancels_jobs("interrupted_slow", 1);
}

/// A second Ctrl-C exits at once; it used to leave the jobs running (and
/// their stages then looked fresh).
#[test]
fn a_second_ctrl_c_cancels_the_runs_jobs_too() {
    interrupt_cancels_jobs("interrupted_twice", 2);
}

/// Starts a one-stage Slurm run named `stage`, sends it `times` SIGINTs
/// once its job runs, and checks the job leaves the queue.
fn interrupt_cancels_jobs(stage: &str, times: usize) {
    if !have_slurm() {
        return;
    }
    let ws = Ws::new(&format!(
        "stages:\n  {stage}:\n    run: sleep 60; echo > ${{outputs.o}}\n    outs: [{{o: out/o.txt}}]\n"
    ));
    let child = ws
        .cmd(&["run", "--executor", "slurm"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let running = || {
        queue()
            .lines()
            .any(|l| l.contains(&format!("-{stage} RUNNING")))
    };
    let t = std::time::Instant::now();
    while !running() {
        assert!(t.elapsed().as_secs() < 30, "the job never started");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    for _ in 0..times {
        Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status()
            .unwrap();
        // Close together: the run's own poll (every 200 ms) must not get
        // to cancel the job between the two.
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130));
    if times == 1 {
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(stdout.contains("cancelled"), "{stdout}");
    }
    // Cancelled: it leaves the queue (it may show as completing briefly).
    let t = std::time::Instant::now();
    loop {
        let text = queue();
        let alive = text.lines().any(|l| {
            l.contains(&format!("-{stage} ")) && (l.ends_with("RUNNING") || l.ends_with("PENDING"))
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

/// sbatch expands `%x`, `%j`… in `--output`: a workspace whose path holds
/// a `%` failed every job (JobLaunchFailure) before the `%` was escaped.
#[test]
fn a_workspace_path_with_a_percent_sign_runs_on_slurm() {
    if !have_slurm() {
        return;
    }
    let outer = Ws::new("");
    let dir = outer.path().join("w%x");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(
        dir.join("mlcycle.yaml"),
        "stages:\n  a:\n    run: echo a > ${outputs.a}\n    outs: [out/a.txt]\n",
    )
    .unwrap();
    let r = Ws::run_in(&dir, &["run", "--executor", "slurm"]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert_eq!(
        std::fs::read_to_string(dir.join("out/a.txt")).unwrap(),
        "a\n"
    );
    let logs = Ws::run_in(&dir, &["runs", "show", "1", "--logs", "a"]);
    assert!(logs.stdout.contains("Slurm job log"), "{}", logs.stdout);
}

/// A driver killed with SIGKILL cannot cancel its jobs: the next run of
/// the workspace does, instead of letting them write the stage's outputs
/// beside a new copy later.
#[test]
fn the_next_run_cancels_the_jobs_of_a_killed_driver() {
    if !have_slurm() {
        return;
    }
    let ws = Ws::new(
        "stages:\n  orphaned_job:\n    run: echo late > ${outputs.o}\n    outs: [{o: out/o.txt}]\n  other:\n    run: echo > ${outputs.o}\n    outs: [{o: out/other.txt}]\n",
    );
    let mut driver = ws
        .cmd(&[
            "run",
            "--executor",
            "slurm",
            "--slurm-arg=--begin=now+120",
            "orphaned_job",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let queued = || queue().lines().any(|l| l.contains("-orphaned_job PENDING"));
    let t = std::time::Instant::now();
    while !queued() {
        assert!(t.elapsed().as_secs() < 30, "the job was never queued");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    driver.kill().unwrap();
    driver.wait().unwrap();
    let r = ws.run(&["run", "other"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("Cancelled a Slurm job a killed run left queued"),
        "{}",
        r.stderr
    );
    let t = std::time::Instant::now();
    while queued() {
        assert!(t.elapsed().as_secs() < 10, "the job is still queued");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}
