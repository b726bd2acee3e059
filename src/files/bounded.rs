//! Reading a stream into memory with an upper bound, so that a hostile or
//! broken input (a compressed index that expands without end) fails with a
//! message instead of exhausting memory; and where a seek lands in a
//! device of known length (a window on a disk, a qcow2's virtual disk), so
//! that a seek before the start is an error and not a wrapped offset.

use std::io::Read;

use anyhow::{Context, Result, bail};

/// Where a `Seek` to `to` lands in a device of `len` bytes read at `pos`
/// (past the end is allowed, as for files; before the start is an error).
pub fn seek_target(to: std::io::SeekFrom, len: u64, pos: u64) -> std::io::Result<u64> {
    use std::io::SeekFrom;
    match to {
        SeekFrom::Start(p) => Some(p),
        SeekFrom::End(d) => len.checked_add_signed(d),
        SeekFrom::Current(d) => pos.checked_add_signed(d),
    }
    .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidInput, "seek before the start"))
}

/// Reads all of `r`, failing once more than `limit` bytes arrive.
pub fn read_bounded(r: impl Read, limit: u64, what: &str) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    // One byte past the limit tells a stream of exactly `limit` bytes from
    // a longer one.
    r.take(limit.saturating_add(1))
        .read_to_end(&mut out)
        .with_context(|| format!("reading {what}"))?;
    if out.len() as u64 > limit {
        bail!("{what} is larger than {limit} bytes");
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stops_past_the_limit() {
        assert_eq!(read_bounded(&b"abc"[..], 3, "x").unwrap(), b"abc");
        let err = read_bounded(&b"abcd"[..], 3, "the index").unwrap_err();
        assert_eq!(format!("{err:#}"), "the index is larger than 3 bytes");
    }
}
