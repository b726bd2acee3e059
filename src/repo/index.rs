//! Loading a repository's indexes: InRelease (verified), then each
//! component's Packages index (checked against Release), parsed.
//!
//! InRelease is fetched fresh on every run (it carries Valid-Until and new
//! versions); a Packages index is kept in the content-addressed cache under
//! the SHA-256 that the verified Release lists, so an unchanged suite costs
//! one small download. Which mirror serves a repository is decided by
//! `mirror`, not here.

use std::sync::Arc;

use anyhow::{Context, Result, anyhow, bail};

use super::keyring::Keyring;
use super::packages::{PackageRecord, parse_packages};
use super::relations::NATIVE_ARCH;
use super::release::{ARCH_ALL_IN_PACKAGES, IndexFile, Release, verify_inrelease};
use super::universe::Universe;
use crate::cache::Cache;
use crate::files::read_bounded;
use crate::http::Http;

/// Compressed forms of a Packages index, most preferred first (xz is the
/// smallest; Debian publishes all three, other archives may not).
/// Upper bound of one decompressed Packages index: the largest one, main
/// for amd64, is 50 MB (bookworm's, measured on this host's apt lists);
/// twenty times that is a broken or hostile file, not an archive, and must
/// not exhaust memory. The compressed file's size and
/// digest are checked against Release before this.
const MAX_INDEX_BYTES: u64 = 1 << 30;
/// The most an InRelease may be: nothing signed gives its size, and
/// Debian's largest (sid's, with every index's three digests) is under
/// 1 MB; the bound keeps a hostile mirror from filling memory.
const INRELEASE_LIMIT: u64 = 16 << 20;

const PACKAGES_FORMATS: &[(&str, Compression)] = &[
    (".xz", Compression::Xz),
    (".gz", Compression::Gzip),
    ("", Compression::None),
];

#[derive(Debug, Clone, Copy)]
enum Compression {
    Xz,
    Gzip,
    None,
}

/// One suite of one repository, with where to get it and whom to trust.
#[derive(Debug, Clone)]
pub struct SuiteSource {
    /// The profile's repository name (recorded in the lock).
    pub repository: String,
    pub suite: String,
    /// Mirror root, e.g. `http://<host>/debian`, without a trailing slash.
    pub base_url: String,
    pub components: Vec<String>,
    pub keyring: Keyring,
}

impl SuiteSource {
    /// `repository/suite`, as messages name it.
    pub fn name(&self) -> String {
        format!("{}/{}", self.repository, self.suite)
    }

    fn dists_url(&self) -> String {
        format!(
            "{}/dists/{}",
            self.base_url.trim_end_matches('/'),
            self.suite
        )
    }
}

/// Downloads and verifies a suite's InRelease and Packages indexes and
/// returns their amd64 and arch-all records.
pub fn load_suite(http: &Http, cache: &Cache, src: &SuiteSource) -> Result<Vec<PackageRecord>> {
    load_suite_dated(http, cache, src).map(|(records, _)| records)
}

/// [`load_suite`], with the InRelease's Date (Unix seconds) when it has one.
fn load_suite_dated(
    http: &Http,
    cache: &Cache,
    src: &SuiteSource,
) -> Result<(Vec<PackageRecord>, Option<i64>)> {
    let what = src.name();
    let url = format!("{}/InRelease", src.dists_url());
    let bytes = http
        .get(&url, INRELEASE_LIMIT)
        .with_context(|| format!("downloading {url}"))?;
    let release = verify_inrelease(&bytes, &src.keyring, &what)?;
    check_suite(&release, src, &url)?;
    let repository: Arc<str> = Arc::from(src.repository.as_str());
    let suite: Arc<str> = Arc::from(src.suite.as_str());
    let mut records = Vec::new();
    for component in &src.components {
        let (path, entry, compression) =
            pick_index(&release, component, NATIVE_ARCH).ok_or_else(|| {
                anyhow!(
                    "the Release of {what} lists no binary-{NATIVE_ARCH} Packages index for \
                     component {component} (its components: {})",
                    release.components.join(" ")
                )
            })?;
        let mut indexes = vec![(path, entry, compression)];
        // Debian sets `No-Support-for-Architecture-all: Packages`: arch-all
        // packages are listed in binary-amd64/Packages too, so binary-all is
        // not needed there. Archives that list `all` in Architectures without
        // that promise may keep them only in binary-all, which apt then reads
        // as well; so do we. (The security archive lists no `all` and its
        // binary-all index is stale: apt and we ignore it.)
        let arch_all_apart = release.architectures.iter().any(|a| a == "all")
            && release.no_support_for_architecture_all.as_deref() != Some(ARCH_ALL_IN_PACKAGES);
        if arch_all_apart {
            indexes.extend(pick_index(&release, component, "all"));
        }
        for (path, entry, compression) in indexes {
            let data = fetch_index(http, cache, src, &release, &path, entry)?;
            let text = decompress(&data, compression)
                .with_context(|| format!("decompressing {path} of {what}"))?;
            let recs = parse_packages(&text, &repository, &suite)
                .with_context(|| format!("parsing {path} of {what}"))?;
            records.extend(recs);
        }
    }
    Ok((records, release.date))
}

/// What [`load_all`] loaded: the universe, and each suite's InRelease Date
/// (repository, suite, Unix seconds) for those that have one.
pub struct Loaded {
    pub universe: Universe,
    pub dates: Vec<(String, String, i64)>,
}

/// Loads every suite (in parallel) and builds the universe. Records keep the
/// order of `sources`, so that ties between equal versions are stable.
pub fn load_all(http: &Http, cache: &Cache, sources: &[SuiteSource]) -> Result<Loaded> {
    type Res = Result<(Vec<PackageRecord>, Option<i64>)>;
    let results: Vec<Res> = std::thread::scope(|s| {
        let handles: Vec<_> = sources
            .iter()
            .map(|src| s.spawn(move || load_suite_dated(http, cache, src)))
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(anyhow!("a suite loader panicked")))
            })
            .collect()
    });
    let mut all = Vec::new();
    let mut dates = Vec::new();
    for (src, res) in sources.iter().zip(results) {
        let (recs, date) = res.with_context(|| format!("loading {}", src.name()))?;
        tracing::info!("{}: {} packages", src.name(), recs.len());
        all.extend(recs);
        if let Some(d) = date {
            dates.push((src.repository.clone(), src.suite.clone(), d));
        }
    }
    Ok(Loaded {
        universe: Universe::new(all),
        dates,
    })
}

/// A Release for another suite than asked for could downgrade the system
/// (an old, validly signed file); apt warns, we refuse.
fn check_suite(release: &Release, src: &SuiteSource, url: &str) -> Result<()> {
    let wanted = src.suite.as_str();
    if release.suite.as_deref() == Some(wanted) || release.codename.as_deref() == Some(wanted) {
        return Ok(());
    }
    bail!(
        "{url} is for suite {} (codename {}), not {wanted}",
        release.suite.as_deref().unwrap_or("?"),
        release.codename.as_deref().unwrap_or("?")
    )
}

/// The preferred listed form of `<component>/binary-<arch>/Packages`.
fn pick_index(
    release: &Release,
    component: &str,
    arch: &str,
) -> Option<(String, IndexFile, Compression)> {
    PACKAGES_FORMATS.iter().find_map(|(ext, c)| {
        let path = format!("{component}/binary-{arch}/Packages{ext}");
        release.sha256.get(&path).map(|e| (path, *e, *c))
    })
}

/// The index's bytes, from the cache or downloaded, size and digest checked.
fn fetch_index(
    http: &Http,
    cache: &Cache,
    src: &SuiteSource,
    release: &Release,
    path: &str,
    entry: IndexFile,
) -> Result<Vec<u8>> {
    if cache.contains(&entry.sha256) {
        let p = cache.path_of(&entry.sha256);
        let data = std::fs::read(&p).with_context(|| format!("reading {}", p.display()))?;
        // By content, not by name: the signed Release gives the digest.
        if data.len() as u64 == entry.size && crate::digest::Sha256::of(&data) == entry.sha256 {
            return Ok(data);
        }
        tracing::warn!(
            "{} does not match its digest; downloading again",
            p.display()
        );
        std::fs::remove_file(&p).with_context(|| format!("removing {}", p.display()))?;
    }
    let base = src.dists_url();
    let plain = format!("{base}/{path}");
    let data = if release.acquire_by_hash {
        // by-hash URLs stay valid while the mirror syncs a new Release.
        let dir = path.rsplit_once('/').map_or("", |(d, _)| d);
        let by_hash = format!("{base}/{dir}/by-hash/SHA256/{}", entry.sha256);
        match download_checked(http, cache, &by_hash, entry) {
            Ok(d) => return Ok(d),
            Err(e) => {
                tracing::warn!("{e:#}; trying {plain}");
                download_checked(http, cache, &plain, entry)?
            }
        }
    } else {
        download_checked(http, cache, &plain, entry)?
    };
    Ok(data)
}

fn download_checked(http: &Http, cache: &Cache, url: &str, entry: IndexFile) -> Result<Vec<u8>> {
    let data = http
        .get(url, entry.size)
        .with_context(|| format!("downloading {url}"))?;
    if data.len() as u64 != entry.size {
        bail!(
            "size mismatch for {url}: the Release says {} bytes, got {}",
            entry.size,
            data.len()
        );
    }
    cache.insert_bytes(&data, &entry.sha256, url)?;
    Ok(data)
}

fn decompress(data: &[u8], c: Compression) -> Result<String> {
    let what = "the decompressed Packages index";
    let out = match c {
        Compression::Xz => read_bounded(xz2::read::XzDecoder::new(data), MAX_INDEX_BYTES, what)?,
        Compression::Gzip => {
            read_bounded(flate2::read::GzDecoder::new(data), MAX_INDEX_BYTES, what)?
        }
        Compression::None => read_bounded(data, MAX_INDEX_BYTES, what)?,
    };
    String::from_utf8(out)
        .map_err(|e| anyhow!("not UTF-8 at byte {}", e.utf8_error().valid_up_to()))
}

#[cfg(test)]
#[path = "index_tests.rs"]
mod tests;
