//! The dm-verity hash tree of a /usr image, computed in Rust.
//!
//! Writes what `veritysetup format --hash-offset=N DATA DATA` writes: the
//! 512-byte veritysetup superblock at the hash offset, and the hash tree one
//! hash block after it, for format version 1 with sha256, 4096-byte data and
//! hash blocks and a given 32-byte salt. The tree is stored root-most level
//! first, as the kernel reads it (Documentation/admin-guide/device-mapper/
//! verity.rst, "On-disk format": "a depth at a time (starting from the
//! root)"). [`check`] reads such a tree back and recomputes it, for `craton
//! verify`; the kernel and systemd-veritysetup check it at boot.

use std::fs::File;
use std::io::{Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;

use anyhow::{Context, Result, bail};
use sha2::{Digest, Sha256};

/// Data and hash block size: the page size, which the kernel requires a
/// hash block not to exceed, and what systemd and veritysetup default to.
pub const BLOCK_SIZE: u64 = 4096;
/// Size of a sha256 digest. In format 1 each digest in a hash block is padded
/// to a power of two (cryptsetup lib/verity/verity_hash.c), which 32 already is.
pub const DIGEST_SIZE: usize = 32;
/// Salt length used by craton (veritysetup's default, 32 bytes).
pub const SALT_SIZE: usize = 32;
/// Digests per hash block (4096 / 32).
const DIGESTS_PER_BLOCK: usize = BLOCK_SIZE as usize / DIGEST_SIZE;
/// veritysetup superblock signature (cryptsetup lib/verity/verity.c, `struct verity_sb`).
const SB_SIGNATURE: &[u8; 8] = b"verity\0\0";
/// Superblock version understood by cryptsetup.
const SB_VERSION: u32 = 1;
/// Hash format 1 ("normal": salt before the data); 0 is the Chrome OS format.
const HASH_TYPE: u32 = 1;
/// On-disk size of `struct verity_sb`.
pub const SB_SIZE: usize = 512;
/// Bytes read per I/O while hashing data blocks.
const READ_CHUNK: usize = 256 * BLOCK_SIZE as usize;
/// Hashing threads at most: beyond this the disk, not sha256, is the limit.
const MAX_THREADS: usize = 8;

/// What the verity tree of an image is: everything a kernel command line
/// (usrhash=, hash-offset=) and the manifest need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerityInfo {
    pub root_hash: [u8; 32],
    pub salt: [u8; SALT_SIZE],
    /// Number of 4 KiB data blocks covered.
    pub data_blocks: u64,
    /// Byte offset of the superblock in the file (the hash area's start).
    pub hash_offset: u64,
    /// Bytes from `hash_offset` to the end of the tree (superblock block included).
    pub hash_size: u64,
    /// UUID written into the superblock.
    pub uuid: [u8; 16],
}

impl VerityInfo {
    /// The root hash as lowercase hex, as veritysetup prints it.
    pub fn root_hash_hex(&self) -> String {
        hex::encode(self.root_hash)
    }

    pub fn salt_hex(&self) -> String {
        hex::encode(self.salt)
    }

    /// The UUID in its usual 8-4-4-4-12 form.
    pub fn uuid_string(&self) -> String {
        format_uuid(&self.uuid)
    }
}

/// Formats 16 bytes as an 8-4-4-4-12 UUID string.
pub fn format_uuid(u: &[u8; 16]) -> String {
    let h = hex::encode(u);
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

/// The salted digest of one block: format 1 hashes salt || block.
fn hash_block(salt: &[u8], block: &[u8]) -> [u8; DIGEST_SIZE] {
    let mut h = Sha256::new();
    h.update(salt);
    h.update(block);
    h.finalize().into()
}

/// The veritysetup superblock (`struct verity_sb`, little-endian, packed).
pub fn superblock(data_blocks: u64, salt: &[u8; SALT_SIZE], uuid: &[u8; 16]) -> [u8; SB_SIZE] {
    let mut sb = [0u8; SB_SIZE];
    sb[0..8].copy_from_slice(SB_SIGNATURE);
    sb[8..12].copy_from_slice(&SB_VERSION.to_le_bytes());
    sb[12..16].copy_from_slice(&HASH_TYPE.to_le_bytes());
    sb[16..32].copy_from_slice(uuid);
    // algorithm[32]: NUL-padded name.
    sb[32..38].copy_from_slice(b"sha256");
    sb[64..68].copy_from_slice(&(BLOCK_SIZE as u32).to_le_bytes());
    sb[68..72].copy_from_slice(&(BLOCK_SIZE as u32).to_le_bytes());
    sb[72..80].copy_from_slice(&data_blocks.to_le_bytes());
    sb[80..82].copy_from_slice(&(SALT_SIZE as u16).to_le_bytes());
    // _pad1[6] at 82..88, salt[256] at 88..344, _pad2[168] to 512.
    sb[88..88 + SALT_SIZE].copy_from_slice(salt);
    sb
}

/// The hash tree over the given level-0 digests (one per data block).
/// Returns the levels bottom first (each a whole number of zero-padded hash
/// blocks) and the root hash. One data block gives no level: the root hash
/// is then that block's digest, as in the kernel's level count
/// (`(data_blocks - 1) >> (bits * levels)` reaching 0).
pub fn tree(salt: &[u8], mut digests: Vec<[u8; DIGEST_SIZE]>) -> (Vec<Vec<u8>>, [u8; DIGEST_SIZE]) {
    let mut levels = Vec::new();
    while digests.len() > 1 {
        let blocks = digests.len().div_ceil(DIGESTS_PER_BLOCK);
        let mut level = vec![0u8; blocks * BLOCK_SIZE as usize];
        for (i, d) in digests.iter().enumerate() {
            level[i * DIGEST_SIZE..(i + 1) * DIGEST_SIZE].copy_from_slice(d);
        }
        digests = level
            .chunks(BLOCK_SIZE as usize)
            .map(|b| hash_block(salt, b))
            .collect();
        levels.push(level);
    }
    let root = digests.first().copied().unwrap_or([0; DIGEST_SIZE]);
    (levels, root)
}

/// The salted digests of the data blocks in `0..data_size`, hashed on as
/// many threads as there are CPUs (the data blocks are nearly all the work:
/// the levels above are 1/128 of it), each over its own range of whole chunks.
fn hash_data(
    file: &File,
    base: u64,
    data_size: u64,
    salt: &[u8],
) -> Result<Vec<[u8; DIGEST_SIZE]>> {
    let chunks = data_size.div_ceil(READ_CHUNK as u64);
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(MAX_THREADS) as u64;
    let per_thread = chunks.div_ceil(threads) * READ_CHUNK as u64;
    let hash_range = |start: u64, end: u64| -> Result<Vec<[u8; DIGEST_SIZE]>> {
        let mut digests = Vec::with_capacity(((end - start) / BLOCK_SIZE) as usize);
        let mut buf = vec![0u8; READ_CHUNK];
        let mut pos = start;
        while pos < end {
            let n = READ_CHUNK.min((end - pos) as usize);
            file.read_exact_at(&mut buf[..n], base + pos)
                .with_context(|| format!("reading verity data block at {}", base + pos))?;
            digests.extend(
                buf[..n]
                    .chunks(BLOCK_SIZE as usize)
                    .map(|b| hash_block(salt, b)),
            );
            pos += n as u64;
        }
        Ok(digests)
    };
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..data_size)
            .step_by(per_thread as usize)
            .map(|start| {
                let end = (start + per_thread).min(data_size);
                scope.spawn(move || hash_range(start, end))
            })
            .collect();
        let mut all = Vec::with_capacity((data_size / BLOCK_SIZE) as usize);
        for h in handles {
            let part = h
                .join()
                .map_err(|_| anyhow::anyhow!("a verity hashing thread panicked"))??;
            all.extend(part);
        }
        Ok(all)
    })
}

/// Hashes the first `data_size` bytes of `file` and writes the superblock at
/// `hash_offset` and the tree after it, extending the file as needed.
/// `data_size` and `hash_offset` must be multiples of 4096, with
/// `hash_offset >= data_size`; the bytes between them are left as they are.
pub fn append(
    file: &mut File,
    data_size: u64,
    hash_offset: u64,
    salt: &[u8; SALT_SIZE],
    uuid: &[u8; 16],
) -> Result<VerityInfo> {
    if data_size == 0 || !data_size.is_multiple_of(BLOCK_SIZE) {
        bail!("verity data size {data_size} is not a positive multiple of {BLOCK_SIZE}");
    }
    if !hash_offset.is_multiple_of(BLOCK_SIZE) || hash_offset < data_size {
        bail!(
            "verity hash offset {hash_offset} is not a multiple of {BLOCK_SIZE} at or after the data end {data_size}"
        );
    }
    let data_blocks = data_size / BLOCK_SIZE;
    let digests = hash_data(file, 0, data_size, salt)?;
    let (levels, root_hash) = tree(salt, digests);

    let mut head = vec![0u8; BLOCK_SIZE as usize];
    head[..SB_SIZE].copy_from_slice(&superblock(data_blocks, salt, uuid));
    file.seek(SeekFrom::Start(hash_offset))
        .context("seeking to the verity hash offset")?;
    let mut out = std::io::BufWriter::new(&mut *file);
    out.write_all(&head)
        .context("writing the verity superblock")?;
    // Root-most level first (verity.rst, "On-disk format").
    for level in levels.iter().rev() {
        out.write_all(level)
            .context("writing the verity hash tree")?;
    }
    out.flush().context("writing the verity hash tree")?;
    drop(out);
    let hash_size = BLOCK_SIZE + levels.iter().map(|l| l.len() as u64).sum::<u64>();
    Ok(VerityInfo {
        root_hash,
        salt: *salt,
        data_blocks,
        hash_offset,
        hash_size,
        uuid: *uuid,
    })
}

/// What [`check`] found in a tree read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checked {
    /// The root hash recomputed from the data blocks.
    pub root_hash: [u8; DIGEST_SIZE],
    pub data_blocks: u64,
    /// Whether the stored tree is the recomputed one, byte for byte.
    pub tree_matches: bool,
}

/// Reads the superblock at `base + hash_offset` of `file` (a /usr image at
/// byte `base`, e.g. its partition in a disk image), recomputes the tree of
/// the data blocks it names and compares it with the stored tree. An error
/// is a superblock craton does not write (other algorithm, block size,
/// salt size or format) or a read error.
pub fn check(file: &File, base: u64, hash_offset: u64) -> Result<Checked> {
    let mut sb = [0u8; SB_SIZE];
    file.read_exact_at(&mut sb, base + hash_offset)
        .context("reading the verity superblock")?;
    let u32_at = |i: usize| u32::from_le_bytes(sb[i..i + 4].try_into().unwrap_or_default());
    let want = superblock(0, &[0; SALT_SIZE], &[0; 16]);
    if sb[..8] != *SB_SIGNATURE {
        bail!("no verity superblock at offset {hash_offset}");
    }
    // Version, hash type, algorithm and block sizes as craton writes them.
    if sb[8..16] != want[8..16] || sb[32..64] != want[32..64] || sb[64..72] != want[64..72] {
        bail!(
            "verity superblock at offset {hash_offset}: version {}, hash type {}, block sizes {}/{}: not the sha256, 4096-byte format 1 craton writes",
            u32_at(8),
            u32_at(12),
            u32_at(64),
            u32_at(68)
        );
    }
    let data_blocks = u64::from_le_bytes(sb[72..80].try_into().unwrap_or_default());
    let salt_size = u16::from_le_bytes([sb[80], sb[81]]) as usize;
    if salt_size != SALT_SIZE {
        bail!("verity salt of {salt_size} bytes, not {SALT_SIZE}");
    }
    let data_size = data_blocks
        .checked_mul(BLOCK_SIZE)
        .filter(|&d| d > 0 && d <= hash_offset)
        .with_context(|| format!("verity superblock names {data_blocks} data blocks"))?;
    let salt = &sb[88..88 + SALT_SIZE];
    let (levels, root_hash) = tree(salt, hash_data(file, base, data_size, salt)?);
    let mut pos = base + hash_offset + BLOCK_SIZE;
    let mut tree_matches = true;
    for level in levels.iter().rev() {
        let mut stored = vec![0u8; level.len()];
        file.read_exact_at(&mut stored, pos)
            .context("reading the verity hash tree")?;
        tree_matches &= stored == *level;
        pos += level.len() as u64;
    }
    Ok(Checked {
        root_hash,
        data_blocks,
        tree_matches,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn superblock_fields_sit_at_their_offsets() {
        let sb = superblock(0x0102_0304, &[7; SALT_SIZE], &[9; 16]);
        assert_eq!(&sb[..8], b"verity\0\0");
        assert_eq!(u32::from_le_bytes(sb[8..12].try_into().unwrap()), 1);
        assert_eq!(u32::from_le_bytes(sb[12..16].try_into().unwrap()), 1);
        assert_eq!(&sb[32..39], b"sha256\0");
        assert_eq!(u32::from_le_bytes(sb[64..68].try_into().unwrap()), 4096);
        assert_eq!(
            u64::from_le_bytes(sb[72..80].try_into().unwrap()),
            0x0102_0304
        );
        assert_eq!(u16::from_le_bytes(sb[80..82].try_into().unwrap()), 32);
        assert_eq!(&sb[88..120], &[7; 32]);
        assert!(sb[120..].iter().all(|&b| b == 0));
    }

    #[test]
    fn level_counts_follow_the_kernel() {
        let salt = [1u8; SALT_SIZE];
        for (blocks, want_levels, want_top_blocks) in [
            (1, 0, 0),
            (2, 1, 1),
            (128, 1, 1),
            (129, 2, 1),
            (200, 2, 1),
            (20000, 3, 1),
        ] {
            let (levels, _) = tree(&salt, vec![[0; 32]; blocks]);
            assert_eq!(levels.len(), want_levels, "{blocks} blocks");
            if let Some(top) = levels.last() {
                assert_eq!(top.len() / BLOCK_SIZE as usize, want_top_blocks);
            }
        }
    }

    #[test]
    fn root_is_the_salted_hash_of_the_top_block() {
        let salt = [3u8; SALT_SIZE];
        let d = [[5u8; 32], [6u8; 32]];
        let (levels, root) = tree(&salt, d.to_vec());
        let mut block = vec![0u8; BLOCK_SIZE as usize];
        block[..32].copy_from_slice(&d[0]);
        block[32..64].copy_from_slice(&d[1]);
        assert_eq!(levels, vec![block.clone()]);
        let mut h = Sha256::new();
        h.update(salt);
        h.update(&block);
        assert_eq!(root, <[u8; 32]>::from(h.finalize()));
    }

    #[test]
    fn rejects_misaligned_sizes() {
        let mut f = tempfile::tempfile().unwrap();
        f.set_len(8192).unwrap();
        let s = [0; SALT_SIZE];
        assert!(append(&mut f, 4000, 8192, &s, &[0; 16]).is_err());
        assert!(append(&mut f, 8192, 4096, &s, &[0; 16]).is_err());
        assert!(append(&mut f, 4096, 4097, &s, &[0; 16]).is_err());
        assert!(append(&mut f, 8192, 8192, &s, &[0; 16]).is_ok());
    }

    /// `check` recomputes what `append` wrote, at an offset inside a
    /// larger file (a partition in a disk), and sees a changed data block
    /// (another root) and a changed tree block (tree_matches false).
    #[test]
    fn check_reads_back_what_append_wrote() {
        let base = 3 * BLOCK_SIZE;
        let data: Vec<u8> = (0..300 * BLOCK_SIZE).map(|i| (i * 7 % 251) as u8).collect();
        let mut usr = tempfile::tempfile().unwrap();
        usr.write_all_at(&data, 0).unwrap();
        let info = append(
            &mut usr,
            data.len() as u64,
            data.len() as u64,
            &[9; SALT_SIZE],
            &[1; 16],
        )
        .unwrap();
        let len = usr.metadata().unwrap().len();
        let mut image = vec![0u8; len as usize];
        usr.read_exact_at(&mut image, 0).unwrap();
        let disk = tempfile::tempfile().unwrap();
        disk.write_all_at(&image, base).unwrap();
        let ok = check(&disk, base, info.hash_offset).unwrap();
        assert_eq!(
            (ok.root_hash, ok.data_blocks, ok.tree_matches),
            (info.root_hash, 300, true)
        );
        // A tree block changed: same root from the data, tree differs.
        let tree_byte = base + info.hash_offset + BLOCK_SIZE + 5;
        disk.write_all_at(&[0xAA], tree_byte).unwrap();
        let bad = check(&disk, base, info.hash_offset).unwrap();
        assert_eq!((bad.root_hash, bad.tree_matches), (info.root_hash, false));
        // A data block changed: another root.
        disk.write_all_at(&image[tree_byte as usize - base as usize..][..1], tree_byte)
            .unwrap();
        disk.write_all_at(&[data[100] ^ 1], base + 100).unwrap();
        assert_ne!(
            check(&disk, base, info.hash_offset).unwrap().root_hash,
            info.root_hash
        );
        // No superblock there.
        assert!(check(&disk, base, 0).is_err());
    }
}
