//! Profiles: TOML files with `schema = 1`, merged through `extends`, then
//! validated into the typed, immutable [`Profile`] that the pipeline reads.
//!
//! Two phases (STYLE.md): `raw` deserializes each file with
//! `deny_unknown_fields` and keeps spans; `merge` reads the `extends` tree
//! and folds parents into children; `validate` (with `artifact` and the name
//! rules in `names`) turns the merged profile into these types. `source`
//! holds the files' text and turns spans into `file:line:column`;
//! `platform` holds the [`Platform`] enum that `--platform` shares. Every
//! error is bad input (exit 2) and names the file, the key and
//! line:column. docs/profile.md documents every key once.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::digest::Sha256;
use crate::partition::Mib;

mod artifact;
mod merge;
pub(crate) mod names;
mod platform;
mod raw;
mod source;
mod system;
mod validate;

pub use platform::Platform;

/// The only schema version this craton understands.
pub const SCHEMA_VERSION: i64 = 1;

/// Repositories of a profile that lists none (docs/architecture.md "Package sources"):
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
/// IMAGE_VERSION and VERSION_ID from version, os-release(5)) and from the
/// build (BUILD_ID); a profile cannot set them in [image.os-release], so
/// the two can never disagree.
pub const RESERVED_OS_RELEASE_KEYS: &[&str] =
    &["IMAGE_ID", "IMAGE_VERSION", "VERSION_ID", "BUILD_ID"];

/// Where artifact files may go (without the leading `/`): everything the OS
/// ships lives in /usr, and /etc becomes the factory copy in /usr
/// (docs/architecture.md "Root filesystem"); files elsewhere would not reach the image.
pub const ARTIFACT_DESTINATION_ROOTS: &[&str] = &["usr", "etc"];

/// ESP size: shim, GRUB and a kernel plus initrd for each of two slots
/// (docs/architecture.md's disk table), with room for larger kernels later.
pub const DEFAULT_ESP_MIB: Mib = Mib(256);
/// `[disk] usr-compression` when unset (docs/performance.md has why).
pub const DEFAULT_USR_COMPRESSION: UsrCompression = UsrCompression::Lzma;
/// BIOS boot partition: GRUB's i386-pc core.img measured 157 KB; one 1 MiB
/// alignment unit more leaves room for extra GRUB modules.
pub const DEFAULT_BIOS_BOOT_MIB: Mib = Mib(2);
/// Each USR slot: /usr of the container host plus its verity tree
/// (docs/architecture.md).
pub const DEFAULT_USR_MIB: Mib = Mib(1024);
/// OEM: a few small platform files (docs/architecture.md); ext4 needs some MiB itself.
pub const DEFAULT_OEM_MIB: Mib = Mib(128);
/// ROOT as built: grows to fill the disk on first boot, so it starts small.
pub const DEFAULT_ROOT_MIB: Mib = Mib(1024);
/// GRUB menu timeout: one second lets a person on the console interrupt the
/// boot without slowing unattended boots noticeably.
pub const DEFAULT_TIMEOUT_SECS: u32 = 1;

/// `[tools] packages` of a profile that sets none: the tools tree's
/// packages, with what each is for.
pub const DEFAULT_TOOLS_PACKAGES: &[&str] = &[
    // mkfs.ext4, e2fsck, resize2fs: ROOT and OEM, ext4 /usr.
    "e2fsprogs",
    // mkfs.erofs: the default /usr filesystem.
    "erofs-utils",
    // mkfs.fat, fsck.fat and mtools: the ESP (checks and fallback writer).
    "dosfstools",
    "mtools",
    // grub-mkimage and the i386-pc / x86_64-efi modules; boot.img.
    "grub-common",
    "grub-pc-bin",
    "grub-efi-amd64-bin",
    // Debian's signed GRUB and shim for Secure Boot.
    "grub-efi-amd64-signed",
    "shim-signed",
    // qemu-img: qcow2 output.
    "qemu-utils",
    // veritysetup: checks the verity tree craton computes itself.
    "cryptsetup-bin",
    // modinfo/depmod for the initrd's module closure.
    "kmod",
    // ignition-validate for `craton provision validate` (the initrd runs the same Ignition).
    "ignition",
];

/// The default target when [system] names none: a server without a
/// graphical session boots to multi-user.target (systemd.special(7)).
pub const DEFAULT_TARGET: &str = "multi-user.target";
/// Unit type suffixes, systemd.unit(5) "DESCRIPTION" (scope units are made
/// at runtime only, but systemctl accepts the name, so they are allowed).
pub const UNIT_SUFFIXES: &[&str] = &[
    "service",
    "socket",
    "device",
    "mount",
    "automount",
    "swap",
    "target",
    "path",
    "timer",
    "slice",
    "scope",
];
/// Longest unit name: systemd's UNIT_NAME_MAX is 256 bytes with the NUL.
pub const UNIT_NAME_MAX: usize = 255;
/// Longest host name: hostname(5) "64 characters" (Linux HOST_NAME_MAX).
pub const HOSTNAME_MAX: usize = 64;
/// Longest RFC 1123 label (a part of a host name between dots).
pub const HOSTNAME_LABEL_MAX: usize = 63;
/// Longest user or group name: systemd's valid_user_group_name() keeps 31
/// for utmp's 32-byte fields, as useradd's default does.
pub const USER_NAME_MAX: usize = 31;
/// Largest uid or gid a profile may set: 65534 is `nobody` and 65535 is
/// (uid_t)-1 of the 16-bit era, both reserved (systemd's "UID/GID Ranges").
pub const MAX_ID: u32 = 65533;
/// Mode of an inline [[file]] that sets none: a plain readable file.
pub const DEFAULT_FILE_MODE: u32 = 0o644;
/// Home of a [[user]] that sets none: sysusers.d(5) "defaults to /".
pub const DEFAULT_USER_HOME: &str = "/";
/// Shell of a [[user]] that sets none: sysusers.d(5) gives system users
/// nologin; Debian ships it at /usr/sbin/nologin.
pub const DEFAULT_USER_SHELL: &str = "/usr/sbin/nologin";

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
    pub tools: Tools,
    /// The `[platform.NAME]` tables the profile has (an empty one counts);
    /// [`Profile::platform`] gives the defaults for the others.
    pub platforms: BTreeMap<Platform, PlatformSettings>,
    pub disk: Disk,
    pub boot: Boot,
    pub update: Update,
    pub provision: Provision,
    pub system: System,
    pub units: Units,
    /// Inline [[file]]s, in order (a later profile's file of the same path
    /// replaced the earlier one in place).
    pub files: Vec<InlineFile>,
    pub users: Vec<User>,
    pub groups: Vec<Group>,
}

/// [system]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct System {
    /// /etc/hostname; `None` writes none (systemd then uses its fallback
    /// and DHCP may set one).
    pub hostname: Option<String>,
    /// The unit default.target points to.
    pub default_target: String,
    /// Overlay directories, canonical, in the order they are applied.
    pub overlays: Vec<PathBuf>,
}

/// [units]: unit names as written (`foo.service`, `getty@ttyS0.service`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Units {
    pub enable: Vec<String>,
    pub disable: Vec<String>,
    pub mask: Vec<String>,
}

/// One [[file]]: a file written into the image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InlineFile {
    /// Absolute path under /usr or /etc, plain components.
    pub path: String,
    pub mode: u32,
    pub content: String,
}

/// One [[user]]: a system user (sysusers.d(5) `u`, `m` for `groups`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub name: String,
    /// `None`: the first free id of the system range when built.
    pub uid: Option<u32>,
    pub gecos: String,
    pub home: String,
    pub shell: String,
    /// Supplementary groups.
    pub groups: Vec<String>,
}

/// One [[group]]: a system group (sysusers.d(5) `g`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    pub name: String,
    pub gid: Option<u32>,
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
/// `[[repository]] archive` names it in kebab-case: "debian",
/// "debian-security".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "kebab-case")]
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
    /// Packaged paths left out of the image (`path-exclude`,
    /// `path-include`; [`DEFAULT_PATH_EXCLUDE`] unless the profile says).
    pub paths: crate::deb::PathFilter,
}

/// What the image leaves out of its packages when the profile does not say
/// (`[packages] path-exclude`): documentation, manual and info pages, and
/// message translations, as mkosi's and Flatcar's images do. Kept by
/// [`DEFAULT_PATH_INCLUDE`]: each package's copyright file (its licence).
pub const DEFAULT_PATH_EXCLUDE: &[&str] = &[
    "/usr/share/doc/*",
    "/usr/share/man/*",
    "/usr/share/info/*",
    "/usr/share/locale/*",
    "/usr/share/lintian/*",
];

/// What `path-include` keeps by default: the licences.
pub const DEFAULT_PATH_INCLUDE: &[&str] = &["/usr/share/doc/*/copyright"];

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

/// [tools]: the build-only packages of the tools tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tools {
    /// Packages whose closure forms the tools tree; default
    /// [`DEFAULT_TOOLS_PACKAGES`]. Setting it (even to `[]`, as a
    /// fixture repository without those packages does) replaces the default.
    pub packages: Vec<String>,
}

/// [initrd] (used by the initrd stage; validated here as far as known).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Initrd {
    pub packages: Vec<String>,
    pub modules: Vec<String>,
}

/// One `[platform.NAME]` table: what a platform adds to the boot.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PlatformSettings {
    pub console: Option<String>,
    pub kernel_args: Vec<String>,
    /// Packages only this platform needs: installed in every image of the
    /// profile (one /usr serves every platform), their units run only on
    /// this platform (`crate::platform::units`).
    pub packages: Vec<String>,
    /// Files of the OEM partition, at their paths under [`OEM_MOUNT`].
    pub oem_files: Vec<InlineFile>,
}

/// Where the booted system mounts the OEM partition (read-only), as
/// Container Linux did; `[[platform.NAME.oem-file]]` paths start with it.
pub const OEM_MOUNT: &str = "/oem";

/// [disk]: partition sizes (written `esp-mib` and so on) and what /usr is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disk {
    pub esp: Mib,
    pub bios_boot: Mib,
    /// Each of USR-A and USR-B.
    pub usr: Mib,
    pub oem: Mib,
    pub root: Mib,
    pub usr_filesystem: UsrFilesystem,
    /// How an erofs /usr is compressed ([disk] usr-compression).
    pub usr_compression: UsrCompression,
    /// What USR-B holds in a new image ([disk] usr-b).
    pub usr_b: UsrB,
}

/// What USR-B holds in a fresh image; `[disk] usr-b` names it in
/// kebab-case ("empty", "copy").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum UsrB {
    /// Empty (zeros, slot B not good): the first update fills it, as
    /// Flatcar ships its USR-B.
    Empty,
    /// A copy of USR-A: both slots bootable from the start.
    Copy,
}

/// The /usr image's filesystem; `[disk] usr-filesystem` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum UsrFilesystem {
    /// EROFS, read-only by design (the default; GRUB never reads /usr,
    /// so its lack of an EROFS driver does not matter).
    Erofs,
    /// ext4, mounted read-only (dm-verity below it refuses writes anyway).
    Ext4,
}

impl UsrFilesystem {
    /// The name in profiles, in systemd's `mount.usrfstype=` and in
    /// mount(8) `-t`: the three agree.
    pub fn name(self) -> &'static str {
        match self {
            UsrFilesystem::Erofs => "erofs",
            UsrFilesystem::Ext4 => "ext4",
        }
    }
}

/// How an erofs /usr is compressed; `[disk] usr-compression` names it.
/// Each takes the level and physical cluster size that docs/performance.md
/// measured on the container host's /usr; Debian's 6.12 kernel reads all
/// three (CONFIG_EROFS_FS_ZIP, _ZIP_LZMA, _ZIP_ZSTD).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum UsrCompression {
    /// lz4, 64 KiB clusters: the fastest to make and to read, the largest.
    Lz4,
    /// zstd level 6, 128 KiB clusters.
    Zstd,
    /// LZMA (xz) level 1, 64 KiB clusters: the smallest, the default.
    Lzma,
}

impl UsrCompression {
    /// The profile's spelling (`[disk] usr-compression`).
    pub fn name(self) -> &'static str {
        match self {
            UsrCompression::Lz4 => "lz4",
            UsrCompression::Zstd => "zstd",
            UsrCompression::Lzma => "lzma",
        }
    }

    /// mkfs.erofs's options (erofs-utils 1.8: `-z`, `-C`, `-E`); tail
    /// packing inlines each file's last partial block with its inode.
    pub fn mkfs_erofs_args(self) -> &'static [&'static str] {
        match self {
            UsrCompression::Lz4 => &["-zlz4", "-C65536", "-Eztailpacking"],
            UsrCompression::Zstd => &["-zzstd,level=6", "-C131072", "-Eztailpacking"],
            UsrCompression::Lzma => &["-zlzma,level=1", "-C65536", "-Eztailpacking"],
        }
    }
}

/// [boot]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Boot {
    pub timeout_secs: u32,
    pub kernel_args: Vec<String>,
}

/// [provision]: first-boot provisioning (docs/provisioning.md).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Provision {
    /// `ignition`: the default Ignition config baked into the metal
    /// platform's OEM partition, read when the profile was loaded.
    pub ignition: Option<IgnitionConfig>,
}

/// An Ignition config file named by a profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IgnitionConfig {
    /// As the profile resolves it (absolute).
    pub path: PathBuf,
    pub content: String,
}

/// [update]: how the booted host takes updates (docs/updates.md).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Update {
    /// The channel `craton update` uses when given none: an http(s) URL
    /// of a served output folder.
    pub channel: Option<String>,
    /// The units whose failure keeps a boot from being confirmed; `None`:
    /// the units the profile enables ([`Profile::health_units`]).
    pub health_units: Option<Vec<String>>,
    /// How long a boot must have been complete before it is confirmed.
    pub confirm_after_secs: u32,
}

/// The default grace period before a healthy boot is confirmed: Flatcar's
/// update_engine confirms after a short period of good uptime; a minute
/// covers units that fail shortly after they start.
pub const DEFAULT_CONFIRM_AFTER_SECS: u32 = 60;

impl Profile {
    /// The units a boot needs for its slot to be confirmed: `[update]
    /// health-units`, or else every unit of `[units] enable`.
    pub fn health_units(&self) -> Vec<String> {
        self.update
            .health_units
            .clone()
            .unwrap_or_else(|| self.units.enable.clone())
    }

    /// The settings of `platform`: its table, or the defaults (no console,
    /// no kernel arguments) when the profile has none.
    pub fn platform(&self, platform: Platform) -> PlatformSettings {
        self.platforms.get(&platform).cloned().unwrap_or_default()
    }

    /// What the image installs: `[packages] include` and every platform's
    /// packages, in that order, each once. The same for every platform
    /// built, so one lock, one tree and one /usr serve them all.
    pub fn image_packages(&self) -> Vec<String> {
        let mut out = self.packages.include.clone();
        for p in self.platforms.values() {
            for name in &p.packages {
                if !out.contains(name) {
                    out.push(name.clone());
                }
            }
        }
        out
    }

    /// The packages that only some platforms list (not `[packages]
    /// include`), with those platforms: their units get a condition.
    pub fn platform_only_packages(&self) -> BTreeMap<String, Vec<Platform>> {
        let mut out: BTreeMap<String, Vec<Platform>> = BTreeMap::new();
        for (&platform, p) in &self.platforms {
            for name in &p.packages {
                if !self.packages.include.contains(name) {
                    out.entry(name.clone()).or_default().push(platform);
                }
            }
        }
        out
    }
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
