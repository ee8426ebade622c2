//! Experiments: sweeps over params, run as one DAG, recorded, compared and
//! applied.
//!
//! A sweep ([`sweep::run_sweep`]) runs each configuration in a scratch
//! copy of the workspace (`.mlcycle/exps/NAME/`: the source files, with
//! the experiment's params written into them), so nothing of the workspace
//! changes until an experiment is applied. All the copies share the
//! workspace's cache and one [`StageGate`](crate::exec::StageGate): a stage
//! whose fingerprint is the same in several configurations (the data
//! preparation of a sweep over training params) is computed once, the
//! others restore its outputs; the distinct stages share one pool of job
//! slots. Each experiment is recorded in [`store`]; a finished one leaves
//! its stage results in the workspace's run-cache, so applying it
//! ([`edit`] writes its params back) restores its outputs instead of
//! recomputing them.

pub mod edit;
pub mod grid;
pub mod listing;
pub mod metrics;
pub mod plots;
pub mod store;
pub mod sweep;

use std::path::PathBuf;

pub use edit::ParamFiles;
pub use grid::{parse_axis, Axis, Config, Values};
pub use listing::{Cell, Listing};
pub use store::{ExpRecord, ExpStatus, ExpStore};
pub use sweep::{run_sweep, Plan, SweepReporter, SweepRequest};

/// What can go wrong with experiments.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum ExpError {
    #[error("`-S {arg}`: {why}")]
    #[diagnostic(
        code(mlcycle::exp::set),
        help("write `-S KEY=V1,V2,…`, `-S 'KEY=[V1, \"V2,with comma\"]'` or, with --random, `-S KEY=LOW..HIGH`")
    )]
    BadSet { arg: String, why: String },
    #[error("`-S {key}=…` is a range; a grid needs a list of values")]
    #[diagnostic(
        code(mlcycle::exp::range_in_grid),
        help("list the values (`-S {key}=0.01,0.1`), or sample the range with `--random N`")
    )]
    RangeInGrid { key: String },
    #[error("the sweep has {count} configurations; at most 10000 run in one sweep")]
    #[diagnostic(
        code(mlcycle::exp::too_many),
        help("fewer values per `-S`, or `--random N` to sample the space")
    )]
    TooMany { count: usize },
    #[error("the pipeline has no param `{key}` ({file})")]
    #[diagnostic(code(mlcycle::exp::unknown_param))]
    UnknownParam {
        key: String,
        /// The file looked in, as its name.
        file: String,
        #[help]
        help: String,
    },
    #[error("param `{key}` is a mapping or a list; an experiment sets single values")]
    #[diagnostic(
        code(mlcycle::exp::not_scalar),
        help("set its leaves: `-S {key}.SUBKEY=…`")
    )]
    NotScalar { key: String },
    #[error("param `{key}` cannot be written in place in {file} (line {line}): {why}")]
    #[diagnostic(
        code(mlcycle::exp::not_editable),
        help("give the param a plain value of its own in the file (`{key}: 0.1`), then run the sweep again")
    )]
    NotEditable {
        key: String,
        /// The file, as its name.
        file: String,
        line: usize,
        why: String,
    },
    #[error("`-S {key}={value}` would change the param's type: it is {was} ({old})")]
    #[diagnostic(
        code(mlcycle::exp::type_changed),
        help("give a value of the same type, or change the param's type in the file first")
    )]
    TypeChanged {
        key: String,
        value: String,
        was: &'static str,
        old: String,
    },
    #[error("{} is not valid YAML", .file.display())]
    #[diagnostic(
        code(mlcycle::exp::invalid),
        help("run `mlcycle validate` to see where")
    )]
    Invalid { file: PathBuf },
    #[error("an experiment named `{name}` exists")]
    #[diagnostic(
        code(mlcycle::exp::name_taken),
        help("choose another name, or `mlcycle exp remove {name}` first")
    )]
    NameTaken { name: String },
    #[error("`{name}` is not a valid experiment name")]
    #[diagnostic(
        code(mlcycle::exp::bad_name),
        help(
            "use letters, digits, `-`, `_` and `.` (at most 100), starting with a letter or digit"
        )
    )]
    BadName { name: String },
    #[error("no experiment named `{name}`")]
    #[diagnostic(code(mlcycle::exp::unknown))]
    NoSuchExperiment {
        name: String,
        #[help]
        help: String,
    },
    #[error("experiment `{name}` is {status}; only a finished experiment can be applied")]
    #[diagnostic(
        code(mlcycle::exp::not_done),
        help("run it to the end first: the `mlcycle exp run` that made it, again (or `--run-all` for a queued one); `mlcycle exp show --json` has its error")
    )]
    NotDone { name: String, status: &'static str },
    #[error("configuration {index} ({set}) is not a valid pipeline")]
    #[diagnostic(code(mlcycle::exp::config))]
    Config {
        index: usize,
        set: String,
        #[source]
        #[diagnostic_source]
        source: crate::session::SessionError,
    },
    #[error(transparent)]
    #[diagnostic(transparent)]
    Session(#[from] Box<crate::session::SessionError>),
    #[error("cannot read or write {}", .path.display())]
    #[diagnostic(code(mlcycle::exp::io))]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the experiments database {} failed", .path.display())]
    #[diagnostic(code(mlcycle::exp::db))]
    Db {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
}

impl From<crate::session::SessionError> for ExpError {
    fn from(e: crate::session::SessionError) -> Self {
        Self::Session(Box::new(e))
    }
}

impl From<crate::db::DbError> for ExpError {
    fn from(e: crate::db::DbError) -> Self {
        crate::session::SessionError::from(e).into()
    }
}

impl From<crate::workspace::StateError> for ExpError {
    fn from(e: crate::workspace::StateError) -> Self {
        crate::session::SessionError::from(e).into()
    }
}

/// The help of a lookup in a workspace that has no experiment.
const NONE_YET: &str =
    "no experiment is recorded yet; make some with `mlcycle exp run -S KEY=V1,V2`";

/// The help of an unknown param key that has no near name.
pub(crate) const DECLARED_PARAMS: &str =
    "experiments set params the pipeline declares (under `params:` or in its `params_file:`)";

/// The experiments database of the workspace whose state folder is
/// `state`, opened to look up `name`.
///
/// # Errors
/// [`ExpError::NoSuchExperiment`] naming `name` when the workspace has
/// recorded no experiment, or a database failure.
pub fn open_for(state: &std::path::Path, name: &str) -> Result<ExpStore, ExpError> {
    ExpStore::open_existing(state)?.ok_or_else(|| ExpError::NoSuchExperiment {
        name: name.into(),
        help: NONE_YET.into(),
    })
}

/// Checks an experiment name given by the user.
///
/// # Errors
/// [`ExpError::BadName`].
pub fn check_name(name: &str) -> Result<(), ExpError> {
    let ok = !name.is_empty()
        && name.len() <= 100
        && name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(ExpError::BadName { name: name.into() })
    }
}

/// The experiment `name`, or an error that suggests the nearest names.
///
/// # Errors
/// [`ExpError::NoSuchExperiment`], or a database failure.
pub fn find(store: &ExpStore, name: &str) -> Result<ExpRecord, ExpError> {
    if let Some(r) = store.get(name)? {
        return Ok(r);
    }
    let names = store.names()?;
    let mut help = crate::suggest::did_you_mean(name, &names);
    if help.is_empty() {
        help = if names.is_empty() {
            NONE_YET.into()
        } else {
            "`mlcycle exp show` lists them".into()
        };
    }
    Err(ExpError::NoSuchExperiment {
        name: name.into(),
        help,
    })
}

/// A JSON mapping's scalar leaves by dotted key (`{"a": {"b": 1}}` gives
/// `a.b = 1`); lists are left out.
pub fn flatten(
    prefix: &str,
    v: &serde_json::Value,
    out: &mut serde_json::Map<String, serde_json::Value>,
) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, child) in m {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&key, child, out);
            }
        }
        serde_json::Value::Array(_) => {}
        leaf => {
            out.insert(prefix.to_string(), leaf.clone());
        }
    }
}
