//! The /usr image stage against the real tools: craton's verity tree is
//! byte for byte what `veritysetup format` writes, `veritysetup verify`
//! accepts the images and rejects a changed byte, fsck accepts the
//! filesystems, and two builds of the same tree are identical.
//!
//! The tools tree is resolved, fetched and unpacked through the library; the
//! real tree is the test profile's, built by `craton rootfs` (tests/support).

mod support;

use craton::profile::DEFAULT_USR_COMPRESSION;

use std::fs;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::time::Instant;

use craton::digest::Sha256;
use craton::profile::UsrFilesystem;
use craton::tools::ToolsTree;
use craton::usr::{self, verity};
use rand::{Rng, SeedableRng};

const EPOCH: u64 = 1_700_000_000;

fn tools() -> &'static ToolsTree {
    support::tools()
}

/// Runs `veritysetup verify FILE FILE ROOT --hash-offset=N`.
fn verity_verify(image: &Path, root: &str, offset: u64) -> anyhow::Result<()> {
    tools()
        .cmd("veritysetup")?
        .arg("verify")
        .arg(image)
        .arg(image)
        .arg(root)
        .arg(format!("--hash-offset={offset}"))
        .run()
}

/// Pseudo-random blocks (xorshift64: fast even in a debug build).
fn random_file(path: &Path, blocks: usize, seed: u64) {
    let mut x = seed | 1;
    let mut data = Vec::with_capacity(blocks * 4096);
    for _ in 0..blocks * 512 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        data.extend_from_slice(&x.to_le_bytes());
    }
    fs::write(path, data).unwrap();
}

#[test]
fn verity_tree_matches_veritysetup_format() {
    let dir = tempfile::tempdir().unwrap();
    let salt = [0x5au8; verity::SALT_SIZE];
    let uuid = [0x11u8; 16];
    // One block (no level: the root is the block's digest), one level, two
    // levels, and three (more than 128 * 128 blocks).
    for blocks in [1usize, 2, 200, 16_500] {
        let ours = dir.path().join(format!("ours-{blocks}"));
        let theirs = dir.path().join(format!("theirs-{blocks}"));
        random_file(&ours, blocks, blocks as u64);
        fs::copy(&ours, &theirs).unwrap();
        let size = (blocks * 4096) as u64;
        // A gap between data and hash area, as in a partition larger than
        // the filesystem.
        let offset = size + 8192;

        let mut f = fs::File::options()
            .read(true)
            .write(true)
            .open(&ours)
            .unwrap();
        let info = verity::append(&mut f, size, offset, &salt, &uuid).unwrap();
        drop(f);

        let out = tools()
            .cmd("veritysetup")
            .unwrap()
            .args(["format", "--format=1", "--hash=sha256"])
            .args(["--data-block-size=4096", "--hash-block-size=4096"])
            .arg(format!("--data-blocks={blocks}"))
            .arg(format!("--hash-offset={offset}"))
            .arg(format!("--salt={}", hex::encode(salt)))
            .arg(format!("--uuid={}", verity::format_uuid(&uuid)))
            .arg(&theirs)
            .arg(&theirs)
            .output_all()
            .unwrap();
        let root = out
            .lines()
            .find_map(|l| l.strip_prefix("Root hash:"))
            .map(str::trim)
            .unwrap_or_else(|| panic!("no root hash in: {out}"));
        assert_eq!(info.root_hash_hex(), root, "{blocks} blocks");

        let a = fs::read(&ours).unwrap();
        let b = fs::read(&theirs).unwrap();
        assert_eq!(a.len() as u64, offset + info.hash_size, "{blocks} blocks");
        assert_eq!(a.len(), b.len(), "{blocks} blocks: file sizes");
        assert!(a == b, "{blocks} blocks: hash areas differ");
        verity_verify(&ours, root, offset).unwrap();
    }
}

/// A small /usr tree; `reverse` creates the same content in another order
/// and at other times, which must not change the image.
fn small_tree(root: &Path, reverse: bool) {
    let usr = root.join("usr");
    let mut names: Vec<usize> = (0..40).collect();
    if reverse {
        names.reverse();
    }
    for i in names {
        let d = usr.join(format!("lib/d{}", i % 5));
        fs::create_dir_all(&d).unwrap();
        let mut rng = rand::rngs::StdRng::seed_from_u64(i as u64);
        let len = rng.gen_range(0..20000);
        // Half random, half compressible.
        let data: Vec<u8> = (0..len)
            .map(|j| if j % 2 == 0 { rng.r#gen() } else { b'x' })
            .collect();
        fs::write(d.join(format!("f{i}")), data).unwrap();
    }
    fs::create_dir_all(usr.join("bin")).unwrap();
    std::os::unix::fs::symlink("../lib/d1/f1", usr.join("bin/tool")).unwrap();
    fs::hard_link(usr.join("lib/d2/f2"), usr.join("bin/hard")).unwrap();
}

fn fsck(image: &usr::UsrImage, fs_only: &Path) {
    let f = fs::File::options().write(true).open(fs_only).unwrap();
    f.set_len(image.fs_size).unwrap();
    drop(f);
    match image.fs {
        UsrFilesystem::Erofs => tools()
            .cmd("fsck.erofs")
            .unwrap()
            .arg(fs_only)
            .run()
            .unwrap(),
        UsrFilesystem::Ext4 => tools()
            .cmd("e2fsck")
            .unwrap()
            .arg("-fn")
            .arg(fs_only)
            .run()
            .unwrap(),
    }
}

/// Verifies the image, then checks that a flipped byte in the filesystem
/// fails verification and that fsck accepts the (restored) filesystem.
fn check_image(image: &usr::UsrImage, scratch: &Path) {
    let root = image.verity.root_hash_hex();
    verity_verify(&image.path, &root, image.verity.hash_offset).unwrap();

    let copy = scratch.join("tampered");
    fs::copy(&image.path, &copy).unwrap();
    let f = fs::File::options()
        .read(true)
        .write(true)
        .open(&copy)
        .unwrap();
    let at = image.fs_size / 2;
    let mut byte = [0u8; 1];
    f.read_exact_at(&mut byte, at).unwrap();
    f.write_all_at(&[byte[0] ^ 0xff], at).unwrap();
    let err = verity_verify(&copy, &root, image.verity.hash_offset)
        .expect_err("a changed byte must fail verification");
    assert!(err.to_string().contains("veritysetup"), "{err:#}");
    f.write_all_at(&byte, at).unwrap();
    drop(f);
    fsck(image, &copy);
    fs::remove_file(&copy).unwrap();
}

#[test]
fn same_tree_gives_the_same_bytes() {
    let work = tempfile::tempdir().unwrap();
    let (t1, t2) = (work.path().join("t1"), work.path().join("t2"));
    small_tree(&t1, false);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    small_tree(&t2, true);
    let seed = Sha256::of(b"usr image test");
    for fs_kind in [UsrFilesystem::Erofs, UsrFilesystem::Ext4] {
        let a = usr::make(
            tools(),
            &t1,
            fs_kind,
            DEFAULT_USR_COMPRESSION,
            &work.path().join("a.img"),
            &seed,
            EPOCH,
        )
        .unwrap();
        let b = usr::make(
            tools(),
            &t2,
            fs_kind,
            DEFAULT_USR_COMPRESSION,
            &work.path().join("b.img"),
            &seed,
            EPOCH,
        )
        .unwrap();
        assert_eq!(a.verity, b.verity, "{fs_kind:?}");
        assert_eq!(a.total_size, fs::metadata(&a.path).unwrap().len());
        assert_eq!(a.fs_size % 4096, 0);
        assert_eq!(a.verity.hash_offset, a.fs_size);
        assert!(
            fs::read(&a.path).unwrap() == fs::read(&b.path).unwrap(),
            "{fs_kind:?}: two builds differ"
        );
        // Another seed changes the salt, so the root hash.
        let c = usr::make(
            tools(),
            &t1,
            fs_kind,
            DEFAULT_USR_COMPRESSION,
            &work.path().join("c.img"),
            &Sha256::of(b"other"),
            EPOCH,
        )
        .unwrap();
        assert_ne!(c.verity.root_hash, a.verity.root_hash);
        check_image(&a, work.path());
        // Nothing is left beside the outputs but the outputs.
        let mut left: Vec<String> = fs::read_dir(work.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with('.'))
            .collect();
        left.sort();
        assert!(left.is_empty(), "temporary files left: {left:?}");
    }
}

#[test]
fn real_usr_builds_verifies_and_checks() {
    let tree = support::rootfs_tree();
    let work = tempfile::tempdir_in("/var/tmp").unwrap();
    let seed = Sha256::of(b"real usr");
    for fs_kind in [UsrFilesystem::Erofs, UsrFilesystem::Ext4] {
        let out = work.path().join(format!("usr-{fs_kind:?}.img"));
        let start = Instant::now();
        let image = usr::make(
            tools(),
            &tree,
            fs_kind,
            DEFAULT_USR_COMPRESSION,
            &out,
            &seed,
            EPOCH,
        )
        .unwrap();
        eprintln!(
            "{fs_kind:?}: filesystem {} bytes, total {} bytes, {:.1}s, root hash {}",
            image.fs_size,
            image.total_size,
            start.elapsed().as_secs_f64(),
            image.verity.root_hash_hex()
        );
        check_image(&image, work.path());
        if fs_kind == UsrFilesystem::Erofs {
            // mkfs.erofs compresses on several threads: the bytes must not
            // depend on their timing.
            let again = usr::make(
                tools(),
                &tree,
                fs_kind,
                DEFAULT_USR_COMPRESSION,
                &out,
                &seed,
                EPOCH,
            )
            .unwrap();
            assert_eq!(again.verity, image.verity, "two erofs builds differ");
        }
        fs::remove_file(&out).unwrap();
    }
}
