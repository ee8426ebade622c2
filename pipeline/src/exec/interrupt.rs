//! Stopping a run from outside: the handle a Ctrl-C handler (or an embedding
//! program) holds.
//!
//! A run checks its [`Interrupt`] before it starts each stage; commands it
//! started are registered here by process group, so that an interrupt can
//! signal them all. Every run gets its own handle: nothing here is
//! process-global, so two sessions in one program do not stop each other.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A cloneable handle that stops a run: no new stage starts, running
/// commands get SIGTERM, then SIGKILL after a grace period.
#[derive(Debug, Clone, Default)]
pub struct Interrupt(Arc<Inner>);

#[derive(Debug, Default)]
struct Inner {
    stopped: AtomicBool,
    /// Process groups of the commands running now.
    groups: Mutex<HashSet<i32>>,
    /// Slurm job ids in flight.
    jobs: Mutex<Vec<String>>,
}

impl Interrupt {
    /// A handle that has not been triggered.
    pub fn new() -> Self {
        Self::default()
    }

    /// Stops the run: no new stage starts, and every running command's
    /// process group gets SIGTERM, then SIGKILL after `grace`. Safe to call
    /// from a signal-handling thread.
    pub fn interrupt(&self, grace: Duration) {
        self.0.stopped.store(true, Ordering::SeqCst);
        self.signal(libc::SIGTERM);
        let me = self.clone();
        std::thread::spawn(move || {
            std::thread::sleep(grace);
            me.signal(libc::SIGKILL);
        });
    }

    /// Sends SIGKILL to every running command's process group at once.
    pub fn kill_all(&self) {
        self.0.stopped.store(true, Ordering::SeqCst);
        self.signal(libc::SIGKILL);
    }

    /// Whether [`Interrupt::interrupt`] (or [`Interrupt::kill_all`]) was called.
    pub fn is_set(&self) -> bool {
        self.0.stopped.load(Ordering::SeqCst)
    }

    fn signal(&self, sig: i32) {
        let groups: Vec<i32> = lock(&self.0.groups).iter().copied().collect();
        for pgid in groups {
            // SAFETY: kill(2) has no memory-safety preconditions; the negative
            // pid names the process group of a child this process spawned.
            unsafe {
                libc::kill(-pgid, sig);
            }
        }
    }

    /// Registers (or forgets) the process group of a command just started.
    /// A command registered after the interrupt is signalled at once.
    pub(crate) fn track_group(&self, pgid: i32, running: bool) {
        if running {
            lock(&self.0.groups).insert(pgid);
            if self.is_set() {
                self.signal(libc::SIGTERM);
            }
        } else {
            lock(&self.0.groups).remove(&pgid);
        }
    }

    /// Registers (or forgets) a Slurm job submitted by this run.
    pub(crate) fn track_job(&self, id: &str, running: bool) {
        let mut jobs = lock(&self.0.jobs);
        if running {
            jobs.push(id.to_string());
        } else {
            jobs.retain(|j| j != id);
        }
    }

    /// The Slurm jobs in flight, to cancel by id (never by name).
    pub fn jobs(&self) -> Vec<String> {
        lock(&self.0.jobs).clone()
    }

    /// Cancels the Slurm jobs in flight at once (`scancel ID …`, the
    /// command from `MLCYCLE_SCANCEL` when set): a second Ctrl-C exits
    /// without waiting for the run's own cancelling.
    pub fn cancel_jobs(&self) {
        let jobs = self.jobs();
        if jobs.is_empty() {
            return;
        }
        let scancel = crate::exec::slurm::tool("MLCYCLE_SCANCEL", "scancel");
        let _ = std::process::Command::new(scancel).args(&jobs).output();
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handles_are_independent_and_clones_share_state() {
        let a = Interrupt::new();
        let b = Interrupt::new();
        let a2 = a.clone();
        a2.kill_all();
        assert!(a.is_set());
        assert!(!b.is_set());
        a.track_job("17", true);
        a.track_job("18", true);
        a.track_job("17", false);
        assert_eq!(a2.jobs(), vec!["18".to_string()]);
        assert!(b.jobs().is_empty());
    }
}
