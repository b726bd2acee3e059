//! `craton rootfs PROFILE --out DIR`: the OS tree, for inspection and tests
//! (the same stage runs inside `craton build`).

use std::path::PathBuf;

use anyhow::Result;

use super::lock::MirrorArgs;
use crate::context::Context;
use crate::fetch::plan::{self, FetchSettings};
use crate::{resolve, rootfs};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The profile (TOML).
    pub profile: PathBuf,
    /// Where to write the tree (replaced if it exists).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// The lock to use (default: craton.lock beside the profile).
    #[arg(long)]
    pub lock: Option<PathBuf>,
    /// Refuse to run when the lock is missing or disagrees with the profile.
    #[arg(long)]
    pub locked: bool,
    /// A folder holding artifact files that cannot be downloaded here.
    #[arg(long, value_name = "DIR")]
    pub artifact_dir: Option<PathBuf>,
    /// Parallel downloads and unpacking.
    #[arg(long, short = 'j', default_value_t = crate::fetch::DEFAULT_JOBS)]
    pub jobs: usize,
    #[command(flatten)]
    pub mirrors: MirrorArgs,
}

pub fn run(args: Args) -> Result<()> {
    let ctx = Context::new(&args.profile, args.lock, args.mirrors.overrides())?;
    let lock = resolve::current_lock(&ctx, args.locked)?;
    let settings = FetchSettings {
        jobs: args.jobs.max(1),
        artifact_dir: args.artifact_dir,
    };
    plan::run(&ctx, &lock, &settings)?;
    let out = rootfs::stage::build(&ctx, &lock, &args.out, settings.jobs)?;
    println!(
        "{}: root filesystem ({} base tree)",
        out.tree.display(),
        if out.base_reused { "cached" } else { "new" }
    );
    Ok(())
}
