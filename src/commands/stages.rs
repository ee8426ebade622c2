//! `stages`: the catalogue of stage kinds.

use super::*;

pub(super) fn cmd_stages(a: &StagesArgs, registry: &StageRegistry) -> Result<u8, Fail> {
    if a.markdown {
        out!("{}", mlcycle_stages::catalogue_markdown(registry));
        return Ok(0);
    }
    match &a.kind {
        None => {
            let w = registry
                .kinds()
                .map(|f| f.kind().len())
                .max()
                .unwrap_or(7)
                .max(7);
            outln!(
                "{:<w$}  run a command (`run:` stages; see docs/pipeline-yaml.md)",
                "command"
            );
            for f in registry.kinds() {
                outln!("{:<w$}  {}", f.kind(), f.summary());
            }
        }
        Some(kind) if kind == mlcycle_pipeline::registry::COMMAND_KIND => {
            outln!(
                "command\n  Run a command in any language: `run:` stages\n\n\
                 A `run:` stage declares what it reads with `deps:` and what it writes with\n\
                 `outs:`; `params:` names the params it uses, `env:` adds variables and\n\
                 `shell:` picks `sh` (the default) or `bash`. docs/pipeline-yaml.md has the rest."
            );
        }
        Some(kind) => {
            let Some(f) = registry.get(kind) else {
                let help = registry
                    .suggest(kind)
                    .map(|s| format!("did you mean `{s}`?"));
                return Err(CliError::UnknownKind {
                    kind: kind.clone(),
                    help,
                }
                .into());
            };
            outln!(
                "{} (version {})\n  {}\n",
                f.kind(),
                f.version(),
                f.summary()
            );
            outln!("inputs:");
            if f.inputs().is_empty() {
                outln!("  (none)");
            }
            for p in f.inputs() {
                outln!(
                    "  {:<12} [{}{}] {}{}",
                    p.name,
                    p.artifact.as_str(),
                    if p.many { ", several" } else { "" },
                    p.doc,
                    if p.required { "" } else { " (optional)" }
                );
            }
            outln!("outputs:");
            for p in f.outputs() {
                outln!(
                    "  {:<12} [{}] {} (artifacts/<stage>/{})",
                    p.name,
                    p.artifact.as_str(),
                    p.doc,
                    p.file
                );
            }
            outln!("params (with:):");
            if f.param_docs().is_empty() {
                outln!("  (none)");
            }
            for (p, ty) in f.param_docs().iter().zip(f.param_types()) {
                outln!("  {:<12} {:<20} {}", p.name, ty, p.doc);
            }
        }
    }
    Ok(0)
}
