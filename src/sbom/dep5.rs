//! Debian's machine-readable copyright file (copyright-format 1.0, first
//! drafted as DEP-5): which licenses a package declares, read from its
//! `/usr/share/doc/<package>/copyright`.
//!
//! Only the licensing is taken: the `Files: *` paragraph's `License` (the
//! package's main license), every Files paragraph's `License`, and the texts
//! that stand-alone License paragraphs give for short names. Copyright
//! holders, comments and file patterns are not read. Mapping the short names
//! to SPDX is `license`'s job. A file in another format, or one that does not
//! parse as deb822, is "not machine-readable": the caller says NOASSERTION.

use std::collections::BTreeMap;

use crate::repo::deb822;

/// What a machine-readable copyright file says about licensing; license
/// fields are their first line (the synopsis, e.g. `GPL-2+ or Artistic`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Licensing {
    /// The `Files: *` paragraph's license, else the header's `License`.
    pub main: Option<String>,
    /// Every Files paragraph's license in file order, without repeats
    /// (the main one included).
    pub files: Vec<String>,
    /// Short name (or whole synopsis) -> license text, from stand-alone
    /// License paragraphs and from License fields that carry their text.
    pub texts: BTreeMap<String, String>,
}

impl Licensing {
    /// The text given for `name`, matched exactly, else ignoring case.
    pub fn text(&self, name: &str) -> Option<&str> {
        self.texts
            .get(name)
            .or_else(|| {
                self.texts
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(name))
                    .map(|(_, v)| v)
            })
            .map(String::as_str)
    }
}

/// Whether a header's `Format` names copyright-format 1.0
/// (`https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/`,
/// also written with http or without the final slash) or a DEP-5 draft
/// (`http://dep.debian.net/deps/dep5`), whose Files and License
/// paragraphs are the same.
fn is_machine_readable(format: &str) -> bool {
    format.contains("/copyright-format/1.0") || format.contains("/deps/dep5")
}

/// The licensing of a copyright file, or `None` when it is not in the
/// machine-readable format or does not parse.
pub fn parse(text: &str) -> Option<Licensing> {
    // Lines that start with `#` are comments (Debian Policy 5.1, which
    // copyright files use: containerd's and qemu's have them).
    let text: String = text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .flat_map(|l| [l, "\n"])
        .collect();
    let paragraphs: Vec<deb822::Paragraph> = match deb822::paragraphs(&text).collect() {
        Ok(ps) => ps,
        Err(e) => {
            tracing::debug!("copyright file is not deb822: {e:#}");
            return None;
        }
    };
    let (header, rest) = paragraphs.split_first()?;
    if !header.get("Format").is_some_and(is_machine_readable) {
        return None;
    }
    let mut out = Licensing::default();
    // Stand-alone License paragraphs first: they are where a text is meant
    // to be, a Files paragraph's own text is the fallback.
    for p in rest.iter().filter(|p| p.get("Files").is_none()) {
        if let Some(l) = p.get("License") {
            remember(l, &mut out);
        }
    }
    for p in rest {
        let (Some(files), Some(l)) = (p.get("Files"), p.get("License")) else {
            continue;
        };
        let synopsis = remember(l, &mut out);
        if synopsis.is_empty() {
            continue;
        }
        if out.main.is_none() && files.split_whitespace().any(|f| f == "*") {
            out.main = Some(synopsis.clone());
        }
        if !out.files.contains(&synopsis) {
            out.files.push(synopsis);
        }
    }
    if out.main.is_none() {
        out.main = header
            .get("License")
            .map(|l| remember(l, &mut out))
            .filter(|s| !s.is_empty());
    }
    Some(out)
}

/// A License field's synopsis, keeping its text (the first given for a
/// synopsis wins).
fn remember(field: &str, out: &mut Licensing) -> String {
    let (synopsis, body) = split_license(field);
    if !body.is_empty() && !synopsis.is_empty() {
        out.texts.entry(synopsis.to_owned()).or_insert(body);
    }
    synopsis.to_owned()
}

/// A License field's synopsis (first line, blanks collapsed) and text: the
/// remaining lines without their one leading blank, ` .` lines as empty
/// lines (Debian Policy 5.6.13's convention for description bodies).
fn split_license(field: &str) -> (&str, String) {
    let (first, rest) = field.split_once('\n').unwrap_or((field, ""));
    let body: Vec<&str> = rest
        .lines()
        .map(|l| {
            let l = l.strip_prefix([' ', '\t']).unwrap_or(l);
            if l.trim() == "." { "" } else { l.trim_end() }
        })
        .collect();
    (first.trim(), body.join("\n").trim_matches('\n').to_owned())
}
