//! Installing the locked packages into a tree and configuring them the way
//! debootstrap and mmdebstrap do, with dpkg inside a chroot of the tree.
//!
//! 1. The essential set (see `order`) is unpacked natively, which gives the
//!    tree a shell, libc and dpkg, then installed properly by that dpkg
//!    (`dpkg --install --force-depends`: preinst, unpack, configure).
//! 2. Every other package is unpacked natively, in parallel, and registered
//!    in dpkg's database as unpacked; its preinst runs with `install`, in
//!    Pre-Depends order, as dpkg --unpack would have run it.
//! 3. `dpkg --configure -a` configures them all in dependency order.
//!
//! Services are not started (a policy-rc.d that answers 101), writes are not
//! synced (--force-unsafe-io: the tree is thrown away on failure), and the
//! kernel's initramfs hook does not run (INITRD=No, which
//! /etc/kernel/postinst.d/initramfs-tools honours; craton makes its own
//! initrd), which leaves initramfs-tools installed and dpkg consistent.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use super::order::{self, Relations};
use crate::deb::unpack::{self, DebInput};
use crate::deb::{PathFilter, dpkgdb};
use crate::process::Cmd;
use crate::signal;

/// The PATH maintainer scripts get (Debian's default for root).
const CHROOT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/// invoke-rc.d(8): a policy-rc.d that exits 101 forbids starting services.
const POLICY_RC_D: &str = "usr/sbin/policy-rc.d";
const POLICY_RC_D_TEXT: &str =
    "#!/bin/sh\n# craton: no services start while the image is built.\nexit 101\n";
/// Where the essential .debs are put for dpkg inside the chroot.
const STAGE_DIR: &str = "var/cache/craton-debs";
/// dpkg options for every call: no fsync (the tree is disposable until it
/// is complete), and keep the packaged conffiles (there are no local ones).
const DPKG_OPTS: &[&str] = &["--force-unsafe-io", "--force-confdef", "--force-confold"];

/// Installs and configures `debs` into the empty folder `tree`, leaving
/// out what `filter` skips (craton's unpacker and dpkg both apply it).
pub fn install(tree: &Path, debs: &[DebInput], filter: &PathFilter, jobs: usize) -> Result<()> {
    let rels = debs
        .iter()
        .map(|d| order::read_relations(&d.path))
        .collect::<Result<Vec<Relations>>>()?;
    let essential = order::essential_set(&rels);
    let (ess, rest): (Vec<DebInput>, Vec<DebInput>) = debs
        .iter()
        .cloned()
        .partition(|d| essential.contains(&d.name));
    tracing::info!(
        "installing {} essential and {} other packages",
        ess.len(),
        rest.len()
    );

    signal::check()?;
    unpack::unpack_filtered(tree, &ess, jobs, filter)
        .context("unpacking the essential packages")?;
    if !filter.is_empty() {
        // dpkg unpacks the essential packages once more (below).
        crate::files::tree::write_file(
            tree,
            &format!("/{}", crate::deb::filter::DPKG_CFG),
            filter.dpkg_cfg().as_bytes(),
            0o644,
        )?;
    }
    dpkgdb::register(tree, &[]).context("creating dpkg's database")?;

    let _policy = FileGuard::write(tree, POLICY_RC_D, POLICY_RC_D_TEXT, 0o755)?;
    {
        let stage = Stage::new(tree, &ess)?;
        let mut args: Vec<String> = vec!["--install".into(), "--force-depends".into()];
        args.extend(stage.paths_in_chroot());
        dpkg(tree, &args).context("installing the essential packages")?;
    }

    signal::check()?;
    let unpacked =
        unpack::unpack_filtered(tree, &rest, jobs, filter).context("unpacking the packages")?;
    dpkgdb::register(tree, &unpacked).context("registering the packages with dpkg")?;

    let rest_names: BTreeSet<String> = rest.iter().map(|d| d.name.clone()).collect();
    for name in order::pre_depends_order(&rels, &rest_names) {
        let Some(u) = unpacked.iter().find(|u| u.control.package == name) else {
            continue;
        };
        let info = dpkgdb::info_name(&u.control);
        let script = format!("/var/lib/dpkg/info/{info}.preinst");
        if !tree.join(script.trim_start_matches('/')).exists() {
            continue;
        }
        signal::check()?;
        chroot_cmd(tree, &script)
            .arg("install")
            .env("DPKG_MAINTSCRIPT_PACKAGE", &u.control.package)
            .env("DPKG_MAINTSCRIPT_ARCH", &u.control.architecture)
            .env("DPKG_MAINTSCRIPT_NAME", "preinst")
            .env("DPKG_MAINTSCRIPT_PACKAGE_REFCOUNT", "1")
            .env("DPKG_ADMINDIR", "/var/lib/dpkg")
            .env("DPKG_ROOT", "")
            .run()
            .with_context(|| format!("running the preinst of {name}"))?;
    }

    dpkg(tree, &["--configure".to_owned(), "-a".to_owned()]).context("configuring the packages")?;
    let audit = chroot_cmd(tree, "dpkg").arg("--audit").output()?;
    if !audit.is_empty() {
        bail!(
            "dpkg --audit is not clean:\n{}",
            String::from_utf8_lossy(&audit)
        );
    }
    Ok(())
}

/// A command inside the tree with a clean, non-interactive environment.
fn chroot_cmd(tree: &Path, program: &str) -> Cmd {
    super::chroot::isolated(tree, program)
        .env_clear()
        .env("PATH", CHROOT_PATH)
        .env("LC_ALL", "C.UTF-8")
        .env("DEBIAN_FRONTEND", "noninteractive")
        .env("DEBCONF_NONINTERACTIVE_SEEN", "true")
        .env("INITRD", "No")
        .env("HOME", "/root")
}

fn dpkg(tree: &Path, args: &[String]) -> Result<()> {
    let out = chroot_cmd(tree, "dpkg")
        .args(DPKG_OPTS)
        .args(args)
        .output()?;
    tracing::debug!("dpkg: {}", String::from_utf8_lossy(&out));
    Ok(())
}

/// A file that exists only while the guard lives.
struct FileGuard(PathBuf);

impl FileGuard {
    /// Writes `path` (in the tree) through `files::tree`: a package could
    /// have put a symlink out of the tree there.
    fn write(tree: &Path, path: &str, text: &str, mode: u32) -> Result<Self> {
        let host =
            crate::files::tree::write_file(tree, &format!("/{path}"), text.as_bytes(), mode)?;
        Ok(Self(host))
    }
}

impl Drop for FileGuard {
    fn drop(&mut self) {
        if let Err(e) = fs::remove_file(&self.0) {
            tracing::error!("removing {}: {e}", self.0.display());
        }
    }
}

/// The essential .debs inside the tree for dpkg; removed on drop.
struct Stage {
    dir: PathBuf,
    names: Vec<String>,
}

impl Stage {
    fn new(tree: &Path, debs: &[DebInput]) -> Result<Self> {
        let dir = crate::files::tree::resolve_dir(tree, STAGE_DIR, true)?;
        let mut names = Vec::new();
        for d in debs {
            let name = format!(
                "{}_{}_{}.deb",
                d.name,
                d.version.replace(':', "%3a"),
                d.arch
            );
            let dest = dir.join(&name);
            crate::files::tree::clear(&dest)?;
            // A copy, never a hard link: dpkg and the scripts in the
            // chroot could write through a link into the cache (fs::copy
            // uses copy_file_range, which shares blocks where the
            // filesystem can).
            fs::copy(&d.path, &dest)
                .with_context(|| format!("copying {} into the tree", d.path.display()))?;
            names.push(name);
        }
        Ok(Self { dir, names })
    }

    fn paths_in_chroot(&self) -> Vec<String> {
        self.names
            .iter()
            .map(|n| format!("/{STAGE_DIR}/{n}"))
            .collect()
    }
}

impl Drop for Stage {
    fn drop(&mut self) {
        if let Err(e) = fs::remove_dir_all(&self.dir) {
            tracing::error!("removing {}: {e}", self.dir.display());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    /// Issue #11: the .debs were hard-linked from the cache into the tree,
    /// where anything in the chroot writing them changed the cache for
    /// good. They are copies now: another inode, and a write to the staged
    /// file leaves the cache's as it was.
    #[test]
    fn staged_debs_are_copies_not_links() {
        let dir = tempfile::tempdir().unwrap();
        let cached = dir.path().join("cache-file");
        fs::write(&cached, b"!<arch>\n").unwrap();
        let tree = dir.path().join("tree");
        fs::create_dir(&tree).unwrap();
        let deb = DebInput {
            name: "p".into(),
            version: "1:1.0".into(),
            arch: "amd64".into(),
            path: cached.clone(),
        };
        let stage = Stage::new(&tree, &[deb]).unwrap();
        let staged = tree.join(STAGE_DIR).join("p_1%3a1.0_amd64.deb");
        assert_eq!(
            stage.paths_in_chroot(),
            [format!("/{STAGE_DIR}/p_1%3a1.0_amd64.deb")]
        );
        assert_ne!(
            fs::metadata(&staged).unwrap().ino(),
            fs::metadata(&cached).unwrap().ino()
        );
        fs::write(&staged, b"changed in the chroot").unwrap();
        assert_eq!(fs::read(&cached).unwrap(), b"!<arch>\n");
        drop(stage);
        assert!(!tree.join(STAGE_DIR).exists());
    }
}
