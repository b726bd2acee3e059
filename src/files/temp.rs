//! Temporary trees and their removal: a folder made beside its final place
//! and renamed into it at the end, or removed on drop, so a failed or
//! interrupted step leaves nothing half-made. A tree with a mount still
//! below it is never removed (removing a tree with /dev bound into it would
//! delete the host's device nodes): [`mounts_below`] reads the kernel's
//! mount table for that.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

/// Where the kernel lists this process's mounts (proc(5)).
const MOUNTINFO: &str = "/proc/self/mountinfo";

/// The mount points at or below `dir`, from /proc/self/mountinfo.
pub fn mounts_below(dir: &Path) -> Result<Vec<PathBuf>> {
    let dir = fs::canonicalize(dir).unwrap_or_else(|_| dir.to_owned());
    let text = fs::read_to_string(MOUNTINFO).with_context(|| format!("reading {MOUNTINFO}"))?;
    Ok(text
        .lines()
        // Field 5 is the mount point, with spaces and such octal-escaped.
        .filter_map(|l| l.split(' ').nth(4))
        .map(|m| PathBuf::from(unescape_mountinfo(m)))
        .filter(|m| m.starts_with(&dir))
        .collect())
}

fn unescape_mountinfo(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() && b[i + 1..i + 4].iter().all(u8::is_ascii_digit) {
            let v = u8::from_str_radix(&s[i + 1..i + 4], 8).unwrap_or(b'?');
            out.push(v as char);
            i += 4;
        } else {
            out.push(b[i] as char);
            i += 1;
        }
    }
    out
}

/// A folder that is removed on drop unless [`TempTree::persist`] moved it
/// into place. Created beside its final place so the rename is atomic.
#[derive(Debug)]
pub struct TempTree {
    path: PathBuf,
    armed: bool,
}

impl TempTree {
    /// A new empty folder named after `dest` (".NAME.tmp-PID-N" beside it).
    pub fn beside(dest: &Path) -> Result<Self> {
        let parent = dest
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
        let name = dest
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        for n in 0..1000 {
            let path = parent.join(format!(".{name}.tmp-{}-{n}", std::process::id()));
            match fs::create_dir(&path) {
                Ok(()) => return Ok(Self { path, armed: true }),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e).with_context(|| format!("creating {}", path.display())),
            }
        }
        bail!("no free temporary name beside {}", dest.display())
    }

    /// Takes over an existing folder (e.g. one found in a cache).
    pub fn adopt(path: PathBuf) -> Self {
        Self { path, armed: true }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Replaces `dest` with this tree (an existing `dest` is removed first).
    pub fn persist(mut self, dest: &Path) -> Result<()> {
        let left = mounts_below(&self.path)?;
        if !left.is_empty() {
            bail!(
                "{} still has mounts below it: {left:?}",
                self.path.display()
            );
        }
        if dest.exists() {
            let old = TempTree::beside(dest)?;
            fs::remove_dir(old.path()).ok();
            fs::rename(dest, old.path())
                .with_context(|| format!("moving {} away", dest.display()))?;
            drop(old);
        }
        fs::rename(&self.path, dest)
            .with_context(|| format!("moving {} to {}", self.path.display(), dest.display()))?;
        self.armed = false;
        Ok(())
    }
}

impl Drop for TempTree {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        match mounts_below(&self.path) {
            Ok(m) if m.is_empty() => {}
            Ok(m) => {
                tracing::error!(
                    "not removing {}: mounts remain below it: {m:?}",
                    self.path.display()
                );
                return;
            }
            Err(e) => {
                tracing::error!("not removing {}: {e:#}", self.path.display());
                return;
            }
        }
        if let Err(e) = remove_tree(&self.path) {
            tracing::error!("removing {}: {e:#}", self.path.display());
        }
    }
}

/// Removes a tree, first making read-only folders writable (dpkg trees have
/// some) so that remove_dir_all can empty them.
pub fn remove_tree(path: &Path) -> Result<()> {
    if !path.exists() {
        return Ok(());
    }
    match fs::remove_dir_all(path) {
        Ok(()) => Ok(()),
        Err(_) => {
            crate::process::Cmd::new("chmod")
                .args(["-R", "u+rwX"])
                .arg(path)
                .run()
                .ok();
            fs::remove_dir_all(path).with_context(|| format!("removing {}", path.display()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_escapes() {
        assert_eq!(unescape_mountinfo(r"/a\040b"), "/a b");
        assert_eq!(unescape_mountinfo("/plain"), "/plain");
    }

    #[test]
    fn temp_tree_is_removed_unless_persisted() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("out");
        let t = TempTree::beside(&dest).unwrap();
        fs::write(t.path().join("f"), "x").unwrap();
        let p = t.path().to_owned();
        drop(t);
        assert!(!p.exists());
        let t = TempTree::beside(&dest).unwrap();
        fs::write(t.path().join("f"), "y").unwrap();
        t.persist(&dest).unwrap();
        assert_eq!(fs::read_to_string(dest.join("f")).unwrap(), "y");
        // Replacing an existing output leaves only the new one.
        let t = TempTree::beside(&dest).unwrap();
        t.persist(&dest).unwrap();
        assert!(!dest.join("f").exists());
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
