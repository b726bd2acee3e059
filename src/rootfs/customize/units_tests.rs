//! Unit tests of `units` on small trees. The expected links are what
//! `systemctl --root=/tmp/sx` (systemd 252) made from the same unit files
//! on a scratch tree, written down here by hand.

use std::fs;
use std::path::Path;

use super::*;

const A: &str = "[Unit]\nDescription=a\n[Service]\nExecStart=/bin/true\n\
                 [Install]\nWantedBy=multi-user.target\nRequiredBy=b.target\n\
                 Alias=a2.service\nAlso=c.socket\n";
const C: &str = "[Socket]\nListenStream=1\n[Install]\nWantedBy=sockets.target\n";
const GETTY: &str = "[Service]\nExecStart=/bin/true\n[Install]\n\
                     WantedBy=getty.target\nDefaultInstance=tty1\n";
const STATIC: &str = "[Service]\nExecStart=/bin/true\n";

fn scratch() -> tempfile::TempDir {
    let t = tempfile::tempdir().unwrap();
    let vendor = t.path().join("usr/lib/systemd/system");
    fs::create_dir_all(&vendor).unwrap();
    for (name, text) in [
        ("a.service", A),
        ("c.socket", C),
        ("getty@.service", GETTY),
        ("static.service", STATIC),
        ("multi-user.target", "[Unit]\n"),
    ] {
        fs::write(vendor.join(name), text).unwrap();
    }
    // A packaged alias, like Debian's sshd.service -> ssh.service.
    std::os::unix::fs::symlink("static.service", vendor.join("alias.service")).unwrap();
    t
}

/// Every symlink under etc/, as "path -> target", sorted.
fn links_of(tree: &Path) -> Vec<String> {
    fn walk(dir: &Path, tree: &Path, out: &mut Vec<String>) {
        for e in fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            let m = fs::symlink_metadata(&p).unwrap();
            if m.file_type().is_symlink() {
                let rel = p.strip_prefix(tree).unwrap().display().to_string();
                out.push(format!("{rel} -> {}", fs::read_link(&p).unwrap().display()));
            } else if m.is_dir() {
                walk(&p, tree, out);
            }
        }
    }
    let mut out = Vec::new();
    if tree.join("etc").exists() {
        walk(&tree.join("etc"), tree, &mut out);
    }
    out.sort();
    out
}

fn units(enable: &[&str], disable: &[&str], mask: &[&str]) -> Units {
    let v = |l: &[&str]| l.iter().map(|s| s.to_string()).collect();
    Units {
        enable: v(enable),
        disable: v(disable),
        mask: v(mask),
    }
}

#[test]
fn enable_follows_install_like_systemctl() {
    let t = scratch();
    let u = units(
        &[
            "a.service",
            "getty@.service",
            "getty@ttyS0.service",
            "static.service",
        ],
        &[],
        &[],
    );
    apply(t.path(), &u, "multi-user.target").unwrap();
    assert_eq!(
        links_of(t.path()),
        [
            "etc/systemd/system/a2.service -> /usr/lib/systemd/system/a.service",
            "etc/systemd/system/b.target.requires/a.service -> /usr/lib/systemd/system/a.service",
            "etc/systemd/system/default.target -> /usr/lib/systemd/system/multi-user.target",
            "etc/systemd/system/getty.target.wants/getty@tty1.service -> /usr/lib/systemd/system/getty@.service",
            "etc/systemd/system/getty.target.wants/getty@ttyS0.service -> /usr/lib/systemd/system/getty@.service",
            "etc/systemd/system/multi-user.target.wants/a.service -> /usr/lib/systemd/system/a.service",
            "etc/systemd/system/sockets.target.wants/c.socket -> /usr/lib/systemd/system/c.socket",
        ]
    );
}

#[test]
fn disable_removes_links_and_also_units_but_not_masks() {
    let t = scratch();
    apply(
        t.path(),
        &units(
            &["a.service", "getty@ttyS0.service", "getty@.service"],
            &[],
            &[],
        ),
        "multi-user.target",
    )
    .unwrap();
    let u = units(
        &[],
        &["a.service", "getty@ttyS0.service"],
        &["static.service", "alias.service"],
    );
    apply(t.path(), &u, "multi-user.target").unwrap();
    assert_eq!(
        links_of(t.path()),
        [
            "etc/systemd/system/alias.service -> /dev/null",
            "etc/systemd/system/default.target -> /usr/lib/systemd/system/multi-user.target",
            "etc/systemd/system/getty.target.wants/getty@tty1.service -> /usr/lib/systemd/system/getty@.service",
            "etc/systemd/system/static.service -> /dev/null",
        ]
    );
    // Enabling a masked unit fails, as with systemctl.
    let err = apply(
        t.path(),
        &units(&["static.service"], &[], &[]),
        "multi-user.target",
    );
    assert!(format!("{:#}", err.unwrap_err()).contains("is masked"));
}

#[test]
fn packaged_aliases_and_local_units() {
    let t = scratch();
    // A unit file in /etc/systemd/system (an overlay's) is linked there.
    let local = t.path().join("etc/systemd/system");
    fs::create_dir_all(&local).unwrap();
    fs::write(
        local.join("local.service"),
        "[Install]\nWantedBy=multi-user.target\n",
    )
    .unwrap();
    fs::write(
        t.path().join("usr/lib/systemd/system/b.service"),
        "[Install]\nWantedBy=multi-user.target\n",
    )
    .unwrap();
    std::os::unix::fs::symlink(
        "b.service",
        t.path().join("usr/lib/systemd/system/b2.service"),
    )
    .unwrap();
    apply(
        t.path(),
        &units(&["local.service", "b2.service"], &[], &[]),
        "multi-user.target",
    )
    .unwrap();
    let links = links_of(t.path());
    assert!(links.contains(&"etc/systemd/system/multi-user.target.wants/local.service -> /etc/systemd/system/local.service".to_string()), "{links:?}");
    assert!(links.contains(&"etc/systemd/system/multi-user.target.wants/b.service -> /usr/lib/systemd/system/b.service".to_string()), "{links:?}");
}

#[test]
fn unknown_units_are_errors() {
    let t = scratch();
    for u in [
        units(&["nope.service"], &[], &[]),
        units(&[], &["nope.service"], &[]),
        units(&[], &[], &["nope.service"]),
    ] {
        let msg = format!(
            "{:#}",
            apply(t.path(), &u, "multi-user.target").unwrap_err()
        );
        assert!(msg.contains("unit nope.service not found"), "{msg}");
    }
    let msg = format!(
        "{:#}",
        apply(t.path(), &Units::default(), "graphical.target").unwrap_err()
    );
    assert_eq!(
        msg,
        "setting default.target to graphical.target: unit graphical.target not found in \
         /etc/systemd/system or /usr/lib/systemd/system"
    );
}

#[test]
fn install_sections_and_specifiers() {
    let i = parse_install(
        "[Service]\nWantedBy=no.target\n[Install]\nWantedBy=a.target \\\n b.target\n\
         WantedBy=\nWantedBy=c.target\n# Alias=x\nAlias=%p-x.service\n",
    );
    assert_eq!(i.wanted_by, ["c.target"]);
    assert_eq!(i.alias, ["%p-x.service"]);
    assert_eq!(
        expand("%p-x.service", "foo@bar.service").unwrap(),
        "foo-x.service"
    );
    assert_eq!(expand("%N.%i", "foo@bar.service").unwrap(), "foo@bar.bar");
    assert!(expand("%H", "foo.service").is_err());
}
