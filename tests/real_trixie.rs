//! Against the real Debian trixie repositories (the mirror from the host's
//! apt sources, or CRATON_MIRROR): the default profile resolves, the test
//! profile (container-host with the two upstream artifacts replaced by the
//! committed stand-ins, see tests/container-host-test.toml) fetches and
//! verifies everything from a cold cache, a second fetch downloads nothing,
//! and the unmodified default profile fails only on the two GitHub artifacts
//! that this machine cannot download, naming them and --artifact-dir.
//!
//! One test function so the cold download happens once per run.

mod support;

use std::path::Path;

use support::craton_real;

fn lock_names(path: &Path) -> Vec<String> {
    support::lock_names(&std::fs::read_to_string(path).unwrap(), "package")
}

/// Distinct digests among the lock's packages (image, tools, initrd) and artifacts.
fn unique_files(path: &Path) -> usize {
    let v: toml::Value = toml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut all = std::collections::BTreeSet::new();
    for key in ["package", "tool", "initrd-package", "artifact"] {
        for e in v.get(key).and_then(|x| x.as_array()).into_iter().flatten() {
            all.insert(e["sha256"].as_str().unwrap().to_owned());
        }
    }
    all.len()
}

#[test]
fn container_host_resolves_fetches_and_names_missing_artifacts() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let work = tempfile::tempdir().unwrap();
    let cache = work.path().join("cache");
    let run = |args: &[&str]| craton_real(&cache, root, args);

    // The default profile resolves against trixie.
    let lock = work.path().join("container-host.lock");
    let lock_s = lock.to_str().unwrap();
    run(&["lock", "profiles/container-host.toml", "--lock", lock_s]).ok();
    let names = lock_names(&lock);
    for want in [
        "systemd",
        "docker.io",
        "docker-cli",
        "containerd",
        "runc",
        "linux-image-amd64",
        "openssh-server",
        "base-files",
        "dpkg",
    ] {
        assert!(
            names.iter().any(|n| n == want),
            "{want} is not in the lock: {names:?}"
        );
    }
    assert!(
        names.iter().any(|n| n.starts_with("linux-image-6.")),
        "no kernel image: {names:?}"
    );
    assert!(
        names.len() > 100,
        "suspiciously small closure: {} packages",
        names.len()
    );

    // The test profile: same packages, stand-in artifacts. Cold cache.
    let test_lock = work.path().join("test.lock");
    let test_lock_s = test_lock.to_str().unwrap();
    let profile = "tests/container-host-test.toml";
    run(&["lock", profile, "--lock", test_lock_s]).ok();
    assert_eq!(
        lock_names(&test_lock),
        names,
        "the stand-ins changed the package set"
    );
    let first = run(&["fetch", profile, "--lock", test_lock_s, "--locked"]);
    first.ok();
    // Image and tools packages share some files; each is fetched once.
    let total = unique_files(&test_lock);
    let want = format!("fetched {total} files: {total} downloaded");
    assert!(first.stdout().contains(&want), "{}", first.stdout());

    let second = run(&["fetch", profile, "--lock", test_lock_s, "--locked"]);
    second.ok();
    assert!(
        second.stdout().contains("0 downloaded"),
        "{}",
        second.stdout()
    );

    // The real profile: every package is there, the GitHub files are not.
    let r = run(&[
        "fetch",
        "profiles/container-host.toml",
        "--lock",
        lock_s,
        "--locked",
    ]);
    r.fails(1, "--artifact-dir");
    let err = r.stderr();
    for needle in [
        "rkt",
        "https://github.com/rkt/rkt/releases/download/v1.30.0/rkt-v1.30.0.tar.gz",
        "flannel",
        "https://github.com/flannel-io/flannel/releases/download/v0.27.4/flanneld-amd64",
    ] {
        assert!(err.contains(needle), "{needle} missing from:\n{err}");
    }
}
