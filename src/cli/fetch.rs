//! `craton fetch PROFILE`: download and verify every package and artifact of
//! the profile's lock into the cache.

use std::path::PathBuf;

use anyhow::Result;

use super::lock::MirrorArgs;
use crate::context::Context;
use crate::fetch::plan::{self, FetchSettings};
use crate::resolve;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The profile (TOML).
    pub profile: PathBuf,
    /// The lock to use (default: craton.lock beside the profile).
    #[arg(long)]
    pub lock: Option<PathBuf>,
    /// Refuse to run when the lock is missing or disagrees with the profile.
    #[arg(long)]
    pub locked: bool,
    /// A folder holding artifact files that cannot be downloaded here (their
    /// digests are still checked).
    #[arg(long, value_name = "DIR")]
    pub artifact_dir: Option<PathBuf>,
    /// Parallel downloads.
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
    let report = plan::run(&ctx, &lock, &settings)?;
    println!(
        "fetched {} files: {} downloaded ({} bytes), {} from the cache, {} from the artifact folder",
        report.total,
        report.downloaded,
        report.bytes_downloaded,
        report.cached,
        report.from_artifact_dir
    );
    Ok(())
}
