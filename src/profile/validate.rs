//! Phase two: the merged profile becomes the typed [`Profile`]. Defaults are
//! filled in here (from the named constants in `mod.rs`), names are checked
//! against their syntax, paths are resolved against the file that wrote
//! them. The first mistake found is the error.
//!
//! Artifacts have their own module (`artifact`), and so do the keys that
//! customise the tree (`system`); the name syntaxes live in `names`.

use std::collections::BTreeMap;

use anyhow::Result;
use toml::Spanned;

use super::merge::{Merged, MergedPlatform};
use super::names;
use super::raw::{List, RawRepository};
use super::source::{At, FileId, Files, Src, join_beside, normalize};
use super::{
    Archive, Boot, DEFAULT_BIOS_BOOT_MIB, DEFAULT_COMPONENTS, DEFAULT_CONFIRM_AFTER_SECS,
    DEFAULT_ESP_MIB, DEFAULT_OEM_MIB, DEFAULT_REPOSITORIES, DEFAULT_ROOT_MIB, DEFAULT_TIMEOUT_SECS,
    DEFAULT_USR_COMPRESSION, DEFAULT_USR_MIB, Disk, Image, Initrd, Keyring, PackageSet, Platform,
    PlatformSettings, Profile, RESERVED_OS_RELEASE_KEYS, Repository, Tools, Update, UsrB,
    UsrFilesystem,
};

/// The root file: messages about what is missing after merging name it.
const ROOT: FileId = 0;

pub(super) fn validate(files: &Files, order: &[FileId], m: Merged) -> Result<Profile> {
    let image = image(files, &m)?;
    let repositories = repositories(files, &m.repositories)?;
    let mut packages = packages(files, &m.include, &m.exclude)?;
    packages.paths = path_filter(files, m.path_exclude.as_deref(), m.path_include.as_deref())?;
    let artifacts = super::artifact::artifacts(files, &m.artifacts)?;
    let initrd = Initrd {
        packages: package_list(files, "[initrd] packages", &m.initrd_packages)?,
        modules: checked_list(files, "[initrd] modules", &m.initrd_modules, names::module)?,
    };
    let tools = Tools {
        packages: match &m.tools_packages {
            None => super::DEFAULT_TOOLS_PACKAGES
                .iter()
                .map(|s| (*s).to_owned())
                .collect(),
            Some(list) => package_list(files, "[tools] packages", list)?,
        },
    };
    let mut platforms = BTreeMap::new();
    for (&name, p) in &m.platforms {
        platforms.insert(name, platform(files, name, p)?);
    }
    let disk = disk(&m);
    let boot = Boot {
        timeout_secs: match &m.timeout_secs {
            None => DEFAULT_TIMEOUT_SECS,
            Some(t) => u32::try_from(t.value).map_err(|_| {
                files.err(
                    t.at,
                    format!(
                        "[boot] timeout-secs: expected 0 to {}, got {}",
                        u32::MAX,
                        t.value
                    ),
                )
            })?,
        },
        kernel_args: kernel_args(files, "[boot] kernel-args", &m.boot_kernel_args)?,
    };
    let update = update(files, &m)?;
    let provision = super::system::provision(files, &m)?;
    let system = super::system::system(files, &m)?;
    let units = super::system::units(files, &m)?;
    let inline_files = super::system::inline_files(files, &m.files)?;
    let users = super::system::users(files, &m.users)?;
    let groups = super::system::groups(files, &m.groups)?;
    Ok(Profile {
        path: files.get(ROOT).abs.clone(),
        sources: order.iter().map(|&id| files.get(id).abs.clone()).collect(),
        image,
        repositories,
        packages,
        artifacts,
        initrd,
        tools,
        platforms,
        disk,
        boot,
        update,
        provision,
        system,
        units,
        files: inline_files,
        users,
        groups,
    })
}

fn image(files: &Files, m: &Merged) -> Result<Image> {
    let required = |v: &Option<Src<String>>, key: &str| {
        v.clone().ok_or_else(|| {
            files.err_file(
                ROOT,
                format!("[image] {key} is missing (set it in this file or a file it extends)"),
            )
        })
    };
    let name = required(&m.name, "name")?;
    check(files, "[image] name", &name, names::image_name)?;
    let version = required(&m.version, "version")?;
    check(files, "[image] version", &version, names::image_version)?;
    let mut os_release = BTreeMap::new();
    for (key, (key_at, value)) in &m.os_release {
        let key_src = Src {
            value: key.clone(),
            at: *key_at,
        };
        check(files, "[image.os-release]", &key_src, names::os_release_key)?;
        if RESERVED_OS_RELEASE_KEYS.contains(&key.as_str()) {
            return Err(files.err(
                *key_at,
                format!(
                    "[image.os-release] {key}: set by craton from [image] and the build; \
                     remove it here"
                ),
            ));
        }
        check(
            files,
            &format!("[image.os-release] {key}"),
            value,
            names::os_release_value,
        )?;
        os_release.insert(key.clone(), value.value.clone());
    }
    Ok(Image {
        name: name.value,
        version: version.value,
        os_release,
    })
}

fn repositories(
    files: &Files,
    raws: &[(FileId, Spanned<RawRepository>)],
) -> Result<Vec<Repository>> {
    if raws.is_empty() {
        return Ok(DEFAULT_REPOSITORIES
            .iter()
            .map(|(name, archive, suites)| Repository {
                name: name.to_string(),
                archive: *archive,
                suites: suites.iter().map(|s| s.to_string()).collect(),
                components: DEFAULT_COMPONENTS.iter().map(|s| s.to_string()).collect(),
                mirror: None,
                keyring: Keyring::Builtin,
            })
            .collect());
    }
    let mut seen: BTreeMap<String, At> = BTreeMap::new();
    let mut out = Vec::new();
    for (file, raw) in raws {
        let header = At::of(*file, raw);
        let r = raw.get_ref();
        let name = r
            .name
            .clone()
            .map(|n| Src::from_spanned(*file, n))
            .ok_or_else(|| files.err(header, "[[repository]]: missing `name`"))?;
        check(files, "[[repository]] name", &name, names::entry_name)?;
        if let Some(first) = seen.insert(name.value.clone(), name.at) {
            return Err(files.err(
                name.at,
                format!(
                    "repository `{}`: duplicate name, first defined at {}",
                    name.value,
                    files.position(first)
                ),
            ));
        }
        out.push(repository(files, *file, header, &name.value, r)?);
    }
    Ok(out)
}

fn repository(
    files: &Files,
    file: FileId,
    header: At,
    name: &str,
    r: &RawRepository,
) -> Result<Repository> {
    let label = |key: &str| format!("repository `{name}`: {key}");
    let archive = r.archive.as_ref().map_or(Archive::Debian, |a| *a.get_ref());
    let suites = match &r.suites {
        None => return Err(files.err(header, format!("repository `{name}`: missing `suites`"))),
        Some(list) => word_list(files, file, &label("suites"), list)?,
    };
    let components = match &r.components {
        None => DEFAULT_COMPONENTS.iter().map(|s| s.to_string()).collect(),
        Some(list) => word_list(files, file, &label("components"), list)?,
    };
    let mirror = match &r.mirror {
        None => None,
        Some(m) => {
            let m = Src::from_spanned(file, m.clone());
            check(files, &label("mirror"), &m, names::mirror_url)?;
            Some(m.value.trim_end_matches('/').to_string())
        }
    };
    let keyring = match &r.keyring {
        None => Keyring::Builtin,
        Some(k) => {
            let at = At::of(file, k);
            if k.get_ref().is_empty() {
                return Err(files.err(at, format!("{}: empty path", label("keyring"))));
            }
            let source = files.get(file);
            let shown = normalize(&join_beside(&source.display, k.get_ref()));
            // Canonical, so the repo stage gets an absolute path and a
            // missing keyring is a profile mistake found now.
            match std::fs::canonicalize(join_beside(&source.abs, k.get_ref())) {
                Ok(abs) => Keyring::Path(abs),
                Err(e) => {
                    return Err(files.err(
                        at,
                        format!("{}: cannot read {}: {e}", label("keyring"), shown.display()),
                    ));
                }
            }
        }
    };
    Ok(Repository {
        name: name.to_string(),
        archive,
        suites,
        components,
        mirror,
        keyring,
    })
}

/// Suites and components: at least one, each a plain word, none twice.
fn word_list(files: &Files, file: FileId, label: &str, list: &List) -> Result<Vec<String>> {
    if list.get_ref().is_empty() {
        return Err(files.err(
            At::of(file, list),
            format!("{label}: expected at least one entry"),
        ));
    }
    let items: Vec<Src<String>> = list
        .get_ref()
        .iter()
        .map(|v| Src::from_spanned(file, v.clone()))
        .collect();
    let mut out: Vec<String> = Vec::new();
    for item in &items {
        check(files, label, item, names::archive_word)?;
        if out.contains(&item.value) {
            return Err(files.err(
                item.at,
                format!("{label}: `{}` is listed twice", item.value),
            ));
        }
        out.push(item.value.clone());
    }
    Ok(out)
}

fn packages(files: &Files, include: &[Src<String>], exclude: &[Src<String>]) -> Result<PackageSet> {
    let included = package_list(files, "[packages] include", include)?;
    let excluded = package_list(files, "[packages] exclude", exclude)?;
    for e in exclude {
        if let Some(i) = include.iter().find(|i| i.value == e.value) {
            return Err(files.err(
                e.at,
                format!(
                    "[packages] exclude: `{}` is also in include (at {})",
                    e.value,
                    files.position(i.at)
                ),
            ));
        }
    }
    Ok(PackageSet {
        include: included,
        exclude: excluded,
        paths: crate::deb::PathFilter::default(),
    })
}

/// `[packages] path-exclude` and `path-include`, each checked, or craton's
/// defaults for the list no profile file sets.
fn path_filter(
    files: &Files,
    exclude: Option<&[Src<String>]>,
    include: Option<&[Src<String>]>,
) -> Result<crate::deb::PathFilter> {
    let list =
        |label: &str, items: Option<&[Src<String>]>, default: &[&str]| -> Result<Vec<String>> {
            match items {
                None => Ok(default.iter().map(|s| (*s).to_owned()).collect()),
                Some(items) => checked_list(files, label, items, |p| {
                    crate::deb::filter::check_pattern(p).map_err(|e| e.to_string())
                }),
            }
        };
    let exclude = list(
        "[packages] path-exclude",
        exclude,
        super::DEFAULT_PATH_EXCLUDE,
    )?;
    let include = list(
        "[packages] path-include",
        include,
        super::DEFAULT_PATH_INCLUDE,
    )?;
    Ok(crate::deb::PathFilter { exclude, include })
}

/// Package names in order, each checked, repeats dropped (a child listing
/// what a parent already lists is harmless).
fn package_list(files: &Files, label: &str, items: &[Src<String>]) -> Result<Vec<String>> {
    checked_list(files, label, items, names::package)
}

fn checked_list(
    files: &Files,
    label: &str,
    items: &[Src<String>],
    rule: fn(&str) -> Result<(), String>,
) -> Result<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    for item in items {
        check(files, label, item, rule)?;
        if !out.contains(&item.value) {
            out.push(item.value.clone());
        }
    }
    Ok(out)
}

/// Kernel arguments keep their order and repeats: the kernel gives the last
/// of a repeated parameter precedence, so a child can override a parent.
fn update(files: &Files, m: &Merged) -> Result<Update> {
    if let Some(c) = &m.channel {
        check(files, "[update] channel", c, names::channel_url)?;
    }
    let health_units = match &m.health_units {
        None => None,
        Some(items) => Some(
            items
                .iter()
                .map(|u| {
                    check(files, "[update] health-units", u, names::unit).map(|()| u.value.clone())
                })
                .collect::<Result<Vec<_>>>()?,
        ),
    };
    let confirm_after_secs = match &m.confirm_after_secs {
        None => DEFAULT_CONFIRM_AFTER_SECS,
        Some(t) => u32::try_from(t.value)
            .ok()
            .filter(|&s| s <= MAX_CONFIRM_AFTER_SECS)
            .ok_or_else(|| {
                files.err(
                    t.at,
                    format!(
                        "[update] confirm-after-secs: expected 0 to {MAX_CONFIRM_AFTER_SECS}, got {}",
                        t.value
                    ),
                )
            })?,
    };
    Ok(Update {
        channel: m.channel.as_ref().map(|c| c.value.clone()),
        health_units,
        confirm_after_secs,
    })
}

/// A day: a longer grace period is a mistake, not a policy.
const MAX_CONFIRM_AFTER_SECS: u32 = 86_400;

fn kernel_args(files: &Files, label: &str, items: &[Src<String>]) -> Result<Vec<String>> {
    items
        .iter()
        .map(|a| check(files, label, a, names::profile_kernel_arg).map(|()| a.value.clone()))
        .collect()
}

fn platform(files: &Files, name: Platform, p: &MergedPlatform) -> Result<PlatformSettings> {
    let console = match &p.console {
        None => None,
        Some(c) => {
            check(
                files,
                &format!("[platform.{name}] console"),
                c,
                names::kernel_arg,
            )?;
            Some(c.value.clone())
        }
    };
    Ok(PlatformSettings {
        console,
        kernel_args: kernel_args(
            files,
            &format!("[platform.{name}] kernel-args"),
            &p.kernel_args,
        )?,
        packages: package_list(files, &format!("[platform.{name}] packages"), &p.packages)?,
        oem_files: super::system::files_of(
            files,
            &p.oem_files,
            &format!("[[platform.{name}.oem-file]]"),
            names::oem_path,
        )?,
    })
}

/// Sizes and kinds were typed (and sizes range-checked) when the files
/// were read; only the defaults are left to fill in.
fn disk(m: &Merged) -> Disk {
    Disk {
        esp: value_or(&m.esp_mib, DEFAULT_ESP_MIB),
        bios_boot: value_or(&m.bios_boot_mib, DEFAULT_BIOS_BOOT_MIB),
        usr: value_or(&m.usr_mib, DEFAULT_USR_MIB),
        oem: value_or(&m.oem_mib, DEFAULT_OEM_MIB),
        root: value_or(&m.root_mib, DEFAULT_ROOT_MIB),
        usr_filesystem: value_or(&m.usr_filesystem, UsrFilesystem::Erofs),
        usr_compression: value_or(&m.usr_compression, DEFAULT_USR_COMPRESSION),
        usr_b: value_or(&m.usr_b, UsrB::Empty),
    }
}

fn value_or<T: Copy>(v: &Option<Src<T>>, default: T) -> T {
    v.as_ref().map_or(default, |v| v.value)
}

/// Applies a name rule; its message follows "label: `value` ".
pub(super) fn check(
    files: &Files,
    label: &str,
    v: &Src<String>,
    rule: fn(&str) -> Result<(), String>,
) -> Result<()> {
    rule(&v.value).map_err(|why| files.err(v.at, format!("{label}: `{}` {why}", v.value)))
}
