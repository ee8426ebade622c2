//! Path checks: normalizing what stages read and refusing outputs that
//! would land outside the workspace, and the default name of a path.

use foldhash::HashSet;
use std::ffi::OsString;
use std::path::{Component, Path, PathBuf};

/// What path checks learned about the workspace's folders, so that a
/// pipeline of 10 000 outputs in one folder costs one `lstat` per folder,
/// not one per output.
#[derive(Debug, Default)]
pub(crate) struct PathCache {
    /// Folders already found not to be symlinks (by their path's bytes).
    checked: HashSet<OsString>,
}

/// The name a path gets when the user does not name it: its file name
/// without the extension (`data/train.csv` → `train`).
pub(super) fn stem(p: &str) -> String {
    let base = p.trim_end_matches('/').rsplit('/').next().unwrap_or(p);
    match base.find('.') {
        Some(0) | None => base.to_string(),
        Some(i) => base[..i].to_string(),
    }
}

/// Lexically normalizes a dependency path (`./a/../b` → `b`). Absolute paths
/// and paths outside the workspace are allowed for reading.
pub(crate) fn normalize_any(p: &str) -> Option<String> {
    if p.trim().is_empty() {
        return None;
    }
    // Most paths in a pipeline are normal already (`data/train.csv`); they
    // need no parts, no allocation but the copy.
    if !p.starts_with('/') && p.split('/').all(|c| !c.is_empty() && c != "." && c != "..") {
        return Some(p.to_string());
    }
    Some(normalize_components(p))
}

/// [`normalize_any`] by path components, for paths that are not normal.
fn normalize_components(p: &str) -> String {
    let path = Path::new(p);
    let mut parts: Vec<String> = Vec::new();
    let absolute = path.is_absolute();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                if parts.last().is_some_and(|l| l != "..") {
                    parts.pop();
                } else if !absolute {
                    parts.push("..".into());
                }
            }
            Component::Normal(s) => parts.push(s.to_string_lossy().into_owned()),
            Component::RootDir | Component::Prefix(_) => {}
        }
    }
    let joined = parts.join("/");
    if absolute {
        format!("/{joined}")
    } else if joined.is_empty() {
        ".".into()
    } else {
        joined
    }
}

/// Why a walk through a workspace path stopped (see [`walk_links`]).
#[derive(Debug)]
pub(crate) enum LinkStop {
    /// `link` (the path up to it) is a symlink that leads out of the
    /// workspace, to `target`.
    Outside { link: String, target: PathBuf },
    /// `link` is a symlink that points nowhere (or loops).
    Dangling { link: String },
    /// `at` is a file where the path needs a folder.
    NotAFolder { at: String },
}

/// Walks `parts` (components of a relative path) from the canonical
/// `root`, following every symlink that stays inside the workspace. Returns
/// the real path (the components after the first missing one appended as
/// written) and whether a link was followed. `known_dir` skips the check of
/// a prefix already found to be a plain folder; `found_dir` is told of each
/// one found. With `need_dirs`, a file on the way is a [`LinkStop`].
///
/// The one walk behind an output's identity at load time, a dep spelled
/// through a link, and the check made right before every write.
pub(crate) fn walk_links(
    root: &Path,
    parts: &[&str],
    need_dirs: bool,
    known_dir: &mut dyn FnMut(&Path, bool) -> bool,
) -> Result<(PathBuf, bool), LinkStop> {
    let mut cur = root.to_path_buf();
    let mut resolved = false;
    for (k, part) in parts.iter().enumerate() {
        cur.push(part);
        if known_dir(&cur, false) {
            continue;
        }
        let link = || parts[..=k].join("/");
        match std::fs::symlink_metadata(&cur) {
            Ok(m) if m.file_type().is_symlink() => match cur.canonicalize() {
                Ok(target) if target.starts_with(root) => {
                    cur = target;
                    resolved = true;
                }
                Ok(target) => {
                    return Err(LinkStop::Outside {
                        link: link(),
                        target,
                    })
                }
                Err(_) => return Err(LinkStop::Dangling { link: link() }),
            },
            Ok(m) if need_dirs && !m.is_dir() => return Err(LinkStop::NotAFolder { at: link() }),
            Ok(_) => {}
            Err(_) => {
                cur.pop();
                cur.extend(&parts[k..]);
                return Ok((cur, resolved));
            }
        }
        known_dir(&cur, true);
    }
    Ok((cur, resolved))
}

/// Normalizes an output path, refusing anything that would write outside
/// the workspace: absolute paths, `..` escapes, and symlinked folders that
/// lead out of it.
/// `root` must be canonical; `cache` remembers what was found on disk.
pub(crate) fn normalize_output(
    root: &Path,
    p: &str,
    cache: &mut PathCache,
) -> Result<String, String> {
    if p.trim().is_empty() {
        return Err("is empty".into());
    }
    if Path::new(p).is_absolute() {
        return Err("is an absolute path".into());
    }
    let norm = normalize_any(p).ok_or("is empty")?;
    if norm == "." {
        return Err("is the workspace itself".into());
    }
    if norm == ".." || norm.starts_with("../") {
        return Err("is outside the workspace".into());
    }
    if super::super::owned_by_mlcycle(&norm) {
        return Err("is a file mlcycle owns".into());
    }
    // Walk the existing folders on the way: a symlink among them may lead
    // out (refused), or to another folder of the workspace, which is then
    // the output's one identity (`link/x.txt` is `real/x.txt`: two stages
    // must not both write it).
    let parts: Vec<&str> = norm.split('/').collect();
    let checked = &mut cache.checked;
    let mut known = |p: &Path, found: bool| {
        if found {
            checked.insert(p.as_os_str().to_owned());
            false
        } else {
            checked.contains(p.as_os_str())
        }
    };
    let (mut cur, resolved) = match walk_links(root, &parts[..parts.len() - 1], false, &mut known) {
        Ok(x) => x,
        Err(LinkStop::Outside { link, target }) => {
            return Err(format!(
                "goes through symlink `{link}`, which leads outside the workspace (to {})",
                target.display()
            ))
        }
        Err(LinkStop::Dangling { link }) => {
            return Err(format!(
                "goes through symlink `{link}`, which points nowhere"
            ))
        }
        Err(LinkStop::NotAFolder { .. }) => unreachable!("folders are not required here"),
    };
    // The output itself is never followed: a symlink there (left by the
    // user) is moved aside and replaced by the stage's output. Following
    // it would make its target (a source file, another stage's output) the
    // output, to be cleared before the stage runs.
    cur.push(parts[parts.len() - 1]);
    if !resolved {
        return Ok(norm);
    }
    let real = cur
        .strip_prefix(root)
        .unwrap_or(&cur)
        .to_string_lossy()
        .into_owned();
    if super::super::owned_by_mlcycle(&real) {
        return Err(format!(
            "leads through a symlink to `{real}`, a file mlcycle owns"
        ));
    }
    Ok(real)
}

/// The path `norm` (relative to the canonical `root`) with every symlink
/// on it that stays inside the workspace resolved, when one does: the one
/// identity of a path spelled through a link. `None` when nothing changes,
/// or when a link leads outside the workspace or nowhere (the path is then
/// read as written).
pub(crate) fn resolve_links(root: &Path, norm: &str) -> Option<String> {
    if norm.starts_with('/') || norm == "." || norm == ".." || norm.starts_with("../") {
        return None;
    }
    let parts: Vec<&str> = norm.trim_end_matches('/').split('/').collect();
    let (cur, resolved) = walk_links(root, &parts, false, &mut |_, _| false).ok()?;
    if !resolved {
        return None;
    }
    let rel = cur.strip_prefix(root).ok()?.to_str()?.to_string();
    Some(if rel.is_empty() { ".".into() } else { rel })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stems() {
        assert_eq!(stem("data/train.csv"), "train");
        assert_eq!(stem("out/features/"), "features");
        assert_eq!(stem(".env"), ".env");
    }

    #[test]
    fn normalizes_paths() {
        assert_eq!(normalize_any("./a/../b/c.txt").unwrap(), "b/c.txt");
        assert_eq!(normalize_any("../x").unwrap(), "../x");
        assert_eq!(normalize_any("/abs/./p").unwrap(), "/abs/p");
    }

    #[test]
    fn the_fast_path_agrees_with_the_component_walk() {
        for p in [
            "a",
            "a/b",
            "a/b.txt",
            "a b/c",
            "a//b",
            "a/",
            "./a",
            "a/.",
            "a/..",
            "..",
            ".",
            "/a",
            "a/./b",
            "a/../b",
            "...",
            ".a/b",
            "a/.b",
            "x/../../y",
            "é/ü",
        ] {
            assert_eq!(normalize_any(p).unwrap(), normalize_components(p), "{p:?}");
        }
    }

    #[test]
    fn refuses_outputs_outside() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        let mut c = PathCache::default();
        assert!(normalize_output(&root, "../x", &mut c).is_err());
        assert!(normalize_output(&root, "a/../../x", &mut c).is_err());
        assert!(normalize_output(&root, "/etc/passwd", &mut c).is_err());
        assert_eq!(normalize_output(&root, "a/./b", &mut c).unwrap(), "a/b");
        let outside = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(outside.path(), root.join("link")).unwrap();
        let e = normalize_output(&root, "link/x", &mut c).unwrap_err();
        assert!(e.contains("symlink"), "{e}");
    }

    #[test]
    fn links_inside_the_workspace_are_resolved() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        std::fs::create_dir_all(root.join("real/sub")).unwrap();
        std::os::unix::fs::symlink("real", root.join("link")).unwrap();
        std::os::unix::fs::symlink("..", root.join("real/sub/up")).unwrap();
        let mut c = PathCache::default();
        assert_eq!(normalize_output(&root, "link/x", &mut c).unwrap(), "real/x");
        assert_eq!(
            normalize_output(&root, "link/new/x", &mut c).unwrap(),
            "real/new/x"
        );
        assert_eq!(
            normalize_output(&root, "real/sub/up/y", &mut c).unwrap(),
            "real/y"
        );
        assert_eq!(
            normalize_output(&root, "plain/x", &mut c).unwrap(),
            "plain/x"
        );
        assert_eq!(
            resolve_links(&root, "link/x.txt").as_deref(),
            Some("real/x.txt")
        );
        assert_eq!(resolve_links(&root, "link").as_deref(), Some("real"));
        assert_eq!(resolve_links(&root, "real/x.txt"), None);
        let outside = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(outside.path(), root.join("out")).unwrap();
        assert_eq!(resolve_links(&root, "out/x"), None);
    }
}
