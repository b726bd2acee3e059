//! Path filters for unpacking, in dpkg's terms (dpkg(1) `--path-exclude`,
//! `--path-include`): a packaged path is left out when it matches an
//! exclude pattern and no include pattern. Patterns are shell globs over
//! the absolute path as dpkg's .list has it, matched as fnmatch(3) does
//! without FNM_PATHNAME (dpkg's use): `*` matches any run of characters,
//! `/` included, and `?` any one character.
//!
//! The same filter is written as a dpkg.cfg.d(5) fragment into the tree
//! while it is built ([`PathFilter::dpkg_cfg`]), so packages that dpkg
//! itself unpacks (the essential set) are filtered alike.

use anyhow::{Result, bail};

/// Where the filter is given to dpkg inside the tree being built.
pub const DPKG_CFG: &str = "etc/dpkg/dpkg.cfg.d/craton-path-filter";

/// The exclude and include patterns; empty keeps everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PathFilter {
    pub exclude: Vec<String>,
    pub include: Vec<String>,
}

impl PathFilter {
    /// Checks every pattern: absolute, and only `*` and `?` as wildcards
    /// (dpkg also takes `[...]`, which craton does not need).
    pub fn new(exclude: Vec<String>, include: Vec<String>) -> Result<PathFilter> {
        for p in exclude.iter().chain(&include) {
            check_pattern(p)?;
        }
        Ok(PathFilter { exclude, include })
    }

    pub fn is_empty(&self) -> bool {
        self.exclude.is_empty()
    }

    /// Whether the packaged path `path` ("/usr/share/doc/x/changelog.gz")
    /// is left out.
    pub fn skips(&self, path: &str) -> bool {
        self.exclude.iter().any(|p| glob(p, path)) && !self.include.iter().any(|p| glob(p, path))
    }

    /// The dpkg.cfg(5) lines: dpkg applies the options in order and the
    /// last one that matches a path wins, so every include comes after
    /// every exclude, which is this filter's rule.
    pub fn dpkg_cfg(&self) -> String {
        let mut out =
            String::from("# craton's [packages] path filter, for dpkg inside the build.\n");
        for p in &self.exclude {
            out.push_str(&format!("path-exclude={p}\n"));
        }
        for p in &self.include {
            out.push_str(&format!("path-include={p}\n"));
        }
        out
    }
}

/// Why a pattern is refused, or nothing.
pub fn check_pattern(p: &str) -> Result<()> {
    if !p.starts_with('/') {
        bail!("{p:?} is not an absolute path pattern (it must start with /)");
    }
    if let Some(c) = p
        .chars()
        .find(|c| matches!(c, '[' | ']' | '\\' | '\n') || c.is_control())
    {
        bail!("{p:?}: {c:?} is not allowed (only * and ? are wildcards)");
    }
    Ok(())
}

/// fnmatch(3) without flags, for `*` and `?`.
fn glob(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti) = (0, 0);
    // The last `*` seen and the text position it was tried at.
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_as_fnmatch_without_pathname() {
        for (p, t, want) in [
            ("/usr/share/doc/*", "/usr/share/doc/bash/copyright", true),
            ("/usr/share/doc/*", "/usr/share/doc", false),
            (
                "/usr/share/doc/*/copyright",
                "/usr/share/doc/bash/copyright",
                true,
            ),
            (
                "/usr/share/doc/*/copyright",
                "/usr/share/doc/bash/README",
                false,
            ),
            (
                "/usr/share/locale/*",
                "/usr/share/locale/de/LC_MESSAGES/a.mo",
                true,
            ),
            ("/usr/share/locale/de*", "/usr/share/locale/de_AT/x", true),
            ("/a?c", "/abc", true),
            ("/a?c", "/ac", false),
            ("/a*b*c", "/aXbYbZc", true),
            ("/a*b*c", "/aXbYbZ", false),
            ("*", "", true),
        ] {
            assert_eq!(glob(p, t), want, "{p} on {t}");
        }
    }

    #[test]
    fn include_wins_over_exclude() {
        let f = PathFilter::new(
            vec!["/usr/share/doc/*".into(), "/usr/share/man/*".into()],
            vec!["/usr/share/doc/*/copyright".into()],
        )
        .unwrap();
        assert!(f.skips("/usr/share/doc/bash/changelog.gz"));
        assert!(f.skips("/usr/share/doc/bash"));
        assert!(!f.skips("/usr/share/doc/bash/copyright"));
        assert!(f.skips("/usr/share/man/man1/ls.1.gz"));
        assert!(!f.skips("/usr/share/man"));
        assert!(!f.skips("/usr/bin/ls"));
        assert_eq!(
            f.dpkg_cfg().lines().skip(1).collect::<Vec<_>>(),
            [
                "path-exclude=/usr/share/doc/*",
                "path-exclude=/usr/share/man/*",
                "path-include=/usr/share/doc/*/copyright"
            ]
        );
        assert!(PathFilter::default().is_empty());
        assert!(!PathFilter::default().skips("/usr/share/doc/x"));
    }

    #[test]
    fn refuses_what_dpkg_and_craton_would_read_differently() {
        for bad in ["usr/share/doc/*", "/usr/share/[a-z]*", "/a\\*", "/a\nb"] {
            assert!(
                PathFilter::new(vec![bad.into()], vec![]).is_err(),
                "{bad:?}"
            );
        }
    }
}
