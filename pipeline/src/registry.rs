//! The registry of stage kinds, keyed by kind name.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::spec::StageFactory;

/// The kind name of `run:` stages, which the engine runs itself.
pub const COMMAND_KIND: &str = "command";

/// Stage factories by kind name. Built-ins are added by
/// `mlcycle_stages::register_builtins`; custom crates add their own.
#[derive(Default, Clone)]
pub struct StageRegistry {
    kinds: BTreeMap<&'static str, Arc<dyn StageFactory>>,
}

impl std::fmt::Debug for StageRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.kinds.keys()).finish()
    }
}

/// Registering a kind twice is a programming error in the registering crate.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[error("stage kind `{0}` is registered twice")]
#[diagnostic(code(mlcycle::registry::duplicate))]
pub struct DuplicateKind(pub String);

impl StageRegistry {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a factory. Kind names must be unique and may not be `command`.
    pub fn register(&mut self, factory: impl StageFactory + 'static) -> Result<(), DuplicateKind> {
        let kind = factory.kind();
        if kind == COMMAND_KIND || self.kinds.contains_key(kind) {
            return Err(DuplicateKind(kind.to_string()));
        }
        self.kinds.insert(kind, Arc::new(factory));
        Ok(())
    }

    pub fn get(&self, kind: &str) -> Option<&Arc<dyn StageFactory>> {
        self.kinds.get(kind)
    }

    /// Every registered kind, sorted.
    pub fn kinds(&self) -> impl Iterator<Item = &Arc<dyn StageFactory>> {
        self.kinds.values()
    }

    /// The registered kind closest to `kind`, for "did you mean".
    pub fn suggest(&self, kind: &str) -> Option<&'static str> {
        crate::suggest::closest(kind, self.kinds.keys().copied())
    }
}
