//! The syntax of the names and words a profile contains. Each rule returns
//! the reason a value is wrong, written to follow "`value` " in a message.
//!
//! These are syntax checks only: whether a package exists is the resolver's
//! question, whether a URL answers is the fetcher's.

pub(crate) type Rule = Result<(), String>;

fn is_lower_alnum(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit()
}

/// Image names go into file names and os-release's IMAGE_ID, whose syntax
/// (os-release(5)) this narrows: a-z, 0-9 and `-`.
pub(super) fn image_name(s: &str) -> Rule {
    let ok = s.starts_with(is_lower_alnum) && s.chars().all(|c| is_lower_alnum(c) || c == '-');
    ok.then_some(()).ok_or_else(|| {
        "is not a valid name: use a-z, 0-9 and -, starting with a letter or digit".to_string()
    })
}

/// Repository and artifact names: the same syntax as image names, as they
/// appear in the lock and in cache paths.
pub(crate) fn entry_name(s: &str) -> Rule {
    image_name(s)
}

/// A `[[platform.NAME.oem-file]]` path: absolute under the OEM mount,
/// plain components, and not one of the files craton writes there itself.
pub(super) fn oem_path(s: &str) -> Rule {
    let mount = super::OEM_MOUNT;
    let Some(rel) = s.strip_prefix(mount).and_then(|r| r.strip_prefix('/')) else {
        return Err(format!("is not a path under {mount}/"));
    };
    if rel
        .split('/')
        .any(|c| c.is_empty() || c == "." || c == "..")
    {
        return Err("must not contain empty, `.` or `..` components".to_string());
    }
    if crate::platform::oem::GENERATED.contains(&rel) {
        return Err(format!(
            "is written by craton itself (the OEM partition's {})",
            crate::platform::oem::GENERATED.join(" and ")
        ));
    }
    Ok(())
}

/// IMAGE_VERSION in os-release(5): "0-9, a-z, `.`, `_` and `-`".
pub(super) fn image_version(s: &str) -> Rule {
    let ok = s.starts_with(is_lower_alnum)
        && s.chars()
            .all(|c| is_lower_alnum(c) || matches!(c, '.' | '_' | '-'));
    ok.then_some(()).ok_or_else(|| {
        "is not a valid version: use a-z, 0-9, `.`, `_` and `-`, starting with a letter or digit \
         (os-release IMAGE_VERSION)"
            .to_string()
    })
}

/// os-release(5): "variable names must be in upper-case and will only use
/// A-Z, 0-9 and _"; a name cannot start with a digit, as in shell.
pub(super) fn os_release_key(s: &str) -> Rule {
    let ok = s.starts_with(|c: char| c.is_ascii_uppercase())
        && s.chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
    ok.then_some(()).ok_or_else(|| {
        "is not an os-release key: use A-Z, 0-9 and _, starting with A-Z".to_string()
    })
}

/// os-release is a file of one assignment per line: no line breaks or other
/// control characters in a value.
pub(super) fn os_release_value(s: &str) -> Rule {
    if s.chars().any(char::is_control) {
        return Err("contains a control character (such as a line break)".to_string());
    }
    Ok(())
}

/// Debian Policy 5.6.1 (Source, which 5.6.7 Package refers to): lower case
/// letters, digits, `+`, `-` and `.`, at least two characters, starting
/// with an alphanumeric character.
pub(crate) fn package(s: &str) -> Rule {
    let ok = s.len() >= 2
        && s.starts_with(is_lower_alnum)
        && s.chars()
            .all(|c| is_lower_alnum(c) || matches!(c, '+' | '-' | '.'));
    ok.then_some(()).ok_or_else(|| {
        "is not a Debian package name (Debian Policy 5.6.1: a-z, 0-9, +, - and ., \
         at least two characters, starting with a letter or digit)"
            .to_string()
    })
}

/// A package name as an index or a lock has it: the characters of Debian
/// Policy 5.6.1 ([`package`]) without its two-character minimum, which is
/// the profile's business; what matters here is that the name stays one
/// file-name component (`NAME_VERSION_ARCH.deb` in the tree).
pub(crate) fn archive_package(s: &str) -> Rule {
    let ok = s.starts_with(is_lower_alnum)
        && s.chars()
            .all(|c| is_lower_alnum(c) || matches!(c, '+' | '-' | '.'));
    ok.then_some(()).ok_or_else(|| {
        "is not a Debian package name (a-z, 0-9, +, - and ., starting with a letter or digit)"
            .to_string()
    })
}

/// Suites and components become path segments of archive URLs
/// (dists/SUITE/COMPONENT/), so no `/`, spaces or dots-only names.
pub(crate) fn archive_word(s: &str) -> Rule {
    let ok = s.starts_with(|c: char| c.is_ascii_alphanumeric())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    ok.then_some(()).ok_or_else(|| {
        "is not a suite or component name: use letters, digits, `.`, `_` and `-`".to_string()
    })
}

/// Debian architecture names (dpkg-architecture(1)): `amd64`, `all`,
/// `arm64`; they go into file names.
pub(crate) fn debian_arch(s: &str) -> Rule {
    let ok = s.starts_with(is_lower_alnum) && s.chars().all(|c| is_lower_alnum(c) || c == '-');
    ok.then_some(())
        .ok_or_else(|| "is not a Debian architecture: use a-z, 0-9 and -".to_string())
}

/// A pool path (Packages' `Filename:`), relative to the archive root: it is
/// joined to the mirror's URL, so no absolute path, no `.` or `..`
/// component, no empty component, nothing but the characters of package
/// names, versions and folders.
pub(crate) fn pool_path(s: &str) -> Rule {
    if s.starts_with('/') || s.split('/').any(|c| c.is_empty() || c == "." || c == "..") {
        return Err("is not a relative path of folders and a file name".to_string());
    }
    if let Some(c) = s.chars().find(|c| {
        !(c.is_ascii_alphanumeric() || matches!(c, '/' | '.' | '_' | '+' | '-' | '~' | '%'))
    }) {
        return Err(format!("contains {c:?}, which no pool path has"));
    }
    Ok(())
}

/// Kernel module names as modprobe takes them (it treats `-` and `_` alike).
pub(super) fn module(s: &str) -> Rule {
    let ok = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-'));
    ok.then_some(())
        .ok_or_else(|| "is not a kernel module name: use letters, digits, _ and -".to_string())
}

/// One kernel command-line argument (or a console setting): the stages join
/// them with spaces, so one containing a space would become two.
pub(super) fn kernel_arg(s: &str) -> Rule {
    if s.is_empty() {
        return Err("is empty".to_string());
    }
    if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("contains whitespace: list each argument separately".to_string());
    }
    Ok(())
}

/// Kernel parameters that the image's integrity, its root, its init and
/// its A/B slot rest on: craton's boot entries set them
/// (`crate::boot::grubcfg`), and the kernel and systemd take the last of a
/// repeated parameter, so a profile's argument after craton's would
/// replace them (`usrhash=`, `systemd.verity=0`, `init=/bin/sh`).
const RESERVED_PARAMS: &[&str] = &[
    "usrhash",
    "roothash",
    "systemd.verity",
    "veritytab",
    "root",
    "rootfstype",
    "rootflags",
    "ro",
    "rw",
    "init",
    "rdinit",
    // First-boot provisioning: GRUB passes the first boot from the ESP's
    // flag, the OEM partition the platform (docs/provisioning.md); a
    // profile's would run Ignition at every boot or read another source.
    "ignition.firstboot",
    "ignition.platform.id",
];
/// Families of them: /usr's mount (`mount.usr=`, `mount.usrfstype=`, ...),
/// the verity devices' data, hash and options, and craton's own (the slot).
const RESERVED_PREFIXES: &[&str] = &["mount.usr", "systemd.verity_", "craton."];

/// A profile's kernel argument: one argument ([`kernel_arg`]) that does
/// not override a reserved parameter. The name is compared as systemd
/// reads it (kernel-command-line(7)): `-` and `_` alike, and with an
/// `rd.` prefix for the initrd too.
pub(super) fn profile_kernel_arg(s: &str) -> Rule {
    kernel_arg(s)?;
    let name = s.split_once('=').map_or(s, |(n, _)| n).replace('-', "_");
    let bare = name.strip_prefix("rd.").unwrap_or(&name);
    let norm = |r: &str| r.replace('-', "_");
    let reserved = RESERVED_PARAMS.iter().any(|r| norm(r) == bare)
        || RESERVED_PREFIXES.iter().any(|p| bare.starts_with(&norm(p)));
    if reserved {
        return Err(format!(
            "would override `{bare}`: /usr's integrity, the root file system, init and \
             the A/B slot are set by craton's boot entries alone (docs/security.md)"
        ));
    }
    Ok(())
}

/// A mirror: http(s) with a host, or file:// with an absolute path.
pub(super) fn mirror_url(s: &str) -> Rule {
    if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("contains whitespace".to_string());
    }
    let host_ok = |rest: &str| !rest.is_empty() && !rest.starts_with('/');
    let ok = if let Some(rest) = s.strip_prefix("http://") {
        host_ok(rest)
    } else if let Some(rest) = s.strip_prefix("https://") {
        host_ok(rest)
    } else if let Some(rest) = s.strip_prefix("file://") {
        rest.starts_with('/')
    } else {
        false
    };
    ok.then_some(()).ok_or_else(|| {
        "is not a mirror URL: expected http://HOST/..., https://HOST/... or file:///PATH"
            .to_string()
    })
}

/// A host name (hostname(5)): at most 64 characters of dot-separated RFC
/// 1123 labels, each 1 to 63 letters, digits and `-`, not starting or ending
/// with `-`.
pub(super) fn hostname(s: &str) -> Rule {
    use super::{HOSTNAME_LABEL_MAX, HOSTNAME_MAX};
    let label_ok = |l: &str| {
        (1..=HOSTNAME_LABEL_MAX).contains(&l.len())
            && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    let ok = s.len() <= HOSTNAME_MAX && s.split('.').all(label_ok);
    ok.then_some(()).ok_or_else(|| {
        format!(
            "is not a host name: dot-separated labels of letters, digits and `-` (not first or \
             last), at most {HOSTNAME_LABEL_MAX} characters each and {HOSTNAME_MAX} in all"
        )
    })
}

/// A unit name (systemd.unit(5)): a prefix of letters, digits and `:-_.\`,
/// optionally `@` and an instance (empty for a template), then a known
/// type suffix.
/// `[update] channel`: an http or https URL (a served output folder).
pub(super) fn channel_url(s: &str) -> Rule {
    let rest = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"));
    match rest {
        Some(r) if !r.is_empty() && !r.contains(char::is_whitespace) => Ok(()),
        _ => Err("is not an http:// or https:// URL".to_string()),
    }
}

pub(super) fn unit(s: &str) -> Rule {
    use super::{UNIT_NAME_MAX, UNIT_SUFFIXES};
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, ':' | '-' | '_' | '.' | '\\');
    let Some((stem, suffix)) = s.rsplit_once('.') else {
        return Err(format!(
            "is not a unit name: no type suffix (.{})",
            UNIT_SUFFIXES.join(", .")
        ));
    };
    if !UNIT_SUFFIXES.contains(&suffix) {
        return Err(format!(
            "is not a unit name: unknown type `.{suffix}`, expected one of .{}",
            UNIT_SUFFIXES.join(", .")
        ));
    }
    let (prefix, instance) = match stem.split_once('@') {
        Some((p, i)) => (p, i),
        None => (stem, ""),
    };
    let ok = s.len() <= UNIT_NAME_MAX
        && !prefix.is_empty()
        && prefix.chars().all(allowed)
        && instance.chars().all(allowed);
    ok.then_some(()).ok_or_else(|| {
        "is not a unit name: use letters, digits and `:-_.\\`, with one `@` before an \
         instance"
            .to_string()
    })
}

/// A unit that can be a default.target: a unit name ending in `.target`.
pub(super) fn target(s: &str) -> Rule {
    unit(s)?;
    if !s.ends_with(".target") || s.contains('@') {
        return Err("is not a target unit (NAME.target)".to_string());
    }
    Ok(())
}

/// User and group names: sysusers.d(5) and useradd's default rule,
/// `[a-z_][a-z0-9_-]*`, at most 31 characters.
pub(super) fn user(s: &str) -> Rule {
    use super::USER_NAME_MAX;
    let ok = s.len() <= USER_NAME_MAX
        && s.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '-'));
    ok.then_some(()).ok_or_else(|| {
        format!(
            "is not a user or group name: [a-z_][a-z0-9_-]*, at most {USER_NAME_MAX} characters"
        )
    })
}

/// A field of /etc/passwd (gecos): no `:` (the separator) and no line break.
pub(super) fn passwd_field(s: &str) -> Rule {
    if s.contains(':') || s.chars().any(char::is_control) {
        return Err("contains `:` or a control character".to_string());
    }
    Ok(())
}

/// A home directory or shell: an absolute path usable in /etc/passwd and
/// in a sysusers.d line (no whitespace, which would split the line).
pub(super) fn passwd_path(s: &str) -> Rule {
    passwd_field(s)?;
    if !s.starts_with('/') || s.chars().any(char::is_whitespace) {
        return Err("is not an absolute path without whitespace".to_string());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue #11: only whitespace was refused, so `usrhash=`,
    /// `systemd.verity=0` or `init=` after craton's own arguments replaced
    /// them.
    #[test]
    fn kernel_args_may_not_override_the_images_integrity() {
        for bad in [
            "usrhash=00",
            "rd.usrhash=00",
            "mount.usr=/dev/sda3",
            "mount.usrflags=rw",
            "systemd.verity=0",
            "rd.systemd.verity=no",
            "systemd.verity-usr-data=PARTUUID=x",
            "systemd.verity_usr_options=panic-on-corruption",
            "roothash=00",
            "root=/dev/sda6",
            "rootflags=ro",
            "ro",
            "init=/bin/sh",
            "rdinit=/bin/sh",
            "craton.slot=b",
            "ignition.firstboot",
            "ignition.platform.id=gcp",
        ] {
            let err = profile_kernel_arg(bad).unwrap_err();
            assert!(err.starts_with("would override `"), "{bad}: {err}");
        }
        for good in [
            "quiet",
            "console=ttyS0,115200n8",
            "net.ifnames=0",
            "systemd.show_status=auto",
            "rootwait",
            "usrquota",
            "initcall_debug",
            "ignition.config.url=https://example.invalid/config.ign",
        ] {
            assert_eq!(profile_kernel_arg(good), Ok(()), "{good}");
        }
        assert!(profile_kernel_arg("a b").is_err());
    }

    #[test]
    fn package_names_follow_policy() {
        for good in [
            "systemd",
            "docker.io",
            "libstdc++6",
            "g++",
            "xz-utils",
            "0ad",
        ] {
            assert_eq!(package(good), Ok(()), "{good}");
        }
        for bad in [
            "a",
            "Systemd",
            "-foo",
            "foo_bar",
            "foo:amd64",
            "foo bar",
            "",
        ] {
            assert!(package(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn mirrors_need_a_host_or_an_absolute_path() {
        assert!(mirror_url("http://mirror.example/debian").is_ok());
        assert!(mirror_url("https://mirror.example").is_ok());
        assert!(mirror_url("file:///srv/mirror").is_ok());
        for bad in [
            "ftp://mirror.example",
            "http://",
            "http:///x",
            "file://srv",
            "mirror",
        ] {
            assert!(mirror_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn names_and_versions() {
        assert!(image_name("container-host").is_ok());
        assert!(image_name("-x").is_err());
        assert!(image_name("Host").is_err());
        assert!(image_version("0.1.0").is_ok());
        assert!(image_version("2026.11.27-rc_1").is_ok());
        assert!(image_version("1.0+git").is_err());
        assert!(os_release_key("PRETTY_NAME").is_ok());
        assert!(os_release_key("pretty_name").is_err());
        assert!(os_release_key("1X").is_err());
        assert!(kernel_arg("console=ttyS0,115200n8").is_ok());
        assert!(kernel_arg("a b").is_err());
    }

    #[test]
    fn hostnames_units_and_users() {
        assert!(hostname("node-1").is_ok());
        assert!(hostname("node-1.example.org").is_ok());
        for bad in ["", "-node", "node-", "a..b", "under_score", &"a".repeat(64)] {
            assert!(hostname(bad).is_err(), "{bad}");
        }
        for good in [
            "docker.service",
            "getty@ttyS0.service",
            "getty@.service",
            "rkt-gc.timer",
            "systemd-fsck@dev-disk-by\\x2dlabel-ROOT.service",
            "-.mount",
        ] {
            assert!(unit(good).is_ok(), "{good}");
        }
        for bad in [
            "docker",
            "docker.servic",
            "@x.service",
            "a b.service",
            "a@b@c.service",
        ] {
            assert!(unit(bad).is_err(), "{bad}");
        }
        assert!(target("multi-user.target").is_ok());
        assert!(target("docker.service").is_err());
        assert!(user("rkt-admin").is_ok());
        assert!(user("_apt").is_ok());
        for bad in ["Rkt", "1rkt", "rkt admin", "", &"a".repeat(32)] {
            assert!(user(bad).is_err(), "{bad}");
        }
        assert!(passwd_field("rkt: admin").is_err());
        assert!(passwd_path("/var/lib/rkt").is_ok());
        assert!(passwd_path("var/lib").is_err());
    }
}
