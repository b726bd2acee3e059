//! The SPDX document of an image from plain inputs (the lock, the facts
//! read from its .debs, the image's name, version and epoch): no files, no
//! build, so the tests call it directly.
//!
//! Elements: the image (what the document describes), the initrd and the
//! tools tree when their sets are not empty, one package per distinct .deb
//! (a .deb in several sets, systemd in the image and the initrd, is one
//! package with a relationship from each) and one per artifact.

use std::collections::{BTreeMap, BTreeSet};

use super::debs::{DebFacts, Facts};
use super::dep5;
use super::license::{self, Expr, Refs};
use super::spdx::{
    Checksum, CreationInfo, DATA_LICENSE, DOCUMENT_ID, Document, ExternalRef,
    ExtractedLicensingInfo, NOASSERTION, Package, Relationship, SPDX_VERSION,
};
use crate::digest::Sha256;
use crate::lock::{Lock, LockedPackage};

/// The namespace's stem: `.invalid` (RFC 2606) never resolves; SPDX 2.3
/// 6.5 asks for a unique URI, not a reachable one.
pub const NAMESPACE_BASE: &str = "https://craton.invalid/spdx/";
pub const IMAGE_ID: &str = "SPDXRef-image";
pub const INITRD_ID: &str = "SPDXRef-initrd";
pub const TOOLS_ID: &str = "SPDXRef-tools";

/// What the document describes.
#[derive(Debug, Clone, Copy)]
pub struct Image<'a> {
    pub name: &'a str,
    pub version: &'a str,
    /// SOURCE_DATE_EPOCH: the document's `created`.
    pub epoch: u64,
}

/// One Debian package as the lock names it (a .deb may be in several sets).
type DebKey<'a> = (&'a str, &'a str, &'a str, Sha256);

fn key(p: &LockedPackage) -> DebKey<'_> {
    (&p.name, &p.version, &p.arch, p.sha256)
}

/// The document: same inputs, same bytes.
pub fn document(image: &Image, lock: &Lock, facts: &Facts) -> Document {
    let none = DebFacts::default();
    let debs: BTreeMap<DebKey, &LockedPackage> = lock
        .packages
        .iter()
        .chain(&lock.initrd)
        .chain(&lock.tools)
        .map(|p| (key(p), p))
        .collect();
    let mut used: BTreeSet<String> = [IMAGE_ID, INITRD_ID, TOOLS_ID]
        .into_iter()
        .map(str::to_owned)
        .collect();
    let mut ids: BTreeMap<DebKey, String> = BTreeMap::new();
    for (k, p) in &debs {
        let id = format!(
            "SPDXRef-deb-{}-{}-{}",
            license::sanitise(&p.name),
            license::sanitise(&p.version),
            license::sanitise(&p.arch)
        );
        ids.insert(*k, unique(id, &p.sha256, &mut used));
    }
    // Licenses first: LicenseRef names depend on every package's use.
    let mut refs = Refs::default();
    let licensing: BTreeMap<DebKey, Licenses> = debs
        .iter()
        .map(|(k, p)| {
            let l = licenses(facts.get(&p.sha256).unwrap_or(&none), &p.name);
            for r in l.declared.iter().chain(&l.concluded).flat_map(Expr::refs) {
                refs.add(r, &p.name);
            }
            (*k, l)
        })
        .collect();

    let mut packages = vec![image_package(image, lock)];
    if !lock.initrd.is_empty() {
        packages.push(set_package(
            INITRD_ID,
            format!("{}-initrd", image.name),
            Some(image.version),
            "The initrd: craton's early-boot system, from the lock's \
             [[initrd-package]] set and modules of the image's kernel.",
        ));
    }
    if !lock.tools.is_empty() {
        packages.push(set_package(
            TOOLS_ID,
            format!("{}-tools", image.name),
            None,
            "The tools tree: the build-only programs (mkfs, GRUB's tools, \
             shim) that made the image, from the lock's [[tool]] set; none \
             of it is in the image.",
        ));
    }
    for (k, p) in &debs {
        let f = facts.get(&p.sha256).unwrap_or(&none);
        packages.push(deb_package(p, f, &ids[k], &licensing[k], &refs));
    }
    let mut artifact_ids = Vec::new();
    let mut artifacts: Vec<_> = lock.artifacts.iter().collect();
    artifacts.sort();
    for a in artifacts {
        let id = unique(
            format!("SPDXRef-artifact-{}", license::sanitise(&a.name)),
            &a.sha256,
            &mut used,
        );
        packages.push(artifact_package(a, &id));
        artifact_ids.push(id);
    }

    let mut relationships = vec![Relationship::new(DOCUMENT_ID, "DESCRIBES", IMAGE_ID)];
    if !lock.initrd.is_empty() {
        relationships.push(Relationship::new(IMAGE_ID, "CONTAINS", INITRD_ID));
    }
    if !lock.tools.is_empty() {
        relationships.push(Relationship::new(TOOLS_ID, "BUILD_TOOL_OF", IMAGE_ID));
    }
    let contains = |from: &str, set: &[LockedPackage], out: &mut Vec<Relationship>| {
        let targets: BTreeSet<&String> = set.iter().map(|p| &ids[&key(p)]).collect();
        out.extend(
            targets
                .into_iter()
                .map(|to| Relationship::new(from, "CONTAINS", to)),
        );
    };
    contains(IMAGE_ID, &lock.packages, &mut relationships);
    for id in &artifact_ids {
        relationships.push(Relationship::new(IMAGE_ID, "CONTAINS", id));
    }
    contains(INITRD_ID, &lock.initrd, &mut relationships);
    contains(TOOLS_ID, &lock.tools, &mut relationships);

    let mut doc = Document {
        spdx_version: SPDX_VERSION.to_owned(),
        data_license: DATA_LICENSE.to_owned(),
        spdx_id: DOCUMENT_ID.to_owned(),
        name: format!("{}-{}", image.name, image.version),
        document_namespace: String::new(),
        creation_info: CreationInfo {
            created: crate::repo::date::rfc3339(image.epoch),
            creators: vec![format!("Tool: craton-{}", env!("CARGO_PKG_VERSION"))],
            comment: Some(format!(
                "Made from craton.lock (sha256 {}). Debian packages are named by their \
                 pool path (packageFileName) and purl, never by a mirror.",
                lock.digest().to_hex()
            )),
        },
        packages,
        has_extracted_licensing_infos: refs
            .extracted()
            .into_iter()
            .map(|e| ExtractedLicensingInfo {
                license_id: e.id,
                extracted_text: e.text,
                name: e.name,
                comment: e.comment,
            })
            .collect(),
        relationships,
    };
    doc.document_namespace = namespace(image, &doc);
    doc
}

/// `<base><name>-<version>-<sha256>`, the digest over the document with an
/// empty namespace: documents that differ anywhere (another lock, epoch or
/// craton) have different namespaces, and the same inputs the same one.
fn namespace(image: &Image, doc: &Document) -> String {
    let bytes = serde_json::to_vec(doc).expect("an SPDX document always serializes");
    format!(
        "{NAMESPACE_BASE}{}-{}-{}",
        percent(image.name),
        percent(image.version),
        Sha256::of(&bytes).to_hex()
    )
}

/// `id`, or `id-<12 hex digits of sha256>` when another element has it
/// (Debian names and versions that differ only in characters SPDX IDs
/// cannot hold).
fn unique(id: String, sha256: &Sha256, used: &mut BTreeSet<String>) -> String {
    let id = if used.contains(&id) {
        format!("{id}-{}", &sha256.to_hex()[..12])
    } else {
        id
    };
    used.insert(id.clone());
    id
}

/// A package's declared and concluded licenses, and why.
struct Licenses {
    declared: Option<Expr>,
    concluded: Option<Expr>,
    comment: Option<String>,
}

/// Declared: the `Files: *` license of the machine-readable copyright
/// file. Concluded: every Files paragraph's license, ANDed (SPDX 2.3 7.14
/// forbids licenseInfoFromFiles when filesAnalyzed is false).
fn licenses(facts: &DebFacts, name: &str) -> Licenses {
    let file = format!("/usr/share/doc/{name}/copyright");
    let Some(text) = &facts.copyright else {
        return Licenses {
            declared: None,
            concluded: None,
            comment: Some(format!("The package has no {file}.")),
        };
    };
    let Some(lic) = dep5::parse(text) else {
        return Licenses {
            declared: None,
            concluded: None,
            comment: Some(format!(
                "{file} is not in Debian's machine-readable format (copyright-format 1.0)."
            )),
        };
    };
    let declared = lic.main.as_deref().map(|m| license::from_debian(m, &lic));
    let parts: Vec<Expr> = declared
        .iter()
        .cloned()
        .chain(lic.files.iter().map(|f| license::from_debian(f, &lic)))
        .collect();
    let concluded = (!parts.is_empty()).then(|| license::all(parts));
    let comment = (concluded != declared).then(|| {
        format!(
            "licenseDeclared is the `Files: *` license of {file}; licenseConcluded joins \
             every license that file gives for the source package's files, of which this \
             package may hold only some."
        )
    });
    Licenses {
        declared,
        concluded,
        comment,
    }
}

fn image_package(image: &Image, lock: &Lock) -> Package {
    Package {
        version_info: Some(image.version.to_owned()),
        primary_package_purpose: Some("OPERATING-SYSTEM".to_owned()),
        comment: Some(format!(
            "The image built by craton from craton.lock (sha256 {}).",
            lock.digest().to_hex()
        )),
        ..bare(IMAGE_ID, image.name.to_owned())
    }
}

fn set_package(id: &str, name: String, version: Option<&str>, comment: &str) -> Package {
    Package {
        version_info: version.map(str::to_owned),
        primary_package_purpose: (id == INITRD_ID).then(|| "OPERATING-SYSTEM".to_owned()),
        comment: Some(comment.to_owned()),
        ..bare(id, name)
    }
}

/// A package about which nothing is asserted but its name.
fn bare(id: &str, name: String) -> Package {
    Package {
        spdx_id: id.to_owned(),
        name,
        version_info: None,
        package_file_name: None,
        supplier: NOASSERTION.to_owned(),
        download_location: NOASSERTION.to_owned(),
        files_analyzed: false,
        checksums: Vec::new(),
        homepage: None,
        source_info: None,
        license_concluded: NOASSERTION.to_owned(),
        license_declared: NOASSERTION.to_owned(),
        license_comments: None,
        copyright_text: NOASSERTION.to_owned(),
        summary: None,
        comment: None,
        external_refs: Vec::new(),
        primary_package_purpose: None,
    }
}

fn deb_package(p: &LockedPackage, f: &DebFacts, id: &str, lic: &Licenses, refs: &Refs) -> Package {
    let render = |e: &Option<Expr>| {
        e.as_ref()
            .map_or(NOASSERTION.to_owned(), |e| e.render(refs))
    };
    let (source, source_version) = source_of(f.source.as_deref(), p);
    Package {
        version_info: Some(p.version.clone()),
        // The pool path: where any Debian mirror serves the file.
        package_file_name: Some(p.filename.clone()),
        supplier: f
            .maintainer
            .as_deref()
            .and_then(supplier)
            .unwrap_or_else(|| NOASSERTION.to_owned()),
        checksums: vec![Checksum::sha256(p.sha256.to_hex())],
        homepage: f.homepage.clone().filter(|h| is_web_url(h)),
        source_info: Some(format!(
            "Debian source package {source} {source_version}; repository `{}`, suite `{}`.",
            p.repository, p.suite
        )),
        license_concluded: render(&lic.concluded),
        license_declared: render(&lic.declared),
        license_comments: lic.comment.clone(),
        summary: f.summary.clone(),
        external_refs: vec![ExternalRef {
            reference_category: "PACKAGE-MANAGER".to_owned(),
            reference_type: "purl".to_owned(),
            reference_locator: purl(p),
        }],
        ..bare(id, p.name.clone())
    }
}

fn artifact_package(a: &crate::lock::LockedArtifact, id: &str) -> Package {
    let web = is_web_url(&a.url);
    let file = a.url.rsplit('/').next().filter(|f| !f.is_empty());
    Package {
        // A local file (file://) is a path on the machine that built the
        // image: nobody else's download location.
        download_location: if web {
            a.url.clone()
        } else {
            NOASSERTION.to_owned()
        },
        package_file_name: file.map(str::to_owned),
        checksums: vec![Checksum::sha256(a.sha256.to_hex())],
        comment: (!web).then(|| "An artifact taken from a local file.".to_owned()),
        ..bare(id, a.name.clone())
    }
}

/// The source package's name and version: `Source: name (version)` when
/// the binary's version differs (binNMUs), `Source: name`, or none (the
/// source has the binary's name).
fn source_of<'a>(field: Option<&'a str>, p: &'a LockedPackage) -> (&'a str, &'a str) {
    let Some(field) = field else {
        return (&p.name, &p.version);
    };
    match field.split_once('(') {
        Some((name, rest)) => (name.trim(), rest.trim_end_matches(')').trim()),
        None => (field.trim(), &p.version),
    }
}

/// Words of a Maintainer's name that make it a team (`Debian Go Packaging
/// Team`, `GNU Libc Maintainers`, `Debian QA Group`).
const TEAM_WORDS: &[&str] = &[
    "maintainers",
    "maintenance",
    "team",
    "group",
    "packagers",
    "developers",
    "project",
];
/// Mail domains of Debian's team addresses: mailing lists and the
/// tracker's and archive's team aliases.
const TEAM_DOMAINS: &[&str] = &[
    "lists.debian.org",
    "lists.alioth.debian.org",
    "alioth-lists.debian.net",
    "tracker.debian.org",
    "packages.debian.org",
    "qa.debian.org",
];

/// An SPDX actor (SPDX 2.3 7.5) for a Debian `Maintainer`
/// (`Name <email>`): `Organization` for teams and lists, `Person` for
/// others; parentheses leave the name, as SPDX puts the email in them.
pub fn supplier(maintainer: &str) -> Option<String> {
    let maintainer = maintainer.split_whitespace().collect::<Vec<_>>().join(" ");
    let (name, email) = match maintainer.rsplit_once('<') {
        Some((n, rest)) => (n.trim(), rest.split('>').next().unwrap_or("").trim()),
        None => (maintainer.as_str(), ""),
    };
    let clean = |s: &str| s.replace(['(', ')'], "").trim().to_owned();
    let (name, email) = (clean(name), clean(email));
    let name = if name.is_empty() { email.clone() } else { name };
    if name.is_empty() {
        return None;
    }
    let lower = name.to_lowercase();
    let domain = email.rsplit('@').next().unwrap_or("").to_lowercase();
    let team = lower
        .split(|c: char| !c.is_alphanumeric())
        .any(|w| TEAM_WORDS.contains(&w))
        || TEAM_DOMAINS
            .iter()
            .any(|d| domain == *d || domain.ends_with(&format!(".{d}")));
    let kind = if team { "Organization" } else { "Person" };
    Some(if email.is_empty() || email == name {
        format!("{kind}: {name}")
    } else {
        format!("{kind}: {name} ({email})")
    })
}

/// `pkg:deb/debian/<name>@<version>?arch=<arch>` (purl-spec's deb type).
pub fn purl(p: &LockedPackage) -> String {
    format!(
        "pkg:deb/debian/{}@{}?arch={}",
        percent(&p.name),
        percent(&p.version),
        percent(&p.arch)
    )
}

/// Percent-encoding of everything but RFC 3986's unreserved characters
/// (`+` and `:` of Debian versions included, as purl asks).
fn percent(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// An http(s) URL with a dotted host name, as SPDX's downloadLocation and
/// homepage take (the validator wants a host ending in a top-level domain);
/// anything else is left out rather than making the document invalid.
pub fn is_web_url(url: &str) -> bool {
    let Some(rest) = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
    else {
        return false;
    };
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = host.split(':').next().unwrap_or("");
    let tld = host.rsplit('.').next().unwrap_or("");
    host.contains('.')
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-'))
        && tld.len() >= 2
        && tld.bytes().all(|b| b.is_ascii_alphabetic())
        && !url.chars().any(char::is_whitespace)
}
