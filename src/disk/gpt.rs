//! The partition layout and the GPT, written with the `gpt` crate.
//!
//! The layout is computed here (1 MiB alignment, partitions in table order,
//! ROOT last, the disk rounded up to whole MiB for the backup table); the
//! crate serialises the headers and entries with their CRCs. Its
//! `add_partition` makes random partition GUIDs, so the entries are built
//! as [`gpt::partition::Partition`] values with our GUIDs and LBAs and handed
//! over with `update_partitions`; the disk GUID goes through
//! `create_from_device`. The protective MBR is the crate's too; the BIOS
//! boot code is laid over it afterwards (see `bios`).

use std::collections::BTreeMap;
use std::fs::File;

use anyhow::{Context, Result, bail};
use gpt::disk::LogicalBlockSize;
use gpt::mbr::ProtectiveMBR;
use gpt::partition::Partition;
use gpt::partition_types::{OperatingSystem, Type};
use uuid::{Uuid, uuid};

use super::{DiskGuids, DiskSizes, Mib, PartInfo, PartKind, SECTOR};

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

/// Partitions start on 1 MiB boundaries (what parted, sgdisk and
/// systemd-repart use; it is a multiple of every erase block and RAID
/// stripe in practice). The first MiB holds the MBR and the primary GPT.
pub const ALIGN: Mib = Mib(1);
/// The backup GPT (header + 128 entries of 128 bytes) takes 33 sectors at
/// the end; a whole MiB keeps the disk size aligned too.
const TAIL: Mib = Mib(1);

/// The partitions' places and the disk's size in bytes.
pub fn layout(sizes: &DiskSizes, guids: &DiskGuids) -> Result<(Vec<PartInfo>, u64)> {
    let mut next = ALIGN.sectors();
    let mut parts = Vec::new();
    for kind in PartKind::ALL {
        let size = sizes.of(kind);
        if size.0 == 0 {
            bail!("partition {} has size 0", kind.label());
        }
        let first = next;
        next = next
            .checked_add(size.sectors())
            .context("disk size overflows")?;
        parts.push(PartInfo {
            kind,
            label: kind.label().to_owned(),
            number: kind.number(),
            first_lba: first,
            last_lba: next - 1,
            type_guid: kind.type_guid(),
            part_guid: guids.part(kind),
        });
    }
    let mut bytes = next * SECTOR + TAIL.bytes();
    let multiple = sizes.total_multiple.bytes().max(ALIGN.bytes());
    bytes = bytes.div_ceil(multiple) * multiple;
    Ok((parts, bytes))
}

/// Writes the protective MBR and both GPTs (the image must have its final
/// size: the backup goes to the last sectors).
pub fn write(file: &mut File, disk_bytes: u64, parts: &[PartInfo], disk_guid: Uuid) -> Result<()> {
    let sectors = disk_bytes / SECTOR;
    // The protective partition covers the disk after LBA 0, or as much as
    // 32 bits can say (UEFI 2.10, 5.2.3: 0xFFFFFFFF when too large).
    let mbr_size = u32::try_from(sectors - 1).unwrap_or(u32::MAX);
    ProtectiveMBR::with_lb_size(mbr_size)
        .overwrite_lba0(file)
        .context("writing the protective MBR")?;

    let mut disk = gpt::GptConfig::new()
        .writable(true)
        .logical_block_size(LogicalBlockSize::Lb512)
        .create_from_device(&mut *file, Some(disk_guid))
        .context("creating the GPT")?;
    let entries: BTreeMap<u32, Partition> = parts
        .iter()
        .map(|p| {
            let entry = Partition {
                part_type_guid: Type {
                    guid: p.type_guid,
                    os: OperatingSystem::None,
                },
                part_guid: p.part_guid,
                first_lba: p.first_lba,
                last_lba: p.last_lba,
                flags: 0,
                name: p.label.clone(),
            };
            (p.number, entry)
        })
        .collect();
    disk.update_partitions(entries)
        .context("setting the GPT entries")?;
    let header = disk.header();
    if let Some(p) = parts
        .iter()
        .find(|p| p.first_lba < header.first_usable || p.last_lba > header.last_usable)
    {
        bail!(
            "partition {} ({}..{}) is outside the usable sectors {}..{}",
            p.label,
            p.first_lba,
            p.last_lba,
            header.first_usable,
            header.last_usable
        );
    }
    disk.write().context("writing the GPT")?;
    Ok(())
}
