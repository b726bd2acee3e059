//! `craton fetch PROFILE`: download and verify every package and artifact of
//! the profile's lock into the cache.

use std::path::PathBuf;

use anyhow::Result;

use super::lock::MirrorArgs;
use crate::context::Context;
use crate::fetch::plan::{self, FetchSettings};
use crate::lock::Lock;
use crate::resolve;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The profile (TOML).
    pub profile: PathBuf,
    #[command(flatten)]
    pub fetch: FetchArgs,
}

/// The lock and download options of every subcommand that fetches.
#[derive(Debug, Clone, clap::Args)]
pub struct FetchArgs {
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
    /// Parallel downloads (and unpacking).
    #[arg(long, short = 'j', default_value_t = crate::fetch::DEFAULT_JOBS)]
    pub jobs: usize,
    #[command(flatten)]
    pub mirrors: MirrorArgs,
}

impl FetchArgs {
    /// Loads the profile, settles the lock and fetches everything it names.
    pub fn context_and_lock(&self, profile: &std::path::Path) -> Result<(Context, Lock)> {
        let ctx = Context::new(profile, self.lock.clone(), self.mirrors.overrides())?;
        let lock = resolve::current_lock(&ctx, self.locked)?;
        Ok((ctx, lock))
    }

    pub fn settings(&self) -> FetchSettings {
        FetchSettings {
            jobs: self.jobs.max(1),
            artifact_dir: self.artifact_dir.clone(),
        }
    }
}

pub fn run(args: Args) -> Result<()> {
    let (ctx, lock) = args.fetch.context_and_lock(&args.profile)?;
    let report = plan::run(&ctx, &lock, &args.fetch.settings())?;
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
