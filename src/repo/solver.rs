//! The dependency resolver: the closure of requested packages plus
//! Priority: required, honouring versions, alternatives, Provides and
//! Conflicts/Breaks.
//!
//! It follows Depends and Pre-Depends, never Recommends or Suggests (as
//! mmdebstrap and mkosi do; docs/architecture.md). Only each package's
//! candidate (its highest version across the suites, see `universe`) is
//! considered, as apt does. The search is greedy and breadth-first: a choice,
//! once made, is not revisited; when it leads to a dead end the error names the
//! chain, and the profile can steer with include/exclude. Rules for a
//! dependency `a | b`:
//!
//! 1. already satisfied by a selected package (or a selected provider): done;
//! 2. else the first alternative that can be installed: its real package if
//!    the candidate fits the version, is not excluded and conflicts with
//!    nothing selected; else one of its providers: the only one, or the
//!    one with the most important Priority, then the first by name.
//!
//! Requested packages and Priority: required are selected before anything
//! else, so a dependency that they satisfy never pulls in an alternative.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::Arc;

use anyhow::Result;

use super::packages::PackageRecord;
use super::relations::{Alternatives, ArchQualifier, Dep};
use super::universe::{
    arch_fits, conflict_between, priority_rank, satisfies, satisfies_by_provide,
};
use crate::error::bad_input;

/// The universe is built in `universe`; re-exported for callers of resolve.
pub use super::universe::Universe;

/// What to install: the profile's include and exclude lists.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Request {
    pub include: Vec<String>,
    pub exclude: Vec<String>,
    /// Also select every `Priority: required` package: true for a system
    /// that boots, false for the tools tree, whose programs only need their
    /// own dependencies.
    pub with_required: bool,
}

/// Why a package was selected (for error chains).
#[derive(Debug, Clone)]
enum Why {
    Requested,
    Required,
    /// Needed by this (selected) package.
    NeededBy(String),
}

struct Resolver<'u> {
    universe: &'u Universe,
    exclude: HashSet<&'u str>,
    selected: BTreeMap<String, Arc<PackageRecord>>,
    /// Virtual name -> selected packages that provide it.
    provided: HashMap<String, Vec<Arc<PackageRecord>>>,
    why: HashMap<String, Why>,
    queue: VecDeque<Arc<PackageRecord>>,
}

/// Resolves the package set; sorted by name.
pub fn solve(universe: &Universe, req: &Request) -> Result<Vec<Arc<PackageRecord>>> {
    let mut r = Resolver {
        universe,
        exclude: req.exclude.iter().map(String::as_str).collect(),
        selected: BTreeMap::new(),
        provided: HashMap::new(),
        why: HashMap::new(),
        queue: VecDeque::new(),
    };
    for name in &req.exclude {
        // Excludes match real package names only; a typo would silently
        // exclude nothing, so say so.
        if universe.candidate(name).is_none() {
            tracing::warn!("excluded package `{name}` is not in any repository");
        }
    }
    for name in &req.include {
        if r.exclude.contains(name.as_str()) {
            return Err(bad_input(format!(
                "package `{name}` is both included and excluded in the profile"
            )));
        }
        let pkg = r.requested(name)?;
        if r.exclude.contains(pkg.name.as_str()) {
            return Err(bad_input(format!(
                "package `{name}` stands for {}, which the profile excludes",
                pkg.name
            )));
        }
        r.select(pkg, Why::Requested)?;
    }
    let required = if req.with_required {
        universe.required()
    } else {
        Vec::new()
    };
    for pkg in required {
        if !r.exclude.contains(pkg.name.as_str()) {
            r.select(pkg, Why::Required)?;
        }
    }
    while let Some(pkg) = r.queue.pop_front() {
        for alts in pkg.pre_depends.iter().chain(&pkg.depends) {
            r.satisfy(&pkg, alts)?;
        }
    }
    Ok(r.selected.into_values().collect())
}

impl Resolver<'_> {
    /// The package a requested name stands for: its candidate, or the only
    /// provider of a virtual name (as apt-get install does).
    fn requested(&self, name: &str) -> Result<Arc<PackageRecord>> {
        if let Some(c) = self.universe.candidate(name) {
            return Ok(c.clone());
        }
        match self.universe.providers(name) {
            [] => Err(bad_input(format!(
                "package `{name}` is not in any repository (suites: {})",
                self.universe.suites().join(", ")
            ))),
            [only] => Ok(only.clone()),
            many => Err(bad_input(format!(
                "package `{name}` is virtual; include one of its providers: {}",
                many.iter()
                    .map(|p| p.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))),
        }
    }

    /// Adds a package after checking it against the selection.
    fn select(&mut self, pkg: Arc<PackageRecord>, why: Why) -> Result<()> {
        if self.selected.contains_key(&pkg.name) {
            return Ok(());
        }
        if let Some(msg) = self.conflict_with_selection(&pkg) {
            return Err(bad_input(format!(
                "cannot install {} {} ({}): {msg}",
                pkg.name,
                pkg.version,
                self.chain(&why)
            )));
        }
        for p in &pkg.provides {
            self.provided
                .entry(p.name.clone())
                .or_default()
                .push(pkg.clone());
        }
        self.why.insert(pkg.name.clone(), why);
        self.selected.insert(pkg.name.clone(), pkg.clone());
        self.queue.push_back(pkg);
        Ok(())
    }

    fn conflict_with_selection(&self, pkg: &PackageRecord) -> Option<String> {
        self.selected
            .values()
            .find_map(|s| conflict_between(pkg, s))
    }

    fn is_satisfied(&self, dep: &Dep) -> bool {
        self.selected
            .get(&dep.name)
            .is_some_and(|s| satisfies(s, dep))
            || self
                .provided
                .get(&dep.name)
                .is_some_and(|ps| ps.iter().any(|p| satisfies_by_provide(p, dep)))
    }

    fn satisfy(&mut self, parent: &Arc<PackageRecord>, alts: &Alternatives) -> Result<()> {
        if alts.0.iter().any(|d| self.is_satisfied(d)) {
            return Ok(());
        }
        let mut reasons = Vec::new();
        for dep in &alts.0 {
            match self.choose(dep) {
                Ok(pkg) => return self.select(pkg, Why::NeededBy(parent.name.clone())),
                Err(reason) => reasons.push(reason),
            }
        }
        Err(bad_input(format!(
            "cannot satisfy `{alts}` needed by {} {} <- {}: {}",
            parent.name,
            parent.version,
            self.why
                .get(&parent.name)
                .map(|w| self.chain(w))
                .unwrap_or_default(),
            reasons.join("; ")
        )))
    }

    /// The package to install for one alternative, or why there is none.
    fn choose(&self, dep: &Dep) -> Result<Arc<PackageRecord>, String> {
        if let ArchQualifier::Foreign(arch) = &dep.arch {
            return Err(format!(
                "`{dep}` names architecture {arch}; craton installs amd64 only"
            ));
        }
        let mut reasons = Vec::new();
        match self.universe.candidate(&dep.name) {
            Some(c) => match self.installable(c) {
                Err(why) => reasons.push(why),
                Ok(()) if satisfies(c, dep) => return Ok(c.clone()),
                Ok(()) if !arch_fits(c, dep) => reasons.push(format!(
                    "{} is not Multi-Arch: allowed, so `{dep}` cannot use it",
                    c.name
                )),
                Ok(()) => reasons.push(format!(
                    "the candidate {} is {} ({})",
                    c.name, c.version, c.suite
                )),
            },
            None if self.universe.providers(&dep.name).is_empty() => {
                return Err(format!("no repository has or provides `{}`", dep.name));
            }
            None => {}
        }
        let mut fitting: Vec<&Arc<PackageRecord>> = Vec::new();
        for p in self.universe.providers(&dep.name) {
            if !satisfies_by_provide(p, dep) {
                continue;
            }
            match self.installable(p) {
                Ok(()) => fitting.push(p),
                Err(why) => reasons.push(why),
            }
        }
        // Providers are sorted by name, so min_by_key keeps the first name
        // among equally important ones: deterministic across runs.
        if let Some(best) = fitting.into_iter().min_by_key(|p| priority_rank(p)) {
            return Ok(best.clone());
        }
        if reasons.is_empty() {
            reasons.push(format!("no provider of `{}` fits `{dep}`", dep.name));
        }
        Err(reasons.join("; "))
    }

    /// Whether a candidate may join the selection at all.
    fn installable(&self, c: &PackageRecord) -> Result<(), String> {
        if self.exclude.contains(c.name.as_str()) {
            return Err(format!("{} is excluded by the profile", c.name));
        }
        if let Some(s) = self.selected.get(&c.name) {
            // Only one version of a package can be installed.
            return Err(format!("{} {} is already selected", s.name, s.version));
        }
        match self.conflict_with_selection(c) {
            Some(msg) => Err(msg),
            None => Ok(()),
        }
    }

    /// `docker.io 26.1 <- requested in the profile`, from a reason upwards.
    fn chain(&self, why: &Why) -> String {
        let mut parts = Vec::new();
        let mut cur = why;
        // Bounded by the selection size: every parent was selected earlier.
        for _ in 0..=self.selected.len() {
            match cur {
                Why::Requested => {
                    parts.push("requested in the profile".to_owned());
                    break;
                }
                Why::Required => {
                    parts.push("Priority: required".to_owned());
                    break;
                }
                Why::NeededBy(name) => {
                    let Some(p) = self.selected.get(name) else {
                        break;
                    };
                    parts.push(format!("{} {}", p.name, p.version));
                    match self.why.get(name) {
                        Some(w) => cur = w,
                        None => break,
                    }
                }
            }
        }
        parts.join(" <- ")
    }
}

/// Problems in a package set: unsatisfied Depends/Pre-Depends and conflicts.
/// Empty when the set is consistent. Used by tests and as a final check.
pub fn check_closure(selected: &[Arc<PackageRecord>]) -> Vec<String> {
    let mut problems = Vec::new();
    let by_name: HashMap<&str, &Arc<PackageRecord>> =
        selected.iter().map(|p| (p.name.as_str(), p)).collect();
    let mut providers: HashMap<&str, Vec<&Arc<PackageRecord>>> = HashMap::new();
    for p in selected {
        for pr in &p.provides {
            providers.entry(pr.name.as_str()).or_default().push(p);
        }
    }
    let candidates = |name: &str| -> Vec<&Arc<PackageRecord>> {
        let mut v: Vec<_> = providers.get(name).cloned().unwrap_or_default();
        v.extend(by_name.get(name).copied());
        v
    };
    for p in selected {
        for alts in p.pre_depends.iter().chain(&p.depends) {
            let ok = alts
                .0
                .iter()
                .any(|d| candidates(&d.name).iter().any(|c| satisfies(c, d)));
            if !ok {
                problems.push(format!("{} {}: unsatisfied `{alts}`", p.name, p.version));
            }
        }
        for d in p.conflicts.iter().chain(&p.breaks) {
            for other in candidates(&d.name) {
                if let Some(msg) = conflict_between(p, other) {
                    problems.push(msg);
                }
            }
        }
    }
    problems.sort();
    problems.dedup();
    problems
}

#[cfg(test)]
#[path = "solver_tests.rs"]
mod tests;
