//! `resources:`: the pipeline-wide defaults and each stage's own.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::super::resources::Resources;
use super::super::span::{Part, YamlPath};
use super::{Draft, Validator};

impl Validator<'_> {
    /// Checks the top-level `resources:` (the defaults) and each stage's,
    /// and lays each stage's over the defaults. Only stages that ask for
    /// something get an entry.
    pub(super) fn check_resources(
        &mut self,
        top: &Map<String, Value>,
        drafts: &[Draft<'_>],
    ) -> BTreeMap<String, Resources> {
        let defaults = match top.get("resources") {
            None => Resources::default(),
            Some(v) => self
                .resources(v, &YamlPath::root().key("resources"), "the pipeline")
                .unwrap_or_default(),
        };
        let mut resources = BTreeMap::new();
        for d in drafts {
            let own = match d.decl.get("resources") {
                None => Resources::default(),
                Some(v) => self
                    .resources(v, &d.path.key("resources"), &format!("stage `{}`", d.id))
                    .unwrap_or_default(),
            };
            let r = defaults.overlay(&own);
            // Only stages that ask for something: a 10 000-stage pipeline
            // without resources carries no map entries.
            if r != Resources::default() {
                resources.insert(d.id.clone(), r);
            }
        }
        resources
    }

    /// Checks a `resources:` mapping, reporting each bad key at its place.
    fn resources(&mut self, v: &Value, path: &YamlPath, owner: &str) -> Option<Resources> {
        match Resources::parse(v) {
            Ok(r) => Some(r),
            Err(problems) => {
                for (key, message, help) in problems {
                    let (p, part) = if key.is_empty() {
                        (path.clone(), Part::Value)
                    } else if message.starts_with("unknown") {
                        (path.key(key), Part::Key)
                    } else {
                        (path.key(key), Part::Value)
                    };
                    self.push(
                        "resources",
                        &p,
                        part,
                        format!("{owner}: {message}"),
                        "here",
                        Some(help),
                    );
                }
                None
            }
        }
    }
}
