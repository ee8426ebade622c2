//! `init`: a new workspace.

use super::*;

const INIT_PIPELINE: &str = "\
# An mlcycle pipeline: stages, what each reads and writes, and its params.
# `mlcycle validate` checks this file; `mlcycle run` runs what is stale;
# `mlcycle stages` lists the built-in kinds. Reference: docs/pipeline-yaml.md
name: @NAME@

params:
  seed: 42

stages:
  # A built-in stage: `uses:` a kind, `with:` its params.
  data:
    uses: dataset.synthetic
    with: {kind: regression, rows: 200, features: 3, seed: \"${params.seed}\"}
  # A command in any language: declare what it reads (`deps:`) and
  # writes (`outs:`); `${inputs.NAME}` and `${outputs.NAME}` name them.
  rows:
    run: wc -c < ${inputs.data} > ${outputs.bytes}
    deps: [data.data]
    outs: [out/bytes.txt]
";

pub(super) fn cmd_init(cli: &Cli, a: &InitArgs) -> Result<u8, Fail> {
    let dir = match (&cli.dir, &a.dir) {
        (Some(c), Some(d)) => c.join(d),
        (Some(c), None) => c.clone(),
        (None, Some(d)) => d.clone(),
        (None, None) => PathBuf::from("."),
    };
    let file = dir.join(PIPELINE_FILE);
    if file.exists() && !a.force {
        return Err(CliError::InitExists {
            path: file.display().to_string(),
        }
        .into());
    }
    std::fs::create_dir_all(&dir)
        .map_err(|e| CliError::Io(format!("cannot create {}: {e}", dir.display())))?;
    let name = std::path::absolute(&dir)
        .ok()
        .and_then(|d| d.file_name().map(|n| n.to_string_lossy().into_owned()))
        .filter(|n| {
            !n.is_empty()
                && n.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        })
        .unwrap_or_else(|| "pipeline".into());
    std::fs::write(&file, INIT_PIPELINE.replace("@NAME@", &yaml_string(&name)))
        .map_err(|e| CliError::Io(format!("cannot write {}: {e}", file.display())))?;
    Workspace::new(&dir).ensure_state_dir()?;
    if !cli.quiet {
        outln!(
            "wrote {}; `mlcycle run{}` runs it",
            file.display(),
            if dir == Path::new(".") {
                String::new()
            } else {
                format!(" {}", shell_word(&dir.display().to_string()))
            }
        );
    }
    Ok(0)
}

/// `s` as a YAML string: plain when YAML reads it back as that string,
/// else single-quoted (a folder called `123`, `true` or `-x` must not
/// become a number, a boolean or a list).
fn yaml_string(s: &str) -> String {
    let plain = s.starts_with(|c: char| c.is_ascii_alphabetic())
        && !["true", "false", "null"].contains(&s.to_ascii_lowercase().as_str());
    if plain {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "''"))
    }
}

/// `s` as one shell word, for a hint the user can paste.
fn shell_word(s: &str) -> String {
    let safe = |c: char| c.is_ascii_alphanumeric() || "/._-+=:@".contains(c);
    if !s.is_empty() && !s.starts_with('-') && s.chars().all(safe) {
        s.to_string()
    } else if s.starts_with('-') && s.chars().all(safe) {
        format!("./{s}")
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_yaml_would_retype_are_quoted() {
        assert_eq!(yaml_string("proj"), "proj");
        assert_eq!(yaml_string("house-prices.v2"), "house-prices.v2");
        for n in [
            "123", "1.5", "1e3", "true", "NULL", "False", "-", ".nan", "0x1F",
        ] {
            assert!(yaml_string(n).starts_with('\''), "{n}");
        }
        assert_eq!(yaml_string("1'2"), "'1''2'");
    }

    #[test]
    fn hints_are_pasteable_shell_words() {
        assert_eq!(shell_word("a/b"), "a/b");
        assert_eq!(shell_word("a b"), "'a b'");
        assert_eq!(shell_word("-dash"), "./-dash");
    }
}
