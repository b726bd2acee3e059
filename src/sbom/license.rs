//! Debian's license short names and synopses (copyright-format 1.0,
//! "License specification") as SPDX license expressions (SPDX 2.3 annex D).
//!
//! `GPL-2+ or Artistic, and BSD-3-clause` reads as Debian writes it: `and`
//! binds tighter than `or`, and a comma before `and`/`or` groups everything
//! before it. Short names map by rule (the GNU families with their `+`,
//! `-only` and `-or-later` spellings) and by table (`Expat` is `MIT`); an
//! exception maps when SPDX lists it. Anything else, malformed synopses
//! included, becomes a [`Ref`] that the document names `LicenseRef-...` and
//! describes in `hasExtractedLicensingInfos`; it never fails.

use std::collections::{BTreeMap, BTreeSet};

use super::dep5::Licensing;
use crate::digest::Sha256;

/// A license expression in SPDX's terms, its LicenseRefs not named yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expr {
    /// A license on the SPDX License List.
    Listed(String),
    /// A listed license with a listed exception.
    With(String, &'static str),
    /// A license SPDX does not list, by Debian's name for it.
    Other(Ref),
    And(Vec<Expr>),
    Or(Vec<Expr>),
}

/// A license that becomes a LicenseRef: Debian's name (a short name, or a
/// whole `X with Y exception` term) and the text the copyright file gives.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Ref {
    pub name: String,
    pub text: Option<String>,
}

/// SPDX License List identifiers that Debian packages use, each checked
/// against the list of the validator (spdx-tools 0.8.5 with
/// license-expression 30.4.4): one it does not know would make the
/// document invalid, one missing here only makes a LicenseRef. Matched
/// ignoring case, written as listed.
pub(super) const LISTED: &str = "\
    0BSD AFL-1.1 AFL-1.2 AFL-2.0 AFL-2.1 AFL-3.0 Apache-1.0 Apache-1.1 \
    Apache-2.0 Artistic-1.0 Artistic-1.0-Perl Artistic-1.0-cl8 Artistic-2.0 \
    Artistic-dist Beerware Bitstream-Vera blessing BSD-1-Clause BSD-2-Clause \
    BSD-2-Clause-Patent BSD-3-Clause BSD-3-Clause-Clear BSD-3-Clause-HP \
    BSD-4-Clause BSD-4-Clause-UC BSL-1.0 bzip2-1.0.6 CC-BY-3.0 CC-BY-4.0 \
    CC-BY-SA-3.0 CC-BY-SA-4.0 CC0-1.0 CDDL-1.0 CDDL-1.1 CPL-1.0 curl EPL-1.0 \
    EPL-2.0 FSFAP FSFUL FSFULLR FTL GD HPND ICU IJG Info-ZIP IPL-1.0 ISC Kazlib \
    Latex2e Libpng libpng-2.0 libtiff Linux-man-pages-copyleft LPPL-1.3c MirOS \
    MIT MIT-0 MIT-CMU MIT-Modern-Variant MPL-1.1 MPL-2.0 MS-PL NCSA NTP OFL-1.1 \
    OLDAP-2.8 OpenSSL PHP-3.01 PSF-2.0 Python-2.0 Qhull Ruby Sendmail SGI-B-2.0 \
    Sleepycat SMAIL-GPL Spencer-86 Spencer-94 Spencer-99 SSH-OpenSSH SSH-short \
    SunPro TCL TCP-wrappers Unicode-3.0 Unicode-DFS-2015 Unicode-DFS-2016 \
    Unlicense Vim W3C WTFPL X11 Zlib zlib-acknowledgement";

/// SPDX license exceptions, checked, matched and written as [`LISTED`].
pub(super) const EXCEPTIONS: &str = "\
    Autoconf-exception-2.0 Autoconf-exception-3.0 Autoconf-exception-generic \
    Autoconf-exception-generic-3.0 Autoconf-exception-macro Bison-exception-1.24 \
    Bison-exception-2.2 Bootloader-exception Classpath-exception-2.0 \
    cryptsetup-OpenSSL-exception eCos-exception-2.0 Font-exception-2.0 \
    GCC-exception-2.0 GCC-exception-3.1 GNU-compiler-exception \
    GPL-3.0-linking-exception LGPL-3.0-linking-exception Libtool-exception \
    Linux-syscall-note LLVM-exception OCaml-LGPL-linking-exception \
    openvpn-openssl-exception Qt-LGPL-exception-1.1 Texinfo-exception \
    u-boot-exception-2.0 Universal-FOSS-exception-1.0 WxWindows-exception-3.1 \
    x11vnc-openssl-exception";

/// Debian short names (copyright-format 1.0's list and common practice,
/// lowercase) whose SPDX identifier is spelled otherwise. `Artistic` is
/// Perl's Artistic License 1.0, the one in /usr/share/common-licenses.
const ALIASES: &[(&str, &str)] = &[
    ("expat", "MIT"),
    ("artistic", "Artistic-1.0-Perl"),
    ("artistic-1", "Artistic-1.0-Perl"),
    ("cc0", "CC0-1.0"),
    ("mpl-1.1", "MPL-1.1"),
    ("python", "Python-2.0"),
    ("psf-2", "PSF-2.0"),
];

/// A GNU license family.
struct Gnu {
    /// Debian's name, lowercase (`gfdl-niv`: without invariant sections).
    debian: &'static str,
    spdx: &'static str,
    /// The versions SPDX lists, each with the way Debian may shorten it.
    versions: &'static [(&'static str, &'static str)],
    /// What an unversioned name means: "any version ever published"
    /// (GPL-2.0 section 9), i.e. the first or later.
    unversioned: Option<&'static str>,
}

/// Longest name first: `gfdl-niv` before `gfdl`.
const GNU: &[Gnu] = &[
    Gnu {
        debian: "gfdl-niv",
        spdx: "GFDL",
        versions: &[("1.1", "1.1"), ("1.2", "1.2"), ("1.3", "1.3")],
        unversioned: Some("1.1"),
    },
    Gnu {
        debian: "agpl",
        spdx: "AGPL",
        versions: &[("1", "1.0"), ("3", "3.0")],
        unversioned: None,
    },
    Gnu {
        debian: "lgpl",
        spdx: "LGPL",
        versions: &[("2", "2.0"), ("2.1", "2.1"), ("3", "3.0")],
        unversioned: Some("2.0"),
    },
    Gnu {
        debian: "gpl",
        spdx: "GPL",
        versions: &[("1", "1.0"), ("2", "2.0"), ("3", "3.0")],
        unversioned: Some("1.0"),
    },
    Gnu {
        debian: "gfdl",
        spdx: "GFDL",
        versions: &[("1.1", "1.1"), ("1.2", "1.2"), ("1.3", "1.3")],
        unversioned: Some("1.1"),
    },
];

/// The SPDX expression of a license synopsis from `lic`'s copyright file;
/// unknown names take their texts from it.
pub fn from_debian(synopsis: &str, lic: &Licensing) -> Expr {
    let words = tokens(synopsis);
    parse(&words, lic).unwrap_or_else(|| other(synopsis.trim(), lic))
}

fn other(name: &str, lic: &Licensing) -> Expr {
    let name = name.split_whitespace().collect::<Vec<_>>().join(" ");
    Expr::Other(Ref {
        text: lic.text(&name).map(str::to_owned),
        name,
    })
}

/// Words, with commas as words of their own.
fn tokens(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    for w in s.split_whitespace() {
        let mut w = w;
        let mut trailing = 0;
        while let Some(rest) = w.strip_suffix(',') {
            w = rest;
            trailing += 1;
        }
        if !w.is_empty() {
            out.push(w);
        }
        out.extend(std::iter::repeat_n(",", trailing));
    }
    out
}

fn is_word(w: &str, op: &str) -> bool {
    w.eq_ignore_ascii_case(op)
}

/// `group (, and|or group)*`, left to right; `None` when malformed.
fn parse(words: &[&str], lic: &Licensing) -> Option<Expr> {
    let mut parts = words.split(|w| *w == ",");
    let mut acc = group(parts.next()?, lic)?;
    for part in parts {
        let (op, rest) = part.split_first()?;
        let next = group(rest, lic)?;
        acc = if is_word(op, "and") {
            all(vec![acc, next])
        } else if is_word(op, "or") {
            any(vec![acc, next])
        } else {
            return None;
        };
    }
    Some(acc)
}

/// `conj (or conj)*` where `conj` is `term (and term)*`.
fn group(words: &[&str], lic: &Licensing) -> Option<Expr> {
    let alternatives = words
        .split(|w| is_word(w, "or"))
        .map(|alt| {
            let terms = alt
                .split(|w| is_word(w, "and"))
                .map(|t| term(t, lic))
                .collect::<Option<Vec<_>>>()?;
            Some(all(terms))
        })
        .collect::<Option<Vec<_>>>()?;
    Some(any(alternatives))
}

/// One license, possibly `with ... exception`.
fn term(words: &[&str], lic: &Licensing) -> Option<Expr> {
    if words.is_empty() {
        return None;
    }
    let whole = words.join(" ");
    let (name, exception) = match words.iter().position(|w| is_word(w, "with")) {
        Some(i) => (words[..i].join(" "), Some(words[i + 1..].join(" "))),
        None => match split_with(&whole) {
            Some((n, e)) => (n.to_owned(), Some(e.to_owned())),
            None => (whole.clone(), None),
        },
    };
    if name.is_empty() || exception.as_deref() == Some("") {
        return None;
    }
    let listed = listed(&name);
    Some(match (listed, exception) {
        (Some(e), None) => e,
        (Some(Expr::Listed(id)), Some(x)) => match exception_id(&id, &x) {
            Some(x) => Expr::With(id, x),
            None => other(&whole, lic),
        },
        _ => other(&whole, lic),
    })
}

/// `LGPL-2.1+-with-link-exception` as `LGPL-2.1+` and `link-exception`.
fn split_with(word: &str) -> Option<(&str, &str)> {
    let i = word.to_ascii_lowercase().find("-with-")?;
    Some((&word[..i], &word[i + "-with-".len()..]))
}

/// The SPDX expression of one Debian short name, if SPDX lists it.
fn listed(name: &str) -> Option<Expr> {
    let lower = name.to_ascii_lowercase();
    if lower == "perl" {
        // copyright-format 1.0: "Perl license (use `GPL-1+ or Artistic-1`)".
        return Some(any(vec![
            Expr::Listed("GPL-1.0-or-later".into()),
            Expr::Listed("Artistic-1.0-Perl".into()),
        ]));
    }
    if let Some(id) = gnu(&lower) {
        return Some(Expr::Listed(id));
    }
    if let Some((_, id)) = ALIASES.iter().find(|(a, _)| *a == lower) {
        return Some(Expr::Listed((*id).to_owned()));
    }
    let exact = |n: &str| {
        LISTED
            .split_whitespace()
            .find(|id| id.eq_ignore_ascii_case(n))
    };
    // `Apache-2` for `Apache-2.0`, `CC-BY-SA-4` for `CC-BY-SA-4.0`.
    let id = exact(name).or_else(|| {
        let last = name.rsplit('-').next()?;
        last.bytes()
            .all(|b| b.is_ascii_digit())
            .then(|| exact(&format!("{name}.0")))
            .flatten()
    })?;
    Some(Expr::Listed(id.to_owned()))
}

/// `GPL-2+`, `GPL-2.0+`, `GPL-2`, `GPL-2.0-only`, `LGPL-2.1-or-later`,
/// `GFDL-NIV-1.3+`, `GPL` as their SPDX identifiers (lowercase input).
fn gnu(lower: &str) -> Option<String> {
    for family in GNU {
        let Some(rest) = lower.strip_prefix(family.debian) else {
            continue;
        };
        let (rest, later) = if let Some(r) = rest.strip_suffix('+') {
            (r, true)
        } else if let Some(r) = rest.strip_suffix("-or-later") {
            (r, true)
        } else {
            (rest.strip_suffix("-only").unwrap_or(rest), false)
        };
        let version = match rest.strip_prefix('-') {
            Some(v) => family
                .versions
                .iter()
                .find(|(short, long)| v == *short || v == *long)
                .map(|(_, long)| *long)?,
            None if rest.is_empty() => {
                let v = family.unversioned?;
                return Some(family.id(v, true));
            }
            None => continue,
        };
        return Some(family.id(version, later));
    }
    None
}

impl Gnu {
    fn id(&self, version: &str, later: bool) -> String {
        let niv = if self.debian == "gfdl-niv" {
            "-no-invariants"
        } else {
            ""
        };
        let range = if later { "or-later" } else { "only" };
        format!("{}-{version}{niv}-{range}", self.spdx)
    }
}

/// The SPDX exception for Debian's `with <text>` on license `id`: a
/// listed identifier as such, else the names Debian uses for the GNU
/// exceptions, whose SPDX version follows the GPL's.
fn exception_id(id: &str, text: &str) -> Option<&'static str> {
    let key = text
        .split_whitespace()
        .collect::<Vec<_>>()
        .join("-")
        .to_ascii_lowercase();
    let exact = |n: &str| {
        EXCEPTIONS
            .split_whitespace()
            .find(|x| x.eq_ignore_ascii_case(n))
    };
    if let Some(x) = exact(&key) {
        return Some(x);
    }
    let short = key.strip_suffix("-exception").unwrap_or(&key);
    let gpl3 = id.starts_with("GPL-3.0");
    let gpl2 = id.starts_with("GPL-2.0");
    Some(match short {
        "linux-syscall-note" => "Linux-syscall-note",
        "bison-2.2" => "Bison-exception-2.2",
        "bison" if gpl3 => "Bison-exception-2.2",
        "autoconf" if gpl3 => "Autoconf-exception-3.0",
        "autoconf" if gpl2 => "Autoconf-exception-2.0",
        "gcc-3.1" | "gcc-runtime-library" => "GCC-exception-3.1",
        "gcc" if gpl3 => "GCC-exception-3.1",
        "gcc" if gpl2 => "GCC-exception-2.0",
        "libtool" => "Libtool-exception",
        "font" => "Font-exception-2.0",
        "classpath" => "Classpath-exception-2.0",
        "texinfo" => "Texinfo-exception",
        "llvm" => "LLVM-exception",
        _ => return None,
    })
}

/// `a AND b`, nested ANDs flattened, repeats dropped.
pub fn all(items: Vec<Expr>) -> Expr {
    join(items, true)
}

/// `a OR b`, likewise.
pub fn any(items: Vec<Expr>) -> Expr {
    join(items, false)
}

fn join(items: Vec<Expr>, and: bool) -> Expr {
    let mut out: Vec<Expr> = Vec::new();
    for e in items {
        let inner = match e {
            Expr::And(v) if and => v,
            Expr::Or(v) if !and => v,
            e => vec![e],
        };
        for e in inner {
            if !out.contains(&e) {
                out.push(e);
            }
        }
    }
    match out.len() {
        1 => out.pop().expect("one element"),
        _ if and => Expr::And(out),
        _ => Expr::Or(out),
    }
}

impl Expr {
    /// Every [`Ref`] in the expression.
    pub fn refs(&self) -> Vec<&Ref> {
        match self {
            Expr::Other(r) => vec![r],
            Expr::And(v) | Expr::Or(v) => v.iter().flat_map(Expr::refs).collect(),
            Expr::Listed(_) | Expr::With(..) => vec![],
        }
    }

    /// The SPDX expression, LicenseRefs named by `refs`; a compound inside
    /// another is parenthesised, whatever the precedence.
    pub fn render(&self, refs: &Refs) -> String {
        let part = |e: &Expr| match e {
            Expr::And(_) | Expr::Or(_) => format!("({})", e.render(refs)),
            e => e.render(refs),
        };
        match self {
            Expr::Listed(id) => id.clone(),
            Expr::With(id, x) => format!("{id} WITH {x}"),
            Expr::Other(r) => refs.id(r),
            Expr::And(v) => v.iter().map(part).collect::<Vec<_>>().join(" AND "),
            Expr::Or(v) => v.iter().map(part).collect::<Vec<_>>().join(" OR "),
        }
    }
}

/// The LicenseRefs of a document: one per Debian name and text. A name
/// given with one text (or none) throughout is `LicenseRef-<name>`; one
/// given with several (`custom`, `permissive`: each package's own) gets
/// the first 8 hex digits of its text's sha256 after the name.
#[derive(Debug, Default)]
pub struct Refs {
    /// Sanitised name, lowercase -> text -> who used it.
    groups: BTreeMap<String, BTreeMap<Option<String>, Users>>,
}

#[derive(Debug, Default)]
struct Users {
    names: BTreeSet<String>,
    packages: BTreeSet<String>,
}

/// One `hasExtractedLicensingInfos` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extracted {
    pub id: String,
    pub name: String,
    pub text: String,
    pub comment: String,
}

impl Refs {
    /// Records that `package`'s copyright file uses `r`.
    pub fn add(&mut self, r: &Ref, package: &str) {
        let users = self
            .groups
            .entry(sanitise(&r.name).to_ascii_lowercase())
            .or_default()
            .entry(r.text.clone())
            .or_default();
        users.names.insert(r.name.clone());
        users.packages.insert(package.to_owned());
    }

    /// The LicenseRef of a recorded `r`.
    pub fn id(&self, r: &Ref) -> String {
        let key = sanitise(&r.name).to_ascii_lowercase();
        let Some(group) = self.groups.get(&key) else {
            return format!("LicenseRef-{}", sanitise(&r.name));
        };
        // The same spelling for every member: the smallest name used.
        let base = group
            .values()
            .flat_map(|u| u.names.iter())
            .min()
            .map_or_else(|| sanitise(&r.name), |n| sanitise(n));
        if group.len() == 1 {
            format!("LicenseRef-{base}")
        } else {
            let text = r.text.as_deref().unwrap_or_default();
            format!(
                "LicenseRef-{base}-{}",
                &Sha256::of(text.as_bytes()).to_hex()[..8]
            )
        }
    }

    /// The entries, sorted by identifier.
    pub fn extracted(&self) -> Vec<Extracted> {
        let mut out: Vec<Extracted> = self
            .groups
            .values()
            .flat_map(|group| group.iter())
            .map(|(text, users)| {
                let name = users.names.iter().next().cloned().unwrap_or_default();
                let packages = users.packages.iter().cloned().collect::<Vec<_>>();
                let id = self.id(&Ref {
                    name: name.clone(),
                    text: text.clone(),
                });
                let text = text.clone().unwrap_or_else(|| {
                    format!(
                        "The Debian copyright file names this license `{name}` without \
                         giving its text: see /usr/share/doc/<package>/copyright in {}.",
                        packages.join(", ")
                    )
                });
                Extracted {
                    comment: format!(
                        "Debian license short name `{name}`, in the copyright file of {}.",
                        packages.join(", ")
                    ),
                    id,
                    name,
                    text,
                }
            })
            .collect();
        out.sort_by(|a, b| a.id.cmp(&b.id));
        out
    }
}

/// A LicenseRef's idstring ([A-Za-z0-9.-]+, SPDX 2.3 annex D): `+` is
/// spelled `plus`, anything else outside the set is `-`, runs of `-`
/// collapse.
pub fn sanitise(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        match c {
            'A'..='Z' | 'a'..='z' | '0'..='9' | '.' => out.push(c),
            '+' => out.push_str("plus"),
            _ if !out.ends_with('-') => out.push('-'),
            _ => {}
        }
    }
    let out = out.trim_matches('-');
    if out.is_empty() {
        "unnamed".to_owned()
    } else {
        out.to_owned()
    }
}
