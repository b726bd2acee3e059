//! The fetch stage's entry point: turns a lock into download items (package
//! URLs on the chosen mirrors, artifact URLs from the profile) and fetches
//! them with the run's jobs and artifact folder.

use std::collections::BTreeMap;

use anyhow::{Result, anyhow};

use super::{Item, Options, Report};
use crate::context::Context;
use crate::lock::Lock;

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

/// One item per locked package, tools package and artifact.
pub fn items(ctx: &Context, lock: &Lock) -> Result<Vec<Item>> {
    let mut mirrors = BTreeMap::new();
    let mut out = Vec::with_capacity(lock.packages.len() + lock.tools.len() + lock.artifacts.len());
    for p in lock.packages.iter().chain(&lock.tools).chain(&lock.initrd) {
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
    out.extend(lock.artifacts.iter().map(Item::artifact));
    Ok(out)
}
