//! The A/B state in the ESP's GRUB environment block, as one value with
//! its transitions: what GRUB reads (`crate::boot::grubcfg`), what the
//! booted host changes (`craton update`, `mark-good`, `rollback`) and
//! what `craton slot` edits offline. docs/updates.md draws the state
//! machine.
//!
//! The variables (RAUC's GRUB scheme, with craton's meaning):
//! - `ORDER`: the two slots, the preferred first.
//! - `<S>_OK=1`: slot S is confirmed good; GRUB boots the first good slot
//!   of ORDER, every time, without counting tries (as gptprio's
//!   `successful` bit).
//! - `<S>_TRY=1`: slot S was started on trial and has not been confirmed.
//!
//! A slot that is first in ORDER, not good and not tried is *pending*: the
//! next boot tries it once (GRUB sets its TRY before the kernel runs and
//! passes `craton.trial=1`). If that boot is not confirmed, the slot is
//! now not good and tried, so every later boot takes the other slot: the
//! machine comes back by itself.

use anyhow::{Result, bail};
use serde::Serialize;

use crate::boot::grubcfg::{DISK_ID, DiskId};
use crate::partition::Slot;

/// The ORDER variable.
pub const ORDER: &str = "ORDER";

/// The name of a slot's flag: `A_OK`, `B_TRY`.
pub fn flag_name(slot: Slot, flag: &str) -> String {
    format!("{}_{flag}", slot.env_name())
}

/// The flags' suffixes.
pub const OK: &str = "OK";
pub const TRY: &str = "TRY";

/// The A/B variables of one environment block, and the others it holds
/// (kept, in order, when the block is written back).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AbState {
    /// The preferred slot first.
    pub order: [Slot; 2],
    ok: [bool; 2],
    tried: [bool; 2],
    /// Every variable as read, in order.
    vars: Vec<(String, String)>,
}

/// What a slot is, from its flags and its place in ORDER.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SlotHealth {
    /// Confirmed: GRUB boots it when it comes first among the good slots.
    Good,
    /// Installed and first in ORDER: the next boot tries it once.
    Pending,
    /// Started on trial and not confirmed: the boot that is running now
    /// when it is the booted slot, a failed attempt otherwise.
    Tried,
    /// Not good and not pending: empty, being written, or marked bad.
    Unusable,
}

fn idx(slot: Slot) -> usize {
    match slot {
        Slot::A => 0,
        Slot::B => 1,
    }
}

impl AbState {
    /// Reads the variables of a block (`crate::boot::decode_grubenv`).
    /// Missing flags are 0 and a missing or odd ORDER is "A B", as in
    /// grub.cfg's defaults.
    pub fn from_vars(vars: &[(String, String)]) -> AbState {
        let get = |name: &str| {
            vars.iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.as_str())
        };
        let flag = |slot, f| get(&flag_name(slot, f)) == Some("1");
        let order = match get(ORDER).map(|o| o.split_whitespace().collect::<Vec<_>>()) {
            Some(o) if o == ["B", "A"] => [Slot::B, Slot::A],
            _ => [Slot::A, Slot::B],
        };
        AbState {
            order,
            ok: [flag(Slot::A, OK), flag(Slot::B, OK)],
            tried: [flag(Slot::A, TRY), flag(Slot::B, TRY)],
            vars: vars.to_vec(),
        }
    }

    /// The variables to write back: the block's own, in order, with the
    /// A/B ones replaced (and appended when missing).
    pub fn to_vars(&self) -> Vec<(String, String)> {
        let bit = |b: bool| if b { "1" } else { "0" }.to_owned();
        let mut ours = vec![(
            ORDER.to_owned(),
            format!("{} {}", self.order[0].env_name(), self.order[1].env_name()),
        )];
        for slot in Slot::ALL {
            ours.push((flag_name(slot, OK), bit(self.ok(slot))));
            ours.push((flag_name(slot, TRY), bit(self.tried(slot))));
        }
        let mut out = self.vars.clone();
        for (name, value) in ours {
            match out.iter_mut().find(|(n, _)| *n == name) {
                Some(v) => v.1 = value,
                None => out.push((name, value)),
            }
        }
        out
    }

    pub fn ok(&self, slot: Slot) -> bool {
        self.ok[idx(slot)]
    }

    pub fn tried(&self, slot: Slot) -> bool {
        self.tried[idx(slot)]
    }

    /// DISK_ID as the block says it (None for a block without it).
    pub fn disk_id(&self) -> Option<&str> {
        self.vars
            .iter()
            .find(|(n, _)| n == DISK_ID)
            .map(|(_, v)| v.as_str())
    }

    /// Whether the disk has identifiers of its own (no DISK_ID counts as
    /// [`DiskId::Machine`], as in grub.cfg).
    pub fn disk_is_machine(&self) -> bool {
        self.disk_id().is_none_or(|v| v == DiskId::Machine.name())
    }

    pub fn health(&self, slot: Slot) -> SlotHealth {
        if self.ok(slot) {
            SlotHealth::Good
        } else if self.tried(slot) {
            SlotHealth::Tried
        } else if self.order[0] == slot {
            SlotHealth::Pending
        } else {
            SlotHealth::Unusable
        }
    }

    /// The slot GRUB boots next and whether on trial: the first good slot
    /// of ORDER; the first of ORDER when it is pending; slot A when no
    /// slot qualifies (a damaged block). grub.cfg is this, in GRUB's
    /// script (the GRUB-level test boots each case and compares).
    pub fn next_boot(&self) -> (Slot, bool) {
        for (i, &slot) in self.order.iter().enumerate() {
            if self.ok(slot) {
                return (slot, false);
            }
            if i == 0 && !self.tried(slot) {
                return (slot, true);
            }
        }
        (Slot::A, false)
    }

    /// The booted slot passed its health check: good, not on trial.
    pub fn mark_good(&mut self, slot: Slot) {
        self.ok[idx(slot)] = true;
        self.tried[idx(slot)] = false;
    }

    /// The slot may not be booted: not good, and tried, so that GRUB
    /// does not take it for pending where it is first in ORDER.
    pub fn mark_bad(&mut self, slot: Slot) {
        self.ok[idx(slot)] = false;
        self.tried[idx(slot)] = true;
    }

    /// `first` becomes ORDER's first.
    pub fn set_order(&mut self, first: Slot) {
        self.order = [first, !first];
    }

    /// Before `target` is written: the booted slot first and `target` not
    /// good, so that no boot can start a half-written slot, whenever the
    /// writing stops.
    pub fn begin_install(&mut self, target: Slot) {
        self.set_order(!target);
        // Only OK: a new image's empty slot B is then left as it is, and
        // the block is not written at all.
        self.ok[idx(target)] = false;
    }

    /// `target` is written and checked and its boot files are in place:
    /// it becomes pending (first in ORDER, not good, not tried), so the
    /// next boot tries it once.
    pub fn commit_install(&mut self, target: Slot) {
        self.set_order(target);
        self.ok[idx(target)] = false;
        self.tried[idx(target)] = false;
    }

    /// `craton rollback` from `booted`: the other slot first, if it is good.
    pub fn rollback(&mut self, booted: Slot) -> Result<()> {
        let other = !booted;
        if !self.ok(other) {
            bail!(
                "slot {other} is not good ({:?}); craton rollback only returns to a confirmed slot",
                self.health(other)
            );
        }
        self.set_order(other);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(v: &[(&str, &str)]) -> AbState {
        let vars: Vec<_> = v
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect();
        AbState::from_vars(&vars)
    }

    fn image() -> AbState {
        AbState::from_vars(&crate::boot::initial_grubenv_vars(false))
    }

    #[test]
    fn a_new_image_boots_a_and_b_is_unusable() {
        let s = image();
        assert_eq!(s.next_boot(), (Slot::A, false));
        assert_eq!(s.health(Slot::A), SlotHealth::Good);
        assert_eq!(s.health(Slot::B), SlotHealth::Unusable);
        assert_eq!(s.disk_id(), Some("image"));
        assert!(!s.disk_is_machine());
        // Written back unchanged, DISK_ID included.
        assert_eq!(s.to_vars(), crate::boot::initial_grubenv_vars(false));
    }

    #[test]
    fn an_update_is_tried_once_then_confirmed_or_left() {
        let mut s = image();
        s.begin_install(Slot::B);
        assert_eq!(s.next_boot(), (Slot::A, false));
        s.commit_install(Slot::B);
        assert_eq!(s.health(Slot::B), SlotHealth::Pending);
        assert_eq!(s.next_boot(), (Slot::B, true));
        // GRUB marks it tried before the kernel runs.
        let mut tried = s.clone();
        tried.tried[1] = true;
        assert_eq!(tried.health(Slot::B), SlotHealth::Tried);
        // Not confirmed: the next boot is A's, and stays A's.
        assert_eq!(tried.next_boot(), (Slot::A, false));
        // Confirmed: B from now on, with no more tries counted.
        let mut good = tried.clone();
        good.mark_good(Slot::B);
        assert_eq!(good.next_boot(), (Slot::B, false));
        assert_eq!(good.health(Slot::A), SlotHealth::Good);
        // A rollback returns to A, which is good.
        good.rollback(Slot::B).unwrap();
        assert_eq!(good.next_boot(), (Slot::A, false));
        // From a failed trial there is nothing to roll back to.
        assert!(tried.clone().rollback(Slot::A).is_err());
    }

    #[test]
    fn installing_over_a_good_slot_unmarks_it_first() {
        let mut s = state(&[
            ("ORDER", "B A"),
            ("A_OK", "1"),
            ("A_TRY", "0"),
            ("B_OK", "1"),
            ("B_TRY", "0"),
        ]);
        assert_eq!(s.next_boot(), (Slot::B, false));
        s.begin_install(Slot::A);
        assert_eq!(s.health(Slot::A), SlotHealth::Unusable);
        // Nothing to change on a new image: its slot B is not bootable.
        let fresh = image();
        let mut begun = fresh.clone();
        begun.begin_install(Slot::B);
        assert_eq!(begun.to_vars(), fresh.to_vars());
        // Marked bad while first in ORDER: not pending, never booted.
        let mut bad = fresh.clone();
        bad.set_order(Slot::B);
        bad.mark_bad(Slot::B);
        assert_eq!(bad.health(Slot::B), SlotHealth::Tried);
        assert_eq!(bad.next_boot(), (Slot::A, false));
        assert_eq!(s.next_boot(), (Slot::B, false));
        s.commit_install(Slot::A);
        assert_eq!(s.next_boot(), (Slot::A, true));
    }

    #[test]
    fn other_variables_are_kept_in_place() {
        let s = state(&[("DISK_ID", "machine"), ("ORDER", "B A"), ("X", "y")]);
        assert_eq!(s.order, [Slot::B, Slot::A]);
        let vars = s.to_vars();
        let names: Vec<&str> = vars.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            ["DISK_ID", "ORDER", "X", "A_OK", "A_TRY", "B_OK", "B_TRY"]
        );
        assert!(s.disk_is_machine());
        // A damaged block: no good slot, nothing pending: slot A.
        let s = state(&[("ORDER", "nonsense"), ("A_TRY", "1")]);
        assert_eq!(s.next_boot(), (Slot::A, false));
    }
}
