//! Which packages form the essential set, and in what order maintainer
//! scripts run, from the packages' own control files.
//!
//! The essential set is every `Essential: yes` package and the closure of
//! its Depends and Pre-Depends within the locked set (mmdebstrap's
//! definition): these are installed by dpkg itself first, so that the tree
//! has a working shell, dpkg and libc before anything else is configured.
//! The order puts a package after those it Pre-Depends on (dpkg's rule for
//! unpacking), falling back to name order in cycles.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use anyhow::{Context, Result};

use crate::deb::Deb;
use crate::repo::deb822;
use crate::repo::relations::{Alternatives, parse_depends, parse_provides};

/// The relations of one package that ordering needs.
#[derive(Debug, Clone)]
pub struct Relations {
    pub name: String,
    pub essential: bool,
    pub pre_depends: Vec<Alternatives>,
    pub depends: Vec<Alternatives>,
    pub provides: Vec<String>,
}

/// Reads the control file of a .deb.
pub fn read_relations(deb: &Path) -> Result<Relations> {
    let d = Deb::open(deb)?;
    let files = d.control_files()?;
    let control = files
        .iter()
        .find(|(n, _)| n == "control")
        .with_context(|| format!("{}: no control file", deb.display()))?;
    let text = String::from_utf8_lossy(&control.1);
    let p = deb822::paragraphs(&text)
        .next()
        .with_context(|| format!("{}: empty control file", deb.display()))??;
    let rel = |f: &str| -> Result<Vec<Alternatives>> {
        p.get(f)
            .map(parse_depends)
            .transpose()
            .map(Option::unwrap_or_default)
    };
    let name = p
        .get("Package")
        .with_context(|| format!("{}: no Package", deb.display()))?;
    Ok(Relations {
        name: name.to_owned(),
        essential: p.get("Essential") == Some("yes"),
        pre_depends: rel("Pre-Depends")
            .with_context(|| format!("{}: Pre-Depends", deb.display()))?,
        depends: rel("Depends").with_context(|| format!("{}: Depends", deb.display()))?,
        provides: p
            .get("Provides")
            .map(parse_provides)
            .transpose()
            .with_context(|| format!("{}: Provides", deb.display()))?
            .unwrap_or_default()
            .into_iter()
            .map(|p| p.name)
            .collect(),
    })
}

/// The set's view for name lookups: real names and provided names.
struct Index<'a> {
    by_name: BTreeMap<&'a str, &'a Relations>,
    providers: BTreeMap<&'a str, Vec<&'a Relations>>,
}

impl<'a> Index<'a> {
    fn new(all: &'a [Relations]) -> Self {
        let mut by_name = BTreeMap::new();
        let mut providers: BTreeMap<&str, Vec<&Relations>> = BTreeMap::new();
        for r in all {
            by_name.insert(r.name.as_str(), r);
            for p in &r.provides {
                providers.entry(p.as_str()).or_default().push(r);
            }
        }
        Self { by_name, providers }
    }

    /// The packages of the set that meet `alts` (the resolver already chose
    /// versions; here only membership matters).
    fn meet(&self, alts: &Alternatives) -> Vec<&'a Relations> {
        for d in &alts.0 {
            if let Some(r) = self.by_name.get(d.name.as_str()) {
                return vec![r];
            }
            if let Some(p) = self.providers.get(d.name.as_str()) {
                return p.clone();
            }
        }
        Vec::new()
    }
}

/// Names of the essential set (see the module header).
pub fn essential_set(all: &[Relations]) -> BTreeSet<String> {
    let idx = Index::new(all);
    let mut set = BTreeSet::new();
    let mut todo: Vec<&Relations> = all.iter().filter(|r| r.essential).collect();
    while let Some(r) = todo.pop() {
        if !set.insert(r.name.clone()) {
            continue;
        }
        for alts in r.pre_depends.iter().chain(&r.depends) {
            todo.extend(idx.meet(alts));
        }
    }
    set
}

/// The names in an order where each package comes after what it
/// Pre-Depends on (within `names`); ties and cycles in name order.
pub fn pre_depends_order(all: &[Relations], names: &BTreeSet<String>) -> Vec<String> {
    let idx = Index::new(all);
    let mut done = BTreeSet::new();
    let mut out = Vec::new();
    fn visit<'a>(
        r: &'a Relations,
        idx: &Index<'a>,
        names: &BTreeSet<String>,
        done: &mut BTreeSet<String>,
        out: &mut Vec<String>,
    ) {
        if !names.contains(&r.name) || !done.insert(r.name.clone()) {
            return;
        }
        for alts in &r.pre_depends {
            for dep in idx.meet(alts) {
                visit(dep, idx, names, done, out);
            }
        }
        out.push(r.name.clone());
    }
    for name in names {
        if let Some(r) = idx.by_name.get(name.as_str()) {
            visit(r, &idx, names, &mut done, &mut out);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rel(name: &str, essential: bool, pre: &str, dep: &str, provides: &[&str]) -> Relations {
        Relations {
            name: name.into(),
            essential,
            pre_depends: parse_depends(pre).unwrap(),
            depends: parse_depends(dep).unwrap(),
            provides: provides.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn essential_closure_follows_alternatives_and_provides() {
        let all = vec![
            rel("coreutils", true, "libc6 (>= 2.38)", "", &[]),
            rel("libc6", false, "", "libgcc-s1", &[]),
            rel("libgcc-s1", false, "", "", &[]),
            rel("mawk", false, "", "libc6", &["awk"]),
            rel("base-files", true, "", "awk | gawk", &[]),
            rel("docker.io", false, "", "containerd", &[]),
            rel("containerd", false, "", "", &[]),
        ];
        let set = essential_set(&all);
        let got: Vec<&str> = set.iter().map(String::as_str).collect();
        assert_eq!(
            got,
            ["base-files", "coreutils", "libc6", "libgcc-s1", "mawk"]
        );
    }

    #[test]
    fn pre_depends_come_first() {
        let all = vec![
            rel("a", false, "z", "", &[]),
            rel("m", false, "", "a", &[]),
            rel("z", false, "", "", &[]),
        ];
        let names = ["a", "m", "z"].iter().map(|s| s.to_string()).collect();
        assert_eq!(pre_depends_order(&all, &names), ["z", "a", "m"]);
    }
}
