//! Feature stages: choose, encode and derive feature columns.
//!
//! Every fitted step is recorded in the output table (and written as a
//! `transform` artifact), so a model trained downstream applies it to raw
//! rows by itself.

use mlcycle_pipeline::{
    ParamDoc, ParamError, PortSpec, RunContext, Stage, StageError, StageFactory,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::preprocess::{FIT_IN, FIT_OUT};
use crate::table::{ColumnData, Table};
use crate::transform::{apply_all, read_steps, write_steps, Transform};
use crate::util::{check_columns, feature_names, parse_with, read_table, write_table};

/// Applies the fitted `step` to `t` (the stage's input, already read),
/// writes the table and the transform.
fn finish(ctx: &RunContext<'_>, mut t: Table, step: Transform) -> Result<(), StageError> {
    apply_all(std::slice::from_ref(&step), &mut t).map_err(|e| StageError::new(e.to_string()))?;
    (ctx.log)(&format!(
        "{} columns: {}",
        t.columns.len(),
        t.names().join(", ")
    ));
    write_table(ctx, "data", &t)?;
    write_steps(ctx.output("transform")?, &[step]).map_err(|e| StageError::new(e.to_string()))
}

macro_rules! factory {
    ($ty:ident, $kind:literal, $summary:literal, $docs:expr, $params:ty, $stage:ident, $check:expr) => {
        impl StageFactory for $ty {
            fn kind(&self) -> &'static str {
                $kind
            }
            fn summary(&self) -> &'static str {
                $summary
            }
            fn version(&self) -> u32 {
                1
            }
            fn inputs(&self) -> &'static [PortSpec] {
                FIT_IN
            }
            fn outputs(&self) -> &'static [PortSpec] {
                FIT_OUT
            }
            fn param_docs(&self) -> &'static [ParamDoc] {
                $docs
            }
            fn build(&self, with: &Value) -> Result<Box<dyn Stage>, ParamError> {
                let p: $params = parse_with(with)?;
                #[allow(clippy::redundant_closure_call)]
                ($check)(&p)?;
                Ok(Box::new($stage(p)))
            }
        }
    };
}

// ------------------------------------------------------------ select

/// `features.select`.
#[derive(Debug)]
pub struct Select;

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SelectParams {
    #[serde(default)]
    keep: Option<Vec<String>>,
    #[serde(default)]
    drop: Option<Vec<String>>,
}

#[derive(Debug)]
struct SelectStage(SelectParams);

factory!(
    Select,
    "features.select",
    "Keep or drop feature columns (the target always stays)",
    &[
        ParamDoc {
            name: "keep",
            ty: "list of strings",
            doc: "the feature columns to keep; every other feature is dropped",
        },
        ParamDoc {
            name: "drop",
            ty: "list of strings",
            doc: "the feature columns to drop",
        },
    ],
    SelectParams,
    SelectStage,
    |p: &SelectParams| match (&p.keep, &p.drop) {
        (Some(_), Some(_)) => Err(ParamError::new(
            &["drop"],
            "give `keep` or `drop`, not both"
        )),
        (None, None) => Err(ParamError::new(
            &[],
            "give `keep:` or `drop:` (a list of columns)"
        )),
        _ => Ok(()),
    }
);

impl Stage for SelectStage {
    fn params(&self) -> Value {
        serde_json::to_value(&self.0).expect("params serialize")
    }
    fn run(&self, ctx: &RunContext<'_>) -> Result<(), StageError> {
        let t = read_table(ctx, "data")?;
        let features = feature_names(&t, None);
        let dropped: Vec<String> = match (&self.0.keep, &self.0.drop) {
            (Some(keep), _) => {
                check_columns(&t, keep, None, "keep")?;
                features.into_iter().filter(|f| !keep.contains(f)).collect()
            }
            (_, Some(drop)) => {
                check_columns(&t, drop, None, "drop")?;
                drop.clone()
            }
            _ => unreachable!("checked at build"),
        };
        finish(ctx, t, Transform::Drop { columns: dropped })
    }
}

// ----------------------------------------------------------- one_hot

/// `features.one_hot`.
#[derive(Debug)]
pub struct OneHot;

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct OneHotParams {
    #[serde(default)]
    columns: Option<Vec<String>>,
    #[serde(default = "ignore")]
    unknown: String,
}
fn ignore() -> String {
    "ignore".into()
}

#[derive(Debug)]
struct OneHotStage(OneHotParams);

factory!(
    OneHot,
    "features.one_hot",
    "One-hot encode categorical features: one 0/1 column per category seen in training",
    &[
        ParamDoc {
            name: "columns",
            ty: "list of strings = every categorical feature",
            doc: "columns to encode",
        },
        ParamDoc {
            name: "unknown",
            ty: "`ignore` | `error` = ignore",
            doc: "a category unseen in training gives all zeros, or an error",
        },
    ],
    OneHotParams,
    OneHotStage,
    |p: &OneHotParams| if ["ignore", "error"].contains(&p.unknown.as_str()) {
        Ok(())
    } else {
        Err(
            ParamError::new(&["unknown"], format!("unknown policy `{}`", p.unknown))
                .with_help("use `ignore` or `error`"),
        )
    }
);

impl Stage for OneHotStage {
    fn params(&self) -> Value {
        serde_json::to_value(&self.0).expect("params serialize")
    }
    fn run(&self, ctx: &RunContext<'_>) -> Result<(), StageError> {
        let mut t = read_table(ctx, "data")?;
        let columns = crate::util::chosen_columns(&t, &self.0.columns, false, "columns")?;
        if columns.is_empty() {
            return Err(StageError::new(
                "the table has no categorical feature columns to encode",
            ));
        }
        let mut steps = Vec::new();
        for name in &columns {
            let Some(ColumnData::Categorical(v)) = t.column(name).map(|c| &c.data) else {
                unreachable!("checked above")
            };
            let mut cats: Vec<String> = v.iter().flatten().cloned().collect();
            cats.sort();
            cats.dedup();
            steps.push(Transform::OneHot {
                column: name.clone(),
                categories: cats,
                unknown: self.0.unknown.clone(),
            });
        }
        apply_all(&steps, &mut t).map_err(|e| StageError::new(e.to_string()))?;
        (ctx.log)(&format!(
            "{} columns: {}",
            t.columns.len(),
            t.names().join(", ")
        ));
        write_table(ctx, "data", &t)?;
        write_steps(ctx.output("transform")?, &steps).map_err(|e| StageError::new(e.to_string()))
    }
}

// -------------------------------------------------------- polynomial

/// `features.polynomial`.
#[derive(Debug)]
pub struct Polynomial;

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct PolyParams {
    #[serde(default = "two")]
    degree: u32,
    #[serde(default)]
    interaction_only: bool,
    #[serde(default)]
    columns: Option<Vec<String>>,
}
fn two() -> u32 {
    2
}

#[derive(Debug)]
struct PolyStage(PolyParams);

factory!(
    Polynomial,
    "features.polynomial",
    "Add polynomial and interaction terms of numeric features",
    &[
        ParamDoc {
            name: "degree",
            ty: "integer = 2",
            doc: "highest total degree of the added terms (2 to 5)",
        },
        ParamDoc {
            name: "interaction_only",
            ty: "bool = false",
            doc: "only products of distinct columns (`a*b`), no powers (`a^2`)",
        },
        ParamDoc {
            name: "columns",
            ty: "list of strings = every numeric feature",
            doc: "columns to combine",
        },
    ],
    PolyParams,
    PolyStage,
    |p: &PolyParams| if (2..=5).contains(&p.degree) {
        Ok(())
    } else {
        Err(ParamError::new(
            &["degree"],
            format!("`degree` must be 2 to 5, got {}", p.degree),
        ))
    }
);

impl Stage for PolyStage {
    fn params(&self) -> Value {
        serde_json::to_value(&self.0).expect("params serialize")
    }
    fn run(&self, ctx: &RunContext<'_>) -> Result<(), StageError> {
        let t = read_table(ctx, "data")?;
        let columns = crate::util::chosen_columns(&t, &self.0.columns, true, "columns")?;
        if columns.is_empty() {
            return Err(StageError::new("the table has no numeric feature columns"));
        }
        finish(
            ctx,
            t,
            Transform::Polynomial {
                columns,
                degree: self.0.degree,
                interaction_only: self.0.interaction_only,
            },
        )
    }
}

// --------------------------------------------------------------- pca

/// `features.pca`.
#[derive(Debug)]
pub struct Pca;

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct PcaParams {
    components: usize,
    #[serde(default)]
    columns: Option<Vec<String>>,
}

#[derive(Debug)]
struct PcaStage(PcaParams);

factory!(
    Pca,
    "features.pca",
    "Replace numeric features by their first principal components (linfa-reduction)",
    &[
        ParamDoc {
            name: "components",
            ty: "integer (required)",
            doc: "number of components kept (`pc1`, `pc2`, …)",
        },
        ParamDoc {
            name: "columns",
            ty: "list of strings = every numeric feature",
            doc: "columns to project",
        },
    ],
    PcaParams,
    PcaStage,
    |p: &PcaParams| if p.components > 0 {
        Ok(())
    } else {
        Err(ParamError::new(
            &["components"],
            "`components` must be at least 1",
        ))
    }
);

impl Stage for PcaStage {
    fn params(&self) -> Value {
        serde_json::to_value(&self.0).expect("params serialize")
    }
    fn run(&self, ctx: &RunContext<'_>) -> Result<(), StageError> {
        use linfa::traits::Fit;
        let t = read_table(ctx, "data")?;
        let columns = crate::util::chosen_columns(&t, &self.0.columns, true, "columns")?;
        if self.0.components > columns.len() {
            return Err(StageError::new(format!(
                "{} components asked of {} column(s)",
                self.0.components,
                columns.len()
            ))
            .with_help("lower `components`"));
        }
        if t.n_rows() < 2 {
            return Err(StageError::new("PCA needs at least 2 rows"));
        }
        let x = crate::model::matrix(&t, &columns).map_err(|e| {
            StageError::new(format!("cannot fit PCA: {e}"))
                .with_help("impute or drop missing values first with `preprocess.clean`")
        })?;
        let pca = linfa_reduction::Pca::params(self.0.components)
            .fit(&linfa::DatasetBase::from(x))
            .map_err(|e| StageError::new(format!("cannot fit PCA: {e}")))?;
        let ratio = pca.explained_variance_ratio();
        (ctx.log)(&format!(
            "explained variance ratio: {}",
            ratio
                .iter()
                .map(|r| crate::table::short(*r))
                .collect::<Vec<_>>()
                .join(", ")
        ));
        finish(
            ctx,
            t,
            Transform::Pca {
                columns,
                mean: pca.mean().to_vec(),
                components: pca
                    .components()
                    .rows()
                    .into_iter()
                    .map(|r| r.to_vec())
                    .collect(),
            },
        )
    }
}

// ------------------------------------------------------------- apply

/// `features.apply`.
#[derive(Debug)]
pub struct Apply;

#[derive(Debug)]
struct ApplyStage;

const APPLY_IN: &[PortSpec] = &[
    PortSpec::input("data", crate::ports::TABLE, true, "the rows to transform"),
    PortSpec::input(
        "transform",
        crate::ports::TRANSFORM,
        true,
        "a fitted step from `preprocess.scale` or a `features.*` stage",
    ),
];
const APPLY_OUT: &[PortSpec] = &[PortSpec::output(
    "data",
    "data.arrow",
    crate::ports::TABLE,
    "the rows, transformed",
)];

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct NoParams {}

impl StageFactory for Apply {
    fn kind(&self) -> &'static str {
        "features.apply"
    }
    fn summary(&self) -> &'static str {
        "Apply a fitted transform, unchanged, to another table (e.g. the test split)"
    }
    fn version(&self) -> u32 {
        1
    }
    fn inputs(&self) -> &'static [PortSpec] {
        APPLY_IN
    }
    fn outputs(&self) -> &'static [PortSpec] {
        APPLY_OUT
    }
    fn param_docs(&self) -> &'static [ParamDoc] {
        &[]
    }
    fn build(&self, with: &Value) -> Result<Box<dyn Stage>, ParamError> {
        let _: NoParams = parse_with(with)?;
        Ok(Box::new(ApplyStage))
    }
}

impl Stage for ApplyStage {
    fn params(&self) -> Value {
        serde_json::json!({})
    }
    fn run(&self, ctx: &RunContext<'_>) -> Result<(), StageError> {
        let steps = read_steps(ctx.input("transform")?).map_err(StageError::new)?;
        let mut t = read_table(ctx, "data")?;
        apply_all(&steps, &mut t).map_err(|e| {
            StageError::new(format!("cannot apply the transform: {e}"))
                .with_help("the table must have the columns the transform was fitted on")
        })?;
        write_table(ctx, "data", &t)
    }
}
