//! The host's apt sources (/etc/apt/sources.list, sources.list.d/*.list in
//! the one-line format and sources.list.d/*.sources in deb822), read only to
//! find mirror URLs. Formats: sources.list(5).
//!
//! This does not configure apt or read apt.conf; `deb-src` entries, disabled
//! entries (`Enabled: no`) and schemes other than http, https and file are
//! skipped because craton cannot fetch from them.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// The folder apt reads its sources from.
pub const APT_ETC: &str = "/etc/apt";

/// One `deb` entry of the host's apt configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AptSource {
    /// The repository root, without a trailing slash.
    pub uri: String,
    pub suites: Vec<String>,
    pub components: Vec<String>,
    /// The file it came from, for messages.
    pub file: PathBuf,
}

/// Reads every `deb` entry below `etc` (normally [`APT_ETC`]), in apt's
/// order: sources.list first, then sources.list.d sorted by name.
pub fn read(etc: &Path) -> Result<Vec<AptSource>> {
    let mut out = Vec::new();
    let main = etc.join("sources.list");
    if main.is_file() {
        out.extend(parse_one_line(&read_text(&main)?, &main));
    }
    let dir = etc.join("sources.list.d");
    let mut files: Vec<PathBuf> = match fs::read_dir(&dir) {
        Ok(rd) => rd.filter_map(|e| e.ok().map(|e| e.path())).collect(),
        Err(_) => Vec::new(),
    };
    files.sort();
    for f in files {
        match f.extension().and_then(|e| e.to_str()) {
            Some("list") => out.extend(parse_one_line(&read_text(&f)?, &f)),
            Some("sources") => out.extend(parse_deb822(&read_text(&f)?, &f)),
            _ => {}
        }
    }
    Ok(out)
}

fn read_text(p: &Path) -> Result<String> {
    fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))
}

/// The one-line format: `deb [ options ] uri suite [component ...]`.
pub fn parse_one_line(text: &str, file: &Path) -> Vec<AptSource> {
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("").trim();
        let Some(rest) = line
            .strip_prefix("deb")
            .filter(|r| r.starts_with([' ', '\t']))
        else {
            continue;
        };
        let mut rest = rest.trim_start();
        // Options in brackets may contain spaces: `[ arch=amd64 signed-by=... ]`.
        if let Some(after) = rest.strip_prefix('[') {
            match after.find(']') {
                Some(end) => rest = after[end + 1..].trim_start(),
                None => continue,
            }
        }
        let mut words = rest.split_whitespace();
        let (Some(uri), Some(suite)) = (words.next(), words.next()) else {
            continue;
        };
        if let Some(uri) = usable_uri(uri) {
            out.push(AptSource {
                uri,
                suites: vec![suite.to_owned()],
                components: words.map(str::to_owned).collect(),
                file: file.to_owned(),
            });
        }
    }
    out
}

/// The deb822 format: stanzas with Types, URIs, Suites, Components, Enabled.
pub fn parse_deb822(text: &str, file: &Path) -> Vec<AptSource> {
    let mut out = Vec::new();
    for stanza in stanzas(text) {
        let get = |k: &str| {
            stanza
                .iter()
                .find(|(key, _)| key.eq_ignore_ascii_case(k))
                .map(|(_, v)| v.as_str())
        };
        let words = |k: &str| -> Vec<String> {
            get(k)
                .map(|v| v.split_whitespace().map(str::to_owned).collect())
                .unwrap_or_default()
        };
        if !words("Types").iter().any(|t| t == "deb") {
            continue;
        }
        if get("Enabled").is_some_and(|v| v.trim().eq_ignore_ascii_case("no")) {
            continue;
        }
        for uri in words("URIs") {
            if let Some(uri) = usable_uri(&uri) {
                out.push(AptSource {
                    uri,
                    suites: words("Suites"),
                    components: words("Components"),
                    file: file.to_owned(),
                });
            }
        }
    }
    out
}

/// Splits deb822 text into stanzas of (field, value); continuation lines
/// (starting with white space) extend the previous value; `#` lines are
/// comments.
fn stanzas(text: &str) -> Vec<Vec<(String, String)>> {
    let mut all = Vec::new();
    let mut cur: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        if line.starts_with('#') {
            continue;
        }
        if line.trim().is_empty() {
            if !cur.is_empty() {
                all.push(std::mem::take(&mut cur));
            }
            continue;
        }
        if line.starts_with([' ', '\t']) {
            if let Some((_, v)) = cur.last_mut() {
                v.push(' ');
                v.push_str(line.trim());
            }
            continue;
        }
        if let Some((k, v)) = line.split_once(':') {
            cur.push((k.trim().to_owned(), v.trim().to_owned()));
        }
    }
    if !cur.is_empty() {
        all.push(cur);
    }
    all
}

fn usable_uri(uri: &str) -> Option<String> {
    let ok = ["http://", "https://", "file:/"]
        .iter()
        .any(|s| uri.starts_with(s));
    ok.then(|| uri.trim_end_matches('/').to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_with_options_and_comments() {
        let text = "# comment\n\
            deb [arch=amd64 signed-by=/k.gpg] http://mirror.example/debian/ trixie main contrib\n\
            deb-src http://mirror.example/debian trixie main\n\
            deb cdrom:[Debian]/ trixie main\n\
            deb http://mirror.example/debian-security trixie-security main # tail\n";
        let got = parse_one_line(text, Path::new("x.list"));
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].uri, "http://mirror.example/debian");
        assert_eq!(got[0].suites, ["trixie"]);
        assert_eq!(got[0].components, ["main", "contrib"]);
        assert_eq!(got[1].uri, "http://mirror.example/debian-security");
    }

    #[test]
    fn deb822_stanzas() {
        let text = "Types: deb deb-src\n\
            # http://snapshot.example/archive\n\
            URIs: http://mirror.example/debian\n\
            Suites: bookworm bookworm-updates\n\
            Components: main\n\
            \n\
            Types: deb\n\
            URIs: http://mirror.example/debian-security\n\
            Suites: bookworm-security\n\
            Components: main\n\
            \n\
            Types: deb\n\
            URIs: http://other.example/x\n\
            Suites: x\n\
            Enabled: no\n";
        let got = parse_deb822(text, Path::new("debian.sources"));
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].suites, ["bookworm", "bookworm-updates"]);
        assert_eq!(got[1].uri, "http://mirror.example/debian-security");
    }

    #[test]
    fn reads_a_tree_in_apt_order() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        fs::create_dir(d.join("sources.list.d")).unwrap();
        fs::write(
            d.join("sources.list"),
            "deb http://a.example/debian trixie main\n",
        )
        .unwrap();
        fs::write(
            d.join("sources.list.d/b.sources"),
            "Types: deb\nURIs: http://b.example/debian\nSuites: trixie\n",
        )
        .unwrap();
        fs::write(
            d.join("sources.list.d/c.list.disabled"),
            "deb http://c.example/ x\n",
        )
        .unwrap();
        let got = read(d).unwrap();
        let uris: Vec<_> = got.iter().map(|s| s.uri.as_str()).collect();
        assert_eq!(uris, ["http://a.example/debian", "http://b.example/debian"]);
    }
}
