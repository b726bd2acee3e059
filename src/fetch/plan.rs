//! The fetch stage: turns a lock into download items (package URLs on the
//! chosen mirrors, artifact URLs from the profile) and fetches them.

use std::path::PathBuf;

use anyhow::{Result, anyhow};

use super::{Item, Options, Origin, Report};
use crate::context::Context;
use crate::lock::Lock;

/// What `craton fetch` and `craton build` pass to the stage.
#[derive(Debug, Clone)]
pub struct FetchSettings {
    pub jobs: usize,
    pub artifact_dir: Option<PathBuf>,
}

/// Downloads and verifies everything `lock` names.
pub fn run(ctx: &Context, lock: &Lock, settings: &FetchSettings) -> Result<Report> {
    let items = items(ctx, lock)?;
    let opts = Options {
        jobs: settings.jobs,
        artifact_dir: settings.artifact_dir.clone(),
        ..Options::default()
    };
    super::fetch(&ctx.http, &ctx.cache, &items, &opts)
}

/// One item per locked package and artifact.
pub fn items(ctx: &Context, lock: &Lock) -> Result<Vec<Item>> {
    let mut out = Vec::with_capacity(lock.packages.len() + lock.artifacts.len());
    let mut mirrors = std::collections::BTreeMap::new();
    for p in &lock.packages {
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
        let base = &mirrors[&p.repository];
        let file_name = p.filename.rsplit('/').next().unwrap_or(&p.filename);
        out.push(Item {
            label: file_name.to_owned(),
            url: format!("{base}/{}", p.filename),
            sha256: p.sha256,
            size: Some(p.size),
            origin: Origin::Package,
        });
    }
    for a in &lock.artifacts {
        let file_name = a.url.rsplit('/').next().unwrap_or(&a.name).to_owned();
        out.push(Item {
            label: format!("artifact {}", a.name),
            url: a.url.clone(),
            sha256: a.sha256,
            size: None,
            origin: Origin::Artifact {
                name: a.name.clone(),
                file_name,
            },
        });
    }
    Ok(out)
}
