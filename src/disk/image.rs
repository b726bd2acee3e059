//! `write_disk`: the image file from a [`DiskSpec`], in the order that lets
//! each writer see a finished neighbour: content first (USR, ESP, BIOS
//! boot code, ext4), the GPT and the MBR's boot code last.
//!
//! The image is a sparse file of its final size; only data is written.
//! It is made beside `out` and renamed into place at the end, so a failed
//! build leaves nothing half-written.

use std::fs::File;
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::Path;

use anyhow::{Context, Result, bail};

use super::ext4::{self, Ext4};
use super::{DiskInfo, DiskSpec, PartInfo, PartKind, Slot, UsrB, bios, esp, gpt};
use crate::files::TempFile;

use crate::tools::ToolsTree;

/// Chunk size for copying the /usr image; all-zero chunks are skipped
/// (the file is sparse and already reads as zero there).
const CHUNK: usize = 1024 * 1024;

/// Writes the disk image `out` and says where everything went.
pub fn write_disk(spec: &DiskSpec, tools: &ToolsTree, out: &Path) -> Result<DiskInfo> {
    let (parts, size) = gpt::layout(&spec.sizes, &spec.guids)?;
    let dir = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let tmp = TempFile::beside(out)?;
    // A TempTree (".NAME.work.tmp-PID-N"): one that a killed craton left
    // is swept by the next build's.
    let name = out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let work = crate::files::TempTree::beside(&dir.join(format!("{name}.work")))?;
    let part = |kind| find(&parts, kind);
    {
        let mut file = tmp.as_file().try_clone().context("opening the image")?;
        file.set_len(size)
            .with_context(|| format!("sizing the image to {size} bytes"))?;

        let usr_a = part(PartKind::Usr(Slot::A))?;
        copy_usr(&spec.usr_a, &file, usr_a)?;
        if spec.usr_b == UsrB::Copy {
            copy_usr(&spec.usr_a, &file, part(PartKind::Usr(Slot::B))?)?;
        }

        esp::write(
            &file,
            part(PartKind::Esp)?,
            &spec.esp_files,
            spec.guids.esp_volume_id,
            spec.epoch,
        )?;
        bios::write_core(tools, work.path(), &file, part(PartKind::BiosBoot)?)?;

        // OEM and ROOT: stage the files, then mkfs.ext4 -d into the partition.
        let ext4_part = |kind: PartKind,
                         label: &str,
                         uuid,
                         hash_seed,
                         stage: &dyn Fn(&Path) -> Result<()>|
         -> Result<()> {
            let dir = work.path().join(kind.label());
            std::fs::create_dir(&dir)
                .with_context(|| format!("creating the {} staging folder", kind.label()))?;
            stage(&dir)?;
            let fs = Ext4 {
                label,
                uuid,
                hash_seed,
                epoch: spec.epoch,
            };
            ext4::make(tools, &fs, &dir, tmp.path(), part(kind)?)
        };
        ext4_part(
            PartKind::Oem,
            &spec.oem_label,
            spec.guids.oem_fs,
            spec.guids.oem_hash_seed,
            &|d| ext4::stage_files(&spec.oem_files, d, spec.epoch),
        )?;
        ext4_part(
            PartKind::Root,
            &spec.root_label,
            spec.guids.root_fs,
            spec.guids.root_hash_seed,
            &|d| ext4::stage_root(&spec.root_tree, d, spec.epoch),
        )?;

        // mke2fs must not have grown the file past the backup GPT's place.
        let len = file.metadata().context("reading the image's size")?.len();
        if len != size {
            bail!("the image is {len} bytes after mke2fs, expected {size}");
        }
        gpt::write(&mut file, size, &parts, spec.guids.disk)?;
        bios::write_mbr(tools, &file, part(PartKind::BiosBoot)?)?;
    }
    // An image holds no secret (no host keys, no private keys: the layout
    // stage removes them): readable as any release file, not the
    // temporary file's private 0600.
    tmp.set_mode(crate::files::RELEASE_MODE)?;
    tmp.persist(out)?;
    tracing::info!("wrote the disk image {} ({size} bytes)", out.display());
    Ok(DiskInfo {
        path: out.to_path_buf(),
        size,
        partitions: parts,
        disk_guid: spec.guids.disk,
    })
}

fn find(parts: &[PartInfo], kind: PartKind) -> Result<&PartInfo> {
    parts
        .iter()
        .find(|p| p.kind == kind)
        .with_context(|| format!("no {} partition in the layout", kind.label()))
}

/// Copies the /usr image to the start of a USR partition.
fn copy_usr(image: &Path, disk: &File, part: &PartInfo) -> Result<()> {
    let mut src = File::open(image).with_context(|| format!("opening {}", image.display()))?;
    let len = src
        .metadata()
        .with_context(|| format!("reading {}", image.display()))?
        .len();
    if len > part.len() {
        bail!(
            "the /usr image {} ({len} bytes) does not fit in {} ({} bytes)",
            image.display(),
            part.label,
            part.len()
        );
    }
    let mut buf = vec![0u8; CHUNK];
    let mut at = 0u64;
    loop {
        let n = read_full(&mut src, &mut buf)
            .with_context(|| format!("reading {}", image.display()))?;
        if n == 0 {
            break;
        }
        if buf[..n].iter().any(|b| *b != 0) {
            disk.write_all_at(&buf[..n], part.offset() + at)
                .with_context(|| format!("writing the /usr image into {}", part.label))?;
        }
        at += n as u64;
    }
    if at != len {
        bail!("{} changed while it was copied", image.display());
    }
    Ok(())
}

/// Reads until `buf` is full or the end of the file.
fn read_full(src: &mut File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match src.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}
