//! `craton inspect IMAGE`: what a disk image (raw, or the virtual disk of
//! a qcow2 through `crate::qcow2`) holds, read from the file without
//! mounting or running anything: the GPT, the A/B state in the
//! ESP's GRUB environment block (ORDER, OK and TRY per slot, DISK_ID), and
//! for each slot its slot.cfg (version, /usr filesystem, verity root hash
//! and offset) and its kernel's version (from the bzImage header). It works
//! on an image fresh from a build and on a disk a machine has booted.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use serde::Serialize;

use crate::boot::decode_grubenv;
use crate::boot::grubcfg::{GRUBENV_PATH, slot_dir};
use crate::disk::{PartKind, SECTOR, Slot};
use crate::error::bad_input;
use crate::qcow2::Qcow2;
use crate::update::state::{AbState, SlotHealth};

/// What `craton inspect` shows.
#[derive(Debug, Clone, Serialize)]
pub struct Inspection {
    pub image: PathBuf,
    pub size: u64,
    pub disk_guid: String,
    pub partitions: Vec<Partition>,
    /// The environment block, GRUB's next choice and each slot.
    #[serde(flatten)]
    pub ab: AbView,
}

/// The A/B part of a disk: the block, GRUB's next choice, each slot.
#[derive(Debug, Clone, Serialize)]
pub struct AbView {
    /// The environment block's variables, as GRUB reads them.
    pub grubenv: BTreeMap<String, String>,
    pub next_boot: NextBoot,
    pub slots: Vec<SlotState>,
}

/// The slot GRUB boots next, and whether on trial.
#[derive(Debug, Clone, Serialize)]
pub struct NextBoot {
    pub slot: String,
    pub trial: bool,
}

/// The A/B view of an ESP whose files `read` gives (by ESP path; None for
/// a missing file): `craton inspect` reads them from an image, `craton
/// status` from the mounted ESP.
pub fn ab_view(read: &dyn Fn(&str) -> Result<Option<Vec<u8>>>) -> Result<AbView> {
    let block = read(GRUBENV_PATH)?.with_context(|| format!("no {GRUBENV_PATH}"))?;
    let vars = decode_grubenv(&block)?;
    let state = AbState::from_vars(&vars);
    let grubenv: BTreeMap<String, String> = vars.into_iter().collect();
    let order: Vec<&str> = grubenv
        .get("ORDER")
        .map(|o| o.split_whitespace().collect())
        .unwrap_or_default();
    let mut slots = Vec::new();
    for slot in Slot::ALL {
        let n = slot.env_name();
        let dir = slot_dir(slot);
        let cfg =
            read(&format!("{dir}/slot.cfg"))?.map(|b| slot_cfg_vars(&String::from_utf8_lossy(&b)));
        let get = |k: &str| cfg.as_ref().and_then(|c| c.get(k).cloned());
        let kernel = read(&format!("{dir}/vmlinuz"))?.and_then(|k| kernel_version(&k));
        slots.push(SlotState {
            slot: n.to_owned(),
            order: order.iter().position(|o| *o == n),
            ok: state.ok(slot),
            tried: state.tried(slot),
            health: state.health(slot),
            version: get("craton_version"),
            usr_filesystem: get("craton_usrfstype"),
            root_hash: get("craton_usrhash"),
            hash_offset: get("craton_hash_offset").and_then(|v| v.parse().ok()),
            kernel,
        });
    }
    let (next, trial) = state.next_boot();
    Ok(AbView {
        grubenv,
        next_boot: NextBoot {
            slot: next.env_name().to_owned(),
            trial,
        },
        slots,
    })
}

#[derive(Debug, Clone, Serialize)]
pub struct Partition {
    pub number: u32,
    pub label: String,
    pub type_guid: String,
    pub partuuid: String,
    pub first_lba: u64,
    pub last_lba: u64,
    pub size: u64,
}

/// One slot: its A/B flags and what its ESP folder holds (None when the
/// slot has no files, e.g. `[disk] usr-b = "empty"`).
#[derive(Debug, Clone, Serialize)]
pub struct SlotState {
    pub slot: String,
    /// Its place in ORDER (0 first), if listed.
    pub order: Option<usize>,
    pub ok: bool,
    pub tried: bool,
    /// What the flags and ORDER make of it (`crate::update::state`).
    pub health: SlotHealth,
    pub version: Option<String>,
    pub usr_filesystem: Option<String>,
    pub root_hash: Option<String>,
    pub hash_offset: Option<u64>,
    pub kernel: Option<String>,
}

/// Reads `path`: a qcow2 (by its magic; its reader refuses backing files)
/// or a raw image.
pub fn inspect(path: &Path) -> Result<Inspection> {
    let mut file = File::open(path).map_err(|e| bad_input(format!("{}: {e}", path.display())))?;
    let mut magic = [0u8; 4];
    let n = file.read(&mut magic).unwrap_or(0);
    if crate::qcow2::is_qcow2(&magic[..n]) {
        let disk = Qcow2::open_path(path).map_err(|e| bad_input(format!("{e:#}")))?;
        let size = disk.size();
        return inspect_disk(path, ReadOnly(disk), size);
    }
    let size = file.metadata()?.len();
    inspect_disk(path, ReadOnly(file), size)
}

/// The inspection of a disk of `size` bytes read through `disk`.
fn inspect_disk<D: Read + Seek + std::fmt::Debug>(
    path: &Path,
    mut disk: ReadOnly<D>,
    size: u64,
) -> Result<Inspection> {
    let (disk_guid, partitions) = read_gpt_from(&mut disk)
        .map_err(|e| bad_input(format!("{}: no GPT: {e:#}", path.display())))?;
    let esp = partitions
        .iter()
        .find(|p| p.number == PartKind::Esp.number())
        .with_context(|| {
            format!(
                "{}: no partition {}",
                path.display(),
                PartKind::Esp.number()
            )
        })?;
    let region = Window {
        disk,
        start: esp.first_lba * SECTOR,
        len: esp.size,
        pos: 0,
    };
    let fs = fatfs::FileSystem::new(region, fatfs::FsOptions::new())
        .with_context(|| format!("{}: reading the ESP's FAT", path.display()))?;
    let read = |p: &str| -> Result<Option<Vec<u8>>> {
        let rel = p.trim_start_matches('/');
        match fs.root_dir().open_file(rel) {
            Ok(mut f) => {
                let mut out = Vec::new();
                f.read_to_end(&mut out)
                    .with_context(|| format!("reading {p} on the ESP"))?;
                Ok(Some(out))
            }
            Err(_) => Ok(None),
        }
    };
    let ab = ab_view(&read).with_context(|| format!("{}: the ESP", path.display()))?;
    Ok(Inspection {
        image: path.to_owned(),
        size,
        disk_guid,
        partitions,
        ab,
    })
}

/// The disk GUID and the used entries of the GPT of a raw image (512-byte
/// sectors), in partition-number order.
pub fn read_gpt(path: &Path) -> Result<(String, Vec<Partition>)> {
    let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    read_gpt_from(&mut ReadOnly(file))
        .with_context(|| format!("reading the GPT of {}", path.display()))
}

fn read_gpt_from<D: Read + Seek + std::fmt::Debug>(
    disk: &mut ReadOnly<D>,
) -> Result<(String, Vec<Partition>)> {
    let gpt = gpt::GptConfig::new()
        .writable(false)
        .logical_block_size(gpt::disk::LogicalBlockSize::Lb512)
        .open_from_device(disk)
        .context("reading the GPT")?;
    let partitions = gpt
        .partitions()
        .iter()
        .filter(|(_, p)| p.is_used())
        .map(|(n, p)| Partition {
            number: *n,
            label: p.name.clone(),
            type_guid: p.part_type_guid.guid.to_string(),
            partuuid: p.part_guid.to_string(),
            first_lba: p.first_lba,
            last_lba: p.last_lba,
            size: (p.last_lba + 1 - p.first_lba) * SECTOR,
        })
        .collect();
    Ok((gpt.guid().to_string(), partitions))
}

/// A disk opened for reading: the GPT and FAT readers want `Write` too,
/// which this refuses (inspect never writes).
#[derive(Debug)]
struct ReadOnly<D>(D);

impl<D: Read> Read for ReadOnly<D> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf)
    }
}

impl<D: Seek> Seek for ReadOnly<D> {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        self.0.seek(pos)
    }
}

impl<D> Write for ReadOnly<D> {
    fn write(&mut self, _: &[u8]) -> io::Result<usize> {
        Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            "craton inspect does not write",
        ))
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A partition of a disk, read as a device of its own (for fatfs).
struct Window<D> {
    disk: ReadOnly<D>,
    start: u64,
    len: u64,
    pos: u64,
}

impl<D: Read + Seek> Read for Window<D> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = (buf.len() as u64).min(self.len.saturating_sub(self.pos)) as usize;
        self.disk.seek(SeekFrom::Start(self.start + self.pos))?;
        let n = self.disk.read(&mut buf[..n])?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl<D: Read + Seek> Seek for Window<D> {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        self.pos = crate::files::seek_target(pos, self.len, self.pos)?;
        Ok(self.pos)
    }
}

impl<D> Write for Window<D> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.disk.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The `set NAME=VALUE` lines of a slot.cfg (`crate::boot::grubcfg::slot_cfg`).
fn slot_cfg_vars(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("set "))
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// The version of a bzImage: the x86 boot protocol's setup header has the
/// `HdrS` magic at 0x202 and, from protocol 2.00, `kernel_version` at
/// 0x20E, the offset from 0x200 of a NUL-terminated string whose first
/// word is the release (Documentation/arch/x86/boot.rst).
pub fn kernel_version(image: &[u8]) -> Option<String> {
    const MAGIC_AT: usize = 0x202;
    const VERSION_PTR_AT: usize = 0x20E;
    const PTR_BASE: usize = 0x200;
    if image.get(MAGIC_AT..MAGIC_AT + 4)? != b"HdrS" {
        return None;
    }
    let ptr = u16::from_le_bytes(
        image
            .get(VERSION_PTR_AT..VERSION_PTR_AT + 2)?
            .try_into()
            .ok()?,
    );
    if ptr == 0 {
        return None;
    }
    let start = PTR_BASE + usize::from(ptr);
    let text = image.get(start..)?;
    let end = text.iter().take(256).position(|&b| b == 0)?;
    let s = std::str::from_utf8(&text[..end]).ok()?;
    s.split_whitespace().next().map(str::to_owned)
}

/// The human-readable form.
pub fn render(i: &Inspection) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let _ = writeln!(s, "image:     {} ({} bytes)", i.image.display(), i.size);
    let _ = writeln!(s, "disk GUID: {}", i.disk_guid);
    let _ = writeln!(
        s,
        "\n  #  label        first LBA   last LBA         size  PARTUUID"
    );
    for p in &i.partitions {
        let _ = writeln!(
            s,
            "  {}  {:<11} {:>10} {:>10} {:>12}  {}",
            p.number, p.label, p.first_lba, p.last_lba, p.size, p.partuuid
        );
    }
    s.push('\n');
    s.push_str(&render_ab(&i.ab));
    s
}

/// The A/B lines of `craton inspect`, `craton slot show` and `craton status`.
pub fn render_ab(ab: &AbView) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let env: Vec<String> = ab.grubenv.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let _ = writeln!(s, "grubenv:   {}", env.join(" "));
    for slot in &ab.slots {
        let state = match slot.health {
            SlotHealth::Good => "good",
            SlotHealth::Pending => "pending (tried once at the next boot)",
            SlotHealth::Tried => "tried, not confirmed",
            SlotHealth::Unusable => "not bootable",
        };
        let _ = writeln!(
            s,
            "slot {}:    {state}; order {}; version {}; kernel {}; {} root hash {} at {}",
            slot.slot,
            slot.order.map_or("-".into(), |o| o.to_string()),
            slot.version.as_deref().unwrap_or("-"),
            slot.kernel.as_deref().unwrap_or("-"),
            slot.usr_filesystem.as_deref().unwrap_or("-"),
            slot.root_hash.as_deref().unwrap_or("-"),
            slot.hash_offset.map_or("-".into(), |o| o.to_string()),
        );
    }
    let _ = writeln!(
        s,
        "next boot: slot {}{}",
        ab.next_boot.slot,
        if ab.next_boot.trial { ", on trial" } else { "" }
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_version_from_the_setup_header() {
        let mut k = vec![0u8; 0x1000];
        k[0x202..0x206].copy_from_slice(b"HdrS");
        k[0x20E..0x210].copy_from_slice(&0x0300u16.to_le_bytes());
        let v = b"6.12.118+deb13-amd64 (debian-kernel@lists.debian.org) #1 SMP\0";
        k[0x500..0x500 + v.len()].copy_from_slice(v);
        assert_eq!(kernel_version(&k).as_deref(), Some("6.12.118+deb13-amd64"));
        k[0x202] = b'X';
        assert_eq!(kernel_version(&k), None);
        assert_eq!(kernel_version(&[0; 16]), None);
    }

    #[test]
    fn slot_cfg_variables() {
        let v = slot_cfg_vars("# c\nset craton_version=1.0\nset craton_usrhash=ab\n");
        assert_eq!(v["craton_version"], "1.0");
        assert_eq!(v["craton_usrhash"], "ab");
    }
}
