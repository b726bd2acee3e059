//! Validation of what customises the built tree: `[system]` (host name,
//! default target, overlays), `[units]`, inline `[[file]]`s and the
//! `[[user]]`s and `[[group]]`s for sysusers.d, and `[provision]`.
//!
//! Overlay folders are checked to exist; nothing else touches the file
//! system. Whether a unit exists is known only in the built tree, so
//! `rootfs::customize` reports an unknown unit.

use std::collections::BTreeMap;

use anyhow::Result;
use toml::Spanned;

use super::artifact::{image_path, parse_mode};
use super::merge::Merged;
use super::names;
use super::raw::{RawGroup, RawInlineFile, RawUser};
use super::source::{At, FileId, Files, Src, join_beside, normalize};
use super::validate::check;
use super::{
    DEFAULT_FILE_MODE, DEFAULT_TARGET, DEFAULT_USER_HOME, DEFAULT_USER_SHELL, Group,
    IgnitionConfig, InlineFile, MAX_ID, Provision, System, Units, User,
};

pub(super) fn system(files: &Files, m: &Merged) -> Result<System> {
    let hostname = match &m.hostname {
        None => None,
        Some(h) => {
            check(files, "[system] hostname", h, names::hostname)?;
            Some(h.value.clone())
        }
    };
    let default_target = match &m.default_target {
        None => DEFAULT_TARGET.to_string(),
        Some(t) => {
            check(files, "[system] default-target", t, names::target)?;
            t.value.clone()
        }
    };
    let mut overlays = Vec::new();
    for o in &m.overlays {
        let source = files.get(o.at.file);
        if o.value.is_empty() {
            return Err(files.err(o.at, "[system] overlays: empty path"));
        }
        let shown = normalize(&join_beside(&source.display, &o.value));
        let abs = std::fs::canonicalize(join_beside(&source.abs, &o.value)).map_err(|e| {
            files.err(
                o.at,
                format!("[system] overlays: cannot read {}: {e}", shown.display()),
            )
        })?;
        if !abs.is_dir() {
            return Err(files.err(
                o.at,
                format!("[system] overlays: {} is not a directory", shown.display()),
            ));
        }
        // The same folder named by a parent and a child is applied once.
        if !overlays.contains(&abs) {
            overlays.push(abs);
        }
    }
    Ok(System {
        hostname,
        default_target,
        overlays,
    })
}

/// [provision] ignition: a file beside the profile that names it, read
/// now, and JSON (Ignition's own validation runs at build time).
pub(super) fn provision(files: &Files, m: &Merged) -> Result<Provision> {
    let Some(p) = &m.provision_ignition else {
        return Ok(Provision::default());
    };
    let source = files.get(p.at.file);
    if p.value.is_empty() {
        return Err(files.err(p.at, "[provision] ignition: empty path"));
    }
    let shown = normalize(&join_beside(&source.display, &p.value));
    let path = join_beside(&source.abs, &p.value);
    let content = std::fs::read_to_string(&path).map_err(|e| {
        files.err(
            p.at,
            format!("[provision] ignition: cannot read {}: {e}", shown.display()),
        )
    })?;
    if let Err(e) = serde_json::from_str::<serde_json::Value>(&content) {
        return Err(files.err(
            p.at,
            format!("[provision] ignition: {} is not JSON: {e}", shown.display()),
        ));
    }
    // The image is the same for every machine and is shipped as a file:
    // a secret baked into it is everyone's (DESIGN.md).
    let value: serde_json::Value = serde_json::from_str(&content).unwrap_or_default();
    if let Some(secret) = baked_secret(&value) {
        return Err(files.err(
            p.at,
            format!(
                "[provision] ignition: {} sets {secret}, a secret, which must not be baked into an image: \
                 give it per machine (ignition.config.url, the platform's user data)",
                shown.display()
            ),
        ));
    }
    Ok(Provision {
        ignition: Some(IgnitionConfig {
            path: normalize(&path),
            content,
        }),
    })
}

/// The first secret an Ignition config sets: a user's `passwordHash` or a
/// LUKS volume's `keyFile` (config spec 3.x), as a JSON path.
fn baked_secret(config: &serde_json::Value) -> Option<String> {
    let users = config.pointer("/passwd/users").and_then(|v| v.as_array());
    for (i, u) in users.into_iter().flatten().enumerate() {
        if u.get("passwordHash").is_some_and(|h| !h.is_null()) {
            return Some(format!("passwd.users.{i}.passwordHash"));
        }
    }
    let luks = config.pointer("/storage/luks").and_then(|v| v.as_array());
    for (i, l) in luks.into_iter().flatten().enumerate() {
        if l.get("keyFile").is_some_and(|k| !k.is_null()) {
            return Some(format!("storage.luks.{i}.keyFile"));
        }
    }
    None
}

/// Each list keeps its order without repeats; a unit in two lists would
/// make the result depend on the order of the steps, so it is an error.
pub(super) fn units(files: &Files, m: &Merged) -> Result<Units> {
    let lists = [
        ("enable", &m.enable),
        ("disable", &m.disable),
        ("mask", &m.mask),
    ];
    let mut seen: BTreeMap<&str, (&str, At)> = BTreeMap::new();
    let mut out: [Vec<String>; 3] = Default::default();
    for (i, (key, items)) in lists.iter().enumerate() {
        for item in items.iter() {
            check(files, &format!("[units] {key}"), item, names::unit)?;
            match seen.get(item.value.as_str()) {
                Some((other, first)) if other != key => {
                    return Err(files.err(
                        item.at,
                        format!(
                            "[units] {key}: `{}` is also in {other} (at {})",
                            item.value,
                            files.position(*first)
                        ),
                    ));
                }
                Some(_) => continue,
                None => {
                    seen.insert(&item.value, (key, item.at));
                    out[i].push(item.value.clone());
                }
            }
        }
    }
    let [enable, disable, mask] = out;
    Ok(Units {
        enable,
        disable,
        mask,
    })
}

pub(super) fn inline_files(
    files: &Files,
    raws: &[(FileId, Spanned<RawInlineFile>)],
) -> Result<Vec<InlineFile>> {
    files_of(files, raws, "[[file]]", image_path)
}

/// `[[file]]`-shaped entries (path, mode, content) under the table name
/// `what`, their paths checked by `path_rule`.
pub(super) fn files_of(
    files: &Files,
    raws: &[(FileId, Spanned<RawInlineFile>)],
    what: &str,
    path_rule: fn(&str) -> Result<(), String>,
) -> Result<Vec<InlineFile>> {
    let mut out = Vec::new();
    for (file, raw) in raws {
        let header = At::of(*file, raw);
        let r = raw.get_ref();
        let path = r
            .path
            .clone()
            .map(|p| Src::from_spanned(*file, p))
            .ok_or_else(|| files.err(header, format!("{what}: missing `path`")))?;
        check(files, &format!("{what} path"), &path, path_rule)?;
        let label = |key: &str| format!("file `{}`: {key}", path.value);
        let mode = match &r.mode {
            None => DEFAULT_FILE_MODE,
            Some(mode) => {
                let written = files.get(*file).text.get(mode.span()).unwrap_or("?");
                match mode.get_ref() {
                    toml::Value::String(s) => parse_mode(s),
                    _ => Err("is not a file mode: write it as a string of octal digits, \
                              like \"0644\""
                        .to_string()),
                }
                .map_err(|why| {
                    files.err(
                        At::of(*file, mode),
                        format!("{} {written} {why}", label("mode")),
                    )
                })?
            }
        };
        let content = r
            .content
            .as_ref()
            .ok_or_else(|| files.err(header, label("missing `content`")))?;
        out.push(InlineFile {
            path: path.value,
            mode,
            content: content.get_ref().clone(),
        });
    }
    Ok(out)
}

/// A uid or gid as written: 1 to [`MAX_ID`] (0 is root, which exists).
fn id(files: &Files, label: &str, v: &Option<Spanned<i64>>, file: FileId) -> Result<Option<u32>> {
    let Some(v) = v else { return Ok(None) };
    match u32::try_from(*v.get_ref()) {
        Ok(n) if (1..=MAX_ID).contains(&n) => Ok(Some(n)),
        _ => Err(files.err(
            At::of(file, v),
            format!("{label}: expected 1 to {MAX_ID}, got {}", v.get_ref()),
        )),
    }
}

/// The entry's name, checked: `what` is "user" or "group".
fn entry_name(
    files: &Files,
    file: FileId,
    header: At,
    what: &str,
    name: &Option<Spanned<String>>,
) -> Result<String> {
    let name = name
        .clone()
        .map(|n| Src::from_spanned(file, n))
        .ok_or_else(|| files.err(header, format!("[[{what}]]: missing `name`")))?;
    check(files, &format!("[[{what}]] name"), &name, names::user)?;
    Ok(name.value)
}

pub(super) fn users(files: &Files, raws: &[(FileId, Spanned<RawUser>)]) -> Result<Vec<User>> {
    let mut out = Vec::new();
    for (file, raw) in raws {
        let file = *file;
        let r = raw.get_ref();
        let name = entry_name(files, file, At::of(file, raw), "user", &r.name)?;
        let label = |key: &str| format!("user `{name}`: {key}");
        let text = |v: &Option<Spanned<String>>, key: &str, default: &str, rule| match v {
            None => Ok(default.to_string()),
            Some(v) => {
                let v = Src::from_spanned(file, v.clone());
                check(files, &label(key), &v, rule).map(|()| v.value)
            }
        };
        let gecos = text(&r.gecos, "gecos", "", names::passwd_field)?;
        let home = text(&r.home, "home", DEFAULT_USER_HOME, names::passwd_path)?;
        let shell = text(&r.shell, "shell", DEFAULT_USER_SHELL, names::passwd_path)?;
        let mut groups: Vec<String> = Vec::new();
        for g in r
            .groups
            .as_ref()
            .map(|l| l.get_ref().as_slice())
            .unwrap_or_default()
        {
            let g = Src::from_spanned(file, g.clone());
            check(files, &label("groups"), &g, names::user)?;
            if !groups.contains(&g.value) {
                groups.push(g.value);
            }
        }
        out.push(User {
            uid: id(files, &label("uid"), &r.uid, file)?,
            name,
            gecos,
            home,
            shell,
            groups,
        });
    }
    Ok(out)
}

pub(super) fn groups(files: &Files, raws: &[(FileId, Spanned<RawGroup>)]) -> Result<Vec<Group>> {
    let mut out = Vec::new();
    for (file, raw) in raws {
        let r = raw.get_ref();
        let name = entry_name(files, *file, At::of(*file, raw), "group", &r.name)?;
        let gid = id(files, &format!("group `{name}`: gid"), &r.gid, *file)?;
        out.push(Group { name, gid });
    }
    Ok(out)
}
