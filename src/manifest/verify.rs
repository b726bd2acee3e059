//! `craton verify DIR --pubkey PEM`: checks a build's output folder
//! against its signed manifest and names every mismatch: the signature
//! over manifest.json's exact bytes, each output's size and sha256, each
//! raw image's partition table (disk GUID, every entry) and partitions'
//! sha256, and the dm-verity tree of USR-A and of the update payload's
//! /usr image, recomputed in Rust from the data blocks and compared with
//! the manifest's root hash and the stored tree.
//!
//! A mismatch is a finding, not an error: all are collected and the
//! command exits 1 if there is any. Errors are for what keeps the check
//! from running at all (an unreadable key, a folder that is not one).

use std::fs::File;
use std::path::Path;

use anyhow::Result;
use serde::Serialize;

use super::{Disk, KIND_DISK_RAW, MANIFEST_FILE, Manifest, Output, SIGNATURE_FILE, hash_ranges};
use crate::disk::SECTOR;
use crate::partition::PartKind;
use crate::partition::Slot;
use crate::payload::KIND_USR;
use crate::sign::PublicKey;
use crate::usr::verity;

/// What `craton verify` found.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    /// What was checked and matched, one line each.
    pub checked: Vec<String>,
    /// What did not match, one line each.
    pub mismatches: Vec<String>,
}

impl Report {
    pub fn ok(&self) -> bool {
        self.mismatches.is_empty()
    }

    fn check(&mut self, good: bool, what: impl Into<String>, bad: impl FnOnce() -> String) {
        if good {
            self.checked.push(what.into());
        } else {
            self.mismatches.push(bad());
        }
    }
}

/// Checks `dir` against its manifest and `key`.
pub fn verify(dir: &Path, key: &PublicKey) -> Result<Report> {
    let mut r = Report::default();
    let manifest_path = dir.join(MANIFEST_FILE);
    let bytes = match std::fs::read(&manifest_path) {
        Ok(b) => b,
        Err(e) => {
            r.mismatches.push(format!("{MANIFEST_FILE}: {e}"));
            return Ok(r);
        }
    };
    match std::fs::read(dir.join(SIGNATURE_FILE)) {
        Ok(sig) => r.check(
            key.verifies(&bytes, &sig),
            format!("{SIGNATURE_FILE}: a signature of {MANIFEST_FILE} by the given key"),
            || format!("{SIGNATURE_FILE}: not a signature of {MANIFEST_FILE} by the given key"),
        ),
        Err(e) => r.mismatches.push(format!(
            "{SIGNATURE_FILE}: {e} (the build was not signed, or the file was removed)"
        )),
    }
    let manifest = match Manifest::from_bytes(&bytes) {
        Ok(m) => m,
        Err(e) => {
            r.mismatches.push(format!("{e:#}"));
            return Ok(r);
        }
    };
    for out in &manifest.outputs {
        check_output(&mut r, dir, &manifest, out)?;
    }
    Ok(r)
}

fn check_output(r: &mut Report, dir: &Path, m: &Manifest, out: &Output) -> Result<()> {
    let name = &out.file;
    if name.is_empty() || name.contains('/') || name == "." || name == ".." {
        r.mismatches
            .push(format!("output {name:?}: not a file name in the folder"));
        return Ok(());
    }
    let path = dir.join(name);
    let size = match std::fs::metadata(&path) {
        Ok(meta) if meta.is_file() => meta.len(),
        Ok(_) => {
            r.mismatches.push(format!("{name}: not a file"));
            return Ok(());
        }
        Err(e) => {
            r.mismatches.push(format!("{name}: {e}"));
            return Ok(());
        }
    };
    r.check(size == out.size, format!("{name}: {size} bytes"), || {
        format!("{name}: {size} bytes, the manifest says {}", out.size)
    });
    // A raw disk's table and partitions are checked against its
    // platform's disk.
    let disk = if out.kind == KIND_DISK_RAW {
        let found = m
            .disks
            .iter()
            .find(|d| out.platform.as_deref() == Some(d.platform.as_str()));
        if found.is_none() {
            r.mismatches.push(format!(
                "{name}: a raw disk of platform {:?}, which the manifest lists no disk of",
                out.platform
            ));
        }
        found
    } else {
        None
    };
    let ranges: Vec<(u64, u64)> = disk.map_or_else(Vec::new, |d| {
        d.partitions
            .iter()
            .map(|p| (p.first_lba * SECTOR, (p.last_lba + 1) * SECTOR))
            .collect()
    });
    let (sha, parts) = hash_ranges(&path, &ranges)?;
    r.check(sha == out.sha256, format!("{name}: sha256 {sha}"), || {
        format!("{name}: sha256 {sha}, the manifest says {}", out.sha256)
    });
    if out.kind == KIND_USR {
        return check_verity(r, &path, 0, m, name);
    }
    let Some(disk) = disk else {
        return Ok(());
    };
    check_table(r, &path, disk);
    for (p, got) in disk.partitions.iter().zip(parts) {
        r.check(
            got == p.sha256,
            format!("{name}: partition {} ({}) sha256", p.number, p.label),
            || {
                format!(
                    "{name}: partition {} ({}) sha256 {got}, the manifest says {}",
                    p.number, p.label, p.sha256
                )
            },
        );
    }
    check_usr_a(r, &path, m, disk)
}

/// The image's GPT against the manifest's disk.
fn check_table(r: &mut Report, path: &Path, disk: &Disk) {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let (guid, entries) = match crate::inspect::read_gpt(path) {
        Ok(t) => t,
        Err(e) => {
            r.mismatches
                .push(format!("{name}: no readable partition table: {e:#}"));
            return;
        }
    };
    r.check(
        guid == disk.guid,
        format!("{name}: disk GUID {guid}"),
        || format!("{name}: disk GUID {guid}, the manifest says {}", disk.guid),
    );
    let used = entries.len();
    r.check(
        used == disk.partitions.len(),
        format!("{name}: {used} partitions"),
        || {
            format!(
                "{name}: {used} partitions, the manifest lists {}",
                disk.partitions.len()
            )
        },
    );
    for want in &disk.partitions {
        let Some(got) = entries.iter().find(|p| p.number == want.number) else {
            r.mismatches.push(format!(
                "{name}: no partition {} ({})",
                want.number, want.label
            ));
            continue;
        };
        let got_fields = (
            got.label.as_str(),
            got.type_guid.as_str(),
            got.partuuid.as_str(),
            got.first_lba,
            got.last_lba,
        );
        let want_fields = (
            want.label.as_str(),
            want.type_guid.as_str(),
            want.partuuid.as_str(),
            want.first_lba,
            want.last_lba,
        );
        r.check(
            got_fields == want_fields,
            format!("{name}: partition {} ({}) entry", want.number, want.label),
            || {
                format!(
                    "{name}: partition {}: (label, type, PARTUUID, first LBA, last LBA) {got_fields:?}, the manifest says {want_fields:?}",
                    want.number
                )
            },
        );
    }
}

/// USR-A's verity tree, recomputed.
fn check_usr_a(r: &mut Report, path: &Path, m: &Manifest, disk: &Disk) -> Result<()> {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let label = PartKind::Usr(Slot::A).label();
    let Some(part) = disk.partitions.iter().find(|p| p.label == label) else {
        r.mismatches
            .push(format!("{name}: the manifest has no {label} partition"));
        return Ok(());
    };
    check_verity(
        r,
        path,
        part.first_lba * SECTOR,
        m,
        &format!("{name}: {label}"),
    )
}

/// The verity tree of the /usr image at byte `base` of `path`, against
/// the manifest's root hash; `what` names it in the report.
fn check_verity(r: &mut Report, path: &Path, base: u64, m: &Manifest, what: &str) -> Result<()> {
    let file = File::open(path)?;
    match verity::check(&file, base, m.usr.hash_offset) {
        Ok(c) => {
            let root = hex::encode(c.root_hash);
            r.check(
                root == m.usr.root_hash,
                format!("{what} verity root hash {root}"),
                || {
                    format!(
                        "{what}'s data gives verity root hash {root}, the manifest says {}",
                        m.usr.root_hash
                    )
                },
            );
            r.check(
                c.tree_matches,
                format!("{what} verity tree ({} data blocks)", c.data_blocks),
                || format!("{what}'s stored verity tree is not the one its data gives"),
            );
        }
        Err(e) => r.mismatches.push(format!("{what}: {e:#}")),
    }
    Ok(())
}
