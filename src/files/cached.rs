//! A tree made once and kept for later builds, at a place named after what
//! it is made from (the base tree of the locked packages, the tools tree):
//! made in a temporary tree beside its place and renamed into it only when
//! complete, so a killed build never leaves a half tree to be reused.
//!
//! Each tree has a manifest beside it (`PLACE.manifest`, written before the
//! tree is renamed into place): every entry's path, type, mode, owner, and
//! a file's size and SHA-256 or a link's target. A build checks the tree
//! against it before reusing it, and makes the tree again when anything
//! differs or the manifest is missing: a torn or tampered tree (programs
//! from the tools tree run as root) is never used.

use std::fmt::Write as _;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use super::TempTree;
use crate::digest::Sha256;

/// A cached tree and whether this run found it (rather than made it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedTree {
    pub path: PathBuf,
    pub reused: bool,
}

/// The tree at `place`, made by `make` (given an empty folder) if missing
/// or if it no longer matches its manifest.
pub fn cached_tree(place: &Path, make: impl FnOnce(&Path) -> Result<()>) -> Result<CachedTree> {
    let manifest = manifest_path(place);
    if place.is_dir() {
        match check(place, &manifest) {
            Ok(()) => {
                // The manifest's time is the tree's last use (`craton cache
                // gc` keeps the recently used trees).
                if let Err(e) = fs::File::open(&manifest)
                    .and_then(|f| f.set_modified(std::time::SystemTime::now()))
                {
                    tracing::debug!("marking {} used: {e}", manifest.display());
                }
                return Ok(CachedTree {
                    path: place.to_owned(),
                    reused: true,
                });
            }
            Err(e) => {
                tracing::warn!("{}: {e:#}; making it again", place.display());
                remove(place)?;
            }
        }
    }
    let tmp = TempTree::beside(place)?;
    make(tmp.path())?;
    let text = manifest_of(tmp.path())?;
    super::write_atomic(&manifest, text.as_bytes(), 0o644)?;
    tmp.persist(place)?;
    Ok(CachedTree {
        path: place.to_owned(),
        reused: false,
    })
}

/// Removes a cached tree and its manifest (`craton cache gc`, or a tree
/// that no longer matches).
pub fn remove(place: &Path) -> Result<()> {
    super::discard(place)?;
    let manifest = manifest_path(place);
    match fs::remove_file(&manifest) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).with_context(|| format!("removing {}", manifest.display())),
    }
}

/// Where the manifest of the tree at `place` lives: `PLACE.manifest`.
pub fn manifest_path(place: &Path) -> PathBuf {
    let name = place
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    place.with_file_name(format!("{name}.manifest"))
}

/// Compares the tree with its manifest; the error names the first
/// difference.
fn check(tree: &Path, manifest: &Path) -> Result<()> {
    let want = fs::read_to_string(manifest)
        .with_context(|| format!("reading its manifest {}", manifest.display()))?;
    let have = manifest_of(tree)?;
    if want == have {
        return Ok(());
    }
    let diff = want
        .lines()
        .zip(have.lines())
        .find(|(w, h)| w != h)
        .map(|(w, h)| format!("manifest says `{w}`, the tree has `{h}`"))
        .unwrap_or_else(|| "entries were added or removed".to_owned());
    bail!("the tree does not match its manifest: {diff}")
}

/// One line per entry below `tree`, sorted by path.
pub fn manifest_of(tree: &Path) -> Result<String> {
    let mut out = String::from("# craton cached tree manifest 1\n");
    walk(tree, tree, &mut out)?;
    Ok(out)
}

fn walk(root: &Path, dir: &Path, out: &mut String) -> Result<()> {
    let mut entries: Vec<fs::DirEntry> = fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .collect::<std::io::Result<_>>()
        .with_context(|| format!("reading {}", dir.display()))?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let path = e.path();
        let m =
            fs::symlink_metadata(&path).with_context(|| format!("reading {}", path.display()))?;
        let rel = escape(
            path.strip_prefix(root)
                .unwrap_or(&path)
                .as_os_str()
                .as_bytes(),
        );
        let ft = m.file_type();
        let head = format!("{:o} {} {}", m.mode() & 0o7777, m.uid(), m.gid());
        if ft.is_symlink() {
            let target =
                fs::read_link(&path).with_context(|| format!("reading {}", path.display()))?;
            let _ = writeln!(
                out,
                "l {head} {rel} -> {}",
                escape(target.as_os_str().as_bytes())
            );
        } else if ft.is_dir() {
            let _ = writeln!(out, "d {head} {rel}");
            walk(root, &path, out)?;
        } else if ft.is_file() {
            let digest = fs::File::open(&path)
                .and_then(Sha256::of_reader)
                .with_context(|| format!("hashing {}", path.display()))?;
            let _ = writeln!(out, "f {head} {} {digest} {rel}", m.len());
        } else {
            let _ = writeln!(out, "o {head} {:x} {rel}", m.rdev());
        }
    }
    Ok(())
}

/// A path as one word: bytes outside printable ASCII, space and `%` as %XX.
fn escape(b: &[u8]) -> String {
    let mut s = String::with_capacity(b.len());
    for &c in b {
        if c.is_ascii_graphic() && c != b'%' {
            s.push(c as char);
        } else {
            let _ = write!(s, "%{c:02x}");
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn made_once_then_reused_and_never_half() {
        let dir = tempfile::tempdir().unwrap();
        let place = dir.path().join("trees/x-1");
        let failed = cached_tree(&place, |_| anyhow::bail!("no"));
        assert!(failed.is_err());
        assert!(!place.exists());
        let made = cached_tree(&place, |t| Ok(std::fs::write(t.join("f"), "1")?)).unwrap();
        assert!(!made.reused);
        let again = cached_tree(&place, |_| unreachable!("made already")).unwrap();
        assert!(again.reused);
        assert_eq!(std::fs::read_to_string(place.join("f")).unwrap(), "1");
        // The tree and its manifest.
        assert_eq!(
            std::fs::read_dir(dir.path().join("trees")).unwrap().count(),
            2
        );
    }

    /// Issue #11: a cached tree was reused by name. A changed file, a
    /// changed mode, a new file or a missing manifest now makes it again.
    #[test]
    fn a_changed_tree_is_made_again() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let place = dir.path().join("trees/tools-1");
        let make = |t: &Path| -> Result<()> {
            std::fs::create_dir(t.join("bin"))?;
            std::fs::write(t.join("bin/tool"), "#!/bin/sh\n")?;
            std::os::unix::fs::symlink("bin/tool", t.join("link"))?;
            Ok(())
        };
        assert!(!cached_tree(&place, make).unwrap().reused);
        assert!(cached_tree(&place, |_| unreachable!()).unwrap().reused);
        type Tamper = fn(&Path);
        let tampers: [(&str, Tamper); 4] = [
            ("content", |p| {
                std::fs::write(p.join("bin/tool"), "#!/bin/sh\nrm -rf /\n").unwrap()
            }),
            ("mode", |p| {
                std::fs::set_permissions(
                    p.join("bin/tool"),
                    std::fs::Permissions::from_mode(0o4755),
                )
                .unwrap()
            }),
            ("added", |p| {
                std::fs::write(p.join("bin/extra"), "x").unwrap()
            }),
            ("manifest", |p| {
                std::fs::remove_file(manifest_path(p)).unwrap()
            }),
        ];
        for (what, tamper) in tampers {
            tamper(&place);
            let again = cached_tree(&place, make).unwrap();
            assert!(!again.reused, "a tree with a changed {what} was reused");
            assert_eq!(
                std::fs::read_to_string(place.join("bin/tool")).unwrap(),
                "#!/bin/sh\n"
            );
            assert!(!place.join("bin/extra").exists());
            assert!(cached_tree(&place, |_| unreachable!()).unwrap().reused);
        }
    }
}
