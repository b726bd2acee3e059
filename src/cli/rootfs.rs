//! `craton rootfs PROFILE --out DIR`: the OS tree, for inspection and tests
//! (the same stages as the start of `craton build`: resolve, fetch, rootfs).

use std::path::PathBuf;

use anyhow::{Result, bail};

use super::fetch::FetchArgs;
use crate::context::{Build, Context, Target};
use crate::files::TempTree;
use crate::profile::Platform;
use crate::{fetch, resolve, rootfs};

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
    if args.out.file_name().is_none() {
        bail!("--out {}: names no folder", args.out.display());
    }
    let ctx = Context::new(&args.fetch.options(&args.profile))?;
    let lock = resolve::run(&ctx)?;
    fetch::run(&ctx, &lock)?;
    // The build's work folder sits beside DIR, so the tree is renamed into
    // place at the end; the platform does not change the tree.
    let parent = args.out.parent().filter(|p| !p.as_os_str().is_empty());
    let target = Target {
        platform: Platform::Qemu,
        out_dir: parent.map_or_else(|| PathBuf::from("."), PathBuf::from),
        epoch: crate::build::epoch_from_env()?,
    };
    let b = Build::new(ctx, lock, &target)?;
    let tree = rootfs::run(&b)?;
    TempTree::adopt(tree.path.clone()).persist(&args.out)?;
    println!(
        "{}: root filesystem ({} base tree)",
        args.out.display(),
        if tree.base_reused { "cached" } else { "new" }
    );
    Ok(())
}
