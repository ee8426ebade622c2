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
                    .filter_map(|i| match i.source {
                        Source::Stage { stage, .. } => Some(stage),
                        Source::File(_) => None,
                    })
                    .collect()
            })
            .collect();
        if let Some(cycle) = crate::graph::find_cycle(&deps) {
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
