//! The SBOM of the real container-host lock: tests/container-host-test.toml
//! resolved against the real Debian archive and fetched into the default
//! cache, as `crate::build::test_tools` does (the .debs are shared with
//! it). The image's copyright files come from the cached base tree when a
//! build of this lock made one, else from the .debs. The document is
//! checked by the SPDX project's validator, pyspdxtools (spdx-tools on
//! PyPI), when it is installed: `$CRATON_PYSPDXTOOLS`, else
//! /var/tmp/spdxvenv/bin/pyspdxtools, else `pyspdxtools` on the PATH;
//! without it that step is skipped with a note. CRATON_TEST_KEEP_SBOM
//! keeps the document at that path for inspection.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Instant;

use super::{Image, document, gather};
use crate::context::{Context, Options};
use crate::process::Cmd;
use crate::rootfs::stage::base_key;

/// Where .ci/run installs the validator.
const VENV_VALIDATOR: &str = "/var/tmp/spdxvenv/bin/pyspdxtools";

fn validator() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("CRATON_PYSPDXTOOLS") {
        return Some(PathBuf::from(p));
    }
    if Path::new(VENV_VALIDATOR).is_file() {
        return Some(PathBuf::from(VENV_VALIDATOR));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join("pyspdxtools"))
        .find(|p| p.is_file())
}

#[test]
fn real_lock_sbom_is_valid_spdx() {
    let work = tempfile::tempdir().unwrap();
    let opts = Options {
        lock: Some(work.path().join("craton.lock")),
        ..Options::for_profile(fixture())
    };
    let ctx = Context::new(&opts).unwrap();
    let lock = crate::resolve::run(&ctx).unwrap();
    crate::fetch::run(&ctx, &lock).unwrap();
    let base = ctx.cache.tree_path("base", &base_key(&lock));
    let tree = base.is_dir().then_some(base.as_path());

    let start = Instant::now();
    let facts = gather(&lock, &ctx.cache, tree, ctx.jobs).unwrap();
    let gathered = start.elapsed();
    let image = Image {
        name: &ctx.profile.image.name,
        version: &ctx.profile.image.version,
        epoch: 1_764_547_200,
    };
    let doc = document(&image, &lock, &facts);
    let bytes = doc.to_bytes().unwrap();
    let total = start.elapsed();
    assert_eq!(bytes, document(&image, &lock, &facts).to_bytes().unwrap());

    let debs: Vec<_> = doc
        .packages
        .iter()
        .filter(|p| p.spdx_id.starts_with("SPDXRef-deb-"))
        .collect();
    let noassertion = |f: fn(&super::spdx::Package) -> &str| {
        debs.iter()
            .filter(|p| f(p) == "NOASSERTION")
            .map(|p| p.name.as_str())
            .collect::<Vec<_>>()
    };
    let no_license = noassertion(|p| &p.license_declared);
    let no_supplier = noassertion(|p| &p.supplier);
    eprintln!(
        "SBOM of {} .debs ({} image, {} initrd, {} tools) and {} artifacts: {} bytes; \
         facts in {gathered:.2?} with {} jobs (copyright files from {}), document in {:.2?}; \
         {} LicenseRefs; no declared license: {no_license:?}",
        debs.len(),
        lock.packages.len(),
        lock.initrd.len(),
        lock.tools.len(),
        lock.artifacts.len(),
        bytes.len(),
        ctx.jobs,
        tree.map_or("the .debs".to_owned(), |t| t.display().to_string()),
        total - gathered,
        doc.has_extracted_licensing_infos.len(),
    );
    // Every locked package is there, by name and version.
    let listed: BTreeSet<(&str, &str)> = debs
        .iter()
        .map(|p| (p.name.as_str(), p.version_info.as_deref().unwrap_or("")))
        .collect();
    for p in lock.packages.iter().chain(&lock.initrd).chain(&lock.tools) {
        assert!(
            listed.contains(&(p.name.as_str(), p.version.as_str())),
            "{}",
            p.name
        );
    }
    // Every .deb has a Maintainer; most have a machine-readable copyright
    // file (the rest are named in the note above).
    assert!(no_supplier.is_empty(), "{no_supplier:?}");
    assert!(no_license.len() * 5 < debs.len(), "{no_license:?}");
    let text = String::from_utf8_lossy(&bytes);
    assert!(!text.contains("deb.debian.org") && !text.contains("/debian/pool/"));

    if let Some(keep) = std::env::var_os("CRATON_TEST_KEEP_SBOM") {
        std::fs::write(&keep, &bytes).unwrap();
    }
    let Some(validator) = validator() else {
        eprintln!(
            "note: pyspdxtools not found, SPDX validation skipped (python3 -m venv \
             /var/tmp/spdxvenv && /var/tmp/spdxvenv/bin/pip install spdx-tools)"
        );
        return;
    };
    let file = work.path().join(super::SBOM_FILE);
    std::fs::write(&file, &bytes).unwrap();
    let start = Instant::now();
    let said = Cmd::new(&validator)
        .arg("-i")
        .arg(&file)
        .output_all()
        .unwrap_or_else(|e| panic!("{} refused the SBOM: {e:#}", validator.display()));
    eprintln!(
        "{} in {:.1?}: {}",
        validator.display(),
        start.elapsed(),
        said.trim()
    );
    assert!(!said.contains("invalid"), "{said}");
}

/// Every identifier of the mapping tables is one the validator knows, as a
/// license or as an exception: a package per listed license, declared
/// `GPL-2.0-or-later WITH` each exception.
#[test]
fn every_mapped_identifier_is_known_to_the_validator() {
    let Some(validator) = validator() else {
        eprintln!("note: pyspdxtools not found, the mapping tables were not checked");
        return;
    };
    let licenses = super::license::LISTED.split_whitespace();
    let exceptions = super::license::EXCEPTIONS
        .split_whitespace()
        .map(|x| format!("GPL-2.0-or-later WITH {x}"));
    let mut lock = crate::lock::Lock::new(
        crate::lock::Inputs::of(&crate::profile::load(&fixture()).unwrap()),
        vec![],
        vec![],
        vec![],
        vec![],
    );
    let expressions: Vec<String> = licenses.map(str::to_owned).chain(exceptions).collect();
    let mut facts = super::Facts::new();
    for (i, e) in expressions.iter().enumerate() {
        let mut p = lock_entry(i);
        p.name = format!("p{i:03}");
        let copyright = format!(
            "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n\n\
             Files: *\nCopyright: none\nLicense: {e}\n"
        );
        facts.insert(
            p.sha256,
            super::DebFacts {
                copyright: Some(copyright),
                ..super::DebFacts::default()
            },
        );
        lock.packages.push(p);
    }
    let image = Image {
        name: "tables",
        version: "1",
        epoch: 0,
    };
    let doc = document(&image, &lock, &facts);
    for (p, e) in doc.packages.iter().skip(1).zip(&expressions) {
        assert_eq!(&p.license_declared, e, "{} is not mapped to itself", p.name);
    }
    let work = tempfile::tempdir().unwrap();
    let file = work.path().join(super::SBOM_FILE);
    std::fs::write(&file, doc.to_bytes().unwrap()).unwrap();
    Cmd::new(&validator)
        .arg("-i")
        .arg(&file)
        .run()
        .unwrap_or_else(|e| panic!("{} refused a mapped identifier: {e:#}", validator.display()));
}

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/container-host-test.toml")
}

fn lock_entry(i: usize) -> crate::lock::LockedPackage {
    crate::lock::LockedPackage {
        name: String::new(),
        version: "1".into(),
        arch: "all".into(),
        repository: "debian".into(),
        suite: "trixie".into(),
        filename: format!("pool/main/p/p{i}/p{i}_1_all.deb"),
        size: 1,
        sha256: crate::digest::Sha256::of(format!("p{i}").as_bytes()),
    }
}
