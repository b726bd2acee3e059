//! Customisation of a configured tree (dpkg has run): what the profile adds
//! on top of the packages, written natively on the files, in this order:
//!
//!  1. artifacts: files taken from pinned downloads in the cache;
//!  2. overlays: folders copied over the tree, in profile order;
//!  3. inline `[[file]]`s;
//!  4. users and groups: a sysusers.d fragment, applied to /etc now;
//!  5. units: enable, disable, mask, and default.target, as
//!     `systemctl --root` would;
//!  6. identity: host name, an empty machine-id, os-release, root locked.
//!
//! It runs no command and needs no chroot: the tree is only files here.
//! Moving /etc to the factory and emptying /var is `layout`'s job, after
//! this.

use std::path::Path;

use anyhow::{Context, Result};

use crate::fetch::cache::Cache;
use crate::profile::Profile;

mod artifacts;
mod identity;
mod overlay;
mod tree;
mod units;
mod users;

pub use identity::{OS_RELEASE, ROOT_LOCKED};
pub use users::{SYSTEM_ID_MAX, SYSTEM_ID_MIN, SYSUSERS_FRAGMENT};

/// Applies `profile` to the configured `tree`. `build_id` becomes
/// os-release's BUILD_ID (the caller derives it from the lock digest).
pub fn customize(tree: &Path, profile: &Profile, cache: &Cache, build_id: &str) -> Result<()> {
    let step = |what: &str| format!("customizing {}: {what}", tree.display());
    artifacts::install(tree, &profile.artifacts, cache).with_context(|| step("artifacts"))?;
    for dir in &profile.system.overlays {
        overlay::copy(dir, tree).with_context(|| step(&format!("overlay {}", dir.display())))?;
    }
    for f in &profile.files {
        tree::write_file(tree, &f.path, f.content.as_bytes(), f.mode)
            .with_context(|| step(&format!("file {}", f.path)))?;
    }
    users::apply(tree, &profile.users, &profile.groups).with_context(|| step("users"))?;
    units::apply(tree, &profile.units, &profile.system.default_target)
        .with_context(|| step("units"))?;
    identity::apply(tree, profile, build_id).with_context(|| step("identity"))?;
    Ok(())
}
