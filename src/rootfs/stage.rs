//! The rootfs stage's entry point: the cached base tree (the locked packages,
//! configured), copied and customised into the build's tree, with craton's
//! own boot files (`crate::boot::units`) installed by this stage, which owns
//! the tree.
//!
//! The base tree depends only on the locked packages and on how craton
//! installs them, so it is cached under `<cache>/trees/base-<key>` with the
//! key derived from the lock's package list and craton's version; a build
//! that changes only overlays, files, units or users reuses it. Everything is
//! built in a temporary folder beside its final place and renamed into place
//! at the end, so a failed or interrupted build leaves nothing half-made.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context as _, Result};

use super::{configure, customize, layout, modules, stamps};
use crate::context::Build;
use crate::deb::{DebInput, PathFilter};
use crate::digest::Sha256;
use crate::files::{TempTree, cached_tree};
use crate::lock::Lock;
use crate::process::Cmd;
use crate::signal;

/// Bumped whenever the way the base tree is made changes, so old cached
/// trees are not reused.
const BASE_RECIPE: u32 = 1;

/// What the stage produced: the OS tree in the build's work folder.
#[derive(Debug)]
pub struct RootfsTree {
    pub path: PathBuf,
    pub base_reused: bool,
}

/// The cache key of the base tree: its packages and the path filter they
/// were unpacked with.
pub fn base_key(lock: &Lock) -> Sha256 {
    let packages = crate::lock::set_digest("base", BASE_RECIPE, &lock.packages);
    let filter = format!(
        "{}\nexclude {:?}\ninclude {:?}\n",
        packages.to_hex(),
        lock.inputs.path_exclude,
        lock.inputs.path_include
    );
    Sha256::of(filter.as_bytes())
}

/// The path filter the lock was made with (the profile's, as `--locked`
/// or re-resolving made sure).
fn path_filter(lock: &Lock) -> PathFilter {
    PathFilter {
        exclude: lock.inputs.path_exclude.clone(),
        include: lock.inputs.path_include.clone(),
    }
}

/// The stage: the cached base tree (built if missing), copied, customised,
/// given craton's boot files and laid out, at `<work>/tree`.
pub fn run(b: &Build) -> Result<RootfsTree> {
    let (ctx, lock) = (&b.ctx, &b.lock);
    let place = ctx.cache.tree_path("base", &base_key(lock));
    if place.is_dir() {
        tracing::info!("reusing the cached base tree {}", place.display());
    }
    let start = Instant::now();
    let base = cached_tree(&place, |tmp| {
        let debs: Vec<DebInput> = lock
            .packages
            .iter()
            .map(|p| DebInput::locked(p, &ctx.cache))
            .collect();
        let filter = path_filter(lock);
        configure::install(tmp, &debs, &filter, ctx.jobs)?;
        // Refused before the tree is cached: a path filter that leaves out
        // a module a kept one needs.
        modules::check(tmp, &filter, ctx.jobs)
    })?;
    if !base.reused {
        tracing::info!(
            "built the base tree in {:.1}s: {}",
            start.elapsed().as_secs_f64(),
            place.display()
        );
    }
    signal::check()?;
    let out = b.work("tree");
    let tree = TempTree::beside(&out)?;
    // cp keeps modes, owners, links, hard links and extended attributes
    // (file capabilities); --reflink shares blocks where the filesystem can.
    Cmd::new("cp")
        .args(["-a", "--reflink=auto", "--"])
        .arg(place.join("."))
        .arg(tree.path())
        .run()
        .context("copying the base tree")?;
    signal::check()?;
    let build_id = &lock.digest().to_hex()[..12];
    customize::customize(tree.path(), &ctx.profile, &ctx.cache, build_id)?;
    // The first boot need not redo what the build did (ldconfig, sysusers).
    stamps::write(tree.path(), b.epoch)?;
    signal::check()?;
    layout::make_immutable(tree.path())?;
    // The A/B confirmation, ROOT's growth and the OEM partition's /run
    // files (all under /usr).
    let files = crate::boot::units::image_files()
        .into_iter()
        .chain(crate::platform::units::image_files());
    for (path, text, mode) in files {
        crate::files::tree::write_file(tree.path(), &path, text.as_bytes(), mode)?;
    }
    // Everything is in /usr now: no private key may be among it.
    customize::refuse_private_keys(tree.path(), "usr")?;
    tree.persist(&out)?;
    Ok(RootfsTree {
        path: out,
        base_reused: base.reused,
    })
}
