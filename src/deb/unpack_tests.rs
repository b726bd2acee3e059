//! Unit tests for `unpack` and `dpkgdb` with small .debs made at test time:
//! by dpkg-deb where it can express the case, by hand (ar + tar) where it
//! cannot (xattrs, hostile paths).

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::Command;

use super::*;
use crate::deb::dpkgdb::register;

/// Builds `<name>_1_amd64.deb` from a root with DEBIAN/ filled in; `extra`
/// adds control fields and `setup` the files.
fn dpkg_deb(dir: &Path, name: &str, extra: &str, setup: impl FnOnce(&Path)) -> DebInput {
    let root = dir.join(format!("src-{name}"));
    fs::create_dir_all(root.join("DEBIAN")).unwrap();
    fs::write(
        root.join("DEBIAN/control"),
        format!(
            "Package: {name}\nVersion: 1\nArchitecture: amd64\n{extra}\
             Maintainer: t <t@t.invalid>\nDescription: test {name}\n more text\n"
        ),
    )
    .unwrap();
    setup(&root);
    let deb = dir.join(format!("{name}_1_amd64.deb"));
    crate::deb::dpkg_deb_build(&root, &deb, &[]);
    input(name, deb)
}

fn input(name: &str, path: PathBuf) -> DebInput {
    DebInput {
        name: name.to_owned(),
        version: "1".to_owned(),
        arch: "amd64".to_owned(),
        path,
    }
}

/// A .deb from raw tar members, for what dpkg-deb cannot make.
fn hand_deb(path: &Path, control: &[u8], data: &[u8]) {
    let mut out = b"!<arch>\n".to_vec();
    for (name, body) in [
        ("debian-binary", &b"2.0\n"[..]),
        ("control.tar", control),
        ("data.tar", data),
    ] {
        let h = format!(
            "{name:<16}{:<12}{:<6}{:<6}{:<8}{:<10}`\n",
            0,
            0,
            0,
            "100644",
            body.len()
        );
        out.extend_from_slice(h.as_bytes());
        out.extend_from_slice(body);
        if body.len() % 2 == 1 {
            out.push(b'\n');
        }
    }
    fs::write(path, out).unwrap();
}

fn tar_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, body) in entries {
        let mut h = tar::Header::new_gnu();
        h.set_size(body.len() as u64);
        h.set_mode(0o644);
        h.set_mtime(1_700_000_000);
        h.set_uid(0);
        h.set_gid(0);
        h.set_entry_type(tar::EntryType::Regular);
        b.append_data(&mut h, name, *body).unwrap();
    }
    b.into_inner().unwrap()
}

fn control_tar(name: &str) -> Vec<u8> {
    let c = format!("Package: {name}\nVersion: 1\nArchitecture: amd64\nDescription: x\n");
    tar_of(&[("./control", c.as_bytes())])
}

#[test]
fn unpacks_files_links_conffiles_and_registers() {
    let dir = tempfile::tempdir().unwrap();
    let a = dpkg_deb(
        dir.path(),
        "a",
        "Essential: yes\nPriority: required\n",
        |r| {
            fs::create_dir_all(r.join("etc")).unwrap();
            fs::create_dir_all(r.join("usr/bin")).unwrap();
            // An old-style path: it must land in /usr/bin through /bin.
            fs::create_dir_all(r.join("bin")).unwrap();
            fs::write(r.join("etc/a.conf"), "conf\n").unwrap();
            fs::write(r.join("usr/bin/tool"), "#!/bin/sh\n").unwrap();
            fs::set_permissions(r.join("usr/bin/tool"), fs::Permissions::from_mode(0o4755))
                .unwrap();
            fs::hard_link(r.join("usr/bin/tool"), r.join("usr/bin/tool2")).unwrap();
            symlink("tool", r.join("usr/bin/tool-link")).unwrap();
            fs::write(r.join("bin/old"), "old\n").unwrap();
            fs::write(r.join("DEBIAN/conffiles"), "/etc/a.conf\n").unwrap();
            fs::write(r.join("DEBIAN/postinst"), "#!/bin/sh\nexit 0\n").unwrap();
            fs::set_permissions(r.join("DEBIAN/postinst"), fs::Permissions::from_mode(0o755))
                .unwrap();
            fs::write(
                r.join("DEBIAN/triggers"),
                "interest-noawait /usr/lib/a\ninterest a-trig\n",
            )
            .unwrap();
        },
    );
    let b = dpkg_deb(dir.path(), "libb", "Multi-Arch: same\n", |r| {
        fs::create_dir_all(r.join("usr/lib")).unwrap();
        fs::write(r.join("usr/lib/libb.so"), "elf\n").unwrap();
    });
    let tree = dir.path().join("tree");
    let un = unpack_all(&tree, &[a, b], 2).unwrap();

    // Merged /usr, and /bin/old through it.
    assert_eq!(
        fs::read_link(tree.join("bin")).unwrap(),
        Path::new("usr/bin")
    );
    assert_eq!(fs::read(tree.join("usr/bin/old")).unwrap(), b"old\n");
    // The conffile waits as .dpkg-new; the list names its real path.
    assert!(!tree.join("etc/a.conf").exists());
    assert_eq!(
        fs::read(tree.join("etc/a.conf.dpkg-new")).unwrap(),
        b"conf\n"
    );
    assert!(un[0].paths.contains(&"/etc/a.conf".to_owned()));
    assert_eq!(un[0].paths[0], "/.");
    assert!(un[0].paths.contains(&"/bin/old".to_owned()));
    // setuid, owner, hard link and symlink survive.
    let tool = fs::metadata(tree.join("usr/bin/tool")).unwrap();
    assert_eq!(tool.mode() & 0o7777, 0o4755);
    assert_eq!((tool.uid(), tool.gid()), (0, 0));
    let tool2 = fs::metadata(tree.join("usr/bin/tool2")).unwrap();
    assert_eq!(tool.ino(), tool2.ino());
    assert_eq!(
        fs::read_link(tree.join("usr/bin/tool-link")).unwrap(),
        Path::new("tool")
    );

    register(&tree, &un).unwrap();
    let db = tree.join("var/lib/dpkg");
    let status = fs::read_to_string(db.join("status")).unwrap();
    assert!(
        status.starts_with(
            "Package: a\nEssential: yes\nStatus: install ok unpacked\nPriority: required\n"
        ),
        "{status}"
    );
    assert!(
        status
            .contains("Conffiles:\n /etc/a.conf newconffile\nDescription: test a\n more text\n\n"),
        "{status}"
    );
    assert!(
        status.contains("Package: libb\nStatus: install ok unpacked\n"),
        "{status}"
    );
    let post = fs::metadata(db.join("info/a.postinst")).unwrap();
    assert_eq!(post.mode() & 0o777, 0o755);
    assert!(db.join("info/libb:amd64.list").exists());
    assert_eq!(
        fs::read_to_string(db.join("info/libb:amd64.list")).unwrap(),
        "/.\n/usr\n/usr/lib\n/usr/lib/libb.so\n"
    );
    assert_eq!(
        fs::read_to_string(db.join("triggers/File")).unwrap(),
        "/usr/lib/a a/noawait\n"
    );
    assert_eq!(
        fs::read_to_string(db.join("triggers/a-trig")).unwrap(),
        "a\n"
    );

    // The host's dpkg agrees that both are unpacked, not configured.
    let q = crate::process::Cmd::new("dpkg-query")
        .args([
            "--root",
            tree.to_str().unwrap(),
            "-W",
            "-f",
            "${Package} ${Status}\n",
        ])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8(q).unwrap(),
        "a install ok unpacked\nlibb install ok unpacked\n"
    );
}

#[test]
fn same_file_in_two_packages_names_both() {
    let dir = tempfile::tempdir().unwrap();
    let mk = |name: &str, sub: &str| {
        let name = name.to_owned();
        let sub = sub.to_owned();
        dpkg_deb(dir.path(), &name, "", move |r| {
            fs::create_dir_all(r.join(&sub)).unwrap();
            fs::write(r.join(&sub).join("clash"), "x").unwrap();
        })
    };
    // The same file through the /bin alias is the same path.
    let debs = [mk("one", "usr/bin"), mk("two", "bin")];
    let err = format!(
        "{:#}",
        unpack_all(&dir.path().join("t"), &debs, 1).unwrap_err()
    );
    assert!(err.contains("shipped by both one and two"), "{err}");
}

#[test]
fn keeps_file_capabilities_from_pax_xattrs() {
    let dir = tempfile::tempdir().unwrap();
    let mut b = tar::Builder::new(Vec::new());
    // cap_net_raw+p as setcap writes it: VFS_CAP_REVISION_2, permitted bit 13.
    let cap: [u8; 20] = [
        0, 0, 0, 2, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    ];
    b.append_pax_extensions([("SCHILY.xattr.security.capability", &cap[..])])
        .unwrap();
    let mut h = tar::Header::new_ustar();
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(1_700_000_000);
    h.set_size(4);
    h.set_mode(0o755);
    h.set_entry_type(tar::EntryType::Regular);
    b.append_data(&mut h, "./usr/bin/ping", &b"ping"[..])
        .unwrap();
    let deb = dir.path().join("p.deb");
    hand_deb(&deb, &control_tar("p"), &b.into_inner().unwrap());
    let tree = dir.path().join("t");
    unpack_all(&tree, &[input("p", deb)], 1).unwrap();
    // getcap decodes the xattr: proof that it survived chown and chmod.
    match Command::new("getcap")
        .arg(tree.join("usr/bin/ping"))
        .output()
    {
        Ok(o) => {
            let text = String::from_utf8_lossy(&o.stdout);
            assert!(text.contains("cap_net_raw=p"), "{text}");
        }
        Err(e) => eprintln!("skipped the capability check: no getcap ({e})"),
    }
}

#[test]
fn refuses_paths_that_leave_the_tree() {
    assert!(components(b"/etc/passwd").is_err());
    assert!(components(b"./usr/../../etc").is_err());
    assert_eq!(components(b"./usr/bin/").unwrap(), ["usr", "bin"]);
    let dir = tempfile::tempdir().unwrap();
    // A symlink pointing out of the tree is resolved inside it, as in a chroot.
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Symlink);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(1_700_000_000);
    h.set_size(0);
    b.append_link(&mut h, "./esc", "/../../outside").unwrap();
    let body = tar_of(&[("./esc/f", b"x")]);
    let mut data = b.into_inner().unwrap();
    data.truncate(data.len() - 1024); // drop the end-of-archive blocks
    data.extend_from_slice(&body);
    let deb = dir.path().join("e.deb");
    hand_deb(&deb, &control_tar("e"), &data);
    let tree = dir.path().join("t");
    unpack_all(&tree, &[input("e", deb)], 1).unwrap();
    assert!(tree.join("outside/f").exists());
    assert!(!dir.path().join("outside").exists());
}

#[test]
fn parses_conffiles_with_flags() {
    let c = parse_conffiles("/etc/a\nremove-on-upgrade /etc/b c\n\n").unwrap();
    assert_eq!(
        c[0],
        Conffile {
            path: "/etc/a".into(),
            flags: vec![]
        }
    );
    assert_eq!(
        c[1],
        Conffile {
            path: "/etc/b c".into(),
            flags: vec!["remove-on-upgrade".into()]
        }
    );
    assert!(parse_conffiles("etc/x\n").is_err());
}

/// The path filter leaves excluded files out (documentation, manual pages)
/// and keeps included ones (the copyright file, its folder made for it);
/// the package's file list still names them all, as dpkg's does.
#[test]
fn path_filter_leaves_out_what_it_excludes() {
    let dir = tempfile::tempdir().unwrap();
    let deb = dpkg_deb(dir.path(), "docs", "", |root| {
        for (p, text) in [
            ("usr/bin/tool", "tool"),
            ("usr/share/doc/docs/copyright", "licence"),
            ("usr/share/doc/docs/changelog.gz", "changes"),
            ("usr/share/man/man1/tool.1.gz", "manual"),
            ("usr/share/locale/de/LC_MESSAGES/tool.mo", "übersetzt"),
        ] {
            let f = root.join(p);
            fs::create_dir_all(f.parent().unwrap()).unwrap();
            fs::write(f, text).unwrap();
        }
    });
    let filter = PathFilter::new(
        crate::profile::DEFAULT_PATH_EXCLUDE
            .iter()
            .map(|s| (*s).to_owned())
            .collect(),
        crate::profile::DEFAULT_PATH_INCLUDE
            .iter()
            .map(|s| (*s).to_owned())
            .collect(),
    )
    .unwrap();
    let tree = dir.path().join("t");
    let un = unpack_filtered(&tree, &[deb], 1, &filter).unwrap();
    assert_eq!(
        fs::read_to_string(tree.join("usr/bin/tool")).unwrap(),
        "tool"
    );
    assert_eq!(
        fs::read_to_string(tree.join("usr/share/doc/docs/copyright")).unwrap(),
        "licence"
    );
    for gone in [
        "usr/share/doc/docs/changelog.gz",
        "usr/share/man/man1",
        "usr/share/locale/de",
    ] {
        assert!(!tree.join(gone).exists(), "{gone} was unpacked");
    }
    for listed in [
        "/usr/share/doc/docs/changelog.gz",
        "/usr/share/man/man1/tool.1.gz",
        "/usr/share/doc/docs/copyright",
    ] {
        assert!(
            un[0].paths.iter().any(|p| p == listed),
            "{listed} not listed"
        );
    }
}
