//! `craton inspect IMAGE [--json]`: the partition table, the A/B state and
//! each slot's version, kernel and root hash of a raw image (see
//! `crate::inspect`).

use std::path::PathBuf;

use anyhow::{Context as _, Result};

use crate::inspect;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The raw disk image (fresh from a build, or a disk a machine booted).
    pub image: PathBuf,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: Args) -> Result<()> {
    let i = inspect::inspect(&args.image)?;
    if args.json {
        let text = serde_json::to_string_pretty(&i).context("encoding the inspection")?;
        println!("{text}");
    } else {
        print!("{}", inspect::render(&i));
    }
    Ok(())
}
