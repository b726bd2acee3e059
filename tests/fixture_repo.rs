//! `craton lock` and `craton fetch` against a small signed repository made at
//! test time (tests/fixtures/make-repo.sh) and served on a loopback HTTP
//! server: the happy path, a second fetch that downloads nothing, and each
//! way the supply chain can be attacked (a tampered .deb, a tampered Packages
//! index, a bad signature, an unknown signing key), which must fail with a
//! clear message and leave nothing in the cache.

mod support;

use std::fs;
use std::path::{Path, PathBuf};

use support::{FixtureRepo, craton, files_below, serve};

/// A stand-in artifact made by the test itself (a plain file).
const ARTIFACT: &[u8] = b"#!/bin/sh\necho fixture tool\n";

struct Setup {
    fx: FixtureRepo,
    cache: tempfile::TempDir,
    profile: PathBuf,
}

/// Writes a profile for the fixture repository served from `url`.
fn setup_with(fx: FixtureRepo, include: &[&str]) -> Setup {
    let url = serve(&fx.root());
    let artifact = fx.path("tool.bin");
    fs::write(&artifact, ARTIFACT).unwrap();
    let digest = craton::digest::Sha256::of(ARTIFACT);
    let include: Vec<String> = include.iter().map(|p| format!("\"{p}\"")).collect();
    let profile = fx.path("fixture.toml");
    fs::write(
        &profile,
        format!(
            r#"schema = 1

[image]
name = "fixture"
version = "1"

[[repository]]
name = "fixture"
suites = ["fixture"]
components = ["main"]
mirror = "{url}"
keyring = "keys/fixture.asc"

[packages]
include = [{}]

[tools]
# The fixture repository has no build tools; the tools tree is empty.
packages = []

[[artifact]]
name = "tool"
url = "file://{}"
sha256 = "{digest}"
files = [{{ destination = "/usr/bin/tool", mode = "0755" }}]
"#,
            include.join(", "),
            artifact.display()
        ),
    )
    .unwrap();
    Setup {
        fx,
        cache: tempfile::tempdir().unwrap(),
        profile,
    }
}

fn setup() -> Setup {
    setup_with(FixtureRepo::new(), &["fx-app"])
}

impl Setup {
    fn run(&self, args: &[&str]) -> support::Run {
        let mut all: Vec<&str> = args.to_vec();
        all.push(self.profile.to_str().unwrap());
        craton(self.cache.path(), self.fx.dir.path(), &all)
    }
    fn lock_text(&self) -> String {
        fs::read_to_string(self.fx.path("craton.lock")).unwrap()
    }
    fn cached(&self) -> Vec<PathBuf> {
        files_below(self.cache.path())
    }
    /// Nothing in the cache at all (folders may exist).
    #[track_caller]
    fn assert_cache_empty(&self) {
        assert_eq!(
            self.cached(),
            Vec::<PathBuf>::new(),
            "cache should be empty"
        );
    }
}

#[test]
fn lock_and_fetch_then_nothing_to_download() {
    let s = setup();
    s.run(&["lock"]).ok();
    let lock = s.lock_text();
    // fx-base is Priority: required and Pre-Depends of fx-app; fx-lib 1.2
    // satisfies `fx-lib (>= 1.1) | fx-alt`; fx-provider provides fx-virtual.
    assert_eq!(
        support::lock_names(&lock, "package"),
        ["fx-app", "fx-base", "fx-lib", "fx-provider"]
    );
    assert!(
        lock.contains("filename = \"pool/main/fx-app_2.0_amd64.deb\""),
        "{lock}"
    );
    assert!(
        !lock.contains("127.0.0.1"),
        "the lock must not name a mirror:\n{lock}"
    );

    // Locking again gives the same bytes.
    s.run(&["lock"]).ok();
    assert_eq!(s.lock_text(), lock, "the lock is not stable across runs");

    let first = s.run(&["fetch", "--locked"]);
    first.ok();
    assert!(
        first.stdout().contains("5 downloaded"),
        "{}",
        first.stdout()
    );
    let deb = s.fx.root().join("pool/main/fx-lib_1.2_amd64.deb");
    let digest = craton::digest::Sha256::of(&fs::read(deb).unwrap());
    let cached = s.cache.path().join("sha256").join(digest.to_hex());
    assert!(cached.is_file(), "fx-lib is not in the cache");

    let second = s.run(&["fetch", "--locked"]);
    second.ok();
    assert!(
        second.stdout().contains("0 downloaded"),
        "{}",
        second.stdout()
    );
    assert!(
        second.stdout().contains("5 from the cache"),
        "{}",
        second.stdout()
    );
}

#[test]
fn tampered_deb_fails_and_is_not_cached() {
    let s = setup();
    s.run(&["lock"]).ok();
    let deb = s.fx.root().join("pool/main/fx-lib_1.2_amd64.deb");
    let mut bytes = fs::read(&deb).unwrap();
    let good = craton::digest::Sha256::of(&bytes);
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    fs::write(&deb, &bytes).unwrap();
    let bad = craton::digest::Sha256::of(&bytes);

    let r = s.run(&["fetch", "--locked"]);
    r.fails(1, "pool/main/fx-lib_1.2_amd64.deb");
    let err = r.stderr();
    assert!(
        err.contains(&good.to_hex()) && err.contains(&bad.to_hex()),
        "{err}"
    );
    let cached = s.cached();
    assert!(
        !cached
            .iter()
            .any(|p| p.ends_with(good.to_hex()) || p.ends_with(bad.to_hex()))
    );
    assert!(
        !cached.iter().any(|p| p.starts_with("tmp")),
        "partial files left: {cached:?}"
    );
}

#[test]
fn tampered_packages_index_fails() {
    let s = setup();
    let idx =
        s.fx.root()
            .join("dists/fixture/main/binary-amd64/Packages.xz");
    let mut bytes = fs::read(&idx).unwrap();
    bytes[20] ^= 0x01;
    fs::write(&idx, bytes).unwrap();
    let r = s.run(&["lock"]);
    r.fails(1, "main/binary-amd64/Packages.xz");
    assert!(r.stderr().contains("sha256"), "{}", r.stderr());
    s.assert_cache_empty();
    assert!(!s.fx.path("craton.lock").exists(), "a lock was written");
}

#[test]
fn bad_signature_fails() {
    let s = setup();
    let inrelease = s.fx.root().join("dists/fixture/InRelease");
    let text = fs::read_to_string(&inrelease).unwrap();
    fs::write(
        &inrelease,
        text.replace("Label: craton-fixture", "Label: craton-fixturf"),
    )
    .unwrap();
    let r = s.run(&["lock"]);
    r.fails(1, "InRelease");
    assert!(r.stderr().contains("does not verify"), "{}", r.stderr());
    s.assert_cache_empty();
}

/// Issue #11: an InRelease older than the one the lock was made from (old
/// metadata, validly signed, served again) was taken, and trixie's main
/// suite has no Valid-Until to stop it. The lock now records each suite's
/// Date and the next resolution refuses an older one, leaving the lock as
/// it was.
#[test]
fn an_inrelease_older_than_the_locks_is_refused() {
    let s = setup();
    s.run(&["lock"]).ok();
    let lock = s.lock_text();
    assert!(
        lock.contains(
            "[[release]]\nrepository = \"fixture\"\nsuite = \"fixture\"\ndate = 1700000000\n"
        ),
        "{lock}"
    );
    fs::copy(
        s.fx.path("InRelease.older"),
        s.fx.root().join("dists/fixture/InRelease"),
    )
    .unwrap();
    let r = s.run(&["lock"]);
    r.fails(1, "is older than the one");
    assert!(r.stderr().contains("86400"), "{}", r.stderr());
    assert_eq!(s.lock_text(), lock, "the lock was rewritten");
}

/// Issue #11: the cache was trusted by name (a file under its digest was
/// taken as it was). A cached .deb whose bytes changed is now found by the
/// next fetch, removed and downloaded again.
#[test]
fn a_changed_cache_file_is_fetched_again() {
    let s = setup();
    s.run(&["lock"]).ok();
    s.run(&["fetch", "--locked"]).ok();
    let deb = s.fx.root().join("pool/main/fx-lib_1.2_amd64.deb");
    let good = fs::read(&deb).unwrap();
    let cached = s
        .cache
        .path()
        .join("sha256")
        .join(craton::digest::Sha256::of(&good).to_hex());
    let mut bad = good.clone();
    let last = bad.len() - 1;
    bad[last] ^= 0xff;
    fs::write(&cached, &bad).unwrap();
    let again = s.run(&["fetch", "--locked"]);
    again.ok();
    assert!(
        again.stdout().contains("1 downloaded"),
        "{}",
        again.stdout()
    );
    assert!(
        again.stderr().contains("does not hash to its name"),
        "{}",
        again.stderr()
    );
    assert_eq!(fs::read(&cached).unwrap(), good);
}

#[test]
fn unknown_signing_key_fails() {
    let s = setup();
    fs::copy(
        s.fx.path("InRelease.other-key"),
        s.fx.root().join("dists/fixture/InRelease"),
    )
    .unwrap();
    let r = s.run(&["lock"]);
    r.fails(1, "unknown key");
    s.assert_cache_empty();
}

#[test]
fn locked_refuses_a_changed_profile() {
    let s = setup();
    s.run(&["lock"]).ok();
    let before = s.cached();
    let text = fs::read_to_string(&s.profile).unwrap();
    fs::write(
        &s.profile,
        text.replace("\"fx-app\"", "\"fx-app\", \"fx-alt\""),
    )
    .unwrap();
    let r = s.run(&["fetch", "--locked"]);
    r.fails(
        2,
        "package `fx-alt` is in the profile's [packages] include but not in the lock",
    );
    assert_eq!(s.cached(), before, "a refused fetch downloaded something");
    // Without --locked the lock is brought up to date.
    s.run(&["fetch"]).ok();
    assert!(support::lock_names(&s.lock_text(), "package").contains(&"fx-alt".to_owned()));
}

#[test]
fn unsatisfiable_request_names_the_chain() {
    // fx-enemy conflicts with fx-lib; asking for both cannot work, but
    // fx-app's alternative fx-alt can stand in for fx-lib.
    let s = setup_with(FixtureRepo::new(), &["fx-app", "fx-enemy"]);
    s.run(&["lock"]).ok();
    let names = support::lock_names(&s.lock_text(), "package");
    assert!(
        names.contains(&"fx-alt".to_owned()) && !names.contains(&"fx-lib".to_owned()),
        "{names:?}"
    );

    let s = setup_with(FixtureRepo::new(), &["fx-nowhere"]);
    s.run(&["lock"]).fails(2, "fx-nowhere");
}

#[test]
fn missing_artifact_is_reported_with_the_way_out() {
    let s = setup();
    s.run(&["lock"]).ok();
    fs::remove_file(s.fx.path("tool.bin")).unwrap();
    let r = s.run(&["fetch", "--locked"]);
    r.fails(1, "--artifact-dir");
    assert!(r.stderr().contains("tool"), "{}", r.stderr());
    // The packages were still fetched.
    assert_eq!(
        s.cached()
            .iter()
            .filter(|p| p.starts_with("sha256"))
            .count(),
        5
    );

    // The same file from an artifact folder works, and is digest-checked.
    let dir = s.fx.path("artifacts");
    fs::create_dir(&dir).unwrap();
    fs::write(dir.join("tool.bin"), b"not the tool").unwrap();
    let d = dir.to_str().unwrap();
    s.run(&["fetch", "--locked", "--artifact-dir", d])
        .fails(1, "sha256");
    fs::write(dir.join("tool.bin"), ARTIFACT).unwrap();
    s.run(&["fetch", "--locked", "--artifact-dir", d]).ok();
}

#[test]
fn bad_profile_exits_2_and_writes_nothing() {
    let s = setup();
    let text = fs::read_to_string(&s.profile).unwrap();
    fs::write(
        &s.profile,
        text.replace("[packages]", "[packages]\ncolour = \"red\""),
    )
    .unwrap();
    let r = s.run(&["lock"]);
    r.fails(2, "colour");
    assert!(r.stderr().contains("fixture.toml"), "{}", r.stderr());
    assert!(!Path::new(&s.fx.path("craton.lock")).exists());
}
