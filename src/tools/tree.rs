//! The tools tree on disk and the runner for its programs.
//!
//! The tools packages are unpacked natively (no maintainer scripts: nothing
//! in them needs configuring to run a program) into
//! `<cache>/trees/tools-<key>`, keyed by the locked tools set. A program runs
//! through the tree's own dynamic loader with the tree's library folders, so
//! it uses trixie's libraries whatever the host has, without a chroot and
//! without mounts. Data files that programs look for at compiled-in paths
//! are passed explicitly by the callers (grub-mkimage -d, MKE2FS_CONFIG).

use std::path::{Path, PathBuf};

use anyhow::{Result, bail};

use crate::cache::Cache;
use crate::deb::unpack::{self, DebInput};
use crate::digest::Sha256;
use crate::files::{CachedTree, cached_tree};
use crate::lock::Lock;
use crate::process::Cmd;

/// Bumped when the way the tree is made changes.
const TOOLS_RECIPE: u32 = 1;
/// The x86-64 dynamic loader (System V ABI, x86-64 supplement), inside the
/// tree (merged /usr: usr/lib64 is where lib64 points).
const LOADER: &str = "usr/lib64/ld-linux-x86-64.so.2";
/// Library folders of a Debian amd64 system, in ld.so's order.
const LIB_DIRS: &[&str] = &["usr/lib/x86_64-linux-gnu", "usr/lib"];
/// Where programs are found, in order.
const BIN_DIRS: &[&str] = &["usr/sbin", "usr/bin"];

/// An unpacked tools tree.
#[derive(Debug, Clone)]
pub struct ToolsTree {
    root: PathBuf,
}

/// The cache key of the tools tree.
pub fn tools_key(lock: &Lock) -> Sha256 {
    crate::lock::set_digest("tools", TOOLS_RECIPE, &lock.tools)
}

impl ToolsTree {
    /// The place of the lock's tools tree in the cache (made or not).
    pub fn for_lock(cache: &Cache, lock: &Lock) -> Self {
        Self {
            root: cache.tree_path("tools", &tools_key(lock)),
        }
    }

    /// Unpacks the lock's tools set into this tree if it is missing (the
    /// .debs must be in the cache: run the fetch stage first).
    pub fn ensure(&self, cache: &Cache, lock: &Lock, jobs: usize) -> Result<CachedTree> {
        let made = cached_tree(&self.root, |tmp| {
            let debs: Vec<DebInput> = lock
                .tools
                .iter()
                .map(|p| DebInput::locked(p, cache))
                .collect();
            unpack::unpack_all(tmp, &debs, jobs)?;
            tracing::info!("unpacked the tools tree ({} packages)", debs.len());
            Ok(())
        })?;
        tracing::debug!("tools tree {}", self.root.display());
        Ok(made)
    }

    /// A tree at a known place (tests).
    pub fn at(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// A path inside the tree (`rel` without a leading slash).
    pub fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel.trim_start_matches('/'))
    }

    /// A command that runs `program` from the tree.
    pub fn cmd(&self, program: &str) -> Result<Cmd> {
        let Some(exe) = BIN_DIRS
            .iter()
            .map(|d| self.root.join(d).join(program))
            .find(|p| p.is_file())
        else {
            bail!("{program} is not in the tools tree {}", self.root.display());
        };
        let libs = LIB_DIRS
            .iter()
            .map(|d| self.root.join(d).to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(":");
        Ok(Cmd::new(self.root.join(LOADER))
            .arg("--library-path")
            .arg(libs)
            .arg(exe))
    }
}
