//! The recipe of `craton build`: every stage, in order, from a locked
//! profile to a bootable A/B disk image.
//!
//! fetch -> rootfs tree -> boot files into the tree -> /usr image with its
//! verity tree -> initrd -> ESP (shim, GRUB, grub.cfg, grubenv, slot A's
//! kernel, initrd and slot.cfg) -> disk. Intermediate files live in a
//! temporary folder inside the output folder (same filesystem, removed on
//! success, failure or interrupt); the image is renamed into place by the
//! disk stage, so `DIR/<name>.raw` is either the old image or the new one.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context as _, Result, bail};

use crate::boot::grubcfg::{BootConfig, grub_cfg, initial_grubenv, slot_cfg, slot_dir};
use crate::boot::{self, Slot, SlotEntry};
use crate::context::Context;
use crate::digest::Sha256;
use crate::disk::{self, DiskGuids, DiskSizes, DiskSpec, EspFile, PartKind, Source, UsrB};
use crate::error::bad_input;
use crate::fetch::plan::{self, FetchSettings};
use crate::lock::Lock;
use crate::profile::{Platform, PlatformSettings};
use crate::rootfs::chroot::TempTree;
use crate::tools::ToolsTree;
use crate::{initrd, rootfs, signal, usr};

/// The environment variable that fixes every timestamp (reproducible-builds.org).
pub const EPOCH_ENV: &str = "SOURCE_DATE_EPOCH";

/// Signed boot files from the tools tree and their place on the ESP: shim as
/// the removable-media path (UEFI 2.10 section 3.5.1.1), GRUB and MokManager
/// beside it, where shim looks for them.
const ESP_BOOT_FILES: &[(&str, &str)] = &[
    ("/EFI/BOOT/BOOTX64.EFI", "usr/lib/shim/shimx64.efi.signed"),
    (
        "/EFI/BOOT/grubx64.efi",
        "usr/lib/grub/x86_64-efi-signed/grubx64.efi.signed",
    ),
    ("/EFI/BOOT/mmx64.efi", "usr/lib/shim/mmx64.efi.signed"),
];
/// Where Debian's signed grubx64.efi reads its configuration (its prefix
/// is /EFI/debian) and where the BIOS core.img does (prefix /grub).
const GRUB_CFG_PATHS: &[&str] = &["/EFI/debian/grub.cfg", "/grub/grub.cfg"];

/// What `craton build` is asked for.
#[derive(Debug, Clone)]
pub struct BuildRequest {
    pub platform: Platform,
    pub out_dir: PathBuf,
    pub fetch: FetchSettings,
    /// Timestamps of every file written (SOURCE_DATE_EPOCH).
    pub epoch: u64,
}

/// What a build made.
#[derive(Debug, Clone)]
pub struct BuildOutput {
    pub image: PathBuf,
    /// Apparent size of the raw image.
    pub size: u64,
    /// Bytes allocated on disk (the image is sparse).
    pub allocated: u64,
    /// The /usr filesystem and its verity tree.
    pub usr_fs_size: u64,
    pub usr_total_size: u64,
    pub root_hash: String,
    pub hash_offset: u64,
    pub initrd_size: u64,
    pub kernel_version: String,
    pub usr_a_partuuid: String,
    pub base_reused: bool,
}

/// SOURCE_DATE_EPOCH when set (it must be a number), else now.
pub fn epoch_from_env() -> Result<u64> {
    match std::env::var(EPOCH_ENV) {
        Ok(v) if !v.trim().is_empty() => v.trim().parse::<u64>().map_err(|_| {
            bad_input(format!(
                "{EPOCH_ENV}={v:?}: expected seconds since 1970 (a whole number)"
            ))
        }),
        _ => Ok(std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())),
    }
}

/// The platform's settings from the profile (defaults when it has no table).
pub fn platform(ctx: &Context, p: Platform) -> PlatformSettings {
    ctx.profile.platform(p)
}

/// The image's file name in the output folder.
pub fn image_path(ctx: &Context, out_dir: &Path) -> PathBuf {
    out_dir.join(format!("{}.raw", ctx.profile.image.name))
}

/// Runs every stage and writes the image.
pub fn build(ctx: &Context, lock: &Lock, req: &BuildRequest) -> Result<BuildOutput> {
    let platform = platform(ctx, req.platform);
    let start = Instant::now();
    let step = |what: &str, t: Instant| {
        tracing::info!("{what} in {:.1}s", t.elapsed().as_secs_f64());
    };
    let image = image_path(ctx, &req.out_dir);
    let jobs = req.fetch.jobs;

    let t = Instant::now();
    plan::run(ctx, lock, &req.fetch)?;
    let tools = ToolsTree::ensure(ctx, lock, jobs)?;
    step("fetched the packages and the tools tree", t);
    // Only now: a build that cannot fetch leaves no output folder behind.
    fs::create_dir_all(&req.out_dir)
        .with_context(|| format!("creating {}", req.out_dir.display()))?;

    let work = TempTree::beside(&image)?;
    let tree = work.path().join("tree");
    let t = Instant::now();
    let rootfs = rootfs::stage::build(ctx, lock, &tree, jobs)?;
    boot::units::install(&tree, &boot::units::image_files())?;
    step("built the root filesystem tree", t);
    signal::check()?;

    // One seed for every identifier of the image: the lock says what is in
    // it, the profile's name and version what it is called.
    let seed = Sha256::of(
        format!(
            "craton image seed\n{}\n{}\n{}\n",
            lock.digest().to_hex(),
            ctx.profile.image.name,
            ctx.profile.image.version
        )
        .as_bytes(),
    );
    let fs = ctx.profile.disk.usr_filesystem;
    let t = Instant::now();
    let usr_img = usr::build(
        &tools,
        &tree,
        fs,
        &work.path().join("usr.img"),
        &seed,
        req.epoch,
    )?;
    step("made the /usr image", t);
    signal::check()?;

    let t = Instant::now();
    let initrd_path = work.path().join("initrd");
    let initrd = initrd::build(lock, &ctx.cache, &tools, &tree, &initrd_path, req.epoch)?;
    step("made the initrd", t);
    signal::check()?;

    let root_hash = usr_img.verity.root_hash_hex();
    let guids = DiskGuids::from_seed(&seed);
    let usr_a_partuuid = guids.part(PartKind::Usr(Slot::A)).to_string();
    let usr_b = ctx.profile.disk.usr_b;
    let kernel = tree
        .join("usr/lib/modules")
        .join(&initrd.kernel_version)
        .join("vmlinuz");
    if !kernel.is_file() {
        bail!("the tree has no kernel at {}", kernel.display());
    }
    let boot_cfg = BootConfig {
        timeout_secs: ctx.profile.boot.timeout_secs,
        console: platform.console.clone(),
        kernel_args: ctx
            .profile
            .boot
            .kernel_args
            .iter()
            .chain(&platform.kernel_args)
            .cloned()
            .collect(),
    };
    let mut esp_files: Vec<EspFile> = ESP_BOOT_FILES
        .iter()
        .map(|(dst, src)| EspFile {
            path: (*dst).into(),
            source: Source::File(tools.path(src)),
        })
        .collect();
    let cfg = grub_cfg(&boot_cfg);
    for p in GRUB_CFG_PATHS {
        esp_files.push(bytes(p, cfg.as_bytes()));
    }
    esp_files.push(bytes(
        boot::grubcfg::GRUBENV_PATH,
        &initial_grubenv(usr_b == UsrB::Copy)?,
    ));
    let slots: &[Slot] = match usr_b {
        UsrB::Copy => &[Slot::A, Slot::B],
        UsrB::Empty => &[Slot::A],
    };
    for &slot in slots {
        let entry = SlotEntry::new(
            slot,
            &ctx.profile.image.version,
            &guids.part(PartKind::Usr(slot)).to_string(),
            &root_hash,
            usr_img.verity.hash_offset,
            fs,
        )?;
        let dir = slot_dir(slot);
        esp_files.push(EspFile {
            path: format!("{dir}/vmlinuz"),
            source: Source::File(kernel.clone()),
        });
        esp_files.push(EspFile {
            path: format!("{dir}/initrd"),
            source: Source::File(initrd.path.clone()),
        });
        esp_files.push(bytes(
            &format!("{dir}/slot.cfg"),
            slot_cfg(&entry).as_bytes(),
        ));
    }

    let spec = DiskSpec {
        sizes: DiskSizes::from_profile(&ctx.profile.disk),
        guids,
        usr_a: usr_img.path.clone(),
        usr_b,
        esp_files,
        root_tree: tree.clone(),
        oem_files: oem_files(req.platform),
        root_label: disk::ROOT_FS_LABEL.into(),
        oem_label: disk::OEM_FS_LABEL.into(),
        epoch: req.epoch,
    };
    let t = Instant::now();
    let info = disk::write_disk(&spec, &tools, &image)?;
    step("wrote the disk", t);
    drop(work);
    let meta = fs::metadata(&image).with_context(|| format!("reading {}", image.display()))?;
    tracing::info!(
        "built {} in {:.1}s",
        image.display(),
        start.elapsed().as_secs_f64()
    );
    Ok(BuildOutput {
        image,
        size: info.size,
        allocated: meta.blocks() * 512,
        usr_fs_size: usr_img.fs_size,
        usr_total_size: usr_img.total_size,
        root_hash,
        hash_offset: usr_img.verity.hash_offset,
        initrd_size: initrd.size,
        kernel_version: initrd.kernel_version,
        usr_a_partuuid,
        base_reused: rootfs.base_reused,
    })
}

fn bytes(path: &str, data: &[u8]) -> EspFile {
    EspFile {
        path: path.into(),
        source: Source::Bytes(data.to_vec()),
    }
}

/// The OEM partition's files: which platform the image was built for, in
/// os-release(5) syntax (Flatcar's /oem/oem-release).
fn oem_files(platform: Platform) -> Vec<(String, Vec<u8>)> {
    let name = platform.name();
    vec![(
        "oem-release".into(),
        format!("ID={name}\nNAME=\"craton {name}\"\n").into_bytes(),
    )]
}
