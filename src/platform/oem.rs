//! The OEM partition's files for one platform (Container Linux's /usr/share/oem
//! and Flatcar's /oem): what makes a shared disk a qemu, gce or metal disk.
//!
//! - `oem-release`: the platform in os-release(5) syntax.
//! - `grub.cfg`: a GRUB snippet that grub.cfg on the ESP sources from the
//!   booted disk's OEM partition (`crate::boot::grubcfg`). It sets only
//!   variables (and the serial port's speed): `craton_platform` and
//!   `craton_platform_args`, the platform's console, `craton.platform=` and
//!   its `[platform.NAME] kernel-args`, which the menu entries put last on
//!   the kernel command line (the kernel gives the last of a repeated
//!   argument precedence).
//! - the profile's `[[platform.NAME.oem-file]]`s, at their paths under
//!   /oem (where the booted system mounts the partition read-only).
//!
//! The OEM partition has the trust of the ESP: both are read by GRUB
//! unverified, both are written only by the build (docs/security.md).

use std::fmt::Write as _;

// GRUB's lexer quotes words as sh does (GRUB manual, "Shell-like
// scripting"), so the process wrapper's quoting serves.
use crate::process::shell_quote;
use crate::profile::{OEM_MOUNT, Platform, PlatformSettings};

/// The files craton writes itself, relative to the OEM partition's root;
/// a profile's oem-file may not take their place.
pub const GENERATED: [&str; 2] = [RELEASE_FILE, GRUB_SNIPPET];
pub const RELEASE_FILE: &str = "oem-release";
/// Read by the ESP's grub.cfg as `($craton_disk,gpt5)/grub.cfg`.
pub const GRUB_SNIPPET: &str = "grub.cfg";
/// The GRUB variable with the platform's kernel arguments.
pub const ARGS_VAR: &str = "craton_platform_args";
/// Ignition's platform argument: which source its fetch stages read.
pub const IGNITION_PLATFORM_ARG: &str = "ignition.platform.id";
/// The GRUB variable with the platform's name.
pub const NAME_VAR: &str = "craton_platform";

/// One file of the OEM partition: its path relative to the partition's
/// root, its bytes and its mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OemFile {
    pub path: String,
    pub data: Vec<u8>,
    pub mode: u32,
}

/// The OEM partition's files of `platform`, generated ones first;
/// `ignition` is the profile's `[provision] ignition` config, which the
/// metal platform's partition carries (docs/provisioning.md).
pub fn files(
    platform: Platform,
    settings: &PlatformSettings,
    ignition: Option<&str>,
) -> Vec<OemFile> {
    let name = platform.name();
    let mut out = vec![
        OemFile {
            path: RELEASE_FILE.into(),
            data: format!("ID={name}\nNAME=\"craton {name}\"\n").into_bytes(),
            mode: 0o644,
        },
        OemFile {
            path: GRUB_SNIPPET.into(),
            data: grub_snippet(platform, settings).into_bytes(),
            mode: 0o644,
        },
    ];
    if let (Platform::Metal, Some(config)) = (platform, ignition) {
        out.push(OemFile {
            path: crate::initrd::ignition::OEM_CONFIG.into(),
            data: config.as_bytes().to_vec(),
            // It may hold password hashes: root's alone.
            mode: 0o600,
        });
    }
    let prefix = format!("{OEM_MOUNT}/");
    for f in &settings.oem_files {
        out.push(OemFile {
            // Validated to start with /oem/ (profile::names::oem_path).
            path: f.path.strip_prefix(&prefix).unwrap_or(&f.path).to_owned(),
            data: f.content.clone().into_bytes(),
            mode: f.mode,
        });
    }
    out
}

/// The kernel arguments of `platform`: its console, its name, then its
/// `kernel-args`.
pub fn kernel_args(platform: Platform, settings: &PlatformSettings) -> Vec<String> {
    let mut args = Vec::new();
    if let Some(c) = &settings.console {
        args.push(format!("console={c}"));
    }
    args.push(format!("{}={}", super::PLATFORM_ARG, platform.name()));
    args.push(format!(
        "{IGNITION_PLATFORM_ARG}={}",
        platform.ignition_id()
    ));
    args.extend(settings.kernel_args.iter().cloned());
    args
}

/// The GRUB snippet. Kernel arguments hold no whitespace
/// (`profile::names::kernel_arg`), so they are joined by spaces into one
/// single-quoted word (nothing in it expands); GRUB splits the menu
/// entry's unquoted `$craton_platform_args` back into arguments.
pub fn grub_snippet(platform: Platform, settings: &PlatformSettings) -> String {
    let mut s = format!(
        "# craton: the {name} platform's boot settings, sourced by the ESP's grub.cfg.\n\
         set {NAME_VAR}={name}\n",
        name = platform.name()
    );
    let _ = writeln!(
        s,
        "set {ARGS_VAR}={}",
        shell_quote(&kernel_args(platform, settings).join(" "))
    );
    // GRUB's own terminal at the kernel console's speed, so that both
    // read the same on a serial console fixed at that speed (GCE).
    if let Some(speed) = settings.console.as_deref().and_then(serial_speed) {
        let _ = writeln!(
            s,
            "serial --unit=0 --speed={speed}\nterminal_input serial console\nterminal_output serial console"
        );
    }
    s
}

/// The speed of a `ttyS0,SPEED...` console (kernel-parameters.txt:
/// `ttyS<n>[,options]`, options `bbbbpnf`), for GRUB's `serial`.
fn serial_speed(console: &str) -> Option<u32> {
    let opts = console.strip_prefix("ttyS0,")?;
    let digits: String = opts.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gce() -> PlatformSettings {
        PlatformSettings {
            console: Some("ttyS0,38400n8".into()),
            kernel_args: vec!["a=1".into()],
            ..PlatformSettings::default()
        }
    }

    #[test]
    fn the_snippet_sets_the_platform_its_arguments_and_the_serial_speed() {
        let s = grub_snippet(Platform::Gce, &gce());
        assert!(s.contains("set craton_platform=gce\n"), "{s}");
        assert!(
            s.contains(
                "set craton_platform_args='console=ttyS0,38400n8 craton.platform=gce ignition.platform.id=gcp a=1'\n"
            ),
            "{s}"
        );
        assert!(s.contains("serial --unit=0 --speed=38400\n"), "{s}");
        // metal: no console, no serial line; the name still goes.
        let m = grub_snippet(Platform::Metal, &PlatformSettings::default());
        assert!(
            m.contains(
                "set craton_platform_args='craton.platform=metal ignition.platform.id=metal'\n"
            ),
            "{m}"
        );
        assert!(!m.contains("serial"), "{m}");
    }

    #[test]
    fn serial_speeds() {
        assert_eq!(serial_speed("ttyS0,115200n8"), Some(115_200));
        assert_eq!(serial_speed("ttyS0,38400"), Some(38_400));
        assert_eq!(serial_speed("ttyS1,9600"), None);
        assert_eq!(serial_speed("tty0"), None);
    }

    #[test]
    fn profile_files_follow_the_generated_ones_relative_to_the_partition() {
        let mut s = gce();
        s.oem_files.push(crate::profile::InlineFile {
            path: "/oem/run/x.conf".into(),
            mode: 0o600,
            content: "x".into(),
        });
        let f = files(Platform::Gce, &s, None);
        let paths: Vec<&str> = f.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(paths, ["oem-release", "grub.cfg", "run/x.conf"]);
        assert_eq!(f[2].mode, 0o600);
        assert_eq!(f[0].data, b"ID=gce\nNAME=\"craton gce\"\n");
    }

    /// `[provision] ignition` is the metal platform's default config, and
    /// only metal's: the others' platforms give theirs.
    #[test]
    fn the_profiles_ignition_config_goes_to_metal_alone() {
        let config = r#"{"ignition":{"version":"3.3.0"}}"#;
        let metal = files(Platform::Metal, &PlatformSettings::default(), Some(config));
        let baked = metal
            .iter()
            .find(|f| f.path == "ignition/config.ign")
            .expect("metal's OEM partition has the config");
        assert_eq!(
            (baked.data.as_slice(), baked.mode),
            (config.as_bytes(), 0o600)
        );
        for p in [Platform::Qemu, Platform::Gce] {
            let f = files(p, &PlatformSettings::default(), Some(config));
            assert!(f.iter().all(|f| !f.path.starts_with("ignition/")), "{p:?}");
        }
    }
}
