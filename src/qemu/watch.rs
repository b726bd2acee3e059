//! Following a running QEMU: its serial console (stdout) is streamed line
//! by line to a log file and memory until a marker line, the end of QEMU,
//! the timeout or a signal; its stderr is watched for KVM's failure.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use super::KVM_FAILURE;
use crate::process::Cmd;

/// Lines of the serial log put into an error.
const TAIL_LINES: usize = 40;
/// How often the runner checks the clock and the signal flag.
const POLL: Duration = Duration::from_millis(100);

/// How to follow a running QEMU.
pub(super) struct Watch<'a> {
    pub(super) marker: Option<&'a str>,
    pub(super) timeout: Duration,
    pub(super) echo: bool,
    pub(super) log: Option<&'a Path>,
    /// The guest runs under KVM (QEMU dying of a signal is then reported
    /// as a KVM failure, not an error).
    pub(super) kvm: bool,
    /// Guest reboots to let through: a kernel that starts once more than
    /// that ends the run with an error. `None`: not counted (no kernel).
    pub(super) reboots: Option<u32>,
    /// QEMU runs with -no-reboot and a guest reboot is a new QEMU process
    /// on the same disks and UEFI variables (`super::command`).
    pub(super) restarts: bool,
}

/// What the kernel prints before it resets the machine: a reboot
/// (kernel/reboot.c) and a panic (kernel/panic.c; with `panic=N` it says
/// "Rebooting in N seconds", with a negative N nothing more). A panicked
/// kernel that does not reboot leaves QEMU running, and a power-off
/// prints "reboot: Power down", so QEMU ending after these is a reset.
const REBOOT_LINES: [&str; 3] = [
    "reboot: Restarting system",
    "Rebooting in ",
    "Kernel panic - not syncing",
];

/// The kernel's first console line, printed once per boot (init/main.c's
/// linux_banner), which is how the watch counts a guest's reboots.
const KERNEL_BANNER: &str = "Linux version ";

pub(super) struct Seen {
    pub(super) serial: String,
    pub(super) marker_seen: bool,
    pub(super) elapsed: Duration,
    /// QEMU's stderr when it reported a KVM failure.
    pub(super) kvm_failure: Option<String>,
}

enum Line {
    Out(String),
    Err(String),
}

impl Watch<'_> {
    pub(super) fn run(&self, cmd: &Cmd) -> Result<Seen> {
        let start = Instant::now();
        let mut log = match self.log {
            Some(p) => Some(File::create(p).with_context(|| format!("creating {}", p.display()))?),
            None => None,
        };
        let (mut child, mut rx, mut readers) = spawn(cmd)?;
        let (mut serial, mut stderr) = (String::new(), String::new());
        let mut marker_seen = false;
        let mut boots = 0u32;
        // The running kernel said it is rebooting the machine.
        let mut rebooting = false;
        loop {
            crate::signal::check().with_context(|| format!("running `{}`", child.display()))?;
            if start.elapsed() > self.timeout {
                child.kill()?;
                bail!(
                    "qemu timed out after {}s{}; last serial lines:\n{}{}",
                    self.timeout.as_secs(),
                    self.marker
                        .map(|m| format!(" waiting for {m:?}"))
                        .unwrap_or_default(),
                    tail(&serial),
                    stderr_note(&stderr),
                );
            }
            match rx.recv_timeout(POLL) {
                Ok(Line::Out(line)) => {
                    if let Some(f) = &mut log {
                        writeln!(f, "{line}").context("writing the serial log")?;
                    }
                    if self.echo {
                        println!("{line}");
                    }
                    serial.push_str(&line);
                    serial.push('\n');
                    if REBOOT_LINES.iter().any(|r| line.contains(r)) {
                        rebooting = true;
                    }
                    if line.contains(KERNEL_BANNER) {
                        rebooting = false;
                        boots += 1;
                        if let Some(allowed) = self.reboots.filter(|&r| boots > r + 1) {
                            child.kill()?;
                            bail!(
                                "the guest rebooted {} times, more than the {allowed} this run allows; last serial lines:\n{}{}",
                                boots - 1,
                                tail(&serial),
                                stderr_note(&stderr)
                            );
                        }
                    }
                    if self.marker.is_some_and(|m| line.contains(m)) {
                        marker_seen = true;
                        child.kill()?;
                        break;
                    }
                }
                Ok(Line::Err(line)) => {
                    let failed = line.contains(KVM_FAILURE);
                    stderr.push_str(&line);
                    stderr.push('\n');
                    if failed {
                        // QEMU dumps the registers after the line; give them
                        // a moment for the message, then stop the stuck guest.
                        std::thread::sleep(Duration::from_millis(300));
                        while let Ok(Line::Err(l)) = rx.try_recv() {
                            stderr.push_str(&l);
                            stderr.push('\n');
                        }
                        child.kill()?;
                        return Ok(Seen {
                            serial,
                            marker_seen: false,
                            elapsed: start.elapsed(),
                            kvm_failure: Some(stderr),
                        });
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    // Both pipes closed: QEMU has ended (or is ending).
                    let status = loop {
                        if let Some(st) = child.try_wait()? {
                            break st;
                        }
                        if start.elapsed() > self.timeout {
                            child.kill()?;
                            bail!("qemu closed its output but did not exit");
                        }
                        std::thread::sleep(POLL);
                    };
                    // QEMU aborts (SIGABRT) when KVM refuses CPU state it
                    // sets up, e.g. an MSR of `-cpu host` under nested
                    // virtualisation: a KVM failure the caller may retry.
                    if self.kvm && status.signal().is_some() {
                        return Ok(Seen {
                            serial,
                            marker_seen: false,
                            elapsed: start.elapsed(),
                            kvm_failure: Some(format!("qemu ended with {status}\n{stderr}")),
                        });
                    }
                    if !status.success() {
                        bail!(
                            "`{}` failed with {status}:{}\nlast serial lines:\n{}",
                            child.display(),
                            stderr_note(&stderr),
                            tail(&serial)
                        );
                    }
                    let allowed = self.reboots.unwrap_or(0);
                    if self.restarts && rebooting && allowed > 0 {
                        if boots > allowed {
                            bail!(
                                "the guest rebooted {boots} times, more than the {allowed} this run allows; last serial lines:\n{}{}",
                                tail(&serial),
                                stderr_note(&stderr)
                            );
                        }
                        // The guest rebooted: its next boot in a new QEMU.
                        rebooting = false;
                        for r in readers.into_iter().flatten() {
                            let _ = r.join();
                        }
                        (child, rx, readers) = spawn(cmd)?;
                        continue;
                    }
                    if let Some(m) = self.marker {
                        bail!(
                            "qemu exited before {m:?} appeared; last serial lines:\n{}{}",
                            tail(&serial),
                            stderr_note(&stderr)
                        );
                    }
                    break;
                }
            }
        }
        for r in readers.into_iter().flatten() {
            let _ = r.join();
        }
        Ok(Seen {
            serial,
            marker_seen,
            elapsed: start.elapsed(),
            kvm_failure: None,
        })
    }
}

type Readers = [Option<std::thread::JoinHandle<()>>; 2];

/// Starts QEMU with a reader thread for each of its stdout and stderr.
fn spawn(cmd: &Cmd) -> Result<(crate::process::PipedChild, mpsc::Receiver<Line>, Readers)> {
    let mut child = cmd.spawn_piped()?;
    let (tx, rx) = mpsc::channel();
    let readers = [
        child
            .take_stdout()
            .map(|p| reader(p, tx.clone(), Line::Out)),
        child
            .take_stderr()
            .map(|p| reader(p, tx.clone(), Line::Err)),
    ];
    Ok((child, rx, readers))
}

/// Sends each line of a pipe (without CR/LF; serial consoles send CRLF).
fn reader<R: Read + Send + 'static>(
    pipe: R,
    tx: mpsc::Sender<Line>,
    wrap: fn(String) -> Line,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut r = BufReader::new(pipe);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match r.read_until(b'\n', &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    let text = String::from_utf8_lossy(&buf);
                    let line = text.trim_end_matches(['\n', '\r']).replace('\r', "");
                    if tx.send(wrap(line)).is_err() {
                        break;
                    }
                }
            }
        }
    })
}

fn tail(log: &str) -> String {
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(TAIL_LINES)..].join("\n")
}

fn stderr_note(stderr: &str) -> String {
    let t = stderr.trim();
    if t.is_empty() {
        String::new()
    } else {
        format!("\nqemu stderr:\n{}", tail(t))
    }
}
