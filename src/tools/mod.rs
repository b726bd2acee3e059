//! The tools tree: the build-only programs (mkfs, GRUB's image tools, the
//! signed shim and GRUB, qemu-img, veritysetup, ...) taken from the same
//! Debian repositories as the image, pinned in the same lock as a separate
//! set, unpacked into a cached tree and run from there, so the host needs
//! only a Linux kernel, root and cargo.

/// The packages of the tools tree (issue #3), with what each is for.
pub const TOOLS_PACKAGES: &[&str] = &[
    // mkfs.ext4, e2fsck, resize2fs: ROOT and OEM, ext4 /usr.
    "e2fsprogs",
    // mkfs.erofs: the default /usr filesystem.
    "erofs-utils",
    // mkfs.fat, fsck.fat and mtools: the ESP (checks and fallback writer).
    "dosfstools",
    "mtools",
    // grub-mkimage and the i386-pc / x86_64-efi modules; boot.img.
    "grub-common",
    "grub-pc-bin",
    "grub-efi-amd64-bin",
    // Debian's signed GRUB and shim for Secure Boot.
    "grub-efi-amd64-signed",
    "shim-signed",
    // qemu-img: qcow2 output.
    "qemu-utils",
    // veritysetup: checks the verity tree craton computes itself.
    "cryptsetup-bin",
    // modinfo/depmod for the initrd's module closure.
    "kmod",
];

/// The tools list as owned strings, for requests and the lock.
pub fn packages() -> Vec<String> {
    TOOLS_PACKAGES.iter().map(|s| (*s).to_owned()).collect()
}

pub mod tree;

pub use tree::ToolsTree;
