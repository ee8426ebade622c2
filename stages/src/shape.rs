//! What `mlcycle validate` knows of a table before it exists: its columns
//! (from the CSV header and first rows, or the Parquet schema), their
//! types, and its target, carried through the DAG as
//! [`mlcycle_pipeline::Facts`] so that a fault that would only show when a
//! trainer runs — no target, a text column that reaches a model — is
//! reported by `validate`, at the stage, before anything runs.
//!
//! Only what is certain is reported: a column a CSV's first rows show as
//! numbers may still hold text further down, so it is [`Kind::Unsure`], and
//! after a step that adds columns named by the data (one-hot) the list is
//! no longer [`TableShape::complete`].

use mlcycle_pipeline::{Facts, InferContext, Inferred, ParamError};

use crate::model::Task;

/// How many rows of a CSV file `validate` reads to tell text from numbers.
pub const SNIFF_ROWS: usize = 1000;

/// A column's type, as far as `validate` can tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Numbers, for certain (declared, or a numeric Parquet type).
    Numeric,
    /// Text, for certain: it will be categorical.
    Categorical,
    /// Numbers as far as the rows read go.
    Unsure,
}

/// A table that a stage will write.
#[derive(Debug, Clone)]
pub struct TableShape {
    /// Its columns in order, the target among them.
    pub columns: Vec<(String, Kind)>,
    /// Whether `columns` lists every column (false once a step added
    /// columns whose names depend on the data).
    pub complete: bool,
    /// The target column, if the dataset stage named one.
    pub target: Option<String>,
    /// The dataset stage the rows come from.
    pub origin: String,
    /// The file it reads, as the pipeline names it.
    pub file: String,
}

/// A model that a trainer will write: the target it predicts.
#[derive(Debug, Clone)]
pub struct ModelShape {
    pub target: String,
}

/// A fitted step's effect on a table's columns, fixed when it is fitted:
/// the columns it removes and those it adds (`None`: columns named by the
/// data). `features.apply` does the same to the table it is given.
#[derive(Debug, Clone)]
pub struct StepShape {
    pub removed: Vec<String>,
    pub added: Option<Vec<(String, Kind)>>,
}

impl StepShape {
    fn apply(&self, t: &TableShape) -> TableShape {
        t.replace(&self.removed, self.added.clone())
    }
}

impl TableShape {
    /// The table a dataset stage reads from `file`.
    pub fn read(
        origin: &str,
        file: &str,
        columns: Vec<(String, Kind)>,
        target: Option<&str>,
    ) -> Self {
        TableShape {
            columns,
            complete: true,
            target: target.map(str::to_string),
            origin: origin.to_string(),
            file: file.to_string(),
        }
    }

    fn kind(&self, name: &str) -> Option<Kind> {
        self.columns
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, k)| *k)
    }

    fn is_target(&self, name: &str) -> bool {
        self.target.as_deref() == Some(name)
    }

    /// The feature columns known to be categorical.
    fn categorical_features(&self) -> Vec<&str> {
        self.columns
            .iter()
            .filter(|(n, k)| *k == Kind::Categorical && !self.is_target(n))
            .map(|(n, _)| n.as_str())
            .collect()
    }

    /// The column names for a message: the first 20, then how many.
    fn names(&self) -> String {
        const SHOWN: usize = 20;
        let names: Vec<&str> = self
            .columns
            .iter()
            .take(SHOWN)
            .map(|(n, _)| n.as_str())
            .collect();
        let more = self.columns.len().saturating_sub(SHOWN);
        if more > 0 {
            format!("{}, … ({} in all)", names.join(", "), self.columns.len())
        } else {
            names.join(", ")
        }
    }

    /// "stage `data` (data/houses.csv)".
    fn from(&self) -> String {
        format!("stage `{}` ({})", self.origin, self.file)
    }

    /// "as stage `data` reads data/houses.csv" (text, a declared type or
    /// a Parquet type: what makes the column categorical).
    fn text_in(&self) -> String {
        format!("as stage `{}` reads {}", self.origin, self.file)
    }

    /// The problems with the columns `param` names (`[param, i]`): one the
    /// table will not have, the target, or one of the wrong type (`numeric`
    /// wanted or not; `None`: any). `target_ok`: the step may take the
    /// target (outlier removal).
    pub fn check_named(
        &self,
        names: &[String],
        numeric: Option<bool>,
        param: &str,
        target_ok: bool,
    ) -> Vec<ParamError> {
        let mut problems = Vec::new();
        for (i, n) in names.iter().enumerate() {
            let at = [param, &i.to_string()];
            let at: Vec<&str> = at.iter().map(|s| &**s).collect();
            if self.is_target(n) && !target_ok {
                problems.push(
                    ParamError::new(
                        &at,
                        format!("`{param}` names the target column `{n}`; targets are never transformed"),
                    )
                    .with_help(format!("leave `{n}` out of `{param}`")),
                );
                continue;
            }
            match self.kind(n) {
                None if self.complete => {
                    let all: Vec<&str> = self.columns.iter().map(|(n, _)| n.as_str()).collect();
                    let near = mlcycle_pipeline::suggest::did_you_mean(n, &all);
                    problems.push(
                        ParamError::new(
                            &at,
                            format!(
                                "`{param}` names column `{n}`, which the table will not have (its columns: {})",
                                self.names()
                            ),
                        )
                        .with_help(if near.is_empty() {
                            format!("the rows come from {}", self.from())
                        } else {
                            near
                        }),
                    );
                }
                Some(Kind::Categorical) if numeric == Some(true) => problems.push(
                    ParamError::new(
                        &at,
                        format!(
                            "column `{n}` will be categorical ({}); `{param}` needs numeric columns",
                            self.text_in()
                        ),
                    )
                    .with_help("encode it first with `features.one_hot`"),
                ),
                Some(Kind::Numeric) if numeric == Some(false) => problems.push(
                    ParamError::new(
                        &at,
                        format!("column `{n}` will be numeric; `{param}` needs categorical columns"),
                    )
                    .with_help(format!(
                        "declare it `categorical` under `types:` of stage `{}`",
                        self.origin
                    )),
                ),
                _ => {}
            }
        }
        problems
    }

    /// This table without `names`, and with `added` columns (names known)
    /// or with columns the data will name (`added` is `None`).
    pub fn replace(&self, names: &[String], added: Option<Vec<(String, Kind)>>) -> TableShape {
        let mut t = self.clone();
        t.columns.retain(|(n, _)| !names.contains(n));
        match added {
            Some(cols) => t.columns.extend(cols),
            None => t.complete = false,
        }
        t
    }

    /// The feature columns a step certainly takes when `columns:` is not
    /// given: every certain one of that type. An unsure column stays in
    /// the shape, which can only hide a problem, never make one up.
    pub fn default_columns(&self, numeric: bool) -> Vec<String> {
        let want = if numeric {
            Kind::Numeric
        } else {
            Kind::Categorical
        };
        self.columns
            .iter()
            .filter(|(n, k)| !self.is_target(n) && *k == want)
            .map(|(n, _)| n.clone())
            .collect()
    }

    /// How many feature columns a step that takes numbers may take at
    /// most (`None`: not known).
    pub fn numeric_at_most(&self) -> Option<usize> {
        self.complete.then(|| {
            self.columns
                .iter()
                .filter(|(n, k)| !self.is_target(n) && *k != Kind::Categorical)
                .count()
        })
    }
}

/// The table input `port` brings, when it is known.
pub fn table<'c>(cx: &'c InferContext<'_>, port: &str) -> Option<&'c TableShape> {
    cx.input::<TableShape>(port)
}

/// A stage that changes rows, not columns: its outputs `outs` hold what
/// its input `port` holds.
/// `cx` with the table on `port` naming `target` its target, when a
/// stage's `target:` says so (the stage reads it that way at run time).
pub fn retargeted<'a>(cx: &InferContext<'a>, port: &str, target: Option<&str>) -> InferContext<'a> {
    let mut inputs = cx.inputs.clone();
    if let (Some(name), Some(t)) = (target, table(cx, port)) {
        if t.columns.iter().any(|(c, _)| c == name) || !t.complete {
            let mut t = t.clone();
            t.target = Some(name.to_string());
            inputs.insert(port.to_string(), Facts::new(t));
        }
    }
    InferContext {
        stage: cx.stage,
        workspace: cx.workspace,
        inputs,
        gathered: cx.gathered.clone(),
    }
}

pub fn through(cx: &InferContext<'_>, port: &str, outs: &[&str]) -> Inferred {
    let Some(facts) = cx.inputs.get(port) else {
        return Inferred::default();
    };
    outs.iter()
        .fold(Inferred::default(), |i, o| i.output(o, facts.clone()))
}

/// A fitting `features.*` or `preprocess.scale` stage: problems with the
/// columns it names (`param`), its `data` output, and its `transform` (the
/// same change, for `features.apply`). `step` fixes the change from the
/// table it is fitted on.
pub fn fitted_step(
    cx: &InferContext<'_>,
    named: Option<&[String]>,
    numeric: Option<bool>,
    param: &str,
    step: impl FnOnce(&TableShape) -> StepShape,
) -> Inferred {
    let Some(t) = table(cx, "data") else {
        return Inferred::default();
    };
    let problems = named
        .map(|n| t.check_named(n, numeric, param, false))
        .unwrap_or_default();
    let step = step(t);
    let mut out = Inferred::default()
        .output("data", Facts::new(step.apply(t)))
        .output("transform", Facts::new(step));
    out.problems = problems;
    out
}

/// `features.apply`: the transform's change applied to the table.
pub fn apply(cx: &InferContext<'_>) -> Inferred {
    match (table(cx, "data"), cx.input::<StepShape>("transform")) {
        (Some(t), Some(step)) => Inferred::default().output("data", Facts::new(step.apply(t))),
        _ => Inferred::default(),
    }
}

/// A trainer's check of its `train` table: a target for a supervised
/// task, of the right type, and no categorical feature.
pub fn trainer(cx: &InferContext<'_>, kind: &str, task: Task) -> Inferred {
    trainer_checked(cx, kind, task, false)
}

/// [`trainer`] for a kind with a `task:` param: its help names the param.
pub fn trainer_with_task(cx: &InferContext<'_>, kind: &str, task: Task) -> Inferred {
    trainer_checked(cx, kind, task, true)
}

fn trainer_checked(cx: &InferContext<'_>, kind: &str, task: Task, task_param: bool) -> Inferred {
    let Some(t) = table(cx, "train") else {
        return Inferred::default();
    };
    let mut out = Inferred::default();
    let supervised = !matches!(task, Task::Clustering);
    match &t.target {
        None if supervised => {
            return out.problem(
                ParamError::at_input(
                    "train",
                    format!(
                        "`{kind}` needs a target column, and its table has none: {} names no `target:`",
                        t.from()
                    ),
                )
                .with_help(format!(
                    "name the column to predict with `target:` under stage `{}`'s `with:` (its columns: {})",
                    t.origin,
                    t.names()
                )),
            );
        }
        Some(target)
            if matches!(task, Task::Regression) && t.kind(target) == Some(Kind::Categorical) =>
        {
            out = out.problem(
                ParamError::at_input(
                    "train",
                    format!(
                        "`{kind}` is a regression and needs a numeric target, but `{target}` will be categorical ({})",
                        t.text_in()
                    ),
                )
                .with_help(if task_param {
                    "set `task: classification`, or leave `task` out: a categorical target makes a classifier".to_string()
                } else {
                    "use a classifier (`train.logistic_regression`, `train.random_forest`, …) to predict a category".to_string()
                }),
            );
        }
        _ => {}
    }
    let text = t.categorical_features();
    if !text.is_empty() {
        let list: Vec<String> = text.iter().map(|n| format!("`{n}`")).collect();
        out = out.problem(
            ParamError::at_input(
                "train",
                format!(
                    "{} {} will reach it categorical ({}), and `{kind}` takes numeric features",
                    if text.len() == 1 { "column" } else { "columns" },
                    list.join(", "),
                    t.text_in()
                ),
            )
            .with_help(format!(
                "encode {0} with `features.one_hot` before training, or drop {0} with `features.select`",
                if text.len() == 1 { "it" } else { "them" }
            )),
        );
    }
    if let (true, Some(target), true) = (supervised, &t.target, out.problems.is_empty()) {
        out = out.output(
            "model",
            Facts::new(ModelShape {
                target: target.clone(),
            }),
        );
    }
    out
}

/// An evaluation's check of the rows it scores (input `port`): they must
/// hold the column each model (`model`, and `reference` for a comparison)
/// predicts.
pub fn scored_rows(cx: &InferContext<'_>, port: &str) -> Inferred {
    let mut out = Inferred::default();
    let Some(t) = table(cx, port) else {
        return out;
    };
    let mut seen: Vec<&str> = Vec::new();
    for model in ["model", "reference"] {
        let Some(m) = cx.input::<ModelShape>(model) else {
            continue;
        };
        if !t.complete || t.kind(&m.target).is_some() || seen.contains(&m.target.as_str()) {
            continue;
        }
        seen.push(&m.target);
        out = out.problem(
            ParamError::at_input(
                port,
                format!(
                    "the `{model}` predicts `{0}`, and the rows from {1} have no `{0}` column to score it against (their columns: {2})",
                    m.target,
                    t.from(),
                    t.names()
                ),
            )
            .with_help(format!(
                "score it on rows that hold `{}`, such as the `test` output of the `preprocess.split` stage the model was trained from",
                m.target
            )),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn houses() -> TableShape {
        TableShape::read(
            "data",
            "data/houses.csv",
            vec![
                ("area".into(), Kind::Unsure),
                ("city".into(), Kind::Categorical),
                ("price".into(), Kind::Unsure),
            ],
            Some("price"),
        )
    }

    #[test]
    fn named_columns_are_checked_only_where_certain() {
        let t = houses();
        // Absent, target, categorical where numbers are wanted.
        let names = ["aera", "price", "city"].map(String::from);
        let problems = t.check_named(&names, Some(true), "columns", false);
        let messages: Vec<&str> = problems.iter().map(|p| p.message.as_str()).collect();
        assert_eq!(problems.len(), 3, "{messages:?}");
        assert_eq!(problems[0].path, ["columns", "0"]);
        assert_eq!(problems[0].help.as_deref(), Some("did you mean `area`?"));
        assert!(messages[1].contains("target"));
        assert!(messages[2].contains("categorical"));
        // A column the first rows show as numbers may hold text further
        // down: not refused as categorical.
        assert!(t
            .check_named(&["area".into()], Some(false), "columns", false)
            .is_empty());
        // Once one-hot added columns, an unknown name may be one of them.
        let encoded = t.replace(&["city".into()], None);
        assert!(encoded
            .check_named(&["city=paris".into()], Some(true), "columns", false)
            .is_empty());
    }
}
