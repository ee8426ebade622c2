//! `gc`.

use super::*;

pub(super) fn cmd_gc(cli: &Cli, a: &GcArgs, registry: &StageRegistry) -> Result<u8, Fail> {
    let root = locate_root(cli.dir.as_deref(), a.workspace.dir.as_deref())?;
    let session = Session::open(&root.join(PIPELINE_FILE), &SessionOptions::new(registry))?;
    let r = session.gc(
        &GcOptions {
            dry_run: a.dry_run,
            workspace_only: a.workspace_only,
            no_wait: a.no_wait,
        },
        &TermReporter::new(cli.quiet, false),
    )?;
    if !cli.quiet {
        let verb = if a.dry_run { "would remove" } else { "removed" };
        outln!(
            "{verb} {} unreferenced objects ({}), {} run-cache entries, {} temp files; kept {} objects",
            r.removed_objects,
            human_bytes(r.removed_bytes),
            r.removed_entries,
            r.removed_tmp,
            r.kept_objects
        );
    }
    Ok(0)
}

pub(super) fn human_bytes(b: u64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = b as f64;
    let mut u = 0;
    while v >= 1024.0 && u < units.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{b} B")
    } else {
        format!("{v:.1} {}", units[u])
    }
}
