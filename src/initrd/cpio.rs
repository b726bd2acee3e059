//! A deterministic writer of "newc" cpio archives, the format the kernel
//! unpacks into the initramfs (Documentation/driver-api/early-userspace/
//! buffer-format.rst), and [`pack_tree`], which writes a whole folder.
//!
//! Determinism: entries come in byte order of their paths (so a parent
//! always precedes what it holds), mtimes are the caller's epoch, inode
//! numbers count up from 1 in that order, device numbers are zero. Owners
//! and modes are the tree's. It writes directories, regular files, symlinks
//! (the target is the entry's data) and hard links; it refuses device
//! nodes, FIFOs and sockets (an initrd gets /dev from devtmpfs).
//! It does not compress: the caller wraps the output.

use std::collections::HashMap;
use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use anyhow::{Context, Result, bail};

/// The newc magic (buffer-format.rst: c_magic "070701").
pub const MAGIC: &[u8; 6] = b"070701";
/// The header's length: the magic and 13 fields of 8 hex digits.
pub const HEADER_LEN: usize = 6 + 13 * 8;
/// The name of the entry that ends an archive (buffer-format.rst).
pub const TRAILER: &str = "TRAILER!!!";
/// Headers and data start 4-byte aligned (buffer-format.rst's grammar:
/// cpio_file := ALGN(4) + cpio_header + filename + "\0" + ALGN(4) + data).
const ALIGN: u64 = 4;

/// File type bits of st_mode (inode(7)).
const S_IFMT: u32 = 0o170000;
const S_IFDIR: u32 = 0o040000;
const S_IFREG: u32 = 0o100000;
const S_IFLNK: u32 = 0o120000;

/// One entry's header fields that vary (the rest are zero).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub ino: u32,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub nlink: u32,
    pub mtime: u32,
    pub size: u32,
}

/// Writes entries to `W` and counts the bytes written.
pub struct Writer<W: Write> {
    out: W,
    written: u64,
    next_ino: u32,
    mtime: u32,
}

fn padding(len: u64) -> usize {
    ((ALIGN - len % ALIGN) % ALIGN) as usize
}

/// A field of the header is 32 bits: the format cannot say more.
fn field(v: u64, what: &str, name: &str) -> Result<u32> {
    u32::try_from(v).with_context(|| format!("{name}: {what} {v} does not fit a newc header"))
}

impl<W: Write> Writer<W> {
    /// A writer that stamps every entry with `mtime` (seconds since 1970).
    pub fn new(out: W, mtime: u64) -> Result<Self> {
        Ok(Self {
            out,
            written: 0,
            next_ino: 1,
            mtime: field(mtime, "mtime", "the archive")?,
        })
    }

    /// The next inode number; entries that are hard links of each other
    /// share one.
    pub fn alloc_ino(&mut self) -> u32 {
        let ino = self.next_ino;
        self.next_ino += 1;
        ino
    }

    fn put(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.out.write_all(bytes)?;
        self.written += bytes.len() as u64;
        Ok(())
    }

    /// Writes one header and name; the caller writes `h.size` bytes of data
    /// and then [`Writer::pad`].
    fn header(&mut self, name: &[u8], h: &Header) -> Result<()> {
        let namesize = name.len() + 1;
        let fields = [
            h.ino,
            h.mode,
            h.uid,
            h.gid,
            h.nlink,
            h.mtime,
            h.size,
            0, // devmajor
            0, // devminor
            0, // rdevmajor
            0, // rdevminor
            field(
                namesize as u64,
                "name length",
                &String::from_utf8_lossy(name),
            )?,
            0, // check: only the "crc" variant (070702) uses it
        ];
        let mut head = Vec::with_capacity(HEADER_LEN + namesize + 3);
        head.extend_from_slice(MAGIC);
        for f in fields {
            head.extend_from_slice(format!("{f:08x}").as_bytes());
        }
        head.extend_from_slice(name);
        head.push(0);
        head.resize(head.len() + padding((HEADER_LEN + namesize) as u64), 0);
        self.put(&head).context("writing a cpio header")
    }

    fn pad(&mut self, size: u64) -> Result<()> {
        let zeros = [0u8; 4];
        self.put(&zeros[..padding(size)])
            .context("writing cpio padding")
    }

    /// A directory (`mode` holds the permission bits).
    pub fn dir(&mut self, name: &str, mode: u32, uid: u32, gid: u32) -> Result<()> {
        let ino = self.alloc_ino();
        let h = Header {
            ino,
            mode: S_IFDIR | (mode & 0o7777),
            uid,
            gid,
            nlink: 2,
            mtime: self.mtime,
            size: 0,
        };
        self.header(name.as_bytes(), &h)
    }

    /// A symlink to `target`, stored as the entry's data.
    pub fn symlink(&mut self, name: &str, target: &[u8], uid: u32, gid: u32) -> Result<()> {
        let ino = self.alloc_ino();
        let size = field(target.len() as u64, "link target length", name)?;
        let h = Header {
            ino,
            mode: S_IFLNK | 0o777,
            uid,
            gid,
            nlink: 1,
            mtime: self.mtime,
            size,
        };
        self.header(name.as_bytes(), &h)?;
        self.put(target)
            .with_context(|| format!("writing the target of {name}"))?;
        self.pad(target.len() as u64)
    }

    /// A regular file of `size` bytes read from `data`. `ino` and `nlink`
    /// come from [`Writer::alloc_ino`] for hard links; `None` for a file
    /// with one name.
    pub fn file(
        &mut self,
        name: &str,
        meta: FileMeta,
        size: u64,
        data: &mut dyn Read,
    ) -> Result<()> {
        let ino = match meta.link {
            Some((ino, _)) => ino,
            None => self.alloc_ino(),
        };
        let h = Header {
            ino,
            mode: S_IFREG | (meta.mode & 0o7777),
            uid: meta.uid,
            gid: meta.gid,
            nlink: meta.link.map_or(1, |(_, n)| n),
            mtime: self.mtime,
            size: field(size, "size", name)?,
        };
        self.header(name.as_bytes(), &h)?;
        let copied = io::copy(&mut data.take(size), &mut self.out)
            .with_context(|| format!("writing the data of {name}"))?;
        self.written += copied;
        if copied != size {
            bail!("{name}: expected {size} bytes, read {copied} (did the file change?)");
        }
        self.pad(size)
    }

    /// Ends the archive with the trailer and returns the output and the
    /// number of bytes written.
    pub fn finish(mut self) -> Result<(W, u64)> {
        let h = Header {
            ino: 0,
            mode: 0,
            uid: 0,
            gid: 0,
            nlink: 1,
            mtime: 0,
            size: 0,
        };
        self.header(TRAILER.as_bytes(), &h)?;
        Ok((self.out, self.written))
    }
}

/// Owner, permissions and hard-link identity of a regular file.
#[derive(Debug, Clone, Copy)]
pub struct FileMeta {
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    /// Shared inode number and link count, for a file with several names.
    pub link: Option<(u32, u32)>,
}

/// Every path below `root`, relative and sorted by bytes (a parent sorts
/// before its children because "a" < "a/b").
fn walk(root: &Path) -> Result<Vec<(Vec<u8>, fs::Metadata)>> {
    let mut out = Vec::new();
    let mut todo = vec![root.to_owned()];
    while let Some(dir) = todo.pop() {
        for e in fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))? {
            let e = e.with_context(|| format!("reading {}", dir.display()))?;
            let path = e.path();
            let meta = fs::symlink_metadata(&path)
                .with_context(|| format!("reading {}", path.display()))?;
            if meta.is_dir() {
                todo.push(path.clone());
            }
            let rel = path.strip_prefix(root).unwrap_or(&path);
            out.push((rel.as_os_str().as_bytes().to_vec(), meta));
        }
    }
    // Sort by components so "a/b" (a's child) precedes "a-b" (a sibling
    // that byte order would put between "a" and "a/b"): parents first.
    out.sort_by(|a, b| a.0.split(|&c| c == b'/').cmp(b.0.split(|&c| c == b'/')));
    Ok(out)
}

/// Writes the tree at `root` as a newc archive to `out`, every entry with
/// `mtime`; returns the output and the archive's length in bytes.
///
/// Hard links inside the tree stay hard links: every name carries the same
/// inode number and link count, and the data goes with the last name only
/// (as GNU cpio writes newc; the kernel's init/initramfs.c links each later
/// name to the first and writes the data whichever entry carries it).
pub fn pack_tree<W: Write>(root: &Path, mtime: u64, out: W) -> Result<(W, u64)> {
    let entries = walk(root)?;
    // How many names each multiply-linked inode has inside the tree (a
    // link count may also include names outside it).
    let mut names: HashMap<(u64, u64), u32> = HashMap::new();
    for (_, m) in &entries {
        if m.is_file() && m.nlink() > 1 {
            *names.entry((m.dev(), m.ino())).or_default() += 1;
        }
    }
    let mut w = Writer::new(out, mtime)?;
    // Inode number given to each linked inode, and names still to write.
    let mut links: HashMap<(u64, u64), (u32, u32)> = HashMap::new();
    for (rel, m) in &entries {
        let name = String::from_utf8(rel.clone()).with_context(|| {
            format!("{}: a path that is not UTF-8", String::from_utf8_lossy(rel))
        })?;
        let path = root.join(&name);
        let (uid, gid, perm) = (m.uid(), m.gid(), m.mode() & 0o7777);
        match m.mode() & S_IFMT {
            S_IFDIR => w.dir(&name, perm, uid, gid)?,
            S_IFLNK => {
                let target = fs::read_link(&path)
                    .with_context(|| format!("reading the link {}", path.display()))?;
                w.symlink(&name, target.as_os_str().as_bytes(), uid, gid)?;
            }
            S_IFREG => {
                let key = (m.dev(), m.ino());
                let mut meta = FileMeta {
                    mode: perm,
                    uid,
                    gid,
                    link: None,
                };
                let mut size = m.len();
                if let Some(&count) = names.get(&key).filter(|&&n| n > 1) {
                    let next = w.next_ino;
                    let (ino, left) = links.entry(key).or_insert((next, count));
                    if *ino == next {
                        w.alloc_ino();
                    }
                    *left -= 1;
                    meta.link = Some((*ino, count));
                    if *left > 0 {
                        size = 0;
                    }
                }
                let mut f =
                    fs::File::open(&path).with_context(|| format!("opening {}", path.display()))?;
                w.file(&name, meta, size, &mut f)?;
            }
            _ => bail!(
                "{}: device nodes, FIFOs and sockets do not belong in an initrd",
                path.display()
            ),
        }
    }
    w.finish()
}
