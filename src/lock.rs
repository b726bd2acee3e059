//! craton.lock: the resolved package set and the artifact digests, as sorted,
//! stable TOML. Written by `craton lock`, read by `fetch` and `build`.
//!
//! The lock also records the profile inputs it was made from (repositories,
//! include/exclude lists, artifact URLs and digests), so that `--locked` can
//! say exactly how a profile and its lock disagree. It never records a mirror
//! host: packages are named by repository, suite and pool path.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::digest::Sha256;
use crate::error::bad_input;
use crate::profile::Profile;

/// The lock format version written at the top of every lock.
pub const LOCK_VERSION: u32 = 1;
/// The lock's file name when it sits beside its profile.
pub const LOCK_FILE: &str = "craton.lock";
/// The lock is public data that is committed beside the profile, as
/// Cargo.lock is: readable by all.
const LOCK_MODE: u32 = 0o644;

/// A whole lockfile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Lock {
    pub version: u32,
    pub inputs: Inputs,
    #[serde(default, rename = "package")]
    pub packages: Vec<LockedPackage>,
    #[serde(default, rename = "artifact")]
    pub artifacts: Vec<LockedArtifact>,
    /// The tools tree's packages (build-only programs), a separate closure.
    #[serde(default, rename = "tool")]
    pub tools: Vec<LockedPackage>,
    /// The initrd's packages ([initrd] packages), a separate closure.
    #[serde(default, rename = "initrd-package")]
    pub initrd: Vec<LockedPackage>,
    /// The Date of each suite's InRelease that the lock was resolved from:
    /// the next resolution refuses an older one (`resolve`).
    #[serde(default, rename = "release")]
    pub releases: Vec<LockedRelease>,
}

/// One suite's InRelease as the lock was resolved from it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct LockedRelease {
    pub repository: String,
    pub suite: String,
    /// Its `Date` field, in Unix seconds.
    pub date: i64,
}

/// What the lock was resolved from; compared by `--locked`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Inputs {
    pub include: Vec<String>,
    pub exclude: Vec<String>,
    /// The tools tree's requested packages (craton's own list).
    pub tools: Vec<String>,
    /// The initrd's requested packages.
    #[serde(default)]
    pub initrd: Vec<String>,
    /// repository name -> "suite suite ... / component component ..."
    pub repositories: BTreeMap<String, String>,
    /// `[packages] path-exclude` and `path-include` as the build applies
    /// them (craton's defaults included): they decide the base tree.
    #[serde(default)]
    pub path_exclude: Vec<String>,
    #[serde(default)]
    pub path_include: Vec<String>,
}

/// One locked package.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct LockedPackage {
    pub name: String,
    pub version: String,
    pub arch: String,
    pub repository: String,
    pub suite: String,
    /// Pool path relative to the mirror root (Packages `Filename:`).
    pub filename: String,
    pub size: u64,
    pub sha256: Sha256,
}

/// One locked artifact.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct LockedArtifact {
    pub name: String,
    pub url: String,
    pub sha256: Sha256,
}

impl Inputs {
    /// The inputs of a profile, normalised (sorted) so that order in the
    /// profile does not matter.
    pub fn of(profile: &Profile) -> Self {
        let include = sorted(&profile.image_packages());
        let exclude = sorted(&profile.packages.exclude);
        let repositories = profile
            .repositories
            .iter()
            .map(|r| {
                let v = format!("{} / {}", r.suites.join(" "), r.components.join(" "));
                (r.name.clone(), v)
            })
            .collect();
        let tools = sorted(&profile.tools.packages);
        let initrd = sorted(&profile.initrd.packages);
        Self {
            include,
            exclude,
            tools,
            initrd,
            repositories,
            path_exclude: sorted(&profile.packages.paths.exclude),
            path_include: sorted(&profile.packages.paths.include),
        }
    }
}

/// A list as the lock records it: sorted, without repeats.
fn sorted(list: &[String]) -> Vec<String> {
    let mut v = list.to_vec();
    v.sort();
    v.dedup();
    v
}

impl Lock {
    /// Builds a lock, sorting everything so the text is stable.
    pub fn new(
        inputs: Inputs,
        mut packages: Vec<LockedPackage>,
        mut artifacts: Vec<LockedArtifact>,
        mut tools: Vec<LockedPackage>,
        mut initrd: Vec<LockedPackage>,
    ) -> Self {
        packages.sort();
        artifacts.sort();
        tools.sort();
        initrd.sort();
        Self {
            version: LOCK_VERSION,
            inputs,
            packages,
            artifacts,
            tools,
            initrd,
            releases: Vec::new(),
        }
    }

    /// The same lock, recording the suites' InRelease dates.
    pub fn with_releases(mut self, mut releases: Vec<LockedRelease>) -> Self {
        releases.sort();
        self.releases = releases;
        self
    }

    /// The artifacts a profile pins, as lock entries.
    pub fn artifacts_of(profile: &Profile) -> Vec<LockedArtifact> {
        profile
            .artifacts
            .iter()
            .map(|a| LockedArtifact {
                name: a.name.clone(),
                url: a.url.clone(),
                sha256: a.sha256,
            })
            .collect()
    }

    /// The default lock path for a profile: craton.lock beside it.
    pub fn default_path(profile: &Path) -> PathBuf {
        profile.parent().unwrap_or(Path::new(".")).join(LOCK_FILE)
    }

    pub fn to_toml(&self) -> String {
        let body = toml::to_string(self).expect("a lock always serializes");
        format!("# craton.lock: written by `craton lock`; do not edit by hand.\n{body}")
    }

    pub fn from_toml(text: &str, path: &Path) -> Result<Self> {
        let lock: Lock = toml::from_str(text)
            .map_err(|e| bad_input(format!("{}: {}", path.display(), e.to_string().trim_end())))?;
        if lock.version != LOCK_VERSION {
            return Err(bad_input(format!(
                "{}: unsupported lock version: got {}, expected {LOCK_VERSION}",
                path.display(),
                lock.version
            )));
        }
        lock.validate()
            .map_err(|e| bad_input(format!("{}: {e}", path.display())))?;
        Ok(lock)
    }

    /// Checks every name, version, architecture, suite and pool path with
    /// the rules the profile and the package indexes are held to: the lock
    /// is input (hand-edited, or from elsewhere), and its values become
    /// file names in the tree and paths of mirror URLs, so `../x` must not
    /// get that far. The first wrong value, named by its table and key.
    fn validate(&self) -> std::result::Result<(), String> {
        use crate::profile::names;
        let field = |what: &str, key: &str, value: &str, rule: names::Rule| {
            rule.map_err(|why| format!("{what}: {key} `{value}` {why}"))
        };
        let sets = [
            ("package", &self.packages),
            ("tool", &self.tools),
            ("initrd-package", &self.initrd),
        ];
        for (table, set) in sets {
            for (i, p) in set.iter().enumerate() {
                let what = format!("[[{table}]] #{} ({:?})", i + 1, p.name);
                field(&what, "name", &p.name, names::archive_package(&p.name))?;
                field(
                    &what,
                    "version",
                    &p.version,
                    crate::repo::version::Version::parse(&p.version)
                        .map(|_| ())
                        .map_err(|e| format!("is not a Debian version: {e:#}")),
                )?;
                field(&what, "arch", &p.arch, names::debian_arch(&p.arch))?;
                field(
                    &what,
                    "repository",
                    &p.repository,
                    names::entry_name(&p.repository),
                )?;
                field(&what, "suite", &p.suite, names::archive_word(&p.suite))?;
                field(
                    &what,
                    "filename",
                    &p.filename,
                    names::pool_path(&p.filename),
                )?;
            }
        }
        for (i, r) in self.releases.iter().enumerate() {
            let what = format!("[[release]] #{} ({:?})", i + 1, r.suite);
            field(
                &what,
                "repository",
                &r.repository,
                names::entry_name(&r.repository),
            )?;
            field(&what, "suite", &r.suite, names::archive_word(&r.suite))?;
        }
        for (i, a) in self.artifacts.iter().enumerate() {
            let what = format!("[[artifact]] #{} ({:?})", i + 1, a.name);
            field(&what, "name", &a.name, names::entry_name(&a.name))?;
        }
        let inputs = |key: &str, list: &[String], rule: fn(&str) -> names::Rule| {
            list.iter()
                .try_for_each(|v| field("[inputs]", key, v, rule(v)))
        };
        inputs("include", &self.inputs.include, names::package)?;
        inputs("exclude", &self.inputs.exclude, names::package)?;
        inputs("tools", &self.inputs.tools, names::package)?;
        inputs("initrd", &self.inputs.initrd, names::package)?;
        let pattern = |p: &str| crate::deb::filter::check_pattern(p).map_err(|e| e.to_string());
        inputs("path-exclude", &self.inputs.path_exclude, pattern)?;
        inputs("path-include", &self.inputs.path_include, pattern)?;
        for name in self.inputs.repositories.keys() {
            field("[inputs]", "repositories", name, names::entry_name(name))?;
        }
        Ok(())
    }

    pub fn read(path: &Path) -> Result<Self> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        Self::from_toml(&text, path)
    }

    /// Writes the lock atomically (temporary file beside it, then rename).
    pub fn write(&self, path: &Path) -> Result<()> {
        crate::files::write_atomic(path, self.to_toml().as_bytes(), LOCK_MODE)
    }

    /// The differences between what a profile asks for and what this lock
    /// was made from; empty when they agree.
    pub fn differences(&self, profile: &Profile) -> Vec<String> {
        let mut out = Vec::new();
        let want = Inputs::of(profile);
        diff_lists(
            "package",
            "[packages] include",
            &want.include,
            &self.inputs.include,
            &mut out,
        );
        diff_lists(
            "package",
            "[packages] exclude",
            &want.exclude,
            &self.inputs.exclude,
            &mut out,
        );
        diff_lists(
            "pattern",
            "[packages] path-exclude",
            &want.path_exclude,
            &self.inputs.path_exclude,
            &mut out,
        );
        diff_lists(
            "pattern",
            "[packages] path-include",
            &want.path_include,
            &self.inputs.path_include,
            &mut out,
        );
        for t in want.tools.iter().filter(|t| !self.inputs.tools.contains(t)) {
            out.push(format!(
                "tools package `{t}` is not in the lock (made by another craton?)"
            ));
        }
        diff_lists(
            "package",
            "[initrd] packages",
            &want.initrd,
            &self.inputs.initrd,
            &mut out,
        );
        for t in self.inputs.tools.iter().filter(|t| !want.tools.contains(t)) {
            out.push(format!(
                "tools package `{t}` is in the lock but no longer a craton tool"
            ));
        }
        for (name, v) in &want.repositories {
            match self.inputs.repositories.get(name) {
                None => out.push(format!(
                    "repository `{name}` is in the profile but not in the lock"
                )),
                Some(l) if l != v => out.push(format!(
                    "repository `{name}` is `{v}` in the profile but `{l}` in the lock"
                )),
                Some(_) => {}
            }
        }
        for name in self.inputs.repositories.keys() {
            if !want.repositories.contains_key(name) {
                out.push(format!(
                    "repository `{name}` is in the lock but not in the profile"
                ));
            }
        }
        let want_art = Self::artifacts_of(profile);
        for a in &want_art {
            match self.artifacts.iter().find(|l| l.name == a.name) {
                None => out.push(format!(
                    "artifact `{}` is in the profile but not in the lock",
                    a.name
                )),
                Some(l) if l != a => {
                    let mut s = format!("artifact `{}` differs:", a.name);
                    if l.url != a.url {
                        let _ = write!(
                            s,
                            " url is {} in the profile but {} in the lock",
                            a.url, l.url
                        );
                    }
                    if l.sha256 != a.sha256 {
                        let _ = write!(
                            s,
                            " sha256 is {} in the profile but {} in the lock",
                            a.sha256, l.sha256
                        );
                    }
                    out.push(s);
                }
                Some(_) => {}
            }
        }
        for l in &self.artifacts {
            if !want_art.iter().any(|a| a.name == l.name) {
                out.push(format!(
                    "artifact `{}` is in the lock but not in the profile",
                    l.name
                ));
            }
        }
        out
    }

    /// Fails with bad input (exit 2) naming every difference, for `--locked`.
    pub fn ensure_matches(&self, profile: &Profile, lock_path: &Path) -> Result<()> {
        let diffs = self.differences(profile);
        if diffs.is_empty() {
            return Ok(());
        }
        Err(bad_input(format!(
            "{} does not match {} (--locked refuses to re-resolve; run `craton lock` to update it):\n  {}",
            lock_path.display(),
            profile.path.display(),
            diffs.join("\n  ")
        )))
    }

    /// The lock's digest, recorded in manifests and used as a cache key.
    pub fn digest(&self) -> Sha256 {
        Sha256::of(self.to_toml().as_bytes())
    }
}

/// A digest of a set of locked packages for cache keys: what is made from
/// them (`what`), craton's version, the recipe number of the stage, and
/// each package's name, version, architecture and digest.
pub fn set_digest(what: &str, recipe: u32, packages: &[LockedPackage]) -> Sha256 {
    let mut text = format!(
        "craton {} {what} recipe {recipe}\n",
        env!("CARGO_PKG_VERSION")
    );
    for p in packages {
        let _ = writeln!(text, "{} {} {} {}", p.name, p.version, p.arch, p.sha256);
    }
    Sha256::of(text.as_bytes())
}

fn diff_lists(what: &str, key: &str, want: &[String], have: &[String], out: &mut Vec<String>) {
    for w in want.iter().filter(|w| !have.contains(w)) {
        out.push(format!(
            "{what} `{w}` is in the profile's {key} but not in the lock"
        ));
    }
    for h in have.iter().filter(|h| !want.contains(h)) {
        out.push(format!(
            "{what} `{h}` is in the lock's {key} but not in the profile"
        ));
    }
}

/// A locked amd64 package of trixie's main archive, its pool path as
/// Debian's, its digest made up from its name and version (for tests).
#[cfg(test)]
pub(crate) fn test_package(name: &str, version: &str) -> LockedPackage {
    let first = name.chars().next().unwrap_or('x');
    LockedPackage {
        name: name.into(),
        version: version.into(),
        arch: "amd64".into(),
        repository: "debian".into(),
        suite: "trixie".into(),
        filename: format!("pool/main/{first}/{name}/{name}_{version}_amd64.deb"),
        size: 1000,
        sha256: Sha256::of(format!("{name} {version}").as_bytes()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small profile, loaded the way users' profiles are.
    fn profile() -> Profile {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.toml");
        std::fs::write(
            &path,
            r#"schema = 1
[image]
name = "x"
version = "1"
[[repository]]
name = "debian"
suites = ["trixie", "trixie-updates"]
[packages]
include = ["systemd", "bash"]
[[artifact]]
name = "rkt"
url = "https://example.invalid/rkt.tar.gz"
sha256 = "0000000000000000000000000000000000000000000000000000000000000000"
files = [{ destination = "/usr/bin/rkt", mode = "0755" }]
"#,
        )
        .unwrap();
        crate::profile::load(&path).unwrap()
    }

    use super::test_package as pkg;

    fn lock_of(p: &Profile, pkgs: Vec<LockedPackage>) -> Lock {
        Lock::new(
            Inputs::of(p),
            pkgs,
            Lock::artifacts_of(p),
            vec![pkg("e2fsprogs", "1.47.2-3")],
            vec![],
        )
    }

    #[test]
    fn round_trip_and_stable_order() {
        let p = profile();
        let a = lock_of(&p, vec![pkg("systemd", "257.9-1"), pkg("bash", "5.2.37-2")]);
        let b = lock_of(&p, vec![pkg("bash", "5.2.37-2"), pkg("systemd", "257.9-1")]);
        assert_eq!(a.to_toml(), b.to_toml(), "input order leaks into the lock");
        let text = a.to_toml();
        let back = Lock::from_toml(&text, Path::new("craton.lock")).unwrap();
        assert_eq!(back, a);
        assert_eq!(back.to_toml(), text);
        assert_eq!(back.digest(), a.digest());
        // Packages are sorted by name and written as [[package]] tables.
        let bash = text.find("name = \"bash\"").unwrap();
        assert!(bash < text.find("name = \"systemd\"").unwrap());
        assert!(text.contains("[[package]]") && text.contains("[[artifact]]"));
    }

    #[test]
    fn write_is_atomic_and_readable() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(LOCK_FILE);
        let lock = lock_of(&profile(), vec![pkg("bash", "5.2.37-2")]);
        lock.write(&path).unwrap();
        assert_eq!(Lock::read(&path).unwrap(), lock);
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().flatten().collect();
        assert_eq!(names.len(), 1, "temporary files left beside the lock");
    }

    #[test]
    fn differences_name_what_changed() {
        let p = profile();
        let lock = lock_of(&p, vec![pkg("bash", "5.2.37-2")]);
        assert!(lock.differences(&p).is_empty());

        let mut q = p.clone();
        q.packages.include.push("docker.io".into());
        q.packages.include.retain(|n| n != "bash");
        q.repositories[0].suites.pop();
        q.artifacts[0].sha256 = Sha256::of(b"other");
        let d = lock.differences(&q);
        assert_eq!(d.len(), 4, "{d:#?}");
        assert!(d[0].contains("`docker.io` is in the profile's [packages] include"));
        assert!(d[1].contains("`bash` is in the lock's [packages] include"));
        assert!(d[2].contains("repository `debian` is `trixie / main` in the profile"));
        assert!(d[3].starts_with("artifact `rkt` differs: sha256 is"));
        let err = lock
            .ensure_matches(&q, Path::new("craton.lock"))
            .unwrap_err();
        assert!(crate::error::is_bad_input(&err));
    }

    /// Issue #11: from_toml took any string, so a hand-edited filename
    /// such as `../x` (or a name with a `/`) reached host paths when the
    /// build staged the .debs in the tree and registered them for dpkg.
    #[test]
    fn hand_edited_values_that_would_leave_their_place_are_bad_input() {
        let good = lock_of(&profile(), vec![pkg("bash", "5.2.37-2")]).to_toml();
        for (from, to, says) in [
            (
                "filename = \"pool/main/b/bash/bash_5.2.37-2_amd64.deb\"",
                "filename = \"../../etc/x.deb\"",
                "[[package]] #1 (\"bash\"): filename `../../etc/x.deb` is not a relative path",
            ),
            (
                "filename = \"pool/main/b/bash/bash_5.2.37-2_amd64.deb\"",
                "filename = \"/etc/passwd\"",
                "filename `/etc/passwd` is not a relative path",
            ),
            (
                "name = \"bash\"\nversion",
                "name = \"../bash\"\nversion",
                "name `../bash` is not a Debian package name",
            ),
            (
                "version = \"5.2.37-2\"",
                "version = \"5.2/../../x\"",
                "version `5.2/../../x` is not a Debian version",
            ),
            (
                "arch = \"amd64\"",
                "arch = \"amd64/../x\"",
                "arch `amd64/../x` is not a Debian architecture",
            ),
            (
                "suite = \"trixie\"",
                "suite = \"..\"",
                "suite `..` is not a suite or component name",
            ),
            (
                "name = \"e2fsprogs\"",
                "name = \"e2fs progs\"",
                "[[tool]] #1 (\"e2fs progs\"): name",
            ),
        ] {
            assert!(good.contains(from), "{from} not in\n{good}");
            let text = good.replacen(from, to, 1);
            let err = Lock::from_toml(&text, Path::new("l")).unwrap_err();
            assert!(crate::error::is_bad_input(&err), "{err:#}");
            let msg = err.to_string();
            assert!(msg.starts_with("l: ") && msg.contains(says), "{msg}");
        }
        Lock::from_toml(&good, Path::new("l")).unwrap();
    }

    #[test]
    fn unknown_version_or_key_is_bad_input() {
        let text = lock_of(&profile(), vec![])
            .to_toml()
            .replace("version = 1", "version = 7");
        let err = Lock::from_toml(&text, Path::new("l")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "l: unsupported lock version: got 7, expected 1"
        );
        let err = Lock::from_toml("version = 1\nbogus = 2\n", Path::new("l")).unwrap_err();
        assert!(crate::error::is_bad_input(&err));
    }
}
