//! The process groups of running `run:` commands, recorded in
//! `.mlcycle/groups/PGID` while they run, so that the next run in the
//! workspace stops what a killed mlcycle (`kill -9`, a crash) left running:
//! without it, the next run would start a second copy of the command beside
//! the first, both writing the same outputs.

use std::fs;
use std::path::PathBuf;

use crate::workspace::Workspace;

/// A recorded group; the record is removed when this is dropped (the
/// command has ended).
pub(crate) struct Recorded(PathBuf);

impl Drop for Recorded {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0);
    }
}

fn dir(ws: &Workspace) -> PathBuf {
    ws.state.join("groups")
}

/// This machine's name (records from other Slurm nodes are not ours).
fn host() -> String {
    fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_default()
}

/// When process `pid` started (clock ticks since boot), which tells a
/// process from a later one that reuses its id.
fn start_time(pid: i32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The name (field 2) may hold spaces; the fields after its `)` do not.
    let rest = &stat[stat.rfind(')')? + 2..];
    rest.split(' ').nth(19)?.parse().ok()
}

/// Records the group of a command just started (best effort: a record
/// that cannot be written only loses the cleanup).
pub(crate) fn record(ws: &Workspace, pgid: i32) -> Option<Recorded> {
    let dir = dir(ws);
    fs::create_dir_all(&dir).ok()?;
    let path = dir.join(pgid.to_string());
    let started = start_time(pgid)?;
    fs::write(&path, format!("{} {started}\n", host())).ok()?;
    Some(Recorded(path))
}

/// Stops the groups that runs of this workspace left running, and returns
/// how many. Call it holding the writer lock: then no other run of the
/// workspace is alive, and every record is a dead run's.
pub fn reap(ws: &Workspace) -> usize {
    let Ok(entries) = fs::read_dir(dir(ws)) else {
        return 0;
    };
    let here = host();
    let mut stopped = 0;
    for e in entries.flatten() {
        let path = e.path();
        let pgid: Option<i32> = e.file_name().to_str().and_then(|n| n.parse().ok());
        let text = fs::read_to_string(&path).unwrap_or_default();
        let mut it = text.split_whitespace();
        let (h, started) = (it.next(), it.next().and_then(|s| s.parse::<u64>().ok()));
        if let (Some(pgid), Some(h), Some(started)) = (pgid, h, started) {
            if h != here || pgid <= 1 {
                // Another node's, or nonsense: not ours to signal.
                if h == here {
                    let _ = fs::remove_file(&path);
                }
                continue;
            }
            // The leader alive as recorded, or gone (its id then free, so
            // the group can only be what is left of the command): stop it.
            // A leader id now held by a newer process is someone else's.
            let ours = match start_time(pgid) {
                Some(t) => t == started,
                None => true,
            };
            if ours {
                // SAFETY: kill(2) has no memory-safety preconditions; the
                // negative pid names a process group this workspace's run
                // started (checked above), or one that no longer exists.
                let r = unsafe { libc::kill(-pgid, libc::SIGKILL) };
                if r == 0 {
                    stopped += 1;
                    tracing::warn!(pgid, "Stopped a command a killed run left running.");
                }
            }
        }
        let _ = fs::remove_file(&path);
    }
    stopped
}
