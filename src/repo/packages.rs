//! Packages indexes (deb822 stanzas) parsed into package records.
//!
//! Only what resolving and fetching need is kept (no descriptions, no
//! Recommends/Suggests: craton installs neither, see docs/architecture.md).
//! Stanzas for other architectures than amd64 and `all` are skipped. Verifying
//! the index against Release is `index`'s job, not this module's.

use std::sync::Arc;

use anyhow::{Context, Result, anyhow, bail};

use super::deb822::{self, Paragraph};
use super::relations::{
    Alternatives, Dep, NATIVE_ARCH, Provide, parse_dep_list, parse_depends, parse_provides,
};
use super::version::Version;
use crate::digest::Sha256;

/// The Multi-Arch field (multiarch spec; dpkg's default is `no`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MultiArch {
    #[default]
    No,
    Same,
    Foreign,
    Allowed,
}

impl MultiArch {
    fn parse(s: &str) -> Result<Self> {
        Ok(match s {
            "no" => Self::No,
            "same" => Self::Same,
            "foreign" => Self::Foreign,
            "allowed" => Self::Allowed,
            _ => bail!("unknown value {s:?}"),
        })
    }
}

/// One binary package from a Packages index.
#[derive(Debug, Clone)]
pub struct PackageRecord {
    pub name: String,
    pub version: Version,
    pub architecture: String,
    pub multi_arch: MultiArch,
    pub priority: Option<String>,
    pub essential: bool,
    pub depends: Vec<Alternatives>,
    pub pre_depends: Vec<Alternatives>,
    pub provides: Vec<Provide>,
    pub conflicts: Vec<Dep>,
    pub breaks: Vec<Dep>,
    /// Pool path relative to the mirror root.
    pub filename: String,
    pub size: u64,
    pub sha256: Sha256,
    /// The profile's repository name (shared by all records of an index).
    pub repository: Arc<str>,
    pub suite: Arc<str>,
}

impl PackageRecord {
    /// `name version (suite)`, the way errors and logs name a package.
    pub fn describe(&self) -> String {
        format!("{} {} ({})", self.name, self.version, self.suite)
    }
}

/// Parses a whole Packages index. Errors name the stanza's line and package.
pub fn parse_packages(
    text: &str,
    repository: &Arc<str>,
    suite: &Arc<str>,
) -> Result<Vec<PackageRecord>> {
    let mut out = Vec::new();
    for p in deb822::paragraphs(text) {
        let p = p?;
        let arch = p.get("Architecture");
        // Skip foreign stanzas before parsing anything else (cheap).
        if arch.is_some_and(|a| a != NATIVE_ARCH && a != "all") {
            continue;
        }
        let name = p.get("Package").unwrap_or("<no Package field>");
        let rec = parse_record(&p, repository, suite)
            .with_context(|| format!("stanza at line {} (package {name})", p.line))?;
        out.push(rec);
    }
    Ok(out)
}

fn required<'a>(p: &Paragraph<'a>, field: &str) -> Result<&'a str> {
    match p.get(field) {
        Some(v) if !v.is_empty() => Ok(v),
        _ => Err(anyhow!("required field {field} is missing")),
    }
}

/// Parses an optional field with `f`, naming the field in the error.
fn optional<'a, T: Default>(
    p: &Paragraph<'a>,
    field: &str,
    f: impl FnOnce(&'a str) -> Result<T>,
) -> Result<T> {
    match p.get(field) {
        Some(v) => f(v).with_context(|| format!("field {field}: {v:?}")),
        None => Ok(T::default()),
    }
}

fn parse_record(
    p: &Paragraph<'_>,
    repository: &Arc<str>,
    suite: &Arc<str>,
) -> Result<PackageRecord> {
    let name = required(p, "Package")?;
    let version = required(p, "Version")?;
    let version = Version::parse(version).with_context(|| format!("field Version: {version:?}"))?;
    let architecture = required(p, "Architecture")?;
    // The values a lock keeps and the build turns into file names and
    // mirror URLs, held to the lock's own rules (lock::Lock::validate).
    let rule = |field: &str, v: &str, r: crate::profile::names::Rule| {
        r.map_err(|why| anyhow!("field {field}: {v:?} {why}"))
    };
    use crate::profile::names;
    rule("Package", name, names::archive_package(name))?;
    rule(
        "Architecture",
        architecture,
        names::debian_arch(architecture),
    )?;
    let filename = required(p, "Filename")?;
    rule("Filename", filename, names::pool_path(filename))?;
    let size = required(p, "Size")?;
    let size: u64 = size
        .parse()
        .with_context(|| format!("field Size: {size:?} is not a number"))?;
    let sha = required(p, "SHA256")?;
    let sha256: Sha256 = sha
        .parse()
        .with_context(|| format!("field SHA256: {sha:?}"))?;
    Ok(PackageRecord {
        name: name.to_owned(),
        version,
        architecture: architecture.to_owned(),
        multi_arch: optional(p, "Multi-Arch", MultiArch::parse)?,
        priority: p.get("Priority").map(str::to_owned),
        essential: p.get("Essential") == Some("yes"),
        depends: optional(p, "Depends", parse_depends)?,
        pre_depends: optional(p, "Pre-Depends", parse_depends)?,
        provides: optional(p, "Provides", parse_provides)?,
        conflicts: optional(p, "Conflicts", parse_dep_list)?,
        breaks: optional(p, "Breaks", parse_dep_list)?,
        filename: filename.to_owned(),
        size,
        sha256,
        repository: repository.clone(),
        suite: suite.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA: &str = "ee81302a1d5b7434762b6e784a572854d4b6cf6235e33e2d104ad4e1cae71ab4";

    fn parse(text: &str) -> Result<Vec<PackageRecord>> {
        parse_packages(text, &Arc::from("debian"), &Arc::from("trixie"))
    }

    #[test]
    fn parses_a_stanza() {
        let text = format!(
            "Package: systemd\nVersion: 257.13-1~deb13u1\nArchitecture: amd64\n\
             Provides: systemd-sysusers (= 257.13-1~deb13u1)\n\
             Depends: libc6 (>= 2.41), mount\nPre-Depends: libsystemd-shared (= 257.13-1~deb13u1)\n\
             Recommends: dbus\nConflicts: consolekit\nBreaks: less (<< 563)\nMulti-Arch: foreign\n\
             Description: system and service manager\n more text\nPriority: important\n\
             Filename: pool/main/s/systemd/systemd_257.13-1~deb13u1_amd64.deb\nSize: 3093632\n\
             SHA256: {SHA}\n\n\
             Package: base-files\nEssential: yes\nPriority: required\nVersion: 13.8\n\
             Architecture: i386\nFilename: f\nSize: 1\nSHA256: {SHA}\n\n\
             Package: tzdata\nVersion: 2025b-4\nArchitecture: all\nFilename: f\nSize: 1\nSHA256: {SHA}\n"
        );
        let recs = parse(&text).unwrap();
        assert_eq!(recs.len(), 2, "the i386 stanza is skipped");
        let s = &recs[0];
        assert_eq!(s.name, "systemd");
        assert_eq!(s.version.as_str(), "257.13-1~deb13u1");
        assert_eq!(s.multi_arch, MultiArch::Foreign);
        assert_eq!(s.priority.as_deref(), Some("important"));
        assert!(!s.essential);
        assert_eq!(s.depends.len(), 2);
        assert_eq!(
            s.pre_depends[0].to_string(),
            "libsystemd-shared (= 257.13-1~deb13u1)"
        );
        assert_eq!(s.provides[0].name, "systemd-sysusers");
        assert_eq!(s.conflicts[0].name, "consolekit");
        assert_eq!(s.breaks[0].to_string(), "less (<< 563)");
        assert_eq!(s.size, 3093632);
        assert_eq!(s.sha256.to_hex(), SHA);
        assert_eq!(&*s.suite, "trixie");
        assert_eq!(recs[1].architecture, "all");
        assert_eq!(recs[1].multi_arch, MultiArch::No);
    }

    #[test]
    fn errors_name_field_and_package() {
        let text = format!(
            "Package: ok\nVersion: 1\nArchitecture: all\nFilename: f\nSize: 1\nSHA256: {SHA}\n\n\
             Package: broken\nVersion: 1\nArchitecture: amd64\nFilename: f\nSize: 1\n\
             SHA256: {SHA}\nDepends: a (>> )\n"
        );
        let err = format!("{:#}", parse(&text).unwrap_err());
        assert!(err.contains("line 8 (package broken)"), "{err}");
        assert!(err.contains("field Depends"), "{err}");

        let missing = "Package: nosum\nVersion: 1\nArchitecture: amd64\nFilename: f\nSize: 1\n";
        let err = format!("{:#}", parse(missing).unwrap_err());
        assert!(
            err.contains("package nosum") && err.contains("SHA256 is missing"),
            "{err}"
        );

        let bad_size = format!(
            "Package: p\nVersion: 1\nArchitecture: amd64\nFilename: f\nSize: -1\nSHA256: {SHA}\n"
        );
        let err = format!("{:#}", parse(&bad_size).unwrap_err());
        assert!(err.contains("field Size"), "{err}");
    }

    /// Parses the real trixie index when CRATON_REAL_PACKAGES names it
    /// (uncompressed); prints the time so a release build can be measured.
    #[test]
    fn real_packages_index() {
        let Some(path) = std::env::var_os("CRATON_REAL_PACKAGES") else {
            eprintln!("CRATON_REAL_PACKAGES not set; skipping");
            return;
        };
        let text = std::fs::read_to_string(&path).unwrap();
        let t = std::time::Instant::now();
        let recs = parse(&text).unwrap();
        eprintln!("parsed {} records in {:?}", recs.len(), t.elapsed());
        assert!(recs.len() > 50_000);
        assert!(recs.iter().any(|r| r.name == "systemd"));
    }
}
