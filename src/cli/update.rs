//! `craton update [SOURCE] [--check] [--allow-downgrade] [--json]`, on a
//! craton host: installs a signed build into the other slot and makes it
//! the next boot, on trial (`crate::update::apply`, docs/updates.md).

use anyhow::{Context as _, Result};

use crate::update::{UpdateOptions, update};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// A build's output folder, its manifest.json, or the http(s) URL of a
    /// served output folder; default: the image's [update] channel.
    pub source: Option<String>,
    /// Only say whether the source has a newer build; write nothing.
    #[arg(long)]
    pub check: bool,
    /// Install a version that is not newer than the booted one (an older
    /// manifest than the newest accepted is still refused).
    #[arg(long)]
    pub allow_downgrade: bool,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: Args) -> Result<()> {
    let r = update(&UpdateOptions {
        source: args.source,
        check: args.check,
        allow_downgrade: args.allow_downgrade,
    })?;
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&r).context("encoding the report")?
        );
        return Ok(());
    }
    match (&r.installed_slot, &r.refused) {
        (Some(slot), _) => println!(
            "installed {} into slot {} in {:.1}s ({} bytes); it is tried at the next boot",
            r.offered_version,
            slot.to_uppercase(),
            r.seconds,
            r.payload_bytes
        ),
        (None, None) => println!(
            "update available: {} (booted {} in slot {})",
            r.offered_version,
            r.booted_version,
            r.booted_slot.to_uppercase()
        ),
        (None, Some(why)) => println!("no update: {why}"),
    }
    Ok(())
}
