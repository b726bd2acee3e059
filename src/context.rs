//! The build context: the validated profile, where its lock lives, the cache,
//! the HTTP client and the mirror choices, handed to each stage. Stages read
//! it; none of them keeps global state.

use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::fetch::Cache;
use crate::http::Http;
use crate::lock::Lock;
use crate::profile::{self, Profile, Repository};
use crate::repo::mirror::{self, Mirror, Overrides};
use crate::repo::sources::APT_ETC;

/// Everything a stage needs to know about this run.
pub struct Context {
    pub profile: Profile,
    pub lock_path: PathBuf,
    pub cache: Cache,
    pub http: Http,
    pub mirrors: Overrides,
    /// Where the host's apt sources live (a test may point elsewhere).
    pub apt_etc: PathBuf,
}

impl Context {
    /// Loads the profile and opens the cache.
    pub fn new(profile_path: &Path, lock: Option<PathBuf>, mirrors: Overrides) -> Result<Self> {
        let profile = profile::load(profile_path)?;
        let lock_path = lock.unwrap_or_else(|| Lock::default_path(&profile.path));
        Ok(Self {
            profile,
            lock_path,
            cache: Cache::open_default()?,
            http: Http::new(),
            mirrors,
            apt_etc: PathBuf::from(APT_ETC),
        })
    }

    /// The mirror URL that serves `repo`, logged once per call site.
    pub fn mirror(&self, repo: &Repository) -> Result<Mirror> {
        let m = mirror::choose(repo, &self.mirrors, &self.apt_etc)?;
        tracing::debug!(
            "repository {}: mirror {} (from {})",
            repo.name,
            m.url,
            m.from
        );
        Ok(m)
    }

    /// The profile's repository called `name`.
    pub fn repository(&self, name: &str) -> Option<&Repository> {
        self.profile.repositories.iter().find(|r| r.name == name)
    }
}
