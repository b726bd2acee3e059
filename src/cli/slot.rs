//! `craton slot IMAGE show|set-order|mark-good|mark-bad`: an image's A/B
//! state, read and changed offline (`crate::update::offline`).

use std::path::PathBuf;

use anyhow::{Context as _, Result};

use crate::inspect::render_ab;
use crate::partition::Slot;
use crate::update::offline::{SlotAction, slot};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The disk image (raw; show also reads qcow2).
    pub image: PathBuf,
    #[command(subcommand)]
    pub action: Action,
    /// Print one JSON object.
    #[arg(long, global = true)]
    pub json: bool,
}

#[derive(Debug, clap::Subcommand)]
pub enum Action {
    /// The A/B state, each slot's version and root hash, the next boot.
    Show,
    /// Put SLOT first in ORDER (the other second).
    SetOrder {
        #[arg(value_parser = parse_slot)]
        slot: Slot,
    },
    /// Mark SLOT good (confirmed, not on trial).
    MarkGood {
        #[arg(value_parser = parse_slot)]
        slot: Slot,
    },
    /// Mark SLOT not bootable.
    MarkBad {
        #[arg(value_parser = parse_slot)]
        slot: Slot,
    },
}

fn parse_slot(s: &str) -> Result<Slot, String> {
    Slot::parse(s).map_err(|e| format!("{e:#}"))
}

pub fn run(args: Args) -> Result<()> {
    let action = match args.action {
        Action::Show => SlotAction::Show,
        Action::SetOrder { slot } => SlotAction::SetOrder(slot),
        Action::MarkGood { slot } => SlotAction::MarkGood(slot),
        Action::MarkBad { slot } => SlotAction::MarkBad(slot),
    };
    let ab = slot(&args.image, action)?;
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&ab).context("encoding the A/B state")?
        );
    } else {
        print!("{}", render_ab(&ab));
    }
    Ok(())
}
