//! Downloads over http(s) and file:// URLs, with retries for transient errors.
//!
//! This is transport only: it knows nothing of digests or caches (see
//! `fetch`) and nothing of Debian (see `repo`). A download streams into a
//! writer that the caller provides; when a try fails half way, the caller's
//! `reset` callback rewinds the destination before the next try.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};
use ureq::unversioned::resolver::{DefaultResolver, ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::{DefaultConnector, NextTimeout};

/// How many times a transient failure is tried in all (issue #2: 3 tries).
pub const TRIES: u32 = 3;
/// Backoff before the second try; doubled for each further try.
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
/// Connecting should be quick on a reachable mirror; a hung connect is retried.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// Copy buffer; large enough that progress callbacks are not too chatty.
const BUF: usize = 256 * 1024;
/// How long a resolved host name is reused; mirrors' DNS TTLs are minutes.
const DNS_CACHE_TTL: Duration = Duration::from_secs(60);

/// A shareable HTTP client (cheap to clone; connections are pooled).
#[derive(Clone)]
pub struct Http {
    agent: ureq::Agent,
}

/// A failure that is worth another try (network trouble, 5xx, 429), or not.
#[derive(Debug)]
enum Failure {
    Transient(anyhow::Error),
    Permanent(anyhow::Error),
}

impl Default for Http {
    fn default() -> Self {
        Self::new()
    }
}

impl Http {
    pub fn new() -> Self {
        let config = ureq::Agent::config_builder()
            .timeout_connect(Some(CONNECT_TIMEOUT))
            .user_agent(concat!("craton/", env!("CARGO_PKG_VERSION")))
            .build();
        Self {
            agent: ureq::Agent::with_parts(
                config,
                DefaultConnector::default(),
                CachingResolver::default(),
            ),
        }
    }

    /// Downloads `url` into memory.
    pub fn get(&self, url: &str) -> Result<Vec<u8>> {
        let mut buf = Vec::new();
        self.download(url, &mut buf, |b| b.clear(), |_| {})?;
        Ok(buf)
    }

    /// Downloads `url` into `out`, calling `progress` with each chunk's size.
    /// Before a retry, `reset(out)` must empty the destination.
    pub fn download<W: Write>(
        &self,
        url: &str,
        out: &mut W,
        mut reset: impl FnMut(&mut W),
        mut progress: impl FnMut(u64),
    ) -> Result<()> {
        let mut backoff = FIRST_BACKOFF;
        for attempt in 1..=TRIES {
            match self.try_download(url, out, &mut progress) {
                Ok(()) => return Ok(()),
                Err(Failure::Permanent(e)) => return Err(e),
                Err(Failure::Transient(e)) if attempt == TRIES => {
                    return Err(e.context(format!("giving up after {TRIES} tries")));
                }
                Err(Failure::Transient(e)) => {
                    tracing::warn!("try {attempt} of {url} failed: {e:#}; retrying");
                    reset(out);
                    std::thread::sleep(backoff);
                    backoff *= 2;
                }
            }
        }
        unreachable!("the loop returns on the last try")
    }

    fn try_download<W: Write>(
        &self,
        url: &str,
        out: &mut W,
        progress: &mut impl FnMut(u64),
    ) -> Result<(), Failure> {
        if let Some(path) = url.strip_prefix("file://") {
            let f = std::fs::File::open(path)
                .with_context(|| format!("opening {url}"))
                .map_err(Failure::Permanent)?;
            return copy(f, out, progress)
                .with_context(|| format!("reading {url}"))
                .map_err(Failure::Permanent);
        }
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(Failure::Permanent(anyhow!(
                "unsupported URL scheme in {url} (expected http://, https:// or file://)"
            )));
        }
        let mut resp = self.agent.get(url).call().map_err(|e| classify(url, e))?;
        copy(resp.body_mut().as_reader(), out, progress)
            .with_context(|| format!("downloading {url}"))
            .map_err(Failure::Transient)
    }
}

/// ureq 3 resolves the host name before every request, even when it then
/// reuses a pooled connection: parallel downloads of a few hundred .debs make
/// as many DNS queries, and each one a resolver drops costs glibc's 5 s
/// timeout (measured: 89 trixie packages, 8 jobs, 10.4 s before, 0.4 s with
/// this cache). Addresses are kept per scheme and authority for a while.
#[derive(Debug, Default)]
struct CachingResolver {
    inner: DefaultResolver,
    cache: Mutex<HashMap<String, (Instant, ResolvedSocketAddrs)>>,
}

impl Resolver for CachingResolver {
    fn resolve(
        &self,
        uri: &ureq::http::Uri,
        config: &ureq::config::Config,
        timeout: NextTimeout,
    ) -> Result<ResolvedSocketAddrs, ureq::Error> {
        let key = format!(
            "{}://{}",
            uri.scheme_str().unwrap_or_default(),
            uri.authority().map(|a| a.as_str()).unwrap_or_default()
        );
        let cached = self
            .cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
            .cloned();
        if let Some((_, addrs)) = cached.filter(|(at, _)| at.elapsed() < DNS_CACHE_TTL) {
            return Ok(addrs);
        }
        let addrs = self.inner.resolve(uri, config, timeout)?;
        self.cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key, (Instant::now(), addrs.clone()));
        Ok(addrs)
    }
}

fn classify(url: &str, e: ureq::Error) -> Failure {
    match e {
        ureq::Error::StatusCode(code) if code == 429 || code >= 500 => {
            Failure::Transient(anyhow!("GET {url}: HTTP {code}"))
        }
        ureq::Error::StatusCode(code) => Failure::Permanent(anyhow!("GET {url}: HTTP {code}")),
        ureq::Error::Io(_)
        | ureq::Error::Timeout(_)
        | ureq::Error::ConnectionFailed
        | ureq::Error::HostNotFound => Failure::Transient(anyhow!("GET {url}: {e}")),
        other => Failure::Permanent(anyhow!("GET {url}: {other}")),
    }
}

fn copy(mut r: impl Read, w: &mut impl Write, progress: &mut impl FnMut(u64)) -> Result<()> {
    let mut buf = vec![0u8; BUF];
    loop {
        let n = match r.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e.into()),
        };
        w.write_all(&buf[..n])?;
        progress(n as u64);
    }
    w.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_urls_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x");
        std::fs::write(&p, b"hello").unwrap();
        let got = Http::new().get(&format!("file://{}", p.display())).unwrap();
        assert_eq!(got, b"hello");
    }

    #[test]
    fn missing_file_is_permanent_and_named() {
        let err = Http::new().get("file:///nonexistent/x").unwrap_err();
        assert!(format!("{err:#}").contains("file:///nonexistent/x"));
    }
}
