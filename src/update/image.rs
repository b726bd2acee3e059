//! What a build puts into the image for the on-host commands: craton
//! itself at /usr/bin/craton (the binary that runs the build: it needs only
//! libc, libm, libgcc_s and liblzma, which every Debian system has) and
//! /usr/lib/craton/image.toml, which says what this /usr is (name, version,
//! build time) and the profile's `[update]` settings. The public key that
//! updates must be signed with is the keys stage's (`crate::sign`).

use std::path::Path;

use anyhow::{Context as _, Result};
use serde::{Deserialize, Serialize};

use crate::boot::units::CRATON_PATH;
use crate::context::Build;
use crate::rootfs::RootfsTree;

/// Where the image says what it is.
pub const IMAGE_INFO_PATH: &str = "/usr/lib/craton/image.toml";

/// /usr/lib/craton/image.toml.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ImageInfo {
    /// `[image] name`: an update must be of the same image.
    pub name: String,
    /// `[image] version`: an update must be newer.
    pub version: String,
    /// SOURCE_DATE_EPOCH of the build: the oldest manifest an update may
    /// have (anti-rollback) before the host has accepted any.
    pub source_date_epoch: u64,
    /// `[update] channel`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    /// `[update] confirm-after-secs`.
    pub confirm_after_secs: u32,
    /// The units whose failure keeps the slot from being confirmed.
    pub health_units: Vec<String>,
}

impl ImageInfo {
    /// Reads the file of the running system (or of a tree).
    pub fn read(path: &Path) -> Result<ImageInfo> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))
    }
}

/// The stage: craton and image.toml into the tree, before the /usr image
/// is made.
pub fn install(b: &Build, tree: &RootfsTree) -> Result<()> {
    let profile = b.profile();
    let info = ImageInfo {
        name: profile.image.name.clone(),
        version: profile.image.version.clone(),
        source_date_epoch: b.epoch,
        channel: profile.update.channel.clone(),
        confirm_after_secs: profile.update.confirm_after_secs,
        health_units: profile.health_units(),
    };
    let text = format!(
        "# What this /usr is, for `craton status` and `craton update` (docs/updates.md).\n{}",
        toml::to_string(&info).context("encoding image.toml")?
    );
    crate::files::tree::write_file(&tree.path, IMAGE_INFO_PATH, text.as_bytes(), 0o644)?;
    let exe = std::env::current_exe().context("finding craton's own binary")?;
    let bytes = std::fs::read(&exe).with_context(|| format!("reading {}", exe.display()))?;
    crate::files::tree::write_file(&tree.path, CRATON_PATH, &bytes, 0o755)?;
    tracing::info!(
        "the image has craton {} at {CRATON_PATH} ({} bytes)",
        env!("CARGO_PKG_VERSION"),
        bytes.len()
    );
    Ok(())
}
