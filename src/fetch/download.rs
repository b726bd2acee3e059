//! Fetching one item into the cache: from the artifact directory when it
//! holds the file, else over the network. The bytes are hashed while they
//! are written to a temporary file in the cache, and the file is renamed into
//! place only when size and digest match; on any error the temporary file is
//! dropped, so nothing partial stays behind.

use std::cell::Cell;
use std::fs::File;
use std::io::{self, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};

use super::progress::Meter;
use super::{Cache, Item, Options, Origin};
use crate::digest::Sha256Writer;
use crate::http::Http;

/// Where a fetched item came from.
#[derive(Debug)]
pub(super) enum Source {
    Network { bytes: u64 },
    ArtifactDir,
}

/// A temporary file that hashes what is written to it.
struct HashingFile {
    file: File,
    hash: Sha256Writer,
}

impl HashingFile {
    /// Writes into the temporary file, hashing on the way.
    fn over(tmp: &crate::files::TempFile) -> Result<Self> {
        Ok(Self {
            file: tmp
                .as_file()
                .try_clone()
                .context("duplicating a file handle")?,
            hash: Sha256Writer::new(),
        })
    }
}

impl Write for HashingFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.write(buf)?;
        self.hash.write_all(&buf[..n])?;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

impl HashingFile {
    /// Empties the file and the hash before another try.
    fn reset(&mut self) -> io::Result<()> {
        self.hash = Sha256Writer::new();
        self.file.set_len(0)?;
        self.file.seek(SeekFrom::Start(0)).map(drop)
    }
}

/// Fetches `item` into `cache`.
pub(super) fn fetch_one(
    http: &Http,
    cache: &Cache,
    item: &Item,
    opts: &Options,
    meter: &Meter,
) -> Result<Source> {
    if let (Origin::Artifact { name, file_name }, Some(dir)) = (&item.origin, &opts.artifact_dir) {
        if let Some(path) = artifact_in_dir(dir, file_name, name) {
            tracing::debug!("{}: copying {}", item.label, path.display());
            copy_file(cache, item, &path)?;
            return Ok(Source::ArtifactDir);
        }
        return download(http, cache, item, meter).with_context(|| {
            format!(
                "{file_name} is not in the artifact directory {} either",
                dir.display()
            )
        });
    }
    download(http, cache, item, meter)
}

/// The artifact's file in `dir`: by its file name, else by its name.
fn artifact_in_dir(dir: &Path, file_name: &str, name: &str) -> Option<PathBuf> {
    [file_name, name]
        .iter()
        // A name with a slash or ".." would look outside the folder.
        .filter(|n| !n.is_empty() && !n.contains('/') && **n != "..")
        .map(|n| dir.join(n))
        .find(|p| p.is_file())
}

fn download(http: &Http, cache: &Cache, item: &Item, meter: &Meter) -> Result<Source> {
    tracing::debug!("{}: downloading {}", item.label, item.url);
    let start = Instant::now();
    let tmp = cache.temp_file()?;
    let mut out = HashingFile::over(&tmp)?;
    // `reset` cannot return an error to `Http::download`; keep the first one
    // and fail after the download rather than commit a file that still holds
    // bytes from the failed try.
    let mut reset_error = None;
    // Bytes of this item shown on the meter, taken back when a try is reset.
    let shown = Cell::new(0u64);
    // The signed index's size for a package; a fixed bound for an artifact
    // (pinned by digest, its size unknown until it is here).
    let limit = item.size.unwrap_or(crate::http::UNSIZED_LIMIT);
    let result = http.download(
        &item.url,
        &mut out,
        limit,
        |out| {
            meter.take_back(shown.take());
            if let Err(e) = out.reset() {
                reset_error.get_or_insert(e);
            }
        },
        |n| {
            meter.add_bytes(n);
            shown.set(shown.get() + n);
        },
    );
    // A write error names the file it could not write (a full cache).
    result.with_context(|| format!("into {}", tmp.path().display()))?;
    if let Some(e) = reset_error {
        return Err(e).with_context(|| format!("emptying {} for a retry", tmp.path().display()));
    }
    let bytes = out.hash.len();
    check_size(item, &item.url, bytes)?;
    cache.commit_hashed(tmp, &out.hash.finish(), &item.sha256, &item.url)?;
    tracing::debug!("{}: {bytes} bytes in {:?}", item.label, start.elapsed());
    Ok(Source::Network { bytes })
}

fn copy_file(cache: &Cache, item: &Item, path: &Path) -> Result<()> {
    let what = path.display().to_string();
    let mut src = File::open(path).with_context(|| format!("opening {what}"))?;
    let tmp = cache.temp_file()?;
    let mut out = HashingFile::over(&tmp)?;
    io::copy(&mut src, &mut out).with_context(|| format!("copying {what}"))?;
    check_size(item, &what, out.hash.len())?;
    cache.commit_hashed(tmp, &out.hash.finish(), &item.sha256, &what)?;
    Ok(())
}

/// A size mismatch is reported on its own because it says more than a digest
/// mismatch: a truncated download, or a lock that disagrees with its mirror.
fn check_size(item: &Item, what: &str, got: u64) -> Result<()> {
    match item.size {
        Some(want) if want != got => {
            bail!("size mismatch for {what}: expected {want} bytes, got {got}")
        }
        _ => Ok(()),
    }
}
