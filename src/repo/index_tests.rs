//! Tests of suite loading against a mirror tree in a temporary directory
//! (file:// URLs), signed with a key generated at test time.

use std::io::Write;
use std::path::Path;

use super::*;
use crate::digest::Sha256;
use crate::repo::testkeys::{clearsign, trusted};

const SHA: &str = "ee81302a1d5b7434762b6e784a572854d4b6cf6235e33e2d104ad4e1cae71ab4";

fn packages(version: &str) -> String {
    format!(
        "Package: hello\nVersion: {version}\nArchitecture: amd64\nFilename: pool/h.deb\n\
         Size: 1\nSHA256: {SHA}\n\n\
         Package: tzdata\nVersion: 2025b-4\nArchitecture: all\nFilename: pool/t.deb\n\
         Size: 1\nSHA256: {SHA}\n\n\
         Package: hello-i386\nVersion: 1\nArchitecture: i386\nFilename: pool/x.deb\n\
         Size: 1\nSHA256: {SHA}\n"
    )
}

fn xz(data: &[u8]) -> Vec<u8> {
    let mut e = xz2::write::XzEncoder::new(Vec::new(), 6);
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn gz(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// Writes `files` (path under dists/<suite>/, content) and a signed
/// InRelease listing `listed` of them (`header` adds Release fields).
fn publish(root: &Path, suite: &str, header: &str, files: &[(&str, Vec<u8>)], listed: &[&str]) {
    let dists = root.join("dists").join(suite);
    let mut sums = String::new();
    for (path, data) in files {
        let p = dists.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, data).unwrap();
        if listed.contains(path) {
            sums.push_str(&format!(" {} {} {path}\n", Sha256::of(data), data.len()));
        }
    }
    let release = format!("Codename: {suite}\nComponents: main\n{header}SHA256:\n{sums}");
    std::fs::write(
        dists.join("InRelease"),
        clearsign(&release, &[trusted().primary()]),
    )
    .unwrap();
}

fn source(root: &Path, suite: &str) -> SuiteSource {
    SuiteSource {
        repository: "debian".into(),
        suite: suite.into(),
        base_url: format!("file://{}", root.display()),
        components: vec!["main".into()],
        keyring: trusted().keyring(),
    }
}

fn setup() -> (tempfile::TempDir, tempfile::TempDir, Cache) {
    let mirror = tempfile::tempdir().unwrap();
    let cache_dir = tempfile::tempdir().unwrap();
    let cache = Cache::open(cache_dir.path()).unwrap();
    (mirror, cache_dir, cache)
}

const XZ: &str = "main/binary-amd64/Packages.xz";
const GZ: &str = "main/binary-amd64/Packages.gz";
const PLAIN: &str = "main/binary-amd64/Packages";

#[test]
fn loads_xz_index_and_reuses_the_cache() {
    let (mirror, _c, cache) = setup();
    let text = packages("1.0");
    let files = [
        (XZ, xz(text.as_bytes())),
        (GZ, gz(b"wrong")),
        (PLAIN, text.clone().into()),
    ];
    publish(mirror.path(), "trixie", "", &files, &[XZ, GZ, PLAIN]);
    let recs = load_suite(&Http::new(), &cache, &source(mirror.path(), "trixie")).unwrap();
    let names: Vec<_> = recs.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["hello", "tzdata"], "xz taken; i386 skipped");
    assert_eq!(&*recs[0].suite, "trixie");
    assert!(cache.contains(&Sha256::of(&files[0].1)));
    // With the index gone from the mirror, the cached copy is used.
    std::fs::remove_file(mirror.path().join("dists/trixie").join(XZ)).unwrap();
    let again = load_suite(&Http::new(), &cache, &source(mirror.path(), "trixie")).unwrap();
    assert_eq!(again.len(), 2);
}

#[test]
fn binary_all_is_read_only_when_release_lists_it_apart() {
    let (mirror, _c, cache) = setup();
    let all = format!(
        "Package: only-in-all\nVersion: 1\nArchitecture: all\nFilename: pool/o.deb\n\
         Size: 1\nSHA256: {SHA}\n"
    );
    const ALL: &str = "main/binary-all/Packages.xz";
    let files = [
        (XZ, xz(packages("1.0").as_bytes())),
        (ALL, xz(all.as_bytes())),
    ];
    let with_all = "Architectures: all amd64\n";
    publish(mirror.path(), "trixie", with_all, &files, &[XZ, ALL]);
    let recs = load_suite(&Http::new(), &cache, &source(mirror.path(), "trixie")).unwrap();
    assert_eq!(recs.len(), 3);
    assert_eq!(recs[2].name, "only-in-all");
    let promise = "Architectures: all amd64\nNo-Support-for-Architecture-all: Packages\n";
    publish(mirror.path(), "forky", promise, &files, &[XZ, ALL]);
    let recs = load_suite(&Http::new(), &cache, &source(mirror.path(), "forky")).unwrap();
    assert_eq!(recs.len(), 2, "binary-all is not read");
    // Like the security archive: `all` not among the Architectures.
    publish(
        mirror.path(),
        "sid",
        "Architectures: amd64\n",
        &files,
        &[XZ, ALL],
    );
    let recs = load_suite(&Http::new(), &cache, &source(mirror.path(), "sid")).unwrap();
    assert_eq!(recs.len(), 2, "binary-all is not read");
}

#[test]
fn falls_back_to_gz_then_uncompressed() {
    let (mirror, _c, cache) = setup();
    let text = packages("1.0");
    publish(
        mirror.path(),
        "trixie",
        "",
        &[(GZ, gz(text.as_bytes()))],
        &[GZ],
    );
    assert_eq!(
        load_suite(&Http::new(), &cache, &source(mirror.path(), "trixie"))
            .unwrap()
            .len(),
        2
    );
    publish(
        mirror.path(),
        "bookworm",
        "",
        &[(PLAIN, text.into())],
        &[PLAIN],
    );
    assert_eq!(
        load_suite(&Http::new(), &cache, &source(mirror.path(), "bookworm"))
            .unwrap()
            .len(),
        2
    );
}

#[test]
fn tampered_index_fails_and_leaves_nothing_in_the_cache() {
    let (mirror, cache_dir, cache) = setup();
    let good = xz(packages("1.0").as_bytes());
    publish(mirror.path(), "trixie", "", &[(XZ, good.clone())], &[XZ]);
    // Same size, different bytes: only the digest can tell.
    let mut evil = good.clone();
    let last = evil.len() - 1;
    evil[last] ^= 0xff;
    let path = mirror.path().join("dists/trixie").join(XZ);
    std::fs::write(&path, &evil).unwrap();
    let err = format!(
        "{:#}",
        load_suite(&Http::new(), &cache, &source(mirror.path(), "trixie")).unwrap_err()
    );
    let url = format!("file://{}", path.display());
    assert!(err.contains(&format!("sha256 mismatch for {url}")), "{err}");
    assert_eq!(
        std::fs::read_dir(cache_dir.path().join("sha256"))
            .unwrap()
            .count(),
        0
    );
    assert_eq!(
        std::fs::read_dir(cache_dir.path().join("tmp"))
            .unwrap()
            .count(),
        0
    );
    // A different size is reported as such.
    std::fs::write(&path, b"short").unwrap();
    let err = format!(
        "{:#}",
        load_suite(&Http::new(), &cache, &source(mirror.path(), "trixie")).unwrap_err()
    );
    assert!(err.contains(&format!("size mismatch for {url}")), "{err}");
}

#[test]
fn missing_component_and_wrong_suite_are_errors() {
    let (mirror, _c, cache) = setup();
    publish(
        mirror.path(),
        "trixie",
        "",
        &[(XZ, xz(packages("1").as_bytes()))],
        &[XZ],
    );
    let mut src = source(mirror.path(), "trixie");
    src.components.push("contrib".into());
    let err = format!("{:#}", load_suite(&Http::new(), &cache, &src).unwrap_err());
    assert!(
        err.contains("the Release of debian/trixie lists no binary-amd64 Packages index for component contrib"),
        "{err}"
    );
    // A validly signed Release of another suite must not stand in.
    let other = mirror.path().join("dists/other");
    std::fs::create_dir_all(&other).unwrap();
    std::fs::copy(
        mirror.path().join("dists/trixie/InRelease"),
        other.join("InRelease"),
    )
    .unwrap();
    let err = format!(
        "{:#}",
        load_suite(&Http::new(), &cache, &source(mirror.path(), "other")).unwrap_err()
    );
    assert!(
        err.contains("is for suite ? (codename trixie), not other"),
        "{err}"
    );
}

#[test]
fn by_hash_is_used_when_advertised() {
    let (mirror, _c, cache) = setup();
    let data = xz(packages("1.0").as_bytes());
    publish(
        mirror.path(),
        "trixie",
        "Acquire-By-Hash: yes\n",
        &[(XZ, data.clone())],
        &[XZ],
    );
    // Only the by-hash copy exists.
    let dir = mirror.path().join("dists/trixie/main/binary-amd64");
    std::fs::create_dir_all(dir.join("by-hash/SHA256")).unwrap();
    std::fs::rename(
        dir.join("Packages.xz"),
        dir.join("by-hash/SHA256").join(Sha256::of(&data).to_hex()),
    )
    .unwrap();
    assert_eq!(
        load_suite(&Http::new(), &cache, &source(mirror.path(), "trixie"))
            .unwrap()
            .len(),
        2
    );
}

#[test]
fn load_all_merges_suites_in_order() {
    let (mirror, _c, cache) = setup();
    publish(
        mirror.path(),
        "trixie",
        "",
        &[(XZ, xz(packages("1.0").as_bytes()))],
        &[XZ],
    );
    publish(
        mirror.path(),
        "trixie-security",
        "",
        &[(XZ, xz(packages("1.0+deb13u1").as_bytes()))],
        &[XZ],
    );
    let srcs = [
        source(mirror.path(), "trixie"),
        source(mirror.path(), "trixie-security"),
    ];
    let u = load_all(&Http::new(), &cache, &srcs).unwrap().universe;
    assert_eq!(u.suites(), ["debian/trixie", "debian/trixie-security"]);
    assert_eq!(u.record_count(), 4);
    let hello = u.candidate("hello").unwrap();
    assert_eq!(
        (hello.version.as_str(), &*hello.suite),
        ("1.0+deb13u1", "trixie-security")
    );
    assert_eq!(&*u.candidate("tzdata").unwrap().suite, "trixie");
}

/// Loads trixie's main index from a real mirror when CRATON_REAL_MIRROR
/// names its root (e.g. `http://<host>/debian`), with the builtin keyring,
/// twice: the second load must come from the cache. Then loads trixie,
/// trixie-updates and (when CRATON_REAL_SECURITY_MIRROR names the security
/// archive's root) trixie-security together and resolves a container host.
#[test]
fn real_mirror() {
    use crate::repo::solver::{Request, check_closure, solve};
    let Ok(base_url) = std::env::var("CRATON_REAL_MIRROR") else {
        eprintln!("CRATON_REAL_MIRROR not set; skipping");
        return;
    };
    let (_m, _c, cache) = setup();
    let suite = |base: &str, suite: &str| SuiteSource {
        repository: "debian".into(),
        suite: suite.into(),
        base_url: base.to_owned(),
        components: vec!["main".into()],
        keyring: Keyring::builtin().unwrap(),
    };
    for round in ["download", "cached"] {
        let t = std::time::Instant::now();
        let recs = load_suite(&Http::new(), &cache, &suite(&base_url, "trixie")).unwrap();
        eprintln!("{round}: {} records in {:?}", recs.len(), t.elapsed());
        assert!(recs.len() > 50_000);
    }
    let mut srcs = vec![
        suite(&base_url, "trixie"),
        suite(&base_url, "trixie-updates"),
    ];
    if let Ok(sec) = std::env::var("CRATON_REAL_SECURITY_MIRROR") {
        srcs.push(suite(&sec, "trixie-security"));
    }
    let t = std::time::Instant::now();
    let u = load_all(&Http::new(), &cache, &srcs).unwrap().universe;
    let loaded = t.elapsed();
    let include = "systemd systemd-sysv udev dbus docker.io docker-cli containerd runc iptables \
                   linux-image-amd64 kmod iproute2 openssh-server systemd-resolved \
                   systemd-timesyncd ca-certificates";
    let req = Request {
        include: include.split_whitespace().map(str::to_owned).collect(),
        exclude: vec![],
        with_required: true,
    };
    let set = solve(&u, &req).unwrap();
    eprintln!(
        "load_all {loaded:?} ({} records), resolve {:?}: {} packages",
        u.record_count(),
        t.elapsed() - loaded,
        set.len()
    );
    for p in set.iter().filter(|p| &*p.suite != "trixie") {
        eprintln!("  {}", p.describe());
    }
    assert_eq!(check_closure(&set), Vec::<String>::new());
}
