//! Crashes, interrupts and concurrent writers never leave a stage looking
//! fresh when it is not.

mod common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use common::Ws;

const SLOW: &str = r#"
stages:
  fast:
    run: echo fast > out/fast.txt
    outs: [out/fast.txt]
  slow:
    run: echo $$ > slow.pid; sleep 30; echo slow > out/slow.txt
    deps: [fast.fast]
    outs: [out/slow.txt]
  after:
    run: cp out/slow.txt out/after.txt
    deps: [slow.slow]
    outs: [out/after.txt]
"#;

fn wait_for(ws: &Ws, rel: &str) {
    let t = Instant::now();
    while !ws.exists(rel) || ws.read(rel).trim().is_empty() {
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "timed out waiting for {rel}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn kill(pid: i32, sig: i32) {
    let ok = std::process::Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill -{sig} {pid}");
}

/// Starts `mlcycle run` on [`SLOW`], sends the mlcycle process `sig` while
/// `slow` runs, and stops the orphaned command as a crash would leave it.
fn run_then_kill(sig: i32) -> Ws {
    let ws = Ws::new(SLOW);
    let mut child = ws
        .cmd(&["run"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for(&ws, "slow.pid");
    kill(child.id() as i32, sig);
    child.wait().unwrap();
    let pid: i32 = ws.read("slow.pid").trim().parse().unwrap();
    kill(pid, 9);
    ws
}

#[test]
fn kill_9_mid_run_then_the_next_run_redoes_exactly_the_unfinished_stages() {
    let ws = run_then_kill(9);

    let st = ws.run(&["status", "-v"]);
    assert_eq!(st.code, 1);
    assert_eq!(
        st.outcome("fast").as_deref(),
        Some("fresh"),
        "{}",
        st.stdout
    );
    assert_eq!(
        st.outcome("slow").as_deref(),
        Some("stale"),
        "{}",
        st.stdout
    );

    // Make the slow stage quick and rerun: `fast` stays fresh.
    ws.write("mlcycle.yaml", &SLOW.replace("sleep 30", "sleep 0"));
    let r = ws.run(&["run", "-v"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert_eq!(r.outcome("fast").as_deref(), Some("fresh"), "{}", r.stdout);
    assert_eq!(r.outcome("slow").as_deref(), Some("ran"));
    assert_eq!(r.outcome("after").as_deref(), Some("ran"));
    // The killed run is recorded as such.
    let runs = ws.run(&["runs"]);
    assert!(
        runs.stdout.lines().any(|l| l.contains(" killed ")),
        "{}",
        runs.stdout
    );
}

/// A stage that aborts the process (an allocation past what memory allows
/// ends in SIGABRT) is recorded as the failure it was by the next run, not
/// only as a killed run with no stage to blame.
#[test]
fn regression_a_stage_running_when_the_process_aborts_is_recorded_as_failed() {
    let ws = run_then_kill(6);

    // `slow` never finished a run: it is stale because its run died, not
    // because it never ran.
    let st = ws.run(&["status", "-v"]);
    let line = st
        .stdout
        .lines()
        .find(|l| l.starts_with("slow "))
        .unwrap_or_default();
    assert!(
        line.contains("its last run did not finish"),
        "{}",
        st.stdout
    );
    // `runs` settles the dead run (no run holds the workspace) ...
    let runs = ws.run(&["runs"]);
    assert!(
        runs.stdout
            .lines()
            .any(|l| l.contains(" killed ") && !l.contains(" running ")),
        "{}",
        runs.stdout
    );
    // ... and the next run would too.
    ws.write("mlcycle.yaml", &SLOW.replace("sleep 30", "sleep 0"));
    let r = ws.run(&["run"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let show = ws.run(&["runs", "show", "1"]);
    assert_eq!(show.code, 0, "{}{}", show.stdout, show.stderr);
    assert!(show.stdout.contains("run 1  killed"), "{}", show.stdout);
    let slow = show
        .stdout
        .lines()
        .find(|l| l.starts_with("slow "))
        .unwrap_or_else(|| panic!("no row for `slow`:\n{}", show.stdout));
    assert!(slow.contains("failed"), "{slow}");
    assert!(slow.contains("process died while this stage ran"), "{slow}");
    assert!(
        show.stdout.contains("ended while this stage ran") && show.stdout.contains(": slow"),
        "{}",
        show.stdout
    );
    // `fast` finished before the abort: it is recorded as run, not blamed.
    let fast = show
        .stdout
        .lines()
        .find(|l| l.starts_with("fast "))
        .unwrap_or_else(|| panic!("no row for `fast`:\n{}", show.stdout));
    assert!(fast.contains(" ran "), "{fast}");
    let runs = ws.run(&["runs", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&runs.stdout).unwrap();
    let first = v
        .as_array()
        .and_then(|a| a.iter().find(|r| r["id"] == 1))
        .unwrap_or_else(|| panic!("{}", runs.stdout));
    assert_eq!(first["status"], "killed");
    assert_eq!(first["failed"], 1);
    assert_eq!(first["ran"], 1);
}

#[test]
fn ctrl_c_stops_children_and_the_stage_is_not_recorded() {
    let ws = Ws::new(SLOW);
    let child = ws
        .cmd(&["run"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for(&ws, "slow.pid");
    let started = Instant::now();
    kill(child.id() as i32, 2);
    let out = child.wait_with_output().unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "the run did not stop promptly"
    );
    assert_eq!(out.status.code(), Some(130));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("interrupted"), "{stdout}");
    // The child process group was stopped.
    let pid = ws.read("slow.pid").trim().to_string();
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "stage command {pid} still running"
    );
    assert!(!ws.exists("out/slow.txt"));
    let st = ws.run(&["status", "-v"]);
    assert_eq!(
        st.outcome("fast").as_deref(),
        Some("fresh"),
        "{}",
        st.stdout
    );
    assert_eq!(
        st.outcome("slow").as_deref(),
        Some("stale"),
        "{}",
        st.stdout
    );
}

#[test]
fn a_second_writer_waits_and_says_so() {
    let ws = Ws::new(&SLOW.replace("sleep 30", "sleep 1"));
    let first = ws
        .cmd(&["run"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for(&ws, "slow.pid");
    let r = ws.run(&["run", "--no-wait"]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr
            .contains("another mlcycle process is writing to this workspace"),
        "{}",
        r.stderr
    );
    let second = ws.run(&["run"]);
    assert!(
        second
            .stderr
            .contains("Waiting for another mlcycle process"),
        "{}",
        second.stderr
    );
    assert_eq!(second.code, 0, "{}", second.stderr);
    assert!(second.stdout.contains("3 fresh"), "{}", second.stdout);
    let mut first = first;
    assert!(first.wait().unwrap().success());
}

#[test]
fn independent_stages_run_at_the_same_time() {
    // Each stage waits (up to 20 s) for the other to have started: they can
    // only both succeed if they run concurrently.
    let wait = |me: &str, other: &str| {
        format!("touch {me}.started; i=0; while [ ! -e {other}.started ] && [ $i -lt 2000 ]; do sleep 0.01; i=$((i+1)); done; test -e {other}.started && echo > {me}.txt")
    };
    let ws = Ws::new(&format!(
        "stages:\n  a:\n    run: '{}'\n    outs: [a.txt]\n  b:\n    run: '{}'\n    outs: [b.txt]\n",
        wait("a", "b"),
        wait("b", "a")
    ));
    let r = ws.run(&["run", "-j", "2"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
}

#[test]
fn regression_a_second_ctrl_c_kills_commands_that_ignore_sigterm() {
    let ws = Ws::new("stages:\n  stubborn:\n    run: trap '' TERM; echo $$ > pid; sleep 30; echo > out.txt\n    outs: [out.txt]\n");
    let child = ws
        .cmd(&["run"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for(&ws, "pid");
    kill(child.id() as i32, 2);
    std::thread::sleep(Duration::from_millis(300));
    kill(child.id() as i32, 2);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130));
    let pid = ws.read("pid").trim().to_string();
    let t = Instant::now();
    while std::path::Path::new(&format!("/proc/{pid}")).exists() {
        // A zombie is reaped by init shortly; a live process would remain.
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        if stat.contains(") Z ") {
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "command {pid} survived the second Ctrl-C"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn alive(pid: i32) -> bool {
    // A zombie (exited, not yet reaped) is not running.
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rsplit_once(") ").map(|(_, r)| !r.starts_with('Z')))
        .unwrap_or(false)
}

/// A command a `kill -9`'d mlcycle left running is stopped by the next run
/// of the workspace, before that run starts the stage again: two copies of
/// one command never write the same outputs.
#[test]
fn regression_the_next_run_stops_a_command_a_killed_run_left_running() {
    let ws = Ws::new(SLOW);
    let mut child = ws
        .cmd(&["run"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for(&ws, "slow.pid");
    kill(child.id() as i32, 9);
    child.wait().unwrap();
    let pid: i32 = ws.read("slow.pid").trim().parse().unwrap();
    assert!(alive(pid), "the orphan runs on after the kill");
    ws.write("mlcycle.yaml", &SLOW.replace("sleep 30", "sleep 0"));
    let r = ws.run(&["run"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let t = Instant::now();
    while alive(pid) && t.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!alive(pid), "the orphan was stopped");
    assert!(
        r.stderr
            .contains("Stopped a command a killed run left running"),
        "{}",
        r.stderr
    );
}

/// The history says what it knows of a stage the process died in: not a
/// duration of 0 ms, and not that it "was fresh or restored".
#[test]
fn regression_a_stage_the_process_died_in_has_no_made_up_time_or_log_hint() {
    let ws = run_then_kill(9);
    // `runs` settles the dead run.
    let r = ws.run(&["runs", "show", "1"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let line = r
        .stdout
        .lines()
        .find(|l| l.starts_with("slow "))
        .unwrap_or_default();
    assert!(line.contains(" ? "), "{}", r.stdout);
    assert!(!line.contains("0ms"), "{}", r.stdout);
    let r = ws.run(&["runs", "show", "1", "--logs", "slow"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("died while it ran"), "{}", r.stderr);
}
