//! The ready queue: which stages may start, given which have finished.
//! Pure bookkeeping, no I/O.

use std::collections::VecDeque;

/// Tracks unfinished dependencies of the selected stages.
#[derive(Debug)]
pub struct DependencyQueue {
    waiting_on: Vec<usize>,
    dependents: Vec<Vec<usize>>,
    ready: VecDeque<usize>,
    state: Vec<State>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    NotSelected,
    Waiting,
    Ready,
    Running,
    Done,
}

impl DependencyQueue {
    /// `deps[i]` are the stages `i` reads from; `order` a topological order
    /// (ties start in that order); only `selected` stages are scheduled.
    pub fn new(deps: &[Vec<usize>], order: &[usize], selected: &[bool]) -> Self {
        let n = deps.len();
        let mut q = DependencyQueue {
            waiting_on: vec![0; n],
            dependents: vec![Vec::new(); n],
            ready: VecDeque::new(),
            state: vec![State::NotSelected; n],
        };
        for i in 0..n {
            if !selected[i] {
                continue;
            }
            q.state[i] = State::Waiting;
            for &d in &deps[i] {
                if selected[d] {
                    q.waiting_on[i] += 1;
                    q.dependents[d].push(i);
                }
            }
        }
        for &i in order {
            if q.state[i] == State::Waiting && q.waiting_on[i] == 0 {
                q.state[i] = State::Ready;
                q.ready.push_back(i);
            }
        }
        q
    }

    /// The next stage that may start.
    pub fn pop(&mut self) -> Option<usize> {
        let i = self.ready.pop_front()?;
        self.state[i] = State::Running;
        Some(i)
    }

    /// Marks `i` done; its dependents whose inputs are all done become ready.
    pub fn finish(&mut self, i: usize) {
        self.state[i] = State::Done;
        for k in 0..self.dependents[i].len() {
            let d = self.dependents[i][k];
            self.waiting_on[d] -= 1;
            if self.waiting_on[d] == 0 && self.state[d] == State::Waiting {
                self.state[d] = State::Ready;
                self.ready.push_back(d);
            }
        }
    }

    /// Marks every not-yet-started stage downstream of `i` done, returning
    /// them: they cannot run once `i` failed.
    pub fn cancel_dependents(&mut self, i: usize) -> Vec<usize> {
        let mut out = Vec::new();
        let mut stack = self.dependents[i].clone();
        while let Some(d) = stack.pop() {
            if matches!(self.state[d], State::Waiting | State::Ready) {
                self.state[d] = State::Done;
                self.ready.retain(|&r| r != d);
                out.push(d);
                stack.extend(self.dependents[d].iter().copied());
            }
        }
        out.sort();
        out
    }

    /// Every selected stage not started yet.
    pub fn drain_unstarted(&mut self) -> Vec<usize> {
        let mut out = Vec::new();
        for i in 0..self.state.len() {
            if matches!(self.state[i], State::Waiting | State::Ready) {
                self.state[i] = State::Done;
                out.push(i);
            }
        }
        self.ready.clear();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // 0 -> 1, 0 -> 2, {1,2} -> 3 (a diamond), 4 alone
    fn diamond() -> Vec<Vec<usize>> {
        vec![vec![], vec![0], vec![0], vec![1, 2], vec![]]
    }

    #[test]
    fn releases_stages_as_their_inputs_finish() {
        let deps = diamond();
        let mut q = DependencyQueue::new(&deps, &[0, 1, 2, 3, 4], &[true; 5]);
        assert_eq!(q.pop(), Some(0));
        assert_eq!(q.pop(), Some(4));
        assert_eq!(q.pop(), None);
        q.finish(0);
        assert_eq!(q.pop(), Some(1));
        assert_eq!(q.pop(), Some(2));
        q.finish(1);
        assert_eq!(q.pop(), None);
        q.finish(2);
        assert_eq!(q.pop(), Some(3));
    }

    #[test]
    fn cancel_skips_everything_downstream() {
        let deps = diamond();
        let mut q = DependencyQueue::new(&deps, &[0, 1, 2, 3, 4], &[true; 5]);
        q.pop();
        q.pop();
        q.finish(0);
        assert_eq!(q.pop(), Some(1));
        assert_eq!(q.cancel_dependents(1), vec![3]);
        assert_eq!(q.pop(), Some(2));
        q.finish(2);
        assert_eq!(q.pop(), None);
    }

    #[test]
    fn unselected_stages_are_ignored() {
        let deps = diamond();
        let mut q =
            DependencyQueue::new(&deps, &[0, 1, 2, 3, 4], &[true, true, false, false, false]);
        assert_eq!(q.pop(), Some(0));
        q.finish(0);
        assert_eq!(q.pop(), Some(1));
        q.finish(1);
        assert_eq!(q.pop(), None);
        assert!(q.drain_unstarted().is_empty());
    }
}
