//! Step 1: artifacts. Each pinned download is read from the cache (where
//! the fetch stage put it after checking its sha256); a tarball gives the
//! members its `files` name, anything else is installed as it is.
//!
//! Tarballs are recognised by their first bytes, not their URL: gzip, xz,
//! zstd or plain tar. This module does not fetch or verify digests.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::Path;

use anyhow::{Context, Result, bail};

use crate::cache::Cache;
use crate::files::tree;
use crate::profile::{Artifact, ArtifactFile};

/// gzip (RFC 1952 2.3.1 ID1 ID2).
const GZIP_MAGIC: &[u8] = &[0x1f, 0x8b];
/// xz (.xz file format 2.1.1.1 Header Magic Bytes).
const XZ_MAGIC: &[u8] = &[0xfd, b'7', b'z', b'X', b'Z', 0x00];
/// zstd frame magic number 0xFD2FB528, little endian (RFC 8878 3.1.1).
const ZSTD_MAGIC: &[u8] = &[0x28, 0xb5, 0x2f, 0xfd];
/// POSIX ustar (and GNU tar) write "ustar" at offset 257 of each header.
const TAR_MAGIC: &[u8] = b"ustar";
const TAR_MAGIC_OFFSET: usize = 257;

pub fn install(tree: &Path, artifacts: &[Artifact], cache: &Cache) -> Result<()> {
    for a in artifacts {
        let file = cache.path_of(&a.sha256);
        install_one(tree, a, &file)
            .with_context(|| format!("installing artifact `{}` from {}", a.name, file.display()))?;
    }
    Ok(())
}

fn install_one(tree: &Path, a: &Artifact, file: &Path) -> Result<()> {
    let mut members: BTreeMap<&str, Vec<&ArtifactFile>> = BTreeMap::new();
    for f in &a.files {
        match &f.source {
            None => {
                let bytes =
                    std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
                tree::write_file(tree, &f.destination, &bytes, f.mode)?;
            }
            Some(s) => members.entry(s.as_str()).or_default().push(f),
        }
    }
    if members.is_empty() {
        return Ok(());
    }
    let mut archive = tar::Archive::new(open_tarball(file)?);
    let mut found: Vec<&str> = Vec::new();
    for entry in archive.entries().context("reading the tarball")? {
        let mut entry = entry.context("reading the tarball")?;
        let name = entry.path().context("reading a member name")?;
        let name = name.to_string_lossy();
        let name = name
            .trim_start_matches("./")
            .trim_end_matches('/')
            .to_string();
        let Some((&wanted, targets)) = members.get_key_value(name.as_str()) else {
            continue;
        };
        if !entry.header().entry_type().is_file() {
            bail!("member {name} is not a regular file");
        }
        let mut bytes = Vec::new();
        entry
            .read_to_end(&mut bytes)
            .with_context(|| format!("reading member {name}"))?;
        for f in targets {
            tree::write_file(tree, &f.destination, &bytes, f.mode)?;
        }
        found.push(wanted);
    }
    let missing: Vec<&str> = members
        .keys()
        .copied()
        .filter(|m| !found.contains(m))
        .collect();
    if !missing.is_empty() {
        bail!("the tarball has no member {}", missing.join(", "));
    }
    Ok(())
}

/// A reader of the tar stream inside `file`, by its magic bytes.
fn open_tarball(file: &Path) -> Result<Box<dyn Read>> {
    let mut head = [0u8; TAR_MAGIC_OFFSET + 5];
    let n = File::open(file)
        .and_then(|mut f| read_up_to(&mut f, &mut head))
        .with_context(|| format!("reading {}", file.display()))?;
    let head = &head[..n];
    let reader = BufReader::new(File::open(file)?);
    Ok(if head.starts_with(GZIP_MAGIC) {
        Box::new(flate2::read::GzDecoder::new(reader))
    } else if head.starts_with(XZ_MAGIC) {
        Box::new(xz2::read::XzDecoder::new(reader))
    } else if head.starts_with(ZSTD_MAGIC) {
        Box::new(zstd::Decoder::with_buffer(reader)?)
    } else if head.get(TAR_MAGIC_OFFSET..) == Some(TAR_MAGIC) {
        Box::new(reader)
    } else {
        bail!("not a tarball (gzip, xz, zstd or tar), but `files` names members in it")
    })
}

fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::os::unix::fs::PermissionsExt;

    use super::*;
    use crate::digest::Sha256;

    fn tarball(members: &[(&str, &[u8])]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (name, data) in members {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o600);
            h.set_cksum();
            b.append_data(&mut h, name, *data).unwrap();
        }
        b.into_inner().unwrap()
    }

    fn artifact(name: &str, sha256: Sha256, files: &[(Option<&str>, &str, u32)]) -> Artifact {
        Artifact {
            name: name.into(),
            url: "file:///x".into(),
            sha256,
            files: files
                .iter()
                .map(|(s, d, m)| ArtifactFile {
                    source: s.map(str::to_string),
                    destination: d.to_string(),
                    mode: *m,
                })
                .collect(),
        }
    }

    fn cached(cache: &Cache, bytes: &[u8]) -> Sha256 {
        let sha = Sha256::of(bytes);
        fs::write(cache.path_of(&sha), bytes).unwrap();
        sha
    }

    #[test]
    fn tarball_members_and_plain_files() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(dir.path().join("cache")).unwrap();
        let tree = dir.path().join("tree");
        fs::create_dir(&tree).unwrap();
        let tar = tarball(&[("rkt-v1/rkt", b"#!rkt"), ("rkt-v1/unit", b"[Unit]")]);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        io::Write::write_all(&mut gz, &tar).unwrap();
        let zst = zstd::encode_all(&tar[..], 1).unwrap();
        let artifacts = [
            artifact(
                "rkt",
                cached(&cache, &gz.finish().unwrap()),
                &[
                    (Some("rkt-v1/rkt"), "/usr/bin/rkt", 0o755),
                    (
                        Some("rkt-v1/unit"),
                        "/usr/lib/systemd/system/r.service",
                        0o644,
                    ),
                ],
            ),
            artifact(
                "zst",
                cached(&cache, &zst),
                &[(Some("rkt-v1/unit"), "/usr/lib/z.service", 0o644)],
            ),
            artifact(
                "plain-tar",
                cached(&cache, &tar),
                &[(Some("rkt-v1/rkt"), "/usr/lib/t/rkt", 0o700)],
            ),
            artifact(
                "flannel",
                cached(&cache, b"ELF"),
                &[(None, "/usr/bin/flanneld", 0o755)],
            ),
        ];
        install(&tree, &artifacts, &cache).unwrap();
        let check = |p: &str, data: &[u8], mode: u32| {
            let p = tree.join(p);
            assert_eq!(fs::read(&p).unwrap(), data, "{}", p.display());
            assert_eq!(
                fs::metadata(&p).unwrap().permissions().mode() & 0o7777,
                mode
            );
        };
        check("usr/bin/rkt", b"#!rkt", 0o755);
        check("usr/lib/systemd/system/r.service", b"[Unit]", 0o644);
        check("usr/lib/z.service", b"[Unit]", 0o644);
        check("usr/lib/t/rkt", b"#!rkt", 0o700);
        check("usr/bin/flanneld", b"ELF", 0o755);
    }

    #[test]
    fn a_missing_member_names_artifact_and_path() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(dir.path().join("cache")).unwrap();
        let tar = tarball(&[("rkt-v1/rkt", b"#!rkt")]);
        let a = artifact(
            "rkt",
            cached(&cache, &tar),
            &[(Some("rkt-v1/stage1.aci"), "/usr/lib/rkt/stage1.aci", 0o644)],
        );
        let err = install(dir.path(), &[a], &cache).unwrap_err();
        let msg = format!("{err:#}");
        assert!(msg.contains("artifact `rkt`"), "{msg}");
        assert!(
            msg.ends_with("the tarball has no member rkt-v1/stage1.aci"),
            "{msg}"
        );
        let b = artifact(
            "bin",
            cached(&cache, b"ELF"),
            &[(Some("x"), "/usr/bin/x", 0o755)],
        );
        let msg = format!("{:#}", install(dir.path(), &[b], &cache).unwrap_err());
        assert!(msg.contains("not a tarball"), "{msg}");
    }
}
