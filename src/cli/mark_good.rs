//! `craton mark-good [--health]`, on a craton host: confirms the booted
//! slot; with --health (the image's craton-mark-good.service) only after
//! the grace period and a healthy boot, and a failed trial reboots into
//! the other slot (`crate::update::health`).

use anyhow::{Result, bail};

use crate::update::health;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Wait the profile's grace period and confirm only a healthy boot.
    #[arg(long)]
    pub health: bool,
}

pub fn run(args: Args) -> Result<()> {
    let r = health::mark_good(args.health)?;
    let slot = r.slot.to_uppercase();
    if r.healthy {
        if r.changed {
            println!("craton: slot {slot} marked good");
        } else {
            println!("craton: slot {slot} is good");
        }
        return Ok(());
    }
    for p in &r.problems {
        println!("craton: unhealthy: {p}");
    }
    if r.rebooting {
        println!("craton: slot {slot} failed its trial; rebooting into the other slot");
        health::reboot()?;
    }
    bail!("slot {slot} not confirmed: the boot is not healthy")
}
