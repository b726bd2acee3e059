//! `craton provision validate FILE [--profile PROFILE]`: checks an
//! Ignition config with ignition-validate from the profile's tools tree
//! (`crate::provision`). A group, so that later provisioning commands join
//! it.

use std::path::PathBuf;

use anyhow::Result;

use super::lock::MirrorArgs;
use crate::context::Options;
use crate::error::bad_input;
use crate::provision::{Config, Validator};

/// The profile when `--profile` names none: the default image's, as the
/// README's commands name it, from the top of a craton checkout.
pub const DEFAULT_PROFILE: &str = "profiles/container-host.toml";

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub command: ProvisionCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum ProvisionCommand {
    /// Check an Ignition config with the ignition-validate of the profile's
    /// tools tree (the Ignition the image runs); exit 2 if it is invalid.
    Validate(ValidateArgs),
}

#[derive(Debug, clap::Args)]
pub struct ValidateArgs {
    /// The Ignition config (JSON).
    pub file: PathBuf,
    /// The profile whose lock gives the tools tree (default:
    /// profiles/container-host.toml, from the top of a craton checkout).
    #[arg(long)]
    pub profile: Option<PathBuf>,
    /// The lock to use (default: craton.lock beside the profile).
    #[arg(long)]
    pub lock: Option<PathBuf>,
    /// Refuse to run when the lock is missing or disagrees with the profile.
    #[arg(long)]
    pub locked: bool,
    #[command(flatten)]
    pub mirrors: MirrorArgs,
}

pub fn run(args: Args) -> Result<()> {
    match args.command {
        ProvisionCommand::Validate(a) => run_validate(a),
    }
}

fn run_validate(args: ValidateArgs) -> Result<()> {
    // Bad input fails before anything is resolved or fetched: the file first.
    let config = Config::read(&args.file)?;
    let opts = Options {
        lock: args.lock,
        locked: args.locked,
        mirrors: args.mirrors.overrides(),
        ..Options::for_profile(profile_or_default(args.profile)?)
    };
    let valid = Validator::prepare(&opts)?.check(&config)?;
    let file = args.file.display();
    // Warnings are the validator's diagnostics: stderr, beside the log.
    for w in &valid.warnings {
        eprintln!("{file}: {w}");
    }
    let warnings = match valid.warnings.len() {
        0 => String::new(),
        1 => ", 1 warning".to_owned(),
        n => format!(", {n} warnings"),
    };
    println!(
        "{file}: valid Ignition config (spec {}{warnings})",
        valid.spec
    );
    Ok(())
}

/// `--profile`, or [`DEFAULT_PROFILE`] when it is here. Outside a checkout
/// the default is not: say so, rather than name a file the user never
/// asked for.
fn profile_or_default(profile: Option<PathBuf>) -> Result<PathBuf> {
    if let Some(p) = profile {
        return Ok(p);
    }
    let default = PathBuf::from(DEFAULT_PROFILE);
    if !default.exists() {
        return Err(bad_input(format!(
            "no --profile, and no {DEFAULT_PROFILE} here (the default, from the top \
             of a craton checkout): name the profile whose tools tree to use"
        )));
    }
    Ok(default)
}
