//! Update stamps: the build tells systemd that /etc and /var are already
//! up to date with this /usr, so the first boot does not redo what the
//! build did.
//!
//! systemd's `ConditionNeedsUpdate=/etc` (and `/var`) is true when /usr's
//! modification time is newer than the directory's `.updated` file
//! (systemd.unit(5); the file is systemd-update-done.service(8)'s, with a
//! `TIMESTAMP_NSEC=` line). Units behind it redo at boot what the build has
//! done on the tree: ldconfig.service (dpkg's triggers ran ldconfig),
//! systemd-sysusers.service (the users stage wrote /etc's users and
//! groups), systemd-journal-catalog-update.service, systemd-hwdb-update
//! (Debian ships /usr/lib/udev/hwdb.bin). Without the stamps every first
//! boot runs them, seconds each under TCG (docs/performance.md).
//!
//! The stamps carry the build's epoch, which is also every timestamp of
//! the /usr image (mkfs.erofs -T). A later /usr (an A/B update, built with
//! a later epoch) is newer than them, so the units run once after the
//! update, as systemd intends, and systemd-update-done writes new stamps
//! on ROOT.

use std::path::Path;

use anyhow::Result;

use crate::files::tree;

/// The stamp files, relative to the tree (systemd-update-done.service(8)).
pub const STAMPS: &[&str] = &["etc/.updated", "var/.updated"];

/// The content systemd-update-done writes, for `epoch` (seconds).
pub fn stamp_text(epoch: u64) -> String {
    format!(
        "# Written by craton at build time (systemd-update-done.service(8)'s\n\
         # format): /etc and /var are up to date with this /usr.\n\
         TIMESTAMP_NSEC={}\n",
        u128::from(epoch) * 1_000_000_000
    )
}

/// Writes both stamps into `tree` (before the layout moves /etc and /var
/// to the factory).
pub fn write(tree_root: &Path, epoch: u64) -> Result<()> {
    for stamp in STAMPS {
        tree::write_file(
            tree_root,
            &format!("/{stamp}"),
            stamp_text(epoch).as_bytes(),
            0o644,
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_hold_the_epoch_in_nanoseconds() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), 1_700_000_000).unwrap();
        for stamp in STAMPS {
            let text = std::fs::read_to_string(dir.path().join(stamp)).unwrap();
            assert!(
                text.ends_with("TIMESTAMP_NSEC=1700000000000000000\n"),
                "{text}"
            );
        }
    }
}
