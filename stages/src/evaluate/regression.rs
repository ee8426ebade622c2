//! `evaluate.regression`: regression metrics and plots on held-out rows.

use mlcycle_pipeline::{
    InferContext, Inferred, PortSpec, RunContext, StageError, StageKind, StageSpec,
};

use super::{
    load, model_info, plot_err, regression_metrics, score, truth_values, write_metrics, EVAL_IN,
};
use crate::model::{Extra, Predictions, Task};
use crate::table::{short, ColumnData, Table};
use crate::util::NoParams;

const REG_OUT: &[PortSpec] = &[
    PortSpec::output(
        "metrics",
        "metrics.json",
        crate::ports::METRICS,
        "`mse`, `rmse`, `mae`, `r2`, `rows`; a linear model's `coefficients` by feature, on the raw columns' scale; a tree model's `feature_importances`",
    ),
    PortSpec::output(
        "plots",
        "plots",
        crate::ports::PLOT,
        "`predicted_vs_actual`, `residuals` and, for one input column, `fit` (SVG and PNG)",
    ),
    super::PREDICTIONS_OUT,
];

/// `evaluate.regression`.
#[derive(Debug)]
pub struct Regression;

impl StageKind for Regression {
    type Params = NoParams;
    const SPEC: StageSpec = StageSpec {
        kind: "evaluate.regression",
        summary: "Score a regression model on held-out rows: MSE, RMSE, MAE, R², prediction and residual plots",
        version: 4,
        inputs: EVAL_IN,
        outputs: REG_OUT,
        params: &[],
    };
    fn infer(_: &NoParams, cx: &InferContext<'_>) -> Inferred {
        crate::shape::scored_rows(cx, "test")
    }
    fn run(_: &NoParams, ctx: &RunContext<'_>) -> Result<(), StageError> {
        let (m, test) = load(ctx)?;
        if m.task != Task::Regression {
            return Err(StageError::new(format!(
                "`{}` is a {} model; `evaluate.regression` needs a regression model",
                m.kind,
                m.task.as_str()
            ))
            .with_help("use `evaluate.classification`"));
        }
        let Predictions::Values(pred) = score(&m, &test, "test")? else {
            unreachable!("regression models predict values")
        };
        let y = truth_values(&m, &test)?;
        let mut metrics = regression_metrics(&y, &pred);
        (ctx.log)(&format!(
            "{} rows: MSE {}, RMSE {}, MAE {}, R² {}",
            y.len(),
            short(metrics["mse"].as_f64().unwrap_or(f64::NAN)),
            short(metrics["rmse"].as_f64().unwrap_or(f64::NAN)),
            short(metrics["mae"].as_f64().unwrap_or(f64::NAN)),
            short(metrics["r2"].as_f64().unwrap_or(f64::NAN)),
        ));
        metrics.insert("model".into(), model_info(&m));
        if let Some(c) = super::coefficients(&m) {
            metrics.insert("coefficients".into(), c);
        }
        if let Some(imp) = super::importances(&m) {
            metrics.insert("feature_importances".into(), imp);
        }
        super::note_unseen(ctx, &m, &test, &mut metrics);
        write_metrics(ctx, &metrics)?;
        super::write_predictions(
            ctx,
            ColumnData::Numeric(y.clone()),
            ColumnData::Numeric(pred.clone()),
            None,
        )?;

        let dir = ctx.output("plots")?;
        let target = super::target_of(&m, &test).unwrap_or("target").to_string();
        let pts: Vec<(f64, f64)> = y.iter().copied().zip(pred.iter().copied()).collect();
        let (lo, hi) = y
            .iter()
            .chain(&pred)
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
                (a.min(*v), b.max(*v))
            });
        crate::plot::scatter(
            dir,
            "predicted_vs_actual",
            &format!("Predicted vs actual {target}"),
            (&format!("actual {target}"), &format!("predicted {target}")),
            &pts,
            &[("y = x", vec![(lo, lo), (hi, hi)])],
        )
        .map_err(plot_err)?;
        let res: Vec<(f64, f64)> = pred.iter().zip(&y).map(|(p, a)| (*p, a - p)).collect();
        let (plo, phi) = pred
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
                (a.min(*v), b.max(*v))
            });
        crate::plot::scatter(
            dir,
            "residuals",
            "Residuals",
            (&format!("predicted {target}"), "actual − predicted"),
            &res,
            &[("zero", vec![(plo, 0.0), (phi, 0.0)])],
        )
        .map_err(plot_err)?;
        // One numeric input: the data and the fitted curve over its range.
        if let [input] = &m.inputs[..] {
            if let Some(ColumnData::Numeric(xs)) = test.column(&input.name).map(|c| &c.data) {
                let (xlo, xhi) = xs
                    .iter()
                    .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
                        (a.min(*v), b.max(*v))
                    });
                let grid: Vec<f64> = (0..=100)
                    .map(|i| xlo + (xhi - xlo) * i as f64 / 100.0)
                    .collect();
                let mut g = Table {
                    columns: vec![crate::table::Column {
                        name: input.name.clone(),
                        data: ColumnData::Numeric(grid.clone()),
                    }],
                    target: None,
                    transforms: vec![],
                };
                g.target = None;
                if let Ok(Predictions::Values(gp)) = m
                    .prepare(&g, Extra::Ignore)
                    .map_err(|e| e.to_string())
                    .and_then(|x| m.predict(&x).map_err(|e| e.to_string()))
                {
                    let data: Vec<(f64, f64)> = xs.iter().copied().zip(y.iter().copied()).collect();
                    crate::plot::scatter(
                        dir,
                        "fit",
                        &format!(
                            "{target} by {} (test rows) and the fitted model",
                            input.name
                        ),
                        (&input.name, &target),
                        &data,
                        &[("model", grid.into_iter().zip(gp).collect())],
                    )
                    .map_err(plot_err)?;
                }
            }
        }
        Ok(())
    }
}
