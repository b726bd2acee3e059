//! A gzip writer that compresses on several threads, as pigz does: the
//! input is cut into fixed blocks, each block is raw-deflated on its own
//! (primed with the previous block's last 32 KiB as a dictionary) and ends
//! with a sync flush, so the blocks join into one deflate stream in one
//! gzip member. The bytes depend on the input, the block size and the
//! level only: never on the number of threads or on their timing.
//!
//! One member matters: single-member readers (flate2's `GzDecoder`, Go's
//! gzip.Reader with Multistream(false)) stop after the first, and GCE's
//! import does not say which kind it is. Own code over flate2 rather than the `gzp` crate: gzp
//! brings its own thread pool and channel crates for what is about 200
//! lines here, and flate2 is already what reads and writes gzip in craton.
//! The deflate implementation is pinned to zlib-rs (Cargo.toml), since a
//! different one would make different (equally valid) bytes.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::sync::mpsc::{Receiver, Sender, SyncSender, channel, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use anyhow::{Context, Result, bail};
use flate2::{Compress, Compression, Crc, FlushCompress, Status};

/// The block each thread compresses: pigz's default is 128 KiB; 1 MiB
/// keeps the per-block cost (a sync flush, a new dictionary) negligible.
pub const DEFAULT_BLOCK: usize = 1 << 20;
/// The deflate window (RFC 1951 section 2.2): what a block may refer back
/// to in the one before it.
const DICT: usize = 32 * 1024;
/// RFC 1952 section 2.3: ID1 ID2, CM = 8 (deflate), FLG = 0 (no name, no
/// extra), MTIME = 0 (none, so the output does not depend on the time);
/// XFL and OS follow.
const HEADER: [u8; 8] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0];
/// OS = 3, Unix, as gzip writes it on Linux.
const OS_UNIX: u8 = 3;

struct Job {
    index: u64,
    dict: Vec<u8>,
    data: Vec<u8>,
    last: bool,
}

struct Done {
    index: u64,
    deflated: Vec<u8>,
    crc: Crc,
}

/// A gzip stream being written to `W`; call [`ParGz::finish`] to end it.
pub struct ParGz<W: Write> {
    out: W,
    level: u32,
    block: usize,
    buf: Vec<u8>,
    dict: Vec<u8>,
    sent: u64,
    written: u64,
    waiting: BTreeMap<u64, Done>,
    max_in_flight: u64,
    crc: Crc,
    /// The input's length so far (its low 32 bits are the trailer's ISIZE).
    total: u64,
    jobs: Option<SyncSender<Job>>,
    results: Receiver<io::Result<Done>>,
    workers: Vec<JoinHandle<()>>,
}

impl<W: Write> ParGz<W> {
    /// A writer at `level` (0-9) on `jobs` threads with [`DEFAULT_BLOCK`].
    pub fn new(out: W, level: u32, jobs: usize) -> Result<Self> {
        Self::with_block_size(out, level, jobs, DEFAULT_BLOCK)
    }

    /// A writer with blocks of `block` bytes (at least the 32 KiB window).
    pub fn with_block_size(out: W, level: u32, jobs: usize, block: usize) -> Result<Self> {
        if level > 9 {
            bail!("gzip level {level}: expected 0 to 9");
        }
        if block < DICT {
            bail!("gzip block size {block}: expected at least {DICT}");
        }
        let jobs = jobs.max(1);
        // At most two blocks per thread are queued or being compressed,
        // and as many compressed ones may wait for an earlier one.
        let max_in_flight = 2 * jobs as u64;
        let (job_tx, job_rx) = sync_channel::<Job>(2 * jobs);
        let (done_tx, results) = channel();
        let job_rx = Arc::new(Mutex::new(job_rx));
        let mut workers = Vec::with_capacity(jobs);
        for n in 0..jobs {
            let (rx, tx) = (Arc::clone(&job_rx), done_tx.clone());
            let w = std::thread::Builder::new()
                .name(format!("gzip-{n}"))
                .spawn(move || worker(&rx, &tx, level))
                .context("starting a gzip thread")?;
            workers.push(w);
        }
        Ok(Self {
            out,
            level,
            block,
            buf: Vec::with_capacity(block),
            dict: Vec::new(),
            sent: 0,
            written: 0,
            waiting: BTreeMap::new(),
            max_in_flight,
            crc: Crc::new(),
            total: 0,
            jobs: Some(job_tx),
            results,
            workers,
        })
    }

    /// Compresses what is left, writes the gzip trailer and returns the
    /// inner writer (flushed).
    pub fn finish(mut self) -> Result<W> {
        self.send(true).context("compressing the last gzip block")?;
        while self.written < self.sent {
            self.wait_one().context("compressing a gzip block")?;
        }
        let mut trailer = [0u8; 8];
        trailer[..4].copy_from_slice(&self.crc.sum().to_le_bytes());
        // ISIZE is the input length modulo 2^32 (RFC 1952 section 2.3.1).
        trailer[4..].copy_from_slice(&(self.total as u32).to_le_bytes());
        self.out
            .write_all(&trailer)
            .and_then(|()| self.out.flush())
            .context("writing the gzip trailer")?;
        // Dropping the sender ends the threads (as dropping the writer
        // unfinished does); joining them here reports nothing new.
        self.stop_workers();
        Ok(self.out)
    }

    /// Hands the current block to the threads (the last one ends the
    /// deflate stream), first waiting if too many are in flight.
    fn send(&mut self, last: bool) -> io::Result<()> {
        while self.sent - self.written >= self.max_in_flight {
            self.wait_one()?;
        }
        let data = std::mem::replace(&mut self.buf, Vec::with_capacity(self.block));
        let dict = std::mem::replace(
            &mut self.dict,
            data[data.len().saturating_sub(DICT)..].to_vec(),
        );
        let job = Job {
            index: self.sent,
            dict,
            data,
            last,
        };
        let sent = self.jobs.as_ref().is_some_and(|tx| tx.send(job).is_ok());
        if !sent {
            return Err(io::Error::other("the gzip threads have stopped"));
        }
        self.sent += 1;
        // Write whatever is ready without waiting.
        while let Ok(r) = self.results.try_recv() {
            self.take(r?)?;
        }
        Ok(())
    }

    fn wait_one(&mut self) -> io::Result<()> {
        let r = self
            .results
            .recv()
            .map_err(|_| io::Error::other("a gzip thread ended early"))?;
        self.take(r?)
    }

    /// Keeps a compressed block and writes those now in order.
    fn take(&mut self, done: Done) -> io::Result<()> {
        self.waiting.insert(done.index, done);
        while let Some(d) = self.waiting.remove(&self.written) {
            if self.written == 0 {
                let xfl = match self.level {
                    // RFC 1952: 2 = maximum compression, 4 = fastest.
                    9 => 2,
                    1 => 4,
                    _ => 0,
                };
                self.out.write_all(&HEADER)?;
                self.out.write_all(&[xfl, OS_UNIX])?;
            }
            self.out.write_all(&d.deflated)?;
            self.crc.combine(&d.crc);
            self.written += 1;
        }
        Ok(())
    }

    fn stop_workers(&mut self) {
        self.jobs = None;
        for w in self.workers.drain(..) {
            // A thread that panicked has already failed its block.
            let _ = w.join();
        }
    }
}

impl<W: Write> Write for ParGz<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let n = (self.block - self.buf.len()).min(data.len());
        self.buf.extend_from_slice(&data[..n]);
        self.total += n as u64;
        if self.buf.len() == self.block {
            self.send(false)?;
        }
        Ok(n)
    }

    /// Writes the blocks compressed so far; a partial block stays until it
    /// fills or [`ParGz::finish`], so flushing does not change the bytes.
    fn flush(&mut self) -> io::Result<()> {
        while let Ok(r) = self.results.try_recv() {
            self.take(r?)?;
        }
        self.out.flush()
    }
}

/// A compression thread: takes blocks until the writer goes away.
fn worker(jobs: &Mutex<Receiver<Job>>, done: &Sender<io::Result<Done>>, level: u32) {
    loop {
        let job = match jobs.lock() {
            Ok(rx) => rx.recv(),
            Err(_) => return,
        };
        let Ok(job) = job else { return };
        let mut crc = Crc::new();
        crc.update(&job.data);
        let r = deflate_block(level, &job.dict, &job.data, job.last).map(|deflated| Done {
            index: job.index,
            deflated,
            crc,
        });
        if done.send(r).is_err() {
            return;
        }
    }
}

/// Raw deflate of one block: primed with `dict`, ended by a sync flush (a
/// byte-aligned empty stored block, so the next block can follow it), or
/// for the last block by the final block.
fn deflate_block(level: u32, dict: &[u8], data: &[u8], last: bool) -> io::Result<Vec<u8>> {
    let mut c = Compress::new(Compression::new(level), false);
    if !dict.is_empty() {
        c.set_dictionary(dict).map_err(io::Error::other)?;
    }
    let flush = if last {
        FlushCompress::Finish
    } else {
        FlushCompress::Sync
    };
    // zlib's deflateBound, rounded up, plus the flush's few bytes.
    let mut out = Vec::with_capacity(data.len() + data.len() / 1000 + 64);
    loop {
        if out.len() == out.capacity() {
            out.reserve(64 * 1024);
        }
        let consumed = usize::try_from(c.total_in()).unwrap_or(data.len());
        let status = c
            .compress_vec(&data[consumed.min(data.len())..], &mut out, flush)
            .map_err(io::Error::other)?;
        let all_in = c.total_in() == data.len() as u64;
        // A flush is complete when it returns with room to spare.
        let complete = if last {
            status == Status::StreamEnd
        } else {
            all_in && out.len() < out.capacity()
        };
        if complete {
            return Ok(out);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read as _;

    use flate2::read::{GzDecoder, MultiGzDecoder};

    use super::*;
    use crate::process::Cmd;

    /// Compressible but not trivial bytes.
    fn sample(len: usize) -> Vec<u8> {
        let mut x: u32 = 12345;
        (0..len)
            .map(|i| {
                x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
                if (i / 5000) % 3 == 0 {
                    b"gzip"[i % 4]
                } else {
                    (x >> 24) as u8 & 0x3f
                }
            })
            .collect()
    }

    fn gz(data: &[u8], jobs: usize, block: usize) -> Vec<u8> {
        let mut w = ParGz::with_block_size(Vec::new(), 6, jobs, block).unwrap();
        // Uneven writes, so block edges fall inside them.
        for chunk in data.chunks(7777) {
            w.write_all(chunk).unwrap();
        }
        w.finish().unwrap()
    }

    fn check(data: &[u8], block: usize) {
        let one = gz(data, 1, block);
        assert_eq!(one, gz(data, 4, block), "{} bytes", data.len());
        let mut back = Vec::new();
        MultiGzDecoder::new(&one[..])
            .read_to_end(&mut back)
            .unwrap();
        assert_eq!(back, data);
        // One member: the single-member decoder reads it all too.
        back.clear();
        GzDecoder::new(&one[..]).read_to_end(&mut back).unwrap();
        assert_eq!(back, data);
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("x.gz");
        std::fs::write(&f, &one).unwrap();
        Cmd::new("gzip").arg("-t").arg(&f).run().unwrap();
        assert_eq!(Cmd::new("gzip").arg("-dc").arg(&f).output().unwrap(), data);
    }

    #[test]
    fn one_member_whatever_the_threads() {
        let block = 64 * 1024;
        check(&[], block);
        check(b"x", block);
        check(&sample(block), block);
        check(&sample(37 * block + 1234), block);
    }

    #[test]
    fn default_blocks() {
        let data = sample(3 * DEFAULT_BLOCK + 17);
        let mut w = ParGz::new(Vec::new(), 6, 2).unwrap();
        w.write_all(&data).unwrap();
        w.flush().unwrap();
        let out = w.finish().unwrap();
        assert_eq!(out, gz(&data, 3, DEFAULT_BLOCK));
        assert_eq!(&out[..10], [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3]);
        let n = out.len();
        assert_eq!(&out[n - 4..], (data.len() as u32).to_le_bytes());
    }

    #[test]
    fn bad_settings() {
        assert!(ParGz::new(Vec::new(), 10, 1).is_err());
        assert!(ParGz::with_block_size(Vec::new(), 6, 1, 1000).is_err());
    }
}
