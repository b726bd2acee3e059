//! `craton rootfs` on the real container-host packages (with the stand-in
//! artifacts of tests/container-host-test.toml): dpkg is consistent, the
//! container tools run, units are enabled, file capabilities survive, /etc
//! is in the factory, the stand-ins are installed, nothing lies outside /usr
//! but the skeleton; then a profile with an overlay, an inline file, a user
//! and an enabled unit, built twice with a changed overlay, reusing the
//! cached base tree.
//!
//! It uses the default cache (~/.cache/craton or CRATON_CACHE) so that CI
//! runs and later sessions reuse the downloads and the base tree.

mod support;

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

fn craton(args: &[&str]) -> support::Run {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = Command::new(env!("CARGO_BIN_EXE_craton"))
        .args(args)
        .current_dir(root)
        .env("CI", "true")
        .output()
        .expect("running craton");
    support::Run { out }
}

fn sh(cmd: &mut Command) -> String {
    let out = cmd.output().expect("running a check command");
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn mode(p: &Path) -> u32 {
    fs::metadata(p).unwrap().permissions().mode() & 0o7777
}

#[test]
fn container_host_tree_and_customisation() {
    let work = tempfile::tempdir().unwrap();
    let lock = work.path().join("test.lock");
    let tree = work.path().join("tree");
    let (lock_s, tree_s) = (lock.to_str().unwrap(), tree.to_str().unwrap());
    craton(&[
        "rootfs",
        "tests/container-host-test.toml",
        "--lock",
        lock_s,
        "--out",
        tree_s,
    ])
    .ok();

    // dpkg: consistent, and exactly the locked packages.
    let audit = sh(Command::new("dpkg").arg("--root").arg(&tree).arg("--audit"));
    assert_eq!(audit, "", "dpkg --audit is not clean");
    let installed: BTreeSet<String> = sh(Command::new("dpkg-query")
        .arg("--root")
        .arg(&tree)
        .args(["-W", "-f", "${Package} ${Status}\\n"]))
    .lines()
    .map(|l| {
        assert!(l.ends_with(" install ok installed"), "not installed: {l}");
        l.split(' ').next().unwrap().to_owned()
    })
    .collect();
    let locked: BTreeSet<String> =
        support::lock_names(&fs::read_to_string(&lock).unwrap(), "package")
            .into_iter()
            .collect();
    assert_eq!(installed, locked);

    // The container tools run inside the tree.
    for (prog, want) in [
        ("docker", "Docker version"),
        ("containerd", "containerd"),
        ("runc", "runc version"),
    ] {
        let out = sh(Command::new("chroot").arg(&tree).args([prog, "--version"]));
        assert!(out.contains(want), "{prog} --version: {out}");
    }

    // /etc lives in the factory; docker's socket is enabled there.
    let factory = tree.join("usr/share/factory/etc");
    assert_eq!(
        fs::read_dir(tree.join("etc")).unwrap().count(),
        0,
        "/etc is not empty"
    );
    assert!(
        fs::read_to_string(factory.join("passwd"))
            .unwrap()
            .starts_with("root:x:0:0:")
    );
    // docker is socket-activated: docker.socket is enabled, the daemons
    // their packages enable are not (they start on the first use).
    let wants = factory.join("systemd/system/sockets.target.wants/docker.socket");
    assert_eq!(
        fs::read_link(&wants).unwrap(),
        Path::new("/usr/lib/systemd/system/docker.socket")
    );
    for unit in ["docker.service", "containerd.service"] {
        let link = factory
            .join("systemd/system/multi-user.target.wants")
            .join(unit);
        assert!(
            !link.exists() && link.symlink_metadata().is_err(),
            "{unit} is enabled"
        );
    }

    // The flannel drop-in runs the package's own dockerd command line, plus
    // flannel's options.
    let unit = fs::read_to_string(tree.join("usr/lib/systemd/system/docker.service")).unwrap();
    let packaged = unit.lines().find(|l| l.starts_with("ExecStart=")).unwrap();
    let dropin =
        fs::read_to_string(tree.join("usr/lib/systemd/system/docker.service.d/40-flannel.conf"))
            .unwrap();
    let ours = dropin
        .lines()
        .rev()
        .find(|l| l.starts_with("ExecStart="))
        .unwrap();
    assert_eq!(ours, format!("{packaged} $DOCKER_NETWORK_OPTIONS"));

    // flanneld starts only where an options file exists: the image ships
    // the example, not the file; networkd leaves docker's and flannel's
    // links alone.
    assert!(factory.join("flannel/options.env.example").is_file());
    assert!(!factory.join("flannel/options.env").exists());
    let flanneld =
        fs::read_to_string(tree.join("usr/lib/systemd/system/flanneld.service")).unwrap();
    assert!(flanneld.contains("\nConditionPathExists=|/etc/flannel/options.env\n"));
    assert!(flanneld.contains("\nConditionPathExists=|/run/flannel/options.env\n"));
    for (file, name) in [
        ("50-docker.network", "Name=docker* veth*"),
        ("50-flannel.network", "Name=flannel*"),
    ] {
        let net = fs::read_to_string(tree.join("usr/lib/systemd/network").join(file)).unwrap();
        assert!(
            net.contains(name) && net.contains("Unmanaged=yes"),
            "{file}: {net}"
        );
    }

    // A file capability set by a maintainer script (iputils-arping's
    // postinst runs setcap) survives the cached copy and the layout. Trixie's
    // ping has none: it relies on net.ipv4.ping_group_range.
    let caps = sh(Command::new("getcap").arg(tree.join("usr/bin/arping")));
    assert!(caps.contains("cap_net_raw"), "arping: {caps:?}");
    assert!(tree.join("usr/bin/ping").is_file());

    // The stand-in artifacts, where the profile puts them, with their modes.
    let rkt = tree.join("usr/bin/rkt");
    assert!(fs::read_to_string(&rkt).unwrap().contains("rkt stand-in"));
    assert_eq!(mode(&rkt), 0o755);
    // rkt looks for its stage1 images through /usr/share/rkt.
    assert_eq!(
        fs::read_link(tree.join("usr/share/rkt")).unwrap(),
        Path::new("../lib/rkt")
    );
    assert_eq!(
        mode(&tree.join("usr/lib/rkt/stage1-images/stage1-coreos.aci")),
        0o644
    );
    assert!(
        fs::read_to_string(tree.join("usr/bin/flanneld"))
            .unwrap()
            .contains("flanneld stand-in")
    );
    assert_eq!(mode(&tree.join("usr/bin/flanneld")), 0o755);

    // No machine's own identity in the tree: openssh's postinst made host
    // keys and dbus a machine id while the packages were configured; they
    // are gone, each machine makes its own when sshd first starts
    // (sshd-keygen with craton's drop-in), and the D-Bus id is /etc/machine-id's.
    let ssh = factory.join("ssh");
    assert!(ssh.join("sshd_config").is_file());
    let host_keys: Vec<_> = fs::read_dir(&ssh)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("ssh_host_"))
        .collect();
    assert_eq!(host_keys, Vec::<String>::new());
    assert_eq!(fs::read(factory.join("machine-id")).unwrap(), b"");
    assert_eq!(
        fs::read_link(tree.join("usr/share/factory/var/lib/dbus/machine-id")).unwrap(),
        Path::new("/etc/machine-id")
    );
    let keygen =
        fs::read_to_string(tree.join("usr/lib/systemd/system/sshd-keygen.service.d/craton.conf"))
            .unwrap();
    assert!(keygen.contains("\nConditionFirstBoot=\n"), "{keygen}");
    // sshd is socket-activated: ssh.socket is enabled, ssh.service is not,
    // and the keys are made when ssh.service first starts (its drop-in
    // wants sshd-keygen), not by every boot through ssh.socket's wants.
    let system = factory.join("systemd/system");
    assert!(
        system
            .join("sockets.target.wants/ssh.socket")
            .symlink_metadata()
            .is_ok()
    );
    for link in [
        "multi-user.target.wants/ssh.service",
        "ssh.socket.wants/sshd-keygen.service",
        "ssh.service.wants/sshd-keygen.service",
    ] {
        assert!(
            system.join(link).symlink_metadata().is_err(),
            "{link} is there"
        );
    }
    let dropin =
        fs::read_to_string(tree.join("usr/lib/systemd/system/ssh.service.d/craton-keygen.conf"))
            .unwrap();
    assert!(dropin.contains("\nWants=sshd-keygen.service\n"), "{dropin}");
    // cfg80211 only as a Wi-Fi driver's dependency (profiles/base.toml).
    let modprobe =
        fs::read_to_string(tree.join("usr/lib/modprobe.d/craton-cfg80211.conf")).unwrap();
    assert!(modprobe.contains("\nblacklist cfg80211\n"), "{modprobe}");

    // The update stamps: /etc and /var are up to date with this /usr.
    for dir in ["etc", "var"] {
        let stamp =
            fs::read_to_string(tree.join(format!("usr/share/factory/{dir}/.updated"))).unwrap();
        assert!(
            stamp.contains("\nTIMESTAMP_NSEC="),
            "{dir}/.updated: {stamp}"
        );
    }

    // Nothing outside /usr but the skeleton (docs/layout.md), and the
    // marker of a tree that `craton rootfs` wrote (it may replace it).
    assert!(tree.join(craton::cli::rootfs::TREE_MARKER).is_file());
    assert_eq!(
        craton::rootfs::layout::outside_usr(&tree),
        [Path::new("/").join(craton::cli::rootfs::TREE_MARKER)]
    );

    // A profile with an overlay, an inline file, a user and an enabled unit;
    // built twice with a changed overlay, the second reusing the base tree.
    let overlay = work.path().join("overlay");
    sh(Command::new("cp")
        .arg("-a")
        .arg("tests/fixtures/overlay-test")
        .arg(&overlay)
        .current_dir(env!("CARGO_MANIFEST_DIR")));
    let profile = work.path().join("custom.toml");
    let base = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/container-host-test.toml");
    fs::write(
        &profile,
        format!(
            r#"schema = 1
extends = ["{}"]

[system]
hostname = "custom-test"
overlays = ["overlay"]

[units]
enable = ["craton-test.service"]

[[file]]
path = "/etc/craton-test.conf"
mode = "0600"
content = "inline = true\n"

[[user]]
name = "tester"
uid = 1500
home = "/home/tester"
shell = "/bin/bash"
groups = ["docker"]
"#,
            base.display()
        ),
    )
    .unwrap();
    let custom = work.path().join("custom-tree");
    let args = [
        "rootfs",
        profile.to_str().unwrap(),
        "--lock",
        lock_s,
        "--out",
        custom.to_str().unwrap(),
    ];
    craton(&args).ok();
    let f = custom.join("usr/share/factory/etc");
    assert_eq!(
        fs::read_to_string(custom.join("usr/share/craton-test/overlay.txt")).unwrap(),
        "from the test overlay\n"
    );
    assert_eq!(
        fs::read_to_string(f.join("craton-test.conf")).unwrap(),
        "inline = true\n"
    );
    assert_eq!(mode(&f.join("craton-test.conf")), 0o600);
    let passwd = fs::read_to_string(f.join("passwd")).unwrap();
    assert!(passwd.contains("tester:x:1500:"), "{passwd}");
    assert!(
        fs::read_to_string(f.join("group"))
            .unwrap()
            .lines()
            .any(|l| l.starts_with("docker:") && l.ends_with("tester"))
    );
    assert_eq!(
        fs::read_link(f.join("systemd/system/multi-user.target.wants/craton-test.service"))
            .unwrap(),
        Path::new("/usr/lib/systemd/system/craton-test.service")
    );
    assert_eq!(
        fs::read_to_string(f.join("hostname")).unwrap().trim(),
        "custom-test"
    );

    fs::write(
        overlay.join("usr/share/craton-test/overlay.txt"),
        "changed\n",
    )
    .unwrap();
    let second = craton(&args);
    second.ok();
    assert!(
        second.stderr().contains("reusing the cached base tree"),
        "{}",
        second.stderr()
    );
    assert_eq!(
        fs::read_to_string(custom.join("usr/share/craton-test/overlay.txt")).unwrap(),
        "changed\n"
    );
}

/// Issue #11: `craton rootfs --out DIR` moved any existing DIR aside and
/// removed it, so `--out ~` erased a home folder. Now a folder that craton
/// did not write is refused before anything is resolved or built, and
/// what it holds stays.
#[test]
fn out_refuses_a_folder_craton_did_not_write() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    fs::create_dir(&home).unwrap();
    fs::write(home.join("notes.txt"), "mine\n").unwrap();
    let lock = dir.path().join("l.lock");
    let run = craton(&[
        "rootfs",
        "tests/container-host-test.toml",
        "--lock",
        lock.to_str().unwrap(),
        "--out",
        home.to_str().unwrap(),
    ]);
    run.fails(2, "craton did not write it");
    assert_eq!(
        fs::read_to_string(home.join("notes.txt")).unwrap(),
        "mine\n"
    );
    assert!(!lock.exists(), "the lock was written before the refusal");
    // A file is refused too.
    let file = dir.path().join("file");
    fs::write(&file, "x").unwrap();
    craton(&[
        "rootfs",
        "tests/container-host-test.toml",
        "--out",
        file.to_str().unwrap(),
    ])
    .fails(2, "is not a folder");
    assert_eq!(fs::read(&file).unwrap(), b"x");
}
