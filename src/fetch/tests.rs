//! Tests of [`fetch`] against the loopback [`TestServer`]: parallel
//! downloads, the cache short cut, retries, tampered and missing files, and
//! the artifact directory.

use std::fs;
use std::path::Path;
use std::time::Duration;

use super::testserver::TestServer;
use super::*;

/// Deterministic content of `len` bytes, different for each `seed`.
fn content(seed: u8, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

fn package(server: &TestServer, path: &str, body: &[u8]) -> Item {
    server.serve(path, body.to_vec());
    Item {
        label: path.trim_start_matches('/').to_owned(),
        url: server.url(path),
        sha256: Sha256::of(body),
        size: Some(body.len() as u64),
        origin: Origin::Package,
    }
}

fn artifact(server: &TestServer, name: &str, file_name: &str, body: &[u8]) -> Item {
    Item {
        label: format!("artifact {name}"),
        url: server.url(&format!("/releases/{file_name}")),
        sha256: Sha256::of(body),
        size: None,
        origin: Origin::Artifact {
            name: name.to_owned(),
            file_name: file_name.to_owned(),
        },
    }
}

fn plain(jobs: usize) -> Options {
    Options {
        jobs,
        artifact_dir: None,
        progress: Progress::Plain,
    }
}

fn entries(dir: &Path) -> usize {
    fs::read_dir(dir).unwrap().count()
}

#[test]
fn fetches_in_parallel_and_then_from_the_cache() {
    let server = TestServer::start();
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::open(dir.path()).unwrap();
    // Sizes around the HTTP copy buffer, so some files take several chunks.
    let sizes = [0, 1, 1000, 300_000, 700_000, 50_000, 123];
    let bodies: Vec<Vec<u8>> = (0u8..).zip(sizes).map(|(s, n)| content(s, n)).collect();
    let items: Vec<Item> = bodies
        .iter()
        .enumerate()
        .map(|(i, b)| package(&server, &format!("/pool/p{i}.deb"), b))
        .collect();

    let report = fetch(&Http::new(), &cache, &items, &plain(3)).unwrap();
    assert_eq!(report.total, items.len());
    assert_eq!((report.downloaded, report.cached), (items.len(), 0));
    let bytes: usize = sizes.iter().sum();
    assert_eq!(report.bytes_downloaded, bytes as u64);
    for (item, body) in items.iter().zip(&bodies) {
        assert_eq!(&fs::read(cache.path_of(&item.sha256)).unwrap(), body);
    }
    assert_eq!(entries(&dir.path().join("tmp")), 0);
    assert_eq!(server.total_hits(), items.len());

    let again = fetch(&Http::new(), &cache, &items, &plain(3)).unwrap();
    assert_eq!((again.cached, again.downloaded), (items.len(), 0));
    assert_eq!(again.bytes_downloaded, 0);
    assert_eq!(
        server.total_hits(),
        items.len(),
        "no request the second time"
    );
}

#[test]
fn parallel_downloads_are_bounded_by_jobs() {
    let server = TestServer::start();
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::open(dir.path()).unwrap();
    server.delay(Duration::from_millis(100));
    let items: Vec<Item> = (0..7u8)
        .map(|i| package(&server, &format!("/p{i}.deb"), &content(i, 100)))
        .collect();
    fetch(&Http::new(), &cache, &items, &plain(3)).unwrap();
    assert_eq!(server.max_in_flight(), 3);
}

#[test]
fn largest_files_go_first() {
    let server = TestServer::start();
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::open(dir.path()).unwrap();
    let mut items: Vec<Item> = [10, 3000, 200, 40_000, 5]
        .into_iter()
        .zip(0u8..)
        .map(|(len, seed)| package(&server, &format!("/{len}.deb"), &content(seed, len)))
        .collect();
    // No size known: an artifact, assumed large.
    items.push(artifact(&server, "rkt", "rkt.tar.gz", &content(99, 7)));
    server.serve("/releases/rkt.tar.gz", content(99, 7));
    fetch(&Http::new(), &cache, &items, &plain(1)).unwrap();
    let order = [
        "/releases/rkt.tar.gz",
        "/40000.deb",
        "/3000.deb",
        "/200.deb",
        "/10.deb",
        "/5.deb",
    ];
    assert_eq!(server.requests(), order);
}

#[test]
fn duplicate_digests_are_fetched_once() {
    let server = TestServer::start();
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::open(dir.path()).unwrap();
    let body = content(7, 5000);
    let a = package(&server, "/a.deb", &body);
    let mut b = a.clone();
    b.label = "b.deb".into();
    let report = fetch(&Http::new(), &cache, &[a, b], &plain(2)).unwrap();
    assert_eq!((report.total, report.downloaded), (1, 1));
    assert_eq!(server.total_hits(), 1);
}

#[test]
fn tampered_content_is_refused_and_leaves_nothing() {
    let server = TestServer::start();
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::open(dir.path()).unwrap();
    let good = content(1, 4096);
    let item = package(&server, "/pool/x.deb", &good);
    // Same length, one byte changed: only the digest can tell.
    let mut evil = good.clone();
    evil[100] ^= 1;
    server.serve("/pool/x.deb", evil.clone());

    let err = fetch(&Http::new(), &cache, std::slice::from_ref(&item), &plain(2)).unwrap_err();
    let msg = format!("{err:#}");
    assert!(msg.contains("1 package could not be fetched"), "{msg}");
    assert!(msg.contains(&item.url), "{msg}");
    assert!(msg.contains(&item.sha256.to_hex()), "{msg}");
    assert!(msg.contains(&Sha256::of(&evil).to_hex()), "{msg}");
    assert_eq!(entries(&dir.path().join("sha256")), 0);
    assert_eq!(entries(&dir.path().join("tmp")), 0);
}

#[test]
fn wrong_size_is_refused() {
    let server = TestServer::start();
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::open(dir.path()).unwrap();
    let mut item = package(&server, "/pool/s.deb", &content(2, 10));
    item.size = Some(11);
    let err = fetch(&Http::new(), &cache, &[item], &plain(1)).unwrap_err();
    assert!(
        format!("{err:#}").contains("expected 11 bytes, got 10"),
        "{err:#}"
    );
    assert_eq!(entries(&dir.path().join("sha256")), 0);
    assert_eq!(entries(&dir.path().join("tmp")), 0);
}

#[test]
fn transient_failures_are_retried() {
    let server = TestServer::start();
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::open(dir.path()).unwrap();
    let a = package(&server, "/a.deb", &content(3, 600_000));
    let b = package(&server, "/b.deb", &content(4, 600_000));
    server.fail("/a.deb", 1);
    // A transfer that breaks off half way leaves bytes in the temporary
    // file: the retry must start from an empty one, or the digest is wrong.
    server.truncate("/b.deb", 1);

    // The bar (hidden when stderr is not a terminal) takes back the bytes of
    // the broken try; this runs that path.
    let opts = Options {
        progress: Progress::Bar,
        ..plain(2)
    };
    let report = fetch(&Http::new(), &cache, &[a.clone(), b.clone()], &opts).unwrap();
    assert_eq!(report.downloaded, 2);
    assert_eq!(report.bytes_downloaded, 1_200_000);
    assert_eq!((server.hits("/a.deb"), server.hits("/b.deb")), (2, 2));
    assert!(cache.verify(&a.sha256).unwrap() && cache.verify(&b.sha256).unwrap());
    assert_eq!(entries(&dir.path().join("tmp")), 0);
}

#[test]
fn all_package_failures_are_reported_together() {
    let server = TestServer::start();
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::open(dir.path()).unwrap();
    let ok = package(&server, "/ok.deb", &content(5, 100));
    let mut gone = Vec::new();
    for (seed, name) in [(6, "/gone1.deb"), (7, "/gone2.deb")] {
        let mut item = package(&server, name, &content(seed, 100));
        item.url = server.url(&format!("/missing{name}"));
        gone.push(item);
    }
    let items = [gone[0].clone(), ok.clone(), gone[1].clone()];
    let err = fetch(&Http::new(), &cache, &items, &plain(2)).unwrap_err();
    let msg = format!("{err:#}");
    assert!(msg.starts_with("2 packages could not be fetched:"), "{msg}");
    for g in &gone {
        assert!(msg.contains(&format!("  {}: ", g.label)), "{msg}");
        assert!(msg.contains(&g.url) && msg.contains("404"), "{msg}");
        // A 404 is permanent: one request, no retries.
        assert_eq!(server.hits(g.url.trim_start_matches(&server.url(""))), 1);
    }
    assert!(!msg.contains("--artifact-dir"), "{msg}");
    assert!(cache.verify(&ok.sha256).unwrap());
    assert_eq!(entries(&dir.path().join("tmp")), 0);
}

#[test]
fn artifacts_come_from_the_artifact_dir() {
    let server = TestServer::start();
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::open(dir.path().join("cache")).unwrap();
    let offline = dir.path().join("artifacts");
    fs::create_dir(&offline).unwrap();
    let tarball = content(8, 9000);
    let binary = content(9, 3000);
    // One found by its file name, one by its artifact name.
    fs::write(offline.join("rkt-v1.30.0.tar.gz"), &tarball).unwrap();
    fs::write(offline.join("flannel"), &binary).unwrap();
    let items = [
        artifact(&server, "rkt", "rkt-v1.30.0.tar.gz", &tarball),
        artifact(&server, "flannel", "flanneld-amd64", &binary),
    ];
    let opts = Options {
        artifact_dir: Some(offline.clone()),
        ..plain(2)
    };
    let report = fetch(&Http::new(), &cache, &items, &opts).unwrap();
    assert_eq!((report.from_artifact_dir, report.downloaded), (2, 0));
    assert_eq!(server.total_hits(), 0, "the network is not asked");
    assert!(items.iter().all(|i| cache.verify(&i.sha256).unwrap()));
}

#[test]
fn a_wrong_file_in_the_artifact_dir_fails_the_digest_check() {
    let server = TestServer::start();
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::open(dir.path().join("cache")).unwrap();
    let offline = dir.path().join("artifacts");
    fs::create_dir(&offline).unwrap();
    let wanted = content(10, 2000);
    let file = offline.join("rkt-v1.30.0.tar.gz");
    fs::write(&file, content(11, 2000)).unwrap();
    // The right file is on the server, but a file the user put in the
    // artifact directory wins and must not be replaced silently.
    server.serve("/releases/rkt-v1.30.0.tar.gz", wanted.clone());
    let items = [artifact(&server, "rkt", "rkt-v1.30.0.tar.gz", &wanted)];
    let opts = Options {
        artifact_dir: Some(offline),
        ..plain(1)
    };
    let err = fetch(&Http::new(), &cache, &items, &opts).unwrap_err();
    let msg = format!("{err:#}");
    assert!(msg.contains("1 artifact could not be fetched"), "{msg}");
    assert!(
        msg.contains(&format!("sha256 mismatch for {}", file.display())),
        "{msg}"
    );
    assert_eq!(server.total_hits(), 0);
    assert_eq!(entries(&dir.path().join("cache/sha256")), 0);
    assert_eq!(entries(&dir.path().join("cache/tmp")), 0);
}

#[test]
fn missing_artifacts_are_reported_together_with_the_way_out() {
    let server = TestServer::start();
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::open(dir.path()).unwrap();
    let pkgs = [
        package(&server, "/pool/a.deb", &content(12, 400_000)),
        package(&server, "/pool/b.deb", &content(13, 1000)),
    ];
    // Not served: both give 404.
    let rkt = artifact(&server, "rkt", "rkt-v1.30.0.tar.gz", &content(14, 10));
    let flannel = artifact(&server, "flannel", "flanneld-amd64", &content(15, 10));
    let items = [
        rkt.clone(),
        pkgs[0].clone(),
        flannel.clone(),
        pkgs[1].clone(),
    ];

    let err = fetch(&Http::new(), &cache, &items, &plain(4)).unwrap_err();
    let msg = format!("{err:#}");
    let lines: Vec<&str> = msg.lines().collect();
    assert_eq!(lines[0], "2 artifacts could not be fetched:", "{msg}");
    assert!(lines[1].starts_with(&format!("  flannel: {}: ", flannel.url)));
    assert!(lines[2].starts_with(&format!("  rkt: {}: ", rkt.url)));
    assert!(
        lines[1].contains("404") && lines[2].contains("404"),
        "{msg}"
    );
    assert_eq!(
        lines[3],
        "Download them on a machine that can, put flanneld-amd64 and rkt-v1.30.0.tar.gz \
         in a folder and pass --artifact-dir DIR (digests are still checked)"
    );
    assert_eq!(lines.len(), 4, "{msg}");
    assert!(pkgs.iter().all(|p| cache.verify(&p.sha256).unwrap()));
    assert_eq!(entries(&dir.path().join("sha256")), 2);
    assert_eq!(entries(&dir.path().join("tmp")), 0);

    // With an artifact directory that lacks them, the message names it.
    let offline = tempfile::tempdir().unwrap();
    let opts = Options {
        artifact_dir: Some(offline.path().to_owned()),
        ..plain(2)
    };
    let err = fetch(&Http::new(), &cache, &items, &opts).unwrap_err();
    let msg = format!("{err:#}");
    let dir_name = offline.path().display();
    assert!(
        msg.contains(&format!(
            "rkt-v1.30.0.tar.gz is not in the artifact directory {dir_name} either"
        )),
        "{msg}"
    );
    assert!(
        msg.ends_with(&format!(
            "put flanneld-amd64 and rkt-v1.30.0.tar.gz in {dir_name} (digests are still checked)"
        )),
        "{msg}"
    );
}

#[test]
fn join_and_reads_like_english() {
    assert_eq!(join_and(&[]), "");
    assert_eq!(join_and(&["a"]), "a");
    assert_eq!(join_and(&["a", "b"]), "a and b");
    assert_eq!(join_and(&["a", "b", "c"]), "a, b and c");
}
