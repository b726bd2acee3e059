//! Provisioning: the Ignition configs that give a machine made from a
//! craton image its users, keys, files and units on its first boot
//! (docs/provisioning.md).
//!
//! This module checks configs ahead of time ([`validate`], `craton
//! provision validate`) with the ignition-validate of the profile's tools
//! tree, and [`run`] is the build's check of the profile's own
//! `[provision] ignition`. Placing that config is the OEM partition's
//! business (`crate::platform::oem`); running Ignition is the initrd's
//! (`crate::initrd::ignition`).

pub mod validate;

use anyhow::Result;

pub use validate::{Config, Valid, Validator};

use crate::context::Build;

/// The stage: the profile's `[provision] ignition` config, if any, must
/// pass ignition-validate (bad input otherwise) before anything is built
/// with it; its warnings are logged.
pub fn run(b: &Build) -> Result<()> {
    let Some(c) = &b.profile().provision.ignition else {
        return Ok(());
    };
    let validator = Validator::new(b.tools.clone(), &b.lock)?;
    let valid = validator.check(&Config {
        path: c.path.clone(),
        bytes: c.content.clone().into_bytes(),
    })?;
    for w in &valid.warnings {
        tracing::warn!("{}: {w}", c.path.display());
    }
    tracing::info!(
        "[provision] ignition: {} (spec {}) goes to the metal output's OEM partition",
        c.path.display(),
        valid.spec
    );
    Ok(())
}
