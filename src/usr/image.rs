//! The /usr image: a read-only filesystem of a tree's /usr, with its
//! dm-verity tree appended.
//!
//! The content of `<tree>/usr` becomes the root of the filesystem (it is
//! mounted at /usr), made with the tools tree's mkfs.erofs or mke2fs so that
//! the same tree, seed and epoch give the same bytes: fixed timestamps, and
//! the filesystem UUID, ext4 hash seed, verity salt and verity UUID all
//! derived from the seed. The image is padded to 4 KiB and the verity
//! superblock and tree follow at once (hash offset = padded filesystem size),
//! as systemd-veritysetup's `hash-offset=` expects. The output is written
//! beside its final name and renamed into place. This module does not place
//! the image in a partition nor check the slot size: the disk stage does.

use std::collections::HashSet;
use std::fs::{self, File};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use super::verity::{self, BLOCK_SIZE, VerityInfo};
use crate::digest::Sha256;
use crate::files::TempFile;
use crate::profile::{UsrCompression, UsrFilesystem};
use crate::tools::ToolsTree;

/// Filesystem label of the /usr image (at most 15 bytes for erofs, 16 for ext4).
pub const LABEL: &str = "usr";
/// ext4 inode size: 256 bytes leaves room for inline xattrs (file capabilities)
/// and nanosecond timestamps (mke2fs.conf(5) default for ext4).
const EXT4_INODE_SIZE: u64 = 256;
/// Spare inodes and blocks beyond the counted ones: mke2fs rounds inodes up
/// per block group and needs room for directory growth during population.
const EXT4_SPARE_INODES: u64 = 1024;
/// Metadata overhead allowance (group descriptors, bitmaps, extent blocks,
/// directory htree blocks), as a share of the counted blocks, plus a floor.
/// The count already rounds every file up to whole blocks; on the
/// container-host /usr mke2fs used 149457 blocks for 149.6k counted, so 2%
/// and 16 MiB leave about 28 MB free.
const EXT4_OVERHEAD_PERCENT: u64 = 2;
const EXT4_OVERHEAD_BLOCKS: u64 = 4096;

/// A built /usr image.
#[derive(Debug, Clone)]
pub struct UsrImage {
    pub path: PathBuf,
    pub fs: UsrFilesystem,
    /// erofs's compression (ext4 has none).
    pub compression: Option<UsrCompression>,
    /// Bytes of filesystem, padded to 4 KiB: the verity hash offset.
    pub fs_size: u64,
    /// Bytes of the whole file (filesystem + verity superblock + tree).
    pub total_size: u64,
    pub verity: VerityInfo,
}

/// Values derived from the build seed, so that each is stable per build
/// input and distinct from the others.
struct Derived {
    fs_uuid: [u8; 16],
    ext4_hash_seed: [u8; 16],
    verity_uuid: [u8; 16],
    salt: [u8; verity::SALT_SIZE],
}

fn derive(seed: &Sha256, what: &str) -> [u8; 32] {
    let mut input = format!("craton usr {what}\0").into_bytes();
    input.extend_from_slice(seed.as_bytes());
    *Sha256::of(&input).as_bytes()
}

/// A random-looking UUID marked as version 4, variant 1 (RFC 9562), so that
/// tools which check the version bits accept it.
fn uuid_from(bytes: &[u8; 32]) -> [u8; 16] {
    let mut u = [0u8; 16];
    u.copy_from_slice(&bytes[..16]);
    u[6] = (u[6] & 0x0f) | 0x40;
    u[8] = (u[8] & 0x3f) | 0x80;
    u
}

impl Derived {
    fn new(seed: &Sha256) -> Self {
        Self {
            fs_uuid: uuid_from(&derive(seed, "filesystem uuid")),
            ext4_hash_seed: uuid_from(&derive(seed, "ext4 hash seed")),
            verity_uuid: uuid_from(&derive(seed, "verity uuid")),
            salt: derive(seed, "verity salt"),
        }
    }
}

/// Makes the /usr image of `tree` at `out`.
pub fn make(
    tools: &ToolsTree,
    tree: &Path,
    fs: UsrFilesystem,
    compression: UsrCompression,
    out: &Path,
    seed: &Sha256,
    epoch: u64,
) -> Result<UsrImage> {
    let usr = tree.join("usr");
    if !usr.is_dir() {
        bail!("{} is not a folder", usr.display());
    }
    let d = Derived::new(seed);
    let tmp = TempFile::beside(out)?;
    match fs {
        UsrFilesystem::Erofs => mkfs_erofs(tools, &usr, compression, tmp.path(), &d, epoch)?,
        UsrFilesystem::Ext4 => mkfs_ext4(tools, &usr, tmp.path(), &d, epoch)?,
    }
    // mkfs may have replaced the file: open it again by name.
    let mut file = File::options()
        .read(true)
        .write(true)
        .open(tmp.path())
        .with_context(|| format!("opening {}", tmp.path().display()))?;
    let raw = file
        .metadata()
        .with_context(|| format!("reading the size of {}", tmp.path().display()))?
        .len();
    let fs_size = raw.div_ceil(BLOCK_SIZE) * BLOCK_SIZE;
    file.set_len(fs_size)
        .with_context(|| format!("padding {}", tmp.path().display()))?;
    let info = verity::append(&mut file, fs_size, fs_size, &d.salt, &d.verity_uuid)
        .with_context(|| format!("writing the verity tree of {}", out.display()))?;
    drop(file);
    tmp.persist(out)?;
    let total_size = fs_size + info.hash_size;
    tracing::info!(
        "/usr image {} ({fs:?}): filesystem {fs_size} bytes, total {total_size}, root hash {}",
        out.display(),
        info.root_hash_hex()
    );
    Ok(UsrImage {
        path: out.to_owned(),
        fs,
        compression: (fs == UsrFilesystem::Erofs).then_some(compression),
        fs_size,
        total_size,
        verity: info,
    })
}

fn mkfs_erofs(
    tools: &ToolsTree,
    usr: &Path,
    compression: UsrCompression,
    image: &Path,
    d: &Derived,
    epoch: u64,
) -> Result<()> {
    tools
        .cmd("mkfs.erofs")?
        .arg("--quiet")
        // 4 KiB blocks: the x86-64 page size, which kernels before 6.4 require.
        .arg("-b4096")
        // -T sets the build time and, by default (--all-time), every inode's
        // timestamp: file times in a tree depend on when it was built.
        .arg(format!("-T{epoch}"))
        .arg(format!("-U{}", verity::format_uuid(&d.fs_uuid)))
        .args(["-L", LABEL])
        .args(compression.mkfs_erofs_args())
        .arg(image)
        .arg(usr)
        .env("SOURCE_DATE_EPOCH", epoch.to_string())
        .run()
        .with_context(|| format!("making the erofs image of {}", usr.display()))
}

/// Blocks and inodes the content of `dir` needs in ext4, counted generously.
fn ext4_needs(dir: &Path) -> Result<(u64, u64)> {
    let mut blocks = 0u64;
    let mut inodes = 0u64;
    let mut seen = HashSet::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        inodes += 1;
        let mut dir_bytes = 0u64;
        for entry in fs::read_dir(&d).with_context(|| format!("reading {}", d.display()))? {
            let entry = entry.with_context(|| format!("reading {}", d.display()))?;
            let meta = entry
                .metadata()
                .with_context(|| format!("reading {}", entry.path().display()))?;
            // An ext4 dirent: 8 bytes of header and the name, 4-byte aligned.
            dir_bytes += (8 + entry.file_name().len() as u64).div_ceil(4) * 4;
            if meta.is_dir() {
                stack.push(entry.path());
                continue;
            }
            if meta.nlink() > 1 && !seen.insert((meta.dev(), meta.ino())) {
                continue;
            }
            inodes += 1;
            // Symlinks under 60 bytes live in the inode; others take a block.
            if meta.is_file() || (meta.file_type().is_symlink() && meta.len() >= 60) {
                blocks += meta.len().div_ceil(BLOCK_SIZE).max(1);
            }
        }
        blocks += dir_bytes.div_ceil(BLOCK_SIZE).max(1);
    }
    Ok((blocks, inodes))
}

fn mkfs_ext4(tools: &ToolsTree, usr: &Path, image: &Path, d: &Derived, epoch: u64) -> Result<()> {
    let (data_blocks, inodes) = ext4_needs(usr)?;
    let inodes = inodes + EXT4_SPARE_INODES;
    let table_blocks = (inodes * EXT4_INODE_SIZE).div_ceil(BLOCK_SIZE);
    let counted = data_blocks + table_blocks;
    let blocks = counted + counted * EXT4_OVERHEAD_PERCENT / 100 + EXT4_OVERHEAD_BLOCKS;
    // The conffile is unpacked as .dpkg-new (no maintainer scripts run in
    // the tools tree); without a config mke2fs falls back to built-in
    // defaults, which differ from Debian's.
    let config = ["etc/mke2fs.conf", "etc/mke2fs.conf.dpkg-new"]
        .iter()
        .map(|p| tools.path(p))
        .find(|p| p.is_file())
        .with_context(|| {
            format!(
                "no mke2fs.conf in the tools tree {}",
                tools.root().display()
            )
        })?;
    let extended = format!(
        "root_owner=0:0,hash_seed={},lazy_itable_init=0,nodiscard",
        verity::format_uuid(&d.ext4_hash_seed)
    );
    tools
        .cmd("mke2fs")?
        .args(["-q", "-F", "-t", "ext4", "-b", "4096", "-m", "0"])
        .args(["-I", &EXT4_INODE_SIZE.to_string()])
        .args(["-N", &inodes.to_string()])
        // Read-only /usr: no journal, no room to grow, no orphan file. (mke2fs
        // refuses the read-only feature; the dm-verity device is read-only
        // anyway.)
        .args(["-O", "^has_journal,^resize_inode,^orphan_file"])
        .args(["-U", &verity::format_uuid(&d.fs_uuid)])
        .args(["-E", &extended])
        .args(["-L", LABEL])
        .arg("-d")
        .arg(usr)
        .arg(image)
        .arg(blocks.to_string())
        .env("MKE2FS_CONFIG", config)
        // e2fsprogs 1.47.1+: SOURCE_DATE_EPOCH fixes the superblock times
        // and the inode times that mke2fs -d copies; E2FSPROGS_FAKE_TIME
        // covers the library's own clock reads.
        .env("SOURCE_DATE_EPOCH", epoch.to_string())
        .env("E2FSPROGS_FAKE_TIME", epoch.to_string())
        .run()
        .with_context(|| format!("making the ext4 image of {}", usr.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_values_are_stable_and_distinct() {
        let seed = Sha256::of(b"seed");
        let a = Derived::new(&seed);
        let b = Derived::new(&seed);
        assert_eq!(a.fs_uuid, b.fs_uuid);
        assert_eq!(a.salt, b.salt);
        assert_ne!(a.fs_uuid, a.verity_uuid);
        assert_ne!(a.fs_uuid, a.ext4_hash_seed);
        assert_eq!(a.fs_uuid[6] >> 4, 4, "version 4");
        assert_eq!(a.fs_uuid[8] >> 6, 0b10, "variant 1");
        let other = Derived::new(&Sha256::of(b"other"));
        assert_ne!(a.salt, other.salt);
    }

    #[test]
    fn a_tree_without_usr_is_refused_and_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("usr.img");
        let tools = ToolsTree::at(dir.path().join("no-tools"));
        let err = make(
            &tools,
            &dir.path().join("empty"),
            UsrFilesystem::Erofs,
            UsrCompression::Lz4,
            &out,
            &Sha256::of(b"s"),
            0,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("empty/usr is not a folder"), "{err}");
        // A missing mkfs fails after the temporary file exists: it goes too.
        fs::create_dir_all(dir.path().join("tree/usr")).unwrap();
        let err = make(
            &tools,
            &dir.path().join("tree"),
            UsrFilesystem::Erofs,
            UsrCompression::Lz4,
            &out,
            &Sha256::of(b"s"),
            0,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("mkfs.erofs is not in the tools tree"), "{err}");
        let left: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(left, ["tree"], "only the input tree remains");
    }

    #[test]
    fn ext4_needs_counts_files_and_hardlinks_once() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("sub")).unwrap();
        fs::write(dir.path().join("sub/a"), vec![1u8; 5000]).unwrap();
        fs::hard_link(dir.path().join("sub/a"), dir.path().join("b")).unwrap();
        std::os::unix::fs::symlink("a", dir.path().join("sub/short")).unwrap();
        let (blocks, inodes) = ext4_needs(dir.path()).unwrap();
        // 2 dirs, 1 file (linked twice), 1 symlink.
        assert_eq!(inodes, 4);
        // 2 data blocks + one block per directory.
        assert_eq!(blocks, 4);
    }
}
