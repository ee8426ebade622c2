//! What flows along the edges: each built-in stage, in dependency order,
//! is told what its inputs will hold ([`crate::StageKind::infer`]) and says
//! what its outputs will, with the problems that already shows (a trainer
//! fed a table with no target). The engine only carries the facts; the
//! kinds define and read them.

use std::collections::BTreeMap;

use super::super::{Action, Source, StageDef};
use super::{Draft, Validator};
use crate::stage::{Facts, InferContext};

impl Validator<'_> {
    /// Runs every built-in stage's `infer` in dependency order and reports
    /// its problems at the stage. A stage that was not built (a problem of
    /// its own was reported) passes nothing on, so one fault is not
    /// reported again downstream.
    pub(super) fn check_flow(&mut self, drafts: &[Draft<'_>], defs: &[Option<StageDef>]) {
        let mut facts: Vec<BTreeMap<String, Facts>> = vec![BTreeMap::new(); defs.len()];
        // Reported in the order of the file, like every other problem.
        let mut problems = vec![Vec::new(); defs.len()];
        for i in dependency_order(defs) {
            let Some(def) = &defs[i] else { continue };
            if self.unread.contains(&def.id) {
                continue;
            }
            let Action::Builtin(stage) = &def.action else {
                continue;
            };
            let inputs = def
                .inputs
                .iter()
                // A gathering port's artifacts bring no facts: a kind
                // that gathers reads them at run time.
                .filter(|input| input.gathered.is_none())
                .filter_map(|input| match input.source {
                    Source::Stage { stage, output } => {
                        let port = &defs[stage].as_ref()?.outputs.get(output)?.name;
                        let f = facts[stage].get(port)?;
                        Some((input.key.clone(), f.clone()))
                    }
                    Source::File(_) => None,
                })
                .collect();
            let mut gathered: BTreeMap<String, usize> = BTreeMap::new();
            for input in def.inputs.iter().filter(|i| i.gathered.is_some()) {
                *gathered.entry(input.name.clone()).or_default() += 1;
            }
            let cx = InferContext {
                stage: &def.id,
                workspace: &self.root,
                inputs,
                gathered,
            };
            let inferred = stage.infer(&cx);
            problems[i] = inferred.problems;
            facts[i] = inferred.outputs;
        }
        for (d, problems) in drafts.iter().zip(problems) {
            let Some(factory) = d.factory.clone() else {
                continue;
            };
            let wpath = d.path.key("with");
            for e in problems {
                self.bad_param(d, factory.as_ref(), e, &wpath);
            }
        }
    }
}

/// The stages in an order where each comes after the stages whose outputs
/// it reads (Kahn's algorithm); stages on a cycle are left out (the cycle
/// is reported on its own).
fn dependency_order(defs: &[Option<StageDef>]) -> Vec<usize> {
    let n = defs.len();
    let mut readers: Vec<Vec<usize>> = vec![Vec::new(); n];
    let mut waiting = vec![0usize; n];
    for (i, def) in defs.iter().enumerate() {
        for input in def.iter().flat_map(|d| d.inputs.iter()) {
            if let Source::Stage { stage, .. } = input.source {
                readers[stage].push(i);
                waiting[i] += 1;
            }
        }
    }
    let mut order: Vec<usize> = (0..n).filter(|&i| waiting[i] == 0).collect();
    let mut next = 0;
    while next < order.len() {
        let i = order[next];
        next += 1;
        for &r in &readers[i] {
            waiting[r] -= 1;
            if waiting[r] == 0 {
                order.push(r);
            }
        }
    }
    order
}
