//! ed25519 keys and signatures for a build's manifest.
//!
//! Keys are files that tools release engineers already have can read and
//! make: the private key is PKCS#8 in PEM ("PRIVATE KEY", RFC 8410's
//! encoding of an Ed25519 seed, what `openssl genpkey -algorithm ed25519`
//! writes), the public key SubjectPublicKeyInfo in PEM ("PUBLIC KEY", what
//! `openssl pkey -pubout` writes). A signature is the raw 64 bytes of
//! RFC 8032's Ed25519 over the exact bytes of the signed file, which
//! `openssl pkeyutl -verify -pubin -inkey KEY -rawin -in FILE -sigfile SIG`
//! checks (docs/signing.md).
//!
//! A key given by the user is bad input when it cannot be read, is not an
//! Ed25519 key of the expected kind, or (a private key) is readable by
//! anyone but its owner.

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey};
use ed25519_dalek::{Signer as _, SigningKey, Verifier as _, VerifyingKey};

use crate::digest::Sha256;
use crate::error::bad_input;
use crate::files::write_atomic;
use crate::rootfs::RootfsTree;

/// Bytes of an Ed25519 signature (RFC 8032 section 5.1.6).
pub const SIGNATURE_LEN: usize = 64;
/// Bytes of an Ed25519 private key's seed (RFC 8032 section 5.1.5).
const SEED_LEN: usize = 32;
/// The files `craton keygen --out DIR` writes.
pub const PRIVATE_KEY_FILE: &str = "craton.key.pem";
pub const PUBLIC_KEY_FILE: &str = "craton.pub.pem";
/// The private key's mode: its owner only.
const PRIVATE_MODE: u32 = 0o600;
const PUBLIC_MODE: u32 = 0o644;
/// Where an image keeps the public keys its updates must be signed with
/// (`<key id>.pem`), for the on-host updater.
pub const IMAGE_KEYS_DIR: &str = "/usr/share/craton/keys";

/// A private key read from a file.
pub struct PrivateKey {
    key: SigningKey,
    path: PathBuf,
}

/// A public key read from a file or derived from a private key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey {
    key: VerifyingKey,
}

impl PrivateKey {
    /// Reads a PKCS#8 PEM Ed25519 private key, refusing one that others
    /// can read (as ssh refuses its keys).
    pub fn read(path: &Path) -> Result<PrivateKey> {
        let meta = std::fs::metadata(path)
            .map_err(|e| bad_input(format!("signing key {}: {e}", path.display())))?;
        if !meta.is_file() {
            return Err(bad_input(format!(
                "signing key {}: not a file",
                path.display()
            )));
        }
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(bad_input(format!(
                "signing key {}: mode {mode:03o} lets others read it; make it 600 (chmod 600)",
                path.display()
            )));
        }
        let text = std::fs::read_to_string(path)
            .map_err(|e| bad_input(format!("signing key {}: {e}", path.display())))?;
        let key = SigningKey::from_pkcs8_pem(&text).map_err(|e| {
            bad_input(format!(
                "signing key {}: not an Ed25519 private key in PKCS#8 PEM (\"BEGIN PRIVATE KEY\", as `craton keygen` or `openssl genpkey -algorithm ed25519` write): {e}",
                path.display()
            ))
        })?;
        Ok(PrivateKey {
            key,
            path: path.to_owned(),
        })
    }

    pub fn public(&self) -> PublicKey {
        PublicKey {
            key: self.key.verifying_key(),
        }
    }

    /// The raw 64-byte signature of `data`.
    pub fn sign(&self, data: &[u8]) -> [u8; SIGNATURE_LEN] {
        self.key.sign(data).to_bytes()
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl PublicKey {
    /// Reads a SubjectPublicKeyInfo PEM Ed25519 public key.
    pub fn read(path: &Path) -> Result<PublicKey> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| bad_input(format!("public key {}: {e}", path.display())))?;
        Self::from_pem(&text)
            .map_err(|e| bad_input(format!("public key {}: {e:#}", path.display())))
    }

    pub fn from_pem(text: &str) -> Result<PublicKey> {
        let key = VerifyingKey::from_public_key_pem(text).map_err(|e| {
            anyhow::anyhow!(
                "not an Ed25519 public key in PEM (\"BEGIN PUBLIC KEY\", as `craton keygen` or `openssl pkey -pubout` write): {e}"
            )
        })?;
        Ok(PublicKey { key })
    }

    pub fn to_pem(&self) -> Result<String> {
        self.key
            .to_public_key_pem(LineEnding::LF)
            .context("encoding the public key")
    }

    /// The key's id: the first 16 hex digits of the sha256 of its
    /// SubjectPublicKeyInfo DER, the file name it has in an image.
    pub fn id(&self) -> Result<String> {
        let der = self
            .key
            .to_public_key_der()
            .context("encoding the public key")?;
        Ok(Sha256::of(der.as_bytes()).to_hex()[..16].to_owned())
    }

    /// Whether `signature` is this key's Ed25519 signature of `data`
    /// (RFC 8032's verification; a signature of the wrong length fails).
    pub fn verifies(&self, data: &[u8], signature: &[u8]) -> bool {
        let Ok(bytes) = <[u8; SIGNATURE_LEN]>::try_from(signature) else {
            return false;
        };
        let sig = ed25519_dalek::Signature::from_bytes(&bytes);
        self.key.verify(data, &sig).is_ok()
    }
}

/// The keys stage: with a signing key, its public key goes into the tree
/// at [`IMAGE_KEYS_DIR`]`/<key id>.pem` before the /usr image is made.
pub fn install_public_key(tree: &RootfsTree, key: Option<&PrivateKey>) -> Result<()> {
    let Some(key) = key else {
        return Ok(());
    };
    let public = key.public();
    let path = format!("{IMAGE_KEYS_DIR}/{}.pem", public.id()?);
    crate::files::tree::write_file(&tree.path, &path, public.to_pem()?.as_bytes(), PUBLIC_MODE)?;
    tracing::info!(
        "the image trusts updates signed by key {} ({path})",
        public.id()?
    );
    Ok(())
}

/// `craton keygen`: a new key pair in `dir` (made if missing), private key
/// 0600; existing key files are not overwritten. Returns both paths.
pub fn keygen(dir: &Path) -> Result<(PathBuf, PathBuf)> {
    let private = dir.join(PRIVATE_KEY_FILE);
    let public = dir.join(PUBLIC_KEY_FILE);
    for p in [&private, &public] {
        if p.symlink_metadata().is_ok() {
            return Err(bad_input(format!(
                "{} exists; craton keygen does not replace a key",
                p.display()
            )));
        }
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut seed = [0u8; SEED_LEN];
    getrandom(&mut seed)?;
    let key = SigningKey::from_bytes(&seed);
    seed.fill(0);
    let pem = key
        .to_pkcs8_pem(LineEnding::LF)
        .context("encoding the private key")?;
    write_atomic(&private, pem.as_bytes(), PRIVATE_MODE)?;
    let public_pem = PublicKey {
        key: key.verifying_key(),
    }
    .to_pem()?;
    write_atomic(&public, public_pem.as_bytes(), PUBLIC_MODE)?;
    Ok((private, public))
}

/// Fills `buf` from the kernel's random source (getrandom(2) through
/// /dev/urandom, which never blocks once the pool is initialised).
fn getrandom(buf: &mut [u8]) -> Result<()> {
    use std::io::Read as _;
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(buf))
        .context("reading /dev/urandom")
}

#[cfg(test)]
mod tests;
