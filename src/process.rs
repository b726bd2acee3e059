//! The one wrapper for external commands.
//!
//! Stage code never builds `std::process::Command` by hand: it uses [`Cmd`],
//! which logs the shell-escaped command line at debug level, sets stdin to
//! null, captures stderr, and on failure returns an error that names the
//! command line, the exit status (or the signal) and the tail of stderr
//! ([`Cmd::outcome`] leaves the status to a caller for which it is an
//! answer, such as a validator's).
//!
//! Children run in their own process group; when craton receives SIGINT or
//! SIGTERM (see `signal`) the wrapper stops the child's group and returns an
//! error, so the caller's guards unwind. Every child also dies with the
//! thread that started it (PR_SET_PDEATHSIG), so a craton killed by SIGKILL
//! or the OOM killer leaves no program running on a half-made tree; every
//! run is started and waited for (or held, `spawn_piped`) by one thread.
//! (`unsafe`: prctl(2) in the child and kill(2) of its process group; std
//! has neither.)

#![allow(unsafe_code)]
use std::ffi::{OsStr, OsString};
use std::io::Read;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// How many bytes of stderr go into an error message.
const STDERR_TAIL: usize = 4096;
/// How often a running child is checked for completion and for a signal.
const POLL: Duration = Duration::from_millis(50);
/// How long an interrupted child gets between SIGTERM and SIGKILL.
const KILL_GRACE: Duration = Duration::from_secs(5);

/// A command to run. Build with [`Cmd::new`], add arguments, then [`Cmd::run`]
/// or [`Cmd::output`].
pub struct Cmd {
    program: OsString,
    args: Vec<OsString>,
    cwd: Option<PathBuf>,
    env: Vec<(OsString, OsString)>,
    env_clear: bool,
    foreground: bool,
}

impl Cmd {
    pub fn new(program: impl AsRef<OsStr>) -> Self {
        Self {
            program: program.as_ref().to_owned(),
            args: Vec::new(),
            cwd: None,
            env: Vec::new(),
            env_clear: false,
            foreground: false,
        }
    }

    pub fn arg(mut self, a: impl AsRef<OsStr>) -> Self {
        self.args.push(a.as_ref().to_owned());
        self
    }

    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }

    pub fn cwd(mut self, dir: impl AsRef<Path>) -> Self {
        self.cwd = Some(dir.as_ref().to_owned());
        self
    }

    pub fn env(mut self, k: impl AsRef<OsStr>, v: impl AsRef<OsStr>) -> Self {
        self.env
            .push((k.as_ref().to_owned(), v.as_ref().to_owned()));
        self
    }

    /// Starts from an empty environment (then [`Cmd::env`] adds to it).
    pub fn env_clear(mut self) -> Self {
        self.env_clear = true;
        self
    }

    /// The command line, shell-escaped, for logs and errors.
    pub fn display(&self) -> String {
        std::iter::once(&self.program)
            .chain(&self.args)
            .map(|a| shell_quote(&a.to_string_lossy()))
            .collect::<Vec<_>>()
            .join(" ")
    }

    fn command(&self) -> Command {
        let mut c = Command::new(&self.program);
        c.args(&self.args);
        if self.foreground {
            // The terminal's process group: the child reads the keyboard
            // and gets the terminal's signals itself.
            c.stdin(Stdio::inherit());
        } else {
            c.stdin(Stdio::null()).process_group(0);
        }
        if self.env_clear {
            c.env_clear();
        }
        for (k, v) in &self.env {
            c.env(k, v);
        }
        if let Some(d) = &self.cwd {
            c.current_dir(d);
        }
        // SIGKILL when the starting thread ends (prctl(2)), SIGKILL of
        // craton included; the setting survives exec.
        // SAFETY: prctl is async-signal-safe and only touches the child
        // between fork and exec.
        unsafe {
            c.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        c
    }

    /// Runs the command; stdout is captured and returned.
    pub fn output(&self) -> Result<Vec<u8>> {
        self.output_both().map(|(out, _)| out)
    }

    fn output_both(&self) -> Result<(Vec<u8>, Vec<u8>)> {
        let out = self.outcome()?;
        out.check()?;
        Ok((out.stdout, out.stderr))
    }

    /// Runs the command to its end and returns its status with stdout and
    /// stderr, whatever the status: for a program whose exit status is an
    /// answer rather than a failure (a validator). The caller judges the
    /// status, with [`Outcome::check`] for what it does not expect; failing
    /// to start and an interrupt are still errors.
    pub fn outcome(&self) -> Result<Outcome> {
        let line = self.display();
        tracing::debug!("running {line}");
        crate::signal::check()?;
        let mut child = self
            .command()
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting `{line}`"))?;
        let out = drain(child.stdout.take());
        let err = drain(child.stderr.take());
        let status = wait(&mut child, &line)?;
        let stdout = out.join().unwrap_or_default();
        let stderr = err.join().unwrap_or_default();
        if !stderr.is_empty() {
            tracing::trace!("stderr of {line}: {}", String::from_utf8_lossy(&stderr));
        }
        Ok(Outcome {
            line,
            status,
            stdout,
            stderr,
        })
    }

    /// Runs the command; returns stdout and stderr together as text (for
    /// programs that print their version or report on stderr).
    pub fn output_all(&self) -> Result<String> {
        let (stdout, stderr) = self.output_both()?;
        Ok(String::from_utf8_lossy(&stdout).into_owned() + &String::from_utf8_lossy(&stderr))
    }

    /// Runs the command, discarding stdout.
    pub fn run(&self) -> Result<()> {
        self.output().map(drop)
    }

    /// Runs the command attached to craton's terminal (stdin, stdout and
    /// stderr inherited, in craton's process group), for an interactive
    /// program such as QEMU with its serial console on stdio. An interrupt
    /// reaches the child from the terminal; craton waits for it to end.
    pub fn run_foreground(mut self) -> Result<()> {
        self.foreground = true;
        let line = self.display();
        tracing::debug!("running {line} in the foreground");
        let status = self
            .command()
            .status()
            .with_context(|| format!("running `{line}`"))?;
        check(&line, status, b"")
    }

    /// Starts the command with stdout and stderr as pipes for the caller to
    /// read while it runs (QEMU: its serial console is read line by line,
    /// and it is stopped when a marker appears or time runs out). The
    /// caller polls [`crate::signal`] itself; dropping the handle kills the
    /// child's process group and reaps it.
    pub fn spawn_piped(&self) -> Result<PipedChild> {
        let line = self.display();
        tracing::debug!("starting {line}");
        crate::signal::check()?;
        let child = self
            .command()
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting `{line}`"))?;
        Ok(PipedChild { child, line })
    }
}

/// A command that ran to its end, from [`Cmd::outcome`].
#[derive(Debug)]
pub struct Outcome {
    /// The command line, shell-escaped.
    pub line: String,
    pub status: ExitStatus,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

impl Outcome {
    /// The error [`Cmd::run`] would give for this status (the command
    /// line, the exit code or signal, stderr's tail), or `Ok` on success.
    pub fn check(&self) -> Result<()> {
        check(&self.line, self.status, &self.stderr)
    }
}

/// A running child from [`Cmd::spawn_piped`].
pub struct PipedChild {
    child: Child,
    line: String,
}

impl PipedChild {
    /// The command line, shell-escaped.
    pub fn display(&self) -> &str {
        &self.line
    }

    pub fn take_stdout(&mut self) -> Option<std::process::ChildStdout> {
        self.child.stdout.take()
    }

    pub fn take_stderr(&mut self) -> Option<std::process::ChildStderr> {
        self.child.stderr.take()
    }

    /// The exit status once the child has ended.
    pub fn try_wait(&mut self) -> Result<Option<ExitStatus>> {
        self.child
            .try_wait()
            .with_context(|| format!("waiting for `{}`", self.line))
    }

    /// Kills the child's process group (SIGKILL: QEMU holds no state worth
    /// a graceful stop) and reaps the child.
    pub fn kill(&mut self) -> Result<()> {
        if self.child.try_wait()?.is_none() {
            let pgid = self.child.id() as libc::pid_t;
            // SAFETY: kill(2) on the child's own process group.
            unsafe { libc::kill(-pgid, libc::SIGKILL) };
            self.child
                .wait()
                .with_context(|| format!("reaping `{}`", self.line))?;
        }
        Ok(())
    }
}

impl Drop for PipedChild {
    fn drop(&mut self) {
        if let Err(e) = self.kill() {
            tracing::warn!("stopping `{}`: {e:#}", self.line);
        }
    }
}

/// Reads a pipe to its end on a thread, so that a chatty child never blocks.
fn drain(pipe: Option<impl Read + Send + 'static>) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(mut p) = pipe {
            let _ = p.read_to_end(&mut buf);
        }
        buf
    })
}

/// Waits for the child; on SIGINT/SIGTERM to craton, stops the child's
/// process group (SIGTERM, then SIGKILL after a grace period).
fn wait(child: &mut Child, line: &str) -> Result<ExitStatus> {
    // Short commands are common: poll fast at first, then back off.
    let mut pause = Duration::from_millis(1);
    loop {
        if let Some(st) = child.try_wait()? {
            return Ok(st);
        }
        if crate::signal::interrupted() {
            let pgid = child.id() as libc::pid_t;
            // SAFETY: kill(2) on the child's own process group.
            unsafe { libc::kill(-pgid, libc::SIGTERM) };
            let start = Instant::now();
            while child.try_wait()?.is_none() {
                if start.elapsed() > KILL_GRACE {
                    // SAFETY: as above, the child's own process group.
                    unsafe { libc::kill(-pgid, libc::SIGKILL) };
                    child.wait()?;
                    break;
                }
                std::thread::sleep(POLL);
            }
            bail!("interrupted by a signal while running `{line}`");
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(POLL);
    }
}

fn check(line: &str, status: ExitStatus, stderr: &[u8]) -> Result<()> {
    if status.success() {
        return Ok(());
    }
    let how = match (status.code(), status.signal()) {
        (Some(c), _) => format!("exit code {c}"),
        (None, Some(s)) => format!("signal {s}"),
        _ => "unknown status".to_owned(),
    };
    let tail = &stderr[stderr.len().saturating_sub(STDERR_TAIL)..];
    let tail = String::from_utf8_lossy(tail);
    bail!("`{line}` failed with {how}: {}", tail.trim_end())
}

/// Quotes a word for a POSIX shell when it needs quoting.
pub fn shell_quote(s: &str) -> String {
    let plain = !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./=:,+@%".contains(&b));
    if plain {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failure_names_command_and_stderr() {
        let err = Cmd::new("sh")
            .args(["-c", "echo broken >&2; exit 3"])
            .run()
            .unwrap_err()
            .to_string();
        assert!(err.contains("sh -c 'echo broken >&2; exit 3'"), "{err}");
        assert!(err.contains("exit code 3"), "{err}");
        assert!(err.contains("broken"), "{err}");
    }

    #[test]
    fn outcome_keeps_a_failing_status_for_the_caller() {
        let out = Cmd::new("sh")
            .args(["-c", "echo said; echo why >&2; exit 1"])
            .outcome()
            .unwrap();
        assert_eq!(out.status.code(), Some(1));
        assert_eq!(out.stdout, b"said\n");
        assert_eq!(out.stderr, b"why\n");
        let err = out.check().unwrap_err().to_string();
        assert!(err.contains("exit code 1") && err.contains("why"), "{err}");
    }

    #[test]
    fn output_returns_stdout() {
        assert_eq!(Cmd::new("echo").arg("hi").output().unwrap(), b"hi\n");
    }
}
