//! Writes, deletes and renames that stay inside the workspace at the moment
//! they happen.
//!
//! [`super::outputs::check_beneath`] checks a path before the engine acts
//! on it and says what is wrong in the user's words; this module is what
//! makes the act itself safe. A path is resolved one folder at a time from
//! a handle on the workspace root, each step an `openat` with `O_NOFOLLOW`
//! on the folder handle of the step before, as cap-std and `openat2`'s
//! `RESOLVE_BENEATH` do. Symlinks on the way are read and followed by hand
//! only while they stay inside the workspace; the last component is never
//! followed (it is what gets replaced or removed). A folder swapped for a
//! symlink to outside after the check, by a stage running beside this
//! one, is found at the step that meets it, and nothing is written through
//! it.

use std::collections::VecDeque;
use std::ffi::OsStr;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use rustix::fs::{AtFlags, FileType, Mode, OFlags, CWD};
use rustix::io::Errno;

/// How many symlinks one path may go through (Linux's own limit).
const MAX_LINKS: usize = 40;

/// A handle on the workspace root through which paths inside it are
/// written.
pub(crate) struct Beneath {
    root: OwnedFd,
    /// The root as the file system names it, to tell an absolute symlink
    /// target inside the workspace from one outside.
    real_root: PathBuf,
}

fn escape(rel: &str, why: impl std::fmt::Display) -> io::Error {
    io::Error::new(
        io::ErrorKind::PermissionDenied,
        format!("`{rel}` {why}; nothing was written through it"),
    )
}

fn dir_flags() -> OFlags {
    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC
}

impl Beneath {
    /// Opens the workspace root.
    pub(crate) fn open(root: &Path) -> io::Result<Self> {
        let real_root = root.canonicalize()?;
        let root = rustix::fs::open(&real_root, dir_flags(), Mode::empty())?;
        Ok(Self { root, real_root })
    }

    /// The folder that holds `rel` (a workspace-relative path), opened
    /// beneath the root, and `rel`'s last component. With `create`, missing
    /// folders on the way are made.
    ///
    /// # Errors
    /// `PermissionDenied` when the way leads out of the workspace (a
    /// symlink to outside, or `..` above the root), `NotADirectory` when a
    /// file stands where a folder must be, `NotFound` when a folder is
    /// missing and `create` is false.
    pub(crate) fn parent(&self, rel: &str, create: bool) -> io::Result<(OwnedFd, String)> {
        let rel = rel.trim_end_matches('/');
        let (dir, name) = match rel.rsplit_once('/') {
            Some((dir, name)) => (dir, name),
            None => ("", rel),
        };
        if name.is_empty() || name == "." || name == ".." {
            return Err(escape(rel, "does not name a file or folder"));
        }
        let fd = self.folder(rel, dir, create)?;
        Ok((fd, name.to_string()))
    }

    /// Opens folder `dir` (relative to the root) one component at a time.
    fn folder(&self, rel: &str, dir: &str, create: bool) -> io::Result<OwnedFd> {
        // The handles of the folders walked so far: `..` steps back one.
        let mut stack: Vec<OwnedFd> = vec![self.root.try_clone()?];
        let mut todo: VecDeque<Vec<u8>> = dir
            .split('/')
            .filter(|c| !c.is_empty())
            .map(|c| c.as_bytes().to_vec())
            .collect();
        let mut links = 0;
        while let Some(c) = todo.pop_front() {
            match c.as_slice() {
                b"." => continue,
                b".." => {
                    if stack.len() == 1 {
                        return Err(escape(rel, "leads above the workspace root"));
                    }
                    stack.pop();
                    continue;
                }
                _ => {}
            }
            let here = stack.last().expect("the root is never popped");
            let name = OsStr::from_bytes(&c);
            match rustix::fs::openat(here, name, dir_flags(), Mode::empty()) {
                Ok(fd) => {
                    stack.push(fd);
                    continue;
                }
                Err(Errno::NOENT) if create => {
                    match rustix::fs::mkdirat(here, name, Mode::from_raw_mode(0o777)) {
                        Ok(()) | Err(Errno::EXIST) => {}
                        Err(e) => return Err(e.into()),
                    }
                    // Open what is there now (a folder made by someone
                    // else in between is fine; a symlink is followed below).
                    todo.push_front(c);
                    continue;
                }
                Err(Errno::LOOP | Errno::NOTDIR) => {}
                Err(e) => return Err(e.into()),
            }
            // Not a folder: a symlink (followed while it stays inside) or a
            // file in the way.
            let target = match rustix::fs::readlinkat(here, name, Vec::new()) {
                Ok(t) => t.into_bytes(),
                Err(Errno::INVAL) => {
                    return Err(io::Error::new(
                        io::ErrorKind::NotADirectory,
                        format!(
                            "`{rel}` needs `{}` to be a folder, but it is a file",
                            String::from_utf8_lossy(&c)
                        ),
                    ))
                }
                Err(e) => return Err(e.into()),
            };
            links += 1;
            if links > MAX_LINKS {
                return Err(escape(rel, "goes through too many symlinks"));
            }
            let target = Path::new(OsStr::from_bytes(&target));
            let mut parts: Vec<Vec<u8>> = Vec::new();
            if target.is_absolute() {
                let Ok(inside) = target.strip_prefix(&self.real_root) else {
                    return Err(escape(
                        rel,
                        format_args!(
                            "goes through symlink `{}` to {}, outside the workspace",
                            String::from_utf8_lossy(&c),
                            target.display()
                        ),
                    ));
                };
                stack.truncate(1);
                for p in inside.components() {
                    parts.push(p.as_os_str().as_bytes().to_vec());
                }
            } else {
                for p in target.components() {
                    match p {
                        Component::CurDir => {}
                        Component::ParentDir => parts.push(b"..".to_vec()),
                        other => parts.push(other.as_os_str().as_bytes().to_vec()),
                    }
                }
            }
            for p in parts.into_iter().rev() {
                todo.push_front(p);
            }
        }
        Ok(stack.pop().expect("the root is never popped"))
    }

    /// Removes the file, symlink or folder tree at `rel`; a path that is
    /// not there is fine. A symlink is removed, never followed.
    pub(crate) fn remove(&self, rel: &str) -> io::Result<()> {
        let (dir, name) = match self.parent(rel, false) {
            Ok(x) => x,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        };
        remove_at(&dir, name.as_str())
    }

    /// Makes the folders that hold `rel`.
    pub(crate) fn make_parent(&self, rel: &str) -> io::Result<()> {
        self.parent(rel, true).map(drop)
    }

    /// Moves `from` (a path the engine owns, in `.mlcycle/`) to `rel`,
    /// replacing what is there.
    pub(crate) fn publish(&self, from: &Path, rel: &str) -> io::Result<()> {
        // What the engine put together is a file or a folder; a symlink
        // there was put by someone else, and is not moved in.
        if std::fs::symlink_metadata(from)?.file_type().is_symlink() {
            return Err(escape(
                rel,
                "was replaced by a symlink while it was put together",
            ));
        }
        let (dir, name) = self.parent(rel, true)?;
        match rustix::fs::statat(&dir, name.as_str(), AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) if FileType::from_raw_mode(st.st_mode) == FileType::Directory => {
                remove_at(&dir, name.as_str())?;
            }
            // A file or symlink is replaced by the rename itself.
            Ok(_) | Err(Errno::NOENT) => {}
            Err(e) => return Err(e.into()),
        }
        rustix::fs::renameat(CWD, from, &dir, name.as_str()).map_err(Into::into)
    }

    /// Moves what is at `rel` to `to` (a path the engine owns, in
    /// `.mlcycle/`), without following a symlink at `rel`.
    pub(crate) fn take(&self, rel: &str, to: &Path) -> io::Result<()> {
        let (dir, name) = self.parent(rel, false)?;
        rustix::fs::renameat(&dir, name.as_str(), CWD, to).map_err(Into::into)
    }
}

/// Removes `name` in folder `dir`: a folder with everything in it (walked
/// through handles, never through symlinks), or a file or symlink.
fn remove_at(dir: &impl AsFd, name: &str) -> io::Result<()> {
    let st = match rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) => st,
        Err(Errno::NOENT) => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    if FileType::from_raw_mode(st.st_mode) != FileType::Directory {
        return match rustix::fs::unlinkat(dir, name, AtFlags::empty()) {
            Ok(()) | Err(Errno::NOENT) => Ok(()),
            Err(e) => Err(e.into()),
        };
    }
    let sub = rustix::fs::openat(dir, name, dir_flags(), Mode::empty())?;
    let mut names = Vec::new();
    for entry in rustix::fs::Dir::read_from(&sub)? {
        let entry = entry?;
        let n = entry.file_name().to_bytes();
        if n != b"." && n != b".." {
            names.push(OsStr::from_bytes(n).to_os_string());
        }
    }
    for n in names {
        remove_entry(&sub, &n)?;
    }
    match rustix::fs::unlinkat(dir, name, AtFlags::REMOVEDIR) {
        Ok(()) | Err(Errno::NOENT) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

fn remove_entry(dir: &OwnedFd, name: &OsStr) -> io::Result<()> {
    match name.to_str() {
        Some(n) => remove_at(dir, n),
        // Names that are not UTF-8 are removed as well.
        None => {
            let st = rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW)?;
            if FileType::from_raw_mode(st.st_mode) == FileType::Directory {
                // Rename it to a UTF-8 name first, then remove that.
                let tmp = format!(".mlcycle-rm-{}", std::process::id());
                rustix::fs::renameat(dir, name, dir, tmp.as_str())?;
                remove_at(dir, &tmp)
            } else {
                rustix::fs::unlinkat(dir, name, AtFlags::empty()).map_err(Into::into)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::symlink;

    fn setup() -> (tempfile::TempDir, tempfile::TempDir, Beneath) {
        let ws = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let b = Beneath::open(ws.path()).unwrap();
        (ws, outside, b)
    }

    fn staged(ws: &Path, text: &str) -> PathBuf {
        let p = ws.join(".mlcycle-staged");
        fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn publishes_and_makes_the_folders_on_the_way() {
        let (ws, _out, b) = setup();
        let from = staged(ws.path(), "x");
        b.publish(&from, "a/b/c.txt").unwrap();
        assert_eq!(
            fs::read_to_string(ws.path().join("a/b/c.txt")).unwrap(),
            "x"
        );
        assert!(!from.exists());
    }

    #[test]
    fn follows_symlinks_that_stay_inside() {
        let (ws, _out, b) = setup();
        fs::create_dir(ws.path().join("real")).unwrap();
        symlink("real", ws.path().join("rel")).unwrap();
        symlink(ws.path().join("real"), ws.path().join("abs")).unwrap();
        fs::create_dir(ws.path().join("sub")).unwrap();
        symlink("../real", ws.path().join("sub/up")).unwrap();
        for (i, via) in ["rel/x", "abs/x", "sub/up/x"].iter().enumerate() {
            let from = staged(ws.path(), &i.to_string());
            b.publish(&from, via).unwrap();
            assert_eq!(
                fs::read_to_string(ws.path().join("real/x")).unwrap(),
                i.to_string()
            );
        }
    }

    /// The race the check before the act cannot close: the folder is
    /// swapped for a symlink to outside after the check. Nothing lands
    /// outside, and nothing outside is removed.
    #[test]
    fn refuses_every_way_out() {
        let (ws, out, b) = setup();
        fs::write(out.path().join("keep.txt"), "theirs").unwrap();
        symlink(out.path(), ws.path().join("artifacts")).unwrap();
        symlink("../..", ws.path().join("up")).unwrap();
        fs::create_dir(ws.path().join("d")).unwrap();
        symlink(out.path(), ws.path().join("d/link")).unwrap();
        for rel in [
            "artifacts/keep.txt",
            "artifacts/new.txt",
            "up/x.txt",
            "d/link/keep.txt",
            "../x.txt",
        ] {
            let from = staged(ws.path(), "mine");
            let e = b.publish(&from, rel).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::PermissionDenied, "{rel}: {e}");
            assert_eq!(
                b.remove(rel).unwrap_err().kind(),
                io::ErrorKind::PermissionDenied
            );
        }
        assert_eq!(
            fs::read_to_string(out.path().join("keep.txt")).unwrap(),
            "theirs"
        );
        assert!(!out.path().join("new.txt").exists());
    }

    #[test]
    fn removes_a_tree_without_following_its_symlinks() {
        let (ws, out, b) = setup();
        fs::write(out.path().join("keep.txt"), "theirs").unwrap();
        fs::create_dir_all(ws.path().join("t/a/b")).unwrap();
        fs::write(ws.path().join("t/a/b/f"), "x").unwrap();
        symlink(out.path(), ws.path().join("t/a/out")).unwrap();
        b.remove("t").unwrap();
        assert!(!ws.path().join("t").exists());
        assert!(out.path().join("keep.txt").exists());
        // A symlink as the last component is removed, not followed.
        symlink(out.path(), ws.path().join("l")).unwrap();
        b.remove("l").unwrap();
        assert!(fs::symlink_metadata(ws.path().join("l")).is_err());
        assert!(out.path().join("keep.txt").exists());
        b.remove("not/there").unwrap();
    }

    #[test]
    fn a_file_where_a_folder_must_be_is_named() {
        let (ws, _out, b) = setup();
        fs::write(ws.path().join("f"), "x").unwrap();
        let from = staged(ws.path(), "y");
        let e = b.publish(&from, "f/x.txt").unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotADirectory, "{e}");
        assert!(e.to_string().contains("`f`"), "{e}");
    }

    #[test]
    fn a_staged_symlink_is_not_moved_in() {
        let (ws, out, b) = setup();
        fs::write(out.path().join("secret"), "theirs").unwrap();
        let from = ws.path().join(".mlcycle-staged");
        symlink(out.path().join("secret"), &from).unwrap();
        let e = b.publish(&from, "x.txt").unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::PermissionDenied, "{e}");
        assert!(fs::symlink_metadata(ws.path().join("x.txt")).is_err());
    }

    #[test]
    fn takes_without_following_a_symlink() {
        let (ws, out, b) = setup();
        symlink(out.path(), ws.path().join("l")).unwrap();
        let to = ws.path().join(".aside");
        b.take("l", &to).unwrap();
        assert!(fs::symlink_metadata(&to).unwrap().file_type().is_symlink());
        assert!(out.path().exists());
    }
}
