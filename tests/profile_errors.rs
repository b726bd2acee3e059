//! Profile loading against files: every bad profile in tests/bad-profiles/
//! must fail with exactly the message in its `.error` file (and as bad
//! input, exit 2), and the complete example of docs/profile.md must load.
//!
//! Paths are relative to the crate root (where cargo runs integration
//! tests), so messages are the same on every machine. Some messages are
//! serde's, reworded by `profile::source`: unknown keys, unknown values
//! (listed from the enums' derived names) and wrong types, so renaming an
//! enum variant or updating serde or toml can change them too. After
//! changing a message on purpose,
//! `CRATON_BLESS=1 cargo test --release --test profile_errors` rewrites
//! the `.error` files; review the diff before committing.

use std::fs;
use std::path::{Path, PathBuf};

use craton::disk::Mib;
use craton::error::is_bad_input;
use craton::profile::{self, Archive, Keyring, Platform, UsrFilesystem};

const BAD: &str = "tests/bad-profiles";

fn bad_profiles() -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = fs::read_dir(BAD)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    out.sort();
    out
}

#[test]
fn bad_profiles_fail_with_their_message() {
    let bless = std::env::var_os("CRATON_BLESS").is_some();
    let profiles = bad_profiles();
    assert!(profiles.len() >= 20, "fixtures missing: {profiles:?}");
    let mut failures = Vec::new();
    for path in profiles {
        let expected_path = path.with_extension("error");
        let err = match profile::load(&path) {
            Ok(_) => {
                failures.push(format!("{}: loaded, expected an error", path.display()));
                continue;
            }
            Err(e) => e,
        };
        if !is_bad_input(&err) {
            failures.push(format!("{}: not bad input: {err:#}", path.display()));
        }
        let got = format!("{err:#}");
        if bless {
            fs::write(&expected_path, format!("{got}\n")).unwrap();
            continue;
        }
        let expected = fs::read_to_string(&expected_path)
            .unwrap_or_else(|e| panic!("{}: {e}", expected_path.display()));
        if got != expected.trim_end_matches('\n') {
            failures.push(format!(
                "{}:\n  expected: {}\n  got:      {got}",
                path.display(),
                expected.trim_end()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_error_file_has_its_profile() {
    for entry in fs::read_dir(BAD).unwrap() {
        let p = entry.unwrap().path();
        if p.extension().is_some_and(|e| e == "error") {
            assert!(
                p.with_extension("toml").exists(),
                "{} is stale",
                p.display()
            );
        }
    }
}

/// The two files of "A complete example" in docs/profile.md, so that the
/// documentation cannot drift from what loads.
fn documented_example() -> (String, String) {
    let doc = fs::read_to_string("docs/profile.md").unwrap();
    let (_, example) = doc.split_once("## A complete example").unwrap();
    let blocks: Vec<&str> = example
        .split("```toml\n")
        .skip(1)
        .map(|b| b.split_once("```").unwrap().0)
        .collect();
    assert_eq!(blocks.len(), 2, "the example is two files");
    (blocks[0].to_string(), blocks[1].to_string())
}

#[test]
fn a_complete_profile_loads() {
    let (base, host) = documented_example();
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("base.toml"), base).unwrap();
    fs::write(dir.path().join("container-host.toml"), host).unwrap();
    let p = profile::load(&dir.path().join("container-host.toml")).unwrap();
    let root = fs::canonicalize(dir.path()).unwrap();

    let host = root.join("container-host.toml");
    assert_eq!(p.path, host);
    assert_eq!(p.sources, [root.join("base.toml"), host]);
    assert_eq!(p.image.name, "container-host");
    assert_eq!(p.image.version, "0.1.0");
    assert_eq!(p.image.os_release.len(), 2);
    assert_eq!(p.image.os_release["HOME_URL"], "https://example.org/craton");

    assert_eq!(p.repositories.len(), 2);
    let security = &p.repositories[1];
    assert_eq!(security.archive, Archive::DebianSecurity);
    assert_eq!(security.components, ["main", "non-free-firmware"]);
    assert_eq!(
        p.repositories[0].mirror.as_deref(),
        Some("http://mirror.example/debian")
    );
    assert_eq!(p.repositories[0].components, ["main"]);
    assert_eq!(p.repositories[0].keyring, Keyring::Builtin);

    assert_eq!(p.packages.include.len(), 9);
    assert_eq!(p.packages.include[0], "systemd");
    assert_eq!(p.packages.include[8], "iptables");
    assert_eq!(p.packages.exclude, ["initramfs-tools"]);

    let rkt = &p.artifacts[0];
    assert_eq!(
        rkt.sha256.to_string(),
        "812b7d80ae66634286df3eb6d954cc99836aebcd79808b9ee2751dfd1f54421c"
    );
    assert_eq!(rkt.files.len(), 2);
    assert_eq!(rkt.files[1].mode, 0o644);
    let flannel = &p.artifacts[1];
    let local = root.join("fixtures/flanneld-amd64");
    assert_eq!(flannel.url, format!("file://{}", local.display()));
    assert_eq!(flannel.files[0].source, None);

    assert_eq!(p.initrd.modules, ["virtio_blk", "dm_verity", "erofs"]);
    assert_eq!(p.platforms.len(), 2);
    assert_eq!(p.platforms[&Platform::Gce].kernel_args, ["net.ifnames=0"]);
    assert_eq!(p.disk.usr, Mib(1536));
    assert_eq!(p.disk.esp, profile::DEFAULT_ESP_MIB);
    assert_eq!(p.disk.usr_filesystem, UsrFilesystem::Erofs);
    assert_eq!(p.boot.timeout_secs, 0);
    assert_eq!(p.boot.kernel_args, ["quiet", "systemd.show_status=auto"]);
}

/// The shipped profiles and the test profile load, and the test profile
/// keeps the default package set while replacing both artifacts by name.
#[test]
fn shipped_profiles_load() {
    let load =
        |name: &str| profile::load(Path::new(name)).unwrap_or_else(|e| panic!("{name}: {e:#}"));
    let base = load("profiles/base.toml");
    // base.toml restates craton's default filter before narrowing the
    // kernel modules (a file that sets the list replaces the default).
    for d in profile::DEFAULT_PATH_EXCLUDE {
        assert!(
            base.packages.paths.exclude.iter().any(|p| p == d),
            "base.toml lacks {d}"
        );
    }
    for d in profile::DEFAULT_PATH_INCLUDE {
        assert!(
            base.packages.paths.include.iter().any(|p| p == d),
            "base.toml lacks {d}"
        );
    }
    let real = load("profiles/container-host.toml");
    let test = load("tests/container-host-test.toml");
    assert_eq!(real.packages, test.packages);
    assert_eq!(real.repositories, test.repositories);
    let names = |p: &profile::Profile| {
        p.artifacts
            .iter()
            .map(|a| a.name.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(names(&real), ["rkt", "flannel"]);
    assert_eq!(names(&test), ["rkt", "flannel"]);
    for (r, t) in real.artifacts.iter().zip(&test.artifacts) {
        assert!(r.url.starts_with("https://github.com/"), "{}", r.url);
        assert!(t.url.starts_with("file:///"), "{}", t.url);
        assert_ne!(r.sha256, t.sha256);
        assert_eq!(r.files, t.files, "the stand-in must install the same files");
    }
}
