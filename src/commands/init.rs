//! `init`: a new workspace.

use super::*;

const INIT_PIPELINE: &str = "\
# An mlcycle pipeline: stages, what each reads and writes, and its params.
# `mlcycle validate` checks this file; `mlcycle run` runs what is stale;
# `mlcycle stages` lists the built-in kinds. Reference: docs/pipeline-yaml.md
name: NAME

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
    std::fs::write(&file, INIT_PIPELINE.replace("NAME", &name))
        .map_err(|e| CliError::Io(format!("cannot write {}: {e}", file.display())))?;
    Workspace::new(&dir).ensure_state_dir()?;
    if !cli.quiet {
        println!(
            "wrote {}; `mlcycle run{}` runs it",
            file.display(),
            if dir == Path::new(".") {
                String::new()
            } else {
                format!(" {}", dir.display())
            }
        );
    }
    Ok(0)
}
