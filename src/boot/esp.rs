//! The ESP's content, as the list of files the disk stage writes: Debian's
//! signed shim, GRUB and MokManager from the tools tree, one grub.cfg at
//! the two places GRUB reads it, the A/B environment block, and each
//! slot's kernel, initrd and slot.cfg under /craton/<slot>/.
//!
//! The boot stage ([`super::run`]) fills [`EspContent`] from the build;
//! tests fill it with their own grub.cfg and kernels and get the same paths.

use std::path::PathBuf;

use super::grubcfg::{GRUBENV_PATH, slot_cfg, slot_dir};
use super::slot::SlotEntry;
use crate::tools::ToolsTree;

/// Where an ESP file's bytes come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    File(PathBuf),
    Bytes(Vec<u8>),
}

/// One file on the ESP: an absolute path inside the FAT filesystem
/// ("/EFI/BOOT/BOOTX64.EFI") and its content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EspFile {
    pub path: String,
    pub source: Source,
}

/// Signed boot files from the tools tree and their place on the ESP: shim as
/// the removable-media path (UEFI 2.10 section 3.5.1.1), GRUB and MokManager
/// beside it, where shim looks for them.
pub const BOOT_FILES: &[(&str, &str)] = &[
    ("/EFI/BOOT/BOOTX64.EFI", "usr/lib/shim/shimx64.efi.signed"),
    (
        "/EFI/BOOT/grubx64.efi",
        "usr/lib/grub/x86_64-efi-signed/grubx64.efi.signed",
    ),
    ("/EFI/BOOT/mmx64.efi", "usr/lib/shim/mmx64.efi.signed"),
];
/// Where Debian's signed grubx64.efi reads its configuration (its prefix
/// is /EFI/debian) and where the BIOS core.img does (prefix /grub).
pub const GRUB_CFG_PATHS: &[&str] = &["/EFI/debian/grub.cfg", "/grub/grub.cfg"];

/// One slot's boot files.
#[derive(Debug, Clone)]
pub struct SlotBoot {
    /// What slot.cfg says (the slot, its /usr and its root hash).
    pub entry: SlotEntry,
    pub kernel: Source,
    pub initrd: Source,
}

/// What goes on the ESP.
#[derive(Debug, Clone)]
pub struct EspContent<'a> {
    /// Where the signed shim and GRUB come from.
    pub tools: &'a ToolsTree,
    pub grub_cfg: String,
    /// The 1024-byte environment block.
    pub grubenv: Vec<u8>,
    /// The slots that have boot files in a new image.
    pub slots: Vec<SlotBoot>,
}

/// The ESP's files, in a stable order.
pub fn files(c: &EspContent) -> Vec<EspFile> {
    let mut out: Vec<EspFile> = BOOT_FILES
        .iter()
        .map(|(dst, src)| EspFile {
            path: (*dst).into(),
            source: Source::File(c.tools.path(src)),
        })
        .collect();
    for p in GRUB_CFG_PATHS {
        out.push(bytes(p, c.grub_cfg.as_bytes().to_vec()));
    }
    out.push(bytes(GRUBENV_PATH, c.grubenv.clone()));
    for s in &c.slots {
        let dir = slot_dir(s.entry.slot());
        out.push(EspFile {
            path: format!("{dir}/vmlinuz"),
            source: s.kernel.clone(),
        });
        out.push(EspFile {
            path: format!("{dir}/initrd"),
            source: s.initrd.clone(),
        });
        out.push(bytes(
            &format!("{dir}/slot.cfg"),
            slot_cfg(&s.entry).into_bytes(),
        ));
    }
    out
}

fn bytes(path: &str, data: Vec<u8>) -> EspFile {
    EspFile {
        path: path.into(),
        source: Source::Bytes(data),
    }
}

/// What the boot stage made: the ESP's files and the kernel they boot.
#[derive(Debug, Clone)]
pub struct Esp {
    pub files: Vec<EspFile>,
    /// The kernel in the tree (`usr/lib/modules/VERSION/vmlinuz`).
    pub kernel: PathBuf,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::boot::tests::sample_entry;
    use crate::partition::Slot;

    #[test]
    fn paths_of_both_slots() {
        let tools = ToolsTree::at("/tools");
        let slot = |s| SlotBoot {
            entry: sample_entry(s),
            kernel: Source::File("/k".into()),
            initrd: Source::Bytes(b"i".to_vec()),
        };
        let content = EspContent {
            tools: &tools,
            grub_cfg: "set x=1\n".into(),
            grubenv: vec![b'#'; 1024],
            slots: vec![slot(Slot::A), slot(Slot::B)],
        };
        let files = files(&content);
        let paths: Vec<&str> = files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "/EFI/BOOT/BOOTX64.EFI",
                "/EFI/BOOT/grubx64.efi",
                "/EFI/BOOT/mmx64.efi",
                "/EFI/debian/grub.cfg",
                "/grub/grub.cfg",
                "/grub/grubenv",
                "/craton/a/vmlinuz",
                "/craton/a/initrd",
                "/craton/a/slot.cfg",
                "/craton/b/vmlinuz",
                "/craton/b/initrd",
                "/craton/b/slot.cfg",
            ]
        );
        assert_eq!(
            files[0].source,
            Source::File("/tools/usr/lib/shim/shimx64.efi.signed".into())
        );
        let Source::Bytes(cfg) = &files[11].source else {
            panic!("slot.cfg is generated");
        };
        assert!(String::from_utf8_lossy(cfg).contains("set craton_usrhash="));
    }
}
