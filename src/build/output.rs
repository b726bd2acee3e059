//! What a build made, as `craton build` prints it and as one JSON object
//! with `--json` (docs/cli.md describes every field).

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

use anyhow::{Context as _, Result};
use serde::Serialize;

use super::StepTime;
use crate::context::Build;
use crate::disk::{DiskInfo, PartKind, Slot};
use crate::initrd::InitrdInfo;
use crate::rootfs::RootfsTree;
use crate::usr::UsrImage;

/// The facts of a finished build.
#[derive(Debug, Clone, Serialize)]
pub struct BuildOutput {
    pub image: PathBuf,
    pub platform: String,
    /// Apparent size of the raw image.
    pub size: u64,
    /// Bytes allocated on disk (the image is sparse).
    pub allocated: u64,
    /// The /usr filesystem, and with its verity tree.
    pub usr_fs_size: u64,
    pub usr_total_size: u64,
    pub usr_filesystem: String,
    /// erofs's compression (`[disk] usr-compression`); "none" for ext4.
    pub usr_compression: String,
    pub root_hash: String,
    /// Where the verity tree starts in the USR partition (bytes).
    pub hash_offset: u64,
    pub kernel_version: String,
    pub initrd_size: u64,
    pub disk_guid: String,
    /// PARTUUID of every partition, by GPT label.
    pub partuuids: BTreeMap<String, String>,
    pub base_reused: bool,
    /// manifest.json beside the image (signed when manifest.json.sig is).
    pub manifest: PathBuf,
    /// Seconds per stage, in order.
    pub stages: Vec<StepTime>,
}

impl BuildOutput {
    pub fn new(
        b: &Build,
        tree: &RootfsTree,
        usr: &UsrImage,
        initrd: &InitrdInfo,
        disk: &DiskInfo,
        manifest: PathBuf,
        stages: Vec<StepTime>,
    ) -> Result<Self> {
        let meta = std::fs::metadata(&disk.path)
            .with_context(|| format!("reading {}", disk.path.display()))?;
        Ok(Self {
            image: disk.path.clone(),
            platform: b.platform.name().to_owned(),
            size: disk.size,
            allocated: meta.blocks() * 512,
            usr_fs_size: usr.fs_size,
            usr_total_size: usr.total_size,
            usr_filesystem: usr.fs.name().to_owned(),
            usr_compression: usr.compression.map_or("none", |c| c.name()).to_owned(),
            root_hash: usr.verity.root_hash_hex(),
            hash_offset: usr.verity.hash_offset,
            kernel_version: initrd.kernel_version.clone(),
            initrd_size: initrd.size,
            disk_guid: disk.disk_guid.to_string(),
            partuuids: disk
                .partitions
                .iter()
                .map(|p| (p.label.clone(), p.part_guid.to_string()))
                .collect(),
            base_reused: tree.base_reused,
            manifest,
            stages,
        })
    }

    /// USR-A's PARTUUID (the kernel command line's verity data device).
    pub fn usr_a_partuuid(&self) -> &str {
        self.partuuids
            .get(PartKind::Usr(Slot::A).label())
            .map_or("", String::as_str)
    }
}
