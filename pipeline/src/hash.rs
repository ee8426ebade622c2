//! Content hashing (BLAKE3) and the file-hash memo.
//!
//! Large files are hashed on all cores. The memo maps a path to the stamp
//! (size, mtime, ctime, inode, device) it had when it was last hashed, so an
//! untouched file is never read again.

use foldhash::HashMap;
use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// Files are read in pieces of this size; each piece of a large file is
/// hashed on all cores.
const PIECE: usize = 8 << 20;

/// Pieces at least this large are hashed on several threads.
const PARALLEL_THRESHOLD: usize = 1 << 20;

/// A content hash, as 64 lowercase hex digits.
pub type Digest = String;

/// Hashes a file's content.
///
/// The file is read, not memory-mapped: a mapped file that another process
/// truncates while it is hashed kills the reader with SIGBUS. A file whose
/// size, mtime or ctime differs after the read from before it changed while
/// it was read; that is an error (`ErrorKind::Interrupted` is not used, as
/// callers must not retry blindly), and the caller treats the file as
/// unreadable for now.
///
/// One change is read again instead: a file that only grew (the same
/// inode, a larger size) is a log being appended to, such as the
/// served-rows log of a running `mlcycle serve`. It is re-read up to
/// [`GROWTH_RETRIES`] times, and a read that sees no change is a
/// consistent snapshot of it.
pub fn hash_file(path: &Path) -> io::Result<Digest> {
    let mut attempt = 0;
    loop {
        match hash_once(path)? {
            Outcome::Whole(d) => return Ok(d),
            Outcome::Grew if attempt < GROWTH_RETRIES => attempt += 1,
            Outcome::Grew | Outcome::Changed => {
                return Err(io::Error::other(format!(
                    "{} changed while it was being read",
                    path.display()
                )))
            }
        }
    }
}

/// Re-reads of a file that grew while it was hashed.
pub const GROWTH_RETRIES: usize = 8;

/// What one read of a file found.
enum Outcome {
    Whole(Digest),
    /// Appended to while it was read.
    Grew,
    /// Changed otherwise (rewritten, truncated, replaced).
    Changed,
}

/// Whether `after` is `before` with bytes appended (and nothing else that
/// the stamp shows).
fn grew(before: &Stamp, after: &Stamp) -> bool {
    after.inode == before.inode && after.dev == before.dev && after.size > before.size
}

fn hash_once(path: &Path) -> io::Result<Outcome> {
    // Checked before opening: opening a FIFO for reading blocks until a
    // writer comes, and a device such as /dev/zero never ends.
    regular_file(path, &std::fs::metadata(path)?)?;
    let mut f = File::open(path)?;
    let before = Stamp::of(&f.metadata()?);
    let mut hasher = blake3::Hasher::new();
    let mut buf = vec![0u8; PIECE.min(before.size as usize + 1).max(64 * 1024)];
    loop {
        let n = read_full(&mut f, &mut buf)?;
        if n == 0 {
            break;
        }
        if n >= PARALLEL_THRESHOLD {
            hasher.update_rayon(&buf[..n]);
        } else {
            hasher.update(&buf[..n]);
        }
    }
    let after = Stamp::of(&f.metadata()?);
    if after != before {
        return Ok(if grew(&before, &after) {
            Outcome::Grew
        } else {
            Outcome::Changed
        });
    }
    Ok(Outcome::Whole(hasher.finalize().to_hex().to_string()))
}

/// An error unless `meta` (of `path`) is a regular file.
pub fn regular_file(path: &Path, meta: &std::fs::Metadata) -> io::Result<()> {
    let t = meta.file_type();
    if t.is_file() {
        return Ok(());
    }
    let what = kind_of(&t);
    Err(io::Error::new(
        io::ErrorKind::InvalidInput,
        format!(
            "{} is {what}; mlcycle reads regular files and folders only",
            path.display()
        ),
    ))
}

/// What a file that is not a regular file is, for messages: "a named pipe
/// (FIFO)", "a device", "a socket", "a folder", "a symlink".
pub fn kind_of(t: &std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if t.is_fifo() {
        "a named pipe (FIFO)"
    } else if t.is_char_device() || t.is_block_device() {
        "a device"
    } else if t.is_socket() {
        "a socket"
    } else if t.is_dir() {
        "a folder"
    } else if t.is_symlink() {
        "a symlink"
    } else {
        "not a regular file"
    }
}

/// Fills `buf` as far as the file allows; the number of bytes read.
fn read_full(f: &mut File, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Hashes bytes.
pub fn hash_bytes(bytes: &[u8]) -> Digest {
    blake3::hash(bytes).to_hex().to_string()
}

/// What identifies an unchanged file without reading it, as git's index
/// does: a file replaced in place with the same size and mtime (`cp -p`,
/// `touch -r`, an archive with fixed timestamps) still gets a new ctime,
/// which no user-level tool can set back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    pub size: u64,
    pub mtime_ns: i64,
    pub ctime_ns: i64,
    pub inode: u64,
    pub dev: u64,
}

impl Stamp {
    pub fn of(meta: &std::fs::Metadata) -> Self {
        Stamp {
            size: meta.len(),
            mtime_ns: meta
                .mtime()
                .saturating_mul(1_000_000_000)
                .saturating_add(meta.mtime_nsec()),
            ctime_ns: meta
                .ctime()
                .saturating_mul(1_000_000_000)
                .saturating_add(meta.ctime_nsec()),
            inode: meta.ino(),
            dev: meta.dev(),
        }
    }
}

/// Path → (stamp, hash) of files hashed before.
#[derive(Debug, Default)]
pub struct Memo {
    entries: HashMap<String, (Stamp, Digest)>,
    /// Keys added or updated since loading (values live in `entries`).
    changed: foldhash::HashSet<String>,
}

impl Memo {
    pub fn from_entries(entries: HashMap<String, (Stamp, Digest)>) -> Self {
        Self {
            entries,
            changed: Default::default(),
        }
    }

    /// The hash of the file at `abs` (memo key `key`), read only when its
    /// stamp differs from the memo's. `meta` may be passed when known.
    pub fn hash(
        &mut self,
        key: &str,
        abs: &Path,
        meta: Option<std::fs::Metadata>,
    ) -> io::Result<Digest> {
        let meta = match meta {
            Some(m) => m,
            None => std::fs::metadata(abs)?,
        };
        let stamp = Stamp::of(&meta);
        if let Some((s, h)) = self.entries.get(key) {
            if *s == stamp && !racy(&stamp) {
                return Ok(h.clone());
            }
        }
        let h = hash_file(abs)?;
        self.record(key, stamp, h.clone());
        Ok(h)
    }

    /// The memoized hash for `key`, if its stamp still matches.
    pub fn lookup(&self, key: &str, stamp: &Stamp) -> Option<Digest> {
        match self.entries.get(key) {
            Some((s, h)) if s == stamp && !racy(stamp) => Some(h.clone()),
            _ => None,
        }
    }

    /// Records a hash known to be right for the stamp.
    pub fn record(&mut self, key: &str, stamp: Stamp, hash: Digest) {
        self.entries.insert(key.to_string(), (stamp, hash));
        self.changed.insert(key.to_string());
    }

    /// Entries added or updated since loading, for saving.
    pub fn take_changed(&mut self) -> Vec<(String, Stamp, Digest)> {
        let keys: Vec<String> = self.changed.drain().collect();
        keys.into_iter()
            .filter_map(|k| {
                let (s, h) = self.entries.get(&k)?.clone();
                Some((k, s, h))
            })
            .collect()
    }
}

/// On a filesystem with whole-second mtimes, a file modified within the last
/// 2 seconds could be modified again within the same tick without its stamp
/// changing; don't trust the memo for it (git's "racy clean"). Sub-second
/// mtimes show a fine-grained filesystem, where the window is negligible.
fn racy(stamp: &Stamp) -> bool {
    if stamp.mtime_ns % 1_000_000_000 != 0 {
        return false;
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0);
    now - stamp.mtime_ns < 2_000_000_000
}

#[cfg(test)]
mod tests {

    #[test]
    fn only_growth_is_read_again() {
        let st = |size, inode| Stamp {
            size,
            mtime_ns: 1,
            ctime_ns: 1,
            inode,
            dev: 1,
        };
        assert!(grew(&st(10, 7), &st(20, 7)));
        // Shrunk, or replaced by another file: changed, not appended to.
        assert!(!grew(&st(20, 7), &st(10, 7)));
        assert!(!grew(&st(10, 7), &st(20, 8)));
        assert!(!grew(&st(10, 7), &st(10, 7)));
    }

    #[test]
    fn a_log_appended_to_while_hashed_gets_a_consistent_hash() {
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("served.jsonl");
        std::fs::write(&path, vec![b'x'; 64 << 20]).unwrap();
        let started = std::sync::Arc::new(std::sync::Barrier::new(2));
        let writer = {
            let started = started.clone();
            let path = path.clone();
            std::thread::spawn(move || {
                let mut f = std::fs::OpenOptions::new().append(true).open(path).unwrap();
                started.wait();
                // Appends for 40 ms, more than one read of 64 MiB takes
                // to start and less than the re-reads take in all.
                let t = std::time::Instant::now();
                while t.elapsed() < std::time::Duration::from_millis(40) {
                    f.write_all(b"{\"id\":1}\n").unwrap();
                    std::thread::sleep(std::time::Duration::from_millis(1));
                }
            })
        };
        started.wait();
        let h = hash_file(&path);
        writer.join().unwrap();
        assert!(h.is_ok(), "{h:?}");
        assert_eq!(h.unwrap(), hash_bytes(&std::fs::read(&path).unwrap()));
    }
    use super::*;

    #[test]
    fn memo_skips_unchanged_and_catches_changes() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("a.txt");
        std::fs::write(&f, "one").unwrap();
        let mut memo = Memo::default();
        let h1 = memo.hash("a.txt", &f, None).unwrap();
        assert_eq!(h1, hash_bytes(b"one"));
        std::fs::write(&f, "two!").unwrap();
        let h2 = memo.hash("a.txt", &f, None).unwrap();
        assert_eq!(h2, hash_bytes(b"two!"));
    }

    #[test]
    fn large_files_hash_the_same_as_small_ones() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("big.bin");
        let data: Vec<u8> = (0..2 * PIECE + PARALLEL_THRESHOLD + 7)
            .map(|i| (i % 251) as u8)
            .collect();
        std::fs::write(&f, &data).unwrap();
        assert_eq!(hash_file(&f).unwrap(), hash_bytes(&data));
    }
}
