//! Tests of `layout` on a small Debian-like tree.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::Path;

use super::*;

fn debian_like() -> tempfile::TempDir {
    let t = tempfile::tempdir().unwrap();
    let r = t.path();
    for d in [
        "usr/bin",
        "usr/lib64",
        "usr/sbin",
        "usr/share/factory/etc/pam.d",
        "etc/ssh",
    ] {
        fs::create_dir_all(r.join(d)).unwrap();
    }
    for (l, t) in SKELETON_LINKS {
        symlink(t, r.join(l)).unwrap();
    }
    fs::write(r.join("etc/hostname"), "node1\n").unwrap();
    fs::write(r.join("etc/ssh/sshd_config"), "Port 22\n").unwrap();
    fs::set_permissions(
        r.join("etc/ssh/sshd_config"),
        fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    symlink("../usr/lib/os-release", r.join("etc/os-release")).unwrap();
    // A package's factory file the built /etc lacks, and one it has.
    fs::write(r.join("usr/share/factory/etc/pam.d/other"), "x").unwrap();
    fs::write(r.join("usr/share/factory/etc/hostname"), "factory\n").unwrap();
    fs::create_dir_all(r.join("var/lib/dpkg")).unwrap();
    fs::create_dir_all(r.join("var/tmp")).unwrap();
    fs::set_permissions(r.join("var/tmp"), fs::Permissions::from_mode(0o1777)).unwrap();
    fs::write(r.join("var/lib/dpkg/status"), "Package: x\n").unwrap();
    fs::create_dir_all(r.join("var/lib/misc")).unwrap();
    fs::write(r.join("var/lib/misc/odd name%"), "").unwrap();
    symlink("/run", r.join("var/run")).unwrap();
    fs::create_dir_all(r.join("root")).unwrap();
    fs::write(r.join("root/.profile"), "# root\n").unwrap();
    fs::create_dir_all(r.join("boot")).unwrap();
    fs::write(r.join("boot/vmlinuz-6.12.9-amd64"), "kernel").unwrap();
    fs::write(r.join("boot/config-6.12.9-amd64"), "CONFIG_X=y").unwrap();
    symlink("boot/vmlinuz-6.12.9-amd64", r.join("vmlinuz")).unwrap();
    fs::create_dir_all(r.join("run/lock")).unwrap();
    fs::create_dir_all(r.join("tmp")).unwrap();
    fs::write(r.join("tmp/build-leftover"), "").unwrap();
    t
}

#[test]
fn a_debian_tree_becomes_usr_and_a_skeleton() {
    let t = debian_like();
    let r = t.path();
    assert_eq!(
        outside_usr(r),
        [
            "/boot/config-6.12.9-amd64",
            "/boot/vmlinuz-6.12.9-amd64",
            "/etc/hostname",
            "/etc/os-release",
            "/etc/ssh",
            "/root/.profile",
            "/run/lock",
            "/tmp/build-leftover",
            "/var/lib",
            "/var/run",
            "/var/tmp",
            "/vmlinuz",
        ]
        .map(PathBuf::from)
    );
    make_immutable(r).unwrap();
    assert_eq!(outside_usr(r), Vec::<PathBuf>::new());

    let factory = r.join(FACTORY);
    let read = |p: &str| fs::read_to_string(r.join(p)).unwrap();
    // /etc moved whole: content, modes and links; the package's extra
    // factory file stays, the built /etc wins where both have a file.
    assert_eq!(read("usr/share/factory/etc/hostname"), "node1\n");
    assert_eq!(read("usr/share/factory/etc/pam.d/other"), "x");
    let sshd = fs::metadata(factory.join("etc/ssh/sshd_config")).unwrap();
    assert_eq!(sshd.mode() & 0o7777, 0o600);
    assert_eq!(
        fs::read_link(factory.join("etc/os-release")).unwrap(),
        Path::new("../usr/lib/os-release")
    );
    assert_eq!(fs::read_dir(r.join("etc")).unwrap().count(), 0);
    assert_eq!(read("usr/lib/modules/6.12.9-amd64/vmlinuz"), "kernel");
    assert_eq!(read("usr/lib/modules/6.12.9-amd64/config"), "CONFIG_X=y");
    // dpkg's database moved into /usr, linked from /var/lib/dpkg.
    assert_eq!(read("usr/lib/sysimage/dpkg/status"), "Package: x\n");
    assert_eq!(
        fs::read_link(r.join("var/lib/dpkg")).unwrap(),
        Path::new("../../usr/lib/sysimage/dpkg")
    );
    assert!(!factory.join("var/lib/dpkg").exists());
    assert_eq!(read("usr/share/factory/root/.profile"), "# root\n");

    let uid = fs::metadata(r).unwrap().uid();
    let gid = fs::metadata(r).unwrap().gid();
    assert_eq!(
        read("usr/lib/tmpfiles.d/craton-var.conf"),
        format!(
            "# /var as the image built it, recreated at boot from /usr/share/factory/var\n\
             # (written by craton's layout step; see docs/layout.md).\n\
             d /var/lib 0755 {uid} {gid} -\n\
             d /var/lib/misc 0755 {uid} {gid} -\n\
             C \"/var/lib/misc/odd name%%\" - - - - \"/usr/share/factory/var/lib/misc/odd name%%\"\n\
             L /var/run - - - - /run\n\
             d /var/tmp 1777 {uid} {gid} -\n"
        )
    );
    assert!(read("usr/lib/tmpfiles.d/craton-root.conf").contains("C /root/.profile - - - - "));
    let tmp = fs::metadata(r.join("tmp")).unwrap();
    assert!(tmp.is_dir());
}

#[test]
fn outside_usr_names_strays_and_wrong_links() {
    let t = tempfile::tempdir().unwrap();
    let r = t.path();
    fs::create_dir_all(r.join("usr/bin")).unwrap();
    symlink("/usr/bin", r.join("bin")).unwrap(); // absolute: not the skeleton's
    fs::create_dir(r.join("lib")).unwrap(); // a folder, not the merged-/usr link
    fs::write(r.join("stray"), "").unwrap();
    fs::create_dir(r.join("etc")).unwrap();
    assert_eq!(
        outside_usr(r),
        ["/bin", "/lib", "/stray"].map(PathBuf::from)
    );
}

/// Issue #11: two builds of one lock differed in dpkg's and
/// update-alternatives' logs and ldconfig's aux-cache under
/// /usr/share/factory/var. They are dropped; other logs stay.
#[test]
fn build_records_are_dropped() {
    let t = tempfile::tempdir().unwrap();
    let r = t.path();
    fs::create_dir_all(r.join("var/log/apt")).unwrap();
    fs::create_dir_all(r.join("var/cache/ldconfig")).unwrap();
    for f in [
        "var/log/dpkg.log",
        "var/log/alternatives.log",
        "var/log/apt/term.log",
        "var/cache/ldconfig/aux-cache",
        "var/log/keep.log",
    ] {
        fs::write(r.join(f), "2026-12-05 06:54:16 startup\n").unwrap();
    }
    drop_build_records(r).unwrap();
    assert!(!r.join("var/log/dpkg.log").exists());
    assert!(!r.join("var/log/alternatives.log").exists());
    assert!(!r.join("var/log/apt/term.log").exists());
    assert!(!r.join("var/cache/ldconfig/aux-cache").exists());
    assert!(r.join("var/log/keep.log").exists());
    assert!(r.join("var/cache/ldconfig").is_dir());
}
