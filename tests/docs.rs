//! The docs show what the binary prints: the command list and samples in
//! docs/cli.md are compared with the real output, so they cannot drift.

mod common;

use std::path::Path;

fn doc(rel: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)).unwrap()
}

fn mlcycle(args: &[&str]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let r = common::Ws::run_in(dir.path(), args);
    assert_eq!(r.code, 0, "{}", r.stderr);
    r.stdout
}

/// The lines of the fenced block in `text` that starts at `marker`, up to
/// the closing fence or a `…` line.
fn block_after<'a>(text: &'a str, marker: &str) -> Vec<&'a str> {
    let start = text
        .find(marker)
        .unwrap_or_else(|| panic!("no `{marker}` in the doc"));
    text[start..]
        .lines()
        .skip(1)
        .take_while(|l| !l.starts_with("```") && *l != "…")
        .collect()
}

#[test]
fn cli_md_lists_the_commands_the_binary_has() {
    let help = mlcycle(&["--help"]);
    let actual = block_after(&help, "Commands:");
    let actual: Vec<&str> = actual.into_iter().take_while(|l| !l.is_empty()).collect();
    let cli_md = doc("docs/cli.md");
    let documented = block_after(&cli_md, "Commands:");
    assert_eq!(documented, actual, "update the command list in docs/cli.md");
}

#[test]
fn cli_md_stages_sample_is_what_stages_prints() {
    let out = mlcycle(&["stages"]);
    let cli_md = doc("docs/cli.md");
    let documented = block_after(&cli_md, "$ mlcycle stages");
    let actual: Vec<&str> = out.lines().take(documented.len()).collect();
    assert_eq!(
        documented, actual,
        "update the `mlcycle stages` sample in docs/cli.md"
    );
}

/// The lines of a summary table row or total without its timings: `data
/// ran 2ms first run` → `data ran first run`; `9 ran in 34ms` → `9 ran in`.
fn without_times(line: &str) -> String {
    line.split_whitespace()
        .filter(|w| {
            let t = w.trim_end_matches("ms").trim_end_matches('s');
            !(w.ends_with('s')
                && !t.is_empty()
                && t.chars().all(|c| c.is_ascii_digit() || c == '.'))
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn readme_transcript_is_what_the_example_prints() {
    let ws = common::example("house-prices");
    let readme = doc("README.md");
    let start = readme
        .find("```console\n$ mlcycle run examples/house-prices")
        .unwrap();
    let block = &readme[start + "```console\n".len()..];
    let block = &block[..block.find("```").unwrap()];
    // Split into (command, expected lines).
    let mut steps: Vec<(&str, Vec<&str>)> = Vec::new();
    for line in block.lines() {
        if let Some(cmd) = line.strip_prefix("$ ") {
            steps.push((cmd, vec![]));
        } else if !line.is_empty() && line != "…" {
            steps.last_mut().expect("a command first").1.push(line);
        }
    }
    assert_eq!(steps.len(), 4, "the README's transcript has four commands");
    for (cmd, expected) in steps {
        let ws_path = ws.path().to_str().unwrap();
        let (args, stdin): (Vec<String>, Option<&str>) = if cmd.starts_with("printf") {
            let args =
                "predict --bundle WS/artifacts/bundle/bundle --input -".replace("WS", ws_path);
            (
                args.split(' ').map(String::from).collect(),
                Some("area\n60\n120\n"),
            )
        } else {
            let rest = cmd.strip_prefix("mlcycle ").unwrap();
            let rest = rest.replace("examples/house-prices", ws_path);
            (rest.split(' ').map(String::from).collect(), None)
        };
        let mut c = std::process::Command::new(common::bin());
        c.args(&args).env("NO_COLOR", "1").env_remove("RUST_LOG");
        c.stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut child = c.spawn().unwrap();
        {
            use std::io::Write;
            let mut w = child.stdin.take().unwrap();
            w.write_all(stdin.unwrap_or("").as_bytes()).unwrap();
        }
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{cmd}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let printed = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        );
        let printed: Vec<String> = printed.lines().map(without_times).collect();
        for want in expected {
            let want = without_times(want);
            assert!(
                printed.contains(&want),
                "`{cmd}`: the README shows `{want}`, the binary printed:\n{}",
                printed.join("\n")
            );
        }
    }
}

/// Every `mlcycle …` command line shown in a code block of README.md or
/// docs/ (up to a pipe, `&&`, `;`, a redirection or a comment) is one the
/// binary accepts: a renamed flag or subcommand fails here.
#[test]
fn every_command_line_in_the_docs_parses() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = vec![root.join("README.md")];
    for e in std::fs::read_dir(root.join("docs")).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "md") {
            files.push(p);
        }
    }
    let mut checked = 0;
    let mut bad = Vec::new();
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        let mut in_code = false;
        for (n, line) in text.lines().enumerate() {
            if line.trim_start().starts_with("```") {
                in_code = !in_code;
                continue;
            }
            let line = line.trim();
            let cmd = line.strip_prefix("$ ").unwrap_or(line);
            // Synopsis lines (`mlcycle runs [DIR] [-n N]`, `<SHELL>`) show
            // the grammar, not a command; `mlcycle = {…}` is TOML.
            let synopsis = cmd.contains(" [") || cmd.contains('<') || cmd.starts_with("mlcycle =");
            if !in_code || !cmd.starts_with("mlcycle ") || synopsis {
                continue;
            }
            let end = ["|", "&&", ";", " >", " 2>", "#"]
                .iter()
                .filter_map(|s| cmd.find(s))
                .min()
                .unwrap_or(cmd.len());
            let Some(args) = shlex::split(cmd[..end].trim_end_matches('\\').trim()) else {
                bad.push(format!("{}:{}: cannot split `{cmd}`", f.display(), n + 1));
                continue;
            };
            checked += 1;
            if let Some(e) = mlcycle::check_args(&args) {
                let first = e.lines().next().unwrap_or_default().to_string();
                bad.push(format!("{}:{}: `{cmd}`: {first}", f.display(), n + 1));
            }
        }
    }
    assert!(checked > 40, "only {checked} command lines found");
    assert!(
        bad.is_empty(),
        "command lines the binary refuses:\n{}",
        bad.join("\n")
    );
}
