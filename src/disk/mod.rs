//! The disk stage: one raw, sparse image with the partitions of
//! `crate::partition` (docs/image.md), GRUB's BIOS boot code in the
//! protective MBR and BIOS-BOOT, the ESP as FAT32, the /usr image in USR-A
//! (and optionally USR-B), and ext4 filesystems for OEM and ROOT.
//!
//! The boot stage decides what goes on the ESP (`crate::boot::esp`): this
//! module writes what it is given, it does not write grub.cfg text. All
//! identifiers (disk GUID, partition GUIDs, filesystem UUIDs) come from a
//! seed, so the same inputs give the same bytes, and the boot stage knows
//! USR-A's PARTUUID (`DiskGuids::from_seed(&seed).part(PartKind::Usr(
//! Slot::A))`) before the disk exists (it goes into slot.cfg on the ESP).
//!
//! The entry point is [`run`] (in `stage`); [`write_disk`] writes any
//! [`DiskSpec`]. Not here: grub.cfg text, the verity tree, the initrd,
//! output formats.

use std::path::PathBuf;

use anyhow::{Result, bail};
use uuid::Uuid;

use crate::profile::Disk;

mod bios;
mod esp;
mod ext4;
mod fat_fixup;
mod gpt;
mod image;
mod stage;

pub use crate::boot::esp::{EspFile, Source};
pub use crate::partition::{
    DiskGuids, MAX_PARTITION_MIB, Mib, OEM_FS_LABEL, PartKind, ROOT_FS_LABEL, SECTOR, Slot,
    TYPE_BIOS_BOOT, TYPE_ESP, TYPE_LINUX_DATA, TYPE_ROOT_X86_64, TYPE_USR_X86_64,
};

pub use bios::{CORE_MODULES, CORE_PREFIX};
pub use esp::{ESP_LABEL, Region, grubenv};
pub use image::write_disk;
pub use stage::{PlatformDisk, RAW_SUFFIX, run};

/// Partition sizes (profile `[disk]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiskSizes {
    pub esp: Mib,
    pub bios_boot: Mib,
    pub usr: Mib,
    pub oem: Mib,
    pub root: Mib,
    /// The whole image is rounded up to a multiple of this (GCE wants
    /// whole GiB); the rest after ROOT is free space that ROOT grows into.
    pub total_multiple: Mib,
}

impl DiskSizes {
    pub fn from_profile(disk: &Disk) -> Self {
        Self {
            esp: disk.esp,
            bios_boot: disk.bios_boot,
            usr: disk.usr,
            oem: disk.oem,
            root: disk.root,
            total_multiple: Mib(1),
        }
    }

    pub fn of(&self, kind: PartKind) -> Mib {
        match kind {
            PartKind::Esp => self.esp,
            PartKind::BiosBoot => self.bios_boot,
            PartKind::Usr(_) => self.usr,
            PartKind::Oem => self.oem,
            PartKind::Root => self.root,
        }
    }
}

/// What USR-B holds in a fresh image (the profile's [disk] usr-b).
pub use crate::platform::oem::OemFile;
pub use crate::profile::UsrB;

/// Everything the disk is made of.
#[derive(Debug, Clone)]
pub struct DiskSpec {
    pub sizes: DiskSizes,
    pub guids: DiskGuids,
    /// The /usr image (filesystem followed by its verity tree), written at
    /// USR-A's first byte.
    pub usr_a: PathBuf,
    pub usr_b: UsrB,
    pub esp_files: Vec<EspFile>,
    /// A root filesystem tree; everything but its `usr` goes onto ROOT
    /// (`usr` becomes an empty mount point).
    pub root_tree: PathBuf,
    /// OEM files: path relative to the OEM filesystem's root, content and
    /// mode (`crate::platform::oem`).
    pub oem_files: Vec<OemFile>,
    pub root_label: String,
    pub oem_label: String,
    /// SOURCE_DATE_EPOCH: every timestamp the stage writes.
    pub epoch: u64,
}

/// One partition as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartInfo {
    pub kind: PartKind,
    pub label: String,
    pub number: u32,
    pub first_lba: u64,
    /// Inclusive, as in the GPT entry.
    pub last_lba: u64,
    pub type_guid: Uuid,
    pub part_guid: Uuid,
}

impl PartInfo {
    pub fn offset(&self) -> u64 {
        self.first_lba * SECTOR
    }

    pub fn len(&self) -> u64 {
        (self.last_lba + 1 - self.first_lba) * SECTOR
    }

    pub fn is_empty(&self) -> bool {
        self.last_lba < self.first_lba
    }
}

/// The written disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskInfo {
    pub path: PathBuf,
    /// Bytes.
    pub size: u64,
    pub partitions: Vec<PartInfo>,
    pub disk_guid: Uuid,
}

impl DiskInfo {
    pub fn partition(&self, kind: PartKind) -> Option<&PartInfo> {
        self.partitions.iter().find(|p| p.kind == kind)
    }

    /// The PARTUUID of a /usr slot (systemd.verity_usr_data=PARTUUID=...).
    pub fn usr_partuuid(&self, slot: Slot) -> Option<Uuid> {
        self.partition(PartKind::Usr(slot)).map(|p| p.part_guid)
    }
}

/// A path inside a filesystem the stage writes: absolute or relative,
/// split into plain components, no `.`, `..` or empty names.
fn components(path: &str) -> Result<Vec<&str>> {
    let parts: Vec<&str> = path.split('/').filter(|c| !c.is_empty()).collect();
    if parts.is_empty() {
        bail!("{path:?} names no file");
    }
    if let Some(bad) = parts.iter().find(|c| **c == "." || **c == "..") {
        bail!("{path:?} has a {bad:?} component");
    }
    Ok(parts)
}

#[cfg(test)]
mod tests;
