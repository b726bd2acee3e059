//! The booted machine, as the on-host commands see it: which slot runs
//! (the kernel command line GRUB wrote), the disk it runs from (the disk
//! holding the booted /usr's PARTUUID: with two craton disks attached the
//! labels alone could name the other one), that disk's partitions by
//! number, the ESP mounted for a moment, and what craton keeps on ROOT
//! (/var/lib/craton: the newest manifest accepted, the last boot's check).

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};
use serde::{Deserialize, Serialize};

use super::state::AbState;
use crate::boot::grubcfg::{GRUBENV_PATH, TRIAL_ARG};
use crate::boot::{decode_grubenv, encode_grubenv};
use crate::files::TempFile;
use crate::partition::{PartKind, Slot};
use crate::process::Cmd;

/// What craton keeps on ROOT (persistent, per machine).
pub const STATE_DIR: &str = "/var/lib/craton";
/// The newest manifest this machine accepted ([`Accepted`]).
pub const ACCEPTED_FILE: &str = "accepted.json";
/// The last health checks' outcomes ([`BootOutcome`], newest last).
pub const CHECKS_FILE: &str = "checks.json";
/// How many outcomes [`CHECKS_FILE`] keeps.
pub const CHECKS_KEPT: usize = 8;

/// The running system: its slot and where its disk's partitions are.
#[derive(Debug, Clone)]
pub struct Booted {
    pub slot: Slot,
    /// GRUB booted the slot on trial (`craton.trial=1`).
    pub trial: bool,
    /// The whole disk (/dev/vda).
    pub disk: PathBuf,
}

impl Booted {
    /// From /proc/cmdline and sysfs.
    pub fn detect() -> Result<Booted> {
        let cmdline = std::fs::read_to_string("/proc/cmdline").context("reading /proc/cmdline")?;
        Booted::from_cmdline(&cmdline)
    }

    fn from_cmdline(cmdline: &str) -> Result<Booted> {
        let mut slot = None;
        let mut usr = None;
        let mut trial = false;
        for w in cmdline.split_whitespace() {
            if let Some(s) = w.strip_prefix("craton.slot=") {
                slot = Some(Slot::parse(s)?);
            } else if let Some(u) = w.strip_prefix("systemd.verity_usr_data=PARTUUID=") {
                usr = Some(u.to_owned());
            } else if w == format!("{TRIAL_ARG}=1") {
                trial = true;
            }
        }
        let Some(slot) = slot else {
            bail!(
                "this system was not booted by craton's GRUB: no craton.slot= on the kernel command line"
            );
        };
        let Some(usr) = usr else {
            bail!("no systemd.verity_usr_data=PARTUUID= on the kernel command line");
        };
        let part = std::fs::canonicalize(format!("/dev/disk/by-partuuid/{usr}"))
            .with_context(|| format!("finding the partition of /usr (PARTUUID {usr})"))?;
        let name = part.file_name().unwrap_or_default().to_string_lossy();
        // /sys/class/block/vda3 links into .../block/vda/vda3.
        let sys = std::fs::canonicalize(format!("/sys/class/block/{name}"))
            .with_context(|| format!("finding {name} in sysfs"))?;
        let disk = sys
            .parent()
            .and_then(Path::file_name)
            .with_context(|| format!("no disk above {}", sys.display()))?;
        Ok(Booted {
            slot,
            trial,
            disk: Path::new("/dev").join(disk),
        })
    }

    /// The booted disk's ESP, mounted under the on-host lock.
    pub fn mount_esp(&self, write: bool) -> Result<EspMount> {
        EspMount::mount(HostLock::take()?, &self.partition(PartKind::Esp)?, write)
    }

    /// The device of partition `kind` of the booted disk: the child of the
    /// disk in sysfs whose `partition` file holds its number.
    pub fn partition(&self, kind: PartKind) -> Result<PathBuf> {
        let disk = self.disk.file_name().unwrap_or_default().to_string_lossy();
        let dir = Path::new("/sys/block").join(&*disk);
        let want = kind.number().to_string();
        for entry in
            std::fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))?
        {
            let entry = entry?;
            let nr = std::fs::read_to_string(entry.path().join("partition")).unwrap_or_default();
            if nr.trim() == want {
                return Ok(Path::new("/dev").join(entry.file_name()));
            }
        }
        bail!(
            "{} has no partition {want} ({})",
            self.disk.display(),
            kind.label()
        )
    }
}

/// Where the on-host commands mount the ESP and keep their lock.
pub const RUN_DIR: &str = "/run/craton";

/// One on-host command at a time changes the A/B state: an exclusive lock
/// on /run/craton/lock, held until dropped (File::lock, flock(2)).
#[derive(Debug)]
pub struct HostLock {
    _file: std::fs::File,
}

impl HostLock {
    /// Waits for the lock, then unmounts what a killed craton left
    /// mounted below /run/craton (its ESP mount: a second mount of the
    /// same FAT with other options would fail).
    pub fn take() -> Result<HostLock> {
        std::fs::create_dir_all(RUN_DIR).with_context(|| format!("creating {RUN_DIR}"))?;
        let path = Path::new(RUN_DIR).join("lock");
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .with_context(|| format!("opening {}", path.display()))?;
        file.lock()
            .with_context(|| format!("locking {}", path.display()))?;
        for stale in crate::files::mounts_below(Path::new(RUN_DIR))? {
            tracing::warn!(
                "unmounting {}, left by an interrupted craton",
                stale.display()
            );
            Cmd::new("umount").arg("--lazy").arg(&stale).run()?;
            let _ = std::fs::remove_dir(&stale);
        }
        Ok(HostLock { _file: file })
    }
}

/// The ESP, mounted at a private folder under /run until dropped.
///
/// The folder is a plain one, never a `tempfile::TempDir`: dropping that
/// deletes what is below it, which on a mount point that failed to
/// unmount (a SIGTERM at shutdown interrupts umount) is the whole ESP.
/// It is removed with rmdir(2) only, which refuses a mount point.
#[derive(Debug)]
pub struct EspMount {
    dir: PathBuf,
    mounted: bool,
    /// Held until the ESP is unmounted (fields drop after `Drop::drop`).
    _lock: HostLock,
}

impl EspMount {
    /// Mounts `device` (vfat), read-write when `write`, under `lock`,
    /// which it keeps until it is unmounted.
    pub fn mount(lock: HostLock, device: &Path, write: bool) -> Result<EspMount> {
        let dir = tempfile::Builder::new()
            .prefix("esp.")
            .tempdir_in(RUN_DIR)
            .context("creating a mount point under /run/craton")?
            .keep();
        let opts = if write {
            "rw,nosuid,nodev,noexec"
        } else {
            "ro,nosuid,nodev,noexec"
        };
        Cmd::new("mount")
            .args(["-t", "vfat", "-o", opts])
            .arg(device)
            .arg(&dir)
            .run()
            .map_err(|e| {
                let _ = std::fs::remove_dir(&dir);
                e.context(format!("mounting the ESP {}", device.display()))
            })?;
        Ok(EspMount {
            dir,
            mounted: true,
            _lock: lock,
        })
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// A path on the ESP ("/grub/grubenv").
    pub fn file(&self, esp_path: &str) -> PathBuf {
        self.path().join(esp_path.trim_start_matches('/'))
    }

    /// The A/B state in the block.
    pub fn read_state(&self) -> Result<AbState> {
        let path = self.file(GRUBENV_PATH);
        let block = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        Ok(AbState::from_vars(&decode_grubenv(&block)?))
    }

    /// Writes `state` as a new block beside the old one, flushed, renamed
    /// over it, and the folder flushed: a power cut leaves one or the
    /// other. Nothing is written when the state did not change.
    pub fn write_state(&self, old: &AbState, new: &AbState) -> Result<bool> {
        if old.to_vars() == new.to_vars() {
            return Ok(false);
        }
        let block = encode_grubenv(&new.to_vars())?;
        put_file(&self.file(GRUBENV_PATH), &block)?;
        Ok(true)
    }

    /// Unmounts (also on drop; this reports the error).
    pub fn unmount(mut self) -> Result<()> {
        Cmd::new("umount").arg(&self.dir).run()?;
        self.mounted = false;
        Ok(())
    }
}

impl Drop for EspMount {
    fn drop(&mut self) {
        if self.mounted && Cmd::new("umount").arg(&self.dir).run().is_err() {
            // Left mounted: the next command's HostLock::take unmounts it.
            return;
        }
        // rmdir, never a recursive removal: a mount point is refused.
        let _ = std::fs::remove_dir(&self.dir);
    }
}

/// Writes `data` beside `dest`, flushes it and renames it over `dest`
/// (FAT has no permission bits: the mode is left as the mount gives it).
pub fn put_file(dest: &Path, data: &[u8]) -> Result<()> {
    use std::io::Write as _;
    let mut tmp = TempFile::beside(dest)?;
    tmp.write_all(data)
        .with_context(|| format!("writing {}", tmp.path().display()))?;
    tmp.persist(dest)?;
    Ok(())
}

/// The newest manifest this machine accepted: an update whose manifest is
/// older is refused (anti-rollback, as TUF's timestamp role).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Accepted {
    pub version: String,
    pub source_date_epoch: u64,
    /// sha256 of the manifest's bytes.
    pub manifest_sha256: String,
}

/// What the last `craton mark-good --health` found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BootOutcome {
    pub slot: String,
    pub version: String,
    pub trial: bool,
    /// The kernel's boot id of that boot.
    pub boot_id: String,
    /// "confirmed" or "unhealthy".
    pub outcome: String,
    /// What was wrong, one line each.
    pub problems: Vec<String>,
}

/// Reads a JSON record of [`STATE_DIR`] (None when there is none yet).
pub fn read_record<T: for<'de> Deserialize<'de>>(root: &Path, name: &str) -> Result<Option<T>> {
    let path = root.join(STATE_DIR.trim_start_matches('/')).join(name);
    match std::fs::read(&path) {
        Ok(b) => serde_json::from_slice(&b)
            .map(Some)
            .with_context(|| format!("parsing {}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

/// Writes a JSON record of [`STATE_DIR`] atomically.
pub fn write_record<T: Serialize>(root: &Path, name: &str, value: &T) -> Result<()> {
    let path = root.join(STATE_DIR.trim_start_matches('/')).join(name);
    let mut json = serde_json::to_vec_pretty(value)?;
    json.push(b'\n');
    crate::files::write_atomic(&path, &json, 0o644)
}

/// Adds `outcome` to [`CHECKS_FILE`] under `root`, keeping the newest.
pub fn record_check(root: &Path, outcome: BootOutcome) -> Result<()> {
    let mut checks: Vec<BootOutcome> = read_record(root, CHECKS_FILE)?.unwrap_or_default();
    checks.push(outcome);
    let drop = checks.len().saturating_sub(CHECKS_KEPT);
    checks.drain(..drop);
    write_record(root, CHECKS_FILE, &checks)
}

/// The kernel's id of this boot.
pub fn boot_id() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .map(|s| s.trim().to_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_command_line_without_craton_is_refused() {
        let err = Booted::from_cmdline("root=/dev/sda1 ro quiet").unwrap_err();
        assert!(format!("{err:#}").contains("no craton.slot="), "{err:#}");
        let err = Booted::from_cmdline("craton.slot=b ro").unwrap_err();
        assert!(format!("{err:#}").contains("verity_usr_data"), "{err:#}");
    }

    /// A mount that could not be unmounted is never emptied: dropping the
    /// guard removes the folder with rmdir alone (the first version held
    /// a TempDir, whose drop deleted the whole ESP of a machine shutting
    /// down while mark-good ran).
    #[test]
    fn dropping_a_mount_never_deletes_below_it() {
        let dir = tempfile::tempdir().unwrap().keep();
        Cmd::new("mount")
            .args(["-t", "tmpfs", "-o", "size=1m", "craton-test"])
            .arg(&dir)
            .run()
            .unwrap();
        std::fs::write(dir.join("BOOTX64.EFI"), b"x").unwrap();
        // As after a umount that failed.
        drop(EspMount {
            dir: dir.clone(),
            mounted: false,
            _lock: HostLock::take().unwrap(),
        });
        assert!(dir.join("BOOTX64.EFI").is_file());
        Cmd::new("umount").arg(&dir).run().unwrap();
        drop(EspMount {
            dir: dir.clone(),
            mounted: false,
            _lock: HostLock::take().unwrap(),
        });
        assert!(!dir.exists(), "an empty, unmounted folder is removed");
    }

    #[test]
    fn records_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        assert!(
            read_record::<Accepted>(dir.path(), ACCEPTED_FILE)
                .unwrap()
                .is_none()
        );
        let a = Accepted {
            version: "0.2.0".into(),
            source_date_epoch: 5,
            manifest_sha256: "ab".into(),
        };
        write_record(dir.path(), ACCEPTED_FILE, &a).unwrap();
        assert_eq!(read_record(dir.path(), ACCEPTED_FILE).unwrap(), Some(a));
        for i in 0..10 {
            let o = BootOutcome {
                slot: "a".into(),
                version: format!("0.{i}.0"),
                trial: false,
                boot_id: String::new(),
                outcome: "confirmed".into(),
                problems: vec![],
            };
            record_check(dir.path(), o).unwrap();
        }
        let kept: Vec<BootOutcome> = read_record(dir.path(), CHECKS_FILE).unwrap().unwrap();
        assert_eq!(kept.len(), CHECKS_KEPT);
        assert_eq!(kept.last().unwrap().version, "0.9.0");
    }
}
