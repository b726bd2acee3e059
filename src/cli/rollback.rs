//! `craton rollback`, on a craton host: the other slot boots next, if it
//! is good (`crate::update::status::rollback`).

use anyhow::Result;

#[derive(Debug, clap::Args)]
pub struct Args {}

pub fn run(_args: Args) -> Result<()> {
    let slot = crate::update::status::rollback()?;
    println!(
        "craton: slot {} boots next; reboot to use it",
        slot.env_name()
    );
    Ok(())
}
