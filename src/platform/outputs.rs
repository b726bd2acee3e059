//! The outputs stage: each platform's disk (written by the disk stage in
//! the work folder) becomes the files that platform is shipped as, in the
//! output folder, each renamed into place when whole:
//!
//! - qemu: `<name>-qemu.qcow2` (`qemu-img convert` from the tools tree);
//! - gce: `<name>-gce.tar.gz`, one member `disk.raw` (its size a whole
//!   number of GiB) in a GNU sparse tar, gzip made on every core
//!   (`crate::outputs`): what `gcloud compute images create --source-uri`
//!   imports (docs/gce.md);
//! - metal: `<name>-metal.raw` and `<name>-metal.raw.zst` (zstd on every
//!   core), to write to a disk as it is.
//!
//! Each disk's partitions are hashed here, before the raw file is turned
//! into its output, for the manifest (`crate::manifest`).

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};

use crate::context::Build;
use crate::disk::PlatformDisk;
use crate::files::{RELEASE_MODE, TempFile, move_into_place};
use crate::manifest::{self, Disk};
use crate::profile::Platform;

/// Output file name suffixes, after the image name.
pub const QCOW2_SUFFIX: &str = "-qemu.qcow2";
pub const GCE_SUFFIX: &str = "-gce.tar.gz";
pub const METAL_SUFFIX: &str = "-metal.raw";
pub const ZST_SUFFIX: &str = ".zst";
/// The GCE tarball's one member (Google's "Import an existing image":
/// the file in the archive must be named disk.raw).
pub const GCE_MEMBER: &str = "disk.raw";
/// The guest OS features the GCE image is created with (docs/gce.md):
/// booted by UEFI (GRUB through shim), multiqueue virtio-scsi, and the
/// gVNIC driver in the initrd.
pub const GCE_GUEST_OS_FEATURES: [&str; 3] = ["UEFI_COMPATIBLE", "VIRTIO_SCSI_MULTIQUEUE", "GVNIC"];
/// gzip level of the GCE tarball: gzip's own default.
const GZIP_LEVEL: u32 = 6;
/// zstd level of the metal image: the default level, multithreaded.
const ZSTD_LEVEL: i32 = 3;

/// The manifest's kinds of output (`outputs[].kind`).
pub const KIND_QCOW2: &str = "qcow2";
pub const KIND_GCE_TAR: &str = "gce-tar-gz";
pub const KIND_DISK_RAW: &str = "disk-raw";
pub const KIND_DISK_RAW_ZST: &str = "disk-raw-zst";

/// One file a platform is shipped as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputFile {
    pub path: PathBuf,
    pub kind: &'static str,
}

/// A platform's files and the disk they hold.
#[derive(Debug, Clone)]
pub struct PlatformOutput {
    pub platform: Platform,
    pub files: Vec<OutputFile>,
    /// The disk inside the files, for the manifest.
    pub disk: Disk,
}

/// The stage. The work folder's raw disks are spent.
pub fn run(b: &Build, disks: &[PlatformDisk]) -> Result<Vec<PlatformOutput>> {
    let mut out = Vec::new();
    for d in disks {
        let raw = &d.info.path;
        let disk = manifest::disk_of(d.platform, &d.info)?;
        let files = match d.platform {
            Platform::Qemu => vec![qcow2(b, raw)?],
            Platform::Gce => vec![gce(b, raw)?],
            Platform::Metal => metal(b, raw)?,
        };
        for f in &files {
            tracing::info!("{}: {}", d.platform, f.path.display());
        }
        out.push(PlatformOutput {
            platform: d.platform,
            files,
            disk,
        });
    }
    Ok(out)
}

/// `<name>-qemu.qcow2`: qemu-img's qcow2 of the raw disk. Uncompressed
/// clusters: QEMU reads them without inflating, and the file is sparse
/// where the raw one is (docs/platforms.md).
fn qcow2(b: &Build, raw: &Path) -> Result<OutputFile> {
    let dest = b.output(QCOW2_SUFFIX);
    let tmp = TempFile::beside(&dest)?;
    b.tools
        .cmd("qemu-img")?
        .args(["convert", "-q", "-f", "raw", "-O", "qcow2"])
        .arg(raw)
        .arg(tmp.path())
        .run()
        .context("converting the qemu disk to qcow2")?;
    tmp.set_mode(RELEASE_MODE)?;
    tmp.persist(&dest)?;
    Ok(OutputFile {
        path: dest,
        kind: KIND_QCOW2,
    })
}

/// `<name>-gce.tar.gz`: disk.raw alone in a GNU sparse tar, gzip on
/// every core.
fn gce(b: &Build, raw: &Path) -> Result<OutputFile> {
    let dest = b.output(GCE_SUFFIX);
    let tmp = TempFile::beside(&dest)?;
    let file = tmp
        .as_file()
        .try_clone()
        .context("opening the GCE tarball")?;
    let gz =
        crate::outputs::pgzip::ParGz::new(std::io::BufWriter::new(file), GZIP_LEVEL, b.jobs())?;
    let gz = crate::outputs::sparse_tar::write_sparse_tar(raw, GCE_MEMBER, b.epoch, gz)
        .with_context(|| format!("writing {}", dest.display()))?;
    let mut w = gz
        .finish()
        .context("finishing the GCE tarball's gzip stream")?;
    std::io::Write::flush(&mut w).context("writing the GCE tarball")?;
    drop(w);
    tmp.set_mode(RELEASE_MODE)?;
    tmp.persist(&dest)?;
    Ok(OutputFile {
        path: dest,
        kind: KIND_GCE_TAR,
    })
}

/// `<name>-metal.raw` (the disk itself, moved) and its zstd copy.
fn metal(b: &Build, raw: &Path) -> Result<Vec<OutputFile>> {
    let dest = b.output(METAL_SUFFIX);
    let zst = b.output(&format!("{METAL_SUFFIX}{ZST_SUFFIX}"));
    crate::outputs::zst::compress_zstd(raw, &zst, ZSTD_LEVEL, b.jobs())?;
    move_into_place(raw, &dest)?;
    Ok(vec![
        OutputFile {
            path: dest,
            kind: KIND_DISK_RAW,
        },
        OutputFile {
            path: zst,
            kind: KIND_DISK_RAW_ZST,
        },
    ])
}
