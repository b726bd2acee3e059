//! Issue #12's signed manifest, on the image main.rs builds (signed with a
//! key from `craton keygen`): OpenSSL accepts manifest.json.sig over the
//! exact bytes of manifest.json, the manifest's facts match the image
//! (sha256sum, sgdisk, the build's own output), the update payload is
//! USR-A's /usr image and slot A's kernel and initrd, `craton verify`
//! passes, and
//! on a copy of the output folder it names each change: a flipped byte in
//! USR-A, a changed PARTUUID, an edited manifest, another key.

use std::fs;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::process::{Command, Output};

use super::*;

fn verify(dir: &Path, key: &Path, json: bool) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_craton"));
    cmd.arg("verify").arg(dir).arg("--pubkey").arg(key);
    if json {
        cmd.arg("--json");
    }
    cmd.output().unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn signed_manifest_verifies_and_names_each_mismatch() {
    let b = built();
    let manifest = b.out_dir.join("manifest.json");
    let sig = b.out_dir.join("manifest.json.sig");
    let ok = Command::new("openssl")
        .args(["pkeyutl", "-verify", "-pubin", "-inkey"])
        .arg(&b.public_key)
        .arg("-rawin")
        .arg("-in")
        .arg(&manifest)
        .arg("-sigfile")
        .arg(&sig)
        .output()
        .unwrap();
    assert!(ok.status.success(), "openssl: {ok:?}");

    // The manifest's facts, checked with other tools.
    let m: serde_json::Value = serde_json::from_slice(&fs::read(&manifest).unwrap()).unwrap();
    assert_eq!(m["schema"], 1);
    assert_eq!(m["name"], "container-host-test");
    assert_eq!(m["build_time"], "2025-11-28T00:00:00Z");
    assert_eq!(m["source_date_epoch"], EPOCH.parse::<u64>().unwrap());
    let image_name = b.image.file_name().unwrap().to_str().unwrap();
    let out = m["outputs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["file"] == image_name)
        .unwrap_or_else(|| panic!("no {image_name} in {m}"));
    assert_eq!(
        (out["kind"].as_str(), out["platform"].as_str()),
        (Some("disk-raw"), Some("metal"))
    );
    let sum = Command::new("sha256sum").arg(&b.image).output().unwrap();
    assert_eq!(
        out["sha256"].as_str().unwrap(),
        stdout(&sum).split_whitespace().next().unwrap()
    );
    let meta = fs::metadata(&b.image).unwrap();
    assert_eq!(out["size"], meta.len());
    // A release file: readable by all, like the manifest.
    use std::os::unix::fs::PermissionsExt as _;
    assert_eq!(meta.permissions().mode() & 0o777, 0o644);
    assert_eq!(m["usr"]["root_hash"].as_str(), Some(b.root_hash.as_str()));
    assert_eq!(m["usr"]["hash_offset"], b.hash_offset);
    let ids = gpt_ids(&b.image);
    let disks = m["disks"].as_array().unwrap();
    let platforms: Vec<&str> = disks
        .iter()
        .map(|d| d["platform"].as_str().unwrap())
        .collect();
    assert_eq!(platforms, ["qemu", "gce", "metal"]);
    assert_eq!(m["platforms"], serde_json::json!(["qemu", "gce", "metal"]));
    let metal = &disks[2];
    assert_eq!(metal["guid"].as_str(), Some(ids.disk.as_str()));
    let parts = metal["partitions"].as_array().unwrap();
    assert_eq!(parts.len(), 6);
    for (p, uuid) in parts.iter().zip(&ids.parts) {
        assert_eq!(p["partuuid"].as_str(), Some(uuid.as_str()), "{p}");
    }
    assert_eq!(parts[2]["label"], "USR-A");
    // The platforms' disks differ in the OEM partition alone, and the gce
    // disk is a whole number of GiB; gcloud's settings are in the manifest.
    for d in disks {
        for (n, (p, q)) in d["partitions"]
            .as_array()
            .unwrap()
            .iter()
            .zip(parts)
            .enumerate()
        {
            if p["label"] == "OEM" {
                assert_eq!(p["first_lba"], q["first_lba"]);
            } else {
                assert_eq!(p, q, "partition {} of the {} disk", n + 1, d["platform"]);
            }
        }
    }
    let oem_sums: std::collections::BTreeSet<&str> = disks
        .iter()
        .map(|d| d["partitions"][4]["sha256"].as_str().unwrap())
        .collect();
    assert_eq!(oem_sums.len(), 3, "three platforms, three OEM partitions");
    assert_eq!(
        disks[1]["size"].as_u64().unwrap() % (1 << 30),
        0,
        "{}",
        disks[1]
    );
    assert_eq!(
        fs::metadata(&b.gce_raw).unwrap().len(),
        disks[1]["size"].as_u64().unwrap()
    );
    // Google's import precheck reads boot.img's "GRUB" string and the MBR
    // signature of disk.raw.
    let mut mbr = [0u8; 512];
    fs::File::open(&b.gce_raw)
        .unwrap()
        .read_exact_at(&mut mbr, 0)
        .unwrap();
    assert!(mbr.windows(4).any(|w| w == b"GRUB"), "no GRUB in the MBR");
    assert_eq!(mbr[510..], [0x55, 0xAA]);
    // The tarball holds disk.raw alone, as GNU tar lists it.
    let listed = Command::new("tar")
        .arg("-tzf")
        .arg(b.out_dir.join("container-host-test-gce.tar.gz"))
        .output()
        .unwrap();
    assert_eq!(stdout(&listed), "disk.raw\n");
    assert_eq!(
        m["gce"],
        serde_json::json!({
            "file": "container-host-test-gce.tar.gz",
            "guest_os_features": ["UEFI_COMPATIBLE", "VIRTIO_SCSI_MULTIQUEUE", "GVNIC"],
            "architecture": "X86_64"
        })
    );

    // The update payload: USR-A's /usr image with its tree, and slot A's
    // kernel and initrd, byte for byte, each with its digest.
    let kinds: Vec<(&str, &str)> = m["outputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| (o["file"].as_str().unwrap(), o["kind"].as_str().unwrap()))
        .collect();
    assert_eq!(
        kinds,
        [
            ("container-host-test-qemu.qcow2", "qcow2"),
            ("container-host-test-gce.tar.gz", "gce-tar-gz"),
            ("container-host-test-metal.raw", "disk-raw"),
            ("container-host-test-metal.raw.zst", "disk-raw-zst"),
            ("container-host-test-usr.img", "usr-verity"),
            ("container-host-test-vmlinuz", "kernel"),
            ("container-host-test-initrd", "initrd"),
            ("sbom.spdx.json", "sbom-spdx-json"),
        ]
    );
    check_sbom(b);
    let payload_usr = fs::read(b.out_dir.join("container-host-test-usr.img")).unwrap();
    assert_eq!(payload_usr.len() as u64, b.usr_total);
    let mut in_image = vec![0u8; payload_usr.len()];
    let (usr_a, _) = partition(&b.image, 3);
    fs::File::open(&b.image)
        .unwrap()
        .read_exact_at(&mut in_image, usr_a)
        .unwrap();
    assert!(payload_usr == in_image, "the payload's /usr is not USR-A's");
    for (file, on_esp) in [
        ("container-host-test-vmlinuz", "/craton/a/vmlinuz"),
        ("container-host-test-initrd", "/craton/a/initrd"),
    ] {
        assert!(
            fs::read(b.out_dir.join(file)).unwrap() == esp_file(&b.image, on_esp),
            "{file} is not the ESP's {on_esp}"
        );
    }

    // craton inspect reads the same facts from the image itself.
    let seen = inspect_json(&b.image);
    assert_eq!(seen["disk_guid"], metal["guid"]);
    assert_eq!(seen["grubenv"]["DISK_ID"], "image");
    let a = &seen["slots"][0];
    assert_eq!(
        (a["slot"].as_str(), a["ok"].as_bool(), a["tried"].as_bool()),
        (Some("A"), Some(true), Some(false))
    );
    assert_eq!(a["kernel"], m["kernel_version"]);
    assert_eq!(a["root_hash"], m["usr"]["root_hash"]);
    assert_eq!(a["hash_offset"], m["usr"]["hash_offset"]);
    assert_eq!(a["version"], m["version"]);
    for (got, want) in seen["partitions"].as_array().unwrap().iter().zip(parts) {
        assert_eq!(
            (&got["partuuid"], &got["first_lba"]),
            (&want["partuuid"], &want["first_lba"])
        );
    }

    // ... and from the qcow2 output, through craton's qcow2 reader: the
    // same table, grubenv and slots.
    let qcow2 = b.out_dir.join("container-host-test-qemu.qcow2");
    let mut from_qcow2 = inspect_json(&qcow2);
    from_qcow2["image"] = seen["image"].clone();
    assert_eq!(from_qcow2, seen);

    let good = verify(&b.out_dir, &b.public_key, false);
    assert!(good.status.success(), "{}", stdout(&good));
    assert!(
        stdout(&good).contains("USR-A verity tree ("),
        "{}",
        stdout(&good)
    );

    // A copy of the folder to change (sparse: the image's holes stay holes).
    let copy = b.dir.join("tampered");
    let _ = fs::remove_dir_all(&copy);
    fs::create_dir_all(&copy).unwrap();
    for name in [
        "manifest.json",
        "manifest.json.sig",
        "container-host-test-usr.img",
        "container-host-test-vmlinuz",
        "container-host-test-initrd",
    ] {
        fs::copy(b.out_dir.join(name), copy.join(name)).unwrap();
    }
    // The other platforms' files stay as they are: linked, not copied.
    for name in [
        "container-host-test-qemu.qcow2",
        "container-host-test-gce.tar.gz",
        "container-host-test-metal.raw.zst",
        "sbom.spdx.json",
    ] {
        fs::hard_link(b.out_dir.join(name), copy.join(name)).unwrap();
    }
    let image = copy.join(b.image.file_name().unwrap());
    copy_sparse(&b.image, &image);
    let mismatches = |key: &Path| -> (i32, Vec<String>) {
        let o = verify(&copy, key, true);
        let v: serde_json::Value =
            serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", stdout(&o)));
        assert_eq!(v["ok"], o.status.success());
        let list = v["mismatches"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_str().unwrap().to_owned())
            .collect();
        (o.status.code().unwrap(), list)
    };
    let has = |list: &[String], want: &str| list.iter().any(|l| l.contains(want));

    // One byte of USR-A's filesystem: the image, the partition, the
    // verity root and the stored tree say so; nothing else does.
    let (usr_a, _) = partition(&image, 3);
    let f = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&image)
        .unwrap();
    let mut byte = [0u8];
    f.read_exact_at(&mut byte, usr_a + (1 << 20)).unwrap();
    f.write_all_at(&[byte[0] ^ 0x20], usr_a + (1 << 20))
        .unwrap();
    let (code, list) = mismatches(&b.public_key);
    assert_eq!(code, 1, "{list:?}");
    assert!(has(&list, "partition 3 (USR-A) sha256"), "{list:?}");
    assert!(
        has(&list, "USR-A's data gives verity root hash"),
        "{list:?}"
    );
    assert!(has(&list, ": sha256 "), "{list:?}");
    assert!(
        has(&list, "stored verity tree is not the one its data gives"),
        "{list:?}"
    );
    assert_eq!(list.len(), 4, "{list:?}");
    f.write_all_at(&byte, usr_a + (1 << 20)).unwrap();
    drop(f);

    // The same byte in the payload's /usr image.
    let payload = copy.join("container-host-test-usr.img");
    let p = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&payload)
        .unwrap();
    p.write_all_at(&[byte[0] ^ 0x20], 1 << 20).unwrap();
    let (code, list) = mismatches(&b.public_key);
    assert_eq!(code, 1, "{list:?}");
    assert!(
        has(&list, "container-host-test-usr.img: sha256"),
        "{list:?}"
    );
    assert!(
        has(
            &list,
            "container-host-test-usr.img's data gives verity root hash"
        ),
        "{list:?}"
    );
    p.write_all_at(&byte, 1 << 20).unwrap();
    drop(p);

    // Another PARTUUID for USR-B (sgdisk rewrites both tables).
    let st = Command::new("sgdisk")
        .args(["-u", "4:6e2a0f4b-1c3d-4e5f-8a9b-0c1d2e3f4a5b"])
        .arg(&image)
        .output()
        .unwrap();
    assert!(st.status.success(), "{st:?}");
    let (code, list) = mismatches(&b.public_key);
    assert_eq!(code, 1);
    assert!(
        has(&list, "partition 4: (label, type, PARTUUID"),
        "{list:?}"
    );
    assert!(
        has(&list, "6e2a0f4b-1c3d-4e5f-8a9b-0c1d2e3f4a5b"),
        "{list:?}"
    );
    copy_sparse(&b.image, &image);
    assert_eq!(mismatches(&b.public_key), (0, vec![]));

    // The manifest edited, or signed by another key.
    let text = fs::read_to_string(copy.join("manifest.json")).unwrap();
    fs::write(
        copy.join("manifest.json"),
        text.replace("\"0.1.0\"", "\"0.1.1\""),
    )
    .unwrap();
    let (code, list) = mismatches(&b.public_key);
    assert_eq!(code, 1);
    assert_eq!(
        list,
        ["manifest.json.sig: not a signature of manifest.json by the given key"]
    );
    fs::write(copy.join("manifest.json"), &text).unwrap();
    let other = b.dir.join("other-key");
    let made = Command::new(env!("CARGO_BIN_EXE_craton"))
        .args(["keygen", "--out"])
        .arg(&other)
        .output()
        .unwrap();
    assert!(made.status.success());
    let (code, list) = mismatches(&other.join("craton.pub.pem"));
    assert_eq!(code, 1);
    assert!(has(&list, "not a signature"), "{list:?}");

    // Bad input: a key that is not one, a folder that is not one.
    let bad = verify(&copy, &copy.join("manifest.json"), false);
    assert_eq!(bad.status.code(), Some(2), "{bad:?}");
    assert!(String::from_utf8_lossy(&bad.stderr).contains("not an Ed25519 public key"));
    let bad = verify(&copy.join("nothing"), &b.public_key, false);
    assert_eq!(bad.status.code(), Some(2), "{bad:?}");
    fs::remove_dir_all(&copy).unwrap();
}

/// sbom.spdx.json: SPDX 2.3, every .deb of the lock (image, initrd, tools)
/// and every artifact with its sha256, the image CONTAINS its packages, no
/// mirror host; and the SPDX project's validator accepts it (.ci/run
/// installs pyspdxtools; elsewhere the check says it was skipped).
fn check_sbom(b: &Built) {
    let path = b.out_dir.join("sbom.spdx.json");
    let doc: serde_json::Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
    assert_eq!(doc["spdxVersion"], "SPDX-2.3");
    assert_eq!(doc["dataLicense"], "CC0-1.0");
    let lock = craton::lock::Lock::read(&b.dir.join("test.lock")).unwrap();
    let packages = doc["packages"].as_array().unwrap();
    let by_sum = |sha: &str| {
        packages.iter().find(|p| {
            p["checksums"]
                .as_array()
                .is_some_and(|c| c.iter().any(|c| c["checksumValue"] == sha))
        })
    };
    let relationships = doc["relationships"].as_array().unwrap();
    let contains = |from: &str, to: &serde_json::Value| {
        relationships.iter().any(|r| {
            r["spdxElementId"] == from
                && r["relationshipType"] == "CONTAINS"
                && r["relatedSpdxElement"] == *to
        })
    };
    for (set, from) in [
        (&lock.packages, "SPDXRef-image"),
        (&lock.initrd, "SPDXRef-initrd"),
        (&lock.tools, "SPDXRef-tools"),
    ] {
        for p in set {
            let found = by_sum(&p.sha256.to_hex())
                .unwrap_or_else(|| panic!("{} {} is not in the SBOM", p.name, p.version));
            assert_eq!(
                (found["name"].as_str(), found["versionInfo"].as_str()),
                (Some(p.name.as_str()), Some(p.version.as_str()))
            );
            assert_eq!(found["packageFileName"].as_str(), Some(p.filename.as_str()));
            assert!(
                found["supplier"].as_str().is_some_and(|s| !s.is_empty()),
                "{found}"
            );
            assert!(
                contains(from, &found["SPDXID"]),
                "{from} CONTAINS {}",
                p.name
            );
        }
    }
    for a in &lock.artifacts {
        let found = by_sum(&a.sha256.to_hex())
            .unwrap_or_else(|| panic!("artifact {} is not in the SBOM", a.name));
        assert!(contains("SPDXRef-image", &found["SPDXID"]), "{}", a.name);
    }
    // The kernel's license comes from its machine-readable copyright file.
    let kernel = packages
        .iter()
        .find(|p| {
            p["name"]
                .as_str()
                .is_some_and(|n| n.starts_with("linux-image-") && n != "linux-image-amd64")
        })
        .unwrap();
    assert!(
        kernel["licenseDeclared"]
            .as_str()
            .is_some_and(|l| l.contains("GPL-2.0")),
        "{kernel}"
    );
    let text = fs::read_to_string(&path).unwrap();
    // Pool paths are bare: no URL leads to a mirror's pool.
    for line in text.lines().filter(|l| l.contains("pool/")) {
        assert!(!line.contains("://"), "a mirror in the SBOM: {line}");
    }
    let validator = std::env::var_os("CRATON_PYSPDXTOOLS")
        .map(std::path::PathBuf::from)
        .or_else(|| Some(Path::new("/var/tmp/spdxvenv/bin/pyspdxtools").to_path_buf()))
        .filter(|p| p.is_file());
    match validator {
        Some(v) => {
            let out = Command::new(&v).arg("-i").arg(&path).output().unwrap();
            assert!(out.status.success(), "pyspdxtools: {out:?}");
            eprintln!("pyspdxtools accepts {}", path.display());
        }
        None => {
            assert!(std::env::var_os("CRATON_PYSPDXTOOLS").is_none());
            eprintln!(
                "note: pyspdxtools is not installed (.ci/run installs it); the SBOM was not validated"
            );
        }
    }
}
