//! The checks of the built image that need no boot: its partitions and
//! filesystems (sgdisk, fsck.fat, e2fsck), USR-A's verity tree
//! (veritysetup verify, and a wrong root hash refused), nothing a machine
//! makes for itself in /usr; and a second build with `[disk] usr-b =
//! "copy"`, whose USR-B must equal USR-A.

use std::fs;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::Path;
use std::process::Command;

use super::guest::{esp_file, read_grubenv};
use super::{built, copy_sparse, extract, partition, support, support_cache, tools, work_dir};

#[test]
fn image_passes_offline_checks() {
    let b = built();
    let meta = fs::metadata(&b.image).unwrap();
    let allocated = meta.blocks() * 512;
    eprintln!(
        "image {}: {} bytes apparent, {} allocated",
        b.image.display(),
        meta.len(),
        allocated
    );
    assert!(allocated < meta.len() / 2, "the image is not sparse");
    let name = b.image.file_name().unwrap().to_string_lossy();
    assert_eq!(name, "container-host-test-metal.raw");

    let verify = Command::new("sgdisk")
        .arg("-v")
        .arg(&b.image)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&verify.stdout);
    assert!(text.contains("No problems found"), "{text}");

    let dir = tempfile::tempdir_in(&b.dir).unwrap();
    let tools = tools();
    // 1 EFI-SYSTEM, 3 USR-A, 5 OEM, 6 ROOT (docs/architecture.md "Disk
    // layout").
    let (off, len) = partition(&b.image, 1);
    let esp = dir.path().join("esp.img");
    extract(&b.image, off, len, &esp);
    let out = tools
        .cmd("fsck.fat")
        .unwrap()
        .arg("-n")
        .arg(&esp)
        .output_all()
        .unwrap();
    assert!(
        !out.contains("differences") && !out.contains("Free cluster"),
        "{out}"
    );
    for (n, label) in [(5, "OEM"), (6, "ROOT")] {
        let (off, len) = partition(&b.image, n);
        let img = dir.path().join(format!("{label}.img"));
        extract(&b.image, off, len, &img);
        let out = tools
            .cmd("e2fsck")
            .unwrap()
            .args(["-f", "-n"])
            .arg(&img)
            .output_all()
            .unwrap_or_else(|e| panic!("e2fsck -fn on {label}: {e:#}"));
        let summary = out
            .lines()
            .find(|l| l.contains(" files ("))
            .unwrap_or_default();
        eprintln!("e2fsck -fn {label}: {summary}");
        let _ = fs::remove_file(&img);
    }

    // Issue #10's budget for /usr (the test profile, with rkt's and
    // flannel's small stand-ins), verity tree included: craton build's
    // "/usr:" line, which built() read.
    assert!(
        b.usr_total <= 250_000_000,
        "/usr is {} bytes with its verity tree",
        b.usr_total
    );
    let (off, _) = partition(&b.image, 3);
    let usr = dir.path().join("usr-a.img");
    extract(&b.image, off, b.usr_total, &usr);
    let verify = |hash: &str| {
        tools
            .cmd("veritysetup")
            .unwrap()
            .arg("verify")
            .arg(format!("--hash-offset={}", b.hash_offset))
            .arg(&usr)
            .arg(&usr)
            .arg(hash)
            .output_all()
    };
    let out = verify(&b.root_hash).unwrap_or_else(|e| panic!("veritysetup verify: {e:#}"));
    eprintln!("veritysetup verify: ok {out}");
    // And it is not blind: another root hash is refused.
    let err = verify(&"0".repeat(64));
    assert!(err.is_err(), "veritysetup accepted a wrong root hash");

    // Nothing a machine makes for itself is in /usr: no SSH host key (of
    // any type, public or private) and no private key at all, read from
    // the erofs itself (fsck.erofs --extract), with grep.
    {
        let files = dir.path().join("usr-files");
        tools
            .cmd("fsck.erofs")
            .unwrap()
            .arg(format!("--extract={}", files.display()))
            .arg(&usr)
            .run()
            .unwrap();
        assert!(files.join("share/factory/etc/ssh/sshd_config").is_file());
        // The build's public signing key, for the on-host updater: exactly
        // the public key, under its id.
        let public = craton::sign::PublicKey::read(&b.public_key).unwrap();
        let installed = files.join(format!("share/craton/keys/{}.pem", public.id().unwrap()));
        assert_eq!(
            fs::read_to_string(&installed).unwrap(),
            fs::read_to_string(&b.public_key).unwrap()
        );
        // profiles/base.toml narrows the kernel modules: the folders it
        // leaves out are gone, the rest is there for metal, and the cores
        // that kept drivers link against stay (the build checked every
        // kept module's depends=, rootfs::modules).
        let versions: Vec<_> = fs::read_dir(files.join("lib/modules"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert_eq!(versions.len(), 1, "{versions:?}");
        let kernel = versions[0].join("kernel");
        for gone in [
            "sound",
            "net/wireless",
            "net/bluetooth",
            "drivers/net/wireless",
            "drivers/staging",
        ] {
            // The filter leaves the files out; a folder may stay, empty.
            let found = Command::new("find")
                .arg(kernel.join(gone))
                .args(["-type", "f"])
                .output()
                .unwrap();
            assert_eq!(
                String::from_utf8_lossy(&found.stdout),
                "",
                "{gone}'s modules are in /usr"
            );
        }
        for kept in [
            "drivers/net/ethernet/intel/e1000e",
            "drivers/nvme/host",
            "drivers/scsi/megaraid",
            "drivers/gpu/drm/ast",
            "drivers/media/cec/core",
            "drivers/iio/industrialio.ko.xz",
        ] {
            assert!(kernel.join(kept).exists(), "{kept} is not in /usr");
        }
        let found = Command::new("find")
            .arg(&files)
            .args(["-name", "ssh_host_*"])
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&found.stdout),
            "",
            "SSH host keys in /usr"
        );
        let keys = Command::new("grep")
            .args(["-rlsI", "--", "PRIVATE KEY-----"])
            .arg(&files)
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&keys.stdout),
            "",
            "private keys in /usr"
        );
        assert_eq!(
            fs::read_link(files.join("share/factory/var/lib/dbus/machine-id")).unwrap(),
            Path::new("/etc/machine-id")
        );
        assert_eq!(
            fs::read(files.join("share/factory/etc/machine-id")).unwrap(),
            b""
        );
    }
}

/// `[disk] usr-b = "copy"`: USR-B holds the same /usr image as USR-A, the
/// ESP has slot B's files with B's PARTUUID, and grubenv marks B good.
#[test]
fn usr_b_copy_fills_slot_b() {
    let b = built();
    let dir = tempfile::tempdir_in(&b.dir).unwrap();
    let profile = dir.path().join("copy.toml");
    let parent = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/container-host-test.toml");
    fs::write(
        &profile,
        format!(
            "schema = 1\nextends = [{:?}]\n\n[image]\nname = \"usr-b-copy\"\n\n[disk]\nusr-b = \"copy\"\n",
            parent.display().to_string()
        ),
    )
    .unwrap();
    let out = dir.path().join("out");
    let run = support::craton_real(
        &support_cache(),
        dir.path(),
        &[
            "build",
            &profile.to_string_lossy(),
            "--lock",
            &dir.path().join("copy.lock").to_string_lossy(),
            "--platform",
            "metal",
            "--out",
            &out.to_string_lossy(),
            "--json",
        ],
    );
    run.ok();
    // --json: one object that python's json.tool reads, naming the root
    // hash the log printed, the image and every stage.
    let json = run.stdout();
    let mut tool = Command::new("python3")
        .args(["-m", "json.tool"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut tool.stdin.take().unwrap(), json.as_bytes()).unwrap();
    let checked = tool.wait_with_output().unwrap();
    assert!(checked.status.success(), "json.tool refused:\n{json}");
    let facts: serde_json::Value = serde_json::from_str(&json).unwrap();
    let root_hash = facts["root_hash"].as_str().unwrap().to_owned();
    assert!(
        run.stderr().contains(&format!("root hash {root_hash}")),
        "the log does not name {root_hash}"
    );
    let image = out.join("usr-b-copy-metal.raw");
    let files: Vec<(&str, &str)> = facts["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["path"].as_str().unwrap(), f["kind"].as_str().unwrap()))
        .collect();
    assert!(
        files.contains(&(image.to_str().unwrap(), "disk-raw")),
        "{files:?}"
    );
    assert_eq!(facts["platforms"], serde_json::json!(["metal"]));
    let stages: Vec<&str> = facts["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["stage"].as_str().unwrap())
        .collect();
    assert_eq!(
        stages,
        [
            "profile",
            "resolve",
            "fetch",
            "provision",
            "tools",
            "rootfs",
            "keys",
            "updater",
            "usr",
            "initrd",
            "boot",
            "disk",
            "outputs",
            "payload",
            "sbom",
            "manifest"
        ]
    );
    let total = facts["usr_total_size"].as_u64().unwrap();
    let (a, _) = partition(&image, 3);
    let (bb, _) = partition(&image, 4);
    let f = fs::File::open(&image).unwrap();
    let (mut x, mut y) = (vec![0u8; 1 << 20], vec![0u8; 1 << 20]);
    let mut done = 0;
    while done < total {
        let n = x.len().min((total - done) as usize);
        f.read_exact_at(&mut x[..n], a + done).unwrap();
        f.read_exact_at(&mut y[..n], bb + done).unwrap();
        assert!(x[..n] == y[..n], "USR-B differs from USR-A at byte {done}");
        done += n as u64;
    }
    let env = read_grubenv(&image);
    assert!(env.contains(&("B_OK".into(), "1".into())), "{env:?}");
    let slot_b = esp_file(&image, "/craton/b/slot.cfg");
    let slot_b = String::from_utf8_lossy(&slot_b);
    let b_uuid = Command::new("sgdisk")
        .arg("-i4")
        .arg(&image)
        .output()
        .unwrap();
    let b_uuid = String::from_utf8_lossy(&b_uuid.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("Partition unique GUID: "))
        .unwrap()
        .to_lowercase();
    // slot.cfg describes the /usr image, not the disk: GRUB reads USR-B's
    // PARTUUID from the disk it boots (grubcfg).
    assert!(!slot_b.contains("partuuid"), "{slot_b}");
    assert_eq!(facts["partuuids"]["USR-B"].as_str(), Some(b_uuid.as_str()));
    assert!(slot_b.contains(&format!("set craton_usrhash={root_hash}\n")));
}

/// `craton slot` edits a copy of the image's A/B state offline, through the
/// on-host state code, and changes nothing but the environment block: the
/// disk outside the ESP is the image's, and `inspect` agrees with `slot
/// show`. A qcow2 is read, never changed.
#[test]
fn slot_edits_the_state_offline() {
    let b = built();
    let dir = tempfile::tempdir_in(work_dir()).unwrap();
    let disk = dir.path().join("disk.raw");
    copy_sparse(&b.image, &disk);
    let slot = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_craton"))
            .arg("slot")
            .arg(&disk)
            .args(args)
            .arg("--json")
            .output()
            .unwrap();
        assert!(out.status.success(), "craton slot {args:?}: {out:?}");
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let health = |i: usize| v["slots"][i]["health"].as_str().unwrap().to_owned();
        (
            health(0),
            health(1),
            v["next_boot"]["slot"].as_str().unwrap().to_owned(),
        )
    };
    let s = |a: &str, b: &str, n: &str| (a.to_owned(), b.to_owned(), n.to_owned());
    assert_eq!(slot(&["show"]), s("good", "unusable", "A"));
    assert_eq!(slot(&["mark-good", "b"]), s("good", "good", "A"));
    assert_eq!(slot(&["set-order", "b"]), s("good", "good", "B"));
    // Bad: not good and marked tried, so never taken for pending.
    assert_eq!(slot(&["mark-bad", "B"]), s("good", "tried", "A"));
    assert_eq!(slot(&["mark-bad", "a"]), s("tried", "tried", "A"));
    // The block GRUB reads says so.
    let env = read_grubenv(&disk);
    let get = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    assert_eq!(
        (get("ORDER"), get("A_OK"), get("B_OK")),
        (Some("B A"), Some("0"), Some("0"))
    );
    assert_eq!(get("DISK_ID"), Some("image"));
    // Nothing outside the ESP changed.
    let (esp_start, esp_len) = partition(&disk, 1);
    let len = fs::metadata(&b.image).unwrap().len();
    let (x, y) = (
        fs::File::open(&b.image).unwrap(),
        fs::File::open(&disk).unwrap(),
    );
    let (mut p, mut q) = (vec![0u8; 4 << 20], vec![0u8; 4 << 20]);
    for (from, to) in [(0, esp_start), (esp_start + esp_len, len)] {
        let mut at = from;
        while at < to {
            let n = p.len().min((to - at) as usize);
            x.read_exact_at(&mut p[..n], at).unwrap();
            y.read_exact_at(&mut q[..n], at).unwrap();
            assert!(p[..n] == q[..n], "bytes at {at} outside the ESP changed");
            at += n as u64;
        }
    }
    // A qcow2 is refused for a change, named, with exit 2.
    let qcow2 = b.out_dir.join("container-host-test-qemu.qcow2");
    let out = Command::new(env!("CARGO_BIN_EXE_craton"))
        .arg("slot")
        .arg(&qcow2)
        .args(["mark-good", "b"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("a qcow2 image is not changed in place"));
}
