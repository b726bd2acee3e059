//! `craton cache status` and `craton cache gc`: what the cache holds, and
//! removing what recent builds did not use.
//!
//! A build marks what it uses: each cached file's time is set when the
//! build verifies it (`Cache::verified`), a cached tree's manifest's time
//! when the build reuses the tree (`files::cached_tree`). `gc --keep N`
//! keeps the N most recently used trees of each kind (base, tools), and the
//! files used since the oldest kept base tree was last used, less a
//! margin (a build fetches its files before it reaches its base tree);
//! everything else goes, with the partial downloads of killed runs.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result};

use super::Cache;

/// How long before its base tree's use a build may have fetched its files.
const USE_MARGIN: Duration = Duration::from_secs(24 * 60 * 60);
/// Partial downloads older than this belong to no running build.
const STALE_TMP: Duration = Duration::from_secs(60 * 60);

/// One cached tree.
#[derive(Debug, Clone)]
pub struct Tree {
    pub path: PathBuf,
    /// "base", "tools": the name before its key.
    pub kind: String,
    pub bytes: u64,
    /// The manifest's time; `None` without one (a tree of an older craton
    /// or a torn one, remade at its next use).
    pub last_used: Option<SystemTime>,
}

/// What the cache holds.
#[derive(Debug, Clone)]
pub struct Survey {
    pub root: PathBuf,
    /// Content-addressed files: (path, bytes, last use).
    pub files: Vec<(PathBuf, u64, SystemTime)>,
    pub trees: Vec<Tree>,
    /// Partial downloads: (path, bytes, time).
    pub partial: Vec<(PathBuf, u64, SystemTime)>,
}

fn listing(dir: &Path) -> Result<Vec<(PathBuf, u64, SystemTime)>> {
    let mut out = Vec::new();
    let rd = match fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(e).with_context(|| format!("reading {}", dir.display())),
    };
    for e in rd {
        let e = e.with_context(|| format!("reading {}", dir.display()))?;
        let m = e
            .metadata()
            .with_context(|| format!("reading {}", e.path().display()))?;
        if m.is_file() {
            out.push((
                e.path(),
                m.len(),
                m.modified().unwrap_or(SystemTime::UNIX_EPOCH),
            ));
        }
    }
    out.sort();
    Ok(out)
}

fn tree_bytes(dir: &Path) -> u64 {
    let Ok(rd) = fs::read_dir(dir) else {
        return 0;
    };
    rd.flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => tree_bytes(&e.path()),
            Ok(t) if t.is_file() => e.metadata().map_or(0, |m| m.len()),
            _ => 0,
        })
        .sum()
}

/// Reads what the cache holds.
pub fn survey(cache: &Cache) -> Result<Survey> {
    let root = cache.root().to_owned();
    let mut trees = Vec::new();
    let trees_dir = root.join("trees");
    if let Ok(rd) = fs::read_dir(&trees_dir) {
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            // Temporary trees (".NAME.tmp-PID-N") are swept by builds.
            if name.starts_with('.') || !e.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            let kind = name.split('-').next().unwrap_or("").to_owned();
            let manifest = crate::files::cached::manifest_path(&e.path());
            let last_used = fs::metadata(&manifest).and_then(|m| m.modified()).ok();
            trees.push(Tree {
                bytes: tree_bytes(&e.path()),
                path: e.path(),
                kind,
                last_used,
            });
        }
    }
    trees.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(Survey {
        files: listing(&root.join("sha256"))?,
        partial: listing(&root.join("tmp"))?,
        trees,
        root,
    })
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

fn ago(t: Option<SystemTime>) -> String {
    match t.map(|t| SystemTime::now().duration_since(t).unwrap_or_default()) {
        None => "never (no manifest)".to_owned(),
        Some(d) if d.as_secs() < 3600 => format!("{} min ago", d.as_secs() / 60),
        Some(d) if d.as_secs() < 48 * 3600 => format!("{} h ago", d.as_secs() / 3600),
        Some(d) => format!("{} days ago", d.as_secs() / 86400),
    }
}

/// The `craton cache status` text.
pub fn status_text(s: &Survey) -> String {
    let mut out = format!("cache {}\n", s.root.display());
    let files: u64 = s.files.iter().map(|f| f.1).sum();
    let _ = writeln!(out, "files:   {} ({:.1} MiB)", s.files.len(), mib(files));
    let _ = writeln!(out, "trees:   {}", s.trees.len());
    for t in &s.trees {
        let _ = writeln!(
            out,
            "  {} ({:.1} MiB), used {}",
            t.path.file_name().unwrap_or_default().to_string_lossy(),
            mib(t.bytes),
            ago(t.last_used)
        );
    }
    let partial: u64 = s.partial.iter().map(|f| f.1).sum();
    let _ = writeln!(
        out,
        "partial: {} ({:.1} MiB)",
        s.partial.len(),
        mib(partial)
    );
    out
}

/// What [`gc`] removed.
#[derive(Debug, Default)]
pub struct Removed {
    pub files: usize,
    pub trees: Vec<PathBuf>,
    pub partial: usize,
    pub bytes: u64,
}

/// Removes the trees beyond the `keep` most recently used of each kind,
/// the files no kept build used, and stale partial downloads.
pub fn gc(cache: &Cache, keep: usize) -> Result<Removed> {
    let s = survey(cache)?;
    let mut removed = Removed::default();
    let mut kinds: Vec<&str> = s.trees.iter().map(|t| t.kind.as_str()).collect();
    kinds.sort();
    kinds.dedup();
    // The oldest last use among the kept base trees: files used before it
    // (less the margin) belong to builds that are gone.
    let mut cutoff: Option<SystemTime> = None;
    for kind in kinds {
        let mut of_kind: Vec<&Tree> = s.trees.iter().filter(|t| t.kind == kind).collect();
        // Most recent first; a tree without a manifest last.
        of_kind.sort_by_key(|t| std::cmp::Reverse(t.last_used));
        for (i, t) in of_kind.iter().enumerate() {
            if i < keep && t.last_used.is_some() {
                if kind == "base" {
                    cutoff = match (cutoff, t.last_used) {
                        (Some(c), Some(u)) => Some(c.min(u)),
                        (None, u) => u,
                        (c, None) => c,
                    };
                }
                continue;
            }
            crate::files::cached::remove(&t.path)?;
            removed.bytes += t.bytes;
            removed.trees.push(t.path.clone());
        }
    }
    if let Some(cutoff) = cutoff {
        let (n, bytes) = remove_older(&s.files, cutoff.checked_sub(USE_MARGIN))?;
        removed.files = n;
        removed.bytes += bytes;
    }
    let (n, bytes) = remove_older(&s.partial, SystemTime::now().checked_sub(STALE_TMP))?;
    removed.partial = n;
    removed.bytes += bytes;
    Ok(removed)
}

/// Removes the listed files whose time is before `before` (the epoch when
/// `None`); returns how many and their bytes.
fn remove_older(
    files: &[(PathBuf, u64, SystemTime)],
    before: Option<SystemTime>,
) -> Result<(usize, u64)> {
    let before = before.unwrap_or(SystemTime::UNIX_EPOCH);
    let (mut n, mut total) = (0, 0);
    for (path, bytes, time) in files {
        if *time < before {
            fs::remove_file(path).with_context(|| format!("removing {}", path.display()))?;
            n += 1;
            total += bytes;
        }
    }
    Ok((n, total))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::files::cached_tree;

    fn age(path: &Path, secs: u64) {
        let t = SystemTime::now() - Duration::from_secs(secs);
        fs::File::open(path).unwrap().set_modified(t).unwrap();
    }

    #[test]
    fn gc_keeps_what_recent_builds_used() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(dir.path().join("c")).unwrap();
        let root = cache.root().to_owned();
        let make = |t: &Path| -> Result<()> { Ok(fs::write(t.join("f"), "x")?) };
        for name in ["base-old", "base-new", "tools-a"] {
            cached_tree(&root.join("trees").join(name), make).unwrap();
        }
        // base-old was last used ten days ago, base-new now.
        age(&root.join("trees/base-old.manifest"), 10 * 86400);
        let old_file = root.join("sha256/aa");
        let new_file = root.join("sha256/bb");
        fs::write(&old_file, "old").unwrap();
        fs::write(&new_file, "new").unwrap();
        age(&old_file, 5 * 86400);
        let partial = root.join("tmp/partial-x");
        fs::write(&partial, "p").unwrap();
        age(&partial, 2 * 3600);

        let s = survey(&cache).unwrap();
        assert_eq!(s.trees.len(), 3);
        let text = status_text(&s);
        assert!(text.contains("files:   2"), "{text}");
        assert!(text.contains("base-old"), "{text}");
        assert!(text.contains("partial: 1"), "{text}");

        let r = gc(&cache, 1).unwrap();
        assert_eq!(r.trees, [root.join("trees/base-old")]);
        assert!(!root.join("trees/base-old").exists());
        assert!(!root.join("trees/base-old.manifest").exists());
        assert!(root.join("trees/base-new").is_dir());
        assert!(root.join("trees/tools-a").is_dir());
        assert_eq!((r.files, r.partial), (1, 1));
        assert!(!old_file.exists() && new_file.exists() && !partial.exists());
        // A second gc has nothing left to do.
        let r = gc(&cache, 1).unwrap();
        assert_eq!((r.trees.len(), r.files, r.partial), (0, 0, 0));
    }
}
