//! Tests of the qcow2 reader against images qemu-img writes, images it
//! refuses, and damaged ones.

use std::fs;
use std::path::PathBuf;

use rand::{Rng, SeedableRng, rngs::StdRng};

use super::*;
use crate::tools::ToolsTree;

const MIB: usize = 1 << 20;

/// A raw disk of `size` bytes: each sector's bytes derive from its
/// number, with a 1 MiB hole, every 7th sector zero, and data at the end.
fn raw_disk(dir: &Path, size: usize) -> (PathBuf, Vec<u8>) {
    let mut d = vec![0u8; size];
    for (i, s) in d.chunks_mut(512).enumerate() {
        if i % 7 != 3 && !(2048..4096).contains(&i) {
            for (j, b) in s.iter_mut().enumerate() {
                *b = ((i * 31 + j) % 251 + 1) as u8;
            }
        }
    }
    let path = dir.join("disk.raw");
    fs::write(&path, &d).unwrap();
    (path, d)
}

fn tools() -> &'static ToolsTree {
    crate::build::test_tools()
}

fn convert(raw: &Path, name: &str, opts: &[&str]) -> PathBuf {
    let dst = raw.with_file_name(name);
    let qemu_img = tools().cmd("qemu-img").unwrap();
    let args = ["convert", "-q", "-f", "raw", "-O", "qcow2"];
    qemu_img
        .args(args)
        .args(opts)
        .arg(raw)
        .arg(&dst)
        .run()
        .unwrap();
    dst
}

/// Reads the whole disk and pieces of it that cross cluster edges.
fn check_reads(img: &Path, want: &[u8]) {
    let mut q = Qcow2::open_path(img).unwrap();
    assert_eq!(q.size(), want.len() as u64);
    let mut all = Vec::new();
    q.read_to_end(&mut all).unwrap();
    assert!(all == want, "{} differs", img.display());
    let cs = q.cluster_size() as usize;
    let size = want.len();
    for at in [
        0,
        1,
        511,
        cs - 1,
        cs + 7,
        3 * cs - 100,
        MIB - 1,
        size - 10,
        size - 4000,
    ] {
        for len in [1, 100, 513, cs + 1, 70_000, 3 * MIB] {
            let end = (at + len).min(size);
            q.seek(SeekFrom::Start(at as u64)).unwrap();
            let mut b = vec![0u8; end - at];
            q.read_exact(&mut b).unwrap();
            assert!(b == want[at..end], "{} at {at} len {len}", img.display());
        }
    }
    assert_eq!(q.seek(SeekFrom::End(0)).unwrap(), size as u64);
    assert_eq!(q.read(&mut [0u8; 10]).unwrap(), 0);
    assert!(q.seek(SeekFrom::Current(-(size as i64) - 1)).is_err());
}

#[test]
fn reads_what_qemu_img_wrote() {
    let dir = tempfile::tempdir().unwrap();
    // Not a multiple of any cluster size: the last cluster is partial.
    let (raw, want) = raw_disk(dir.path(), 6 * MIB + 3584);
    let cases: &[(&str, &[&str])] = &[
        ("v3.qcow2", &[]),
        ("v2.qcow2", &["-o", "compat=0.10"]),
        ("c64k.qcow2", &["-c"]),
        ("c4k.qcow2", &["-c", "-o", "cluster_size=4096"]),
        ("c2m.qcow2", &["-c", "-o", "cluster_size=2M"]),
        ("512.qcow2", &["-o", "cluster_size=512"]),
        ("2m.qcow2", &["-o", "cluster_size=2M"]),
    ];
    for (name, opts) in cases {
        let img = convert(&raw, name, opts);
        let mut head = [0u8; 4];
        File::open(&img).unwrap().read_exact(&mut head).unwrap();
        assert!(is_qcow2(&head));
        check_reads(&img, &want);
    }
    assert!(!is_qcow2(&want[..4]));
}

#[test]
fn zero_clusters_read_as_zeros() {
    let dir = tempfile::tempdir().unwrap();
    let (raw, mut want) = raw_disk(dir.path(), 2 * MIB);
    let img = convert(&raw, "z.qcow2", &[]);
    // write -z on allocated clusters sets their zero flag (version 3).
    let io = tools().cmd("qemu-io").unwrap();
    io.args(["-f", "qcow2", "-c", "write -z 65536 131072"])
        .arg(&img)
        .run()
        .unwrap();
    want[65536..196_608].fill(0);
    check_reads(&img, &want);
    // Those clusters are flagged, not unallocated.
    let mut q = Qcow2::open_path(&img).unwrap();
    let l2 = q.l1[0] & OFFSET_MASK;
    assert_eq!(q.l2_entry(l2, 1).unwrap() & L2_ZERO, L2_ZERO);
}

/// Patches `bytes` at `at` into a copy of `img` and returns the error.
fn open_patched(img: &Path, at: usize, bytes: &[u8]) -> String {
    let mut b = fs::read(img).unwrap();
    b[at..at + bytes.len()].copy_from_slice(bytes);
    let err = Qcow2::open(io::Cursor::new(b)).unwrap_err();
    format!("{err:#}")
}

#[test]
fn refuses_what_it_does_not_read() {
    let dir = tempfile::tempdir().unwrap();
    let (raw, _) = raw_disk(dir.path(), MIB);
    let img = convert(&raw, "r.qcow2", &[]);
    let cases: &[(usize, &[u8], &str)] = &[
        (0, b"QFI\0", "not a qcow2 image"),
        (4, &[0, 0, 0, 4], "qcow2 version 4"),
        (20, &[0, 0, 0, 8], "cluster_bits 8"),
        (20, &[0, 0, 0, 22], "cluster_bits 22"),
        (24, &[2, 0, 0, 0, 0, 0, 0, 0], "above the format's 64 PB"),
        (24, &[0, 1, 0, 0, 0, 0, 0, 0], "the L1 table has 1 entries"),
        (32, &[0, 0, 0, 2], "encrypted"),
        (79, &[1 << 1], "marked corrupt"),
        (79, &[1 << 2], "external data file"),
        (79, &[1 << 4], "extended L2"),
        (79, &[1 << 3], "compression type 0"),
        (104, &[1], "compression type 1"),
        (
            72,
            &[0, 0, 0, 1, 0, 0, 0, 0],
            "unknown qcow2 incompatible features 0x100000000",
        ),
        (40, &[0, 0, 0, 0, 0, 0, 0x10, 0], "not aligned"),
        (40, &[0, 0, 0, 1, 0, 0, 0, 0], "past the end of the file"),
    ];
    for (at, bytes, want) in cases {
        let err = open_patched(&img, *at, bytes);
        assert!(err.contains(want), "{want}: {err}");
    }
    let qemu_img = || {
        tools()
            .cmd("qemu-img")
            .unwrap()
            .args(["create", "-q", "-f", "qcow2"])
    };
    let over = dir.path().join("over.qcow2");
    qemu_img()
        .args(["-b", "r.qcow2", "-F", "qcow2"])
        .arg(&over)
        .run()
        .unwrap();
    let err = format!("{:#}", Qcow2::open_path(&over).unwrap_err());
    assert!(err.contains("backing file (\"r.qcow2\")"), "{err}");
    for (opt, want) in [
        ("extended_l2=on", "extended L2"),
        ("compression_type=zstd", "type 1"),
    ] {
        let x = dir.path().join("x.qcow2");
        qemu_img()
            .args(["-o", opt])
            .arg(&x)
            .arg("1M")
            .run()
            .unwrap();
        let err = format!("{:#}", Qcow2::open_path(&x).unwrap_err());
        assert!(err.contains(want), "{opt}: {err}");
    }
}

/// Flipped bytes and cut files give errors or data, never a panic or
/// an unbounded allocation.
#[test]
fn survives_damaged_images() {
    let dir = tempfile::tempdir().unwrap();
    let (raw, _) = raw_disk(dir.path(), 256 * 1024);
    let mut rng = StdRng::seed_from_u64(7);
    let mut outcomes = [0usize; 2];
    for (name, opts) in [
        ("c.qcow2", &["-c", "-o", "cluster_size=4096"][..]),
        ("u.qcow2", &["-o", "cluster_size=512"][..]),
    ] {
        let good = fs::read(convert(&raw, name, opts)).unwrap();
        for round in 0..1500 {
            let mut b = good.clone();
            if round % 5 == 0 {
                b.truncate(rng.gen_range(0..good.len()));
            } else {
                // Mostly the metadata at the front, sometimes anywhere.
                let span = if round % 3 == 0 {
                    b.len()
                } else {
                    b.len().min(16 * 4096)
                };
                for _ in 0..rng.gen_range(1..5) {
                    let at = rng.gen_range(0..span);
                    b[at] ^= 1 << rng.gen_range(0..8);
                }
            }
            let ok = read_around(b, &mut rng).is_ok();
            outcomes[usize::from(ok)] += 1;
        }
    }
    eprintln!(
        "damaged images: {} refused or failed a read, {} read",
        outcomes[0], outcomes[1]
    );
    // Both kinds of outcome happen, or the damage was not reaching it.
    assert!(outcomes[0] > 100 && outcomes[1] > 100, "{outcomes:?}");
}

fn read_around(b: Vec<u8>, rng: &mut StdRng) -> Result<()> {
    let mut q = Qcow2::open(io::Cursor::new(b))?;
    let mut sink = Vec::new();
    (&mut q).take(MIB as u64).read_to_end(&mut sink)?;
    for _ in 0..8 {
        q.seek(SeekFrom::Start(
            rng.gen_range(0..q.size().clamp(1, 1 << 40)),
        ))?;
        let mut b = [0u8; 5000];
        let n = q.read(&mut b)?;
        sink.extend_from_slice(&b[..n]);
    }
    Ok(())
}
