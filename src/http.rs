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

/// How long a request may wait for one read from the server (headers or
/// body): a mirror that stalls after its headers fails this try instead of
/// hanging the build.
const READ_TIMEOUT: Duration = Duration::from_secs(60);
/// The most one request may take in all: the largest .deb (a kernel's
/// modules, ~100 MB) over a slow link fits in it.
const REQUEST_DEADLINE: Duration = Duration::from_secs(30 * 60);
/// The bound for a body whose size no signed metadata gives (an artifact
/// pinned by digest only): past it, the download stops.
pub const UNSIZED_LIMIT: u64 = 4 << 30;

/// The timeouts of a client ([`Http::with_timeouts`] for tests).
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    pub connect: Duration,
    pub read: Duration,
    pub request: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            connect: CONNECT_TIMEOUT,
            read: READ_TIMEOUT,
            request: REQUEST_DEADLINE,
        }
    }
}

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
        Self::with_timeouts(Timeouts::default())
    }

    /// A client with other timeouts than craton's (tests that must not
    /// wait a minute for a stalled server).
    pub fn with_timeouts(t: Timeouts) -> Self {
        // No Accept-Encoding (ureq is built without its decoders too): a
        // body is what the signed metadata describes, never something
        // decoded on the way whose size nothing bounds (a gzip bomb).
        let config = ureq::Agent::config_builder()
            .timeout_connect(Some(t.connect))
            .timeout_per_read(Some(t.read))
            .timeout_per_call(Some(t.request))
            .accept_encoding(ureq::config::AutoHeaderValue::None)
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

    /// Downloads `url` into memory, at most `limit` bytes.
    pub fn get(&self, url: &str, limit: u64) -> Result<Vec<u8>> {
        let mut buf = Vec::new();
        self.download(url, &mut buf, limit, |b| b.clear(), |_| {})?;
        Ok(buf)
    }

    /// Downloads `url` into `out`, calling `progress` with each chunk's size;
    /// a body of more than `limit` bytes (the size signed metadata gives, or
    /// a fixed bound) fails before more than that is written. Before a
    /// retry, `reset(out)` must empty the destination.
    pub fn download<W: Write>(
        &self,
        url: &str,
        out: &mut W,
        limit: u64,
        mut reset: impl FnMut(&mut W),
        mut progress: impl FnMut(u64),
    ) -> Result<()> {
        let mut backoff = FIRST_BACKOFF;
        for attempt in 1..=TRIES {
            match self.try_download(url, out, limit, &mut progress) {
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
        limit: u64,
        progress: &mut impl FnMut(u64),
    ) -> Result<(), Failure> {
        if let Some(path) = url.strip_prefix("file://") {
            let f = std::fs::File::open(path)
                .with_context(|| format!("opening {url}"))
                .map_err(Failure::Permanent)?;
            return copy(f, out, limit, progress)
                .map_err(|e| e.into_failure(url, "reading"))
                .map_err(|f| match f {
                    Failure::Transient(e) | Failure::Permanent(e) => Failure::Permanent(e),
                });
        }
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(Failure::Permanent(anyhow!(
                "unsupported URL scheme in {url} (expected http://, https:// or file://)"
            )));
        }
        let mut resp = self.agent.get(url).call().map_err(|e| classify(url, e))?;
        if let Some(enc) = resp.headers().get("content-encoding") {
            let enc = String::from_utf8_lossy(enc.as_bytes()).into_owned();
            if !enc.eq_ignore_ascii_case("identity") {
                return Err(Failure::Permanent(anyhow!(
                    "GET {url}: the server sent Content-Encoding: {enc}, which craton did not \
                     ask for and does not decode"
                )));
            }
        }
        let announced = resp.body().content_length();
        if let Some(n) = announced.filter(|&n| n > limit) {
            return Err(Failure::Permanent(anyhow!(
                "GET {url}: the server announces {n} bytes, more than the {limit} expected"
            )));
        }
        // ureq's own body limit is 10 MB by default; craton's is `limit`.
        let body = resp
            .body_mut()
            .with_config()
            .limit(limit.saturating_add(1))
            .reader();
        copy(body, out, limit, progress).map_err(|e| e.into_failure(url, "downloading"))
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

/// Why a copy stopped: the body was larger than its bound (permanent: the
/// mirror serves something else than the signed metadata says), the
/// transfer failed (worth another try), or the destination could not take
/// the bytes (a full or broken disk here: another try would fail the same).
enum CopyError {
    TooLarge(u64),
    Io(anyhow::Error),
    Write(anyhow::Error),
}

impl CopyError {
    fn into_failure(self, url: &str, doing: &str) -> Failure {
        match self {
            Self::TooLarge(limit) => Failure::Permanent(anyhow!(
                "{doing} {url}: more than the {limit} bytes expected; stopped there"
            )),
            Self::Io(e) => Failure::Transient(e.context(format!("{doing} {url}"))),
            Self::Write(e) => Failure::Permanent(e.context(format!("{doing} {url}"))),
        }
    }
}

fn copy(
    mut r: impl Read,
    w: &mut impl Write,
    limit: u64,
    progress: &mut impl FnMut(u64),
) -> Result<(), CopyError> {
    let mut buf = vec![0u8; BUF];
    let mut total = 0u64;
    loop {
        let n = match r.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(CopyError::Io(e.into())),
        };
        total += n as u64;
        if total > limit {
            return Err(CopyError::TooLarge(limit));
        }
        w.write_all(&buf[..n])
            .map_err(|e| CopyError::Write(e.into()))?;
        progress(n as u64);
    }
    w.flush().map_err(|e| CopyError::Write(e.into()))?;
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
        let got = Http::new()
            .get(&format!("file://{}", p.display()), 5)
            .unwrap();
        assert_eq!(got, b"hello");
    }

    /// A loopback server that answers every connection with `reply` and
    /// then holds it open for `hold` (a stalled mirror); its URL.
    fn serve(reply: Vec<u8>, hold: Duration) -> String {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { return };
                let reply = reply.clone();
                std::thread::spawn(move || {
                    // The request's head, then the reply.
                    let mut head = Vec::new();
                    let mut b = [0u8; 1];
                    while !head.ends_with(b"\r\n\r\n") && conn.read(&mut b).is_ok_and(|n| n == 1) {
                        head.push(b[0]);
                    }
                    let _ = conn.write_all(&reply);
                    std::thread::sleep(hold);
                });
            }
        });
        format!("http://{addr}/x")
    }

    fn quick() -> Http {
        Http::with_timeouts(Timeouts {
            connect: Duration::from_secs(5),
            read: Duration::from_millis(500),
            request: Duration::from_secs(5),
        })
    }

    /// Issue #11: with a connect timeout only, a mirror that stalls after
    /// its headers hung craton for good. Now each read times out (and the
    /// tries with it).
    #[test]
    fn a_server_that_stalls_after_its_headers_times_out() {
        let url = serve(
            b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly ten b".to_vec(),
            Duration::from_secs(120),
        );
        let start = Instant::now();
        let err = quick().get(&url, 100).unwrap_err();
        let msg = format!("{err:#}");
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "took {:?}",
            start.elapsed()
        );
        assert!(
            msg.contains("giving up after 3 tries") && msg.contains(&url),
            "{msg}"
        );
    }

    /// Issue #11: ureq decoded Content-Encoding: gzip transparently, so a
    /// small body could become any size (a gzip bomb) before any bound.
    #[test]
    fn a_content_encoded_body_is_refused() {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        gz.write_all(&vec![0u8; 1 << 20]).unwrap();
        let gz = gz.finish().unwrap();
        let mut reply = format!(
            "HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: {}\r\n\r\n",
            gz.len()
        )
        .into_bytes();
        reply.extend_from_slice(&gz);
        let url = serve(reply, Duration::ZERO);
        let err = quick().get(&url, 1 << 30).unwrap_err();
        assert!(
            format!("{err:#}").contains("Content-Encoding: gzip"),
            "{err:#}"
        );
    }

    /// Issue #11: a .deb's size was checked only after the whole body was
    /// written. A body larger than its bound now stops at the bound, whether
    /// the server announces it or not.
    #[test]
    fn a_body_larger_than_its_bound_stops_there() {
        let big = vec![b'x'; 1 << 20];
        let mut announced =
            format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", big.len()).into_bytes();
        announced.extend_from_slice(&big);
        let err = quick()
            .get(&serve(announced, Duration::ZERO), 1000)
            .unwrap_err();
        assert!(
            format!("{err:#}").contains("more than the 1000 expected"),
            "{err:#}"
        );
        // No length: the body ends when the server closes.
        let mut unannounced = b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n".to_vec();
        unannounced.extend_from_slice(&big);
        let mut written = Vec::new();
        let err = quick()
            .download(
                &serve(unannounced, Duration::ZERO),
                &mut written,
                1000,
                |w| w.clear(),
                |_| {},
            )
            .unwrap_err();
        assert!(
            format!("{err:#}").contains("more than the 1000 bytes expected"),
            "{err:#}"
        );
        assert!(written.len() <= 1000, "{} bytes written", written.len());
    }

    #[test]
    fn missing_file_is_permanent_and_named() {
        let err = Http::new().get("file:///nonexistent/x", 1).unwrap_err();
        assert!(format!("{err:#}").contains("file:///nonexistent/x"));
    }
}
