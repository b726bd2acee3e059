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

/// The mount points at or below `dir`, from /proc/self/mountinfo. Bytes,
/// not text: a mount point is any byte string, and one that is not UTF-8
/// (or a tree below a non-ASCII folder) must still be found, since the
/// callers refuse to delete a tree with a mount below it.
pub fn mounts_below(dir: &Path) -> Result<Vec<PathBuf>> {
    let dir = fs::canonicalize(dir).unwrap_or_else(|_| dir.to_owned());
    let text = fs::read(MOUNTINFO).with_context(|| format!("reading {MOUNTINFO}"))?;
    Ok(mount_points(&text)
        .into_iter()
        .filter(|m| m.starts_with(&dir))
        .collect())
}

/// Field 5 of each mountinfo line (proc(5)): the mount point, with space,
/// tab, newline and backslash written as three octal digits.
fn mount_points(mountinfo: &[u8]) -> Vec<PathBuf> {
    use std::os::unix::ffi::OsStringExt;
    mountinfo
        .split(|&b| b == b'\n')
        .filter_map(|l| l.split(|&b| b == b' ').nth(4))
        .map(|m| PathBuf::from(std::ffi::OsString::from_vec(unescape_mountinfo(m))))
        .collect()
}

fn unescape_mountinfo(b: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let octal = b
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match octal {
            Some(d) if b[i] == b'\\' => {
                // Three octal digits are at most 0o777; the kernel writes
                // only bytes (at most 0o377).
                let v = d.iter().fold(0u32, |v, c| v * 8 + u32::from(c - b'0'));
                out.push(u8::try_from(v).unwrap_or(b'?'));
                i += 4;
            }
            _ => {
                out.push(b[i]);
                i += 1;
            }
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
        sweep_stale(parent, &name);
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
            discard(dest)?;
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

/// Removes the tree at `path`: renamed to a temporary name beside it at
/// once (so its place is free), then removed by that [`TempTree`]'s drop,
/// which never removes across a mount.
pub fn discard(path: &Path) -> Result<()> {
    let old = TempTree::beside(path)?;
    fs::remove_dir(old.path()).ok();
    fs::rename(path, old.path()).with_context(|| format!("moving {} away", path.display()))?;
    drop(old);
    Ok(())
}

/// Removes the temporary trees and files for `name` in `parent` whose
/// craton process is gone (".NAME.tmp-PID-SUFFIX" without a /proc/PID):
/// what a build killed by SIGKILL or the OOM killer leaves. A tree with a
/// mount below it is left and logged, never deleted across the mount; a
/// PID that runs again (reused) keeps its leftovers until a later run.
pub(crate) fn sweep_stale(parent: &Path, name: &str) {
    let prefix = format!(".{name}.tmp-");
    let Ok(entries) = fs::read_dir(parent) else {
        return;
    };
    for e in entries.flatten() {
        let file_name = e.file_name();
        let Some(rest) = file_name.to_str().and_then(|f| f.strip_prefix(&prefix)) else {
            continue;
        };
        let Some((pid, n)) = rest.split_once('-') else {
            continue;
        };
        let numeric = !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit());
        if !numeric || n.is_empty() || Path::new("/proc").join(pid).exists() {
            continue;
        }
        let path = e.path();
        if e.file_type().is_ok_and(|t| !t.is_dir()) {
            tracing::info!(
                "removing {}, left by a craton that was killed",
                path.display()
            );
            if let Err(err) = fs::remove_file(&path) {
                tracing::warn!("removing {}: {err}", path.display());
            }
            continue;
        }
        match mounts_below(&path) {
            Ok(m) if m.is_empty() => {
                tracing::info!(
                    "removing {}, left by a craton that was killed",
                    path.display()
                );
                if let Err(err) = remove_tree(&path) {
                    tracing::warn!("removing {}: {err:#}", path.display());
                }
            }
            Ok(m) => tracing::warn!(
                "not removing {} (left by a killed craton): mounts remain below it: {m:?}",
                path.display()
            ),
            Err(err) => tracing::warn!("not removing {}: {err:#}", path.display()),
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

    /// /proc/self belongs to the process's effective user.
    fn running_as_root() -> bool {
        use std::os::unix::fs::MetadataExt;
        fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
    }

    #[test]
    fn mountinfo_escapes() {
        assert_eq!(unescape_mountinfo(br"/a\040b\134c"), b"/a b\\c");
        assert_eq!(unescape_mountinfo(b"/plain"), b"/plain");
        // Not an escape: a digit that is not octal.
        assert_eq!(unescape_mountinfo(br"/x\089"), br"/x\089");
    }

    /// Issue #11: a build killed by SIGKILL left ".NAME.tmp-PID-N" trees
    /// that nothing ever removed. The next temporary tree for the same
    /// name sweeps those of dead processes, but not a live process's nor
    /// one with a mount below it.
    #[test]
    fn stale_temporary_trees_are_swept() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("base-1");
        // PIDs stop at 4194304 (PID_MAX_LIMIT): this one never runs.
        let dead = dir.path().join(".base-1.tmp-999999999-0");
        fs::create_dir_all(dead.join("usr/bin")).unwrap();
        fs::write(dead.join("usr/bin/x"), "x").unwrap();
        let live = dir
            .path()
            .join(format!(".base-1.tmp-{}-7", std::process::id()));
        fs::create_dir(&live).unwrap();
        let other = dir.path().join(".tools-1.tmp-999999999-0");
        fs::create_dir(&other).unwrap();
        // A file a killed craton was writing (TempFile: random suffix).
        let dead_file = dir.path().join(".base-1.tmp-999999999-Ab3xYz");
        fs::write(&dead_file, "half").unwrap();
        let mounted = dir.path().join(".base-1.tmp-999999998-0");
        fs::create_dir_all(mounted.join("dev")).unwrap();
        let root = running_as_root();
        if root {
            crate::process::Cmd::new("mount")
                .args(["-t", "tmpfs", "tmpfs"])
                .arg(mounted.join("dev"))
                .run()
                .unwrap();
            fs::write(mounted.join("dev/keep"), "k").unwrap();
        }
        let t = TempTree::beside(&dest).unwrap();
        assert!(!dead.exists(), "the dead process's tree is still there");
        assert!(
            !dead_file.exists(),
            "the dead process's file is still there"
        );
        assert!(live.exists() && other.exists());
        if root {
            assert!(mounted.join("dev/keep").exists());
            crate::process::Cmd::new("umount")
                .arg(mounted.join("dev"))
                .run()
                .unwrap();
        }
        drop(t);
    }

    /// Issue #11: bytes >= 0x80 were each turned into a char of their own,
    /// so a mount below a non-ASCII folder (UTF-8 "é" is 0xc3 0xa9) was not
    /// "below" it, and the guards that refuse to delete such a tree failed
    /// open. A mount point that is not UTF-8 at all is found too.
    #[test]
    fn non_ascii_mount_points_are_found() {
        use std::os::unix::ffi::OsStrExt;
        let info = "36 35 98:0 / /home/caf\u{e9}/tree/dev rw,noatime - tmpfs tmpfs rw\n\
                    37 35 98:0 / /srv/a\\040b/proc rw - proc proc rw\n";
        let mut bytes = info.as_bytes().to_vec();
        bytes.extend_from_slice(b"38 35 98:0 / /mnt/\xff/sys rw - sysfs sysfs rw\n");
        let points = mount_points(&bytes);
        assert_eq!(points.len(), 3, "{points:?}");
        assert!(points[0].starts_with(Path::new("/home/caf\u{e9}/tree")));
        assert_eq!(points[1], Path::new("/srv/a b/proc"));
        assert_eq!(points[2].as_os_str().as_bytes(), b"/mnt/\xff/sys");
        assert!(points[2].starts_with(Path::new(std::ffi::OsStr::from_bytes(b"/mnt/\xff"))));
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
