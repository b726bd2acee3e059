//! The initrd's kernel modules: the ones the platforms need to find and
//! mount /usr and ROOT, with the closure of their dependencies read from
//! the image's modules.dep (and modules.softdep), copied decompressed into
//! the staging tree, and indexed there with the tools tree's depmod so that
//! modprobe and udev in the initrd find them.
//!
//! Decompressed because the initrd is compressed as a whole (zstd, which
//! the kernel unpacks fast), while each module's own xz costs its load:
//! under TCG the initrd phase took 1.9 s less with plain modules, for
//! 0.2 MB more initrd (docs/performance.md).
//!
//! It does not decide which kernel the image has: the image's tree holds
//! exactly one /usr/lib/modules/<version>, and that is the one.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File};
use std::io::{self, BufReader};
use std::path::Path;

use anyhow::{Context, Result, bail};

use crate::deb::archive::Compression;
use crate::files::tree;
use crate::tools::ToolsTree;

/// The modules craton's own initrd needs whatever the profile lists:
/// mounting /usr (dm_verity, erofs or ext4), ROOT (ext4) and the /etc
/// overlay (overlay), and reading the ESP's GRUB environment block on a
/// new disk's first boot (vfat with the code page and character set of
/// Debian's defaults, CONFIG_FAT_DEFAULT_CODEPAGE=437 and
/// CONFIG_FAT_DEFAULT_IOCHARSET="ascii"). The platforms' disk and network
/// drivers are the profile's `[initrd] modules` (profiles/base.toml).
pub const MODULES: &[&str] = &[
    "dm_verity",
    "erofs",
    "ext4",
    "overlay",
    "vfat",
    "nls_cp437",
    "nls_ascii",
];

/// Modules loaded at boot by systemd-modules-load (modules-load.d(5)).
/// udev loads the hardware drivers by modalias, and the kernel asks for
/// filesystems and dm targets itself (request_module), but only once its
/// usermode helper is set up: loading these four early costs little and
/// leaves nothing to that path.
pub const LOAD_EARLY: &[&str] = &["dm_verity", "erofs", "ext4", "overlay"];

/// Where the image keeps its kernels and modules (merged /usr).
pub const MODULES_DIR: &str = "usr/lib/modules";

/// The files besides modules.dep that depmod reads from the module folder
/// (depmod(8)): the load order and what is built into the kernel.
const DEPMOD_INPUTS: &[&str] = &[
    "modules.order",
    "modules.builtin",
    "modules.builtin.modinfo",
];

/// A module's name as the kernel knows it: the file name without the
/// .ko[.xz|.zst|.gz] suffix, with '-' as '_' (kmod treats them alike).
pub fn canonical(name: &str) -> String {
    let base = name.rsplit('/').next().unwrap_or(name);
    let base = base.split(".ko").next().unwrap_or(base);
    base.replace('-', "_")
}

/// What the module folder says about its modules.
#[derive(Debug, Default)]
pub struct ModuleIndex {
    /// name -> (path relative to the module folder, the paths it needs).
    pub deps: BTreeMap<String, (String, Vec<String>)>,
    /// Names of modules built into the kernel.
    pub builtin: BTreeSet<String>,
    /// name -> modules loaded with it (softdep pre: and post:).
    pub softdeps: BTreeMap<String, Vec<String>>,
    /// alias -> names of the modules that have it.
    pub aliases: BTreeMap<String, Vec<String>>,
}

impl ModuleIndex {
    /// Reads modules.dep, modules.builtin, modules.softdep and modules.alias
    /// of one module folder (the last two may be missing).
    pub fn read(dir: &Path) -> Result<Self> {
        let read = |name: &str, required: bool| -> Result<String> {
            let p = dir.join(name);
            match fs::read_to_string(&p) {
                Err(e) if !required && e.kind() == std::io::ErrorKind::NotFound => {
                    Ok(String::new())
                }
                r => r.with_context(|| format!("reading {}", p.display())),
            }
        };
        Ok(Self::parse(
            &read("modules.dep", true)?,
            &read("modules.builtin", true)?,
            &read("modules.softdep", false)?,
            &read("modules.alias", false)?,
        ))
    }

    /// Parses the four files' texts (formats as depmod(8) writes them).
    pub fn parse(dep: &str, builtin: &str, softdep: &str, alias: &str) -> Self {
        let mut me = Self::default();
        // "kernel/a/b.ko.xz: kernel/c.ko.xz kernel/d.ko.xz"
        for line in dep.lines() {
            let Some((path, needs)) = line.split_once(':') else {
                continue;
            };
            let needs = needs.split_whitespace().map(str::to_owned).collect();
            me.deps
                .insert(canonical(path), (path.trim().to_owned(), needs));
        }
        me.builtin = builtin
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(canonical)
            .collect();
        // "softdep ext4 pre: crypto-crc32c post: x": words after pre: or
        // post: are loaded with the module; words before either are not
        // (kmod's modprobe.d parser ignores them).
        for line in softdep.lines() {
            let mut words = line.split_whitespace();
            if words.next() != Some("softdep") {
                continue;
            }
            let Some(module) = words.next() else { continue };
            let mut taking = false;
            for w in words {
                match w {
                    "pre:" | "post:" => taking = true,
                    _ if taking => me
                        .softdeps
                        .entry(canonical(module))
                        .or_default()
                        .push(w.to_owned()),
                    _ => {}
                }
            }
        }
        // "alias crypto-crc32c crc32c_intel"
        for line in alias.lines() {
            let mut words = line.split_whitespace();
            if let (Some("alias"), Some(a), Some(m)) = (words.next(), words.next(), words.next()) {
                me.aliases
                    .entry(a.to_owned())
                    .or_default()
                    .push(canonical(m));
            }
        }
        me
    }

    /// The modules to ship for `wanted`: their files and those of all they
    /// need, hard and soft dependencies, transitively; sorted names and
    /// paths. A wanted module built into the kernel needs nothing; one that
    /// exists nowhere is an error naming it. A soft dependency that exists
    /// nowhere is skipped, as modprobe skips it.
    pub fn closure(&self, wanted: &[&str]) -> Result<BTreeMap<String, String>> {
        let mut out = BTreeMap::new();
        // (name or alias as written, whether it must exist)
        let mut todo: Vec<(String, bool)> =
            wanted.iter().map(|w| ((*w).to_owned(), true)).collect();
        let mut seen = BTreeSet::new();
        while let Some((word, required)) = todo.pop() {
            let name = canonical(&word);
            if !seen.insert(word.clone()) {
                continue;
            }
            if let Some((path, needs)) = self.deps.get(&name) {
                out.insert(name.clone(), path.clone());
                todo.extend(needs.iter().map(|n| (canonical(n), true)));
                // Soft dependencies often name an alias ("crypto-crc32c").
                let soft = self.softdeps.get(&name).into_iter().flatten();
                todo.extend(soft.map(|s| (s.clone(), false)));
            } else if self.builtin.contains(&name) {
                continue;
            } else if let (false, Some(mods)) = (required, self.aliases.get(&word)) {
                todo.extend(mods.iter().map(|m| (m.clone(), false)));
            } else if required {
                bail!("kernel module {word} is neither a module nor built into the kernel");
            } else {
                tracing::debug!("soft dependency {word} is not available; skipped");
            }
        }
        Ok(out)
    }
}

/// The one kernel version in the image's tree.
pub fn kernel_version(rootfs: &Path) -> Result<String> {
    let dir = rootfs.join(MODULES_DIR);
    let mut versions = Vec::new();
    for e in fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))? {
        let e = e.with_context(|| format!("reading {}", dir.display()))?;
        if e.path().join("modules.dep").is_file() {
            versions.push(e.file_name().to_string_lossy().into_owned());
        }
    }
    versions.sort();
    match versions.as_slice() {
        [one] => Ok(one.clone()),
        [] => bail!("{}: no kernel (no folder with modules.dep)", dir.display()),
        many => bail!("{}: several kernels {many:?}, expected one", dir.display()),
    }
}

/// Writes `from` to `to`, decompressed.
pub(crate) fn copy_plain(from: &Path, to: &Path, compression: Compression) -> Result<()> {
    if let Some(parent) = to.parent() {
        fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    }
    let what = || format!("copying {} to {}", from.display(), to.display());
    if compression == Compression::None {
        fs::copy(from, to).with_context(what)?;
        return Ok(());
    }
    let input = BufReader::new(File::open(from).with_context(what)?);
    let mut reader = compression.reader(input).with_context(what)?;
    let mut out = File::create(to).with_context(what)?;
    io::copy(&mut reader, &mut out)
        .with_context(|| format!("decompressing {} ({compression:?})", from.display()))?;
    Ok(())
}

/// Copies the closure of [`MODULES`] and the profile's `extra` modules for
/// `version` from `rootfs` into `stage`, decompressed, runs depmod there
/// and writes the modules-load.d file. Returns the names of the modules
/// shipped, sorted.
pub fn install(
    rootfs: &Path,
    version: &str,
    stage: &Path,
    tools: &ToolsTree,
    extra: &[String],
) -> Result<Vec<String>> {
    let src = rootfs.join(MODULES_DIR).join(version);
    let dst = |rel: &str| -> Result<std::path::PathBuf> {
        // Placed through `files::tree` (folders resolved inside the
        // stage, a symlink at the file removed), so no write leaves it.
        let host = tree::place(stage, &format!("/{MODULES_DIR}/{version}/{rel}"))?;
        tree::clear(&host)?;
        Ok(host)
    };
    let index = ModuleIndex::read(&src)?;
    let wanted: Vec<&str> = MODULES
        .iter()
        .copied()
        .chain(extra.iter().map(String::as_str))
        .collect();
    let closure = index.closure(&wanted)?;
    for rel in closure.values() {
        let (plain, compression) = Compression::split_suffix(rel);
        copy_plain(&src.join(rel), &dst(plain)?, compression)?;
    }
    for rel in DEPMOD_INPUTS {
        copy_plain(&src.join(rel), &dst(rel)?, Compression::None)?;
    }
    let dst = stage.join(MODULES_DIR).join(version);
    // depmod -b BASE looks for BASE/lib/modules/VERSION (kmod's compiled-in
    // /lib/modules), which the merged-/usr link lib -> usr/lib leads to
    // MODULES_DIR. An empty config folder (-C) keeps the host's depmod.d
    // (search orders, overrides) out of the result.
    let conf = tempfile::tempdir().context("creating an empty depmod.d")?;
    tools
        .cmd("depmod")?
        .arg("-C")
        .arg(conf.path())
        .arg("-b")
        .arg(stage)
        .arg(version)
        .run()
        .with_context(|| format!("indexing the initrd's modules for {version}"))?;
    if !dst.join("modules.dep.bin").is_file() {
        bail!("depmod wrote no modules.dep.bin in {}", dst.display());
    }
    let text =
        String::from("# Loaded early in the initrd (craton).\n") + &LOAD_EARLY.join("\n") + "\n";
    tree::write_file(
        stage,
        "/etc/modules-load.d/craton.conf",
        text.as_bytes(),
        0o644,
    )?;
    Ok(closure.into_keys().collect())
}
