//! OpenPGP keyrings: the Debian archive keyring built into craton (the .asc
//! files from debian-archive-keyring in keys/), or keys from a path.
//!
//! A keyring only holds and checks keys: each key's self-signatures must
//! verify, and a subkey is kept as a signer only when its binding signature
//! verifies and grants the signing capability (RFC 9580 5.2.3.29). Verifying
//! InRelease files with these keys is `release`'s job. Revoked keys and
//! subkeys are dropped here; expiry depends on the time of use, so
//! [`Signer::expires_at`] reports it and `release` decides.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use pgp::composed::{Deserializable, SignedPublicKey, SignedPublicSubKey};
use pgp::packet::{Signature, SignatureType};
use pgp::types::KeyDetails;

use crate::profile;

/// (name, armored text) of a key file in keys/debian-archive-keyring/.
macro_rules! builtin_key {
    ($name:literal) => {
        (
            $name,
            include_str!(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/keys/debian-archive-keyring/",
                $name
            )),
        )
    };
}

/// The builtin keyring: debian-archive-keyring's armored keys for the
/// releases craton builds from (trixie) and the one before (bookworm), so
/// that older suites and the security archive verify too.
const BUILTIN: &[(&str, &str)] = &[
    builtin_key!("debian-archive-bookworm-automatic.asc"),
    builtin_key!("debian-archive-bookworm-security-automatic.asc"),
    builtin_key!("debian-archive-bookworm-stable.asc"),
    builtin_key!("debian-archive-trixie-automatic.asc"),
    builtin_key!("debian-archive-trixie-security-automatic.asc"),
    builtin_key!("debian-archive-trixie-stable.asc"),
];

/// File extensions read from a keyring directory (as apt's trusted.gpg.d).
const KEY_EXTENSIONS: &[&str] = &["asc", "gpg", "pgp"];

/// The armor header line of a public key block (RFC 9580 6.2).
const ARMOR_BEGIN: &str = "-----BEGIN PGP PUBLIC KEY BLOCK-----";

/// A set of trusted public keys (cheap to clone).
#[derive(Clone)]
pub struct Keyring {
    keys: Arc<Vec<SignedPublicKey>>,
}

/// A key that may have made a signature: a primary key or a signing subkey.
#[derive(Clone, Copy)]
pub enum Signer<'a> {
    Primary(&'a SignedPublicKey),
    Subkey {
        primary: &'a SignedPublicKey,
        subkey: &'a SignedPublicSubKey,
    },
}

impl Signer<'_> {
    /// The primary key this signer belongs to (trust is per primary key).
    pub fn primary(&self) -> &SignedPublicKey {
        match self {
            Signer::Primary(k) | Signer::Subkey { primary: k, .. } => k,
        }
    }

    pub fn fingerprint(&self) -> pgp::types::Fingerprint {
        match self {
            Signer::Primary(k) => k.fingerprint(),
            Signer::Subkey { subkey, .. } => subkey.fingerprint(),
        }
    }

    pub fn key_id(&self) -> pgp::types::KeyId {
        match self {
            Signer::Primary(k) => k.legacy_key_id(),
            Signer::Subkey { subkey, .. } => subkey.legacy_key_id(),
        }
    }

    /// When this key expires, in Unix seconds; `None` if it does not. Taken
    /// from its newest self-signature (primary: user ID certifications and
    /// direct-key signatures; subkey: binding signatures). RFC 9580
    /// 5.2.3.13: the Key Expiration Time counts from the key's creation.
    pub fn expires_at(&self) -> Option<i64> {
        let (created, sigs): (_, Vec<&Signature>) = match self {
            Signer::Primary(k) => (
                k.created_at(),
                k.details
                    .users
                    .iter()
                    .flat_map(|u| &u.signatures)
                    .chain(&k.details.direct_signatures)
                    .filter(|s| is_issued_by(s, *k))
                    .collect(),
            ),
            Signer::Subkey { subkey, .. } => (
                subkey.created_at(),
                subkey
                    .signatures
                    .iter()
                    .filter(|s| s.typ() == Some(SignatureType::SubkeyBinding))
                    .collect(),
            ),
        };
        let newest = sigs
            .into_iter()
            .max_by_key(|s| s.created().map(|t| t.as_secs()))?;
        let validity = newest.key_expiration_time()?.as_secs();
        // A zero Key Expiration Time means "does not expire".
        (validity > 0).then(|| i64::from(created.as_secs()) + i64::from(validity))
    }
}

impl Keyring {
    /// The Debian archive keyring shipped in keys/ and built into the binary.
    pub fn builtin() -> Result<Self> {
        let mut keys = Vec::new();
        for (name, text) in BUILTIN {
            keys.extend(
                parse_keys(text.as_bytes()).with_context(|| format!("builtin key {name}"))?,
            );
        }
        Ok(Self::from_keys(keys))
    }

    /// Keys from a file (armored or binary, one or several keys) or from every
    /// *.asc, *.gpg and *.pgp file of a directory.
    pub fn from_path(path: &Path) -> Result<Self> {
        let meta =
            std::fs::metadata(path).with_context(|| format!("reading {}", path.display()))?;
        let mut files = Vec::new();
        if meta.is_dir() {
            for e in
                std::fs::read_dir(path).with_context(|| format!("reading {}", path.display()))?
            {
                let p = e
                    .with_context(|| format!("reading {}", path.display()))?
                    .path();
                let ext = p.extension().and_then(|e| e.to_str()).unwrap_or("");
                if KEY_EXTENSIONS.contains(&ext) && p.is_file() {
                    files.push(p);
                }
            }
            // Sorted, so that logs and errors come in a stable order.
            files.sort();
            if files.is_empty() {
                bail!("no *.asc, *.gpg or *.pgp key files in {}", path.display());
            }
        } else {
            files.push(path.to_path_buf());
        }
        let mut keys = Vec::new();
        for f in &files {
            let data = std::fs::read(f).with_context(|| format!("reading {}", f.display()))?;
            keys.extend(
                parse_keys(&data).with_context(|| format!("reading keys from {}", f.display()))?,
            );
        }
        Ok(Self::from_keys(keys))
    }

    /// The keyring a profile names.
    pub fn for_profile(k: &profile::Keyring) -> Result<Self> {
        match k {
            profile::Keyring::Builtin => Self::builtin(),
            profile::Keyring::Path(p) => Self::from_path(p),
        }
    }

    /// A keyring of already checked keys (see [`parse_keys`]).
    pub fn from_keys(keys: Vec<SignedPublicKey>) -> Self {
        Self {
            keys: Arc::new(keys),
        }
    }

    pub fn keys(&self) -> &[SignedPublicKey] {
        &self.keys
    }

    /// Every key that can sign: each primary key and its signing subkeys.
    pub fn signers(&self) -> impl Iterator<Item = Signer<'_>> {
        self.keys.iter().flat_map(|primary| {
            std::iter::once(Signer::Primary(primary)).chain(
                primary
                    .public_subkeys
                    .iter()
                    .map(move |subkey| Signer::Subkey { primary, subkey }),
            )
        })
    }

    /// Upper-case hex fingerprints of the primary keys, for messages.
    pub fn fingerprints(&self) -> Vec<String> {
        self.keys
            .iter()
            .map(|k| format!("{:X}", k.fingerprint()))
            .collect()
    }
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Keyring")
            .field(&self.fingerprints())
            .finish()
    }
}

/// Parses one or more public keys, armored (possibly several blocks) or
/// binary, checks their self-signatures and keeps only signing subkeys.
pub fn parse_keys(data: &[u8]) -> Result<Vec<SignedPublicKey>> {
    let mut raw = Vec::new();
    match std::str::from_utf8(data)
        .ok()
        .filter(|t| t.contains(ARMOR_BEGIN))
    {
        Some(text) => {
            // pgp reads one armor block per call; a .asc may hold several.
            for (start, _) in text.match_indices(ARMOR_BEGIN) {
                let (keys, _) = SignedPublicKey::from_armor_many(&text.as_bytes()[start..])
                    .context("parsing an armored key block")?;
                for k in keys {
                    raw.push(k.context("parsing an armored key")?);
                }
            }
        }
        None => {
            for k in SignedPublicKey::from_bytes_many(data).context("parsing binary keys")? {
                raw.push(k.context("parsing a binary key")?);
            }
        }
    }
    if raw.is_empty() {
        bail!("no OpenPGP public key found");
    }
    let keys: Vec<_> = raw
        .into_iter()
        .map(check_key)
        .filter_map(Result::transpose)
        .collect::<Result<_>>()?;
    if keys.is_empty() {
        bail!("every key is revoked");
    }
    Ok(keys)
}

/// The key with only its usable signing subkeys, or `None` when revoked.
fn check_key(mut key: SignedPublicKey) -> Result<Option<SignedPublicKey>> {
    let primary = key.primary_key.clone();
    if key
        .details
        .revocation_signatures
        .iter()
        .any(|s| s.verify_key(&primary).is_ok())
    {
        tracing::warn!("ignoring revoked key {:X}", key.fingerprint());
        return Ok(None);
    }
    // Only self-signatures count: the Debian keys also carry third-party
    // certifications (other archive keys signing their user IDs), which we
    // cannot and need not verify. One valid self-signed user ID suffices.
    let self_signed = key.details.users.iter().any(|u| {
        u.signatures.iter().any(|s| {
            is_issued_by(s, &key)
                && s.verify_certification(&primary, pgp::types::Tag::UserId, &u.id)
                    .is_ok()
        })
    });
    if !self_signed {
        bail!(
            "key {:X}: no user ID with a valid self-signature",
            key.fingerprint()
        );
    }
    let fingerprint = key.fingerprint();
    key.public_subkeys.retain(|sk| {
        let signs = sk.signatures.iter().any(|s| s.key_flags().sign());
        // verify_bindings checks every signature, revocations included.
        let bound = sk.verify_bindings(&primary).is_ok();
        let revoked = sk
            .signatures
            .iter()
            .any(|s| s.typ() == Some(SignatureType::SubkeyRevocation));
        if revoked {
            return false;
        }
        if signs && !bound {
            tracing::warn!(
                "ignoring subkey {:X} of {:X}: its binding signature does not verify",
                sk.fingerprint(),
                fingerprint
            );
        }
        signs && bound
    });
    Ok(Some(key))
}

/// True when the signature names `key` as its issuer.
fn is_issued_by(sig: &Signature, key: &impl KeyDetails) -> bool {
    sig.issuer_key_id()
        .iter()
        .any(|id| **id == key.legacy_key_id())
        || sig
            .issuer_fingerprint()
            .iter()
            .any(|f| **f == key.fingerprint())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Fingerprints from `gpg --show-keys` on the files in keys/.
    const TRIXIE_STABLE: &str = "41587F7DB8C774BCCF131416762F67A0B2C39DE4";
    const TRIXIE_AUTOMATIC_SUBKEY: &str = "B8E5F13176D2A7A75220028078DBA3BC47EF2265";

    #[test]
    fn builtin_has_the_debian_keys() {
        let k = Keyring::builtin().unwrap();
        assert_eq!(k.keys().len(), BUILTIN.len());
        assert!(k.fingerprints().iter().any(|f| f == TRIXIE_STABLE), "{k:?}");
        // The automatic keys sign with RSA subkeys: those must have survived
        // the binding check (four of the six keys have one signing subkey).
        assert_eq!(k.signers().count(), k.keys().len() + 4);
        assert!(
            k.signers()
                .any(|s| format!("{:X}", s.fingerprint()) == TRIXIE_AUTOMATIC_SUBKEY)
        );
    }

    #[test]
    fn expiry_comes_from_the_newest_self_signature() {
        let k = Keyring::builtin().unwrap();
        let expiry = |fp: &str| {
            k.signers()
                .find(|s| format!("{:X}", s.fingerprint()) == fp)
                .and_then(|s| s.expires_at())
        };
        // `gpg --show-keys --with-colons`, field 7 (expiry) of pub and sub.
        assert_eq!(expiry(TRIXIE_STABLE), Some(1_995_130_581));
        assert_eq!(expiry(TRIXIE_AUTOMATIC_SUBKEY), Some(2_058_699_029));
    }

    #[test]
    fn from_path_reads_files_and_directories() {
        let dir = tempfile::tempdir().unwrap();
        let (_, a) = BUILTIN[3];
        let (_, b) = BUILTIN[5];
        std::fs::write(dir.path().join("a.asc"), a).unwrap();
        std::fs::write(dir.path().join("README"), "not a key").unwrap();
        // Two armored blocks in one file.
        std::fs::write(dir.path().join("two.asc"), format!("{a}\n{b}")).unwrap();
        let one = Keyring::from_path(&dir.path().join("a.asc")).unwrap();
        assert_eq!(one.keys().len(), 1);
        let all = Keyring::from_path(dir.path()).unwrap();
        assert_eq!(all.keys().len(), 3);

        // The same keys in binary form (as /usr/share/keyrings/*.gpg).
        let mut bin = Vec::new();
        for k in all.keys() {
            bin.extend(pgp::ser::Serialize::to_bytes(k).unwrap());
        }
        let gpg = dir.path().join("binary.gpg");
        std::fs::write(&gpg, &bin).unwrap();
        let from_bin = Keyring::from_path(&gpg).unwrap();
        assert_eq!(from_bin.fingerprints(), all.fingerprints());

        let bad = dir.path().join("bad.gpg");
        std::fs::write(&bad, b"\x99garbage").unwrap();
        let err = format!("{:#}", Keyring::from_path(&bad).unwrap_err());
        assert!(err.contains("bad.gpg"), "{err}");
        let err = format!(
            "{:#}",
            Keyring::from_path(&dir.path().join("nope")).unwrap_err()
        );
        assert!(err.contains("nope"), "{err}");
    }
}
