//! What a dep or input refers to: another stage's output, written as
//! `stage.port` or by its path, or a file that exists.

use foldhash::HashMap;
use std::path::{Path, PathBuf};

use super::super::span::{Part, YamlPath};
use super::super::Source;
use super::paths::{normalize_any, resolve_links};
use super::{Draft, Validator};
use crate::suggest::did_you_mean;

impl Validator<'_> {
    /// Resolves a dep or input written as a path or a `stage.port` reference.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn resolve(
        &mut self,
        stage: &Draft<'_>,
        raw: &str,
        path: &YamlPath,
        drafts: &[Draft<'_>],
        ids: &HashMap<&str, usize>,
        out_index: &HashMap<&str, (usize, usize)>,
    ) -> Option<(String, Source)> {
        let (as_ref, unknown_port) = find_ref(raw, drafts, ids);
        let norm = normalize_any(raw).map(|n| self.in_workspace(n));
        let as_path = self.find_path(norm.as_ref(), out_index);
        match (as_ref, as_path) {
            (Some((si, oi)), Some((_, src)))
                if src
                    != (Source::Stage {
                        stage: si,
                        output: oi,
                    }) =>
            {
                let port = &drafts[si].outputs[oi].name;
                self.push(
                    "ambiguous_ref",
                    path,
                    Part::Value,
                    format!(
                        "`{raw}` in stage `{}` is both output `{port}` of stage `{}` and an existing path",
                        stage.id, drafts[si].id
                    ),
                    "ambiguous",
                    Some(format!("write `./{raw}` for the path, or rename the file")),
                );
                return None;
            }
            (Some((si, oi)), _) => {
                return Some((
                    drafts[si].outputs[oi].path.clone(),
                    Source::Stage {
                        stage: si,
                        output: oi,
                    },
                ));
            }
            (None, Some(found)) => {
                if let Source::File(rel) = &found.1 {
                    if self.refuse_own_state(&stage.id, rel, path, Part::Value) {
                        return None;
                    }
                }
                self.check_readable(stage, &found, path);
                return Some(found);
            }
            (None, None) => {}
        }
        if norm.is_none() {
            self.push(
                "dep_path",
                path,
                Part::Value,
                format!("stage `{}` has an empty dependency", stage.id),
                "empty",
                None,
            );
            return None;
        }
        // `fit.py` in stage `fit` is a missing script, not a reference to
        // the stage's own output (which a stage cannot depend on).
        let unknown_port = unknown_port.filter(|(si, _)| drafts[*si].id != stage.id);
        if let Some((si, port)) = unknown_port {
            self.unknown_port(stage, raw, path, &drafts[si], port);
            return None;
        }
        // `train.model` where `train` has instances (reported there).
        if self.ref_to_matrix(raw, &stage.id, path) {
            return None;
        }
        if self.missing_input(stage, raw, path, drafts, ids) && self.allow_missing {
            // A source file missing from a partial checkout blocks the
            // stages that read it, not the whole pipeline.
            let norm = norm.expect("checked above");
            self.defer_missing();
            return Some((norm.clone(), Source::File(norm)));
        }
        None
    }

    /// Moves the problem just reported (a missing source file) from the
    /// errors to the pipeline's missing sources.
    pub(super) fn defer_missing(&mut self) {
        if let Some(issue) = self.issues.pop() {
            let msg = match &issue.help {
                Some(h) => format!("{} ({h})", issue.message),
                None => issue.message.clone(),
            };
            self.missing.push(msg);
        }
    }

    /// An absolute path inside the workspace, relative to its root (the
    /// one identity every path in the pipeline gets); any other path as is.
    pub(super) fn in_workspace(&self, norm: String) -> String {
        let norm = if norm.starts_with("../") || norm == ".." {
            // `../ws/data` may leave the workspace and come back in.
            match normalize_any(&format!("{}/{norm}", self.root.display())) {
                Some(abs) => abs,
                None => return norm,
            }
        } else {
            norm
        };
        if !norm.starts_with('/') {
            return norm;
        }
        match Path::new(&norm).strip_prefix(&self.root) {
            Ok(rel) if rel.as_os_str().is_empty() => ".".into(),
            Ok(rel) => rel.to_string_lossy().into_owned(),
            Err(_) => norm,
        }
    }

    /// Looks `norm` up as a path: another stage's output (or a file inside
    /// an output folder), a file that exists, or a folder that will hold
    /// other stages' outputs.
    ///
    /// A path spelled through a symlink that stays inside the workspace
    /// (`link/x.txt`, `link -> real`) is the path it leads to.
    pub(super) fn find_path(
        &self,
        norm: Option<&String>,
        out_index: &HashMap<&str, (usize, usize)>,
    ) -> Option<(String, Source)> {
        let norm = norm?;
        let as_written = self.find_path_as_written(norm, out_index);
        if matches!(as_written, Some((_, Source::Stage { .. }))) {
            return as_written;
        }
        match resolve_links(&self.root, norm) {
            Some(real) => self.find_path_as_written(&real, out_index).or(as_written),
            None => as_written,
        }
    }

    fn find_path_as_written(
        &self,
        norm: &String,
        out_index: &HashMap<&str, (usize, usize)>,
    ) -> Option<(String, Source)> {
        Some(norm).and_then(|norm| {
            if let Some(&(si, oi)) = out_index.get(norm.as_str()) {
                return Some((
                    norm.clone(),
                    Source::Stage {
                        stage: si,
                        output: oi,
                    },
                ));
            }
            let mut prefix = norm.as_str();
            while let Some(i) = prefix.rfind('/') {
                prefix = &prefix[..i];
                if let Some(&(si, oi)) = out_index.get(prefix) {
                    return Some((
                        norm.clone(),
                        Source::Stage {
                            stage: si,
                            output: oi,
                        },
                    ));
                }
            }
            let full = if Path::new(norm).is_absolute() {
                PathBuf::from(norm)
            } else {
                self.root.join(norm)
            };
            let inner = format!("{norm}/");
            (full.exists() || out_index.keys().any(|o| o.starts_with(&inner)))
                .then(|| (norm.clone(), Source::File(norm.clone())))
        })
    }

    /// For `validate` (strict about sources): a source dep that exists
    /// must be a regular file or a folder; `run` and `status` only block
    /// the stage that reads anything else.
    pub(super) fn check_readable(
        &mut self,
        stage: &Draft<'_>,
        found: &(String, Source),
        path: &YamlPath,
    ) {
        let (_, Source::File(f)) = found else { return };
        if self.allow_missing {
            return;
        }
        let abs = if Path::new(f).is_absolute() {
            PathBuf::from(f)
        } else {
            self.root.join(f)
        };
        let Ok(meta) = std::fs::metadata(&abs) else {
            return;
        };
        if meta.is_dir() {
            return;
        }
        if let Err(e) = crate::hash::regular_file(Path::new(f), &meta) {
            self.push(
                "unreadable_input",
                path,
                Part::Value,
                format!("stage `{}` depends on `{f}`: {e}", stage.id),
                "not a regular file",
                Some("depend on a regular file or a folder".into()),
            );
        }
    }

    /// Reports a `stage.port` reference to a stage that has no such output.
    fn unknown_port(
        &mut self,
        stage: &Draft<'_>,
        raw: &str,
        path: &YamlPath,
        target: &Draft<'_>,
        port: &str,
    ) {
        let names: Vec<&str> = target.outputs.iter().map(|o| o.name.as_str()).collect();
        let mut help = did_you_mean(port, &names);
        if help.is_empty() {
            help = if names.is_empty() {
                format!("stage `{}` declares no outputs", target.id)
            } else {
                format!("stage `{}` has outputs: {}", target.id, names.join(", "))
            };
            help.push_str(&format!(
                "; if `{raw}` is meant as a file, it does not exist"
            ));
        }
        self.push(
            "unknown_port",
            path,
            Part::Value,
            format!(
                "stage `{}` has no output `{port}` (referenced by stage `{}`)",
                target.id, stage.id
            ),
            "unknown output",
            Some(help),
        );
    }

    /// Reports a dep that is neither a file nor another stage's output,
    /// with the closest reference or output path as help.
    /// True when `raw` reads as a missing file (not a mistyped reference).
    fn missing_input(
        &mut self,
        stage: &Draft<'_>,
        raw: &str,
        path: &YamlPath,
        drafts: &[Draft<'_>],
        ids: &HashMap<&str, usize>,
    ) -> bool {
        let mut refs: Vec<String> = drafts
            .iter()
            .filter(|d| d.id != stage.id)
            .flat_map(|d| {
                d.outputs
                    .iter()
                    .flat_map(move |o| [format!("{}.{}", d.id, o.name), o.path.clone()])
            })
            .collect();
        refs.extend(paths_near(&self.root, raw));
        let mut help = did_you_mean(raw, &refs);
        if help.is_empty() {
            help = "create the file, or refer to another stage's output as `stage.port` or by its path".into();
        }
        // `trian.model` (close to a stage name) reads as a mistyped
        // reference; `missing.csv` as a missing file.
        let near_stage = raw
            .split_once('.')
            .filter(|_| !raw.contains('/'))
            .filter(|(sid, _)| !ids.contains_key(sid))
            .and_then(|(sid, _)| {
                crate::suggest::closest(sid, drafts.iter().map(|d| d.id.as_str())).map(|_| sid)
            });
        let message = if let Some(sid) = near_stage {
            format!(
                "stage `{}` depends on `{raw}`: there is no such file, and no stage named `{sid}`",
                stage.id
            )
        } else if std::fs::symlink_metadata(self.root.join(raw)).is_ok() {
            format!(
                "stage `{}` depends on `{raw}`, a symlink that points nowhere (or to itself)",
                stage.id
            )
        } else {
            format!("stage `{}` depends on missing file `{raw}`", stage.id)
        };
        self.push(
            "missing_input",
            path,
            Part::Value,
            message,
            "not found",
            Some(help),
        );
        near_stage.is_none()
    }
}

/// Paths on disk near `raw` (a missing path), for "did you mean": the
/// entries of its nearest existing folder and of that folder's
/// sub-folders, as relative paths (folders with a trailing `/` when `raw`
/// has one). Bounded, so a huge folder costs little.
fn paths_near(root: &Path, raw: &str) -> Vec<String> {
    const MAX: usize = 2000;
    let Some(norm) = normalize_any(raw).filter(|n| !n.starts_with('/') && !n.starts_with(".."))
    else {
        return Vec::new();
    };
    let slash = raw.ends_with('/');
    let mut base = Path::new(&norm)
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    while !base.as_os_str().is_empty() && !root.join(&base).is_dir() {
        base = base.parent().map(Path::to_path_buf).unwrap_or_default();
    }
    let mut out = Vec::new();
    let mut dirs = vec![(base, 0)];
    while let Some((dir, depth)) = dirs.pop() {
        let Ok(rd) = std::fs::read_dir(root.join(&dir)) else {
            continue;
        };
        for e in rd.flatten().take(MAX) {
            let Some(name) = e.file_name().to_str().map(str::to_string) else {
                continue;
            };
            if name.starts_with('.') {
                continue;
            }
            let rel = dir.join(&name).to_string_lossy().into_owned();
            let is_dir = e.file_type().is_ok_and(|t| t.is_dir());
            if is_dir && depth < 2 {
                dirs.push((dir.join(&name), depth + 1));
            }
            out.push(if is_dir && slash {
                format!("{rel}/")
            } else {
                rel
            });
            if out.len() >= MAX {
                return out;
            }
        }
    }
    out
}

/// Looks `raw` up as a `stage.port` reference: the stage and output it
/// names, or, for a known stage without that output, the stage and the
/// port asked for.
#[allow(clippy::type_complexity)]
fn find_ref<'r>(
    raw: &'r str,
    drafts: &[Draft<'_>],
    ids: &HashMap<&str, usize>,
) -> (Option<(usize, usize)>, Option<(usize, &'r str)>) {
    let mut unknown_port: Option<(usize, &str)> = None;
    // A stage name may hold a `.` after `@` (`train@0.01`): the stage is
    // the longest prefix before a `.` that names one.
    let split = raw
        .rmatch_indices('.')
        .map(|(i, _)| (&raw[..i], &raw[i + 1..]))
        .find(|(sid, _)| ids.contains_key(sid));
    let as_ref = split.and_then(|(sid, port)| {
        let &si = ids.get(sid)?;
        match drafts[si].outputs.iter().position(|o| o.name == port) {
            Some(oi) => Some((si, oi)),
            None => {
                unknown_port = Some((si, port));
                None
            }
        }
    });
    (as_ref, unknown_port)
}

impl Validator<'_> {
    /// Refuses a dep on mlcycle's own state (`mlcycle.lock`, `.mlcycle/`)
    /// or on a folder holding the workspace (`..`): mlcycle rewrites them
    /// on every run, so the stage would never be fresh. The workspace
    /// itself (`.`) is fine: its own state is left out of its hash.
    pub(super) fn refuse_own_state(
        &mut self,
        stage: &str,
        rel: &str,
        path: &YamlPath,
        part: Part,
    ) -> bool {
        let rel = rel.trim_end_matches('/');
        let own = rel != crate::config::PIPELINE_FILE && crate::config::owned_by_mlcycle(rel);
        let holds_workspace = (rel == ".." || rel.starts_with("../") || rel.starts_with('/'))
            && self
                .root
                .join(rel)
                .canonicalize()
                .is_ok_and(|p| self.root.starts_with(&p));
        if !own && !holds_workspace {
            return false;
        }
        let what = if own {
            format!("`{rel}`, which mlcycle rewrites on every run")
        } else {
            format!("`{rel}`, a folder holding the workspace, whose lock and state mlcycle rewrites on every run")
        };
        self.push(
            "dep_path",
            path,
            part,
            format!("stage `{stage}` depends on {what}: the stage would never be fresh"),
            "mlcycle's own state",
            Some("depend on the stage outputs (or params) the stage reads instead".into()),
        );
        true
    }
}
