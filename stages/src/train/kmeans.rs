//! `train.kmeans`: k-means clustering (linfa-clustering).

use linfa::traits::Fit;
use linfa::DatasetBase;
use mlcycle_pipeline::{ParamDoc, ParamError, RunContext, StageError, StageKind, StageSpec};
use ndarray::Axis;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};

use super::{fit_error, gtol, positive, seed, train, TrainData, MODEL_OUT, SEED_DOC, TRAIN_IN};
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
        summary: "k-means clustering, best of several k-means++ runs (linfa-clustering)",
        version: 1,
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
            ParamDoc::new("tolerance", "number", "stop when centroids move less"),
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
    let rng = rand_xoshiro::Xoshiro256Plus::seed_from_u64(p.seed);
    let m = linfa_clustering::KMeans::params_with_rng(p.clusters, rng)
        .n_runs(p.runs)
        .max_n_iterations(p.max_iterations)
        .tolerance(p.tolerance)
        .fit(&DatasetBase::from(d.x.clone()))
        .map_err(|e| fit_error("k-means", e))?;
    (d.ctx.log)(&format!("inertia {}", short(m.inertia())));
    Ok(Fitted::Centroids {
        centroids: m
            .centroids()
            .axis_iter(Axis(0))
            .map(|r| r.to_vec())
            .collect(),
    })
}
