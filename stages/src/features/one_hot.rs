//! `features.one_hot`: one-hot encode categorical columns.

use mlcycle_pipeline::{
    InferContext, Inferred, ParamDoc, RunContext, StageError, StageKind, StageSpec,
};
use serde::{Deserialize, Serialize};

use crate::preprocess::{FIT_IN, FIT_OUT};
use crate::table::ColumnData;
use crate::transform::{apply_all, write_steps, Transform};
use crate::util::{read_table, write_table};

/// `features.one_hot`.
#[derive(Debug)]
pub struct OneHot;

/// `features.one_hot`'s params (`with:`).
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OneHotParams {
    #[serde(default)]
    columns: Option<Vec<String>>,
    #[serde(default)]
    unknown: UnknownCategory,
    #[serde(default)]
    drop: DropCategory,
}

/// Which category gets no column (scikit-learn's `drop`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DropCategory {
    /// A column for every category. With an intercept the columns sum to
    /// the intercept's; linear models then take the minimum-norm fit.
    #[default]
    None,
    /// No column for the first category (in sorted order): the reference
    /// level, as in a statistician's dummy coding.
    First,
    /// One column for a two-category feature, every category otherwise.
    IfBinary,
}

/// What scoring does with a category unseen in training.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnknownCategory {
    /// All the column's 0/1 features are 0.
    #[default]
    Ignore,
    /// Scoring fails, naming the column and the value.
    Error,
}

impl StageKind for OneHot {
    type Params = OneHotParams;
    const SPEC: StageSpec = StageSpec {
        kind: "features.one_hot",
        summary:
            "One-hot encode categorical features: one 0/1 column per category seen in training, and one for missing values if training had them",
        version: 3,
        inputs: FIT_IN,
        outputs: FIT_OUT,
        params: &[
            ParamDoc::new("columns", "list of strings", "columns to encode")
                .unset("every categorical feature"),
            ParamDoc::new(
                "unknown",
                "`ignore` | `error`",
                "a category unseen in training gives all zeros (and is counted: `mlcycle predict` warns, `mlcycle serve` names it in a header), or an error",
            ),
            ParamDoc::new(
                "drop",
                "`none` | `first` | `if_binary`",
                "the category that gets no column (scikit-learn's `drop`): none, the first in sorted order, or the first of a two-category feature",
            ),
        ],
    };
    fn infer(p: &OneHotParams, cx: &InferContext<'_>) -> Inferred {
        let named = p.columns.clone();
        crate::shape::fitted_step(cx, p.columns.as_deref(), Some(false), "columns", |t| {
            crate::shape::StepShape {
                removed: named.unwrap_or_else(|| t.default_columns(false)),
                // One column per category: named by the data.
                added: None,
            }
        })
    }
    fn run(p: &OneHotParams, ctx: &RunContext<'_>) -> Result<(), StageError> {
        let mut t = read_table(ctx, "data")?;
        let columns = crate::util::chosen_columns(&t, &p.columns, false, "columns")?;
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
            // `1.0` and `1` are one category, kept as `1`.
            let mut cats: Vec<String> = v
                .iter()
                .flatten()
                .map(|c| crate::transform::category_key(c).into_owned())
                .collect();
            cats.sort();
            cats.dedup();
            let missing = v.iter().any(Option::is_none);
            let marker = crate::transform::MISSING_CATEGORY;
            if missing && cats.iter().any(|c| c == marker) {
                return Err(StageError::new(format!(
                    "column `{name}` has missing values and a category named `{marker}`: both would be the column `{name}={marker}`"
                ))
                .with_help("rename that category, or fill the missing values with `preprocess.clean`"));
            }
            let drop = match p.drop {
                DropCategory::First => cats.first().cloned(),
                DropCategory::IfBinary if cats.len() == 2 => cats.first().cloned(),
                _ => None,
            };
            steps.push(Transform::OneHot {
                column: name.clone(),
                categories: cats,
                unknown: crate::util::choice_name(&p.unknown),
                drop,
                // Missing values seen in training get their own column
                // (scikit-learn's encoder); they used to be all zeros,
                // the code of the dropped category with `drop: first`.
                missing,
            });
        }
        apply_all(&steps, &mut t).map_err(StageError::from_error)?;
        (ctx.log)(&format!(
            "{} columns: {}",
            t.columns.len(),
            t.names().join(", ")
        ));
        write_table(ctx, "data", &t)?;
        write_steps(ctx.output("transform")?, &steps).map_err(StageError::from_error)
    }
}
