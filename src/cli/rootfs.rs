//! `craton rootfs PROFILE --out DIR`: the OS tree, for inspection and tests
//! (the same stage runs inside `craton build`).

use std::path::PathBuf;

use anyhow::Result;

use super::fetch::FetchArgs;
use crate::fetch::plan;
use crate::rootfs;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The profile (TOML).
    pub profile: PathBuf,
    /// Where to write the tree (replaced if it exists).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    #[command(flatten)]
    pub fetch: FetchArgs,
}

pub fn run(args: Args) -> Result<()> {
    let (ctx, lock) = args.fetch.context_and_lock(&args.profile)?;
    let settings = args.fetch.settings();
    plan::run(&ctx, &lock, &settings)?;
    let out = rootfs::stage::build(&ctx, &lock, &args.out, settings.jobs)?;
    println!(
        "{}: root filesystem ({} base tree)",
        out.tree.display(),
        if out.base_reused { "cached" } else { "new" }
    );
    Ok(())
}
