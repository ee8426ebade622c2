//! `deploy.promote`: registers a bundle as a model version and makes it
//! the champion when it beats the current one on the same rows.

use std::path::Path;

use mlcycle_pipeline::{
    ParamDoc, ParamError, PortSpec, RunContext, StageError, StageKind, StageSpec,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::registry::{Decision, ModelRegistry, ModelVersion, NewModel};
use super::{store, Bundle};
use crate::model::{Model, Task};
use crate::table::short;

/// `deploy.promote`: registers a bundle as a model version and makes it
/// the champion when it beats the current one on the same rows.
#[derive(Debug)]
pub struct Promote;

#[derive(Debug, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Gate {
    /// The deciding metric; default r2 (regression) or accuracy.
    #[serde(default)]
    metric: Option<String>,
    /// How much better than the champion the candidate must be.
    #[serde(default)]
    must_beat_champion_by: f64,
}

/// `deploy.promote`'s params (`with:`).
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PromoteParams {
    #[serde(default)]
    gate: Gate,
}

const PROMOTE_IN: &[PortSpec] = &[
    PortSpec::input("bundle", crate::ports::BUNDLE, true, "the candidate bundle"),
    PortSpec::input(
        "test",
        crate::ports::TABLE,
        true,
        "held-out rows on which the candidate and the champion are both scored",
    ),
];
const PROMOTE_OUT: &[PortSpec] = &[PortSpec::output(
    "decision",
    "decision.json",
    crate::ports::METRICS,
    "the candidate's version, both scores, whether it was promoted and why",
)];

impl StageKind for Promote {
    type Params = PromoteParams;
    const SPEC: StageSpec = StageSpec {
        kind: "deploy.promote",
        summary: "Register a bundle as a numbered model version; make it the champion if it beats the current one on the same rows",
        version: 2,
        inputs: PROMOTE_IN,
        outputs: PROMOTE_OUT,
        params: &[
            ParamDoc::new(
                "gate.metric",
                "string",
                "the metric both models are compared on (`mse`, `rmse`, `mae`: lower is better)",
            )
            .unset("r2 or accuracy"),
            ParamDoc::new("gate.must_beat_champion_by", "number", "the candidate becomes champion only if it is better by at least this much"),
        ],
    };
    fn check(p: &mut PromoteParams) -> Result<(), ParamError> {
        if !p.gate.must_beat_champion_by.is_finite() {
            return Err(ParamError::new(
                &["gate", "must_beat_champion_by"],
                "must be a finite number",
            ));
        }
        Ok(())
    }
    fn run(p: &PromoteParams, ctx: &RunContext<'_>) -> Result<(), StageError> {
        let dir = ctx.input("bundle")?;
        let bundle = Bundle::load(dir).map_err(StageError::from_error)?;
        let test = crate::util::read_table(ctx, "test")?;
        let metric = p.gate.metric.clone().unwrap_or_else(|| {
            if bundle.model.task == Task::Regression {
                "r2".into()
            } else {
                "accuracy".into()
            }
        });
        let score = |m: &Model| -> Result<f64, StageError> {
            let all = crate::evaluate::evaluate(m, &test)?;
            all.get(&metric).and_then(Value::as_f64).ok_or_else(|| {
                StageError::new(format!(
                    "no metric `{metric}` for a {} model{}",
                    m.task.as_str(),
                    crate::evaluate::why_absent(&all, &metric)
                ))
                .with_help("set `gate.metric` to r2, mse, rmse, mae, accuracy, f1_macro, …")
            })
        };
        let cand_value = score(&bundle.model)?;
        let (mut reg, cand) = register(ctx, dir, &bundle)?;
        let champion = reg.champion().map_err(StageError::from_error)?;
        let (promoted, champ_value, message) =
            p.decide(&metric, &cand, cand_value, champion.as_ref(), &score)?;
        if promoted {
            reg.promote(
                cand.version,
                "promote",
                &format!("stage `{}`: {message}", ctx.stage),
            )
            .map_err(StageError::from_error)?;
        }
        reg.record_decision(&Decision {
            run_id: ctx.run_id,
            stage: ctx.stage.to_string(),
            candidate: cand.version,
            champion: champion.as_ref().map(|c| c.version),
            metric: metric.clone(),
            candidate_value: Some(cand_value),
            champion_value: champ_value,
            promoted,
            rows: test.n_rows() as i64,
            train_rows: Some(bundle.model.lineage.rows as i64),
            message: message.clone(),
            at: store::now_rfc3339(),
        })
        .map_err(StageError::from_error)?;
        (ctx.log)(&message);
        let out = serde_json::json!({
            "candidate_version": cand.version,
            "champion_before": champion.as_ref().map(|c| c.version),
            "champion_after": if promoted { Some(cand.version) } else { champion.as_ref().map(|c| c.version) },
            "promoted": promoted,
            "metric": metric,
            "candidate": cand_value,
            "champion": champ_value,
            "rows": test.n_rows(),
            "message": message,
        });
        let mut s = serde_json::to_string_pretty(&out).expect("decision serializes");
        s.push('\n');
        std::fs::write(ctx.output("decision")?, s).map_err(StageError::from_error)
    }
}

impl PromoteParams {
    /// Whether the candidate becomes the champion, the champion's score and
    /// the message that says why.
    fn decide(
        &self,
        metric: &str,
        cand: &ModelVersion,
        cand_value: f64,
        champion: Option<&ModelVersion>,
        score: &dyn Fn(&Model) -> Result<f64, StageError>,
    ) -> Result<(bool, Option<f64>, String), StageError> {
        let lower = crate::evaluate::lower_is_better(metric);
        Ok(match champion {
            None => (
                true,
                None,
                format!(
                    "promoted version {}: the first champion ({metric} {})",
                    cand.version,
                    short(cand_value)
                ),
            ),
            Some(c) if c.version == cand.version => (
                false,
                Some(cand_value),
                format!("version {} is already the champion", c.version),
            ),
            Some(c) => {
                let champ = Bundle::load(&c.path).map_err(|e| {
                    StageError::new(format!("the champion, version {}: {e}", c.version))
                })?;
                // The candidate scored: name the champion, or a champion
                // that cannot take these rows (missing values a boosting
                // candidate takes) reads as the candidate's fault.
                let v = score(&champ.model).map_err(|e| StageError {
                    message: format!(
                        "the champion, version {} (not the candidate), cannot be compared on `test`: {}",
                        c.version, e.message
                    ),
                    ..e
                })?;
                let gain = if lower {
                    v - cand_value
                } else {
                    cand_value - v
                };
                let need = self.gate.must_beat_champion_by;
                if crate::evaluate::passes_gate(gain, need) {
                    (
                        true,
                        Some(v),
                        format!(
                            "promoted version {}: {metric} {} vs {} of version {}",
                            cand.version,
                            short(cand_value),
                            short(v),
                            c.version
                        ),
                    )
                } else {
                    (
                        false,
                        Some(v),
                        format!(
                            "kept version {}: new {metric} {} {} {}{}",
                            c.version,
                            short(cand_value),
                            if gain < 0.0 {
                                if lower {
                                    ">"
                                } else {
                                    "<"
                                }
                            } else {
                                "≈"
                            },
                            short(v),
                            if need > 0.0 {
                                format!(" (must beat it by {})", short(need))
                            } else if gain == 0.0 {
                                " (a tie keeps the champion)".to_string()
                            } else {
                                String::new()
                            }
                        ),
                    )
                }
            }
        })
    }
}

/// Registers the bundle in `dir` as a model version (the existing one when
/// it is already registered).
fn register(
    ctx: &RunContext<'_>,
    dir: &Path,
    bundle: &Bundle,
) -> Result<(ModelRegistry, ModelVersion), StageError> {
    let manifest_bytes = std::fs::read(dir.join("bundle.json")).map_err(StageError::from_error)?;
    let bundle_hash = blake3::hash(&manifest_bytes).to_hex().to_string();
    let mut reg =
        ModelRegistry::open(&ctx.workspace.join(".mlcycle")).map_err(StageError::from_error)?;
    let metrics = bundle.metrics.clone().unwrap_or(Value::Null);
    let (cand, _) = reg
        .register(
            &NewModel {
                name: &bundle.manifest.name,
                bundle_hash: &bundle_hash,
                kind: &bundle.model.kind,
                task: bundle.model.task.as_str(),
                metrics: &metrics,
                params: &bundle.model.params,
                data_hash: &bundle.model.lineage.data_hash,
                run_id: ctx.run_id,
                stage: ctx.stage,
            },
            dir,
        )
        .map_err(StageError::from_error)?;
    Ok((reg, cand))
}
