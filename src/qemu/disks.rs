//! The guest's disks on QEMU's command line: the image it boots, further
//! writable disks (another machine's copy, a second drive) and read-only
//! data disks (a container image's tar for a test).
//!
//! Each is a virtio-blk PCI device with a serial number, so the guest finds
//! it as /dev/disk/by-id/virtio-SERIAL whatever its /dev/vdX name: the
//! further disks come first on the PCI bus, so the booted image is not
//! /dev/vda when they are there, and the firmware boots the image because
//! it alone has a `bootindex` (QEMU's "bootorder" file, which SeaBIOS and
//! OVMF both follow).

use std::path::Path;

use anyhow::Result;

use super::{ImageFormat, QemuRun, qemu_path};

/// The image's serial (virtio-blk serials hold at most 20 bytes,
/// VIRTIO_BLK_ID_BYTES).
pub const IMAGE_SERIAL: &str = "craton-image";
/// Further disks are `disk1`, `disk2`, ... in the order given.
pub const DISK_SERIAL: &str = "disk";
/// Data disks are `data1`, `data2`, ... in the order given.
pub const DATA_SERIAL: &str = "data";

/// The `-drive`/`-device` pairs of every disk of `run`, in bus order.
pub(super) fn args(run: &QemuRun) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for (i, disk) in run.disks.iter().enumerate() {
        let format = ImageFormat::from_name(disk)?;
        let serial = format!("{DISK_SERIAL}{}", i + 1);
        push(&mut out, &serial, disk, format, "", None)?;
    }
    if let Some(image) = &run.image {
        let format = match run.format {
            Some(f) => f,
            None => ImageFormat::from_name(image)?,
        };
        let snap = if run.snapshot { ",snapshot=on" } else { "" };
        push(&mut out, IMAGE_SERIAL, image, format, snap, Some(1))?;
    }
    for (i, disk) in run.data_disks.iter().enumerate() {
        let serial = format!("{DATA_SERIAL}{}", i + 1);
        push(
            &mut out,
            &serial,
            disk,
            ImageFormat::Raw,
            ",readonly=on",
            None,
        )?;
    }
    Ok(out)
}

fn push(
    out: &mut Vec<String>,
    serial: &str,
    file: &Path,
    format: ImageFormat,
    options: &str,
    bootindex: Option<u32>,
) -> Result<()> {
    out.push("-drive".into());
    out.push(format!(
        "if=none,id={serial},format={},file={}{options}",
        format.name(),
        qemu_path(file)?
    ));
    let boot = bootindex
        .map(|n| format!(",bootindex={n}"))
        .unwrap_or_default();
    out.push("-device".into());
    out.push(format!(
        "virtio-blk-pci,drive={serial},serial={serial}{boot}"
    ));
    Ok(())
}
