//! Step 6: what makes the tree this image and each machine itself: the host
//! name, an empty machine-id, os-release from [image], and a locked root.
//!
//! It does not create users (`users`) or decide where /etc lives
//! (`layout`).

use std::path::Path;

use anyhow::Result;

use crate::files::tree;
use crate::profile::Profile;

/// os-release(5): the vendor file; /etc/os-release links to it.
pub const OS_RELEASE: &str = "/usr/lib/os-release";
/// os-release(5) recommends this relative link, so it resolves in a chroot.
const ETC_OS_RELEASE_TARGET: &str = "../usr/lib/os-release";
/// machine-id(5): an empty file makes systemd generate the id on first
/// boot and write it (/etc is writable through its overlay). Not
/// "uninitialized": that also triggers ConditionFirstBoot= and
/// `systemctl preset-all`, which would undo the profile's [units].
const MACHINE_ID: &str = "/etc/machine-id";
/// Read-only, as systemd-machine-id-setup leaves it.
const MACHINE_ID_MODE: u32 = 0o444;
/// Root's password field: locked with no password (shadow(5)); login is by
/// SSH key or console autologin units that a profile adds.
pub const ROOT_LOCKED: &str = "!*";

pub fn apply(tree: &Path, profile: &Profile, build_id: &str) -> Result<()> {
    if let Some(h) = &profile.system.hostname {
        tree::write_file(tree, "/etc/hostname", format!("{h}\n").as_bytes(), 0o644)?;
    }
    tree::write_file(tree, MACHINE_ID, b"", MACHINE_ID_MODE)?;
    tree::write_file(
        tree,
        OS_RELEASE,
        os_release(profile, build_id).as_bytes(),
        0o644,
    )?;
    tree::symlink(tree, "/etc/os-release", ETC_OS_RELEASE_TARGET)?;
    lock_root(tree)
}

/// os-release(5) text: the profile's [image.os-release], then what craton
/// sets from [image] and the build (the profile cannot set those keys:
/// `RESERVED_OS_RELEASE_KEYS`).
fn os_release(profile: &Profile, build_id: &str) -> String {
    let image = &profile.image;
    let mut out = String::new();
    for (k, v) in &image.os_release {
        out.push_str(&format!("{k}={}\n", quote(v)));
    }
    let ours = [
        ("VERSION_ID", image.version.as_str()),
        ("IMAGE_ID", image.name.as_str()),
        ("IMAGE_VERSION", image.version.as_str()),
        ("BUILD_ID", build_id),
    ];
    for (k, v) in ours {
        out.push_str(&format!("{k}={}\n", quote(v)));
    }
    out
}

/// os-release(5) values are shell-compatible: plain words stay bare,
/// anything else is double-quoted with `"`, `\`, `$` and `` ` `` escaped.
fn quote(v: &str) -> String {
    let plain = !v.is_empty()
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '/' | ':' | '+'));
    if plain {
        return v.to_string();
    }
    let mut out = String::from("\"");
    for c in v.chars() {
        if matches!(c, '"' | '\\' | '$' | '`') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// Sets root's password field in /etc/shadow to [`ROOT_LOCKED`], keeping
/// the other fields; adds the entry if the file has none.
fn lock_root(tree: &Path) -> Result<()> {
    let text = tree::read_or_empty(tree, "/etc/shadow")?;
    let mut found = false;
    let mut out = String::new();
    for line in text.lines() {
        let mut f: Vec<&str> = line.split(':').collect();
        if f.first() == Some(&"root") && f.len() > 1 {
            f[1] = ROOT_LOCKED;
            found = true;
        }
        out.push_str(&f.join(":"));
        out.push('\n');
    }
    if !found {
        out.push_str(&format!("root:{ROOT_LOCKED}:::::::\n"));
    }
    // In place when it exists: keeps Debian's 0640 root:shadow.
    if tree::rewrite(tree, "/etc/shadow", out.as_bytes())? {
        return Ok(());
    }
    tree::write_file(tree, "/etc/shadow", out.as_bytes(), 0o600).map(|_| ())
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn profile() -> Profile {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("p.toml");
        fs::write(
            &p,
            "schema = 1\n[image]\nname = \"host\"\nversion = \"1.2.0\"\n\
             [image.os-release]\nNAME = \"craton\"\nPRETTY_NAME = \"craton \\\"x\\\" $HOME\"\n\
             [system]\nhostname = \"node1\"\n",
        )
        .unwrap();
        crate::profile::load(&p).unwrap()
    }

    #[test]
    fn identity_files() {
        let t = tempfile::tempdir().unwrap();
        let tree = t.path();
        fs::create_dir(tree.join("etc")).unwrap();
        fs::write(
            tree.join("etc/shadow"),
            "root:*:20000:0:99999:7:::\ndaemon:*:20000::::::\n",
        )
        .unwrap();
        fs::write(tree.join("etc/os-release"), "NAME=Debian\n").unwrap();
        fs::write(
            tree.join("etc/machine-id"),
            "0123456789abcdef0123456789abcdef\n",
        )
        .unwrap();
        apply(tree, &profile(), "lock-1a2b").unwrap();
        let read = |p: &str| fs::read_to_string(tree.join(p)).unwrap();
        assert_eq!(read("etc/hostname"), "node1\n");
        assert_eq!(read("etc/machine-id"), "");
        let mode = fs::metadata(tree.join("etc/machine-id"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o7777, 0o444);
        assert_eq!(
            read("usr/lib/os-release"),
            "NAME=craton\nPRETTY_NAME=\"craton \\\"x\\\" \\$HOME\"\nVERSION_ID=1.2.0\n\
             IMAGE_ID=host\nIMAGE_VERSION=1.2.0\nBUILD_ID=lock-1a2b\n"
        );
        assert_eq!(
            fs::read_link(tree.join("etc/os-release")).unwrap(),
            Path::new("../usr/lib/os-release")
        );
        assert_eq!(read("etc/os-release"), read("usr/lib/os-release"));
        assert_eq!(
            read("etc/shadow"),
            "root:!*:20000:0:99999:7:::\ndaemon:*:20000::::::\n"
        );
    }

    /// Issue #11: an /etc/shadow that is an absolute symlink to a host file
    /// was read and rewritten through the link, on the host. Now the link
    /// is resolved inside the tree: the host file stays as it was.
    #[test]
    fn a_shadow_link_out_of_the_tree_is_not_followed() {
        let t = tempfile::tempdir().unwrap();
        let host_file = t.path().join("host-shadow");
        fs::write(&host_file, "root:$6$host:1::::::\n").unwrap();
        let tree = t.path().join("tree");
        fs::create_dir_all(tree.join("etc")).unwrap();
        std::os::unix::fs::symlink(&host_file, tree.join("etc/shadow")).unwrap();
        lock_root(&tree).unwrap();
        assert_eq!(
            fs::read_to_string(&host_file).unwrap(),
            "root:$6$host:1::::::\n"
        );
        assert_eq!(
            crate::files::tree::read_or_empty(&tree, "/etc/shadow").unwrap(),
            "root:!*:::::::\n"
        );
    }
}
