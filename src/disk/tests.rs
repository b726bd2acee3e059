//! Unit tests of the disk stage's pure parts: layout, identifiers, the
//! BIOS patches, grubenv and FAT times. tests/disk_image.rs writes whole
//! images and checks them with sgdisk, fsck.fat and e2fsck.

use std::str::FromStr;

use super::bios::{patch_core_img, patch_mbr};
use super::esp::fat_time;
use super::*;
use crate::digest::Sha256;

fn sizes() -> DiskSizes {
    DiskSizes {
        esp: Mib(64),
        bios_boot: Mib(2),
        usr: Mib(16),
        oem: Mib(16),
        root: Mib(32),
        total_multiple: Mib(1),
    }
}

fn seed() -> Sha256 {
    Sha256::of(b"test seed")
}

#[test]
fn slots_flip() {
    assert_eq!(!Slot::A, Slot::B);
    assert_eq!(!!Slot::B, Slot::B);
    assert_eq!(Slot::B.dir_name(), "b");
}

#[test]
fn layout_is_aligned_in_order_with_root_last() {
    let guids = DiskGuids::from_seed(&seed());
    let (parts, size) = gpt::layout(&sizes(), &guids).unwrap();
    let labels: Vec<&str> = parts.iter().map(|p| p.label.as_str()).collect();
    assert_eq!(
        labels,
        ["EFI-SYSTEM", "BIOS-BOOT", "USR-A", "USR-B", "OEM", "ROOT"]
    );
    assert_eq!(parts[0].first_lba, 2048);
    for (i, p) in parts.iter().enumerate() {
        assert_eq!(p.number as usize, i + 1);
        assert_eq!(p.first_lba % 2048, 0, "{} not MiB-aligned", p.label);
        assert_eq!(p.len(), sizes().of(p.kind).bytes());
        if i > 0 {
            assert_eq!(p.first_lba, parts[i - 1].last_lba + 1);
        }
    }
    // 1 MiB head + 146 MiB of partitions + 1 MiB for the backup GPT.
    assert_eq!(size, Mib(148).bytes());
    assert_eq!(parts[5].last_lba + 1 + 2048, size / SECTOR);
    assert_eq!(
        parts[2].type_guid.to_string().to_uppercase(),
        "8484680C-9521-48C6-9C11-B0720656F69E"
    );
}

#[test]
fn total_size_rounds_up_to_the_multiple() {
    let mut s = sizes();
    s.total_multiple = Mib(1024);
    let (_, size) = gpt::layout(&s, &DiskGuids::from_seed(&seed())).unwrap();
    assert_eq!(size, Mib(1024).bytes());
}

#[test]
fn zero_sized_partition_is_an_error() {
    let mut s = sizes();
    s.oem = Mib(0);
    let err = gpt::layout(&s, &DiskGuids::from_seed(&seed())).unwrap_err();
    assert!(err.to_string().contains("OEM"), "{err}");
}

#[test]
fn guids_are_stable_distinct_and_version_4() {
    let a = DiskGuids::from_seed(&seed());
    assert_eq!(a, DiskGuids::from_seed(&seed()));
    let other = DiskGuids::from_seed(&Sha256::of(b"other"));
    assert_ne!(a.disk, other.disk);
    let mut all = vec![
        a.disk,
        a.root_fs,
        a.oem_fs,
        a.root_hash_seed,
        a.oem_hash_seed,
    ];
    all.extend(a.partitions);
    for u in &all {
        assert_eq!(u.get_version_num(), 4, "{u}");
        assert_eq!(u.get_variant(), uuid::Variant::RFC4122, "{u}");
    }
    let n = all.len();
    all.sort();
    all.dedup();
    assert_eq!(all.len(), n, "identifiers repeat");
    assert_eq!(a.part(PartKind::Usr(Slot::A)), a.partitions[2]);
}

#[test]
fn core_img_blocklist_points_after_its_first_sector() {
    // 300 sectors and a bit: 301 sectors, 300 after the first.
    let mut core = vec![0u8; 300 * 512 + 17];
    core[510..512].copy_from_slice(&0x820u16.to_le_bytes());
    patch_core_img(&mut core, 264_192).unwrap();
    assert_eq!(
        u64::from_le_bytes(core[500..508].try_into().unwrap()),
        264_193
    );
    assert_eq!(u16::from_le_bytes(core[508..510].try_into().unwrap()), 300);
    assert_eq!(
        u16::from_le_bytes(core[510..512].try_into().unwrap()),
        0x820
    );
    assert!(patch_core_img(&mut [0u8; 512], 1).is_err());
}

#[test]
fn mbr_gets_boot_code_and_keeps_its_table() {
    let mut mbr = [0u8; 512];
    mbr[0x1BE] = 0xEE; // a partition record byte
    mbr[0x1B8] = 0x42; // disk signature
    mbr[510] = 0x55;
    mbr[511] = 0xAA;
    let boot: Vec<u8> = (0..512).map(|i| (i % 251) as u8 | 1).collect();
    patch_mbr(&mut mbr, &boot, 4096).unwrap();
    assert_eq!(mbr[..0x5C], boot[..0x5C]);
    assert_eq!(
        u64::from_le_bytes(mbr[0x5C..0x64].try_into().unwrap()),
        4096
    );
    assert_eq!(mbr[0x64], 0xFF);
    assert_eq!(mbr[0x66..0x68], [0x90, 0x90]);
    assert_eq!(mbr[0x68..0x1B8], boot[0x68..0x1B8]);
    assert_eq!((mbr[0x1B8], mbr[0x1BE]), (0x42, 0xEE));
    assert_eq!(mbr[510..], [0x55, 0xAA]);
    assert!(patch_mbr(&mut mbr, &boot[..100], 1).is_err());
}

#[test]
fn grubenv_is_one_padded_kilobyte() {
    let env = grubenv(&[("ORDER", "A B"), ("A_OK", "1")]).unwrap();
    assert_eq!(env.len(), 1024);
    let text = String::from_utf8(env).unwrap();
    assert!(text.starts_with("# GRUB Environment Block\nORDER=A B\nA_OK=1\n#"));
    assert!(text[42..].bytes().all(|b| b == b'#'));
    assert_eq!(grubenv::<&str, &str>(&[]).unwrap()[25..], [b'#'; 999]);
    assert!(grubenv(&[("A", "x\ny")]).is_err());
    assert!(grubenv(&[("A=B", "x")]).is_err());
    let big = "x".repeat(1000);
    assert!(grubenv(&[("BIG", &big)]).is_err());
}

#[test]
fn fat_times_from_the_epoch() {
    // 2024-02-29T12:34:56Z (a leap day).
    let t = fat_time(1_709_210_096);
    assert_eq!((t.date.year, t.date.month, t.date.day), (2024, 2, 29));
    assert_eq!((t.time.hour, t.time.min, t.time.sec), (12, 34, 56));
    // Before FAT's 1980 start: clamped.
    let t = fat_time(0);
    assert_eq!((t.date.year, t.date.month, t.date.day), (1980, 1, 1));
    let t = fat_time(u64::MAX);
    assert_eq!((t.date.year, t.date.month, t.date.day), (2107, 12, 31));
}

#[test]
fn paths_inside_filesystems_are_plain() {
    assert_eq!(
        components("/EFI/BOOT/BOOTX64.EFI").unwrap(),
        ["EFI", "BOOT", "BOOTX64.EFI"]
    );
    assert!(components("/EFI/../x").is_err());
    assert!(components("/").is_err());
}

#[test]
fn type_guids_match_the_specifications() {
    for (kind, want) in [
        (PartKind::Esp, "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"),
        (PartKind::BiosBoot, "21686148-6449-6E6F-744E-656564454649"),
        (PartKind::Oem, "0FC63DAF-8483-4772-8E79-3D69D8477DE4"),
        (PartKind::Root, "4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709"),
    ] {
        assert_eq!(kind.type_guid(), uuid::Uuid::from_str(want).unwrap());
    }
}

/// An ESP of `size` at 1 MiB, as the disk stage places it.
fn esp_part(size: Mib) -> PartInfo {
    PartInfo {
        kind: PartKind::Esp,
        label: "EFI-SYSTEM".into(),
        number: 1,
        first_lba: 2048,
        last_lba: 2048 + size.sectors() - 1,
        type_guid: PartKind::Esp.type_guid(),
        part_guid: uuid::Uuid::nil(),
    }
}

/// fatfs 0.3.6 alone leaves [LFN(.), ., LFN(..), ..] at the start of a
/// new folder; after `esp::write` the folder starts with `.` and `..`,
/// and a first-level folder's `..` is cluster 0.
#[test]
fn esp_folders_start_with_dot_entries() {
    use std::os::unix::fs::FileExt;
    let file = tempfile::tempfile().unwrap();
    let part = esp_part(Mib(40));
    file.set_len(Mib(42).bytes()).unwrap();
    let files = vec![EspFile {
        path: "/EFI/BOOT/grubx64.efi".into(),
        source: Source::Bytes(b"grub".to_vec()),
    }];
    esp::write(&file, &part, &files, 0x1234_5678, 1_700_000_000).unwrap();

    let read = |at: u64, n: usize| {
        let mut b = vec![0u8; n];
        file.read_exact_at(&mut b, part.offset() + at).unwrap();
        b
    };
    let bs = read(0, 512);
    let u16_at = |o: usize| u64::from(u16::from_le_bytes([bs[o], bs[o + 1]]));
    let u32_at = |o: usize| u64::from(u32::from_le_bytes(bs[o..o + 4].try_into().unwrap()));
    let cluster_bytes = u16_at(11) * u64::from(bs[13]);
    let data = (u16_at(14) + u64::from(bs[16]) * u32_at(36)) * u16_at(11);
    let cluster = |c: u64| data + (c - 2) * cluster_bytes;
    let entry_cluster = |e: &[u8]| {
        (u64::from(u16::from_le_bytes([e[20], e[21]])) << 16)
            | u64::from(u16::from_le_bytes([e[26], e[27]]))
    };
    let root = read(cluster(u32_at(44)), 512);
    let efi = root
        .chunks(32)
        .find(|e| &e[..11] == b"EFI        " && e[11] & 0x10 != 0)
        .expect("no EFI folder in the root");
    let efi_dir = read(cluster(entry_cluster(efi)), 512);
    assert_eq!(&efi_dir[..11], b".          ");
    assert_eq!(&efi_dir[32..43], b"..         ");
    assert_eq!(
        entry_cluster(&efi_dir[32..64]),
        0,
        "first-level .. is the root"
    );
    let boot = efi_dir
        .chunks(32)
        .find(|e| &e[..11] == b"BOOT       " && e[11] & 0x10 != 0)
        .expect("no BOOT folder in /EFI");
    let boot_dir = read(cluster(entry_cluster(boot)), 512);
    assert_eq!(&boot_dir[..11], b".          ");
    assert_eq!(entry_cluster(&boot_dir[32..64]), entry_cluster(efi));
}

#[test]
fn esp_too_small_for_fat32_is_an_error() {
    let file = tempfile::tempfile().unwrap();
    file.set_len(Mib(9).bytes()).unwrap();
    let part = esp_part(Mib(8));
    let err = esp::write(&file, &part, &[], 1, 0).unwrap_err();
    assert!(format!("{err:#}").contains("FAT32"), "{err:#}");
}
