//! Reading .deb files natively: the ar container (deb(5)) with its
//! `debian-binary`, `control.tar[.gz|.xz|.zst]` and `data.tar[.gz|.xz|.zst]`
//! members. This gives readers over the members; unpacking them into a tree
//! and registering them with dpkg is `unpack`'s job.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

/// The global header of an ar archive (deb(5), ar(5)).
const AR_MAGIC: &[u8; 8] = b"!<arch>\n";
/// Each ar member header is 60 bytes, ending in "`\n".
const AR_HEADER_LEN: usize = 60;
/// The format version in `debian-binary` that dpkg writes since 0.93.
const DEB_FORMAT: &str = "2.0";

/// How a tar member is compressed, from its name's extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Xz,
    Zstd,
}

impl Compression {
    /// The compressed kinds and their file name suffixes.
    const SUFFIXES: [(&str, Self); 3] =
        [(".gz", Self::Gzip), (".xz", Self::Xz), (".zst", Self::Zstd)];

    fn from_name(name: &str, stem: &str) -> Option<Self> {
        match name.strip_prefix(stem)? {
            "" => Some(Self::None),
            rest => Self::SUFFIXES
                .iter()
                .find(|(s, _)| *s == rest)
                .map(|(_, c)| *c),
        }
    }

    /// A file name without its compression suffix, and the compression
    /// (`None` for a name without one).
    pub fn split_suffix(name: &str) -> (&str, Self) {
        Self::SUFFIXES
            .iter()
            .find_map(|(s, c)| name.strip_suffix(s).map(|stem| (stem, *c)))
            .unwrap_or((name, Self::None))
    }

    /// `raw`, decompressed.
    pub fn reader<'a>(self, raw: impl BufRead + Send + 'a) -> Result<Box<dyn Read + Send + 'a>> {
        Ok(match self {
            Self::None => Box::new(raw),
            Self::Gzip => Box::new(flate2::bufread::GzDecoder::new(raw)),
            Self::Xz => Box::new(xz2::bufread::XzDecoder::new(raw)),
            Self::Zstd => Box::new(zstd::stream::read::Decoder::with_buffer(raw)?),
        })
    }
}

/// A member's place in the file.
#[derive(Debug, Clone, Copy)]
struct Member {
    offset: u64,
    size: u64,
    compression: Compression,
}

/// An opened .deb: where its control and data archives lie.
#[derive(Debug)]
pub struct Deb {
    path: PathBuf,
    control: Member,
    data: Member,
}

impl Deb {
    /// Reads the ar headers of `path` and finds the two archives.
    pub fn open(path: &Path) -> Result<Self> {
        let ctx = || format!("reading {}", path.display());
        let mut f = BufReader::new(File::open(path).with_context(ctx)?);
        let mut magic = Vec::with_capacity(AR_MAGIC.len());
        (&mut f)
            .take(AR_MAGIC.len() as u64)
            .read_to_end(&mut magic)
            .with_context(ctx)?;
        if magic != AR_MAGIC {
            bail!("{}: not a .deb (no ar header)", path.display());
        }
        let (mut control, mut data, mut version) = (None, None, None);
        let mut offset = AR_MAGIC.len() as u64;
        loop {
            let mut h = [0u8; AR_HEADER_LEN];
            match f.read_exact(&mut h) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => break,
                Err(e) => return Err(e).with_context(ctx),
            }
            if &h[58..60] != b"`\n" {
                bail!(
                    "{}: corrupt ar member header at byte {offset}",
                    path.display()
                );
            }
            let name = String::from_utf8_lossy(&h[0..16])
                .trim_end()
                .trim_end_matches('/')
                .to_owned();
            let size: u64 = String::from_utf8_lossy(&h[48..58])
                .trim()
                .parse()
                .with_context(|| format!("{}: bad ar member size for {name}", path.display()))?;
            let start = offset + AR_HEADER_LEN as u64;
            if name == "debian-binary" {
                let mut v = vec![0u8; size.min(16) as usize];
                f.read_exact(&mut v).with_context(ctx)?;
                version = Some(String::from_utf8_lossy(&v).trim().to_owned());
            } else if let Some(c) = Compression::from_name(&name, "control.tar") {
                control = Some(Member {
                    offset: start,
                    size,
                    compression: c,
                });
            } else if let Some(c) = Compression::from_name(&name, "data.tar") {
                data = Some(Member {
                    offset: start,
                    size,
                    compression: c,
                });
            }
            // Members are padded to an even length.
            offset = start + size + (size & 1);
            f.seek(SeekFrom::Start(offset)).with_context(ctx)?;
        }
        match version.as_deref() {
            Some(v) if v.split('.').next() == DEB_FORMAT.split('.').next() => {}
            Some(v) => bail!(
                "{}: unsupported .deb format {v}, expected {DEB_FORMAT}",
                path.display()
            ),
            None => bail!("{}: no debian-binary member", path.display()),
        }
        let (Some(control), Some(data)) = (control, data) else {
            bail!("{}: missing control.tar or data.tar member", path.display());
        };
        Ok(Self {
            path: path.to_owned(),
            control,
            data,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The control archive (control, md5sums, conffiles, maintainer scripts).
    pub fn control_tar(&self) -> Result<tar::Archive<Box<dyn Read + Send>>> {
        Ok(tar::Archive::new(self.member(self.control)?))
    }

    /// The data archive: the files the package installs.
    pub fn data_tar(&self) -> Result<tar::Archive<Box<dyn Read + Send>>> {
        Ok(tar::Archive::new(self.member(self.data)?))
    }

    /// The control files as (name, bytes), names without the leading "./".
    pub fn control_files(&self) -> Result<Vec<(String, Vec<u8>)>> {
        let mut out = Vec::new();
        let mut ar = self.control_tar()?;
        let entries = ar
            .entries()
            .with_context(|| format!("reading control.tar of {}", self.path.display()))?;
        for e in entries {
            let mut e =
                e.with_context(|| format!("reading control.tar of {}", self.path.display()))?;
            if !e.header().entry_type().is_file() {
                continue;
            }
            let name = e
                .path()?
                .to_string_lossy()
                .trim_start_matches("./")
                .to_owned();
            let mut buf = Vec::new();
            e.read_to_end(&mut buf)?;
            out.push((name, buf));
        }
        Ok(out)
    }

    fn member(&self, m: Member) -> Result<Box<dyn Read + Send>> {
        let mut f =
            File::open(&self.path).with_context(|| format!("reading {}", self.path.display()))?;
        f.seek(SeekFrom::Start(m.offset))?;
        m.compression.reader(BufReader::new(f.take(m.size)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    /// Builds a tiny .deb with dpkg-deb, compressed as asked.
    fn build(dir: &Path, z: &str) -> PathBuf {
        let root = dir.join(format!("pkg-{z}"));
        std::fs::create_dir_all(root.join("DEBIAN")).unwrap();
        std::fs::create_dir_all(root.join("usr/bin")).unwrap();
        std::fs::write(
            root.join("DEBIAN/control"),
            "Package: t\nVersion: 1\nArchitecture: all\nMaintainer: t <t@t.invalid>\nDescription: t\n",
        )
        .unwrap();
        std::fs::write(root.join("usr/bin/hello"), "hi\n").unwrap();
        let deb = dir.join(format!("t-{z}.deb"));
        let st = Command::new("dpkg-deb")
            .args(["--root-owner-group", &format!("-Z{z}"), "--build"])
            .arg(&root)
            .arg(&deb)
            .output()
            .unwrap();
        assert!(
            st.status.success(),
            "{}",
            String::from_utf8_lossy(&st.stderr)
        );
        deb
    }

    #[test]
    fn reads_every_compression() {
        let dir = tempfile::tempdir().unwrap();
        for z in ["xz", "gzip", "zstd", "none"] {
            let deb = Deb::open(&build(dir.path(), z)).unwrap();
            let control = deb.control_files().unwrap();
            let (_, text) = control.iter().find(|(n, _)| n == "control").unwrap();
            assert!(
                String::from_utf8_lossy(text).starts_with("Package: t\n"),
                "{z}"
            );
            let mut data = deb.data_tar().unwrap();
            let names: Vec<String> = data
                .entries()
                .unwrap()
                .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
                .collect();
            assert!(
                names.contains(&"./usr/bin/hello".to_owned()),
                "{z}: {names:?}"
            );
        }
    }

    #[test]
    fn rejects_non_deb() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.deb");
        std::fs::write(&p, b"hello").unwrap();
        let err = Deb::open(&p).unwrap_err().to_string();
        assert!(err.contains("not a .deb"), "{err}");
    }
}
