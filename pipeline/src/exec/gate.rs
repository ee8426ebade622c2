//! The gate several runs in one process share (the workspaces of an
//! experiment sweep): one pool of job slots for all of them, and one run
//! per stage fingerprint. A stage whose fingerprint another run is
//! computing waits for it and restores its outputs from the cache instead
//! of computing them again.

use std::collections::{HashMap, HashSet};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Duration;

use super::interrupt::Interrupt;
use crate::workspace::LockEntry;

/// Shared by the runs of one sweep (see the module docs).
#[derive(Debug)]
pub struct StageGate {
    slots: usize,
    state: Mutex<GateState>,
    changed: Condvar,
}

#[derive(Debug, Default)]
struct GateState {
    used: usize,
    /// Fingerprint keys being computed now.
    running: HashSet<String>,
    /// Fingerprint keys computed in this process, with their results.
    done: HashMap<String, LockEntry>,
    /// How many stages were computed (not restored) through the gate.
    computed: usize,
}

/// What a stage that asked the gate does.
pub enum Admission<'g> {
    /// Compute it, holding the pass until it ends.
    Run(Pass<'g>),
    /// Another run computed the same fingerprint: restore this result.
    Ran(LockEntry),
    /// The run was interrupted while the stage waited.
    Interrupted,
}

/// A stage's right to run: its slots and its fingerprint, released when
/// dropped (a failed stage leaves no result, so a waiter computes it).
pub struct Pass<'g> {
    gate: &'g StageGate,
    key: Option<String>,
    cpus: usize,
}

impl StageGate {
    /// A gate with `slots` job slots (at least one).
    pub fn new(slots: usize) -> Self {
        Self {
            slots: slots.max(1),
            state: Mutex::new(GateState::default()),
            changed: Condvar::new(),
        }
    }

    /// The job slots.
    pub fn slots(&self) -> usize {
        self.slots
    }

    /// How many stages ran (rather than being shared) through the gate.
    pub fn computed(&self) -> usize {
        self.lock().computed
    }

    fn lock(&self) -> MutexGuard<'_, GateState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits until stage fingerprint `key` may run: no other run computes
    /// it (when one did, its result comes back instead) and `cpus` slots
    /// are free (or none is in use). `key` is `None` for a stage whose
    /// results cannot be shared (outputs kept out of the cache).
    pub fn enter(&self, key: Option<&str>, cpus: usize, interrupt: &Interrupt) -> Admission<'_> {
        let cpus = cpus.clamp(1, self.slots);
        let mut st = self.lock();
        loop {
            if interrupt.is_set() {
                return Admission::Interrupted;
            }
            if let Some(k) = key {
                if let Some(entry) = st.done.get(k) {
                    return Admission::Ran(entry.clone());
                }
            }
            let busy = key.is_some_and(|k| st.running.contains(k));
            if !busy && (st.used == 0 || st.used + cpus <= self.slots) {
                st.used += cpus;
                st.computed += 1;
                if let Some(k) = key {
                    st.running.insert(k.to_string());
                }
                return Admission::Run(Pass {
                    gate: self,
                    key: key.map(str::to_string),
                    cpus,
                });
            }
            // Timed, so that an interrupt is seen without a notification.
            st = self
                .changed
                .wait_timeout(st, Duration::from_millis(100))
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }
}

impl Pass<'_> {
    /// Publishes the stage's result for waiters of the same fingerprint.
    pub fn finish(self, entry: Option<&LockEntry>) {
        if let (Some(k), Some(e)) = (&self.key, entry) {
            self.gate.lock().done.insert(k.clone(), e.clone());
        }
    }
}

impl Drop for Pass<'_> {
    fn drop(&mut self) {
        let mut st = self.gate.lock();
        st.used -= self.cpus;
        if let Some(k) = &self.key {
            st.running.remove(k);
        }
        drop(st);
        self.gate.changed.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn entry(key: &str) -> LockEntry {
        serde_json::from_value(serde_json::json!({"key": key, "fingerprint": {}, "outs": {}}))
            .expect("a lock entry")
    }

    #[test]
    fn one_run_per_key_and_the_others_get_its_result() {
        let gate = StageGate::new(4);
        let int = Interrupt::new();
        let computed = AtomicUsize::new(0);
        std::thread::scope(|s| {
            for _ in 0..8 {
                s.spawn(|| match gate.enter(Some("k"), 1, &int) {
                    Admission::Run(pass) => {
                        computed.fetch_add(1, Ordering::SeqCst);
                        std::thread::sleep(Duration::from_millis(30));
                        pass.finish(Some(&entry("k")));
                    }
                    Admission::Ran(e) => assert_eq!(e.key, "k"),
                    Admission::Interrupted => panic!("not interrupted"),
                });
            }
        });
        assert_eq!(computed.load(Ordering::SeqCst), 1);
        assert_eq!(gate.computed(), 1);
    }

    #[test]
    fn a_failed_run_lets_the_next_waiter_compute() {
        let gate = StageGate::new(1);
        let int = Interrupt::new();
        let Admission::Run(pass) = gate.enter(Some("k"), 1, &int) else {
            panic!("first comer runs")
        };
        drop(pass); // failed: no result
        assert!(matches!(gate.enter(Some("k"), 1, &int), Admission::Run(_)));
    }

    #[test]
    fn slots_bound_what_runs_at_once() {
        let gate = StageGate::new(2);
        let int = Interrupt::new();
        let now = AtomicUsize::new(0);
        let peak = AtomicUsize::new(0);
        std::thread::scope(|s| {
            for i in 0..6 {
                let (gate, int, now, peak) = (&gate, &int, &now, &peak);
                s.spawn(move || {
                    let key = format!("k{i}");
                    let Admission::Run(pass) = gate.enter(Some(&key), 1, int) else {
                        panic!("distinct keys all run")
                    };
                    let n = now.fetch_add(1, Ordering::SeqCst) + 1;
                    peak.fetch_max(n, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(20));
                    now.fetch_sub(1, Ordering::SeqCst);
                    pass.finish(None);
                });
            }
        });
        assert_eq!(peak.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn an_interrupt_ends_the_wait() {
        let gate = StageGate::new(1);
        let int = Interrupt::new();
        let _held = gate.enter(None, 1, &int);
        int.kill_all();
        assert!(matches!(gate.enter(None, 1, &int), Admission::Interrupted));
    }
}
