//! The tools tree: the build-only programs (mkfs, GRUB's image tools, the
//! signed shim and GRUB, qemu-img, veritysetup, ...) taken from the same
//! Debian repositories as the image, pinned in the same lock as a separate
//! set, unpacked into a cached tree and run from there, so the host needs
//! only a Linux kernel, root and cargo.
//!
//! The default package list is
//! `crate::profile::DEFAULT_TOOLS_PACKAGES`; the tree is made by the build's
//! tools stage (`crate::context::Build::ensure_tools`).

pub mod tree;

pub use tree::ToolsTree;
