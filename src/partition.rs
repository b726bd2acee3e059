//! Facts about the image's partitions that several stages share: which
//! partitions there are, their GPT labels, numbers and type GUIDs, the two
//! /usr slots, the identifiers derived from a build's seed, sizes in MiB
//! and the sector size. Each is spelled once here;
//! the boot stage (GRUB, slot.cfg, the units that find the ESP) and the disk
//! stage (the GPT, the filesystems) both read it, and neither reads the
//! other's copy. The layout itself is in docs/image.md.

use std::fmt;
use std::ops::Not;

use anyhow::{Result, bail};
use serde::de::{self, Deserialize, Deserializer, Visitor};
use uuid::{Uuid, uuid};

use crate::digest::Sha256;

/// Logical sector size of the image (512-byte sectors, what every firmware and
/// virtual disk craton targets uses).
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

    /// The GPT partition name (PARTLABEL); the ESP's FAT volume label and
    /// the ext4 labels of OEM and ROOT are the same words.
    pub const fn label(self) -> &'static str {
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
            PartKind::Esp => TYPE_ESP,
            PartKind::BiosBoot => TYPE_BIOS_BOOT,
            PartKind::Usr(_) => TYPE_USR_X86_64,
            PartKind::Oem => TYPE_LINUX_DATA,
            PartKind::Root => TYPE_ROOT_X86_64,
        }
    }
}

/// One of the two /usr slots.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Slot {
    A,
    B,
}

impl Slot {
    pub const ALL: [Slot; 2] = [Slot::A, Slot::B];

    /// The name in the GRUB environment (`A_OK`, `ORDER="A B"`), as in
    /// RAUC's GRUB boot selection example.
    pub fn env_name(self) -> &'static str {
        match self {
            Slot::A => "A",
            Slot::B => "B",
        }
    }

    /// The lower-case name: ESP folders (/craton/a) and `craton.slot=a`.
    pub fn dir_name(self) -> &'static str {
        match self {
            Slot::A => "a",
            Slot::B => "b",
        }
    }

    /// The GPT partition label of the slot's USR partition.
    pub fn partlabel(self) -> &'static str {
        PartKind::Usr(self).label()
    }

    /// The GRUB menu entry id, used with `set default=`.
    pub fn menu_id(self) -> &'static str {
        match self {
            Slot::A => "craton-a",
            Slot::B => "craton-b",
        }
    }

    /// Parses `a`/`b` (either case), as found after `craton.slot=`.
    pub fn parse(s: &str) -> Result<Slot> {
        match s {
            "a" | "A" => Ok(Slot::A),
            "b" | "B" => Ok(Slot::B),
            _ => bail!("slot name {s:?}: expected a or b"),
        }
    }
}

impl Not for Slot {
    type Output = Slot;
    /// The other slot.
    fn not(self) -> Slot {
        match self {
            Slot::A => Slot::B,
            Slot::B => Slot::A,
        }
    }
}

impl fmt::Display for Slot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.env_name())
    }
}

/// EFI System Partition (UEFI 2.10, 5.3.3 "GPT Partition Entry Array").
pub const TYPE_ESP: Uuid = uuid!("C12A7328-F81F-11D2-BA4B-00A0C93EC93B");
/// BIOS boot partition, where GRUB embeds core.img ("Hah!IdontNeedEFI";
/// GRUB manual, "BIOS installation").
pub const TYPE_BIOS_BOOT: Uuid = uuid!("21686148-6449-6E6F-744E-656564454649");
/// Discoverable Partitions Specification: "/usr partition (x86-64)".
pub const TYPE_USR_X86_64: Uuid = uuid!("8484680C-9521-48C6-9C11-B0720656F69E");
/// Discoverable Partitions Specification: "Generic Linux data partition".
pub const TYPE_LINUX_DATA: Uuid = uuid!("0FC63DAF-8483-4772-8E79-3D69D8477DE4");
/// Discoverable Partitions Specification: "Root partition (x86-64)".
pub const TYPE_ROOT_X86_64: Uuid = uuid!("4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709");

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

/// The default filesystem labels (root=PARTLABEL=ROOT is the partition;
/// these are the filesystems' own labels, for LABEL= and `search --label`).
pub const ROOT_FS_LABEL: &str = PartKind::Root.label();
pub const OEM_FS_LABEL: &str = PartKind::Oem.label();
/// The ESP's FAT volume label, the same word as its partition label.
pub const ESP_LABEL: &str = PartKind::Esp.label();

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn other_slot() {
        assert_eq!(!Slot::A, Slot::B);
        assert_eq!(!!Slot::B, Slot::B);
        assert_eq!(Slot::parse("b").unwrap(), Slot::B);
        assert!(Slot::parse("c").is_err());
    }

    #[test]
    fn labels_numbers_and_sizes() {
        let labels: Vec<&str> = PartKind::ALL.iter().map(|k| k.label()).collect();
        assert_eq!(
            labels,
            ["EFI-SYSTEM", "BIOS-BOOT", "USR-A", "USR-B", "OEM", "ROOT"]
        );
        for (i, k) in PartKind::ALL.iter().enumerate() {
            assert_eq!(k.number() as usize, i + 1);
        }
        assert_eq!(Slot::B.partlabel(), "USR-B");
        assert_eq!(Mib(2).sectors(), 4096);
    }
}
