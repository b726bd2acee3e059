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

use crate::context::Context;
use crate::lock::Lock;
use crate::tools::ToolsTree;

/// The stage: the profile's `[provision] ignition` config, if any, must
/// pass ignition-validate (bad input otherwise) before anything is built
/// with it, and before the build makes its output folder; its warnings
/// are logged. It makes the tools tree (cached) only when there is a
/// config to check.
pub fn run(ctx: &Context, lock: &Lock) -> Result<()> {
    let Some(c) = &ctx.profile.provision.ignition else {
        return Ok(());
    };
    let tools = ToolsTree::for_lock(&ctx.cache, lock);
    let validator = Validator::new(tools.clone(), lock)?;
    tools.ensure(&ctx.cache, lock, ctx.jobs)?;
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
