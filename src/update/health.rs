//! `craton mark-good`: confirms the booted slot. With `--health` (the
//! image's craton-mark-good.service, started after boot-complete.target)
//! it first waits the profile's grace period and checks the boot: that
//! boot-complete.target was reached and that no unit the profile requires
//! for health has failed (`[update] health-units`, by default the units
//! it enables). A healthy boot is confirmed; an unhealthy one is not, and
//! when it is a trial it is rebooted, so GRUB takes the other slot.
//! Either way the outcome is kept on ROOT for `craton status`.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use serde::Serialize;

use super::host::{BootOutcome, Booted, EspMount, HostLock, boot_id, record_check};
use super::image::{IMAGE_INFO_PATH, ImageInfo};
use crate::partition::PartKind;
use crate::process::Cmd;

/// The target that systemd reaches when the boot's own checks passed
/// (systemd.special(7)).
pub const BOOT_COMPLETE: &str = "boot-complete.target";

/// What `craton mark-good` found and did.
#[derive(Debug, Clone, Serialize)]
pub struct MarkGood {
    pub slot: String,
    pub healthy: bool,
    pub problems: Vec<String>,
    /// The block was changed (false: the slot was good already, or the
    /// boot was not healthy).
    pub changed: bool,
    /// A failed trial: the machine is rebooting into the other slot.
    pub rebooting: bool,
}

/// Runs `craton mark-good [--health]`.
pub fn mark_good(health: bool) -> Result<MarkGood> {
    let booted = Booted::detect()?;
    let info = ImageInfo::read(Path::new(IMAGE_INFO_PATH))?;
    let problems = if health {
        std::thread::sleep(Duration::from_secs(u64::from(info.confirm_after_secs)));
        check(&info.health_units)?
    } else {
        Vec::new()
    };
    let healthy = problems.is_empty();
    let mut changed = false;
    if healthy {
        let dev = booted.partition(PartKind::Esp)?;
        // The ESP of the disk that holds the booted /usr (a test checks
        // this line names it).
        tracing::info!("mark-good: the ESP is {}", dev.display());
        let esp = EspMount::mount(HostLock::take()?, &dev, true)?;
        let before = esp.read_state()?;
        let mut after = before.clone();
        after.mark_good(booted.slot);
        changed = esp.write_state(&before, &after)?;
        esp.unmount()?;
    }
    let outcome = BootOutcome {
        slot: booted.slot.dir_name().into(),
        version: info.version.clone(),
        trial: booted.trial,
        boot_id: boot_id(),
        outcome: if healthy { "confirmed" } else { "unhealthy" }.into(),
        problems: problems.clone(),
    };
    if let Err(e) = record_check(Path::new("/"), outcome) {
        tracing::warn!("keeping the boot's outcome: {e:#}");
    }
    let rebooting = !healthy && booted.trial;
    Ok(MarkGood {
        slot: booted.slot.dir_name().into(),
        healthy,
        problems,
        changed,
        rebooting,
    })
}

/// A failed trial goes back to the other slot: GRUB will not start the
/// tried slot again.
pub fn reboot() -> Result<()> {
    Cmd::new("systemctl")
        .args(["reboot", "--no-block"])
        .run()
        .context("rebooting into the other slot")
}

/// The boot's problems: boot-complete.target not active, or a required
/// unit failed (or missing).
pub fn check(units: &[String]) -> Result<Vec<String>> {
    let mut problems = Vec::new();
    let mut names = vec![BOOT_COMPLETE.to_owned()];
    names.extend(units.iter().cloned());
    let out = Cmd::new("systemctl")
        .args(["show", "--property=Id,LoadState,ActiveState,Result", "--"])
        .args(&names)
        .output()?;
    let text = String::from_utf8_lossy(&out);
    let blocks = parse_show(&text);
    if blocks.len() != names.len() {
        bail!(
            "systemctl show gave {} units for the {} asked",
            blocks.len(),
            names.len()
        );
    }
    for (name, b) in names.iter().zip(&blocks) {
        let get = |k: &str| {
            b.iter()
                .find(|(n, _)| n == k)
                .map_or("", |(_, v)| v.as_str())
        };
        if get("LoadState") == "not-found" {
            problems.push(format!("{name}: not found"));
        } else if name == BOOT_COMPLETE && get("ActiveState") != "active" {
            problems.push(format!("{name}: {} (not reached)", get("ActiveState")));
        } else if get("ActiveState") == "failed" {
            problems.push(format!("{name}: failed ({})", get("Result")));
        }
    }
    Ok(problems)
}

/// `systemctl show` of several units: KEY=VALUE blocks separated by an
/// empty line, in the order asked.
fn parse_show(text: &str) -> Vec<Vec<(String, String)>> {
    let mut blocks = Vec::new();
    let mut cur = Vec::new();
    for line in text.lines() {
        if line.is_empty() {
            if !cur.is_empty() {
                blocks.push(std::mem::take(&mut cur));
            }
            continue;
        }
        if let Some((k, v)) = line.split_once('=') {
            cur.push((k.to_owned(), v.to_owned()));
        }
    }
    if !cur.is_empty() {
        blocks.push(cur);
    }
    blocks
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_systemctl_show_blocks() {
        let text = "Id=boot-complete.target\nLoadState=loaded\nActiveState=active\nResult=success\n\n\
                    Id=docker.socket\nLoadState=loaded\nActiveState=failed\nResult=exit-code\n";
        let b = parse_show(text);
        assert_eq!(b.len(), 2);
        assert_eq!(b[1][2], ("ActiveState".into(), "failed".into()));
    }
}
