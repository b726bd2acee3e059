//! The disk stage's entry point: the build's /usr image, ESP files, tree
//! and platform become the [`DiskSpec`] that [`super::write_disk`] writes
//! to `<out>/<name>.raw`.

use anyhow::Result;

use super::{DiskGuids, DiskInfo, DiskSizes, DiskSpec, OEM_FS_LABEL, ROOT_FS_LABEL, write_disk};
use crate::boot::Esp;
use crate::context::Build;
use crate::profile::Platform;
use crate::rootfs::RootfsTree;
use crate::usr::UsrImage;

/// The raw image's file name after the image name.
pub const RAW_SUFFIX: &str = ".raw";

/// The stage: writes the image (atomically) and says where everything went.
pub fn run(b: &Build, tree: &RootfsTree, usr: &UsrImage, esp: &Esp) -> Result<DiskInfo> {
    let disk = &b.profile().disk;
    let spec = DiskSpec {
        sizes: DiskSizes::from_profile(disk),
        guids: DiskGuids::from_seed(&b.seed),
        usr_a: usr.path.clone(),
        usr_b: disk.usr_b,
        esp_files: esp.files.clone(),
        root_tree: tree.path.clone(),
        oem_files: oem_files(b.platform),
        root_label: ROOT_FS_LABEL.into(),
        oem_label: OEM_FS_LABEL.into(),
        epoch: b.epoch,
    };
    write_disk(&spec, &b.tools, &b.output(RAW_SUFFIX))
}

/// The OEM partition's files: which platform the image was built for, in
/// os-release(5) syntax (Flatcar's /oem/oem-release).
fn oem_files(platform: Platform) -> Vec<(String, Vec<u8>)> {
    let name = platform.name();
    vec![(
        "oem-release".into(),
        format!("ID={name}\nNAME=\"craton {name}\"\n").into_bytes(),
    )]
}
