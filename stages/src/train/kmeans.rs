//! `train.kmeans`: k-means clustering (linfa-clustering).

use linfa::traits::Fit;
use linfa::DatasetBase;
use mlcycle_pipeline::{ParamError, StageError};
use ndarray::Axis;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{fit_error, gtol, params, positive, seed, TrainData, Validate};
use crate::model::Fitted;
use crate::table::short;

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct KMeansParams {
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
impl Validate for KMeansParams {
    fn validate(&self) -> Result<(), ParamError> {
        if self.clusters == 0 {
            return Err(ParamError::new(
                &["clusters"],
                "`clusters` must be at least 1",
            ));
        }
        if self.runs == 0 {
            return Err(ParamError::new(&["runs"], "`runs` must be at least 1"));
        }
        positive("tolerance", self.tolerance)
    }
}

pub(super) fn fit_kmeans(p: &Value, d: &TrainData<'_>) -> Result<Fitted, StageError> {
    let p: KMeansParams = params(p);
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
