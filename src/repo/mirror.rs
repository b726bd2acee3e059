//! Which mirror URL serves a repository. In order, the first that is set:
//! the command line (`--mirror`, `--security-mirror`), the environment
//! (`CRATON_MIRROR`, `CRATON_SECURITY_MIRROR`), the profile's
//! `[[repository]] mirror`, then the host's apt sources. An explicit main
//! mirror ending in `/debian` also serves the security archive at the sibling
//! `/debian-security` when nothing more specific is set, as Debian's own
//! mirror network lays them out. craton itself never names a mirror host.

use std::path::Path;

use anyhow::Result;

use super::sources::{self, AptSource};
use crate::error::bad_input;
use crate::profile::{Archive, Repository};

/// Environment variable naming the main archive mirror.
pub const MIRROR_ENV: &str = "CRATON_MIRROR";
/// Environment variable naming the security archive mirror.
pub const SECURITY_MIRROR_ENV: &str = "CRATON_SECURITY_MIRROR";

/// Mirrors given on the command line or in the environment.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub mirror: Option<String>,
    pub security_mirror: Option<String>,
}

/// A chosen mirror and where the choice came from (for the log).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mirror {
    pub url: String,
    pub from: String,
}

impl Overrides {
    /// Flags first, then the environment.
    pub fn from_flags_and_env(mirror: Option<String>, security: Option<String>) -> Self {
        let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        Self {
            mirror: mirror.or_else(|| env(MIRROR_ENV)).map(trim),
            security_mirror: security.or_else(|| env(SECURITY_MIRROR_ENV)).map(trim),
        }
    }
}

fn trim(s: String) -> String {
    s.trim_end_matches('/').to_owned()
}

/// Chooses the mirror for `repo`, reading the host's apt sources below `apt_etc`
/// only when nothing explicit is set.
pub fn choose(repo: &Repository, o: &Overrides, apt_etc: &Path) -> Result<Mirror> {
    let found = |url: &str, from: &str| {
        Ok(Mirror {
            url: url.to_owned(),
            from: from.to_owned(),
        })
    };
    match repo.archive {
        Archive::Debian => {
            if let Some(m) = &o.mirror {
                return found(m, "--mirror / CRATON_MIRROR");
            }
        }
        Archive::DebianSecurity => {
            if let Some(m) = &o.security_mirror {
                return found(m, "--security-mirror / CRATON_SECURITY_MIRROR");
            }
            if let Some(m) = o.mirror.as_deref().and_then(security_sibling) {
                return found(&m, "beside --mirror / CRATON_MIRROR");
            }
        }
    }
    if let Some(m) = &repo.mirror {
        return found(m, "the profile");
    }
    let host = sources::read(apt_etc)?;
    if let Some(s) = from_host(repo.archive, &host) {
        return found(
            &s.uri,
            &format!("the host's apt sources ({})", s.file.display()),
        );
    }
    let (flag, env) = match repo.archive {
        Archive::Debian => ("--mirror", MIRROR_ENV),
        Archive::DebianSecurity => ("--security-mirror", SECURITY_MIRROR_ENV),
    };
    Err(bad_input(format!(
        "no mirror for repository `{}`: none of the apt sources in {} is a {} archive; \
         set `mirror` in the profile's [[repository]], pass {flag} URL or set {env}",
        repo.name,
        apt_etc.display(),
        archive_dir(repo.archive)
    )))
}

fn archive_dir(a: Archive) -> &'static str {
    match a {
        Archive::Debian => "debian",
        Archive::DebianSecurity => "debian-security",
    }
}

/// `http://x/debian` -> `http://x/debian-security`.
fn security_sibling(main: &str) -> Option<String> {
    main.strip_suffix("/debian")
        .map(|base| format!("{base}/debian-security"))
}

/// The first host source whose URI path ends with the archive's folder name
/// (`/debian` or `/debian-security`), which is how Debian mirrors are laid
/// out; other third-party repositories are ignored.
fn from_host(archive: Archive, host: &[AptSource]) -> Option<&AptSource> {
    let dir = format!("/{}", archive_dir(archive));
    host.iter().find(|s| s.uri.ends_with(&dir))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::Keyring;

    fn repo(archive: Archive, mirror: Option<&str>) -> Repository {
        Repository {
            name: "r".into(),
            archive,
            suites: vec!["trixie".into()],
            components: vec!["main".into()],
            mirror: mirror.map(str::to_owned),
            keyring: Keyring::Builtin,
        }
    }

    fn host() -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join("sources.list.d")).unwrap();
        std::fs::write(
            d.path().join("sources.list.d/debian.sources"),
            "Types: deb\nURIs: http://third.example/node\nSuites: nodistro\n\n\
             Types: deb\nURIs: http://host.example/debian\nSuites: bookworm\n\n\
             Types: deb\nURIs: http://host.example/debian-security\nSuites: bookworm-security\n",
        )
        .unwrap();
        d
    }

    #[test]
    fn precedence_flag_profile_host() {
        let h = host();
        let none = Overrides::default();
        let flag = Overrides {
            mirror: Some("http://flag.example/debian".into()),
            security_mirror: None,
        };
        let main = repo(Archive::Debian, Some("http://profile.example/debian"));
        assert_eq!(
            choose(&main, &flag, h.path()).unwrap().url,
            "http://flag.example/debian"
        );
        assert_eq!(
            choose(&main, &none, h.path()).unwrap().url,
            "http://profile.example/debian"
        );
        let plain = repo(Archive::Debian, None);
        assert_eq!(
            choose(&plain, &none, h.path()).unwrap().url,
            "http://host.example/debian"
        );
        let sec = repo(Archive::DebianSecurity, None);
        assert_eq!(
            choose(&sec, &none, h.path()).unwrap().url,
            "http://host.example/debian-security"
        );
        assert_eq!(
            choose(&sec, &flag, h.path()).unwrap().url,
            "http://flag.example/debian-security"
        );
    }

    #[test]
    fn no_mirror_is_a_clear_bad_input() {
        let empty = tempfile::tempdir().unwrap();
        let err = choose(
            &repo(Archive::Debian, None),
            &Overrides::default(),
            empty.path(),
        )
        .unwrap_err();
        assert!(crate::error::is_bad_input(&err));
        let msg = err.to_string();
        assert!(msg.contains("no mirror for repository `r`"), "{msg}");
        assert!(
            msg.contains("--mirror") && msg.contains("CRATON_MIRROR"),
            "{msg}"
        );
    }
}
