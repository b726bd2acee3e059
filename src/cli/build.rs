//! `craton build PROFILE [--platform qemu,gce,metal|all] --out DIR [--json]`:
//! each platform's disk image files, the update payload and the manifest
//! in DIR (see `crate::build` for the recipe).

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
    /// The platforms to emit, comma-separated, or `all`: qemu
    /// (<name>-qemu.qcow2), gce (<name>-gce.tar.gz), metal
    /// (<name>-metal.raw and .raw.zst). One tree and one /usr image serve
    /// them all; each gets its own OEM partition.
    #[arg(long, value_enum, value_delimiter = ',', default_value = "qemu")]
    pub platform: Vec<PlatformArg>,
    /// The output folder; each file in it is replaced atomically.
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
            platforms: platforms(&args.platform),
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
    for f in &out.files {
        let what = f.platform.as_deref().unwrap_or("payload");
        println!(
            "{:<11} {} ({}, {} bytes)",
            format!("{what}:"),
            f.path.display(),
            f.kind,
            f.size
        );
    }
    for d in &out.disks {
        println!(
            "{:<11} {} bytes ({} MiB), {} MiB allocated",
            format!("{} disk:", d.platform),
            d.size,
            d.size >> 20,
            d.allocated >> 20
        );
    }
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

/// `--platform`'s values: the platforms and `all`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PlatformArg {
    Qemu,
    Gce,
    Metal,
    /// Every platform.
    All,
}

/// The platforms asked for, each once, in [`Platform::ALL`]'s order.
pub fn platforms(args: &[PlatformArg]) -> Vec<Platform> {
    let wanted = |p: Platform| {
        args.iter().any(|a| match a {
            PlatformArg::All => true,
            PlatformArg::Qemu => p == Platform::Qemu,
            PlatformArg::Gce => p == Platform::Gce,
            PlatformArg::Metal => p == Platform::Metal,
        })
    };
    Platform::ALL.into_iter().filter(|&p| wanted(p)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platform_lists_are_ordered_and_all_means_every_one() {
        use PlatformArg::*;
        assert_eq!(
            platforms(&[Metal, Qemu, Metal]),
            [Platform::Qemu, Platform::Metal]
        );
        assert_eq!(platforms(&[Gce, All]), Platform::ALL);
        assert_eq!(platforms(&[Gce]), [Platform::Gce]);
    }
}
