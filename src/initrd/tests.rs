//! Unit tests of the initrd stage: the cpio writer (read back with a small
//! reader here and with the host's cpio), the module closure on a tiny
//! modules.dep, sysusers.d, os-release and [Install] handling.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};

use super::cpio::{self, HEADER_LEN, MAGIC, TRAILER};
use super::initrd_release;
use super::modules::{ModuleIndex, canonical, copy_plain, kernel_version};
use super::units::install_section;
use super::users::Accounts;
use crate::deb::archive::Compression as ModuleCodec;

/// One entry as read back: name, mode, uid, nlink, ino, mtime, data.
#[derive(Debug, Clone)]
struct Entry {
    name: String,
    mode: u32,
    uid: u32,
    ino: u32,
    nlink: u32,
    mtime: u32,
    data: Vec<u8>,
}

/// A strict newc reader: checks magic, alignment and the trailer.
fn read_newc(mut b: &[u8]) -> Vec<Entry> {
    let total = b.len();
    let mut out = Vec::new();
    loop {
        assert_eq!((total - b.len()) % 4, 0, "header not 4-aligned");
        assert_eq!(&b[..6], MAGIC, "bad magic");
        let f = |i: usize| {
            u32::from_str_radix(std::str::from_utf8(&b[6 + i * 8..14 + i * 8]).unwrap(), 16)
                .unwrap()
        };
        let (ino, mode, uid, nlink, mtime, size, namesize) =
            (f(0), f(1), f(2), f(4), f(5), f(6), f(11));
        let name_end = HEADER_LEN + namesize as usize;
        assert_eq!(b[name_end - 1], 0, "name not NUL-terminated");
        let name = String::from_utf8(b[HEADER_LEN..name_end - 1].to_vec()).unwrap();
        let data_at = name_end.div_ceil(4) * 4;
        let data = b[data_at..data_at + size as usize].to_vec();
        b = &b[(data_at + size as usize).div_ceil(4) * 4..];
        if name == TRAILER {
            assert!(b.is_empty(), "bytes after the trailer");
            return out;
        }
        out.push(Entry {
            name,
            mode,
            uid,
            ino,
            nlink,
            mtime,
            data,
        });
    }
}

fn sample_tree() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    fs::create_dir_all(p.join("usr/bin")).unwrap();
    fs::create_dir_all(p.join("a-b")).unwrap();
    fs::create_dir_all(p.join("a/b")).unwrap();
    fs::write(p.join("usr/bin/tool"), b"#!tool\n").unwrap();
    fs::set_permissions(p.join("usr/bin/tool"), fs::Permissions::from_mode(0o4755)).unwrap();
    fs::write(p.join("a/b/odd"), b"12345").unwrap();
    fs::hard_link(p.join("a/b/odd"), p.join("usr/bin/odd-link")).unwrap();
    symlink("usr/bin", p.join("bin")).unwrap();
    d
}

#[test]
fn cpio_tree_reads_back() {
    let d = sample_tree();
    let (bytes, len) = cpio::pack_tree(d.path(), 1_700_000_000, Vec::new()).unwrap();
    assert_eq!(bytes.len() as u64, len);
    let entries = read_newc(&bytes);
    let names: Vec<&str> = entries.iter().map(|e| e.name.as_str()).collect();
    // Parents first, "a/b" before the sibling "a-b".
    assert_eq!(
        names,
        [
            "a",
            "a/b",
            "a/b/odd",
            "a-b",
            "bin",
            "usr",
            "usr/bin",
            "usr/bin/odd-link",
            "usr/bin/tool"
        ]
    );
    let get = |n: &str| entries.iter().find(|e| e.name == n).unwrap();
    assert!(entries.iter().all(|e| e.mtime == 1_700_000_000));
    assert_eq!(get("usr/bin/tool").mode, 0o104755);
    assert_eq!(get("usr/bin/tool").data, b"#!tool\n");
    assert_eq!(get("bin").mode, 0o120777);
    assert_eq!(get("bin").data, b"usr/bin");
    assert_eq!(get("a").mode & 0o170000, 0o040000);
    // The hard link: one inode, two names, the data with the last only.
    let (first, last) = (get("a/b/odd"), get("usr/bin/odd-link"));
    assert_eq!(first.ino, last.ino);
    assert_eq!((first.nlink, last.nlink), (2, 2));
    assert_eq!(
        (first.data.as_slice(), last.data.as_slice()),
        (&b""[..], &b"12345"[..])
    );
    // Inode numbers count up in order, shared ones counted once.
    let mut inos: Vec<u32> = entries.iter().map(|e| e.ino).collect();
    inos.dedup();
    inos.sort();
    inos.dedup();
    assert_eq!(inos, (1..=8).collect::<Vec<_>>());
    // The files were made by this process: the archive keeps their owner.
    assert_eq!(get("a").uid, fs::metadata(d.path()).unwrap().uid());
    // Deterministic: the same tree gives the same bytes.
    let (again, _) = cpio::pack_tree(d.path(), 1_700_000_000, Vec::new()).unwrap();
    assert_eq!(bytes, again);
}

#[test]
fn host_cpio_extracts_it() {
    if crate::process::Cmd::new("cpio")
        .arg("--version")
        .run()
        .is_err()
    {
        eprintln!("skipped: no cpio on this host");
        return;
    }
    let d = sample_tree();
    let work = tempfile::tempdir().unwrap();
    let archive = work.path().join("x.cpio");
    let (bytes, _) = cpio::pack_tree(d.path(), 0, Vec::new()).unwrap();
    fs::write(&archive, &bytes).unwrap();
    let out = work.path().join("out");
    fs::create_dir(&out).unwrap();
    // cpio reads the archive on stdin, which Cmd keeps null: use -F.
    crate::process::Cmd::new("cpio")
        .args(["-i", "-d", "--quiet", "-H", "newc", "-F"])
        .arg(&archive)
        .cwd(&out)
        .run()
        .unwrap();
    assert_eq!(fs::read(out.join("usr/bin/odd-link")).unwrap(), b"12345");
    assert_eq!(fs::read(out.join("a/b/odd")).unwrap(), b"12345");
    assert_eq!(
        fs::read_link(out.join("bin")).unwrap().to_str(),
        Some("usr/bin")
    );
    assert_eq!(fs::read(out.join("usr/bin/tool")).unwrap(), b"#!tool\n");
}

#[test]
fn cpio_refuses_fifos() {
    let d = tempfile::tempdir().unwrap();
    let fifo = d.path().join("pipe");
    crate::process::Cmd::new("mkfifo").arg(&fifo).run().unwrap();
    let err = cpio::pack_tree(d.path(), 0, Vec::new())
        .unwrap_err()
        .to_string();
    assert!(err.contains("pipe") && err.contains("FIFOs"), "{err}");
}

const DEP: &str = "\
kernel/fs/ext4/ext4.ko.xz: kernel/lib/crc16.ko.xz kernel/fs/jbd2/jbd2.ko.xz
kernel/fs/jbd2/jbd2.ko.xz:
kernel/lib/crc16.ko.xz:
kernel/drivers/md/dm-verity.ko.xz: kernel/drivers/md/dm-mod.ko.xz
kernel/drivers/md/dm-mod.ko.xz:
kernel/arch/x86/crypto/crc32c-intel.ko.xz:
kernel/crypto/crc32c_generic.ko.xz:
kernel/fs/unrelated.ko.xz:
";
const BUILTIN: &str = "kernel/drivers/virtio/virtio_pci.ko\n";
const SOFTDEP: &str = "\
# comment
softdep ext4 pre: crypto-crc32c
softdep jbd2 pre: crypto-crc32c post: missing-thing
softdep cifs gcm
";
const ALIAS: &str = "\
alias crypto-crc32c crc32c_intel
alias crypto-crc32c crc32c_generic
alias fs-ext4 ext4
";

#[test]
fn module_closure_follows_deps_softdeps_and_aliases() {
    let idx = ModuleIndex::parse(DEP, BUILTIN, SOFTDEP, ALIAS);
    let c = idx.closure(&["ext4", "dm-verity", "virtio_pci"]).unwrap();
    let names: Vec<&str> = c.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        [
            "crc16",
            "crc32c_generic",
            "crc32c_intel",
            "dm_mod",
            "dm_verity",
            "ext4",
            "jbd2"
        ]
    );
    assert_eq!(c["dm_verity"], "kernel/drivers/md/dm-verity.ko.xz");
    assert_eq!(idx.softdeps["jbd2"], ["crypto-crc32c", "missing-thing"]);
    // Words before pre:/post: are not dependencies.
    assert!(!idx.softdeps.contains_key("cifs"));
}

#[test]
fn module_closure_names_what_is_missing() {
    let idx = ModuleIndex::parse(DEP, BUILTIN, SOFTDEP, ALIAS);
    let err = idx
        .closure(&["ext4", "no-such_mod"])
        .unwrap_err()
        .to_string();
    assert!(err.contains("no-such_mod"), "{err}");
    // A wanted name is a module name, not an alias.
    assert!(idx.closure(&["fs-ext4"]).is_err());
}

#[test]
fn module_names_are_canonical() {
    assert_eq!(canonical("kernel/drivers/md/dm-verity.ko.xz"), "dm_verity");
    assert_eq!(canonical("nvme-core.ko"), "nvme_core");
    assert_eq!(canonical("sd_mod"), "sd_mod");
}

#[test]
fn modules_are_copied_decompressed() {
    use std::io::Write;
    assert_eq!(
        ModuleCodec::split_suffix("kernel/fs/ext4/ext4.ko.xz"),
        ("kernel/fs/ext4/ext4.ko", ModuleCodec::Xz)
    );
    assert_eq!(
        ModuleCodec::split_suffix("a.ko.zst"),
        ("a.ko", ModuleCodec::Zstd)
    );
    assert_eq!(
        ModuleCodec::split_suffix("a.ko.gz"),
        ("a.ko", ModuleCodec::Gzip)
    );
    assert_eq!(
        ModuleCodec::split_suffix("a.ko"),
        ("a.ko", ModuleCodec::None)
    );
    let dir = tempfile::tempdir().unwrap();
    let module: Vec<u8> = (0..100_000u32)
        .flat_map(|i| (i % 251).to_le_bytes())
        .collect();
    let mut xz = xz2::write::XzEncoder::new(Vec::new(), 6);
    xz.write_all(&module).unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&module).unwrap();
    for (name, bytes, codec) in [
        ("m.ko.xz", xz.finish().unwrap(), ModuleCodec::Xz),
        (
            "m.ko.zst",
            zstd::encode_all(&module[..], 3).unwrap(),
            ModuleCodec::Zstd,
        ),
        ("m.ko.gz", gz.finish().unwrap(), ModuleCodec::Gzip),
    ] {
        let from = dir.path().join(name);
        fs::write(&from, bytes).unwrap();
        let to = dir.path().join("out").join(name).with_extension("");
        copy_plain(&from, &to, codec).unwrap();
        assert_eq!(fs::read(&to).unwrap(), module, "{name}");
    }
    // A damaged module is an error that names the file.
    let bad = dir.path().join("bad.ko.xz");
    fs::write(&bad, b"not xz at all").unwrap();
    let err = copy_plain(&bad, &dir.path().join("bad.ko"), ModuleCodec::Xz).unwrap_err();
    assert!(format!("{err:#}").contains("bad.ko.xz"), "{err:#}");
}

#[test]
fn sysusers_become_accounts() {
    let text = r#"
g adm 4 -
g nogroup 65534 -
u root 0 - /root /bin/bash
u sync 4:65534 - /bin /bin/sync
u nobody 65534:65534 - /nonexistent /usr/sbin/nologin
g input -
g systemd-journal - -
u! systemd-network - "systemd Network Management"
"#;
    let a = Accounts::parse(text).unwrap();
    assert_eq!(a.groups["adm"], 4);
    assert_eq!(a.groups["input"], 999);
    assert_eq!(a.groups["systemd-journal"], 998);
    assert_eq!(a.groups["root"], 0);
    let u = |n: &str| a.users.iter().find(|u| u.name == n).unwrap().clone();
    assert_eq!((u("sync").uid, u("sync").gid), (4, 65534));
    let net = u("systemd-network");
    // Both 999 and 998 are taken as gids: the first id free as both.
    assert_eq!((net.uid, net.gid), (997, 997));
    assert_eq!(net.gecos, "systemd Network Management");
    assert_eq!(
        (net.home.as_str(), net.shell.as_str()),
        ("/", "/usr/sbin/nologin")
    );
    assert_eq!(a.groups["systemd-network"], 997);
    let d = tempfile::tempdir().unwrap();
    a.write(d.path()).unwrap();
    let passwd = fs::read_to_string(d.path().join("etc/passwd")).unwrap();
    assert!(
        passwd.starts_with("root:x:0:0::/root:/bin/bash\n"),
        "{passwd}"
    );
    let group = fs::read_to_string(d.path().join("etc/group")).unwrap();
    assert!(group.starts_with("root:x:0:\n"), "{group}");
    assert!(group.contains("systemd-journal:x:998:\n"), "{group}");
    let shadow = d.path().join("etc/shadow");
    assert_eq!(
        fs::metadata(&shadow).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert!(
        fs::read_to_string(shadow)
            .unwrap()
            .contains("systemd-network:!*:")
    );
}

#[test]
fn sysusers_rejects_bad_ids() {
    let err = format!("{:#}", Accounts::parse("u x abc\n").unwrap_err());
    assert!(err.contains("abc"), "{err}");
}

#[test]
fn initrd_release_marks_the_variant() {
    let r = initrd_release("ID=craton\nPRETTY_NAME=\"craton host\"\nVARIANT=x\nVERSION_ID=1\n");
    assert_eq!(
        r,
        "ID=craton\nPRETTY_NAME=\"craton host (initrd)\"\nVERSION_ID=1\nVARIANT=\"initrd\"\n"
    );
}

#[test]
fn install_sections_become_links() {
    let unit = "[Unit]\nWantedBy=not-here\n[Install]\nRequiredBy=initrd-fs.target\nWantedBy=a.target b.target\n";
    assert_eq!(
        install_section(unit).unwrap(),
        [
            ("requires", "initrd-fs.target".to_owned()),
            ("wants", "a.target".to_owned()),
            ("wants", "b.target".to_owned())
        ]
    );
    let err = install_section("[Install]\nAlias=x.service\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("Alias"), "{err}");
    assert!(
        install_section("[Service]\nExecStart=x\n")
            .unwrap()
            .is_empty()
    );
}

#[test]
fn exactly_one_kernel() {
    let d = tempfile::tempdir().unwrap();
    let mods = d.path().join("usr/lib/modules");
    fs::create_dir_all(&mods).unwrap();
    let err = kernel_version(d.path()).unwrap_err().to_string();
    assert!(err.contains("no kernel"), "{err}");
    for v in ["6.1.0-1-amd64", "6.12.0-1-amd64"] {
        fs::create_dir_all(mods.join(v)).unwrap();
        fs::write(mods.join(v).join("modules.dep"), "").unwrap();
    }
    let err = kernel_version(d.path()).unwrap_err().to_string();
    assert!(
        err.contains("several kernels") && err.contains("6.1.0-1-amd64"),
        "{err}"
    );
    fs::remove_dir_all(mods.join("6.1.0-1-amd64")).unwrap();
    // A folder without modules.dep (left by a removed kernel) does not count.
    fs::create_dir_all(mods.join("5.10.0-old")).unwrap();
    assert_eq!(kernel_version(d.path()).unwrap(), "6.12.0-1-amd64");
}
