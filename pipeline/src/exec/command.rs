//! The command runner: a `run:` stage as a child process in its own
//! process group (so an interrupt reaches everything it started), its
//! stdout and stderr streamed to the reporter and the stage log.

use std::collections::VecDeque;
use std::fs;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

use super::interrupt::Interrupt;
use super::runner::{
    in_place, Failure, Produced, RunFailure, Runner, StageJob, StageLog, TAIL_LINES,
};
use super::scheduler::Reporter;
use crate::config::{env_var_name, Action, Shell, StageDef};
use crate::workspace::Workspace;

/// Command lines longer than this run from a script file (see run_command).
const MAX_INLINE_SCRIPT: usize = 64 * 1024;

/// Runs `run:` stages.
pub(crate) struct CommandRunner;

impl Runner for CommandRunner {
    fn run(&self, job: &StageJob<'_>) -> Result<Produced, RunFailure> {
        let Action::Command { argv, shell, env } = &job.stage.action else {
            unreachable!("the command runner gets command stages")
        };
        let line = CommandLine {
            argv,
            shell: *shell,
            env,
        };
        in_place(run_command(
            job.ws,
            job.stage,
            line,
            job.log_path,
            job.reporter,
            job.interrupt,
        ))
    }
}

/// What a command stage runs: `argv` (one command line for `shell`), with
/// extra environment variables.
struct CommandLine<'a> {
    argv: &'a [String],
    shell: Option<Shell>,
    env: &'a [(String, String)],
}

fn run_command(
    ws: &Workspace,
    s: &StageDef,
    line: CommandLine<'_>,
    log_path: &Path,
    reporter: &dyn Reporter,
    interrupt: &Interrupt,
) -> Result<(), Failure> {
    let CommandLine { argv, shell, env } = line;
    let log = Arc::new(Mutex::new(StageLog::new(log_path)));
    let mut cmd = match shell {
        Some(sh) => {
            let (program, options) = sh.argv();
            let mut c = Command::new(program);
            c.args(options);
            if argv[0].len() > MAX_INLINE_SCRIPT {
                // Linux caps one argument at 128 KiB: a long command line (a
                // gather stage over thousands of files) runs from a script
                // file instead.
                let script = log_path.with_extension("sh");
                if let Some(parent) = script.parent() {
                    let _ = fs::create_dir_all(parent);
                }
                fs::write(&script, &argv[0]).map_err(|e| {
                    (
                        format!("cannot write the command to {}: {e}", script.display()),
                        vec![],
                    )
                })?;
                c.arg(script);
            } else {
                // `--`: a command line that starts with `-` is a command,
                // not an option of the shell.
                c.arg("-c").arg("--").arg(&argv[0]);
            }
            c
        }
        None => {
            let mut c = Command::new(&argv[0]);
            c.args(&argv[1..]);
            c
        }
    };
    cmd.current_dir(&ws.root)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .env("MLCYCLE_STAGE", &s.id)
        .env("MLCYCLE_WORKSPACE", &ws.root)
        .env(
            "MLCYCLE_PARAMS",
            serde_json::to_string(&s.params).unwrap_or_else(|_| "{}".into()),
        );
    // Step-wise metrics: a fresh file for each run of the stage.
    let steps = ws.step_metrics_path(&s.id);
    if let Some(dir) = steps.parent() {
        let _ = fs::create_dir_all(dir);
    }
    let _ = fs::remove_file(&steps);
    cmd.env("MLCYCLE_STEP_METRICS", &steps);
    // Port variables come from this stage only: none inherited from the
    // environment mlcycle was started in (a shell where a script was tried
    // by hand, or a `run:` stage that runs mlcycle) may pass for one.
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy();
        if k.starts_with("MLCYCLE_IN_") || k.starts_with("MLCYCLE_OUT_") {
            cmd.env_remove(k.as_ref());
        }
    }
    for inp in &s.inputs {
        // A name two deps share (two `.../data`) is ambiguous: neither
        // gets the variable, as `${inputs.data}` is refused.
        if s.inputs.iter().filter(|i| i.name == inp.name).count() == 1 {
            cmd.env(format!("MLCYCLE_IN_{}", env_var_name(&inp.name)), &inp.path);
        }
    }
    for o in &s.outputs {
        cmd.env(format!("MLCYCLE_OUT_{}", env_var_name(&o.name)), &o.path);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    if interrupt.is_set() {
        return Err(("run interrupted".into(), vec![]));
    }
    let mut child = cmd.spawn().map_err(|e| {
        let prog = match shell {
            Some(sh) => sh.name().to_string(),
            None => argv[0].clone(),
        };
        (format!("cannot start `{prog}`: {e}"), vec![])
    })?;
    let pid = child.id() as i32;
    interrupt.track_group(pid, true);
    let _recorded = super::orphans::record(ws, pid);
    let tail = Arc::new(Mutex::new(VecDeque::with_capacity(TAIL_LINES)));
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let status = std::thread::scope(|sc| {
        if let Some(out) = stdout {
            let log = log.clone();
            sc.spawn(move || pump(out, &s.id, false, &log, None, reporter));
        }
        if let Some(err) = stderr {
            let log = log.clone();
            let tail = tail.clone();
            sc.spawn(move || pump(err, &s.id, true, &log, Some(&tail), reporter));
        }
        child.wait()
    });
    interrupt.track_group(pid, false);
    let tail: Vec<String> = tail
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .cloned()
        .collect();
    let status = status.map_err(|e| (format!("cannot wait for the command: {e}"), tail.clone()))?;
    if status.success() {
        return Ok(());
    }
    use std::os::unix::process::ExitStatusExt;
    let why = match (status.code(), status.signal()) {
        (Some(c), _) => format!("command exited with code {c}"),
        (None, Some(sig)) if interrupt.is_set() => {
            format!("command stopped by signal {sig} (run interrupted)")
        }
        (None, Some(sig)) => format!("command killed by signal {sig}"),
        _ => "command failed".to_string(),
    };
    Err((why, tail))
}

fn pump(
    stream: impl Read,
    stage: &str,
    is_err: bool,
    log: &Mutex<StageLog>,
    tail: Option<&Mutex<VecDeque<String>>>,
    reporter: &dyn Reporter,
) {
    let mut r = BufReader::new(stream);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        match r.read_until(b'\n', &mut buf) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        let line = String::from_utf8_lossy(&buf);
        let line = line.trim_end_matches(['\n', '\r']);
        log.lock()
            .unwrap_or_else(|e| e.into_inner())
            .line(if is_err { "! " } else { "  " }, line);
        if let Some(t) = tail {
            let mut t = t.lock().unwrap_or_else(|e| e.into_inner());
            if t.len() == TAIL_LINES {
                t.pop_front();
            }
            t.push_back(line.to_string());
        }
        reporter.line(stage, line, is_err);
    }
}
