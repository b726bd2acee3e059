//! The ESP: a FAT32 filesystem made with the `fatfs` crate directly in the
//! partition's region of the image, holding the files the caller lists.
//! Also the GRUB environment block (grubenv) format.
//!
//! fatfs works on any Read + Write + Seek; [`Region`] limits a file to the
//! partition's bytes, so formatting sees the partition's size and cannot
//! write outside it. Timestamps come from SOURCE_DATE_EPOCH, the volume
//! serial from the seed: the same inputs give the same bytes.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;

use anyhow::{Context, Result, bail};
use fatfs::{Date, DateTime, FatType, FileSystem, FormatVolumeOptions, FsOptions, Time};

use super::{EspFile, PartInfo, Source, components};

pub use crate::partition::ESP_LABEL;

/// A grubenv file: the boot module's encoder.
pub use crate::boot::grubenv::encode_grubenv as grubenv;

/// A window of a file: offsets are relative to `start`, and the end is
/// `start + len` (fatfs formats "the whole device", which is this).
pub struct Region<'a> {
    file: &'a File,
    start: u64,
    len: u64,
    pos: u64,
}

impl<'a> Region<'a> {
    pub fn new(file: &'a File, start: u64, len: u64) -> Self {
        Self {
            file,
            start,
            len,
            pos: 0,
        }
    }
}

impl Read for Region<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.len.saturating_sub(self.pos);
        let n = (buf.len() as u64).min(left) as usize;
        let n = self.file.read_at(&mut buf[..n], self.start + self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl Write for Region<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let left = self.len.saturating_sub(self.pos);
        if left == 0 && !buf.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                "write past the end of the partition",
            ));
        }
        let n = (buf.len() as u64).min(left) as usize;
        let n = self.file.write_at(&buf[..n], self.start + self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Seek for Region<'_> {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let new = match to {
            SeekFrom::Start(n) => Some(n),
            SeekFrom::End(d) => self.len.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        match new {
            Some(n) => {
                self.pos = n;
                Ok(n)
            }
            None => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "seek before the start of the partition",
            )),
        }
    }
}

/// fatfs's clock: always SOURCE_DATE_EPOCH (as UTC; FAT has no zone).
#[derive(Debug)]
struct FixedTime(DateTime);

impl fatfs::TimeProvider for FixedTime {
    fn get_current_date(&self) -> Date {
        self.0.date
    }

    fn get_current_date_time(&self) -> DateTime {
        self.0
    }
}

/// A Unix time as a FAT date and time, clamped to FAT's range
/// (1980-01-01 to 2107-12-31).
pub fn fat_time(epoch: u64) -> DateTime {
    const MIN: u64 = 315_532_800; // 1980-01-01T00:00:00Z
    const MAX: u64 = 4_354_819_199; // 2107-12-31T23:59:59Z
    let t = epoch.clamp(MIN, MAX);
    let (days, secs) = (t / 86_400, t % 86_400);
    // Days to civil date (Howard Hinnant, "chrono-Compatible Low-Level
    // Date Algorithms", civil_from_days), for days after 1970.
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    DateTime {
        date: Date {
            year: year as u16,
            month: month as u16,
            day: day as u16,
        },
        time: Time {
            hour: (secs / 3600) as u16,
            min: (secs / 60 % 60) as u16,
            sec: (secs % 60) as u16,
            millis: 0,
        },
    }
}

/// Formats the ESP as FAT32 and copies the files in.
pub fn write(
    disk: &File,
    part: &PartInfo,
    files: &[EspFile],
    volume_id: u32,
    epoch: u64,
) -> Result<()> {
    let mut label = [b' '; 11];
    label[..ESP_LABEL.len()].copy_from_slice(ESP_LABEL.as_bytes());
    let options = FormatVolumeOptions::new()
        .fat_type(FatType::Fat32)
        .volume_label(label)
        .volume_id(volume_id);
    fatfs::format_volume(Region::new(disk, part.offset(), part.len()), options)
        .with_context(|| format!("formatting {} as FAT32 ({} bytes)", part.label, part.len()))?;

    // FsOptions wants a &'static clock; one small struct per disk written
    // is leaked for it (the epoch differs between builds, so no static).
    let clock: &'static FixedTime = Box::leak(Box::new(FixedTime(fat_time(epoch))));
    let fs = FileSystem::new(
        Region::new(disk, part.offset(), part.len()),
        FsOptions::new().time_provider(clock),
    )
    .with_context(|| format!("opening the FAT filesystem of {}", part.label))?;
    // fatfs formats a partition with too few clusters for FAT32 (65525,
    // Microsoft fatgen103) without complaint, but every reader, fatfs
    // included, then takes it for FAT16.
    if fs.fat_type() != FatType::Fat32 {
        bail!(
            "{} ({}) is too small for FAT32, which needs 65525 clusters",
            part.label,
            super::Mib(part.len() >> 20)
        );
    }
    for f in files {
        copy_in(&fs, f).with_context(|| format!("writing {} on the ESP", f.path))?;
    }
    // fatfs leaves FSInfo's free-cluster count "unknown" after a format;
    // counting once makes unmount record it, as mkfs.fat would.
    fs.stats()
        .with_context(|| format!("counting the free clusters of {}", part.label))?;
    fs.unmount()
        .with_context(|| format!("closing the FAT filesystem of {}", part.label))?;
    super::fat_fixup::fix_dot_entries(disk, part.offset())
        .with_context(|| format!("repairing the folders of {}", part.label))
}

fn copy_in(fs: &FileSystem<Region<'_>>, f: &EspFile) -> Result<()> {
    let parts = components(&f.path)?;
    let (name, dirs) = parts.split_last().context("empty path")?;
    let mut dir = fs.root_dir();
    for d in dirs {
        dir = dir.create_dir(d)?;
    }
    let mut out = dir.create_file(name)?;
    out.truncate()?;
    match &f.source {
        Source::Bytes(b) => out.write_all(b)?,
        Source::File(p) => {
            let mut src = File::open(p).with_context(|| format!("opening {}", p.display()))?;
            io::copy(&mut src, &mut out).with_context(|| format!("copying {}", p.display()))?;
        }
    }
    out.flush()?;
    Ok(())
}
