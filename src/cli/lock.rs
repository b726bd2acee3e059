//! `craton lock PROFILE`: resolve the profile and write craton.lock.

use std::path::PathBuf;

use anyhow::Result;

use crate::context::{Context, Options};
use crate::repo::mirror::Overrides;
use crate::resolve;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The profile (TOML).
    pub profile: PathBuf,
    /// Where to write the lock (default: craton.lock beside the profile).
    #[arg(long)]
    pub lock: Option<PathBuf>,
    #[command(flatten)]
    pub mirrors: MirrorArgs,
}

/// Mirror flags shared by the subcommands that reach a repository.
#[derive(Debug, Clone, clap::Args)]
pub struct MirrorArgs {
    /// Mirror of the Debian archive, e.g. http://HOST/debian (default:
    /// CRATON_MIRROR, the profile, then the host's apt sources).
    #[arg(long, value_name = "URL")]
    pub mirror: Option<String>,
    /// Mirror of the Debian security archive (default: CRATON_SECURITY_MIRROR,
    /// beside --mirror, the profile, then the host's apt sources).
    #[arg(long, value_name = "URL")]
    pub security_mirror: Option<String>,
}

impl MirrorArgs {
    pub fn overrides(&self) -> Overrides {
        Overrides::from_flags_and_env(self.mirror.clone(), self.security_mirror.clone())
    }
}

pub fn run(args: Args) -> Result<()> {
    let opts = Options {
        lock: args.lock,
        mirrors: args.mirrors.overrides(),
        ..Options::for_profile(&args.profile)
    };
    let ctx = Context::new(&opts)?;
    let lock = resolve::write_lock(&ctx)?;
    println!("{}: {}", ctx.lock_path.display(), resolve::summary(&lock));
    Ok(())
}
