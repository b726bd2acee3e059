//! Repairs the `.` and `..` entries that fatfs 0.3.6 writes wrongly, after
//! it has unmounted the ESP.
//!
//! fatfs 0.3.6 (the newest release) gives `.` and `..` long-name entries,
//! so a new folder starts [LFN(.), ., LFN(..), ..] where FAT requires `.`
//! and `..` in the first two slots (fsck.fat moves and renames them), and
//! on FAT32 it points a first-level folder's `..` at the root's cluster,
//! where the specification says 0 (Microsoft fatgen103, "FAT Directory
//! Structure"). Both are fixed on the crate's master (rust-fatfs PRs #99
//! and #100) but not released; this walks the folders once and rewrites
//! those four slots in place. Delete it when a fixed fatfs is released.

use std::collections::HashSet;
use std::fs::File;
use std::os::unix::fs::FileExt;

use anyhow::{Context, Result, bail};

const ENTRY: usize = 32;
const ATTR_LFN: u8 = 0x0F;
const ATTR_DIR: u8 = 0x10;
const ATTR_VOLUME: u8 = 0x08;
/// First name byte of a deleted (free) slot; 0x00 would end the folder.
const DELETED: u8 = 0xE5;
const DOT: &[u8; 11] = b".          ";
const DOTDOT: &[u8; 11] = b"..         ";
/// FAT32 entries are 28 bits; this and above ends a chain.
const END_OF_CHAIN: u32 = 0x0FFF_FFF8;

/// The geometry of a FAT32 volume at `base` in `file`.
struct Fat32<'a> {
    file: &'a File,
    base: u64,
    cluster_bytes: u64,
    fat_start: u64,
    data_start: u64,
    root: u32,
    clusters: u32,
}

impl<'a> Fat32<'a> {
    fn open(file: &'a File, base: u64) -> Result<Self> {
        let mut bs = [0u8; 512];
        file.read_exact_at(&mut bs, base)
            .context("reading the FAT boot sector")?;
        let u16_at = |o: usize| u64::from(u16::from_le_bytes([bs[o], bs[o + 1]]));
        let u32_at = |o: usize| u32::from_le_bytes([bs[o], bs[o + 1], bs[o + 2], bs[o + 3]]);
        let sector = u16_at(11);
        let per_cluster = u64::from(bs[13]);
        let reserved = u16_at(14);
        let fats = u64::from(bs[16]);
        let fat_sectors = u64::from(u32_at(36));
        let total = u64::from(u32_at(32));
        if sector == 0 || per_cluster == 0 || fat_sectors == 0 {
            bail!("not a FAT32 boot sector");
        }
        let data_sectors = total.saturating_sub(reserved + fats * fat_sectors);
        Ok(Self {
            file,
            base,
            cluster_bytes: sector * per_cluster,
            fat_start: reserved * sector,
            data_start: (reserved + fats * fat_sectors) * sector,
            root: u32_at(44),
            clusters: u32::try_from(data_sectors / per_cluster).unwrap_or(u32::MAX),
        })
    }

    fn valid(&self, c: u32) -> bool {
        c >= 2 && c - 2 < self.clusters
    }

    fn offset(&self, c: u32) -> u64 {
        self.base + self.data_start + u64::from(c - 2) * self.cluster_bytes
    }

    fn next(&self, c: u32) -> Result<Option<u32>> {
        let mut b = [0u8; 4];
        self.file
            .read_exact_at(&mut b, self.base + self.fat_start + u64::from(c) * 4)
            .context("reading the FAT")?;
        let n = u32::from_le_bytes(b) & 0x0FFF_FFFF;
        Ok((n < END_OF_CHAIN && self.valid(n)).then_some(n))
    }

    /// All bytes of a folder (its cluster chain).
    fn read_dir(&self, first: u32) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        let mut seen = HashSet::new();
        let mut c = Some(first);
        while let Some(cl) = c {
            if !self.valid(cl) || !seen.insert(cl) {
                bail!("bad cluster chain at cluster {cl}");
            }
            let mut buf = vec![0u8; self.cluster_bytes as usize];
            self.file
                .read_exact_at(&mut buf, self.offset(cl))
                .context("reading a FAT folder")?;
            out.extend_from_slice(&buf);
            c = self.next(cl)?;
        }
        Ok(out)
    }
}

fn cluster_of(e: &[u8]) -> u32 {
    (u32::from(u16::from_le_bytes([e[20], e[21]])) << 16)
        | u32::from(u16::from_le_bytes([e[26], e[27]]))
}

fn set_cluster(e: &mut [u8], c: u32) {
    e[20..22].copy_from_slice(&((c >> 16) as u16).to_le_bytes());
    e[26..28].copy_from_slice(&(c as u16).to_le_bytes());
}

/// Fixes every folder of the FAT32 volume at `base` in `file`.
pub fn fix_dot_entries(file: &File, base: u64) -> Result<()> {
    let fat = Fat32::open(file, base)?;
    let mut seen = HashSet::new();
    let mut todo = vec![(fat.root, None::<u32>)];
    while let Some((dir, parent)) = todo.pop() {
        if !seen.insert(dir) {
            bail!("FAT folder cluster {dir} is reachable twice");
        }
        if let Some(parent) = parent {
            fix_one(&fat, dir, parent)?;
        }
        let bytes = fat.read_dir(dir)?;
        for e in bytes.chunks_exact(ENTRY) {
            match e[0] {
                0 => break,
                DELETED => continue,
                _ => {}
            }
            let attr = e[11];
            let name = &e[..11];
            if attr == ATTR_LFN || attr & ATTR_VOLUME != 0 || attr & ATTR_DIR == 0 {
                continue;
            }
            if name == DOT || name == DOTDOT {
                continue;
            }
            let c = cluster_of(e);
            if !fat.valid(c) {
                bail!("FAT folder entry points at cluster {c}");
            }
            todo.push((c, Some(dir)));
        }
    }
    Ok(())
}

/// Puts `.` and `..` first in folder `dir`, `..` pointing at `parent` (0
/// for the root, as FAT requires).
fn fix_one(fat: &Fat32<'_>, dir: u32, parent: u32) -> Result<()> {
    let at = fat.offset(dir);
    let mut head = [0u8; 4 * ENTRY];
    fat.file
        .read_exact_at(&mut head, at)
        .context("reading a FAT folder")?;
    let slot = |i: usize| &head[i * ENTRY..(i + 1) * ENTRY];
    let mut out = head;
    if slot(0)[11] == ATTR_LFN
        && &slot(1)[..11] == DOT
        && slot(2)[11] == ATTR_LFN
        && &slot(3)[..11] == DOTDOT
    {
        // [LFN(.), ., LFN(..), ..] -> [., .., free, free]
        out[..ENTRY].copy_from_slice(slot(1));
        out[ENTRY..2 * ENTRY].copy_from_slice(slot(3));
        out[2 * ENTRY..].copy_from_slice(&head[..2 * ENTRY]);
        out[2 * ENTRY] = DELETED;
        out[3 * ENTRY] = DELETED;
    } else if !(&slot(0)[..11] == DOT && &slot(1)[..11] == DOTDOT) {
        bail!("FAT folder at cluster {dir} does not start with . and ..");
    }
    let dotdot = if parent == fat.root { 0 } else { parent };
    set_cluster(&mut out[ENTRY..2 * ENTRY], dotdot);
    if out != head {
        fat.file
            .write_all_at(&out, at)
            .context("rewriting a FAT folder's . and .. entries")?;
    }
    Ok(())
}
