//! `craton build PROFILE [--platform NAME] --out DIR [--json]`: the bootable
//! disk image, DIR/<name>.raw (see `crate::build` for the recipe).

use std::path::PathBuf;

use anyhow::{Context as _, Result};

use super::fetch::FetchArgs;
use crate::build::{self, BuildRequest};
use crate::context::Target;
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
    /// Print what was built as one JSON object on stdout (docs/cli.md).
    #[arg(long)]
    pub json: bool,
    /// Sign manifest.json with this Ed25519 private key (PKCS#8 PEM, mode
    /// 600, as `craton keygen` writes it): DIR/manifest.json.sig; the
    /// image gets the public key in /usr/share/craton/keys/.
    #[arg(long, value_name = "PEM")]
    pub key: Option<PathBuf>,
    #[command(flatten)]
    pub fetch: FetchArgs,
}

pub fn run(args: Args) -> Result<()> {
    // Bad arguments fail before anything is fetched or built.
    let epoch = build::epoch_from_env()?;
    let req = BuildRequest {
        options: args.fetch.options(&args.profile),
        target: Target {
            platform: args.platform,
            out_dir: args.out,
            epoch,
        },
        key: args.key,
    };
    let out = build::build(&req)?;
    if args.json {
        let text = serde_json::to_string_pretty(&out).context("encoding the build's facts")?;
        println!("{text}");
        return Ok(());
    }
    println!("image:      {}", out.image.display());
    println!(
        "size:       {} bytes ({} MiB), {} MiB allocated",
        out.size,
        out.size >> 20,
        out.allocated >> 20
    );
    println!(
        "/usr:       {} bytes of filesystem ({:.1} MB, {} {}), {} with its verity tree",
        out.usr_fs_size,
        out.usr_fs_size as f64 / 1e6,
        out.usr_filesystem,
        out.usr_compression,
        out.usr_total_size
    );
    println!("root hash:  {}", out.root_hash);
    println!("hash offset: {}", out.hash_offset);
    println!("USR-A:      PARTUUID={}", out.usr_a_partuuid());
    println!("kernel:     {}", out.kernel_version);
    println!("initrd:     {} bytes", out.initrd_size);
    println!("manifest:   {}", out.manifest.display());
    Ok(())
}
