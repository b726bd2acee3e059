//! SHA-256 digests as a type: parsed once from hex, compared as bytes, printed
//! as lowercase hex. Used for .debs (Packages `SHA256:`), indexes (Release
//! `SHA256:` list), artifacts and the content-addressed cache.

use std::fmt;
use std::io::{self, Read};
use std::str::FromStr;

use sha2::{Digest, Sha256 as Hasher};

/// A SHA-256 digest.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Sha256([u8; 32]);

/// Why a string is not a SHA-256 digest.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Sha256ParseError {
    #[error("expected 64 hexadecimal characters, got {0}")]
    Length(usize),
    #[error("expected lowercase hexadecimal characters, found {0:?}")]
    Char(char),
}

impl Sha256 {
    /// Digest of a byte slice.
    pub fn of(data: &[u8]) -> Self {
        Self(Hasher::digest(data).into())
    }

    /// Digest of everything a reader yields.
    pub fn of_reader(mut r: impl Read) -> io::Result<Self> {
        let mut h = Sha256Writer::new();
        io::copy(&mut r, &mut h)?;
        Ok(h.finish())
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl FromStr for Sha256 {
    type Err = Sha256ParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.len() != 64 {
            return Err(Sha256ParseError::Length(s.len()));
        }
        if let Some(c) = s.chars().find(|c| !matches!(c, '0'..='9' | 'a'..='f')) {
            return Err(Sha256ParseError::Char(c));
        }
        let mut out = [0u8; 32];
        hex::decode_to_slice(s, &mut out).map_err(|_| Sha256ParseError::Length(s.len()))?;
        Ok(Self(out))
    }
}

impl fmt::Display for Sha256 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Sha256 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sha256({})", self.to_hex())
    }
}

impl serde::Serialize for Sha256 {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl<'de> serde::Deserialize<'de> for Sha256 {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// An `io::Write` that hashes what passes through it.
#[derive(Default)]
pub struct Sha256Writer {
    hasher: Hasher,
    len: u64,
}

impl Sha256Writer {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn len(&self) -> u64 {
        self.len
    }
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    pub fn finish(self) -> Sha256 {
        Sha256(self.hasher.finalize().into())
    }
}

impl io::Write for Sha256Writer {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.hasher.update(buf);
        self.len += buf.len() as u64;
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_digest_round_trips() {
        // sha256("") from FIPS 180-2 test vectors.
        let empty = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        assert_eq!(Sha256::of(b"").to_hex(), empty);
        assert_eq!(empty.parse::<Sha256>().unwrap(), Sha256::of(b""));
    }

    #[test]
    fn rejects_malformed() {
        assert_eq!("abc".parse::<Sha256>(), Err(Sha256ParseError::Length(3)));
        let upper = "E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855";
        assert_eq!(upper.parse::<Sha256>(), Err(Sha256ParseError::Char('E')));
    }
}
