//! Issue #4's and #9's acceptance: `craton build --platform all` makes the
//! container host's disk images once (tests/container-host-test.toml: the real trixie
//! packages, with the stand-ins for rkt and flannel that its header
//! describes); offline.rs checks it without booting (sgdisk, fsck.fat,
//! e2fsck, veritysetup; no SSH host key or private key in USR-A's erofs),
//! and this file boots it with `craton qemu` under TCG, each boot with a
//! busybox-static tar as a second disk:
//!
//! 1. SeaBIOS, on a copy of the image grown by 1 GiB: the initrd gives the
//!    new disk a disk GUID and PARTUUIDs of its own and reboots once, GRUB
//!    passes the new ones (checked against the disk's table afterwards);
//!    a check unit passed
//!    as a systemd credential verifies from inside that /usr is the
//!    dm-verity device (status V) on USR-A's PARTUUID, read-only; / is
//!    ext4 on ROOT, writable and grown; craton.slot=a; the system is
//!    running (or degraded, with the failed units printed); the slot is
//!    confirmed in the ESP's grubenv; root's authorized_keys holds the
//!    key given with --ssh-key and sshd runs with host keys made on the
//!    first boot; rkt's files, units, groups and folders; docker (its data
//!    on ROOT, its group) imports the tar and runs containers, on its own
//!    bridge since flannel is not configured (flanneld skipped). It prints
//!    one marker line.
//! 2. OVMF with Secure Boot enforced (Debian's signed shim, GRUB and
//!    kernel), the same disk booted again: no reboot, the same checks, the
//!    same identity and disk identifiers.
//! 3. A copy of the gce disk under OVMF without Secure Boot (GCE boots
//!    UEFI), flannel configured
//!    (/run/flannel/options.env by the tmpfiles.extra credential): the same
//!    checks, docker's bridge and containers on the stand-in flanneld's
//!    lease; then `ssh -p PORT root@127.0.0.1 docker run` with a key made
//!    by the test, and another identity. GCE-like (issue #14): QEMU maps
//!    the guest's metadata server (169.254.169.254:80) to a stand-in on the
//!    host's loopback (`craton qemu --gce-metadata`, `--isolated`: nothing
//!    leaves the machine); Ignition applies its `user-data` config in the
//!    initrd and google-guest-agent makes a user from its `ssh-keys`, who
//!    logs in with the test's key. A pristine twin copy is attached
//!    ahead of it on the bus (the booted disk is /dev/vdb): /usr, ROOT and
//!    mark-good's ESP are on the booted disk (QEMU serial craton-image),
//!    and the twin comes out as the image followed by zeros.
//! 4. A copy with one byte of USR-A's filesystem flipped: the boot stops
//!    at /usr in seconds (dm-verity reports the corrupt block, the
//!    veritysetup unit and the /usr mount fail, the check never runs).
//!
//! provision.rs boots the qemu output with Ignition configs from fw_cfg
//! (issue #14), update.rs updates a copy to a version 2 (issue #13).
//!
//! Boots 1, 2 and 4 use the metal raw image, boot 3 the gce tarball's
//! disk.raw (unpacked with GNU tar, as Google's import does); the OEM
//! partition of each names its platform (the check's `platform=`).
//!
//! Boots are serialised (two cores) and each has a bounded timeout; the
//! serial logs stay in cargo's test folder and their tail is in every
//! failure message. Times to the marker are printed for the closing note.

mod check;
mod guest;
mod offline;
mod provision;
mod signing;
#[path = "../support/mod.rs"]
mod support;
mod update;

use check::{WAIT_SSH_CREDENTIAL, flannel_options_credential};
use guest::*;

use std::fs;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use craton::boot::decode_grubenv;
use craton::tools::ToolsTree;

/// What the check unit prints when every check passed.
const MARKER: &str = "CRATON-CHECK-OK";
/// What it prints when one failed (the test then fails with the log).
const FAIL_MARKER: &str = "CRATON-CHECK-FAIL";
/// What the container prints (docker run in the guest).
const CONTAINER_SAYS: &str = "craton-container-ran";
/// A boot under TCG reaches the marker in about a minute here.
const BOOT_TIMEOUT_SECS: u64 = 420;
/// ROOT's size in the image (profiles/base.toml [disk] root-mib).
const ROOT_MIB: u64 = 1024;
/// How much larger than the image the booted disk is.
const GROW_BYTES: u64 = 1 << 30;
/// Passed with `craton qemu --ssh-key` (not a usable key: the guest only
/// has to receive it).
const SSH_KEY: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGNyYXRvbi1pbWFnZS1ib290LXRlc3Qtb25seS1rZXk craton-image-boot-test";
/// Every timestamp of the image.
const EPOCH: &str = "1764288000";

/// The image, built once per test binary.
struct Built {
    dir: PathBuf,
    /// The metal output, `<name>-metal.raw`.
    image: PathBuf,
    /// disk.raw from the gce output's tarball.
    gce_raw: PathBuf,
    root_hash: String,
    hash_offset: u64,
    usr_a_partuuid: String,
    usr_total: u64,
    /// The output folder (image, manifest.json, its signature).
    out_dir: PathBuf,
    /// The public half of the key the build was signed with.
    public_key: PathBuf,
}

fn work_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("image-boot")
}

fn field<'a>(stdout: &'a str, name: &str) -> &'a str {
    stdout
        .lines()
        .find_map(|l| l.strip_prefix(name))
        .map(str::trim)
        .unwrap_or_else(|| panic!("no {name:?} in craton build's output:\n{stdout}"))
}

/// The /usr image's bytes with its verity tree, from `craton build`'s
/// "/usr: N bytes of filesystem (X MB, erofs C), M with its verity tree"
/// line: the last comma-separated part.
fn usr_total(stdout: &str) -> u64 {
    let usr = field(stdout, "/usr:");
    usr.rsplit(", ")
        .next()
        .and_then(|s| s.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("/usr line {usr:?}"))
}

fn built() -> &'static Built {
    static BUILT: OnceLock<Built> = OnceLock::new();
    BUILT.get_or_init(|| {
        let dir = work_dir();
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        // A release engineer's signing key, made as they would make it.
        let keys = dir.join("keys");
        let made = Command::new(env!("CARGO_BIN_EXE_craton"))
            .args(["keygen", "--out"])
            .arg(&keys)
            .output()
            .unwrap();
        assert!(made.status.success(), "{made:?}");
        let out = Command::new(env!("CARGO_BIN_EXE_craton"))
            .args([
                "build",
                "tests/container-host-test.toml",
                "--platform",
                "all",
                "--lock",
            ])
            .arg(dir.join("test.lock"))
            .arg("--key")
            .arg(keys.join("craton.key.pem"))
            .arg("--out")
            .arg(dir.join("out"))
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .env("CI", "true")
            .env("SOURCE_DATE_EPOCH", EPOCH)
            .output()
            .expect("running craton build");
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "craton build failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        eprintln!("craton build:\n{stdout}");
        let usr_total = usr_total(&stdout);
        let out_dir = dir.join("out");
        // The gce disk as Google's import unpacks it: GNU tar, sparse.
        let gce_dir = dir.join("gce");
        fs::create_dir_all(&gce_dir).unwrap();
        let st = Command::new("tar")
            .arg("-xSzf")
            .arg(out_dir.join("container-host-test-gce.tar.gz"))
            .arg("-C")
            .arg(&gce_dir)
            .status()
            .unwrap();
        assert!(st.success(), "tar -xSzf the gce tarball");
        Built {
            image: out_dir.join("container-host-test-metal.raw"),
            gce_raw: gce_dir.join("disk.raw"),
            root_hash: field(&stdout, "root hash:").to_owned(),
            hash_offset: field(&stdout, "hash offset:").parse().unwrap(),
            usr_a_partuuid: field(&stdout, "USR-A:")
                .trim_start_matches("PARTUUID=")
                .to_owned(),
            usr_total,
            out_dir,
            public_key: keys.join("craton.pub.pem"),
            dir,
        }
    })
}

fn tools() -> &'static ToolsTree {
    support::tools()
}

/// (first byte, length) of partition `n` (1-based), from sgdisk.
fn partition(image: &Path, n: u32) -> (u64, u64) {
    let out = Command::new("sgdisk")
        .arg(format!("-i{n}"))
        .arg(image)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let sector = |key: &str| -> u64 {
        text.lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|r| r.split_whitespace().next())
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("no {key} in\n{text}"))
    };
    let first = sector("First sector: ");
    let last = sector("Last sector: ");
    (first * 512, (last - first + 1) * 512)
}

/// The disk GUID and the PARTUUIDs of partitions 1 to 6 (lower case),
/// from sgdisk.
#[derive(Debug, Clone, PartialEq, Eq)]
struct GptIds {
    disk: String,
    parts: Vec<String>,
}

fn gpt_ids(image: &Path) -> GptIds {
    let run = |arg: String| {
        let out = Command::new("sgdisk").arg(arg).arg(image).output().unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let find = |text: &str, key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(key))
            .map(|v| v.trim().to_lowercase())
            .unwrap_or_else(|| panic!("no {key} in\n{text}"))
    };
    GptIds {
        disk: find(&run("-p".into()), "Disk identifier (GUID): "),
        parts: (1..=6)
            .map(|n| find(&run(format!("-i{n}")), "Partition unique GUID: "))
            .collect(),
    }
}

/// `craton inspect IMAGE --json`.
fn inspect_json(image: &Path) -> serde_json::Value {
    let out = Command::new(env!("CARGO_BIN_EXE_craton"))
        .args(["inspect", "--json"])
        .arg(image)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Whether `disk` holds exactly the bytes of `image` followed by zeros (a
/// grown copy nothing has written).
fn untouched_copy(image: &Path, disk: &Path) -> bool {
    let (a, b) = (
        fs::File::open(image).unwrap(),
        fs::File::open(disk).unwrap(),
    );
    let len = a.metadata().unwrap().len();
    let total = b.metadata().unwrap().len();
    let (mut x, mut y) = (vec![0u8; 4 << 20], vec![0u8; 4 << 20]);
    let mut done = 0;
    while done < total {
        let n = x.len().min((total - done) as usize);
        b.read_exact_at(&mut y[..n], done).unwrap();
        let m = n.min(len.saturating_sub(done) as usize);
        a.read_exact_at(&mut x[..m], done).unwrap();
        x[m..n].fill(0);
        if x[..n] != y[..n] {
            return false;
        }
        done += n as u64;
    }
    true
}

/// Copies `len` bytes at `offset` of `image` into a file of its own.
fn extract(image: &Path, offset: u64, len: u64, out: &Path) {
    let src = fs::File::open(image).unwrap();
    let dst = fs::File::create(out).unwrap();
    let mut buf = vec![0u8; 4 << 20];
    let mut done = 0;
    while done < len {
        let n = buf.len().min((len - done) as usize);
        src.read_exact_at(&mut buf[..n], offset + done).unwrap();
        if buf[..n].iter().any(|&b| b != 0) {
            dst.write_all_at(&buf[..n], done).unwrap();
        }
        done += n as u64;
    }
    dst.set_len(len).unwrap();
}

fn copy_sparse(from: &Path, to: &Path) {
    let st = Command::new("cp")
        .arg("--sparse=always")
        .arg(from)
        .arg(to)
        .status()
        .unwrap();
    assert!(st.success());
}

#[test]
fn bad_input_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let run = support::craton_real(
        &support_cache(),
        Path::new(env!("CARGO_MANIFEST_DIR")),
        &[
            "build",
            "tests/container-host-test.toml",
            "--platform",
            "azure",
            "--lock",
            &dir.path().join("x.lock").to_string_lossy(),
            "--out",
            &out.to_string_lossy(),
        ],
    );
    // clap rejects the name (craton's Platform enum is its ValueEnum)
    // before anything is loaded or fetched, naming the value and listing
    // the accepted ones.
    run.fails(
        2,
        "error: invalid value 'azure' for '--platform <PLATFORM>'",
    )
    .fails(2, "[possible values: qemu, gce, metal, all]");
    assert!(!out.exists());
    // The production profile's rkt and flannel come from GitHub, which this
    // machine cannot reach: the build stops at the fetch, names them, and
    // leaves no output folder.
    let run = support::craton_real(
        &support_cache(),
        Path::new(env!("CARGO_MANIFEST_DIR")),
        &[
            "build",
            "profiles/container-host.toml",
            "--lock",
            &dir.path().join("prod.lock").to_string_lossy(),
            "--out",
            &out.to_string_lossy(),
        ],
    );
    run.fails(1, "--artifact-dir");
    assert!(
        run.stderr().contains("rkt-v1.30.0.tar.gz"),
        "{}",
        run.stderr()
    );
    assert!(!out.exists());
    let run = support::craton_real(
        &support_cache(),
        dir.path(),
        &["qemu", "missing.raw", "--firmware", "bios"],
    );
    run.fails(2, "missing.raw: no such image file");
    // The format comes from the name or --format, never from the bytes
    // (issue #11): a name that does not say it is bad input.
    std::fs::write(dir.path().join("disk.bin"), b"QFI\xfb").unwrap();
    let run = support::craton_real(
        &support_cache(),
        dir.path(),
        &["qemu", "disk.bin", "--firmware", "bios"],
    );
    run.fails(2, "the image format is not in its name");
    let run = Command::new(env!("CARGO_BIN_EXE_craton"))
        .args(["build", "tests/container-host-test.toml", "--out"])
        .arg(&out)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("SOURCE_DATE_EPOCH", "yesterday")
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&run.stderr).contains("SOURCE_DATE_EPOCH=\"yesterday\""));
    assert!(!out.exists());
}

/// The default cache (the one the image build uses).
fn support_cache() -> PathBuf {
    craton::cache::default_root().unwrap()
}

#[test]
fn image_boots_with_seabios_and_ovmf() {
    if !support::have_program(craton::qemu::QEMU) {
        return;
    }
    let b = built();
    // Unconfigured: flanneld is skipped and docker keeps its own bridge.
    let (disk, _creds_dir, creds) = boot_inputs(b, "boot.raw", SSH_KEY, &[]);
    // Three firmware paths in three boots: SeaBIOS here, then the same
    // disk again under OVMF with Secure Boot enforced, and OVMF without
    // it for the second copy below.
    let first = check_boot(b, &disk, "bios", &creds);
    // Debian's signed shim, GRUB and kernel under enforced Secure Boot
    // (the modules the boot loads are signed too: lockdown refuses others).
    let sb = check_boot(b, &disk, "uefi-sb", &creds);
    assert!(
        sb.serial.contains("secureboot: Secure boot enabled"),
        "{}",
        tail(&sb.serial)
    );
    for booted in [&first, &sb] {
        booted.assert_network(false);
        // The metal disk: its OEM partition named the platform, the gce
        // agent's units stayed off, timesyncd kept Debian's servers, and
        // the OEM partition's default Ignition config provisioned it.
        assert_eq!(
            (
                booted.get("platform="),
                booted.get("oem="),
                booted.get("agent="),
                booted.get("provisioned=")
            ),
            ("metal", "metal", "no", "metal-oem-default"),
            "{}",
            booted.line
        );
    }
    // The disk's first boot gave it identifiers of its own and rebooted
    // once; the next boot kept them.
    assert_eq!(first.identity_reboots, 1, "{}", tail(&first.serial));
    assert_eq!(sb.identity_reboots, 0, "{}", tail(&sb.serial));
    assert_eq!(first.ids, sb.ids);
    // craton inspect on the booted disk: its own identifiers, slot A
    // confirmed, the disk's identity given.
    let seen = inspect_json(&disk);
    assert_eq!(seen["disk_guid"].as_str(), Some(sb.ids.disk.as_str()));
    assert_eq!(seen["grubenv"]["DISK_ID"], "machine");
    let a = &seen["slots"][0];
    assert_eq!(
        (a["ok"].as_bool(), a["tried"].as_bool()),
        (Some(true), Some(false)),
        "{seen}"
    );
    assert_eq!(a["root_hash"].as_str(), Some(b.root_hash.as_str()));
    // The machine made its SSH host keys and machine-id on its first boot
    // and kept them (on ROOT) through the reboot, from BIOS to UEFI.
    assert_eq!(first.identity, sb.identity);

    // A second copy of the same image is another machine. This one has
    // flannel configured (the stand-in flanneld, tests/fixtures/standins)
    // and is used as a tester would: ssh in with a key made now, run a
    // container, compare the host key the guest offers.
    let keys = tempfile::tempdir().unwrap();
    let private = keys.path().join("id_test");
    let public = ssh_keygen(&private, "craton-image-boot");
    let flannel = flannel_options_credential();
    let extra: [(&str, &[u8]); 2] = [("tmpfiles.extra", &flannel), (WAIT_SSH_CREDENTIAL, b"1")];
    let (other, _other_dir, mut other_creds) =
        boot_inputs_from(b, &b.gce_raw, "other.raw", &public, &extra);
    // A third, untouched copy rides along ahead of it on the bus (so the
    // booted disk is /dev/vdb): on this first boot both disks carry the
    // image's identifiers, and only GRUB's claim tells the initrd which
    // one to give its own. The twin must come out bit for bit as it went in.
    let twin = b.dir.join("twin.raw");
    copy_sparse(&b.gce_raw, &twin);
    grow(&twin);
    other_creds.extend(["--disk".to_owned(), twin.display().to_string()]);
    // GCE-like (issue #14): the guest's metadata server is the test's, on
    // the host's loopback; it serves an Ignition config as `user-data` and
    // the test's key for a user `gceuser` as `ssh-keys`; the network is
    // isolated, so nothing leaves the machine.
    let metadata = support::gce_metadata::serve(gce_metadata_tree(&public));
    other_creds.extend([
        "--gce-metadata".to_owned(),
        metadata.addr.clone(),
        "--isolated".to_owned(),
    ]);
    let port = free_port();
    let (second, ((ran, scanned), (from_user_data, gce_user))) = ssh_boot(
        b,
        &other,
        &other_creds,
        (&private, port),
        || {
            // The agent creates the user when it has read the metadata,
            // some time after the boot: give it two minutes.
            let mut gce_user = String::new();
            for _ in 0..40 {
                let out = ssh_as(GCE_USER, &private, port, "id -un; id -Gn", 60, 10);
                gce_user = String::from_utf8_lossy(&out.stdout).into_owned();
                if out.status.success() {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_secs(3));
            }
            let from_user_data = ssh(
                &private,
                port,
                &format!("stat -c '%a %U' {GCE_IGNITION_FILE}; cat {GCE_IGNITION_FILE}"),
            );
            let from_user_data = String::from_utf8_lossy(&from_user_data.stdout).into_owned();
            let ran = ssh(
                &private,
                port,
                &format!(
                    "docker run --rm --network none craton-busybox:test busybox echo {SSH_CONTAINER_SAYS}"
                ),
            );
            let scan = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "ssh-keyscan -T 60 -t ed25519 -p {port} 127.0.0.1 2>/dev/null | ssh-keygen -lf -"
            ))
            .output()
            .unwrap();
            (
                (ran, String::from_utf8_lossy(&scan.stdout).into_owned()),
                (from_user_data, gce_user),
            )
        },
    );
    // Ignition's gcp provider read the config from the metadata server,
    // and the agent made the user of `ssh-keys` (who logged in with it).
    assert_eq!(
        from_user_data,
        format!("644 root\n{GCE_IGNITION_SAYS}\n"),
        "the user-data config's file"
    );
    assert!(
        gce_user.starts_with(&format!("{GCE_USER}\n")) && gce_user.contains("docker"),
        "google-guest-agent's user from ssh-keys: {gce_user:?}"
    );
    let asked = metadata.seen.lock().unwrap().clone();
    assert!(
        asked
            .iter()
            .any(|p| p == "/computeMetadata/v1/instance/attributes/user-data")
            && asked.iter().any(|p| p.contains("recursive=true")),
        "the metadata server saw {asked:?}"
    );
    eprintln!(
        "gce metadata: {} requests; {GCE_USER}: {}",
        asked.len(),
        gce_user.trim().replace('\n', " / ")
    );
    assert!(
        ran.status.success() && String::from_utf8_lossy(&ran.stdout).trim() == SSH_CONTAINER_SAYS,
        "ssh docker run: {} stdout {:?} stderr {:?}",
        ran.status,
        String::from_utf8_lossy(&ran.stdout),
        String::from_utf8_lossy(&ran.stderr)
    );
    eprintln!("ssh -p {port} root@127.0.0.1 docker run: {SSH_CONTAINER_SAYS}");
    second.assert_network(true);
    // The gce disk from the tarball, booted GCE-like (UEFI): its OEM
    // partition's console and platform, the agent's condition held, and
    // timesyncd asks the metadata server.
    assert_eq!(
        (
            second.get("platform="),
            second.get("oem="),
            second.get("agent="),
            second.get("ntp="),
            second.get("provisioned=")
        ),
        (
            "gce",
            "gce",
            "yes",
            "metadata.google.internal",
            GCE_IGNITION_SAYS
        ),
        "{}",
        second.line
    );
    assert!(
        second.serial.contains("console=ttyS0,38400n8"),
        "the gce console: {}",
        tail(&second.serial)
    );
    assert!(
        second.serial.contains("secureboot: Secure boot disabled"),
        "the second copy booted under OVMF without Secure Boot: {}",
        tail(&second.serial)
    );
    assert!(
        scanned.contains(&second.identity.0),
        "the guest's ssh offers {scanned:?}, its check saw {}",
        second.identity.0
    );
    eprintln!(
        "identities: first copy {:?}, second copy {:?}",
        first.identity, second.identity
    );
    assert_eq!(second.identity_reboots, 1, "{}", tail(&second.serial));
    assert_ne!(
        first.ids.disk, second.ids.disk,
        "two machines, one disk GUID"
    );
    assert!(
        untouched_copy(&b.gce_raw, &twin),
        "the twin disk attached beside the booted one was written"
    );
    assert_ne!(first.identity.0, second.identity.0, "the same SSH host key");
    assert_ne!(first.identity.1, second.identity.1, "the same machine-id");
}

/// The user google-guest-agent makes from the metadata's `ssh-keys`.
const GCE_USER: &str = "gceuser";
/// The file the metadata's `user-data` (an Ignition config) writes.
const GCE_IGNITION_FILE: &str = "/etc/craton/provisioned-by";
const GCE_IGNITION_SAYS: &str = "gce-user-data";

/// The metadata of the GCE-like boot: an instance whose `user-data` is an
/// Ignition config and whose `ssh-keys` give `GCE_USER` the test's key
/// (Google's "user:key" lines), in a project without attributes.
fn gce_metadata_tree(public_key: &str) -> serde_json::Value {
    let config = serde_json::json!({
        "ignition": {"version": "3.3.0"},
        "storage": {"files": [{
            "path": GCE_IGNITION_FILE,
            "mode": 0o644,
            "contents": {"source": format!("data:,{GCE_IGNITION_SAYS}%0A")}
        }]}
    });
    serde_json::json!({
        "instance": {
            "id": 4_242_424_242u64,
            "name": "craton-test",
            "hostname": "craton-test.c.craton-test.internal",
            "zone": "projects/1/zones/local-a",
            "attributes": {
                "user-data": config.to_string(),
                "ssh-keys": format!("{GCE_USER}:{public_key}"),
            },
            "networkInterfaces": [],
        },
        "project": {
            "projectId": "craton-test",
            "numericProjectId": 1,
            "attributes": {},
        },
    })
}

/// A root filesystem tar of Debian's busybox-static (a static binary:
/// nothing else is needed in the container): the package resolved and
/// fetched through the library from the real repositories, its data.tar
/// taken out with the host's dpkg-deb.
fn busybox_tar(b: &Built) -> PathBuf {
    static TAR: OnceLock<PathBuf> = OnceLock::new();
    TAR.get_or_init(|| make_busybox_tar(&b.dir)).clone()
}

fn make_busybox_tar(dir: &Path) -> PathBuf {
    let profile = dir.join("busybox.toml");
    fs::write(
        &profile,
        "schema = 1\n[image]\nname = \"busybox-tar\"\nversion = \"0.1.0\"\n\
         [packages]\ninclude = [\"busybox-static\"]\n[tools]\npackages = []\n",
    )
    .unwrap();
    let ctx = craton::context::Context::new(&craton::context::Options {
        lock: Some(dir.join("busybox.lock")),
        ..craton::context::Options::for_profile(&profile)
    })
    .unwrap();
    let lock = craton::resolve::run(&ctx).unwrap();
    craton::fetch::run(&ctx, &lock).unwrap();
    let deb = lock
        .packages
        .iter()
        .find(|p| p.name == "busybox-static")
        .expect("busybox-static in the lock");
    let tar = dir.join("busybox.tar");
    let out = Command::new("dpkg-deb")
        .arg("--fsys-tarfile")
        .arg(ctx.cache.path_of(&deb.sha256))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    fs::write(&tar, &out.stdout).unwrap();
    tar
}

/// Makes a copy's disk larger, as a VM's disk is (ROOT grows into it).
fn grow(disk: &Path) {
    let f = fs::OpenOptions::new().write(true).open(disk).unwrap();
    f.set_len(f.metadata().unwrap().len() + GROW_BYTES).unwrap();
}

#[test]
fn flipped_byte_in_usr_a_stops_the_boot() {
    if !support::have_program(craton::qemu::QEMU) {
        return;
    }
    let b = built();
    let (disk, _creds_dir, creds) = boot_inputs(b, "corrupt.raw", SSH_KEY, &[]);
    // One byte of erofs's superblock (at 1024 bytes, erofs_fs.h), which
    // the kernel reads when it mounts /usr.
    let (off, _) = partition(&disk, 3);
    let f = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&disk)
        .unwrap();
    let mut byte = [0u8; 1];
    f.read_exact_at(&mut byte, off + 1024 + 16).unwrap();
    f.write_all_at(&[byte[0] ^ 0x01], off + 1024 + 16).unwrap();
    drop(f);
    let log = b.dir.join("serial-corrupt.log");
    // dm-verity fails the read of block 0 (drivers/md/dm-verity-target.c
    // reports it) when the veritysetup unit probes /dev/mapper/usr (the
    // initrd's drop-in, initrd::units): the unit fails, the device's job
    // and the /usr mounts fail with it, and the initrd stops in emergency
    // mode without ever mounting /usr, without waiting for the device
    // job's timeout (90 s) as it did before the probe.
    let (serial, secs, _) = boot(&disk, "bios", "emergency mode", &log, &creds);
    let plain = strip_ansi(&serial);
    let has_line = |a: &str, b: &str| plain.lines().any(|l| l.contains(a) && l.contains(b));
    assert!(
        has_line("device-mapper: verity", "data block 0 is corrupted")
            && has_line("Failed to start", "systemd-veritysetu")
            // Either the device's job fails with the unit, or (when the
            // device appeared before the probe failed, which Ignition's
            // first-boot units in the same transaction made the usual
            // order) the /usr mount fails to read erofs's superblock.
            && (has_line("Dependency failed for", "dev-mapper-usr.device")
                || has_line("Failed to mount", "sysusr-usr.mount"))
            && (has_line("Dependency failed for", "sysusr-usr.mount")
                || has_line("Failed to mount", "sysusr-usr.mount"))
            && plain.contains("You are in emergency mode"),
        "the boot did not refuse the corrupt /usr; serial log {}:\n{}",
        log.display(),
        tail(&plain)
    );
    assert!(
        !plain.contains("Mounted sysusr-usr.mount")
            && !plain.contains("Timed out waiting for device"),
        "{}",
        tail(&plain)
    );
    assert!(
        marker_line(&serial).is_none(),
        "the check ran on a corrupt /usr"
    );
    eprintln!("corrupt USR-A: emergency mode without /usr after {secs:.1}s");
}
