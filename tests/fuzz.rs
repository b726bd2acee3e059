//! Issue #11's malformed-input run: every parser of untrusted input gets
//! the committed corpus (tests/fuzz-corpus/TARGET/, seeds and any input
//! that once broke a parser), then a time-boxed run of mutations of it,
//! and must answer each with a value or an error that says something,
//! never a panic. Targets: the profile loader, deb822 and Packages
//! records, Release files, a .deb's ar and tar members (a seed .deb made
//! here with dpkg-deb), the lock reader and the grubenv decoder.
//!
//! Stable Rust, no fuzzing engine: a small deterministic generator
//! (xorshift) flips bits, replaces, inserts, deletes and repeats bytes,
//! cuts the input short and splices corpus files together. Each target
//! runs for FUZZ_SECS seconds or FUZZ_CASES cases, whichever ends first
//! (CRATON_FUZZ_SECS, CRATON_FUZZ_CASES and CRATON_FUZZ_SEED override).
//! An input that panics is written under target/fuzz-failures/ and named
//! in the failure; add it to the corpus with the fix.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

const FUZZ_SECS: u64 = 8;
const FUZZ_CASES: u64 = 1_000_000;
const DEFAULT_SEED: u64 = 0x00c0_ffee_d00d_f00d;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64* (Vigna): plenty for choosing mutations.
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

/// Bytes that matter to the formats: separators, quotes, escapes, digits.
const INTERESTING: &[u8] = b"\n\r\t :=,[]{}\"'\\#/.-_0123456789\x00\xff\x80";

fn mutate(rng: &mut Rng, input: &[u8], corpus: &[Vec<u8>]) -> Vec<u8> {
    let mut v = input.to_vec();
    for _ in 0..=rng.below(4) {
        let len = v.len();
        match rng.below(8) {
            0 if len > 0 => {
                let i = rng.below(len);
                v[i] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let i = rng.below(len);
                v[i] = INTERESTING[rng.below(INTERESTING.len())];
            }
            2 => {
                let i = rng.below(len + 1);
                v.insert(i, INTERESTING[rng.below(INTERESTING.len())]);
            }
            3 if len > 0 => {
                let i = rng.below(len);
                let n = 1 + rng.below((len - i).min(64));
                v.drain(i..i + n);
            }
            4 if len > 0 => {
                let i = rng.below(len);
                let n = 1 + rng.below((len - i).min(64));
                let chunk = v[i..i + n].to_vec();
                let at = rng.below(len + 1);
                for _ in 0..=rng.below(8) {
                    v.splice(at..at, chunk.iter().copied());
                }
            }
            5 => v.truncate(rng.below(len + 1)),
            6 if !corpus.is_empty() => {
                let other = &corpus[rng.below(corpus.len())];
                let from = rng.below(other.len() + 1);
                let at = rng.below(len + 1);
                v.splice(at..at, other[from..].iter().copied());
            }
            _ if len > 0 => {
                // A number made large, or a line repeated.
                let i = rng.below(len);
                v.splice(i..i, b"99999999999999999999".iter().copied());
            }
            _ => v.push(INTERESTING[rng.below(INTERESTING.len())]),
        }
    }
    v
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn corpus(target: &str) -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fuzz-corpus")
        .join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files.iter().map(|f| std::fs::read(f).unwrap()).collect()
}

/// Runs `check` on the corpus, then on mutations of it, within the budget.
/// `check` returns Err(message) for a rejected input; an empty message, or
/// a panic, fails the test.
fn fuzz(target: &str, seeds: Vec<Vec<u8>>, check: impl Fn(&[u8]) -> Result<(), String>) {
    let seed = env_u64("CRATON_FUZZ_SEED", DEFAULT_SEED) ^ target.len() as u64;
    let budget = Duration::from_secs(env_u64("CRATON_FUZZ_SECS", FUZZ_SECS));
    let max_cases = env_u64("CRATON_FUZZ_CASES", FUZZ_CASES);
    let mut rng = Rng(seed | 1);
    let start = Instant::now();
    let (mut cases, mut rejected) = (0u64, 0u64);
    // Whether `input` was rejected; fails the test on a panic or an empty
    // error message.
    let run = |input: &[u8]| -> bool {
        match catch_unwind(AssertUnwindSafe(|| check(input))) {
            Ok(Ok(())) => false,
            Ok(Err(msg)) => {
                if msg.trim().is_empty() {
                    fail(target, input, "an error without a message");
                }
                true
            }
            Err(_) => fail(target, input, "a panic"),
        }
    };
    for s in &seeds {
        cases += 1;
        rejected += u64::from(run(s));
    }
    while cases < max_cases && start.elapsed() < budget {
        let base = &seeds[rng.below(seeds.len())];
        let input = mutate(&mut rng, base, &seeds);
        cases += 1;
        rejected += u64::from(run(&input));
    }
    eprintln!(
        "fuzz {target}: {cases} inputs ({rejected} rejected with an error) in {:.1}s, seed {seed:#x}",
        start.elapsed().as_secs_f64()
    );
}

fn fail(target: &str, input: &[u8], what: &str) -> ! {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/fuzz-failures");
    std::fs::create_dir_all(&dir).unwrap();
    let name = format!("{target}-{}", craton::digest::Sha256::of(input).to_hex());
    let path = dir.join(&name);
    std::fs::write(&path, input).unwrap();
    panic!(
        "fuzz {target}: {what} on the input saved at {}",
        path.display()
    );
}

fn text(input: &[u8]) -> Option<&str> {
    std::str::from_utf8(input).ok()
}

#[test]
fn profile_loader() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("profile.toml");
    fuzz("profile", corpus("profile"), |input| {
        std::fs::write(&path, input).unwrap();
        craton::profile::load(&path)
            .map(|_| ())
            .map_err(|e| format!("{e:#}"))
    });
}

#[test]
fn deb822_and_packages_records() {
    let repo: Arc<str> = Arc::from("debian");
    let suite: Arc<str> = Arc::from("trixie");
    fuzz("deb822", corpus("deb822"), |input| {
        let Some(t) = text(input) else {
            return Err("not UTF-8".into());
        };
        for p in craton::repo::deb822::paragraphs(t) {
            if let Err(e) = p {
                let _ = format!("{e:#}");
            }
        }
        let _ = craton::deb::unpack::parse_control(t).map_err(|e| format!("{e:#}"));
        let _ = craton::deb::unpack::parse_conffiles(t).map_err(|e| format!("{e:#}"));
        craton::repo::packages::parse_packages(t, &repo, &suite)
            .map(|_| ())
            .map_err(|e| format!("{e:#}"))
    });
}

#[test]
fn release_files() {
    fuzz("release", corpus("release"), |input| {
        let Some(t) = text(input) else {
            return Err("not UTF-8".into());
        };
        craton::repo::release::parse_release(t)
            .map(|_| ())
            .map_err(|e| format!("{e:#}"))
    });
}

#[test]
fn lock_reader() {
    fuzz("lock", corpus("lock"), |input| {
        let Some(t) = text(input) else {
            return Err("not UTF-8".into());
        };
        craton::lock::Lock::from_toml(t, Path::new("craton.lock"))
            .map(|_| ())
            .map_err(|e| format!("{e:#}"))
    });
}

#[test]
fn grubenv_decoder() {
    fuzz("grubenv", corpus("grubenv"), |input| {
        craton::boot::decode_grubenv(input)
            .map(|_| ())
            .map_err(|e| format!("{e:#}"))
    });
}

/// A seed .deb made with dpkg-deb (the host's dpkg, which .ci/run installs).
fn seed_deb(dir: &Path) -> Vec<u8> {
    let root = dir.join("pkg");
    std::fs::create_dir_all(root.join("DEBIAN")).unwrap();
    std::fs::create_dir_all(root.join("usr/bin")).unwrap();
    std::fs::write(
        root.join("DEBIAN/control"),
        "Package: fuzz\nVersion: 1.0\nArchitecture: amd64\nMaintainer: craton <x@craton.invalid>\n\
         Description: fuzz seed\n",
    )
    .unwrap();
    std::fs::write(root.join("DEBIAN/postinst"), "#!/bin/sh\nexit 0\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(
        root.join("DEBIAN/postinst"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    std::fs::write(root.join("usr/bin/fuzz"), "#!/bin/sh\necho fuzz\n").unwrap();
    let deb = dir.join("fuzz.deb");
    let st = std::process::Command::new("dpkg-deb")
        .args(["--root-owner-group", "-Zxz", "--build"])
        .arg(&root)
        .arg(&deb)
        .output()
        .unwrap();
    assert!(
        st.status.success(),
        "{}",
        String::from_utf8_lossy(&st.stderr)
    );
    std::fs::read(deb).unwrap()
}

#[test]
fn deb_archives() {
    let dir = tempfile::tempdir().unwrap();
    let seeds = vec![seed_deb(dir.path())];
    let path = dir.path().join("case.deb");
    fuzz("deb", seeds, |input| {
        std::fs::write(&path, input).unwrap();
        let deb = craton::deb::archive::Deb::open(&path).map_err(|e| format!("{e:#}"))?;
        deb.control_files().map_err(|e| format!("{e:#}"))?;
        let mut tar = deb.data_tar().map_err(|e| format!("{e:#}"))?;
        let entries = tar.entries().map_err(|e| format!("{e:#}"))?;
        for entry in entries {
            let mut entry = entry.map_err(|e| format!("{e:#}"))?;
            let _ = entry.path().map_err(|e| format!("{e:#}"))?;
            std::io::copy(&mut entry, &mut std::io::sink()).map_err(|e| format!("{e:#}"))?;
        }
        Ok(())
    });
}
