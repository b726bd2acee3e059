//! What the SBOM takes from each locked .deb: the control file's
//! Maintainer, Source, Homepage and Description, and the package's
//! copyright file.
//!
//! The control file comes from the cached .deb (control.tar is small and
//! sits before data.tar). The copyright file of an image package is read
//! from the rootfs tree (the profile's path-include keeps
//! /usr/share/doc/*/copyright; links resolve inside the tree, never out
//! of it); the initrd's and the tools' own packages, and image packages
//! whose file is missing from the tree, have it read from the .deb's
//! data.tar, streamed until the file. A doc folder that is a link to
//! another package's (`libgcc-s1 -> gcc-14-base`, Debian Policy 12.5)
//! takes that package's file. Parallel on `jobs` threads, largest first.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use anyhow::{Context as _, Result, bail};

use crate::cache::Cache;
use crate::deb::Deb;
use crate::digest::Sha256;
use crate::files::read_bounded;
use crate::lock::{Lock, LockedPackage};
use crate::repo::deb822;

/// A control file is a few KiB; Description bodies stay well under this.
const CONTROL_LIMIT: u64 = 1 << 20;
/// The largest copyright file taken. Real ones reach a few hundred KiB
/// (firefox-esr's, 0.5 MiB); a larger one is skipped (NOASSERTION).
const COPYRIGHT_LIMIT: u64 = 8 << 20;
/// Links followed from one doc folder to another before giving up.
const MAX_HOPS: usize = 8;

/// What the SBOM says about one .deb beyond its lock entry.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DebFacts {
    /// `Maintainer`, e.g. `GNU Libc Maintainers <debian-glibc@lists.debian.org>`.
    pub maintainer: Option<String>,
    /// `Source`, e.g. `glibc` or `glibc (2.41-12)`.
    pub source: Option<String>,
    pub homepage: Option<String>,
    /// The Description's first line.
    pub summary: Option<String>,
    /// The copyright file's text, when the package has one.
    pub copyright: Option<String>,
}

/// Facts by the .deb's sha256.
pub type Facts = BTreeMap<Sha256, DebFacts>;

/// Where a .deb's copyright file is.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Found {
    Text(String),
    /// A link to this absolute path (in the installed system).
    Link(String),
    Missing,
}

/// The facts of every .deb the lock names (image, initrd and tools sets),
/// the image's copyright files from `tree` when given.
pub fn gather(lock: &Lock, cache: &Cache, tree: Option<&Path>, jobs: usize) -> Result<Facts> {
    let mut unique: BTreeMap<Sha256, (&LockedPackage, bool)> = BTreeMap::new();
    for p in &lock.packages {
        unique.insert(p.sha256, (p, true));
    }
    for p in lock.initrd.iter().chain(&lock.tools) {
        unique.entry(p.sha256).or_insert((p, false));
    }
    let work: Vec<(&LockedPackage, bool)> = unique.into_values().collect();
    let read = |(p, in_image): &(&LockedPackage, bool)| {
        // An interrupt stops the stage between packages (a kernel's
        // data.tar takes seconds to read).
        crate::signal::check()?;
        read_one(p, &cache.path_of(&p.sha256), tree.filter(|_| *in_image))
            .with_context(|| format!("reading {} {} for the SBOM", p.name, p.version))
    };
    let results = parallel(&work, |(p, _)| p.size, jobs, read)?;
    let mut by_name: BTreeMap<&str, &Found> = BTreeMap::new();
    for ((p, _), (_, found)) in work.iter().zip(&results) {
        by_name.entry(p.name.as_str()).or_insert(found);
    }
    let mut out = Facts::new();
    for ((p, _), (facts, found)) in work.iter().zip(&results) {
        let copyright = follow(found, &by_name).map(str::to_owned);
        if copyright.is_none() {
            tracing::debug!("{}: no copyright file", p.name);
        }
        out.insert(
            p.sha256,
            DebFacts {
                copyright,
                ..facts.clone()
            },
        );
    }
    Ok(out)
}

/// The text a copyright file has, following links to other packages'
/// doc folders (`/usr/share/doc/<other>/copyright`).
fn follow<'a>(found: &'a Found, by_name: &BTreeMap<&str, &'a Found>) -> Option<&'a str> {
    let mut at = found;
    for _ in 0..MAX_HOPS {
        match at {
            Found::Text(t) => return Some(t),
            Found::Missing => return None,
            Found::Link(path) => {
                let other = path
                    .strip_prefix("/usr/share/doc/")?
                    .strip_suffix("/copyright")?;
                at = by_name.get(other)?;
            }
        }
    }
    None
}

/// `f` over `items` on up to `jobs` threads, largest first (one big
/// package started last would keep the others waiting), results in the
/// order of `items`; the first failure stops the rest.
fn parallel<T: Sync, R: Send>(
    items: &[T],
    size: impl Fn(&T) -> u64,
    jobs: usize,
    f: impl Fn(&T) -> Result<R> + Sync,
) -> Result<Vec<R>> {
    let mut order: Vec<usize> = (0..items.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(size(&items[i])));
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let slots: Vec<Mutex<Option<Result<R>>>> = items.iter().map(|_| Mutex::new(None)).collect();
    std::thread::scope(|s| {
        for _ in 0..jobs.clamp(1, items.len().max(1)) {
            s.spawn(|| {
                while !failed.load(Ordering::Relaxed) {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    let Some(&i) = order.get(n) else { break };
                    let r = f(&items[i]);
                    if r.is_err() {
                        failed.store(true, Ordering::Relaxed);
                    }
                    *slots[i].lock().unwrap_or_else(|e| e.into_inner()) = Some(r);
                }
            });
        }
    });
    let results: Vec<Option<Result<R>>> = slots
        .into_iter()
        .map(|s| s.into_inner().unwrap_or_else(|e| e.into_inner()))
        .collect();
    // Items left out after a failure are not the error to report.
    let results: Vec<R> = results.into_iter().flatten().collect::<Result<_>>()?;
    if results.len() != items.len() {
        bail!("stopped before every package was read");
    }
    Ok(results)
}

fn read_one(p: &LockedPackage, path: &Path, tree: Option<&Path>) -> Result<(DebFacts, Found)> {
    let deb = Deb::open(path)?;
    let control =
        control_text(&deb).with_context(|| format!("reading the control of {}", path.display()))?;
    let facts = control_facts(&control)
        .with_context(|| format!("reading the control of {}", path.display()))?;
    let in_tree = match tree {
        Some(t) => from_tree(t, &p.name)?,
        None => None,
    };
    let found = match in_tree {
        Some(text) => Found::Text(text),
        None => from_deb(&deb, &p.name)
            .with_context(|| format!("reading the data of {}", path.display()))?,
    };
    Ok((facts, found))
}

/// The `control` member of control.tar.
fn control_text(deb: &Deb) -> Result<String> {
    let mut tar = deb.control_tar()?;
    for e in tar.entries()? {
        let e = e?;
        if normalise(&e.path()?.to_string_lossy()) == "control" {
            let bytes = read_bounded(e, CONTROL_LIMIT, "the control file")?;
            return Ok(String::from_utf8_lossy(&bytes).into_owned());
        }
    }
    bail!("control.tar has no control file")
}

/// The fields the SBOM uses from a control file.
pub fn control_facts(text: &str) -> Result<DebFacts> {
    let p = deb822::paragraphs(text)
        .next()
        .context("empty control file")??;
    let field = |n: &str| p.get(n).filter(|v| !v.is_empty()).map(str::to_owned);
    Ok(DebFacts {
        maintainer: field("Maintainer"),
        source: field("Source"),
        homepage: field("Homepage"),
        summary: p
            .get("Description")
            .and_then(|d| d.lines().next())
            .map(|l| l.trim().to_owned())
            .filter(|l| !l.is_empty()),
        copyright: None,
    })
}

/// The package's copyright file in the tree, links resolved inside it.
fn from_tree(tree: &Path, name: &str) -> Result<Option<String>> {
    let path = format!("/usr/share/doc/{name}/copyright");
    Ok(crate::files::tree::read(tree, &path)?
        .filter(|b| b.len() as u64 <= COPYRIGHT_LIMIT)
        .map(|b| String::from_utf8_lossy(&b).into_owned()))
}

/// The package's copyright file in its data.tar: the file, or the link
/// that stands for it or for its folder.
fn from_deb(deb: &Deb, name: &str) -> Result<Found> {
    let dir = format!("usr/share/doc/{name}");
    let file = format!("{dir}/copyright");
    let mut tar = deb.data_tar()?;
    for e in tar.entries()? {
        let mut e = e?;
        let path = normalise(&e.path()?.to_string_lossy()).to_owned();
        let kind = e.header().entry_type();
        let link = || -> Result<String> {
            Ok(e.link_name()?
                .map(|l| l.to_string_lossy().into_owned())
                .unwrap_or_default())
        };
        if path == dir && kind.is_symlink() {
            let target = join("usr/share/doc", &link()?);
            return Ok(Found::Link(format!("{target}/copyright")));
        }
        if path != file {
            continue;
        }
        if kind.is_symlink() {
            return Ok(Found::Link(join(&dir, &link()?)));
        }
        if !kind.is_file() {
            return Ok(Found::Missing);
        }
        let mut bytes = Vec::new();
        let n = (&mut e)
            .take(COPYRIGHT_LIMIT + 1)
            .read_to_end(&mut bytes)
            .with_context(|| format!("reading {file}"))?;
        if n as u64 > COPYRIGHT_LIMIT {
            tracing::warn!("{file} is larger than {COPYRIGHT_LIMIT} bytes: not read");
            return Ok(Found::Missing);
        }
        return Ok(Found::Text(String::from_utf8_lossy(&bytes).into_owned()));
    }
    Ok(Found::Missing)
}

/// A tar member's name without `./` and a final `/`.
fn normalise(path: &str) -> &str {
    path.trim_start_matches("./").trim_end_matches('/')
}

/// `target` read from folder `dir` (both as in the installed system,
/// `dir` without its leading `/`), as an absolute path; `..` stops at `/`.
pub(super) fn join(dir: &str, target: &str) -> String {
    let mut parts: Vec<&str> = if target.starts_with('/') {
        Vec::new()
    } else {
        dir.split('/').filter(|c| !c.is_empty()).collect()
    };
    for c in target.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    format!("/{}", parts.join("/"))
}
