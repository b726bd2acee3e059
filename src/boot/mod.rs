//! Boot: what GRUB and the booted OS need for A/B updates.
//!
//! - `slot`: the two /usr slots and the facts of each (slot.cfg).
//! - `grubcfg`: the grub.cfg shared by BIOS and UEFI, slot.cfg, the initial
//!   A/B variables.
//! - `grubenv`: GRUB's 1024-byte environment block.
//! - `units`: files installed into the image and the initrd: the unit that
//!   confirms the booted slot, and ROOT's growth on first boot.
//!
//! This module produces text and bytes; the disk stage writes them onto the
//! ESP and the rootfs/initrd stages install the units.

pub mod grubcfg;
pub mod grubenv;
pub mod slot;
pub mod units;

pub use grubcfg::{BootConfig, grub_cfg, initial_grubenv, initial_grubenv_vars, slot_cfg};
pub use grubenv::{decode_grubenv, encode_grubenv};
pub use slot::{Slot, SlotEntry};

#[cfg(test)]
pub(crate) mod tests;
