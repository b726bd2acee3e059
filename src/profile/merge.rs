//! `extends`: reads a profile and its parents, and folds them into one
//! [`Merged`] profile in which every value remembers its file and position.
//!
//! Order: each file's parents are merged in the order listed, depth first,
//! then the file itself; a file reached twice (a diamond) is merged once, at
//! its first place. Rules: tables merge key by key, scalars are overridden
//! by the later file, lists are appended (earlier file first),
//! `[[repository]]` entries are appended, and `[[artifact]]`, `[[user]]` and
//! `[[group]]` entries replace an earlier one of the same name in place
//! (`[[file]]` and `[[platform.NAME.oem-file]]` entries: of the same path). Meaning is checked later, in
//! `validate`; this module only rejects what it cannot merge.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::Result;
use toml::Spanned;

use super::raw::{
    self, List, RawArtifact, RawFile, RawGroup, RawInlineFile, RawRepository, RawUser,
};
use super::source::{At, FileId, Files, SourceFile, Src, join_beside, normalize};
use super::{Platform, UsrB, UsrCompression, UsrFilesystem};
use crate::error::bad_input;
use crate::partition::Mib;

/// The profile after `extends`, still unchecked.
#[derive(Debug, Default)]
pub(super) struct Merged {
    pub name: Option<Src<String>>,
    pub version: Option<Src<String>>,
    /// os-release KEY -> (the key as written, its value).
    pub os_release: BTreeMap<String, (At, Src<String>)>,
    pub repositories: Vec<(FileId, Spanned<RawRepository>)>,
    pub include: Vec<Src<String>>,
    pub exclude: Vec<Src<String>>,
    /// `None` until a file sets `[packages] path-exclude` (then craton's
    /// default filter is not used); the same for path-include.
    pub path_exclude: Option<Vec<Src<String>>>,
    pub path_include: Option<Vec<Src<String>>>,
    pub artifacts: Vec<(FileId, Spanned<RawArtifact>)>,
    pub initrd_packages: Vec<Src<String>>,
    pub initrd_modules: Vec<Src<String>>,
    /// `None` until a file sets `[tools] packages` (then craton's own list
    /// is not used).
    pub tools_packages: Option<Vec<Src<String>>>,
    pub platforms: BTreeMap<Platform, MergedPlatform>,
    pub esp_mib: Option<Src<Mib>>,
    pub bios_boot_mib: Option<Src<Mib>>,
    pub usr_mib: Option<Src<Mib>>,
    pub oem_mib: Option<Src<Mib>>,
    pub root_mib: Option<Src<Mib>>,
    pub usr_filesystem: Option<Src<UsrFilesystem>>,
    pub usr_compression: Option<Src<UsrCompression>>,
    pub usr_b: Option<Src<UsrB>>,
    pub timeout_secs: Option<Src<i64>>,
    pub boot_kernel_args: Vec<Src<String>>,
    pub channel: Option<Src<String>>,
    /// `None` until a file sets `[update] health-units` (then the
    /// profile's enabled units are not the default).
    pub health_units: Option<Vec<Src<String>>>,
    pub confirm_after_secs: Option<Src<i64>>,
    pub provision_ignition: Option<Src<String>>,
    pub hostname: Option<Src<String>>,
    pub default_target: Option<Src<String>>,
    pub overlays: Vec<Src<String>>,
    pub enable: Vec<Src<String>>,
    pub disable: Vec<Src<String>>,
    pub mask: Vec<Src<String>>,
    pub files: Vec<(FileId, Spanned<RawInlineFile>)>,
    pub users: Vec<(FileId, Spanned<RawUser>)>,
    pub groups: Vec<(FileId, Spanned<RawGroup>)>,
}

#[derive(Debug, Default)]
pub(super) struct MergedPlatform {
    pub console: Option<Src<String>>,
    pub kernel_args: Vec<Src<String>>,
    pub packages: Vec<Src<String>>,
    pub oem_files: Vec<(FileId, Spanned<RawInlineFile>)>,
}

/// Reads `path` and everything it extends; returns the files and the merged
/// profile. The given file is `FileId` 0.
pub(super) fn load_tree(path: &Path) -> Result<(Files, Vec<FileId>, Merged)> {
    let mut walk = Walk::default();
    walk.visit(path.to_path_buf(), None)?;
    let mut merged = Merged::default();
    for &id in &walk.order {
        let raw = walk.raws[id].take().unwrap_or_default();
        merged.apply(&walk.files, id, raw)?;
    }
    Ok((walk.files, walk.order, merged))
}

#[derive(Default)]
struct Walk {
    files: Files,
    raws: Vec<Option<RawFile>>,
    /// Files being read, outermost first: a path met again here is a cycle.
    stack: Vec<FileId>,
    /// Merge order: parents before children.
    order: Vec<FileId>,
}

impl Walk {
    /// Reads `path` (reached through the `extends` entry at `via`, if any),
    /// then its parents.
    fn visit(&mut self, path: PathBuf, via: Option<At>) -> Result<()> {
        // Read through the path as joined (a `..` after a symlinked folder
        // means what the OS says), print it normalised.
        let display = normalize(&path);
        let read = fs::canonicalize(&path)
            .and_then(|abs| fs::read_to_string(&abs).map(|text| (abs, text)));
        let (abs, text) = match read {
            Ok(v) => v,
            Err(e) => {
                let msg = format!("cannot read {}: {e}", display.display());
                return Err(match via {
                    Some(at) => self.files.err(at, format!("extends: {msg}")),
                    None => bad_input(msg),
                });
            }
        };
        if let Some(pos) = self
            .stack
            .iter()
            .position(|&id| self.files.get(id).abs == abs)
        {
            let mut chain: Vec<String> = self.stack[pos..]
                .iter()
                .map(|&id| self.files.get(id).display.display().to_string())
                .collect();
            chain.push(display.display().to_string());
            let msg = format!("extends cycle: {}", chain.join(" extends "));
            return Err(match via {
                Some(at) => self.files.err(at, msg),
                None => bad_input(msg),
            });
        }
        if self.files.0.iter().any(|f| f.abs == abs) {
            return Ok(()); // a diamond: already merged at its first place
        }
        let id = self.files.0.len();
        self.files.0.push(SourceFile { display, abs, text });
        let mut raw = raw::parse(&self.files, id)?;
        let extends = raw.extends.take();
        self.raws.push(Some(raw));
        self.stack.push(id);
        for entry in extends.map(Spanned::into_inner).unwrap_or_default() {
            let at = At::of(id, &entry);
            if entry.get_ref().is_empty() {
                return Err(self.files.err(at, "extends: empty path"));
            }
            let parent = join_beside(&path, entry.get_ref());
            self.visit(parent, Some(at))?;
        }
        self.stack.pop();
        self.order.push(id);
        Ok(())
    }
}

impl Merged {
    /// Folds file `id` over what is merged so far.
    fn apply(&mut self, files: &Files, id: FileId, raw: RawFile) -> Result<()> {
        if let Some(image) = raw.image {
            over(&mut self.name, id, image.name);
            over(&mut self.version, id, image.version);
            for (k, v) in image.os_release.unwrap_or_default() {
                let key_at = At::of(id, &k);
                self.os_release
                    .insert(k.into_inner(), (key_at, Src::from_spanned(id, v)));
            }
        }
        for repo in raw.repository.unwrap_or_default() {
            self.repositories.push((id, repo));
        }
        if let Some(p) = raw.packages {
            append(&mut self.include, id, p.include);
            append(&mut self.exclude, id, p.exclude);
            if p.path_exclude.is_some() {
                append(
                    self.path_exclude.get_or_insert_with(Vec::new),
                    id,
                    p.path_exclude,
                );
            }
            if p.path_include.is_some() {
                append(
                    self.path_include.get_or_insert_with(Vec::new),
                    id,
                    p.path_include,
                );
            }
        }
        self.apply_artifacts(files, id, raw.artifact.unwrap_or_default())?;
        if let Some(list) = raw.tools.and_then(|t| t.packages) {
            append(
                self.tools_packages.get_or_insert_with(Vec::new),
                id,
                Some(list),
            );
        }
        if let Some(i) = raw.initrd {
            append(&mut self.initrd_packages, id, i.packages);
            append(&mut self.initrd_modules, id, i.modules);
        }
        for (name, platform) in raw.platform.unwrap_or_default() {
            let m = self.platforms.entry(name).or_default();
            over(&mut m.console, id, platform.console);
            append(&mut m.kernel_args, id, platform.kernel_args);
            append(&mut m.packages, id, platform.packages);
            let oem = platform.oem_file.unwrap_or_default();
            replace_by_key(files, id, &mut m.oem_files, oem, "oem-file", |f| {
                f.path.as_ref()
            })?;
        }
        if let Some(d) = raw.disk {
            over(&mut self.esp_mib, id, d.esp_mib);
            over(&mut self.bios_boot_mib, id, d.bios_boot_mib);
            over(&mut self.usr_mib, id, d.usr_mib);
            over(&mut self.oem_mib, id, d.oem_mib);
            over(&mut self.root_mib, id, d.root_mib);
            over(&mut self.usr_filesystem, id, d.usr_filesystem);
            over(&mut self.usr_compression, id, d.usr_compression);
            over(&mut self.usr_b, id, d.usr_b);
        }
        if let Some(b) = raw.boot {
            over(&mut self.timeout_secs, id, b.timeout_secs);
            append(&mut self.boot_kernel_args, id, b.kernel_args);
        }
        if let Some(u) = raw.update {
            over(&mut self.channel, id, u.channel);
            over(&mut self.confirm_after_secs, id, u.confirm_after_secs);
            if u.health_units.is_some() {
                append(
                    self.health_units.get_or_insert_with(Vec::new),
                    id,
                    u.health_units,
                );
            }
        }
        if let Some(p) = raw.provision {
            over(&mut self.provision_ignition, id, p.ignition);
        }
        if let Some(s) = raw.system {
            over(&mut self.hostname, id, s.hostname);
            over(&mut self.default_target, id, s.default_target);
            append(&mut self.overlays, id, s.overlays);
        }
        if let Some(u) = raw.units {
            append(&mut self.enable, id, u.enable);
            append(&mut self.disable, id, u.disable);
            append(&mut self.mask, id, u.mask);
        }
        let file = raw.file.unwrap_or_default();
        replace_by_key(files, id, &mut self.files, file, "file", |f| {
            f.path.as_ref()
        })?;
        let user = raw.user.unwrap_or_default();
        replace_by_key(files, id, &mut self.users, user, "user", |u| {
            u.name.as_ref()
        })?;
        let group = raw.group.unwrap_or_default();
        replace_by_key(files, id, &mut self.groups, group, "group", |g| {
            g.name.as_ref()
        })?;
        Ok(())
    }

    /// A named artifact replaces an earlier file's artifact of that name in
    /// place; two of one name in the same file is a mistake.
    fn apply_artifacts(
        &mut self,
        files: &Files,
        id: FileId,
        artifacts: Vec<Spanned<RawArtifact>>,
    ) -> Result<()> {
        let mut seen: BTreeMap<String, At> = BTreeMap::new();
        for artifact in artifacts {
            let Some(name) = artifact.get_ref().name.clone() else {
                // validate reports the missing name
                self.artifacts.push((id, artifact));
                continue;
            };
            let at = At::of(id, &name);
            if let Some(first) = seen.insert(name.get_ref().clone(), at) {
                return Err(files.err(
                    at,
                    format!(
                        "artifact `{}`: defined twice in this file, first at {}",
                        name.get_ref(),
                        files.position(first)
                    ),
                ));
            }
            let earlier = self.artifacts.iter_mut().find(|(_, a)| {
                a.get_ref().name.as_ref().map(|n| n.get_ref()) == Some(name.get_ref())
            });
            match earlier {
                Some(slot) => *slot = (id, artifact),
                None => self.artifacts.push((id, artifact)),
            }
        }
        Ok(())
    }
}

/// Entries of a list of tables keyed by `key` (a name or a path): a later
/// file's entry replaces an earlier file's entry of that key in place; two
/// of one key in the same file is a mistake. Entries without the key are
/// kept for `validate` to report.
fn replace_by_key<T>(
    files: &Files,
    id: FileId,
    list: &mut Vec<(FileId, Spanned<T>)>,
    entries: Vec<Spanned<T>>,
    what: &str,
    key: fn(&T) -> Option<&Spanned<String>>,
) -> Result<()> {
    let mut seen: BTreeMap<String, At> = BTreeMap::new();
    for entry in entries {
        let Some(k) = key(entry.get_ref()).cloned() else {
            list.push((id, entry));
            continue;
        };
        let at = At::of(id, &k);
        if let Some(first) = seen.insert(k.get_ref().clone(), at) {
            return Err(files.err(
                at,
                format!(
                    "{what} `{}`: defined twice in this file, first at {}",
                    k.get_ref(),
                    files.position(first)
                ),
            ));
        }
        let earlier = list
            .iter_mut()
            .find(|(_, e)| key(e.get_ref()).map(|n| n.get_ref()) == Some(k.get_ref()));
        match earlier {
            Some(slot) => *slot = (id, entry),
            None => list.push((id, entry)),
        }
    }
    Ok(())
}

/// A later file's scalar overrides an earlier one's.
fn over<T>(slot: &mut Option<Src<T>>, id: FileId, value: Option<Spanned<T>>) {
    if let Some(v) = value {
        *slot = Some(Src::from_spanned(id, v));
    }
}

/// A later file's list items go after the earlier ones'.
fn append(list: &mut Vec<Src<String>>, id: FileId, value: Option<List>) {
    if let Some(items) = value {
        list.extend(
            items
                .into_inner()
                .into_iter()
                .map(|v| Src::from_spanned(id, v)),
        );
    }
}
