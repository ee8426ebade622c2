//! Built-in mlcycle stages.
//!
//! [`register_builtins`] adds every built-in kind to a registry, from one
//! hand-written, ordered list. `run:` (command) stages are executed by the
//! engine itself and need no registration.

pub mod util;

use mlcycle_pipeline::registry::{DuplicateKind, StageRegistry};

/// Adds every built-in stage kind to `registry`.
pub fn register_builtins(registry: &mut StageRegistry) -> Result<(), DuplicateKind> {
    registry.register(util::Import)?;
    registry.register(util::Wc)?;
    Ok(())
}

/// A registry with every built-in kind.
pub fn builtin_registry() -> StageRegistry {
    let mut r = StageRegistry::new();
    register_builtins(&mut r).expect("built-in kinds are unique");
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_is_documented() {
        let r = builtin_registry();
        let mut n = 0;
        for f in r.kinds() {
            n += 1;
            assert!(
                f.kind().contains('.'),
                "kind `{}` should be `phase.name`",
                f.kind()
            );
            assert!(!f.summary().is_empty(), "`{}` has no summary", f.kind());
            for p in f.inputs().iter().chain(f.outputs()) {
                assert!(
                    !p.doc.is_empty(),
                    "port `{}` of `{}` is undocumented",
                    p.name,
                    f.kind()
                );
            }
            for p in f.param_docs() {
                assert!(
                    !p.doc.is_empty(),
                    "param `{}` of `{}` is undocumented",
                    p.name,
                    f.kind()
                );
            }
        }
        assert_eq!(n, 2);
    }
}
