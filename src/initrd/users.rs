//! /etc/passwd, /etc/group and /etc/shadow for the initrd, written natively
//! from the staged sysusers.d files (sysusers.d(5)), since systemd-sysusers
//! would need a chroot. Only the 'u' and 'g' lines matter here: the initrd
//! has no one to log in and no 'm' (membership) or 'r' (range) lines in
//! the packages it is made of; other lines are ignored.
//!
//! Automatic ids ("-") are taken from the top of the system range down, as
//! systemd-sysusers does, in file order, so the result is the same for the
//! same packages.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use anyhow::{Context, Result, bail};

/// Where packages put their sysusers.d files (sysusers.d(5)).
pub const SYSUSERS_DIR: &str = "usr/lib/sysusers.d";
/// The highest system uid/gid (systemd's SYSTEM_UID_MAX default, Debian's
/// login.defs SYS_UID_MAX): automatic ids count down from here.
const SYSTEM_ID_MAX: u32 = 999;
/// The lowest automatic system id (Debian's login.defs SYS_UID_MIN).
const SYSTEM_ID_MIN: u32 = 100;
/// Home and shell of users that name none (sysusers.d(5) defaults).
const DEFAULT_HOME: &str = "/";
const DEFAULT_SHELL: &str = "/usr/sbin/nologin";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub gecos: String,
    pub home: String,
    pub shell: String,
}

/// The users and groups of a tree.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Accounts {
    pub users: Vec<User>,
    /// name -> gid
    pub groups: BTreeMap<String, u32>,
}

/// Splits a sysusers.d line into fields; double quotes group words.
fn fields(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let (mut quoted, mut any) = (false, false);
    for c in line.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                any = true;
            }
            c if c.is_whitespace() && !quoted => {
                if any {
                    out.push(std::mem::take(&mut cur));
                    any = false;
                }
            }
            c => {
                cur.push(c);
                any = true;
            }
        }
    }
    if any {
        out.push(cur);
    }
    out
}

/// A field that may be "-" (unset).
fn opt(f: Option<&String>) -> Option<&str> {
    f.map(String::as_str).filter(|s| *s != "-")
}

impl Accounts {
    /// Reads every *.conf in the staged sysusers.d, in name order.
    pub fn from_tree(tree: &Path) -> Result<Self> {
        let dir = tree.join(SYSUSERS_DIR);
        let mut files: Vec<_> = fs::read_dir(&dir)
            .with_context(|| format!("reading {}", dir.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "conf"))
            .collect();
        files.sort();
        let mut text = String::new();
        for f in files {
            text += &fs::read_to_string(&f).with_context(|| format!("reading {}", f.display()))?;
            text.push('\n');
        }
        Self::parse(&text)
            .with_context(|| format!("reading the sysusers.d files in {}", dir.display()))
    }

    /// Groups first, then users, each in order, as systemd-sysusers adds
    /// them; fixed ids before automatic ones so an automatic id never takes
    /// a number that a later line names.
    pub fn parse(text: &str) -> Result<Self> {
        let lines: Vec<Vec<String>> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(fields)
            .collect();
        let kind = |l: &Vec<String>| l[0].trim_end_matches('!').to_owned();
        let mut used_uids = BTreeSet::new();
        let mut used_gids = BTreeSet::new();
        let parse_id = |s: &str, line: &[String]| -> Result<u32> {
            s.parse()
                .with_context(|| format!("id {s:?} in `{}`", line.join(" ")))
        };
        // Reserve fixed ids first.
        for l in &lines {
            let Some(id) = opt(l.get(2)) else { continue };
            let (a, b) = id.split_once(':').unwrap_or((id, id));
            match kind(l).as_str() {
                "g" if !a.starts_with('/') => {
                    used_gids.insert(parse_id(a, l)?);
                }
                "u" if !a.starts_with('/') => {
                    used_uids.insert(parse_id(a, l)?);
                    if let Ok(g) = b.parse::<u32>() {
                        used_gids.insert(g);
                    }
                }
                _ => {}
            }
        }
        let mut me = Self::default();
        let free = |used: &BTreeSet<u32>, other: Option<&BTreeSet<u32>>| {
            (SYSTEM_ID_MIN..=SYSTEM_ID_MAX)
                .rev()
                .find(|i| !used.contains(i) && other.is_none_or(|o| !o.contains(i)))
        };
        for l in lines.iter().filter(|l| kind(l) == "g") {
            let Some(name) = l.get(1) else { continue };
            if me.groups.contains_key(name) {
                continue;
            }
            let gid = match opt(l.get(2)) {
                Some(id) => parse_id(id, l)?,
                None => free(&used_gids, None).context("no free system gid")?,
            };
            used_gids.insert(gid);
            me.groups.insert(name.clone(), gid);
        }
        for l in lines.iter().filter(|l| kind(l) == "u") {
            let Some(name) = l.get(1) else { continue };
            if me.users.iter().any(|u| &u.name == name) {
                continue;
            }
            let (uid, gid) = match opt(l.get(2)) {
                Some(id) if id.starts_with('/') => {
                    bail!(
                        "`{}`: ids from a file's owner are not supported",
                        l.join(" ")
                    )
                }
                Some(id) => match id.split_once(':') {
                    Some((u, g)) => {
                        let gid = match me.groups.get(g) {
                            Some(&gid) => gid,
                            None => parse_id(g, l)?,
                        };
                        (parse_id(u, l)?, gid)
                    }
                    None => {
                        let uid = parse_id(id, l)?;
                        let gid = me.groups.get(name).copied().unwrap_or(uid);
                        (uid, gid)
                    }
                },
                None => {
                    // Same number for the user and its group when both are free.
                    let id = free(&used_uids, Some(&used_gids))
                        .or_else(|| free(&used_uids, None))
                        .context("no free system uid")?;
                    (id, me.groups.get(name).copied().unwrap_or(id))
                }
            };
            used_uids.insert(uid);
            used_gids.insert(gid);
            // A user without an explicit group gets one of its name.
            if !me.groups.values().any(|&g| g == gid) {
                me.groups.insert(name.clone(), gid);
            }
            me.users.push(User {
                name: name.clone(),
                uid,
                gid,
                gecos: opt(l.get(3)).unwrap_or("").to_owned(),
                home: opt(l.get(4)).unwrap_or(DEFAULT_HOME).to_owned(),
                shell: opt(l.get(5)).unwrap_or(DEFAULT_SHELL).to_owned(),
            });
        }
        Ok(me)
    }

    /// Writes etc/passwd, etc/group and etc/shadow into `tree`. Every
    /// password is locked ("!*"): nobody logs into an initrd.
    pub fn write(&self, tree: &Path) -> Result<()> {
        let etc = tree.join("etc");
        fs::create_dir_all(&etc).with_context(|| format!("creating {}", etc.display()))?;
        let passwd: String = self
            .users
            .iter()
            .map(|u| {
                format!(
                    "{}:x:{}:{}:{}:{}:{}\n",
                    u.name, u.uid, u.gid, u.gecos, u.home, u.shell
                )
            })
            .collect();
        let mut groups: Vec<_> = self.groups.iter().collect();
        groups.sort_by_key(|(_, gid)| **gid);
        let group: String = groups
            .iter()
            .map(|(name, gid)| format!("{name}:x:{gid}:\n"))
            .collect();
        let shadow: String = self
            .users
            .iter()
            .map(|u| format!("{}:!*::::::\n", u.name))
            .collect();
        for (name, text, mode) in [
            ("passwd", passwd, 0o644),
            ("group", group, 0o644),
            // shadow(5): readable by root only.
            ("shadow", shadow, 0o600),
        ] {
            let p = etc.join(name);
            fs::write(&p, text).with_context(|| format!("writing {}", p.display()))?;
            fs::set_permissions(&p, fs::Permissions::from_mode(mode))
                .with_context(|| format!("setting the mode of {}", p.display()))?;
        }
        Ok(())
    }
}
