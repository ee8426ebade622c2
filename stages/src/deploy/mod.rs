//! `deploy.bundle`: a self-contained, versioned model bundle, and the
//! loader that `mlcycle predict` (and serving) use.
//!
//! A bundle is a folder:
//! - `model.json`: the model, its preprocessing and input schema;
//! - `metrics.json`: the evaluation metrics, when wired;
//! - `MODEL_CARD.md`: what it is, what it needs, how well it did;
//! - `bundle.json`: the manifest — name, version (the first 12 hex digits
//!   of the model's BLAKE3), schema and the BLAKE3 of every file, checked
//!   on every load.
//!
//! `deploy.promote` (registering a bundle and gating it against the
//! champion) is in `promote.rs`; the model registry, its store and the
//! scoring server have files of their own.

use std::path::Path;

mod promote;
pub mod registry;
#[cfg(feature = "serve")]
pub mod serve;
mod store;

pub use promote::Promote;

use mlcycle_pipeline::{
    ParamDoc, ParamError, PortSpec, RunContext, StageError, StageKind, StageSpec,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::model::{Extra, Model, ModelError, Predictions, Task};
use crate::table::{short, Column, ColumnData, CsvOptions, Table};

/// Schema version of `bundle.json`.
pub const BUNDLE_SCHEMA_VERSION: u32 = 1;

/// `bundle.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    pub format: String,
    pub schema_version: u32,
    pub name: String,
    pub version: String,
    pub kind: String,
    pub task: Task,
    pub trained_by: String,
    pub files: std::collections::BTreeMap<String, String>,
}

/// A loaded, verified bundle.
#[derive(Debug, Clone)]
pub struct Bundle {
    pub manifest: Manifest,
    pub model: Model,
    pub metrics: Option<Value>,
    /// The training rows' profile (`reference.json`), when the bundle was
    /// given them: what `mlcycle serve` measures drift against.
    pub reference: Option<crate::monitor::Profile>,
}

/// Why a bundle cannot be used.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum BundleError {
    #[diagnostic(code(mlcycle::bundle::not_a_bundle))]
    #[error("{path} is not a model bundle: {reason}")]
    NotABundle { path: String, reason: String },
    #[diagnostic(code(mlcycle::bundle::corrupt))]
    #[error("bundle file `{file}` does not match its manifest (BLAKE3 {found}, expected {expected}): the bundle was modified or is corrupt")]
    Corrupt {
        file: String,
        found: String,
        expected: String,
    },
    #[diagnostic(code(mlcycle::bundle::model))]
    #[error("{0}")]
    Model(String),
}

/// The bundle folder `dir` names: `dir` itself when it holds a
/// `bundle.json`, else its one sub-folder that does (a `deploy.bundle`
/// stage's output folder, `artifacts/STAGE`, holds its bundle as
/// `artifacts/STAGE/bundle`). Anything else is left to [`Bundle::load`]
/// to report.
pub fn find_bundle(dir: &Path) -> std::path::PathBuf {
    match bundles_in(dir).as_slice() {
        [one] if !dir.join("bundle.json").is_file() => one.clone(),
        _ => dir.to_path_buf(),
    }
}

/// The sub-folders of `dir` that hold a `bundle.json`, sorted.
fn bundles_in(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut inner: Vec<std::path::PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.join("bundle.json").is_file())
        .collect();
    inner.sort();
    inner
}

impl Bundle {
    /// Loads a bundle folder, verifying every file against the manifest.
    pub fn load(dir: &Path) -> Result<Bundle, BundleError> {
        if !dir.is_dir() {
            return Err(BundleError::NotABundle {
                path: dir.display().to_string(),
                reason: if dir.exists() {
                    "it is a file; name the bundle's folder".into()
                } else {
                    "there is no such folder".into()
                },
            });
        }
        let found = find_bundle(dir);
        let inner = bundles_in(dir);
        if found == dir && inner.len() > 1 && !dir.join("bundle.json").is_file() {
            let names: Vec<String> = inner.iter().map(|p| p.display().to_string()).collect();
            return Err(BundleError::NotABundle {
                path: dir.display().to_string(),
                reason: format!(
                    "it holds {} bundles ({}); name one",
                    inner.len(),
                    names.join(", ")
                ),
            });
        }
        let dir = found.as_path();
        let not = |reason: String| BundleError::NotABundle {
            path: dir.display().to_string(),
            reason,
        };
        let text = std::fs::read_to_string(dir.join("bundle.json")).map_err(|e| {
            not(format!(
                "cannot read bundle.json ({e}); point --bundle at the folder a `deploy.bundle` stage wrote"
            ))
        })?;
        let manifest: Manifest =
            serde_json::from_str(&text).map_err(|e| not(format!("bundle.json: {e}")))?;
        if manifest.format != "mlcycle.bundle" {
            return Err(not(format!("bundle.json has format `{}`", manifest.format)));
        }
        if manifest.schema_version == 0 || manifest.schema_version > BUNDLE_SCHEMA_VERSION {
            return Err(not(format!(
                "bundle schema version {}; this mlcycle reads 1 to {BUNDLE_SCHEMA_VERSION}",
                manifest.schema_version
            )));
        }
        let mut texts = std::collections::BTreeMap::new();
        for (file, expected) in &manifest.files {
            if file.contains('/') || file.contains("..") {
                return Err(not(format!(
                    "the manifest names a file outside the bundle: {file}"
                )));
            }
            let bytes = std::fs::read(dir.join(file))
                .map_err(|e| not(format!("cannot read {file}: {e}")))?;
            let found = blake3::hash(&bytes).to_hex().to_string();
            if &found != expected {
                return Err(BundleError::Corrupt {
                    file: file.clone(),
                    found,
                    expected: expected.clone(),
                });
            }
            texts.insert(file.clone(), String::from_utf8_lossy(&bytes).into_owned());
        }
        let model_text = texts
            .get("model.json")
            .ok_or_else(|| not("the manifest lists no model.json".into()))?;
        let model = Model::from_json(model_text)
            .map_err(|e| BundleError::Model(format!("model.json: {e}")))?;
        let metrics = texts
            .get("metrics.json")
            .and_then(|t| serde_json::from_str(t).ok());
        let reference = match texts.get("reference.json") {
            None => None,
            Some(t) => Some(
                serde_json::from_str(t)
                    .map_err(|e| BundleError::Model(format!("reference.json: {e}")))?,
            ),
        };
        Ok(Bundle {
            manifest,
            model,
            metrics,
            reference,
        })
    }

    /// Reads rows to score from a CSV file, typed by the model's schema.
    pub fn read_csv(&self, path: &Path) -> Result<Table, crate::table::TableError> {
        // Type the model's columns as it expects (a number in a
        // categorical column stays a category); only those in the header,
        // so a missing column is reported by the schema check.
        let header: Vec<String> = csv::Reader::from_path(path)
            .and_then(|mut r| r.headers().map(|h| h.iter().map(str::to_string).collect()))
            .map_err(|e| crate::table::TableError::Io {
                path: path.display().to_string(),
                source: e.into(),
            })?;
        let mut opts = CsvOptions::default();
        for c in &self.model.inputs {
            if header.contains(&c.name) {
                opts.types.insert(c.name.clone(), c.ty.clone());
            }
        }
        Table::read_csv(path, &opts)
    }

    /// Scores `t`; unknown or missing columns are errors that name them.
    pub fn predict(&self, t: &Table) -> Result<Predictions, ModelError> {
        let x = self.model.prepare(t, Extra::Refuse)?;
        self.model.predict(&x)
    }

    /// `t` with a `prediction` column (and `probability` for classifiers
    /// that have one) appended.
    /// `t` with the predictions of `p` added: `prediction` and, for a
    /// classifier with probabilities, `probability` (of the predicted
    /// class), and with `every_class` one `proba_<class>` column per class.
    pub fn with_predictions(&self, t: &Table, p: &Predictions, every_class: bool) -> Table {
        let mut out = t.clone();
        match p {
            Predictions::Values(v) => out.columns.push(Column {
                name: "prediction".into(),
                data: ColumnData::Numeric(v.clone()),
            }),
            Predictions::Classes { ids, proba } => {
                out.columns.push(Column {
                    name: "prediction".into(),
                    data: ColumnData::Categorical(
                        ids.iter()
                            .map(|&i| Some(self.model.classes.get(i).cloned().unwrap_or_default()))
                            .collect(),
                    ),
                });
                if let Some(pr) = proba {
                    out.columns.push(Column {
                        name: "probability".into(),
                        data: ColumnData::Numeric(ids.iter().zip(pr).map(|(&i, p)| p[i]).collect()),
                    });
                    if every_class {
                        for (k, class) in self.model.classes.iter().enumerate() {
                            out.columns.push(Column {
                                name: format!("proba_{class}"),
                                data: ColumnData::Numeric(
                                    pr.iter()
                                        .map(|r| r.get(k).copied().unwrap_or(0.0))
                                        .collect(),
                                ),
                            });
                        }
                    }
                }
            }
        }
        out
    }
}

/// `deploy.bundle`.
#[derive(Debug)]
pub struct BundleFactory;

/// `deploy.bundle`'s params (`with:`).
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BundleParams {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    description: Option<String>,
}

const BUNDLE_IN: &[PortSpec] = &[
    PortSpec::input("model", crate::ports::MODEL, true, "the model to ship"),
    PortSpec::input(
        "metrics",
        crate::ports::METRICS,
        false,
        "its evaluation metrics, copied into the bundle and the model card",
    ),
    PortSpec::input(
        "reference",
        crate::ports::TABLE,
        false,
        "the raw training rows: their profile (`reference.json`) is what `mlcycle serve` measures drift against",
    ),
];
const BUNDLE_OUT: &[PortSpec] = &[PortSpec::output(
    "bundle",
    "bundle",
    crate::ports::BUNDLE,
    "the bundle folder: `bundle.json`, `model.json`, `metrics.json`, `MODEL_CARD.md` (and `model.onnx` for an ONNX model, `reference.json` when given the training rows)",
)];

impl StageKind for BundleFactory {
    type Params = BundleParams;
    const SPEC: StageSpec = StageSpec {
        kind: "deploy.bundle",
        summary: "Write a self-contained, versioned model bundle (model, preprocessing, schema, metrics, model card) for `mlcycle predict`",
        version: 1,
        inputs: BUNDLE_IN,
        outputs: BUNDLE_OUT,
        params: &[
            ParamDoc::new("name", "string", "the model's name in the manifest and the card").unset("the stage name"),
            ParamDoc::new("description", "string", "a paragraph for the model card: what it is for, its limits"),
        ],
    };
    fn check(p: &mut BundleParams) -> Result<(), ParamError> {
        if p.name.as_deref().is_some_and(|n| n.trim().is_empty()) {
            return Err(ParamError::new(&["name"], "`name` is empty"));
        }
        Ok(())
    }
    fn run(p: &BundleParams, ctx: &RunContext<'_>) -> Result<(), StageError> {
        let model_path = ctx.input("model")?;
        let model = Model::read(model_path).map_err(StageError::from_error)?;
        let source = std::fs::read(model_path).map_err(StageError::from_error)?;
        // An ONNX model ships as `model.json` (the graph inside, so every
        // reader of bundles scores it) and as the untouched `model.onnx`,
        // for other ONNX runtimes.
        let onnx = crate::onnx::looks_like_onnx(&source);
        let model_bytes = if onnx {
            let mut s = crate::util::to_json_readable(&model);
            s.push('\n');
            s.into_bytes()
        } else {
            source
        };
        let metrics: Option<Value> = match ctx.inputs.get("metrics") {
            None => None,
            Some(p) => {
                let text = std::fs::read_to_string(p).map_err(|e| {
                    StageError::new(format!("cannot read metrics {}: {e}", p.display()))
                })?;
                Some(serde_json::from_str(&text).map_err(|e| {
                    StageError::caused_by("`metrics` is not JSON", e)
                        .with_help("wire an `evaluate.*` stage's `metrics` output here")
                })?)
            }
        };
        let dir = ctx.output("bundle")?;
        std::fs::create_dir_all(dir).map_err(StageError::from_error)?;
        let name = p.name.clone().unwrap_or_else(|| ctx.stage.to_string());
        let reference: Option<Vec<u8>> = match ctx.inputs.get("reference") {
            None => None,
            Some(path) => {
                let t = Table::read(path).map_err(StageError::from_error)?;
                if !t.transforms.is_empty() {
                    return Err(StageError::new(
                    "`reference` has been preprocessed; served rows are raw, so drift must be measured against raw rows",
                )
                .with_help("wire rows before any fitted step: the dataset stage's output, or a split of it made before cleaning, scaling or encoding"));
                }
                let profile = crate::monitor::Profile::of(&t, 10);
                let mut s = serde_json::to_string(&profile).expect("profile serializes");
                s.push('\n');
                Some(s.into_bytes())
            }
        };
        // The version names what is served: the model, and the reference
        // drift is measured against when there is one.
        let version = match &reference {
            None => blake3::hash(&model_bytes).to_hex()[..12].to_string(),
            Some(r) => {
                let mut h = blake3::Hasher::new();
                h.update(&model_bytes);
                h.update(r);
                h.finalize().to_hex()[..12].to_string()
            }
        };
        let mut files = std::collections::BTreeMap::new();
        let mut put = |file: &str, bytes: &[u8]| -> Result<(), StageError> {
            std::fs::write(dir.join(file), bytes)
                .map_err(|e| StageError::caused_by(format!("cannot write {file}"), e))?;
            files.insert(file.to_string(), blake3::hash(bytes).to_hex().to_string());
            Ok(())
        };
        put("model.json", &model_bytes)?;
        // The ONNX file itself, whether the input was one or a model
        // document holding one (`evaluate.compare`'s winner).
        if let crate::model::Fitted::Onnx { onnx: graph, .. } = &model.fitted {
            put("model.onnx", graph.bytes())?;
        }
        if let Some(m) = &metrics {
            let mut s = serde_json::to_string_pretty(m).expect("metrics serialize");
            s.push('\n');
            put("metrics.json", s.as_bytes())?;
        }
        if let Some(r) = &reference {
            put("reference.json", r)?;
        }
        let card = model_card(
            &name,
            &version,
            &model,
            metrics.as_ref(),
            p.description.as_deref(),
        );
        put("MODEL_CARD.md", card.as_bytes())?;
        let manifest = Manifest {
            format: "mlcycle.bundle".into(),
            schema_version: BUNDLE_SCHEMA_VERSION,
            name: name.clone(),
            version: version.clone(),
            kind: model.kind.clone(),
            task: model.task,
            trained_by: model.lineage.stage.clone(),
            files,
        };
        let mut s = serde_json::to_string_pretty(&manifest).expect("manifest serializes");
        s.push('\n');
        std::fs::write(dir.join("bundle.json"), s).map_err(StageError::from_error)?;
        (ctx.log)(&format!(
            "bundle `{name}` version {version} ({})",
            model.kind
        ));
        Ok(())
    }
}

/// An empty lineage field (an ONNX model saved without it) reads as such.
fn or_unknown(s: &str) -> &str {
    if s.is_empty() {
        "not recorded"
    } else {
        s
    }
}

fn model_card(
    name: &str,
    version: &str,
    m: &Model,
    metrics: Option<&Value>,
    description: Option<&str>,
) -> String {
    let mut s = format!("# Model card: {name}\n\n");
    if let Some(d) = description {
        s.push_str(d.trim());
        s.push_str("\n\n");
    }
    s.push_str(&format!(
        "| | |\n|---|---|\n| version | `{version}` |\n| algorithm | `{}` |\n| task | {} |\n| trained by stage | `{}` |\n| training rows | {} |\n| training data (BLAKE3) | `{}` |\n",
        m.kind,
        m.task.as_str(),
        or_unknown(&m.lineage.stage),
        m.lineage.rows,
        or_unknown(&m.lineage.data_hash)
    ));
    if let Some(t) = &m.target {
        s.push_str(&format!("| target | `{t}` |\n"));
    }
    if !m.classes.is_empty() {
        s.push_str(&format!("| classes | {} |\n", m.classes.join(", ")));
    }
    s.push_str("\n## Inputs\n\n| column | type |\n|---|---|\n");
    for c in &m.inputs {
        s.push_str(&format!("| `{}` | {} |\n", c.name, c.ty));
    }
    if !m.transforms.is_empty() {
        s.push_str("\n## Preprocessing (applied by the model itself)\n\n");
        for (i, t) in m.transforms.iter().enumerate() {
            let cols = t.reads();
            s.push_str(&format!(
                "{}. `{}`{}\n",
                i + 1,
                t.op(),
                if cols.is_empty() {
                    String::new()
                } else {
                    format!(" on {}", cols.join(", "))
                }
            ));
        }
    }
    s.push_str(&format!(
        "\n## Parameters\n\n```json\n{}\n```\n",
        serde_json::to_string_pretty(&m.params).unwrap_or_default()
    ));
    if let Some(Value::Object(mm)) = metrics {
        s.push_str("\n## Metrics (held-out rows)\n\n| metric | value |\n|---|---|\n");
        for (k, v) in mm {
            if let Some(x) = v.as_f64() {
                s.push_str(&format!("| {k} | {} |\n", short(x)));
            }
        }
    }
    s.push_str(
        "\n## Use\n\n```sh\nmlcycle predict --bundle <this folder> --input rows.csv\n```\n\n\
         `rows.csv` needs the input columns above (the target may be present and is ignored).\n",
    );
    s
}
