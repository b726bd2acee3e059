//! The recipe of `craton build`: every stage, in order, from a profile to a
//! bootable A/B disk image. Each line is one stage; each stage takes the
//! context (before the lock) or the build (after it) and the typed results
//! of earlier stages, and returns its own (docs/architecture.md).
//!
//! Intermediate files live in a work folder inside the output folder (same
//! filesystem, removed on success, failure or interrupt); each output is
//! renamed into place when whole, so a file of the output folder is either
//! the old one or the new one, and manifest.json, written last, says
//! which (`craton verify`).

mod output;
mod steps;

use std::path::PathBuf;

use anyhow::Result;

pub use output::BuildOutput;
pub use steps::{StepTime, Steps};

use crate::context::{Build, Context, Options, Target};
use crate::error::bad_input;
use crate::sign::{self, PrivateKey};
use crate::tools::ToolsTree;
use crate::{
    boot, disk, fetch, initrd, manifest, payload, platform, provision, resolve, rootfs, sbom,
    update, usr,
};

/// The environment variable that fixes every timestamp (reproducible-builds.org).
pub const EPOCH_ENV: &str = "SOURCE_DATE_EPOCH";

/// What `craton build` is asked for.
#[derive(Debug, Clone)]
pub struct BuildRequest {
    pub options: Options,
    pub target: Target,
    /// The private key that signs the manifest (`--key`); its public key
    /// goes into the image for the on-host updater.
    pub key: Option<PathBuf>,
}

/// Runs every stage and writes the image.
pub fn build(req: &BuildRequest) -> Result<BuildOutput> {
    // A bad key is bad input before anything is fetched or built.
    let key = req.key.as_deref().map(PrivateKey::read).transpose()?;
    let mut steps = Steps::new();
    let ctx = steps.run("profile", || Context::new(&req.options))?;
    let lock = steps.run("resolve", || resolve::run(&ctx))?;
    steps.run("fetch", || fetch::run(&ctx, &lock))?;
    // Bad input the tools tree finds: before the output folder exists.
    steps.run("provision", || provision::run(&ctx, &lock))?;
    // Only now: a build that cannot fetch leaves no output folder behind.
    let b = Build::new(ctx, lock, &req.target)?;
    steps.run("tools", || b.ensure_tools())?;
    let tree = steps.run("rootfs", || rootfs::run(&b))?;
    steps.run("keys", || sign::install_public_key(&tree, key.as_ref()))?;
    steps.run("updater", || update::image::install(&b, &tree))?;
    let usr = steps.run("usr", || usr::run(&b, &tree))?;
    let initrd = steps.run("initrd", || initrd::run(&b, &tree))?;
    let esp = steps.run("boot", || boot::run(&b, &usr, &initrd))?;
    let disks = steps.run("disk", || disk::run(&b, &tree, &usr, &esp))?;
    let outputs = steps.run("outputs", || platform::outputs::run(&b, &disks))?;
    let payload = steps.run("payload", || payload::run(&b, &usr, &initrd))?;
    let sbom = steps.run("sbom", || sbom::run(&b, &tree))?;
    let others: Vec<_> = payload
        .iter()
        .map(|p| (p.path.clone(), p.kind))
        .chain([(sbom.path, sbom::KIND_SBOM)])
        .collect();
    let manifest = steps.run("manifest", || {
        manifest::run(&b, &usr, &initrd, &outputs, &others, key.as_ref())
    })?;
    BuildOutput::new(&b, &tree, &usr, &initrd, &disks, manifest, steps.finish())
}

/// The tools tree of a profile on its own: resolve (if needed), fetch and
/// unpack, as a build does before its rootfs stage. For tests and tools
/// that need only the programs.
pub fn prepare_tools(options: &Options) -> Result<ToolsTree> {
    let ctx = Context::new(options)?;
    let lock = resolve::run(&ctx)?;
    fetch::run(&ctx, &lock)?;
    let tools = ToolsTree::for_lock(&ctx.cache, &lock);
    tools.ensure(&ctx.cache, &lock, ctx.jobs)?;
    Ok(tools)
}

/// SOURCE_DATE_EPOCH when set (it must be a number), else now.
pub fn epoch_from_env() -> Result<u64> {
    match std::env::var(EPOCH_ENV) {
        Ok(v) if !v.trim().is_empty() => v.trim().parse::<u64>().map_err(|_| {
            bad_input(format!(
                "{EPOCH_ENV}={v:?}: expected seconds since 1970 (a whole number)"
            ))
        }),
        _ => Ok(std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())),
    }
}

/// The tools tree of tests/container-host-test.toml for unit tests,
/// made through [`prepare_tools`] once per process (the default cache
/// keeps it between runs).
#[cfg(test)]
pub(crate) fn test_tools() -> &'static ToolsTree {
    use std::sync::OnceLock;
    static TOOLS: OnceLock<ToolsTree> = OnceLock::new();
    TOOLS.get_or_init(|| {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let work = tempfile::tempdir().expect("a temporary folder");
        let opts = crate::context::Options {
            lock: Some(work.path().join("tools.lock")),
            ..crate::context::Options::for_profile(root.join("tests/container-host-test.toml"))
        };
        prepare_tools(&opts).expect("preparing the tools tree")
    })
}
