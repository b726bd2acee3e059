//! `craton build PROFILE [--platform NAME] --out DIR`: the bootable disk
//! image, DIR/<name>.raw (see `crate::build` for the recipe).

use std::path::PathBuf;

use anyhow::Result;

use super::fetch::FetchArgs;
use crate::build::{self, BuildRequest};
use crate::profile::Platform;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The profile (TOML).
    pub profile: PathBuf,
    /// The platform the image is for (its console, kernel arguments and
    /// OEM files).
    #[arg(long, value_enum, default_value_t = Platform::Qemu)]
    pub platform: Platform,
    /// The output folder; the image is DIR/<image name>.raw (replaced
    /// atomically if it exists).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    #[command(flatten)]
    pub fetch: FetchArgs,
}

pub fn run(args: Args) -> Result<()> {
    // Bad arguments fail before anything is fetched or built (clap has
    // already rejected an unknown --platform).
    let epoch = build::epoch_from_env()?;
    let (ctx, lock) = args.fetch.context_and_lock(&args.profile)?;
    let req = BuildRequest {
        platform: args.platform,
        out_dir: args.out,
        fetch: args.fetch.settings(),
        epoch,
    };
    let out = build::build(&ctx, &lock, &req)?;
    println!("image:      {}", out.image.display());
    println!(
        "size:       {} bytes ({} MiB), {} MiB allocated",
        out.size,
        out.size >> 20,
        out.allocated >> 20
    );
    println!(
        "/usr:       {} bytes of filesystem, {} with its verity tree",
        out.usr_fs_size, out.usr_total_size
    );
    println!("root hash:  {}", out.root_hash);
    println!("hash offset: {}", out.hash_offset);
    println!("USR-A:      PARTUUID={}", out.usr_a_partuuid);
    println!("kernel:     {}", out.kernel_version);
    println!("initrd:     {} bytes", out.initrd_size);
    Ok(())
}
