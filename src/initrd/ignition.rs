//! Ignition in the initrd: first-boot provisioning (docs/provisioning.md).
//!
//! Debian's `ignition` package ships the binary, the systemd units and the
//! generator of a dracut module (/usr/lib/dracut/modules.d/30ignition).
//! craton builds its own initrd, so [`install`] does what that module's
//! `module-setup.sh` asks of dracut: the binary to /usr/bin, the generator
//! to systemd's generator folder, the units and targets to the unit folder,
//! each stage required by ignition-complete.target. The generator is
//! Debian's (bash, with coreutils' mkdir and ln: both are in the initrd's
//! package set); it pulls ignition-complete.target into initrd.target only
//! when the command line says `ignition.firstboot`, which GRUB adds while
//! the ESP's environment block says [`FIRST_BOOT`] (crate::boot::grubcfg).
//!
//! What craton adds around Ignition's stages, all in [`files`]:
//!
//! - order against craton's own initrd units: after the disk's identity
//!   (which may reboot) and systemd-repart, the files stage after the /etc
//!   overlay, so /etc lands in its upper layer on ROOT;
//! - the OEM partition's baked config as Ignition's system user config;
//! - networking for the fetch stage, only when fetch-offline asked for it;
//! - a reset of ROOT when an earlier first boot failed halfway, so no
//!   partial result is ever taken for a finished provisioning;
//! - enabling the units the config enables (Ignition writes presets, which
//!   systemd applies only on a first boot in machine-id(5)'s sense, and a
//!   craton image's empty machine-id is not one), then clearing the flag;
//! - one console line with Ignition's own error when a stage fails;
//! - the programs Ignition calls that the initrd lacks: the image's
//!   useradd and friends, run in /sysroot, and a `setfiles` that labels
//!   nothing (Debian builds Ignition with SELinux relabeling on; craton
//!   has no SELinux).
//!
//! [`FIRST_BOOT`]: crate::boot::grubcfg::FIRST_BOOT

use std::path::Path;

use anyhow::Result;

use crate::boot::grubcfg::{FIRST_BOOT, FIRST_BOOT_ARG, GRUBENV_PATH};
use crate::boot::units::{ESP_PARTLABEL, GRUBENV_SET_PATH};
use crate::files::tree;
use crate::rootfs::layout::{FACTORY_DIRS, SKELETON_DIRS, SKELETON_LINKS, VAR_DPKG_LINK};

/// Where Debian's package puts the dracut module (module-setup.sh's
/// `$moddir`).
const MODULE_DIR: &str = "/usr/lib/dracut/modules.d/30ignition";
/// Where systemd looks for vendor units in the initrd.
const UNIT_DIR: &str = "/usr/lib/systemd/system";
/// The stages ignition-complete.target requires (module-setup.sh's
/// `install_ignition_unit` calls), in Ignition's own order.
const STAGES: &[&str] = &[
    "ignition-fetch-offline.service",
    "ignition-fetch.service",
    "ignition-kargs.service",
    "ignition-disks.service",
    "ignition-mount.service",
    "ignition-files.service",
];
/// Required by ignition-diskful.target (a boot disk, not a live image).
const DISKFUL_UNIT: &str = "ignition-remount-sysroot.service";
const TARGETS: &[&str] = &[
    "ignition-complete.target",
    "ignition-subsequent.target",
    "ignition-diskful.target",
    "ignition-diskful-subsequent.target",
];
/// (file in the module, place in the initrd, mode).
const MOVES: &[(&str, &str, u32)] = &[
    ("ignition", "/usr/bin/ignition", 0o755),
    (
        "ignition-generator",
        "/usr/lib/systemd/system-generators/ignition-generator",
        0o755,
    ),
    (
        "ignition-kargs-helper.sh",
        "/usr/sbin/ignition-kargs-helper",
        0o755,
    ),
    (
        "99-xx-ignition-systemd-cryptsetup.rules",
        "/usr/lib/udev/rules.d/99-xx-ignition-systemd-cryptsetup.rules",
        0o644,
    ),
];
/// The config validator is a build tool (`craton provision validate`,
/// from the tools tree), not something the initrd runs.
const VALIDATE: &str = "/usr/bin/ignition-validate";

/// Where Ignition looks for its system configs: `user.ign` there is the
/// config used when the command line names none (Ignition's "system"
/// provider, tried before the platform's), `base.d/` fragments are merged
/// under every config. The binary's default is /usr/lib/ignition, which
/// is read-only in craton's initrd; its `IGNITION_SYSTEM_CONFIG_DIR` environment
/// variable moves it to /run, where the OEM partition's config is put.
pub const SYSTEM_CONFIG_DIR: &str = "/run/craton-ignition";
/// The system user config in [`SYSTEM_CONFIG_DIR`].
const SYSTEM_USER_CONFIG: &str = "user.ign";
/// The baked default config on the OEM partition, relative to it (the
/// running system sees it as /oem/ignition/config.ign).
pub const OEM_CONFIG: &str = "ignition/config.ign";
/// The flag file fetch-offline writes when the config needs the network
/// (ignition-fetch-offline.service's own comment).
const NEEDNET: &str = "/run/ignition/neednet";
/// Written on ROOT when provisioning starts, removed when it finished: a
/// first boot that finds it knows an earlier one stopped halfway.
pub const STARTED_MARKER: &str = "/var/lib/craton/provision/started";
/// How long the fetch stage may try to reach its config. Ignition retries
/// an unreachable source forever and a oneshot unit has no start timeout,
/// so without this a wrong URL looks like a hung boot.
pub const FETCH_TIMEOUT_SECS: u32 = 300;
/// How long the network may take to come up for the fetch stage.
const ONLINE_TIMEOUT_SECS: u32 = 90;
/// The line the failure unit starts with (tests look for it).
pub const FAILED_LINE: &str = "craton: first-boot provisioning failed:";
/// Its last line.
pub const STOPPED_LINE: &str = "craton: the machine was not provisioned and stops here.";
/// The GCE metadata server (Google's "About VM metadata").
const GCE_METADATA: &str = "169.254.169.254 metadata.google.internal metadata";

/// Places Debian's module and craton's files in the initrd tree when the
/// initrd's packages include Ignition; returns whether they did.
pub fn install(root: &Path) -> Result<bool> {
    if tree::read(root, &format!("{MODULE_DIR}/ignition-generator"))?.is_none() {
        tracing::info!("no Ignition in the initrd's packages: first-boot provisioning is off");
        return Ok(false);
    }
    for (name, to, mode) in MOVES {
        place(root, name, to, *mode)?;
    }
    for unit in STAGES.iter().chain([&DISKFUL_UNIT]).chain(TARGETS) {
        place(root, unit, &format!("{UNIT_DIR}/{unit}"), 0o644)?;
    }
    for unit in STAGES {
        link(root, "ignition-complete.target", unit)?;
    }
    link(root, "ignition-diskful.target", DISKFUL_UNIT)?;
    tree::remove(root, "/usr/lib/dracut")?;
    tree::remove(root, VALIDATE)?;
    super::units::install_files(root, files())?;
    shadow_links(root)?;
    Ok(true)
}

/// Copies the module's file `name` to `to` in the initrd, with `mode`.
fn place(root: &Path, name: &str, to: &str, mode: u32) -> Result<()> {
    let from = format!("{MODULE_DIR}/{name}");
    let bytes = tree::read(root, &from)?
        .ok_or_else(|| anyhow::anyhow!("the ignition package has no {from}"))?;
    tree::write_file(root, to, &bytes, mode).map(|_| ())
}

/// `target.requires/unit`, as dracut's `ln_r` makes it.
fn link(root: &Path, target: &str, unit: &str) -> Result<()> {
    tree::symlink(
        root,
        &format!("{UNIT_DIR}/{target}.requires/{unit}"),
        &format!("../{unit}"),
    )
}

/// Runs Ignition's `useradd --root DIR ...` (and usermod, userdel,
/// groupadd, groupdel) as the image's own program inside DIR: the same
/// chroot that `--root` makes, with the shadow tools, login.defs and NSS
/// of the image rather than a second copy (and PAM and debconf) in the
/// initrd. util-linux's unshare makes the chroot (no coreutils needed).
const SHADOW: &str = r#"#!/bin/sh
set -eu
name=${0##*/}
if [ "${1:-}" != --root ] || [ -z "${2:-}" ]; then
    echo "$name: craton's initrd runs the image's $name with --root DIR only" >&2
    exit 2
fi
root=$2
shift 2
exec unshare --root="$root" "/usr/sbin/$name" "$@"
"#;
const SHADOW_PATH: &str = "/usr/lib/craton/shadow-in-root";
const SHADOW_TOOLS: &[&str] = &["useradd", "usermod", "userdel", "groupadd", "groupdel"];

/// Debian's Ignition relabels what it wrote with `setfiles` (its build
/// keeps upstream's SELinux default). craton has no SELinux: nothing to
/// label, so the paths Ignition hands over are read and dropped.
const SETFILES: &str =
    "#!/bin/sh\n# craton: no SELinux, nothing to label (src/initrd/ignition.rs).\ncat >/dev/null\n";

/// craton-ignition-oem.service: the OEM partition's baked config (the
/// profile's `[provision] ignition`) becomes Ignition's system user config.
/// The partition is the one GRUB names for /oem on the command line.
const OEM_SCRIPT: &str = r#"#!/bin/sh
set -eu
oem=
read -r cmdline </proc/cmdline
for w in $cmdline; do
    case $w in
        systemd.mount-extra=PARTUUID=*:/oem:*) oem=${w#systemd.mount-extra=PARTUUID=}; oem=${oem%%:*} ;;
    esac
done
[ -n "$oem" ] || exit 0
dev=/dev/disk/by-partuuid/$oem
udevadm wait --timeout=60 "$dev" || { echo "craton-ignition: no OEM partition: no baked config"; exit 0; }
mnt=/run/craton-oem
mount --mkdir -t ext4 -o ro,nosuid,nodev,noexec "$dev" "$mnt"
if [ -f "$mnt/@OEM_CONFIG@" ]; then
    mkdir -p @SYSTEM_DIR@
    cp "$mnt/@OEM_CONFIG@" @SYSTEM_DIR@/@SYSTEM_USER@
    echo "craton-ignition: the OEM partition's config is the default config"
fi
umount "$mnt"
"#;
const OEM_PATH: &str = "/usr/lib/craton/ignition-oem";

/// Before the fetch stage: name servers from networkd's DHCP leases (the
/// initrd runs no resolver daemon; Ignition's resolver reads
/// /etc/resolv.conf), and on gcp the metadata server's name, as Google's
/// own images keep it in /etc/hosts.
const RESOLV_SCRIPT: &str = r#"#!/bin/sh
set -eu
out=
for f in /run/systemd/netif/leases/*; do
    [ -f "$f" ] || continue
    while IFS='=' read -r k v; do
        [ "$k" = DNS ] || continue
        for a in $v; do out="${out}nameserver $a
"; done
    done <"$f"
done
printf '%s' "$out" >/etc/resolv.conf
PLATFORM_ID=
. /run/ignition.env
if [ "$PLATFORM_ID" = gcp ]; then
    echo "@GCE_METADATA@" >>/etc/hosts
fi
"#;
const RESOLV_PATH: &str = "/usr/lib/craton/ignition-resolv";

/// craton-provision-reset.service: on ROOT, right after it is mounted and
/// before the /etc overlay or any Ignition stage writes there. A first
/// boot that finds [`STARTED_MARKER`] follows one that stopped halfway:
/// ROOT goes back to the image's state (the skeleton of
/// `crate::rootfs::layout`: its links, empty folders and the link to
/// dpkg's database), which tmpfiles fills again at boot. Then the marker
/// is written for this attempt.
const RESET_SCRIPT: &str = r#"#!/bin/sh
set -eu
say() { echo "craton-provision: $*"; }
r=/sysroot
if [ -e "$r@MARKER@" ]; then
    if mountpoint -q "$r/etc"; then
        say "$r/etc is mounted: cannot reset ROOT"
        exit 1
    fi
    say "an earlier first boot stopped while provisioning: ROOT goes back to the image's state"
    for e in "$r"/* "$r"/.[!.]* "$r"/..?*; do
        [ -e "$e" ] || [ -L "$e" ] || continue
        case ${e#"$r"/} in
            usr | lost+found | @KEEP@) ;;
            @EMPTY@ | etc) rm -rf --one-file-system "$e"/* "$e"/.[!.]* "$e"/..?* ;;
            *) rm -rf --one-file-system "$e" ;;
        esac
    done
    mkdir -p "$r/@DPKG_DIR@"
    ln -sfn @DPKG_TARGET@ "$r/@DPKG_LINK@"
fi
mkdir -p "$r$(dirname @MARKER@)"
: >"$r@MARKER@"
sync -f "$r@MARKER@"
"#;
const RESET_PATH: &str = "/usr/lib/craton/provision-reset";

/// craton-provision-finish.service, after the files stage: enable or
/// disable what the config's units ask (the presets Ignition wrote, applied
/// with systemctl --root as a first boot would), clear [`FIRST_BOOT`] on the
/// booted disk's ESP, and remove the marker. The flag goes before the
/// marker: a cut between the two leaves a provisioned ROOT that no later
/// boot provisions again.
const FINISH_SCRIPT: &str = r#"#!/bin/sh
set -eu
say() { echo "craton-provision: $*"; }
r=/sysroot
preset=$r/etc/systemd/system-preset/20-ignition.preset
if [ -f "$preset" ]; then
    units=
    while read -r verb unit rest; do
        case $verb in enable | disable) ;; *) continue ;; esac
        if [ -n "$rest" ]; then
            for i in $rest; do units="$units ${unit%@*}@$i.${unit##*.}"; done
        else
            units="$units $unit"
        fi
    done <"$preset"
    if [ -n "$units" ]; then
        say "presets of the config:$units"
        systemctl --root="$r" preset $units
    fi
fi
usr=
read -r cmdline </proc/cmdline
for w in $cmdline; do
    case $w in systemd.verity_usr_data=PARTUUID=*) usr=${w#systemd.verity_usr_data=PARTUUID=} ;; esac
done
[ -n "$usr" ] || { say "no /usr PARTUUID on the kernel command line"; exit 1; }
disk=$(lsblk -ndo PKNAME "/dev/disk/by-partuuid/$usr")
esp=
for p in /sys/class/block/"$disk"/*/partition; do
    read -r n <"$p"
    [ "$n" = 1 ] || continue
    part=${p%/partition}
    esp=/dev/${part##*/}
done
[ -n "$esp" ] && [ "$(lsblk -ndo PARTLABEL "$esp")" = @ESP@ ] || { say "no @ESP@ partition on /dev/$disk"; exit 1; }
mnt=/run/craton-provision-esp
mount --mkdir -t vfat -o rw,nosuid,nodev,noexec "$esp" "$mnt"
@GRUBENV_SET@ --in-place "$mnt@GRUBENV@" @FIRST_BOOT@=0
umount "$mnt"
rm -f "$r@MARKER@"
sync -f "$r$(dirname @MARKER@)"
say "provisioned; later boots do not run Ignition"
"#;
const FINISH_PATH: &str = "/usr/lib/craton/provision-finish";

/// At emergency.target on a first boot: Ignition's own message, on the
/// console, where a failed stage otherwise shows only "Failed to start".
/// Ignition logs through syslog as "ignition", except the stages run with
/// `--log-to-stdout` (mount, files), whose lines reach the journal through
/// stdout as "CRITICAL : ...". Its first critical message names the cause
/// ("error at $.storage.files.0.path, line 1 col 61: path not absolute"),
/// its last one sums up ("Ignition failed: config is not valid").
const FAILED_SCRIPT: &str = r#"#!/bin/sh
crit() {
    journalctl -b -q -o cat -t ignition -p crit 2>/dev/null
    journalctl -b -q -o cat -t ignition 2>/dev/null | while IFS= read -r l; do
        case $l in "CRITICAL : "*) printf '%s\n' "${l#CRITICAL : }" ;; esac
    done
}
first=$(crit | head -n 1)
last=$(crit | tail -n 1)
[ -n "$first" ] || first=$(journalctl -b -q -o cat -t ignition -p err 2>/dev/null | tail -n 1)
[ -n "$first" ] || exit 0
echo "@FAILED_LINE@ $first"
[ -z "$last" ] || [ "$last" = "$first" ] || echo "craton: Ignition: $last"
echo "@STOPPED_LINE@ Fix the config and boot again (docs/provisioning.md)."
"#;
const FAILED_PATH: &str = "/usr/lib/craton/ignition-failed";

/// (unit or drop-in file name under the unit folder, text).
fn units() -> Vec<(String, String)> {
    let firstboot = format!("ConditionKernelCommandLine={FIRST_BOOT_ARG}");
    vec![
        (
            "ignition-fetch-offline.service.d/craton.conf".into(),
            // After the disk's own identifiers (that unit may reboot) and
            // the baked config, which must have been read if it is there.
            format!(
                "[Unit]\nRequires=craton-ignition-oem.service\n\
                 After=craton-disk-identity.service craton-ignition-oem.service\n\n\
                 [Service]\nEnvironment=IGNITION_SYSTEM_CONFIG_DIR={SYSTEM_CONFIG_DIR}\n"
            ),
        ),
        (
            "craton-ignition-oem.service".into(),
            format!(
                "[Unit]\nDescription=Ignition's default config from the OEM partition\n\
                 DefaultDependencies=no\n{firstboot}\n\
                 After=craton-disk-identity.service systemd-udev-trigger.service\n\
                 Before=ignition-fetch-offline.service\n\n\
                 [Service]\nType=oneshot\nRemainAfterExit=yes\nExecStart={OEM_PATH}\n"
            ),
        ),
        (
            "ignition-fetch.service.d/craton.conf".into(),
            format!(
                "[Unit]\nWants=systemd-networkd.service systemd-networkd-wait-online.service\n\
                 After=systemd-networkd-wait-online.service\n\n\
                 [Service]\nExecStartPre={RESOLV_PATH}\nTimeoutStartSec={FETCH_TIMEOUT_SECS}\n\
                 Environment=IGNITION_SYSTEM_CONFIG_DIR={SYSTEM_CONFIG_DIR}\n"
            ),
        ),
        (
            // The initrd's networkd runs for Ignition alone, when the
            // config needs the network; it stops before switch-root
            // (its own Conflicts=initrd-switch-root.target).
            "systemd-networkd.service.d/craton-ignition.conf".into(),
            format!(
                "[Unit]\nConditionPathExists={NEEDNET}\nAfter=ignition-fetch-offline.service\n"
            ),
        ),
        (
            "systemd-networkd-wait-online.service.d/craton-ignition.conf".into(),
            format!(
                "[Unit]\nConditionPathExists={NEEDNET}\nAfter=ignition-fetch-offline.service\n\n\
                 [Service]\nExecStart=\n\
                 ExecStart=/usr/lib/systemd/systemd-networkd-wait-online --any --timeout={ONLINE_TIMEOUT_SECS}\n"
            ),
        ),
        (
            // Partitions of other disks only after ROOT's own growth.
            "ignition-disks.service.d/craton.conf".into(),
            "[Unit]\nAfter=systemd-repart.service\n".into(),
        ),
        (
            // /etc is the overlay, so the config's /etc lands in its upper
            // layer; ROOT was reset first if it had to be.
            "ignition-files.service.d/craton.conf".into(),
            "[Unit]\nRequires=sysroot-etc.mount\n\
             After=sysroot-etc.mount craton-provision-reset.service\n"
                .into(),
        ),
        (
            "craton-provision-reset.service".into(),
            format!(
                "[Unit]\nDescription=ROOT as the image left it, for provisioning\n\
                 DefaultDependencies=no\n{firstboot}\n\
                 After=sysroot.mount ignition-remount-sysroot.service\n\
                 Before=craton-etc-dirs.service sysroot-etc.mount ignition-mount.service ignition-files.service\n\n\
                 [Service]\nType=oneshot\nRemainAfterExit=yes\nExecStart={RESET_PATH}\n\
                 StandardOutput=journal+console\n\n\
                 [Install]\nRequiredBy=ignition-complete.target\n"
            ),
        ),
        (
            "craton-provision-finish.service".into(),
            format!(
                "[Unit]\nDescription=Provisioning done: the config's unit presets, the first-boot flag cleared\n\
                 DefaultDependencies=no\n{firstboot}\n\
                 After=ignition-files.service\nBefore=ignition-complete.target\n\n\
                 [Service]\nType=oneshot\nRemainAfterExit=yes\nExecStart={FINISH_PATH}\n\
                 StandardOutput=journal+console\n\n\
                 [Install]\nRequiredBy=ignition-complete.target\n"
            ),
        ),
        (
            "craton-ignition-failed.service".into(),
            format!(
                "[Unit]\nDescription=Ignition's error on the console\n\
                 DefaultDependencies=no\n{firstboot}\n\n\
                 [Service]\nType=oneshot\nExecStart={FAILED_PATH}\n\
                 StandardOutput=journal+console\n\n\
                 [Install]\nWantedBy=emergency.target\n"
            ),
        ),
    ]
}

/// Every file craton adds for Ignition: (path, content, mode).
pub fn files() -> Vec<(String, String, u32)> {
    let (dpkg_link, dpkg_target) = VAR_DPKG_LINK;
    let keep: Vec<&str> = SKELETON_LINKS
        .iter()
        .map(|(name, _)| *name)
        .chain(
            SKELETON_DIRS
                .iter()
                .map(|(name, _)| *name)
                .filter(|n| !FACTORY_DIRS.contains(n) && *n != "etc"),
        )
        .collect();
    let reset = RESET_SCRIPT
        .replace("@MARKER@", STARTED_MARKER)
        .replace("@KEEP@", &keep.join(" | "))
        .replace("@EMPTY@", &FACTORY_DIRS.join(" | "))
        .replace(
            "@DPKG_DIR@",
            Path::new(dpkg_link)
                .parent()
                .and_then(Path::to_str)
                .unwrap_or("var/lib"),
        )
        .replace("@DPKG_TARGET@", dpkg_target)
        .replace("@DPKG_LINK@", dpkg_link);
    let finish = FINISH_SCRIPT
        .replace("@MARKER@", STARTED_MARKER)
        .replace("@ESP@", ESP_PARTLABEL)
        .replace("@GRUBENV_SET@", GRUBENV_SET_PATH)
        .replace("@GRUBENV@", GRUBENV_PATH)
        .replace("@FIRST_BOOT@", FIRST_BOOT);
    let oem = OEM_SCRIPT
        .replace("@OEM_CONFIG@", OEM_CONFIG)
        .replace("@SYSTEM_DIR@", SYSTEM_CONFIG_DIR)
        .replace("@SYSTEM_USER@", SYSTEM_USER_CONFIG);
    let mut out: Vec<(String, String, u32)> = vec![
        (SHADOW_PATH.into(), SHADOW.into(), 0o755),
        ("/usr/sbin/setfiles".into(), SETFILES.into(), 0o755),
        (OEM_PATH.into(), oem, 0o755),
        (
            RESOLV_PATH.into(),
            RESOLV_SCRIPT.replace("@GCE_METADATA@", GCE_METADATA),
            0o755,
        ),
        (RESET_PATH.into(), reset, 0o755),
        (FINISH_PATH.into(), finish, 0o755),
        (
            FAILED_PATH.into(),
            FAILED_SCRIPT
                .replace("@FAILED_LINE@", FAILED_LINE)
                .replace("@STOPPED_LINE@", STOPPED_LINE),
            0o755,
        ),
        (
            // DHCP on every Ethernet link, for the fetch stage only.
            "/usr/lib/systemd/network/80-craton-ignition.network".into(),
            "[Match]\nType=ether\n\n[Network]\nDHCP=yes\n".into(),
            0o644,
        ),
    ];
    out.extend(
        units()
            .into_iter()
            .map(|(name, text)| (format!("{UNIT_DIR}/{name}"), text, 0o644)),
    );
    out
}

/// The shadow tools' links to [`SHADOW`], made by [`install`] after
/// [`files`].
fn shadow_links(root: &Path) -> Result<()> {
    for name in SHADOW_TOOLS {
        tree::symlink(root, &format!("/usr/sbin/{name}"), SHADOW_PATH)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::process::Cmd;

    #[test]
    fn scripts_parse_and_have_no_placeholder_left() {
        for (path, text, mode) in files() {
            let placeholder =
                text.split('@').skip(1).step_by(2).any(|w| {
                    !w.is_empty() && w.chars().all(|c| c.is_ascii_uppercase() || c == '_')
                });
            assert!(!placeholder, "{path} has a placeholder left:\n{text}");
            if mode == 0o755 {
                Cmd::new("/bin/sh").args(["-n", "-c", &text]).run().unwrap();
            }
        }
    }

    #[test]
    fn the_reset_keeps_the_skeleton_and_empties_the_state() {
        let files = files();
        let reset = &files.iter().find(|f| f.0 == RESET_PATH).unwrap().1;
        assert!(
            reset.contains("usr | lost+found | bin | lib | lib64 | sbin | boot | dev | proc | run | sys | tmp) ;;"),
            "{reset}"
        );
        assert!(
            reset.contains("var | root | home | srv | opt | mnt | media | etc) rm -rf"),
            "{reset}"
        );
        assert!(reset.contains("ln -sfn ../../usr/lib/sysimage/dpkg \"$r/var/lib/dpkg\""));
    }

    #[test]
    fn units_are_ordered_against_cratons_own() {
        let files = files();
        let get = |name: &str| {
            &files
                .iter()
                .find(|f| f.0 == format!("{UNIT_DIR}/{name}"))
                .unwrap_or_else(|| panic!("no {name}"))
                .1
        };
        assert!(get("ignition-files.service.d/craton.conf").contains("After=sysroot-etc.mount"));
        assert!(
            get("ignition-fetch-offline.service.d/craton.conf")
                .contains("After=craton-disk-identity.service")
        );
        assert!(
            get("craton-provision-finish.service").contains("RequiredBy=ignition-complete.target")
        );
        assert!(
            get("craton-ignition-failed.service")
                .contains("ConditionKernelCommandLine=ignition.firstboot\n")
        );
        // Ignition reads its system config folder from this variable
        // (its distro.fromEnv prefixes the names with IGNITION_).
        assert!(
            get("ignition-fetch-offline.service.d/craton.conf")
                .contains("Environment=IGNITION_SYSTEM_CONFIG_DIR=/run/craton-ignition\n")
        );
    }
}
