//! Profiles: TOML files with `schema = 1`, merged through `extends`, then
//! validated into the typed, immutable [`Profile`] that the pipeline reads.
//!
//! Two phases (STYLE.md): `raw` deserializes each file with
//! `deny_unknown_fields` and keeps spans; `merge` reads the `extends` tree
//! and folds parents into children; `validate` (with `artifact` and the name
//! rules in `names`) turns the merged profile into these types. `source`
//! holds the files' text and turns spans into `file:line:column`. Every
//! error is bad input (exit 2) and names the file, the key and
//! line:column. docs/profile.md documents every key once.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::digest::Sha256;

mod artifact;
mod merge;
mod names;
mod raw;
mod source;
mod validate;

/// The only schema version this craton understands.
pub const SCHEMA_VERSION: i64 = 1;

/// Repositories of a profile that lists none (DESIGN.md "Package sources"):
/// Debian trixie with its point-release updates, and its security archive,
/// so that a minimal profile still gets security fixes.
pub const DEFAULT_REPOSITORIES: &[(&str, Archive, &[&str])] = &[
    ("debian", Archive::Debian, &["trixie", "trixie-updates"]),
    (
        "debian-security",
        Archive::DebianSecurity,
        &["trixie-security"],
    ),
];

/// Components of a repository that names none: only `main`, so an image
/// contains free software unless its profile asks for more.
pub const DEFAULT_COMPONENTS: &[&str] = &["main"];

/// os-release keys craton writes from [image] (IMAGE_ID from name,
/// IMAGE_VERSION from version, os-release(5)); a profile cannot set them in
/// [image.os-release], so the two can never disagree.
pub const RESERVED_OS_RELEASE_KEYS: &[&str] = &["IMAGE_ID", "IMAGE_VERSION"];

/// Where artifact files may go (without the leading `/`): everything the OS
/// ships lives in /usr, and /etc becomes the factory copy in /usr
/// (DESIGN.md "Root filesystem"); files elsewhere would not reach the image.
pub const ARTIFACT_DESTINATION_ROOTS: &[&str] = &["usr", "etc"];

/// ESP size: shim, GRUB and a kernel plus initrd for each of two slots
/// (DESIGN.md's disk table), with room for larger kernels later.
pub const DEFAULT_ESP_MIB: u64 = 256;
/// BIOS boot partition: GRUB's i386-pc core.img measured 157 KB; one 1 MiB
/// alignment unit more leaves room for extra GRUB modules.
pub const DEFAULT_BIOS_BOOT_MIB: u64 = 2;
/// Each USR slot: /usr of the container host plus its verity tree (DESIGN.md).
pub const DEFAULT_USR_MIB: u64 = 1024;
/// OEM: a few small platform files (DESIGN.md); ext4 needs some MiB itself.
pub const DEFAULT_OEM_MIB: u64 = 128;
/// ROOT as built: grows to fill the disk on first boot, so it starts small.
pub const DEFAULT_ROOT_MIB: u64 = 1024;
/// Upper bound for any partition size: 16 TiB in MiB keeps byte and sector
/// arithmetic far from u64 overflow; a larger value is a typo.
pub const MAX_PARTITION_MIB: u64 = 16 * 1024 * 1024;
/// GRUB menu timeout: one second lets a person on the console interrupt the
/// boot without slowing unattended boots noticeably.
pub const DEFAULT_TIMEOUT_SECS: u32 = 1;

/// A validated profile.
#[derive(Debug, Clone)]
pub struct Profile {
    /// The profile file given on the command line (absolute).
    pub path: PathBuf,
    /// Every file that went into this profile, the given one last.
    pub sources: Vec<PathBuf>,
    pub image: Image,
    pub repositories: Vec<Repository>,
    pub packages: PackageSet,
    pub artifacts: Vec<Artifact>,
    pub initrd: Initrd,
    pub platforms: BTreeMap<String, Platform>,
    pub disk: Disk,
    pub boot: Boot,
}

/// [image]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    pub name: String,
    pub version: String,
    /// Extra os-release fields (KEY = value), e.g. PRETTY_NAME, HOME_URL.
    pub os_release: BTreeMap<String, String>,
}

/// Which Debian archive a repository belongs to; decides where its default
/// mirror comes from (the host's apt sources list both separately).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Archive {
    /// The main archive (.../debian): suites like trixie, trixie-updates.
    Debian,
    /// The security archive (.../debian-security): trixie-security.
    DebianSecurity,
}

/// Where the OpenPGP keys that sign a repository come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Keyring {
    /// The Debian archive keyring built into craton (keys/ in the repository).
    Builtin,
    /// An armored (.asc) or binary key file, or a directory of them:
    /// canonical, resolved against the folder of the profile file that
    /// names it, and known to exist when the profile was loaded.
    Path(PathBuf),
}

/// One [[repository]].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repository {
    pub name: String,
    pub archive: Archive,
    pub suites: Vec<String>,
    pub components: Vec<String>,
    /// The profile's mirror URL (no trailing slash), if it sets one.
    pub mirror: Option<String>,
    pub keyring: Keyring,
}

/// [packages]
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PackageSet {
    /// Packages to install (with their dependencies and Priority: required).
    pub include: Vec<String>,
    /// Packages never to install.
    pub exclude: Vec<String>,
}

/// One [[artifact]]: a pinned upstream file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Artifact {
    pub name: String,
    /// An http(s) URL, or `file://` and an absolute path (a local path in
    /// the profile is resolved against its folder into this form).
    pub url: String,
    pub sha256: Sha256,
    pub files: Vec<ArtifactFile>,
}

/// A file taken from an artifact into the image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArtifactFile {
    /// Path inside the archive (tarball); `None` takes the download itself.
    pub source: Option<String>,
    /// Absolute destination path in the image, under /usr or /etc.
    pub destination: String,
    /// Permission bits, e.g. 0o755.
    pub mode: u32,
}

/// [initrd] (used by the initrd stage; validated here as far as known).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Initrd {
    pub packages: Vec<String>,
    pub modules: Vec<String>,
}

/// [platform.NAME] (qemu, gce, metal). `Profile::platforms` holds those
/// whose table appears in the profile.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Platform {
    pub console: Option<String>,
    pub kernel_args: Vec<String>,
}

/// [disk] sizes in MiB.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disk {
    pub esp_mib: u64,
    pub bios_boot_mib: u64,
    pub usr_mib: u64,
    pub oem_mib: u64,
    pub root_mib: u64,
    pub usr_filesystem: UsrFilesystem,
}

/// The /usr image's filesystem.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UsrFilesystem {
    Erofs,
    Ext4,
}

/// [boot]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Boot {
    pub timeout_secs: u32,
    pub kernel_args: Vec<String>,
}

/// Loads, merges and validates the profile at `path`.
/// Every failure carries [`crate::error::BadInput`].
///
/// Messages print paths as given (joined for `extends`), so `load` of a
/// relative path gives the same text on every machine. Loading reads the
/// profile files and checks that keyrings exist; it writes nothing.
pub fn load(path: &Path) -> anyhow::Result<Profile> {
    let (files, order, merged) = merge::load_tree(path)?;
    validate::validate(&files, &order, merged)
}

#[cfg(test)]
mod tests;
