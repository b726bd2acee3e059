//! manifest.json: what a build wrote, in one file a consumer can check,
//! and its signature, manifest.json.sig (docs/signing.md describes every
//! field and how to check it with openssl).
//!
//! The manifest names each output file (each platform's files, the update
//! payload of `crate::payload`, the SBOM) with its sha256 and size, each
//! platform's disk (GUID, every partition's place, identifiers and
//! sha256), the /usr image's verity root hash and offset, the GCE import
//! settings, the lock's digest, the kernel, the build time
//! (SOURCE_DATE_EPOCH) and craton's version. It is JSON with sorted
//! keys and no whitespace variation, so the same build writes the same
//! bytes. The signature is over those exact bytes.
//!
//! Written last, after the outputs are in place: a build killed before it
//! leaves the old manifest beside new outputs, which `craton verify`
//! reports as digest mismatches rather than accepting.

pub mod verify;

use std::fs::File;
use std::os::unix::fs::FileExt as _;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use serde::{Deserialize, Serialize};

use crate::context::Build;
use crate::disk::DiskInfo;
use crate::files::{RELEASE_MODE, write_atomic};
use crate::initrd::InitrdInfo;
pub use crate::platform::outputs::{GCE_GUEST_OS_FEATURES, KIND_DISK_RAW, PlatformOutput};
use crate::profile::Platform;
use crate::sign::PrivateKey;
use crate::usr::UsrImage;

pub const MANIFEST_FILE: &str = "manifest.json";
pub const SIGNATURE_FILE: &str = "manifest.json.sig";
/// The manifest's schema version; a reader refuses others.
pub const SCHEMA: u32 = 1;
/// Bytes hashed per read.
const CHUNK: usize = 4 << 20;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub schema: u32,
    pub name: String,
    pub version: String,
    /// The platforms built, in craton's order (qemu, gce, metal).
    pub platforms: Vec<String>,
    /// sha256 of the lock's canonical text (`Lock::digest`).
    pub lock_sha256: String,
    pub kernel_version: String,
    /// SOURCE_DATE_EPOCH (or the build's start) as seconds and RFC 3339.
    pub source_date_epoch: u64,
    pub build_time: String,
    pub craton_version: String,
    /// The signing key's id (`sign::PublicKey::id`), when signed.
    pub signing_key: Option<String>,
    pub outputs: Vec<Output>,
    /// The disk of each platform (inside its output files).
    pub disks: Vec<Disk>,
    pub usr: Usr,
    /// How to import the gce output, when built.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gce: Option<Gce>,
}

/// One file of the output folder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Output {
    /// The file's name in the output folder.
    pub file: String,
    /// What it is (docs/signing.md lists the kinds): a platform's disk
    /// (`qcow2`, `gce-tar-gz`, `disk-raw`, `disk-raw-zst`), the update
    /// payload (`usr-verity`, `kernel`, `initrd`) or the SBOM.
    pub kind: String,
    /// The platform whose disk the file holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
    pub size: u64,
    pub sha256: String,
}

/// A platform's disk: the same partitions for every platform; the OEM
/// partition's bytes and (gce) the disk's size differ.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Disk {
    pub platform: String,
    /// The image's disk GUID (a machine's first boot replaces it).
    pub guid: String,
    pub size: u64,
    pub partitions: Vec<Partition>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Partition {
    pub number: u32,
    pub label: String,
    pub type_guid: String,
    pub partuuid: String,
    pub first_lba: u64,
    /// Inclusive, as in the GPT entry.
    pub last_lba: u64,
    pub size: u64,
    pub sha256: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Usr {
    pub filesystem: String,
    pub root_hash: String,
    /// Where the verity superblock starts in the USR partition (bytes).
    pub hash_offset: u64,
    /// The filesystem and the filesystem with its verity tree (bytes).
    pub fs_size: u64,
    pub total_size: u64,
}

/// The settings of `gcloud compute images create` for the gce output
/// (docs/gce.md).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Gce {
    /// The tarball to upload and pass as `--source-uri`.
    pub file: String,
    /// `--guest-os-features`.
    pub guest_os_features: Vec<String>,
    /// `--architecture`.
    pub architecture: String,
}

/// GCE's name of x86-64 (`gcloud compute images create --architecture`).
pub const GCE_ARCHITECTURE: &str = "X86_64";

/// The stage: hashes the outputs, writes manifest.json and, with a key,
/// manifest.json.sig beside them; a signature left from an unsigned
/// rebuild is removed. Returns the manifest's path and what it says.
pub fn run(
    b: &Build,
    usr: &UsrImage,
    initrd: &InitrdInfo,
    platforms: &[PlatformOutput],
    others: &[(PathBuf, &'static str)],
    key: Option<&PrivateKey>,
) -> Result<(PathBuf, Manifest)> {
    let profile = b.profile();
    let output = |path: &Path, kind: &str, platform: Option<Platform>| -> Result<Output> {
        let (sha256, _) = hash_ranges(path, &[])?;
        Ok(Output {
            file: file_name(path)?,
            kind: kind.to_owned(),
            platform: platform.map(|p| p.name().to_owned()),
            size: std::fs::metadata(path)
                .with_context(|| format!("reading {}", path.display()))?
                .len(),
            sha256,
        })
    };
    let mut outputs = Vec::new();
    for p in platforms {
        for f in &p.files {
            outputs.push(output(&f.path, f.kind, Some(p.platform))?);
        }
    }
    for (path, kind) in others {
        outputs.push(output(path, kind, None)?);
    }
    let gce = platforms
        .iter()
        .find(|p| p.platform == Platform::Gce)
        .and_then(|p| p.files.first())
        .map(|f| -> Result<Gce> {
            Ok(Gce {
                file: file_name(&f.path)?,
                guest_os_features: GCE_GUEST_OS_FEATURES
                    .iter()
                    .map(|s| (*s).to_owned())
                    .collect(),
                architecture: GCE_ARCHITECTURE.to_owned(),
            })
        })
        .transpose()?;
    let manifest = Manifest {
        schema: SCHEMA,
        name: profile.image.name.clone(),
        version: profile.image.version.clone(),
        platforms: platforms
            .iter()
            .map(|p| p.platform.name().to_owned())
            .collect(),
        lock_sha256: b.lock.digest().to_hex(),
        kernel_version: initrd.kernel_version.clone(),
        source_date_epoch: b.epoch,
        build_time: crate::repo::date::rfc3339(b.epoch),
        craton_version: env!("CARGO_PKG_VERSION").to_owned(),
        signing_key: key.map(|k| k.public().id()).transpose()?,
        outputs,
        disks: platforms.iter().map(|p| p.disk.clone()).collect(),
        usr: Usr {
            filesystem: usr.fs.name().to_owned(),
            root_hash: usr.verity.root_hash_hex(),
            hash_offset: usr.verity.hash_offset,
            fs_size: usr.fs_size,
            total_size: usr.total_size,
        },
        gce,
    };
    let bytes = manifest.to_bytes()?;
    let path = b.out_dir.join(MANIFEST_FILE);
    let sig_path = b.out_dir.join(SIGNATURE_FILE);
    // The old signature goes first: never a new manifest beside an old
    // signature that a reader could take for its own.
    crate::files::tree::remove(&b.out_dir, SIGNATURE_FILE)?;
    write_atomic(&path, &bytes, RELEASE_MODE)?;
    if let Some(key) = key {
        write_atomic(&sig_path, &key.sign(&bytes), RELEASE_MODE)?;
        tracing::info!(
            "signed {} with {} (key {})",
            path.display(),
            key.path().display(),
            manifest.signing_key.as_deref().unwrap_or_default()
        );
    }
    Ok((path, manifest))
}

impl Manifest {
    /// The file's bytes: pretty JSON (serde_json's fixed layout, fields in
    /// declaration order) and a final newline.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let mut out = serde_json::to_vec_pretty(self).context("encoding the manifest")?;
        out.push(b'\n');
        Ok(out)
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Manifest> {
        let m: Manifest = serde_json::from_slice(bytes).context("reading manifest.json")?;
        if m.schema != SCHEMA {
            anyhow::bail!(
                "manifest.json has schema {}; this craton reads schema {SCHEMA}",
                m.schema
            );
        }
        Ok(m)
    }
}

/// A platform's disk for the manifest: its table and each partition's
/// sha256 (a sparse image reads its holes as zeros, quickly).
pub fn disk_of(platform: Platform, disk: &DiskInfo) -> Result<Disk> {
    let ranges: Vec<(u64, u64)> = disk
        .partitions
        .iter()
        .map(|p| (p.offset(), p.offset() + p.len()))
        .collect();
    let path = &disk.path;
    let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    // One thread per partition: USR-A, USR-B and ROOT are most of it.
    let sums = std::thread::scope(|scope| {
        let handles: Vec<_> = ranges
            .iter()
            .map(|&(a, z)| {
                let file = &file;
                scope.spawn(move || hash_range(file, path, a, z))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .map_err(|_| anyhow::anyhow!("a hashing thread panicked"))?
            })
            .collect::<Result<Vec<_>>>()
    })?;
    Ok(Disk {
        platform: platform.name().to_owned(),
        guid: disk.disk_guid.to_string(),
        size: disk.size,
        partitions: disk
            .partitions
            .iter()
            .zip(sums)
            .map(|(p, sha256)| Partition {
                number: p.number,
                label: p.label.clone(),
                type_guid: p.type_guid.to_string(),
                partuuid: p.part_guid.to_string(),
                first_lba: p.first_lba,
                last_lba: p.last_lba,
                size: p.len(),
                sha256,
            })
            .collect(),
    })
}

/// A path's file name, for the manifest.
fn file_name(p: &Path) -> Result<String> {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .with_context(|| format!("{} has no file name", p.display()))
}

/// sha256 of the whole file and of each byte range in it: the whole file
/// on one thread, the ranges on another (each byte of a partition is
/// hashed twice; with two cores that costs no time).
pub(crate) fn hash_ranges(path: &Path, ranges: &[(u64, u64)]) -> Result<(String, Vec<String>)> {
    let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let len = file
        .metadata()
        .with_context(|| format!("reading {}", path.display()))?
        .len();
    std::thread::scope(|scope| {
        let parts = scope.spawn(|| {
            ranges
                .iter()
                .map(|&(a, z)| hash_range(&file, path, a, z.min(len)))
                .collect::<Result<Vec<_>>>()
        });
        let whole = hash_range(&file, path, 0, len)?;
        let parts = parts
            .join()
            .map_err(|_| anyhow::anyhow!("a hashing thread panicked"))??;
        Ok((whole, parts))
    })
}

/// sha256 of bytes `start..end` of `file`, as hex.
fn hash_range(file: &File, path: &Path, start: u64, end: u64) -> Result<String> {
    use sha2::Digest as _;
    let mut h = sha2::Sha256::new();
    let mut buf = vec![0u8; CHUNK];
    let mut pos = start;
    while pos < end {
        let n = CHUNK.min((end - pos) as usize);
        file.read_exact_at(&mut buf[..n], pos)
            .with_context(|| format!("reading {} at {pos}", path.display()))?;
        h.update(&buf[..n]);
        pos += n as u64;
    }
    Ok(hex::encode(h.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::Sha256;

    #[test]
    fn ranges_hash_as_their_slices_do() {
        let data: Vec<u8> = (0..(CHUNK * 2 + 777)).map(|i| (i % 253) as u8).collect();
        let f = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(f.path(), &data).unwrap();
        // Within a chunk, across chunks, to the end, and past the end
        // (cut at the file's length).
        let ranges = [
            (5, 900),
            (CHUNK as u64 - 3, CHUNK as u64 + 10),
            (0, data.len() as u64 + 50),
        ];
        let (whole, parts) = hash_ranges(f.path(), &ranges).unwrap();
        assert_eq!(whole, Sha256::of(&data).to_hex());
        for ((a, z), got) in ranges.iter().zip(parts) {
            let z = (*z).min(data.len() as u64);
            assert_eq!(got, Sha256::of(&data[*a as usize..z as usize]).to_hex());
        }
    }

    #[test]
    fn manifest_bytes_round_trip_and_other_schemas_are_refused() {
        let m = Manifest {
            schema: SCHEMA,
            name: "n".into(),
            version: "1".into(),
            platforms: vec!["qemu".into()],
            lock_sha256: "00".into(),
            kernel_version: "6".into(),
            source_date_epoch: 0,
            build_time: "1970-01-01T00:00:00Z".into(),
            craton_version: "0".into(),
            signing_key: None,
            outputs: vec![],
            disks: vec![Disk {
                platform: "qemu".into(),
                guid: "g".into(),
                size: 1,
                partitions: vec![],
            }],
            usr: Usr {
                filesystem: "erofs".into(),
                root_hash: "ab".into(),
                hash_offset: 4096,
                fs_size: 4096,
                total_size: 8192,
            },
            gce: None,
        };
        let bytes = m.to_bytes().unwrap();
        assert!(bytes.ends_with(b"}\n"));
        assert_eq!(Manifest::from_bytes(&bytes).unwrap(), m);
        let text = String::from_utf8(bytes).unwrap();
        let other = text.replace("\"schema\": 1", "\"schema\": 2");
        let err = Manifest::from_bytes(other.as_bytes()).unwrap_err();
        assert!(format!("{err:#}").contains("schema 2"), "{err:#}");
        let unknown = text.replace("\"schema\": 1", "\"schema\": 1, \"extra\": 0");
        assert!(Manifest::from_bytes(unknown.as_bytes()).is_err());
    }
}
