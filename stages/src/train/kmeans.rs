//! `train.kmeans`: k-means clustering (Lloyd's algorithm from k-means++
//! seeds, [`crate::algo::kmeans`]).

use mlcycle_pipeline::{
    InferContext, Inferred, ParamDoc, ParamError, RunContext, StageError, StageKind, StageSpec,
};
use ndarray::Axis;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};

use super::{gtol, positive, seed, train, TrainData, MODEL_OUT, SEED_DOC, TRAIN_IN};
use crate::model::{Fitted, Task};
use crate::table::short;

/// `train.kmeans`'s params (`with:`).
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KMeansParams {
    #[serde(default = "three_usize")]
    clusters: usize,
    #[serde(default = "ten")]
    runs: usize,
    #[serde(default = "three_hundred")]
    max_iterations: u64,
    #[serde(default = "gtol")]
    tolerance: f64,
    #[serde(default = "seed")]
    seed: u64,
}
fn three_usize() -> usize {
    3
}
fn ten() -> usize {
    10
}
fn three_hundred() -> u64 {
    300
}

/// `train.kmeans`.
#[derive(Debug)]
pub struct KMeans;

impl StageKind for KMeans {
    type Params = KMeansParams;
    const SPEC: StageSpec = StageSpec {
        kind: "train.kmeans",
        summary: "k-means clustering, best of several k-means++ runs (Lloyd, as scikit-learn's KMeans)",
        // 2: own Lloyd iterations (was linfa-clustering); `tolerance` is
        // relative to the data's variance, as scikit-learn's `tol`.
        version: 2,
        inputs: TRAIN_IN,
        outputs: MODEL_OUT,
        params: &[
            ParamDoc::new("clusters", "integer", "number of clusters"),
            ParamDoc::new(
                "runs",
                "integer",
                "independent runs; the lowest inertia wins",
            ),
            ParamDoc::new("max_iterations", "integer", "iterations per run at most"),
            ParamDoc::new("tolerance", "number", "stop a run when the centroids' summed squared move is at most this share of the features' mean variance (scikit-learn's `tol`)"),
            SEED_DOC,
        ],
    };
    fn check(p: &mut KMeansParams) -> Result<(), ParamError> {
        if p.clusters == 0 {
            return Err(ParamError::new(
                &["clusters"],
                "`clusters` must be at least 1",
            ));
        }
        if p.runs == 0 {
            return Err(ParamError::new(&["runs"], "`runs` must be at least 1"));
        }
        positive("tolerance", p.tolerance)
    }
    fn infer(_: &KMeansParams, cx: &InferContext<'_>) -> Inferred {
        crate::shape::trainer(cx, Self::SPEC.kind, Task::Clustering)
    }
    fn run(p: &KMeansParams, ctx: &RunContext<'_>) -> Result<(), StageError> {
        train(Self::SPEC.kind, Task::Clustering, p, ctx, |d| {
            fit_kmeans(p, d)
        })
    }
}

fn fit_kmeans(p: &KMeansParams, d: &TrainData<'_>) -> Result<Fitted, StageError> {
    if d.x.nrows() < p.clusters {
        return Err(StageError::new(format!(
            "{} rows cannot form {} clusters",
            d.x.nrows(),
            p.clusters
        )));
    }
    let mut rng = rand_xoshiro::Xoshiro256Plus::seed_from_u64(p.seed);
    let params = crate::algo::kmeans::KMeansParams {
        k: p.clusters,
        runs: p.runs,
        max_iter: p.max_iterations as usize,
        tol: p.tolerance,
    };
    let stop = || d.ctx.check_interrupted().is_err();
    let m = crate::algo::kmeans::fit(&d.x, params, &mut rng, &stop)
        .ok_or_else(|| StageError::new("stopped: the run was interrupted"))?;
    (d.ctx.log)(&format!(
        "inertia {} (mean {} a row), {} iterations in the best run",
        short(m.inertia),
        short(m.inertia / d.x.nrows() as f64),
        m.iterations
    ));
    Ok(Fitted::Centroids {
        centroids: m.centroids.axis_iter(Axis(0)).map(|r| r.to_vec()).collect(),
    })
}
