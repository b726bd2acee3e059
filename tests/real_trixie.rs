//! Against the real Debian trixie repositories (the mirror from the host's
//! apt sources, or CRATON_MIRROR): the default profile resolves, the test
//! profile (container-host with the two upstream artifacts replaced by the
//! committed stand-ins, see tests/container-host-test.toml) fetches and
//! verifies everything from a cold cache, a second fetch downloads nothing,
//! and the unmodified default profile fails only on the two GitHub artifacts
//! that this machine cannot download, naming them and --artifact-dir.
//!
//! The cold download happens once per run, in one test function; the
//! etcd-server fragment is resolved beside it (default cache).

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
    // rkt and flannel stay pinned to their upstream release files: the
    // lock names the real URLs and digests (the stand-ins are tests' only).
    let v: toml::Value = toml::from_str(&std::fs::read_to_string(&lock).unwrap()).unwrap();
    let mut artifacts: Vec<(String, String, String)> = v["artifact"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            let s = |k: &str| a[k].as_str().unwrap().to_owned();
            (s("name"), s("url"), s("sha256"))
        })
        .collect();
    artifacts.sort();
    assert_eq!(
        artifacts,
        [
            (
                "flannel".to_owned(),
                "https://github.com/flannel-io/flannel/releases/download/v0.27.4/flanneld-amd64"
                    .to_owned(),
                "fc1233aac3ad2707d14c9ae42016b5402753f755f0d07cc5c41dc4190e95d299".to_owned()
            ),
            (
                "rkt".to_owned(),
                "https://github.com/rkt/rkt/releases/download/v1.30.0/rkt-v1.30.0.tar.gz"
                    .to_owned(),
                "812b7d80ae66634286df3eb6d954cc99836aebcd79808b9ee2751dfd1f54421c".to_owned()
            ),
        ]
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

/// profiles/etcd-server.toml beside the container host: Debian's etcd
/// resolves from trixie and its packages hold the unit the fragment enables
/// and the etcdctl that puts flannel's configuration; flanneld is pointed
/// at the local etcd (its options file, which is also what starts it).
#[test]
fn etcd_server_fragment_brings_debian_etcd() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let work = tempfile::tempdir().unwrap();
    let profile = work.path().join("etcd.toml");
    std::fs::write(
        &profile,
        format!(
            "schema = 1\nextends = [{:?}, {:?}]\n\n[image]\nname = \"etcd-host\"\n",
            root.join("tests/container-host-test.toml"),
            root.join("profiles/etcd-server.toml"),
        ),
    )
    .unwrap();
    let loaded = craton::profile::load(&profile).unwrap();
    assert!(loaded.units.enable.iter().any(|u| u == "etcd.service"));
    assert!(loaded.units.enable.iter().any(|u| u == "docker.socket"));
    let options = loaded
        .files
        .iter()
        .find(|f| f.path == "/etc/flannel/options.env")
        .expect("the fragment writes flannel's options");
    assert!(
        options
            .content
            .contains("FLANNELD_ETCD_ENDPOINTS=http://127.0.0.1:2379\n"),
        "{}",
        options.content
    );
    let ctx = craton::context::Context::new(&craton::context::Options {
        lock: Some(work.path().join("etcd.lock")),
        ..craton::context::Options::for_profile(&profile)
    })
    .unwrap();
    let lock = craton::resolve::run(&ctx).unwrap();
    craton::fetch::run(&ctx, &lock).unwrap();
    for (package, file) in [
        ("etcd-server", "./usr/lib/systemd/system/etcd.service"),
        ("etcd-client", "./usr/bin/etcdctl"),
    ] {
        let deb = lock
            .packages
            .iter()
            .find(|p| p.name == package)
            .unwrap_or_else(|| panic!("{package} is not in the lock"));
        let out = std::process::Command::new("dpkg-deb")
            .arg("--contents")
            .arg(ctx.cache.path_of(&deb.sha256))
            .output()
            .unwrap();
        let list = String::from_utf8_lossy(&out.stdout);
        assert!(
            list.lines().any(|l| l.ends_with(file)),
            "{package} {} has no {file}",
            deb.version
        );
        eprintln!("{package} {}: {file}", deb.version);
    }
}
