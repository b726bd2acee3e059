//! Fetch: parallel, verified downloads of packages and artifacts into the
//! content-addressed [`crate::cache::Cache`].
//!
//! [`fetch`] takes a flat list of [`Item`]s (a URL, a SHA-256 and where the
//! item comes from), skips what the cache already holds, downloads the rest
//! with a bounded number of threads, largest first, and checks every file's
//! size and digest before it enters the cache. Failures do not stop the other
//! downloads: all of them are collected and reported together at the end.
//!
//! The stage's entry point [`run`] (in `plan`) turns the lock's entries
//! into items with [`Item::package`] (given the repository's mirror) and
//! [`Item::artifact`]; [`fetch`] itself neither chooses mirrors nor reads
//! locks. Transport and retries are [`crate::http`]'s.

mod download;
mod items;
mod plan;
mod progress;

use std::collections::HashSet;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Result, anyhow};

pub use plan::{items, run, run_tools};
pub use progress::Progress;

use crate::cache::Cache;
use crate::digest::Sha256;
use crate::http::Http;
use download::Source;
use progress::Meter;

pub use crate::context::DEFAULT_JOBS;

/// Temporary files older than this are left-overs of a killed run: no
/// single download takes a day.
const STALE_TMP_AGE: Duration = Duration::from_secs(24 * 60 * 60);

/// Bytes in a MiB, for log lines.
const MIB: f64 = 1024.0 * 1024.0;

/// Where an item comes from; decides how a failure is reported and whether an
/// artifact directory may stand in for the network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// A Debian package from the archive.
    Package,
    /// A pinned artifact. `file_name` is the name looked up in
    /// `--artifact-dir` (usually the URL's basename); `name` is also tried.
    Artifact { name: String, file_name: String },
}

/// One file to fetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    /// What logs and errors call it, e.g. "systemd_257.9-1_amd64.deb".
    pub label: String,
    pub url: String,
    pub sha256: Sha256,
    /// The expected size, when the index says it (packages do).
    pub size: Option<u64>,
    pub origin: Origin,
}

/// How to fetch.
#[derive(Debug, Clone)]
pub struct Options {
    /// Parallel downloads (at least one is used).
    pub jobs: usize,
    /// A folder with artifact files for machines without that network.
    pub artifact_dir: Option<PathBuf>,
    pub progress: Progress,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            jobs: DEFAULT_JOBS,
            artifact_dir: None,
            progress: Progress::Auto,
        }
    }
}

/// What a successful fetch did. Items with the same digest count once.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// Distinct files asked for.
    pub total: usize,
    /// Already in the cache: no network, no copy.
    pub cached: usize,
    pub downloaded: usize,
    /// Copied from the artifact directory.
    pub from_artifact_dir: usize,
    /// Size of the files downloaded (not counting failed tries).
    pub bytes_downloaded: u64,
    pub elapsed: Duration,
}

/// One item that could not be fetched.
struct Failure<'a> {
    item: &'a Item,
    error: anyhow::Error,
}

/// Fetches every item into `cache`. Returns what was done, or one error that
/// lists every item that could not be fetched (those that could are kept in
/// the cache; no partial file is left behind).
pub fn fetch(http: &Http, cache: &Cache, items: &[Item], opts: &Options) -> Result<Report> {
    let start = Instant::now();
    match cache.sweep_tmp(STALE_TMP_AGE) {
        Ok(0) => {}
        Ok(n) => tracing::debug!("removed {n} stale temporary files from the cache"),
        // Only housekeeping: a fetch can go on with some left-overs.
        Err(e) => tracing::warn!("cleaning the cache's temporary files: {e:#}"),
    }
    let mut seen = HashSet::new();
    let unique: Vec<&Item> = items.iter().filter(|i| seen.insert(i.sha256)).collect();
    // Each cached file is hashed again before this build uses it
    // (`Cache::verified`); a file that changed is fetched again.
    let mut cached = Vec::new();
    let mut pending = Vec::new();
    for i in &unique {
        if cache.verified(&i.sha256)? {
            cached.push(*i);
        } else {
            pending.push(*i);
        }
    }
    // Largest first, so that the long downloads overlap with many small ones
    // instead of running alone at the end. An unknown size is an artifact,
    // which is usually large (a release tarball), so it goes first too.
    pending.sort_by_key(|i| std::cmp::Reverse(i.size.unwrap_or(u64::MAX)));

    if pending.is_empty() {
        tracing::info!("all {} files already cached", cached.len());
        return Ok(Report {
            total: unique.len(),
            cached: cached.len(),
            elapsed: start.elapsed(),
            ..Report::default()
        });
    }
    let known_bytes: u64 = pending.iter().filter_map(|i| i.size).sum();
    tracing::info!(
        "fetching {} files ({:.1} MiB), {} already cached",
        pending.len(),
        known_bytes as f64 / MIB,
        cached.len()
    );
    let meter = Meter::new(opts.progress, pending.len(), known_bytes);

    let next = AtomicUsize::new(0);
    let done = Mutex::new(Vec::with_capacity(pending.len()));
    let workers = opts.jobs.max(1).min(pending.len());
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| {
                // The shared index is the work queue: each worker takes the
                // next (smaller) item until none is left.
                while let Some(item) = pending.get(next.fetch_add(1, Ordering::Relaxed)) {
                    let outcome = download::fetch_one(http, cache, item, opts, &meter);
                    if let Err(e) = &outcome {
                        meter.suspend(|| tracing::warn!("{}: {e:#}", item.label));
                    }
                    meter.file_done();
                    done.lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .push((*item, outcome));
                }
            });
        }
    });
    meter.finish();

    let mut report = Report {
        total: unique.len(),
        cached: cached.len(),
        ..Report::default()
    };
    let mut failures = Vec::new();
    for (item, outcome) in done.into_inner().unwrap_or_else(|p| p.into_inner()) {
        match outcome {
            Ok(Source::Network { bytes }) => {
                report.downloaded += 1;
                report.bytes_downloaded += bytes;
            }
            Ok(Source::ArtifactDir) => report.from_artifact_dir += 1,
            Err(error) => failures.push(Failure { item, error }),
        }
    }
    report.elapsed = start.elapsed();
    let secs = report.elapsed.as_secs_f64();
    let mib = report.bytes_downloaded as f64 / MIB;
    tracing::info!(
        "fetched {} files, {mib:.1} MiB in {secs:.1}s ({:.1} MiB/s)",
        report.downloaded + report.from_artifact_dir,
        if secs > 0.0 { mib / secs } else { 0.0 }
    );
    if failures.is_empty() {
        Ok(report)
    } else {
        Err(anyhow!(failure_message(&failures, opts)))
    }
}

/// One message for all failures: packages first, then artifacts with the way
/// out (an artifact directory), so that a user on a closed network sees
/// every file to carry over at once.
fn failure_message(failures: &[Failure], opts: &Options) -> String {
    let mut packages: Vec<&Failure> = Vec::new();
    let mut artifacts: Vec<(&Failure, &str, &str)> = Vec::new();
    for f in failures {
        match &f.item.origin {
            Origin::Package => packages.push(f),
            Origin::Artifact { name, file_name } => artifacts.push((f, name, file_name)),
        }
    }
    packages.sort_by(|a, b| a.item.label.cmp(&b.item.label));
    artifacts.sort_by(|a, b| a.1.cmp(b.1));

    let mut msg = String::new();
    if !packages.is_empty() {
        let _ = writeln!(msg, "{}:", count(packages.len(), "package"));
        for f in &packages {
            let _ = writeln!(msg, "  {}: {:#}", f.item.label, f.error);
        }
    }
    if !artifacts.is_empty() {
        let _ = writeln!(msg, "{}:", count(artifacts.len(), "artifact"));
        for (f, name, _) in &artifacts {
            let _ = writeln!(msg, "  {name}: {}: {:#}", f.item.url, f.error);
        }
        let files: Vec<&str> = artifacts.iter().map(|a| a.2).collect();
        let dir = match &opts.artifact_dir {
            Some(d) => format!("put {} in {}", join_and(&files), d.display()),
            None => format!(
                "put {} in a folder and pass --artifact-dir DIR",
                join_and(&files)
            ),
        };
        let _ = writeln!(
            msg,
            "Download them on a machine that can, {dir} (digests are still checked)"
        );
    }
    msg.trim_end().to_owned()
}

/// "1 package could not be fetched", "2 artifacts could not be fetched".
fn count(n: usize, noun: &str) -> String {
    let s = if n == 1 { "" } else { "s" };
    format!("{n} {noun}{s} could not be fetched")
}

/// "a", "a and b", "a, b and c".
fn join_and(words: &[&str]) -> String {
    match words {
        [] => String::new(),
        [one] => (*one).to_owned(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod testserver;
