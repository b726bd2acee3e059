//! Debian version strings and dpkg's ordering ([epoch:]upstream[-revision],
//! compared as in deb-version(7): `~` sorts before everything, letters before
//! non-letters, digit runs numerically), and the relation operators of
//! dependency fields (`<<`, `<=`, `=`, `>=`, `>>`).
//!
//! This module does not parse dependency fields; see `packages`.

use std::cmp::Ordering;
use std::fmt;

use anyhow::{Result, bail};

/// A parsed Debian version. Equality is dpkg's: `1.0` equals `1.0-0` and
/// `0:1.0`, so it is defined through [`Ord`], not through the text.
#[derive(Clone)]
pub struct Version {
    raw: Box<str>,
    epoch: u32,
    /// Byte range of the upstream part in `raw`.
    upstream: (u32, u32),
    /// Byte offset where the revision starts (after the last `-`), or
    /// `raw.len()` when there is none: dpkg then compares an empty revision.
    revision: u32,
}

impl Version {
    /// Parses and validates a version as dpkg's parseversion() does.
    pub fn parse(s: &str) -> Result<Self> {
        if s.is_empty() {
            bail!("version string is empty");
        }
        if s.chars().any(char::is_whitespace) {
            bail!("version {s:?} contains whitespace");
        }
        if u32::try_from(s.len()).is_err() {
            bail!("version string is too long");
        }
        let (epoch, rest_start) = match s.find(':') {
            Some(i) => {
                let e = &s[..i];
                if e.is_empty() || !e.bytes().all(|b| b.is_ascii_digit()) {
                    bail!("version {s:?}: epoch {e:?} is not a number");
                }
                let epoch: u32 = e
                    .parse()
                    .map_err(|_| anyhow::anyhow!("version {s:?}: epoch {e:?} is too large"))?;
                (epoch, i + 1)
            }
            None => (0, 0),
        };
        let rest = &s[rest_start..];
        let (up_end, revision) = match rest.rfind('-') {
            Some(i) => (rest_start + i, rest_start + i + 1),
            None => (s.len(), s.len()),
        };
        let upstream = &s[rest_start..up_end];
        if upstream.is_empty() {
            bail!("version {s:?}: upstream version is empty");
        }
        // deb-version(7): upstream may hold alphanumerics and . + - ~ (and :
        // only when there is an epoch, which the split above already took).
        if let Some(c) = upstream
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || ".+-~".contains(*c)))
        {
            bail!("version {s:?}: invalid character {c:?} in upstream version");
        }
        if up_end < s.len() {
            let rev = &s[revision..];
            if rev.is_empty() {
                bail!("version {s:?}: revision after `-` is empty");
            }
            if let Some(c) = rev
                .chars()
                .find(|c| !(c.is_ascii_alphanumeric() || ".+~".contains(*c)))
            {
                bail!("version {s:?}: invalid character {c:?} in revision");
            }
        }
        // Lengths fit in u32: checked above.
        Ok(Self {
            raw: s.into(),
            epoch,
            upstream: (rest_start as u32, up_end as u32),
            revision: revision as u32,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.raw
    }

    pub fn epoch(&self) -> u32 {
        self.epoch
    }

    pub fn upstream(&self) -> &str {
        &self.raw[self.upstream.0 as usize..self.upstream.1 as usize]
    }

    /// The Debian revision; empty when the version has none.
    pub fn revision(&self) -> &str {
        &self.raw[self.revision as usize..]
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

impl fmt::Debug for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Version({})", self.raw)
    }
}

impl std::str::FromStr for Version {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Self> {
        Self::parse(s)
    }
}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> Ordering {
        self.epoch
            .cmp(&other.epoch)
            .then_with(|| verrevcmp(self.upstream().as_bytes(), other.upstream().as_bytes()))
            .then_with(|| verrevcmp(self.revision().as_bytes(), other.revision().as_bytes()))
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Version {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Version {}

/// The weight of a non-digit character in dpkg's lib/dpkg/version.c
/// `order()`: `~` lowest (even below the end of the string, which weighs 0),
/// then letters by ASCII, then everything else after all letters.
fn order(c: Option<u8>) -> i32 {
    match c {
        None => 0,
        Some(b'~') => -1,
        Some(c) if c.is_ascii_digit() => 0,
        Some(c) if c.is_ascii_alphabetic() => i32::from(c),
        Some(c) => i32::from(c) + 256,
    }
}

/// dpkg's verrevcmp(): alternate non-digit runs (compared by [`order`]) and
/// digit runs (compared numerically, leading zeros ignored).
fn verrevcmp(a: &[u8], b: &[u8]) -> Ordering {
    let (mut i, mut j) = (0, 0);
    let digit = |s: &[u8], k: usize| s.get(k).is_some_and(u8::is_ascii_digit);
    while i < a.len() || j < b.len() {
        while (i < a.len() && !digit(a, i)) || (j < b.len() && !digit(b, j)) {
            let (ac, bc) = (order(a.get(i).copied()), order(b.get(j).copied()));
            if ac != bc {
                return ac.cmp(&bc);
            }
            i += 1;
            j += 1;
        }
        while a.get(i) == Some(&b'0') {
            i += 1;
        }
        while b.get(j) == Some(&b'0') {
            j += 1;
        }
        let mut first_diff = Ordering::Equal;
        while digit(a, i) && digit(b, j) {
            if first_diff == Ordering::Equal {
                first_diff = a[i].cmp(&b[j]);
            }
            i += 1;
            j += 1;
        }
        if digit(a, i) {
            return Ordering::Greater;
        }
        if digit(b, j) {
            return Ordering::Less;
        }
        if first_diff != Ordering::Equal {
            return first_diff;
        }
    }
    Ordering::Equal
}

/// A version relation in a dependency field (Debian Policy 7.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Relation {
    /// `<<` strictly earlier
    Earlier,
    /// `<=` earlier or equal
    EarlierEqual,
    /// `=` exactly equal
    Equal,
    /// `>=` later or equal
    LaterEqual,
    /// `>>` strictly later
    Later,
}

impl Relation {
    /// Parses an operator. Policy 7.1 deprecates the bare `<` and `>`, which
    /// mean `<=` and `>=`; dpkg still accepts them, so do we.
    pub fn parse(s: &str) -> Result<Self> {
        Ok(match s {
            "<<" => Self::Earlier,
            "<=" | "<" => Self::EarlierEqual,
            "=" => Self::Equal,
            ">=" | ">" => Self::LaterEqual,
            ">>" => Self::Later,
            _ => bail!("unknown version relation {s:?}"),
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Earlier => "<<",
            Self::EarlierEqual => "<=",
            Self::Equal => "=",
            Self::LaterEqual => ">=",
            Self::Later => ">>",
        }
    }

    /// True when `candidate` satisfies `candidate REL wanted`.
    pub fn satisfied_by(self, candidate: &Version, wanted: &Version) -> bool {
        let o = candidate.cmp(wanted);
        match self {
            Self::Earlier => o == Ordering::Less,
            Self::EarlierEqual => o != Ordering::Greater,
            Self::Equal => o == Ordering::Equal,
            Self::LaterEqual => o != Ordering::Less,
            Self::Later => o == Ordering::Greater,
        }
    }
}

impl fmt::Display for Relation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Version {
        Version::parse(s).unwrap()
    }

    #[test]
    fn splits_parts() {
        let x = v("1:2.30-0ubuntu1-2");
        assert_eq!(
            (x.epoch(), x.upstream(), x.revision()),
            (1, "2.30-0ubuntu1", "2")
        );
        let y = v("257.13");
        assert_eq!((y.epoch(), y.upstream(), y.revision()), (0, "257.13", ""));
        assert_eq!(y.to_string(), "257.13");
    }

    #[test]
    fn orders_like_dpkg() {
        // Each pair is strictly increasing (checked with `dpkg --compare-versions`).
        let pairs = [
            ("1.0~rc1", "1.0"),
            ("1.0~~", "1.0~"),
            ("1.0~", "1.0"),
            ("1.0", "1.0a"),
            ("1.0a", "1.0+"),
            ("1.0", "1.0.1"),
            ("2.0", "1:0.1"),
            ("1.0-1", "1.0-1+b1"),
            ("1.0-1", "1.0-2"),
            ("1.0-9", "1.0-10"),
            ("2.30-0ubuntu1", "2.30-1"),
            ("1.2.9", "1.2.10"),
            ("257.9-1~deb13u1", "257.13-1~deb13u1"),
            ("257.13-1~deb13u1", "257.13-1"),
            ("1.0-1~bpo1", "1.0-1"),
            ("a", "b"),
            ("1.0.0", "1.0.0a"),
            ("6.12.57-1", "6.12.57+deb13-1"),
        ];
        for (a, b) in pairs {
            assert!(v(a) < v(b), "{a} < {b}");
            assert!(v(b) > v(a), "{b} > {a}");
            assert_ne!(v(a), v(b));
        }
    }

    #[test]
    fn equal_versions() {
        for (a, b) in [
            ("1.0", "1.0-0"),
            ("1.0", "0:1.0"),
            ("1.01", "1.1"),
            ("1.0-00", "1.0"),
        ] {
            assert_eq!(v(a), v(b), "{a} == {b}");
        }
    }

    #[test]
    fn rejects_invalid() {
        for bad in [
            "", "a:1.0", ":1.0", "1:", "1.0-", "1.0 ", "1_0", "1.0-a_b", "-1",
        ] {
            assert!(Version::parse(bad).is_err(), "{bad:?} must be rejected");
        }
        assert!(
            Version::parse("99999999999:1")
                .unwrap_err()
                .to_string()
                .contains("epoch")
        );
    }

    #[test]
    fn relations() {
        let (a, b) = (v("1.0"), v("1.0-1"));
        assert!(Relation::Earlier.satisfied_by(&a, &b));
        assert!(!Relation::Earlier.satisfied_by(&b, &b));
        assert!(Relation::EarlierEqual.satisfied_by(&b, &b));
        assert!(Relation::Equal.satisfied_by(&v("1.0-0"), &a));
        assert!(Relation::LaterEqual.satisfied_by(&b, &a));
        assert!(!Relation::Later.satisfied_by(&a, &a));
        assert!(Relation::Later.satisfied_by(&v("1.0+b1"), &a));
        assert_eq!(Relation::parse("<").unwrap(), Relation::EarlierEqual);
        assert_eq!(Relation::parse(">>").unwrap().to_string(), ">>");
        assert!(Relation::parse("=>").is_err());
    }
}
