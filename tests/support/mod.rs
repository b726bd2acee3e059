//! Test support shared by the integration tests: a loopback HTTP server for a
//! folder, the fixture repository (made by tests/fixtures/make-repo.sh), and
//! a runner for the `craton` binary with a private cache.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Serves the files below `root` on 127.0.0.1 (GET only; 404 otherwise) from
/// a background thread that lives as long as the test process. Returns the
/// base URL without a trailing slash.
pub fn serve(root: &Path) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("binding a loopback port");
    let addr = listener.local_addr().unwrap();
    let root = root.to_owned();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let root = root.clone();
            std::thread::spawn(move || {
                let _ = answer(stream, &root);
            });
        }
    });
    format!("http://{addr}")
}

fn answer(mut stream: TcpStream, root: &Path) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    loop {
        let mut request = String::new();
        if reader.read_line(&mut request)? == 0 {
            return Ok(());
        }
        // Skip the headers; the client sends no body with GET.
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h)? == 0 || h == "\r\n" || h == "\n" {
                break;
            }
        }
        let path = request.split_whitespace().nth(1).unwrap_or("/").to_owned();
        let file = root.join(path.trim_start_matches('/'));
        let ok = !path.contains("..") && file.is_file();
        if ok {
            let body = std::fs::read(&file)?;
            write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nContent-Type: application/octet-stream\r\n\r\n",
                body.len()
            )?;
            stream.write_all(&body)?;
        } else {
            stream.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")?;
        }
        stream.flush()?;
    }
}

/// A freshly generated fixture repository in a temporary folder.
pub struct FixtureRepo {
    pub dir: tempfile::TempDir,
}

impl FixtureRepo {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/make-repo.sh");
        let out = Command::new("bash")
            .arg(&script)
            .arg(dir.path())
            .output()
            .expect("running make-repo.sh");
        assert!(
            out.status.success(),
            "make-repo.sh failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Self { dir }
    }
    pub fn root(&self) -> PathBuf {
        self.dir.path().join("repo")
    }
    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }
}

/// The output of one craton run, with helpers for assertions.
pub struct Run {
    pub out: Output,
}

impl Run {
    pub fn code(&self) -> i32 {
        self.out.status.code().unwrap_or(-1)
    }
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.out.stderr).into_owned()
    }
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.out.stdout).into_owned()
    }
    #[track_caller]
    pub fn ok(&self) -> &Self {
        assert_eq!(self.code(), 0, "craton failed:\n{}", self.stderr());
        self
    }
    #[track_caller]
    pub fn fails(&self, code: i32, needle: &str) -> &Self {
        let err = self.stderr();
        assert_eq!(self.code(), code, "expected exit {code}, stderr:\n{err}");
        assert!(
            err.contains(needle),
            "expected {needle:?} in stderr:\n{err}"
        );
        self
    }
}

/// Runs the craton binary with `args`, the cache at `cache`, in `cwd`,
/// without the caller's CRATON_MIRROR (which would override a fixture
/// profile's own mirror).
pub fn craton(cache: &Path, cwd: &Path, args: &[&str]) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_craton"));
    cmd.env_remove("CRATON_MIRROR")
        .env_remove("CRATON_SECURITY_MIRROR");
    run_in(cmd, cache, cwd, args)
}

/// Like [`craton`], keeping CRATON_MIRROR if the caller set one (for tests
/// against the real Debian archive).
pub fn craton_real(cache: &Path, cwd: &Path, args: &[&str]) -> Run {
    run_in(Command::new(env!("CARGO_BIN_EXE_craton")), cache, cwd, args)
}

fn run_in(mut cmd: Command, cache: &Path, cwd: &Path, args: &[&str]) -> Run {
    let out = cmd
        .args(args)
        .current_dir(cwd)
        .env("CRATON_CACHE", cache)
        .env("CI", "true")
        .output()
        .expect("running craton");
    Run { out }
}

/// Every regular file below `dir` (recursively), as paths relative to it.
pub fn files_below(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p.strip_prefix(dir).unwrap().to_owned());
            }
        }
    }
    out.sort();
    out
}

/// The `name` of every `[[KEY]]` entry of a lock's text (KEY: package,
/// tool or artifact), in file order.
pub fn lock_names(text: &str, key: &str) -> Vec<String> {
    let v: toml::Value = toml::from_str(text).expect("a lock is TOML");
    v.get(key)
        .and_then(|x| x.as_array())
        .into_iter()
        .flatten()
        .map(|p| p["name"].as_str().expect("entries have names").to_owned())
        .collect()
}

/// The root filesystem tree of tests/container-host-test.toml (the real
/// trixie packages), built once per test binary with `craton rootfs` into
/// cargo's test folder, using the default cache (the base tree is cached, so
/// this is quick after the first build). CRATON_TEST_ROOTFS names an
/// existing tree instead.
pub fn rootfs_tree() -> PathBuf {
    static TREE: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    TREE.get_or_init(|| {
        if let Some(p) = std::env::var_os("CRATON_TEST_ROOTFS") {
            return PathBuf::from(p);
        }
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("test-rootfs");
        std::fs::create_dir_all(&dir).unwrap();
        let tree = dir.join("tree");
        let lock = dir.join("test.lock");
        let out = Command::new(env!("CARGO_BIN_EXE_craton"))
            .args(["rootfs", "tests/container-host-test.toml", "--lock"])
            .arg(&lock)
            .arg("--out")
            .arg(&tree)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .env("CI", "true")
            .output()
            .expect("running craton rootfs");
        assert!(
            out.status.success(),
            "craton rootfs failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        tree
    })
    .clone()
}

/// True when `program` runs; in CI (CI set) a missing program is a test
/// failure, because .ci/run installs everything the tests need.
pub fn have_program(program: &str) -> bool {
    let ok = Command::new(program)
        .arg("--version")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok && std::env::var_os("CI").is_some() {
        panic!("{program} is missing; .ci/run should have installed it");
    }
    ok
}

/// The tools tree of tests/container-host-test.toml, prepared through the
/// library (lock, fetch, unpack into the default cache) once per test
/// process.
pub fn tools() -> &'static craton::tools::ToolsTree {
    static TOOLS: std::sync::OnceLock<craton::tools::ToolsTree> = std::sync::OnceLock::new();
    TOOLS.get_or_init(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let work = tempfile::tempdir().expect("a temporary folder");
        let opts = craton::context::Options {
            lock: Some(work.path().join("tools.lock")),
            ..craton::context::Options::for_profile(root.join("tests/container-host-test.toml"))
        };
        craton::build::prepare_tools(&opts).expect("preparing the tools tree")
    })
}
pub mod gce_metadata;
