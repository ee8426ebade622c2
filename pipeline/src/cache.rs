//! The content-addressed object store under `.mlcycle/cache/`.
//!
//! Objects are files named by the BLAKE3 hash of their content. They are
//! written to a temp file, fsynced and renamed into place, so a reader never
//! sees a partial object. Restoring an object re-hashes the bytes it copies
//! and refuses them if they do not match. Folders are stored as a manifest
//! object (sorted relative paths with their hashes) plus one object per file.

use foldhash::HashSet;
use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

use crate::hash::Digest;

/// The BLAKE3 hash (hex) the engine gives a file's content: read in pieces,
/// each large piece hashed on all cores; an error when the file changes
/// while it is read.
pub use crate::hash::hash_file;

/// A stored output: a file or a folder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutRecord {
    /// Content hash: the file's, or the folder manifest's.
    pub hash: Digest,
    /// Total size in bytes.
    pub size: u64,
    /// Present (and true) for folders.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub dir: bool,
    /// Present (and true) for executable files.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub exec: bool,
}

/// One file of a folder manifest, or one empty sub-folder (its path ends
/// with `/`, its hash is empty): a folder is restored with its empty
/// sub-folders, which a stage may have made on purpose.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestEntry {
    /// The path inside the folder, `/`-separated (lossy for a name that is
    /// not UTF-8: `raw` then holds its bytes).
    pub path: String,
    pub hash: Digest,
    pub size: u64,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub exec: bool,
    /// The path's bytes, when they are not UTF-8: restored byte for byte
    /// (two Latin-1 names must not collapse into one `caf\u{FFFD}.txt`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw: Option<Vec<u8>>,
}

impl ManifestEntry {
    /// The entry of an empty sub-folder at `rel`.
    pub fn empty_dir(rel: &str) -> Self {
        ManifestEntry {
            path: format!("{rel}/"),
            hash: Digest::new(),
            size: 0,
            exec: false,
            raw: None,
        }
    }

    /// Whether this is an empty sub-folder, not a file.
    pub fn is_dir(&self) -> bool {
        self.path.ends_with('/')
    }

    /// Where the entry goes under `dest`, byte for byte.
    pub fn dest(&self, dest: &Path) -> PathBuf {
        use std::os::unix::ffi::OsStrExt;
        match &self.raw {
            Some(raw) => dest.join(std::ffi::OsStr::from_bytes(raw)),
            None => dest.join(&self.path),
        }
    }

    /// The bytes of `abs` relative to `dir`, when they are not UTF-8.
    pub fn raw_of(dir: &Path, abs: &Path) -> Option<Vec<u8>> {
        use std::os::unix::ffi::OsStrExt;
        let rel = abs.strip_prefix(dir).ok()?.as_os_str();
        rel.to_str().is_none().then(|| rel.as_bytes().to_vec())
    }
}

/// The object store.
#[derive(Debug, Clone)]
pub struct Cache {
    root: PathBuf,
}

/// A stored object failed verification.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[error("cache object {hash} is corrupt (its content hashes to {actual}); it was removed")]
#[diagnostic(code(mlcycle::cache::corrupt))]
pub struct Corrupt {
    pub hash: Digest,
    pub actual: Digest,
}

static TMP_SEQ: AtomicU64 = AtomicU64::new(0);

impl Cache {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn object_path(&self, hash: &str) -> PathBuf {
        let (a, b) = hash.split_at(2.min(hash.len()));
        self.root.join("objects").join(a).join(b)
    }

    pub fn has(&self, hash: &str) -> bool {
        self.object_path(hash).exists()
    }

    /// A temp file name of this process: `host-pid-seq`, so that writers on
    /// several machines sharing the cache (a Slurm cluster's volume, two
    /// workspaces with one `cache_dir:`) never take each other's names, and
    /// [`Self::clean_tmp`] can tell whose a file is.
    /// A fresh path in the cache's temp folder for a restore or a
    /// built-in stage's outputs to be put together before they are moved
    /// into the workspace (same file system as the cache: no copy). Named
    /// like every temp file (`host-pid-…`, so [`Cache::clean_tmp`] removes
    /// it once its process is gone) with a random part no one can guess.
    pub fn staging_path(&self) -> PathBuf {
        let n = TMP_SEQ.fetch_add(1, Ordering::Relaxed);
        self.root.join("tmp").join(format!(
            "{}-{}-stage{n}x{:016x}",
            host_name(),
            std::process::id(),
            nonce()
        ))
    }

    /// A temp file's path: `host-pid-seq` (what [`Cache::clean_tmp`]
    /// reads) and a random part, so that nothing can be put at the path
    /// beforehand; the file is made with `create_new` (never through a
    /// symlink or over an existing file).
    fn tmp_path(&self) -> PathBuf {
        let n = TMP_SEQ.fetch_add(1, Ordering::Relaxed);
        self.root.join("tmp").join(format!(
            "{}-{}-{n}x{:016x}",
            host_name(),
            std::process::id(),
            nonce()
        ))
    }

    /// Stores the file at `src`, returning its hash and size. The copy is
    /// hashed as it is written, so the object's name always matches its bytes.
    pub fn store_file(&self, src: &Path) -> io::Result<(Digest, u64)> {
        let tmp = self.tmp_path();
        fs::create_dir_all(tmp.parent().expect("tmp has a parent"))?;
        let result = (|| {
            let mut input = File::open(src)?;
            let mut out = File::create_new(&tmp)?;
            let mut hasher = blake3::Hasher::new();
            let mut buf = vec![0u8; 256 * 1024];
            let mut size = 0u64;
            loop {
                let n = input.read(&mut buf)?;
                if n == 0 {
                    break;
                }
                hasher.update(&buf[..n]);
                out.write_all(&buf[..n])?;
                size += n as u64;
            }
            let hash = hasher.finalize().to_hex().to_string();
            let dest = self.object_path(&hash);
            if dest.exists() {
                drop(out);
                let _ = fs::remove_file(&tmp);
                return Ok((hash, size));
            }
            out.sync_all()?;
            drop(out);
            fs::set_permissions(&tmp, fs::Permissions::from_mode(0o444))?;
            fs::create_dir_all(dest.parent().expect("object has a parent"))?;
            fs::rename(&tmp, &dest)?;
            Ok((hash, size))
        })();
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result
    }

    /// Stores bytes (a folder manifest) and returns their hash.
    pub fn store_bytes(&self, bytes: &[u8]) -> io::Result<Digest> {
        let hash = crate::hash::hash_bytes(bytes);
        let dest = self.object_path(&hash);
        if dest.exists() {
            return Ok(hash);
        }
        let tmp = self.tmp_path();
        fs::create_dir_all(tmp.parent().expect("tmp has a parent"))?;
        let mut f = File::create_new(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        fs::set_permissions(&tmp, fs::Permissions::from_mode(0o444))?;
        fs::create_dir_all(dest.parent().expect("object has a parent"))?;
        fs::rename(&tmp, &dest)?;
        Ok(hash)
    }

    /// Stores a folder: each file, then its manifest.
    pub fn store_dir(&self, src: &Path) -> io::Result<OutRecord> {
        let (entries, total) =
            folder_manifest(src, |_| false, |_, abs, _| Ok(self.store_file(abs)?.0))?;
        let manifest = serde_json::to_vec(&entries).map_err(io::Error::other)?;
        let hash = self.store_bytes(&manifest)?;
        Ok(OutRecord {
            hash,
            size: total,
            dir: true,
            exec: false,
        })
    }

    /// Reads and verifies a folder manifest.
    pub fn manifest(&self, hash: &str) -> io::Result<Vec<ManifestEntry>> {
        let bytes = fs::read(self.object_path(hash))?;
        let actual = crate::hash::hash_bytes(&bytes);
        if actual != hash {
            let _ = fs::remove_file(self.object_path(hash));
            return Err(io::Error::other(Corrupt {
                hash: hash.into(),
                actual,
            }));
        }
        serde_json::from_slice(&bytes).map_err(io::Error::other)
    }

    /// Writes object `hash` to `dest` (replacing it), verifying the bytes.
    /// Uses a reflink where the filesystem has them, else a copy; never a
    /// hard or symbolic link, through which an edit would reach the cache.
    ///
    /// The copy is made in the cache's temp folder (named after this
    /// process, so [`Self::clean_tmp`] removes what a kill leaves) and
    /// renamed into place: a killed restore never leaves a file beside the
    /// output, where a folder dep would see it. Only when the cache is on
    /// another file system is the copy made beside `dest`.
    pub fn restore_file(&self, hash: &str, dest: &Path, exec: bool) -> io::Result<()> {
        let parent = dest.parent().unwrap_or(Path::new("."));
        fs::create_dir_all(parent)?;
        let tmp = self.tmp_path();
        fs::create_dir_all(tmp.parent().expect("tmp has a parent"))?;
        match self.copy_verified(hash, &tmp, exec, dest) {
            Err(e) if e.kind() == io::ErrorKind::CrossesDevices => {
                let beside = parent.join(format!(
                    ".{}.mlcycle-tmp-{}-{}x{:016x}",
                    dest.file_name()
                        .map(|n| n.to_string_lossy())
                        .unwrap_or_default(),
                    std::process::id(),
                    TMP_SEQ.fetch_add(1, Ordering::Relaxed),
                    nonce()
                ));
                self.copy_verified(hash, &beside, exec, dest)
            }
            r => r,
        }
    }

    /// Copies object `hash` to `tmp`, checks its bytes, and renames it to
    /// `dest`; `tmp` is gone afterwards either way.
    fn copy_verified(&self, hash: &str, tmp: &Path, exec: bool, dest: &Path) -> io::Result<()> {
        let obj = self.object_path(hash);
        let result = (|| {
            reflink_copy::reflink_or_copy(&obj, tmp)?;
            let actual = hash_file(tmp)?;
            if actual != hash {
                let _ = fs::remove_file(&obj);
                return Err(io::Error::other(Corrupt {
                    hash: hash.into(),
                    actual,
                }));
            }
            fs::set_permissions(
                tmp,
                fs::Permissions::from_mode(if exec { 0o755 } else { 0o644 }),
            )?;
            if dest.is_dir() {
                fs::remove_dir_all(dest)?;
            }
            fs::rename(tmp, dest)
        })();
        if result.is_err() {
            let _ = fs::remove_file(tmp);
        }
        result
    }

    /// Restores a stored output (file or folder) at `dest`.
    pub fn restore(&self, rec: &OutRecord, dest: &Path) -> io::Result<()> {
        if !rec.dir {
            return self.restore_file(&rec.hash, dest, rec.exec);
        }
        let entries = self.manifest(&rec.hash)?;
        if dest.exists() {
            if dest.is_dir() {
                fs::remove_dir_all(dest)?;
            } else {
                fs::remove_file(dest)?;
            }
        }
        fs::create_dir_all(dest)?;
        for e in entries {
            if e.is_dir() {
                fs::create_dir_all(e.dest(dest))?;
            } else {
                self.restore_file(&e.hash, &e.dest(dest), e.exec)?;
            }
        }
        Ok(())
    }

    /// Whether every object an output needs is present.
    pub fn has_output(&self, rec: &OutRecord) -> bool {
        if !self.has(&rec.hash) {
            return false;
        }
        if !rec.dir {
            return true;
        }
        match self.manifest(&rec.hash) {
            Ok(entries) => entries.iter().all(|e| e.is_dir() || self.has(&e.hash)),
            Err(_) => false,
        }
    }

    /// The objects an output refers to (itself and, for folders, its files).
    pub fn referenced(&self, rec: &OutRecord, into: &mut HashSet<Digest>) {
        into.insert(rec.hash.clone());
        if rec.dir {
            if let Ok(entries) = self.manifest(&rec.hash) {
                into.extend(entries.into_iter().filter(|e| !e.is_dir()).map(|e| e.hash));
            }
        }
    }

    /// Every object in the store, with its size.
    pub fn objects(&self) -> io::Result<BTreeMap<Digest, u64>> {
        let mut out = BTreeMap::new();
        let dir = self.root.join("objects");
        let Ok(rd) = fs::read_dir(&dir) else {
            return Ok(out);
        };
        for prefix in rd {
            let prefix = prefix?;
            let p = prefix.file_name().to_string_lossy().into_owned();
            for obj in fs::read_dir(prefix.path())? {
                let obj = obj?;
                let size = obj.metadata().map(|m| m.len()).unwrap_or(0);
                out.insert(format!("{p}{}", obj.file_name().to_string_lossy()), size);
            }
        }
        Ok(out)
    }

    /// Deletes one object.
    pub fn remove(&self, hash: &str) -> io::Result<()> {
        fs::remove_file(self.object_path(hash))
    }

    /// Deletes temp files left by killed writers, and only those: a file of
    /// this host whose process is gone, or one of another host (or of an
    /// older name) untouched for a day. A writer that is still running,
    /// here or on another machine sharing the cache, keeps its files.
    pub fn clean_tmp(&self) -> io::Result<usize> {
        const ABANDONED: std::time::Duration = std::time::Duration::from_secs(24 * 3600);
        let dir = self.root.join("tmp");
        let host = host_name();
        let mut n = 0;
        if let Ok(rd) = fs::read_dir(&dir) {
            for e in rd.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                let mut parts = name.rsplitn(3, '-');
                let (_seq, pid, owner) = (parts.next(), parts.next(), parts.next());
                let stale = match (owner, pid.and_then(|p| p.parse::<i32>().ok())) {
                    (Some(owner), Some(pid)) if owner == host => !process_alive(pid),
                    _ => e
                        .metadata()
                        .and_then(|m| m.modified())
                        .ok()
                        .and_then(|t| t.elapsed().ok())
                        .is_some_and(|age| age > ABANDONED),
                };
                if !stale {
                    continue;
                }
                // Staging folders (see `staging_path`) are folders.
                let path = e.path();
                let removed = match e.file_type() {
                    Ok(t) if t.is_dir() => fs::remove_dir_all(&path),
                    _ => fs::remove_file(&path),
                };
                if removed.is_ok() {
                    n += 1;
                }
            }
        }
        Ok(n)
    }
}

/// This machine's name, with `-` (the temp-name separator) and anything
/// but letters, digits, `.` and `_` replaced.
fn host_name() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most `buf.len()` bytes into the buffer
    // it is given, which lives for the call.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    let raw = if rc == 0 {
        let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
        String::from_utf8_lossy(&buf[..end]).into_owned()
    } else {
        String::new()
    };
    let name: String = raw
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if name.is_empty() {
        "localhost".into()
    } else {
        name
    }
}

/// 64 random bits from the standard library's hasher seeds (drawn from
/// the OS), for temp names no one can guess.
fn nonce() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(TMP_SEQ.load(Ordering::Relaxed));
    h.finish()
}

/// Whether process `pid` exists on this machine.
fn process_alive(pid: i32) -> bool {
    // SAFETY: signal 0 checks for the process without sending anything.
    let rc = unsafe { libc::kill(pid, 0) };
    rc == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// A folder's manifest: an entry per regular file (its content hash from
/// `hash`, given the relative path, the file and its metadata), then one
/// per empty sub-folder; and the files' total size. Entries whose relative
/// path `skip` refuses (a sub-folder's with a trailing `/`) are left out.
///
/// The one builder behind both a stored folder and a folder's hash in a
/// fingerprint, so the two agree byte for byte.
pub fn folder_manifest(
    dir: &Path,
    skip: impl Fn(&str) -> bool,
    mut hash: impl FnMut(&str, &Path, &fs::Metadata) -> io::Result<Digest>,
) -> io::Result<(Vec<ManifestEntry>, u64)> {
    let (files, empty) = walk_tree(dir)?;
    let mut entries = Vec::with_capacity(files.len() + empty.len());
    let mut total = 0;
    for (rel, abs) in files {
        if skip(&rel) {
            continue;
        }
        let m = fs::metadata(&abs)?;
        let h = hash(&rel, &abs, &m)?;
        total += m.len();
        entries.push(ManifestEntry {
            raw: ManifestEntry::raw_of(dir, &abs),
            path: rel,
            hash: h,
            size: m.len(),
            exec: m.permissions().mode() & 0o111 != 0,
        });
    }
    entries.extend(
        empty
            .iter()
            .map(|(d, abs)| ManifestEntry {
                raw: ManifestEntry::raw_of(dir, abs),
                ..ManifestEntry::empty_dir(d)
            })
            .filter(|e| !skip(&e.path)),
    );
    Ok((entries, total))
}

/// Every regular file under `dir`, as (relative `/` path, absolute path), sorted.
pub fn walk_files(dir: &Path) -> io::Result<Vec<(String, PathBuf)>> {
    Ok(walk_tree(dir)?.0)
}

/// A file found by a walk: its relative `/` path and its absolute path.
type FileAt = (String, PathBuf);

/// In one walk of `dir`: every regular file, as (relative `/` path,
/// absolute path), and every empty folder (holding nothing at all), the
/// same way; both sorted. Anything else inside (a symlink, a named pipe)
/// is an error.
fn walk_tree(dir: &Path) -> io::Result<(Vec<FileAt>, Vec<FileAt>)> {
    let mut files = Vec::new();
    let mut empty = Vec::new();
    let mut stack = vec![(String::new(), dir.to_path_buf())];
    while let Some((rel, abs)) = stack.pop() {
        let mut entries = 0;
        for e in fs::read_dir(&abs)? {
            let e = e?;
            entries += 1;
            let name = e.file_name().to_string_lossy().into_owned();
            let r = if rel.is_empty() {
                name
            } else {
                format!("{rel}/{name}")
            };
            let ft = e.file_type()?;
            if ft.is_dir() {
                stack.push((r, e.path()));
            } else if ft.is_file() {
                files.push((r, e.path()));
            } else {
                // A symlink, named pipe, socket or device: none holds bytes
                // that can be hashed and stored, and leaving it out would
                // call a folder fresh or restored while it lacks an entry.
                return Err(io::Error::other(format!(
                    "folder {} holds {} ({r}); mlcycle hashes and stores regular files and folders only",
                    dir.display(),
                    crate::hash::kind_of(&ft)
                )));
            }
        }
        if entries == 0 && !rel.is_empty() {
            empty.push((rel, abs));
        }
    }
    files.sort();
    empty.sort();
    Ok((files, empty))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_tmp_keeps_live_writers_files() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(dir.path().to_path_buf());
        let tmp = dir.path().join("tmp");
        fs::create_dir_all(&tmp).unwrap();
        let host = host_name();
        // This process is alive; a finished child is not.
        let live = tmp.join(format!("{host}-{}-0", std::process::id()));
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead_pid = child.id();
        child.wait().unwrap();
        let dead = tmp.join(format!("{host}-{dead_pid}-0"));
        let other_host = tmp.join(format!("{host}x-{}-0", std::process::id()));
        for f in [&live, &dead, &other_host] {
            fs::write(f, b"x").unwrap();
        }
        assert_eq!(cache.clean_tmp().unwrap(), 1);
        assert!(live.exists() && other_host.exists() && !dead.exists());
    }

    /// Staging folders follow the same rule: a running process's (a
    /// detached Slurm job's, another host's) stay; a killed one's go.
    /// Before, every run removed every staging folder, and a job running
    /// on another node lost the outputs it was writing.
    #[test]
    fn clean_tmp_removes_only_dead_staging_folders() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(dir.path().to_path_buf());
        let mine = cache.staging_path();
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead_pid = child.id();
        child.wait().unwrap();
        let name = mine.file_name().unwrap().to_string_lossy().into_owned();
        let dead = mine.with_file_name(name.replacen(
            &format!("-{}-", std::process::id()),
            &format!("-{dead_pid}-"),
            1,
        ));
        let other = mine.with_file_name(format!("node7-1-stage0x{:016x}", 7));
        for d in [&mine, &dead, &other] {
            fs::create_dir_all(d.join("0")).unwrap();
            fs::write(d.join("0/model.json"), "{}").unwrap();
        }
        assert_ne!(mine, dead);
        assert_eq!(cache.clean_tmp().unwrap(), 1);
        assert!(mine.exists() && other.exists() && !dead.exists());
        assert_ne!(cache.staging_path(), cache.staging_path());
    }

    #[test]
    fn store_and_restore_roundtrip() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(dir.path().join("cache"));
        let src = dir.path().join("a.txt");
        fs::write(&src, "hello").unwrap();
        let (h, size) = cache.store_file(&src).unwrap();
        assert_eq!(size, 5);
        assert_eq!(h, crate::hash::hash_bytes(b"hello"));
        let dest = dir.path().join("out/b.txt");
        cache.restore_file(&h, &dest, false).unwrap();
        assert_eq!(fs::read_to_string(&dest).unwrap(), "hello");
        // The restored file is a separate copy: editing it leaves the cache intact.
        fs::write(&dest, "edited").unwrap();
        assert_eq!(fs::read_to_string(cache.object_path(&h)).unwrap(), "hello");
    }

    #[test]
    fn corrupt_object_is_refused_and_removed() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(dir.path().join("cache"));
        let src = dir.path().join("a.txt");
        fs::write(&src, "hello").unwrap();
        let (h, _) = cache.store_file(&src).unwrap();
        let obj = cache.object_path(&h);
        fs::set_permissions(&obj, fs::Permissions::from_mode(0o644)).unwrap();
        fs::write(&obj, "tampered").unwrap();
        let err = cache
            .restore_file(&h, &dir.path().join("x"), false)
            .unwrap_err();
        assert!(err.to_string().contains("corrupt"), "{err}");
        assert!(!obj.exists());
        assert!(!dir.path().join("x").exists());
    }

    #[test]
    fn folders_roundtrip() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(dir.path().join("cache"));
        let src = dir.path().join("d");
        fs::create_dir_all(src.join("sub")).unwrap();
        fs::write(src.join("a"), "1").unwrap();
        fs::write(src.join("sub/b"), "2").unwrap();
        let rec = cache.store_dir(&src).unwrap();
        assert!(rec.dir);
        let dest = dir.path().join("e");
        cache.restore(&rec, &dest).unwrap();
        assert_eq!(fs::read_to_string(dest.join("sub/b")).unwrap(), "2");
        assert_eq!(cache.store_dir(&dest).unwrap(), rec);
    }
}
