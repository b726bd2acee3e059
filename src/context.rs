//! What the stages read, in two phases (a typestate, as the lock changes
//! what is known):
//!
//! - [`Context`]: one run of a command before the lock is settled: the
//!   validated profile, where its lock lives, the cache, the HTTP client,
//!   the mirror choices and the download settings. The resolve and fetch
//!   stages take it.
//! - [`Build`]: a build once the lock is settled: the context, the lock,
//!   the tools tree's place, the platform, the epoch, the work folder and
//!   the seed of every identifier. Every later stage takes it.
//!
//! Stages read these; none keeps global state.

use std::fs;
use std::path::PathBuf;

use anyhow::{Context as _, Result};

use crate::cache::Cache;
use crate::digest::Sha256;
use crate::files::{CachedTree, TempTree};
use crate::http::Http;
use crate::lock::Lock;
use crate::profile::{self, Platform, Profile, Repository};
use crate::repo::mirror::{self, Mirror, Overrides};
use crate::repo::sources::APT_ETC;
use crate::tools::ToolsTree;

/// Parallel downloads by default. Debian mirrors (and their CDNs) serve many
/// connections well; beyond about 8 the gain on a typical link is small and
/// a mirror may start to throttle.
pub const DEFAULT_JOBS: usize = 8;

/// What a command that reads a profile is asked (its flags).
#[derive(Debug, Clone)]
pub struct Options {
    /// The profile file.
    pub profile: PathBuf,
    /// The lock file; `None` is craton.lock beside the profile.
    pub lock: Option<PathBuf>,
    /// Refuse a missing lock or one that disagrees with the profile.
    pub locked: bool,
    pub mirrors: Overrides,
    /// Artifact files for machines that cannot download them.
    pub artifact_dir: Option<PathBuf>,
    /// Parallel downloads and unpacking (at least one is used).
    pub jobs: usize,
}

impl Options {
    /// The defaults for `profile`: the lock beside it, mirrors from the
    /// environment and the host, [`DEFAULT_JOBS`].
    pub fn for_profile(profile: impl Into<PathBuf>) -> Self {
        Self {
            profile: profile.into(),
            lock: None,
            locked: false,
            mirrors: Overrides::from_flags_and_env(None, None),
            artifact_dir: None,
            jobs: DEFAULT_JOBS,
        }
    }
}

/// One run before its lock is settled.
pub struct Context {
    pub profile: Profile,
    pub lock_path: PathBuf,
    pub locked: bool,
    pub cache: Cache,
    pub http: Http,
    pub mirrors: Overrides,
    /// Where the host's apt sources live (a test may point elsewhere).
    pub apt_etc: PathBuf,
    pub artifact_dir: Option<PathBuf>,
    pub jobs: usize,
}

impl Context {
    /// Loads the profile and opens the cache.
    pub fn new(opts: &Options) -> Result<Self> {
        let profile = profile::load(&opts.profile)?;
        let lock_path = opts
            .lock
            .clone()
            .unwrap_or_else(|| Lock::default_path(&profile.path));
        Ok(Self {
            profile,
            lock_path,
            locked: opts.locked,
            cache: Cache::open_default()?,
            http: Http::new(),
            mirrors: opts.mirrors.clone(),
            apt_etc: PathBuf::from(APT_ETC),
            artifact_dir: opts.artifact_dir.clone(),
            jobs: opts.jobs.max(1),
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

/// What the image is for and where it goes (the build's own flags).
#[derive(Debug, Clone)]
pub struct Target {
    /// The platforms to emit, each once, in [`Platform::ALL`]'s order.
    pub platforms: Vec<Platform>,
    /// The output folder; created once the fetch succeeded.
    pub out_dir: PathBuf,
    /// Timestamps of every file written (SOURCE_DATE_EPOCH).
    pub epoch: u64,
}

/// A build with its lock settled: what every stage after the fetch takes.
pub struct Build {
    pub ctx: Context,
    pub lock: Lock,
    /// The tools tree's place (the tools stage makes it).
    pub tools: ToolsTree,
    /// The platforms the build emits (one tree and /usr for all).
    pub platforms: Vec<Platform>,
    pub epoch: u64,
    pub out_dir: PathBuf,
    /// Intermediate files, in the output folder (same filesystem, so the
    /// outputs are renamed into place), removed when the build ends.
    work: TempTree,
    /// One seed for every identifier of the image: the lock says what is in
    /// it, the profile's name and version what it is called.
    pub seed: Sha256,
}

impl Build {
    /// Makes the output folder and the work folder in it.
    pub fn new(ctx: Context, lock: Lock, target: &Target) -> Result<Self> {
        fs::create_dir_all(&target.out_dir)
            .with_context(|| format!("creating {}", target.out_dir.display()))?;
        let image = &ctx.profile.image;
        let work = TempTree::beside(&target.out_dir.join(&image.name))?;
        let seed = Sha256::of(
            format!(
                "craton image seed\n{}\n{}\n{}\n",
                lock.digest().to_hex(),
                image.name,
                image.version
            )
            .as_bytes(),
        );
        Ok(Self {
            tools: ToolsTree::for_lock(&ctx.cache, &lock),
            platforms: target.platforms.clone(),
            epoch: target.epoch,
            out_dir: target.out_dir.clone(),
            work,
            seed,
            ctx,
            lock,
        })
    }

    pub fn profile(&self) -> &Profile {
        &self.ctx.profile
    }

    pub fn cache(&self) -> &Cache {
        &self.ctx.cache
    }

    pub fn jobs(&self) -> usize {
        self.ctx.jobs
    }

    /// A path in the work folder.
    pub fn work(&self, name: &str) -> PathBuf {
        self.work.path().join(name)
    }

    /// An output's path: `<out>/<image name><suffix>`.
    pub fn output(&self, suffix: &str) -> PathBuf {
        self.out_dir
            .join(format!("{}{suffix}", self.profile().image.name))
    }

    /// Unpacks the tools tree at [`Build::tools`] if the cache does not
    /// hold it yet (the tools stage of the recipe).
    pub fn ensure_tools(&self) -> Result<CachedTree> {
        self.tools.ensure(self.cache(), &self.lock, self.jobs())
    }
}
