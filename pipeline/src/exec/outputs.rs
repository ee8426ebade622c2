//! A stage's outputs on disk: checked to stay inside the workspace, moved
//! aside when they hold bytes mlcycle did not write, cleared before the
//! stage runs, stored in the cache after it, restored from it.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use super::beneath::Beneath;
use super::runner::RunFailure;
use crate::cache::OutRecord;
use crate::config::StageDef;
use crate::hash::Stamp;
use crate::plan::SharedMemo;
use crate::workspace::Workspace;

/// Checks, right before a write, delete or restore at `rel`, that no
/// folder on the way is a symlink leading out of the workspace (an earlier
/// stage may have put one there since validation). The last component is
/// not followed: it is replaced.
pub(super) fn check_beneath(root: &Path, rel: &str) -> Result<(), String> {
    use crate::config::{walk_links, LinkStop};
    let rel = rel.trim_end_matches('/');
    let parts: Vec<&str> = rel.split('/').collect();
    let (dir, _) = walk_links(root, &parts[..parts.len() - 1], true, &mut |_, _| false)
        .map_err(|stop| match stop {
            LinkStop::Outside { link, target } => format!(
                "output `{rel}` goes through symlink `{link}`, which now leads outside the workspace (to {}); nothing was written through it",
                target.display()
            ),
            LinkStop::Dangling { link } => {
                format!("output `{rel}` goes through symlink `{link}`, which points nowhere")
            }
            LinkStop::NotAFolder { at } => {
                format!("output `{rel}` needs `{at}` to be a folder, but it is a file")
            }
        })?;
    // Where the write lands, through the links on the way: never one of
    // mlcycle's own files (`cfg/mlcycle.yaml` with `cfg -> .`).
    let target = dir.join(parts[parts.len() - 1]);
    let real = target
        .strip_prefix(root)
        .unwrap_or(&target)
        .to_string_lossy();
    if real != rel && crate::config::owned_by_mlcycle(&real) {
        return Err(format!(
            "output `{rel}` leads through a symlink to `{real}`, which belongs to mlcycle; nothing was written there"
        ));
    }
    Ok(())
}

/// Whether what `rel` holds now is bytes mlcycle wrote: what the stage's
/// record (or another stage's, under an old name) says it wrote there,
/// what its last failed run left there, or content the cache holds.
fn known(
    ws: &Workspace,
    memo: &SharedMemo,
    s: &StageDef,
    rel: &str,
    recorded: Option<&OutRecord>,
) -> bool {
    let abs = ws.root.join(rel);
    let Ok(meta) = fs::symlink_metadata(&abs) else {
        return true;
    };
    // An empty folder holds no bytes. mlcycle never writes a symlink as an
    // output, so one there is the user's: moved aside, never followed (its
    // target may be a source file with bytes the cache also holds).
    if meta.is_dir() && fs::read_dir(&abs).is_ok_and(|mut d| d.next().is_none()) {
        return true;
    }
    if meta.file_type().is_symlink() {
        return false;
    }
    match memo.hash_path(&ws.root, rel) {
        Ok((h, _, _)) => {
            recorded.is_some_and(|r| r.hash == h)
                || ws.cache.has(&h)
                || read_leftovers(ws, s).get(rel) == Some(&h)
        }
        Err(_) => false,
    }
}

/// Where a failed run of `s` notes the hashes of the outputs it left.
fn leftovers_path(ws: &Workspace, s: &StageDef) -> std::path::PathBuf {
    ws.state.join("leftovers").join(format!("{}.json", s.id))
}

fn read_leftovers(ws: &Workspace, s: &StageDef) -> BTreeMap<String, String> {
    fs::read(leftovers_path(ws, s))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

/// After a failed run of `s`: notes what its outputs hold now (bytes the
/// stage wrote, kept for the user to look at), so that the next run
/// replaces them instead of moving them aside as unknown.
pub(super) fn note_leftovers(ws: &Workspace, memo: &SharedMemo, s: &StageDef) {
    let left: BTreeMap<&str, String> = s
        .outputs
        .iter()
        .filter(|o| !o.persist)
        .filter_map(|o| Some((o.path.as_str(), memo.hash_path(&ws.root, &o.path).ok()?.0)))
        .collect();
    let path = leftovers_path(ws, s);
    if left.is_empty() {
        let _ = fs::remove_file(&path);
        return;
    }
    let written = path
        .parent()
        .map_or(Ok(()), fs::create_dir_all)
        .and_then(|()| {
            let bytes = serde_json::to_vec(&left).map_err(std::io::Error::other)?;
            crate::workspace::write_atomic(&path, &bytes)
        });
    if let Err(e) = written {
        tracing::debug!(stage = %s.id, error = %e, "Could not note a failed run's outputs.");
    }
}

/// After a successful run or restore of `s`: its leftovers are gone.
pub(super) fn forget_leftovers(ws: &Workspace, s: &StageDef) {
    let _ = fs::remove_file(leftovers_path(ws, s));
}

/// Moves what output `rel` holds to `.mlcycle/displaced/<run>/<rel>` when
/// mlcycle did not write it (a source file inside a folder declared as an
/// output, a file the user edited or made by hand), so that no run deletes
/// bytes that exist nowhere else. Says where it went.
fn displace_unknown(
    ws: &Workspace,
    beneath: &Beneath,
    memo: &SharedMemo,
    s: &StageDef,
    rel: &str,
    recorded: Option<&OutRecord>,
    run: Option<i64>,
) -> Result<(), String> {
    if known(ws, memo, s, rel, recorded) {
        return Ok(());
    }
    let run = run.map_or_else(|| "unrecorded".to_string(), |r| r.to_string());
    let base = ws.state.join("displaced").join(run);
    let mut dest = base.join(rel.trim_end_matches('/'));
    let mut n = 1;
    while fs::symlink_metadata(&dest).is_ok() {
        dest = base.join(format!("{}.{n}", rel.trim_end_matches('/')));
        n += 1;
    }
    let moved = dest
        .parent()
        .map_or(Ok(()), fs::create_dir_all)
        .and_then(|()| beneath.take(rel, &dest));
    if let Err(e) = moved {
        return Err(format!(
            "output `{rel}` holds bytes mlcycle did not write, and they could not be moved aside to {} ({e}); move them yourself and run again",
            shown(ws, &dest)
        ));
    }
    tracing::warn!(
        stage = %s.id,
        path = %rel,
        kept = %shown(ws, &dest),
        "Output held bytes mlcycle did not write; moved them aside instead of deleting them."
    );
    Ok(())
}

fn open_beneath(ws: &Workspace) -> Result<Beneath, String> {
    Beneath::open(&ws.root).map_err(|e| {
        format!(
            "cannot open the workspace root {} to write in it: {e}",
            ws.root.display()
        )
    })
}

fn shown(ws: &Workspace, p: &Path) -> String {
    p.strip_prefix(&ws.root).unwrap_or(p).display().to_string()
}

/// Makes a stage's output paths ready for it to write: each stays inside
/// the workspace, unknown bytes are moved aside, old outputs are removed
/// (except `persist: true` ones, which the stage updates) and their parent
/// folders exist.
pub(super) fn prepare(
    ws: &Workspace,
    memo: &SharedMemo,
    s: &StageDef,
    recorded: &BTreeMap<String, OutRecord>,
    run: Option<i64>,
) -> Result<(), String> {
    let beneath = open_beneath(ws)?;
    for o in &s.outputs {
        check_beneath(&ws.root, &o.path)?;
        if o.persist {
            // Kept for the stage to update, but never through a link (the
            // command would write into the link's target: a source file,
            // a cache object): links and pipes, at the path or inside its
            // folder, are moved aside first.
            for rel in not_regular(&ws.root, &o.path) {
                displace_unknown(ws, &beneath, memo, s, &rel, None, run)?;
            }
            beneath
                .make_parent(&o.path)
                .map_err(|e| format!("cannot create folder for output `{}`: {e}", o.path))?;
            continue;
        }
        displace_unknown(ws, &beneath, memo, s, &o.path, recorded.get(&o.path), run)?;
        beneath
            .remove(&o.path)
            .map_err(|e| format!("cannot remove old output `{}`: {e}", o.path))?;
        beneath
            .make_parent(&o.path)
            .map_err(|e| format!("cannot create folder for output `{}`: {e}", o.path))?;
    }
    Ok(())
}

/// What output `rel` holds that is neither a regular file nor a folder
/// (symlinks, named pipes, sockets, devices): `rel` itself, or the paths
/// of such entries inside its folder.
fn not_regular(root: &Path, rel: &str) -> Vec<String> {
    let rel = rel.trim_end_matches('/');
    let Ok(meta) = fs::symlink_metadata(root.join(rel)) else {
        return vec![];
    };
    if meta.is_file() {
        return vec![];
    }
    if !meta.is_dir() {
        return vec![rel.to_string()];
    }
    let mut found = Vec::new();
    let mut stack = vec![rel.to_string()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = fs::read_dir(root.join(&dir)) else {
            continue;
        };
        for e in entries.flatten() {
            let Some(name) = e.file_name().to_str().map(str::to_string) else {
                continue;
            };
            let path = format!("{dir}/{name}");
            match e.file_type() {
                Ok(t) if t.is_dir() => stack.push(path),
                Ok(t) if t.is_file() => {}
                _ => found.push(path),
            }
        }
    }
    found
}

/// Restores a stage's outputs from the cache; false (and a warning) when
/// one cannot be restored, so the stage runs instead.
pub(super) fn restore(
    ws: &Workspace,
    memo: &SharedMemo,
    s: &StageDef,
    entry: &BTreeMap<String, OutRecord>,
    recorded: &BTreeMap<String, OutRecord>,
    run: Option<i64>,
) -> bool {
    let beneath = match open_beneath(ws) {
        Ok(b) => b,
        Err(e) => {
            tracing::warn!(stage = %s.id, error = %e, "Restore failed; running the stage instead.");
            return false;
        }
    };
    for (path, rec) in entry {
        let ready = check_beneath(&ws.root, path)
            .and_then(|()| displace_unknown(ws, &beneath, memo, s, path, recorded.get(path), run));
        // Restored into the cache's own temp folder, verified there, then
        // moved into place in one rename beneath the root: a folder comes
        // back whole or not at all, and never through a symlink to outside.
        let restored = ready.and_then(|()| {
            let staged = ws.cache.staging_path();
            let placed = ws
                .cache
                .restore(rec, &staged)
                .and_then(|()| beneath.publish(&staged, path));
            if placed.is_err() {
                let _ = fs::remove_dir_all(&staged).or_else(|_| fs::remove_file(&staged));
            }
            placed.map_err(|e| e.to_string())
        });
        if let Err(e) = restored {
            tracing::warn!(stage = %s.id, path = %path, error = %e, "Restore failed; running the stage instead.");
            return false;
        }
        record_stamp(memo, &ws.root, path, rec);
    }
    // The steps a previous run logged are not those of this result.
    let _ = fs::remove_file(ws.step_metrics_path(&s.id));
    true
}

/// Stores the outputs a stage wrote in the cache (`cache: false` ones are
/// only hashed) and returns their records.
pub(super) fn store(
    ws: &Workspace,
    memo: &SharedMemo,
    s: &StageDef,
) -> Result<BTreeMap<String, OutRecord>, RunFailure> {
    let fail = |error: String| RunFailure {
        error,
        stderr_tail: vec![],
        log: None,
        job: None,
    };
    let mut outs = BTreeMap::new();
    for o in &s.outputs {
        check_beneath(&ws.root, &o.path).map_err(fail)?;
        let abs = ws.root.join(&o.path);
        let missing = || {
            fail(format!(
                "the stage succeeded but did not write its declared output `{}`",
                o.path
            ))
        };
        // A symlink is not stored: its target is another file, which the
        // next load would take for the output (and clear before a run),
        // and the cache would hold bytes the output path does not.
        let own = fs::symlink_metadata(&abs).map_err(|_| missing())?;
        if own.file_type().is_symlink() {
            let to = fs::read_link(&abs)
                .map(|t| format!(" (to `{}`)", t.display()))
                .unwrap_or_default();
            return Err(fail(format!(
                "the stage wrote its output `{}` as a symlink{to}; mlcycle stores regular files and folders only: write (or `cp`) the file itself there, or declare the link's target as the output",
                o.path
            )));
        }
        // A named pipe would block the copy, a device (`/dev/zero`) fill
        // the disk: only regular files and folders are stored.
        if !own.is_file() && !own.is_dir() {
            return Err(fail(format!(
                "the stage wrote its output `{}` as {}; mlcycle stores regular files and folders only",
                o.path,
                crate::hash::kind_of(&own.file_type())
            )));
        }
        let meta = own;
        let stored = if !o.cache {
            memo.hash_path(&ws.root, &o.path)
                .map(|(hash, size, dir)| OutRecord {
                    hash,
                    size,
                    dir,
                    exec: !dir && meta.permissions().mode() & 0o111 != 0,
                })
        } else if meta.is_dir() {
            ws.cache.store_dir(&abs)
        } else {
            ws.cache.store_file(&abs).map(|(hash, size)| {
                if let Ok(after) = fs::metadata(&abs) {
                    if Stamp::of(&after) == Stamp::of(&meta) {
                        memo.record(&o.path, Stamp::of(&after), hash.clone());
                    }
                }
                OutRecord {
                    hash,
                    size,
                    dir: false,
                    exec: meta.permissions().mode() & 0o111 != 0,
                }
            })
        };
        let rec = stored.map_err(|e| {
            fail(format!(
                "cannot store output `{}` in the cache: {e}",
                o.path
            ))
        })?;
        outs.insert(o.path.clone(), rec);
    }
    Ok(outs)
}

fn record_stamp(memo: &SharedMemo, root: &Path, path: &str, rec: &OutRecord) {
    if rec.dir {
        return;
    }
    if let Ok(m) = fs::metadata(root.join(path)) {
        memo.record(path, Stamp::of(&m), rec.hash.clone());
    }
}
