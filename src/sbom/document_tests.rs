//! The document: its shape, elements, relationships, identifiers, and the
//! same bytes for the same inputs.

use std::collections::BTreeSet;

use super::super::debs::join;
use super::super::document::{is_web_url, purl, supplier};
use super::*;

#[test]
fn maintainers_become_spdx_actors() {
    for (maintainer, actor) in [
        (
            "GNU Libc Maintainers <debian-glibc@lists.debian.org>",
            Some("Organization: GNU Libc Maintainers (debian-glibc@lists.debian.org)"),
        ),
        (
            "Debian Go Packaging Team <team+pkg-go@tracker.debian.org>",
            Some("Organization: Debian Go Packaging Team (team+pkg-go@tracker.debian.org)"),
        ),
        (
            "Matthias Klose <doko@debian.org>",
            Some("Person: Matthias Klose (doko@debian.org)"),
        ),
        (
            "Jörg Frings-Fürst (Debian) <debian@jff.email>",
            Some("Person: Jörg Frings-Fürst Debian (debian@jff.email)"),
        ),
        (
            "Debian Adduser Developers <adduser@packages.debian.org>",
            Some("Organization: Debian Adduser Developers (adduser@packages.debian.org)"),
        ),
        // A list address makes a team, a word inside a name does not.
        (
            "Anyone <pkg-x-devel@alioth-lists.debian.net>",
            Some("Organization: Anyone (pkg-x-devel@alioth-lists.debian.net)"),
        ),
        (
            "Steam Groupson <s@example.org>",
            Some("Person: Steam Groupson (s@example.org)"),
        ),
        ("Someone", Some("Person: Someone")),
        ("<nobody@example.org>", Some("Person: nobody@example.org")),
        ("  ", None),
    ] {
        assert_eq!(supplier(maintainer).as_deref(), actor, "{maintainer}");
    }
}

#[test]
fn purls_and_urls() {
    let mut p = pkg("libstdc++6", "1:14.2.0-19+b1");
    p.arch = "amd64".into();
    assert_eq!(
        purl(&p),
        "pkg:deb/debian/libstdc%2B%2B6@1%3A14.2.0-19%2Bb1?arch=amd64"
    );
    assert!(is_web_url("https://www.gnu.org/software/bash/"));
    assert!(is_web_url("http://example.org:8080/x?y"));
    for bad in [
        "file:///srv/rkt.tar.gz",
        "https://localhost/x",
        "https:///x",
        "ftp.gnu.org:/pub/gnu/bash",
        "https://a.b/x y",
        "https://host.123/",
    ] {
        assert!(!is_web_url(bad), "{bad}");
    }
    assert_eq!(
        join("usr/share/doc", "gcc-14-base"),
        "/usr/share/doc/gcc-14-base"
    );
    assert_eq!(
        join("usr/share/doc/a", "../b/copyright"),
        "/usr/share/doc/b/copyright"
    );
    assert_eq!(join("usr/share/doc/a", "../../../../../etc/x"), "/etc/x");
    assert_eq!(join("usr/share/doc/a", "/x/./y"), "/x/y");
}

/// The document's shape, its elements and relationships.
#[test]
fn document_lists_every_package_with_its_relationships() {
    let lock = sample_lock();
    let facts = sample_facts(&lock);
    let doc = to_json(&document(&image(1_764_547_200), &lock, &facts));
    assert_eq!(doc["spdxVersion"], "SPDX-2.3");
    assert_eq!(doc["dataLicense"], "CC0-1.0");
    assert_eq!(doc["SPDXID"], "SPDXRef-DOCUMENT");
    assert_eq!(doc["name"], "ch-2026.1");
    assert_eq!(doc["creationInfo"]["created"], "2025-12-01T00:00:00Z");
    assert_eq!(
        doc["creationInfo"]["creators"],
        serde_json::json!([format!("Tool: craton-{}", env!("CARGO_PKG_VERSION"))])
    );
    let ns = doc["documentNamespace"].as_str().unwrap();
    assert!(
        ns.starts_with("https://craton.invalid/spdx/ch-2026.1-"),
        "{ns}"
    );
    assert_eq!(
        ns.len(),
        "https://craton.invalid/spdx/ch-2026.1-".len() + 64
    );

    let packages = doc["packages"].as_array().unwrap();
    let ids: Vec<&str> = packages
        .iter()
        .map(|p| p["SPDXID"].as_str().unwrap())
        .collect();
    let unique: BTreeSet<&str> = ids.iter().copied().collect();
    assert_eq!(unique.len(), ids.len(), "repeated SPDXIDs: {ids:?}");
    for id in &ids {
        let rest = id.strip_prefix("SPDXRef-").unwrap();
        assert!(
            !rest.is_empty()
                && rest
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-'),
            "{id}"
        );
    }
    // systemd is in the image and the initrd: one package, two relations.
    assert_eq!(
        packages.iter().filter(|p| p["name"] == "systemd").count(),
        1
    );
    // image, initrd, tools, 5 .debs (systemd once), 2 artifacts.
    assert_eq!(packages.len(), 3 + 5 + 2);
    for p in packages {
        assert_eq!(p["filesAnalyzed"], false, "{p}");
        for key in [
            "downloadLocation",
            "licenseConcluded",
            "licenseDeclared",
            "copyrightText",
        ] {
            assert!(p[key].is_string(), "{key} missing in {p}");
        }
    }

    let id_of = |name: &str| package(&doc, name)["SPDXID"].as_str().unwrap().to_owned();
    let rels: BTreeSet<(String, String, String)> = doc["relationships"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let s = |k: &str| r[k].as_str().unwrap().to_owned();
            (
                s("spdxElementId"),
                s("relationshipType"),
                s("relatedSpdxElement"),
            )
        })
        .collect();
    let has = |a: &str, kind: &str, b: &str| rels.contains(&(a.into(), kind.into(), b.into()));
    assert!(has("SPDXRef-DOCUMENT", "DESCRIBES", "SPDXRef-image"));
    assert!(has("SPDXRef-image", "CONTAINS", "SPDXRef-initrd"));
    assert!(has("SPDXRef-tools", "BUILD_TOOL_OF", "SPDXRef-image"));
    for (set, from) in [
        (&lock.packages, "SPDXRef-image"),
        (&lock.initrd, "SPDXRef-initrd"),
        (&lock.tools, "SPDXRef-tools"),
    ] {
        for p in set {
            let id = id_of(&p.name);
            assert!(has(from, "CONTAINS", &id), "{from} CONTAINS {id}");
            let q = package(&doc, &p.name);
            assert_eq!(q["versionInfo"], p.version.as_str());
            assert_eq!(q["packageFileName"], p.filename.as_str());
            assert_eq!(q["checksums"][0]["algorithm"], "SHA256");
            assert_eq!(q["checksums"][0]["checksumValue"], p.sha256.to_hex());
            assert_eq!(q["downloadLocation"], "NOASSERTION");
            assert_eq!(q["externalRefs"][0]["referenceCategory"], "PACKAGE-MANAGER");
            assert_eq!(q["externalRefs"][0]["referenceType"], "purl");
        }
    }
    // Each package is in the sets the lock puts it in, no others.
    assert!(!has("SPDXRef-image", "CONTAINS", &id_of("e2fsprogs")));
    assert!(!has("SPDXRef-initrd", "CONTAINS", &id_of("bash")));
    let contains = rels.iter().filter(|r| r.1 == "CONTAINS").count();
    assert_eq!(contains, 1 + 3 + 2 + 2 + 1, "{rels:#?}");
    // Every relationship names elements of the document.
    for (a, _, b) in &rels {
        for x in [a, b] {
            assert!(
                x == "SPDXRef-DOCUMENT" || unique.contains(x.as_str()),
                "{x}"
            );
        }
    }

    let bash = package(&doc, "bash");
    assert_eq!(
        bash["supplier"],
        "Organization: Matthias Klose and the Bash Maintainers (doko@debian.org)"
    );
    assert_eq!(bash["homepage"], "https://www.gnu.org/software/bash/");
    assert_eq!(bash["summary"], "GNU Bourne Again SHell");
    assert_eq!(
        bash["sourceInfo"],
        "Debian source package bash 5.2.37-2; repository `debian`, suite `trixie`."
    );
    assert_eq!(
        package(&doc, "libsystemd0")["sourceInfo"],
        "Debian source package systemd 257.9-1~deb13u1; repository `debian`, suite `trixie`."
    );
    // A homepage SPDX would refuse is left out; no facts is NOASSERTION.
    assert!(package(&doc, "dash").get("homepage").is_none());
    assert_eq!(package(&doc, "e2fsprogs")["supplier"], "NOASSERTION");

    let rkt = package(&doc, "rkt");
    assert_eq!(
        rkt["downloadLocation"],
        "https://example.org/rkt/rkt-v1.30.0.tar.gz"
    );
    assert_eq!(rkt["packageFileName"], "rkt-v1.30.0.tar.gz");
    let flannel = package(&doc, "flannel");
    assert_eq!(flannel["downloadLocation"], "NOASSERTION");
    assert!(has(
        "SPDXRef-image",
        "CONTAINS",
        flannel["SPDXID"].as_str().unwrap()
    ));

    // Every LicenseRef used has its entry, and no entry is unused.
    let text = serde_json::to_string(&doc["packages"]).unwrap();
    let used: BTreeSet<&str> = text
        .match_indices("LicenseRef-")
        .map(|(i, _)| {
            let rest = &text[i..];
            let end = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '.'))
                .unwrap_or(rest.len());
            &rest[..end]
        })
        .collect();
    let listed: BTreeSet<String> = extracted(&doc).into_keys().collect();
    assert_eq!(used, listed.iter().map(String::as_str).collect());
    assert!(!listed.is_empty());

    // No mirror host: the lock's pool paths only.
    let all = serde_json::to_string(&doc).unwrap();
    assert!(
        !all.contains("deb.debian.org") && !all.contains("/debian/pool"),
        "{all}"
    );
}

#[test]
fn same_inputs_same_bytes() {
    let lock = sample_lock();
    let facts = sample_facts(&lock);
    let a = document(&image(7), &lock, &facts).to_bytes().unwrap();
    assert_eq!(a, document(&image(7), &lock, &facts).to_bytes().unwrap());
    // The same lock made from its parts given in another order.
    let reversed = |v: &[LockedPackage]| v.iter().rev().cloned().collect::<Vec<_>>();
    let shuffled = Lock::new(
        lock.inputs.clone(),
        reversed(&lock.packages),
        lock.artifacts.iter().rev().cloned().collect(),
        reversed(&lock.tools),
        reversed(&lock.initrd),
    );
    let b = document(&image(7), &shuffled, &facts).to_bytes().unwrap();
    assert!(a == b, "input order leaks into the document");
    assert!(a.ends_with(b"}\n"));
    // Another epoch changes `created` and so the namespace.
    let c = to_json(&document(&image(8), &lock, &facts));
    let a = serde_json::from_slice::<Value>(&a).unwrap();
    assert_ne!(a["documentNamespace"], c["documentNamespace"]);
    assert_eq!(c["creationInfo"]["created"], "1970-01-01T00:00:08Z");
    // The document reads back as it was written.
    let back: crate::sbom::Document = serde_json::from_value(a.clone()).unwrap();
    assert_eq!(serde_json::to_value(back).unwrap(), a);
}

#[test]
fn colliding_spdx_ids_are_told_apart() {
    // `1:2` and `1.2`... differ only where an SPDXID cannot: `+` is
    // `plus`, `:` and `~` are both `-`.
    let lock = lock_of(&[], &["x=1:2", "x=1~2"], &[]);
    let doc = to_json(&document(&image(0), &lock, &Facts::new()));
    let ids: Vec<&str> = doc["packages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["name"] == "x")
        .map(|p| p["SPDXID"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 2);
    assert_eq!(ids[0], "SPDXRef-deb-x-1-2-amd64");
    assert!(ids[1].starts_with("SPDXRef-deb-x-1-2-amd64-") && ids[1].len() == ids[0].len() + 13);
}
