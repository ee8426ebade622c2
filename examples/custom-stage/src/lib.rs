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
    Artifact, ParamDoc, ParamError, PortSpec, RunContext, Stage, StageError, StageFactory,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The factory: describes the kind and builds configured stages from `with:`.
pub struct Upper;

/// The stage's params, checked when the pipeline is loaded. Defaults are
/// filled in here, so `{}` and `{prefix: ""}` give the same fingerprint.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct UpperParams {
    #[serde(default)]
    prefix: String,
}

/// A configured stage, ready to run.
#[derive(Debug)]
struct UpperStage(UpperParams);

const INPUTS: &[PortSpec] = &[PortSpec::input(
    "text",
    Artifact::ANY,
    true,
    "a UTF-8 text file",
)];
const OUTPUTS: &[PortSpec] = &[PortSpec::output(
    "text",
    "upper.txt",
    Artifact::ANY,
    "the same text, upper-cased, each line prefixed",
)];

impl StageFactory for Upper {
    fn kind(&self) -> &'static str {
        "text.upper"
    }
    fn summary(&self) -> &'static str {
        "Upper-case a text artifact"
    }
    fn version(&self) -> u32 {
        1
    }
    fn inputs(&self) -> &'static [PortSpec] {
        INPUTS
    }
    fn outputs(&self) -> &'static [PortSpec] {
        OUTPUTS
    }
    fn param_docs(&self) -> &'static [ParamDoc] {
        &[ParamDoc {
            name: "prefix",
            ty: "string = \"\"",
            doc: "text put before every line",
        }]
    }
    fn build(&self, with: &Value) -> Result<Box<dyn Stage>, ParamError> {
        let p: UpperParams = serde_json::from_value(with.clone())
            .map_err(|e| ParamError::new(&[], e.to_string()))?;
        if p.prefix.contains('\n') {
            return Err(ParamError::new(
                &["prefix"],
                "`prefix` may not contain a newline",
            ));
        }
        Ok(Box::new(UpperStage(p)))
    }
}

impl Stage for UpperStage {
    fn params(&self) -> Value {
        serde_json::to_value(&self.0).expect("params serialize")
    }
    fn run(&self, ctx: &RunContext<'_>) -> Result<(), StageError> {
        let text = std::fs::read_to_string(ctx.input("text")?)
            .map_err(|e| StageError::new(format!("input `text` is not readable text: {e}")))?;
        let out: String = text
            .lines()
            .map(|l| format!("{}{}\n", self.0.prefix, l.to_uppercase()))
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
