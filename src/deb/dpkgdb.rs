//! Writing dpkg's database for natively unpacked packages, so that dpkg in a
//! chroot of the tree sees each one exactly as `dpkg --unpack` leaves it on a
//! fresh system: `Status: install ok unpacked`, conffiles hashed
//! `newconffile`, the `.list`, `.md5sums`, maintainer scripts and other
//! control files in /var/lib/dpkg/info, and file-trigger interests.
//!
//! It does not configure anything or record trigger activations (a package
//! that is not configured has none pending: its postinst does the work).
//! On a tree where dpkg has already installed packages (the essential set,
//! see `configure`), the new packages are added to what dpkg wrote: status
//! stanzas and trigger interests are appended, other files kept.

use std::fmt::Write as _;
use std::fs;
use std::path::Path;
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result, bail};

use super::unpack::{Control, Unpacked};
use crate::files::tree;
use crate::repo::deb822;

/// dpkg's administrative directory (dpkg(1), `--admindir`).
pub const ADMIN_DIR: &str = "var/lib/dpkg";

/// The state dpkg records after `--unpack` of a new package: selection
/// "install", flag "ok", status "unpacked" (dpkg-query(1), "Status").
pub const STATUS_UNPACKED: &str = "install ok unpacked";

/// The hash dpkg records for a conffile that is unpacked but not yet
/// configured (src/main/archives.c: `NEWCONFFILEFLAG`).
pub const NEW_CONFFILE: &str = "newconffile";

/// The database layout version in info/format (src/lib/dpkg/db-fsys.c,
/// `PKGINFO_DB_FORMAT` 1: "info/<pkg>:<arch>.*" for Multi-Arch: same).
const INFO_FORMAT: &str = "1\n";

/// The native architecture, also recorded in `arch` (dpkg(1),
/// `--add-architecture`; debootstrap writes it too).
const NATIVE_ARCH: &str = "amd64";

/// Control members dpkg runs as programs; it keeps them executable
/// (deb(5), deb-preinst(5) and friends, debconf's `config`).
const SCRIPTS: &[&str] = &["preinst", "postinst", "prerm", "postrm", "config"];

/// Field order of dpkg's status file (src/lib/dpkg/parse.c `fieldinfos`,
/// written by `varbufrecord`); `Status` and `Conffiles` are dpkg's own.
/// Fields not listed (Homepage, Built-Using, ...) follow in control order.
const FIELD_ORDER: &[&str] = &[
    "Package",
    "Essential",
    "Protected",
    "Status",
    "Priority",
    "Section",
    "Installed-Size",
    "Origin",
    "Maintainer",
    "Bugs",
    "Architecture",
    "Multi-Arch",
    "Source",
    "Version",
    "Config-Version",
    "Replaces",
    "Provides",
    "Depends",
    "Pre-Depends",
    "Recommends",
    "Suggests",
    "Breaks",
    "Conflicts",
    "Enhances",
    "Conffiles",
    "Description",
];

/// Writes the database for `unpacked` into `tree`, adding to a database
/// that is already there.
pub fn register(tree: &Path, unpacked: &[Unpacked]) -> Result<()> {
    // Every path goes through `files::tree`: a package could ship
    // /var/lib/dpkg, or a file in it, as a symlink out of the tree.
    let admin = format!("/{ADMIN_DIR}");
    for d in ["info", "updates", "triggers", "alternatives", "parts"] {
        tree::resolve_dir(tree, &format!("{admin}/{d}"), true)?;
    }
    let mut pkgs: Vec<&Unpacked> = unpacked.iter().collect();
    pkgs.sort_by(|a, b| {
        (&a.control.package, &a.control.architecture)
            .cmp(&(&b.control.package, &b.control.architecture))
    });
    let mut status = String::new();
    let mut file_triggers = String::new();
    let mut explicit: Vec<(String, String)> = Vec::new();
    for u in &pkgs {
        status.push_str(&stanza(u)?);
        status.push('\n');
        write_info(tree, &admin, u)?;
        triggers(u, &mut file_triggers, &mut explicit)?;
    }
    let status_path = format!("{admin}/status");
    let old_status = tree::read(tree, &status_path)?.unwrap_or_default();
    if !old_status.is_empty() && !old_status.ends_with(b"\n\n") {
        // Keep a blank line between dpkg's last stanza and ours.
        status.insert(0, '\n');
    }
    tree::append(tree, &status_path, status.as_bytes(), 0o644)?;
    // Empty files that dpkg and debootstrap create on a new system, so no
    // tool in the chroot finds them missing.
    let missing = |name: &str, data: &[u8], mode: u32| {
        tree::write_if_missing(tree, &format!("{admin}/{name}"), data, mode)
    };
    for f in ["available", "diversions", "statoverride"] {
        missing(f, b"", 0o644)?;
    }
    missing("arch", format!("{NATIVE_ARCH}\n").as_bytes(), 0o644)?;
    missing("info/format", INFO_FORMAT.as_bytes(), 0o644)?;
    // dpkg's lock files are 0640 and empty (src/lib/dpkg/dbmodify.c).
    missing("lock", b"", 0o640)?;
    missing("lock-frontend", b"", 0o640)?;
    missing("triggers/Lock", b"", 0o600)?;
    missing("triggers/Unincorp", b"", 0o644)?;
    tree::append(
        tree,
        &format!("{admin}/triggers/File"),
        file_triggers.as_bytes(),
        0o644,
    )?;
    explicit.sort();
    let mut by_name: Vec<(String, String)> = Vec::new();
    for (name, line) in explicit {
        match by_name.last_mut() {
            Some((n, text)) if *n == name => text.push_str(&line),
            _ => by_name.push((name, line)),
        }
    }
    for (name, text) in by_name {
        tree::append(
            tree,
            &format!("{admin}/triggers/{name}"),
            text.as_bytes(),
            0o644,
        )?;
    }
    Ok(())
}

/// The name dpkg uses for a package in info file names and trigger files:
/// "pkg:arch" for Multi-Arch: same, which may be installed for several
/// architectures, else plain "pkg" (dpkg `pnaw_same`).
pub fn info_name(c: &Control) -> String {
    if c.multi_arch.as_deref() == Some("same") {
        format!("{}:{}", c.package, c.architecture)
    } else {
        c.package.clone()
    }
}

/// The status stanza of one package, ending in a newline.
fn stanza(u: &Unpacked) -> Result<String> {
    let p = deb822::paragraphs(&u.control.text)
        .next()
        .context("empty control file")??;
    let mut fields: Vec<(String, String)> = p
        .fields()
        .filter(|(n, _)| {
            // dpkg replaces these with its own view of the package.
            !n.eq_ignore_ascii_case("Status") && !n.eq_ignore_ascii_case("Conffiles")
        })
        .map(|(n, v)| (canonical(n), v.to_owned()))
        .collect();
    fields.push(("Status".to_owned(), STATUS_UNPACKED.to_owned()));
    if !u.conffiles.is_empty() {
        let mut v = String::new();
        for c in &u.conffiles {
            write!(v, "\n {} {NEW_CONFFILE}", c.path)?;
            for f in &c.flags {
                write!(v, " {f}")?;
            }
        }
        fields.push(("Conffiles".to_owned(), v));
    }
    // A stable sort keeps unknown fields in control order after the known.
    fields.sort_by_key(|(n, _)| {
        FIELD_ORDER
            .iter()
            .position(|k| k == n)
            .unwrap_or(usize::MAX)
    });
    let mut out = String::new();
    for (n, v) in fields {
        if v.starts_with('\n') {
            writeln!(out, "{n}:{v}")?;
        } else {
            writeln!(out, "{n}: {v}")?;
        }
    }
    Ok(out)
}

/// A known field's name as dpkg spells it; others unchanged.
fn canonical(name: &str) -> String {
    FIELD_ORDER
        .iter()
        .find(|k| k.eq_ignore_ascii_case(name))
        .map_or_else(|| name.to_owned(), |k| (*k).to_owned())
}

/// info/<name>.list and every control member as info/<name>.<member>.
fn write_info(tree: &Path, admin: &str, u: &Unpacked) -> Result<()> {
    let name = info_name(&u.control);
    let mut list = u.paths.join("\n");
    list.push('\n');
    tree::write_file(
        tree,
        &format!("{admin}/info/{name}.list"),
        list.as_bytes(),
        0o644,
    )?;
    for m in &u.control_files {
        if m.name.contains(['/', '.']) || m.name == "list" {
            bail!("{}: control member {:?} cannot be stored", name, m.name);
        }
        let mode = if SCRIPTS.contains(&m.name.as_str()) {
            0o755
        } else {
            0o644
        };
        let p = tree::write_file(
            tree,
            &format!("{admin}/info/{name}.{}", m.name),
            &m.data,
            mode,
        )?;
        // dpkg keeps the member's mtime from control.tar.
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(m.mtime);
        fs::File::open(&p)
            .and_then(|f| f.set_times(fs::FileTimes::new().set_accessed(t).set_modified(t)))
            .with_context(|| format!("setting mtime of {}", p.display()))?;
    }
    Ok(())
}

/// Adds the package's trigger interests (deb-triggers(5)): a file trigger
/// ("/path") becomes a line of triggers/File, a named one a line of
/// triggers/<name>, "<pkg>" or "<pkg>/noawait" (src/lib/dpkg/triglib.c).
/// `activate` directives record nothing until the package changes state.
fn triggers(u: &Unpacked, file: &mut String, named: &mut Vec<(String, String)>) -> Result<()> {
    let Some(m) = u.control_files.iter().find(|m| m.name == "triggers") else {
        return Ok(());
    };
    let pkg = info_name(&u.control);
    for line in String::from_utf8_lossy(&m.data).lines() {
        let line = line.split('#').next().unwrap_or("").trim();
        let mut words = line.split_whitespace();
        let (Some(kw), Some(trig)) = (words.next(), words.next()) else {
            continue;
        };
        let who = match kw {
            "interest" | "interest-await" => pkg.clone(),
            "interest-noawait" => format!("{pkg}/noawait"),
            k if k.starts_with("activate") => continue,
            k => bail!("{pkg}: unknown trigger directive {k:?}"),
        };
        if trig.starts_with('/') {
            writeln!(file, "{trig} {who}")?;
        } else if trig.contains('/') || trig.starts_with('.') {
            bail!("{pkg}: invalid trigger name {trig:?}");
        } else {
            named.push((trig.to_owned(), format!("{who}\n")));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deb::unpack::{Conffile, parse_control};

    #[test]
    fn stanza_follows_dpkg_field_order() {
        // Fields in a package's own order; dpkg moves the known ones and
        // leaves the rest (Homepage) after Description.
        let text = "Package: p\nVersion: 1\nHomepage: https://example.invalid\n\
                    Architecture: amd64\nmulti-arch: same\nDepends: q\n\
                    Description: d\n long\nPriority: optional\n";
        let u = Unpacked {
            control: parse_control(text).unwrap(),
            paths: vec!["/.".into()],
            control_files: vec![],
            conffiles: vec![Conffile {
                path: "/etc/p".into(),
                flags: vec!["remove-on-upgrade".into()],
            }],
        };
        assert_eq!(
            stanza(&u).unwrap(),
            "Package: p\nStatus: install ok unpacked\nPriority: optional\n\
             Architecture: amd64\nMulti-Arch: same\nVersion: 1\nDepends: q\n\
             Conffiles:\n /etc/p newconffile remove-on-upgrade\n\
             Description: d\n long\nHomepage: https://example.invalid\n"
        );
        assert_eq!(info_name(&u.control), "p:amd64");
    }

    /// Issue #11: the database was written below `tree.join(var/lib/dpkg)`,
    /// so a package that shipped that folder as a symlink to a host path
    /// had craton write dpkg's files on the host. Now the path resolves
    /// inside the tree.
    #[test]
    fn a_symlinked_admin_dir_stays_in_the_tree() {
        let t = tempfile::tempdir().unwrap();
        let host_dir = t.path().join("host-dpkg");
        fs::create_dir(&host_dir).unwrap();
        let tree = t.path().join("tree");
        fs::create_dir_all(tree.join("var/lib")).unwrap();
        std::os::unix::fs::symlink(&host_dir, tree.join("var/lib/dpkg")).unwrap();
        register(&tree, &[]).unwrap();
        assert!(fs::read_dir(&host_dir).unwrap().next().is_none());
        let inside = tree.join(host_dir.strip_prefix("/").unwrap());
        assert!(inside.join("status").is_file());
        assert!(inside.join("info/format").is_file());
    }
}
