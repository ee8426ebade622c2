//! The fitted preprocessing steps as data: what `transform.json` and a
//! table's `mlcycle.transforms` metadata hold. Applying them is
//! [`crate::transform`]'s job; tables only carry them, so this module
//! depends on neither.

use serde::{Deserialize, Serialize};

/// Schema version of `transform.json` and of the chain in table metadata.
pub const TRANSFORM_SCHEMA_VERSION: u32 = 1;

/// A value that fills a missing cell.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Fill {
    Number(f64),
    Category(String),
}

/// One fitted preprocessing step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Transform {
    /// Fill missing values of `columns[i]` with `values[i]`. `strategy`
    /// says how the values were found (`mean`, `median`, `mode`
    /// from the rows the step was fitted on, or `constant`); steps written
    /// before it have none.
    Impute {
        columns: Vec<String>,
        values: Vec<Fill>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        strategy: Option<String>,
    },
    /// `x' = (x - offset) * scale` per column (standard, min-max, max-abs).
    Scale {
        method: String,
        columns: Vec<String>,
        offsets: Vec<f64>,
        scales: Vec<f64>,
    },
    /// Divide each row's `columns` by their L2 norm.
    Normalize { columns: Vec<String> },
    /// Replace categorical `column` by one 0/1 column per category, named
    /// `column=category`. An unseen category gives all zeros, or an error
    /// when `unknown` is `error`. The category in `drop` (known, but given
    /// no column) is all zeros too, so the columns are not collinear with
    /// an intercept. Categories that are numbers are kept in one spelling
    /// (`1.0` and `1` are the category `1`; see
    /// [`crate::transform::category_key`]). When the training rows had
    /// missing values (`missing`), they get a column of their own,
    /// `column=(missing)`, as scikit-learn's encoder gives them; else a
    /// missing value is an unseen category.
    OneHot {
        column: String,
        categories: Vec<String>,
        unknown: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        drop: Option<String>,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        missing: bool,
    },
    /// Add products of `columns` up to `degree` (named `a*b`, `a^2`).
    Polynomial {
        columns: Vec<String>,
        degree: u32,
        interaction_only: bool,
    },
    /// Replace `columns` by their projections `pc1..pcK` onto the
    /// principal components (`components` is K rows of len(columns)).
    Pca {
        columns: Vec<String>,
        mean: Vec<f64>,
        components: Vec<Vec<f64>>,
    },
    /// Columns deliberately left out of the model's features.
    Drop { columns: Vec<String> },
}
