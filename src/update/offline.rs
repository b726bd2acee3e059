//! `craton slot IMAGE show|set-order|mark-good|mark-bad`: an image's A/B
//! state read and changed on the build host, without booting it (tests,
//! recovery of a disk attached to another machine). The transitions are
//! the on-host ones (`super::state`); the block is rewritten in place in
//! the ESP's FAT, at its full 1024 bytes, as GRUB's save_env does. A raw
//! image only for changes (a qcow2 is read, never written).

use std::fs::{File, OpenOptions};
use std::io::{Read as _, Seek as _, SeekFrom, Write as _};
use std::path::Path;

use anyhow::{Context as _, Result, bail};

use super::state::AbState;
use crate::boot::grubcfg::GRUBENV_PATH;
use crate::boot::{decode_grubenv, encode_grubenv};
use crate::disk::{Region, SECTOR};
use crate::error::bad_input;
use crate::inspect::{AbView, inspect, read_gpt};
use crate::partition::{PartKind, Slot};

/// What `craton slot` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlotAction {
    Show,
    /// This slot first in ORDER.
    SetOrder(Slot),
    MarkGood(Slot),
    MarkBad(Slot),
}

/// Runs `action` on `image`; returns the A/B view afterwards.
pub fn slot(image: &Path, action: SlotAction) -> Result<AbView> {
    if action != SlotAction::Show {
        let mut magic = [0u8; 4];
        let n = File::open(image)
            .and_then(|mut f| f.read(&mut magic))
            .map_err(|e| bad_input(format!("{}: {e}", image.display())))?;
        if crate::qcow2::is_qcow2(&magic[..n]) {
            return Err(bad_input(format!(
                "{}: a qcow2 image is not changed in place; convert it to raw (qemu-img convert -O raw) first",
                image.display()
            )));
        }
        edit(image, |s| match action {
            SlotAction::Show => {}
            SlotAction::SetOrder(first) => s.set_order(first),
            SlotAction::MarkGood(slot) => s.mark_good(slot),
            SlotAction::MarkBad(slot) => s.mark_bad(slot),
        })?;
    }
    Ok(inspect(image)?.ab)
}

/// Rewrites the environment block of the raw `image` through `change`.
fn edit(image: &Path, change: impl FnOnce(&mut AbState)) -> Result<()> {
    let (_, parts) = read_gpt(image).map_err(|e| bad_input(format!("{e:#}")))?;
    let esp = parts
        .iter()
        .find(|p| p.number == PartKind::Esp.number())
        .ok_or_else(|| bad_input(format!("{}: no ESP (partition 1)", image.display())))?;
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(image)
        .with_context(|| format!("opening {} for writing", image.display()))?;
    let region = Region::new(&file, esp.first_lba * SECTOR, esp.size);
    let fs = fatfs::FileSystem::new(region, fatfs::FsOptions::new())
        .with_context(|| format!("{}: reading the ESP's FAT", image.display()))?;
    let rel = GRUBENV_PATH.trim_start_matches('/');
    let mut f = fs
        .root_dir()
        .open_file(rel)
        .with_context(|| format!("{}: no {GRUBENV_PATH} on the ESP", image.display()))?;
    let mut block = Vec::new();
    f.read_to_end(&mut block)
        .with_context(|| format!("reading {GRUBENV_PATH}"))?;
    let state = AbState::from_vars(&decode_grubenv(&block)?);
    let mut new = state.clone();
    change(&mut new);
    let out = encode_grubenv(&new.to_vars())?;
    if out.len() != block.len() {
        bail!(
            "{GRUBENV_PATH}: {} bytes, expected {}",
            block.len(),
            out.len()
        );
    }
    // The same length over the same clusters: nothing is allocated.
    f.seek(SeekFrom::Start(0))?;
    f.write_all(&out)
        .and_then(|()| f.flush())
        .with_context(|| format!("writing {GRUBENV_PATH}"))?;
    drop(f);
    fs.unmount().context("closing the ESP")?;
    file.sync_all()
        .with_context(|| format!("flushing {}", image.display()))?;
    Ok(())
}
