//! `craton update`: installs a signed build into the slot that is not
//! running, in an order that keeps the running slot bootable and the A/B
//! state consistent wherever it stops (docs/updates.md "Crash safety"):
//!
//! 1. The manifest and its signature; refusals (another image, not newer,
//!    an older manifest than the machine accepted) before anything is
//!    written.
//! 2. grubenv: the booted slot first in ORDER and the target not good, so
//!    no boot can start the target while it is being written (written only
//!    when this changes anything: a new image's empty slot B is already so).
//! 3. The /usr payload streamed into the target USR partition while it is
//!    hashed; its sha256 and size against the manifest; the dm-verity tree
//!    read back from the partition (its cached pages dropped first) and
//!    recomputed against the manifest's root hash.
//! 4. The record of the accepted manifest on ROOT (anti-rollback).
//! 5. The target's kernel, initrd and slot.cfg on the ESP: each written
//!    beside its old file and checked, then each renamed over it.
//! 6. grubenv last: the target pending (first in ORDER, not good, not
//!    tried), one rename of a whole block.

use std::fs::{File, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::path::Path;

use anyhow::{Context as _, Result, bail};
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::channel::{Channel, SignedManifest, trusted_keys};
use super::host::{ACCEPTED_FILE, Accepted, Booted, read_record, write_record};
use super::image::{IMAGE_INFO_PATH, ImageInfo};
use super::version;
use crate::boot::SlotEntry;
use crate::boot::grubcfg::{slot_cfg, slot_dir};
use crate::error::bad_input;
use crate::files::TempFile;
use crate::http::Http;
use crate::manifest::{Manifest, Output};
use crate::partition::PartKind;
use crate::payload::{KIND_INITRD, KIND_KERNEL, KIND_USR};
use crate::process::Cmd;
use crate::profile::UsrFilesystem;
use crate::usr::verity;

/// A test hook (docs/updates.md): `CRATON_UPDATE_PAUSE=payload` stops the
/// process (SIGSTOP) halfway through the /usr write, `=grubenv` just
/// before the final grubenv change, so a test can kill it there.
pub const PAUSE_ENV: &str = "CRATON_UPDATE_PAUSE";

/// What `craton update` is asked to do.
#[derive(Debug, Clone, Default)]
pub struct UpdateOptions {
    /// A folder, a manifest.json or an http(s) URL; `None`: the image's
    /// `[update] channel`.
    pub source: Option<String>,
    /// Only report whether the channel has something newer.
    pub check: bool,
    /// Install a version that is not newer than the booted one.
    pub allow_downgrade: bool,
}

/// What `craton update` did or would do.
#[derive(Debug, Clone, Serialize)]
pub struct UpdateReport {
    pub source: String,
    pub booted_slot: String,
    pub booted_version: String,
    pub offered_version: String,
    /// Whether the offered build may be installed.
    pub available: bool,
    /// Why not, when it may not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refused: Option<String>,
    /// The slot written (not with --check).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub installed_slot: Option<String>,
    pub payload_bytes: u64,
    pub seconds: f64,
}

/// Whether `offered` may replace the running image: the same image name,
/// a newer version (unless `allow_downgrade`), and a manifest no older
/// than the newest this machine accepted or the running build itself.
pub fn judge(
    info: &ImageInfo,
    accepted: Option<&Accepted>,
    offered: &Manifest,
    allow_downgrade: bool,
) -> Result<(), String> {
    if offered.name != info.name {
        return Err(format!(
            "the manifest is of image {:?}, this machine runs {:?}",
            offered.name, info.name
        ));
    }
    if !allow_downgrade && version::compare(&offered.version, &info.version).is_le() {
        return Err(format!(
            "version {} is not newer than the booted {} (--allow-downgrade installs it anyway)",
            offered.version, info.version
        ));
    }
    let (floor, what) = match accepted {
        Some(a) if a.source_date_epoch > info.source_date_epoch => (
            a.source_date_epoch,
            format!("the newest manifest this machine accepted ({})", a.version),
        ),
        _ => (
            info.source_date_epoch,
            format!("the booted build's ({})", info.version),
        ),
    };
    if offered.source_date_epoch < floor {
        return Err(format!(
            "the manifest is older (SOURCE_DATE_EPOCH {}) than {what}, {floor}: \
             an older manifest is never installed (anti-rollback)",
            offered.source_date_epoch
        ));
    }
    Ok(())
}

/// The payload's three files in the manifest.
struct Payload<'a> {
    usr: &'a Output,
    kernel: &'a Output,
    initrd: &'a Output,
}

fn payload(m: &Manifest) -> Result<Payload<'_>> {
    let find = |kind: &str| {
        m.outputs.iter().find(|o| o.kind == kind).ok_or_else(|| {
            bad_input(format!(
                "the manifest lists no {kind} output: not an update payload"
            ))
        })
    };
    Ok(Payload {
        usr: find(KIND_USR)?,
        kernel: find(KIND_KERNEL)?,
        initrd: find(KIND_INITRD)?,
    })
}

/// Runs `craton update` on the booted machine.
pub fn update(opts: &UpdateOptions) -> Result<UpdateReport> {
    let start = std::time::Instant::now();
    let info = ImageInfo::read(Path::new(IMAGE_INFO_PATH))?;
    let booted = Booted::detect()?;
    let keys = trusted_keys(Path::new(crate::sign::IMAGE_KEYS_DIR))?;
    let source = match (&opts.source, &info.channel) {
        (Some(s), _) | (None, Some(s)) => s.clone(),
        (None, None) => {
            return Err(bad_input(
                "no update source: give a folder, a manifest.json or a URL (the image has no [update] channel)",
            ));
        }
    };
    let channel = Channel::parse(&source)?;
    let http = Http::new();
    let signed = channel.signed_manifest(&http, &keys)?;
    let accepted: Option<Accepted> = read_record(Path::new("/"), ACCEPTED_FILE)?;
    let verdict = judge(
        &info,
        accepted.as_ref(),
        &signed.manifest,
        opts.allow_downgrade,
    );
    let pay = payload(&signed.manifest)?;
    let mut report = UpdateReport {
        source,
        booted_slot: booted.slot.dir_name().into(),
        booted_version: info.version.clone(),
        offered_version: signed.manifest.version.clone(),
        available: verdict.is_ok(),
        refused: verdict.clone().err(),
        installed_slot: None,
        payload_bytes: pay.usr.size + pay.kernel.size + pay.initrd.size,
        seconds: 0.0,
    };
    if opts.check {
        report.seconds = start.elapsed().as_secs_f64();
        return Ok(report);
    }
    if let Err(why) = verdict {
        return Err(bad_input(format!("refused: {why}; nothing was written")));
    }
    install(&booted, &channel, &http, &signed, &pay)?;
    report.installed_slot = Some((!booted.slot).dir_name().into());
    report.seconds = start.elapsed().as_secs_f64();
    Ok(report)
}

/// Steps 2 to 6 (the module's list).
fn install(
    booted: &Booted,
    channel: &Channel,
    http: &Http,
    signed: &SignedManifest,
    pay: &Payload,
) -> Result<()> {
    let m = &signed.manifest;
    let target = !booted.slot;
    let fs = match m.usr.filesystem.as_str() {
        "erofs" => UsrFilesystem::Erofs,
        "ext4" => UsrFilesystem::Ext4,
        other => {
            return Err(bad_input(format!(
                "the manifest's /usr filesystem {other:?} is not one craton boots"
            )));
        }
    };
    let entry = SlotEntry::new(target, &m.version, &m.usr.root_hash, m.usr.hash_offset, fs)
        .map_err(|e| bad_input(format!("{e:#}")))?;
    let usr_dev = booted.partition(PartKind::Usr(target))?;
    let room = partition_size(&usr_dev)?;
    if pay.usr.size > room {
        return Err(bad_input(format!(
            "the /usr payload ({} bytes) does not fit in {} ({room} bytes)",
            pay.usr.size,
            usr_dev.display()
        )));
    }
    let esp = booted.mount_esp(true)?;
    let before = esp.read_state()?;
    if !before.ok(booted.slot) {
        return Err(bad_input(format!(
            "the booted slot {} is on trial and not yet confirmed: its fallback, slot {target}, \
             is not overwritten (craton mark-good confirms it)",
            booted.slot
        )));
    }
    let mut writing = before.clone();
    writing.begin_install(target);
    if esp.write_state(&before, &writing)? {
        tracing::info!("slot {target} marked not bootable while it is written");
    }

    tracing::info!(
        "writing {} ({} bytes) to {}",
        pay.usr.file,
        pay.usr.size,
        usr_dev.display()
    );
    write_usr(channel, http, pay.usr, &usr_dev)?;
    check_usr(&usr_dev, m)?;
    tracing::info!(
        "{}: dm-verity root hash {} checked",
        usr_dev.display(),
        m.usr.root_hash
    );

    write_record(
        Path::new("/"),
        ACCEPTED_FILE,
        &Accepted {
            version: m.version.clone(),
            source_date_epoch: m.source_date_epoch,
            manifest_sha256: crate::digest::Sha256::of(&signed.bytes).to_hex(),
        },
    )?;

    // The slot's boot files: all written and checked, then renamed.
    let dir = slot_dir(target);
    let mut staged = Vec::new();
    for (out, name) in [(pay.kernel, "vmlinuz"), (pay.initrd, "initrd")] {
        let dest = esp.file(&format!("{dir}/{name}"));
        let tmp = TempFile::beside(&dest)?;
        let mut hashing = Hashing::new(tmp.as_file());
        channel.download(http, out, &mut hashing, Hashing::restart, |_| {})?;
        hashing.check(out)?;
        // A retried download may have left more behind its end.
        tmp.as_file().set_len(out.size)?;
        staged.push((tmp, dest));
    }
    let cfg_dest = esp.file(&format!("{dir}/slot.cfg"));
    let mut cfg = TempFile::beside(&cfg_dest)?;
    cfg.write_all(slot_cfg(&entry).as_bytes())
        .with_context(|| format!("writing {}", cfg.path().display()))?;
    staged.push((cfg, cfg_dest));
    for (tmp, dest) in staged {
        tmp.persist(&dest)?;
    }
    tracing::info!("slot {target}'s kernel, initrd and slot.cfg are on the ESP");

    pause_at("grubenv");
    let mut pending = writing.clone();
    pending.commit_install(target);
    esp.write_state(&writing, &pending)?;
    esp.unmount()?;
    tracing::info!(
        "slot {target} ({}) will be tried at the next boot",
        m.version
    );
    Ok(())
}

/// A writer that hashes what passes through it.
struct Hashing<W> {
    inner: W,
    hasher: Sha256,
    written: u64,
}

impl<W: Write + Seek> Hashing<W> {
    fn new(inner: W) -> Self {
        Hashing {
            inner,
            hasher: Sha256::new(),
            written: 0,
        }
    }

    /// Before a retried download: back to the start.
    fn restart(&mut self) {
        let _ = self.inner.seek(SeekFrom::Start(0));
        self.hasher = Sha256::new();
        self.written = 0;
    }

    fn check(&mut self, out: &Output) -> Result<()> {
        self.inner.flush()?;
        let got = hex::encode(self.hasher.clone().finalize());
        if self.written != out.size || got != out.sha256 {
            bail!(
                "{}: {} bytes with sha256 {got}, the signed manifest says {} bytes, {}",
                out.file,
                self.written,
                out.size,
                out.sha256
            );
        }
        Ok(())
    }
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Streams the /usr payload into the partition, checking its digest.
fn write_usr(channel: &Channel, http: &Http, out: &Output, dev: &Path) -> Result<()> {
    let file = OpenOptions::new()
        .write(true)
        .open(dev)
        .with_context(|| format!("opening {} for writing", dev.display()))?;
    let mut hashing = Hashing::new(&file);
    let half = out.size / 2;
    let mut paused = false;
    let mut done = 0u64;
    channel.download(http, out, &mut hashing, Hashing::restart, |n| {
        done += n;
        if !paused && done >= half {
            paused = true;
            pause_at("payload");
        }
    })?;
    hashing.check(out)?;
    file.sync_all()
        .with_context(|| format!("flushing {}", dev.display()))?;
    Ok(())
}

/// Reads the written /usr back from the disk and recomputes its verity tree.
fn check_usr(dev: &Path, m: &Manifest) -> Result<()> {
    // BLKFLSBUF (blockdev(8)): the kernel drops the device's cached pages,
    // so what is read next comes from the disk.
    Cmd::new("blockdev").arg("--flushbufs").arg(dev).run()?;
    let file = File::open(dev).with_context(|| format!("opening {}", dev.display()))?;
    let checked = verity::check(&file, 0, m.usr.hash_offset)
        .with_context(|| format!("reading the verity tree back from {}", dev.display()))?;
    let root = hex::encode(checked.root_hash);
    if root != m.usr.root_hash || !checked.tree_matches {
        bail!(
            "{}: the written /usr gives verity root hash {root} (stored tree {}), the manifest says {}",
            dev.display(),
            if checked.tree_matches {
                "matches"
            } else {
                "differs"
            },
            m.usr.root_hash
        );
    }
    Ok(())
}

/// The size of a block device in bytes (sysfs counts 512-byte sectors).
fn partition_size(dev: &Path) -> Result<u64> {
    let name = dev.file_name().unwrap_or_default().to_string_lossy();
    let path = format!("/sys/class/block/{name}/size");
    let sectors: u64 = std::fs::read_to_string(&path)
        .with_context(|| format!("reading {path}"))?
        .trim()
        .parse()
        .with_context(|| format!("parsing {path}"))?;
    Ok(sectors * 512)
}

/// The test hook of [`PAUSE_ENV`].
fn pause_at(point: &str) {
    if std::env::var(PAUSE_ENV).is_ok_and(|v| v == point) {
        eprintln!("craton update: paused at {point} ({PAUSE_ENV})");
        // kill(1) rather than raise(3): no unsafe code for a test hook.
        let _ = Cmd::new("kill")
            .args(["-STOP", &std::process::id().to_string()])
            .run();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info() -> ImageInfo {
        ImageInfo {
            name: "host".into(),
            version: "1.0.0".into(),
            source_date_epoch: 1000,
            channel: None,
            confirm_after_secs: 60,
            health_units: vec![],
        }
    }

    fn offered(name: &str, version: &str, epoch: u64) -> Manifest {
        let mut m: Manifest = serde_json::from_str(include_str!("testdata/manifest.json")).unwrap();
        m.name = name.into();
        m.version = version.into();
        m.source_date_epoch = epoch;
        m
    }

    #[test]
    fn judges_name_version_and_age() {
        let i = info();
        assert!(judge(&i, None, &offered("host", "1.1.0", 1000), false).is_ok());
        let e = judge(&i, None, &offered("other", "2.0.0", 2000), false).unwrap_err();
        assert!(e.contains("of image \"other\""), "{e}");
        let e = judge(&i, None, &offered("host", "1.0.0", 2000), false).unwrap_err();
        assert!(e.contains("not newer than the booted 1.0.0"), "{e}");
        assert!(judge(&i, None, &offered("host", "0.9.0", 2000), true).is_ok());
        let e = judge(&i, None, &offered("host", "2.0.0", 999), false).unwrap_err();
        assert!(e.contains("anti-rollback"), "{e}");
        // The machine accepted a newer manifest: that is the floor now,
        // even for --allow-downgrade.
        let acc = Accepted {
            version: "1.5.0".into(),
            source_date_epoch: 3000,
            manifest_sha256: String::new(),
        };
        let e = judge(&i, Some(&acc), &offered("host", "2.0.0", 2500), true).unwrap_err();
        assert!(
            e.contains("newest manifest this machine accepted (1.5.0)"),
            "{e}"
        );
        assert!(judge(&i, Some(&acc), &offered("host", "2.0.0", 3000), false).is_ok());
    }

    #[test]
    fn the_payload_needs_its_three_files() {
        let m = offered("host", "1.1.0", 1000);
        assert!(payload(&m).is_ok());
        let mut no_kernel = m.clone();
        no_kernel.outputs.retain(|o| o.kind != KIND_KERNEL);
        let err = payload(&no_kernel).err().unwrap();
        assert!(format!("{err:#}").contains("no kernel output"), "{err:#}");
    }
}
