//! The payload stage: what an on-host update installs (issue #13), as
//! files of their own beside the disk image: `<name>-usr.img` (the /usr
//! filesystem with its dm-verity tree, exactly what USR-A holds; the
//! manifest gives its root hash and hash offset), and the kernel and
//! initrd that boot it (`<name>-vmlinuz`, `<name>-initrd`).
//!
//! Runs after the disk stage, which reads the /usr image: the image and
//! the initrd are renamed out of the work folder (same filesystem), the
//! kernel copied from the tree; each lands atomically.

use std::path::PathBuf;

use anyhow::{Context as _, Result};

use crate::context::Build;
use crate::files::{RELEASE_MODE, TempFile, move_into_place};
use crate::initrd::InitrdInfo;
use crate::usr::UsrImage;

/// File name suffixes after the image name.
pub const USR_SUFFIX: &str = "-usr.img";
pub const KERNEL_SUFFIX: &str = "-vmlinuz";
pub const INITRD_SUFFIX: &str = "-initrd";

/// The kinds of payload file (manifest.json's `outputs[].kind`).
pub const KIND_USR: &str = "usr-verity";
pub const KIND_KERNEL: &str = "kernel";
pub const KIND_INITRD: &str = "initrd";

/// One file of the payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayloadFile {
    pub path: PathBuf,
    pub kind: &'static str,
}

/// The stage. `usr` and `initrd` are spent: their files move.
pub fn run(b: &Build, usr: &UsrImage, initrd: &InitrdInfo) -> Result<Vec<PayloadFile>> {
    let usr_out = b.output(USR_SUFFIX);
    let initrd_out = b.output(INITRD_SUFFIX);
    let kernel_out = b.output(KERNEL_SUFFIX);
    move_into_place(&usr.path, &usr_out)?;
    move_into_place(&initrd.path, &initrd_out)?;
    let mut tmp = TempFile::beside(&kernel_out)?;
    let mut src = std::fs::File::open(&initrd.kernel)
        .with_context(|| format!("opening {}", initrd.kernel.display()))?;
    std::io::copy(&mut src, &mut tmp)
        .with_context(|| format!("copying {}", initrd.kernel.display()))?;
    tmp.set_mode(RELEASE_MODE)?;
    tmp.persist(&kernel_out)?;
    Ok(vec![
        PayloadFile {
            path: usr_out,
            kind: KIND_USR,
        },
        PayloadFile {
            path: kernel_out,
            kind: KIND_KERNEL,
        },
        PayloadFile {
            path: initrd_out,
            kind: KIND_INITRD,
        },
    ])
}
