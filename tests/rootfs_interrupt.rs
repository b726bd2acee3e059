//! Interrupting `craton rootfs` (SIGINT or SIGTERM) at several points of a
//! base-tree build leaves no mounts, no output tree, no temporary trees and
//! no half-built base tree in the cache.
//!
//! The build uses a private cache whose .debs are hard-linked from the
//! default cache when they are there (the rootfs test fills it), so each
//! interrupted run really builds a base tree from scratch.
//! (`unsafe`: kill(2) with SIGINT or SIGTERM, which std cannot send.)

#![allow(unsafe_code)]

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Seconds after the start at which the build is interrupted: while
/// fetching and unpacking the essential set, while dpkg installs it, while
/// the rest is unpacked, and while dpkg configures everything.
const DELAYS: &[f64] = &[0.5, 3.0, 9.0, 14.0, 20.0];
/// An interrupted build must be gone well within this.
const EXIT_WITHIN: Duration = Duration::from_secs(120);

fn default_cache() -> PathBuf {
    std::env::var_os("CRATON_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var("HOME").unwrap()).join(".cache/craton"))
}

fn entries(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|r| {
            r.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn interrupted_builds_leave_nothing_behind() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let work = tempfile::tempdir().unwrap();
    let cache = work.path().join("cache");
    let lock = work.path().join("test.lock");
    let lock_s = lock.to_str().unwrap();
    let profile = "tests/container-host-test.toml";
    support::craton_real(&cache, root, &["lock", profile, "--lock", lock_s]).ok();
    // Reuse downloads from the default cache where it has them.
    let shared = default_cache().join("sha256");
    for name in entries(&shared) {
        let _ = std::fs::hard_link(shared.join(&name), cache.join("sha256").join(&name));
    }
    support::craton_real(
        &cache,
        root,
        &["fetch", profile, "--lock", lock_s, "--locked"],
    )
    .ok();

    let out_dir = work.path().join("outputs");
    std::fs::create_dir(&out_dir).unwrap();
    let out = out_dir.join("tree");
    for (i, delay) in DELAYS.iter().enumerate() {
        let signal = if i % 2 == 0 {
            libc::SIGTERM
        } else {
            libc::SIGINT
        };
        let mut child = Command::new(env!("CARGO_BIN_EXE_craton"))
            .args(["rootfs", profile, "--lock", lock_s, "--locked", "--out"])
            .arg(&out)
            .current_dir(root)
            .env("CRATON_CACHE", &cache)
            .env("CI", "true")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_secs_f64(*delay));
        let finished_early = child.try_wait().unwrap().is_some();
        assert!(
            !finished_early,
            "the build ended before {delay}s; nothing was interrupted"
        );
        // SAFETY: kill(2) on our own child.
        unsafe { libc::kill(child.id() as libc::pid_t, signal) };
        let start = Instant::now();
        let status = loop {
            if let Some(st) = child.try_wait().unwrap() {
                break st;
            }
            assert!(
                start.elapsed() < EXIT_WITHIN,
                "craton did not stop after the signal"
            );
            std::thread::sleep(Duration::from_millis(100));
        };
        let mut err = String::new();
        std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
        let what = format!("signal {signal} after {delay}s");
        assert!(!status.success(), "{what}: craton exited 0\n{err}");
        assert!(
            err.contains("interrupted"),
            "{what}: no word of the interruption:\n{err}"
        );

        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        let work_s = work.path().to_str().unwrap();
        assert!(
            !mountinfo.contains(work_s),
            "{what}: mounts left under {work_s}:\n{mountinfo}"
        );
        assert_eq!(
            entries(&out_dir),
            Vec::<String>::new(),
            "{what}: output left behind"
        );
        let trees = entries(&cache.join("trees"));
        assert!(
            trees.iter().all(|t| t.starts_with("tools-")),
            "{what}: base or temporary trees left in the cache: {trees:?}"
        );
    }
}
