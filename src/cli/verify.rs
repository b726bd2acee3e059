//! `craton verify DIR --pubkey PEM [--json]`: checks a build's output
//! folder against its signed manifest (see `crate::manifest::verify`);
//! prints what matched and names each mismatch, exit 1 on any.

use std::path::PathBuf;

use anyhow::{Context as _, Result, bail};

use crate::error::bad_input;
use crate::manifest::verify;
use crate::sign::PublicKey;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The build's output folder (manifest.json, its signature, the outputs).
    pub dir: PathBuf,
    /// The Ed25519 public key (SPKI PEM) the manifest must be signed with.
    #[arg(long, value_name = "PEM")]
    pub pubkey: PathBuf,
    /// Print the report as one JSON object ({"ok", "checked", "mismatches"}).
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: Args) -> Result<()> {
    if !args.dir.is_dir() {
        return Err(bad_input(format!("{}: not a folder", args.dir.display())));
    }
    let key = PublicKey::read(&args.pubkey)?;
    let report = verify::verify(&args.dir, &key)?;
    if args.json {
        let value = serde_json::json!({
            "ok": report.ok(),
            "checked": report.checked,
            "mismatches": report.mismatches,
        });
        let text = serde_json::to_string_pretty(&value).context("encoding the report")?;
        println!("{text}");
    } else {
        for line in &report.checked {
            println!("ok        {line}");
        }
        for line in &report.mismatches {
            println!("MISMATCH  {line}");
        }
    }
    if !report.ok() {
        bail!(
            "{}: {} mismatch(es) against the signed manifest",
            args.dir.display(),
            report.mismatches.len()
        );
    }
    Ok(())
}
