//! Boot: what GRUB and the booted OS need for A/B updates, and the boot
//! stage that puts it on the ESP.
//!
//! - `slot`: the facts of each /usr slot (slot.cfg).
//! - `grubcfg`: the grub.cfg shared by BIOS and UEFI, slot.cfg, the initial
//!   A/B variables.
//! - `grubenv`: GRUB's 1024-byte environment block.
//! - `esp`: the ESP's file list.
//! - `units`: files for the image (installed by the rootfs stage): the unit
//!   that confirms the booted slot, and ROOT's growth on first boot.
//!
//! The stage ([`run`]) turns the build's /usr image, kernel and initrd into
//! the ESP's files; the disk stage writes them.

pub mod esp;
pub mod grubcfg;
pub mod grubenv;
pub mod slot;
pub mod units;

use anyhow::{Result, bail};

pub use esp::{Esp, EspContent, EspFile, SlotBoot, Source};
pub use grubcfg::{BootConfig, grub_cfg, initial_grubenv, initial_grubenv_vars, slot_cfg};
pub use grubenv::{decode_grubenv, encode_grubenv};
pub use slot::{Slot, SlotEntry};

use crate::context::Build;
use crate::initrd::InitrdInfo;
use crate::profile::UsrB;
use crate::usr::UsrImage;

/// The boot stage: grub.cfg from the profile, the initial
/// A/B state, and the boot files of slot A (and of B when the build fills
/// USR-B), checked for what GRUB and the kernel command line can carry.
pub fn run(b: &Build, usr: &UsrImage, initrd: &InitrdInfo) -> Result<Esp> {
    let profile = b.profile();
    let kernel = &initrd.kernel;
    if !kernel.is_file() {
        bail!("the tree has no kernel at {}", kernel.display());
    }
    // The platform's console and arguments are the OEM partition's: the
    // ESP is the same for every platform.
    let boot_cfg = BootConfig {
        timeout_secs: profile.boot.timeout_secs,
        kernel_args: profile.boot.kernel_args.clone(),
    };
    let usr_b = profile.disk.usr_b;
    let slots: &[Slot] = match usr_b {
        UsrB::Copy => &[Slot::A, Slot::B],
        UsrB::Empty => &[Slot::A],
    };
    let mut boots = Vec::new();
    for &slot in slots {
        let entry = SlotEntry::new(
            slot,
            &profile.image.version,
            &usr.verity.root_hash_hex(),
            usr.verity.hash_offset,
            usr.fs,
        )?;
        boots.push(SlotBoot {
            entry,
            kernel: Source::File(kernel.clone()),
            initrd: Source::File(initrd.path.clone()),
        });
    }
    let content = EspContent {
        tools: &b.tools,
        grub_cfg: grub_cfg(&boot_cfg),
        grubenv: initial_grubenv(usr_b == UsrB::Copy)?,
        slots: boots,
    };
    Ok(Esp {
        files: esp::files(&content),
        kernel: kernel.clone(),
    })
}

#[cfg(test)]
pub(crate) mod tests;
