//! A new disk's own identifiers, given in the initrd on its first boot.
//!
//! Every disk written from one image has the image's disk GUID and
//! PARTUUIDs (the image file is reproducible, `crate::partition::DiskGuids`),
//! so with two such disks on one machine /dev/disk/by-partuuid/ could name
//! either for verity, ROOT, mark-good or the GPT relocation. What tells the
//! disks apart on a first boot is GRUB's claim (`crate::boot::grubcfg`'s
//! DISK_ID): GRUB wrote `claimed` into the environment block of the ESP it
//! booted from, and only there, before Linux ran. This unit, when the
//! command line says `craton.disk-id=claimed`, finds the one disk whose ESP
//! holds the claim, gives it a random disk GUID and random PARTUUIDs
//! (sfdisk, from the kernel's random UUIDs), records DISK_ID=machine and
//! undoes GRUB's trial mark of the booted slot (this boot was not a try of
//! the slot), and reboots. GRUB then reads the new PARTUUIDs from that
//! disk (`probe --part-uuid`) and the boot goes on unambiguously; the other
//! disks are never written. It runs before anything opens /usr or ROOT.
//!
//! When no disk, or more than one, holds the claim (an ESP that appeared
//! too late, two disks both claimed by earlier interrupted first boots),
//! it says so on the console and changes nothing: the boot goes on with
//! the image's identifiers, and the claim stays for the next boot.
//!
//! The filesystems' own UUIDs (ESP, OEM, ROOT) stay the image's: nothing
//! in the boot names them, and ext4 with metadata_csum would have to
//! rewrite its checksums to change them.

use crate::boot::grubcfg::{DISK_ID, DISK_ID_ARG, DiskId, GRUBENV_PATH};
use crate::boot::units::{ESP_PARTLABEL, GRUBENV_SET, GRUBENV_SET_PATH};

/// Where the initrd keeps the script.
pub const DISK_IDENTITY_PATH: &str = "/usr/lib/craton/disk-identity";
pub const DISK_IDENTITY_UNIT: &str = "craton-disk-identity.service";
/// How long the script waits for a first ESP to appear (udev).
const WAIT_SECS: u32 = 90;
/// The line the script prints before it reboots (tests look for it).
pub const REBOOT_LINE: &str = "craton-disk-identity: rebooting";

/// Runs with dash, util-linux (lsblk, mount, umount), fdisk's sfdisk,
/// udevadm and systemctl: what the initrd has (no coreutils).
const SCRIPT: &str = r#"#!/bin/sh
set -eu
say() { echo "craton-disk-identity: $*"; }
slot=
read -r cmdline </proc/cmdline
for w in $cmdline; do
    case $w in craton.slot=*) slot=${w#craton.slot=} ;; esac
done
case $slot in
    a) S=A ;;
    b) S=B ;;
    *) say "no craton.slot=a|b on the kernel command line; nothing changed"; exit 0 ;;
esac
if ! udevadm wait --settle --timeout=@WAIT@ /dev/disk/by-partlabel/@ESP@; then
    say "no @ESP@ partition appeared in @WAIT@ s; nothing changed"
    exit 0
fi
mnt=/run/craton-disk-identity
claimed= count=0
for p in /sys/class/block/*/partition; do
    read -r n <"$p"
    [ "$n" = 1 ] || continue
    part=${p%/partition}
    esp=/dev/${part##*/}
    [ "$(lsblk -ndo PARTLABEL "$esp")" = @ESP@ ] || continue
    mount --mkdir -t vfat -o ro "$esp" "$mnt" || continue
    found=
    while IFS= read -r line || [ -n "$line" ]; do
        [ "$line" = @DISK_ID@=@CLAIMED@ ] && found=1
    done <"$mnt@GRUBENV@" || true
    umount "$mnt"
    if [ -n "$found" ]; then
        claimed="$claimed $esp"
        count=$((count + 1))
    fi
done
if [ "$count" != 1 ]; then
    say "$count ESPs hold GRUB's claim (${claimed# }): cannot tell which disk booted; nothing changed"
    exit 0
fi
esp=${claimed# }
disk=/dev/$(lsblk -ndo PKNAME "$esp")
numbers=
for p in /sys/class/block/"${disk#/dev/}"/*/partition; do
    read -r n <"$p"
    numbers="$numbers $n"
done
uuid() { read -r u </proc/sys/kernel/random/uuid; echo "$u"; }
# --lock: udev does not probe the disk while sfdisk writes it (systemd's
# BLOCK_DEVICE_LOCKING.md). udev re-reads the table after each write (its
# inotify watch), so the partitions come and go: their numbers were read
# above, and the ESP is waited for below.
sfdisk --lock --no-reread --no-tell-kernel --disk-id "$disk" "$(uuid)"
for n in $numbers; do
    sfdisk --lock --no-reread --no-tell-kernel --part-uuid "$disk" "$n" "$(uuid)"
done
udevadm wait --settle --timeout=@WAIT@ "$esp"
mount --mkdir -t vfat -o rw,nosuid,nodev,noexec "$esp" "$mnt"
@GRUBENV_SET@ --in-place "$mnt@GRUBENV@" @DISK_ID@=@MACHINE@ "${S}_TRY=0"
umount "$mnt"
say "$disk has its own disk GUID and PARTUUIDs"
echo "@REBOOT_LINE@ so that GRUB passes them"
systemctl --force reboot
"#;

/// Before everything that opens a partition by the command line's
/// PARTUUIDs: the verity device of /usr, ROOT's fsck and mount, and
/// systemd-repart (whose ExecStartPre relocates the backup GPT).
const UNIT: &str = "[Unit]
Description=Own disk identifiers for a new disk
DefaultDependencies=no
ConditionKernelCommandLine=@ARG@=@CLAIMED@
After=systemd-udev-trigger.service systemd-modules-load.service
Before=systemd-veritysetup@usr.service systemd-fsck-root.service sysroot.mount
Before=systemd-repart.service initrd-root-device.target

[Service]
Type=oneshot
ExecStart=@SCRIPT@
StandardOutput=journal+console

[Install]
WantedBy=initrd-root-device.target
";

/// (path, content, mode) of the script, the unit and the grubenv writer.
pub fn files() -> Vec<(String, String, u32)> {
    let script = SCRIPT
        .replace("@WAIT@", &WAIT_SECS.to_string())
        .replace("@ESP@", ESP_PARTLABEL)
        .replace("@GRUBENV_SET@", GRUBENV_SET_PATH)
        .replace("@GRUBENV@", GRUBENV_PATH)
        .replace("@DISK_ID@", DISK_ID)
        .replace("@CLAIMED@", DiskId::Claimed.name())
        .replace("@MACHINE@", DiskId::Machine.name())
        .replace("@REBOOT_LINE@", REBOOT_LINE);
    let unit = UNIT
        .replace("@ARG@", DISK_ID_ARG)
        .replace("@CLAIMED@", DiskId::Claimed.name())
        .replace("@SCRIPT@", DISK_IDENTITY_PATH);
    vec![
        (DISK_IDENTITY_PATH.into(), script, 0o755),
        (GRUBENV_SET_PATH.into(), GRUBENV_SET.into(), 0o755),
        (
            format!("/usr/lib/systemd/system/{DISK_IDENTITY_UNIT}"),
            unit,
            0o644,
        ),
    ]
}
