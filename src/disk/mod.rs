//! The disk stage: one raw, sparse image with the GPT layout of DESIGN.md
//! ("Disk layout"), GRUB's BIOS boot code in the protective MBR and
//! BIOS-BOOT, the ESP as FAT32, the /usr image in USR-A (and optionally
//! USR-B), and ext4 filesystems for OEM and ROOT.
//!
//! The caller decides what goes on the ESP (shim, GRUB, grub.cfg, grubenv,
//! kernels, slot.cfg): this module writes what it is given, it does not
//! write grub.cfg text. All identifiers (disk GUID, partition GUIDs,
//! filesystem UUIDs) come from a seed, so the same inputs give the same
//! bytes, and the caller knows USR-A's PARTUUID before the disk exists (it
//! goes into slot.cfg on the ESP).
//!
//! Use: `DiskGuids::from_seed(&seed)` first (its `part(PartKind::Usr(
//! Slot::A))` is the PARTUUID for the kernel command line), build the ESP
//! list (shim as /EFI/BOOT/BOOTX64.EFI, grubx64.efi and mmx64.efi beside
//! it, /EFI/debian/grub.cfg and /grub/grub.cfg, /grub/grubenv from
//! [`grubenv`], /craton/a/{vmlinuz,initrd,slot.cfg}), then [`write_disk`].
//! Not here: grub.cfg text, the verity tree, the initrd, output formats.

use std::fmt;
use std::path::PathBuf;

use anyhow::{Result, bail};
use serde::de::{self, Deserialize, Deserializer, Visitor};
use uuid::Uuid;

use crate::digest::Sha256;
use crate::profile::Disk;

mod bios;
mod esp;
mod ext4;
mod fat_fixup;
mod gpt;
mod image;
#[cfg(test)]
mod tests;

pub use bios::{CORE_MODULES, CORE_PREFIX};
pub use esp::{ESP_LABEL, grubenv};
pub use image::write_disk;

/// Logical sector size of the image (DESIGN.md: 512-byte sectors).
pub const SECTOR: u64 = 512;

/// A size in MiB, the unit of the profile's `[disk]` table and of the
/// partition alignment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Mib(pub u64);

impl Mib {
    pub const fn bytes(self) -> u64 {
        self.0 * 1024 * 1024
    }

    pub const fn sectors(self) -> u64 {
        self.bytes() / SECTOR
    }
}

impl fmt::Display for Mib {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} MiB", self.0)
    }
}

/// Upper bound for any partition size: 16 TiB in MiB keeps byte and sector
/// arithmetic far from u64 overflow; a larger value is a typo.
pub const MAX_PARTITION_MIB: Mib = Mib(16 * 1024 * 1024);

/// A partition size as a profile writes it: an integer from 1 to
/// [`MAX_PARTITION_MIB`]. Checked here, so a `Mib` read from a profile is
/// one the disk stage can lay out; serde's own u64 would let 0 through and
/// answer -1 with "expected u64" rather than the range.
impl<'de> Deserialize<'de> for Mib {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct SizeVisitor;

        impl Visitor<'_> for SizeVisitor {
            type Value = Mib;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "a size in MiB from 1 to {}", MAX_PARTITION_MIB.0)
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Mib, E> {
                match u64::try_from(v) {
                    Ok(n) => self.visit_u64(n),
                    Err(_) => Err(out_of_range(v)),
                }
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Mib, E> {
                if (1..=MAX_PARTITION_MIB.0).contains(&v) {
                    Ok(Mib(v))
                } else {
                    Err(out_of_range(v))
                }
            }
        }

        fn out_of_range<E: de::Error>(v: impl fmt::Display) -> E {
            E::custom(format_args!(
                "expected a size in MiB from 1 to {}, got {v}",
                MAX_PARTITION_MIB.0
            ))
        }

        d.deserialize_i64(SizeVisitor)
    }
}

/// The /usr slots are the boot module's.
pub use crate::boot::Slot;

/// The partitions of the image, in table (and disk) order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PartKind {
    Esp,
    BiosBoot,
    Usr(Slot),
    Oem,
    Root,
}

impl PartKind {
    /// Table order; ROOT last so that it can grow into the rest of the disk.
    pub const ALL: [PartKind; 6] = [
        PartKind::Esp,
        PartKind::BiosBoot,
        PartKind::Usr(Slot::A),
        PartKind::Usr(Slot::B),
        PartKind::Oem,
        PartKind::Root,
    ];

    /// The GPT partition name (PARTLABEL).
    pub fn label(self) -> &'static str {
        match self {
            PartKind::Esp => "EFI-SYSTEM",
            PartKind::BiosBoot => "BIOS-BOOT",
            PartKind::Usr(Slot::A) => "USR-A",
            PartKind::Usr(Slot::B) => "USR-B",
            PartKind::Oem => "OEM",
            PartKind::Root => "ROOT",
        }
    }

    /// The partition number (1-based, as in /dev/sda1 and (hd0,gpt1)).
    pub fn number(self) -> u32 {
        match self {
            PartKind::Esp => 1,
            PartKind::BiosBoot => 2,
            PartKind::Usr(Slot::A) => 3,
            PartKind::Usr(Slot::B) => 4,
            PartKind::Oem => 5,
            PartKind::Root => 6,
        }
    }

    pub fn type_guid(self) -> Uuid {
        match self {
            PartKind::Esp => gpt::TYPE_ESP,
            PartKind::BiosBoot => gpt::TYPE_BIOS_BOOT,
            PartKind::Usr(_) => gpt::TYPE_USR_X86_64,
            PartKind::Oem => gpt::TYPE_LINUX_DATA,
            PartKind::Root => gpt::TYPE_ROOT_X86_64,
        }
    }
}

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

/// Every identifier on the disk, derived from one seed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskGuids {
    pub disk: Uuid,
    /// Partition GUIDs (PARTUUID), in [`PartKind::ALL`] order.
    pub partitions: [Uuid; 6],
    /// ext4 filesystem UUIDs.
    pub root_fs: Uuid,
    pub oem_fs: Uuid,
    /// ext4 directory hash seeds (random otherwise, which breaks
    /// reproducibility).
    pub root_hash_seed: Uuid,
    pub oem_hash_seed: Uuid,
    /// The FAT volume serial number of the ESP.
    pub esp_volume_id: u32,
}

impl DiskGuids {
    /// Name-based identifiers: SHA-256 of the seed and a name, cut to 128
    /// bits with the version-4 and RFC 4122 variant bits set, the way
    /// systemd-repart derives partition UUIDs from a seed (a hash is as
    /// good as random for uniqueness, and stable for a given build).
    pub fn from_seed(seed: &Sha256) -> Self {
        let id = |name: &str| {
            let mut data = b"craton disk\0".to_vec();
            data.extend_from_slice(seed.as_bytes());
            data.extend_from_slice(name.as_bytes());
            let h = Sha256::of(&data);
            let mut b = [0u8; 16];
            b.copy_from_slice(&h.as_bytes()[..16]);
            uuid::Builder::from_random_bytes(b).into_uuid()
        };
        let esp = id("esp-volume-id").as_bytes()[..4]
            .try_into()
            .map(u32::from_le_bytes)
            .unwrap_or_default();
        Self {
            disk: id("disk"),
            partitions: PartKind::ALL.map(|k| id(&format!("partition {}", k.label()))),
            root_fs: id("fs ROOT"),
            oem_fs: id("fs OEM"),
            root_hash_seed: id("hash-seed ROOT"),
            oem_hash_seed: id("hash-seed OEM"),
            esp_volume_id: esp,
        }
    }

    /// The PARTUUID of a partition.
    pub fn part(&self, kind: PartKind) -> Uuid {
        self.partitions[kind.number() as usize - 1]
    }
}

/// Where an ESP file's bytes come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    File(PathBuf),
    Bytes(Vec<u8>),
}

/// One file on the ESP: an absolute path inside the FAT filesystem
/// ("/EFI/BOOT/BOOTX64.EFI") and its content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EspFile {
    pub path: String,
    pub source: Source,
}

/// What USR-B holds in a fresh image (the profile's [disk] usr-b).
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
    /// OEM files: path relative to the OEM filesystem's root, and content.
    pub oem_files: Vec<(String, Vec<u8>)>,
    pub root_label: String,
    pub oem_label: String,
    /// SOURCE_DATE_EPOCH: every timestamp the stage writes.
    pub epoch: u64,
}

/// The default filesystem labels (root=PARTLABEL=ROOT is the partition;
/// these are the filesystems' own labels, for LABEL= and `search --label`).
pub const ROOT_FS_LABEL: &str = "ROOT";
pub const OEM_FS_LABEL: &str = "OEM";

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
