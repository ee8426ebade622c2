//! What stages read: the `deps:` of `run:` stages, and the `inputs:` of
//! built-in stages wired to the ports of their kind.

use foldhash::{HashMap, HashMapExt, HashSet, HashSetExt};

use super::super::span::{Part, YamlPath};
use super::super::{Input, Source};
use super::paths::stem;
use super::{Draft, Validator};
use crate::spec::StageFactory;
use crate::stage::{Artifact, PortSpec};
use crate::suggest::did_you_mean;

/// The keys of gathered inputs by name, in order: what a stage's
/// fingerprint records so that reordering a gather reruns it.
pub(super) fn gather_order<'a>(
    inputs: impl Iterator<Item = &'a Input>,
) -> serde_json::Map<String, serde_json::Value> {
    let mut m = serde_json::Map::new();
    for i in inputs {
        if let serde_json::Value::Array(keys) = m
            .entry(i.name.clone())
            .or_insert_with(|| serde_json::Value::Array(Vec::new()))
        {
            keys.push(serde_json::Value::String(i.key.clone()));
        }
    }
    m
}

impl Validator<'_> {
    /// Checks the `deps:` of a `run:` stage: a list of paths or
    /// `stage.port` references that resolve, none listed twice, and no
    /// name given explicitly to two of them.
    pub(super) fn check_deps(
        &mut self,
        d: &Draft<'_>,
        drafts: &[Draft<'_>],
        ids: &HashMap<&str, usize>,
        out_index: &HashMap<&str, (usize, usize)>,
    ) -> Vec<Input> {
        let mut inputs: Vec<Input> = Vec::new();
        let Some(list) = d.decl.get("deps") else {
            return inputs;
        };
        let lpath = d.path.key("deps");
        let Some(list) = list.as_array() else {
            self.push(
                "type",
                &lpath,
                Part::Value,
                "`deps` must be a list".into(),
                "expected a list",
                None,
            );
            return inputs;
        };
        // Sets, not scans: a gather stage may have thousands of deps.
        let mut keys: HashSet<String> = HashSet::new();
        // Name → whether some dep was given that name explicitly.
        let mut names: HashMap<String, bool> = HashMap::new();
        for (i, item) in list.iter().enumerate() {
            let ipath = lpath.index(i);
            let Some((name, raw)) = self.named_entry(item, &ipath, "deps") else {
                continue;
            };
            // `stage@*.port`: the port of every instance, in order.
            let Some(each) = self.fan_in(&raw, &d.id, &ipath) else {
                continue;
            };
            let fanned = each.len() > 1 || raw.contains("@*.");
            for raw in each {
                let Some((p, source)) = self.resolve(d, &raw, &ipath, drafts, ids, out_index)
                else {
                    // The instances share their ports: what one lacks,
                    // all do, and it is reported once.
                    if fanned {
                        break;
                    }
                    continue;
                };
                let name = name.clone().unwrap_or_else(|| match &source {
                    Source::Stage { stage, output } => drafts[*stage].outputs[*output].name.clone(),
                    Source::File(f) => stem(f),
                });
                if fanned {
                    self.fanned.insert((d.id.clone(), name.clone()));
                }
                if !keys.insert(raw.clone()) {
                    self.push(
                        "duplicate_dep",
                        &ipath,
                        Part::Value,
                        format!("stage `{}` lists `{raw}` twice", d.id),
                        "listed twice",
                        None,
                    );
                    continue;
                }
                // A name given explicitly must be unique among the deps (the
                // instances of one fan-in share theirs).
                let clash = match names.get(&name) {
                    Some(_) if fanned && item.is_object() => false,
                    Some(&was_explicit) => item.is_object() || was_explicit,
                    None => false,
                };
                let entry = names.entry(name.clone()).or_insert(false);
                *entry |= item.is_object();
                if clash {
                    self.push(
                        "port_fed_twice",
                        &ipath,
                        Part::Value,
                        format!("input `{name}` of stage `{}` is fed twice", d.id),
                        "second feed",
                        Some("give each dep its own name".into()),
                    );
                    continue;
                }
                inputs.push(Input {
                    key: raw,
                    name,
                    path: p,
                    source,
                    written_by: Vec::new(),
                    gathered: None,
                });
            }
        }
        inputs
    }

    /// Checks the `inputs:` of a built-in stage: a mapping from the kind's
    /// input ports to `stage.port` references or paths that resolve to an
    /// artifact the port accepts.
    pub(super) fn check_inputs(
        &mut self,
        d: &Draft<'_>,
        factory: &dyn StageFactory,
        ports: &[PortSpec],
        drafts: &[Draft<'_>],
        ids: &HashMap<&str, usize>,
        out_index: &HashMap<&str, (usize, usize)>,
    ) -> Vec<Input> {
        let mut inputs: Vec<Input> = Vec::new();
        let Some(map) = d.decl.get("inputs") else {
            return inputs;
        };
        let ipath = d.path.key("inputs");
        let Some(map) = map.as_object() else {
            self.push(
                "type",
                &ipath,
                Part::Value,
                "`inputs` must map port names to `stage.port` or a path".into(),
                "expected a mapping",
                None,
            );
            return inputs;
        };
        for (port, v) in map {
            let ppath = ipath.key(port);
            if !self.check_port_name(d, factory, ports, port, &ppath) {
                continue;
            }
            let spec = ports.iter().find(|p| p.name == port);
            let want = spec.map(|p| p.artifact).unwrap_or(Artifact::ANY);
            if spec.is_some_and(|p| p.many) {
                self.check_gather(
                    d,
                    factory,
                    port,
                    want,
                    v,
                    &ppath,
                    drafts,
                    ids,
                    out_index,
                    &mut inputs,
                );
                continue;
            }
            let Some(raw) = v.as_str() else {
                self.push(
                    "type",
                    &ppath,
                    Part::Value,
                    "an input must be `stage.port` or a path".into(),
                    "not a reference",
                    None,
                );
                continue;
            };
            if raw.contains("@*.") {
                let gathering: Vec<&str> =
                    ports.iter().filter(|p| p.many).map(|p| p.name).collect();
                self.push(
                    "matrix",
                    &ppath,
                    Part::Value,
                    format!("input `{port}` of stage `{}` takes one artifact, not every instance of `{raw}`", d.id),
                    "one artifact per port",
                    Some(if gathering.is_empty() {
                        "name one instance (`stage@VALUE.port`), or gather them all in a `run:` stage's `deps:`, `evaluate.leaderboard` or `evaluate.select`".into()
                    } else {
                        format!("name one instance (`stage@VALUE.port`); {} of `{}` takes several", gathering.iter().map(|g| format!("`{g}`")).collect::<Vec<_>>().join(", "), factory.kind())
                    }),
                );
                continue;
            }
            if let Some((p, source)) = self.resolve(d, raw, &ppath, drafts, ids, out_index) {
                if !self.check_artifact(d, factory, port, want, &source, &ppath, drafts) {
                    continue;
                }
                inputs.push(Input {
                    key: port.clone(),
                    name: port.clone(),
                    path: p,
                    source,
                    written_by: Vec::new(),
                    gathered: None,
                });
            }
        }
        inputs
    }

    /// Checks the value of a gathering port ([`PortSpec::many`]): one
    /// reference or a list of them, where `stage@*.port` stands for that
    /// port of every instance; each artifact must resolve, fit the port's
    /// type and appear once.
    #[allow(clippy::too_many_arguments)]
    fn check_gather(
        &mut self,
        d: &Draft<'_>,
        factory: &dyn StageFactory,
        port: &str,
        want: Artifact,
        v: &serde_json::Value,
        ppath: &YamlPath,
        drafts: &[Draft<'_>],
        ids: &HashMap<&str, usize>,
        out_index: &HashMap<&str, (usize, usize)>,
        inputs: &mut Vec<Input>,
    ) {
        let items: Vec<(YamlPath, &serde_json::Value)> = match v {
            serde_json::Value::Array(list) => list
                .iter()
                .enumerate()
                .map(|(i, item)| (ppath.index(i), item))
                .collect(),
            other => vec![(ppath.clone(), other)],
        };
        if items.is_empty() {
            self.push(
                "matrix",
                ppath,
                Part::Value,
                format!("input `{port}` of stage `{}` gathers nothing", d.id),
                "empty list",
                Some(format!(
                    "list what it gathers, or every instance of a stage: `{port}: STAGE@*.PORT`"
                )),
            );
            return;
        }
        let mut seen: HashSet<String> = HashSet::new();
        for (at, item) in items {
            let Some(raw) = item.as_str() else {
                self.push(
                    "type",
                    &at,
                    Part::Value,
                    format!("input `{port}` takes `stage.port` references or paths, one or a list"),
                    "not a reference",
                    None,
                );
                continue;
            };
            let Some(each) = self.fan_in(raw, &d.id, &at) else {
                continue;
            };
            let fanned = raw.contains("@*.");
            for raw in each {
                let Some((p, source)) = self.resolve(d, &raw, &at, drafts, ids, out_index) else {
                    // The instances share their ports: what one lacks,
                    // all do, and it is reported once.
                    if fanned {
                        break;
                    }
                    continue;
                };
                if !self.check_artifact(d, factory, port, want, &source, &at, drafts) {
                    break;
                }
                // By the file read, so that a path and the reference to
                // the stage that writes it are one artifact.
                if !seen.insert(p.clone()) {
                    self.push(
                        "duplicate_dep",
                        &at,
                        Part::Value,
                        if raw == p {
                            format!("input `{port}` of stage `{}` gathers `{raw}` twice", d.id)
                        } else {
                            format!(
                                "input `{port}` of stage `{}` gathers `{raw}` (`{p}`) twice",
                                d.id
                            )
                        },
                        "gathered twice",
                        Some("gather each artifact once".into()),
                    );
                    if fanned {
                        break;
                    }
                    continue;
                }
                let from = match &source {
                    Source::Stage { stage, .. } => drafts[*stage].id.clone(),
                    Source::File(f) => f.clone(),
                };
                inputs.push(Input {
                    key: raw,
                    name: port.to_string(),
                    path: p,
                    source,
                    written_by: Vec::new(),
                    gathered: Some(from),
                });
            }
        }
    }

    /// Checks that `port` is one of the input ports of the stage's kind.
    fn check_port_name(
        &mut self,
        d: &Draft<'_>,
        factory: &dyn StageFactory,
        ports: &[PortSpec],
        port: &str,
        ppath: &YamlPath,
    ) -> bool {
        if ports.iter().any(|p| p.name == port) {
            return true;
        }
        let names: Vec<&str> = ports.iter().map(|p| p.name).collect();
        let mut help = did_you_mean(port, &names);
        if help.is_empty() {
            help = if names.is_empty() {
                format!("`{}` takes no inputs", factory.kind())
            } else {
                format!("`{}` takes: {}", factory.kind(), names.join(", "))
            };
        }
        self.push(
            "unknown_input_port",
            ppath,
            Part::Key,
            format!(
                "stage `{}` ({}) has no input port `{port}`",
                d.id,
                factory.kind()
            ),
            "unknown port",
            Some(help),
        );
        false
    }

    /// Checks that an input wired to another stage's output gets the
    /// artifact type its port wants (`want`).
    #[allow(clippy::too_many_arguments)]
    fn check_artifact(
        &mut self,
        d: &Draft<'_>,
        factory: &dyn StageFactory,
        port: &str,
        want: Artifact,
        source: &Source,
        ppath: &YamlPath,
        drafts: &[Draft<'_>],
    ) -> bool {
        let Source::Stage { stage, output } = source else {
            return true;
        };
        let up = &drafts[*stage];
        let oname = up.outputs[*output].name.as_str();
        let have = up
            .factory
            .as_ref()
            .and_then(|f| f.outputs().iter().find(|o| o.name == oname))
            .map(|o| o.artifact)
            .unwrap_or(Artifact::ANY);
        if have.fits(want) {
            return true;
        }
        self.push(
            "artifact_mismatch",
            ppath,
            Part::Value,
            format!(
                "stage `{}` ({}) wants a {} on input `{port}`, but `{}.{oname}` is a {}",
                d.id,
                factory.kind(),
                want.as_str(),
                up.id,
                have.as_str()
            ),
            "wrong artifact type",
            Some(format!(
                "wire a stage output that produces a {}; `mlcycle stages {}` lists the ports",
                want.as_str(),
                factory.kind()
            )),
        );
        false
    }

    /// Checks that every required input port of a built-in stage is wired.
    pub(super) fn check_required_inputs(
        &mut self,
        d: &Draft<'_>,
        factory: &dyn StageFactory,
        ports: &[PortSpec],
        inputs: &[Input],
    ) {
        for p in ports.iter().filter(|p| p.required) {
            if !inputs
                .iter()
                .any(|i| i.key == p.name || (i.gathered.is_some() && i.name == p.name))
                && d.decl.get("inputs").and_then(|m| m.get(p.name)).is_none()
            {
                self.push(
                    "missing_input_port",
                    &d.path.key("uses"),
                    Part::Key,
                    format!(
                        "stage `{}` ({}) needs input `{}`",
                        d.id,
                        factory.kind(),
                        p.name
                    ),
                    "input not wired",
                    Some(format!(
                        "add `inputs: {{{}: <stage>.<port>}}`: {}",
                        p.name, p.doc
                    )),
                );
            }
        }
    }
}
