//! The one way craton puts a file in place: written under a temporary name
//! in the destination's folder (or another folder on the same filesystem),
//! flushed to disk, then renamed over the destination, and the folder
//! flushed too. A reader sees the old file or the new one, never a part; a
//! failed or interrupted write removes the temporary file (on drop), and a
//! power cut after the rename cannot leave an empty file behind it
//! (rename(2) is atomic, but only fsync(2) makes the data durable first).

use std::fs::{self, File};
use std::io::{self, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// A file being written that becomes `dest` at [`TempFile::persist`].
#[derive(Debug)]
pub struct TempFile {
    tmp: tempfile::NamedTempFile,
}

impl TempFile {
    /// A new empty file named after `dest` (".NAME.tmp-PID-XXXXXX") in its
    /// folder, which is created if missing. Those that a killed craton
    /// left for the same `dest` are removed first (`temp::sweep_stale`).
    pub fn beside(dest: &Path) -> Result<Self> {
        let dir = parent_of(dest);
        fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let name = dest
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        super::temp::sweep_stale(dir, &name);
        let tmp = tempfile::Builder::new()
            .prefix(&format!(".{name}.tmp-{}-", std::process::id()))
            .tempfile_in(dir)
            .with_context(|| format!("creating a temporary file beside {}", dest.display()))?;
        Ok(Self { tmp })
    }

    /// A new empty file in `dir` (which must be on the destination's
    /// filesystem), for stores that keep their partial files apart.
    pub fn in_dir(dir: &Path, prefix: &str) -> Result<Self> {
        let tmp = tempfile::Builder::new()
            .prefix(prefix)
            .tempfile_in(dir)
            .with_context(|| format!("creating a temporary file in {}", dir.display()))?;
        Ok(Self { tmp })
    }

    pub fn path(&self) -> &Path {
        self.tmp.path()
    }

    pub fn as_file(&self) -> &File {
        self.tmp.as_file()
    }

    /// Sets the permission bits the file will have (a temporary file is
    /// created 0600).
    pub fn set_mode(&self, mode: u32) -> Result<()> {
        self.as_file()
            .set_permissions(fs::Permissions::from_mode(mode))
            .with_context(|| format!("setting the mode of {}", self.path().display()))
    }

    /// Flushes the file, renames it to `dest` (replacing what is there) and
    /// flushes the folder that now holds it.
    pub fn persist(self, dest: &Path) -> Result<PathBuf> {
        // By path: a program (mkfs) may have replaced the file under this
        // name, and the data to flush is the named file's.
        File::open(self.tmp.path())
            .and_then(|f| f.sync_all())
            .with_context(|| format!("syncing {}", self.tmp.path().display()))?;
        self.tmp
            .persist(dest)
            .map_err(|e| e.error)
            .with_context(|| format!("renaming into {}", dest.display()))?;
        sync_dir(parent_of(dest))?;
        Ok(dest.to_owned())
    }
}

impl Write for TempFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.tmp.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.tmp.flush()
    }
}

/// Writes `data` to `dest` atomically with permission bits `mode`.
pub fn write_atomic(dest: &Path, data: &[u8], mode: u32) -> Result<()> {
    let mut tmp = TempFile::beside(dest)?;
    tmp.write_all(data)
        .with_context(|| format!("writing {}", tmp.path().display()))?;
    tmp.set_mode(mode)?;
    tmp.persist(dest)?;
    Ok(())
}

/// The mode of the files a build hands out (the platforms' images, the
/// update payload, the manifest, the SBOM): readable by all, as release
/// files are; none holds a secret (the layout stage removes host and
/// private keys).
pub const RELEASE_MODE: u32 = 0o644;

/// Moves a finished file into its place beside it (same filesystem: a
/// rename), readable by all ([`RELEASE_MODE`]), and makes the rename
/// durable.
pub fn move_into_place(from: &Path, to: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(from, std::fs::Permissions::from_mode(RELEASE_MODE))
        .with_context(|| format!("setting the mode of {}", from.display()))?;
    std::fs::rename(from, to)
        .with_context(|| format!("moving {} to {}", from.display(), to.display()))?;
    sync_dir(parent_of(to))
}

/// Flushes a folder's entries (a rename is durable only then).
pub fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("syncing {}", dir.display()))
}

fn parent_of(path: &Path) -> &Path {
    path.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_the_file_or_leaves_it() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("out");
        write_atomic(&dest, b"one", 0o644).unwrap();
        write_atomic(&dest, b"two", 0o600).unwrap();
        assert_eq!(fs::read(&dest).unwrap(), b"two");
        assert_eq!(
            fs::metadata(&dest).unwrap().permissions().mode() & 0o777,
            0o600
        );
        // A write that is dropped before persist leaves the old file alone
        // and nothing beside it.
        let mut tmp = TempFile::beside(&dest).unwrap();
        tmp.write_all(b"half").unwrap();
        drop(tmp);
        assert_eq!(fs::read(&dest).unwrap(), b"two");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
