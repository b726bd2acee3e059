//! The rootfs stage's entry point: the cached base tree (the locked packages,
//! configured), copied and customised into the output tree.
//!
//! The base tree depends only on the locked packages and on how craton
//! installs them, so it is cached under `<cache>/trees/base-<key>` with the
//! key derived from the lock's package list and craton's version; a build
//! that changes only overlays, files, units or users reuses it. Everything is
//! built in a temporary folder beside its final place and renamed into place
//! at the end, so a failed or interrupted build leaves nothing half-made.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context as _, Result};

use super::chroot::TempTree;
use super::unpack::DebInput;
use super::{configure, customize, layout};
use crate::context::Context;
use crate::digest::Sha256;
use crate::lock::Lock;
use crate::process::Cmd;
use crate::signal;

/// Bumped whenever the way the base tree is made changes, so old cached
/// trees are not reused.
const BASE_RECIPE: u32 = 1;

/// What the stage produced.
#[derive(Debug)]
pub struct RootfsOutput {
    pub tree: PathBuf,
    pub base_reused: bool,
}

/// The cache key of the base tree.
pub fn base_key(lock: &Lock) -> Sha256 {
    crate::lock::set_digest("base", BASE_RECIPE, &lock.packages)
}

/// Builds the tree at `out` (replacing what is there) from a fetched lock.
pub fn build(ctx: &Context, lock: &Lock, out: &Path, jobs: usize) -> Result<RootfsOutput> {
    let key = base_key(lock);
    let base = ctx
        .cache
        .root()
        .join("trees")
        .join(format!("base-{}", &key.to_hex()[..16]));
    let mut reused = true;
    if base.is_dir() {
        tracing::info!("reusing the cached base tree {}", base.display());
    } else {
        reused = false;
        let start = Instant::now();
        let tmp = TempTree::beside(&base)?;
        let debs: Vec<DebInput> = lock
            .packages
            .iter()
            .map(|p| DebInput::locked(p, &ctx.cache))
            .collect();
        configure::install(tmp.path(), &debs, jobs)?;
        tmp.persist(&base)?;
        tracing::info!(
            "built the base tree in {:.1}s: {}",
            start.elapsed().as_secs_f64(),
            base.display()
        );
    }
    signal::check()?;
    let tree = TempTree::beside(out)?;
    // cp keeps modes, owners, links, hard links and extended attributes
    // (file capabilities); --reflink shares blocks where the filesystem can.
    Cmd::new("cp")
        .args(["-a", "--reflink=auto", "--"])
        .arg(base.join("."))
        .arg(tree.path())
        .run()
        .context("copying the base tree")?;
    signal::check()?;
    let build_id = &lock.digest().to_hex()[..12];
    customize::customize(tree.path(), &ctx.profile, &ctx.cache, build_id)?;
    signal::check()?;
    layout::make_immutable(tree.path())?;
    tree.persist(out)?;
    Ok(RootfsOutput {
        tree: out.to_owned(),
        base_reused: reused,
    })
}
