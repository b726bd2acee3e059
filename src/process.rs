//! The one wrapper for external commands.
//!
//! Stage code never builds `std::process::Command` by hand: it uses [`Cmd`],
//! which logs the shell-escaped command line at debug level, sets stdin to
//! null, captures stderr, and on failure returns an error that names the
//! command line, the exit status (or the signal) and the tail of stderr.

use std::ffi::{OsStr, OsString};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};

use anyhow::{Context, Result, bail};

/// How many bytes of stderr go into an error message.
const STDERR_TAIL: usize = 4096;

/// A command to run. Build with [`Cmd::new`], add arguments, then [`Cmd::run`]
/// or [`Cmd::output`].
pub struct Cmd {
    program: OsString,
    args: Vec<OsString>,
    cwd: Option<std::path::PathBuf>,
    env: Vec<(OsString, OsString)>,
}

impl Cmd {
    pub fn new(program: impl AsRef<OsStr>) -> Self {
        Self {
            program: program.as_ref().to_owned(),
            args: Vec::new(),
            cwd: None,
            env: Vec::new(),
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
        c.args(&self.args).stdin(Stdio::null());
        if let Some(d) = &self.cwd {
            c.current_dir(d);
        }
        for (k, v) in &self.env {
            c.env(k, v);
        }
        c
    }

    /// Runs the command; stdout is captured and returned.
    pub fn output(&self) -> Result<Vec<u8>> {
        let line = self.display();
        tracing::debug!("running {line}");
        let out = self
            .command()
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .output()
            .with_context(|| format!("starting `{line}`"))?;
        check(&line, out.status, &out.stderr)?;
        Ok(out.stdout)
    }

    /// Runs the command, discarding stdout.
    pub fn run(&self) -> Result<()> {
        self.output().map(drop)
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
    fn output_returns_stdout() {
        assert_eq!(Cmd::new("echo").arg("hi").output().unwrap(), b"hi\n");
    }
}
