//! The fetch stage's entry point: turns a lock into download items (package
//! URLs on the chosen mirrors, artifact URLs from the profile) and fetches
//! them with the run's jobs and artifact folder; [`run_tools`] fetches the
//! tools set alone.

use std::collections::BTreeMap;

use anyhow::{Result, anyhow};

use super::{Item, Options, Report};
use crate::context::Context;
use crate::lock::{Lock, LockedPackage};

/// Downloads and verifies everything `lock` names into the cache.
pub fn run(ctx: &Context, lock: &Lock) -> Result<Report> {
    let items = items(ctx, lock)?;
    let opts = Options {
        jobs: ctx.jobs,
        artifact_dir: ctx.artifact_dir.clone(),
        ..Options::default()
    };
    super::fetch(&ctx.http, &ctx.cache, &items, &opts)
}

/// Downloads and verifies only the lock's tools set, for a command that
/// runs a tool and builds nothing (`craton provision validate`): it needs
/// neither the image's packages nor its artifacts, which may live where
/// this machine cannot reach.
pub fn run_tools(ctx: &Context, lock: &Lock) -> Result<Report> {
    let items = package_items(ctx, &lock.tools)?;
    let opts = Options {
        jobs: ctx.jobs,
        ..Options::default()
    };
    super::fetch(&ctx.http, &ctx.cache, &items, &opts)
}

/// One item per locked package, tools package and artifact.
pub fn items(ctx: &Context, lock: &Lock) -> Result<Vec<Item>> {
    let packages = lock.packages.iter().chain(&lock.tools).chain(&lock.initrd);
    let mut out = package_items(ctx, packages)?;
    out.extend(lock.artifacts.iter().map(Item::artifact));
    Ok(out)
}

/// One item per package, each on its repository's mirror.
fn package_items<'a>(
    ctx: &Context,
    packages: impl IntoIterator<Item = &'a LockedPackage>,
) -> Result<Vec<Item>> {
    let mut mirrors = BTreeMap::new();
    let mut out = Vec::new();
    for p in packages {
        if !mirrors.contains_key(&p.repository) {
            let repo = ctx.repository(&p.repository).ok_or_else(|| {
                anyhow!(
                    "{}: package {} comes from repository `{}`, which the profile does not have",
                    ctx.lock_path.display(),
                    p.name,
                    p.repository
                )
            })?;
            mirrors.insert(p.repository.clone(), ctx.mirror(repo)?.url);
        }
        out.push(Item::package(p, &mirrors[&p.repository]));
    }
    Ok(out)
}
