//! Relationship fields of binary packages (Debian Policy 7.1): Depends and
//! Pre-Depends (comma-separated lists of `a | b` alternatives), Conflicts and
//! Breaks (no alternatives), Provides (only `=` versions).
//!
//! craton installs one architecture, amd64; an architecture qualifier is
//! reduced to what matters there (`:any`, native, or a foreign architecture
//! that nothing here can satisfy). Architecture restrictions (`[amd64]`) and
//! build profiles (`<stage1>`) belong to source packages and are rejected.

use std::fmt;

use anyhow::{Context, Result, bail};

use super::version::{Relation, Version};

/// The one architecture craton installs (and the name of the
/// `binary-<arch>` index it reads).
pub const NATIVE_ARCH: &str = "amd64";

/// An architecture qualifier on a dependency (multiarch spec: `pkg:any`,
/// `pkg:native`, `pkg:<arch>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArchQualifier {
    /// No qualifier, `:native` or `:amd64`: the native architecture.
    Native,
    /// `:any`: satisfied by a package that is `Multi-Arch: allowed`.
    Any,
    /// Another architecture (e.g. `:i386`): never satisfiable on amd64 alone.
    Foreign(String),
}

/// One package reference: `name[:arch] [(op version)]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dep {
    pub name: String,
    pub arch: ArchQualifier,
    pub constraint: Option<(Relation, Version)>,
}

/// `a | b | c`: any one satisfies the dependency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alternatives(pub Vec<Dep>);

/// One `Provides` entry: `name [(= version)]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provide {
    pub name: String,
    pub version: Option<Version>,
}

impl fmt::Display for Dep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)?;
        match &self.arch {
            ArchQualifier::Native => {}
            ArchQualifier::Any => f.write_str(":any")?,
            ArchQualifier::Foreign(a) => write!(f, ":{a}")?,
        }
        if let Some((rel, v)) = &self.constraint {
            write!(f, " ({rel} {v})")?;
        }
        Ok(())
    }
}

impl fmt::Display for Alternatives {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(" | ")?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

impl fmt::Display for Provide {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.version {
            Some(v) => write!(f, "{} (= {v})", self.name),
            None => f.write_str(&self.name),
        }
    }
}

/// Splits a comma-separated field into its trimmed, non-empty entries.
/// Empty entries (`a, , b` or a trailing comma) are an error, as in dpkg.
fn entries(field: &str) -> impl Iterator<Item = Result<&str>> {
    let field = field.trim();
    let empty = field.is_empty();
    field
        .split(',')
        .filter(move |_| !empty)
        .map(|e| match e.trim() {
            "" => bail!("empty entry in list"),
            e => Ok(e),
        })
}

/// Parses `name[:arch] [(op version)]`.
pub fn parse_dep(s: &str) -> Result<Dep> {
    let s = s.trim();
    let (head, constraint) = match s.find('(') {
        Some(open) => {
            let close = s[open..]
                .find(')')
                .map(|c| open + c)
                .with_context(|| format!("missing `)` in {s:?}"))?;
            let rest = s[close + 1..].trim();
            if !rest.is_empty() {
                bail!("unexpected {rest:?} after the version in {s:?}");
            }
            let inner = s[open + 1..close].trim();
            let op_end = inner
                .find(|c| !matches!(c, '<' | '>' | '='))
                .unwrap_or(inner.len());
            let rel = Relation::parse(&inner[..op_end]).with_context(|| format!("in {s:?}"))?;
            let ver =
                Version::parse(inner[op_end..].trim()).with_context(|| format!("in {s:?}"))?;
            (s[..open].trim_end(), Some((rel, ver)))
        }
        None => (s, None),
    };
    if head.contains(['[', '<']) {
        bail!("architecture or profile restrictions are not allowed in a binary package: {s:?}");
    }
    if head.is_empty() || head.contains(|c: char| c.is_whitespace() || c == ')') {
        bail!("invalid package reference {s:?}");
    }
    let (name, arch) = match head.split_once(':') {
        None => (head, ArchQualifier::Native),
        Some((n, "any")) => (n, ArchQualifier::Any),
        Some((n, "native")) => (n, ArchQualifier::Native),
        Some((n, a)) if a == NATIVE_ARCH => (n, ArchQualifier::Native),
        Some((n, a)) if !a.is_empty() => (n, ArchQualifier::Foreign(a.to_owned())),
        Some(_) => bail!("empty architecture qualifier in {s:?}"),
    };
    if name.is_empty() {
        bail!("empty package name in {s:?}");
    }
    Ok(Dep {
        name: name.to_owned(),
        arch,
        constraint,
    })
}

/// Parses Depends or Pre-Depends.
pub fn parse_depends(field: &str) -> Result<Vec<Alternatives>> {
    entries(field)
        .map(|e| {
            e?.split('|')
                .map(parse_dep)
                .collect::<Result<Vec<_>>>()
                .map(Alternatives)
        })
        .collect()
}

/// Parses Conflicts or Breaks (alternatives make no sense there).
pub fn parse_dep_list(field: &str) -> Result<Vec<Dep>> {
    entries(field)
        .map(|e| {
            let e = e?;
            if e.contains('|') {
                bail!("alternatives are not allowed here: {e:?}");
            }
            parse_dep(e)
        })
        .collect()
}

/// Parses Provides: Policy 7.5 allows only `=` versions.
pub fn parse_provides(field: &str) -> Result<Vec<Provide>> {
    parse_dep_list(field)?
        .into_iter()
        .map(|d| match d.constraint {
            None => Ok(Provide {
                name: d.name,
                version: None,
            }),
            Some((Relation::Equal, v)) => Ok(Provide {
                name: d.name,
                version: Some(v),
            }),
            Some((rel, v)) => bail!("Provides allows only `=`, got `{} ({rel} {v})`", d.name),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_depends_with_alternatives_and_qualifiers() {
        let deps =
            parse_depends("libc6 (>= 2.38), default-dbus | dbus-system-bus,\n python3:any, x:i386")
                .unwrap();
        assert_eq!(deps.len(), 4);
        assert_eq!(deps[0].0[0].name, "libc6");
        let (rel, v) = deps[0].0[0].constraint.as_ref().unwrap();
        assert_eq!((*rel, v.as_str()), (Relation::LaterEqual, "2.38"));
        assert_eq!(deps[1].0.len(), 2);
        assert_eq!(deps[1].to_string(), "default-dbus | dbus-system-bus");
        assert_eq!(deps[2].0[0].arch, ArchQualifier::Any);
        assert_eq!(deps[3].0[0].arch, ArchQualifier::Foreign("i386".into()));
        let native = parse_dep("foo:amd64 (<<1.0)").unwrap();
        assert_eq!(native.arch, ArchQualifier::Native);
        assert_eq!(native.to_string(), "foo (<< 1.0)");
        assert!(parse_depends("").unwrap().is_empty());
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            "a, , b",
            "a (>= 1.0",
            "a (~ 1.0)",
            "a [amd64]",
            "a (>= 1) [i386]",
            "a b",
            "a (>= )",
            ":any",
        ] {
            assert!(parse_depends(bad).is_err(), "{bad:?} must be rejected");
        }
        assert!(parse_dep_list("a | b").is_err());
    }

    #[test]
    fn provides_allow_only_equal() {
        let p = parse_provides("systemd-sysusers (= 257.13-1), mail-transport-agent").unwrap();
        assert_eq!(p[0].version.as_ref().unwrap().as_str(), "257.13-1");
        assert_eq!(p[1].version, None);
        assert_eq!(p[0].to_string(), "systemd-sysusers (= 257.13-1)");
        assert!(parse_provides("x (>= 1)").is_err());
    }
}
