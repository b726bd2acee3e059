//! The QEMU runner against real guests, always under TCG (KVM hangs on
//! some of the machines these tests run on): trixie's kernel booted
//! directly, a marker that never comes, and the A/B selection of the
//! generated grub.cfg booted through shim, GRUB and OVMF (see qemu_runner/ab_boot.rs).
//!
//! The kernel comes from the test profile's root tree, built by
//! `craton rootfs` (tests/support).

mod support;

use std::path::PathBuf;
use std::time::Duration;

use craton::qemu::{self, Accel, Firmware, QemuRun};

#[path = "qemu_runner/ab_boot.rs"]
mod ab_boot;

/// QEMU under TCG is CPU-bound: one guest at a time keeps each test's
/// timing predictable on small CI machines.
pub static QEMU_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// The kernel of the built tree.
pub fn kernel() -> PathBuf {
    let tree = support::rootfs_tree();
    let modules = tree.join("usr/lib/modules");
    let entries = std::fs::read_dir(&modules)
        .unwrap_or_else(|e| panic!("no kernel under {}: {e}", modules.display()));
    entries
        .filter_map(|e| e.ok())
        .map(|e| e.path().join("vmlinuz"))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("no vmlinuz under {}", modules.display()))
}

/// A TCG run of trixie's kernel alone (no disk, BIOS) with `append` as
/// its command line, until `marker` or `secs`.
fn kernel_run(memory_mib: u32, secs: u64, marker: &str, append: &str) -> QemuRun {
    let mut run = QemuRun::new(None, Firmware::Bios);
    run.accel = Some(Accel::Tcg);
    run.memory_mib = memory_mib;
    run.timeout = Duration::from_secs(secs);
    run.marker = Some(marker.into());
    run.extra_args = vec![
        "-kernel".into(),
        kernel().to_string_lossy().into_owned(),
        "-append".into(),
        append.into(),
    ];
    run
}

#[test]
fn boots_a_kernel_to_its_banner() {
    let _serial = QEMU_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let mut run = kernel_run(256, 60, "Linux version", "console=ttyS0,115200n8 panic=-1");
    let log = tempfile::NamedTempFile::new().unwrap();
    run.serial_log = Some(log.path().to_owned());
    let r = qemu::run(&run).unwrap();
    assert!(r.marker_seen);
    assert_eq!(r.accel, Accel::Tcg);
    assert!(
        r.serial_log.contains("Linux version 6."),
        "{}",
        r.serial_log
    );
    // The log file holds what was streamed.
    let file = std::fs::read_to_string(log.path()).unwrap();
    assert!(file.contains("Linux version"), "{file}");
    eprintln!("kernel banner after {:?}", r.elapsed);
}

#[test]
fn a_marker_that_never_comes_times_out_with_the_log_tail() {
    let _serial = QEMU_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    // Without a root the kernel panics after a few seconds; panic=0 makes
    // it wait there for ever, so only the timeout ends the run.
    // earlyprintk puts its first lines out within about 2 s under TCG.
    let run = kernel_run(
        128,
        5,
        "CRATON-NEVER",
        "console=ttyS0 earlyprintk=ttyS0 panic=0",
    );
    let start = std::time::Instant::now();
    let err = format!("{:#}", qemu::run(&run).unwrap_err());
    assert!(
        start.elapsed() < Duration::from_secs(15),
        "{:?}",
        start.elapsed()
    );
    assert!(err.contains("timed out after 5s"), "{err}");
    assert!(err.contains("\"CRATON-NEVER\""), "{err}");
    // The tail: the kernel's last log lines (timestamped), at most 40.
    let (_, tail) = err.split_once("last serial lines:\n").unwrap();
    let lines: Vec<&str> = tail.lines().collect();
    assert!(!lines.is_empty() && lines.len() <= 40, "{err}");
    assert!(lines.iter().any(|l| l.starts_with("[    ")), "{err}");
}

#[test]
fn a_guest_that_ends_before_the_marker_is_an_error_with_the_log_tail() {
    let _serial = QEMU_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    // No root: the kernel panics, panic=-1 reboots, -no-reboot ends QEMU.
    let run = kernel_run(128, 120, "CRATON-NEVER", "console=ttyS0 panic=-1");
    let err = format!("{:#}", qemu::run(&run).unwrap_err());
    assert!(err.contains("qemu exited before \"CRATON-NEVER\""), "{err}");
    assert!(err.contains("Kernel panic"), "{err}");
}

/// Reboots a run lets through are counted by the kernel's banner: with one
/// allowed, the panicking kernel starts twice and its third start ends the
/// run with the count (a first boot's identity reboot passes, a boot loop
/// does not run on to the timeout).
#[test]
fn reboots_past_the_allowed_number_end_the_run() {
    let _serial = QEMU_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let mut run = kernel_run(128, 300, "CRATON-NEVER", "console=ttyS0 panic=-1");
    run.reboots = 1;
    let err = format!("{:#}", qemu::run(&run).unwrap_err());
    assert!(
        err.contains("the guest rebooted 2 times, more than the 1 this run allows"),
        "{err}"
    );
}
