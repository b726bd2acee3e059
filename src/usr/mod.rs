//! The usr image stage: /usr as a read-only filesystem (erofs or ext4) with
//! its dm-verity tree appended, and the root hash the boot entry needs.
//!
//! `verity` computes the tree in Rust (veritysetup's format 1 layout);
//! `image` makes the filesystem with the tools tree's mkfs and appends the
//! tree. Partitioning, the kernel command line and signing are other stages.

pub mod image;
pub mod verity;

use anyhow::Result;

pub use image::{UsrImage, make};
pub use verity::VerityInfo;

use crate::context::Build;
use crate::rootfs::RootfsTree;

/// The stage: the tree's /usr as the profile's filesystem, at
/// `<work>/usr.img`, with identifiers from the build's seed.
pub fn run(b: &Build, tree: &RootfsTree) -> Result<UsrImage> {
    make(
        &b.tools,
        &tree.path,
        b.profile().disk.usr_filesystem,
        b.profile().disk.usr_compression,
        &b.work("usr.img"),
        &b.seed,
        b.epoch,
    )
}
