//! The files craton adds to the initrd, all in this one place: the units
//! that mount /etc as an overlay (lower: the running slot's factory copy,
//! upper and work on ROOT, at the places `crate::rootfs::layout` names),
//! the GPT relocation that lets systemd-repart grow ROOT on a larger
//! disk, and a new disk's own identifiers (`super::identity`). [`install`] writes them and enables the units as their [Install]
//! sections say, with the links `systemctl enable` would make.

use std::path::Path;

use anyhow::{Context, Result, bail};

use crate::boot::grubcfg::USR_VERITY_DEVICE;
use crate::files::tree::write_file;
use crate::rootfs::layout::{ETC_UPPER, ETC_WORK, FACTORY};

/// Where systemd reads vendor units and where `systemctl enable` links.
const UNIT_DIR: &str = "usr/lib/systemd/system";
pub(super) const ENABLE_DIR: &str = "etc/systemd/system";
/// Unit files and drop-ins are plain readable files.
const UNIT_MODE: u32 = 0o644;

/// Writes [`files`] into the initrd tree and enables each unit as its
/// [Install] section says (so `systemctl is-enabled` says "enabled").
/// Units without [Install] are pulled in by another unit
/// (craton-etc-dirs.service by sysroot-etc.mount's Requires=).
pub fn install(tree: &Path) -> Result<Vec<String>> {
    install_files(tree, files())
}

/// Writes `files` ((path, content, mode)) into the initrd tree and enables
/// the units among them as their [Install] sections say; returns the
/// units' names.
pub fn install_files(tree: &Path, files: Vec<(String, String, u32)>) -> Result<Vec<String>> {
    let mut names = Vec::new();
    for (path, text, mode) in files {
        write_file(tree, &path, text.as_bytes(), mode)?;
        let Some(name) = path.strip_prefix(&format!("/{UNIT_DIR}/")) else {
            continue;
        };
        if name.contains('/') {
            continue; // a drop-in, not a unit
        }
        for (suffix, target) in install_section(&text).with_context(|| format!("unit {name}"))? {
            // Through `files::tree`: the staged packages' folders could be
            // symlinks that lead out of the tree.
            crate::files::tree::symlink(
                tree,
                &format!("/{ENABLE_DIR}/{target}.{suffix}/{name}"),
                &format!("/{UNIT_DIR}/{name}"),
            )?;
        }
        names.push(name.to_owned());
    }
    tracing::debug!("initrd units {names:?}");
    Ok(names)
}

/// Where the initrd keeps the GPT relocation script.
pub const GPT_RELOCATE_PATH: &str = "/usr/lib/craton/gpt-relocate";

/// An image written to a larger disk (dd to a bigger drive, a GCE disk
/// sized at creation, `truncate` in a test) keeps the GPT of the image:
/// its backup header sits where the image ended and its last usable LBA
/// stops there, so systemd-repart 257 sees no free space to grow into
/// (systemd PR #38747 fixes that in repart itself, after trixie). The
/// script moves the backup header to the end of the disk first, which also
/// moves the last usable LBA (sfdisk(8) --relocate gpt-bak-std; package
/// fdisk), and only when sfdisk reports it misplaced. The disk is the one
/// holding the booted /usr, found as the mark-good script finds it. Run
/// by systemd-repart.service (ExecStartPre) in the initrd, so it needs
/// only sh (dash) and util-linux's lsblk besides sfdisk.
const GPT_RELOCATE: &str = r#"#!/bin/sh
set -eu
read -r cmdline </proc/cmdline
usr=
for w in $cmdline; do
    case $w in
        systemd.verity_usr_data=PARTUUID=*) usr=${w#systemd.verity_usr_data=PARTUUID=} ;;
    esac
done
[ -n "$usr" ] || { echo "gpt-relocate: no /usr PARTUUID on the kernel command line"; exit 0; }
disk=/dev/$(lsblk -ndo PKNAME "/dev/disk/by-partuuid/$usr")
report=$(sfdisk --list "$disk" 2>&1) || true
case $report in
    *"backup GPT table is not on the end of the device"*)
        echo "gpt-relocate: moving the backup GPT of $disk to its end"
        sfdisk --relocate gpt-bak-std "$disk"
        ;;
esac
"#;

/// Runs the script above right before systemd-repart, with its ordering.
const REPART_DROPIN: &str = "[Service]
ExecStartPre=@GPT_RELOCATE@
";

/// dm-verity checks a block only when it is read, so a corrupt /usr showed
/// first when udev probed /dev/mapper/usr: the probe failed, the device
/// unit never became ready, and the boot waited for its job to time out
/// (systemd's 90 s) before the /usr mount failed. The veritysetup unit that
/// systemd-veritysetup-generator writes for `usrhash=` probes the device it
/// made (blkid reads erofs's superblock and the other places filesystems
/// keep their signatures; util-linux is in the initrd), so a corrupt /usr
/// fails that unit at once, with the kernel's "data block N is corrupted"
/// above it.
const VERITY_PROBE_DROPIN: &str = "[Service]
ExecStartPost=blkid --probe @USR@
";

/// The unit name of [`USR_VERITY_DEVICE`] (systemd.unit(5)'s path escaping).
const USR_DEVICE_UNIT: &str = "dev-mapper-usr.device";

/// The generator orders nothing after the veritysetup unit of `usrhash=`
/// (it does for veritytab's devices): without this, /dev/mapper/usr's job
/// keeps waiting when the unit fails. With it, the job fails at once
/// ("Dependency failed"), and so do the /usr mounts, which sends the
/// initrd to emergency mode as a missing /usr does.
const VERITY_DEVICE_DROPIN: &str = "[Unit]
Requires=systemd-veritysetup@usr.service
After=systemd-veritysetup@usr.service
";

/// Every file craton adds to the initrd: the /etc overlay's units, the
/// GPT relocation that runs before systemd-repart (packages systemd-repart,
/// dash and fdisk in the initrd's set), and the drop-ins that make a
/// corrupt /usr fail the boot at once. repart itself reads its definitions
/// from the image's /usr (`crate::boot::units::REPART_ROOT_PATH`, through
/// /sysusr/usr), so the image owns its partition plan.
pub fn files() -> Vec<(String, String, u32)> {
    let mut out: Vec<(String, String, u32)> = etc_units()
        .into_iter()
        .map(|(name, text)| (format!("/{UNIT_DIR}/{name}"), text, UNIT_MODE))
        .collect();
    out.extend([
        (GPT_RELOCATE_PATH.into(), GPT_RELOCATE.into(), 0o755),
        (
            "/usr/lib/systemd/system/systemd-repart.service.d/craton-gpt.conf".into(),
            REPART_DROPIN.replace("@GPT_RELOCATE@", GPT_RELOCATE_PATH),
            UNIT_MODE,
        ),
        (
            format!("/{UNIT_DIR}/systemd-veritysetup@usr.service.d/craton-probe.conf"),
            VERITY_PROBE_DROPIN.replace("@USR@", USR_VERITY_DEVICE),
            UNIT_MODE,
        ),
        (
            format!("/{UNIT_DIR}/{USR_DEVICE_UNIT}.d/craton-verity.conf"),
            VERITY_DEVICE_DROPIN.into(),
            UNIT_MODE,
        ),
    ]);
    out.extend(super::identity::files());
    // A trial boot that fails here (a /usr that fails verity) reboots
    // into the other slot (docs/updates.md).
    out.push((
        format!("/{UNIT_DIR}/{}", crate::boot::units::TRIAL_FAILED_UNIT),
        crate::boot::units::trial_failed_service(),
        UNIT_MODE,
    ));
    out
}

/// (file name, content) of the units that mount /etc: create the overlay's
/// upper and work folders on ROOT, then mount /sysroot/etc. The mount
/// unit's name is the escaped mount point (systemd.mount(5)).
fn etc_units() -> [(&'static str, String); 2] {
    let dirs = format!(
        "[Unit]\n\
         Description=Folders of the /etc overlay on ROOT\n\
         DefaultDependencies=no\n\
         RequiresMountsFor=/sysroot/var\n\
         Before=sysroot-etc.mount\n\n\
         [Service]\n\
         Type=oneshot\n\
         RemainAfterExit=yes\n\
         # systemd-tmpfiles, not mkdir: the initrd has systemd, not coreutils.\n\
         # Its configuration comes on stdin (tmpfiles.d(5) lines).\n\
         ExecStart=systemd-tmpfiles --create -\n\
         StandardInput=data\n\
         StandardInputText=d /sysroot{ETC_UPPER} 0755 root root -\n\
         StandardInputText=d /sysroot{ETC_WORK} 0755 root root -\n"
    );
    let mount = format!(
        "# /etc: the factory defaults of the running /usr slot, with local\n\
         # changes kept on ROOT (docs/layout.md).\n\
         [Unit]\n\
         Description=/etc overlay\n\
         DefaultDependencies=no\n\
         Requires=craton-etc-dirs.service\n\
         After=craton-etc-dirs.service\n\
         RequiresMountsFor=/sysroot/usr /sysroot/var\n\
         Before=initrd-fs.target\n\n\
         [Mount]\n\
         What=overlay\n\
         Where=/sysroot/etc\n\
         Type=overlay\n\
         Options=lowerdir=/sysroot/{FACTORY}/etc,upperdir=/sysroot{ETC_UPPER},workdir=/sysroot{ETC_WORK}\n\n\
         [Install]\n\
         RequiredBy=initrd-fs.target\n"
    );
    [
        ("craton-etc-dirs.service", dirs),
        ("sysroot-etc.mount", mount),
    ]
}

/// The (wants|requires, target) pairs of a unit's [Install] section
/// (systemd.unit(5)); keys that need more than a link are refused.
pub fn install_section(unit: &str) -> Result<Vec<(&'static str, String)>> {
    let mut out = Vec::new();
    let mut in_install = false;
    for line in unit.lines().map(str::trim) {
        if line.starts_with('[') {
            in_install = line == "[Install]";
            continue;
        }
        if !in_install || line.is_empty() || line.starts_with(['#', ';']) {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            bail!("[Install]: `{line}` is not KEY=VALUE");
        };
        let suffix = match key.trim() {
            "WantedBy" => "wants",
            "RequiredBy" => "requires",
            "UpheldBy" => "upholds",
            other => bail!("[Install]: {other}= is not supported in the initrd"),
        };
        out.extend(value.split_whitespace().map(|t| (suffix, t.to_owned())));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::process::Cmd;

    #[test]
    fn etc_overlay_and_gpt_relocation() {
        let files = files();
        let get = |p: &str| &files.iter().find(|f| f.0 == p).unwrap().1;
        let mount = get("/usr/lib/systemd/system/sysroot-etc.mount");
        assert!(mount.contains(
            "Options=lowerdir=/sysroot/usr/share/factory/etc,upperdir=/sysroot/var/lib/craton/etc/upper,workdir=/sysroot/var/lib/craton/etc/work\n"
        ));
        for script in [
            GPT_RELOCATE_PATH,
            super::super::identity::DISK_IDENTITY_PATH,
        ] {
            Cmd::new("/bin/sh")
                .args(["-n", "-c", get(script)])
                .run()
                .unwrap();
            assert!(
                !get(script).contains('@'),
                "{script} has a placeholder left"
            );
        }
        let identity = get(super::super::identity::DISK_IDENTITY_PATH);
        for want in [
            "[ \"$line\" = DISK_ID=claimed ] && found=1",
            "/usr/lib/craton/grubenv-set --in-place \"$mnt/grub/grubenv\" DISK_ID=machine \"${S}_TRY=0\"",
            "[ \"$(lsblk -ndo PARTLABEL \"$esp\")\" = EFI-SYSTEM ]",
        ] {
            assert!(identity.contains(want), "{want} not in {identity}");
        }
        assert!(
            get("/usr/lib/systemd/system/craton-disk-identity.service")
                .contains("ConditionKernelCommandLine=craton.disk-id=claimed\n")
        );
        assert!(
            get("/usr/lib/systemd/system/systemd-repart.service.d/craton-gpt.conf")
                .contains("ExecStartPre=/usr/lib/craton/gpt-relocate\n")
        );
        // A corrupt /usr fails its veritysetup unit, and the device job
        // with it (image_boot's flipped_byte_in_usr_a_stops_the_boot).
        assert_eq!(
            get("/usr/lib/systemd/system/systemd-veritysetup@usr.service.d/craton-probe.conf"),
            "[Service]\nExecStartPost=blkid --probe /dev/mapper/usr\n"
        );
        let device = get("/usr/lib/systemd/system/dev-mapper-usr.device.d/craton-verity.conf");
        for line in [
            "Requires=systemd-veritysetup@usr.service\n",
            "After=systemd-veritysetup@usr.service\n",
        ] {
            assert!(device.contains(line), "{device}");
        }
    }

    #[test]
    fn install_enables_the_mount() {
        let dir = tempfile::tempdir().unwrap();
        let names = install(dir.path()).unwrap();
        assert_eq!(
            names,
            [
                "craton-etc-dirs.service",
                "sysroot-etc.mount",
                "craton-disk-identity.service",
                "craton-trial-failed.service"
            ]
        );
        // A failed trial in the initrd reboots (docs/updates.md).
        let link = dir
            .path()
            .join("etc/systemd/system/emergency.target.wants/craton-trial-failed.service");
        assert!(link.is_symlink());
        let link = dir.path().join(
            "etc/systemd/system/initrd-root-device.target.wants/craton-disk-identity.service",
        );
        assert!(link.is_symlink());
        let link = dir
            .path()
            .join("etc/systemd/system/initrd-fs.target.requires/sysroot-etc.mount");
        assert_eq!(
            std::fs::read_link(link).unwrap(),
            Path::new("/usr/lib/systemd/system/sysroot-etc.mount")
        );
    }
}
