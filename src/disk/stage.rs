//! The disk stage's entry point: the build's /usr image, ESP files and
//! tree become one [`DiskSpec`] per platform, which [`super::write_disk`]
//! writes to `<work>/<platform>.raw`. The disks differ only in the OEM
//! partition (`crate::platform::oem`) and, for gce, in their size (a whole
//! number of GiB); the outputs stage turns each into its platform's files.

use std::os::unix::fs::MetadataExt as _;

use anyhow::{Context as _, Result};

use super::{DiskGuids, DiskInfo, DiskSizes, DiskSpec, OEM_FS_LABEL, ROOT_FS_LABEL, write_disk};
use crate::boot::Esp;
use crate::context::Build;
use crate::platform;
use crate::profile::Platform;
use crate::rootfs::RootfsTree;
use crate::usr::UsrImage;

/// A raw image's file name after the image name.
pub const RAW_SUFFIX: &str = ".raw";

/// One platform's disk, written in the work folder.
#[derive(Debug, Clone)]
pub struct PlatformDisk {
    pub platform: Platform,
    pub info: DiskInfo,
    /// Bytes allocated to the sparse file.
    pub allocated: u64,
}

/// The stage: writes each platform's disk and says where everything went.
pub fn run(b: &Build, tree: &RootfsTree, usr: &UsrImage, esp: &Esp) -> Result<Vec<PlatformDisk>> {
    let disk = &b.profile().disk;
    let mut out = Vec::new();
    for &p in &b.platforms {
        let mut sizes = DiskSizes::from_profile(disk);
        sizes.total_multiple = platform::disk_multiple(p);
        let spec = DiskSpec {
            sizes,
            guids: DiskGuids::from_seed(&b.seed),
            usr_a: usr.path.clone(),
            usr_b: disk.usr_b,
            esp_files: esp.files.clone(),
            root_tree: tree.path.clone(),
            oem_files: platform::oem::files(
                p,
                &b.profile().platform(p),
                b.profile()
                    .provision
                    .ignition
                    .as_ref()
                    .map(|c| c.content.as_str()),
            ),
            root_label: ROOT_FS_LABEL.into(),
            oem_label: OEM_FS_LABEL.into(),
            epoch: b.epoch,
        };
        let info = write_disk(
            &spec,
            &b.tools,
            &b.work(&format!("{}{RAW_SUFFIX}", p.name())),
        )?;
        let allocated = std::fs::metadata(&info.path)
            .with_context(|| format!("reading {}", info.path.display()))?
            .blocks()
            * 512;
        out.push(PlatformDisk {
            platform: p,
            info,
            allocated,
        });
    }
    Ok(out)
}
