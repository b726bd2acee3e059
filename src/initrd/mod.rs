//! The initrd stage: a systemd-based initrd made from the lock's [initrd]
//! packages, the image's kernel modules for the platforms and craton's own
//! initrd units, packed as a deterministic zstd-compressed newc cpio.
//!
//! The packages are unpacked natively (no dpkg, no maintainer scripts); what
//! the scripts would have done and what systemd expects of an initrd
//! (systemd's INITRD_INTERFACE.md and bootup(7): an /init to run, an
//! /etc/initrd-release) is written here. It does not build the kernel
//! command line or place the result on the ESP: those are the disk stage's.

pub mod cpio;
pub mod identity;
pub mod ignition;
pub mod modules;
pub mod units;
pub mod users;

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::cache::Cache;
use crate::context::Build;
use crate::deb::unpack::{self, DebInput};
use crate::files::{TempFile, TempTree};
use crate::lock::Lock;
use crate::rootfs::RootfsTree;
use crate::tools::ToolsTree;
use units::ENABLE_DIR;

/// What the kernel runs from the initramfs (init/main.c's default
/// rdinit=/init); systemd is PID 1 in the initrd too.
const INIT: (&str, &str) = ("init", "usr/lib/systemd/systemd");
/// Its presence tells systemd it runs in an initrd (INITRD_INTERFACE.md);
/// os-release(5) format.
const INITRD_RELEASE: &str = "etc/initrd-release";
/// The image's os-release, which the initrd's describes.
const OS_RELEASE: &str = "usr/lib/os-release";
/// Units of the staged packages that cannot work or have nothing to do in
/// the initrd, masked (systemctl(1) mask: a link to /dev/null in
/// /etc/systemd/system); the real root starts its own copies as usual.
/// ldconfig.service runs when /etc/ld.so.cache is missing, but ldconfig
/// (libc-bin) is not in the initrd, and the loader finds the libraries in
/// its default folders (merged /usr) without a cache. The others are
/// sysinit.target's API filesystems and module loads that only the real
/// root uses (huge pages, POSIX queues, debugfs, tracefs, configfs, FUSE,
/// loop devices, static nodes for modules the initrd does not have): each
/// is a process or a module load, a fraction of a second under TCG, for
/// nothing before the switch to the real root (docs/performance.md).
const MASK: &[&str] = &[
    "ldconfig.service",
    "dev-hugepages.mount",
    "dev-mqueue.mount",
    "sys-kernel-debug.mount",
    "sys-kernel-tracing.mount",
    "sys-kernel-config.mount",
    "sys-fs-fuse-connections.mount",
    "modprobe@configfs.service",
    "modprobe@fuse.service",
    "modprobe@loop.service",
    "modprobe@drm.service",
    "modprobe@efi_pstore.service",
    "kmod-static-nodes.service",
];
/// What an initrd has no use for: documentation, translations, shell
/// completions, iconv's converters (systemd and udev call no iconv), and
/// the hardware database's sources: udev reads only the compiled
/// hwdb.bin, which no package ships and systemd-hwdb-update.service does
/// not build in an initrd (ConditionNeedsUpdate=/etc is false there).
const TRIM: &[&str] = &[
    "usr/lib/udev/hwdb.d",
    "usr/share/doc",
    "usr/share/man",
    "usr/share/info",
    "usr/share/locale",
    "usr/share/lintian",
    "usr/share/bug",
    "usr/share/zsh",
    "usr/share/fish",
    "usr/share/bash-completion",
    "usr/lib/x86_64-linux-gnu/gconv",
];
/// zstd level. Measured on this initrd's 71 MB cpio (zstd 1.5, one core):
/// level 3 gives 24.8 MB in 0.6 s, 9 gives 22.7 MB in 3 s, 15 gives
/// 22.4 MB in 42 s and 19 gives 20.2 MB in 126 s. 9 is where the curve
/// flattens; the levels past it cost minutes for a tenth of the size.
const ZSTD_LEVEL: i32 = 9;
/// The initrd file's mode, as Debian installs its kernels.
const OUTPUT_MODE: u32 = 0o644;

/// What [`build`] made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitrdInfo {
    pub path: PathBuf,
    /// Bytes of the compressed file.
    pub size: u64,
    /// Bytes of the cpio archive before compression.
    pub uncompressed_size: u64,
    pub kernel_version: String,
    /// The kernel this initrd goes with, in the tree
    /// (`usr/lib/modules/VERSION/vmlinuz`, docs/layout.md).
    pub kernel: PathBuf,
    /// Every module shipped (requested ones and their dependencies).
    pub modules: Vec<String>,
}

/// The stage: the initrd of the build's tree at `<work>/initrd`.
pub fn run(b: &Build, tree: &RootfsTree) -> Result<InitrdInfo> {
    make(
        &b.lock,
        b.cache(),
        &b.tools,
        &tree.path,
        &b.profile().initrd.modules,
        &b.work("initrd"),
        b.epoch,
    )
}

/// Makes the initrd for the image whose tree is `rootfs`, with `modules`
/// (the profile's `[initrd] modules`) besides craton's own, and writes it
/// to `out` (atomically); every file gets mtime `epoch`.
pub fn make(
    lock: &Lock,
    cache: &Cache,
    tools: &ToolsTree,
    rootfs: &Path,
    modules: &[String],
    out: &Path,
    epoch: u64,
) -> Result<InitrdInfo> {
    if lock.initrd.is_empty() {
        bail!("the lock has no initrd packages: lock the profile again");
    }
    let kernel_version = modules::kernel_version(rootfs)?;
    let stage = TempTree::beside(out)?;
    let tree = stage.path();
    let debs: Vec<DebInput> = lock
        .initrd
        .iter()
        .map(|p| DebInput::locked(p, cache))
        .collect();
    let jobs = std::thread::available_parallelism().map_or(1, usize::from);
    unpack::unpack_all(tree, &debs, jobs).context("unpacking the initrd's packages")?;
    for rel in TRIM {
        // Through `files::tree`: a package's symlink on the way must not
        // send the removal to the host.
        crate::files::tree::remove(tree, rel)?;
    }
    write_etc(tree, rootfs)?;
    users::Accounts::from_tree(tree)?.write(tree)?;
    let modules = modules::install(rootfs, &kernel_version, tree, tools, modules)?;
    units::install(tree)?;
    ignition::install(tree)?;
    let (size, uncompressed_size) = pack(tree, out, epoch)?;
    tracing::info!(
        "initrd {}: {} modules, {uncompressed_size} bytes, {size} compressed",
        out.display(),
        modules.len()
    );
    Ok(InitrdInfo {
        path: out.to_owned(),
        size,
        uncompressed_size,
        kernel: rootfs
            .join("usr/lib/modules")
            .join(&kernel_version)
            .join("vmlinuz"),
        kernel_version,
        modules,
    })
}

/// /init, /etc/initrd-release and what a first boot of a package's scripts
/// would have left in /etc.
fn write_etc(tree: &Path, rootfs: &Path) -> Result<()> {
    // Every path through `files::tree`: the staged packages' folders could
    // be symlinks that lead out of the tree.
    let link =
        |target: &str, name: &str| crate::files::tree::symlink(tree, &format!("/{name}"), target);
    link(INIT.1, INIT.0)?;
    let text = crate::files::tree::read(rootfs, &format!("/{OS_RELEASE}"))?
        .with_context(|| format!("{}: no /{OS_RELEASE}", rootfs.display()))?;
    let text = String::from_utf8(text).with_context(|| format!("/{OS_RELEASE} is not UTF-8"))?;
    write(tree, INITRD_RELEASE, &initrd_release(&text))?;
    // os-release(5): programs read /etc/os-release first.
    link("initrd-release", "etc/os-release")?;
    // Empty: systemd treats the machine ID as not yet known and keeps it in
    // /run (machine-id(5)); the real one lives on ROOT.
    write(tree, "etc/machine-id", "")?;
    // Without nsswitch.conf glibc still uses files, but say so.
    write(
        tree,
        "etc/nsswitch.conf",
        "passwd: files\ngroup: files\nshadow: files\n",
    )?;
    crate::files::tree::resolve_dir(tree, ENABLE_DIR, true)?;
    for unit in MASK {
        link("/dev/null", &format!("{ENABLE_DIR}/{unit}"))?;
    }
    Ok(())
}

fn write(tree: &Path, rel: &str, text: &str) -> Result<()> {
    crate::files::tree::write_file(tree, &format!("/{rel}"), text.as_bytes(), 0o644).map(|_| ())
}

/// The image's os-release marked as its initrd: PRETTY_NAME gets " (initrd)"
/// and VARIANT says "initrd"; the rest (ID, VERSION_ID, IMAGE_VERSION)
/// stays, since sysexts for the initrd match on it.
pub fn initrd_release(os_release: &str) -> String {
    let mut out = String::new();
    for line in os_release.lines() {
        if let Some(v) = line.strip_prefix("PRETTY_NAME=") {
            let v = v.trim_matches(['"', '\'']);
            out += &format!("PRETTY_NAME=\"{v} (initrd)\"\n");
        } else if !line.starts_with("VARIANT=") {
            out += line;
            out.push('\n');
        }
    }
    out + "VARIANT=\"initrd\"\n"
}

/// Writes the tree as a zstd-compressed cpio beside `out` and renames it
/// into place; returns the compressed and uncompressed sizes.
fn pack(tree: &Path, out: &Path, epoch: u64) -> Result<(u64, u64)> {
    let tmp = TempFile::beside(out)?;
    let mut zst = zstd::stream::Encoder::new(BufWriter::new(tmp.as_file()), ZSTD_LEVEL)
        .context("starting the zstd encoder")?;
    // The kernel's unzstd verifies the frame checksum when present.
    zst.include_checksum(true).context("configuring zstd")?;
    let (zst, uncompressed) = cpio::pack_tree(tree, epoch, zst)?;
    zst.finish()
        .and_then(|mut w| w.flush())
        .with_context(|| format!("compressing {}", out.display()))?;
    // A temporary file is private (0600); an initrd holds nothing secret.
    tmp.set_mode(OUTPUT_MODE)?;
    let size = tmp.as_file().metadata().map(|m| m.len()).unwrap_or(0);
    tmp.persist(out)?;
    Ok((size, uncompressed))
}

#[cfg(test)]
mod tests;
