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
