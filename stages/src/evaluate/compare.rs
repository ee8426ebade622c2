//! `evaluate.compare`: a challenger against a reference model, as a gate.

use mlcycle_pipeline::{
    InferContext, Inferred, ParamDoc, ParamError, PortSpec, RunContext, StageError, StageKind,
    StageSpec,
};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::evaluate;
use crate::model::{Model, Task};
use crate::table::{short, Table};

/// `evaluate.compare`.
#[derive(Debug)]
pub struct Compare;

/// `evaluate.compare`'s params (`with:`).
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompareParams {
    /// Metric that decides; default r2 (regression) or accuracy.
    #[serde(default)]
    metric: Option<String>,
    /// The challenger must beat the reference by at least this much.
    #[serde(default)]
    min_improvement: f64,
    /// Fail the stage (and stop its dependents) when the gate fails.
    #[serde(default)]
    fail: bool,
}

const COMPARE_IN: &[PortSpec] = &[
    PortSpec::input("model", crate::ports::MODEL, true, "the challenger"),
    PortSpec::input("reference", crate::ports::MODEL, true, "the model to beat"),
    PortSpec::input(
        "test",
        crate::ports::TABLE,
        true,
        "held-out rows both are scored on",
    ),
];
const COMPARE_OUT: &[PortSpec] = &[
    PortSpec::output(
        "metrics",
        "comparison.json",
        crate::ports::METRICS,
        "both models' metrics, the differences and `passed`",
    ),
    PortSpec::output(
        "report",
        "comparison.md",
        crate::ports::REPORT,
        "a per-metric Markdown table and the verdict",
    ),
    PortSpec::output(
        "best",
        "best.json",
        crate::ports::MODEL,
        "the winner: the challenger when it passed, else the reference",
    ),
    PortSpec::output(
        "best_metrics",
        "best_metrics.json",
        crate::ports::METRICS,
        "the winner's metrics on these rows",
    ),
];

use super::lower_is_better;

impl StageKind for Compare {
    type Params = CompareParams;
    const SPEC: StageSpec = StageSpec {
        kind: "evaluate.compare",
        summary: "Compare a challenger model with a reference on the same rows: per-metric table and a pass/fail gate",
        version: 2,
        inputs: COMPARE_IN,
        outputs: COMPARE_OUT,
        params: &[
            ParamDoc::new("metric", "string", "the metric that decides (`r2`, `mse`, `rmse`, `mae`, `accuracy`, `f1_macro`, …); lower is better for errors and `log_loss`").unset("r2 or accuracy"),
            ParamDoc::new("min_improvement", "number", "the challenger must beat the reference by at least this much; a tie keeps the reference unless this is negative"),
            ParamDoc::new("fail", "bool", "fail the stage when the challenger does not pass, so dependents do not run"),
        ],
    };
    fn check(p: &mut CompareParams) -> Result<(), ParamError> {
        if !p.min_improvement.is_finite() {
            return Err(ParamError::new(
                &["min_improvement"],
                "must be a finite number",
            ));
        }
        Ok(())
    }
    fn infer(_: &CompareParams, cx: &InferContext<'_>) -> Inferred {
        crate::shape::scored_rows(cx, "test")
    }
    fn run(p: &CompareParams, ctx: &RunContext<'_>) -> Result<(), StageError> {
        let read = |port: &str| {
            Model::read(ctx.input(port)?).map_err(|e| StageError::caused_by(format!("`{port}`"), e))
        };
        let (challenger, reference) = (read("model")?, read("reference")?);
        if challenger.task != reference.task {
            return Err(StageError::new(format!(
                "the models solve different tasks: `model` is {}, `reference` is {}",
                challenger.task.as_str(),
                reference.task.as_str()
            )));
        }
        let test = Table::read(ctx.input("test")?).map_err(StageError::from_error)?;
        let a = evaluate(&challenger, &test)?;
        let b = evaluate(&reference, &test)?;
        let (metric, va, vb) = p.decider(challenger.task, &a, &b)?;
        let gain = if lower_is_better(&metric) {
            vb - va
        } else {
            va - vb
        };
        let passed = super::passes_gate(gain, p.min_improvement);
        let verdict = format!(
            "{}: {metric} {} vs reference {} ({}{}; needed at least {})",
            if passed { "passed" } else { "failed" },
            short(va),
            short(vb),
            if gain == 0.0 && !passed {
                "a tie, which keeps the reference".to_string()
            } else if gain == 0.0 {
                "a tie, allowed by a negative min_improvement".to_string()
            } else {
                format!("improvement {}", short(gain))
            },
            if lower_is_better(&metric) {
                ", as a lower error"
            } else {
                ""
            },
            short(p.min_improvement)
        );
        (ctx.log)(&verdict);
        let report = comparison_report(
            &challenger,
            &reference,
            test.n_rows(),
            &metric,
            (&a, &b),
            &verdict,
        );
        std::fs::write(ctx.output("report")?, report).map_err(StageError::from_error)?;
        let out = json!({
            "metric": metric,
            "challenger": a,
            "reference": b,
            "improvement": gain,
            "min_improvement": p.min_improvement,
            "passed": passed,
        });
        let mut s = serde_json::to_string_pretty(&out).expect("metrics serialize");
        s.push('\n');
        std::fs::write(ctx.output("metrics")?, s).map_err(StageError::from_error)?;
        let (best_port, best_metrics) = if passed {
            ("model", &a)
        } else {
            ("reference", &b)
        };
        Model::copy_file(ctx.input(best_port)?, ctx.output("best")?)
            .map_err(|e| StageError::caused_by("cannot write the best model", e))?;
        let mut s = serde_json::to_string_pretty(best_metrics).expect("metrics serialize");
        s.push('\n');
        std::fs::write(ctx.output("best_metrics")?, s).map_err(StageError::from_error)?;
        if p.fail && !passed {
            return Err(StageError::new(format!("the challenger {verdict}"))
                .with_help("set `fail: false` to record the verdict without stopping the run"));
        }
        Ok(())
    }
}

impl CompareParams {
    /// The deciding metric and its value for the challenger's metrics `a`
    /// and the reference's `b`.
    fn decider(
        &self,
        task: Task,
        a: &Map<String, Value>,
        b: &Map<String, Value>,
    ) -> Result<(String, f64, f64), StageError> {
        let metric = self.metric.clone().unwrap_or_else(|| {
            if task == Task::Regression {
                "r2".into()
            } else {
                "accuracy".into()
            }
        });
        let (Some(va), Some(vb)) = (
            a.get(&metric).and_then(Value::as_f64),
            b.get(&metric).and_then(Value::as_f64),
        ) else {
            // Only metrics both models have can decide.
            let known: Vec<&str> = a
                .iter()
                .filter(|(k, v)| v.is_f64() && b.get(*k).is_some_and(Value::is_f64))
                .map(|(k, _)| k.as_str())
                .collect();
            let (who, lacking) = match (a.get(&metric).is_none(), b.get(&metric).is_none()) {
                (true, true) => ("either model", a),
                (true, false) => ("the challenger", a),
                _ => ("the reference", b),
            };
            return Err(StageError::new(format!(
                "no metric `{metric}` for {who}{}",
                super::why_absent(lacking, &metric)
            ))
            .with_help(format!("use one of: {}", known.join(", "))));
        };
        Ok((metric, va, vb))
    }
}

/// The Markdown report: one row per metric both models have, and the verdict.
fn comparison_report(
    challenger: &Model,
    reference: &Model,
    rows_scored: usize,
    metric: &str,
    (a, b): (&Map<String, Value>, &Map<String, Value>),
    verdict: &str,
) -> String {
    let mut rows = String::new();
    for (k, v) in a {
        if let (Some(x), Some(y)) = (v.as_f64(), b.get(k).and_then(Value::as_f64)) {
            rows.push_str(&format!(
                "| {k}{} | {} | {} | {} |\n",
                if *k == metric { " (decides)" } else { "" },
                short(x),
                short(y),
                short(x - y)
            ));
        }
    }
    format!(
        "# Model comparison\n\n\
         Challenger `{}` (stage `{}`) against reference `{}` (stage `{}`) on {} rows.\n\n\
         | metric | challenger | reference | difference |\n|---|---|---|---|\n{rows}\n\
         **Gate {verdict}.**\n",
        challenger.kind,
        challenger.lineage.stage,
        reference.kind,
        reference.lineage.stage,
        rows_scored
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The error names the model that lacks the metric, says why when the
    /// metrics tell (a class the model never saw), and offers only
    /// metrics both models have.
    #[test]
    fn a_missing_metric_names_the_model_and_the_reason() {
        let p: CompareParams = serde_json::from_value(json!({"metric": "log_loss"})).unwrap();
        let a = json!({"accuracy": 0.9, "log_loss": 0.3, "roc_auc_ovr_macro": 0.9})
            .as_object()
            .unwrap()
            .clone();
        let b = json!({"accuracy": 0.8, "unseen_classes": {"D": 19}})
            .as_object()
            .unwrap()
            .clone();
        let e = p.decider(Task::Classification, &a, &b).unwrap_err();
        assert!(
            e.message.starts_with("no metric `log_loss` for the reference: the test rows hold class(es) the model never saw (`D`: 19 row(s))"),
            "{}",
            e.message
        );
        assert_eq!(e.help.as_deref(), Some("use one of: accuracy"));
    }
}
