//! Issue #11's disk-full case: a build whose output folder, or whose
//! cache, is on a filesystem too small for it (a tmpfs sized to fail)
//! stops with an error that names the path and the cause, leaves nothing
//! half-written in the output folder, and leaves a cache whose every file
//! is whole (its name is its content's sha256) with no partial download.
//! Needs root (mount); CI and the development machines run as root.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use craton::digest::Sha256;

/// A tmpfs mounted for the test, unmounted when dropped.
struct SmallFs(PathBuf);

impl SmallFs {
    fn mount(dir: &Path, size: &str) -> Self {
        fs::create_dir_all(dir).unwrap();
        let st = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0755"),
                "tmpfs",
            ])
            .arg(dir)
            .status()
            .unwrap();
        assert!(st.success(), "mounting a tmpfs on {}", dir.display());
        SmallFs(dir.to_owned())
    }
}

impl Drop for SmallFs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

fn craton(cache: Option<&Path>, args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_craton"));
    cmd.args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("CI", "true")
        .env("SOURCE_DATE_EPOCH", "1764288000");
    if let Some(c) = cache {
        cmd.env("CRATON_CACHE", c);
    }
    cmd.output().expect("running craton")
}

fn files_below(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(rd) = fs::read_dir(dir) else {
        return out;
    };
    for e in rd.flatten() {
        let p = e.path();
        if e.file_type().unwrap().is_dir() {
            out.extend(files_below(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// The run failed (exit 1) saying the disk is full and naming a file
/// below `place`.
#[track_caller]
fn assert_disk_full(run: &Output, place: &Path) {
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("No space left on device"),
        "the error does not say the disk is full:\n{stderr}"
    );
    assert!(
        stderr.contains(&*place.to_string_lossy()),
        "the error does not name {}:\n{stderr}",
        place.display()
    );
}

fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

#[test]
fn a_full_output_folder_stops_the_build_cleanly() {
    if !is_root() {
        eprintln!("skipped: not root");
        return;
    }
    let work = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let lock = work.path().join("full.lock");
    // The lock and the downloads come from the usual cache; only the
    // output folder is small: 64 MiB, where the /usr image alone is ~200.
    let out = work.path().join("out");
    let _fs = SmallFs::mount(&out, "64m");
    let run = craton(
        None,
        &[
            "build",
            "tests/container-host-test.toml",
            "--lock",
            &lock.to_string_lossy(),
            "--out",
            &out.to_string_lossy(),
        ],
    );
    assert_disk_full(&run, &out);
    // Nothing half-written: no image, no work folder, no temporary file.
    assert_eq!(files_below(&out), Vec::<PathBuf>::new());
    assert_eq!(fs::read_dir(&out).unwrap().count(), 0);
}

#[test]
fn a_full_cache_stops_the_fetch_and_stays_whole() {
    if !is_root() {
        eprintln!("skipped: not root");
        return;
    }
    let work = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let lock = work.path().join("full.lock");
    // Lock with a cache of its own, so the small one starts empty.
    let lock_cache = work.path().join("lock-cache");
    let run = craton(
        Some(&lock_cache),
        &[
            "lock",
            "tests/container-host-test.toml",
            "--lock",
            &lock.to_string_lossy(),
        ],
    );
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    // 96 MiB for 234 MiB of packages.
    let cache = work.path().join("cache");
    let _fs = SmallFs::mount(&cache, "96m");
    let out = work.path().join("out");
    let run = craton(
        Some(&cache),
        &[
            "build",
            "tests/container-host-test.toml",
            "--locked",
            "--lock",
            &lock.to_string_lossy(),
            "--out",
            &out.to_string_lossy(),
        ],
    );
    assert_disk_full(&run, &cache);
    assert!(!out.exists(), "the output folder was made");
    // Consistent: every stored file is whole, no partial file is left.
    let files = files_below(&cache);
    let mut whole = 0;
    for f in &files {
        let rel = f.strip_prefix(&cache).unwrap();
        assert!(
            rel.starts_with("sha256"),
            "{} left in the cache",
            rel.display()
        );
        let digest = Sha256::of_reader(fs::File::open(f).unwrap()).unwrap();
        assert_eq!(
            digest.to_hex(),
            f.file_name().unwrap().to_string_lossy(),
            "{} is not whole",
            f.display()
        );
        whole += 1;
    }
    eprintln!("the full cache holds {whole} whole files and nothing else");
}
