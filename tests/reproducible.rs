//! Issue #11's reproducibility and kill-safety, on one locked profile
//! (tests/container-host-test.toml: the real trixie packages, with the rkt
//! and flannel stand-ins its header describes) and one SOURCE_DATE_EPOCH.
//!
//! 1. Two `craton build --platform all` runs, each from an empty cache of
//!    its own (`CRATON_CACHE`: every .deb downloaded again, the tools tree,
//!    the base tree and the initrd made again), give bit-identical metal
//!    raw images (the sha256 of the whole file) and the same manifest.json,
//!    so every output (qcow2, GCE tarball, zstd copy, payload) has the
//!    same digest. The lock is made first, with a cache
//!    of its own, so both builds start from nothing but it.
//! 2. A third cold build is killed with SIGKILL at each point the issue
//!    names (download, essential unpack, configure, /usr image, initrd,
//!    disk write) and while the platform outputs are written, one point
//!    per run, each run resuming on the cache the killed ones left. After
//!    every kill there is no manifest (written last) and no mount below
//!    the cache or the output folder; the
//!    run after the last kill finishes, and its image is the one the
//!    uninterrupted builds made.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use craton::digest::Sha256;

/// Any fixed time; the image_boot tests use the same.
const EPOCH: &str = "1764288000";

fn craton(cache: &Path, args: &[&str]) {
    let out = Command::new(env!("CARGO_BIN_EXE_craton"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("CRATON_CACHE", cache)
        .env("CI", "true")
        .env("SOURCE_DATE_EPOCH", EPOCH)
        .output()
        .expect("running craton");
    assert!(
        out.status.success(),
        "craton {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn build(work: &Path, lock: &Path, name: &str) -> (PathBuf, Sha256) {
    let cache = work.join(format!("cache-{name}"));
    let out = work.join(format!("out-{name}"));
    craton(
        &cache,
        &[
            "build",
            "tests/container-host-test.toml",
            "--locked",
            "--lock",
            &lock.to_string_lossy(),
            "--platform",
            "all",
            "--out",
            &out.to_string_lossy(),
        ],
    );
    let image = out.join("container-host-test-metal.raw");
    let digest = Sha256::of_reader(std::fs::File::open(&image).unwrap()).unwrap();
    // The cache is ~1 GB; only the image is compared.
    std::fs::remove_dir_all(&cache).unwrap();
    (image, digest)
}

/// How long one run may take to reach its kill point.
const KILL_POINT_TIMEOUT: Duration = Duration::from_secs(600);

/// Where to kill a run: once a log line contains `line`, and then, if
/// given, once a process runs that program ([`running`]).
struct KillPoint {
    what: &'static str,
    line: &'static str,
    process: Option<&'static str>,
}

const KILL_POINTS: &[KillPoint] = &[
    KillPoint {
        what: "download",
        line: "fetching ",
        process: None,
    },
    KillPoint {
        what: "essential unpack",
        line: "installing ",
        process: None,
    },
    KillPoint {
        what: "configure",
        line: "installing ",
        process: Some("dpkg"),
    },
    KillPoint {
        what: "/usr image",
        line: "‣ usr",
        process: Some("mkfs.erofs"),
    },
    KillPoint {
        what: "initrd",
        line: "‣ initrd",
        process: None,
    },
    KillPoint {
        what: "disk write",
        line: "‣ disk",
        process: None,
    },
    KillPoint {
        what: "platform outputs",
        line: "‣ outputs",
        process: Some("qemu-img"),
    },
];

/// A process runs whose command line has `name` as a program: its own
/// name, or the program that the tools tree's loader runs (then the
/// process's name is the loader's).
fn running(name: &str) -> bool {
    std::fs::read_dir("/proc").unwrap().flatten().any(|e| {
        std::fs::read(e.path().join("cmdline")).is_ok_and(|c| {
            c.split(|&b| b == 0)
                .any(|arg| arg.rsplit(|&b| b == b'/').next() == Some(name.as_bytes()))
        })
    })
}

/// Runs the build until `point`, then SIGKILLs it; panics if the build
/// ended first or never got there.
fn build_and_kill(cache: &Path, lock: &Path, out: &Path, point: &KillPoint) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_craton"))
        .args([
            "build",
            "tests/container-host-test.toml",
            "--platform",
            "all",
            "--locked",
            "--lock",
        ])
        .arg(lock)
        .arg("--out")
        .arg(out)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("CRATON_CACHE", cache)
        .env("CI", "true")
        .env("SOURCE_DATE_EPOCH", EPOCH)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting craton");
    let start = Instant::now();
    let (tx, rx) = std::sync::mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut log = String::new();
    let mut seen = false;
    loop {
        assert!(
            start.elapsed() < KILL_POINT_TIMEOUT,
            "the build never reached the {} kill point:\n{log}",
            point.what
        );
        while let Ok(line) = rx.try_recv() {
            seen |= line.contains(point.line);
            log.push_str(&line);
            log.push('\n');
        }
        if seen && point.process.is_none_or(running) {
            break;
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!(
                "the build ended ({status}) before the {} kill point:\n{log}",
                point.what
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    let status = child.wait().unwrap();
    assert!(
        !status.success(),
        "the build finished before it was killed at {}",
        point.what
    );
    eprintln!(
        "killed at {} after {:.1}s",
        point.what,
        start.elapsed().as_secs_f64()
    );
    // Children die with craton (the process wrapper's parent-death signal).
    std::thread::sleep(Duration::from_millis(500));
    // The manifest is written last: a killed build never has one, and
    // the files a kill interrupted are temporary files, never at their
    // final names (the final listing below).
    assert!(
        !out.join("manifest.json").exists(),
        "a manifest after a kill at {}",
        point.what
    );
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    for place in [cache, out] {
        let p = place.to_string_lossy();
        assert!(
            !mountinfo.lines().any(|l| l.contains(&*p)),
            "a mount below {p} after a kill at {}:\n{mountinfo}",
            point.what
        );
    }
}

#[test]
fn same_image_from_two_empty_caches_and_after_kills() {
    // Under cargo's target folder, not /tmp: two caches and two images.
    let work = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let lock = work.path().join("repro.lock");
    craton(
        &work.path().join("cache-lock"),
        &[
            "lock",
            "tests/container-host-test.toml",
            "--lock",
            &lock.to_string_lossy(),
        ],
    );
    let (a, da) = build(work.path(), &lock, "a");
    let (b, db) = build(work.path(), &lock, "b");
    eprintln!("image A {}: sha256 {da}", a.display());
    eprintln!("image B {}: sha256 {db}", b.display());
    assert_eq!(da, db, "two builds of one lock differ");
    std::fs::remove_dir_all(b.parent().unwrap()).unwrap();

    // Kill-safety: a cold build killed at each point in turn.
    let cache = work.path().join("cache-c");
    let out = work.path().join("out-c");
    for point in KILL_POINTS {
        build_and_kill(&cache, &lock, &out, point);
    }
    let (c, dc) = build(work.path(), &lock, "c");
    eprintln!(
        "image C {} (after {} kills): sha256 {dc}",
        c.display(),
        KILL_POINTS.len()
    );
    assert_eq!(
        dc, da,
        "the build after the kills differs from an uninterrupted one"
    );
    // Nothing of the killed runs is left beside the outputs.
    let mut left: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(
        left,
        [
            "container-host-test-gce.tar.gz",
            "container-host-test-initrd",
            "container-host-test-metal.raw",
            "container-host-test-metal.raw.zst",
            "container-host-test-qemu.qcow2",
            "container-host-test-usr.img",
            "container-host-test-vmlinuz",
            "manifest.json",
            "sbom.spdx.json"
        ]
    );
    // The manifest is as reproducible as the image: the same bytes.
    let manifest =
        |image: &std::path::Path| std::fs::read(image.with_file_name("manifest.json")).unwrap();
    assert!(
        manifest(&a) == manifest(&c),
        "two builds of one lock wrote different manifests"
    );
}
