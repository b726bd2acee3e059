//! A/B updates (docs/updates.md): the state machine of the ESP's GRUB
//! environment block, and craton's on-host commands, which the image
//! carries (the build installs craton itself at /usr/bin/craton):
//!
//! - `state`: ORDER/OK/TRY and every transition, shared by all writers.
//! - `image`: what the build installs for them (the binary, image.toml).
//! - `host`: the booted slot, its disk and partitions, the ESP mounted,
//!   the records kept on ROOT.
//! - `channel`: where an update comes from; the signed manifest.
//! - `apply`: `craton update`, in its crash-safe order.
//! - `health`: `craton mark-good` and the boot's health check.
//! - `status`: `craton status` and `craton rollback`.
//! - `offline`: `craton slot IMAGE ...` on the build host.
//! - `version`: semantic version order.

pub mod apply;
pub mod channel;
pub mod health;
pub mod host;
pub mod image;
pub mod offline;
pub mod state;
pub mod status;
pub mod version;

pub use apply::{UpdateOptions, UpdateReport, update};
pub use state::{AbState, SlotHealth};
