//! The content-addressed cache: `<root>/sha256/<hex>` holds a file whose
//! SHA-256 is `<hex>`, nothing else. Files arrive under `<root>/tmp/` and are
//! renamed into place only after their digest matched, so a reader never sees
//! a partial or wrong file there.
//!
//! The root is `$CRATON_CACHE`, else `~/.cache/craton` (XDG_CACHE_HOME is
//! honoured), shared by CI runs and later sessions.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result, bail};

use crate::digest::{Sha256, Sha256Writer};
use crate::files::TempFile;

pub mod gc;

/// Environment variable that overrides the cache root.
pub const CACHE_ENV: &str = "CRATON_CACHE";

/// A content-addressed store of verified files.
#[derive(Clone, Debug)]
pub struct Cache {
    root: PathBuf,
}

impl Cache {
    /// The cache at `$CRATON_CACHE` or `~/.cache/craton`.
    pub fn open_default() -> Result<Self> {
        Self::open(default_root()?)
    }

    /// The cache at `root`, created if missing (folders craton makes are
    /// 0755 whatever the umask), and refused if another user could write
    /// it ([`check_owner`]).
    pub fn open(root: impl Into<PathBuf>) -> Result<Self> {
        use std::os::unix::fs::DirBuilderExt;
        let root = root.into();
        for sub in ["sha256", "tmp"] {
            let d = root.join(sub);
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o755)
                .create(&d)
                .with_context(|| format!("creating {}", d.display()))?;
        }
        check_owner(&root)?;
        Ok(Self { root })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where the file with this digest lives (whether or not it is there).
    pub fn path_of(&self, digest: &Sha256) -> PathBuf {
        self.root.join("sha256").join(digest.to_hex())
    }

    /// Where a cached tree of `kind` made from `key` lives (see
    /// `crate::files::cached_tree`): 16 hex digits keep names short and
    /// still unique among the few trees a cache holds.
    pub fn tree_path(&self, kind: &str, key: &Sha256) -> PathBuf {
        self.root
            .join("trees")
            .join(format!("{kind}-{}", &key.to_hex()[..16]))
    }

    /// True when the file with this digest is in the cache.
    pub fn contains(&self, digest: &Sha256) -> bool {
        self.path_of(digest).is_file()
    }

    /// True when the file with this digest is in the cache and its content
    /// still hashes to it. The cache is trusted by content, not by name: a
    /// file that was changed (a torn write, a disk error, someone's edit)
    /// is removed, with a warning, and reads as missing, so the caller
    /// fetches it again. Each build checks every file it takes from the
    /// cache this way, right before it uses them.
    pub fn verified(&self, digest: &Sha256) -> Result<bool> {
        let p = self.path_of(digest);
        let f = match fs::File::open(&p) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(e).with_context(|| format!("opening {}", p.display())),
        };
        let actual = Sha256::of_reader(&f).with_context(|| format!("hashing {}", p.display()))?;
        if &actual == digest {
            // Its time of last use, for `craton cache gc`.
            if let Err(e) = f.set_modified(SystemTime::now()) {
                tracing::debug!("marking {} used: {e}", p.display());
            }
            return Ok(true);
        }
        tracing::warn!(
            "{} does not hash to its name (sha256 {actual}): removed, fetching it again",
            p.display()
        );
        fs::remove_file(&p).with_context(|| format!("removing {}", p.display()))?;
        Ok(false)
    }

    /// A fresh temporary file in the cache's tmp folder (same filesystem, so
    /// the final rename is atomic). It is removed when dropped unless persisted
    /// through [`Cache::commit`].
    pub fn temp_file(&self) -> Result<TempFile> {
        TempFile::in_dir(&self.root.join("tmp"), "partial-")
    }

    /// Moves a finished temporary file into place after checking its digest.
    /// On a mismatch the temporary file is removed (by drop) and the error
    /// names `what`, the expected and the actual digest.
    pub fn commit(&self, tmp: TempFile, expected: &Sha256, what: &str) -> Result<PathBuf> {
        let actual = fs::File::open(tmp.path())
            .and_then(Sha256::of_reader)
            .with_context(|| format!("hashing {}", tmp.path().display()))?;
        self.commit_hashed(tmp, &actual, expected, what)
    }

    /// Like [`Cache::commit`], for a caller that hashed the bytes while
    /// writing them (a download), so that a large file is not read twice.
    /// `actual` must be the digest of exactly what `tmp` holds.
    pub fn commit_hashed(
        &self,
        tmp: TempFile,
        actual: &Sha256,
        expected: &Sha256,
        what: &str,
    ) -> Result<PathBuf> {
        if actual != expected {
            bail!("sha256 mismatch for {what}: expected {expected}, got {actual}");
        }
        let dest = self.path_of(expected);
        tmp.persist(&dest)
    }

    /// Stores bytes that the caller already holds, after checking the digest.
    pub fn insert_bytes(&self, data: &[u8], expected: &Sha256, what: &str) -> Result<PathBuf> {
        let actual = Sha256::of(data);
        if &actual != expected {
            bail!("sha256 mismatch for {what}: expected {expected}, got {actual}");
        }
        let mut tmp = self.temp_file()?;
        std::io::Write::write_all(&mut tmp, data)?;
        self.commit(tmp, expected, what)
    }

    /// Removes temporary files older than `age`: what a killed run (Ctrl-C,
    /// OOM) left behind, since drop never ran for them. Younger files may
    /// belong to a run in progress and are kept. Returns how many went.
    pub fn sweep_tmp(&self, age: Duration) -> Result<usize> {
        let dir = self.root.join("tmp");
        let now = SystemTime::now();
        let mut removed = 0;
        for entry in fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))? {
            let entry = entry.with_context(|| format!("reading {}", dir.display()))?;
            let stale = entry
                .metadata()
                .and_then(|m| m.modified())
                .is_ok_and(|t| now.duration_since(t).is_ok_and(|d| d > age));
            if stale && fs::remove_file(entry.path()).is_ok() {
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// Checks a file already in the cache (e.g. after a crash or by hand).
    pub fn verify(&self, digest: &Sha256) -> Result<bool> {
        let p = self.path_of(digest);
        let mut w = Sha256Writer::new();
        let mut f = fs::File::open(&p).with_context(|| format!("opening {}", p.display()))?;
        std::io::copy(&mut f, &mut w)?;
        Ok(&w.finish() == digest)
    }
}

/// Where the cache is when no folder is given (see the module header).
pub fn default_root() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os(CACHE_ENV).filter(|p| !p.is_empty()) {
        return Ok(PathBuf::from(p));
    }
    if let Some(p) = std::env::var_os("XDG_CACHE_HOME").filter(|p| !p.is_empty()) {
        return Ok(PathBuf::from(p).join("craton"));
    }
    let home = std::env::var_os("HOME").context("neither CRATON_CACHE nor HOME is set")?;
    Ok(PathBuf::from(home).join(".cache").join("craton"))
}

/// The cache holds the tools tree, whose programs craton runs as root, and
/// the trees and files that go into images: another user who can write
/// the cache, or swap a folder on the way to it, could run code as root or
/// change an image. So the root, its folders and every folder above it
/// must belong to root or to this process's user and be writable by no one
/// else (a folder above it may be a sticky one such as /tmp, where others
/// cannot rename what is not theirs), as OpenSSH's StrictModes asks of
/// ~/.ssh. Bad input: the fix is a chmod, a chown or another CRATON_CACHE.
pub fn check_owner(root: &Path) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    // /proc/self belongs to the process's effective user (proc(5)).
    let me = fs::metadata("/proc/self")
        .context("reading /proc/self")?
        .uid();
    let root = fs::canonicalize(root).with_context(|| format!("resolving {}", root.display()))?;
    let check = |dir: &Path, ancestor: bool| -> Result<()> {
        let m = fs::metadata(dir).with_context(|| format!("reading {}", dir.display()))?;
        let mode = m.mode();
        let sticky = mode & 0o1000 != 0;
        let why = if m.uid() != 0 && m.uid() != me {
            Some(format!(
                "belongs to uid {}, not to root or uid {me}",
                m.uid()
            ))
        } else if mode & 0o022 != 0 && !(ancestor && sticky) {
            Some(format!(
                "is writable by other users (mode {:o})",
                mode & 0o7777
            ))
        } else {
            None
        };
        match why {
            Some(why) => Err(crate::error::bad_input(format!(
                "cache {}: {} {why}; craton runs programs from its cache as root, so no \
                 other user may be able to write it or a folder above it (chmod go-w, \
                 chown, or another {CACHE_ENV})",
                root.display(),
                dir.display()
            ))),
            None => Ok(()),
        }
    };
    for sub in ["sha256", "tmp", "trees"] {
        let d = root.join(sub);
        if d.exists() {
            check(&d, false)?;
        }
    }
    check(&root, false)?;
    for a in root.ancestors().skip(1) {
        check(a, true)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue #11: nothing checked who could write the cache, although the
    /// tools tree's programs in it run as root.
    #[test]
    fn a_cache_others_can_write_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("cache");
        Cache::open(&root).unwrap();
        let chmod =
            |p: &Path, m: u32| fs::set_permissions(p, fs::Permissions::from_mode(m)).unwrap();
        for (place, mode) in [(root.clone(), 0o777), (root.join("sha256"), 0o775)] {
            chmod(&place, mode);
            let err = Cache::open(&root).unwrap_err();
            assert!(crate::error::is_bad_input(&err), "{err:#}");
            let msg = err.to_string();
            assert!(
                msg.contains(&format!("{} is writable by other users", place.display())),
                "{msg}"
            );
            chmod(&place, 0o755);
        }
        // A folder above it: writable by all without the sticky bit is
        // refused; with it (as /tmp) it is fine.
        chmod(dir.path(), 0o777);
        assert!(Cache::open(&root).is_err());
        chmod(dir.path(), 0o1777);
        Cache::open(&root).unwrap();
        chmod(dir.path(), 0o700);
    }

    #[test]
    fn mismatch_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(dir.path()).unwrap();
        let want = Sha256::of(b"good");
        let err = cache.insert_bytes(b"evil", &want, "x.deb").unwrap_err();
        assert!(err.to_string().contains("sha256 mismatch for x.deb"));
        assert!(!cache.contains(&want));
        assert_eq!(fs::read_dir(dir.path().join("tmp")).unwrap().count(), 0);
        cache.insert_bytes(b"good", &want, "x.deb").unwrap();
        assert!(cache.contains(&want) && cache.verify(&want).unwrap());
    }

    #[test]
    fn sweep_removes_only_old_temporary_files() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(dir.path()).unwrap();
        let old = dir.path().join("tmp/partial-old");
        fs::write(&old, b"x").unwrap();
        let hour_ago = SystemTime::now() - Duration::from_secs(3600);
        fs::File::options()
            .write(true)
            .open(&old)
            .unwrap()
            .set_modified(hour_ago)
            .unwrap();
        let young = cache.temp_file().unwrap();
        assert_eq!(cache.sweep_tmp(Duration::from_secs(60)).unwrap(), 1);
        assert!(!old.exists() && young.path().exists());
    }
}
