//! What a build made, as `craton build` prints it and as one JSON object
//! with `--json` (docs/cli.md describes every field).

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{Context as _, Result};
use serde::Serialize;

use super::StepTime;
use crate::context::Build;
use crate::disk::{PartKind, PlatformDisk, Slot};
use crate::initrd::InitrdInfo;
use crate::manifest::Manifest;
use crate::rootfs::RootfsTree;
use crate::usr::UsrImage;

/// The facts of a finished build.
#[derive(Debug, Clone, Serialize)]
pub struct BuildOutput {
    /// The platforms built, in craton's order.
    pub platforms: Vec<String>,
    /// Every file of the output folder but the manifest, in the
    /// manifest's order.
    pub files: Vec<BuiltFile>,
    /// Each platform's disk: apparent size and bytes allocated in the
    /// work folder before it became its outputs (the disks are sparse).
    pub disks: Vec<BuiltDisk>,
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
    /// The disk GUID, the same on every platform's disk.
    pub disk_guid: String,
    /// PARTUUID of every partition, by GPT label.
    pub partuuids: BTreeMap<String, String>,
    pub base_reused: bool,
    /// manifest.json beside the outputs (signed when manifest.json.sig is).
    pub manifest: PathBuf,
    /// Seconds per stage, in order.
    pub stages: Vec<StepTime>,
}

/// One output file.
#[derive(Debug, Clone, Serialize)]
pub struct BuiltFile {
    pub path: PathBuf,
    /// manifest.json's kind (docs/signing.md).
    pub kind: String,
    pub platform: Option<String>,
    pub size: u64,
}

/// One platform's disk.
#[derive(Debug, Clone, Serialize)]
pub struct BuiltDisk {
    pub platform: String,
    pub size: u64,
    pub allocated: u64,
}

impl BuildOutput {
    pub fn new(
        b: &Build,
        tree: &RootfsTree,
        usr: &UsrImage,
        initrd: &InitrdInfo,
        disks: &[PlatformDisk],
        (manifest, m): (PathBuf, Manifest),
        stages: Vec<StepTime>,
    ) -> Result<Self> {
        let first = disks.first().context("the build made no disk")?;
        Ok(Self {
            platforms: m.platforms.clone(),
            files: m
                .outputs
                .iter()
                .map(|o| BuiltFile {
                    path: b.out_dir.join(&o.file),
                    kind: o.kind.clone(),
                    platform: o.platform.clone(),
                    size: o.size,
                })
                .collect(),
            disks: disks
                .iter()
                .map(|d| BuiltDisk {
                    platform: d.platform.name().to_owned(),
                    size: d.info.size,
                    allocated: d.allocated,
                })
                .collect(),
            usr_fs_size: usr.fs_size,
            usr_total_size: usr.total_size,
            usr_filesystem: usr.fs.name().to_owned(),
            usr_compression: usr.compression.map_or("none", |c| c.name()).to_owned(),
            root_hash: usr.verity.root_hash_hex(),
            hash_offset: usr.verity.hash_offset,
            kernel_version: initrd.kernel_version.clone(),
            initrd_size: initrd.size,
            disk_guid: first.info.disk_guid.to_string(),
            partuuids: first
                .info
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
