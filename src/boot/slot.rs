//! The A/B slots and what GRUB needs to know about the /usr image in each.
//!
//! A [`Slot`] (`crate::partition`'s) names one of the two USR partitions; a
//! [`SlotEntry`] holds the facts that go into that slot's `slot.cfg` on the ESP
//! (docs/architecture.md "Boot and A/B"). Values are checked once, when the
//! entry is made, because they are pasted into a GRUB script and a kernel
//! command line. This module does not write files or compute hashes.

use anyhow::{Result, bail};

pub use crate::partition::Slot;
use crate::profile::UsrFilesystem;

/// What one slot's `slot.cfg` says: the /usr image's version, its verity
/// root hash and where the hash tree starts. Not its partition's PARTUUID:
/// that belongs to the disk, not to the /usr image, and changes on a new
/// disk's first boot; GRUB reads it from the disk it booted
/// (`super::grubcfg`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotEntry {
    slot: Slot,
    version: String,
    usrhash: String,
    hash_offset: u64,
    usr_filesystem: UsrFilesystem,
}

impl SlotEntry {
    /// Checks each value for what the GRUB script and the kernel command
    /// line can carry: the version is a plain token, the root hash hex
    /// (sha256 gives 64 digits; other verity hashes give other even
    /// lengths).
    pub fn new(
        slot: Slot,
        version: &str,
        usrhash: &str,
        hash_offset: u64,
        usr_filesystem: UsrFilesystem,
    ) -> Result<SlotEntry> {
        let token = |c: char| c.is_ascii_alphanumeric() || "._+~-".contains(c);
        if version.is_empty() || !version.chars().all(token) {
            bail!("slot {slot} version {version:?}: expected letters, digits and ._+~-");
        }
        if usrhash.len() < 32
            || !usrhash.len().is_multiple_of(2)
            || !usrhash.bytes().all(|b| b.is_ascii_hexdigit())
        {
            bail!(
                "slot {slot} verity root hash {usrhash:?}: expected an even number of hex digits, at least 32"
            );
        }
        Ok(SlotEntry {
            slot,
            version: version.to_owned(),
            usrhash: usrhash.to_ascii_lowercase(),
            hash_offset,
            usr_filesystem,
        })
    }

    pub fn slot(&self) -> Slot {
        self.slot
    }
    pub fn version(&self) -> &str {
        &self.version
    }
    pub fn usrhash(&self) -> &str {
        &self.usrhash
    }
    pub fn hash_offset(&self) -> u64 {
        self.hash_offset
    }
    pub fn usr_filesystem(&self) -> UsrFilesystem {
        self.usr_filesystem
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_rejects_what_would_break_the_script() {
        let hash = "AB".repeat(32);
        let ok = SlotEntry::new(Slot::A, "1.0", &hash, 4096, UsrFilesystem::Erofs).unwrap();
        assert_eq!(ok.usrhash(), hash.to_ascii_lowercase());
        for (version, hash) in [
            ("1.0; reboot", hash.as_str()),
            ("", hash.as_str()),
            ("1.0", "abc"),
            ("1.0", &"zz".repeat(32)),
        ] {
            let r = SlotEntry::new(Slot::B, version, hash, 0, UsrFilesystem::Ext4);
            assert!(r.is_err(), "{version:?} {hash:?} accepted");
        }
    }
}
