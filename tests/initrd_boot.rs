//! The initrd built from the real trixie packages and the image's kernel
//! boots in QEMU (TCG): systemd starts in initrd mode, and a test-only unit
//! checks from inside the guest that modprobe finds the modules, that
//! craton's /etc overlay mount is enabled, then prints a marker on the
//! serial console and powers off.
//!
//! The test unit is not in the initrd: it travels in a second, uncompressed
//! cpio placed before the built one in the same initrd file, which the
//! kernel unpacks in order (buffer-format.rst's grammar: initramfs :=
//! ("\0" | cpio_archive | cpio_compressed_archive)*), as initramfs-tools
//! does with early microcode. The image tree of the real packages comes from
//! `craton rootfs` (tests/support); qemu-system-x86_64 must be installed
//! (in CI a missing one fails the test).

mod support;

use std::fs;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use craton::context::{Context, Options};
use craton::initrd::{self, cpio};
use craton::tools::ToolsTree;

/// How long the guest may take to print the marker under TCG.
const BOOT_TIMEOUT: Duration = Duration::from_secs(240);
/// What the test unit prints last, after every check passed.
const MARKER: &str = "CRATON_INITRD_OK";
/// SOURCE_DATE_EPOCH-style mtime for the archive.
const EPOCH: u64 = 1_700_000_000;

const TEST_TARGET: &str = "\
[Unit]
Description=craton initrd test
Requires=basic.target craton-test.service
After=basic.target craton-test.service
";

/// Every line must succeed for the next to run (Type=oneshot); the output
/// goes to the serial console. No shell in the initrd: the marker comes
/// from systemd-escape, which prints its argument unchanged.
fn test_service() -> String {
    format!(
        "\
[Unit]
Description=craton initrd checks
After=basic.target systemd-modules-load.service
AssertPathExists=/etc/initrd-release
SuccessAction=poweroff-force
FailureAction=poweroff-force

[Service]
Type=oneshot
StandardOutput=tty
StandardError=tty
TTYPath=/dev/ttyS0
ExecStart=/usr/sbin/modprobe -a dm_verity erofs overlay virtio_blk ext4 nvme ahci sd_mod virtio_scsi
ExecStart=/usr/sbin/lsmod
ExecStart=/usr/bin/systemctl is-enabled sysroot-etc.mount
ExecStart=/usr/bin/systemd-escape {MARKER}
"
    )
}

/// The test-only archive: the units in /etc/systemd/system.
fn test_archive() -> Vec<u8> {
    let mut w = cpio::Writer::new(Vec::new(), EPOCH).unwrap();
    for d in ["etc", "etc/systemd", "etc/systemd/system"] {
        w.dir(d, 0o755, 0, 0).unwrap();
    }
    let meta = cpio::FileMeta {
        mode: 0o644,
        uid: 0,
        gid: 0,
        link: None,
    };
    for (name, text) in [
        ("craton-test.target", TEST_TARGET.to_owned()),
        ("craton-test.service", test_service()),
    ] {
        let path = format!("etc/systemd/system/{name}");
        w.file(&path, meta, text.len() as u64, &mut text.as_bytes())
            .unwrap();
    }
    w.finish().unwrap().0
}

/// The last `n` lines of the serial log, for failure messages.
fn tail(log: &str, n: usize) -> String {
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Boots `kernel` with `initrd` until QEMU exits or the timeout; returns
/// the serial log and the time until the marker appeared (if it did).
fn boot(kernel: &Path, initrd: &Path, log: &Path) -> (String, Option<Duration>) {
    let start = Instant::now();
    let mut child = Command::new("qemu-system-x86_64")
        .args(["-accel", "tcg", "-m", "1024", "-smp", "2"])
        .args(["-display", "none", "-monitor", "none", "-no-reboot"])
        .arg("-serial")
        .arg(format!("file:{}", log.display()))
        .arg("-kernel")
        .arg(kernel)
        .arg("-initrd")
        .arg(initrd)
        .arg("-append")
        .arg("console=ttyS0,115200 panic=-1 rd.systemd.unit=craton-test.target systemd.show_status=1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting qemu-system-x86_64");
    let mut seen = None;
    loop {
        let text = fs::read_to_string(log).unwrap_or_default();
        if seen.is_none() && text.contains(MARKER) {
            seen = Some(start.elapsed());
        }
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if start.elapsed() > BOOT_TIMEOUT {
            child.kill().ok();
            child.wait().ok();
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        e.read_to_string(&mut err).ok();
    }
    let text = fs::read_to_string(log).unwrap_or_default();
    if seen.is_none() && text.contains(MARKER) {
        seen = Some(start.elapsed());
    }
    (text + &err, seen)
}

#[test]
fn initrd_boots_in_qemu() {
    if !support::have_program("qemu-system-x86_64") {
        eprintln!("skipped: qemu-system-x86_64 is not installed");
        return;
    }
    let rootfs = support::rootfs_tree();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let work = tempfile::tempdir().unwrap();
    let ctx = Context::new(&Options {
        lock: Some(work.path().join("test.lock")),
        ..Options::for_profile(root.join("tests/container-host-test.toml"))
    })
    .unwrap();
    let lock = craton::resolve::run(&ctx).unwrap();
    craton::fetch::run(&ctx, &lock).unwrap();
    let tools = ToolsTree::for_lock(&ctx.cache, &lock);
    tools.ensure(&ctx.cache, &lock, 4).unwrap();

    let out = work.path().join("initrd.img");
    let started = Instant::now();
    let info = initrd::make(
        &lock,
        &ctx.cache,
        &tools,
        &rootfs,
        &ctx.profile.initrd.modules,
        &out,
        EPOCH,
    )
    .unwrap();
    eprintln!(
        "built {} in {:.1?}: {} bytes ({} uncompressed), kernel {}, modules {:?}",
        info.path.display(),
        started.elapsed(),
        info.size,
        info.uncompressed_size,
        info.kernel_version,
        info.modules
    );
    let meta = fs::metadata(&out).unwrap();
    assert_eq!(meta.len(), info.size);
    assert_eq!(meta.permissions().mode() & 0o777, 0o644);
    // Every platform module is shipped or built in; dependencies came along.
    for m in [
        "virtio_blk",
        "virtio_scsi",
        "nvme",
        "ahci",
        "sd_mod",
        "gve",
        "dm_verity",
    ] {
        assert!(
            info.modules.iter().any(|x| x == m),
            "{m} missing: {:?}",
            info.modules
        );
    }
    for dep in [
        "dm_mod",
        "nvme_core",
        "libata",
        "scsi_mod",
        "jbd2",
        "crc32c_generic",
    ] {
        assert!(
            info.modules.iter().any(|x| x == dep),
            "{dep} missing: {:?}",
            info.modules
        );
    }
    // The same inputs give the same bytes.
    let again = work.path().join("again.img");
    initrd::make(
        &lock,
        &ctx.cache,
        &tools,
        &rootfs,
        &ctx.profile.initrd.modules,
        &again,
        EPOCH,
    )
    .unwrap();
    assert!(
        fs::read(&out).unwrap() == fs::read(&again).unwrap(),
        "the initrd is not reproducible"
    );
    // Nothing is left beside the outputs.
    let mut left: Vec<_> = fs::read_dir(work.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(left, ["again.img", "initrd.img", "test.lock"]);

    // The test archive first, then the built initrd, in one file.
    let combined = work.path().join("combined.img");
    let mut bytes = test_archive();
    bytes.extend(fs::read(&out).unwrap());
    fs::write(&combined, bytes).unwrap();
    let kernel = rootfs
        .join("usr/lib/modules")
        .join(&info.kernel_version)
        .join("vmlinuz");
    let log = work.path().join("serial.log");
    let (text, seen) = boot(&kernel, &combined, &log);
    // Kept for a look after the run (the work folder goes away).
    let kept = Path::new(env!("CARGO_TARGET_TMPDIR")).join("initrd-serial.log");
    fs::write(&kept, &text).ok();
    let Some(took) = seen else {
        panic!(
            "no {MARKER} on the serial console; its tail:\n{}",
            tail(&text, 60)
        );
    };
    eprintln!("marker after {took:.1?} under TCG");
    assert!(text.contains("Running in initrd"), "{}", tail(&text, 60));
    // Every unit the initrd started came up (ldconfig.service is masked).
    let failed: Vec<&str> = text.lines().filter(|l| l.contains("FAILED")).collect();
    assert!(failed.is_empty(), "failed units: {failed:#?}");
    // lsmod's lines, from inside the guest: loaded, with their dependencies.
    for m in [
        "dm_verity",
        "dm_mod",
        "erofs",
        "overlay",
        "virtio_blk",
        "ext4",
        "jbd2",
    ] {
        assert!(
            text.lines().any(|l| l.split_whitespace().next() == Some(m)),
            "{m} is not loaded; serial tail:\n{}",
            tail(&text, 60)
        );
    }
    assert!(
        text.lines().any(|l| l.trim() == "enabled"),
        "sysroot-etc.mount is not enabled; serial tail:\n{}",
        tail(&text, 60)
    );
}
