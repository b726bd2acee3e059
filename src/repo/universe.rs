//! The universe of installable packages: every suite's records merged into
//! one candidate per package name (the highest version; on a tie the record
//! loaded first, i.e. the earlier suite), with an index of Provides.
//!
//! Also the relationship predicates that `resolve` and its checks share:
//! when a package satisfies a dependency, and when two packages conflict.
//! Choosing packages is `resolve`'s job, not this module's.

use std::collections::HashMap;
use std::sync::Arc;

use super::packages::{MultiArch, PackageRecord};
use super::relations::{ArchQualifier, Dep};

/// Every candidate package, indexed by name and by what it provides.
#[derive(Debug, Default)]
pub struct Universe {
    candidates: HashMap<String, Arc<PackageRecord>>,
    /// Virtual name -> candidates that provide it, sorted by name.
    providers: HashMap<String, Vec<Arc<PackageRecord>>>,
    /// `repository/suite` in load order, for messages.
    suites: Vec<String>,
    records: usize,
}

impl Universe {
    /// Builds the universe from records in load order.
    pub fn new(records: Vec<PackageRecord>) -> Self {
        let mut u = Universe {
            records: records.len(),
            ..Self::default()
        };
        for r in records {
            let suite = format!("{}/{}", r.repository, r.suite);
            if !u.suites.contains(&suite) {
                u.suites.push(suite);
            }
            match u.candidates.get(&r.name) {
                // `>` keeps the first of equal versions (load order).
                Some(old) if r.version <= old.version => {}
                _ => {
                    u.candidates.insert(r.name.clone(), Arc::new(r));
                }
            }
        }
        for c in u.candidates.values() {
            for p in &c.provides {
                u.providers
                    .entry(p.name.clone())
                    .or_default()
                    .push(c.clone());
            }
        }
        for list in u.providers.values_mut() {
            list.sort_by(|a, b| a.name.cmp(&b.name));
            // A package may list the same virtual name twice (versions).
            list.dedup_by(|a, b| a.name == b.name);
        }
        u
    }

    /// The candidate (highest version) of a real package.
    pub fn candidate(&self, name: &str) -> Option<&Arc<PackageRecord>> {
        self.candidates.get(name)
    }

    /// Candidates that provide `name` (at some version), sorted by name.
    pub fn providers(&self, name: &str) -> &[Arc<PackageRecord>] {
        self.providers.get(name).map_or(&[], Vec::as_slice)
    }

    /// Candidates with `Priority: required`, sorted by name.
    pub fn required(&self) -> Vec<Arc<PackageRecord>> {
        let mut v: Vec<_> = self
            .candidates
            .values()
            .filter(|c| c.priority.as_deref() == Some("required"))
            .cloned()
            .collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }

    /// `repository/suite` of every loaded suite, in load order.
    pub fn suites(&self) -> &[String] {
        &self.suites
    }

    /// Number of distinct package names.
    pub fn len(&self) -> usize {
        self.candidates.len()
    }

    pub fn is_empty(&self) -> bool {
        self.candidates.is_empty()
    }

    /// Number of records loaded (all versions of all suites).
    pub fn record_count(&self) -> usize {
        self.records
    }
}

/// Priority as a rank for choosing among providers (Policy 2.5: required,
/// important, standard, optional, extra), lower is more important.
pub fn priority_rank(p: &PackageRecord) -> u8 {
    match p.priority.as_deref() {
        Some("required") => 0,
        Some("important") => 1,
        Some("standard") => 2,
        Some("optional") => 3,
        Some("extra") => 4,
        _ => 5,
    }
}

/// Whether `pkg`'s architecture fits the dependency's qualifier on a
/// single-architecture (amd64) system. `:any` needs `Multi-Arch: allowed`
/// (multiarch spec; dpkg's deparchsatisfied does the same).
pub fn arch_fits(pkg: &PackageRecord, dep: &Dep) -> bool {
    match &dep.arch {
        ArchQualifier::Native => true,
        ArchQualifier::Any => pkg.multi_arch == MultiArch::Allowed,
        ArchQualifier::Foreign(_) => false,
    }
}

/// True when `pkg` itself (not a Provides) satisfies `dep`.
pub fn satisfies_directly(pkg: &PackageRecord, dep: &Dep) -> bool {
    pkg.name == dep.name
        && arch_fits(pkg, dep)
        && dep
            .constraint
            .as_ref()
            .is_none_or(|(rel, v)| rel.satisfied_by(&pkg.version, v))
}

/// True when one of `pkg`'s Provides satisfies `dep`. Policy 7.5: an
/// unversioned Provides never satisfies a versioned dependency.
pub fn satisfies_by_provide(pkg: &PackageRecord, dep: &Dep) -> bool {
    arch_fits(pkg, dep)
        && pkg.provides.iter().any(|p| {
            p.name == dep.name
                && match (&dep.constraint, &p.version) {
                    (None, _) => true,
                    (Some((rel, want)), Some(have)) => rel.satisfied_by(have, want),
                    (Some(_), None) => false,
                }
        })
}

/// True when `pkg` satisfies `dep` as a real or a provided package.
pub fn satisfies(pkg: &PackageRecord, dep: &Dep) -> bool {
    satisfies_directly(pkg, dep) || satisfies_by_provide(pkg, dep)
}

/// The Conflicts or Breaks entry of `a` that hits `b`, if any. A package
/// never conflicts with itself, so Debian's "Conflicts: x, Provides: x"
/// pattern for mutually exclusive providers works. Architecture qualifiers
/// are ignored here: all packages are amd64 or all.
pub fn conflict_of<'a>(a: &'a PackageRecord, b: &PackageRecord) -> Option<&'a Dep> {
    if a.name == b.name {
        return None;
    }
    let hits = |d: &Dep| {
        let unqualified = Dep {
            arch: ArchQualifier::Native,
            ..d.clone()
        };
        satisfies(b, &unqualified)
    };
    a.conflicts.iter().chain(&a.breaks).find(|d| {
        // Cheap name test first: this runs for every pair of selected packages.
        (d.name == b.name || b.provides.iter().any(|p| p.name == d.name)) && hits(d)
    })
}

/// A conflict between `a` and `b` in either direction, as a message.
pub fn conflict_between(a: &PackageRecord, b: &PackageRecord) -> Option<String> {
    if let Some(d) = conflict_of(a, b) {
        return Some(format!(
            "{} {} conflicts with `{d}` ({} {})",
            a.name, a.version, b.name, b.version
        ));
    }
    conflict_of(b, a).map(|d| {
        format!(
            "{} {} conflicts with `{d}` ({} {})",
            b.name, b.version, a.name, a.version
        )
    })
}
