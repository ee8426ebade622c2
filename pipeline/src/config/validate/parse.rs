//! Reading the pipeline file: the cache of parsed pipelines, and load
//! failures turned into diagnostics.

use std::path::Path;

use serde_json::Value;

use super::super::load::{self, LoadFailure};
use super::super::span::Part;
use super::super::{ConfigError, FileKey, Issue};

#[derive(serde::Serialize, serde::Deserialize)]
struct ParsedPipeline {
    hash: String,
    value: Value,
}

pub(super) fn cached_parse(cache: Option<&Path>, text: &str) -> Option<Value> {
    // Read as text: one UTF-8 check of the whole file is cheaper than
    // `from_slice`'s check of every string in it.
    let text_json = std::fs::read_to_string(cache?).ok()?;
    let parsed: ParsedPipeline = serde_json::from_str(&text_json).ok()?;
    (parsed.hash == crate::hash::hash_bytes(text.as_bytes())).then_some(parsed.value)
}

pub(super) fn save_parse(cache: Option<&Path>, text: &str, value: &Value) {
    let Some(path) = cache else { return };
    let parsed = ParsedPipeline {
        hash: crate::hash::hash_bytes(text.as_bytes()),
        value: value.clone(),
    };
    if let Ok(bytes) = serde_json::to_vec(&parsed) {
        // Best effort: without the cache the next load parses the YAML again.
        if let Err(e) = crate::workspace::write_atomic(path, &bytes) {
            tracing::debug!(path = %path.display(), error = %e, "Could not cache the parsed pipeline.");
        }
    }
}

pub(super) fn display_name(file: &Path) -> String {
    file.to_string_lossy().trim_start_matches("./").to_string()
}

pub(super) fn failure(file: &Path, name: &str, text: &str, f: LoadFailure) -> ConfigError {
    let (code, message, help, offset) = match f {
        LoadFailure::Io(e) => (
            "io",
            format!("cannot read {}: {e}", file.display()),
            Some("check the path; a workspace holds an `mlcycle.yaml` at its root".to_string()),
            None,
        ),
        LoadFailure::TooLarge { bytes } => (
            "too_large",
            format!(
                "the file is {:.1} MiB; pipeline files are capped at {} MiB",
                bytes as f64 / 1048576.0,
                load::MAX_FILE_BYTES / 1048576
            ),
            Some("keep data out of the pipeline file: point a stage at a data file instead".into()),
            None,
        ),
        LoadFailure::AliasBomb { nodes, offset } => (
            "alias_bomb",
            format!(
                "YAML aliases expand this document to more than {} nodes ({nodes} counted so far)",
                load::MAX_EXPANDED_NODES
            ),
            Some("an alias that refers to lists of aliases grows exponentially; write the values out or use fewer levels".into()),
            Some(offset),
        ),
        LoadFailure::Syntax { message, offset } => (
            "syntax",
            format!("invalid YAML: {message}"),
            Some("fix the YAML syntax at the marked position".into()),
            offset,
        ),
    };
    let issue = Issue {
        code,
        message,
        help,
        file: FileKey::Pipeline,
        path: None,
        part: Part::Value,
        label: "here".into(),
        offset,
    };
    ConfigError::at_offset(file, name, text, issue, offset)
}

/// The one-line message for a load failure of a secondary file.
pub(super) fn failure_message(file: &Path, name: &str, f: LoadFailure) -> String {
    failure(file, name, "", f)
        .issues
        .into_iter()
        .next()
        .map(|i| i.issue.message)
        .unwrap_or_default()
}
