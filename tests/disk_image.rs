//! The disk stage through the library: a small image with a real erofs in
//! USR-A, Debian's signed shim and GRUB on the ESP and a fake root tree,
//! checked with sgdisk (host), fsck.fat, e2fsck and debugfs (tools tree),
//! read back byte by byte where it matters (MBR, core.img, USR), written
//! twice to show it is reproducible, and booted in QEMU with SeaBIOS and
//! OVMF up to grub.cfg when qemu-system-x86_64 is installed.
//!
//! The tools tree comes the way tools_tree.rs gets it (lock, fetch, unpack
//! into the default cache), once for all tests of this file.

use std::fs;
use std::os::unix::fs::{FileExt, PermissionsExt};
use std::path::{Path, PathBuf};

mod support;

use craton::boot::SlotEntry;
use craton::boot::esp::{self, EspContent, SlotBoot};
use craton::digest::Sha256;
use craton::disk::{
    self, DiskGuids, DiskInfo, DiskSizes, DiskSpec, Mib, PartKind, SECTOR, Slot, Source, UsrB,
};
use craton::process::Cmd;
use craton::profile::UsrFilesystem;
use craton::tools::ToolsTree;

/// A marker that the test grub.cfg prints, with the grubenv's ORDER.
const MARK: &str = "CRATON-GRUB-CFG";

fn tools() -> &'static ToolsTree {
    support::tools()
}

/// Inputs of a test disk, made in `dir`.
fn spec(dir: &Path) -> DiskSpec {
    let tools = tools();
    // A real erofs as the /usr image.
    let usr = dir.join("usr-src");
    fs::create_dir_all(usr.join("lib")).unwrap();
    fs::write(usr.join("lib/os-release"), "ID=craton\n").unwrap();
    let usr_img = dir.join("usr.erofs");
    tools
        .cmd("mkfs.erofs")
        .unwrap()
        .args(["-T", "1700000000", "--all-root", "-U"])
        .arg("00000000-0000-4000-8000-000000000001")
        .arg(&usr_img)
        .arg(&usr)
        .run()
        .unwrap();

    // A root tree: the skeleton, and a /usr whose content must stay off ROOT.
    let tree = dir.join("tree");
    for d in ["etc", "var/lib", "home", "usr/bin"] {
        fs::create_dir_all(tree.join(d)).unwrap();
    }
    fs::write(tree.join("usr/bin/not-on-root"), "x").unwrap();
    for (d, mode) in [("root", 0o700), ("tmp", 0o1777)] {
        fs::create_dir(tree.join(d)).unwrap();
        fs::set_permissions(tree.join(d), fs::Permissions::from_mode(mode)).unwrap();
    }
    std::os::unix::fs::symlink("usr/bin", tree.join("bin")).unwrap();
    std::os::unix::fs::symlink("../../usr/lib/sysimage/dpkg", tree.join("var/lib/dpkg")).unwrap();

    let grub_cfg = format!(
        "serial --unit=0 --speed=115200\nterminal_input console serial\n\
         terminal_output console serial\nload_env -f /grub/grubenv\n\
         echo \"{MARK} ORDER=$ORDER\"\nhalt\n"
    );
    let env = disk::grubenv(&[("ORDER", "A B"), ("A_OK", "1")]).unwrap();
    let guids = DiskGuids::from_seed(&Sha256::of(b"disk_image test"));
    // The boot stage's list, with this test's grub.cfg and a stand-in
    // kernel and initrd.
    let entry = SlotEntry::new(
        Slot::A,
        "0.1.0",
        &"ab".repeat(32),
        4096,
        UsrFilesystem::Erofs,
    )
    .unwrap();
    let esp_files = esp::files(&EspContent {
        tools,
        grub_cfg,
        grubenv: env,
        slots: vec![SlotBoot {
            entry,
            kernel: Source::Bytes(b"not a kernel".to_vec()),
            initrd: Source::Bytes(b"not an initrd".to_vec()),
        }],
    });
    DiskSpec {
        sizes: DiskSizes {
            esp: Mib(64),
            bios_boot: Mib(2),
            usr: Mib(8),
            oem: Mib(16),
            root: Mib(32),
            total_multiple: Mib(1),
        },
        guids,
        usr_a: usr_img,
        usr_b: UsrB::Copy,
        esp_files,
        root_tree: tree,
        oem_files: vec![
            disk::OemFile {
                path: "oem-release".into(),
                data: b"ID=qemu\n".to_vec(),
                mode: 0o644,
            },
            disk::OemFile {
                path: "grub/oem.cfg".into(),
                data: b"set oem=qemu\n".to_vec(),
                mode: 0o600,
            },
        ],
        root_label: disk::ROOT_FS_LABEL.into(),
        oem_label: disk::OEM_FS_LABEL.into(),
        epoch: 1_700_000_000,
    }
}

/// A partition's bytes as a file of its own (fsck tools want a file).
fn extract(img: &Path, info: &DiskInfo, kind: PartKind, out: &Path) -> Vec<u8> {
    let p = info.partition(kind).unwrap();
    let mut buf = vec![0u8; p.len() as usize];
    fs::File::open(img)
        .unwrap()
        .read_exact_at(&mut buf, p.offset())
        .unwrap();
    fs::write(out, &buf).unwrap();
    buf
}

fn sha(path: &Path) -> Sha256 {
    Sha256::of_reader(fs::File::open(path).unwrap()).unwrap()
}

#[test]
fn disk_image_is_valid_and_reproducible() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    let spec = spec(dir);
    let tools = tools();
    let img = dir.join("disk.raw");
    let info = disk::write_disk(&spec, tools, &img).unwrap();
    assert_eq!(fs::metadata(&img).unwrap().len(), info.size);
    assert_eq!(info.size, Mib(1 + 64 + 2 + 8 + 8 + 16 + 32 + 1).bytes());
    // Sparse: far fewer blocks than bytes.
    let blocks = std::os::unix::fs::MetadataExt::blocks(&fs::metadata(&img).unwrap());
    assert!(blocks * 512 < info.size / 2, "{blocks} blocks: not sparse");
    // No temporary files left beside it.
    let left: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".craton-disk"))
        .collect();
    assert!(left.is_empty(), "{left:?}");

    // GPT: valid, six partitions with our names, types and GUIDs.
    let verify = Cmd::new("sgdisk").arg("-v").arg(&img).output_all().unwrap();
    assert!(verify.contains("No problems found"), "{verify}");
    let table = Cmd::new("sgdisk").arg("-p").arg(&img).output_all().unwrap();
    let disk_guid = info.disk_guid.to_string().to_uppercase();
    assert!(table.contains(&disk_guid), "{table}");
    for p in &info.partitions {
        let line = table
            .lines()
            .find(|l| l.split_whitespace().next() == Some(&p.number.to_string()))
            .unwrap_or_else(|| panic!("no partition {} in\n{table}", p.number));
        assert!(line.contains(&p.label), "{line}");
        assert!(
            line.contains(&p.first_lba.to_string()) && line.contains(&p.last_lba.to_string()),
            "{line}"
        );
        let detail = Cmd::new("sgdisk")
            .arg(format!("-i{}", p.number))
            .arg(&img)
            .output_all()
            .unwrap();
        let type_line = detail.lines().next().unwrap_or_default();
        assert!(
            type_line.contains(&p.type_guid.to_string().to_uppercase()),
            "{detail}"
        );
        assert!(
            detail.contains(&format!(
                "Partition unique GUID: {}",
                p.part_guid.to_string().to_uppercase()
            )),
            "{detail}"
        );
    }
    assert_eq!(
        info.usr_partuuid(Slot::A),
        Some(spec.guids.part(PartKind::Usr(Slot::A)))
    );
    let root = info.partition(PartKind::Root).unwrap();
    assert_eq!(root.number, 6);
    assert!(info.partitions.iter().all(|p| p.last_lba <= root.last_lba));

    // MBR: boot.img's code, pointed at BIOS-BOOT, the protective table kept.
    let disk = fs::File::open(&img).unwrap();
    let mut mbr = [0u8; 512];
    disk.read_exact_at(&mut mbr, 0).unwrap();
    let boot_img = fs::read(tools.path("usr/lib/grub/i386-pc/boot.img")).unwrap();
    let bios = info.partition(PartKind::BiosBoot).unwrap();
    assert_eq!(mbr[510..], [0x55, 0xAA]);
    assert_eq!(mbr[..0x5C], boot_img[..0x5C]);
    assert_eq!(
        u64::from_le_bytes(mbr[0x5C..0x64].try_into().unwrap()),
        bios.first_lba
    );
    assert_eq!((mbr[0x64], &mbr[0x66..0x68]), (0xFF, &[0x90, 0x90][..]));
    assert_eq!(mbr[0x68..0x1B8], boot_img[0x68..0x1B8]);
    assert_eq!(mbr[0x1BE + 4], 0xEE, "no protective partition record");

    // core.img: what grub-mkimage makes, with the blocklist patched.
    let core_path = dir.join("core.img");
    tools
        .cmd("grub-mkimage")
        .unwrap()
        .args(["-O", "i386-pc", "-p", disk::CORE_PREFIX, "-d"])
        .arg(tools.path("usr/lib/grub/i386-pc"))
        .arg("-o")
        .arg(&core_path)
        .args(disk::CORE_MODULES)
        .run()
        .unwrap();
    let core = fs::read(&core_path).unwrap();
    let mut on_disk = vec![0u8; core.len()];
    disk.read_exact_at(&mut on_disk, bios.offset()).unwrap();
    assert_eq!(on_disk[..500], core[..500]);
    assert_eq!(on_disk[512..], core[512..]);
    assert_eq!(
        u64::from_le_bytes(on_disk[500..508].try_into().unwrap()),
        bios.first_lba + 1
    );
    let sectors = (core.len() as u64).div_ceil(SECTOR);
    assert_eq!(
        u64::from(u16::from_le_bytes(on_disk[508..510].try_into().unwrap())),
        sectors - 1
    );
    assert_eq!(on_disk[510..512], core[510..512]);

    // USR-A and USR-B: the erofs at their start, zeros after it.
    let usr = fs::read(&spec.usr_a).unwrap();
    for slot in [Slot::A, !Slot::A] {
        let part = extract(&img, &info, PartKind::Usr(slot), &dir.join("usr.part"));
        assert_eq!(part[..usr.len()], usr[..], "USR-{slot:?}");
        assert!(part[usr.len()..].iter().all(|b| *b == 0));
    }

    // ESP: FAT32 that fsck.fat accepts, with every file as given.
    let esp_path = dir.join("esp.img");
    extract(&img, &info, PartKind::Esp, &esp_path);
    let fsck = tools
        .cmd("fsck.fat")
        .unwrap()
        .arg("-n")
        .arg(&esp_path)
        .output_all()
        .unwrap();
    assert!(!fsck.contains("Dirty"), "{fsck}");
    let esp = fatfs::FileSystem::new(fs::File::open(&esp_path).unwrap(), fatfs::FsOptions::new());
    // fatfs needs a writable handle; open read-write on the copy.
    drop(esp);
    let esp = fatfs::FileSystem::new(
        fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&esp_path)
            .unwrap(),
        fatfs::FsOptions::new(),
    )
    .unwrap();
    assert_eq!(esp.fat_type(), fatfs::FatType::Fat32);
    assert_eq!(esp.volume_label(), disk::ESP_LABEL);
    assert_eq!(esp.volume_id(), spec.guids.esp_volume_id);
    for f in &spec.esp_files {
        let mut got = Vec::new();
        let mut file = esp
            .root_dir()
            .open_file(f.path.trim_start_matches('/'))
            .unwrap_or_else(|e| panic!("{}: {e}", f.path));
        std::io::Read::read_to_end(&mut file, &mut got).unwrap();
        let want = match &f.source {
            Source::Bytes(b) => b.clone(),
            Source::File(p) => fs::read(p).unwrap(),
        };
        assert!(got == want, "{} differs", f.path);
        let modified = file_modified(&esp, &f.path);
        assert_eq!(modified, (2023, 11, 14), "{}", f.path);
    }
    drop(esp);

    // ROOT and OEM: clean ext4 with our labels, UUIDs and content.
    for (kind, label, uuid) in [
        (PartKind::Root, "ROOT", spec.guids.root_fs),
        (PartKind::Oem, "OEM", spec.guids.oem_fs),
    ] {
        let path = dir.join(format!("{label}.ext4"));
        extract(&img, &info, kind, &path);
        tools
            .cmd("e2fsck")
            .unwrap()
            .arg("-fn")
            .arg(&path)
            .run()
            .unwrap_or_else(|e| panic!("e2fsck of {label}: {e:#}"));
        let sb = tools
            .cmd("dumpe2fs")
            .unwrap()
            .arg("-h")
            .arg(&path)
            .output_all()
            .unwrap();
        assert!(
            sb.contains(&format!("Filesystem volume name:   {label}")),
            "{sb}"
        );
        assert!(
            sb.contains(&format!("Filesystem UUID:          {uuid}")),
            "{sb}"
        );
    }
    let debugfs = |fs: &str, req: &str| {
        tools
            .cmd("debugfs")
            .unwrap()
            .arg("-R")
            .arg(req)
            .arg(dir.join(fs))
            .output()
            .map(|o| String::from_utf8_lossy(&o).into_owned())
            .unwrap()
    };
    let top = debugfs("ROOT.ext4", "ls -l /");
    for name in ["bin", "etc", "home", "var", "usr", "lost+found"] {
        assert!(top.contains(&format!(" {name}")), "{name} missing: {top}");
    }
    let usr_dir = debugfs("ROOT.ext4", "ls /usr");
    assert!(
        !usr_dir.contains("bin"),
        "/usr is not empty on ROOT: {usr_dir}"
    );
    assert!(debugfs("ROOT.ext4", "stat /bin").contains("Fast link dest: \"usr/bin\""));
    assert!(
        debugfs("ROOT.ext4", "stat /var/lib/dpkg")
            .contains("Fast link dest: \"../../usr/lib/sysimage/dpkg\"")
    );
    // Modes and owners come from the tree; times are the epoch.
    for (path, mode) in [("/root", "0700"), ("/tmp", "01777"), ("/usr", "0755")] {
        let stat = debugfs("ROOT.ext4", &format!("stat {path}"));
        assert!(stat.contains(&format!("Mode:  {mode} ")), "{path}: {stat}");
        assert!(
            stat.contains("User:     0   Group:     0"),
            "{path}: {stat}"
        );
        for t in ["ctime", "mtime", "crtime"] {
            assert!(
                stat.contains(&format!("{t}: 0x6553f100:")),
                "{path}: {stat}"
            );
        }
    }
    assert_eq!(debugfs("OEM.ext4", "cat /oem-release"), "ID=qemu\n");
    assert!(debugfs("OEM.ext4", "cat /grub/oem.cfg").contains("set oem=qemu"));
    // Each OEM file keeps the mode it was given.
    assert!(debugfs("OEM.ext4", "stat /grub/oem.cfg").contains("Mode:  0600 "));
    assert!(debugfs("OEM.ext4", "stat /oem-release").contains("Mode:  0644 "));

    // The same inputs give the same bytes.
    let again = dir.join("again.raw");
    let info2 = disk::write_disk(&spec, tools, &again).unwrap();
    assert_eq!(info2.partitions, info.partitions);
    assert_eq!(sha(&img), sha(&again), "two writes differ");
}

/// The modification date of an ESP file, as (year, month, day).
fn file_modified(esp: &fatfs::FileSystem<fs::File>, path: &str) -> (u16, u16, u16) {
    let path = path.trim_start_matches('/');
    let (dir, name) = path.rsplit_once('/').unwrap_or(("", path));
    let d = if dir.is_empty() {
        esp.root_dir()
    } else {
        esp.root_dir().open_dir(dir).unwrap()
    };
    let e = d
        .iter()
        .map(|e| e.unwrap())
        .find(|e| e.file_name() == name)
        .unwrap();
    let m = e.modified().date;
    (m.year, m.month, m.day)
}

/// Boots `img` in QEMU until GRUB has run grub.cfg (which prints [`MARK`]
/// and halts), with `firmware` arguments; returns the serial log. `None`
/// when QEMU is not installed.
fn boot_to_grub_cfg(img: &Path, firmware: &[&str]) -> Option<String> {
    if Cmd::new("qemu-system-x86_64")
        .arg("--version")
        .run()
        .is_err()
    {
        // .ci/run installs QEMU: in CI its absence is a failure.
        assert!(
            std::env::var_os("CI").is_none(),
            "qemu-system-x86_64 is missing in CI"
        );
        eprintln!("qemu-system-x86_64 is not installed: boot not checked");
        return None;
    }
    let log = img.with_extension("serial.log");
    // grub.cfg halts; the timeout only bounds a hung boot, whose log then
    // fails the assertions below.
    let _ = Cmd::new("timeout")
        .args(["180", "qemu-system-x86_64", "-m", "512", "-display", "none"])
        // TCG: the boot to grub.cfg takes seconds, and it behaves the same
        // everywhere (this machine's /dev/kvm stalled SeaBIOS).
        .args(["-accel", "tcg", "-no-reboot"])
        .arg("-serial")
        .arg(format!("file:{}", log.display()))
        .args(firmware)
        .arg("-drive")
        .arg(format!(
            "file={},format=raw,if=virtio,snapshot=on",
            img.display()
        ))
        .run();
    Some(String::from_utf8_lossy(&fs::read(&log).unwrap_or_default()).into_owned())
}

/// A disk for the boot tests, in the test target's scratch folder.
fn boot_disk(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    let img = dir.join("disk.raw");
    disk::write_disk(&spec(&dir), tools(), &img).unwrap();
    img
}

#[test]
fn bios_boots_through_core_img_to_grub_cfg() {
    let img = boot_disk("disk-bios");
    // SeaBIOS (QEMU's default firmware) -> boot.img in the MBR -> core.img
    // in BIOS-BOOT -> (,gpt1)/grub/grub.cfg on the ESP, with grubenv read.
    if let Some(log) = boot_to_grub_cfg(&img, &["-machine", "pc"]) {
        assert!(
            log.contains(&format!("{MARK} ORDER=A B")),
            "serial log:\n{log}"
        );
    }
}

#[test]
fn uefi_boots_shim_and_grub_to_grub_cfg() {
    let code = Path::new("/usr/share/OVMF/OVMF_CODE_4M.fd");
    let vars = Path::new("/usr/share/OVMF/OVMF_VARS_4M.fd");
    if !code.is_file() || !vars.is_file() {
        assert!(std::env::var_os("CI").is_none(), "OVMF is missing in CI");
        eprintln!("OVMF is not installed: UEFI boot not checked");
        return;
    }
    let img = boot_disk("disk-uefi");
    let my_vars = img.with_file_name("vars.fd");
    fs::copy(vars, &my_vars).unwrap();
    // OVMF -> /EFI/BOOT/BOOTX64.EFI (shim) -> grubx64.efi beside it ->
    // /EFI/debian/grub.cfg, with grubenv read from /grub.
    let firmware = [
        "-machine".to_owned(),
        "q35".to_owned(),
        "-drive".to_owned(),
        format!(
            "if=pflash,format=raw,unit=0,readonly=on,file={}",
            code.display()
        ),
        "-drive".to_owned(),
        format!("if=pflash,format=raw,unit=1,file={}", my_vars.display()),
    ];
    let firmware: Vec<&str> = firmware.iter().map(String::as_str).collect();
    if let Some(log) = boot_to_grub_cfg(&img, &firmware) {
        assert!(
            log.contains(&format!("{MARK} ORDER=A B")),
            "serial log:\n{log}"
        );
    }
}

#[test]
fn grubenv_reads_like_grub_editenvs() {
    let work = tempfile::tempdir().unwrap();
    let vars = [
        ("ORDER", "A B"),
        ("A_OK", "1"),
        ("B_OK", "0"),
        ("A_TRY", "0"),
    ];
    let lines = "ORDER=A B\nA_OK=1\nB_OK=0\nA_TRY=0\n";
    let editenv = |path: &Path| tools().cmd("grub-editenv").unwrap().arg(path);
    // GRUB's own reader lists our block's variables.
    let ours = work.path().join("ours");
    fs::write(&ours, disk::grubenv(&vars).unwrap()).unwrap();
    let listed = editenv(&ours).arg("list").output().unwrap();
    assert_eq!(String::from_utf8_lossy(&listed), lines);
    // And grub-editenv's block has the same size and variable lines (it
    // adds a "# WARNING" comment line, which readers skip).
    let theirs = work.path().join("theirs");
    editenv(&theirs).arg("create").run().unwrap();
    let mut set = editenv(&theirs).arg("set");
    for (k, v) in vars {
        set = set.arg(format!("{k}={v}"));
    }
    set.run().unwrap();
    let theirs = fs::read_to_string(&theirs).unwrap();
    assert_eq!(theirs.len(), 1024);
    let var_lines: String = theirs
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_eq!(var_lines, lines);
}

#[test]
fn a_usr_image_too_large_fails_and_leaves_nothing() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    let big = dir.join("usr.img");
    fs::File::create(&big)
        .unwrap()
        .set_len(Mib(3).bytes())
        .unwrap();
    let tree = dir.join("tree");
    fs::create_dir(&tree).unwrap();
    let spec = DiskSpec {
        sizes: DiskSizes {
            esp: Mib(64),
            bios_boot: Mib(1),
            usr: Mib(2),
            oem: Mib(8),
            root: Mib(8),
            total_multiple: Mib(1),
        },
        guids: DiskGuids::from_seed(&Sha256::of(b"too large")),
        usr_a: big,
        usr_b: UsrB::Empty,
        esp_files: Vec::new(),
        root_tree: tree,
        oem_files: Vec::new(),
        root_label: disk::ROOT_FS_LABEL.into(),
        oem_label: disk::OEM_FS_LABEL.into(),
        epoch: 0,
    };
    let out = dir.join("out").join("disk.raw");
    fs::create_dir(out.parent().unwrap()).unwrap();
    // No tools are needed before the /usr copy fails.
    let err = disk::write_disk(&spec, &ToolsTree::at(dir.join("no-tools")), &out).unwrap_err();
    let msg = format!("{err:#}");
    assert!(msg.contains("does not fit in USR-A"), "{msg}");
    let left: Vec<_> = fs::read_dir(out.parent().unwrap()).unwrap().collect();
    assert!(left.is_empty(), "{left:?}");
}
