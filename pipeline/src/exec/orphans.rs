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
/// that cannot be written only loses the cleanup). The record names this
/// mlcycle process too: a group is an orphan only once it is dead.
pub(crate) fn record(ws: &Workspace, pgid: i32) -> Option<Recorded> {
    let dir = dir(ws);
    fs::create_dir_all(&dir).ok()?;
    let path = dir.join(pgid.to_string());
    let started = start_time(pgid)?;
    let me = std::process::id() as i32;
    let owner = start_time(me)?;
    fs::write(&path, format!("{} {started} {me} {owner}\n", host())).ok()?;
    Some(Recorded(path))
}

/// Where the Slurm jobs a driver waits for are recorded while it waits.
fn jobs_dir(ws: &Workspace) -> PathBuf {
    ws.state.join("slurm-jobs")
}

/// Records a Slurm job this process submitted and waits for, so that if
/// it is killed, the next run cancels the job instead of letting it write
/// the stage's outputs beside a new copy (best effort, as [`record`]).
pub(crate) fn record_job(ws: &Workspace, job: &str) -> Option<Recorded> {
    if job.is_empty() || !job.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        return None;
    }
    let dir = jobs_dir(ws);
    fs::create_dir_all(&dir).ok()?;
    let path = dir.join(job);
    let me = std::process::id() as i32;
    let owner = start_time(me)?;
    fs::write(&path, format!("{} {me} {owner}\n", host())).ok()?;
    Some(Recorded(path))
}

/// Cancels the Slurm jobs whose driver (on this machine) is gone, with
/// `scancel ID`, and returns how many.
fn cancel_orphan_jobs(ws: &Workspace, scancel: &str) -> usize {
    let Ok(entries) = fs::read_dir(jobs_dir(ws)) else {
        return 0;
    };
    let here = host();
    let mut cancelled = 0;
    for e in entries.flatten() {
        let path = e.path();
        let text = fs::read_to_string(&path).unwrap_or_default();
        let mut it = text.split_whitespace();
        let on = it.next();
        let owner = it.next().and_then(|s| s.parse::<i32>().ok());
        let started = it.next().and_then(|s| s.parse::<u64>().ok());
        // A driver on another machine cannot be checked from here.
        if on != Some(here.as_str()) || owner_alive(owner, started) {
            continue;
        }
        if let Some(job) = e.file_name().to_str() {
            if std::process::Command::new(scancel)
                .arg(job)
                .output()
                .is_ok_and(|o| o.status.success())
            {
                cancelled += 1;
                tracing::warn!(job, "Cancelled a Slurm job a killed run left queued.");
            }
        }
        let _ = fs::remove_file(&path);
    }
    cancelled
}

/// Whether the mlcycle process recorded as a group's owner (its pid and
/// start time) still runs: a Slurm job's `mlcycle exec` on this machine
/// holds no writer lock, yet its command is no orphan.
fn owner_alive(pid: Option<i32>, started: Option<u64>) -> bool {
    match (pid, started) {
        (Some(pid), Some(t)) if pid > 1 => start_time(pid) == Some(t),
        _ => false,
    }
}

/// Stops the groups (and cancels the Slurm jobs) that runs of this
/// workspace left running, and returns how many. Call it holding the writer lock: then no other run of the
/// workspace is alive. A record whose owner still runs (a Slurm job of a
/// detached run, on this machine) is left alone.
pub fn reap(ws: &Workspace) -> usize {
    // `scancel`, or the command `MLCYCLE_SCANCEL` names (as for a run).
    let scancel = crate::exec::slurm::tool("MLCYCLE_SCANCEL", "scancel");
    let mut stopped = cancel_orphan_jobs(ws, &scancel);
    let Ok(entries) = fs::read_dir(dir(ws)) else {
        return stopped;
    };
    let here = host();
    for e in entries.flatten() {
        let path = e.path();
        let pgid: Option<i32> = e.file_name().to_str().and_then(|n| n.parse().ok());
        let text = fs::read_to_string(&path).unwrap_or_default();
        let mut it = text.split_whitespace();
        let (h, started) = (it.next(), it.next().and_then(|s| s.parse::<u64>().ok()));
        let owner = it.next().and_then(|s| s.parse::<i32>().ok());
        let owner_started = it.next().and_then(|s| s.parse::<u64>().ok());
        if h == Some(here.as_str()) && owner_alive(owner, owner_started) {
            continue;
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::CommandExt;

    /// A group whose recording mlcycle still runs is not an orphan (a
    /// Slurm job's `mlcycle exec` on the driver's machine had its command
    /// killed by any later run); one whose owner is gone is stopped.
    #[test]
    fn only_a_dead_owners_groups_are_stopped() {
        let tmp = tempfile::tempdir().unwrap();
        let ws = Workspace::new(tmp.path());
        let spawn = || {
            std::process::Command::new("sleep")
                .arg("30")
                .process_group(0)
                .spawn()
                .unwrap()
        };
        let mut live = spawn();
        let kept = record(&ws, live.id() as i32).expect("recorded");
        assert_eq!(reap(&ws), 0);
        assert!(
            live.try_wait().unwrap().is_none(),
            "a live owner's command was killed"
        );
        // The same group, recorded by an owner that has ended.
        std::mem::forget(kept);
        let path = dir(&ws).join(live.id().to_string());
        let text = fs::read_to_string(&path).unwrap();
        let fields: Vec<&str> = text.split_whitespace().collect();
        fs::write(&path, format!("{} {} 999999999 1\n", fields[0], fields[1])).unwrap();
        assert_eq!(reap(&ws), 1);
        assert!(live.wait().unwrap().code().is_none(), "killed by a signal");
        assert!(!path.exists());
    }

    /// A Slurm job recorded by a driver that still waits for it is left
    /// alone; one whose driver was killed is cancelled by the next run.
    #[test]
    fn only_a_dead_drivers_slurm_jobs_are_cancelled() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let ws = Workspace::new(tmp.path());
        let kept = record_job(&ws, "4242").expect("recorded");
        let scancel = tmp.path().join("scancel");
        let log = tmp.path().join("cancelled");
        fs::write(
            &scancel,
            format!("#!/bin/sh\necho \"$@\" >> {}\n", log.display()),
        )
        .unwrap();
        fs::set_permissions(&scancel, fs::Permissions::from_mode(0o755)).unwrap();
        let scancel = scancel.display().to_string();
        assert_eq!(cancel_orphan_jobs(&ws, &scancel), 0);
        assert!(!log.exists());
        // Its driver gone (a pid that cannot exist).
        std::mem::forget(kept);
        let path = jobs_dir(&ws).join("4242");
        fs::write(&path, format!("{} 999999999 1\n", host())).unwrap();
        assert_eq!(cancel_orphan_jobs(&ws, &scancel), 1);
        assert_eq!(fs::read_to_string(&log).unwrap(), "4242\n");
        assert!(!path.exists());
    }
}
