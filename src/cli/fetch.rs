//! `craton fetch PROFILE`: download and verify every package and artifact of
//! the profile's lock into the cache (resolving the lock first if it is
//! missing or stale, unless --locked).

use std::path::{Path, PathBuf};

use anyhow::Result;

use super::lock::MirrorArgs;
use crate::context::{Context, Options};
use crate::{fetch, resolve};

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
    #[arg(long, short = 'j', default_value_t = crate::context::DEFAULT_JOBS)]
    pub jobs: usize,
    #[command(flatten)]
    pub mirrors: MirrorArgs,
}

impl FetchArgs {
    /// The run's options for `profile`.
    pub fn options(&self, profile: &Path) -> Options {
        Options {
            profile: profile.to_owned(),
            lock: self.lock.clone(),
            locked: self.locked,
            mirrors: self.mirrors.overrides(),
            artifact_dir: self.artifact_dir.clone(),
            jobs: self.jobs.max(1),
        }
    }
}

pub fn run(args: Args) -> Result<()> {
    let ctx = Context::new(&args.fetch.options(&args.profile))?;
    let lock = resolve::run(&ctx)?;
    let report = fetch::run(&ctx, &lock)?;
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
