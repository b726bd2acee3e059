//! The resolve stage: profile -> verified indexes -> package closure ->
//! [`Lock`]. Its entry point [`run`] decides whether an existing lock can be
//! used as it is; the closure itself is `crate::repo::solver`'s.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context as _, Result};

use crate::context::Context;
use crate::error::bad_input;
use crate::lock::{Inputs, Lock, LockedPackage, LockedRelease};
use crate::repo::index::{self, SuiteSource};
use crate::repo::keyring::Keyring;
use crate::repo::packages::PackageRecord;
use crate::repo::solver::{self, Request};

/// Resolves the profile's packages against its repositories into a lock.
pub fn resolve(ctx: &Context) -> Result<Lock> {
    let profile = &ctx.profile;
    let mut sources = Vec::new();
    for repo in &profile.repositories {
        let mirror = ctx.mirror(repo)?;
        tracing::info!(
            "repository {}: {} (mirror from {})",
            repo.name,
            mirror.url,
            mirror.from
        );
        let keyring = Keyring::for_profile(&repo.keyring)
            .with_context(|| format!("loading the keyring of repository `{}`", repo.name))?;
        for suite in &repo.suites {
            sources.push(SuiteSource {
                repository: repo.name.clone(),
                suite: suite.clone(),
                base_url: mirror.url.clone(),
                components: repo.components.clone(),
                keyring: keyring.clone(),
            });
        }
    }
    let loaded = index::load_all(&ctx.http, &ctx.cache, &sources)?;
    let releases: Vec<LockedRelease> = loaded
        .dates
        .iter()
        .map(|(repository, suite, date)| LockedRelease {
            repository: repository.clone(),
            suite: suite.clone(),
            date: *date,
        })
        .collect();
    refuse_older_releases(&ctx.lock_path, &releases)?;
    let universe = loaded.universe;
    let closure = |include: &[String], exclude: &[String], with_required: bool| {
        let request = Request {
            include: include.to_vec(),
            exclude: exclude.to_vec(),
            with_required,
        };
        solver::solve(&universe, &request)
            .map(|set| set.iter().map(|p| locked(p)).collect::<Vec<_>>())
    };
    let image = closure(&profile.image_packages(), &profile.packages.exclude, true)?;
    // The tools tree and the initrd need only their own dependencies.
    let tools = closure(&profile.tools.packages, &[], false).context("resolving the tools tree")?;
    let initrd =
        closure(&profile.initrd.packages, &[], false).context("resolving the initrd's packages")?;
    tracing::info!(
        "resolved {} packages for the image, {} for the tools tree, {} for the initrd",
        image.len(),
        tools.len(),
        initrd.len()
    );
    Ok(Lock::new(
        Inputs::of(profile),
        image,
        Lock::artifacts_of(profile),
        tools,
        initrd,
    )
    .with_releases(releases))
}

/// An InRelease older than the one the existing lock was resolved from is
/// refused: a mirror (or anyone on the path) replaying old, validly signed
/// metadata would otherwise roll the packages back. A suite with no Valid-
/// Until (trixie's main suite) has no other defence against that.
fn refuse_older_releases(lock_path: &Path, now: &[LockedRelease]) -> Result<()> {
    if !lock_path.exists() {
        return Ok(());
    }
    let old = match Lock::read(lock_path) {
        Ok(l) => l,
        Err(e) => {
            // Replaced by this resolution; it cannot vouch for anything.
            tracing::warn!(
                "not comparing release dates with {}: {e:#}",
                lock_path.display()
            );
            return Ok(());
        }
    };
    for r in now {
        let before = old
            .releases
            .iter()
            .find(|o| o.repository == r.repository && o.suite == r.suite);
        if let Some(before) = before
            && r.date < before.date
        {
            anyhow::bail!(
                "InRelease of {}/{} is older than the one {} was resolved from (its Date is {} \
                 seconds earlier): the mirror serves old metadata, or someone replays it; use a \
                 current mirror",
                r.repository,
                r.suite,
                lock_path.display(),
                before.date - r.date,
            );
        }
    }
    Ok(())
}

fn locked(p: &PackageRecord) -> LockedPackage {
    LockedPackage {
        name: p.name.to_string(),
        version: p.version.as_str().to_owned(),
        arch: p.architecture.to_string(),
        repository: p.repository.to_string(),
        suite: p.suite.to_string(),
        filename: p.filename.to_string(),
        size: p.size,
        sha256: p.sha256,
    }
}

/// Resolves and writes the lock (`craton lock`).
pub fn write_lock(ctx: &Context) -> Result<Lock> {
    let lock = resolve(ctx)?;
    lock.write(&ctx.lock_path)?;
    tracing::info!("wrote {}", ctx.lock_path.display());
    Ok(lock)
}

/// The stage: the lock to build from. With `--locked`, the lock must exist
/// and agree with the profile (bad input otherwise). Without it, a missing
/// or stale lock is re-resolved and rewritten, as cargo does.
pub fn run(ctx: &Context) -> Result<Lock> {
    let locked = ctx.locked;
    let path = &ctx.lock_path;
    if !path.exists() {
        if locked {
            return Err(bad_input(format!(
                "--locked: no lock at {}; run `craton lock {}` first",
                path.display(),
                ctx.profile.path.display()
            )));
        }
        tracing::info!("no lock at {}: resolving", path.display());
        return write_lock(ctx);
    }
    let lock = Lock::read(path)?;
    if locked {
        lock.ensure_matches(&ctx.profile, path)?;
        return Ok(lock);
    }
    let diffs = lock.differences(&ctx.profile);
    if diffs.is_empty() {
        return Ok(lock);
    }
    tracing::info!(
        "{} is out of date ({}): resolving again",
        path.display(),
        diffs.join("; ")
    );
    write_lock(ctx)
}

/// Package counts per repository and suite, for the summary line.
pub fn summary(lock: &Lock) -> String {
    let mut per: BTreeMap<(&str, &str), usize> = BTreeMap::new();
    for p in &lock.packages {
        *per.entry((p.repository.as_str(), p.suite.as_str()))
            .or_default() += 1;
    }
    let parts: Vec<String> = per
        .iter()
        .map(|((r, s), n)| format!("{n} from {r}/{s}"))
        .collect();
    format!(
        "{} packages ({}), {} artifacts, {} tools packages",
        lock.packages.len(),
        parts.join(", "),
        lock.artifacts.len(),
        lock.tools.len()
    )
}
