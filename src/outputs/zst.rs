//! A zstd copy of a file, compressed on zstd's own threads and put in place
//! with `files::TempFile` (written beside the destination, renamed at the
//! end), so a failed build leaves no partial `.zst`.
//!
//! zstd always runs in its multithreaded mode here, with at least one
//! worker: that mode's output depends on the level and the input, not on
//! the number of workers (checked by `same_bytes_for_any_number_of_workers`),
//! whereas the single-threaded mode (0 workers) cuts the input differently.
//! The frame records the content size and a checksum, as the zstd command
//! line writes them for a file.

use std::fs::File;
use std::io::{self, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use anyhow::{Context, Result, bail};

use crate::files::TempFile;

/// How much is read from the source at a time: large writes let zstd fill
/// a job without many small copies.
const READ_BUFFER: usize = 1 << 20;

/// Compresses `src` into `dst` at `level` on `jobs` threads (at least one).
pub fn compress_zstd(src: &Path, dst: &Path, level: i32, jobs: usize) -> Result<()> {
    let levels = zstd::compression_level_range();
    if !levels.contains(&level) {
        bail!(
            "zstd level {level}: expected {} to {}",
            levels.start(),
            levels.end()
        );
    }
    let input = File::open(src).with_context(|| format!("opening {}", src.display()))?;
    let meta = input
        .metadata()
        .with_context(|| format!("reading the size of {}", src.display()))?;
    let mut tmp = TempFile::beside(dst)?;
    let workers = u32::try_from(jobs.max(1)).unwrap_or(u32::MAX);
    let what = || format!("compressing {} into {}", src.display(), dst.display());
    let mut enc = zstd::stream::write::Encoder::new(&mut tmp, level).with_context(what)?;
    enc.multithread(workers)
        .and_then(|()| enc.include_checksum(true))
        .and_then(|()| enc.set_pledged_src_size(Some(meta.len())))
        .with_context(what)?;
    io::copy(&mut BufReader::with_capacity(READ_BUFFER, input), &mut enc)
        .and_then(|_| enc.finish())
        .with_context(what)?;
    tmp.set_mode(meta.permissions().mode() & 0o777)?;
    tmp.persist(dst)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::io::Write as _;

    use super::*;
    use crate::process::Cmd;

    /// Text-like bytes that compress but not to nothing, with a zero run.
    fn sample(len: usize) -> Vec<u8> {
        let mut v: Vec<u8> = (0..len)
            .map(|i| b"craton zstd sample "[i % 19] ^ ((i / 4099) as u8 & 7))
            .collect();
        v[len / 3..len / 2].fill(0);
        v
    }

    #[test]
    fn same_bytes_for_any_number_of_workers() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("in.raw");
        let data = sample(40 << 20);
        fs::write(&src, &data).unwrap();
        let mut outs = Vec::new();
        for jobs in [1, 2, 4] {
            let dst = dir.path().join(format!("out-{jobs}.zst"));
            compress_zstd(&src, &dst, 3, jobs).unwrap();
            outs.push(fs::read(&dst).unwrap());
        }
        assert_eq!(outs[0], outs[1]);
        assert_eq!(outs[0], outs[2]);
        assert_eq!(zstd::decode_all(&outs[0][..]).unwrap(), data);
        // Nothing left beside the outputs.
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 4);
    }

    #[test]
    fn the_zstd_command_reads_it() {
        let dir = tempfile::tempdir().unwrap();
        for (name, len) in [("empty", 0), ("byte", 1), ("some", 3 << 20)] {
            let src = dir.path().join(name);
            let dst = dir.path().join(format!("{name}.zst"));
            let data = sample(len.max(2))[..len].to_vec();
            fs::File::create(&src).unwrap().write_all(&data).unwrap();
            compress_zstd(&src, &dst, 19, 2).unwrap();
            assert_eq!(
                zstd::decode_all(fs::File::open(&dst).unwrap()).unwrap(),
                data
            );
            if which("zstd") {
                Cmd::new("zstd").arg("-tq").arg(&dst).run().unwrap();
                let out = Cmd::new("zstd").arg("-dcq").arg(&dst).output().unwrap();
                assert_eq!(out, data, "{name}");
            } else {
                eprintln!("zstd is not installed: skipping its check");
            }
        }
    }

    #[test]
    fn refuses_a_bad_level_and_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("in");
        fs::write(&src, b"x").unwrap();
        let err = compress_zstd(&src, &dir.path().join("o.zst"), 99, 1).unwrap_err();
        assert!(format!("{err:#}").contains("zstd level 99"), "{err:#}");
        let err = compress_zstd(&dir.path().join("missing"), &dir.path().join("o.zst"), 3, 1);
        assert!(format!("{:#}", err.unwrap_err()).contains("opening"));
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    fn which(program: &str) -> bool {
        std::env::var_os("PATH")
            .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(program).is_file()))
    }
}
