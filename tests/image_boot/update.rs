//! Issue #13's acceptance: A/B updates from a signed channel, with the
//! machine coming back by itself when an update fails, in one QEMU run
//! under TCG (UEFI, ssh forwarded, guest reboots let through).
//!
//! Version 1 is this binary's image (main.rs, `built()`); version 2 is
//! built here from tests/update-v2.toml (the same profile, version 0.2.0)
//! and a broken version 2 from tests/update-v2-unhealthy.toml (an enabled
//! unit that fails), both signed with version 1's key and a day later
//! (SOURCE_DATE_EPOCH). Channels are output folders served by a loopback
//! HTTP server, which the guest reaches at 10.0.2.2 (QEMU's user network
//! maps the host's 127.0.0.1 there). Variants the test makes from version
//! 2's folder, re-signed with the library: a flipped signature, one by
//! another key, a manifest older than version 1's, a version that is not
//! newer, and one whose initrd is 512 zero bytes (no init: the kernel
//! panics).
//!
//! Boots (one `craton qemu` run; each "A"/"B" a full boot reached over ssh):
//! 1. A (after the new disk's identity reboot): the four refusals write
//!    nothing (USR-B's first and last MiB and the A/B state unchanged);
//!    `update --check`; `craton update` killed (SIGKILL) halfway through
//!    the /usr write and again just before the grubenv change.
//! 2. A again, state unchanged. Install version 2, corrupt one block of the
//!    written USR-B (as kola's cl.update.badverity does); reboot: B's trial
//!    fails verity in the initrd, which reboots:
//! 3. A: status shows B tried and not confirmed. Install the unhealthy
//!    version 2; reboot: B boots, its health check fails and reboots:
//! 4. A: status shows the failed check and its unit. Install version 2
//!    with the init-less initrd; reboot: the kernel panics and reboots:
//! 5. A. Install version 2 from the channel; reboot:
//! 6. B, confirmed after the grace period; reboot:
//! 7. B again, both slots and versions in `craton status`; `update
//!    --check` has nothing newer; `craton rollback` makes A the next boot.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use craton::manifest::{MANIFEST_FILE, Manifest, SIGNATURE_FILE};
use craton::sign::PrivateKey;

use super::guest::{Guest, free_port, one_guest, qemu_command, ssh_keygen, ssh_run};
use super::*;

/// Version 2's SOURCE_DATE_EPOCH: a day after version 1's.
const V2_EPOCH: u64 = 1764288000 + 86_400;
/// How the guest reaches the host's loopback (QEMU user networking).
const HOST_FROM_GUEST: &str = "10.0.2.2";
/// Guest reboots in the run: the identity reboot and nine more.
const REBOOTS: u32 = 10;

/// `craton build` of `profile` into `out`, signed with version 1's key.
fn build_version(profile: &str, out: &Path) {
    let b = built();
    let lock = out.with_extension("lock");
    // The same packages as version 1: its lock serves.
    fs::copy(b.dir.join("test.lock"), &lock).unwrap();
    let run = Command::new(env!("CARGO_BIN_EXE_craton"))
        .args(["build", profile, "--platform", "qemu", "--lock"])
        .arg(&lock)
        .arg("--key")
        .arg(b.dir.join("keys/craton.key.pem"))
        .arg("--out")
        .arg(out)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("CI", "true")
        .env("SOURCE_DATE_EPOCH", V2_EPOCH.to_string())
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "craton build {profile}:\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
}

/// A channel folder with `from`'s payload files (links) and a manifest
/// changed by `edit`, signed by `key`.
fn resign(from: &Path, to: &Path, key: &PrivateKey, edit: impl FnOnce(&mut Manifest, &Path)) {
    fs::create_dir_all(to).unwrap();
    let mut m = Manifest::from_bytes(&fs::read(from.join(MANIFEST_FILE)).unwrap()).unwrap();
    for o in &m.outputs {
        let link = to.join(&o.file);
        let _ = fs::remove_file(&link);
        std::os::unix::fs::symlink(from.join(&o.file), &link).unwrap();
    }
    edit(&mut m, to);
    let bytes = serde_json::to_vec(&m).unwrap();
    fs::write(to.join(MANIFEST_FILE), &bytes).unwrap();
    fs::write(to.join(SIGNATURE_FILE), key.sign(&bytes)).unwrap();
}

/// The channels, below one served folder.
struct Channels {
    dir: PathBuf,
    /// Base URL as the guest sees it, without a trailing slash.
    guest_url: String,
}

impl Channels {
    fn url(&self, name: &str) -> String {
        format!("{}/{name}/", self.guest_url)
    }
}

fn channels(work: &Path) -> Channels {
    let b = built();
    let dir = work.join("channels");
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    let v2 = dir.join("v2");
    build_version("tests/update-v2.toml", &v2);
    build_version("tests/update-v2-unhealthy.toml", &dir.join("unhealthy"));
    let key = PrivateKey::read(&b.dir.join("keys/craton.key.pem")).unwrap();
    // A flipped bit in the signature.
    let badsig = dir.join("badsig");
    resign(&v2, &badsig, &key, |_, _| {});
    let mut sig = fs::read(badsig.join(SIGNATURE_FILE)).unwrap();
    sig[10] ^= 1;
    fs::write(badsig.join(SIGNATURE_FILE), sig).unwrap();
    // Signed by a key the image does not trust.
    let other = tempfile::tempdir().unwrap();
    let (other_key, _) = craton::sign::keygen(&other.path().join("k")).unwrap();
    resign(
        &v2,
        &dir.join("otherkey"),
        &PrivateKey::read(&other_key).unwrap(),
        |_, _| {},
    );
    // Older than the booted build's manifest.
    resign(&v2, &dir.join("old"), &key, |m, _| {
        m.source_date_epoch = EPOCH.parse::<u64>().unwrap() - 1;
    });
    // Not newer than the booted version.
    resign(&v2, &dir.join("notnewer"), &key, |m, _| {
        m.version = "0.1.0".into();
    });
    // An initrd without init: 512 zero bytes (an empty initramfs).
    resign(&v2, &dir.join("noinit"), &key, |m, to| {
        let zeros = vec![0u8; 512];
        let o = m
            .outputs
            .iter_mut()
            .find(|o| o.kind == craton::payload::KIND_INITRD)
            .unwrap();
        let path = to.join(&o.file);
        fs::remove_file(&path).unwrap();
        fs::write(&path, &zeros).unwrap();
        o.size = 512;
        o.sha256 = craton::digest::Sha256::of(&zeros).to_hex();
    });
    let url = support::serve(&dir);
    let port = url.rsplit(':').next().unwrap().to_owned();
    Channels {
        dir,
        guest_url: format!("http://{HOST_FROM_GUEST}:{port}"),
    }
}

/// The A/B part of `craton status --json`: (slot, health) of A and B and
/// the next boot.
fn ab(s: &serde_json::Value) -> (String, String, String) {
    let health = |i: usize| s["slots"][i]["health"].as_str().unwrap().to_owned();
    (
        health(0),
        health(1),
        s["next_boot"]["slot"].as_str().unwrap().to_owned(),
    )
}

/// sha256 of USR-B's first and last MiB, in the guest.
const USR_B_ENDS: &str = "d=/dev/disk/by-partlabel/USR-B; n=$(($(blockdev --getsize64 $d) / 1048576)); \
    { dd if=$d bs=1M count=1 status=none; dd if=$d bs=1M skip=$((n - 1)) count=1 status=none; } | sha256sum";

#[test]
fn updates_roll_forward_and_back_by_themselves() {
    let b = built();
    let work = work_dir().join("update");
    let _ = fs::remove_dir_all(&work);
    fs::create_dir_all(&work).unwrap();
    let t0 = Instant::now();
    let ch = channels(&work);
    eprintln!(
        "update test: version 2 and its variants built in {:.0}s",
        t0.elapsed().as_secs_f64()
    );
    let v2_manifest =
        Manifest::from_bytes(&fs::read(ch.dir.join("v2").join(MANIFEST_FILE)).unwrap()).unwrap();
    let disk = work.join("disk.raw");
    copy_sparse(&b.image, &disk);
    let key = work.join("id");
    ssh_keygen(&key, "craton-update-test");

    let _one = one_guest();
    let port = free_port();
    let log = work.join("serial.log");
    let mut cmd = qemu_command(&disk, "uefi", &log, &[]);
    cmd.arg("--ssh-key")
        .arg(key.with_extension("pub"))
        .args(["--ssh-port", &port.to_string()])
        .args(["--reboots", &REBOOTS.to_string()])
        .args(["--timeout", "5400"])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut g = Guest::spawn(cmd, log, key, port);

    // 1: version 1 in slot A.
    assert_eq!(g.next_boot("boot 1 (version 1)", "a"), "a");
    let s = g.status();
    assert_eq!(s["booted"]["version"], "0.1.0", "{s}");
    assert_eq!(
        ab(&s),
        ("good".into(), "unusable".into(), "A".into()),
        "{s}"
    );
    let ends = g.sh(USR_B_ENDS);
    for (name, why) in [
        ("badsig", "not by a key this image trusts"),
        ("otherkey", "not by a key this image trusts"),
        ("old", "anti-rollback"),
        (
            "notnewer",
            "version 0.1.0 is not newer than the booted 0.1.0",
        ),
    ] {
        let (code, out) = g.sh_status(&format!("craton update {}", ch.url(name)));
        assert_eq!(code, 2, "{name}: {out}");
        assert!(out.contains(why), "{name}: {out}");
        assert!(out.contains("nothing was written"), "{name}: {out}");
        assert_eq!(g.sh(USR_B_ENDS), ends, "{name} wrote to USR-B");
        assert_eq!(ab(&g.status()), ab(&s), "{name} changed the A/B state");
    }
    let check = g.sh(&format!("craton update --check {}", ch.url("v2")));
    assert!(
        check.contains("update available: 0.2.0 (booted 0.1.0 in slot A)"),
        "{check}"
    );
    // Killed while writing /usr, then just before the grubenv change.
    let env_before =
        g.sh("cat /proc/cmdline >/dev/null; craton status --json | grep -A12 '\"grubenv\"'");
    for point in ["payload", "grubenv"] {
        let out = g.sh(&format!(
            "CRATON_UPDATE_PAUSE={point} craton update {} >/run/u.log 2>&1 & pid=$!; \
             while ! grep -q 'paused at {point}' /run/u.log; do \
               kill -0 $pid 2>/dev/null || {{ cat /run/u.log; exit 1; }}; sleep 1; done; \
             kill -9 $pid; wait $pid; echo killed $?",
            ch.url("v2")
        ));
        assert!(out.contains("killed 137"), "{point}: {out}");
        let after = g.sh("craton status --json | grep -A12 '\"grubenv\"'");
        assert_eq!(
            after, env_before,
            "killed at {point}: the A/B state changed"
        );
    }
    g.reboot();

    // 2: A again; install version 2 and corrupt one block of it.
    assert_eq!(g.next_boot("boot 2 (after the kills)", "a"), "a");
    assert_eq!(
        g.sh("craton status --json | grep -A12 '\"grubenv\"'"),
        env_before
    );
    let t = Instant::now();
    let report = g.sh(&format!("craton update --json {}", ch.url("v2")));
    let update_secs = t.elapsed().as_secs_f64();
    let report: serde_json::Value = serde_json::from_str(&report).unwrap();
    assert_eq!(report["installed_slot"], "b", "{report}");
    eprintln!(
        "update test: craton update took {update_secs:.1}s in the guest ({}s by its own clock), payload {} bytes",
        report["seconds"], report["payload_bytes"]
    );
    let s = g.status();
    assert_eq!(ab(&s), ("good".into(), "pending".into(), "B".into()), "{s}");
    assert_eq!(s["slots"][1]["version"], "0.2.0", "{s}");
    assert_eq!(
        s["slots"][1]["root_hash"].as_str().unwrap(),
        v2_manifest.usr.root_hash
    );
    // /usr's superblock block: read at once by the initrd's probe.
    g.sh("printf CORRUPT | dd of=/dev/disk/by-partlabel/USR-B bs=1 seek=1024 conv=notrunc,fsync status=none");
    g.reboot();

    // 3: B's trial failed verity and rebooted; A runs again.
    assert_eq!(g.next_boot("boot 3 (after B failed verity)", "a"), "a");
    let serial = g.serial();
    assert!(
        serial.contains("craton: slot B on trial"),
        "GRUB did not try B"
    );
    assert!(
        serial.contains("craton: this trial boot of a new slot failed"),
        "no trial failure on the console"
    );
    let s = g.status();
    assert_eq!(ab(&s), ("good".into(), "tried".into(), "A".into()), "{s}");
    g.sh(&format!("craton update {}", ch.url("unhealthy")));
    g.reboot();

    // 4: B booted and was not healthy: its check rebooted it.
    assert_eq!(
        g.next_boot("boot 4 (after B's failed health check)", "a"),
        "a"
    );
    let s = g.status();
    assert_eq!(ab(&s), ("good".into(), "tried".into(), "A".into()), "{s}");
    let failed = s["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["outcome"] == "unhealthy")
        .unwrap_or_else(|| panic!("no unhealthy check in {s}"));
    assert_eq!(failed["slot"], "b", "{s}");
    assert_eq!(failed["trial"], true, "{s}");
    assert!(
        failed["problems"][0]
            .as_str()
            .unwrap()
            .starts_with("craton-test-app.service: failed"),
        "{s}"
    );
    let text = g.sh("craton status");
    assert!(
        text.contains("last failed check: slot B (0.2.0, trial): unhealthy"),
        "{text}"
    );
    let panics = g.serial().matches("Kernel panic").count();
    g.sh(&format!("craton update {}", ch.url("noinit")));
    g.reboot();

    // 5: B's kernel found no init and panicked; A runs again.
    assert_eq!(g.next_boot("boot 5 (after B's kernel panicked)", "a"), "a");
    assert!(
        g.serial().matches("Kernel panic").count() > panics,
        "B's trial did not panic"
    );
    assert_eq!(ab(&g.status()).1, "tried");
    g.sh(&format!("craton update {}", ch.url("v2")));
    g.reboot();

    // 6: version 2 in B, confirmed.
    assert_eq!(g.next_boot("boot 6 (version 2)", "b"), "b");
    let s = g.status();
    assert_eq!(s["booted"]["version"], "0.2.0", "{s}");
    assert_eq!(ab(&s), ("good".into(), "good".into(), "B".into()), "{s}");
    assert_eq!(
        g.sh("systemctl show -p ActiveState --value craton-mark-good.service")
            .trim(),
        "active"
    );
    g.reboot();

    // 7: still B; both slots and versions.
    assert_eq!(g.next_boot("boot 7 (version 2 again)", "b"), "b");
    let s = g.status();
    assert_eq!(ab(&s), ("good".into(), "good".into(), "B".into()), "{s}");
    assert_eq!(s["slots"][0]["version"], "0.1.0", "{s}");
    assert_eq!(s["slots"][1]["version"], "0.2.0", "{s}");
    assert_eq!(
        s["checks"].as_array().unwrap().last().unwrap()["outcome"],
        "confirmed"
    );
    let check = g.sh(&format!("craton update --check {}", ch.url("v2")));
    assert!(
        check.contains("no update: version 0.2.0 is not newer"),
        "{check}"
    );
    g.sh("craton rollback");
    assert_eq!(ab(&g.status()).2, "A");
    eprintln!(
        "update test: {} boots reached over ssh, {:.0}s in all",
        g.boots,
        g.started.elapsed().as_secs_f64()
    );
    let _ = ssh_run(&g.key, g.port, "systemctl poweroff", 60);
    let deadline = Instant::now() + Duration::from_secs(300);
    while g.child.try_wait().unwrap().is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_secs(1));
    }
    let _ = g.child.kill();
}
