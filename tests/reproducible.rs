//! Issue #11's reproducibility: two `craton build` runs of one locked
//! profile (tests/container-host-test.toml: the real trixie packages, with
//! the rkt and flannel stand-ins its header describes) with the same
//! SOURCE_DATE_EPOCH, each from an empty cache of its own (`CRATON_CACHE`:
//! every .deb downloaded again, the tools tree, the base tree and the
//! initrd made again), give bit-identical raw images: the sha256 of the
//! whole file. The lock is made first, with a third cache, so both builds
//! start from nothing but it.

use std::path::{Path, PathBuf};
use std::process::Command;

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
            "--out",
            &out.to_string_lossy(),
        ],
    );
    let image = out.join("container-host-test.raw");
    let digest = Sha256::of_reader(std::fs::File::open(&image).unwrap()).unwrap();
    // The cache is ~1 GB; only the image is compared.
    std::fs::remove_dir_all(&cache).unwrap();
    (image, digest)
}

#[test]
fn two_builds_from_empty_caches_give_the_same_image() {
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
}
