//! What the shared tree carries for the platforms (the rootfs stage
//! writes it; the tree is the same for every platform of a build):
//!
//! - Units of a package that only some platforms list (`[platform.NAME]
//!   packages`, e.g. gce's google-guest-agent) get a drop-in
//!   `ConditionKernelCommandLine=|craton.platform=NAME` per such platform:
//!   the package is in every image of the profile, its units start only
//!   where the OEM partition's GRUB snippet names that platform. The units
//!   are the package's unit files as dpkg lists them (services, sockets,
//!   timers, paths); its maintainer scripts may have enabled them.
//! - `craton-oem.service`, wanted by sysinit.target: copies the OEM
//!   partition's `run/` folder (mounted at /oem) into /run before sysinit,
//!   so a platform's configuration drop-ins (timesyncd's NTP server on
//!   gce) are in place before the daemons read them. /oem itself is mounted
//!   by `systemd.mount-extra=` from grub.cfg, with the booted disk's OEM
//!   PARTUUID.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context as _, Result};

use super::PLATFORM_ARG;
use crate::deb::dpkgdb::ADMIN_DIR;
use crate::files::tree;
use crate::profile::{OEM_MOUNT, Platform};
use crate::rootfs::customize::UNIT_VENDOR_DIR;

/// The drop-in's file name in each conditioned unit's `.d` folder.
pub const CONDITION_DROPIN: &str = "50-craton-platform.conf";
/// The unit that copies the OEM partition's run/ into /run.
pub const OEM_UNIT: &str = "craton-oem.service";
/// The OEM partition's folder that is copied into /run.
pub const OEM_RUN_DIR: &str = "run";

/// Unit file suffixes that start something (systemd.unit(5)).
const UNIT_SUFFIXES: [&str; 4] = [".service", ".socket", ".timer", ".path"];
/// Where packages put unit files (merged /usr: both name one folder).
const PACKAGE_UNIT_DIRS: [&str; 2] = ["/usr/lib/systemd/system/", "/lib/systemd/system/"];

const OEM_SERVICE: &str = "[Unit]
Description=craton: the platform's files from the OEM partition into /run
# Early: before sysinit.target and the daemons that read /run/systemd/*.d
# (timesyncd has no default dependencies). /oem is a mount from the kernel
# command line (systemd.mount-extra=, nofail): ordered after it, and
# skipped when it did not mount or holds no run/.
DefaultDependencies=no
After=@OEM_MOUNT_UNIT@
Before=sysinit.target systemd-timesyncd.service shutdown.target
Conflicts=shutdown.target
ConditionPathIsDirectory=@OEM@/@RUN@

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/usr/bin/cp -R --preserve=mode,timestamps -T @OEM@/@RUN@ /run
";

/// Files for the image: (absolute path, content, mode), as
/// `crate::boot::units::image_files`.
pub fn image_files() -> Vec<(String, String, u32)> {
    let mount_unit = format!("{}.mount", OEM_MOUNT.trim_start_matches('/'));
    vec![
        (
            format!("{UNIT_VENDOR_DIR}/{OEM_UNIT}"),
            OEM_SERVICE
                .replace("@OEM_MOUNT_UNIT@", &mount_unit)
                .replace("@OEM@", OEM_MOUNT)
                .replace("@RUN@", OEM_RUN_DIR),
            0o644,
        ),
        (
            format!("{UNIT_VENDOR_DIR}/sysinit.target.d/craton-oem.conf"),
            format!(
                "# craton: the platform's /run files (crate::platform::units).\n[Unit]\nWants={OEM_UNIT}\n"
            ),
            0o644,
        ),
    ]
}

/// Writes the condition drop-ins for `platform_only` (package -> the
/// platforms that list it) into `tree`, whose dpkg database lists each
/// package's files. Returns the units conditioned, by package.
pub fn condition(
    tree: &Path,
    platform_only: &BTreeMap<String, Vec<Platform>>,
) -> Result<BTreeMap<String, Vec<String>>> {
    let mut done = BTreeMap::new();
    for (package, platforms) in platform_only {
        let units = package_units(tree, package)?;
        let text = dropin(package, platforms);
        for unit in &units {
            tree::write_file(
                tree,
                &format!("{UNIT_VENDOR_DIR}/{unit}.d/{CONDITION_DROPIN}"),
                text.as_bytes(),
                0o644,
            )
            .with_context(|| format!("writing the platform condition of {unit}"))?;
        }
        tracing::debug!("{package}: units only on {platforms:?}: {units:?}");
        done.insert(package.clone(), units);
    }
    Ok(done)
}

/// The drop-in: one triggering condition per platform (any of them holds).
pub fn dropin(package: &str, platforms: &[Platform]) -> String {
    let names: Vec<&str> = platforms.iter().map(|p| p.name()).collect();
    let mut s = format!(
        "# craton: {package} is in the image for the {} platform only\n\
         # ([platform.NAME] packages); its units start there alone.\n[Unit]\n",
        names.join(" and ")
    );
    for n in names {
        s.push_str(&format!("ConditionKernelCommandLine=|{PLATFORM_ARG}={n}\n"));
    }
    s
}

/// The unit files `package` installed, from dpkg's file list
/// (`info/NAME.list`, or `NAME:ARCH.list` for Multi-Arch: same).
fn package_units(tree: &Path, package: &str) -> Result<Vec<String>> {
    let info = format!("/{ADMIN_DIR}/info");
    let dir = tree::resolve(tree, &info)?;
    let mut list = None;
    for e in std::fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))? {
        let e = e.with_context(|| format!("reading {}", dir.display()))?;
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(stem) = name.strip_suffix(".list") else {
            continue;
        };
        if stem == package || stem.split_once(':').is_some_and(|(p, _)| p == package) {
            list = Some(name);
            break;
        }
    }
    let Some(list) = list else {
        anyhow::bail!("{package}: dpkg has no file list for it in {info} (is it installed?)");
    };
    let text = tree::read_or_empty(tree, &format!("{info}/{list}"))?;
    let mut units: Vec<String> = text
        .lines()
        .filter_map(|l| PACKAGE_UNIT_DIRS.iter().find_map(|d| l.strip_prefix(d)))
        .filter(|u| !u.contains('/') && UNIT_SUFFIXES.iter().any(|s| u.ends_with(s)))
        .map(str::to_owned)
        .collect();
    units.sort();
    units.dedup();
    Ok(units)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_of_a_listed_package_get_one_condition_per_platform() {
        let t = tempfile::tempdir().unwrap();
        let list = "/.\n/usr\n/usr/lib/systemd/system\n\
                    /usr/lib/systemd/system/agent.service\n\
                    /lib/systemd/system/agent-scripts.service\n\
                    /usr/lib/systemd/system/agent.timer\n\
                    /usr/lib/systemd/system/agent.service.d/x.conf\n\
                    /usr/lib/systemd/system-preset/90-agent.preset\n\
                    /usr/bin/agent\n";
        tree::write_file(
            t.path(),
            "/var/lib/dpkg/info/agent:amd64.list",
            list.as_bytes(),
            0o644,
        )
        .unwrap();
        tree::write_file(
            t.path(),
            "/var/lib/dpkg/info/agentx.list",
            b"/usr/lib/systemd/system/no.service\n",
            0o644,
        )
        .unwrap();
        let only = BTreeMap::from([("agent".to_string(), vec![Platform::Gce, Platform::Metal])]);
        let done = condition(t.path(), &only).unwrap();
        assert_eq!(
            done["agent"],
            ["agent-scripts.service", "agent.service", "agent.timer"]
        );
        let d = std::fs::read_to_string(
            t.path()
                .join("usr/lib/systemd/system/agent.service.d/50-craton-platform.conf"),
        )
        .unwrap();
        assert!(
            d.contains("ConditionKernelCommandLine=|craton.platform=gce\n"),
            "{d}"
        );
        assert!(
            d.contains("ConditionKernelCommandLine=|craton.platform=metal\n"),
            "{d}"
        );
        assert!(
            !t.path()
                .join("usr/lib/systemd/system/no.service.d")
                .exists()
        );
        // Not installed: a clear error.
        let missing = BTreeMap::from([("ghost".to_string(), vec![Platform::Gce])]);
        let err = format!("{:#}", condition(t.path(), &missing).unwrap_err());
        assert!(err.contains("ghost: dpkg has no file list"), "{err}");
    }

    #[test]
    fn the_oem_unit_copies_run_from_the_oem_mount() {
        let files = image_files();
        let unit = &files[0].1;
        assert!(unit.contains("After=oem.mount\n"), "{unit}");
        assert!(
            unit.contains("ConditionPathIsDirectory=/oem/run\n"),
            "{unit}"
        );
        assert!(unit.contains("-T /oem/run /run\n"), "{unit}");
        assert!(files[1].1.contains("Wants=craton-oem.service"));
    }
}
