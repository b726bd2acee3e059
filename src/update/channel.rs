//! Where an update comes from: a build's output folder, the path of its
//! manifest.json, or an http(s) URL of a served output folder (a channel).
//! Every one is read as a URL (file:// for the local ones) through craton's
//! HTTP client (`crate::http`, with its retries and size bounds), so a
//! channel and a folder behave the same. The manifest is trusted only
//! after its signature checks out against a key of the image.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};

use crate::error::bad_input;
use crate::http::Http;
use crate::manifest::{MANIFEST_FILE, Manifest, Output, SIGNATURE_FILE};
use crate::sign::PublicKey;

/// The largest manifest craton reads (a real one is a few KB).
const MANIFEST_LIMIT: u64 = 4 << 20;
/// An Ed25519 signature is 64 bytes; anything larger is not one.
const SIGNATURE_LIMIT: u64 = 1024;

/// A source of updates: the URL of its folder, ending in `/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Channel {
    base: String,
}

/// A manifest whose signature was checked, with its bytes and the key.
#[derive(Debug, Clone)]
pub struct SignedManifest {
    pub manifest: Manifest,
    pub bytes: Vec<u8>,
    /// The id of the key that signed it.
    pub key_id: String,
}

impl Channel {
    /// An http(s) URL, a folder, or a folder's manifest.json.
    pub fn parse(source: &str) -> Result<Channel> {
        if source.starts_with("http://") || source.starts_with("https://") {
            let base = match source.strip_suffix(MANIFEST_FILE) {
                Some(b) => b.to_owned(),
                None if source.ends_with('/') => source.to_owned(),
                None => format!("{source}/"),
            };
            return Ok(Channel { base });
        }
        let path = PathBuf::from(source);
        let dir = if path.join(MANIFEST_FILE).is_file() {
            path
        } else if path.file_name().is_some_and(|n| n == MANIFEST_FILE) && path.is_file() {
            path.parent().map(Path::to_owned).unwrap_or_default()
        } else {
            return Err(bad_input(format!(
                "{source}: not an output folder, a manifest.json or an http(s) URL"
            )));
        };
        let abs = std::fs::canonicalize(&dir)
            .map_err(|e| bad_input(format!("{}: {e}", dir.display())))?;
        Ok(Channel {
            base: format!("file://{}/", abs.display()),
        })
    }

    pub fn url(&self, file: &str) -> String {
        format!("{}{file}", self.base)
    }

    /// Fetches manifest.json and its signature and checks the signature
    /// against `keys`; a missing, bad or unknown signature is bad input.
    pub fn signed_manifest(&self, http: &Http, keys: &[PublicKey]) -> Result<SignedManifest> {
        let bytes = http
            .get(&self.url(MANIFEST_FILE), MANIFEST_LIMIT)
            .with_context(|| format!("fetching the manifest from {}", self.base))?;
        let sig = http
            .get(&self.url(SIGNATURE_FILE), SIGNATURE_LIMIT)
            .map_err(|e| {
                bad_input(format!(
                    "{}: no signature ({e:#}); craton installs signed updates only",
                    self.url(SIGNATURE_FILE)
                ))
            })?;
        let Some(key) = keys.iter().find(|k| k.verifies(&bytes, &sig)) else {
            return Err(bad_input(format!(
                "{}: the signature is not by a key this image trusts ({} key(s) in {}); \
                 nothing was written",
                self.url(SIGNATURE_FILE),
                keys.len(),
                crate::sign::IMAGE_KEYS_DIR
            )));
        };
        let manifest = Manifest::from_bytes(&bytes).map_err(|e| bad_input(format!("{e:#}")))?;
        Ok(SignedManifest {
            manifest,
            bytes,
            key_id: key.id()?,
        })
    }

    /// Streams an output file into `out`, at most its signed size; the
    /// caller checks the digest. `reset` empties `out` before a retry.
    pub fn download<W: Write>(
        &self,
        http: &Http,
        output: &Output,
        out: &mut W,
        reset: impl FnMut(&mut W),
        progress: impl FnMut(u64),
    ) -> Result<()> {
        http.download(&self.url(&output.file), out, output.size, reset, progress)
            .with_context(|| format!("downloading {}", self.url(&output.file)))
    }
}

/// The keys of the image (*.pem in `dir`), in name order.
pub fn trusted_keys(dir: &Path) -> Result<Vec<PublicKey>> {
    let mut paths: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(rd) => rd
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "pem"))
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(e).with_context(|| format!("reading {}", dir.display())),
    };
    paths.sort();
    let keys = paths
        .iter()
        .map(|p| PublicKey::read(p))
        .collect::<Result<Vec<_>>>()?;
    if keys.is_empty() {
        return Err(bad_input(format!(
            "{} holds no public key: this image was built without --key and takes no updates",
            dir.display()
        )));
    }
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_become_folder_urls() {
        let c = Channel::parse("http://127.0.0.1:8080/stable").unwrap();
        assert_eq!(
            c.url(MANIFEST_FILE),
            "http://127.0.0.1:8080/stable/manifest.json"
        );
        let c = Channel::parse("https://example.invalid/x/manifest.json").unwrap();
        assert_eq!(c.url("a"), "https://example.invalid/x/a");
        let dir = tempfile::tempdir().unwrap();
        let m = dir.path().join(MANIFEST_FILE);
        std::fs::write(&m, "{}").unwrap();
        let by_file = Channel::parse(&m.to_string_lossy()).unwrap();
        let by_dir = Channel::parse(&dir.path().to_string_lossy()).unwrap();
        assert_eq!(by_file, by_dir);
        assert!(by_dir.url("x").starts_with("file:///"));
        let err = Channel::parse("/nonexistent/place").unwrap_err();
        assert!(crate::error::is_bad_input(&err));
    }
}
