//! GRUB for BIOS without grub-install: core.img made by the tools tree's
//! grub-mkimage, written into BIOS-BOOT with its blocklist patched, and
//! boot.img's code laid over the protective MBR (docs/architecture.md "Boot and
//! A/B").
//!
//! The patching is what grub-setup (util/setup.c) does for an embedded
//! core.img, with the offsets of GRUB's include/grub/i386/pc/boot.h; it
//! needs no loop device and no access to a real disk. This module does not
//! write grub.cfg: core.img's prefix points at the ESP, where the caller's
//! grub.cfg is.

use std::fs::File;
use std::os::unix::fs::FileExt;

use anyhow::{Context, Result, bail};

use super::{PartInfo, SECTOR};
use crate::tools::ToolsTree;

/// core.img's prefix: /grub on the first partition of the disk it booted
/// from (the ESP), the same folder the UEFI grub.cfg's `load_env -f
/// /grub/grubenv` uses.
pub const CORE_PREFIX: &str = "(,gpt1)/grub";

/// The modules built into core.img. i386-pc GRUB has no module folder to
/// load from at run time (the prefix is the FAT ESP, which has none), so
/// everything grub.cfg may use must be here; grub-mkimage adds their
/// dependencies (extcmd, crypto, gettext, boot, ...) itself.
pub const CORE_MODULES: &[&str] = &[
    // Reading the disk: BIOS int 13h, the GPT, the FAT ESP, and ext4 for
    // an OEM grub snippet (`search --label OEM`, `source`).
    "biosdisk",
    "part_gpt",
    "fat",
    "ext2",
    // The menu and the A/B logic: grub.cfg, grubenv, conditions, loops.
    "normal",
    "configfile",
    "loadenv",
    "search",
    "test",
    "regexp",
    // The PARTUUIDs of the booted disk for the kernel command line.
    "probe",
    "eval",
    "echo",
    "sleep",
    // cat, lsmod and exit (minicmd), ls: debugging at the GRUB prompt.
    "minicmd",
    "ls",
    // Booting: the Linux loader, gzip'd payloads; reboot/halt when no slot
    // is left to try.
    "linux",
    "gzio",
    "reboot",
    "halt",
    // The serial console (ttyS0) beside the screen.
    "serial",
    "terminal",
];

/// GRUB's boot.img constants (include/grub/i386/pc/boot.h).
/// The code of boot.img ends where the MBR's disk signature starts.
const MBR_CODE_LEN: usize = 0x1B8;
/// GRUB_BOOT_MACHINE_KERNEL_SECTOR: u64 LBA of core.img's first sector.
const KERNEL_SECTOR: usize = 0x5C;
/// GRUB_BOOT_MACHINE_BOOT_DRIVE: 0xFF means "the drive the BIOS gave".
const BOOT_DRIVE: usize = 0x64;
/// GRUB_BOOT_MACHINE_DRIVE_CHECK: two NOPs over a jump, so buggy BIOSes
/// that pass a wrong drive number still boot (grub-setup does this for
/// hard disks).
const DRIVE_CHECK: usize = 0x66;
/// diskboot.S's blocklist: the last 12 bytes of core.img's first sector,
/// {u64 start LBA, u16 sector count, u16 load segment}.
const BLOCKLIST: usize = SECTOR as usize - 12;

/// Runs grub-mkimage for i386-pc with [`CORE_MODULES`].
pub fn make_core_img(tools: &ToolsTree, out: &std::path::Path) -> Result<Vec<u8>> {
    let moddir = tools.path("usr/lib/grub/i386-pc");
    tools
        .cmd("grub-mkimage")?
        .args(["-O", "i386-pc", "-p", CORE_PREFIX, "-d"])
        .arg(&moddir)
        .arg("-o")
        .arg(out)
        .args(CORE_MODULES)
        .run()
        .context("making GRUB's core.img")?;
    std::fs::read(out).with_context(|| format!("reading {}", out.display()))
}

/// Points core.img's first sector (diskboot) at the rest of it, which
/// follows it on disk from `first_lba + 1`.
pub fn patch_core_img(core: &mut [u8], first_lba: u64) -> Result<()> {
    let sectors = (core.len() as u64).div_ceil(SECTOR);
    if sectors < 2 {
        bail!(
            "core.img is {} bytes, expected more than a sector",
            core.len()
        );
    }
    let rest = u16::try_from(sectors - 1)
        .with_context(|| format!("core.img has too many sectors ({sectors})"))?;
    core[BLOCKLIST..BLOCKLIST + 8].copy_from_slice(&(first_lba + 1).to_le_bytes());
    core[BLOCKLIST + 8..BLOCKLIST + 10].copy_from_slice(&rest.to_le_bytes());
    // The u16 segment after it stays as grub-mkimage left it (0x820).
    Ok(())
}

/// Lays boot.img's code over an MBR sector, keeping the disk signature,
/// partition records and 0x55AA, and points it at core.img.
pub fn patch_mbr(mbr: &mut [u8; 512], boot_img: &[u8], core_lba: u64) -> Result<()> {
    if boot_img.len() != SECTOR as usize {
        bail!("boot.img is {} bytes, expected 512", boot_img.len());
    }
    mbr[..MBR_CODE_LEN].copy_from_slice(&boot_img[..MBR_CODE_LEN]);
    mbr[KERNEL_SECTOR..KERNEL_SECTOR + 8].copy_from_slice(&core_lba.to_le_bytes());
    mbr[BOOT_DRIVE] = 0xFF;
    mbr[DRIVE_CHECK..DRIVE_CHECK + 2].copy_from_slice(&0x9090u16.to_le_bytes());
    Ok(())
}

/// Writes core.img into BIOS-BOOT (`work` is a scratch folder).
pub fn write_core(
    tools: &ToolsTree,
    work: &std::path::Path,
    disk: &File,
    part: &PartInfo,
) -> Result<()> {
    let mut core = make_core_img(tools, &work.join("core.img"))?;
    if core.len() as u64 > part.len() {
        bail!(
            "core.img ({} bytes) does not fit in {} ({} bytes)",
            core.len(),
            part.label,
            part.len()
        );
    }
    patch_core_img(&mut core, part.first_lba)?;
    disk.write_all_at(&core, part.offset())
        .with_context(|| format!("writing core.img into {}", part.label))
}

/// Writes boot.img's code into the MBR (after the GPT crate wrote the
/// protective MBR).
pub fn write_mbr(tools: &ToolsTree, disk: &File, core: &PartInfo) -> Result<()> {
    let path = tools.path("usr/lib/grub/i386-pc/boot.img");
    let boot_img = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
    let mut mbr = [0u8; 512];
    disk.read_exact_at(&mut mbr, 0)
        .context("reading the protective MBR")?;
    patch_mbr(&mut mbr, &boot_img, core.first_lba)?;
    disk.write_all_at(&mbr, 0)
        .context("writing boot.img into the MBR")
}
