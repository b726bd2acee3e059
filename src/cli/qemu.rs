//! `craton qemu IMAGE`: boots an image in QEMU. On a terminal the serial
//! console is the terminal (Ctrl-A X quits); otherwise, or with --marker,
//! the console is streamed to stdout and the run ends at the marker line,
//! the guest's power-off or the timeout.
//!
//! Also `craton qemu-guestfwd` (hidden), which QEMU starts for each guest
//! connection to GCE's metadata server (`--gce-metadata`).

use std::io::IsTerminal;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};

use crate::error::{EXIT_FAILURE, bad_input};
use crate::qemu::{self, Firmware, ImageFormat, MetadataServer, Network, QemuRun};

/// The systemd credential that systemd-tmpfiles writes to
/// /root/.ssh/authorized_keys (systemd.system-credentials(7)).
const SSH_KEY_CREDENTIAL: &str = "ssh.authorized_keys.root";
/// How long `--gce-metadata`'s server gets to accept the check's
/// connection (it is on the host's loopback).
const METADATA_CHECK_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum FirmwareArg {
    Bios,
    Uefi,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum FormatArg {
    Raw,
    Qcow2,
}

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The disk image (raw or qcow2, by its name: .raw, .img, .qcow2).
    pub image: PathBuf,
    /// The image's format, for a name that does not say it (never guessed
    /// from the file's bytes, which the guest writes).
    #[arg(long, value_enum)]
    pub format: Option<FormatArg>,
    /// SeaBIOS or OVMF (UEFI).
    #[arg(long, value_enum, default_value = "uefi")]
    pub firmware: FirmwareArg,
    /// UEFI with Secure Boot enforced (OVMF with Microsoft's keys).
    #[arg(long)]
    pub secure_boot: bool,
    /// Keep the image unchanged: guest writes go to a temporary overlay.
    #[arg(long)]
    pub snapshot: bool,
    /// Guest memory in MiB.
    #[arg(long, default_value_t = 1024)]
    pub memory: u32,
    /// Host port on 127.0.0.1 forwarded to the guest's ssh (22); 0 for none.
    #[arg(long, default_value_t = 2222)]
    pub ssh_port: u16,
    /// A public key file for root's authorized_keys (passed as the
    /// ssh.authorized_keys.root credential).
    #[arg(long, value_name = "FILE")]
    pub ssh_key: Option<PathBuf>,
    /// A systemd credential NAME=VALUE (SMBIOS type 11); repeatable.
    #[arg(long, value_name = "NAME=VALUE")]
    pub credential: Vec<String>,
    /// A systemd credential read from a file, NAME=FILE; repeatable.
    #[arg(long, value_name = "NAME=FILE")]
    pub credential_file: Vec<String>,
    /// End the run successfully once a console line contains TEXT.
    #[arg(long, value_name = "TEXT")]
    pub marker: Option<String>,
    /// Stop the guest after this many seconds (an error).
    #[arg(long, value_name = "SECS")]
    pub timeout: Option<u64>,
    /// Also write the serial console to FILE.
    #[arg(long, value_name = "FILE")]
    pub serial_log: Option<PathBuf>,
    /// A raw file the guest sees as a further read-only disk
    /// (/dev/disk/by-id/virtio-data1, then data2, ...), e.g. a container
    /// image's tar; repeatable.
    #[arg(long, value_name = "FILE")]
    pub data_disk: Vec<PathBuf>,
    /// A further writable disk (raw or qcow2, by its name), e.g. another
    /// copy of an image: /dev/disk/by-id/virtio-disk1, then disk2, ...,
    /// ahead of IMAGE on the bus; the firmware still boots IMAGE.
    /// Repeatable.
    #[arg(long, value_name = "FILE")]
    pub disk: Vec<PathBuf>,
    /// Guest reboots to let through before the run ends (an error, when
    /// waiting for --marker); the default is the first boot's one, which
    /// gives a new disk its own identifiers.
    #[arg(long, value_name = "N", default_value_t = qemu::FIRST_BOOT_REBOOTS)]
    pub reboots: u32,
    /// An Ignition config for the guest's first boot, given as QEMU's
    /// fw_cfg entry opt/com.coreos/config (Ignition's qemu platform); not
    /// validated here.
    #[arg(long, value_name = "FILE")]
    pub ignition: Option<PathBuf>,
    /// A server on the host's loopback (e.g. 127.0.0.1:8080) that the
    /// guest reaches as GCE's metadata server, 169.254.169.254 port 80; the
    /// guest's network then is 169.254.169.0/24 (docs/cli.md).
    #[arg(long, value_name = "ADDR:PORT")]
    pub gce_metadata: Option<SocketAddr>,
    /// The guest reaches nothing but the forwarded ports (ssh from the
    /// host, --gce-metadata): no DNS, no host, no outside network.
    #[arg(long)]
    pub isolated: bool,
}

/// `craton qemu-guestfwd ADDR:PORT`, hidden: QEMU starts it for each guest
/// connection to the metadata server (`crate::qemu::relay`).
#[derive(Debug, clap::Args)]
pub struct GuestfwdArgs {
    /// The server on the host's loopback.
    #[arg(value_name = "ADDR:PORT")]
    pub server: SocketAddr,
}

pub fn run(args: Args) -> Result<()> {
    if !args.image.is_file() {
        return Err(bad_input(format!(
            "{}: no such image file",
            args.image.display()
        )));
    }
    let firmware = match args.firmware {
        FirmwareArg::Bios => Firmware::Bios,
        FirmwareArg::Uefi => Firmware::Uefi,
    };
    let mut run = QemuRun::new(Some(args.image.clone()), firmware);
    run.format = match args.format {
        Some(FormatArg::Raw) => Some(ImageFormat::Raw),
        Some(FormatArg::Qcow2) => Some(ImageFormat::Qcow2),
        None => Some(ImageFormat::from_name(&args.image).map_err(|e| bad_input(format!("{e:#}")))?),
    };
    run.secure_boot = args.secure_boot;
    run.snapshot = args.snapshot;
    for (flag, files) in [("--data-disk", &args.data_disk), ("--disk", &args.disk)] {
        for d in files {
            if !d.is_file() {
                return Err(bad_input(format!("{flag} {}: no such file", d.display())));
            }
        }
    }
    for d in &args.disk {
        ImageFormat::from_name(d).map_err(|e| bad_input(format!("--disk {e:#}")))?;
    }
    run.data_disks = args.data_disk.clone();
    run.disks = args.disk.clone();
    run.reboots = args.reboots;
    run.memory_mib = args.memory;
    run.ssh_forward_port = (args.ssh_port != 0).then_some(args.ssh_port);
    run.credentials = credentials(&args)?;
    if let Some(config) = &args.ignition {
        readable_file(config)
            .map_err(|e| bad_input(format!("--ignition {}: {e}", config.display())))?;
    }
    run.ignition = args.ignition.clone();
    if let Some(addr) = args.gce_metadata {
        // QEMU starts this binary for each guest connection.
        let relay = std::env::current_exe().context("finding craton's own binary")?;
        let server = MetadataServer::new(addr, relay)
            .map_err(|e| bad_input(format!("--gce-metadata {e:#}")))?;
        // QEMU connects only when the guest does: a server that is not
        // there is found now, not as a guest's failed fetch.
        TcpStream::connect_timeout(&addr, METADATA_CHECK_TIMEOUT).map_err(|e| {
            bad_input(format!(
                "--gce-metadata {addr}: no server answers there: {e}"
            ))
        })?;
        run.gce_metadata = Some(server);
    }
    run.network = if args.isolated {
        Network::Isolated
    } else {
        Network::Open
    };
    run.marker = args.marker.clone();
    run.serial_log = args.serial_log.clone();
    run.echo = true;
    let interactive = args.marker.is_none()
        && args.timeout.is_none()
        && std::io::stdin().is_terminal()
        && std::io::stdout().is_terminal();
    if interactive {
        let accel = qemu::run_interactive(&run)?;
        tracing::info!("qemu ended ({accel:?})");
        return Ok(());
    }
    // Unattended: a day unless told otherwise, so a forgotten run ends.
    run.timeout = Duration::from_secs(args.timeout.unwrap_or(24 * 3600));
    let result = qemu::run(&run)?;
    if let Some(m) = &args.marker {
        if !result.marker_seen {
            bail!("the guest stopped before printing {m:?}");
        }
        eprintln!(
            "marker seen after {:.1}s ({:?})",
            result.elapsed.as_secs_f64(),
            result.accel
        );
    }
    Ok(())
}

/// Relays one guest connection; prints nothing, even on failure (stdout
/// and stderr are the guest's connection, which then just closes).
pub fn guestfwd(args: &GuestfwdArgs) -> ExitCode {
    match qemu::relay(args.server) {
        Ok(()) => ExitCode::SUCCESS,
        Err(_) => ExitCode::from(EXIT_FAILURE),
    }
}

/// Opens `path` for reading: a regular file QEMU will be able to read.
fn readable_file(path: &Path) -> std::io::Result<()> {
    let f = std::fs::File::open(path)?;
    if !f.metadata()?.is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    Ok(())
}

fn credentials(args: &Args) -> Result<Vec<(String, Vec<u8>)>> {
    let mut out = Vec::new();
    let split = |s: &str, flag: &str| -> Result<(String, String)> {
        match s.split_once('=') {
            Some((n, v)) if !n.is_empty() => Ok((n.to_owned(), v.to_owned())),
            _ => Err(bad_input(format!("{flag} {s:?}: expected NAME=..."))),
        }
    };
    for c in &args.credential {
        let (n, v) = split(c, "--credential")?;
        out.push((n, v.into_bytes()));
    }
    for c in &args.credential_file {
        let (n, p) = split(c, "--credential-file")?;
        let data = std::fs::read(&p)
            .map_err(|e| bad_input(format!("--credential-file {n}: reading {p}: {e}")))?;
        out.push((n, data));
    }
    if let Some(key) = &args.ssh_key {
        let data = std::fs::read(key)
            .map_err(|e| bad_input(format!("--ssh-key {}: {e}", key.display())))?;
        out.push((SSH_KEY_CREDENTIAL.to_owned(), data));
    }
    for (n, v) in &out {
        // Checked here so a bad name is bad input, not a QEMU failure.
        qemu::credential_string(n, v).map_err(|e| bad_input(format!("{e:#}")))?;
    }
    qemu::oem_strings_structure(&out).map_err(|e| bad_input(format!("{e:#}")))?;
    Ok(out)
}
