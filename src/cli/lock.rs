//! `craton lock PROFILE`: resolve and write craton.lock.

use std::path::PathBuf;

use anyhow::Result;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The profile (TOML).
    pub profile: PathBuf,
    /// Where to write the lock (default: craton.lock beside the profile).
    #[arg(long)]
    pub lock: Option<PathBuf>,
    /// Mirror URL for the Debian archive (overrides CRATON_MIRROR, the
    /// profile and the host's apt sources).
    #[arg(long)]
    pub mirror: Option<String>,
}

pub fn run(args: Args) -> Result<()> {
    let _ = args;
    todo!("wired up by the integration work")
}
