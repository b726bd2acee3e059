//! The QEMU runner: boots an image (BIOS or UEFI with OVMF) or a kernel,
//! streams the serial console to a log file and memory, and stops when a
//! marker line appears, on timeout, or on SIGINT/SIGTERM.
//!
//! It also turns test units into systemd credentials (SMBIOS type 11,
//! systemd.system-credentials(7)): docs/architecture.md "Platforms" has the
//! tested form. It does not build images; the disk stage does.
//!
//! For first-boot provisioning it passes an Ignition config the way
//! Ignition's qemu platform reads it (fw_cfg) and can make GCE's metadata
//! server reach a server on the host (`network`).
//!
//! Acceleration: KVM where it works, TCG otherwise. CRATON_QEMU_ACCEL=kvm|tcg
//! overrides; else a short probe decides once per process (see [`probe`]).
//! Some hosts (nested virtualisation) run small guests under KVM but stop a
//! Linux kernel with "KVM internal error" and leave QEMU hanging, or make
//! QEMU abort on `-cpu host`: the runner watches QEMU's stderr and exit for
//! that, and when KVM was the probe's choice it reruns the guest under TCG
//! and uses TCG for the rest of the process.

use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, bail};

use crate::process::Cmd;

mod credentials;
mod disks;
mod network;
mod watch;

pub use credentials::{check_unit, credential_string, oem_strings_structure};
pub use disks::{DATA_SERIAL, DISK_SERIAL, IMAGE_SERIAL};
pub use network::{
    GCE_METADATA_ADDR, GCE_METADATA_PORT, METADATA_NET, METADATA_NET_DHCP_START, METADATA_NET_DNS,
    METADATA_NET_HOST, METADATA_NET_PREFIX, MetadataServer, Network, RELAY_COMMAND, relay,
};
use watch::Watch;

/// The emulator, from the host (the integrator's .ci/run installs it).
pub const QEMU: &str = "qemu-system-x86_64";
/// Debian's ovmf package; CRATON_OVMF_DIR overrides.
pub const OVMF_DIR: &str = "/usr/share/OVMF";
/// UEFI firmware code and the template of its variable store (4 MiB flash
/// layout, Debian's ovmf package; no Secure Boot keys enrolled).
pub const OVMF_CODE: &str = "OVMF_CODE_4M.fd";
pub const OVMF_VARS: &str = "OVMF_VARS_4M.fd";
/// The same with Microsoft's keys enrolled and Secure Boot on (Debian's
/// ovmf package), which Debian's signed shim is made for.
pub const OVMF_CODE_SB: &str = "OVMF_CODE_4M.ms.fd";
pub const OVMF_VARS_SB: &str = "OVMF_VARS_4M.ms.fd";
/// The override of the accelerator choice.
pub const ACCEL_ENV: &str = "CRATON_QEMU_ACCEL";
/// What QEMU prints when KVM cannot run an instruction (accel/kvm: the
/// KVM_EXIT_INTERNAL_ERROR exit); QEMU then pauses the guest for ever.
pub(crate) const KVM_FAILURE: &str = "KVM internal error";
/// The probe's guest is SeaBIOS with nothing to boot: it prints its log on
/// the debug console at I/O port 0x402 and ends with this line (SeaBIOS
/// src/boot.c), which takes milliseconds under working KVM.
const PROBE_MARKER: &str = "No bootable device";
const PROBE_TIMEOUT: Duration = Duration::from_secs(10);
/// The fw_cfg entry Ignition's qemu platform reads its config from
/// (/sys/firmware/qemu_fw_cfg/by_name/opt/com.coreos/config/raw in the
/// guest, through the qemu_fw_cfg module; Ignition's
/// internal/providers/qemu).
pub const IGNITION_FW_CFG: &str = "opt/com.coreos/config";

/// A disk image's format, always given to QEMU: taken from the file's name
/// or the caller, never probed from its bytes. A guest writes those bytes:
/// a raw image whose guest wrote a qcow2 header naming a backing file
/// would, probed, open that host file on the next run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageFormat {
    Raw,
    Qcow2,
}

impl ImageFormat {
    pub fn name(self) -> &'static str {
        match self {
            ImageFormat::Raw => "raw",
            ImageFormat::Qcow2 => "qcow2",
        }
    }

    /// From the file name: `.qcow2`, or `.raw` and `.img` for raw.
    pub fn from_name(path: &Path) -> Result<ImageFormat> {
        match path.extension().and_then(|e| e.to_str()) {
            Some("qcow2") => Ok(ImageFormat::Qcow2),
            Some("raw" | "img") => Ok(ImageFormat::Raw),
            _ => bail!(
                "{}: the image format is not in its name (.raw, .img or .qcow2); name it (--format raw|qcow2)",
                path.display()
            ),
        }
    }
}

/// The machine's firmware.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Firmware {
    /// SeaBIOS, QEMU's default.
    Bios,
    /// OVMF from [`OVMF_DIR`].
    Uefi,
}

/// How QEMU runs guest code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accel {
    Kvm,
    Tcg,
}

impl Accel {
    pub fn parse(s: &str) -> Result<Accel> {
        match s {
            "kvm" => Ok(Accel::Kvm),
            "tcg" => Ok(Accel::Tcg),
            _ => bail!("{ACCEL_ENV}={s:?}: expected kvm or tcg"),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Accel::Kvm => "kvm",
            Accel::Tcg => "tcg",
        }
    }
}

/// The reboots a run of a disk image lets through by default: the first
/// boot's, which gives the disk its own identifiers (`crate::initrd::units`).
pub const FIRST_BOOT_REBOOTS: u32 = 1;

/// One QEMU run. Make it with [`QemuRun::new`] and set what differs.
#[derive(Debug, Clone)]
pub struct QemuRun {
    /// The disk; `None` for a `-kernel` run.
    pub image: Option<PathBuf>,
    /// The disk's format; `None`: from its name ([`ImageFormat::from_name`]).
    pub format: Option<ImageFormat>,
    pub firmware: Firmware,
    /// UEFI with Secure Boot enforced (ignored for BIOS).
    pub secure_boot: bool,
    /// Guest writes go to a temporary overlay (`snapshot=on`).
    pub snapshot: bool,
    /// Further writable disks (raw or qcow2, by name), ahead of the image
    /// on the bus: another copy of an image, a second drive
    /// (/dev/disk/by-id/virtio-disk1, ...). The firmware boots the image.
    pub disks: Vec<PathBuf>,
    /// Raw files given to the guest as further read-only virtio disks
    /// (/dev/disk/by-id/virtio-data1, ...): data for a test, such as a
    /// container image's tar.
    pub data_disks: Vec<PathBuf>,
    /// Guest reboots the run lets through; the next one ends it (QEMU's
    /// -no-reboot when 0). A new image's first boot reboots once, after
    /// giving its disk its own identifiers (docs/security.md).
    pub reboots: u32,
    pub memory_mib: u32,
    /// systemd credentials: name and bytes (see [`check_unit`]).
    pub credentials: Vec<(String, Vec<u8>)>,
    /// Host port forwarded to the guest's ssh port 22 on 127.0.0.1.
    pub ssh_forward_port: Option<u16>,
    /// An Ignition config for the guest ([`IGNITION_FW_CFG`]); QEMU reads
    /// the file when it starts.
    pub ignition: Option<PathBuf>,
    /// GCE's metadata server for the guest: a server on the host's
    /// loopback. The user network then moves to [`METADATA_NET`].
    pub gce_metadata: Option<MetadataServer>,
    /// What else the guest reaches besides the forwarded ports.
    pub network: Network,
    pub extra_args: Vec<String>,
    pub timeout: Duration,
    /// Stop successfully once a serial line contains this text.
    pub marker: Option<String>,
    /// `None`: CRATON_QEMU_ACCEL, else the probe.
    pub accel: Option<Accel>,
    /// Where the serial log is written as it arrives.
    pub serial_log: Option<PathBuf>,
    /// Print serial lines on stdout too (interactive `craton qemu`).
    pub echo: bool,
}

impl QemuRun {
    pub fn new(image: Option<PathBuf>, firmware: Firmware) -> QemuRun {
        QemuRun {
            reboots: if image.is_some() {
                FIRST_BOOT_REBOOTS
            } else {
                0
            },
            image,
            format: None,
            firmware,
            secure_boot: false,
            snapshot: false,
            disks: Vec::new(),
            data_disks: Vec::new(),
            // Enough for systemd and docker's daemons in a test boot.
            memory_mib: 1024,
            credentials: Vec::new(),
            ssh_forward_port: None,
            ignition: None,
            gce_metadata: None,
            network: Network::Open,
            extra_args: Vec::new(),
            timeout: Duration::from_secs(600),
            marker: None,
            accel: None,
            serial_log: None,
            echo: false,
        }
    }
}

/// What a run saw.
#[derive(Debug, Clone)]
pub struct QemuResult {
    pub serial_log: String,
    pub marker_seen: bool,
    pub elapsed: Duration,
    pub accel: Accel,
}

/// Set once KVM failed a real guest in this process.
static KVM_BROKEN: AtomicBool = AtomicBool::new(false);

/// Runs QEMU until the marker, the guest's power-off or the timeout. A
/// timeout, or QEMU ending before the marker, is an error with the log tail.
pub fn run(run: &QemuRun) -> Result<QemuResult> {
    let (accel, chosen) = choose_accel(run)?;
    match run_once(run, accel)? {
        Outcome::Done(r) => Ok(r),
        Outcome::KvmFailed(log) if !chosen => {
            tracing::warn!("KVM cannot run this guest here; running it again under TCG");
            KVM_BROKEN.store(true, Ordering::SeqCst);
            match run_once(run, Accel::Tcg)? {
                Outcome::Done(r) => Ok(r),
                Outcome::KvmFailed(_) => bail!("qemu under TCG reported a KVM error:\n{log}"),
            }
        }
        Outcome::KvmFailed(log) => bail!(
            "qemu: {KVM_FAILURE} (the guest stopped; {ACCEL_ENV}=tcg avoids KVM); stderr:\n{log}"
        ),
    }
}

enum Outcome {
    Done(QemuResult),
    KvmFailed(String),
}

/// Runs QEMU on craton's terminal: the serial console and QEMU's monitor
/// share stdio (Ctrl-A X quits, Ctrl-A C switches to the monitor), for a
/// person at the login prompt. No marker, no timeout, no KVM fallback.
pub fn run_interactive(run: &QemuRun) -> Result<Accel> {
    let (accel, _) = choose_accel(run)?;
    let work = tempfile::tempdir().context("making a temporary folder for qemu")?;
    command(run, accel, work.path(), true)?.run_foreground()?;
    Ok(accel)
}

/// The run's accelerator and whether it was asked for (the run's own
/// field or CRATON_QEMU_ACCEL) rather than probed; a probed KVM that
/// already failed a guest in this process gives TCG.
fn choose_accel(run: &QemuRun) -> Result<(Accel, bool)> {
    let asked = match run.accel {
        Some(a) => Some(a),
        None => match std::env::var(ACCEL_ENV) {
            Ok(v) if !v.is_empty() => Some(Accel::parse(&v)?),
            _ => None,
        },
    };
    Ok(match asked {
        Some(a) => (a, true),
        None if KVM_BROKEN.load(Ordering::SeqCst) => (Accel::Tcg, false),
        None => (probe(), false),
    })
}

fn run_once(run: &QemuRun, accel: Accel) -> Result<Outcome> {
    let work = tempfile::tempdir().context("making a temporary folder for qemu")?;
    let cmd = command(run, accel, work.path(), false)?;
    let watch = Watch {
        marker: run.marker.as_deref(),
        timeout: run.timeout,
        echo: run.echo,
        log: run.serial_log.as_deref(),
        kvm: accel == Accel::Kvm,
        reboots: Some(run.reboots),
        restarts: !run.snapshot,
    };
    let seen = watch.run(&cmd)?;
    if let Some(stderr) = seen.kvm_failure {
        return Ok(Outcome::KvmFailed(stderr));
    }
    Ok(Outcome::Done(QemuResult {
        serial_log: seen.serial,
        marker_seen: seen.marker_seen,
        elapsed: seen.elapsed,
        accel,
    }))
}

/// The QEMU command line; `work` holds the UEFI variable store copy.
fn command(run: &QemuRun, accel: Accel, work: &Path, interactive: bool) -> Result<Cmd> {
    let console: &[&str] = if interactive {
        &["-serial", "mon:stdio"]
    } else {
        &["-serial", "stdio", "-monitor", "none"]
    };
    let mut cmd = Cmd::new(QEMU)
        .args(["-no-user-config", "-nodefaults", "-display", "none"])
        .args(console);
    if !interactive && (run.reboots == 0 || !run.snapshot) {
        // QEMU exits when the guest reboots. With no reboot allowed that
        // ends the run (panic=-1, a failed boot) instead of looping until
        // the timeout; otherwise the watch starts QEMU again for the next
        // boot (`restarts`): under TCG, QEMU 7.2 with OVMF and two vCPUs
        // was seen to hang for good in its own reset after a full
        // system's reboot. A snapshot keeps QEMU's own reset (its overlay
        // ends with the process); a person at the console reboots as
        // they like.
        cmd = cmd.arg("-no-reboot");
    }
    cmd =
        cmd.arg("-accel")
            .arg(accel.name())
            .args(["-m", &run.memory_mib.to_string(), "-smp", "2"]);
    if accel == Accel::Kvm {
        cmd = cmd.args(["-cpu", "host"]);
    }
    let secure = run.firmware == Firmware::Uefi && run.secure_boot;
    if secure {
        // OVMF's Secure Boot build keeps its variables in SMM-protected flash
        // (docs/architecture.md "Boot and A/B", tested with trixie's shim).
        cmd = cmd
            .args(["-machine", "q35,smm=on"])
            .args(["-global", "driver=cfi.pflash01,property=secure,value=on"]);
    } else {
        cmd = cmd.args(["-machine", "q35"]);
    }
    if run.firmware == Firmware::Uefi {
        let (code_name, vars_name) = if secure {
            (OVMF_CODE_SB, OVMF_VARS_SB)
        } else {
            (OVMF_CODE, OVMF_VARS)
        };
        let dir = std::env::var_os("CRATON_OVMF_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(OVMF_DIR));
        let code = dir.join(code_name);
        if !code.is_file() {
            bail!(
                "UEFI firmware {} not found (Debian package ovmf)",
                code.display()
            );
        }
        // The variable store is writable flash: each run gets a fresh copy.
        let vars = work.join(vars_name);
        std::fs::copy(dir.join(vars_name), &vars)
            .with_context(|| format!("copying {}", dir.join(vars_name).display()))?;
        cmd = cmd
            .arg("-drive")
            .arg(format!(
                "if=pflash,format=raw,unit=0,readonly=on,file={}",
                qemu_path(&code)?
            ))
            .arg("-drive")
            .arg(format!(
                "if=pflash,format=raw,unit=1,file={}",
                qemu_path(&vars)?
            ));
    }
    cmd = cmd.args(disks::args(run)?);
    cmd = cmd
        .arg("-netdev")
        .arg(network::netdev(run)?)
        .args(["-device", "virtio-net-pci,netdev=net0"]);
    if let Some(config) = &run.ignition {
        cmd = cmd.arg("-fw_cfg").arg(format!(
            "name={IGNITION_FW_CFG},file={}",
            qemu_path(config)?
        ));
    }
    if !run.credentials.is_empty() {
        // In a file only this user reads (`work` is a private temporary
        // folder): credentials may be secrets.
        let path = work.join("credentials.smbios");
        let data = oem_strings_structure(&run.credentials)?;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .with_context(|| format!("creating {}", path.display()))?;
        f.write_all(&data)
            .with_context(|| format!("writing {}", path.display()))?;
        cmd = cmd
            .arg("-smbios")
            .arg(format!("file={}", qemu_path(&path)?));
    }
    Ok(cmd.args(&run.extra_args))
}

/// QEMU's -drive, -fw_cfg and -smbios take `,` as a separator (doubled to
/// escape it).
fn qemu_path(p: &Path) -> Result<String> {
    let s = p
        .to_str()
        .with_context(|| format!("path {} is not UTF-8", p.display()))?;
    Ok(s.replace(',', ",,"))
}

/// KVM or TCG for this host, decided once per process: /dev/kvm must open
/// read-write and SeaBIOS must run to its end under KVM with `-cpu host`
/// within [`PROBE_TIMEOUT`]. This does not catch every broken KVM (see the
/// module header for the fallback that catches the rest we have seen).
pub fn probe() -> Accel {
    static CHOICE: OnceLock<Accel> = OnceLock::new();
    *CHOICE.get_or_init(|| {
        let accel = match probe_kvm() {
            Ok(()) => Accel::Kvm,
            Err(e) => {
                tracing::info!("using TCG: KVM probe: {e:#}");
                Accel::Tcg
            }
        };
        tracing::debug!("qemu accelerator: {}", accel.name());
        accel
    })
}

fn probe_kvm() -> Result<()> {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
        .context("opening /dev/kvm")?;
    let cmd = Cmd::new(QEMU)
        .args(["-no-user-config", "-nodefaults", "-display", "none"])
        // The same CPU model as real runs: on some nested hosts QEMU aborts
        // setting up `-cpu host` before the guest runs at all.
        .args(["-machine", "pc", "-accel", "kvm", "-cpu", "host"])
        .args(["-m", "64", "-no-reboot"])
        .args(["-chardev", "stdio,id=dbg"])
        .args(["-device", "isa-debugcon,iobase=0x402,chardev=dbg"]);
    let watch = Watch {
        marker: Some(PROBE_MARKER),
        timeout: PROBE_TIMEOUT,
        echo: false,
        log: None,
        kvm: true,
        reboots: None,
        restarts: false,
    };
    let seen = watch.run(&cmd)?;
    if let Some(err) = seen.kvm_failure {
        bail!("{KVM_FAILURE}: {err}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accel_override_parses() {
        assert_eq!(Accel::parse("kvm").unwrap(), Accel::Kvm);
        assert_eq!(Accel::parse("tcg").unwrap(), Accel::Tcg);
        assert!(Accel::parse("hvf").is_err());
    }

    #[test]
    fn command_line_for_uefi_with_a_qcow2_image() {
        let dir = tempfile::tempdir().unwrap();
        let img = dir.path().join("disk.qcow2");
        std::fs::write(&img, b"QFI\xfb\0\0\0\x03").unwrap();
        let mut r = QemuRun::new(Some(img.clone()), Firmware::Uefi);
        r.snapshot = true;
        r.ssh_forward_port = Some(2222);
        r.credentials = vec![("x".into(), b"secret".to_vec())];
        r.data_disks = vec![dir.path().join("data,1.tar")];
        r.disks = vec![dir.path().join("twin.raw")];
        let line = command(&r, Accel::Tcg, dir.path(), false)
            .unwrap()
            .display();
        for want in [
            "-accel tcg",
            "-machine q35",
            "if=pflash,format=raw,unit=0,readonly=on,file=/usr/share/OVMF/OVMF_CODE_4M.fd",
            &format!(
                "-drive if=none,id=craton-image,format=qcow2,file={},snapshot=on \
                 -device virtio-blk-pci,drive=craton-image,serial=craton-image,bootindex=1",
                img.display()
            ),
            &format!(
                "-drive if=none,id=data1,format=raw,file={}/data,,1.tar,readonly=on \
                 -device virtio-blk-pci,drive=data1,serial=data1 ",
                dir.path().display()
            ),
            "user,id=net0,hostfwd=tcp:127.0.0.1:2222-:22",
            &format!("-smbios file={}/credentials.smbios", dir.path().display()),
        ] {
            assert!(line.contains(want), "{want} not in {line}");
        }
        // The further disk comes first on the bus, without a boot index;
        // the first boot's reboot is let through by starting QEMU again
        // (-no-reboot), except with a snapshot, which QEMU resets itself.
        let twin = line.find("serial=disk1 ").unwrap();
        assert!(twin < line.find("serial=craton-image").unwrap(), "{line}");
        assert!(!line.contains("-no-reboot"), "{line}");
        r.credentials.clear();
        r.snapshot = false;
        let line = command(&r, Accel::Tcg, dir.path(), false)
            .unwrap()
            .display();
        assert!(line.contains("-no-reboot"), "{line}");
        r.snapshot = true;
        r.reboots = 0;
        let line = command(&r, Accel::Tcg, dir.path(), false)
            .unwrap()
            .display();
        assert!(line.contains("-no-reboot"), "{line}");
        assert!(dir.path().join(OVMF_VARS).is_file());
        // The credential is in a private file, not on the command line.
        assert!(
            !line.contains("c2VjcmV0") && !line.contains("secret"),
            "{line}"
        );
        let cred = dir.path().join("credentials.smbios");
        let meta = std::fs::metadata(&cred).unwrap();
        use std::os::unix::fs::PermissionsExt as _;
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        let data = std::fs::read(&cred).unwrap();
        assert!(data.ends_with(b"io.systemd.credential.binary:x=c2VjcmV0\0\0"));
    }

    /// Ignition's config as a fw_cfg file (its path escaped like a
    /// -drive's), the metadata server and isolation on the user network.
    #[test]
    fn command_line_for_first_boot_provisioning() {
        let dir = tempfile::tempdir().unwrap();
        let img = dir.path().join("disk.raw");
        std::fs::write(&img, b"").unwrap();
        let mut r = QemuRun::new(Some(img), Firmware::Bios);
        r.ignition = Some(dir.path().join("config,1.ign"));
        r.network = Network::Isolated;
        r.ssh_forward_port = Some(2222);
        r.gce_metadata = Some(
            MetadataServer::new("127.0.0.1:8080".parse().unwrap(), "/bin/craton".into()).unwrap(),
        );
        let line = command(&r, Accel::Tcg, dir.path(), false)
            .unwrap()
            .display();
        let want = format!(
            " -netdev 'user,id=net0,net=169.254.169.0/24,host=169.254.169.2,dns=169.254.169.3,\
             dhcpstart=169.254.169.15,restrict=on,hostfwd=tcp:127.0.0.1:2222-:22,\
             guestfwd=tcp:169.254.169.254:80-cmd:/bin/craton qemu-guestfwd 127.0.0.1:8080' \
             -device virtio-net-pci,netdev=net0 \
             -fw_cfg name=opt/com.coreos/config,file={}/config,,1.ign",
            dir.path().display()
        );
        assert!(line.contains(&want), "{want} not in {line}");
        // Without them: QEMU's default network, no fw_cfg file.
        let plain = QemuRun::new(r.image.clone(), Firmware::Bios);
        let line = command(&plain, Accel::Tcg, dir.path(), false)
            .unwrap()
            .display();
        assert!(
            line.contains(" -netdev user,id=net0 -device virtio-net-pci,netdev=net0"),
            "{line}"
        );
        assert!(!line.contains("-fw_cfg"), "{line}");
    }

    /// The format comes from the name (or the caller), never from the
    /// bytes: a raw image that starts like a qcow2 stays raw.
    #[test]
    fn image_format_from_the_name_not_the_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let img = dir.path().join("disk.raw");
        std::fs::write(&img, b"QFI\xfb\0\0\0\x03").unwrap();
        let r = QemuRun::new(Some(img.clone()), Firmware::Bios);
        let line = command(&r, Accel::Tcg, dir.path(), false)
            .unwrap()
            .display();
        assert!(
            line.contains(&format!(
                "id=craton-image,format=raw,file={} ",
                img.display()
            )),
            "{line}"
        );
        let odd = dir.path().join("disk.bin");
        std::fs::write(&odd, b"").unwrap();
        let Err(err) = command(
            &QemuRun::new(Some(odd.clone()), Firmware::Bios),
            Accel::Tcg,
            dir.path(),
            false,
        ) else {
            panic!("a disk.bin without --format was taken");
        };
        assert!(format!("{err:#}").contains("--format raw|qcow2"), "{err:#}");
        let mut r = QemuRun::new(Some(odd), Firmware::Bios);
        r.format = Some(ImageFormat::Qcow2);
        let line = command(&r, Accel::Tcg, dir.path(), false)
            .unwrap()
            .display();
        assert!(line.contains("format=qcow2"), "{line}");
    }
}
