//! Finding the workspace, the same way for every command.
//!
//! In order: `-C DIR`; else a first positional argument that is a folder
//! holding `mlcycle.yaml` (or a `.yaml` file); else the nearest folder,
//! from the current one upward, that holds `mlcycle.yaml` (as git and DVC
//! find their repository). A first argument with a `/` that is neither is
//! reported as "not a workspace" rather than taken as a stage name.

use std::path::{Path, PathBuf};

use mlcycle_pipeline::config::PIPELINE_FILE;

use crate::error::{CliError, Fail};

/// The pipeline file and the arguments left after the workspace.
pub struct Located {
    pub file: PathBuf,
    pub rest: Vec<String>,
}

impl Located {
    /// The workspace root (the folder of the pipeline file).
    pub fn root(&self) -> PathBuf {
        match self.file.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        }
    }
}

/// Locates the workspace from `-C` (`dir`) and the positional `args`.
pub fn locate(dir: Option<&Path>, args: &[String]) -> Result<Located, Fail> {
    let base = |a: &str| match dir {
        Some(d) => d.join(a),
        None => PathBuf::from(a),
    };
    if let Some(first) = args.first() {
        let p = base(first);
        let rest = args[1..].to_vec();
        if p.join(PIPELINE_FILE).is_file() {
            return Ok(Located {
                file: p.join(PIPELINE_FILE),
                rest,
            });
        }
        if p.is_file() && (first.ends_with(".yaml") || first.ends_with(".yml")) {
            return Ok(Located { file: p, rest });
        }
        if first.contains('/') {
            // Stage names have no `/`: this was meant as a workspace.
            return Err(not_a_workspace(first, &p));
        }
    }
    if let Some(d) = dir {
        // `-C` names a folder that must exist: never fall back to the
        // workspace around the current folder (`-C typo run --force`).
        if !d.is_dir() {
            return Err(CliError::BadDir {
                dir: d.display().to_string(),
                what: if d.exists() {
                    "it is not a folder"
                } else {
                    "there is no such folder"
                },
            }
            .into());
        }
    }
    let start = dir.map_or_else(|| PathBuf::from("."), Path::to_path_buf);
    match find_upward(&start) {
        Some(file) => Ok(Located {
            file,
            rest: args.to_vec(),
        }),
        None => {
            // `mlcycle run examples/chian`-like: the first argument names a
            // folder, so it was meant as a workspace; say what is wrong with
            // it rather than with `.`.
            if let Some(first) = args.first().filter(|a| start.join(a).is_dir()) {
                return Err(not_a_workspace(first, &start.join(first)));
            }
            Err(CliError::NoPipeline {
                dir: if start == Path::new(".") {
                    "the current folder or any folder above it".into()
                } else {
                    format!("{} or any folder above it", start.display())
                },
            }
            .into())
        }
    }
}

/// The workspace root for commands that take no stage names: their one
/// positional argument can only be a workspace folder, so anything else
/// is an error that names it (relative to `-C`, as it was looked up).
pub fn locate_root(dir: Option<&Path>, arg: Option<&Path>) -> Result<PathBuf, Fail> {
    if let Some(a) = arg {
        let p = match dir {
            Some(d) => d.join(a),
            None => a.to_path_buf(),
        };
        if !p.join(PIPELINE_FILE).is_file() {
            return Err(not_a_workspace(&a.display().to_string(), &p));
        }
        return Ok(p);
    }
    Ok(locate(dir, &[])?.root())
}

/// `start/mlcycle.yaml`, else the same in the nearest folder above.
fn find_upward(start: &Path) -> Option<PathBuf> {
    let here = start.join(PIPELINE_FILE);
    if here.is_file() {
        return Some(here);
    }
    let abs = std::path::absolute(start).ok()?;
    abs.ancestors()
        .skip(1)
        .map(|d| d.join(PIPELINE_FILE))
        .find(|f| f.is_file())
}

pub fn not_a_workspace(arg: &str, p: &Path) -> Fail {
    let what = if p.join(PIPELINE_FILE).is_dir() {
        format!(
            "{} is a folder, not a file",
            p.join(PIPELINE_FILE).display()
        )
    } else if p.is_dir() {
        format!("{} holds no {PIPELINE_FILE}", p.display())
    } else if p.exists() {
        format!("{} is a file, not a folder", p.display())
    } else {
        format!("there is no folder {}", p.display())
    };
    CliError::NotAWorkspace {
        arg: arg.to_string(),
        what,
    }
    .into()
}
