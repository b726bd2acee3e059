//! The immutable layout (docs/architecture.md "Root filesystem";
//! docs/layout.md): after customisation, everything the OS ships moves into
//! /usr, and the rest of the tree becomes a skeleton of empty folders and the
//! merged-/usr links, which the disk stage copies to ROOT.
//!
//!  - /etc moves to /usr/share/factory/etc; an empty /etc stays as the
//!    mount point of the overlay the initrd mounts (lower: the factory
//!    copy, upper and work on ROOT under /var/lib/craton/etc).
//!  - /var, /root, /home, /srv, /opt, /mnt and /media move to
//!    /usr/share/factory/<dir>, and a tmpfiles.d(5) fragment per folder
//!    recreates their folders and links and copies their files at boot.
//!  - the kernel in /boot moves to /usr/lib/modules/VERSION/vmlinuz
//!    (kernel-install(8)'s layout), so /usr holds everything the disk
//!    stage needs; /run and /tmp are emptied (tmpfs at boot).
//!
//! The initrd mounts /etc from the places named here (its units are the
//! initrd stage's); this module does not build the initrd, the /usr image
//! or ROOT.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

/// Where /etc, /var and the other folders' built content lives: systemd's
/// factory directory (tmpfiles.d(5) `C` without a source copies from here).
pub const FACTORY: &str = "usr/share/factory";
/// Folders that stay outside /usr, empty (mount points and tmpfs targets,
/// or filled at boot), with their mode when created here.
pub const SKELETON_DIRS: &[(&str, u32)] = &[
    ("boot", 0o755),
    ("dev", 0o755),
    ("etc", 0o755),
    ("home", 0o755),
    ("media", 0o755),
    ("mnt", 0o755),
    ("opt", 0o755),
    ("proc", 0o555),
    ("root", 0o700),
    ("run", 0o755),
    ("srv", 0o755),
    ("sys", 0o555),
    ("tmp", 0o1777),
    ("var", 0o755),
];
/// The merged-/usr links (Debian trixie is merged-/usr).
pub const SKELETON_LINKS: &[(&str, &str)] = &[
    ("bin", "usr/bin"),
    ("lib", "usr/lib"),
    ("lib64", "usr/lib64"),
    ("sbin", "usr/sbin"),
];
/// Folders whose content moves to the factory and comes back through
/// tmpfiles at boot. /boot is handled apart (the kernel).
pub const FACTORY_DIRS: &[&str] = &["var", "root", "home", "srv", "opt", "mnt", "media"];
/// tmpfs at boot: what the build left there is dropped.
const VOLATILE_DIRS: &[&str] = &["run", "tmp"];
/// Links Debian's kernel postinst makes in / and /boot's files, which move
/// to /usr/lib/modules/VERSION/ under these names (kernel-install(8)).
const KERNEL_LINKS: &[&str] = &["vmlinuz", "vmlinuz.old", "initrd.img", "initrd.img.old"];
const KERNEL_FILES: &[(&str, &str)] = &[
    ("vmlinuz-", "vmlinuz"),
    ("config-", "config"),
    ("System.map-", "System.map"),
];
/// The /etc overlay's upper and work folders on ROOT.
pub const ETC_UPPER: &str = "/var/lib/craton/etc/upper";
pub const ETC_WORK: &str = "/var/lib/craton/etc/work";
/// dpkg's database describes /usr, so it lives there, read-only with the
/// rest of the OS (as rpm's /usr/lib/sysimage/rpm); /var/lib/dpkg is a link
/// to it, kept in the skeleton so that `dpkg --root TREE` and dpkg on the
/// running system find it, and recreated by tmpfiles on a fresh ROOT.
pub const DPKG_DB: &str = "usr/lib/sysimage/dpkg";
/// The one entry /var holds in the built tree: (path, link target).
pub const VAR_DPKG_LINK: (&str, &str) = ("var/lib/dpkg", "../../usr/lib/sysimage/dpkg");
/// tmpfiles.d fragment that recreates [`VAR_DPKG_LINK`].
const DPKG_TMPFILES: &str = "usr/lib/tmpfiles.d/craton-dpkg.conf";

/// Records of the build itself, not of the OS: when dpkg and
/// update-alternatives ran (their logs, in local time) and ldconfig's
/// auxiliary cache (the libraries' inode numbers and times in the build
/// tree). They differ between two builds of one lock and tell a machine
/// nothing, so they are dropped (issue #11, bit-identical images).
const BUILD_RECORDS: &[&str] = &[
    "var/log/dpkg.log",
    "var/log/alternatives.log",
    "var/log/apt/history.log",
    "var/log/apt/term.log",
    "var/log/apt/eipp.log.xz",
    "var/cache/ldconfig/aux-cache",
];

pub fn make_immutable(tree: &Path) -> Result<()> {
    refuse_mounts(tree)?;
    drop_build_records(tree)?;
    let factory = tree.join(FACTORY);
    fs::create_dir_all(&factory).with_context(|| format!("creating {}", factory.display()))?;
    move_etc(tree).context("moving /etc to the factory")?;
    move_kernel(tree).context("moving the kernel into /usr/lib/modules")?;
    move_dpkg_db(tree).context("moving dpkg's database into /usr")?;
    for dir in FACTORY_DIRS {
        to_factory(tree, dir).with_context(|| format!("moving /{dir} to the factory"))?;
    }
    for dir in VOLATILE_DIRS {
        empty(&tree.join(dir))?;
    }
    for (name, mode) in SKELETON_DIRS {
        let p = tree.join(name);
        if !p.exists() {
            fs::create_dir(&p).with_context(|| format!("creating {}", p.display()))?;
            fs::set_permissions(&p, fs::Permissions::from_mode(*mode))?;
        }
    }
    let (link, target) = VAR_DPKG_LINK;
    if tree.join(DPKG_DB).is_dir() {
        fs::create_dir_all(tree.join("var/lib"))?;
        std::os::unix::fs::symlink(target, tree.join(link))
            .with_context(|| format!("linking /{link}"))?;
    }
    Ok(())
}

/// Removes [`BUILD_RECORDS`] through `files::tree` (their folders resolved
/// inside the tree, so a package's symlink cannot send the removal out).
fn drop_build_records(tree: &Path) -> Result<()> {
    for rel in BUILD_RECORDS {
        crate::files::tree::remove(tree, rel)?;
    }
    Ok(())
}

/// Moves /var/lib/dpkg to [`DPKG_DB`] and writes the tmpfiles line that
/// links it back at boot.
fn move_dpkg_db(tree: &Path) -> Result<()> {
    let from = tree.join(VAR_DPKG_LINK.0);
    if !from.is_dir() {
        return Ok(());
    }
    let to = tree.join(DPKG_DB);
    fs::create_dir_all(to.parent().expect("DPKG_DB has a parent"))?;
    fs::rename(&from, &to)
        .with_context(|| format!("renaming {} to {}", from.display(), to.display()))?;
    let conf = tree.join(DPKG_TMPFILES);
    fs::create_dir_all(conf.parent().expect("has a parent"))?;
    fs::write(
        &conf,
        format!(
            "# craton: dpkg's database lives in /usr (docs/layout.md).\nL /{} - - - - {}\n",
            VAR_DPKG_LINK.0, VAR_DPKG_LINK.1
        ),
    )
    .with_context(|| format!("writing {}", conf.display()))?;
    Ok(())
}

/// A mount left under the tree (the chroot's /proc, a bind mount) would be
/// moved or deleted through: refuse instead.
fn refuse_mounts(tree: &Path) -> Result<()> {
    let abs = fs::canonicalize(tree).with_context(|| format!("reading {}", tree.display()))?;
    if let Some(point) = crate::files::mounts_below(&abs)?
        .into_iter()
        .find(|m| *m != abs)
    {
        bail!(
            "{} is mounted inside the tree; unmount it first",
            point.display()
        );
    }
    Ok(())
}

/// /etc becomes the factory copy (a rename: modes, owners and links stay);
/// files a package put into /usr/share/factory/etc itself are kept where
/// the built /etc has none.
fn move_etc(tree: &Path) -> Result<()> {
    let etc = tree.join("etc");
    let target = tree.join(FACTORY).join("etc");
    if target.exists() {
        merge_missing(&target, &etc)?;
        fs::remove_dir_all(&target).with_context(|| format!("removing {}", target.display()))?;
    }
    fs::rename(&etc, &target)
        .with_context(|| format!("renaming {} to {}", etc.display(), target.display()))?;
    fs::create_dir(&etc).with_context(|| format!("creating {}", etc.display()))?;
    fs::set_permissions(&etc, fs::Permissions::from_mode(0o755))?;
    Ok(())
}

/// Moves the entries of `from` that `into` lacks into it, recursively.
fn merge_missing(from: &Path, into: &Path) -> Result<()> {
    for e in read_sorted(from)? {
        let dest = into.join(e.file_name());
        match fs::symlink_metadata(&dest) {
            Err(_) => fs::rename(e.path(), &dest)
                .with_context(|| format!("moving {}", e.path().display()))?,
            Ok(m) if m.is_dir() && e.file_type()?.is_dir() => merge_missing(&e.path(), &dest)?,
            Ok(_) => {}
        }
    }
    Ok(())
}

fn move_kernel(tree: &Path) -> Result<()> {
    for link in KERNEL_LINKS {
        for dir in ["", "boot"] {
            let p = tree.join(dir).join(link);
            if fs::symlink_metadata(&p).is_ok_and(|m| m.file_type().is_symlink()) {
                fs::remove_file(&p).with_context(|| format!("removing {}", p.display()))?;
            }
        }
    }
    let boot = tree.join("boot");
    if !boot.is_dir() {
        return Ok(());
    }
    for e in read_sorted(&boot)? {
        let name = e.file_name().to_string_lossy().into_owned();
        for (prefix, new) in KERNEL_FILES {
            if let Some(version) = name.strip_prefix(prefix) {
                let dir = tree.join("usr/lib/modules").join(version);
                fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
                let dest = dir.join(new);
                fs::rename(e.path(), &dest).with_context(|| {
                    format!("moving {} to {}", e.path().display(), dest.display())
                })?;
            }
        }
    }
    Ok(())
}

/// Moves the content of /`dir` to the factory and writes the tmpfiles.d
/// fragment that recreates it.
fn to_factory(tree: &Path, dir: &str) -> Result<()> {
    let src = tree.join(dir);
    if !src.is_dir() {
        return Ok(());
    }
    let entries = read_sorted(&src)?;
    if entries.is_empty() {
        return Ok(());
    }
    let dest = tree.join(FACTORY).join(dir);
    fs::create_dir_all(&dest).with_context(|| format!("creating {}", dest.display()))?;
    let mut lines = Vec::new();
    tmpfiles_lines(&src, &format!("/{dir}"), &mut lines)?;
    for e in entries {
        let to = dest.join(e.file_name());
        fs::rename(e.path(), &to).with_context(|| format!("moving {}", e.path().display()))?;
    }
    let conf = tree.join(format!("usr/lib/tmpfiles.d/craton-{dir}.conf"));
    fs::create_dir_all(conf.parent().unwrap_or(tree))?;
    let text = format!(
        "# /{dir} as the image built it, recreated at boot from /{FACTORY}/{dir}\n\
         # (written by craton's layout step; see docs/layout.md).\n{}",
        lines.concat()
    );
    fs::write(&conf, text).with_context(|| format!("writing {}", conf.display()))?;
    fs::set_permissions(&conf, fs::Permissions::from_mode(0o644))?;
    Ok(())
}

/// tmpfiles.d(5) lines for the tree at `host` (shown as `path`): `d` for a
/// folder with its mode and numeric owner, `L` for a link, `C` for a file
/// (copied from the factory with its mode and owner when missing).
fn tmpfiles_lines(host: &Path, path: &str, out: &mut Vec<String>) -> Result<()> {
    for e in read_sorted(host)? {
        let name = e.file_name().to_string_lossy().into_owned();
        let p = format!("{path}/{name}");
        let m = fs::symlink_metadata(e.path())
            .with_context(|| format!("reading {}", e.path().display()))?;
        if m.file_type().is_symlink() {
            let target = fs::read_link(e.path())?;
            out.push(format!(
                "L {} - - - - {}\n",
                quote(&p),
                quote(&target.to_string_lossy())
            ));
        } else if m.is_dir() {
            out.push(format!(
                "d {} {:04o} {} {} -\n",
                quote(&p),
                m.mode() & 0o7777,
                m.uid(),
                m.gid()
            ));
            tmpfiles_lines(&e.path(), &p, out)?;
        } else {
            let source = format!("/{FACTORY}{p}");
            out.push(format!("C {} - - - - {}\n", quote(&p), quote(&source)));
        }
    }
    Ok(())
}

/// A path as one tmpfiles.d field: `%` starts a specifier, so it is
/// doubled; whitespace or quotes need C-style quoting.
fn quote(s: &str) -> String {
    let s = s.replace('%', "%%");
    if s.chars()
        .any(|c| c.is_whitespace() || matches!(c, '"' | '\'' | '\\'))
    {
        format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
    } else {
        s
    }
}

fn empty(dir: &Path) -> Result<()> {
    if !dir.is_dir() {
        return Ok(());
    }
    for e in read_sorted(dir)? {
        let p = e.path();
        if e.file_type()?.is_dir() {
            fs::remove_dir_all(&p)
        } else {
            fs::remove_file(&p)
        }
        .with_context(|| format!("removing {}", p.display()))?;
    }
    Ok(())
}

fn read_sorted(dir: &Path) -> Result<Vec<fs::DirEntry>> {
    let mut v = fs::read_dir(dir)
        .and_then(|r| r.collect::<Result<Vec<_>, _>>())
        .with_context(|| format!("reading {}", dir.display()))?;
    v.sort_by_key(|e| e.file_name());
    Ok(v)
}

/// Everything outside /usr that is not the skeleton: top-level entries not
/// listed, skeleton entries of the wrong kind, and anything inside the
/// skeleton folders. Paths are absolute in the image ("/etc/hosts").
pub fn outside_usr(tree: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = read_sorted(tree) else {
        return vec![PathBuf::from("/")];
    };
    for e in entries {
        let name = e.file_name().to_string_lossy().into_owned();
        let shown = PathBuf::from("/").join(&name);
        let meta = fs::symlink_metadata(e.path());
        let is_link = meta.as_ref().is_ok_and(|m| m.file_type().is_symlink());
        let is_dir = meta.as_ref().is_ok_and(|m| m.is_dir());
        if name == "usr" && is_dir {
            continue;
        }
        if let Some((_, target)) = SKELETON_LINKS.iter().find(|(n, _)| *n == name) {
            let ok = is_link && fs::read_link(e.path()).is_ok_and(|t| t == Path::new(target));
            if !ok {
                out.push(shown);
            }
            continue;
        }
        if !SKELETON_DIRS.iter().any(|(n, _)| *n == name) || !is_dir {
            out.push(shown);
            continue;
        }
        if let Ok(inner) = read_sorted(&e.path()) {
            for i in inner {
                if name == "var" && i.file_name() == "lib" && only_dpkg_link(&i.path()) {
                    continue;
                }
                out.push(shown.join(i.file_name()));
            }
        }
    }
    out
}

/// True when `var_lib` holds nothing but [`VAR_DPKG_LINK`].
fn only_dpkg_link(var_lib: &Path) -> bool {
    let Ok(entries) = read_sorted(var_lib) else {
        return false;
    };
    let (_, target) = VAR_DPKG_LINK;
    entries.len() == 1
        && entries[0].file_name() == "dpkg"
        && fs::read_link(entries[0].path()).is_ok_and(|t| t == Path::new(target))
}

#[cfg(test)]
#[path = "layout_tests.rs"]
mod tests;
