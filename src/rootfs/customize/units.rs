//! Step 5: units. `[units]` enable, disable and mask, and default.target,
//! done the way `systemctl --root=TREE` does them, natively: the [Install]
//! section (systemd.unit(5)) of the unit file decides the symlinks.
//!
//!  - enable: for each `WantedBy=T` (`RequiredBy=`, `UpheldBy=`) a link
//!    /etc/systemd/system/T.wants/NAME (`.requires`, `.upholds`) to the unit
//!    file's path; each `Alias=A` a link /etc/systemd/system/A; `Also=`
//!    units are enabled too. A template without an instance uses its
//!    `DefaultInstance=`; links to an instance point to the template file.
//!  - disable: removes the links in /etc/systemd/system to the unit file
//!    (for an instance, only that instance's) and its aliases, and disables
//!    `Also=` units; a mask stays.
//!  - mask: /etc/systemd/system/NAME -> /dev/null.
//!
//! Expectations were checked with `systemctl --root` (systemd 252) on
//! scratch trees; the tests write those results by hand. Presets, drop-in
//! [Install] sections (ignored by systemctl too) and specifiers other than
//! %n %N %p %i %% are not handled. A unit that is not found is an error.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::files::tree;
use crate::profile::Units;

/// Where enablement symlinks go: the local configuration directory
/// (systemd.unit(5) "Unit File Load Path", system mode).
pub const UNIT_CONFIG_DIR: &str = "/etc/systemd/system";
/// The vendor unit directory (merged /usr: /lib/systemd/system is the same).
pub const UNIT_VENDOR_DIR: &str = "/usr/lib/systemd/system";
/// Unit search order for a unit file (earlier wins), as systemctl --root.
const SEARCH: [&str; 2] = [UNIT_CONFIG_DIR, UNIT_VENDOR_DIR];
/// A unit linked here is masked (systemd.unit(5)).
const MASK_TARGET: &str = "/dev/null";
/// systemd gives up following alias symlinks after this many (chase limit).
const MAX_ALIAS_HOPS: usize = 16;

pub fn apply(tree: &Path, units: &Units, default_target: &str) -> Result<()> {
    let mut done = BTreeSet::new();
    for u in &units.enable {
        enable(tree, u, &mut done).with_context(|| format!("enabling {u}"))?;
    }
    let mut done = BTreeSet::new();
    for u in &units.disable {
        disable(tree, u, &mut done).with_context(|| format!("disabling {u}"))?;
    }
    for u in &units.mask {
        mask(tree, u).with_context(|| format!("masking {u}"))?;
    }
    let found = find(tree, default_target)
        .with_context(|| format!("setting default.target to {default_target}"))?;
    tree::symlink(
        tree,
        &format!("{UNIT_CONFIG_DIR}/default.target"),
        &found.path,
    )
}

/// A unit file found in the tree.
#[derive(Debug)]
struct Found {
    /// Its absolute path in the tree: the target of enablement links.
    path: String,
    /// The name to link: the unit's own name, with the instance if any.
    name: String,
    /// The instance of a template (`Some("")` for a template without one).
    instance: Option<String>,
    install: Install,
}

/// The [Install] settings that enablement reads.
#[derive(Debug, Default)]
struct Install {
    wanted_by: Vec<String>,
    required_by: Vec<String>,
    upheld_by: Vec<String>,
    alias: Vec<String>,
    also: Vec<String>,
    default_instance: Option<String>,
}

/// Splits `name` into (prefix, instance, suffix): `getty@tty1.service` is
/// ("getty", Some("tty1"), "service").
fn split(name: &str) -> (&str, Option<&str>, &str) {
    let (stem, suffix) = name.rsplit_once('.').unwrap_or((name, ""));
    match stem.split_once('@') {
        Some((p, i)) => (p, Some(i), suffix),
        None => (stem, None, suffix),
    }
}

/// Finds unit `name`: the instance's own file, else its template; a
/// symlink to another unit (a packaged alias) is followed by name.
fn find(tree: &Path, name: &str) -> Result<Found> {
    let mut name = name.to_string();
    for _ in 0..MAX_ALIAS_HOPS {
        let (prefix, instance, suffix) = split(&name);
        let mut candidates = vec![name.clone()];
        if instance.is_some_and(|i| !i.is_empty()) {
            candidates.push(format!("{prefix}@.{suffix}"));
        }
        let mut hit = None;
        'search: for dir in SEARCH {
            let Ok(host_dir) = tree::resolve_dir(tree, dir, false) else {
                continue;
            };
            for c in &candidates {
                let host = host_dir.join(c);
                if let Ok(m) = fs::symlink_metadata(&host) {
                    hit = Some((dir, c.clone(), host, m));
                    break 'search;
                }
            }
        }
        let Some((dir, file, host, meta)) = hit else {
            bail!("unit {name} not found in {}", SEARCH.join(" or "));
        };
        if meta.file_type().is_symlink() {
            let target =
                fs::read_link(&host).with_context(|| format!("reading link {}", host.display()))?;
            let target = target.to_string_lossy();
            if target == MASK_TARGET {
                bail!("unit {name} is masked ({dir}/{file} -> {MASK_TARGET})");
            }
            // An alias: continue with the unit it names, keeping the instance.
            let real = target.rsplit('/').next().unwrap_or(&target).to_string();
            name = match (instance, split(&real)) {
                (Some(i), (p, Some(""), s)) => format!("{p}@{i}.{s}"),
                _ => real,
            };
            continue;
        }
        let text =
            fs::read_to_string(&host).with_context(|| format!("reading {}", host.display()))?;
        return Ok(Found {
            path: format!("{dir}/{file}"),
            name: name.clone(),
            instance: instance.map(str::to_string),
            install: parse_install(&text),
        });
    }
    bail!("unit {name}: more than {MAX_ALIAS_HOPS} aliases")
}

/// Reads the [Install] section: keys are lists of words, repeated keys
/// add, an empty value resets (systemd.syntax(7), systemd.unit(5)).
fn parse_install(text: &str) -> Install {
    let mut out = Install::default();
    let mut in_install = false;
    // Lines ending in a backslash continue on the next line.
    let joined = text.replace("\\\n", " ");
    for line in joined.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if line.starts_with('[') {
            in_install = line == "[Install]";
            continue;
        }
        let Some((key, value)) = line.split_once('=').filter(|_| in_install) else {
            continue;
        };
        let list = match key.trim() {
            "WantedBy" => &mut out.wanted_by,
            "RequiredBy" => &mut out.required_by,
            "UpheldBy" => &mut out.upheld_by,
            "Alias" => &mut out.alias,
            "Also" => &mut out.also,
            "DefaultInstance" => {
                let v = value.trim();
                out.default_instance = (!v.is_empty()).then(|| v.to_string());
                continue;
            }
            _ => continue,
        };
        let words: Vec<String> = value.split_whitespace().map(str::to_string).collect();
        if words.is_empty() {
            list.clear();
        } else {
            list.extend(words);
        }
    }
    out
}

/// Expands the specifiers [Install] values may use (systemd.unit(5)
/// "Specifiers"): %n full name, %N without suffix, %p prefix, %i instance.
fn expand(value: &str, name: &str) -> Result<String> {
    let (prefix, instance, suffix) = split(name);
    let mut out = String::new();
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push_str(name),
            Some('N') => out.push_str(name.strip_suffix(&format!(".{suffix}")).unwrap_or(name)),
            Some('p') => out.push_str(prefix),
            Some('i') => out.push_str(instance.unwrap_or("")),
            Some('%') => out.push('%'),
            other => bail!(
                "specifier %{} in `{value}` is not supported",
                other.map(String::from).unwrap_or_default()
            ),
        }
    }
    Ok(out)
}

/// The links `enable` makes for `f`: (path in the tree, target).
fn links(f: &Found) -> Result<Vec<(String, String)>> {
    let (prefix, _, suffix) = split(&f.name);
    let name = match f.instance.as_deref() {
        Some("") => match &f.install.default_instance {
            Some(i) => format!("{prefix}@{i}.{suffix}"),
            // A template without an instance gets no links (systemctl
            // warns the same way).
            None => {
                tracing::warn!(
                    "{} is a template without DefaultInstance=: nothing to enable",
                    f.name
                );
                return Ok(Vec::new());
            }
        },
        _ => f.name.clone(),
    };
    let mut out = Vec::new();
    for (list, dir) in [
        (&f.install.wanted_by, "wants"),
        (&f.install.required_by, "requires"),
        (&f.install.upheld_by, "upholds"),
    ] {
        for t in list {
            let t = expand(t, &name)?;
            out.push((
                format!("{UNIT_CONFIG_DIR}/{t}.{dir}/{name}"),
                f.path.clone(),
            ));
        }
    }
    for a in &f.install.alias {
        let a = expand(a, &name)?;
        if f.instance.is_some() != a.contains('@') {
            bail!("cannot alias {name} as {a}: a template's alias must be a template too");
        }
        out.push((format!("{UNIT_CONFIG_DIR}/{a}"), f.path.clone()));
    }
    Ok(out)
}

fn enable(tree: &Path, unit: &str, done: &mut BTreeSet<String>) -> Result<()> {
    if !done.insert(unit.to_string()) {
        return Ok(());
    }
    let f = find(tree, unit)?;
    let i = &f.install;
    if i.wanted_by.is_empty()
        && i.required_by.is_empty()
        && i.upheld_by.is_empty()
        && i.alias.is_empty()
        && i.also.is_empty()
    {
        // systemctl prints the same warning and succeeds: a static unit.
        tracing::warn!("{unit} has no [Install] section: nothing to enable");
    }
    for (link, target) in links(&f)? {
        tree::symlink(tree, &link, &target)?;
    }
    for also in &f.install.also {
        enable(tree, also, done).with_context(|| format!("enabling {also} (Also= of {unit})"))?;
    }
    Ok(())
}

fn disable(tree: &Path, unit: &str, done: &mut BTreeSet<String>) -> Result<()> {
    if !done.insert(unit.to_string()) {
        return Ok(());
    }
    let f = find(tree, unit)?;
    let only_instance = f
        .instance
        .as_deref()
        .filter(|i| !i.is_empty())
        .map(|_| &f.name);
    let config = tree::resolve_dir(tree, UNIT_CONFIG_DIR, false).ok();
    let aliases: Vec<String> = f
        .install
        .alias
        .iter()
        .map(|a| expand(a, &f.name))
        .collect::<Result<_>>()?;
    if let Some(config) = config {
        for link in symlinks_in(&config)? {
            let target = fs::read_link(&link)?.to_string_lossy().into_owned();
            let file = link.file_name().map(|n| n.to_string_lossy().into_owned());
            let file = file.unwrap_or_default();
            let to_unit = target == f.path && only_instance.is_none_or(|n| *n == file);
            let is_alias = link.parent() == Some(config.as_path()) && aliases.contains(&file);
            if (to_unit || is_alias) && target != MASK_TARGET {
                fs::remove_file(&link).with_context(|| format!("removing {}", link.display()))?;
            }
        }
    }
    for also in &f.install.also {
        disable(tree, also, done).with_context(|| format!("disabling {also} (Also= of {unit})"))?;
    }
    Ok(())
}

/// Symlinks in `dir` and in its subfolders one level down (the .wants,
/// .requires and .upholds folders).
fn symlinks_in(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let read = |d: &Path| -> Result<Vec<fs::DirEntry>> {
        fs::read_dir(d)
            .and_then(|r| r.collect::<Result<Vec<_>, _>>())
            .with_context(|| format!("reading {}", d.display()))
    };
    for e in read(dir)? {
        let t = e.file_type()?;
        if t.is_symlink() {
            out.push(e.path());
        } else if t.is_dir() {
            for s in read(&e.path())? {
                if s.file_type()?.is_symlink() {
                    out.push(s.path());
                }
            }
        }
    }
    out.sort();
    Ok(out)
}

fn mask(tree: &Path, unit: &str) -> Result<()> {
    // Only to report a unit that does not exist (a typo) as an error;
    // systemctl would mask any name.
    let (prefix, _, suffix) = split(unit);
    let template = format!("{prefix}@.{suffix}");
    let exists = SEARCH.iter().any(|dir| {
        tree::resolve_dir(tree, dir, false).is_ok_and(|d| {
            fs::symlink_metadata(d.join(unit)).is_ok()
                || (unit.contains('@') && fs::symlink_metadata(d.join(&template)).is_ok())
        })
    });
    if !exists {
        bail!("unit {unit} not found in {}", SEARCH.join(" or "));
    }
    let path = format!("{UNIT_CONFIG_DIR}/{unit}");
    let host = tree::place(tree, &path)?;
    if fs::symlink_metadata(&host).is_ok_and(|m| m.is_file()) {
        // systemctl refuses too: the local unit file would be lost.
        bail!("{path} is a unit file, not a link; cannot mask it");
    }
    tree::symlink(tree, &path, MASK_TARGET)
}

#[cfg(test)]
#[path = "units_tests.rs"]
mod tests;
