//! The check against the real container-host closure: unpack and register
//! every locked .deb, then ask the host's dpkg what it sees. Skipped with a
//! note unless CRATON_TEST_DEBS_LOCK (a craton.lock) and CRATON_TEST_DEBS_DIR
//! (a directory of .debs named by sha256) are set; CRATON_TEST_KEEP_TREE
//! keeps the tree at that path for inspection; CRATON_TEST_DEBS_ONLY (names,
//! comma-separated) unpacks only those packages.

use std::path::PathBuf;
use std::time::Instant;

use crate::deb::dpkgdb::register;
use crate::deb::unpack::{DebInput, unpack_all};
use crate::lock::Lock;
use crate::process::Cmd;

fn inputs() -> Option<Vec<DebInput>> {
    let (Ok(lock), Ok(dir)) = (
        std::env::var("CRATON_TEST_DEBS_LOCK"),
        std::env::var("CRATON_TEST_DEBS_DIR"),
    ) else {
        eprintln!("skipped: set CRATON_TEST_DEBS_LOCK and CRATON_TEST_DEBS_DIR to run");
        return None;
    };
    let lock = Lock::read(std::path::Path::new(&lock)).unwrap();
    let only = std::env::var("CRATON_TEST_DEBS_ONLY").ok();
    let wanted = |n: &str| only.as_ref().is_none_or(|o| o.split(',').any(|w| w == n));
    Some(
        lock.packages
            .iter()
            .filter(|p| wanted(&p.name))
            .map(|p| DebInput {
                name: p.name.clone(),
                version: p.version.clone(),
                arch: p.arch.clone(),
                path: PathBuf::from(&dir).join(p.sha256.to_hex()),
            })
            .collect(),
    )
}

#[test]
fn real_closure_is_unpacked_for_dpkg() {
    let Some(debs) = inputs() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let tree = match std::env::var("CRATON_TEST_KEEP_TREE") {
        Ok(p) => {
            let _ = std::fs::remove_dir_all(&p);
            PathBuf::from(p)
        }
        Err(_) => tmp.path().join("tree"),
    };
    let jobs = std::env::var("CRATON_TEST_JOBS")
        .ok()
        .and_then(|j| j.parse().ok())
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let t = Instant::now();
    let unpacked = unpack_all(&tree, &debs, jobs).unwrap();
    eprintln!(
        "unpacked {} packages with {jobs} jobs in {:?}",
        debs.len(),
        t.elapsed()
    );
    register(&tree, &unpacked).unwrap();

    let root = tree.to_str().unwrap();
    let audit = Cmd::new("dpkg").args(["--root", root, "--audit"]).output();
    // --audit exits 1 when it reports anything; read its text either way.
    let audit = match audit {
        Ok(o) => String::from_utf8_lossy(&o).into_owned(),
        Err(e) => format!("{e:#}"),
    };
    assert!(!audit.contains("missing"), "{audit}");
    assert!(!audit.contains("half"), "{audit}");

    let q = Cmd::new("dpkg-query")
        .args([
            "--root",
            root,
            "-W",
            "-f",
            "${Package} ${Version} ${Status}\n",
        ])
        .output()
        .unwrap();
    let q = String::from_utf8(q).unwrap();
    let mut want: Vec<String> = debs
        .iter()
        .map(|d| format!("{} {} install ok unpacked", d.name, d.version))
        .collect();
    want.sort();
    let mut got: Vec<String> = q.lines().map(str::to_owned).collect();
    got.sort();
    assert_eq!(got, want);

    // --verify checks every file against its md5sums. As after
    // `dpkg --unpack`, only conffiles differ: they are still .dpkg-new.
    let v = Cmd::new("dpkg")
        .args(["--root", root, "--verify"])
        .output()
        .unwrap();
    let conffiles: Vec<String> = unpacked
        .iter()
        .flat_map(|u| u.conffiles.iter().map(|c| c.path.clone()))
        .collect();
    for line in String::from_utf8_lossy(&v).lines() {
        let path = line
            .strip_prefix("missing   c ")
            .unwrap_or_else(|| panic!("{line}"));
        assert!(conffiles.iter().any(|c| c == path), "{line}");
        assert!(tree.join(format!(".{path}.dpkg-new")).exists(), "{line}");
    }
}
