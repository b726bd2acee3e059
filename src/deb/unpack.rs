//! Unpacking .debs natively into a tree, as `dpkg --unpack` leaves files on a
//! fresh system: modes (setuid too), numeric owners, symlinks, hard links,
//! mtimes and extended attributes (file capabilities) from each data.tar, and
//! conffiles as `<path>.dpkg-new` for `dpkg --configure` to move into place.
//! Packages unpack in parallel; a non-directory path shipped by two packages
//! is an error naming both, as dpkg would refuse it.
//!
//! It does not run maintainer scripts, honour diversions or statoverrides
//! (they only exist once scripts have run), or write dpkg's database: that is
//! `dpkgdb`, from the [`Unpacked`] records returned here.

use std::collections::{HashMap, HashSet, VecDeque};
use std::ffi::OsStr;
use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result, bail};

use super::archive::Deb;
use super::filter::PathFilter;
use crate::repo::deb822;

/// The merged-/usr links, made before any package as debootstrap does
/// (debootstrap's `merge_usr`, "usrmerge" layout of Debian 12+): trixie's
/// base-files ships the same links, and other packages may still ship paths
/// under /bin or /lib that must land in /usr through them.
pub const MERGED_USR: &[(&str, &str)] = &[
    ("bin", "usr/bin"),
    ("sbin", "usr/sbin"),
    ("lib", "usr/lib"),
    ("lib64", "usr/lib64"),
];

/// Suffix dpkg gives a conffile it has unpacked but not configured
/// (dpkg(1), "--unpack"; src/main/archives.c `DPKGNEWEXT`).
pub const DPKG_NEW: &str = ".dpkg-new";

/// The first line of every `.list` file: dpkg records the archive root "./"
/// as "/." (src/main/archives.c, `tarobject` on the root entry).
pub const LIST_ROOT: &str = "/.";

/// Limit on symlinks followed while resolving one path, as the kernel's
/// `MAXSYMLINKS` (40) in path_resolution(7).
const MAX_SYMLINKS: usize = 40;

/// Mode of directories made because the archive did not list a parent.
const IMPLIED_DIR_MODE: u32 = 0o755;

/// One .deb to unpack, as the lock names it.
#[derive(Debug, Clone)]
pub struct DebInput {
    pub name: String,
    pub version: String,
    pub arch: String,
    pub path: PathBuf,
}

impl DebInput {
    /// The cached .deb of a locked package (fetched beforehand).
    pub fn locked(p: &crate::lock::LockedPackage, cache: &crate::cache::Cache) -> Self {
        Self {
            name: p.name.clone(),
            version: p.version.clone(),
            arch: p.arch.clone(),
            path: cache.path_of(&p.sha256),
        }
    }
}

/// The fields of a package's control file that the database needs to know
/// (deb-control(5)); the whole text is kept for the status stanza.
#[derive(Debug, Clone)]
pub struct Control {
    pub text: String,
    pub package: String,
    pub version: String,
    pub architecture: String,
    pub multi_arch: Option<String>,
    pub essential: bool,
    pub priority: Option<String>,
}

/// One line of the control archive's `conffiles` (deb-conffiles(5)):
/// an absolute path, optionally preceded by flags like `remove-on-upgrade`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conffile {
    pub path: String,
    pub flags: Vec<String>,
}

/// What unpacking one package produced: what `dpkgdb::register` writes.
#[derive(Debug, Clone)]
pub struct Unpacked {
    pub control: Control,
    /// The data.tar's paths in archive order, as dpkg's `.list` has them:
    /// "/." first, then absolute paths without a trailing slash.
    pub paths: Vec<String>,
    /// Every control member except `control` itself, sorted by name.
    pub control_files: Vec<ControlMember>,
    pub conffiles: Vec<Conffile>,
}

/// A member of control.tar, with the mode and mtime dpkg keeps when it
/// moves it into /var/lib/dpkg/info.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControlMember {
    pub name: String,
    pub mode: u32,
    pub mtime: u64,
    pub data: Vec<u8>,
}

/// A directory's metadata from one archive, applied once all files are in.
struct DirMeta {
    path: PathBuf,
    mode: u32,
    uid: u32,
    gid: u32,
    mtime: u64,
}

/// Non-directory paths (resolved inside the tree) and the package that
/// shipped each.
type Claims = Mutex<HashMap<PathBuf, String>>;

/// One package's result: its record and its directories' metadata.
type Outcome = Result<(Unpacked, Vec<DirMeta>)>;

/// Unpacks `debs` into `tree` using up to `jobs` threads and returns one
/// record per package, in the order of `debs`.
pub fn unpack_all(tree: &Path, debs: &[DebInput], jobs: usize) -> Result<Vec<Unpacked>> {
    unpack_filtered(tree, debs, jobs, &PathFilter::default())
}

/// [`unpack_all`], leaving out the paths that `filter` skips (they stay in
/// the package's file list, as dpkg keeps filtered paths).
pub fn unpack_filtered(
    tree: &Path,
    debs: &[DebInput],
    jobs: usize,
    filter: &PathFilter,
) -> Result<Vec<Unpacked>> {
    fs::create_dir_all(tree).with_context(|| format!("creating {}", tree.display()))?;
    merge_usr(tree)?;
    let claims = Claims::default();
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let results: Vec<Mutex<Option<Outcome>>> = debs.iter().map(|_| Mutex::new(None)).collect();
    // Largest first: one big package (the kernel: a third of the closure's
    // bytes) started last would leave the other threads idle at the end.
    let mut order: Vec<usize> = (0..debs.len()).collect();
    let size = |i: &usize| fs::metadata(&debs[*i].path).map_or(0, |m| m.len());
    order.sort_by_key(|i| std::cmp::Reverse(size(i)));
    std::thread::scope(|s| {
        for _ in 0..jobs.clamp(1, debs.len().max(1)) {
            s.spawn(|| {
                loop {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    let Some(&i) = order.get(n) else { break };
                    if failed.load(Ordering::Relaxed) {
                        break;
                    }
                    let d = &debs[i];
                    let r = unpack_one(tree, d, &claims, filter).with_context(|| {
                        format!("unpacking {} {} ({})", d.name, d.version, d.path.display())
                    });
                    if r.is_err() {
                        failed.store(true, Ordering::Relaxed);
                    }
                    *results[i].lock().unwrap_or_else(|e| e.into_inner()) = Some(r);
                }
            });
        }
    });
    let results: Vec<Option<Outcome>> = results
        .into_iter()
        .map(|r| r.into_inner().unwrap_or_else(|e| e.into_inner()))
        .collect::<Vec<_>>();
    // Packages left out after a failure are not the error to report.
    let results: Vec<(Unpacked, Vec<DirMeta>)> =
        results.into_iter().flatten().collect::<Result<_>>()?;
    if results.len() != debs.len() {
        bail!("unpacking stopped before every package was unpacked");
    }
    let mut out = Vec::with_capacity(debs.len());
    let mut dirs: Vec<(String, Vec<DirMeta>)> = Vec::new();
    for (u, d) in results {
        dirs.push((u.control.package.clone(), d));
        out.push(u);
    }
    // Packages share directories and race to create them; the first package
    // by name decides their metadata so that the tree is the same every time.
    // Unlike dpkg, which leaves a directory's mtime at the time of unpacking,
    // the archive's mtime is kept: the tree does not depend on the clock.
    dirs.sort_by(|a, b| a.0.cmp(&b.0));
    let mut done = HashSet::new();
    for d in dirs.iter().flat_map(|(_, d)| d) {
        if done.insert(d.path.clone()) {
            apply_dir_meta(d)?;
        }
    }
    Ok(out)
}

/// Makes usr/{bin,sbin,lib,lib64} and the links to them at the top.
fn merge_usr(tree: &Path) -> Result<()> {
    for (link, target) in MERGED_USR {
        let dir = tree.join(target);
        fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let at = tree.join(link);
        match fs::read_link(&at) {
            Ok(t) if t == Path::new(target) => continue,
            Ok(_) => fs::remove_file(&at).with_context(|| format!("replacing {}", at.display()))?,
            Err(_) => {}
        }
        symlink(target, &at).with_context(|| format!("linking {} to {target}", at.display()))?;
    }
    Ok(())
}

fn unpack_one(
    tree: &Path,
    deb: &DebInput,
    claims: &Claims,
    filter: &PathFilter,
) -> Result<(Unpacked, Vec<DirMeta>)> {
    let d = Deb::open(&deb.path)?;
    let mut control_files = control_members(&d)?;
    let Some(i) = control_files.iter().position(|m| m.name == "control") else {
        bail!("no control file in control.tar");
    };
    let text = control_files.remove(i).data;
    let control = parse_control(&String::from_utf8_lossy(&text))?;
    if (&control.package, &control.version, &control.architecture)
        != (&deb.name, &deb.version, &deb.arch)
    {
        bail!(
            "control says {} {} {}, expected {} {} {}",
            control.package,
            control.version,
            control.architecture,
            deb.name,
            deb.version,
            deb.arch
        );
    }
    let conffiles = match control_files.iter().find(|m| m.name == "conffiles") {
        Some(m) => parse_conffiles(&String::from_utf8_lossy(&m.data))?,
        None => Vec::new(),
    };
    let conf: HashSet<&str> = conffiles.iter().map(|c| c.path.as_str()).collect();

    let mut ar = d.data_tar()?;
    ar.set_preserve_permissions(true);
    ar.set_preserve_ownerships(true);
    ar.set_preserve_mtime(true);
    ar.set_unpack_xattrs(true);
    ar.set_overwrite(true);
    let mut paths = vec![LIST_ROOT.to_owned()];
    let mut dirs = Vec::new();
    // Archive path -> where it was written, for hard links to earlier members.
    let mut written: HashMap<String, PathBuf> = HashMap::new();
    for e in ar.entries().context("reading data.tar")? {
        let mut e = e.context("reading data.tar")?;
        let kind = e.header().entry_type();
        if kind.is_pax_global_extensions() {
            continue;
        }
        let raw = e.path_bytes().into_owned();
        let comps = components(&raw)?;
        let Some((name, parents)) = comps.split_last() else {
            continue; // "./": the root, already "/." in the list
        };
        let list = format!("/{}", comps.join("/"));
        if filter.skips(&list) {
            paths.push(list);
            continue;
        }
        let parent = resolve_dir(tree, parents).with_context(|| format!("placing {list}"))?;
        let mut dst = parent.join(name);
        if kind.is_dir() {
            // Resolving makes the directory, or finds it through a symlink
            // that is kept, as dpkg keeps the merged-/usr links.
            let path = resolve_dir(tree, &comps).with_context(|| format!("creating {list}"))?;
            let h = e.header();
            dirs.push(DirMeta {
                path,
                mode: h.mode()?,
                uid: u32::try_from(h.uid()?).context("uid out of range")?,
                gid: u32::try_from(h.gid()?).context("gid out of range")?,
                mtime: h.mtime()?,
            });
            paths.push(list);
            continue;
        }
        claim(claims, &dst, &deb.name)?;
        if conf.contains(list.as_str()) {
            let mut s = dst.into_os_string();
            s.push(DPKG_NEW);
            dst = PathBuf::from(s);
        }
        if kind.is_hard_link() {
            let target = e
                .link_name_bytes()
                .with_context(|| format!("hard link {list} has no target"))?;
            let target = format!("/{}", components(&target)?.join("/"));
            let Some(src) = written.get(&target) else {
                if filter.skips(&target) {
                    bail!(
                        "hard link {list} points at {target}, which the path filter leaves out: \
                         exclude both or neither"
                    );
                }
                bail!("hard link {list} points at {target}, not earlier in this package");
            };
            remove_existing(&dst)?;
            fs::hard_link(src, &dst)
                .with_context(|| format!("linking {} to {}", dst.display(), src.display()))?;
        } else if kind.is_symlink() {
            let target = e.link_name()?.unwrap_or_default();
            // Keep a link already right (the merged-/usr ones made above):
            // replacing it would break other threads resolving through it.
            if fs::read_link(&dst).ok().as_deref() != Some(&*target) {
                e.unpack(&dst)
                    .with_context(|| format!("writing {}", dst.display()))?;
            }
        } else if kind.is_file() || kind.is_contiguous() {
            e.unpack(&dst)
                .with_context(|| format!("writing {}", dst.display()))?;
        } else {
            // Debian Policy 10.9 forbids device files and FIFOs in packages.
            bail!("{list}: unsupported tar entry type {:?}", kind);
        }
        written.insert(list.clone(), dst);
        paths.push(list);
    }
    let u = Unpacked {
        control,
        paths,
        control_files,
        conffiles,
    };
    Ok((u, dirs))
}

/// The regular files of control.tar, sorted by name.
fn control_members(d: &Deb) -> Result<Vec<ControlMember>> {
    let mut out = Vec::new();
    let mut ar = d.control_tar()?;
    for e in ar.entries().context("reading control.tar")? {
        let mut e = e.context("reading control.tar")?;
        if !e.header().entry_type().is_file() {
            continue;
        }
        let raw = e.path_bytes().into_owned();
        let name = components(&raw)?.join("/");
        if name.contains('/') {
            bail!("control.tar member {name:?} is not at the top");
        }
        let (mode, mtime) = (e.header().mode()?, e.header().mtime()?);
        let mut data = Vec::new();
        io::Read::read_to_end(&mut e, &mut data).context("reading control.tar")?;
        out.push(ControlMember {
            name,
            mode,
            mtime,
            data,
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// Splits an archive path into its names: "./usr/bin/" -> ["usr", "bin"].
/// Absolute paths and ".." are refused: a package writes inside the tree.
fn components(raw: &[u8]) -> Result<Vec<&str>> {
    let s = std::str::from_utf8(raw)
        .with_context(|| format!("path {:?} is not UTF-8", String::from_utf8_lossy(raw)))?;
    if s.starts_with('/') {
        bail!("absolute path {s:?} in data.tar");
    }
    let mut out = Vec::new();
    for c in s.split('/') {
        match c {
            "" | "." => {}
            ".." => bail!("path {s:?} in data.tar leaves the tree"),
            c => out.push(c),
        }
    }
    Ok(out)
}

/// The real directory inside `tree` that `comps` names, following symlinks
/// as a chroot would (an absolute target starts again at `tree`, ".." stops
/// at it) and making directories that are missing.
fn resolve_dir(tree: &Path, comps: &[&str]) -> Result<PathBuf> {
    let mut cur = tree.to_path_buf();
    let mut depth = 0usize;
    let mut queue: VecDeque<PathBuf> = comps.iter().map(PathBuf::from).collect();
    let mut hops = 0;
    while let Some(c) = queue.pop_front() {
        match c.as_os_str().as_bytes() {
            b"" | b"." => continue,
            b".." => {
                if depth > 0 {
                    cur.pop();
                    depth -= 1;
                }
                continue;
            }
            _ => {}
        }
        let next = cur.join(&c);
        match fs::symlink_metadata(&next) {
            Ok(m) if m.is_dir() => {
                cur = next;
                depth += 1;
            }
            Ok(m) if m.file_type().is_symlink() => {
                hops += 1;
                if hops > MAX_SYMLINKS {
                    bail!("too many symlinks at {}", next.display());
                }
                let target =
                    fs::read_link(&next).with_context(|| format!("reading {}", next.display()))?;
                if target.is_absolute() {
                    cur = tree.to_path_buf();
                    depth = 0;
                }
                for part in target.components().rev() {
                    let part = part.as_os_str();
                    if part != OsStr::new("/") {
                        queue.push_front(PathBuf::from(part));
                    }
                }
            }
            Ok(_) => bail!("{} is not a directory", next.display()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                // Another package may make it at the same moment: look again.
                match fs::create_dir(&next) {
                    Ok(()) => {
                        fs::set_permissions(&next, fs::Permissions::from_mode(IMPLIED_DIR_MODE))?
                    }
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                    Err(e) => {
                        return Err(e).with_context(|| format!("creating {}", next.display()));
                    }
                }
                queue.push_front(c);
            }
            Err(e) => return Err(e).with_context(|| format!("reading {}", next.display())),
        }
    }
    Ok(cur)
}

/// Records that `pkg` ships the non-directory `dst`, failing if another
/// package already does (dpkg: "trying to overwrite '...', which is also in
/// package ...").
fn claim(claims: &Claims, dst: &Path, pkg: &str) -> Result<()> {
    let mut c = claims.lock().unwrap_or_else(|e| e.into_inner());
    match c.get(dst) {
        Some(other) if other != pkg => {
            bail!("{} is shipped by both {other} and {pkg}", dst.display())
        }
        Some(_) => Ok(()),
        None => {
            c.insert(dst.to_path_buf(), pkg.to_owned());
            Ok(())
        }
    }
}

fn remove_existing(p: &Path) -> Result<()> {
    match fs::remove_file(p) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => {
            Err(e).with_context(|| format!("replacing {}", p.display()))
        }
        _ => Ok(()),
    }
}

fn apply_dir_meta(d: &DirMeta) -> Result<()> {
    let ctx = || format!("setting metadata of {}", d.path.display());
    // Owner before mode: chown clears setuid/setgid bits.
    std::os::unix::fs::chown(&d.path, Some(d.uid), Some(d.gid)).with_context(ctx)?;
    fs::set_permissions(&d.path, fs::Permissions::from_mode(d.mode & 0o7777)).with_context(ctx)?;
    let t = SystemTime::UNIX_EPOCH + Duration::from_secs(d.mtime);
    let f = fs::File::open(&d.path).with_context(ctx)?;
    f.set_times(fs::FileTimes::new().set_accessed(t).set_modified(t))
        .with_context(ctx)?;
    Ok(())
}

/// Reads the fields of a control file that the database needs.
pub fn parse_control(text: &str) -> Result<Control> {
    let mut ps = deb822::paragraphs(text);
    let Some(p) = ps.next() else {
        bail!("empty control file");
    };
    let p = p?;
    let field = |n: &str| p.get(n).map(str::to_owned);
    let need = |n: &str| field(n).with_context(|| format!("control file has no {n} field"));
    Ok(Control {
        text: text.to_owned(),
        package: need("Package")?,
        version: need("Version")?,
        architecture: need("Architecture")?,
        multi_arch: field("Multi-Arch"),
        essential: field("Essential").is_some_and(|v| v == "yes"),
        priority: field("Priority"),
    })
}

/// Parses deb-conffiles(5): one absolute path per line, optionally preceded
/// by flags such as `remove-on-upgrade` (which never contain a slash); blank
/// lines are ignored. The path itself may contain spaces.
pub fn parse_conffiles(text: &str) -> Result<Vec<Conffile>> {
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let Some(at) = line.find('/') else {
            bail!("conffiles line {line:?} has no absolute path");
        };
        let (flags, path) = line.split_at(at);
        if !(flags.is_empty() || flags.ends_with(char::is_whitespace)) {
            bail!("conffiles line {line:?} does not end in an absolute path");
        }
        out.push(Conffile {
            path: path.to_owned(),
            flags: flags.split_whitespace().map(str::to_owned).collect(),
        });
    }
    Ok(out)
}

#[cfg(test)]
#[path = "unpack_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "realdebs_tests.rs"]
mod realdebs_tests;
