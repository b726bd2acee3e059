//! `craton status` and `craton rollback` on the booted machine: the slot
//! that runs, each slot's version, root hash and A/B state (the same view
//! as `craton inspect` and `craton slot show`, read from the mounted ESP),
//! GRUB's next choice, the last boot's health check and the newest
//! manifest accepted.

use std::path::Path;

use anyhow::{Context as _, Result};
use serde::Serialize;

use super::host::{ACCEPTED_FILE, Accepted, BootOutcome, Booted, CHECKS_FILE, read_record};
use super::image::{IMAGE_INFO_PATH, ImageInfo};
use crate::inspect::{AbView, ab_view, render_ab};
use crate::partition::Slot;

/// What `craton status` shows.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    pub booted: BootedSlot,
    /// The disk the machine runs from.
    pub disk: String,
    #[serde(flatten)]
    pub ab: AbView,
    /// The last health checks (`craton mark-good --health`), newest last.
    pub checks: Vec<BootOutcome>,
    /// The newest manifest this machine accepted (None before an update).
    pub accepted: Option<Accepted>,
}

#[derive(Debug, Clone, Serialize)]
pub struct BootedSlot {
    pub slot: String,
    pub version: String,
    pub trial: bool,
}

/// Reads the booted machine's state.
pub fn status() -> Result<Status> {
    let booted = Booted::detect()?;
    let info = ImageInfo::read(Path::new(IMAGE_INFO_PATH))?;
    let esp = booted.mount_esp(false)?;
    let read = |p: &str| -> Result<Option<Vec<u8>>> {
        let path = esp.file(p);
        match std::fs::read(&path) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
        }
    };
    let ab = ab_view(&read)?;
    esp.unmount()?;
    Ok(Status {
        booted: BootedSlot {
            slot: booted.slot.env_name().into(),
            version: info.version,
            trial: booted.trial,
        },
        disk: booted.disk.display().to_string(),
        ab,
        checks: read_record(Path::new("/"), CHECKS_FILE)?.unwrap_or_default(),
        accepted: read_record(Path::new("/"), ACCEPTED_FILE)?,
    })
}

/// The text of `craton status`.
pub fn render(s: &Status) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "booted:    slot {}, version {}{} (disk {})",
        s.booted.slot,
        s.booted.version,
        if s.booted.trial { ", on trial" } else { "" },
        s.disk
    );
    out.push_str(&render_ab(&s.ab));
    let line = |b: &BootOutcome| {
        format!(
            "slot {} ({}{}): {}{}",
            b.slot.to_uppercase(),
            b.version,
            if b.trial { ", trial" } else { "" },
            b.outcome,
            if b.problems.is_empty() {
                String::new()
            } else {
                format!(": {}", b.problems.join("; "))
            }
        )
    };
    match s.checks.last() {
        Some(b) => {
            let _ = writeln!(out, "last check: {}", line(b));
        }
        None => out.push_str("last check: none yet\n"),
    }
    if let Some(b) = s.checks.iter().rev().find(|b| b.outcome != "confirmed") {
        let _ = writeln!(out, "last failed check: {}", line(b));
    }
    if let Some(a) = &s.accepted {
        let _ = writeln!(
            out,
            "accepted:  {} (SOURCE_DATE_EPOCH {})",
            a.version, a.source_date_epoch
        );
    }
    out
}

/// `craton rollback`: the other slot boots next, if it is good.
pub fn rollback() -> Result<Slot> {
    let booted = Booted::detect()?;
    let esp = booted.mount_esp(true)?;
    let before = esp.read_state()?;
    let mut after = before.clone();
    after
        .rollback(booted.slot)
        .map_err(|e| crate::error::bad_input(format!("{e:#}")))?;
    esp.write_state(&before, &after)?;
    esp.unmount()?;
    Ok(!booted.slot)
}
