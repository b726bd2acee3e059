//! Validation of `[[artifact]]` entries: the URL (absolute, or a local path
//! resolved against the profile that names it), the sha256, and the files
//! taken into the image with their destinations and modes.
//!
//! Nothing is downloaded or read here; the fetch stage does that and checks
//! the digest.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Result;
use toml::Spanned;

use super::names;
use super::raw::{RawArtifact, RawArtifactFile};
use super::source::{At, FileId, Files, Src, normalize};
use super::validate::check;
use super::{ARTIFACT_DESTINATION_ROOTS, Artifact, ArtifactFile};
use crate::digest::Sha256;

pub(super) fn artifacts(
    files: &Files,
    raws: &[(FileId, Spanned<RawArtifact>)],
) -> Result<Vec<Artifact>> {
    // destination -> (artifact name, position): two artifacts writing one
    // file would make the image depend on their order.
    let mut destinations: BTreeMap<String, (String, At)> = BTreeMap::new();
    let mut out = Vec::new();
    for (file, raw) in raws {
        let a = artifact(files, *file, raw)?;
        let entries = raw
            .get_ref()
            .files
            .as_ref()
            .map(|f| f.get_ref().as_slice())
            .unwrap_or_default();
        for (f, entry) in a.files.iter().zip(entries) {
            let at = entry
                .get_ref()
                .destination
                .as_ref()
                .map_or(At::of(*file, entry), |d| At::of(*file, d));
            if let Some((other, first)) =
                destinations.insert(f.destination.clone(), (a.name.clone(), at))
            {
                return Err(files.err(
                    at,
                    format!(
                        "artifact `{}`: destination {} is also written by artifact `{other}` at {}",
                        a.name,
                        f.destination,
                        files.position(first)
                    ),
                ));
            }
        }
        out.push(a);
    }
    Ok(out)
}

fn artifact(files: &Files, file: FileId, raw: &Spanned<RawArtifact>) -> Result<Artifact> {
    let header = At::of(file, raw);
    let r = raw.get_ref();
    let name = r
        .name
        .clone()
        .map(|n| Src::from_spanned(file, n))
        .ok_or_else(|| files.err(header, "[[artifact]]: missing `name`"))?;
    check(files, "[[artifact]] name", &name, names::entry_name)?;
    let label = |key: &str| format!("artifact `{}`: {key}", name.value);
    let missing = |key: &str| {
        files.err(
            header,
            format!("artifact `{}`: missing `{key}`", name.value),
        )
    };

    let url = r.url.clone().ok_or_else(|| missing("url"))?;
    let url = resolve_url(&files.get(file).abs, url.get_ref())
        .map_err(|why| files.err(At::of(file, &url), format!("{}: {why}", label("url"))))?;

    let sha = r.sha256.as_ref().ok_or_else(|| missing("sha256"))?;
    let sha256: Sha256 = sha
        .get_ref()
        .parse()
        .map_err(|e| files.err(At::of(file, sha), format!("{}: {e}", label("sha256"))))?;

    let list = r.files.as_ref().ok_or_else(|| missing("files"))?;
    if list.get_ref().is_empty() {
        return Err(files.err(
            At::of(file, list),
            format!("{}: expected at least one file to take", label("files")),
        ));
    }
    let mut taken = Vec::new();
    for (i, entry) in list.get_ref().iter().enumerate() {
        taken.push(artifact_file(
            files,
            file,
            &label(&format!("files[{i}]")),
            entry,
        )?);
    }
    Ok(Artifact {
        name: name.value,
        url,
        sha256,
        files: taken,
    })
}

fn artifact_file(
    files: &Files,
    file: FileId,
    label: &str,
    entry: &Spanned<RawArtifactFile>,
) -> Result<ArtifactFile> {
    let e = entry.get_ref();
    let missing = |key: &str| files.err(At::of(file, entry), format!("{label}: missing `{key}`"));
    let source = match &e.source {
        None => None,
        Some(s) => {
            let s = Src::from_spanned(file, s.clone());
            check(files, &format!("{label}.source"), &s, archive_member)?;
            Some(s.value)
        }
    };
    let destination = e
        .destination
        .clone()
        .ok_or_else(|| missing("destination"))?;
    let destination = Src::from_spanned(file, destination);
    check(
        files,
        &format!("{label}.destination"),
        &destination,
        image_path,
    )?;
    let mode = e.mode.as_ref().ok_or_else(|| missing("mode"))?;
    let mode_at = At::of(file, mode);
    let written = files.get(file).text.get(mode.span()).unwrap_or("?");
    let mode = match mode.get_ref() {
        toml::Value::String(s) => parse_mode(s),
        _ => Err(
            "is not a file mode: write it as a string of octal digits, like \"0755\"".to_string(),
        ),
    }
    .map_err(|why| files.err(mode_at, format!("{label}.mode: {written} {why}")))?;
    Ok(ArtifactFile {
        source,
        destination: destination.value,
        mode,
    })
}

/// http(s) and file:// URLs are taken as they are; anything without a
/// scheme is a local path, relative to the folder of the profile that
/// names it, and becomes a `file://` URL of the absolute path (what the
/// http module reads; it does not percent-decode).
fn resolve_url(profile: &Path, url: &str) -> Result<String, String> {
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!("`{url}` contains whitespace"));
    }
    if let Some(rest) = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
    {
        if rest.is_empty() || rest.starts_with('/') {
            return Err(format!("`{url}` has no host"));
        }
        return Ok(url.to_string());
    }
    if let Some(rest) = url.strip_prefix("file://") {
        if !rest.starts_with('/') {
            return Err(format!(
                "`{url}` is not an absolute file URL (file:///PATH); write a relative path \
                 without file:// to name a file beside the profile"
            ));
        }
        return Ok(url.to_string());
    }
    // A scheme is letters, digits, + - . before a colon (RFC 3986 3.1).
    let scheme = url.split_once(':').map(|(s, _)| s).filter(|s| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
    });
    if let Some(scheme) = scheme {
        return Err(format!(
            "unsupported URL scheme `{scheme}`, expected http://, https://, file:// or a \
             path relative to the profile"
        ));
    }
    if url.is_empty() {
        return Err("empty URL".to_string());
    }
    let dir = profile.parent().unwrap_or(Path::new("/"));
    let abs = normalize(&dir.join(url));
    let abs = abs
        .to_str()
        .ok_or_else(|| format!("`{url}` resolves to a path that is not UTF-8"))?;
    Ok(format!("file://{abs}"))
}

/// A member of the downloaded archive: relative, and never leaving it.
fn archive_member(s: &str) -> Result<(), String> {
    if s.is_empty() || s.starts_with('/') {
        return Err("is not a relative path inside the archive".to_string());
    }
    if s.split('/').any(|c| c == "..") {
        return Err("must not contain `..`".to_string());
    }
    Ok(())
}

/// A file in the image: absolute, plain (no `.`, `..` or empty components),
/// and under /usr or /etc: the rest of the tree is not part of the image
/// (/etc becomes the factory copy in /usr, docs/architecture.md "Root filesystem").
pub(super) fn image_path(s: &str) -> Result<(), String> {
    let Some(rel) = s.strip_prefix('/') else {
        return Err("is not an absolute path".to_string());
    };
    if rel
        .split('/')
        .any(|c| c.is_empty() || c == "." || c == "..")
    {
        return Err("must not contain empty, `.` or `..` components".to_string());
    }
    if !ARTIFACT_DESTINATION_ROOTS
        .iter()
        .any(|root| rel.strip_prefix(root).is_some_and(|r| r.starts_with('/')))
    {
        let roots: Vec<String> = ARTIFACT_DESTINATION_ROOTS
            .iter()
            .map(|r| format!("/{r}"))
            .collect();
        return Err(format!("is not under {}", roots.join(" or ")));
    }
    Ok(())
}

/// Modes are strings of octal digits ("0755"): a TOML integer 755 would be
/// decimal, the classic trap.
pub(super) fn parse_mode(s: &str) -> Result<u32, String> {
    let octal = (3..=4).contains(&s.len()) && s.chars().all(|c| matches!(c, '0'..='7'));
    if !octal {
        return Err("is not a file mode: expected 3 or 4 octal digits, like \"0755\"".to_string());
    }
    u32::from_str_radix(s, 8).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_local_paths() {
        let p = Path::new("/srv/profiles/x.toml");
        let https = "https://github.com/rkt/rkt/releases/download/v1.30.0/rkt-v1.30.0.tar.gz";
        assert_eq!(resolve_url(p, https).as_deref(), Ok(https));
        assert_eq!(
            resolve_url(p, "fixtures/../rkt.tar.gz").as_deref(),
            Ok("file:///srv/profiles/rkt.tar.gz")
        );
        assert_eq!(
            resolve_url(p, "/abs/rkt.tar.gz").as_deref(),
            Ok("file:///abs/rkt.tar.gz")
        );
        assert!(resolve_url(p, "file://rkt.tar.gz").is_err());
        assert!(resolve_url(p, "ftp://host/x").is_err());
        assert!(resolve_url(p, "https://").is_err());
    }

    #[test]
    fn destinations_and_modes() {
        assert!(image_path("/usr/bin/rkt").is_ok());
        assert!(image_path("/etc/rkt/net.d/10-x.conf").is_ok());
        for bad in [
            "usr/bin/rkt",
            "/usr/../bin/x",
            "/usr//bin",
            "/opt/x",
            "/usrx/y",
            "/usr",
        ] {
            assert!(image_path(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_mode("0755"), Ok(0o755));
        assert_eq!(parse_mode("644"), Ok(0o644));
        assert!(parse_mode("0855").is_err());
        assert!(parse_mode("75").is_err());
    }
}
