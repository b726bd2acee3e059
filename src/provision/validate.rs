//! Checks an Ignition config with ignition-validate (Debian's `ignition`
//! package) run from the profile's tools tree, so that a bad config is
//! refused on the release engineer's machine rather than on a machine's
//! first boot. The lock resolves the tools set and the initrd's packages
//! from the same repositories, so the validator is the Ignition the image
//! runs.
//!
//! It sorts the program's answer into a valid config (with its warnings),
//! an invalid one (bad input, with the program's own lines) and a failure
//! to run it. Of the config it reads nothing but the spec version; what
//! Ignition accepts is Ignition's to say.

use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};

use crate::context::{Context, Options};
use crate::error::bad_input;
use crate::lock::Lock;
use crate::tools::ToolsTree;
use crate::{fetch, resolve};

/// The program, in the tools tree.
pub const PROGRAM: &str = "ignition-validate";
/// The tools package that brings it (in `profile::DEFAULT_TOOLS_PACKAGES`).
pub const PACKAGE: &str = "ignition";
/// ignition-validate's exit status for a config it refuses: Ignition's
/// validate/main.go exits 1 on a config it cannot read or parse and on a
/// report with an error (2 is Go's flag package refusing the command line:
/// craton's mistake, not the config's).
const EXIT_INVALID: i32 = 1;

/// An Ignition config read from a file.
#[derive(Debug, Clone)]
pub struct Config {
    pub path: PathBuf,
    pub bytes: Vec<u8>,
}

impl Config {
    /// Reads the file; a missing or unreadable one is bad input.
    pub fn read(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|e| {
            bad_input(format!(
                "{}: cannot read the Ignition config: {e}",
                path.display()
            ))
        })?;
        Ok(Self {
            path: path.to_owned(),
            bytes,
        })
    }

    /// `ignition.version`, when the file is JSON that has one.
    pub fn spec(&self) -> Option<String> {
        let v: serde_json::Value = serde_json::from_slice(&self.bytes).ok()?;
        Some(v.pointer("/ignition/version")?.as_str()?.to_owned())
    }
}

/// A config ignition-validate accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Valid {
    /// The config's `ignition.version`, e.g. "3.3.0".
    pub spec: String,
    /// ignition-validate's warnings, one line each as it prints them
    /// ("warning at $.foo, line 1 col 33: Unused key foo").
    pub warnings: Vec<String>,
}

/// ignition-validate in a tools tree.
#[derive(Debug, Clone)]
pub struct Validator {
    tools: ToolsTree,
    /// The Debian version of the `ignition` package that brings it.
    pub version: String,
}

impl Validator {
    /// The validator of `lock`'s tools tree (made or not); bad input when
    /// the tools set has no `ignition`, as with a profile's own [tools]
    /// packages that leave it out.
    pub fn new(tools: ToolsTree, lock: &Lock) -> Result<Self> {
        let Some(pkg) = lock.tools.iter().find(|p| p.name == PACKAGE) else {
            return Err(bad_input(format!(
                "the tools set has no `{PACKAGE}` package, which brings {PROGRAM}: \
                 add it to [tools] packages (craton's default list has it)"
            )));
        };
        Ok(Self {
            tools,
            version: pkg.version.clone(),
        })
    }

    /// The validator of `options`' profile: its lock resolved when missing
    /// or stale (refused with `--locked`), as every command does; then only
    /// the tools set fetched, and unpacked once per set into the cache.
    pub fn prepare(options: &Options) -> Result<Self> {
        let ctx = Context::new(options)?;
        let lock = resolve::run(&ctx)?;
        let v = Self::new(ToolsTree::for_lock(&ctx.cache, &lock), &lock)
            .with_context(|| ctx.profile.path.display().to_string())?;
        fetch::run_tools(&ctx, &lock)?;
        v.tools.ensure(&ctx.cache, &lock, ctx.jobs)?;
        Ok(v)
    }

    /// Runs ignition-validate on `config`: a config it refuses is bad input
    /// carrying its lines; a crash or a signal is a failure.
    pub fn check(&self, config: &Config) -> Result<Valid> {
        tracing::debug!(
            "checking {} with {PROGRAM} of {PACKAGE} {}",
            config.path.display(),
            self.version
        );
        let out = self
            .tools
            .cmd(PROGRAM)?
            .arg(operand(&config.path))
            .outcome()?;
        // The report goes to stdout, a file it cannot parse to stderr.
        let said = lines(&[&out.stdout, &out.stderr]);
        if out.status.code() == Some(EXIT_INVALID) {
            return Err(bad_input(invalid_message(config, &self.version, &said)));
        }
        out.check()?;
        Ok(Valid {
            spec: config.spec().unwrap_or_else(|| "unknown".to_owned()),
            warnings: said,
        })
    }
}

/// `path` as a file operand: a relative path that starts with `-` would be
/// read as a flag (Go's flag package), so it gets `./` in front.
fn operand(path: &Path) -> PathBuf {
    if path.is_relative() && path.as_os_str().as_bytes().starts_with(b"-") {
        Path::new(".").join(path)
    } else {
        path.to_owned()
    }
}

/// The non-blank lines of each output, in order.
fn lines(outputs: &[&[u8]]) -> Vec<String> {
    outputs
        .iter()
        .flat_map(|o| {
            String::from_utf8_lossy(o)
                .lines()
                .map(str::trim_end)
                .filter(|l| !l.trim().is_empty())
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .collect()
}

/// The error for a refused config: the file, the validator's version (what
/// it accepts depends on it) and its own lines, indented.
fn invalid_message(config: &Config, version: &str, said: &[String]) -> String {
    let mut msg = format!(
        "{}: not a valid Ignition config ({PROGRAM} of {PACKAGE} {version})",
        config.path.display()
    );
    for l in said {
        msg.push_str("\n  ");
        msg.push_str(l);
    }
    msg
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::is_bad_input;

    fn config(text: &str) -> Config {
        Config {
            path: PathBuf::from("x.ign"),
            bytes: text.as_bytes().to_vec(),
        }
    }

    #[test]
    fn spec_is_the_ignition_version() {
        assert_eq!(
            config(r#"{"ignition":{"version":"3.3.0"}}"#)
                .spec()
                .as_deref(),
            Some("3.3.0")
        );
        assert_eq!(config(r#"{"ignition":{}}"#).spec(), None);
        assert_eq!(config("{").spec(), None);
    }

    #[test]
    fn a_file_named_like_a_flag_stays_a_file() {
        assert_eq!(operand(Path::new("-x.ign")), Path::new("./-x.ign"));
        assert_eq!(operand(Path::new("a/-x.ign")), Path::new("a/-x.ign"));
        assert_eq!(operand(Path::new("/tmp/-x.ign")), Path::new("/tmp/-x.ign"));
    }

    #[test]
    fn a_missing_file_is_bad_input_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("missing.ign");
        let err = Config::read(&path).unwrap_err();
        assert!(is_bad_input(&err));
        let msg = format!("{err:#}");
        assert!(msg.starts_with(&path.display().to_string()), "{msg}");
        assert!(msg.contains("cannot read"), "{msg}");
    }

    #[test]
    fn the_refusal_names_the_file_and_quotes_the_validator() {
        let said = lines(&[
            b"error at $.storage.files.0.path, line 1 col 61: path not absolute\n\n",
            b"",
        ]);
        let msg = invalid_message(&config("{}"), "2.14.0+ds1-1+b19", &said);
        assert_eq!(
            msg,
            "x.ign: not a valid Ignition config (ignition-validate of ignition \
             2.14.0+ds1-1+b19)\n  error at $.storage.files.0.path, line 1 col 61: \
             path not absolute"
        );
    }

    /// A lock whose tools set is `tools` (name, version).
    fn lock_with_tools(tools: &[(&str, &str)]) -> Lock {
        let text = "version = 1\n[inputs]\ninclude = []\nexclude = []\ntools = []\n\
                    repositories = {}\n";
        let mut lock = Lock::from_toml(text, Path::new("craton.lock")).unwrap();
        lock.tools = tools
            .iter()
            .map(|(n, v)| crate::lock::test_package(n, v))
            .collect();
        lock
    }

    #[test]
    fn the_validator_is_the_locked_ignition() {
        let lock = lock_with_tools(&[("e2fsprogs", "1.47.2-3"), ("ignition", "2.14.0+ds1-1+b19")]);
        let v = Validator::new(ToolsTree::at("/nonexistent"), &lock).unwrap();
        assert_eq!(v.version, "2.14.0+ds1-1+b19");
    }

    #[test]
    fn a_tools_set_without_ignition_is_bad_input() {
        let lock = lock_with_tools(&[("e2fsprogs", "1.47.2-3")]);
        let err = Validator::new(ToolsTree::at("/nonexistent"), &lock).unwrap_err();
        assert!(is_bad_input(&err));
        assert!(format!("{err}").contains("[tools] packages"), "{err}");
    }
}
