//! Folder deps: the stages that write inside a folder a stage reads are
//! upstream of it, and a stage that reads a folder holding its own output
//! depends on itself.
//!
//! An edge follows from containment in both directions: a dep inside an
//! output folder is resolved to its producer when the dep is resolved
//! ([`super::refs`]); a dep folder that holds other stages' outputs is
//! linked here, once every stage's outputs are known.

use super::super::span::Part;
use super::super::{Source, StageDef};
use super::{Draft, Validator};

impl Validator<'_> {
    /// Fills `written_by` of every folder dep, and refuses a stage that
    /// reads a folder holding one of its own outputs.
    pub(super) fn link_folder_deps(&mut self, drafts: &[Draft<'_>], defs: &mut [Option<StageDef>]) {
        // Every output path with its stage, sorted: the outputs inside a
        // folder `p` are the range that starts with `p/`.
        let mut outputs: Vec<(&str, usize)> = drafts
            .iter()
            .enumerate()
            .flat_map(|(si, d)| d.outputs.iter().map(move |o| (o.path.as_str(), si)))
            .collect();
        outputs.sort_unstable();
        for (si, def) in defs.iter_mut().enumerate() {
            let Some(def) = def else { continue };
            for (ii, input) in def.inputs.iter_mut().enumerate() {
                let Source::File(dep) = &input.source else {
                    continue;
                };
                // The workspace root (`.`) holds every output.
                let inner = if dep == "." {
                    String::new()
                } else {
                    format!("{dep}/")
                };
                let start = outputs.partition_point(|(p, _)| *p < inner.as_str());
                let inside = outputs[start..]
                    .iter()
                    .take_while(|(p, _)| p.starts_with(&inner));
                let mut writers: Vec<usize> = Vec::new();
                for &(path, sj) in inside {
                    if sj == si {
                        let d = &drafts[si];
                        self.push(
                            "cycle",
                            &dep_path(d, ii),
                            Part::Value,
                            format!(
                                "stage `{}` reads `{dep}`, which holds its own output `{path}`",
                                d.id
                            ),
                            "reads what it writes",
                            Some(
                                "a stage cannot read what it writes: depend on the files it \
                                 needs inside the folder, or write the output elsewhere"
                                    .into(),
                            ),
                        );
                    } else if !writers.contains(&sj) {
                        writers.push(sj);
                    }
                }
                input.written_by = writers;
            }
        }
    }
}

/// Where dep `ii` of a stage is declared: its `deps:` item, or `with:` for
/// a built-in stage's path param (its port inputs come first).
fn dep_path(d: &Draft<'_>, ii: usize) -> super::super::span::YamlPath {
    if d.is_run {
        d.path.key("deps").index(ii)
    } else {
        d.path.key("with")
    }
}
