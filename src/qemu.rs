//! The QEMU runner (written in the next commits).
