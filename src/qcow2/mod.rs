//! Reads the virtual disk of a qcow2 image, so that `craton inspect` and the
//! tests can look inside an image without qemu-img or qemu-nbd. Read only,
//! and only standalone images: the active L1/L2 tables with uncompressed,
//! zlib-compressed, zero and unallocated clusters (the last two read as
//! zeros). Backing files, encryption, external data files, extended L2
//! entries and zstd-compressed clusters are refused by name.
//!
//! The layout is QEMU's docs/interop/qcow2.txt (versions 2 and 3). The file
//! is user input: every offset is checked against the file's length before
//! it is read, and what is held in memory is bounded by the file's length,
//! QEMU's own limits (a 32 MiB L1 table, 2 MiB clusters) and one L2 table
//! and one inflated cluster at a time.
//!
//! It lives beside `inspect` rather than in `outputs`: it reads images,
//! and the outputs stage only writes them.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::Path;

use anyhow::{Context, Result, bail, ensure};
use flate2::{Decompress, FlushDecompress};

/// qcow2.txt "Header", bytes 0-3.
const MAGIC: &[u8; 4] = b"QFI\xfb";
/// The version 2 header and the smallest version 3 one (bytes 0-103).
const V2_HEADER_LEN: usize = 72;
const V3_HEADER_LEN: usize = 104;
/// cluster_bits: at least 9 (the spec), at most 21 (QEMU opens no larger
/// clusters, and a limit bounds each table and cluster read to 2 MiB).
const MIN_CLUSTER_BITS: u32 = 9;
const MAX_CLUSTER_BITS: u32 = 21;
/// QEMU's implementation limit on the L1 table (qcow2.txt, "size").
const MAX_L1_BYTES: u64 = 32 << 20;
/// L1/L2 tables address at most 64 PB (56 bits) of clusters (qcow2.txt).
const MAX_VIRTUAL_SIZE: u64 = 1 << 56;
/// Bits 9-55 of an L1 entry or a standard L2 entry: the host offset.
const OFFSET_MASK: u64 = 0x00ff_ffff_ffff_fe00;
/// L2 entry bit 62: a compressed cluster; bits 0-61 describe it.
const L2_COMPRESSED: u64 = 1 << 62;
const DESCRIPTOR_MASK: u64 = (1 << 62) - 1;
/// Standard cluster descriptor bit 0 (version 3): the cluster reads as zeros.
const L2_ZERO: u64 = 1;
/// Compressed cluster sizes count 512-byte sectors.
const SECTOR: u64 = 512;
/// incompatible_features bits (qcow2.txt, header bytes 72-79).
const INCOMPAT_DIRTY: u64 = 1 << 0;
const INCOMPAT_CORRUPT: u64 = 1 << 1;
const INCOMPAT_DATA_FILE: u64 = 1 << 2;
const INCOMPAT_COMPRESSION: u64 = 1 << 3;
const INCOMPAT_EXTENDED_L2: u64 = 1 << 4;
/// Longest backing file name (qcow2.txt, backing_file_size).
const MAX_BACKING_NAME: u32 = 1023;

/// Whether a file's first bytes are a qcow2 header's.
pub fn is_qcow2(first_bytes: &[u8]) -> bool {
    first_bytes.starts_with(MAGIC)
}

/// The virtual disk of a qcow2 image, read like a file of [`Qcow2::size`]
/// bytes.
#[derive(Debug)]
pub struct Qcow2<R: Read + Seek> {
    inner: R,
    file_len: u64,
    version: u32,
    cluster_bits: u32,
    size: u64,
    l1: Vec<u64>,
    pos: u64,
    /// The last L2 table read (its host offset) and the last compressed
    /// cluster inflated (its guest cluster number).
    l2: Option<(u64, Vec<u64>)>,
    inflated: Option<(u64, Vec<u8>)>,
}

impl Qcow2<File> {
    /// Opens the image at `path`.
    pub fn open_path(path: &Path) -> Result<Self> {
        let f = File::open(path).with_context(|| format!("opening {}", path.display()))?;
        Self::open(f).with_context(|| format!("reading {}", path.display()))
    }
}

impl<R: Read + Seek> Qcow2<R> {
    /// Reads and checks the header and the L1 table.
    pub fn open(mut inner: R) -> Result<Self> {
        let file_len = inner.seek(SeekFrom::End(0)).context("seeking to the end")?;
        let mut h = [0u8; V3_HEADER_LEN + 8];
        let have = usize::try_from(file_len).unwrap_or(usize::MAX).min(h.len());
        read_at(&mut inner, 0, &mut h[..have])?;
        ensure!(
            is_qcow2(&h[..have]),
            "not a qcow2 image (no QFI\\xfb magic)"
        );
        let version = be32(&h, 4);
        ensure!(
            version == 2 || version == 3,
            "qcow2 version {version}: expected 2 or 3"
        );
        let header_len = if version == 2 {
            V2_HEADER_LEN
        } else {
            be32(&h, 100) as usize
        };
        ensure!(
            have >= header_len.min(V3_HEADER_LEN) && header_len >= V2_HEADER_LEN,
            "the qcow2 header is cut short ({have} bytes)"
        );
        let backing_offset = be64(&h, 8);
        if backing_offset != 0 {
            let name = backing_name(&mut inner, backing_offset, be32(&h, 16), file_len);
            bail!("the image has a backing file ({name}); only standalone images are read");
        }
        let cluster_bits = be32(&h, 20);
        ensure!(
            (MIN_CLUSTER_BITS..=MAX_CLUSTER_BITS).contains(&cluster_bits),
            "qcow2 cluster_bits {cluster_bits}: expected {MIN_CLUSTER_BITS} to {MAX_CLUSTER_BITS}"
        );
        let size = be64(&h, 24);
        ensure!(
            size <= MAX_VIRTUAL_SIZE,
            "qcow2 virtual size {size}: above the format's 64 PB"
        );
        ensure!(
            be32(&h, 32) == 0,
            "the image is encrypted (crypt_method {})",
            be32(&h, 32)
        );
        if version == 3 {
            ensure!(
                header_len >= V3_HEADER_LEN && header_len % 8 == 0,
                "qcow2 header_length {header_len}: expected a multiple of 8 from {V3_HEADER_LEN}"
            );
            check_features(be64(&h, 72), (header_len > V3_HEADER_LEN).then(|| h[104]))?;
        }
        let l1 = read_l1(&mut inner, &h, cluster_bits, size, file_len)?;
        Ok(Self {
            inner,
            file_len,
            version,
            cluster_bits,
            size,
            l1,
            pos: 0,
            l2: None,
            inflated: None,
        })
    }

    /// The virtual disk's size in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    pub fn cluster_size(&self) -> u64 {
        1 << self.cluster_bits
    }

    /// Reads from the current position up to the end of its cluster.
    fn read_cluster(&mut self, buf: &mut [u8]) -> Result<usize> {
        let cs = self.cluster_size();
        let (pos, cb) = (self.pos, self.cluster_bits);
        let within = pos % cs;
        let n = (cs - within).min(self.size - pos).min(buf.len() as u64) as usize;
        let buf = &mut buf[..n];
        let guest = pos >> cb;
        let l1_entry = usize::try_from(guest >> (cb - 3))
            .ok()
            .and_then(|i| self.l1.get(i))
            .copied()
            .unwrap_or(0);
        let l2_offset = l1_entry & OFFSET_MASK;
        if l2_offset == 0 {
            buf.fill(0);
            return Ok(n);
        }
        let index = (guest & ((1 << (cb - 3)) - 1)) as usize;
        let entry = self.l2_entry(l2_offset, index)?;
        if entry & L2_COMPRESSED != 0 {
            let data = self.inflate(guest, entry & DESCRIPTOR_MASK)?;
            buf.copy_from_slice(&data[within as usize..within as usize + n]);
            return Ok(n);
        }
        let host = entry & OFFSET_MASK;
        if host == 0 || (self.version >= 3 && entry & L2_ZERO != 0) {
            buf.fill(0);
            return Ok(n);
        }
        ensure!(
            host.is_multiple_of(cs),
            "cluster at {host} is not aligned to the cluster size {cs}"
        );
        self.read_in_file(host + within, buf)?;
        Ok(n)
    }

    /// Entry `index` of the L2 table at `offset`, through a one-table cache.
    fn l2_entry(&mut self, offset: u64, index: usize) -> Result<u64> {
        if self.l2.as_ref().is_none_or(|(at, _)| *at != offset) {
            let cs = self.cluster_size();
            ensure!(
                offset.is_multiple_of(cs),
                "L2 table at {offset} is not aligned to the cluster size {cs}"
            );
            let mut raw = vec![0u8; cs as usize];
            self.read_in_file(offset, &mut raw)
                .context("reading an L2 table")?;
            let table = raw.chunks_exact(8).map(|e| be64(e, 0)).collect();
            self.l2 = Some((offset, table));
        }
        Ok(self
            .l2
            .as_ref()
            .and_then(|(_, t)| t.get(index))
            .copied()
            .unwrap_or(0))
    }

    /// The guest cluster `guest`, inflated from the compressed cluster
    /// `descriptor` (raw deflate, as QEMU writes compression type 0).
    fn inflate(&mut self, guest: u64, descriptor: u64) -> Result<&[u8]> {
        if self.inflated.as_ref().is_none_or(|(g, _)| *g != guest) {
            let cs = self.cluster_size();
            // x = 62 - (cluster_bits - 8): bits 0..x are the host offset,
            // bits x..62 the count of further 512-byte sectors.
            let x = 62 - (self.cluster_bits - 8);
            let host = descriptor & ((1 << x) - 1);
            let sectors = (descriptor >> x) + 1;
            ensure!(
                host < self.file_len,
                "compressed cluster at {host} is past the end of the file ({} bytes)",
                self.file_len
            );
            let len = (sectors * SECTOR - host % SECTOR).min(self.file_len - host);
            let mut packed = vec![0u8; len as usize];
            self.read_in_file(host, &mut packed)?;
            let mut out = Vec::with_capacity(cs as usize);
            let mut z = Decompress::new(false);
            // The data may end with the next cluster's bytes: inflating
            // stops once a whole cluster is out.
            while (out.len() as u64) < cs {
                let (before_in, before_out) = (z.total_in(), z.total_out());
                let consumed = usize::try_from(before_in).unwrap_or(packed.len());
                z.decompress_vec(
                    packed.get(consumed..).unwrap_or_default(),
                    &mut out,
                    FlushDecompress::Finish,
                )
                .with_context(|| format!("inflating the compressed cluster at {host}"))?;
                if z.total_in() == before_in && z.total_out() == before_out {
                    break;
                }
            }
            ensure!(
                out.len() as u64 >= cs,
                "the compressed cluster at {host} inflates to {} bytes, not {cs}",
                out.len()
            );
            out.truncate(cs as usize);
            self.inflated = Some((guest, out));
        }
        Ok(self.inflated.as_ref().map_or(&[][..], |(_, d)| &d[..]))
    }

    fn read_in_file(&mut self, offset: u64, buf: &mut [u8]) -> Result<()> {
        ensure!(
            offset
                .checked_add(buf.len() as u64)
                .is_some_and(|end| end <= self.file_len),
            "{} bytes at {offset} are past the end of the file ({} bytes)",
            buf.len(),
            self.file_len
        );
        read_at(&mut self.inner, offset, buf)
    }
}

impl<R: Read + Seek> Read for Qcow2<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut done = 0;
        while done < buf.len() && self.pos < self.size {
            let n = self
                .read_cluster(&mut buf[done..])
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("{e:#}")))?;
            self.pos += n as u64;
            done += n;
        }
        Ok(done)
    }
}

impl<R: Read + Seek> Seek for Qcow2<R> {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        self.pos = crate::files::seek_target(to, self.size, self.pos)?;
        Ok(self.pos)
    }
}

/// Refuses the incompatible features this reader does not implement.
fn check_features(incompatible: u64, compression_type: Option<u8>) -> Result<()> {
    let known = INCOMPAT_DIRTY
        | INCOMPAT_CORRUPT
        | INCOMPAT_DATA_FILE
        | INCOMPAT_COMPRESSION
        | INCOMPAT_EXTENDED_L2;
    ensure!(
        incompatible & !known == 0,
        "unknown qcow2 incompatible features {:#x}",
        incompatible & !known
    );
    ensure!(
        incompatible & INCOMPAT_CORRUPT == 0,
        "the image is marked corrupt (`qemu-img check -r all` repairs it)"
    );
    ensure!(
        incompatible & INCOMPAT_DATA_FILE == 0,
        "the image keeps its data in an external data file; only standalone images are read"
    );
    ensure!(
        incompatible & INCOMPAT_EXTENDED_L2 == 0,
        "the image has extended L2 entries (subclusters), which are not read"
    );
    let kind = compression_type.unwrap_or(0);
    if incompatible & INCOMPAT_COMPRESSION != 0 || kind != 0 {
        bail!(
            "the image's compressed clusters use compression type {kind} (1 is zstd); only zlib (0) is read: \
             `qemu-img convert -O qcow2 -o compression_type=zlib` rewrites it"
        );
    }
    // A dirty image has stale refcounts, which a reader does not use.
    Ok(())
}

/// The active L1 table: as many entries as the virtual size needs.
fn read_l1<R: Read + Seek>(
    inner: &mut R,
    h: &[u8],
    cluster_bits: u32,
    size: u64,
    file_len: u64,
) -> Result<Vec<u64>> {
    let l1_size = u64::from(be32(h, 36));
    let offset = be64(h, 40);
    // One L1 entry maps an L2 table of cluster_size / 8 clusters.
    let needed = size.div_ceil(1 << (2 * cluster_bits - 3));
    ensure!(
        l1_size >= needed,
        "the L1 table has {l1_size} entries; a {size}-byte disk needs {needed}"
    );
    ensure!(
        needed * 8 <= MAX_L1_BYTES,
        "a {size}-byte disk with {}-byte clusters needs an L1 table above QEMU's 32 MiB",
        1u64 << cluster_bits
    );
    ensure!(
        offset.is_multiple_of(1 << cluster_bits),
        "the L1 table at {offset} is not aligned to a cluster"
    );
    ensure!(
        offset
            .checked_add(needed * 8)
            .is_some_and(|e| e <= file_len),
        "the L1 table at {offset} is past the end of the file ({file_len} bytes)"
    );
    let mut raw = vec![0u8; (needed * 8) as usize];
    read_at(inner, offset, &mut raw).context("reading the L1 table")?;
    Ok(raw.chunks_exact(8).map(|e| be64(e, 0)).collect())
}

/// The backing file's name for a message, or what is known of it.
fn backing_name<R: Read + Seek>(inner: &mut R, offset: u64, len: u32, file_len: u64) -> String {
    let fits = len <= MAX_BACKING_NAME
        && offset
            .checked_add(u64::from(len))
            .is_some_and(|e| e <= file_len);
    let mut name = vec![0u8; if fits { len as usize } else { 0 }];
    if fits && read_at(inner, offset, &mut name).is_ok() {
        format!("{:?}", String::from_utf8_lossy(&name))
    } else {
        format!("a name at {offset}")
    }
}

fn read_at<R: Read + Seek>(inner: &mut R, offset: u64, buf: &mut [u8]) -> Result<()> {
    inner
        .seek(SeekFrom::Start(offset))
        .and_then(|_| inner.read_exact(buf))
        .with_context(|| format!("reading {} bytes at {offset}", buf.len()))
}

fn be32(b: &[u8], at: usize) -> u32 {
    let mut v = [0u8; 4];
    v.copy_from_slice(b.get(at..at + 4).unwrap_or(&[0; 4]));
    u32::from_be_bytes(v)
}

fn be64(b: &[u8], at: usize) -> u64 {
    let mut v = [0u8; 8];
    v.copy_from_slice(b.get(at..at + 8).unwrap_or(&[0; 8]));
    u64::from_be_bytes(v)
}

#[cfg(test)]
mod tests;
