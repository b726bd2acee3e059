//! Unit tests of `load` with inline TOML: merge semantics across `extends`,
//! defaults, and paths resolved against the file that wrote them. The
//! error messages themselves are pinned by tests/bad-profiles/.

use std::fs;
use std::path::Path;

use super::*;
use crate::error::is_bad_input;

const HEAD: &str = "schema = 1\n";

fn write(dir: &Path, name: &str, body: &str) {
    let path = dir.join(name);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, format!("{HEAD}{body}")).unwrap();
}

fn load_err(path: &Path) -> String {
    let e = load(path).unwrap_err();
    assert!(is_bad_input(&e), "{e:#}");
    format!("{e:#}")
}

const IMAGE: &str = "[image]\nname = \"base\"\nversion = \"1\"\n";

#[test]
fn tables_merge_key_by_key_and_scalars_are_overridden() {
    let d = tempfile::tempdir().unwrap();
    write(
        d.path(),
        "base.toml",
        "[image]\nname = \"base\"\nversion = \"1\"\n\
         [image.os-release]\nPRETTY_NAME = \"Base\"\nHOME_URL = \"https://example.org/\"\n\
         [disk]\nesp-mib = 300\nusr-filesystem = \"ext4\"\nusr-b = \"copy\"\n",
    );
    write(
        d.path(),
        "child.toml",
        "extends = [\"base.toml\"]\n[image]\nversion = \"2\"\n\
         [image.os-release]\nPRETTY_NAME = \"Child\"\n[disk]\nesp-mib = 512\n",
    );
    let p = load(&d.path().join("child.toml")).unwrap();
    assert_eq!(p.image.name, "base");
    assert_eq!(p.image.version, "2");
    assert_eq!(p.image.os_release["PRETTY_NAME"], "Child");
    assert_eq!(p.image.os_release["HOME_URL"], "https://example.org/");
    assert_eq!(p.disk.esp, Mib(512));
    assert_eq!(p.disk.usr_filesystem, UsrFilesystem::Ext4);
    assert_eq!(p.disk.usr_b, UsrB::Copy);
    assert_eq!(p.disk.usr, DEFAULT_USR_MIB);
}

#[test]
fn lists_are_appended_parent_first() {
    let d = tempfile::tempdir().unwrap();
    write(
        d.path(),
        "base.toml",
        &format!(
            "{IMAGE}[packages]\ninclude = [\"systemd\", \"udev\"]\n\
             [boot]\nkernel-args = [\"quiet\"]\n[platform.qemu]\nkernel-args = [\"a=1\"]\n"
        ),
    );
    write(
        d.path(),
        "child.toml",
        "extends = [\"base.toml\"]\n[packages]\ninclude = [\"docker.io\", \"systemd\"]\n\
         exclude = [\"vim\"]\n[boot]\nkernel-args = [\"quiet\"]\n\
         [platform.qemu]\nconsole = \"ttyS0\"\nkernel-args = [\"a=2\"]\n",
    );
    let p = load(&d.path().join("child.toml")).unwrap();
    // Package repeats are dropped; kernel arguments keep theirs (the last wins).
    assert_eq!(p.packages.include, ["systemd", "udev", "docker.io"]);
    assert_eq!(p.packages.exclude, ["vim"]);
    assert_eq!(p.boot.kernel_args, ["quiet", "quiet"]);
    let qemu = &p.platforms[&Platform::Qemu];
    assert_eq!(qemu.kernel_args, ["a=1", "a=2"]);
    assert_eq!(qemu.console.as_deref(), Some("ttyS0"));
    assert!(!p.platforms.contains_key(&Platform::Gce));
    assert_eq!(p.platform(Platform::Gce), PlatformSettings::default());
    assert_eq!(p.platform(Platform::Qemu), *qemu);
}

#[test]
fn platform_packages_join_the_image_and_oem_files_replace_by_path() {
    let d = tempfile::tempdir().unwrap();
    write(
        d.path(),
        "base.toml",
        &format!(
            "{IMAGE}[packages]\ninclude = [\"systemd\", \"curl\"]\n\
             [platform.gce]\npackages = [\"agent\", \"curl\"]\n\
             [[platform.gce.oem-file]]\npath = \"/oem/run/a.conf\"\ncontent = \"1\"\n\
             [[platform.gce.oem-file]]\npath = \"/oem/b\"\ncontent = \"b\"\n\
             [platform.metal]\npackages = [\"agent\", \"ipmi\"]\n"
        ),
    );
    write(
        d.path(),
        "child.toml",
        "extends = [\"base.toml\"]\n[[platform.gce.oem-file]]\npath = \"/oem/run/a.conf\"\n\
         mode = \"0600\"\ncontent = \"2\"\n",
    );
    let p = load(&d.path().join("child.toml")).unwrap();
    assert_eq!(p.image_packages(), ["systemd", "curl", "agent", "ipmi"]);
    let only = p.platform_only_packages();
    assert_eq!(only["agent"], [Platform::Gce, Platform::Metal]);
    assert_eq!(only["ipmi"], [Platform::Metal]);
    assert!(!only.contains_key("curl"), "in [packages] include too");
    let gce = p.platform(Platform::Gce);
    let files: Vec<(&str, u32, &str)> = gce
        .oem_files
        .iter()
        .map(|f| (f.path.as_str(), f.mode, f.content.as_str()))
        .collect();
    assert_eq!(
        files,
        [("/oem/run/a.conf", 0o600, "2"), ("/oem/b", 0o644, "b")]
    );
}

fn artifact(name: &str, dest: &str) -> String {
    format!(
        "[[artifact]]\nname = \"{name}\"\nurl = \"https://example.org/{name}\"\n\
         sha256 = \"{}\"\nfiles = [{{ destination = \"{dest}\", mode = \"0755\" }}]\n",
        "ab".repeat(32)
    )
}

#[test]
fn artifacts_are_replaced_by_name_in_place() {
    let d = tempfile::tempdir().unwrap();
    write(
        d.path(),
        "base.toml",
        &format!(
            "{IMAGE}{}{}{}",
            artifact("rkt", "/usr/bin/rkt"),
            artifact("flanneld", "/usr/bin/flanneld"),
            artifact("etcd", "/usr/bin/etcd")
        ),
    );
    write(
        d.path(),
        "child.toml",
        &format!(
            "extends = [\"base.toml\"]\n{}{}",
            artifact("extra", "/usr/bin/extra"),
            artifact("flanneld", "/usr/lib/flannel/flanneld")
        ),
    );
    let p = load(&d.path().join("child.toml")).unwrap();
    let names: Vec<&str> = p.artifacts.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(names, ["rkt", "flanneld", "etcd", "extra"]);
    assert_eq!(
        p.artifacts[1].files[0].destination,
        "/usr/lib/flannel/flanneld"
    );
    assert_eq!(p.artifacts[1].files[0].mode, 0o755);
    assert_eq!(p.artifacts[1].files[0].source, None);
}

#[test]
fn parents_merge_in_order_and_a_diamond_once() {
    let d = tempfile::tempdir().unwrap();
    write(
        d.path(),
        "common.toml",
        "[[repository]]\nname = \"debian\"\nsuites = [\"trixie\"]\n\
         [packages]\ninclude = [\"base-files\"]\n",
    );
    write(
        d.path(),
        "one.toml",
        "extends = [\"common.toml\"]\n[image]\nname = \"one\"\nversion = \"1\"\n\
         [packages]\ninclude = [\"systemd\"]\n",
    );
    write(
        d.path(),
        "two.toml",
        "extends = [\"common.toml\"]\n[image]\nversion = \"2\"\n\
         [packages]\ninclude = [\"docker.io\"]\n",
    );
    write(
        d.path(),
        "top.toml",
        "extends = [\"one.toml\", \"two.toml\"]\n[packages]\ninclude = [\"rkt-deps\"]\n",
    );
    let p = load(&d.path().join("top.toml")).unwrap();
    assert_eq!(p.image.name, "one");
    assert_eq!(p.image.version, "2", "the later parent wins");
    assert_eq!(
        p.packages.include,
        ["base-files", "systemd", "docker.io", "rkt-deps"]
    );
    assert_eq!(p.repositories.len(), 1, "common.toml is merged once");
    let sources: Vec<_> = p
        .sources
        .iter()
        .map(|s| s.file_name().unwrap().to_str().unwrap())
        .collect();
    assert_eq!(sources, ["common.toml", "one.toml", "two.toml", "top.toml"]);
    assert!(p.path.is_absolute() && p.path.ends_with("top.toml"));
}

#[test]
fn defaults_fill_what_is_not_set() {
    let d = tempfile::tempdir().unwrap();
    write(d.path(), "p.toml", IMAGE);
    let p = load(&d.path().join("p.toml")).unwrap();
    let repos: Vec<(&str, Archive, Vec<String>)> = p
        .repositories
        .iter()
        .map(|r| (r.name.as_str(), r.archive, r.suites.clone()))
        .collect();
    assert_eq!(
        repos,
        [
            (
                "debian",
                Archive::Debian,
                vec!["trixie".to_string(), "trixie-updates".to_string()]
            ),
            (
                "debian-security",
                Archive::DebianSecurity,
                vec!["trixie-security".to_string()]
            ),
        ]
    );
    assert!(
        p.repositories.iter().all(|r| r.components == ["main"]
            && r.keyring == Keyring::Builtin
            && r.mirror.is_none())
    );
    assert_eq!(
        p.disk,
        Disk {
            esp: DEFAULT_ESP_MIB,
            bios_boot: DEFAULT_BIOS_BOOT_MIB,
            usr: DEFAULT_USR_MIB,
            oem: DEFAULT_OEM_MIB,
            root: DEFAULT_ROOT_MIB,
            usr_filesystem: UsrFilesystem::Erofs,
            usr_compression: DEFAULT_USR_COMPRESSION,
            usr_b: UsrB::Empty,
        }
    );
    assert_eq!(p.boot.timeout_secs, DEFAULT_TIMEOUT_SECS);
    assert!(p.artifacts.is_empty() && p.platforms.is_empty());
}

#[test]
fn paths_resolve_against_the_file_that_wrote_them() {
    let d = tempfile::tempdir().unwrap();
    fs::create_dir_all(d.path().join("lib/keys")).unwrap();
    fs::write(d.path().join("lib/keys/local.asc"), "key").unwrap();
    write(
        d.path(),
        "lib/base.toml",
        &format!(
            "[[repository]]\nname = \"local\"\nsuites = [\"trixie\"]\n\
             mirror = \"file:///srv/mirror/\"\nkeyring = \"keys/local.asc\"\n\
             [[artifact]]\nname = \"tool\"\nurl = \"fixtures/tool.tar.gz\"\nsha256 = \"{}\"\n\
             files = [{{ source = \"tool/bin\", destination = \"/usr/bin/tool\", mode = \"0755\" }}]\n",
            "0".repeat(64)
        ),
    );
    write(
        d.path(),
        "p.toml",
        &format!("extends = [\"lib/base.toml\"]\n{IMAGE}"),
    );
    let p = load(&d.path().join("p.toml")).unwrap();
    let root = fs::canonicalize(d.path()).unwrap();
    let repo = &p.repositories[0];
    assert_eq!(repo.mirror.as_deref(), Some("file:///srv/mirror"));
    assert_eq!(repo.keyring, Keyring::Path(root.join("lib/keys/local.asc")));
    let url = format!("file://{}", root.join("lib/fixtures/tool.tar.gz").display());
    assert_eq!(p.artifacts[0].url, url);
    assert_eq!(p.artifacts[0].files[0].source.as_deref(), Some("tool/bin"));
}

#[test]
fn cycles_and_missing_files_name_the_files() {
    let d = tempfile::tempdir().unwrap();
    write(d.path(), "a.toml", "extends = [\"b.toml\"]\n");
    write(d.path(), "b.toml", "extends = [\"a.toml\"]\n");
    let a = d.path().join("a.toml");
    let b = d.path().join("b.toml");
    assert_eq!(
        load_err(&a),
        format!(
            "{}:2:12: extends cycle: {} extends {} extends {}",
            b.display(),
            a.display(),
            b.display(),
            a.display()
        )
    );
    let missing = d.path().join("nope.toml");
    let msg = load_err(&missing);
    assert!(
        msg.starts_with(&format!("cannot read {}: ", missing.display())),
        "{msg}"
    );
}

#[test]
fn loading_writes_nothing() {
    let d = tempfile::tempdir().unwrap();
    write(d.path(), "p.toml", IMAGE);
    load(&d.path().join("p.toml")).unwrap();
    let entries: Vec<_> = fs::read_dir(d.path()).unwrap().collect();
    assert_eq!(entries.len(), 1);
}

#[test]
fn a_mistake_in_a_parent_names_the_parent() {
    let d = tempfile::tempdir().unwrap();
    write(
        d.path(),
        "lib/base.toml",
        "[packages]\ninclude = [\"Vim\"]\n",
    );
    write(
        d.path(),
        "p.toml",
        &format!("extends = [\"./lib/../lib/base.toml\"]\n{IMAGE}"),
    );
    let base = d.path().join("lib/base.toml");
    assert_eq!(
        load_err(&d.path().join("p.toml"))
            .split_once(": [packages]")
            .unwrap()
            .0,
        format!("{}:3:12", base.display())
    );
}

#[test]
fn customisation_keys_merge_across_extends() {
    let d = tempfile::tempdir().unwrap();
    fs::create_dir_all(d.path().join("overlays/base")).unwrap();
    fs::create_dir_all(d.path().join("sub/overlays/host")).unwrap();
    write(
        d.path(),
        "base.toml",
        &format!(
            "{IMAGE}[system]\nhostname = \"base\"\noverlays = [\"overlays/base\"]\n\
             [units]\nenable = [\"ssh.service\"]\n\
             [[file]]\npath = \"/etc/motd\"\ncontent = \"base\"\n\
             [[file]]\npath = \"/etc/issue\"\ncontent = \"issue\"\nmode = \"0600\"\n\
             [[user]]\nname = \"core\"\nuid = 500\n\
             [[group]]\nname = \"rkt\"\n"
        ),
    );
    write(
        d.path(),
        "sub/host.toml",
        "extends = [\"../base.toml\"]\n\
         [system]\nhostname = \"node-1\"\noverlays = [\"overlays/host\", \"../overlays/base\"]\n\
         [units]\nenable = [\"docker.service\", \"ssh.service\"]\nmask = [\"getty@tty1.service\"]\n\
         [[file]]\npath = \"/etc/motd\"\ncontent = \"host\"\n\
         [[user]]\nname = \"core\"\ngroups = [\"docker\"]\n",
    );
    let p = load(&d.path().join("sub/host.toml")).unwrap();
    let root = fs::canonicalize(d.path()).unwrap();
    assert_eq!(p.system.hostname.as_deref(), Some("node-1"));
    assert_eq!(p.system.default_target, DEFAULT_TARGET);
    // Appended parent first; one folder named twice is applied once.
    assert_eq!(
        p.system.overlays,
        [root.join("overlays/base"), root.join("sub/overlays/host")]
    );
    assert_eq!(p.units.enable, ["ssh.service", "docker.service"]);
    assert_eq!(p.units.mask, ["getty@tty1.service"]);
    // The child's /etc/motd replaces the parent's in place.
    let files: Vec<(&str, &str, u32)> = p
        .files
        .iter()
        .map(|f| (f.path.as_str(), f.content.as_str(), f.mode))
        .collect();
    assert_eq!(
        files,
        [
            ("/etc/motd", "host", DEFAULT_FILE_MODE),
            ("/etc/issue", "issue", 0o600)
        ]
    );
    // A user is replaced whole by name: the child's has no uid.
    assert_eq!(
        p.users,
        [User {
            name: "core".into(),
            uid: None,
            gecos: String::new(),
            home: DEFAULT_USER_HOME.into(),
            shell: DEFAULT_USER_SHELL.into(),
            groups: vec!["docker".into()],
        }]
    );
    assert_eq!(
        p.groups,
        [Group {
            name: "rkt".into(),
            gid: None
        }]
    );
}

/// `UsrFilesystem::name()` goes onto the kernel command line
/// (`mount.usrfstype=`), so it must be the name a profile writes.
#[test]
fn filesystem_names_are_the_profile_names() {
    for fs in [UsrFilesystem::Erofs, UsrFilesystem::Ext4] {
        let read: UsrFilesystem = toml::Value::String(fs.name().into()).try_into().unwrap();
        assert_eq!(read, fs);
    }
}

#[test]
fn update_settings_default_to_the_enabled_units() {
    let d = tempfile::tempdir().unwrap();
    write(
        d.path(),
        "base.toml",
        &format!("{IMAGE}[units]\nenable = [\"a.service\", \"b.socket\"]\n"),
    );
    let p = load(&d.path().join("base.toml")).unwrap();
    assert_eq!(p.update.confirm_after_secs, DEFAULT_CONFIRM_AFTER_SECS);
    assert_eq!(p.update.channel, None);
    assert_eq!(p.health_units(), ["a.service", "b.socket"]);
    // Set anywhere in the chain, the list replaces the default; lists
    // from several files are appended.
    write(
        d.path(),
        "mid.toml",
        "extends = [\"base.toml\"]\n[update]\nhealth-units = [\"a.service\"]\n",
    );
    write(
        d.path(),
        "top.toml",
        "extends = [\"mid.toml\"]\n[update]\nhealth-units = [\"c.timer\"]\nconfirm-after-secs = 0\nchannel = \"https://u.example.invalid/stable/\"\n",
    );
    let p = load(&d.path().join("top.toml")).unwrap();
    assert_eq!(p.health_units(), ["a.service", "c.timer"]);
    assert_eq!(p.update.confirm_after_secs, 0);
    assert_eq!(
        p.update.channel.as_deref(),
        Some("https://u.example.invalid/stable/")
    );
}
