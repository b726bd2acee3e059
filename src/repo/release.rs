//! InRelease: verify the OpenPGP cleartext signature, parse the Release
//! fields and the SHA256 list of index files.
//!
//! Trust follows apt: every signature is matched by issuer against the
//! primary keys and signing subkeys of the keyring, and at least one good
//! signature by a trusted key is required; signatures by unknown keys are
//! ignored when a good one exists. Which index to take from the SHA256 list,
//! and whether the suite is the one asked for, is `index`'s business.

use std::collections::BTreeMap;

use anyhow::{Context, Result, anyhow, bail};
use pgp::composed::CleartextSignedMessage;
use pgp::crypto::hash::HashAlgorithm;
use pgp::packet::Signature;
use pgp::types::KeyDetails;

use super::date;
use super::deb822;
use super::keyring::{Keyring, Signer};
use crate::digest::Sha256;

/// RFC 9580 7.1: the armor line that opens a cleartext-signed message.
const CLEARTEXT_BEGIN: &str = "-----BEGIN PGP SIGNED MESSAGE-----";
/// RFC 9580 6.2: the armor tail that closes the signature block.
const SIGNATURE_END: &str = "-----END PGP SIGNATURE-----";
/// The value of `No-Support-for-Architecture-all` that tells clients the
/// arch-all packages are listed in every binary-<arch>/Packages index
/// (apt's documentation of the Release file format).
pub const ARCH_ALL_IN_PACKAGES: &str = "Packages";

/// One entry of the Release SHA256 list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexFile {
    pub size: u64,
    pub sha256: Sha256,
}

/// The verified header paragraph of a Release file.
#[derive(Debug, Clone, Default)]
pub struct Release {
    pub origin: Option<String>,
    pub label: Option<String>,
    pub suite: Option<String>,
    pub codename: Option<String>,
    /// `Date` in Unix seconds.
    pub date: Option<i64>,
    /// `Valid-Until` in Unix seconds.
    pub valid_until: Option<i64>,
    pub architectures: Vec<String>,
    pub components: Vec<String>,
    pub no_support_for_architecture_all: Option<String>,
    /// `Acquire-By-Hash: yes`: indexes are also served under
    /// `<dir>/by-hash/SHA256/<hex>`, immune to mirror updates mid-download.
    pub acquire_by_hash: bool,
    /// Path relative to dists/<suite>/ -> size and digest.
    pub sha256: BTreeMap<String, IndexFile>,
    /// Fingerprints (upper-case hex) of the primary keys whose signature
    /// verified.
    pub signed_by: Vec<String>,
}

/// How far an InRelease's Date may be ahead of the clock.
const MAX_FUTURE_SECS: i64 = 600;

/// Verifies an InRelease file against `keyring` and parses it. `what`
/// names the suite in messages (e.g. "debian/trixie").
pub fn verify_inrelease(bytes: &[u8], keyring: &Keyring, what: &str) -> Result<Release> {
    verify_inrelease_at(bytes, keyring, what, date::now())
}

/// [`verify_inrelease`] at a given time (Unix seconds), for Valid-Until.
pub fn verify_inrelease_at(
    bytes: &[u8],
    keyring: &Keyring,
    what: &str,
    now: i64,
) -> Result<Release> {
    let (signed_text, signed_by) = verify_signatures(bytes, keyring, what, now)?;
    let mut release =
        parse_release(&signed_text).with_context(|| format!("parsing InRelease of {what}"))?;
    // A Date ahead of the clock: a file signed now for a later replay, or
    // a clock that is wrong, which Valid-Until's check would then trust
    // too. apt refuses such a Release as "not valid yet" (Acquire::
    // Check-Date); the allowance is for the clocks of fresh CI machines.
    if let Some(d) = release.date
        && d > now + MAX_FUTURE_SECS
    {
        bail!(
            "InRelease of {what} is not valid yet: its Date is {} seconds ahead of this \
                 machine's clock (a wrong clock, or a file made to be replayed later)",
            d - now
        );
    }
    if let Some(until) = release.valid_until
        && now > until
    {
        bail!(
            "InRelease of {what} expired: Valid-Until is {} seconds in the past \
                 (a stale mirror or a replayed file)",
            now - until
        );
    }
    release.signed_by = signed_by;
    Ok(release)
}

/// Checks the cleartext signature; returns the signed text and the primary
/// fingerprints of the good signers.
fn verify_signatures(
    bytes: &[u8],
    keyring: &Keyring,
    what: &str,
    now: i64,
) -> Result<(String, Vec<String>)> {
    let not_signed = || {
        anyhow!(
            "InRelease of {what} is not an OpenPGP cleartext-signed message (unsigned or garbled)"
        )
    };
    let text = std::str::from_utf8(bytes).map_err(|_| not_signed())?;
    // apt refuses data around the signed message (it once let unsigned
    // content through there); so do we.
    let trimmed = text.trim();
    if !trimmed.starts_with(CLEARTEXT_BEGIN) || !trimmed.ends_with(SIGNATURE_END) {
        return Err(not_signed());
    }
    let (msg, _) = CleartextSignedMessage::from_string(trimmed)
        .map_err(|e| not_signed().context(e.to_string()))?;
    if msg.signatures().is_empty() {
        return Err(not_signed());
    }
    let signed_text = msg.signed_text();
    let mut good = Vec::new();
    let mut bad = Vec::new();
    let mut unknown = Vec::new();
    let mut expired = Vec::new();
    for sig in msg.signatures() {
        let candidates: Vec<Signer<'_>> = keyring.signers().filter(|s| issued_by(sig, s)).collect();
        if candidates.is_empty() {
            unknown.push(issuer_name(sig));
            continue;
        }
        if let Some(weak) = weak_hash(sig) {
            bad.push(format!("{} (weak digest {weak:?})", issuer_name(sig)));
            continue;
        }
        match candidates
            .iter()
            .find(|s| verify_with(sig, s, signed_text.as_bytes()).is_ok())
        {
            // gpgv reports EXPKEYSIG for these, and apt does not trust them.
            Some(s) if s.expires_at().is_some_and(|t| t < now) => {
                expired.push(format!("{:X}", s.fingerprint()));
            }
            Some(s) => good.push(format!("{:X}", s.primary().fingerprint())),
            None => bad.push(
                candidates
                    .iter()
                    .map(|s| format!("{:X}", s.fingerprint()))
                    .collect::<Vec<_>>()
                    .join("/"),
            ),
        }
    }
    if !good.is_empty() {
        good.dedup();
        return Ok((signed_text, good));
    }
    match bad.len() {
        0 => {}
        1 => bail!(
            "InRelease of {what}: signature by key {} does not verify (file tampered?)",
            bad[0]
        ),
        _ => bail!(
            "InRelease of {what}: signatures by keys {} do not verify (file tampered?)",
            bad.join(", ")
        ),
    }
    if !expired.is_empty() {
        bail!(
            "InRelease of {what} is signed only by expired key(s) {}; \
             a newer keyring is needed",
            expired.join(", ")
        );
    }
    bail!(
        "InRelease of {what} is signed by unknown key(s) {}; trusted keys: {}",
        unknown.join(", "),
        keyring.fingerprints().join(", ")
    )
}

/// True when the signature names this signer (by key ID or fingerprint), or
/// names no issuer at all (then every key is worth a try, as RFC 9580 allows).
fn issued_by(sig: &Signature, s: &Signer<'_>) -> bool {
    let ids = sig.issuer_key_id();
    let fps = sig.issuer_fingerprint();
    (ids.is_empty() && fps.is_empty())
        || ids.iter().any(|id| **id == s.key_id())
        || fps.iter().any(|fp| **fp == s.fingerprint())
}

fn verify_with(sig: &Signature, s: &Signer<'_>, data: &[u8]) -> pgp::errors::Result<()> {
    match s {
        Signer::Primary(k) => sig.verify(*k, data),
        Signer::Subkey { subkey, .. } => sig.verify(*subkey, data),
    }
}

/// The issuer as printed in messages: fingerprint if the signature has one.
fn issuer_name(sig: &Signature) -> String {
    if let Some(fp) = sig.issuer_fingerprint().first() {
        return format!("{fp:X}");
    }
    match sig.issuer_key_id().first() {
        Some(id) => id.to_string().to_uppercase(),
        None => "<no issuer>".to_owned(),
    }
}

/// apt treats MD5, SHA-1 and RIPEMD-160 signatures as untrusted (apt 2.x
/// "weak digest"); a signature made with one counts as bad.
fn weak_hash(sig: &Signature) -> Option<HashAlgorithm> {
    sig.hash_alg().filter(|h| {
        matches!(
            h,
            HashAlgorithm::Md5 | HashAlgorithm::Sha1 | HashAlgorithm::Ripemd160
        )
    })
}

/// Parses the (already verified) text of a Release file.
pub fn parse_release(text: &str) -> Result<Release> {
    let p = deb822::paragraphs(text)
        .next()
        .ok_or_else(|| anyhow!("empty Release file"))??;
    let words = |f: &str| -> Vec<String> {
        p.get(f)
            .map(|v| v.split_whitespace().map(str::to_owned).collect())
            .unwrap_or_default()
    };
    let date_field = |f: &str| -> Result<Option<i64>> {
        p.get(f)
            .map(|v| date::parse_rfc2822(v).with_context(|| format!("field {f}")))
            .transpose()
    };
    let mut sha256 = BTreeMap::new();
    for line in p.get("SHA256").unwrap_or("").lines() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let parts: Vec<&str> = line.split_whitespace().collect();
        let [hash, size, path] = parts[..] else {
            bail!("field SHA256: expected `hash size path`, got {line:?}");
        };
        let entry = IndexFile {
            size: size
                .parse()
                .with_context(|| format!("field SHA256: size of {path}: {size:?}"))?,
            sha256: hash
                .parse()
                .with_context(|| format!("field SHA256: digest of {path}"))?,
        };
        sha256.insert(path.to_owned(), entry);
    }
    Ok(Release {
        origin: p.get("Origin").map(str::to_owned),
        label: p.get("Label").map(str::to_owned),
        suite: p.get("Suite").map(str::to_owned),
        codename: p.get("Codename").map(str::to_owned),
        date: date_field("Date")?,
        valid_until: date_field("Valid-Until")?,
        architectures: words("Architectures"),
        components: words("Components"),
        no_support_for_architecture_all: p
            .get("No-Support-for-Architecture-all")
            .map(str::to_owned),
        acquire_by_hash: p.get("Acquire-By-Hash") == Some("yes"),
        sha256,
        signed_by: Vec::new(),
    })
}

#[cfg(test)]
#[path = "release_tests.rs"]
mod tests;
