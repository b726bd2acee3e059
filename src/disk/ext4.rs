//! ROOT and OEM: ext4 made by the tools tree's mke2fs, populated from a
//! folder (`-d`) and written straight into the partition's region of the
//! image (`-E offset=`), so nothing is copied twice and holes stay holes.
//!
//! Reproducibility: UUID and directory hash seed from the seed,
//! E2FSPROGS_FAKE_TIME and SOURCE_DATE_EPOCH for the filesystem's own
//! times, and the staged folder's timestamps set to the epoch (mke2fs -d
//! copies them). The staging folder is built here: ROOT's is the tree
//! without its /usr (an empty mount point instead), OEM's the given files.
//! (`unsafe`: utimensat(2) on a symlink, which std cannot do.)

#![allow(unsafe_code)]

use std::ffi::CString;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use anyhow::{Context, Result, bail};
use uuid::Uuid;

use super::{OemFile, PartInfo, components};
use crate::tools::ToolsTree;

/// ext4 block size: mke2fs's default for anything but tiny filesystems;
/// set explicitly so that a small test OEM gets the same layout as a real
/// one.
const BLOCK: u64 = 4096;

/// A filesystem to make.
pub struct Ext4<'a> {
    pub label: &'a str,
    pub uuid: Uuid,
    pub hash_seed: Uuid,
    pub epoch: u64,
}

/// Makes the filesystem in `part` of the image at `image`, from `dir`.
pub fn make(
    tools: &ToolsTree,
    fs: &Ext4<'_>,
    dir: &Path,
    image: &Path,
    part: &PartInfo,
) -> Result<()> {
    // e2fsprogs: labels are at most 16 bytes (s_volume_name).
    if fs.label.is_empty() || fs.label.len() > 16 {
        bail!("ext4 label {:?} must be 1 to 16 bytes", fs.label);
    }
    let blocks = part.len() / BLOCK;
    let extended = format!(
        "offset={},root_owner=0:0,hash_seed={},nodiscard",
        part.offset(),
        fs.hash_seed
    );
    tools
        .cmd("mke2fs")?
        .env("MKE2FS_CONFIG", mke2fs_conf(tools)?)
        .env("E2FSPROGS_FAKE_TIME", fs.epoch.to_string())
        .env("SOURCE_DATE_EPOCH", fs.epoch.to_string())
        // -T default: not the "small" type (1 KiB blocks, 128-byte inodes
        // whose times end in 2038) that mke2fs picks under 512 MiB.
        .args(["-q", "-F", "-t", "ext4", "-T", "default"])
        .arg("-b")
        .arg(BLOCK.to_string())
        .arg("-L")
        .arg(fs.label)
        .arg("-U")
        .arg(fs.uuid.to_string())
        .arg("-E")
        .arg(extended)
        .arg("-d")
        .arg(dir)
        .arg(image)
        .arg(blocks.to_string())
        .run()
        .with_context(|| format!("making the ext4 filesystem of {}", part.label))
}

/// The tools tree's mke2fs.conf. Its packages are unpacked without
/// running dpkg, so conffiles are still under their `.dpkg-new` name.
fn mke2fs_conf(tools: &ToolsTree) -> Result<std::path::PathBuf> {
    ["etc/mke2fs.conf", "etc/mke2fs.conf.dpkg-new"]
        .iter()
        .map(|p| tools.path(p))
        .find(|p| p.is_file())
        .with_context(|| format!("no etc/mke2fs.conf in {}", tools.root().display()))
}

/// Stages ROOT: every entry of `tree` but `usr`, which becomes an empty
/// folder with the tree's mode (the mount point of the verity /usr).
pub fn stage_root(tree: &Path, dest: &Path, epoch: u64) -> Result<()> {
    let entries = fs::read_dir(tree).with_context(|| format!("reading {}", tree.display()))?;
    for e in entries {
        let e = e.with_context(|| format!("reading {}", tree.display()))?;
        if e.file_name() == "usr" {
            continue;
        }
        copy_tree(&e.path(), &dest.join(e.file_name()), epoch)?;
    }
    let usr = dest.join("usr");
    fs::create_dir(&usr).with_context(|| format!("creating {}", usr.display()))?;
    let mode = fs::metadata(tree.join("usr")).map_or(0o755, |m| m.mode() & 0o7777);
    fs::set_permissions(&usr, fs::Permissions::from_mode(mode))
        .with_context(|| format!("setting the mode of {}", usr.display()))?;
    set_epoch(&usr, epoch)?;
    set_epoch(dest, epoch)
}

/// Stages OEM from its files (folders 0755, files with their modes, owned
/// by root).
pub fn stage_files(files: &[OemFile], dest: &Path, epoch: u64) -> Result<()> {
    let mut made = Vec::new();
    for OemFile { path, data, mode } in files {
        let parts = components(path).with_context(|| format!("OEM file {path:?}"))?;
        let mut dir = dest.to_path_buf();
        for d in &parts[..parts.len() - 1] {
            dir.push(d);
            if !dir.is_dir() {
                fs::create_dir(&dir).with_context(|| format!("creating {}", dir.display()))?;
                made.push(dir.clone());
            }
        }
        let file = dir.join(parts[parts.len() - 1]);
        fs::write(&file, data).with_context(|| format!("writing {}", file.display()))?;
        fs::set_permissions(&file, fs::Permissions::from_mode(*mode))
            .with_context(|| format!("setting the mode of {}", file.display()))?;
        set_epoch(&file, epoch)?;
    }
    // Folders last: writing into them changed their times.
    for d in made.iter().chain(std::iter::once(&dest.to_path_buf())) {
        set_epoch(d, epoch)?;
    }
    Ok(())
}

/// Copies a file, symlink or folder (recursively) with its mode and owner,
/// all times set to the epoch.
fn copy_tree(src: &Path, dst: &Path, epoch: u64) -> Result<()> {
    let meta = fs::symlink_metadata(src).with_context(|| format!("reading {}", src.display()))?;
    let ft = meta.file_type();
    if ft.is_symlink() {
        let target = fs::read_link(src).with_context(|| format!("reading {}", src.display()))?;
        std::os::unix::fs::symlink(&target, dst)
            .with_context(|| format!("creating {}", dst.display()))?;
    } else if ft.is_dir() {
        fs::create_dir(dst).with_context(|| format!("creating {}", dst.display()))?;
        for e in fs::read_dir(src).with_context(|| format!("reading {}", src.display()))? {
            let e = e.with_context(|| format!("reading {}", src.display()))?;
            copy_tree(&e.path(), &dst.join(e.file_name()), epoch)?;
        }
    } else if ft.is_file() {
        fs::copy(src, dst).with_context(|| format!("copying {}", src.display()))?;
    } else {
        bail!("{} is not a file, folder or symlink", src.display());
    }
    std::os::unix::fs::lchown(dst, Some(meta.uid()), Some(meta.gid()))
        .with_context(|| format!("setting the owner of {}", dst.display()))?;
    if !ft.is_symlink() {
        fs::set_permissions(dst, fs::Permissions::from_mode(meta.mode() & 0o7777))
            .with_context(|| format!("setting the mode of {}", dst.display()))?;
    }
    set_epoch(dst, epoch)
}

/// Sets atime and mtime of a path (not following a symlink) to the epoch.
fn set_epoch(path: &Path, epoch: u64) -> Result<()> {
    let c = CString::new(path.as_os_str().as_bytes())
        .with_context(|| format!("{} has a NUL byte", path.display()))?;
    let t = libc::timespec {
        tv_sec: epoch as libc::time_t,
        tv_nsec: 0,
    };
    let times = [t, t];
    // SAFETY: a valid C string and two timespecs, as utimensat(2) wants.
    let rc = unsafe {
        libc::utimensat(
            libc::AT_FDCWD,
            c.as_ptr(),
            times.as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error())
            .with_context(|| format!("setting the times of {}", path.display()));
    }
    Ok(())
}
