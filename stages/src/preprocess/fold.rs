//! `preprocess.fold`: one fold of k-fold cross-validation, from the fold
//! assignment `preprocess.split` writes.

use mlcycle_pipeline::{
    InferContext, Inferred, ParamDoc, ParamError, PortSpec, RunContext, StageError, StageKind,
    StageSpec,
};
use serde::{Deserialize, Serialize};

use crate::table::{ColumnData, Table};

/// `preprocess.fold`: the training and validation rows of fold `k`.
#[derive(Debug)]
pub struct Fold;

/// What `preprocess.split` tells `validate` about its `folds` output: how
/// many folds it makes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FoldCount(pub usize);

/// `preprocess.fold`'s params (`with:`).
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FoldParams {
    /// The fold held out for validation (0-based).
    fold: usize,
}

const FOLD_IN: &[PortSpec] = &[
    PortSpec::input(
        "data",
        crate::ports::TABLE,
        true,
        "the rows the folds were assigned to (`preprocess.split`'s `train`)",
    ),
    PortSpec::input(
        "folds",
        crate::ports::TABLE,
        true,
        "the fold of each row (`preprocess.split`'s `folds`, made with `folds: k`)",
    ),
];
const FOLD_OUT: &[PortSpec] = &[
    PortSpec::output(
        "train",
        "train.arrow",
        crate::ports::TABLE,
        "the rows of every other fold",
    ),
    PortSpec::output(
        "validation",
        "validation.arrow",
        crate::ports::TABLE,
        "the rows of fold `fold`",
    ),
];

impl StageKind for Fold {
    type Params = FoldParams;
    const SPEC: StageSpec = StageSpec {
        kind: "preprocess.fold",
        summary: "One fold of k-fold cross-validation: train on the other folds, validate on this one",
        version: 1,
        inputs: FOLD_IN,
        outputs: FOLD_OUT,
        params: &[ParamDoc::new(
            "fold",
            "integer",
            "the fold to hold out for validation, 0 to k-1 (required; `matrix: {fold: [0, 1, 2, 3, 4]}` makes one stage per fold)",
        )],
    };
    fn example() -> serde_json::Value {
        serde_json::json!({"fold": 0})
    }
    fn check(_: &mut FoldParams) -> Result<(), ParamError> {
        Ok(())
    }
    fn infer(p: &FoldParams, cx: &InferContext<'_>) -> Inferred {
        let inferred = crate::shape::through(cx, "data", &["train", "validation"]);
        match cx.input::<FoldCount>("folds") {
            Some(FoldCount(0)) => inferred.problem(ParamError::at_input(
                "folds",
                "the split stage assigns no folds (its `folds` is 0); set `folds: k` there, k at least 2",
            )),
            Some(FoldCount(k)) if p.fold >= *k => inferred.problem(ParamError::new(
                &["fold"],
                format!("`fold` is {}, but the split makes {k} folds (0 to {})", p.fold, k - 1),
            )),
            _ => inferred,
        }
    }
    fn run(p: &FoldParams, ctx: &RunContext<'_>) -> Result<(), StageError> {
        let t = Table::read(ctx.input("data")?).map_err(StageError::from_error)?;
        let f = Table::read(ctx.input("folds")?).map_err(StageError::from_error)?;
        let [train, validation] = p.rows(&t, &f)?;
        (ctx.log)(&format!(
            "fold {}: {} train rows, {} validation rows",
            p.fold,
            train.len(),
            validation.len()
        ));
        for (port, rows) in [("train", train), ("validation", validation)] {
            t.take(&rows)
                .write_arrow(ctx.output(port)?)
                .map_err(StageError::from_error)?;
        }
        Ok(())
    }
}

impl FoldParams {
    /// Row indices of (train, validation) in `t`, from the assignment `f`
    /// (columns `row` and `fold`, as `preprocess.split` writes it).
    fn rows(&self, t: &Table, f: &Table) -> Result<[Vec<usize>; 2], StageError> {
        let numbers = |name: &str| match f.column(name).map(|c| &c.data) {
            Some(ColumnData::Numeric(v)) => Ok(v),
            _ => Err(
                StageError::new(format!("input `folds` has no numeric column `{name}`"))
                    .with_help("wire `folds` to the `folds` output of a `preprocess.split` stage"),
            ),
        };
        let (rows, folds) = (numbers("row")?, numbers("fold")?);
        if rows.is_empty() {
            return Err(StageError::new("input `folds` assigns no rows to folds")
                .with_help("set `folds: k` (k ≥ 2) on the `preprocess.split` stage"));
        }
        if rows.len() != t.n_rows() {
            return Err(StageError::new(format!(
                "input `folds` assigns {} rows, but `data` has {}",
                rows.len(),
                t.n_rows()
            ))
            .with_help("wire `data` to the `train` output of the split stage that made `folds`"));
        }
        let k = folds.iter().fold(0.0f64, |m, x| m.max(*x)) as usize + 1;
        if self.fold >= k {
            return Err(StageError::new(format!(
                "`fold` is {}, but the rows are in {k} folds (0 to {})",
                self.fold,
                k - 1
            )));
        }
        let mut out: [Vec<usize>; 2] = Default::default();
        for (&row, &fold) in rows.iter().zip(folds) {
            let row = row as usize;
            if row >= t.n_rows() {
                return Err(StageError::new(format!(
                    "input `folds` names row {row}, but `data` has {} rows",
                    t.n_rows()
                )));
            }
            out[usize::from(fold as usize == self.fold)].push(row);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::Column;

    fn numeric(name: &str, v: Vec<f64>) -> Column {
        Column {
            name: name.into(),
            data: ColumnData::Numeric(v),
        }
    }

    fn table(cols: Vec<Column>) -> Table {
        Table {
            columns: cols,
            target: None,
            transforms: vec![],
        }
    }

    #[test]
    fn a_fold_is_validation_and_the_others_train() {
        let t = table(vec![numeric("x", (0..6).map(f64::from).collect())]);
        let f = table(vec![
            numeric("row", (0..6).map(f64::from).collect()),
            numeric("fold", vec![0.0, 1.0, 2.0, 0.0, 1.0, 2.0]),
        ]);
        let [train, val] = FoldParams { fold: 1 }.rows(&t, &f).unwrap();
        assert_eq!(train, [0, 2, 3, 5]);
        assert_eq!(val, [1, 4]);
        let e = FoldParams { fold: 3 }.rows(&t, &f).unwrap_err();
        assert!(e.to_string().contains("3 folds (0 to 2)"), "{e}");
        let short = table(vec![numeric("x", vec![0.0])]);
        assert!(FoldParams { fold: 0 }.rows(&short, &f).is_err());
    }
}
