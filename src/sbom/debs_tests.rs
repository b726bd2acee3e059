//! Reading .debs built here with dpkg-deb, and the rootfs tree.

use std::path::{Path, PathBuf};

use super::super::debs::gather;
use super::*;
use crate::cache::Cache;

/// Reading .debs: the control file, the copyright file from the tree for
/// image packages and from the .deb otherwise, doc folders that are links
/// to another package's, and links in the tree that point out of it.
#[test]
fn gather_reads_control_and_copyright_files() {
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::open(dir.path().join("cache")).unwrap();
    let dep5 = format!("{FORMAT}\n\nFiles: *\nCopyright: x\nLicense: ISC\n");
    let base = build_deb(
        dir.path(),
        "base",
        &[("usr/share/doc/base/copyright", &dep5)],
        &[],
    );
    let link = build_deb(
        dir.path(),
        "linked",
        &[],
        &[("usr/share/doc/linked", "base")],
    );
    let filelink = build_deb(
        dir.path(),
        "filelinked",
        &[],
        &[("usr/share/doc/filelinked/copyright", "../base/copyright")],
    );
    let nodoc = build_deb(
        dir.path(),
        "nodoc",
        &[("usr/bin/nodoc", "#!/bin/sh\n")],
        &[],
    );
    let escape = build_deb(
        dir.path(),
        "escape",
        &[("usr/share/doc/escape/copyright", "from the deb\n")],
        &[],
    );
    let mut locked = BTreeMap::new();
    for (name, path) in [
        ("base", &base),
        ("linked", &link),
        ("filelinked", &filelink),
        ("nodoc", &nodoc),
        ("escape", &escape),
    ] {
        let bytes = std::fs::read(path).unwrap();
        let sha = Sha256::of(&bytes);
        cache.insert_bytes(&bytes, &sha, name).unwrap();
        let mut p = pkg(name, "1");
        p.sha256 = sha;
        p.size = bytes.len() as u64;
        locked.insert(name, p);
    }
    // The tree has its own base copyright (it wins for an image package),
    // and escape's doc folder links out of the tree, to a file that must
    // not be read.
    let tree = dir.path().join("tree");
    std::fs::create_dir_all(tree.join("usr/share/doc/base")).unwrap();
    std::fs::write(tree.join("usr/share/doc/base/copyright"), "from the tree\n").unwrap();
    std::fs::create_dir_all(dir.path().join("outside")).unwrap();
    std::fs::write(dir.path().join("outside/copyright"), "host file\n").unwrap();
    std::os::unix::fs::symlink("../../../../outside", tree.join("usr/share/doc/escape")).unwrap();
    std::fs::create_dir_all(tree.join("outside")).unwrap();

    let lock = Lock::new(
        inputs(),
        vec![locked["base"].clone(), locked["escape"].clone()],
        vec![],
        vec![locked["linked"].clone(), locked["nodoc"].clone()],
        vec![locked["filelinked"].clone(), locked["base"].clone()],
    );
    let facts = gather(&lock, &cache, Some(&tree), 2).unwrap();
    let f = |n: &str| &facts[&locked[n].sha256];
    assert_eq!(facts.len(), 5);
    assert_eq!(f("base").copyright.as_deref(), Some("from the tree\n"));
    assert_eq!(f("escape").copyright.as_deref(), Some("from the deb\n"));
    // Links resolve to the package that owns the folder (here the tree's
    // file, since base is an image package).
    assert_eq!(f("linked").copyright.as_deref(), Some("from the tree\n"));
    assert_eq!(
        f("filelinked").copyright.as_deref(),
        Some("from the tree\n")
    );
    assert_eq!(f("nodoc").copyright, None);
    assert_eq!(
        f("nodoc").maintainer.as_deref(),
        Some("Craton Test Maintainers <t@example.invalid>")
    );
    assert_eq!(f("nodoc").summary.as_deref(), Some("test package nodoc"));
    assert_eq!(
        f("nodoc").homepage.as_deref(),
        Some("https://example.org/nodoc")
    );
    assert_eq!(f("nodoc").source.as_deref(), Some("nodoc-src (0.9)"));

    // Without a tree everything comes from the .debs.
    let facts = gather(&lock, &cache, None, 1).unwrap();
    assert_eq!(
        facts[&locked["linked"].sha256].copyright.as_deref(),
        Some(dep5.as_str())
    );

    // A .deb missing from the cache is an error that names it.
    let mut gone = lock.clone();
    gone.tools[0].sha256 = Sha256::of(b"not cached");
    let err = gather(&gone, &cache, None, 2).unwrap_err();
    assert!(
        format!("{err:#}").contains("reading linked 1 for the SBOM"),
        "{err:#}"
    );
}

/// A .deb of `name` 1 with these files and symlinks, built by dpkg-deb.
fn build_deb(dir: &Path, name: &str, files: &[(&str, &str)], links: &[(&str, &str)]) -> PathBuf {
    let root = dir.join(format!("src-{name}"));
    std::fs::create_dir_all(root.join("DEBIAN")).unwrap();
    std::fs::write(
        root.join("DEBIAN/control"),
        format!(
            "Package: {name}\nSource: {name}-src (0.9)\nVersion: 1\nArchitecture: all\n\
             Maintainer: Craton Test Maintainers <t@example.invalid>\n\
             Homepage: https://example.org/{name}\n\
             Description: test package {name}\n A package for craton's tests.\n"
        ),
    )
    .unwrap();
    for (path, text) in files {
        let p = root.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
    for (path, target) in links {
        let p = root.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::os::unix::fs::symlink(target, p).unwrap();
    }
    let deb = dir.join(format!("{name}.deb"));
    crate::deb::dpkg_deb_build(&root, &deb, &["--root-owner-group"]);
    deb
}
