//! One stage kind of our own, `text.upper`, which upper-cases a text
//! artifact, and a registry that holds it beside the built-ins.
//!
//! Two ways to use it: `src/main.rs` hands the registry to the whole
//! `mlcycle` CLI (`mlcycle-custom run …`), and a program can run a pipeline
//! itself through the engine's `Session`:
//!
//! ```no_run
//! use mlcycle::pipeline::{RunRequest, Session, SessionOptions};
//!
//! let registry = mlcycle_custom_stage_example::registry();
//! let session = Session::open("mlcycle.yaml".as_ref(), &SessionOptions::new(&registry))?;
//! let summary = session.run(&RunRequest::default(), &())?.summary;
//! assert!(summary.succeeded());
//! # Ok::<(), mlcycle::pipeline::SessionError>(())
//! ```

use mlcycle::pipeline::StageRegistry;
use mlcycle::pipeline::{
    Artifact, ParamDoc, ParamError, PortSpec, RunContext, StageError, StageKind, StageSpec,
};
use serde::{Deserialize, Serialize};

/// The kind `text.upper`.
pub struct Upper;

/// Its params (`with:`), checked when the pipeline is loaded. Defaults are
/// filled in here, so `{}` and `{prefix: ""}` give the same fingerprint, and
/// `mlcycle stages text.upper` shows them.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpperParams {
    #[serde(default)]
    prefix: String,
}

impl StageKind for Upper {
    type Params = UpperParams;
    const SPEC: StageSpec = StageSpec {
        kind: "text.upper",
        summary: "Upper-case a text artifact",
        version: 1,
        inputs: &[PortSpec::input(
            "text",
            Artifact::ANY,
            true,
            "a UTF-8 text file",
        )],
        outputs: &[PortSpec::output(
            "text",
            "upper.txt",
            Artifact::ANY,
            "the same text, upper-cased, each line prefixed",
        )],
        params: &[ParamDoc::new(
            "prefix",
            "string",
            "text put before every line",
        )],
    };

    fn check(p: &mut UpperParams) -> Result<(), ParamError> {
        if p.prefix.contains('\n') {
            return Err(ParamError::new(
                &["prefix"],
                "`prefix` may not contain a newline",
            ));
        }
        Ok(())
    }

    fn run(p: &UpperParams, ctx: &RunContext<'_>) -> Result<(), StageError> {
        let text = std::fs::read_to_string(ctx.input("text")?)
            .map_err(|e| StageError::caused_by("input `text` is not readable text", e))?;
        let out: String = text
            .lines()
            .map(|l| format!("{}{}\n", p.prefix, l.to_uppercase()))
            .collect();
        std::fs::write(ctx.output("text")?, out)?;
        (ctx.log)(&format!("upper-cased {} lines", text.lines().count()));
        Ok(())
    }
}

/// The built-in kinds plus `text.upper`.
pub fn registry() -> StageRegistry {
    let mut registry = mlcycle_stages::builtin_registry();
    registry
        .register(Upper)
        .expect("`text.upper` is not a built-in kind");
    registry
}
