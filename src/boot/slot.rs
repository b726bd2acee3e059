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

/// What one slot's `slot.cfg` says: the /usr image's version, its
/// partition, its verity root hash and where the hash tree starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotEntry {
    slot: Slot,
    version: String,
    usr_partuuid: String,
    usrhash: String,
    hash_offset: u64,
    usr_filesystem: UsrFilesystem,
}

impl SlotEntry {
    /// Checks each value for what the GRUB script and the kernel command
    /// line can carry: the version is a plain token, the PARTUUID a UUID
    /// (lower-cased: udev's /dev/disk/by-partuuid links are lower case),
    /// the root hash hex (sha256 gives 64 digits; other verity hashes give
    /// other even lengths).
    pub fn new(
        slot: Slot,
        version: &str,
        usr_partuuid: &str,
        usrhash: &str,
        hash_offset: u64,
        usr_filesystem: UsrFilesystem,
    ) -> Result<SlotEntry> {
        let token = |c: char| c.is_ascii_alphanumeric() || "._+~-".contains(c);
        if version.is_empty() || !version.chars().all(token) {
            bail!("slot {slot} version {version:?}: expected letters, digits and ._+~-");
        }
        if !is_uuid(usr_partuuid) {
            bail!("slot {slot} PARTUUID {usr_partuuid:?}: expected a UUID");
        }
        if usrhash.len() < 32
            || usrhash.len() % 2 != 0
            || !usrhash.bytes().all(|b| b.is_ascii_hexdigit())
        {
            bail!(
                "slot {slot} verity root hash {usrhash:?}: expected an even number of hex digits, at least 32"
            );
        }
        Ok(SlotEntry {
            slot,
            version: version.to_owned(),
            usr_partuuid: usr_partuuid.to_ascii_lowercase(),
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
    pub fn usr_partuuid(&self) -> &str {
        &self.usr_partuuid
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

/// 8-4-4-4-12 hex digits (RFC 4122 text form).
fn is_uuid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.bytes().all(|b| b.is_ascii_hexdigit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_rejects_what_would_break_the_script() {
        let uuid = "6E2A0F4B-1C3D-4E5F-8A9B-0C1D2E3F4A5B";
        let hash = "ab".repeat(32);
        let ok = SlotEntry::new(Slot::A, "1.0", uuid, &hash, 4096, UsrFilesystem::Erofs).unwrap();
        assert_eq!(ok.usr_partuuid(), uuid.to_ascii_lowercase());
        for (version, uuid, hash) in [
            ("1.0; reboot", uuid, hash.as_str()),
            ("", uuid, hash.as_str()),
            ("1.0", "not-a-uuid", hash.as_str()),
            ("1.0", uuid, "abc"),
            ("1.0", uuid, &"zz".repeat(32)),
        ] {
            let r = SlotEntry::new(Slot::B, version, uuid, hash, 0, UsrFilesystem::Ext4);
            assert!(r.is_err(), "{version:?} {uuid:?} {hash:?} accepted");
        }
    }
}
