//! `craton status [--json]`, on a craton host: the booted slot, each slot's
//! version, root hash and A/B state, the next boot and the last boot's
//! health check (`crate::update::status`).

use anyhow::{Context as _, Result};

use crate::update::status;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print one JSON object instead of the lines.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: Args) -> Result<()> {
    let s = status::status()?;
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&s).context("encoding the status")?
        );
    } else {
        print!("{}", status::render(&s));
    }
    Ok(())
}
