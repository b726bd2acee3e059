//! The generated grub.cfg's A/B selection, booted for real: a GPT disk with
//! one FAT ESP (made here by hand with the tools tree's mkfs.fat and
//! mtools, since the disk writer is another stage), Debian's signed shim
//! and grubx64.efi, OVMF, TCG. Each slot folder holds trixie's kernel and a
//! slot.cfg with that slot's own values; a boot ends when the kernel prints
//! its command line, which shows the slot GRUB chose and that slot.cfg's
//! variables reached the kernel, and that GRUB read the qemu platform's
//! snippet from the disk's ext4 OEM partition (its console, craton.platform
//! and arguments, and /oem's mount). The environment block is read back
//! with mtools after each boot.

use std::path::{Path, PathBuf};
use std::time::Duration;

use craton::boot::grubcfg::{BootConfig, grub_cfg, initial_grubenv_vars, slot_cfg};
use craton::boot::{Slot, SlotEntry, decode_grubenv, encode_grubenv};
use craton::profile::UsrFilesystem;
use craton::qemu::{self, Accel, Firmware, QemuRun};
use craton::tools::ToolsTree;
use craton::update::AbState;
use craton::update::offline::SlotAction;

/// 512-byte sectors; the ESP starts at 1 MiB (docs/architecture.md "Disk
/// layout").
const SECTOR: u64 = 512;
const ESP_START: u64 = 2048;
const ESP_SECTORS: u64 = 64 * 2048;
/// The ESP type, UEFI specification 2.10 table 5.7.
const ESP_TYPE: &str = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B";
/// Any type serves the placeholders: GRUB's probe reads the entry's own
/// GUID (Discoverable Partitions Specification, "Generic Linux data").
const LINUX_TYPE: &str = "0FC63DAF-8483-4772-8E79-3D69D8477DE4";
/// (partition number, PARTUUID) of USR-A, USR-B and ROOT; upper case here,
/// as GPT tools print them, lower case on the command line.
const PARTS: [(u32, &str); 3] = [
    (3, "AAAAAAAA-1111-4222-8333-444444444444"),
    (4, "BBBBBBBB-1111-4222-8333-444444444444"),
    (6, "CCCCCCCC-1111-4222-8333-444444444444"),
];

fn tools() -> ToolsTree {
    crate::support::tools().clone()
}

/// A GUID in GPT's on-disk order (first three fields little-endian).
fn guid_bytes(s: &str) -> [u8; 16] {
    let hex: String = s.chars().filter(|c| *c != '-').collect();
    let b: Vec<u8> = (0..16)
        .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap())
        .collect();
    let mut out = [0u8; 16];
    out[..4].copy_from_slice(&[b[3], b[2], b[1], b[0]]);
    out[4..6].copy_from_slice(&[b[5], b[4]]);
    out[6..8].copy_from_slice(&[b[7], b[6]]);
    out[8..].copy_from_slice(&b[8..]);
    out
}

fn crc32(data: &[u8]) -> u32 {
    let mut c = flate2::Crc::new();
    c.update(data);
    c.sum()
}

/// A disk with a protective MBR and a GPT holding one ESP (UEFI spec 2.10
/// section 5.3), primary and backup.
/// OEM (partition 5): ext4 with the qemu platform's GRUB snippet, after
/// the three small entries.
const OEM_FIRST: u64 = ESP_START + ESP_SECTORS + 64;
const OEM_SECTORS: u64 = 4096;
const OEM_PARTUUID: &str = "DDDDDDDD-1111-4222-8333-444444444444";

fn write_gpt(disk: &Path) {
    let total = OEM_FIRST + OEM_SECTORS + 2048;
    let last = total - 1;
    let mut img = vec![0u8; (34 * SECTOR) as usize];
    // Protective MBR: one 0xEE partition over the disk.
    img[446 + 4] = 0xEE;
    img[446 + 1..446 + 4].copy_from_slice(&[0, 2, 0]);
    img[446 + 5..446 + 8].copy_from_slice(&[0xFF, 0xFF, 0xFF]);
    img[446 + 8..446 + 12].copy_from_slice(&1u32.to_le_bytes());
    img[446 + 12..446 + 16].copy_from_slice(&((total - 1) as u32).to_le_bytes());
    img[510] = 0x55;
    img[511] = 0xAA;
    let mut entries = vec![0u8; 128 * 128];
    entries[..16].copy_from_slice(&guid_bytes(ESP_TYPE));
    entries[16..32].copy_from_slice(&guid_bytes("3F1B5E2A-6C7D-4E8F-9A0B-1C2D3E4F5A6B"));
    entries[32..40].copy_from_slice(&ESP_START.to_le_bytes());
    entries[40..48].copy_from_slice(&(ESP_START + ESP_SECTORS - 1).to_le_bytes());
    for (i, u) in "EFI-SYSTEM".encode_utf16().enumerate() {
        entries[56 + 2 * i..58 + 2 * i].copy_from_slice(&u.to_le_bytes());
    }
    // USR-A, USR-B and ROOT as small placeholders at their numbers (3, 4
    // and 6), whose PARTUUIDs GRUB reads for the command line.
    for (k, (n, uuid)) in PARTS.iter().enumerate() {
        let e = &mut entries[(*n as usize - 1) * 128..*n as usize * 128];
        let first = ESP_START + ESP_SECTORS + 8 * k as u64;
        e[..16].copy_from_slice(&guid_bytes(LINUX_TYPE));
        e[16..32].copy_from_slice(&guid_bytes(uuid));
        e[32..40].copy_from_slice(&first.to_le_bytes());
        e[40..48].copy_from_slice(&(first + 7).to_le_bytes());
    }
    {
        let e = &mut entries[4 * 128..5 * 128];
        e[..16].copy_from_slice(&guid_bytes(LINUX_TYPE));
        e[16..32].copy_from_slice(&guid_bytes(OEM_PARTUUID));
        e[32..40].copy_from_slice(&OEM_FIRST.to_le_bytes());
        e[40..48].copy_from_slice(&(OEM_FIRST + OEM_SECTORS - 1).to_le_bytes());
        for (i, u) in "OEM".encode_utf16().enumerate() {
            e[56 + 2 * i..58 + 2 * i].copy_from_slice(&u.to_le_bytes());
        }
    }
    let header = |current: u64, backup: u64, entries_lba: u64| {
        let mut h = vec![0u8; 92];
        h[..8].copy_from_slice(b"EFI PART");
        h[8..12].copy_from_slice(&0x0001_0000u32.to_le_bytes());
        h[12..16].copy_from_slice(&92u32.to_le_bytes());
        h[24..32].copy_from_slice(&current.to_le_bytes());
        h[32..40].copy_from_slice(&backup.to_le_bytes());
        h[40..48].copy_from_slice(&34u64.to_le_bytes());
        h[48..56].copy_from_slice(&(last - 33).to_le_bytes());
        h[56..72].copy_from_slice(&guid_bytes("9D4C2B1A-0F8E-4D7C-8B6A-5F4E3D2C1B0A"));
        h[72..80].copy_from_slice(&entries_lba.to_le_bytes());
        h[80..84].copy_from_slice(&128u32.to_le_bytes());
        h[84..88].copy_from_slice(&128u32.to_le_bytes());
        h[88..92].copy_from_slice(&crc32(&entries).to_le_bytes());
        let crc = crc32(&h);
        h[16..20].copy_from_slice(&crc.to_le_bytes());
        h
    };
    img[512..604].copy_from_slice(&header(1, last, 2));
    img[1024..1024 + entries.len()].copy_from_slice(&entries);
    let mut tail = entries.clone();
    tail.resize((33 * SECTOR) as usize, 0);
    tail[(32 * SECTOR) as usize..(32 * SECTOR) as usize + 92].copy_from_slice(&header(
        last,
        1,
        last - 32,
    ));
    let f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(disk)
        .unwrap();
    f.set_len(total * SECTOR).unwrap();
    use std::os::unix::fs::FileExt;
    f.write_all_at(&img, 0).unwrap();
    f.write_all_at(&tail, (last - 32) * SECTOR).unwrap();
}

/// mtools' image argument for the ESP inside the disk.
fn esp(disk: &Path) -> String {
    format!("{}@@{}", disk.display(), ESP_START * SECTOR)
}

fn mtools(tools: &ToolsTree, prog: &str, args: &[&str]) -> Vec<u8> {
    tools
        .cmd(prog)
        .unwrap()
        .env("MTOOLS_SKIP_CHECK", "1")
        .args(args)
        .output()
        .unwrap()
}

fn put(tools: &ToolsTree, disk: &Path, src: &Path, dst: &str) {
    mtools(
        tools,
        "mcopy",
        &[
            "-o",
            "-i",
            &esp(disk),
            &src.to_string_lossy(),
            &format!("::{dst}"),
        ],
    );
}

fn put_bytes(tools: &ToolsTree, disk: &Path, data: &[u8], dst: &str) {
    let f = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(f.path(), data).unwrap();
    put(tools, disk, f.path(), dst);
}

fn read_env(tools: &ToolsTree, disk: &Path) -> Vec<(String, String)> {
    let block = mtools(tools, "mtype", &["-i", &esp(disk), "::/grub/grubenv"]);
    decode_grubenv(&block).unwrap()
}

fn get(env: &[(String, String)], name: &str) -> String {
    env.iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.clone())
        .unwrap_or_else(|| panic!("{name} not in {env:?}"))
}

fn entry(slot: Slot, hash_byte: &str) -> SlotEntry {
    SlotEntry::new(
        slot,
        "1.0",
        &hash_byte.repeat(32),
        4096,
        UsrFilesystem::Erofs,
    )
    .unwrap()
}

/// The ESP as the disk stage will lay it out, with both slots filled.
fn make_disk(dir: &Path) -> PathBuf {
    let tools = tools();
    let disk = dir.join("disk.raw");
    write_gpt(&disk);
    tools
        .cmd("mkfs.fat")
        .unwrap()
        .args(["-F", "32", "-s", "1", "-n", "EFI-SYSTEM", "--offset"])
        .arg(ESP_START.to_string())
        .arg(&disk)
        .arg((ESP_SECTORS / 2).to_string())
        .run()
        .unwrap();
    for d in [
        "/EFI",
        "/EFI/BOOT",
        "/EFI/debian",
        "/grub",
        "/craton",
        "/craton/a",
        "/craton/b",
    ] {
        mtools(&tools, "mmd", &["-i", &esp(&disk), &format!("::{d}")]);
    }
    put(
        &tools,
        &disk,
        &tools.path("usr/lib/shim/shimx64.efi.signed"),
        "/EFI/BOOT/BOOTX64.EFI",
    );
    put(
        &tools,
        &disk,
        &tools.path("usr/lib/grub/x86_64-efi-signed/grubx64.efi.signed"),
        "/EFI/BOOT/grubx64.efi",
    );
    let cfg = grub_cfg(&BootConfig {
        timeout_secs: 0,
        kernel_args: vec!["panic=-1".into()],
    });
    // The qemu platform's OEM partition, made as the disk stage makes it
    // (ext4 from the tools tree): GRUB reads its snippet from this disk.
    let oem = dir.join("oem");
    std::fs::create_dir(&oem).unwrap();
    let settings = craton::profile::PlatformSettings {
        console: Some("ttyS0,115200n8".into()),
        kernel_args: vec!["oem.arg=1".into()],
        ..Default::default()
    };
    for f in craton::platform::oem::files(craton::profile::Platform::Qemu, &settings, None) {
        std::fs::write(oem.join(&f.path), &f.data).unwrap();
    }
    tools
        .cmd("mke2fs")
        .unwrap()
        .env("MKE2FS_CONFIG", tools.path("etc/mke2fs.conf"))
        .args([
            "-q",
            "-F",
            "-t",
            "ext4",
            "-O",
            "^has_journal",
            "-b",
            "1024",
            "-E",
        ])
        .arg(format!("offset={}", OEM_FIRST * SECTOR))
        .arg("-d")
        .arg(&oem)
        .arg(&disk)
        .arg((OEM_SECTORS / 2).to_string())
        .run()
        .unwrap();
    put_bytes(&tools, &disk, cfg.as_bytes(), "/EFI/debian/grub.cfg");
    put_bytes(&tools, &disk, cfg.as_bytes(), "/grub/grub.cfg");
    let env = encode_grubenv(&initial_grubenv_vars(true)).unwrap();
    put_bytes(&tools, &disk, &env, "/grub/grubenv");
    let kernel = crate::kernel();
    for (slot, byte) in [(Slot::A, "aa"), (Slot::B, "bb")] {
        let d = format!("/craton/{}", slot.dir_name());
        put_bytes(
            &tools,
            &disk,
            slot_cfg(&entry(slot, byte)).as_bytes(),
            &format!("{d}/slot.cfg"),
        );
        put(&tools, &disk, &kernel, &format!("{d}/vmlinuz"));
        // No initrd is needed to reach the kernel's command line.
        put_bytes(&tools, &disk, &[0u8; 512], &format!("{d}/initrd"));
    }
    disk
}

/// Writes the A/B state `state` into the disk's block (as the on-host
/// updater would, through the shared state code).
fn put_state(tools: &ToolsTree, disk: &Path, state: &AbState) {
    let block = encode_grubenv(&state.to_vars()).unwrap();
    put_bytes(tools, disk, &block, "/grub/grubenv");
}

/// The state in the disk's block.
fn state_of(tools: &ToolsTree, disk: &Path) -> AbState {
    AbState::from_vars(&read_env(tools, disk))
}

/// Boots the disk and checks that GRUB took the slot, and the trial or
/// not, that craton's model of grub.cfg (`AbState::next_boot`) predicts
/// from the block it booted with.
fn boot_as_predicted(tools: &ToolsTree, disk: &Path, what: &str) -> (Slot, bool, String, String) {
    let (want, trial) = state_of(tools, disk).next_boot();
    let (line, log, t) = boot(disk);
    eprintln!("boot {what} ({want}, trial {trial}): {t:?}");
    assert_booted(&line, want);
    assert_eq!(
        line.contains(" craton.trial=1 panic=10"),
        trial,
        "{what}: {line}"
    );
    (want, trial, line, log)
}

/// Boots the disk; returns the kernel command line and the elapsed time.
fn boot(disk: &Path) -> (String, String, Duration) {
    boot_with(disk, false)
}

fn boot_with(disk: &Path, secure_boot: bool) -> (String, String, Duration) {
    let mut run = QemuRun::new(Some(disk.to_owned()), Firmware::Uefi);
    run.secure_boot = secure_boot;
    run.accel = Some(Accel::Tcg);
    run.memory_mib = 256;
    run.timeout = Duration::from_secs(180);
    run.marker = Some("Kernel command line:".into());
    let r = qemu::run(&run).unwrap();
    let line = r
        .serial_log
        .lines()
        .find(|l| l.contains("Kernel command line:"))
        .unwrap()
        .to_owned();
    (line, r.serial_log, r.elapsed)
}

fn assert_booted(line: &str, slot: Slot) {
    let (dir, byte, uuid) = match slot {
        Slot::A => ("a", "aa", "aaaaaaaa"),
        Slot::B => ("b", "bb", "bbbbbbbb"),
    };
    for want in [
        format!("BOOT_IMAGE=/craton/{dir}/vmlinuz"),
        format!("craton.slot={dir}"),
        format!("usrhash={}", byte.repeat(32)),
        format!("systemd.verity_usr_data=PARTUUID={uuid}-1111-4222-8333-444444444444"),
        "root=PARTUUID=cccccccc-1111-4222-8333-444444444444".to_owned(),
        "mount.usrfstype=erofs".to_owned(),
        "systemd.verity_usr_options=hash-offset=4096".to_owned(),
        // From the OEM partition's snippet, after the ESP's own arguments,
        // split into words; /oem is that partition of this disk.
        "panic=-1 console=ttyS0,115200n8 craton.platform=qemu ignition.platform.id=qemu oem.arg=1".to_owned(),
        "systemd.mount-extra=PARTUUID=dddddddd-1111-4222-8333-444444444444:/oem:ext4:ro,nosuid,nodev,noexec,nofail".to_owned(),
    ] {
        assert!(line.contains(&want), "{want} not in {line}");
    }
}

#[test]
fn grub_selects_slots_by_order_ok_and_try() {
    let _serial = crate::QEMU_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let tools = tools();
    let dir = tempfile::tempdir().unwrap();
    let disk = make_disk(dir.path());

    // 1: a new image boots A, good, with no trial and no TRY written.
    let (_, _, line, log) = boot_as_predicted(&tools, &disk, "1 (new image)");
    assert!(log.contains("craton: booting slot A"), "{log}");
    let env = read_env(&tools, &disk);
    assert_eq!(
        (get(&env, "A_TRY"), get(&env, "B_TRY")),
        ("0".into(), "0".into())
    );
    // The image's DISK_ID=image became claimed, in the same write, and
    // reached the kernel (no initrd runs here to give the disk its own
    // identifiers, so it stays claimed).
    assert_eq!(get(&env, "DISK_ID"), "claimed");
    assert!(line.contains(" craton.disk-id=claimed "), "{line}");

    // 2: an update installed into B: pending, so tried once, on trial.
    let mut s = state_of(&tools, &disk);
    s.begin_install(Slot::B);
    s.commit_install(Slot::B);
    put_state(&tools, &disk, &s);
    let (slot, trial, _, log) = boot_as_predicted(&tools, &disk, "2 (B pending)");
    assert_eq!((slot, trial), (Slot::B, true));
    assert!(log.contains("craton: slot B on trial"), "{log}");
    let env = read_env(&tools, &disk);
    assert_eq!(
        (get(&env, "B_OK"), get(&env, "B_TRY")),
        ("0".into(), "1".into())
    );

    // 3: the trial was not confirmed: back to A, and A it stays.
    let (slot, trial, _, _) = boot_as_predicted(&tools, &disk, "3 (B failed)");
    assert_eq!((slot, trial), (Slot::A, false));
    let (slot, _, _, _) = boot_as_predicted(&tools, &disk, "3b (A again)");
    assert_eq!(slot, Slot::A);

    // 4: B confirmed (here with `craton slot`, the offline editor of the
    // same state): B from now on, with no trial.
    craton::update::offline::slot(&disk, SlotAction::MarkGood(Slot::B)).unwrap();
    let (slot, trial, _, _) = boot_as_predicted(&tools, &disk, "4 (B good)");
    assert_eq!((slot, trial), (Slot::B, false));

    // 5: a pending slot whose kernel is missing: GRUB's entry fails and
    // its fallback, the other slot's entry, boots.
    let mut s = state_of(&tools, &disk);
    s.begin_install(Slot::A);
    s.commit_install(Slot::A);
    put_state(&tools, &disk, &s);
    mtools(&tools, "mdel", &["-i", &esp(&disk), "::/craton/a/vmlinuz"]);
    let (line, log, t) = boot(&disk);
    eprintln!("boot 5 (A pending without a kernel -> B): {t:?}");
    assert!(log.contains("craton: slot A on trial"), "{log}");
    assert_booted(&line, Slot::B);
    put(&tools, &disk, &crate::kernel(), "/craton/a/vmlinuz");

    // 6: A marked bad by hand: B boots although A comes first in ORDER.
    let vars: Vec<(String, String)> = [
        ("ORDER", "A B"),
        ("A_OK", "0"),
        ("A_TRY", "1"),
        ("B_OK", "1"),
        ("B_TRY", "0"),
        // A tampered value does not reach the command line.
        ("DISK_ID", "machine init=/bin/sh"),
    ]
    .iter()
    .map(|(n, v)| (n.to_string(), v.to_string()))
    .collect();
    put_bytes(
        &tools,
        &disk,
        &encode_grubenv(&vars).unwrap(),
        "/grub/grubenv",
    );
    let (slot, _, line, _) = boot_as_predicted(&tools, &disk, "6 (A bad -> B)");
    assert_eq!(slot, Slot::B);
    // Only the values the initrd knows reach the kernel.
    assert!(line.contains(" craton.disk-id=machine "), "{line}");
    assert!(!line.contains("init=/bin/sh"), "{line}");
    // GRUB rewrote the block in place at its full size.
    let block = mtools(&tools, "mtype", &["-i", &esp(&disk), "::/grub/grubenv"]);
    assert_eq!(block.len(), 1024);
}

/// The same chain with Secure Boot enforced (Microsoft's keys, as on real
/// machines): shim verifies GRUB, GRUB (locked down) still reads and writes
/// the environment block and verifies Debian's signed kernel through shim.
#[test]
fn secure_boot_chain_boots_slot_a() {
    let _serial = crate::QEMU_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let tools = tools();
    let dir = tempfile::tempdir().unwrap();
    let disk = make_disk(dir.path());
    let (line, log, t) = boot_with(&disk, true);
    eprintln!("secure boot (A): {t:?}");
    assert_booted(&line, Slot::A);
    assert!(log.contains("Secure boot enabled"), "{log}");
    // GRUB wrote the block (the disk is claimed) under lockdown.
    let env = read_env(&tools, &disk);
    assert_eq!(get(&env, "DISK_ID"), "claimed");
}

/// The same grub.cfg under BIOS GRUB (i386-pc) with a core.img of the
/// disk stage's modules (`disk::CORE_MODULES`). Instead of boot.img and
/// core.img on a disk, SeaBIOS starts GRUB as a Linux-format kernel: GRUB's
/// lnxboot.img in front of core.img (GRUB manual "Images"), with the ESP
/// as prefix, so the script, load_env and save_env run on the BIOS build.
#[test]
fn bios_grub_selects_slot_a_then_b() {
    let _serial = crate::QEMU_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let tools = tools();
    let dir = tempfile::tempdir().unwrap();
    let disk = make_disk(dir.path());
    let core = dir.path().join("core.img");
    tools
        .cmd("grub-mkimage")
        .unwrap()
        .arg("-d")
        .arg(tools.path("usr/lib/grub/i386-pc"))
        .args(["-O", "i386-pc", "-p", "(hd0,gpt1)/grub", "-o"])
        .arg(&core)
        .args(craton::disk::CORE_MODULES)
        .run()
        .unwrap();
    let mut lnx = std::fs::read(tools.path("usr/lib/grub/i386-pc/lnxboot.img")).unwrap();
    lnx.extend(std::fs::read(&core).unwrap());
    let grub = dir.path().join("grub.lnx");
    std::fs::write(&grub, lnx).unwrap();
    for (n, want) in [(1, Slot::A), (2, Slot::B)] {
        if want == Slot::B {
            // An update into B: pending, tried at this boot.
            let mut s = state_of(&tools, &disk);
            s.begin_install(Slot::B);
            s.commit_install(Slot::B);
            put_state(&tools, &disk, &s);
        }
        let mut run = QemuRun::new(Some(disk.clone()), Firmware::Bios);
        run.accel = Some(Accel::Tcg);
        run.memory_mib = 256;
        run.timeout = Duration::from_secs(180);
        run.marker = Some("Kernel command line:".into());
        run.extra_args = vec!["-kernel".into(), grub.to_string_lossy().into_owned()];
        let r = qemu::run(&run).unwrap();
        eprintln!("BIOS boot {n} ({want}): {:?}", r.elapsed);
        let line = r
            .serial_log
            .lines()
            .find(|l| l.contains("Kernel command line:"))
            .unwrap();
        assert_booted(line, want);
    }
    let env = read_env(&tools, &disk);
    assert_eq!(
        (get(&env, "A_TRY"), get(&env, "B_TRY")),
        ("0".into(), "1".into())
    );
}
