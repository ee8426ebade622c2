//! `dataset.synthetic`: seeded synthetic data.

use mlcycle_pipeline::{
    InferContext, Inferred, ParamDoc, ParamError, RunContext, StageError, StageKind, StageSpec,
};
use rand::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::TABLE_OUT;
use crate::table::{Column, ColumnData, Table};

/// `dataset.synthetic`: seeded synthetic data.
#[derive(Debug)]
pub struct Synthetic;

/// `dataset.synthetic`'s params (`with:`).
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyntheticParams {
    kind: SyntheticKind,
    #[serde(default = "default_rows")]
    rows: usize,
    #[serde(default = "default_seed")]
    seed: u64,
    /// Standard deviation of the noise (house_prices: in price units).
    #[serde(default)]
    noise: Option<f64>,
    /// regression and blobs: number of feature columns.
    #[serde(default = "default_features")]
    features: usize,
    /// blobs: number of classes.
    #[serde(default = "default_classes")]
    classes: usize,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum SyntheticKind {
    HousePrices,
    Regression,
    Blobs,
}

fn default_rows() -> usize {
    100
}
fn default_seed() -> u64 {
    42
}
fn default_features() -> usize {
    3
}
fn default_classes() -> usize {
    3
}

impl StageKind for Synthetic {
    type Params = SyntheticParams;
    const SPEC: StageSpec = StageSpec {
        kind: "dataset.synthetic",
        summary:
            "Seeded synthetic data: house prices (area → price), regression, classification blobs",
        version: 1,
        inputs: &[],
        outputs: TABLE_OUT,
        params: &[
            ParamDoc::new(
                "kind",
                "`house_prices` | `regression` | `blobs`",
                "area in m² → price; x1..xN → y; or x1..xN → class",
            ),
            ParamDoc::new("rows", "integer", "number of rows"),
            ParamDoc::new(
                "seed",
                "integer",
                "random seed: the same seed gives the same bytes",
            ),
            ParamDoc::new(
                "noise",
                "number",
                "noise standard deviation (house_prices, regression) or blob spread",
            )
            .unset("20000 (house_prices), 1 (regression, blobs)"),
            ParamDoc::new("features", "integer", "regression, blobs: feature columns"),
            ParamDoc::new("classes", "integer", "blobs: number of classes"),
        ],
    };
    fn example() -> Value {
        serde_json::json!({"kind": "house_prices"})
    }
    fn check(p: &mut SyntheticParams) -> Result<(), ParamError> {
        if p.rows == 0 {
            return Err(ParamError::new(&["rows"], "`rows` must be at least 1"));
        }
        if p.features == 0 {
            return Err(ParamError::new(
                &["features"],
                "`features` must be at least 1",
            ));
        }
        if p.classes < 2 {
            return Err(ParamError::new(
                &["classes"],
                "`classes` must be at least 2",
            ));
        }
        let noise = p.noise.get_or_insert(match p.kind {
            SyntheticKind::HousePrices => 20_000.0,
            SyntheticKind::Regression | SyntheticKind::Blobs => 1.0,
        });
        if !noise.is_finite() || *noise < 0.0 {
            return Err(ParamError::new(
                &["noise"],
                "`noise` must be a finite number ≥ 0",
            ));
        }
        Ok(())
    }
    /// The columns are fixed by the params.
    fn infer(p: &SyntheticParams, cx: &InferContext<'_>) -> Inferred {
        use crate::shape::Kind;
        let xs = |n: usize| (1..=n).map(|j| (format!("x{j}"), Kind::Numeric));
        let (columns, target): (Vec<(String, Kind)>, &str) = match p.kind {
            SyntheticKind::HousePrices => (
                vec![
                    ("area".into(), Kind::Numeric),
                    ("price".into(), Kind::Numeric),
                ],
                "price",
            ),
            SyntheticKind::Regression => (
                xs(p.features)
                    .chain([("y".into(), Kind::Numeric)])
                    .collect(),
                "y",
            ),
            SyntheticKind::Blobs => (
                xs(p.features)
                    .chain([("class".into(), Kind::Categorical)])
                    .collect(),
                "class",
            ),
        };
        let file = format!("synthetic {}", crate::util::choice_name(&p.kind));
        let shape = crate::shape::TableShape::read(cx.stage, &file, columns, Some(target));
        Inferred::default().output("data", mlcycle_pipeline::Facts::new(shape))
    }
    fn run(p: &SyntheticParams, ctx: &RunContext<'_>) -> Result<(), StageError> {
        let t = p.generate();
        (ctx.log)(&format!(
            "generated {} rows × {} columns",
            t.n_rows(),
            t.columns.len()
        ));
        t.write_arrow(ctx.output("data")?)
            .map_err(StageError::from_error)
    }
}

/// A standard normal sample (Box–Muller).
pub(crate) fn normal(rng: &mut impl Rng) -> f64 {
    let u1: f64 = rng.gen_range(f64::EPSILON..1.0);
    let u2: f64 = rng.gen();
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

/// Rounds to 6 significant decimals so the CSV/Arrow output is stable and readable.
fn round6(x: f64) -> f64 {
    (x * 1e6).round() / 1e6
}

impl SyntheticParams {
    fn generate(&self) -> Table {
        let p = self;
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(p.seed);
        let noise = p.noise.unwrap_or(1.0);
        let numeric = |name: &str, v: Vec<f64>| Column {
            name: name.to_string(),
            data: ColumnData::Numeric(v),
        };
        match p.kind {
            SyntheticKind::HousePrices => {
                let area: Vec<f64> = (0..p.rows)
                    .map(|_| (rng.gen_range(40.0..250.0f64) * 10.0).round() / 10.0)
                    .collect();
                let price: Vec<f64> = area
                    .iter()
                    .map(|a| (3_000.0 * a + 50_000.0 + noise * normal(&mut rng)).round())
                    .collect();
                Table {
                    columns: vec![numeric("area", area), numeric("price", price)],
                    target: Some("price".into()),
                    transforms: vec![],
                }
            }
            SyntheticKind::Regression => {
                let weights: Vec<f64> = (0..p.features)
                    .map(|_| round6(rng.gen_range(-5.0..5.0)))
                    .collect();
                let mut cols: Vec<Vec<f64>> = vec![Vec::with_capacity(p.rows); p.features];
                let mut y = Vec::with_capacity(p.rows);
                for _ in 0..p.rows {
                    let mut acc = 1.0;
                    for (j, w) in weights.iter().enumerate() {
                        let x = round6(normal(&mut rng));
                        acc += w * x;
                        cols[j].push(x);
                    }
                    y.push(round6(acc + noise * normal(&mut rng)));
                }
                let mut columns: Vec<Column> = cols
                    .into_iter()
                    .enumerate()
                    .map(|(j, v)| numeric(&format!("x{}", j + 1), v))
                    .collect();
                columns.push(numeric("y", y));
                Table {
                    columns,
                    target: Some("y".into()),
                    transforms: vec![],
                }
            }
            SyntheticKind::Blobs => {
                let centers: Vec<Vec<f64>> = (0..p.classes)
                    .map(|_| {
                        (0..p.features)
                            .map(|_| rng.gen_range(-10.0..10.0))
                            .collect()
                    })
                    .collect();
                let mut cols: Vec<Vec<f64>> = vec![Vec::with_capacity(p.rows); p.features];
                let mut class = Vec::with_capacity(p.rows);
                for i in 0..p.rows {
                    let c = i % p.classes;
                    for (j, col) in cols.iter_mut().enumerate() {
                        col.push(round6(centers[c][j] + noise * normal(&mut rng)));
                    }
                    class.push(Some(format!("c{c}")));
                }
                let mut columns: Vec<Column> = cols
                    .into_iter()
                    .enumerate()
                    .map(|(j, v)| numeric(&format!("x{}", j + 1), v))
                    .collect();
                columns.push(Column {
                    name: "class".into(),
                    data: ColumnData::Categorical(class),
                });
                Table {
                    columns,
                    target: Some("class".into()),
                    transforms: vec![],
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataset::Csv;
    use mlcycle_pipeline::StageFactory;

    fn build(with: Value) -> SyntheticParams {
        let mut p: SyntheticParams = serde_json::from_value(with).unwrap();
        Synthetic::check(&mut p).unwrap();
        p
    }

    #[test]
    fn house_prices_are_seeded_and_plausible() {
        let a =
            build(serde_json::json!({"kind": "house_prices", "rows": 50, "seed": 7})).generate();
        let b =
            build(serde_json::json!({"kind": "house_prices", "rows": 50, "seed": 7})).generate();
        assert_eq!(a, b);
        let c =
            build(serde_json::json!({"kind": "house_prices", "rows": 50, "seed": 8})).generate();
        assert_ne!(a, c);
        match (&a.columns[0].data, &a.columns[1].data) {
            (ColumnData::Numeric(area), ColumnData::Numeric(price)) => {
                assert!(area.iter().all(|x| (40.0..250.0).contains(x)));
                assert!(price
                    .iter()
                    .zip(area)
                    .all(|(p, a)| (*p - (3_000.0 * a + 50_000.0)).abs() < 200_000.0));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(a.target.as_deref(), Some("price"));
    }

    #[test]
    fn bad_params_name_the_key() {
        let e = Synthetic
            .build(&serde_json::json!({"kind": "house_prices", "rows": 0}))
            .unwrap_err()
            .remove(0);
        assert_eq!(e.path, vec!["rows"]);
        let e = Synthetic
            .build(&serde_json::json!({"kind": "houses"}))
            .unwrap_err()
            .remove(0);
        assert!(e.message.contains("unknown variant"), "{}", e.message);
        let e = Csv
            .build(&serde_json::json!({"path": "a.csv", "types": {"x": "float"}}))
            .unwrap_err()
            .remove(0);
        assert_eq!(e.path, vec!["types", "x"]);
    }
}
