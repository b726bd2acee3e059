//! Mounts for running programs inside a tree, as guards.
//!
//! [`ChrootMounts`] puts /proc (a new procfs), /sys (a new sysfs), /dev and
//! /dev/pts (bind mounts of the host's) into a tree, the way debootstrap
//! does for dpkg's maintainer scripts; dropping it unmounts them in reverse
//! order, lazily if a mount is still busy. The temporary trees they live in
//! are `crate::files::TempTree`s, which refuse to remove a tree while a
//! mount is still below it.
//! (`unsafe`: mount(2) and umount2(2), which std does not wrap.)

#![allow(unsafe_code)]

use std::ffi::CString;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

/// One mount point that is unmounted when dropped.
#[derive(Debug)]
pub struct Mount {
    target: PathBuf,
}

fn cstr(p: &Path) -> Result<CString> {
    CString::new(p.as_os_str().as_encoded_bytes())
        .with_context(|| format!("{} contains a NUL byte", p.display()))
}

fn mount(
    source: &Path,
    target: &Path,
    fstype: Option<&str>,
    flags: libc::c_ulong,
) -> Result<Mount> {
    fs::create_dir_all(target).with_context(|| format!("creating {}", target.display()))?;
    let src = cstr(source)?;
    let tgt = cstr(target)?;
    let fstype = fstype.map(|t| CString::new(t).expect("static fs type"));
    let fsp = fstype.as_ref().map_or(std::ptr::null(), |t| t.as_ptr());
    // SAFETY: all pointers are valid NUL-terminated strings or null.
    let rc = unsafe { libc::mount(src.as_ptr(), tgt.as_ptr(), fsp, flags, std::ptr::null()) };
    if rc != 0 {
        let err = std::io::Error::last_os_error();
        bail!(
            "mounting {} on {}: {err}",
            source.display(),
            target.display()
        );
    }
    tracing::debug!("mounted {} on {}", source.display(), target.display());
    Ok(Mount {
        target: target.to_owned(),
    })
}

impl Mount {
    /// Binds `source` onto `target` (not recursive).
    pub fn bind(source: &Path, target: &Path) -> Result<Self> {
        mount(source, target, None, libc::MS_BIND)
    }

    /// Mounts a new instance of a virtual filesystem (proc, sysfs, tmpfs).
    pub fn virtual_fs(fstype: &str, target: &Path) -> Result<Self> {
        let flags = libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC;
        mount(Path::new(fstype), target, Some(fstype), flags)
    }

    pub fn target(&self) -> &Path {
        &self.target
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let Ok(t) = cstr(&self.target) else { return };
        // SAFETY: a valid path; umount2 does not keep the pointer.
        if unsafe { libc::umount2(t.as_ptr(), 0) } == 0 {
            tracing::debug!("unmounted {}", self.target.display());
            return;
        }
        let err = std::io::Error::last_os_error();
        // Busy (a process still has a file open there): detach it now, the
        // kernel finishes when the last user goes.
        // SAFETY: as above.
        if unsafe { libc::umount2(t.as_ptr(), libc::MNT_DETACH) } != 0 {
            tracing::error!("unmounting {}: {err}", self.target.display());
        }
    }
}

/// /proc, /sys, /dev and /dev/pts inside a tree, for a chroot.
#[derive(Debug)]
pub struct ChrootMounts {
    // Dropped in reverse order of mounting (dev/pts before dev).
    mounts: Vec<Mount>,
}

impl ChrootMounts {
    pub fn new(tree: &Path) -> Result<Self> {
        let mut me = Self { mounts: Vec::new() };
        me.mounts
            .push(Mount::virtual_fs("proc", &tree.join("proc"))?);
        me.mounts
            .push(Mount::virtual_fs("sysfs", &tree.join("sys"))?);
        me.mounts
            .push(Mount::bind(Path::new("/dev"), &tree.join("dev"))?);
        me.mounts
            .push(Mount::bind(Path::new("/dev/pts"), &tree.join("dev/pts"))?);
        Ok(me)
    }
}

impl Drop for ChrootMounts {
    fn drop(&mut self) {
        while let Some(m) = self.mounts.pop() {
            drop(m);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::files::{TempTree, mounts_below};

    #[test]
    fn chroot_mounts_come_and_go() {
        // Needs root (mount(2)); CI and the development machines run as root.
        // SAFETY: geteuid(2) takes nothing and cannot fail.
        if unsafe { libc::geteuid() } != 0 {
            eprintln!("skipped: not root");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let m = ChrootMounts::new(dir.path()).unwrap();
        let below = mounts_below(dir.path()).unwrap();
        assert_eq!(below.len(), 4, "{below:?}");
        assert!(dir.path().join("proc/self").exists());
        assert!(dir.path().join("dev/null").exists());
        // A temporary tree with mounts inside is not removed.
        let t = TempTree::adopt(dir.path().to_owned());
        drop(t);
        assert!(
            dir.path().join("dev/null").exists(),
            "the guard removed a mounted tree"
        );
        drop(m);
        assert_eq!(mounts_below(dir.path()).unwrap(), Vec::<PathBuf>::new());
    }
}
