//! Step 0: nothing a machine must make for itself leaves the build.
//! Maintainer scripts run once, at build time, and some of them make what
//! has to be each machine's own: openssh-server's postinst generates the
//! SSH host keys, dbus writes a D-Bus machine id, ssl-cert a snakeoil key,
//! and any package may leave a random seed. Baked into /usr, every machine
//! made from the image (and every build from the same cached base tree)
//! would share them, and anyone holding the image would hold the keys.
//!
//! [`scrub`] runs on the configured tree before the profile's content is
//! added, and finds these by scanning the tree (a private key's PEM or
//! OpenSSH armour, a random seed's name), not by a fixed list alone: it
//! removes them, and makes /var/lib/dbus/machine-id a link to
//! /etc/machine-id, as Debian does on a new install. The machine makes its
//! own on first boot: systemd the machine id, and openssh's
//! sshd-keygen.service the host keys, before ssh.service, kept on ROOT
//! through the /etc overlay. [`refuse_private_keys`] is the last check, on
//! /usr after the layout: a private key there (from an overlay, a [[file]]
//! or an artifact) fails the build, naming the file.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::files::tree;

/// openssh-server's host keys and their public halves (sshd(8) FILES).
const SSH_HOST_KEY_PREFIX: &str = "ssh_host_";
/// Where they live.
const SSH_DIR: &str = "etc/ssh";
/// The name random seeds go by: systemd's /var/lib/systemd/random-seed,
/// initscripts' /var/lib/urandom/random-seed.
const RANDOM_SEED: &str = "random-seed";
/// D-Bus's own machine id (dbus-uuidgen(1)); Debian links it to
/// /etc/machine-id so that the two agree.
const DBUS_MACHINE_ID: &str = "/var/lib/dbus/machine-id";
const DBUS_MACHINE_ID_TARGET: &str = "/etc/machine-id";
/// The armour lines of a private key: PEM's "-----BEGIN ... PRIVATE
/// KEY-----" (RFC 7468: PKCS #8, and OpenSSL's RSA, EC and DSA forms) and
/// OpenSSH's "-----BEGIN OPENSSH PRIVATE KEY-----" both end this way.
const PRIVATE_KEY_ARMOUR: &[u8] = b"PRIVATE KEY-----";
const ARMOUR_BEGIN: &[u8] = b"-----BEGIN ";
const ARMOUR_END: &[u8] = b"-----END ";
/// Key files are small (an RSA-16384 PEM is about 12 KiB); larger files
/// are not read, which keeps the scan of /usr to the files that can be one.
const MAX_KEY_FILE: u64 = 1 << 20;
/// Folders of the tree that are API file systems or tmpfs at boot.
const SKIP: &[&str] = &["proc", "sys", "dev", "run", "tmp"];
/// openssh's unit that makes missing host keys (`ssh-keygen -A`); Debian
/// ships it enabled for ssh.service, ssh.socket and sshd@.service.
const SSHD_KEYGEN_UNIT: &str = "usr/lib/systemd/system/sshd-keygen.service";
/// Its drop-in: the unit runs on every boot, not only on systemd's first
/// boot. An image's /etc/machine-id is empty, not "uninitialized"
/// (`identity`), so ConditionFirstBoot= is false on a new machine; an empty
/// assignment resets the unit's conditions (systemd.unit(5)), and the two
/// others are set again. `ssh-keygen -A` makes only the keys that are
/// missing, so a later boot keeps the machine's keys.
const SSHD_KEYGEN_DROPIN: (&str, &str) = (
    "/usr/lib/systemd/system/sshd-keygen.service.d/craton.conf",
    "# craton: make missing host keys on every boot (docs/decisions.md, \"Machine identity\").\n\
     [Unit]\n\
     ConditionFirstBoot=\n\
     ConditionPathIsReadWrite=/etc/ssh\n\
     ConditionPathIsSymbolicLink=!/etc/ssh\n",
);

/// Removes what is a machine's own from the configured `tree`; returns the
/// removed paths (absolute in the tree), sorted.
pub fn scrub(tree: &Path) -> Result<Vec<String>> {
    let mut removed = Vec::new();
    let mut files = Vec::new();
    walk(tree, tree, &mut files)?;
    let ssh = tree.join(SSH_DIR);
    for f in files {
        let name = f.file_name().map(|n| n.to_string_lossy().into_owned());
        let name = name.unwrap_or_default();
        let host_key = f.parent() == Some(ssh.as_path()) && name.starts_with(SSH_HOST_KEY_PREFIX);
        let in_usr = f.starts_with(tree.join("usr"));
        if host_key || (!in_usr && (name == RANDOM_SEED || is_private_key(&f)?)) {
            fs::remove_file(&f).with_context(|| format!("removing {}", f.display()))?;
            removed.push(in_tree(tree, &f));
        }
    }
    let dbus = tree::place(tree, DBUS_MACHINE_ID)?;
    if dbus.symlink_metadata().is_ok() {
        fs::remove_file(&dbus).with_context(|| format!("removing {}", dbus.display()))?;
        tree::symlink(tree, DBUS_MACHINE_ID, DBUS_MACHINE_ID_TARGET)?;
        removed.push(DBUS_MACHINE_ID.to_owned());
    }
    if removed.iter().any(|p| p.contains(SSH_HOST_KEY_PREFIX)) {
        if !tree.join(SSHD_KEYGEN_UNIT).is_file() {
            bail!(
                "{}: the tree has SSH host keys from the build but no {} to make each \
                 machine's own",
                tree.display(),
                SSHD_KEYGEN_UNIT
            );
        }
        let (path, text) = SSHD_KEYGEN_DROPIN;
        tree::write_file(tree, path, text.as_bytes(), 0o644)?;
    }
    removed.sort();
    if !removed.is_empty() {
        tracing::info!(
            "removed what each machine makes itself: {}",
            removed.join(", ")
        );
    }
    Ok(removed)
}

/// Fails, naming the first file, when `dir` holds a private key.
pub fn refuse_private_keys(tree: &Path, dir: &str) -> Result<()> {
    let mut files = Vec::new();
    walk(tree, &tree.join(dir), &mut files)?;
    files.sort();
    for f in files {
        if is_private_key(&f)? {
            bail!(
                "{} is a private key: it would be in every machine's /usr (make it on \
                 first boot instead, or keep it out of the image)",
                in_tree(tree, &f)
            );
        }
    }
    Ok(())
}

/// Regular files below `dir`, without following links or entering the API
/// file systems' folders.
fn walk(tree: &Path, dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e).with_context(|| format!("reading {}", dir.display())),
    };
    for e in entries {
        let e = e.with_context(|| format!("reading {}", dir.display()))?;
        let path = e.path();
        let kind = e
            .file_type()
            .with_context(|| format!("reading {}", path.display()))?;
        if kind.is_dir() {
            let top = dir == tree && SKIP.iter().any(|s| e.file_name() == *s);
            if !top {
                walk(tree, &path, out)?;
            }
        } else if kind.is_file() {
            out.push(path);
        }
    }
    Ok(())
}

/// Whether a file holds a private key's armour (only small files are read).
fn is_private_key(path: &Path) -> Result<bool> {
    let len = fs::symlink_metadata(path)
        .with_context(|| format!("reading {}", path.display()))?
        .len();
    if len > MAX_KEY_FILE {
        return Ok(false);
    }
    let mut data = Vec::with_capacity(len as usize);
    fs::File::open(path)
        .and_then(|mut f| f.read_to_end(&mut data))
        .with_context(|| format!("reading {}", path.display()))?;
    Ok(has_private_key_armour(&data))
}

/// A text file (no NUL byte: programs and libraries that parse keys hold
/// the armour strings too, ssh and libcrypto among them) with a line that
/// starts "-----BEGIN " and ends "PRIVATE KEY-----", and an END line after
/// it (RFC 7468's textual encoding).
fn has_private_key_armour(data: &[u8]) -> bool {
    if data.contains(&0) {
        return false;
    }
    let mut lines = data.split(|&b| b == b'\n').map(|l| l.trim_ascii_end());
    while let Some(line) = lines.next() {
        if line.starts_with(ARMOUR_BEGIN) && line.ends_with(PRIVATE_KEY_ARMOUR) {
            return lines.any(|l| l.starts_with(ARMOUR_END) && l.ends_with(PRIVATE_KEY_ARMOUR));
        }
    }
    false
}

fn in_tree(tree: &Path, p: &Path) -> String {
    format!("/{}", p.strip_prefix(tree).unwrap_or(p).display())
}

#[cfg(test)]
mod tests {
    use super::*;

    const PEM: &str =
        "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEI\n-----END PRIVATE KEY-----\n";

    fn put(tree: &Path, rel: &str, text: &str) {
        let p = tree.join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, text).unwrap();
    }

    #[test]
    fn armour_is_found_in_text_files_only() {
        assert!(has_private_key_armour(PEM.as_bytes()));
        assert!(has_private_key_armour(
            b"x\n-----BEGIN OPENSSH PRIVATE KEY-----\r\nb3Blbn\n-----END OPENSSH PRIVATE KEY-----\n"
        ));
        assert!(has_private_key_armour(
            b"-----BEGIN EC PRIVATE KEY-----\nMHc\n-----END EC PRIVATE KEY-----"
        ));
        assert!(!has_private_key_armour(
            b"-----BEGIN CERTIFICATE-----\nPRIVATE KEY-----\n"
        ));
        assert!(!has_private_key_armour(
            b"-----BEGIN PUBLIC KEY-----\n-----END PUBLIC KEY-----\n"
        ));
        // A program that parses keys holds the armour as strings (ssh,
        // libcrypto): not a key.
        assert!(!has_private_key_armour(
            b"\x7fELF\0\n-----BEGIN OPENSSH PRIVATE KEY-----\n\0-----END OPENSSH PRIVATE KEY-----\n"
        ));
        // Documentation quoting a BEGIN line alone is not a key either.
        assert!(!has_private_key_armour(
            b"-----BEGIN RSA PRIVATE KEY-----\n"
        ));
    }

    #[test]
    fn scrub_removes_keys_seeds_and_the_dbus_id() {
        let t = tempfile::tempdir().unwrap();
        let tree = t.path();
        for f in [
            "ssh_host_ed25519_key",
            "ssh_host_ed25519_key.pub",
            "ssh_host_rsa_key",
        ] {
            put(
                tree,
                &format!("etc/ssh/{f}"),
                if f.ends_with("pub") {
                    "ssh-ed25519 AAAA"
                } else {
                    PEM
                },
            );
        }
        put(tree, "etc/ssh/sshd_config", "Port 22\n");
        put(tree, "etc/ssl/private/ssl-cert-snakeoil.key", PEM);
        put(tree, "var/lib/systemd/random-seed", "\x01\x02");
        put(
            tree,
            "var/lib/dbus/machine-id",
            "258fb07386aa4b13ae15ba1e5225bfaa\n",
        );
        put(
            tree,
            "usr/lib/systemd/system/sshd-keygen.service",
            "[Unit]\n",
        );
        // A key in /usr is not removed here: the layout's check refuses it.
        put(tree, "usr/share/doc/x/example.key", PEM);
        let removed = scrub(tree).unwrap();
        assert_eq!(
            removed,
            [
                "/etc/ssh/ssh_host_ed25519_key",
                "/etc/ssh/ssh_host_ed25519_key.pub",
                "/etc/ssh/ssh_host_rsa_key",
                "/etc/ssl/private/ssl-cert-snakeoil.key",
                "/var/lib/dbus/machine-id",
                "/var/lib/systemd/random-seed",
            ]
        );
        assert!(tree.join("etc/ssh/sshd_config").exists());
        assert_eq!(
            fs::read_link(tree.join("var/lib/dbus/machine-id")).unwrap(),
            Path::new("/etc/machine-id")
        );
        let dropin = fs::read_to_string(tree.join(&SSHD_KEYGEN_DROPIN.0[1..])).unwrap();
        assert!(dropin.contains("\nConditionFirstBoot=\n"), "{dropin}");
        let err = refuse_private_keys(tree, "usr").unwrap_err();
        assert_eq!(
            format!("{err:#}"),
            "/usr/share/doc/x/example.key is a private key: it would be in every machine's \
             /usr (make it on first boot instead, or keep it out of the image)"
        );
        fs::remove_file(tree.join("usr/share/doc/x/example.key")).unwrap();
        refuse_private_keys(tree, "usr").unwrap();
    }

    #[test]
    fn host_keys_without_a_keygen_unit_are_an_error() {
        let t = tempfile::tempdir().unwrap();
        put(t.path(), "etc/ssh/ssh_host_ed25519_key", PEM);
        let err = scrub(t.path()).unwrap_err();
        assert!(
            format!("{err:#}").contains("sshd-keygen.service"),
            "{err:#}"
        );
    }
}
