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
use uuid::Uuid;

use super::{DiskGuids, DiskSizes, Mib, PartInfo, PartKind, SECTOR};

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
