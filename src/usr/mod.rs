//! The usr image stage: /usr as a read-only filesystem (erofs or ext4) with
//! its dm-verity tree appended, and the root hash the boot entry needs.
//!
//! `verity` computes the tree in Rust (veritysetup's format 1 layout);
//! `image` makes the filesystem with the tools tree's mkfs and appends the
//! tree. Partitioning, the kernel command line and signing are other stages.

pub mod image;
pub mod verity;

pub use image::{UsrImage, build};
pub use verity::VerityInfo;
