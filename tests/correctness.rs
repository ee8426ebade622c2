//! The engine's promise: a run never records a stage as fresh when a clean
//! run would give other bytes, and never loses data. Each test is a case
//! that broke it (engine-correctness issue), driven through the binary on a
//! temp workspace.

mod common;

use common::Ws;

/// Rendered text with the renderer's wrapping undone: `│` gutters and line
/// breaks become single spaces.
fn flat(s: &str) -> String {
    s.replace('│', " ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// A multi-line `run:` fails at its first failing line, as CI systems and
/// Make run scripts; before, a later line that succeeded hid the failure and
/// the stage was recorded fresh and cached.
#[test]
fn a_failing_middle_line_fails_the_stage() {
    let ws = Ws::new(
        "stages:\n  s:\n    run: |\n      echo one > ${outputs.out}\n      false\n      echo two >> ${outputs.out}\n    outs: [out.txt]\n",
    );
    let r = ws.run(&["run"]);
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert_eq!(r.outcome("s").as_deref(), Some("failed"), "{}", r.stdout);
    let st = ws.run(&["status"]);
    assert_eq!(
        st.code, 1,
        "the failed stage must not read fresh: {}",
        st.stdout
    );
}

/// `shell: bash` runs with pipefail: a failing command before the last one
/// of a pipeline fails the stage; `sh` (the default) cannot know.
#[test]
fn shell_bash_fails_a_broken_pipeline() {
    let yaml = |shell: &str| {
        format!(
            "stages:\n  s:\n    run: false | cat > ${{outputs.out}}\n    outs: [out.txt]\n{shell}"
        )
    };
    let ws = Ws::new(&yaml("    shell: bash\n"));
    let r = ws.run(&["run"]);
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    let ws = Ws::new(&yaml(""));
    let r = ws.run(&["run"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
}

#[test]
fn shell_is_checked() {
    let ws = Ws::new(
        "stages:\n  a:\n    run: echo hi\n    shell: fish\n  b:\n    run: [echo, hi]\n    shell: bash\n",
    );
    let r = ws.run(&["validate"]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("must be `sh` or `bash`, not `fish`"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr
            .contains("applies to a command line, not to an argv list"),
        "{}",
        r.stderr
    );
}

/// A file replaced in place by one of the same size with its mtime set
/// back (`cp -p`, `touch -r`, an archive with fixed timestamps) is noticed:
/// the memo's stamp holds the ctime, which no tool sets back.
#[test]
fn a_same_size_same_mtime_replacement_is_noticed() {
    let ws = Ws::new(
        "stages:\n  s:\n    run: cp data.txt ${outputs.out}\n    deps: [data.txt]\n    outs: [out.txt]\n",
    );
    ws.write("data.txt", "aaaa\n");
    // An old mtime, so the memo trusts the stamp (no racy-clean window).
    let old = std::process::Command::new("touch")
        .args(["-d", "2020-01-01 00:00:00", "data.txt"])
        .current_dir(ws.path())
        .status()
        .unwrap();
    assert!(old.success());
    assert_eq!(ws.run(&["run"]).code, 0);
    std::thread::sleep(std::time::Duration::from_millis(20));
    ws.write("data.txt", "bbbb\n");
    let back = std::process::Command::new("touch")
        .args(["-d", "2020-01-01 00:00:00", "data.txt"])
        .current_dir(ws.path())
        .status()
        .unwrap();
    assert!(back.success());
    let st = ws.run(&["status"]);
    assert_eq!(st.code, 1, "the changed dep must be noticed: {}", st.stdout);
    assert_eq!(ws.run(&["run"]).code, 0);
    assert_eq!(ws.read("out.txt"), "bbbb\n");
}

/// The run-cache keeps the newest result for a fingerprint: after
/// `run --force`, changing a param and reverting it restores the forced
/// result, not the one it replaced.
#[test]
fn the_newest_result_wins_in_the_run_cache() {
    let ws = Ws::new(
        "params:\n  n: 1\nstages:\n  s:\n    run: cat counter.txt > ${outputs.out}\n    params: [n]\n    deps: []\n    outs: [out.txt]\n",
    );
    // The command reads a file it does not declare, so a forced rerun can
    // give other bytes for the same fingerprint.
    ws.write("counter.txt", "first\n");
    assert_eq!(ws.run(&["run"]).code, 0);
    ws.write("counter.txt", "second\n");
    assert_eq!(ws.run(&["run", "--force"]).code, 0);
    assert_eq!(ws.read("out.txt"), "second\n");
    assert_eq!(ws.run(&["run", "-p", "n=2"]).code, 0);
    let back = ws.run(&["run"]);
    assert_eq!(back.code, 0);
    assert_eq!(
        back.outcome("s").as_deref(),
        Some("restored"),
        "{}",
        back.stdout
    );
    assert_eq!(ws.read("out.txt"), "second\n");
}

/// A stage sees its own name (`$MLCYCLE_STAGE`), so a renamed stage is not
/// restored from the old stage's result: that would give other bytes than
/// a clean run.
#[test]
fn a_renamed_stage_is_not_restored_from_the_old_name() {
    let yaml = |name: &str| {
        format!("stages:\n  {name}:\n    run: echo $MLCYCLE_STAGE > ${{outputs.out}}\n    outs: [out.txt]\n")
    };
    let ws = Ws::new(&yaml("old"));
    assert_eq!(ws.run(&["run"]).code, 0);
    ws.write("mlcycle.yaml", &yaml("new"));
    let r = ws.run(&["run"]);
    assert_eq!(r.code, 0);
    assert_eq!(r.outcome("new").as_deref(), Some("ran"), "{}", r.stdout);
    assert_eq!(ws.read("out.txt"), "new\n");
}

/// The order of `outs:` is not part of what a stage does.
#[test]
fn reordering_outs_does_not_rerun() {
    let yaml = |outs: &str| {
        format!("stages:\n  s:\n    run: echo a > a.txt; echo b > b.txt\n    outs: [{outs}]\n")
    };
    let ws = Ws::new(&yaml("a.txt, b.txt"));
    assert_eq!(ws.run(&["run"]).code, 0);
    ws.write("mlcycle.yaml", &yaml("b.txt, a.txt"));
    let st = ws.run(&["status"]);
    assert_eq!(st.code, 0, "{}", st.stdout);
}

/// A UTF-8 byte-order mark (as editors on Windows write) before a file
/// with several top-level keys, in the pipeline and in a params file.
#[test]
fn a_byte_order_mark_is_accepted() {
    let ws = Ws::new("");
    ws.write(
        "mlcycle.yaml",
        "\u{feff}params_file: params.yaml\nstages:\n  s:\n    run: echo ${params.lr} > ${outputs.out}\n    params: [lr]\n    outs: [out.txt]\n",
    );
    ws.write("params.yaml", "\u{feff}lr: 0.5\nother: 1\n");
    let r = ws.run(&["run"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert_eq!(ws.read("out.txt"), "0.5\n");
}

/// A dep that another process rewrites while mlcycle hashes it is never a
/// crash (hashing a memory-mapped file that shrinks raised SIGBUS).
#[test]
fn a_dep_rewritten_while_hashed_never_crashes() {
    let ws = Ws::new(
        "stages:\n  s:\n    run: wc -c < big.bin > ${outputs.out}\n    deps: [big.bin]\n    outs: [out.txt]\n",
    );
    let big = vec![7u8; 8 << 20];
    std::fs::write(ws.path().join("big.bin"), &big).unwrap();
    let path = ws.path().join("big.bin");
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut i = 0u8;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                // Truncate, then fill again: the file shrinks under a reader.
                let _ = std::fs::write(&path, b"");
                let _ = std::fs::write(&path, vec![i; 8 << 20]);
                i = i.wrapping_add(1);
            }
        })
    };
    for _ in 0..40 {
        let r = ws.run(&["status"]);
        assert!(
            r.code == 0 || r.code == 1 || r.code == 2,
            "status died (code {}): {}",
            r.code,
            r.stderr
        );
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    writer.join().unwrap();
}

/// A folder dep that holds another stage's output depends on that stage,
/// even when the reader is declared first and runs one stage at a time; on
/// a fresh workspace the folder need not exist yet.
#[test]
fn a_folder_dep_runs_after_the_stages_that_write_into_it() {
    let ws = Ws::new(
        "stages:\n  count:\n    run: ls data > ${outputs.list}\n    deps: [data/]\n    outs: [list.txt]\n  clean:\n    run: mkdir -p data && echo clean > data/clean.csv\n    outs: [data/clean.csv]\n",
    );
    let r = ws.run(&["run", "-j", "1"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert_eq!(ws.read("list.txt"), "clean.csv\n");
    let st = ws.run(&["status"]);
    assert_eq!(st.code, 0, "fresh right after a run: {}", st.stdout);
    let dag = ws.run(&["dag", "--format", "text"]);
    assert!(dag.code == 0, "{}", dag.stderr);
}

/// A stage whose dep folder holds its own output reads what it writes: a
/// cycle, named with the output inside the folder (it used to rerun on
/// every run with "file `data/` changed").
#[test]
fn a_dep_folder_holding_the_stages_own_output_is_a_cycle() {
    let ws = Ws::new(
        "stages:\n  summary:\n    run: ls data > data/summary.txt\n    deps: [data/]\n    outs: [data/summary.txt]\n",
    );
    ws.write("data/raw.csv", "x\n1\n");
    let r = ws.run(&["validate"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    let flat = r
        .stderr
        .replace('│', " ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    assert!(
        flat.contains(
            "stage `summary` reads `data`, which holds its own output `data/ summary.txt`"
        ) || flat.contains(
            "stage `summary` reads `data`, which holds its own output `data/summary.txt`"
        ),
        "{}",
        r.stderr
    );
}

/// A built-in kind's path param is a dep like `deps:`: `dataset.csv` reads
/// a file another stage writes, so it runs after it, also on a fresh
/// workspace where the file does not exist yet.
#[test]
fn a_path_param_is_wired_to_the_stage_that_writes_the_file() {
    let ws = Ws::new(
        "stages:\n  load:\n    uses: dataset.csv\n    with: {path: data/raw.csv, target: y}\n  fetch:\n    run: mkdir -p data && printf 'x,y\\n1,2\\n3,4\\n' > data/raw.csv\n    outs: [data/raw.csv]\n",
    );
    let r = ws.run(&["run", "-j", "1"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert_eq!(r.outcome("load").as_deref(), Some("ran"), "{}", r.stdout);
    assert_eq!(ws.run(&["status"]).code, 0);
    // A change to the file reruns the reader through its producer.
    ws.write(
        "mlcycle.yaml",
        &ws.read("mlcycle.yaml").replace("3,4", "5,6"),
    );
    let st = ws.run(&["status"]);
    assert_eq!(st.code, 1);
    assert!(st.stdout.contains("load"), "{}", st.stdout);
}

/// A dep written as an absolute path inside the workspace is the same path
/// as its relative spelling: the output of the stage that writes it.
#[test]
fn an_absolute_dep_inside_the_workspace_is_an_output() {
    let ws = Ws::new("");
    let abs = ws.path().canonicalize().unwrap().join("a.txt");
    ws.write(
        "mlcycle.yaml",
        &format!(
            "stages:\n  b:\n    run: cat {0} > ${{outputs.b}}\n    deps: [{0}]\n    outs: [b.txt]\n  a:\n    run: echo a > a.txt\n    outs: [a.txt]\n",
            abs.display()
        ),
    );
    let r = ws.run(&["run", "-j", "1"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert_eq!(ws.read("b.txt"), "a\n");
    assert_eq!(ws.run(&["status"]).code, 0);
}

/// Every cycle is reported, not only the first.
#[test]
fn every_cycle_is_reported() {
    let ws = Ws::new(
        "stages:\n  a:\n    run: cat b.txt > a.txt\n    deps: [b.txt]\n    outs: [a.txt]\n  b:\n    run: cat a.txt > b.txt\n    deps: [a.txt]\n    outs: [b.txt]\n  c:\n    run: cat d.txt > c.txt\n    deps: [d.txt]\n    outs: [c.txt]\n  d:\n    run: cat c.txt > d.txt\n    deps: [c.txt]\n    outs: [d.txt]\n",
    );
    let r = ws.run(&["validate"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("a → b → a"), "{}", r.stderr);
    assert!(r.stderr.contains("c → d → c"), "{}", r.stderr);
}

/// A NUL byte in a param (from the file, a params file or `-p`) is refused
/// at validation, at its key, instead of failing the stage when it starts.
#[test]
fn a_nul_byte_is_refused_at_its_key() {
    let ws = Ws::new(
        "params_file: params.yaml\nparams:\n  msg: \"a\\0b\"\nstages:\n  s:\n    run: echo ${params.msg} ${params.other} > ${outputs.out}\n    params: [msg, other]\n    outs: [out.txt]\n",
    );
    ws.write("params.yaml", "other: \"x\\0\"\n");
    let r = ws.run(&["validate"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("mlcycle.yaml:3:8"), "{}", r.stderr);
    assert!(r.stderr.contains("params.yaml:1:8"), "{}", r.stderr);
    assert_eq!(r.stderr.matches("a NUL byte cannot be passed").count(), 2);
}

/// `env:` names must be variable names, and two deps may not map to one
/// `MLCYCLE_IN_*` variable (`a-b` and `a_b` are both `MLCYCLE_IN_A_B`).
#[test]
fn environment_names_are_checked() {
    let ws = Ws::new(
        "stages:\n  s:\n    run: echo hi > out.txt\n    deps: [a-b.txt, a_b.txt]\n    outs: [out.txt]\n    env: {A=B: 1, 9X: 2, OK_1: 3}\n",
    );
    ws.write("a-b.txt", "1");
    ws.write("a_b.txt", "2");
    let r = ws.run(&["validate"]);
    assert_eq!(r.code, 2);
    let flat = r
        .stderr
        .replace('│', " ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    assert!(
        flat.contains("`A=B` in `env:` of stage `s` is not a variable name"),
        "{flat}"
    );
    assert!(flat.contains("`9X` in `env:`"), "{flat}");
    assert!(!flat.contains("`OK_1`"), "{flat}");
    assert!(flat.contains("would both be `$MLCYCLE_IN_A_B`"), "{flat}");
}

/// A stage name too long to name its log file after is refused (its log
/// used to be lost, and `runs show --logs` then called the stage fresh).
#[test]
fn a_stage_name_too_long_for_a_file_name_is_refused() {
    let name = "s".repeat(260);
    let ws = Ws::new(&format!(
        "stages:\n  {name}:\n    run: echo hi > out.txt\n    outs: [out.txt]\n"
    ));
    let r = ws.run(&["validate"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    let flat = |s: &str| {
        s.replace('│', " ")
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    };
    assert!(
        flat(&r.stderr).contains("is 260 characters long; the limit is 200"),
        "{}",
        r.stderr
    );
    // A 100 000-character name is refused the same way, without a panic.
    let name = "s".repeat(100_000);
    let ws = Ws::new(&format!(
        "stages:\n  {name}:\n    run: echo hi > out.txt\n    outs: [out.txt]\n"
    ));
    let r = ws.run(&["validate"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(!r.stderr.contains("panicked"), "{}", r.stderr);
    // YAML allows implicit keys of 1024 characters at most: the parser
    // refuses it first, and the error names the place without a snippet
    // (drawing a label past column 65 535 used to panic).
    assert!(flat(&r.stderr).contains("mlcycle.yaml:2:"), "{}", r.stderr);
}

/// A problem past column 65 535 (a long one-line JSON pipeline) is reported
/// with its place, without a snippet, instead of panicking the renderer.
#[test]
fn a_problem_far_along_one_line_is_reported_without_a_panic() {
    let mut stages: Vec<String> = (0..2000)
        .map(|i| {
            format!("\"s{i}\": {{\"run\": \"echo {i} > o{i}.txt\", \"outs\": [\"o{i}.txt\"]}}")
        })
        .collect();
    stages.push("\"last\": {\"run\": \"echo\", \"oust\": [\"x.txt\"]}".into());
    let ws = Ws::new(&format!("{{\"stages\": {{{}}}}}\n", stages.join(", ")));
    let r = ws.run(&["validate"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(!r.stderr.contains("panicked"), "{}", r.stderr);
    assert!(r.stderr.contains("oust"), "{}", r.stderr);
    assert!(r.stderr.contains("(at mlcycle.yaml:1:"), "{}", r.stderr);
}

/// Runs mlcycle with a time limit, so that a hang fails the test instead
/// of stalling it.
fn run_limited(ws: &Ws, args: &[&str]) -> common::Run {
    let out = std::process::Command::new("timeout")
        .arg("20")
        .arg(common::bin())
        .args(args)
        .current_dir(ws.path())
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let r = common::Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    assert_ne!(r.code, 124, "mlcycle {args:?} hung");
    r
}

/// A FIFO or a device as a dep or as `params_file:` hung (or read /dev/zero
/// into memory); anything but a regular file or folder is refused.
#[test]
fn fifos_and_devices_are_refused_not_read() {
    let ws = Ws::new(
        "stages:\n  s:\n    run: echo hi > ${outputs.out}\n    deps: [pipe]\n    outs: [out.txt]\n",
    );
    assert!(std::process::Command::new("mkfifo")
        .arg(ws.path().join("pipe"))
        .status()
        .unwrap()
        .success());
    // The stage that reads it is blocked, with the reason; a run fails it.
    let r = run_limited(&ws, &["status"]);
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert_eq!(r.outcome("s").as_deref(), Some("blocked"), "{}", r.stdout);
    assert!(r.stdout.contains("is a named pipe (FIFO)"), "{}", r.stdout);
    let r = run_limited(&ws, &["run"]);
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("is a named pipe (FIFO)"), "{}", r.stdout);
    ws.write(
        "mlcycle.yaml",
        "params_file: /dev/zero\nstages:\n  s:\n    run: echo hi > ${outputs.out}\n    deps: [/dev/zero]\n    outs: [out.txt]\n",
    );
    let r = run_limited(&ws, &["validate"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("is a device"), "{}", r.stderr);
}

/// YAML merge keys (`<<: *base`), common in params files, are applied.
#[test]
fn merge_keys_are_applied() {
    let ws = Ws::new(
        "params_file: params.yaml\nstages:\n  s:\n    run: echo ${params.fine.epochs} ${params.fine.lr} > ${outputs.out}\n    params: [fine.epochs, fine.lr]\n    outs: [out.txt]\n",
    );
    ws.write(
        "params.yaml",
        "base: &base\n  epochs: 10\n  lr: 0.1\nfine:\n  <<: *base\n  lr: 0.01\n",
    );
    let r = ws.run(&["run"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert_eq!(ws.read("out.txt"), "10 0.01\n");
}

/// An integer too large for 64 bits is refused the same way from the file
/// and from `-p` (from the file it was refused at 20 digits as "invalid
/// YAML", and silently became a float at 39; `-p` took both).
#[test]
fn integers_beyond_64_bits_are_refused_from_the_file_and_from_p() {
    let yaml = |n: &str| {
        format!("params:\n  seed: {n}\nstages:\n  s:\n    run: echo ${{params.seed}} > ${{outputs.out}}\n    params: [seed]\n    outs: [out.txt]\n")
    };
    for digits in [
        "12345678901234567890123",
        "1234567890123456789012345678901234567890123",
    ] {
        let ws = Ws::new(&yaml(digits));
        let r = ws.run(&["validate"]);
        assert_eq!(r.code, 2, "{}", r.stderr);
        assert!(
            flat(&r.stderr).contains("does not fit in 64 bits"),
            "{}",
            r.stderr
        );
        assert!(r.stderr.contains("mlcycle.yaml:2:9"), "{}", r.stderr);
        let ws = Ws::new(&yaml("1"));
        let r = ws.run(&["validate", "-p", &format!("seed={digits}")]);
        assert_eq!(r.code, 2, "{}", r.stderr);
        assert!(
            flat(&r.stderr).contains("does not fit in 64 bits"),
            "{}",
            r.stderr
        );
    }
    // The largest 64-bit values and quoted long numbers pass, exactly.
    let ws = Ws::new(&yaml("\"12345678901234567890123\""));
    assert_eq!(ws.run(&["run"]).code, 0);
    assert_eq!(ws.read("out.txt"), "12345678901234567890123\n");
    let ws = Ws::new(&yaml("18446744073709551615"));
    assert_eq!(ws.run(&["run"]).code, 0);
    assert_eq!(ws.read("out.txt"), "18446744073709551615\n");
}

/// A second YAML document is refused with the `---` that starts it marked.
#[test]
fn a_second_document_is_marked() {
    let ws = Ws::new("stages:\n  a:\n    run: echo\n---\nstages:\n  b:\n    run: echo\n");
    let r = ws.run(&["validate"]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("more than one YAML document"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("mlcycle.yaml:4:1"), "{}", r.stderr);
}

/// Two deps with the same default name (two built-ins' `data`) stay
/// allowed; named outputs and deps may be reordered without a rerun.
#[test]
fn same_default_names_are_allowed_and_named_lists_may_be_reordered() {
    let ws = Ws::new(
        "stages:\n  a:\n    uses: util.import\n    with: {path: x.txt}\n  b:\n    uses: util.import\n    with: {path: y.txt}\n  j:\n    run: cat artifacts/a/data artifacts/b/data > ${outputs.j}; touch ${outputs.k}\n    deps: [a.data, b.data]\n    outs: [j: j.txt, k: k.txt]\n",
    );
    ws.write("x.txt", "x\n");
    ws.write("y.txt", "y\n");
    let r = ws.run(&["run"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert_eq!(ws.read("j.txt"), "x\ny\n");
    let yaml = ws
        .read("mlcycle.yaml")
        .replace("[j: j.txt, k: k.txt]", "[k: k.txt, j: j.txt]");
    ws.write("mlcycle.yaml", &yaml);
    assert_eq!(ws.run(&["run"]).code, 0);
    let again = ws
        .read("mlcycle.yaml")
        .replace("[k: k.txt, j: j.txt]", "[j: j.txt, k: k.txt]");
    ws.write("mlcycle.yaml", &again);
    let st = ws.run(&["status"]);
    assert_eq!(st.code, 0, "{}", st.stdout);
}

/// `env:` may not replace the variables mlcycle sets, and a command line
/// that starts with `-` is a command, not a shell option.
#[test]
fn reserved_variables_and_dash_commands() {
    let ws = Ws::new(
        "stages:\n  s:\n    run: echo hi > out.txt\n    outs: [out.txt]\n    env: {MLCYCLE_STAGE: zzz}\n",
    );
    let r = ws.run(&["validate"]);
    assert_eq!(r.code, 2);
    assert!(
        flat(&r.stderr).contains("would replace a variable mlcycle sets"),
        "{}",
        r.stderr
    );
    let ws = Ws::new("stages:\n  s:\n    run: -h\n");
    let r = ws.run(&["run"]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains("-h: not found")
            || r.stdout.contains("-h: not found")
            || r.stderr.contains("not found"),
        "{}{}",
        r.stdout,
        r.stderr
    );
    assert!(!r.stderr.contains("Illegal option"), "{}", r.stderr);
}

/// The workspace root as a dep holds every output: a stage with outputs
/// that reads it reads what it writes; one without runs after all others,
/// and mlcycle's own state is not part of what it reads.
#[test]
fn the_workspace_root_as_a_dep() {
    let ws = Ws::new(
        "stages:\n  all:\n    run: echo reading\n    deps: [./]\n  a:\n    run: echo a > a.txt\n    outs: [a.txt]\n",
    );
    let r = ws.run(&["run", "-j", "1"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let st = ws.run(&["status"]);
    assert_eq!(st.code, 0, "fresh after a run: {}", st.stdout);
    let ws = Ws::new(
        "stages:\n  all:\n    run: ls > listing.txt\n    deps: [.]\n    outs: [listing.txt]\n",
    );
    let r = ws.run(&["validate"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("holds its own output"), "{}", r.stderr);
}

/// `../<workspace>/data/a.txt` leaves the workspace and comes back: the
/// same path as `data/a.txt`.
#[test]
fn a_path_that_leaves_and_reenters_the_workspace() {
    let ws = Ws::new("");
    let name = ws
        .path()
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    ws.write(
        "mlcycle.yaml",
        &format!("stages:\n  r:\n    run: cat ../{name}/data/a.txt > r.txt\n    deps: [../{name}/data/a.txt]\n    outs: [r.txt]\n  w:\n    run: mkdir -p data && echo w > data/a.txt\n    outs: [data/a.txt]\n"),
    );
    let r = ws.run(&["run", "-j", "1"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert_eq!(ws.read("r.txt"), "w\n");
    assert_eq!(ws.run(&["status"]).code, 0);
}

/// `always_changed: true` runs every time; `frozen: true` keeps a stage's
/// result although it is stale, and `status` says so without failing.
#[test]
fn always_changed_and_frozen_stages() {
    let ws = Ws::new(
        "params:\n  n: 1\nstages:\n  poll:\n    run: echo same > ${outputs.poll}\n    outs: [poll.txt]\n    always_changed: true\n  keep:\n    run: echo ${params.n} > ${outputs.keep}\n    params: [n]\n    outs: [keep.txt]\n    frozen: true\n",
    );
    assert_eq!(ws.run(&["run"]).code, 0);
    let again = ws.run(&["run"]);
    assert_eq!(
        again.outcome("poll").as_deref(),
        Some("ran"),
        "{}",
        again.stdout
    );
    assert_eq!(
        again.outcome("keep"),
        None,
        "fresh stages are only counted: {}",
        again.stdout
    );
    let r = ws.run(&["run", "-p", "n=2"]);
    assert_eq!(r.code, 0);
    assert_eq!(ws.read("keep.txt"), "1\n", "a frozen stage is not rerun");
    let st = ws.run(&["status", "-p", "n=2", "keep"]);
    assert_eq!(st.code, 0, "{}", st.stdout);
    assert!(
        st.stdout.contains("frozen") && st.stdout.contains("param `n` changed"),
        "{}",
        st.stdout
    );
    let forced = ws.run(&["run", "-p", "n=2", "-f", "keep"]);
    assert_eq!(forced.code, 0);
    assert_eq!(ws.read("keep.txt"), "2\n");
}

/// `--force` forces only the stages named; `--force-downstream` also
/// everything after them.
#[test]
fn force_and_force_downstream() {
    let ws = Ws::new(
        "stages:\n  a:\n    run: echo a > a.txt\n    outs: [a.txt]\n  b:\n    run: cat a.txt > b.txt\n    deps: [a.txt]\n    outs: [b.txt]\n  c:\n    run: cat b.txt > c.txt\n    deps: [b.txt]\n    outs: [c.txt]\n",
    );
    assert_eq!(ws.run(&["run"]).code, 0);
    let r = ws.run(&["run", "-f", "b"]);
    assert_eq!(r.outcome("a"), None, "{}", r.stdout);
    assert!(r.stdout.contains("1 ran, 1 fresh"), "{}", r.stdout);
    assert_eq!(r.outcome("b").as_deref(), Some("ran"), "{}", r.stdout);
    assert_eq!(r.outcome("c"), None, "{}", r.stdout);
    let r = ws.run(&["run", "--force-downstream", "b"]);
    assert_eq!(r.outcome("a"), None, "{}", r.stdout);
    assert_eq!(r.outcome("b").as_deref(), Some("ran"), "{}", r.stdout);
    assert_eq!(r.outcome("c").as_deref(), Some("ran"), "{}", r.stdout);
}

/// Reasons name what changed, in the user's words: a renamed dep is not
/// the internal key `names.inputs.src`, and a restore after `mlcycle.lock`
/// was deleted is not a "first run".
#[test]
fn reasons_say_what_changed_in_the_users_words() {
    let yaml = |n: &str| {
        format!("stages:\n  s:\n    run: cat ${{inputs.{n}}} > o.txt\n    deps: [{n}: d.csv]\n    outs: [o.txt]\n")
    };
    let ws = Ws::new(&yaml("src"));
    ws.write("d.csv", "1\n");
    assert_eq!(ws.run(&["run"]).code, 0);
    ws.write("mlcycle.yaml", &yaml("source"));
    let st = ws.run(&["status"]);
    assert!(
        st.stdout.contains("dep \"d.csv\" is now named `source`"),
        "{}",
        st.stdout
    );
    assert!(!st.stdout.contains("names.inputs"), "{}", st.stdout);
    assert_eq!(ws.run(&["run"]).code, 0);
    std::fs::remove_file(ws.path().join("mlcycle.lock")).unwrap();
    let r = ws.run(&["run"]);
    assert_eq!(r.outcome("s").as_deref(), Some("restored"), "{}", r.stdout);
    assert!(r.stdout.contains("not in mlcycle.lock"), "{}", r.stdout);
    assert!(!r.stdout.contains("first run"), "{}", r.stdout);
}

/// Two workspaces sharing one `cache_dir:`: a run cleans only temp files
/// of writers that are gone, never those of a writer still running.
#[test]
fn a_shared_cache_keeps_a_live_writers_temp_files() {
    let cache = tempfile::tempdir().unwrap();
    let ws = Ws::new(&format!(
        "cache_dir: {}\nstages:\n  s:\n    run: echo hi > o.txt\n    outs: [o.txt]\n",
        cache.path().display()
    ));
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap()
        .trim()
        .replace(
            |c: char| !(c.is_ascii_alphanumeric() || c == '.' || c == '_'),
            "_",
        );
    let tmp = cache.path().join("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    // The test process stands for the other workspace's live writer.
    let live = tmp.join(format!("{host}-{}-7", std::process::id()));
    std::fs::write(&live, b"half an object").unwrap();
    let r = ws.run(&["run"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(live.exists(), "a live writer's temp file was deleted");
}

/// A folder output's empty sub-folders are part of it: restored with it,
/// and a missing one makes the output "modified" (they were dropped on
/// restore while the stage was reported fresh).
#[test]
fn empty_subfolders_of_a_folder_output_are_kept() {
    let ws = Ws::new(
        "params:\n  n: 1\nstages:\n  s:\n    run: mkdir -p out/keep out/logs/empty && echo ${params.n} > out/keep/a.txt\n    params: [n]\n    outs: [out/]\n",
    );
    assert_eq!(ws.run(&["run"]).code, 0);
    assert_eq!(ws.run(&["run", "-p", "n=2"]).code, 0);
    // Back to n=1: restored from the cache, empty folder included.
    let r = ws.run(&["run"]);
    assert_eq!(r.outcome("s").as_deref(), Some("restored"), "{}", r.stdout);
    assert!(
        ws.path().join("out/logs/empty").is_dir(),
        "the empty folder was dropped"
    );
    assert_eq!(ws.run(&["status"]).code, 0);
    std::fs::remove_dir(ws.path().join("out/logs/empty")).unwrap();
    let st = ws.run(&["status"]);
    assert_eq!(
        st.code, 1,
        "a missing empty folder changes the output: {}",
        st.stdout
    );
}

/// File names that are not UTF-8 keep their bytes: two Latin-1 names in a
/// folder output both come back from the cache (they collapsed into one
/// `caf\u{FFFD}.txt`), and renaming one inside a folder dep is noticed.
#[test]
fn non_utf8_names_are_kept_byte_for_byte() {
    use std::os::unix::ffi::OsStrExt;
    let ws = Ws::new(
        "stages:\n  s:\n    run: mkdir -p out && touch \"out/$(printf 'caf\\351')\" \"out/$(printf 'caf\\350')\"\n    outs: [out/]\n  r:\n    run: ls in > listing.txt\n    deps: [in/]\n    outs: [listing.txt]\n",
    );
    std::fs::create_dir_all(ws.path().join("in")).unwrap();
    let a = ws
        .path()
        .join("in")
        .join(std::ffi::OsStr::from_bytes(b"x\xe9"));
    std::fs::write(&a, b"1").unwrap();
    let r = ws.run(&["run"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    std::fs::remove_dir_all(ws.path().join("out")).unwrap();
    let r = ws.run(&["run"]);
    assert_eq!(r.outcome("s").as_deref(), Some("restored"), "{}", r.stdout);
    let mut names: Vec<Vec<u8>> = std::fs::read_dir(ws.path().join("out"))
        .unwrap()
        .map(|e| e.unwrap().file_name().as_bytes().to_vec())
        .collect();
    names.sort();
    assert_eq!(names, vec![b"caf\xe8".to_vec(), b"caf\xe9".to_vec()]);
    assert_eq!(ws.run(&["status"]).code, 0);
    // Renamed to another non-UTF-8 name of the same lossy text.
    let b = ws
        .path()
        .join("in")
        .join(std::ffi::OsStr::from_bytes(b"x\xe8"));
    std::fs::rename(&a, &b).unwrap();
    let st = ws.run(&["status"]);
    assert_eq!(st.code, 1, "the rename must be noticed: {}", st.stdout);
}

/// Output that cannot be written (`mlcycle run > log` on a full disk) is an
/// error with a message and exit code 74, never a panic; the run itself
/// completes and is recorded.
#[test]
fn a_full_stdout_is_reported_not_a_panic() {
    let ws = Ws::new("stages:\n  s:\n    run: echo hi > o.txt\n    outs: [o.txt]\n");
    for args in [&["run"][..], &["status", "-v"][..], &["stages"][..]] {
        let out = ws
            .cmd(args)
            .stdout(std::fs::File::create("/dev/full").unwrap())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert_eq!(out.status.code(), Some(74), "{args:?}: {stderr}");
        assert!(stderr.contains("cannot write the output"), "{stderr}");
    }
    assert_eq!(ws.read("o.txt"), "hi\n");
    assert_eq!(ws.run(&["status"]).code, 0);
}

/// Deep nesting is refused before the parser sees it (100 000 nested flow
/// mappings took the parser over half a minute, in a pipeline and in a
/// params file alike).
#[test]
fn deep_nesting_is_refused_at_once() {
    let n = 100_000;
    let deep = format!("{}1{}", "{a: ".repeat(n), "}".repeat(n));
    let ws = Ws::new(&format!("params:\n  x: {deep}\nstages: {{}}\n"));
    let r = run_limited(&ws, &["validate"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        flat(&r.stderr).contains("nests deeper than 128 levels"),
        "{}",
        r.stderr
    );
    let ws = Ws::new("params_file: p.yaml\nstages: {}\n");
    ws.write("p.yaml", &format!("x: {deep}\n"));
    let r = run_limited(&ws, &["validate"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        flat(&r.stderr).contains("nests deeper than 128 levels"),
        "{}",
        r.stderr
    );
}

/// A folder reached through a symlink inside the workspace is the folder
/// it leads to: two stages writing `real/x.txt` and `link/x.txt` write one
/// file (refused), and a dep spelled through the link runs after the stage
/// that writes the file.
#[test]
fn symlinks_inside_the_workspace_give_one_identity() {
    let ws = Ws::new(
        "stages:\n  a:\n    run: echo a > real/x.txt\n    outs: [real/x.txt]\n  b:\n    run: echo b > link/x.txt\n    outs: [link/x.txt]\n",
    );
    std::fs::create_dir(ws.path().join("real")).unwrap();
    std::os::unix::fs::symlink("real", ws.path().join("link")).unwrap();
    let r = ws.run(&["validate"]);
    assert_eq!(r.code, 2, "{}{}", r.stdout, r.stderr);
    assert!(flat(&r.stderr).contains("also writes"), "{}", r.stderr);

    let ws = Ws::new(
        "stages:\n  read:\n    run: cat link/x.txt > y.txt\n    deps: [link/x.txt]\n    outs: [y.txt]\n  write:\n    run: echo hello > real/x.txt\n    outs: [real/x.txt]\n",
    );
    std::fs::create_dir(ws.path().join("real")).unwrap();
    std::os::unix::fs::symlink("real", ws.path().join("link")).unwrap();
    let r = ws.run(&["run", "-j", "1"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert_eq!(ws.read("y.txt"), "hello\n");
    let st = ws.run(&["status"]);
    assert_eq!(st.code, 0, "{}", st.stdout);
    let dag = ws.run(&["dag"]);
    assert!(dag.stdout.contains("write"), "{}", dag.stdout);
}

/// A source file inside a folder that another stage declares as its output
/// is never deleted: `run` and `validate` refuse before anything is touched
/// (the first run deleted `data/raw.csv`, which existed nowhere else).
#[test]
fn a_source_inside_an_output_folder_is_refused_not_deleted() {
    let ws = Ws::new(
        "stages:\n  mk:\n    run: mkdir -p data && echo made > data/summary.txt\n    outs: [data/]\n  rd:\n    run: cat data/raw.csv > r.txt\n    deps: [data/raw.csv]\n    outs: [r.txt]\n",
    );
    ws.write("data/raw.csv", "precious\n");
    for cmd in ["run", "validate"] {
        let r = ws.run(&[cmd]);
        assert_eq!(r.code, 2, "{cmd}: {}{}", r.stdout, r.stderr);
        let e = flat(&r.stderr);
        assert!(
            e.contains("`data/raw.csv`, which is inside output `data` of stage `mk`"),
            "{cmd}: {e}"
        );
    }
    assert_eq!(ws.read("data/raw.csv"), "precious\n");
    assert!(!ws.exists("data/summary.txt"), "nothing may have run");
}

/// Bytes mlcycle did not write at an output path (a file made by hand
/// before the stage existed, an output edited by hand) are moved aside into
/// `.mlcycle/displaced/`, never deleted; what a stage wrote before (its
/// record, the cache, or its own failed run) is replaced without a fuss.
#[test]
fn unknown_bytes_at_an_output_path_are_kept() {
    let ws = Ws::new(
        "params:\n  n: 1\nstages:\n  train:\n    run: echo ${params.n} > model.txt\n    params: [n]\n    outs: [model.txt]\n  f:\n    run: echo partial > f.txt && test -f go\n    outs: [f.txt]\n",
    );
    ws.write("model.txt", "made by hand\n");
    let r = ws.run(&["run"]);
    assert_eq!(r.outcome("train").as_deref(), Some("ran"), "{}", r.stdout);
    assert!(r.stderr.contains("moved them aside"), "{}", r.stderr);
    assert_eq!(ws.read(".mlcycle/displaced/1/model.txt"), "made by hand\n");
    assert_eq!(ws.read("model.txt"), "1\n");
    // Edited by hand, then restored: the edit is kept aside too.
    ws.write("model.txt", "edited\n");
    let r = ws.run(&["run", "train"]);
    assert_eq!(
        r.outcome("train").as_deref(),
        Some("restored"),
        "{}",
        r.stdout
    );
    assert_eq!(ws.read(".mlcycle/displaced/2/model.txt"), "edited\n");
    // What the stage wrote itself is replaced quietly.
    let r = ws.run(&["run", "-p", "n=2", "train"]);
    assert_eq!(r.outcome("train").as_deref(), Some("ran"), "{}", r.stdout);
    assert!(!r.stderr.contains("moved them aside"), "{}", r.stderr);
    // A failed run's own leftovers (an empty f.txt from the redirection)
    // are not "unknown" either.
    assert_eq!(ws.run(&["run", "f"]).code, 1);
    assert!(ws.exists("f.txt"));
    ws.write("go", "");
    let r = ws.run(&["run", "f"]);
    assert_eq!(r.outcome("f").as_deref(), Some("ran"), "{}", r.stdout);
    assert!(!r.stderr.contains("moved them aside"), "{}", r.stderr);
}

/// A missing source file blocks only the stages that read it (and those
/// after them): the others run, `status` says `blocked`, `validate` stays
/// strict. Before, one missing file made every command exit 2.
#[test]
fn a_missing_source_blocks_only_its_readers() {
    let ws = Ws::new(
        "stages:\n  a:\n    run: cat data/a.csv > a.txt\n    deps: [data/a.csv]\n    outs: [a.txt]\n  b:\n    run: cat data/b.csv > b.txt\n    deps: [data/b.csv]\n    outs: [b.txt]\n  c:\n    run: cat b.txt > c.txt\n    deps: [b.txt]\n    outs: [c.txt]\n  d:\n    uses: dataset.csv\n    with: {path: data/d.csv}\n",
    );
    ws.write("data/a.csv", "1\n");
    assert_eq!(ws.run(&["validate"]).code, 2);
    let st = ws.run(&["status", "-v"]);
    assert_eq!(st.code, 1, "{}{}", st.stdout, st.stderr);
    assert_eq!(st.outcome("a").as_deref(), Some("stale"), "{}", st.stdout);
    for s in ["b", "c", "d"] {
        assert_eq!(
            st.outcome(s).as_deref(),
            Some("blocked"),
            "{s}: {}",
            st.stdout
        );
    }
    assert!(
        st.stdout.contains("input `data/b.csv` cannot be read"),
        "{}",
        st.stdout
    );
    let r = ws.run(&["run", "a"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    // A whole run: the blocked stages fail, their dependents are skipped,
    // and the rest still runs (without --keep-going).
    ws.write("data/a.csv", "2\n");
    let r = ws.run(&["run", "-j", "1"]);
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert_eq!(r.outcome("a").as_deref(), Some("ran"), "{}", r.stdout);
    assert_eq!(r.outcome("b").as_deref(), Some("failed"), "{}", r.stdout);
    assert_eq!(r.outcome("c").as_deref(), Some("skipped"), "{}", r.stdout);
    assert_eq!(r.outcome("d").as_deref(), Some("failed"), "{}", r.stdout);
    ws.write("data/b.csv", "b\n");
    ws.write("data/d.csv", "x\n1\n");
    let r = ws.run(&["run"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert_eq!(ws.run(&["status"]).code, 0);
}

/// `persist: true` outputs are left in place for the stage to update;
/// `cache: false` outputs stay out of the cache, so their stage reruns
/// instead of being restored.
#[test]
fn persist_and_uncached_outputs() {
    let ws = Ws::new(
        "params:\n  n: 1\nstages:\n  log:\n    run: echo ${params.n} >> log.txt\n    params: [n]\n    outs:\n      - log.txt: {persist: true}\n  big:\n    run: echo ${params.n} > big.bin\n    params: [n]\n    outs:\n      - blob: {path: big.bin, cache: false}\n",
    );
    assert_eq!(ws.run(&["run"]).code, 0);
    assert_eq!(ws.run(&["run", "-p", "n=2"]).code, 0);
    assert_eq!(ws.read("log.txt"), "1\n2\n");
    assert_eq!(ws.run(&["status", "-p", "n=2"]).code, 0);
    // big.bin's bytes are not in the cache: gone means rerun, not restore.
    let objects = walk(&ws.path().join(".mlcycle/cache/objects"));
    assert!(
        !objects.iter().any(|o| std::fs::read(o).unwrap() == b"2\n"),
        "a `cache: false` output was stored"
    );
    std::fs::remove_file(ws.path().join("big.bin")).unwrap();
    let r = ws.run(&["run", "-p", "n=2"]);
    assert_eq!(r.outcome("big").as_deref(), Some("ran"), "{}", r.stdout);
    let r = ws.run(&["run", "-p", "n=1"]);
    assert_eq!(r.outcome("big").as_deref(), Some("ran"), "{}", r.stdout);
    // Flags are checked like everything else.
    let bad = Ws::new(
        "stages:\n  s:\n    run: echo\n    outs:\n      - o.txt: {persits: true, cache: no}\n",
    );
    let r = bad.run(&["validate"]);
    assert_eq!(r.code, 2);
    let e = flat(&r.stderr);
    assert!(e.contains("did you mean `persist`"), "{e}");
    assert!(
        e.contains("`cache` of output `o.txt` of stage `s` must be true or false"),
        "{e}"
    );
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            if e.path().is_dir() {
                out.extend(walk(&e.path()));
            } else {
                out.push(e.path());
            }
        }
    }
    out
}

/// A folder dep's reason names the files inside it that changed, up to
/// three and a count, instead of only "file `data/` changed".
#[test]
fn a_folder_dep_reason_names_the_changed_files() {
    let ws = Ws::new(
        "stages:\n  s:\n    run: cat data/* > all.txt\n    deps: [data/]\n    outs: [all.txt]\n",
    );
    for i in 1..=6 {
        ws.write(&format!("data/f{i}.csv"), &i.to_string());
    }
    assert_eq!(ws.run(&["run"]).code, 0);
    ws.write("data/f2.csv", "changed");
    let st = ws.run(&["status"]);
    assert!(
        st.stdout
            .contains("folder `data/` changed: f2.csv (modified)"),
        "{}",
        st.stdout
    );
    ws.write("data/new.csv", "n");
    std::fs::remove_file(ws.path().join("data/f6.csv")).unwrap();
    ws.write("data/f1.csv", "changed");
    ws.write("data/f3.csv", "changed");
    let st = ws.run(&["status"]);
    assert!(
        st.stdout.contains(
            "folder `data/` changed: f1.csv (modified), f2.csv (modified), f3.csv (modified) and 2 more"
        ),
        "{}",
        st.stdout
    );
}

/// A write that would go through a symlink leading outside the workspace
/// is refused at the moment it happens, even when the link appeared after
/// validation (an earlier stage made it).
#[test]
fn writes_never_follow_a_symlink_out_of_the_workspace() {
    let outside = tempfile::tempdir().unwrap();
    let target = outside.path().display().to_string();
    let ws = Ws::new(&format!(
        "stages:\n  evil:\n    run: echo x > e.txt && ln -s {target} artifacts\n    outs: [e.txt]\n    always_changed: true\n  data:\n    uses: dataset.synthetic\n    with: {{kind: house_prices, rows: 10}}\n"
    ));
    // The link appears after `data` was validated: its write is refused.
    let r = ws.run(&["run", "-j", "1"]);
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert_eq!(r.outcome("data").as_deref(), Some("failed"), "{}", r.stdout);
    assert!(
        r.stdout.contains("which now leads outside the workspace"),
        "{}",
        r.stdout
    );
    // Nor does a restore from the cache write through it.
    std::fs::remove_file(ws.path().join("artifacts")).unwrap();
    assert_eq!(ws.run(&["run", "data"]).code, 0);
    std::fs::remove_dir_all(ws.path().join("artifacts")).unwrap();
    let r = ws.run(&["run", "-j", "1"]);
    assert_eq!(r.outcome("data").as_deref(), Some("failed"), "{}", r.stdout);
    assert!(r.stderr.contains("Restore failed"), "{}", r.stderr);
    // A link that is there when the pipeline loads is refused at once.
    let r = ws.run(&["validate"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        flat(&r.stderr).contains("which leads outside the workspace"),
        "{}",
        r.stderr
    );
    assert_eq!(
        std::fs::read_dir(outside.path()).unwrap().count(),
        0,
        "something was written outside the workspace"
    );
}

/// A damaged object in the cache is found when restoring, replaced by the
/// rerun, and later restores work again (before, a damaged folder entry
/// made every restore rerun the stage).
#[test]
fn a_damaged_cache_object_is_repaired_by_the_rerun() {
    let ws = Ws::new(
        "stages:\n  s:\n    run: mkdir -p out && echo hello > out/a.txt && echo two > out/b.txt\n    outs: [out/]\n",
    );
    assert_eq!(ws.run(&["run"]).code, 0);
    use std::os::unix::fs::PermissionsExt;
    for o in walk(&ws.path().join(".mlcycle/cache/objects")) {
        if std::fs::read(&o).unwrap() == b"hello\n" {
            std::fs::set_permissions(&o, std::fs::Permissions::from_mode(0o644)).unwrap();
            std::fs::write(&o, b"HELLO\n").unwrap();
        }
    }
    std::fs::remove_dir_all(ws.path().join("out")).unwrap();
    let r = ws.run(&["run"]);
    assert_eq!(r.outcome("s").as_deref(), Some("ran"), "{}", r.stdout);
    assert!(r.stderr.contains("is corrupt"), "{}", r.stderr);
    // What the failed restore copied is its own, not moved aside.
    assert!(!r.stderr.contains("moved them aside"), "{}", r.stderr);
    assert_eq!(ws.read("out/a.txt"), "hello\n");
    std::fs::remove_dir_all(ws.path().join("out")).unwrap();
    let r = ws.run(&["run"]);
    assert_eq!(r.outcome("s").as_deref(), Some("restored"), "{}", r.stdout);
    assert_eq!(ws.read("out/a.txt"), "hello\n");
}

/// When `mlcycle.lock` cannot be written (a full disk), the summary is
/// still printed, the command fails with the reason, and the run history
/// says `failed` with why (it said `killed`). The stages' results are not
/// lost: the next run reads them back.
#[test]
fn a_lock_file_that_cannot_be_written_fails_the_run_with_its_reason() {
    let ws = Ws::new(
        "stages:\n  a:\n    run: echo a > a.txt && mkdir -p mlcycle.lock/x\n    outs: [a.txt]\n",
    );
    let r = ws.run(&["run"]);
    assert_eq!(r.code, 2, "{}{}", r.stdout, r.stderr);
    assert_eq!(r.outcome("a").as_deref(), Some("ran"), "{}", r.stdout);
    assert!(flat(&r.stderr).contains("cannot write"), "{}", r.stderr);
    let runs = ws.run(&["runs", "show", "1"]);
    assert!(runs.stdout.contains("run 1  failed"), "{}", runs.stdout);
    assert!(
        runs.stdout.contains("error: cannot write"),
        "{}",
        runs.stdout
    );
    std::fs::remove_dir_all(ws.path().join("mlcycle.lock")).unwrap();
    let st = ws.run(&["status"]);
    assert_eq!(st.code, 0, "{}{}", st.stdout, st.stderr);
}

/// Empty sub-folders with names that are not UTF-8 come back byte for byte.
#[test]
fn non_utf8_empty_folder_names_are_kept() {
    use std::os::unix::ffi::OsStrExt;
    let ws = Ws::new(
        "stages:\n  s:\n    run: mkdir -p \"out/$(printf 'd\\351')\" \"out/$(printf 'd\\350')\"\n    outs: [out/]\n",
    );
    assert_eq!(ws.run(&["run"]).code, 0);
    std::fs::remove_dir_all(ws.path().join("out")).unwrap();
    let r = ws.run(&["run"]);
    assert_eq!(r.outcome("s").as_deref(), Some("restored"), "{}", r.stdout);
    let mut names: Vec<Vec<u8>> = std::fs::read_dir(ws.path().join("out"))
        .unwrap()
        .map(|e| e.unwrap().file_name().as_bytes().to_vec())
        .collect();
    names.sort();
    assert_eq!(names, vec![b"d\xe8".to_vec(), b"d\xe9".to_vec()]);
    assert_eq!(ws.run(&["status"]).code, 0);
}

/// An output's own name is never followed: a symlink there (`link ->
/// real`, made by the user) is moved aside and replaced by the stage's
/// folder; what another stage writes in `real/` is untouched.
#[test]
fn an_output_that_is_a_symlink_is_moved_aside_not_followed() {
    let ws = Ws::new(
        "stages:\n  a:\n    run: echo a > ${outputs.x}\n    outs: [real/x.txt]\n  c:\n    run: mkdir -p ${outputs.link} && echo q > ${outputs.link}/q\n    outs: [link/]\n",
    );
    std::fs::create_dir(ws.path().join("real")).unwrap();
    std::os::unix::fs::symlink("real", ws.path().join("link")).unwrap();
    let r = ws.run(&["run"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert_eq!(ws.read("real/x.txt"), "a\n");
    assert!(!ws.exists("real/q"));
    assert_eq!(ws.read("link/q"), "q\n");
    let moved = std::fs::symlink_metadata(ws.path().join(".mlcycle/displaced/1/link")).unwrap();
    assert!(moved.file_type().is_symlink());
    assert_eq!(ws.run(&["status"]).code, 0);
}

/// No output may reach mlcycle's own files through a symlink (`cfg -> .`
/// makes `cfg/mlcycle.yaml` the pipeline file), at load time or when the
/// link appears during the run.
#[test]
fn outputs_never_reach_mlcyles_own_files_through_a_link() {
    let ws = Ws::new(
        "stages:\n  b:\n    run: echo hacked > ${outputs.y}\n    outs: [{y: cfg/mlcycle.yaml}]\n  d:\n    run: echo hacked > ${outputs.j}\n    outs: [{j: m/mlcycle.db}]\n",
    );
    std::os::unix::fs::symlink(".", ws.path().join("cfg")).unwrap();
    std::fs::create_dir(ws.path().join(".mlcycle")).unwrap();
    std::os::unix::fs::symlink(".mlcycle", ws.path().join("m")).unwrap();
    let r = ws.run(&["run"]);
    assert_eq!(r.code, 2, "{}{}", r.stdout, r.stderr);
    let e = flat(&r.stderr);
    assert!(e.contains("a file mlcycle owns"), "{e}");
    assert!(ws.read("mlcycle.yaml").contains("stages:"));
    // A link made by an earlier stage during the run.
    let ws = Ws::new(
        "stages:\n  a:\n    run: ln -s . cfg && echo > a.txt\n    outs: [a.txt]\n  b:\n    run: echo hacked > ${outputs.y}\n    deps: [a.txt]\n    outs: [{y: cfg/mlcycle.yaml}]\n",
    );
    let r = ws.run(&["run"]);
    assert_eq!(
        r.outcome("b").as_deref(),
        Some("failed"),
        "{}{}",
        r.stdout,
        r.stderr
    );
    assert!(r.stdout.contains("belongs to mlcycle"), "{}", r.stdout);
    assert!(ws.read("mlcycle.yaml").contains("stages:"));
}

/// A file added by hand to an output folder after its stage wrote it, and
/// then read by another stage, is a source inside an output: refused, not
/// moved aside by the next restore (the check is per file, against the
/// folder's recorded manifest).
#[test]
fn a_hand_added_file_in_a_recorded_output_folder_is_refused() {
    let ws = Ws::new(
        "stages:\n  a:\n    run: mkdir -p ${outputs.out} && echo gen > ${outputs.out}/gen.txt\n    outs: [out/]\n",
    );
    assert_eq!(ws.run(&["run"]).code, 0);
    ws.write("out/user.txt", "USER\n");
    ws.write(
        "mlcycle.yaml",
        "stages:\n  a:\n    run: mkdir -p ${outputs.out} && echo gen > ${outputs.out}/gen.txt\n    outs: [out/]\n  b:\n    run: cat ${inputs.u} > ${outputs.o}\n    deps: [{u: out/user.txt}]\n    outs: [o.txt]\n  c:\n    run: cat ${inputs.g} > ${outputs.c}\n    deps: [{g: out/gen.txt}]\n    outs: [c.txt]\n",
    );
    let r = ws.run(&["run", "-f", "a"]);
    assert_eq!(r.code, 2, "{}{}", r.stdout, r.stderr);
    let e = flat(&r.stderr);
    assert!(e.contains("`out/user.txt`"), "{e}");
    assert!(
        !e.contains("`out/gen.txt`"),
        "what the stage wrote is no source: {e}"
    );
    assert_eq!(ws.read("out/user.txt"), "USER\n");
    // `status` says so before a run is tried.
    let st = ws.run(&["status"]);
    assert!(
        flat(&st.stderr).contains("refuses to start"),
        "{}",
        st.stderr
    );
}

/// A blocked stage never started: once its file is back unchanged, it is
/// fresh again (it was shown as "its last run did not finish").
#[test]
fn a_blocked_stage_keeps_its_record() {
    let ws = Ws::new(
        "stages:\n  s:\n    run: cat m.csv > o.txt\n    deps: [m.csv]\n    outs: [o.txt]\n",
    );
    ws.write("m.csv", "1\n");
    assert_eq!(ws.run(&["run"]).code, 0);
    std::fs::rename(ws.path().join("m.csv"), ws.path().join("away")).unwrap();
    assert_eq!(ws.run(&["run"]).code, 1);
    std::fs::rename(ws.path().join("away"), ws.path().join("m.csv")).unwrap();
    let st = ws.run(&["status"]);
    assert_eq!(st.code, 0, "{}", st.stdout);
}

/// After a run killed while a stage wrote into its output folder, the next
/// run is not refused as "a source inside an output": the journal shows the
/// stage started here, so the files are its own.
#[test]
fn a_killed_stage_leaves_no_false_source_in_output() {
    let ws = Ws::new(
        "stages:\n  s0:\n    run: mkdir -p out/s0 && echo A > out/s0/all.txt && sleep 30\n    outs: [out/s0/]\n  s1:\n    run: cat out/s0/all.txt > s1.txt\n    deps: [out/s0/all.txt]\n    outs: [s1.txt]\n",
    );
    let mut child = ws
        .cmd(&["run"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let t = std::time::Instant::now();
    while !ws.exists("out/s0/all.txt") && t.elapsed().as_secs() < 20 {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    // The orphaned `sleep` keeps running; end it (its process group).
    let _ = std::process::Command::new("pkill")
        .args(["-f", "sleep 30"])
        .status();
    ws.write(
        "mlcycle.yaml",
        "stages:\n  s0:\n    run: mkdir -p out/s0 && echo A > out/s0/all.txt\n    outs: [out/s0/]\n  s1:\n    run: cat out/s0/all.txt > s1.txt\n    deps: [out/s0/all.txt]\n    outs: [s1.txt]\n",
    );
    let r = ws.run(&["run"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert_eq!(ws.run(&["status"]).code, 0);
}

/// A dep that `run` would block is an error for `validate`, with what it is.
#[test]
fn validate_refuses_deps_that_cannot_be_read() {
    let ws = Ws::new(
        "stages:\n  s:\n    run: echo > o.txt\n    deps: [pipe, loop]\n    outs: [o.txt]\n",
    );
    assert!(std::process::Command::new("mkfifo")
        .arg(ws.path().join("pipe"))
        .status()
        .unwrap()
        .success());
    std::os::unix::fs::symlink("loop", ws.path().join("loop")).unwrap();
    let r = ws.run(&["validate"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    let e = flat(&r.stderr);
    assert!(e.contains("`pipe`: pipe is a named pipe (FIFO)"), "{e}");
    assert!(e.contains("`loop`, a symlink that points nowhere"), "{e}");
}

/// "Did you mean" looks at the files on disk too, not only at outputs.
#[test]
fn missing_deps_suggest_files_on_disk() {
    let ws = Ws::new("stages:\n  s:\n    run: echo\n    deps: [data/trian.csv]\n");
    ws.write("data/train.csv", "x\n");
    let r = ws.run(&["validate"]);
    assert!(
        flat(&r.stderr).contains("did you mean `data/train.csv`?"),
        "{}",
        r.stderr
    );
}

/// A stage that writes its output as a symlink fails, and no run ever
/// takes the link's target for the output: it used to be cleared before the
/// next run (a source file deleted because its bytes were in the cache).
#[test]
fn a_symlink_output_is_refused_and_its_target_is_never_cleared() {
    let ws = Ws::new(
        "stages:\n  link:\n    run: ln -s ../notes.txt ${outputs.f}\n    outs: [{f: out/f.txt}]\n",
    );
    ws.write("notes.txt", "hand-made data\n");
    for _ in 0..2 {
        let r = ws.run(&["run"]);
        assert_eq!(r.code, 1, "{}", r.stdout);
        assert!(
            r.stderr
                .contains("wrote its output `out/f.txt` as a symlink (to `../notes.txt`)"),
            "{}",
            r.stderr
        );
        assert_eq!(ws.read("notes.txt"), "hand-made data\n");
    }
    // The link the first run left was moved aside, not followed.
    assert!(
        std::fs::symlink_metadata(ws.path().join(".mlcycle/displaced/2/out/f.txt"))
            .unwrap()
            .file_type()
            .is_symlink()
    );

    // A link made by hand at an output's path, to a source file whose bytes
    // the cache holds: moved aside, the source file kept.
    let ws =
        Ws::new("stages:\n  w:\n    run: echo same > ${outputs.o}\n    outs: [{o: out/o.txt}]\n");
    assert_eq!(ws.run(&["run"]).code, 0);
    ws.write("keep.txt", "same\n");
    std::fs::remove_file(ws.path().join("out/o.txt")).unwrap();
    std::os::unix::fs::symlink("../keep.txt", ws.path().join("out/o.txt")).unwrap();
    let v = ws.run(&["validate"]);
    assert_eq!(v.code, 0, "{}", v.stderr);
    assert_eq!(ws.run(&["run", "--force"]).code, 0);
    assert_eq!(ws.read("keep.txt"), "same\n");
    assert!(!std::fs::symlink_metadata(ws.path().join("out/o.txt"))
        .unwrap()
        .file_type()
        .is_symlink());

    // `latest -> v1` written by the stage: refused, and the pipeline still
    // loads (the link was taken for a second writer of `v1`).
    let ws = Ws::new(
        "stages:\n  s:\n    run: echo v1 > ${outputs.v}; ln -sf v1.txt ${outputs.latest}\n    outs: [{v: out/v1.txt}, {latest: out/latest.txt}]\n",
    );
    let r = ws.run(&["run"]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("as a symlink"), "{}", r.stderr);
    let st = ws.run(&["status"]);
    assert_eq!(st.code, 1, "{}", st.stderr);
    assert!(!st.stderr.contains("duplicate_output"), "{}", st.stderr);
}

/// A named pipe, socket or device inside a folder output or dep holds no
/// bytes to hash: it is refused, not left out of the manifest (a restore
/// came back without it, and one added to a dep changed nothing).
#[test]
fn a_named_pipe_inside_a_folder_is_refused() {
    let ws = Ws::new(
        "stages:\n  d:\n    run: mkdir -p ${outputs.d} && echo a > ${outputs.d}/a.txt && mkfifo ${outputs.d}/pipe\n    outs: [{d: out/d/}]\n",
    );
    let r = ws.run(&["run"]);
    assert_eq!(r.code, 1, "{}", r.stdout);
    assert!(
        r.stderr.contains("holds a named pipe (FIFO) (pipe)"),
        "{}",
        r.stderr
    );
    let ws = Ws::new(
        "stages:\n  r:\n    run: ls data > ${outputs.o}\n    deps: [data]\n    outs: [{o: out/o.txt}]\n",
    );
    ws.write("data/a.txt", "a\n");
    assert_eq!(ws.run(&["run"]).code, 0);
    assert!(std::process::Command::new("mkfifo")
        .arg(ws.path().join("data/pipe"))
        .status()
        .unwrap()
        .success());
    let st = ws.run(&["status"]);
    assert_ne!(st.code, 0, "{}", st.stdout);
    assert!(
        st.stdout.contains("named pipe"),
        "{}\n{}",
        st.stdout,
        st.stderr
    );
}

/// mlcycle rewrites its lock on every run: a dep on it would make its
/// stage stale forever. Refused when the pipeline loads.
#[test]
fn a_dep_on_mlcycles_own_state_is_refused() {
    for dep in ["mlcycle.lock", ".mlcycle"] {
        let ws = Ws::new(&format!(
            "stages:\n  s:\n    run: echo > ${{outputs.o}}\n    deps: [{dep}]\n    outs: [{{o: out/o.txt}}]\n"
        ));
        ws.write("mlcycle.lock", "");
        std::fs::create_dir_all(ws.path().join(".mlcycle")).unwrap();
        let r = ws.run(&["validate"]);
        assert_eq!(r.code, 2, "{dep}: {}", r.stderr);
        assert!(
            r.stderr.contains(&format!(
                "stage `s` depends on `{dep}`, which mlcycle rewrites on every run"
            )),
            "{}",
            r.stderr
        );
    }
}

/// A params subtree whose keys are reordered holds the same values: its
/// stages stay fresh (they reran with "recorded fingerprint has another
/// format").
#[test]
fn reordering_a_params_subtree_reruns_nothing() {
    let ws = Ws::new(
        "params_file: params.yaml\nstages:\n  t:\n    run: echo \"$MLCYCLE_PARAMS\" > ${outputs.o}\n    params: [train]\n    outs: [{o: out/o.txt}]\n",
    );
    ws.write("params.yaml", "train:\n  lr: 0.1\n  epochs: 5\n");
    assert_eq!(ws.run(&["run"]).code, 0);
    let before = ws.read("out/o.txt");
    ws.write("params.yaml", "train:\n  epochs: 5\n  lr: 0.1\n");
    let st = ws.run(&["status"]);
    assert_eq!(st.code, 0, "{}", st.stdout);
    ws.write("params.yaml", "train:\n  epochs: 5\n  lr: 0.2\n");
    let st = ws.run(&["status"]);
    assert!(st.stdout.contains("param `train` changed"), "{}", st.stdout);
    assert_eq!(ws.run(&["run"]).code, 0);
    assert_ne!(ws.read("out/o.txt"), before);
}

/// A frozen stage's dependents read its recorded outputs: one edited or
/// deleted by hand is put back from the cache (not rerun) before they
/// read it. Its dependent used to read the edited bytes and record the
/// frozen hash, and was then called fresh over a wrong output.
#[test]
fn a_frozen_stages_edited_output_is_put_back_before_its_dependents_read_it() {
    let yaml = "stages:\n  fz:\n    run: echo frozen > ${outputs.f}; echo ran >> runs.log\n    outs: [{f: out/f.txt}]\n    frozen: true\n  use:\n    run: cat ${inputs.f} ${inputs.x} > ${outputs.u}\n    deps: [fz.f, x.txt]\n    outs: [{u: out/u.txt}]\n";
    let ws = Ws::new(yaml);
    ws.write("x.txt", "1\n");
    assert_eq!(ws.run(&["run"]).code, 0);
    ws.write("out/f.txt", "edited\n");
    ws.write("x.txt", "2\n");
    let st = ws.run(&["status"]);
    assert_eq!(
        st.outcome("fz").as_deref(),
        Some("restorable"),
        "{}",
        st.stdout
    );
    let r = ws.run(&["run"]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert_eq!(r.outcome("fz").as_deref(), Some("restored"), "{}", r.stdout);
    assert_eq!(ws.read("out/f.txt"), "frozen\n");
    assert_eq!(ws.read("out/u.txt"), "frozen\n2\n");
    assert_eq!(ws.read("runs.log"), "ran\n", "a frozen stage never reruns");
    // The edit was moved aside, not lost.
    assert!(ws.read(".mlcycle/displaced/2/out/f.txt").contains("edited"));
    // Unfrozen, nothing is stale: every output matches its inputs.
    ws.write("mlcycle.yaml", &yaml.replace("    frozen: true\n", ""));
    let st = ws.run(&["status"]);
    assert_eq!(st.code, 0, "{}", st.stdout);

    // Deleted: restored too.
    let ws = Ws::new(yaml);
    ws.write("x.txt", "1\n");
    assert_eq!(ws.run(&["run"]).code, 0);
    std::fs::remove_file(ws.path().join("out/f.txt")).unwrap();
    let r = ws.run(&["run"]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert_eq!(ws.read("out/f.txt"), "frozen\n");

    // Not in the cache (`cache: false`): blocked, and so is its dependent,
    // rather than reading bytes it never recorded.
    let ws = Ws::new(&yaml.replace(
        "outs: [{f: out/f.txt}]",
        "outs: [{f: {path: out/f.txt, cache: false}}]",
    ));
    ws.write("x.txt", "1\n");
    assert_eq!(ws.run(&["run"]).code, 0);
    ws.write("out/f.txt", "edited\n");
    ws.write("x.txt", "2\n");
    let st = ws.run(&["status"]);
    assert_eq!(
        st.outcome("fz").as_deref(),
        Some("blocked"),
        "{}",
        st.stdout
    );
    assert_eq!(
        st.outcome("use").as_deref(),
        Some("blocked"),
        "{}",
        st.stdout
    );
    let r = ws.run(&["run"]);
    assert_eq!(r.code, 1, "{}", r.stdout);
    assert!(
        r.stderr.contains("frozen, and its recorded outputs cannot be put back from the cache (output `out/f.txt` modified)"),
        "{}",
        r.stderr
    );
    assert_eq!(ws.read("out/u.txt"), "frozen\n1\n");
    assert_eq!(ws.read("out/f.txt"), "edited\n");
}

/// A `persist: true` output is kept for the stage to update, but never
/// through a link the user left there: the command appended to the link's
/// target (a source file, a cache object). Links at the path or inside its
/// folder are moved aside first.
#[test]
fn a_persist_output_is_never_written_through_a_link() {
    let ws = Ws::new(
        "params: {p: 1}\nstages:\n  a:\n    run: echo v${params.p} >> ${outputs.h}\n    outs: [{h: {path: logs/h.txt, persist: true}}]\n  b:\n    run: mkdir -p ${outputs.d} && echo v${params.p} >> ${outputs.d}/log.txt\n    outs: [{d: {path: dlogs/, persist: true}}]\n",
    );
    ws.write("data/keep.txt", "keep\n");
    assert_eq!(ws.run(&["run"]).code, 0);
    std::fs::remove_file(ws.path().join("logs/h.txt")).unwrap();
    std::os::unix::fs::symlink("../data/keep.txt", ws.path().join("logs/h.txt")).unwrap();
    std::fs::remove_file(ws.path().join("dlogs/log.txt")).unwrap();
    std::os::unix::fs::symlink("../data/keep.txt", ws.path().join("dlogs/log.txt")).unwrap();
    let r = ws.run(&["run", "-p", "p=2"]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert_eq!(ws.read("data/keep.txt"), "keep\n");
    assert_eq!(ws.read("logs/h.txt"), "v2\n");
    assert_eq!(ws.read("dlogs/log.txt"), "v2\n");
    for moved in ["logs/h.txt", "dlogs/log.txt"] {
        let m = std::fs::symlink_metadata(ws.path().join(".mlcycle/displaced/2").join(moved));
        assert!(m.unwrap().file_type().is_symlink(), "{moved}");
    }
    // A persist output's folder is made for the stage, as any output's.
    let ws = Ws::new(
        "stages:\n  a:\n    run: echo x >> ${outputs.h}\n    outs: [{h: {path: new/dir/h.txt, persist: true}}]\n",
    );
    let r = ws.run(&["run"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
}

/// An output written as a named pipe is refused at once: storing it read
/// the pipe forever (a device such as /dev/zero filled the disk).
#[test]
fn an_output_written_as_a_named_pipe_is_refused() {
    let ws = Ws::new("stages:\n  wf:\n    run: mkfifo ${outputs.f}\n    outs: [{f: out/wf}]\n");
    let r = ws.run(&["run"]);
    assert_eq!(r.code, 1, "{}", r.stdout);
    assert!(
        r.stderr
            .contains("wrote its output `out/wf` as a named pipe (FIFO)"),
        "{}",
        r.stderr
    );
}

/// `${params.train}` (a subtree) renders its keys sorted, as the
/// fingerprint holds them: a reordered params file gives the same command.
#[test]
fn a_params_subtree_in_a_command_renders_in_key_order() {
    let ws = Ws::new(
        "params_file: params.yaml\nstages:\n  u:\n    run: echo ${params.train} > ${outputs.p}\n    outs: [{p: out/u.txt}]\n",
    );
    ws.write("params.yaml", "train:\n  lr: 0.1\n  epochs: 10\n");
    assert_eq!(ws.run(&["run"]).code, 0);
    assert_eq!(ws.read("out/u.txt"), "{\"epochs\":10,\"lr\":0.1}\n");
    ws.write("params.yaml", "train:\n  epochs: 10\n  lr: 0.1\n");
    assert_eq!(ws.run(&["status"]).code, 0);
    assert_eq!(ws.run(&["run", "--force"]).code, 0);
    assert_eq!(ws.read("out/u.txt"), "{\"epochs\":10,\"lr\":0.1}\n");
}

/// A frozen stage with a `cache: false` output left as recorded, and an
/// edited cached one: the cached one is restored (only a changed output
/// needs the cache).
#[test]
fn a_frozen_stage_restores_what_changed_beside_an_uncached_output() {
    let ws = Ws::new(
        "stages:\n  a:\n    run: cp data/in.txt ${outputs.c}; cp data/in.txt ${outputs.n}\n    deps: [data/in.txt]\n    outs: [{c: out/c.txt}, {n: {path: out/n.txt, cache: false}}]\n    frozen: true\n  b:\n    run: cat ${inputs.c} ${inputs.n} > ${outputs.g}\n    deps: [a.c, a.n]\n    outs: [{g: out/g.txt}]\n",
    );
    ws.write("data/in.txt", "in\n");
    assert_eq!(ws.run(&["run"]).code, 0);
    ws.write("out/c.txt", "H\n");
    let r = ws.run(&["run"]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert_eq!(r.outcome("a").as_deref(), Some("restored"), "{}", r.stdout);
    assert_eq!(ws.read("out/c.txt"), "in\n");
    assert_eq!(ws.read("out/g.txt"), "in\nin\n");
}

/// A folder holding the workspace (`..`), or mlcycle's lock read through a
/// built-in stage's path param, is refused like a dep on the lock.
#[test]
fn deps_that_hold_mlcycles_state_are_refused_in_every_spelling() {
    let outer = Ws::new("");
    let dir = outer.path().join("ws");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(
        dir.join("mlcycle.yaml"),
        "stages:\n  s:\n    run: ls .. > ${outputs.o}\n    deps: [..]\n    outs: [{o: out/o.txt}]\n  raw:\n    uses: util.import\n    with: {path: mlcycle.lock}\n",
    )
    .unwrap();
    std::fs::write(dir.join("mlcycle.lock"), "").unwrap();
    let r = Ws::run_in(&dir, &["validate"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    let err: Vec<&str> = r.stderr.split_whitespace().filter(|w| *w != "│").collect();
    let err = err.join(" ");
    assert!(
        err.contains("stage `s` depends on `")
            && err.contains("a folder holding the workspace, whose lock and state"),
        "{err}"
    );
    assert!(
        err.contains("stage `raw` depends on `mlcycle.lock`, which mlcycle rewrites"),
        "{err}"
    );
}

/// A folder output that now holds a named pipe is there: status says it
/// was modified, not that it is missing.
#[test]
fn a_folder_output_holding_a_pipe_is_modified_not_missing() {
    let ws = Ws::new(
        "stages:\n  d:\n    run: mkdir -p ${outputs.d} && echo a > ${outputs.d}/a.txt\n    outs: [{d: out/d/}]\n",
    );
    assert_eq!(ws.run(&["run"]).code, 0);
    assert!(std::process::Command::new("mkfifo")
        .arg(ws.path().join("out/d/pipe"))
        .status()
        .unwrap()
        .success());
    let st = ws.run(&["status"]);
    assert!(
        st.stdout.contains("output `out/d` modified"),
        "{}",
        st.stdout
    );
    let r = ws.run(&["run"]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert_eq!(ws.read("out/d/a.txt"), "a\n");
    assert!(!ws.exists("out/d/pipe"));
}

/// A built-in stage's path param naming a named pipe is refused by
/// `validate`, as a `deps:` entry is (it used to pass, and block the run).
#[test]
fn a_path_param_naming_a_pipe_is_refused_by_validate() {
    let ws = Ws::new("stages:\n  raw:\n    uses: util.import\n    with: {path: data/fifo}\n");
    std::fs::create_dir(ws.path().join("data")).unwrap();
    assert!(std::process::Command::new("mkfifo")
        .arg(ws.path().join("data/fifo"))
        .status()
        .unwrap()
        .success());
    let r = ws.run(&["validate"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("named pipe"), "{}", r.stderr);
}

/// An output replaced by a symlink to a file with the very bytes recorded
/// is not the output mlcycle wrote: status says modified, and the run puts
/// the file back, moving the link aside (it was hashed through and kept,
/// and dependents read through it).
#[test]
fn an_output_replaced_by_a_link_to_equal_bytes_is_modified() {
    let ws =
        Ws::new("stages:\n  w:\n    run: echo same > ${outputs.o}\n    outs: [{o: out/o.txt}]\n");
    assert_eq!(ws.run(&["run"]).code, 0);
    ws.write("data/src.txt", "same\n");
    std::fs::remove_file(ws.path().join("out/o.txt")).unwrap();
    std::os::unix::fs::symlink("../data/src.txt", ws.path().join("out/o.txt")).unwrap();
    let st = ws.run(&["status"]);
    assert_eq!(
        st.outcome("w").as_deref(),
        Some("restorable"),
        "{}",
        st.stdout
    );
    assert!(
        st.stdout.contains("output `out/o.txt` modified"),
        "{}",
        st.stdout
    );
    let r = ws.run(&["run"]);
    assert_eq!(r.outcome("w").as_deref(), Some("restored"), "{}", r.stdout);
    let m = std::fs::symlink_metadata(ws.path().join("out/o.txt")).unwrap();
    assert!(m.file_type().is_file());
    assert_eq!(ws.read("data/src.txt"), "same\n");
    assert_eq!(ws.run(&["status"]).code, 0);
}
