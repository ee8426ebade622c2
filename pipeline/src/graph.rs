//! The stage DAG on petgraph: order, target selection, and rendering.

use std::collections::BTreeSet;
use std::fmt::Write;

use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::visit::{Dfs, EdgeRef, Reversed};
use petgraph::Direction;

use crate::config::{Pipeline, Source};

/// The sealed DAG of a validated pipeline. Edges run from producer to consumer.
#[derive(Debug)]
pub struct StageGraph {
    graph: DiGraph<usize, ()>,
    order: Vec<usize>,
}

/// A stage name given on the command line that the pipeline lacks.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[error("the pipeline has no stage `{name}`")]
#[diagnostic(code(mlcycle::graph::unknown_stage))]
pub struct UnknownTarget {
    pub name: String,
    #[help]
    pub help: Option<String>,
}

impl StageGraph {
    /// Builds the graph. The pipeline was checked for cycles on load.
    pub fn build(p: &Pipeline) -> Self {
        let mut graph = DiGraph::with_capacity(p.stages.len(), p.stages.len());
        for i in 0..p.stages.len() {
            graph.add_node(i);
        }
        for (i, s) in p.stages.iter().enumerate() {
            let mut seen = BTreeSet::new();
            for input in &s.inputs {
                let from: &[usize] = match &input.source {
                    Source::Stage { stage, .. } => std::slice::from_ref(stage),
                    Source::File(_) => &input.written_by,
                };
                for &stage in from {
                    if seen.insert(stage) {
                        graph.add_edge(NodeIndex::new(stage), NodeIndex::new(i), ());
                    }
                }
            }
        }
        let order = declaration_topo_order(&graph);
        Self { graph, order }
    }

    /// Every stage, producers before consumers.
    pub fn order(&self) -> &[usize] {
        &self.order
    }

    /// `roots` and every stage after them, directly or not.
    pub fn descendants(&self, roots: impl IntoIterator<Item = usize>) -> Vec<bool> {
        let mut seen = vec![false; self.graph.node_count()];
        let mut todo: Vec<usize> = roots.into_iter().collect();
        while let Some(i) = todo.pop() {
            if !std::mem::replace(&mut seen[i], true) {
                todo.extend(self.downstream(i));
            }
        }
        seen
    }

    /// The stages `i` reads from.
    pub fn upstream(&self, i: usize) -> impl Iterator<Item = usize> + '_ {
        self.graph
            .neighbors_directed(NodeIndex::new(i), Direction::Incoming)
            .map(|n| n.index())
    }

    /// The stages that read from `i`.
    pub fn downstream(&self, i: usize) -> impl Iterator<Item = usize> + '_ {
        self.graph
            .neighbors_directed(NodeIndex::new(i), Direction::Outgoing)
            .map(|n| n.index())
    }

    pub fn len(&self) -> usize {
        self.graph.node_count()
    }

    pub fn is_empty(&self) -> bool {
        self.graph.node_count() == 0
    }

    /// The stages to consider for a run of `targets` (all when empty): each
    /// target and what it needs, plus what depends on it with `downstream`.
    pub fn select(
        &self,
        p: &Pipeline,
        targets: &[String],
        downstream: bool,
    ) -> Result<Vec<bool>, UnknownTarget> {
        let n = self.len();
        if targets.is_empty() {
            return Ok(vec![true; n]);
        }
        let mut keep = vec![false; n];
        for t in targets {
            let starts = p.named(t);
            if starts.is_empty() {
                let help = crate::suggest::closest(t, p.stages.iter().map(|s| s.id.as_str()))
                    .map(|s| format!("did you mean `{s}`?"))
                    .or_else(|| Some("`mlcycle dag --format text` lists the stages".into()));
                return Err(UnknownTarget {
                    name: t.clone(),
                    help,
                });
            }
            for i in starts {
                let start = NodeIndex::new(i);
                let rev = Reversed(&self.graph);
                let mut dfs = Dfs::new(rev, start);
                while let Some(nx) = dfs.next(rev) {
                    keep[nx.index()] = true;
                }
                if downstream {
                    let mut dfs = Dfs::new(&self.graph, start);
                    while let Some(nx) = dfs.next(&self.graph) {
                        keep[nx.index()] = true;
                        // What a downstream stage needs must run too.
                        let mut up = Dfs::new(rev, nx);
                        while let Some(u) = up.next(rev) {
                            keep[u.index()] = true;
                        }
                    }
                }
            }
        }
        Ok(keep)
    }

    /// Mermaid flowchart (renders on GitHub) of the stages in `keep`.
    pub fn mermaid(&self, p: &Pipeline, keep: &[bool]) -> String {
        let mut s = String::from("flowchart TD\n");
        for (i, st) in p.stages.iter().enumerate().filter(|(i, _)| keep[*i]) {
            let _ = writeln!(
                s,
                "    n{i}[\"{}<br/><i>{}</i>\"]",
                escape_mermaid(&st.id),
                escape_mermaid(&st.kind)
            );
        }
        for e in self.edges(p, keep) {
            let _ = writeln!(s, "    n{} -->|{}| n{}", e.0, escape_mermaid(&e.2), e.1);
        }
        s
    }

    /// Graphviz dot, of the stages in `keep`.
    pub fn dot(&self, p: &Pipeline, keep: &[bool]) -> String {
        let mut s = format!(
            "digraph \"{}\" {{\n    rankdir=TB;\n    node [shape=box];\n",
            escape_dot(&p.name)
        );
        for st in p
            .stages
            .iter()
            .enumerate()
            .filter(|(i, _)| keep[*i])
            .map(|(_, s)| s)
        {
            let _ = writeln!(
                s,
                "    \"{}\" [label=\"{}\\n{}\"];",
                escape_dot(&st.id),
                escape_dot(&st.id),
                escape_dot(&st.kind)
            );
        }
        for (a, b, label) in self.edges(p, keep) {
            let _ = writeln!(
                s,
                "    \"{}\" -> \"{}\" [label=\"{}\"];",
                escape_dot(&p.stages[a].id),
                escape_dot(&p.stages[b].id),
                escape_dot(&label)
            );
        }
        s.push_str("}\n");
        s
    }

    /// Plain text: the stages in `keep`, in run order, each with what it reads.
    pub fn text(&self, p: &Pipeline, keep: &[bool]) -> String {
        let mut s = String::new();
        for &i in self.order.iter().filter(|&&i| keep[i]) {
            let st = &p.stages[i];
            let _ = write!(s, "{} ({})", st.id, st.kind);
            let ups: Vec<String> = st
                .inputs
                .iter()
                .map(|inp| match inp.source {
                    Source::Stage { stage, output } => {
                        format!(
                            "{}.{}",
                            p.stages[stage].id, p.stages[stage].outputs[output].name
                        )
                    }
                    Source::File(ref f) if !inp.written_by.is_empty() => {
                        let writers: Vec<&str> = inp
                            .written_by
                            .iter()
                            .map(|&w| p.stages[w].id.as_str())
                            .collect();
                        format!("{f} (written by {})", writers.join(", "))
                    }
                    Source::File(ref f) => f.clone(),
                })
                .collect();
            if !ups.is_empty() {
                let _ = write!(s, " <- {}", ups.join(", "));
            }
            s.push('\n');
        }
        s
    }

    /// (producer, consumer, "port" label) for every edge, in a stable order.
    fn edges(&self, p: &Pipeline, keep: &[bool]) -> Vec<(usize, usize, String)> {
        let mut out: Vec<(usize, usize, String)> = self
            .graph
            .edge_references()
            .filter(|e| keep[e.source().index()] && keep[e.target().index()])
            .map(|e| {
                let (a, b) = (e.source().index(), e.target().index());
                let ports: BTreeSet<&str> = p.stages[b]
                    .inputs
                    .iter()
                    .filter_map(|inp| match inp.source {
                        Source::Stage { stage, output } if stage == a => {
                            Some(p.stages[a].outputs[output].name.as_str())
                        }
                        // A folder dep that holds `a`'s outputs: labelled
                        // with the folder the consumer reads.
                        Source::File(ref f) if inp.written_by.contains(&a) => Some(f.as_str()),
                        _ => None,
                    })
                    .collect();
                (a, b, ports.into_iter().collect::<Vec<_>>().join(", "))
            })
            .collect();
        out.sort();
        out
    }
}

/// Kahn's algorithm, always taking the first-declared ready stage, so
/// independent stages keep the order they have in the file.
fn declaration_topo_order(graph: &DiGraph<usize, ()>) -> Vec<usize> {
    use std::cmp::Reverse;
    use std::collections::BinaryHeap;
    let n = graph.node_count();
    let mut indeg: Vec<usize> = (0..n)
        .map(|i| {
            graph
                .neighbors_directed(NodeIndex::new(i), Direction::Incoming)
                .count()
        })
        .collect();
    let mut heap: BinaryHeap<Reverse<usize>> =
        (0..n).filter(|&i| indeg[i] == 0).map(Reverse).collect();
    let mut order = Vec::with_capacity(n);
    while let Some(Reverse(i)) = heap.pop() {
        order.push(i);
        for d in graph.neighbors_directed(NodeIndex::new(i), Direction::Outgoing) {
            indeg[d.index()] -= 1;
            if indeg[d.index()] == 0 {
                heap.push(Reverse(d.index()));
            }
        }
    }
    if order.len() < n {
        // Unreachable for a validated pipeline (cycles are refused on load).
        let placed: foldhash::HashSet<usize> = order.iter().copied().collect();
        order.extend((0..n).filter(|i| !placed.contains(i)));
    }
    order
}

fn escape_mermaid(s: &str) -> String {
    s.replace('"', "#quot;")
}

fn escape_dot(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}
