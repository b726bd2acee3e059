//! `craton fetch PROFILE`: download and verify packages and artifacts.

use std::path::PathBuf;

use anyhow::Result;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The profile (TOML).
    pub profile: PathBuf,
    /// The lock to use (default: craton.lock beside the profile).
    #[arg(long)]
    pub lock: Option<PathBuf>,
    /// Refuse to run when the profile and the lock disagree.
    #[arg(long)]
    pub locked: bool,
    /// A folder holding artifact files that cannot be downloaded here.
    #[arg(long)]
    pub artifact_dir: Option<PathBuf>,
    /// Parallel downloads.
    #[arg(long, short = 'j', default_value_t = 8)]
    pub jobs: usize,
    /// Mirror URL for the Debian archive.
    #[arg(long)]
    pub mirror: Option<String>,
}

pub fn run(args: Args) -> Result<()> {
    let _ = args;
    todo!("wired up by the integration work")
}
