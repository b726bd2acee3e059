//! Paths inside a tree that is not the running system: absolute symlinks in
//! it (/etc/resolv.conf -> /run/...) mean the tree's root, never the
//! host's, so every path is resolved here the way a chroot would, and
//! files are written root-owned.
//!
//! Nothing here knows what a file means.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{PermissionsExt, lchown};
use std::path::{Component, Path, PathBuf};

use anyhow::{Context, Result, bail};

/// Linux gives up after 40 symlinks in one lookup (path_resolution(7)).
const MAX_SYMLINKS: usize = 40;
/// Mode of the folders created on the way to a file: the usual 0755.
pub const DIR_MODE: u32 = 0o755;

/// The host path of the folder that `dir` (absolute in the tree) names,
/// following symlinks inside the tree, creating missing folders (0755,
/// root-owned) when `create`.
pub fn resolve_dir(tree: &Path, dir: &str, create: bool) -> Result<PathBuf> {
    let mut todo: Vec<String> = components(dir);
    todo.reverse();
    let mut at = tree.to_path_buf();
    let mut hops = 0;
    while let Some(name) = todo.pop() {
        if name == ".." {
            if at != tree {
                at.pop();
            }
            continue;
        }
        let next = at.join(&name);
        match fs::symlink_metadata(&next) {
            Ok(m) if m.file_type().is_symlink() => {
                hops += 1;
                if hops > MAX_SYMLINKS {
                    bail!("too many symlinks resolving {dir} in {}", tree.display());
                }
                let target = fs::read_link(&next)
                    .with_context(|| format!("reading link {}", next.display()))?;
                let target = target.to_string_lossy().into_owned();
                if target.starts_with('/') {
                    at = tree.to_path_buf();
                }
                let mut more = components(&target);
                more.reverse();
                todo.extend(more);
            }
            Ok(m) if m.is_dir() => at = next,
            Ok(_) => bail!("{} is not a directory", next.display()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && create => {
                fs::create_dir(&next).with_context(|| format!("creating {}", next.display()))?;
                set_mode_root(&next, DIR_MODE)?;
                at = next;
            }
            Err(e) => return Err(e).with_context(|| format!("reading {}", next.display())),
        }
    }
    Ok(at)
}

/// The host path of `path` (absolute in the tree): its folder resolved in
/// the tree (created when missing), the last name not followed.
pub fn place(tree: &Path, path: &str) -> Result<PathBuf> {
    let (dir, name) = path.rsplit_once('/').unwrap_or(("", path));
    if name.is_empty() || name == "." || name == ".." {
        bail!("{path} does not name a file");
    }
    Ok(resolve_dir(tree, dir, true)?.join(name))
}

/// Removes whatever non-folder is at `host` (a symlink is removed, not
/// followed), so a new file never writes through an old link.
pub fn clear(host: &Path) -> Result<()> {
    match fs::symlink_metadata(host) {
        Ok(m) if m.is_dir() => bail!("{} is a directory", host.display()),
        Ok(_) => fs::remove_file(host).with_context(|| format!("removing {}", host.display())),
        Err(_) => Ok(()),
    }
}

/// Writes `content` at `path` in the tree with `mode`, root-owned.
pub fn write_file(tree: &Path, path: &str, content: &[u8], mode: u32) -> Result<PathBuf> {
    let host = place(tree, path)?;
    clear(&host)?;
    let mut f = fs::File::create(&host).with_context(|| format!("creating {}", host.display()))?;
    f.write_all(content)
        .with_context(|| format!("writing {}", host.display()))?;
    set_mode_root(&host, mode)?;
    Ok(host)
}

/// A symlink at `path` in the tree pointing to `target`, replacing a file
/// or link there.
pub fn symlink(tree: &Path, path: &str, target: &str) -> Result<()> {
    let host = place(tree, path)?;
    clear(&host)?;
    std::os::unix::fs::symlink(target, &host)
        .with_context(|| format!("linking {} to {target}", host.display()))?;
    lchown(&host, Some(0), Some(0)).with_context(|| format!("chown {}", host.display()))
}

/// Sets permission bits and root ownership (uid and gid 0): what a package
/// would have installed.
pub fn set_mode_root(host: &Path, mode: u32) -> Result<()> {
    lchown(host, Some(0), Some(0)).with_context(|| format!("chown {}", host.display()))?;
    fs::set_permissions(host, fs::Permissions::from_mode(mode))
        .with_context(|| format!("chmod {:o} {}", mode, host.display()))
}

/// The named components of a path (no root, no `.`).
fn components(path: &str) -> Vec<String> {
    Path::new(path)
        .components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_string_lossy().into_owned()),
            Component::ParentDir => Some("..".to_string()),
            _ => None,
        })
        .collect()
}

/// The host path of `path` (absolute in the tree) with every symlink on
/// the way resolved inside the tree, the last name's included: what a
/// process chrooted into the tree would open. The result is not a symlink
/// (it may not exist); no folder is created.
pub fn resolve(tree: &Path, path: &str) -> Result<PathBuf> {
    let mut path = path.to_owned();
    for _ in 0..MAX_SYMLINKS {
        let dir = resolve_dir(tree, parent(&path), false)?;
        let name = file_name(&path);
        if name.is_empty() || name == "." || name == ".." {
            bail!("{path} does not name a file");
        }
        let host = dir.join(name);
        match fs::symlink_metadata(&host) {
            Ok(m) if m.file_type().is_symlink() => {
                let target = fs::read_link(&host)
                    .with_context(|| format!("reading link {}", host.display()))?;
                let target = target.to_string_lossy().into_owned();
                path = if target.starts_with('/') {
                    target
                } else {
                    // The folder's path in the tree (resolve_dir never
                    // leaves it), then the relative target.
                    let rel = dir.strip_prefix(tree).unwrap_or(Path::new(""));
                    format!("/{}/{target}", rel.to_string_lossy())
                };
            }
            _ => return Ok(host),
        }
    }
    bail!("too many symlinks resolving {path} in {}", tree.display())
}

/// Opens the host file for writing without following a symlink at it
/// (O_NOFOLLOW): the checks above are by name, this is by the open itself.
fn open_write(host: &Path, truncate: bool, create: bool) -> Result<fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    fs::OpenOptions::new()
        .write(true)
        .truncate(truncate)
        .create(create)
        .custom_flags(libc::O_NOFOLLOW)
        .open(host)
        .with_context(|| format!("opening {}", host.display()))
}

/// The bytes of a file in the tree (symlinks resolved inside it), or
/// `None` when there is none.
pub fn read(tree: &Path, path: &str) -> Result<Option<Vec<u8>>> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let host = match resolve(tree, path) {
        Ok(h) => h,
        // A folder on the way is missing (or is a file): no such file.
        Err(e) => {
            tracing::debug!("{path} in {}: {e:#}", tree.display());
            return Ok(None);
        }
    };
    let f = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&host);
    match f {
        Ok(mut f) => {
            let mut out = Vec::new();
            f.read_to_end(&mut out)
                .with_context(|| format!("reading {}", host.display()))?;
            Ok(Some(out))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("reading {}", host.display())),
    }
}

/// The text of a file in the tree, or "" when it does not exist.
pub fn read_or_empty(tree: &Path, path: &str) -> Result<String> {
    match read(tree, path)? {
        Some(b) => String::from_utf8(b).with_context(|| format!("{path} is not UTF-8")),
        None => Ok(String::new()),
    }
}

/// Replaces the content of the existing file at `path` (symlinks resolved
/// inside the tree), keeping its mode and owner; `Ok(false)` when there is
/// no such file.
pub fn rewrite(tree: &Path, path: &str, content: &[u8]) -> Result<bool> {
    // A folder on the way missing (a link into nowhere): no such file.
    let Ok(host) = resolve(tree, path) else {
        return Ok(false);
    };
    if !fs::symlink_metadata(&host).is_ok_and(|m| m.is_file()) {
        return Ok(false);
    }
    let mut f = open_write(&host, true, false)?;
    f.write_all(content)
        .with_context(|| format!("writing {}", host.display()))?;
    Ok(true)
}

/// Adds `content` at the end of the file at `path` (made with `mode`,
/// root-owned, when missing; a symlink there is resolved inside the tree).
pub fn append(tree: &Path, path: &str, content: &[u8], mode: u32) -> Result<()> {
    let host = resolve(tree, path).or_else(|_| place(tree, path))?;
    let new = !host.exists();
    let mut f = open_write(&host, false, true)?;
    use std::io::Seek;
    f.seek(std::io::SeekFrom::End(0))
        .with_context(|| format!("seeking {}", host.display()))?;
    f.write_all(content)
        .with_context(|| format!("writing {}", host.display()))?;
    if new {
        set_mode_root(&host, mode)?;
    }
    Ok(())
}

/// Removes whatever is at `path` (a file, a link, or a folder with all
/// below it), its folder resolved inside the tree, so that a symlink on the
/// way cannot send the removal out of it; nothing there is fine.
pub fn remove(tree: &Path, path: &str) -> Result<()> {
    let Ok(dir) = resolve_dir(tree, parent(path), false) else {
        return Ok(());
    };
    let host = dir.join(file_name(path));
    match fs::symlink_metadata(&host) {
        Ok(m) if m.is_dir() => super::remove_tree(&host),
        Ok(_) => fs::remove_file(&host).with_context(|| format!("removing {}", host.display())),
        Err(_) => Ok(()),
    }
}

/// Writes a new file at `path` unless something (a file, a folder, a
/// symlink) is there already.
pub fn write_if_missing(tree: &Path, path: &str, content: &[u8], mode: u32) -> Result<()> {
    let host = place(tree, path)?;
    if fs::symlink_metadata(&host).is_ok() {
        return Ok(());
    }
    write_file(tree, path, content, mode).map(|_| ())
}

fn parent(path: &str) -> &str {
    path.rsplit_once('/').map_or("", |(d, _)| d)
}

fn file_name(path: &str) -> &str {
    path.rsplit_once('/').map_or(path, |(_, n)| n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absolute_links_stay_in_the_tree() {
        let t = tempfile::tempdir().unwrap();
        let tree = t.path();
        fs::create_dir_all(tree.join("usr/lib")).unwrap();
        std::os::unix::fs::symlink("usr/lib", tree.join("lib")).unwrap();
        fs::create_dir_all(tree.join("etc")).unwrap();
        // An absolute link that on the host would leave the tree.
        std::os::unix::fs::symlink("/usr/lib", tree.join("etc/libdir")).unwrap();
        write_file(tree, "/etc/libdir/x/a.conf", b"a", 0o600).unwrap();
        let written = tree.join("usr/lib/x/a.conf");
        assert_eq!(fs::read(&written).unwrap(), b"a");
        let m = fs::metadata(&written).unwrap();
        assert_eq!(m.permissions().mode() & 0o7777, 0o600);
        assert_eq!(
            fs::metadata(tree.join("usr/lib/x"))
                .unwrap()
                .permissions()
                .mode()
                & 0o7777,
            0o755
        );
        // `..` after a link goes up from where the link led, as in the kernel.
        write_file(tree, "/lib/../etc/b", b"b", 0o644).unwrap();
        assert_eq!(fs::read(tree.join("usr/etc/b")).unwrap(), b"b");
        write_file(tree, "/etc/b", b"b", 0o644).unwrap();
        // A link at the file itself is replaced, not written through.
        std::os::unix::fs::symlink("/etc/b", tree.join("etc/c")).unwrap();
        write_file(tree, "/etc/c", b"c", 0o644).unwrap();
        assert_eq!(fs::read(tree.join("etc/b")).unwrap(), b"b");
        assert_eq!(read_or_empty(tree, "/etc/c").unwrap(), "c");
        assert_eq!(read_or_empty(tree, "/etc/none").unwrap(), "");
    }

    /// Issue #11: /etc/shadow was read and rewritten through an absolute
    /// symlink in the tree to the host's file. Reads, rewrites and appends
    /// now resolve links inside the tree: the host file outside it is
    /// never read or written.
    #[test]
    fn links_at_the_file_never_reach_the_host() {
        let t = tempfile::tempdir().unwrap();
        let host_secret = t.path().join("host-shadow");
        fs::write(&host_secret, "host\n").unwrap();
        let tree = t.path().join("tree");
        fs::create_dir_all(tree.join("etc")).unwrap();
        // On the host this absolute link leads out of the tree.
        std::os::unix::fs::symlink(&host_secret, tree.join("etc/shadow")).unwrap();
        let p = host_secret.display().to_string();
        assert_eq!(read_or_empty(&tree, "/etc/shadow").unwrap(), "");
        assert!(!rewrite(&tree, "/etc/shadow", b"x").unwrap());
        // The link leads nowhere inside the tree: an error, as in a chroot.
        assert!(append(&tree, "/etc/shadow", b"y\n", 0o600).is_err());
        assert_eq!(fs::read_to_string(&host_secret).unwrap(), "host\n");
        let inside = tree.join(p.trim_start_matches('/'));
        fs::create_dir_all(inside.parent().unwrap()).unwrap();
        append(&tree, "/etc/shadow", b"y\n", 0o600).unwrap();
        assert_eq!(fs::read_to_string(&host_secret).unwrap(), "host\n");
        // The link's target, taken inside the tree, got the append.
        assert_eq!(
            fs::read_to_string(tree.join(p.trim_start_matches('/'))).unwrap(),
            "y\n"
        );
        assert_eq!(read_or_empty(&tree, "/etc/shadow").unwrap(), "y\n");
        assert!(rewrite(&tree, "/etc/shadow", b"z\n").unwrap());
        assert_eq!(read_or_empty(&tree, "/etc/shadow").unwrap(), "z\n");
        // A relative link resolves from its folder, inside the tree.
        std::os::unix::fs::symlink("shadow", tree.join("etc/gshadow")).unwrap();
        assert_eq!(read_or_empty(&tree, "/etc/gshadow").unwrap(), "z\n");
        write_if_missing(&tree, "/etc/gshadow", b"new", 0o600).unwrap();
        assert_eq!(read_or_empty(&tree, "/etc/gshadow").unwrap(), "z\n");
        assert_eq!(fs::read_to_string(&host_secret).unwrap(), "host\n");
    }
}
