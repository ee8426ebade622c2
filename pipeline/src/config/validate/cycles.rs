//! Cycles among the stages.

use super::super::span::Part;
use super::super::{Source, StageDef};
use super::{Draft, Validator};

impl Validator<'_> {
    /// Checks that the stages that resolved form no cycle (checked among
    /// those only, so that a cycle is reported together with every other
    /// problem). The cycle is reported at its first stage.
    pub(super) fn check_cycles(&mut self, drafts: &[Draft<'_>], defs: &[Option<StageDef>]) {
        let deps: Vec<Vec<usize>> = defs
            .iter()
            .map(|s| {
                s.iter()
                    .flat_map(|s| s.inputs.iter())
                    .flat_map(|i| match i.source {
                        Source::Stage { stage, .. } => vec![stage],
                        Source::File(_) => i.written_by.clone(),
                    })
                    .collect()
            })
            .collect();
        for cycle in find_cycles(deps) {
            let chain: Vec<&str> = cycle
                .iter()
                .chain(cycle.first())
                .map(|&i| drafts[i].id.as_str())
                .collect();
            let first = &drafts[cycle[0]];
            self.push(
                "cycle",
                &first.path,
                Part::Key,
                format!("the stages form a cycle: {}", chain.join(" → ")),
                "this stage depends on itself through the chain",
                Some("a stage cannot read, directly or not, what it writes; remove one of the dependencies in the chain".into()),
            );
        }
    }
}

/// One cycle per separate tangle of stages: after a cycle is found, its
/// stages are taken out and the search goes on, so that every cycle that
/// shares no stage with another is reported in one go.
pub(crate) fn find_cycles(mut deps: Vec<Vec<usize>>) -> Vec<Vec<usize>> {
    let mut cycles = Vec::new();
    while let Some(cycle) = find_cycle(&deps) {
        for &n in &cycle {
            deps[n].clear();
        }
        for list in &mut deps {
            list.retain(|d| !cycle.contains(d));
        }
        cycles.push(cycle);
    }
    cycles
}

/// A directed cycle in `deps` (stage → the stages it reads), as stage
/// indices in dependency order, if there is one.
pub(crate) fn find_cycle(deps: &[Vec<usize>]) -> Option<Vec<usize>> {
    // Iterative DFS with colours; the stack holds the current path.
    let n = deps.len();
    let mut colour = vec![0u8; n]; // 0 new, 1 on path, 2 done
    for start in 0..n {
        if colour[start] != 0 {
            continue;
        }
        let mut stack: Vec<(usize, usize)> = vec![(start, 0)];
        colour[start] = 1;
        while let Some(&mut (node, ref mut next)) = stack.last_mut() {
            if let Some(&dep) = deps[node].get(*next) {
                *next += 1;
                match colour[dep] {
                    0 => {
                        colour[dep] = 1;
                        stack.push((dep, 0));
                    }
                    1 => {
                        let pos = stack.iter().position(|(s, _)| *s == dep).unwrap_or(0);
                        // The path runs dependent → dependency; show it in
                        // data-flow order: each stage feeds the next.
                        let mut cycle: Vec<usize> = stack[pos..].iter().map(|(s, _)| *s).collect();
                        cycle.reverse();
                        // Start at the first-declared stage, for stable messages.
                        let min = cycle
                            .iter()
                            .enumerate()
                            .min_by_key(|(_, s)| **s)
                            .map(|(i, _)| i)
                            .unwrap_or(0);
                        cycle.rotate_left(min);
                        return Some(cycle);
                    }
                    _ => {}
                }
            } else {
                colour[node] = 2;
                stack.pop();
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::find_cycle;

    #[test]
    fn finds_the_whole_cycle() {
        // 0 <- 1 <- 2 <- 0 (each reads the previous)
        let deps = vec![vec![2], vec![0], vec![1], vec![]];
        let c = find_cycle(&deps).unwrap();
        assert_eq!(c.len(), 3);
        assert_eq!(c, vec![0, 1, 2]);
    }

    #[test]
    fn no_cycle_in_a_diamond() {
        let deps = vec![vec![], vec![0], vec![0], vec![1, 2]];
        assert!(find_cycle(&deps).is_none());
    }

    #[test]
    fn every_separate_cycle_is_found() {
        // 0 <-> 1, and 2 -> 3 -> 4 -> 2, and 5 reads 0.
        let deps = vec![vec![1], vec![0], vec![4], vec![2], vec![3], vec![0]];
        let cycles = super::find_cycles(deps);
        assert_eq!(cycles, vec![vec![0, 1], vec![2, 3, 4]]);
    }

    #[test]
    fn self_loop() {
        assert_eq!(find_cycle(&[vec![0]]).unwrap(), vec![0]);
    }
}
