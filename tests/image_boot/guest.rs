//! Booting a copy of the image: the `craton qemu` command, one guest at a
//! time, the early-panic retry, the marker line's facts and the grubenv
//! the host reads afterwards, and a boot that a test logs in to over ssh.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use craton::initrd::identity::REBOOT_LINE;

use super::check::{check_script, credential_files};
use super::*;

/// The `craton qemu` command of one boot: the disk, the firmware
/// ("uefi-sb": OVMF with Microsoft's keys and Secure Boot enforced), the
/// serial log, the check's arguments, TCG unless CRATON_QEMU_ACCEL says.
pub(crate) fn qemu_command(disk: &Path, firmware: &str, log: &Path, creds: &[String]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_craton"));
    let (fw, secure) = match firmware.strip_suffix("-sb") {
        Some(f) => (f, true),
        None => (firmware, false),
    };
    cmd.arg("qemu").arg(disk).args(["--firmware", fw]);
    if secure {
        cmd.arg("--secure-boot");
    }
    cmd.arg("--serial-log")
        .arg(log)
        .args(creds)
        .env("CI", "true");
    if std::env::var_os(craton::qemu::ACCEL_ENV).is_none() {
        // This machine's KVM hangs; the runner's probe would find out, but
        // tests say it (CRATON_QEMU_ACCEL=kvm runs them under KVM).
        cmd.env(craton::qemu::ACCEL_ENV, "tcg");
    }
    cmd
}

/// Boots are serialised: two cores, one guest at a time.
pub(crate) fn one_guest() -> std::sync::MutexGuard<'static, ()> {
    static QEMU: Mutex<()> = Mutex::new(());
    QEMU.lock().unwrap_or_else(|e| e.into_inner())
}

/// Under TCG with two vCPUs the kernel has been seen to die in its own
/// early init (an int3 Oops while patching code in sched_init_debug,
/// seconds after start, before any of the image ran): that says nothing
/// about the image, and the disk is untouched, so such a boot is tried
/// once more; its log is kept beside the new one.
pub(crate) fn early_panic(serial: &str, log: &Path, disk: &Path) -> bool {
    let panicked = serial.contains("Kernel panic - not syncing")
        && !serial.contains("Run /init as init process");
    if panicked {
        let kept = log.with_extension("early-panic.log");
        let _ = fs::copy(log, &kept);
        eprintln!(
            "{}: the kernel panicked before init (log in {}); booting once more",
            disk.display(),
            kept.display()
        );
    }
    panicked
}

/// One boot through `craton qemu`; returns (serial log, seconds to marker).
pub(crate) fn boot(
    disk: &Path,
    firmware: &str,
    marker: &str,
    log: &Path,
    creds: &[String],
) -> (String, f64, bool) {
    let _one = one_guest();
    let mut cmd = qemu_command(disk, firmware, log, creds);
    cmd.args(["--marker", marker, "--timeout"])
        .arg(BOOT_TIMEOUT_SECS.to_string())
        .args(["--ssh-port", "0"]);
    let mut out = cmd.output().expect("running craton qemu");
    let mut serial = fs::read_to_string(log).unwrap_or_default();
    if early_panic(&serial, log, disk) {
        out = cmd.output().expect("running craton qemu");
        serial = fs::read_to_string(log).unwrap_or_default();
    }
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let secs = stderr
        .lines()
        .find_map(|l| l.strip_prefix("marker seen after "))
        .and_then(|r| r.split('s').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(f64::NAN);
    (serial + "\n" + &stderr, secs, out.status.success())
}

/// The log's last lines, after the check's own failure lines (which a
/// shutdown's messages would otherwise push out of the tail).
pub(crate) fn tail(log: &str) -> String {
    let lines: Vec<&str> = log.lines().collect();
    let failed: Vec<&str> = lines
        .iter()
        .filter(|l| l.contains(&format!("{FAIL_MARKER}:")))
        .copied()
        .collect();
    let last = lines[lines.len().saturating_sub(60)..].join("\n");
    if failed.is_empty() {
        last
    } else {
        format!("{}\n...\n{last}", failed.join("\n"))
    }
}

/// The log without terminal colour sequences (ESC [ ... letter).
pub(crate) fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for d in chars.by_ref() {
                if d.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

pub(crate) fn marker_line(log: &str) -> Option<&str> {
    log.lines()
        .find(|l| l.contains(MARKER) && !l.contains("echo "))
}

pub(crate) fn value<'a>(line: &'a str, key: &str) -> &'a str {
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(key))
        .unwrap_or_else(|| panic!("no {key} in {line}"))
}

/// A file of the ESP (partition 1) of `disk`, read with mtools.
pub(crate) fn esp_file(disk: &Path, path: &str) -> Vec<u8> {
    let (off, _) = partition(disk, 1);
    tools()
        .cmd("mtype")
        .unwrap()
        .env("MTOOLS_SKIP_CHECK", "1")
        .arg("-i")
        .arg(format!("{}@@{off}", disk.display()))
        .arg(format!("::{path}"))
        .output()
        .unwrap()
}

pub(crate) fn read_grubenv(disk: &Path) -> Vec<(String, String)> {
    decode_grubenv(&esp_file(disk, "/grub/grubenv")).unwrap()
}

/// What one boot of a copy showed: its serial log, its marker line, and
/// the machine's identity (SSH host key fingerprint, machine-id).
pub(crate) struct Booted {
    pub(crate) serial: String,
    pub(crate) line: String,
    pub(crate) identity: (String, String),
    /// The disk's identifiers after the boot.
    pub(crate) ids: GptIds,
    /// How often the initrd rebooted after giving the disk its identifiers.
    pub(crate) identity_reboots: usize,
}

impl Booted {
    pub(crate) fn get(&self, key: &str) -> &str {
        value(&self.line, key)
    }

    /// docker ran its containers, and its bridge (as the kernel and
    /// docker have it) and a container on it are on flannel's lease
    /// (the stand-in's FLANNEL_SUBNET 10.5.72.1/24, FLANNEL_MTU 1450) or,
    /// unconfigured, on docker's default 172.17.0.1/16 with MTU 1500.
    pub(crate) fn assert_network(&self, flannel: bool) {
        let line = &self.line;
        assert_eq!(self.get("docker="), "ran", "no container ran: {line}");
        // Socket activation: only docker.socket at boot, the daemons
        // started by the check's first docker call.
        assert_eq!(self.get("docker_at_boot="), "socket", "{line}");
        // On gce the guest agent restarts sshd once it has the metadata.
        let ssh = self.get("ssh_at_boot=");
        assert!(
            ssh == "socket" || (ssh == "agent" && self.get("platform=") == "gce"),
            "{line}"
        );
        let (state, bridge, mtu, net) = if flannel {
            ("on", "10.5.72.1/24", "1450", "10.5.72.")
        } else {
            ("off", "172.17.0.1/16", "1500", "172.17.0.")
        };
        assert_eq!(self.get("flannel="), state, "{line}");
        assert_eq!(self.get("bridge="), bridge, "{line}");
        assert_eq!(self.get("netmtu="), mtu, "{line}");
        assert_eq!(self.get("ctrmtu="), mtu, "{line}");
        let ctr = self.get("ctraddr=");
        assert!(
            ctr.starts_with(net) && ctr.ends_with(&bridge[bridge.len() - 3..]),
            "{line}"
        );
    }
}

/// The serial log's file for a boot of `disk`.
pub(crate) fn log_path(b: &Built, disk: &Path, firmware: &str) -> PathBuf {
    let copy = disk.file_stem().unwrap().to_string_lossy();
    b.dir.join(format!("serial-{copy}-{firmware}.log"))
}

/// Boots `disk` until the marker and checks the boot.
pub(crate) fn check_boot(b: &Built, disk: &Path, firmware: &str, creds: &[String]) -> Booted {
    let log = log_path(b, disk, firmware);
    let (serial, secs, ok) = boot(disk, firmware, MARKER, &log, creds);
    assert!(
        ok || marker_line(&serial).is_none(),
        "{firmware}: craton qemu failed:\n{}",
        tail(&serial)
    );
    eprintln!("{firmware}: marker after {secs:.1}s under TCG");
    verify_boot(b, disk, firmware, serial, &log)
}

/// The marker line's facts and the grubenv the host reads after the boot.
pub(crate) fn verify_boot(
    b: &Built,
    disk: &Path,
    firmware: &str,
    serial: String,
    log: &Path,
) -> Booted {
    let line = marker_line(&serial)
        .unwrap_or_else(|| {
            panic!(
                "{firmware}: no {MARKER} line; serial log {}:\n{}",
                log.display(),
                tail(&serial)
            )
        })
        .to_owned();
    assert!(
        !serial.contains(&format!("{FAIL_MARKER}:")),
        "{}",
        tail(&serial)
    );
    eprintln!("{firmware}: {line}");
    assert!(
        matches!(value(&line, "state="), "running" | "degraded"),
        "{line}"
    );
    assert_eq!(value(&line, "slot="), "a");
    // The disk has identifiers of its own, not the image's, and GRUB
    // passed them: /usr on its USR-A, / on its ROOT.
    let ids = gpt_ids(disk);
    let image = gpt_ids(&b.image);
    assert_eq!(
        image.parts[2], b.usr_a_partuuid,
        "craton build's USR-A line"
    );
    assert_ne!(ids.disk, image.disk, "the disk kept the image's GUID");
    for (n, (mine, theirs)) in ids.parts.iter().zip(&image.parts).enumerate() {
        assert_ne!(
            mine,
            theirs,
            "partition {} kept the image's PARTUUID",
            n + 1
        );
    }
    assert!(
        value(&line, "usr=").ends_with(&format!(":verified:{}", ids.parts[2])),
        "{line} {ids:?}"
    );
    assert_eq!(value(&line, "root_partuuid="), ids.parts[5], "{line}");
    assert_eq!(value(&line, "disk_id="), "machine", "{line}");
    let part: u64 = value(&line, "root_part_bytes=").parse().unwrap();
    let fs_bytes: u64 = value(&line, "root_fs_bytes=").parse().unwrap();
    let built = ROOT_MIB << 20;
    assert!(
        part >= built + GROW_BYTES - (2 << 20),
        "ROOT not grown: {line}"
    );
    assert!(
        fs_bytes > built + GROW_BYTES / 2,
        "ROOT's ext4 not grown: {line}"
    );
    // The host reads the same block: slot A confirmed, B untouched.
    let env = read_grubenv(disk);
    let get = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    assert_eq!(get("A_OK"), Some("1"), "{env:?}");
    assert_eq!(get("A_TRY"), Some("0"), "{env:?}");
    assert_eq!(get("B_OK"), Some("0"), "{env:?}");
    assert_eq!(get("DISK_ID"), Some("machine"), "{env:?}");
    let identity = (
        value(&line, "hostkey=").to_owned(),
        value(&line, "machineid=").to_owned(),
    );
    let identity_reboots = serial.matches(REBOOT_LINE).count();
    Booted {
        serial,
        line,
        identity,
        ids,
        identity_reboots,
    }
}

/// A sparse copy of the image named `name` to boot, and the `craton qemu`
/// arguments of the check (their files live in the returned folder): the
/// check unit, `key` for root, `extra` credentials, and the busybox tar
/// as a data disk.
pub(crate) fn boot_inputs(
    b: &Built,
    name: &str,
    key: &str,
    extra: &[(&str, &[u8])],
) -> (PathBuf, tempfile::TempDir, Vec<String>) {
    boot_inputs_from(b, &b.image, name, key, extra)
}

/// [`boot_inputs`] for a copy of `image` (another platform's disk).
pub(crate) fn boot_inputs_from(
    b: &Built,
    image: &Path,
    name: &str,
    key: &str,
    extra: &[(&str, &[u8])],
) -> (PathBuf, tempfile::TempDir, Vec<String>) {
    let disk = b.dir.join(name);
    copy_sparse(image, &disk);
    grow(&disk);
    let dir = tempfile::tempdir().unwrap();
    let mut creds = credential_files(dir.path(), &check_script(key), key, extra);
    creds.push("--data-disk".into());
    creds.push(busybox_tar(b).display().to_string());
    (disk, dir, creds)
}

/// What the container run over ssh prints.
pub(crate) const SSH_CONTAINER_SAYS: &str = "craton-container-ran-over-ssh";

/// A free TCP port on 127.0.0.1 for the guest's forwarded ssh.
pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `ssh` to the guest as root with the test's key, bounded by `timeout`.
pub(crate) fn ssh(key: &Path, port: u16, remote: &str) -> std::process::Output {
    ssh_bounded(key, port, remote, 300, 60)
}

/// [`ssh`] ended after `secs`, its connection attempt after `connect_secs`.
pub(crate) fn ssh_bounded(
    key: &Path,
    port: u16,
    remote: &str,
    secs: u64,
    connect_secs: u64,
) -> std::process::Output {
    ssh_as("root", key, port, remote, secs, connect_secs)
}

/// [`ssh_bounded`] as `user`.
pub(crate) fn ssh_as(
    user: &str,
    key: &Path,
    port: u16,
    remote: &str,
    secs: u64,
    connect_secs: u64,
) -> std::process::Output {
    Command::new("timeout")
        .arg(secs.to_string())
        .args(["ssh", "-i"])
        .arg(key)
        .args(["-p", &port.to_string()])
        .args([
            "-o",
            "BatchMode=yes",
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            &format!("ConnectTimeout={connect_secs}"),
            "-o",
            "LogLevel=ERROR",
            &format!("{user}@127.0.0.1"),
            remote,
        ])
        .output()
        .expect("running ssh")
}

/// Boots `disk` with its ssh forwarded to `port` and waits for the check's
/// marker; the guest stays up (WAIT_SSH_CREDENTIAL) while `session` logs
/// in (as root, with `key`), then is told to power off. Returns the boot and what `session` got.
pub(crate) fn ssh_boot<T>(
    b: &Built,
    disk: &Path,
    creds: &[String],
    (key, port): (&Path, u16),
    session: impl Fn() -> T,
) -> (Booted, T) {
    let _one = one_guest();
    let firmware = "uefi";
    let log = log_path(b, disk, firmware);
    let mut cmd = qemu_command(disk, firmware, &log, creds);
    cmd.args(["--ssh-port", &port.to_string(), "--timeout"])
        .arg((BOOT_TIMEOUT_SECS + 600).to_string())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    let start = std::time::Instant::now();
    let mut retried = false;
    let mut child = cmd.spawn().expect("running craton qemu");
    let serial = loop {
        std::thread::sleep(std::time::Duration::from_secs(1));
        let serial = fs::read_to_string(&log).unwrap_or_default();
        if marker_line(&serial).is_some() || serial.contains(&format!("{FAIL_MARKER}:")) {
            break serial;
        }
        if !retried && early_panic(&serial, &log, disk) {
            let _ = child.kill();
            let _ = child.wait();
            retried = true;
            child = cmd.spawn().expect("running craton qemu");
            continue;
        }
        let exited = child.try_wait().unwrap().is_some();
        if exited || start.elapsed().as_secs() > BOOT_TIMEOUT_SECS {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "ssh boot: no {MARKER} line (craton qemu exited: {exited}); serial log {}:\n{}\n{}",
                log.display(),
                tail(&serial),
                String::from_utf8_lossy(&out.stderr)
            );
        }
    };
    eprintln!(
        "uefi (ssh): marker after {:.1}s under TCG",
        start.elapsed().as_secs_f64()
    );
    let got = if marker_line(&serial).is_some() {
        Some(session())
    } else {
        None
    };
    // Done: the check ends and its unit powers the guest off.
    let _ = ssh(key, port, "touch /run/craton-ssh-done");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(300);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(std::time::Duration::from_secs(1));
    }
    let out = child.wait_with_output().unwrap();
    let serial = fs::read_to_string(&log).unwrap_or_default();
    let booted = verify_boot(b, disk, firmware, serial, &log);
    assert!(
        out.status.success(),
        "ssh boot: craton qemu did not end with the guest's power-off ({}):\n{}\n{}",
        out.status,
        tail(&booted.serial),
        String::from_utf8_lossy(&out.stderr)
    );
    (booted, got.expect("the session ran"))
}

/// One boot to ssh, generously (TCG varies 3x between machines).
pub(crate) const BOOT_SECS: u64 = BOOT_TIMEOUT_SECS;

/// One ssh command with a short connect timeout (for polling).
pub(crate) fn ssh_run(key: &Path, port: u16, remote: &str, secs: u64) -> std::process::Output {
    ssh_bounded(key, port, remote, secs, 10)
}

/// The guest under test: the qemu child, its log, ssh.
pub(crate) struct Guest {
    pub(crate) child: Child,
    pub(crate) log: PathBuf,
    pub(crate) key: PathBuf,
    pub(crate) port: u16,
    pub(crate) boot_id: String,
    pub(crate) boots: u32,
    pub(crate) started: Instant,
}

impl Guest {
    /// Starts `cmd` (a `craton qemu` run with its ssh on `port` and its
    /// serial console in `log`); `key` logs in as root.
    pub(crate) fn spawn(mut cmd: Command, log: PathBuf, key: PathBuf, port: u16) -> Guest {
        Guest {
            child: cmd.spawn().expect("running craton qemu"),
            log,
            key,
            port,
            boot_id: String::new(),
            boots: 0,
            started: Instant::now(),
        }
    }

    pub(crate) fn serial(&self) -> String {
        strip_ansi(&fs::read_to_string(&self.log).unwrap_or_default())
    }

    pub(crate) fn fail(&mut self, what: &str) -> ! {
        let _ = self.child.kill();
        let serial = self.serial();
        let lines: Vec<&str> = serial.lines().collect();
        panic!(
            "{what}\nserial log {} (last lines):\n{}",
            self.log.display(),
            lines[lines.len().saturating_sub(80)..].join("\n")
        );
    }

    /// Runs `remote` in the guest; its stdout, or the test fails.
    pub(crate) fn sh(&mut self, remote: &str) -> String {
        let out = ssh_run(&self.key, self.port, remote, 600);
        if !out.status.success() {
            let msg = format!(
                "in the guest: {remote}\n{}\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            self.fail(&msg);
        }
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs `remote`; (exit code, stdout + stderr).
    pub(crate) fn sh_status(&mut self, remote: &str) -> (i32, String) {
        let out = ssh_run(&self.key, self.port, remote, 600);
        (
            out.status.code().unwrap_or(-1),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    }

    /// Waits for a boot of `slot` ("a", "b") other than the last one to
    /// answer over ssh, and for its confirmation unit to finish. A failed
    /// trial of the other slot may answer first (an unhealthy one is up
    /// until its health check reboots it): it is passed over. Returns the
    /// slot for the caller's assertion.
    pub(crate) fn next_boot(&mut self, what: &str, slot: &str) -> String {
        let start = Instant::now();
        loop {
            if self.child.try_wait().unwrap().is_some() {
                self.fail(&format!("{what}: craton qemu ended"));
            }
            if start.elapsed().as_secs() > 2 * BOOT_SECS {
                self.fail(&format!(
                    "{what}: no boot of slot {slot} over ssh in {}s",
                    2 * BOOT_SECS
                ));
            }
            let out = ssh_run(
                &self.key,
                self.port,
                "cat /proc/sys/kernel/random/boot_id; tr ' ' '\\n' </proc/cmdline | sed -n 's/^craton.slot=//p'",
                30,
            );
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            let mut lines = text.lines().map(str::trim);
            let (id, booted) = (lines.next().unwrap_or(""), lines.next().unwrap_or(""));
            if out.status.success() && !id.is_empty() && id != self.boot_id {
                self.boot_id = id.to_owned();
                if booted == slot {
                    break;
                }
                eprintln!("{what}: slot {booted} answered first (a trial on its way back)");
            }
            std::thread::sleep(Duration::from_secs(2));
        }
        self.boots += 1;
        // The boot's end, then the confirmation's (Type=simple, after the
        // grace period).
        self.sh(
            "systemctl is-system-running --wait >/dev/null || true; \
             while [ \"$(systemctl show -p SubState --value craton-mark-good.service)\" = running ]; do sleep 1; done",
        );
        let slot = self.sh("tr ' ' '\\n' </proc/cmdline | sed -n 's/^craton.slot=//p'");
        let slot = slot.trim().to_owned();
        eprintln!(
            "{what}: slot {slot} answered at {:.0}s",
            self.started.elapsed().as_secs_f64()
        );
        slot
    }

    pub(crate) fn status(&mut self) -> serde_json::Value {
        let text = self.sh("craton status --json");
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("craton status --json: {e}\n{text}"))
    }

    pub(crate) fn reboot(&mut self) {
        let _ = ssh_run(&self.key, self.port, "systemctl reboot", 60);
    }
}

/// A new ed25519 key pair at `private` (and `private`.pub) with `comment`,
/// as a tester makes one; returns the public key's line.
pub(crate) fn ssh_keygen(private: &Path, comment: &str) -> String {
    let st = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", comment, "-f"])
        .arg(private)
        .status()
        .unwrap();
    assert!(st.success(), "ssh-keygen");
    fs::read_to_string(private.with_extension("pub"))
        .unwrap()
        .trim()
        .to_owned()
}

/// `bytes` in base64 on one line (coreutils' base64 -w0).
pub(crate) fn base64(bytes: &[u8]) -> String {
    let out = Command::new("base64")
        .arg("-w0")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            std::io::Write::write_all(&mut c.stdin.take().unwrap(), bytes)?;
            c.wait_with_output()
        })
        .unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}
