//! `craton completions` and `craton man` against the tools that consume
//! their output: bash parses the bash script, man renders the pages. Both
//! come from the clap definitions, so these tests catch a definition that
//! generates something broken, not wording.
//!
//! man-db is required (.ci/run installs it): a missing `man` fails the test
//! instead of skipping it, so CI cannot pass without rendering the pages.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

const CRATON: &str = env!("CARGO_BIN_EXE_craton");

/// Every subcommand, each of which must get its own page.
const SUBCOMMANDS: &[&str] = &[
    "lock",
    "fetch",
    "rootfs",
    "build",
    "qemu",
    "provision",
    "keygen",
    "verify",
    "inspect",
    "slot",
    "status",
    "update",
    "mark-good",
    "rollback",
    "cache",
    "completions",
    "man",
];

fn craton(args: &[&str]) -> Output {
    Command::new(CRATON)
        .args(args)
        .output()
        .expect("running craton")
}

/// stdout of a craton run that must succeed.
fn craton_ok(args: &[&str]) -> String {
    let out = craton(args);
    assert!(
        out.status.success(),
        "craton {args:?}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("craton writes UTF-8")
}

/// Runs `cmd` with `input` on stdin. The input is written from a thread so
/// that a child that writes while it reads cannot deadlock against us.
fn with_stdin(cmd: &mut Command, input: &[u8]) -> std::io::Result<Output> {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let out = child.wait_with_output()?;
    writer.join().unwrap().expect("writing the child's stdin");
    Ok(out)
}

/// A page rendered as text by `man -l -`, 80 columns wide.
fn render_man(roff: &[u8]) -> String {
    let mut cmd = Command::new("man");
    cmd.args(["-l", "-"])
        .env("MANWIDTH", "80")
        .env("MANPAGER", "cat");
    let out = match with_stdin(&mut cmd, roff) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            panic!(
                "`man` is not installed; the manual pages cannot be checked: apt-get install man-db"
            )
        }
        r => r.expect("running man -l -"),
    };
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "man -l -: {}\n{stderr}", out.status);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `word` as a whole shell word (between blanks or quotes) of `text`.
fn has_word(text: &str, word: &str) -> bool {
    text.split(|c: char| c.is_whitespace() || c == '"' || c == '\'')
        .any(|w| w == word)
}

#[test]
fn bash_completion_parses_and_names_the_subcommands() {
    let script = craton_ok(&["completions", "bash"]);
    let out =
        with_stdin(Command::new("bash").arg("-n"), script.as_bytes()).expect("running bash -n");
    assert!(
        out.status.success(),
        "bash -n rejects the completion script: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    for sub in ["build", "qemu"] {
        assert!(has_word(&script, sub), "no `{sub}` in the bash script");
    }
}

#[test]
fn zsh_and_fish_completions_name_craton() {
    for shell in ["zsh", "fish"] {
        let script = craton_ok(&["completions", shell]);
        assert!(script.contains("craton"), "{shell} script: {script:?}");
    }
}

#[test]
fn unknown_shell_is_a_usage_error() {
    let out = craton(&["completions", "tcsh"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(out.stdout.is_empty(), "no script for an unknown shell");
}

#[test]
fn man_page_on_stdout_renders() {
    let roff = craton_ok(&["man"]);
    let text = render_man(roff.as_bytes());
    assert!(text.contains("craton"), "{text}");
    assert!(text.contains("build"), "{text}");
}

#[test]
fn man_out_writes_a_page_per_subcommand() {
    let tmp = tempfile::tempdir().unwrap();
    // Two missing levels: --out creates the folder.
    let dir = tmp.path().join("share/man1");
    // Under a known umask, so the mode check below does not depend on the
    // caller's: pages must be readable by everyone once installed.
    let out = Command::new("sh")
        .args(["-c", "umask 022 && exec \"$0\" man --out \"$1\""])
        .arg(CRATON)
        .arg(&dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");

    let mut want: Vec<String> = SUBCOMMANDS
        .iter()
        .map(|s| format!("craton-{s}.1"))
        .collect();
    want.push("craton.1".into());
    // `craton cache`, `craton provision` and `craton slot` have
    // subcommands of their own, each with a page.
    want.extend(
        [
            "cache-gc",
            "cache-status",
            "provision-validate",
            "slot-show",
            "slot-set-order",
            "slot-mark-good",
            "slot-mark-bad",
        ]
        .map(|s| format!("craton-{s}.1")),
    );
    want.sort();
    let mut got: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    got.sort();
    // Exactly these: no page for clap's `help`, no temporary file left.
    assert_eq!(got, want);

    for name in ["craton.1", "craton-build.1"] {
        let path = dir.join(name);
        check_mode(&path);
        let text = render_man(&std::fs::read(&path).unwrap());
        assert!(text.contains("craton"), "{name}: {text}");
        assert!(text.contains("build"), "{name}: {text}");
    }
    let build = render_man(&std::fs::read(dir.join("craton-build.1")).unwrap());
    assert!(
        build.contains("--out"),
        "craton-build(1) lists its flags: {build}"
    );
}

/// docs/cli.md's table names every subcommand (the page test above keeps
/// SUBCOMMANDS equal to the command line's).
#[test]
fn docs_cli_md_lists_every_subcommand() {
    let doc = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/cli.md"))
        .expect("reading docs/cli.md");
    for sub in SUBCOMMANDS {
        assert!(
            doc.contains(&format!("| `craton {sub}")),
            "docs/cli.md has no row for `craton {sub}`"
        );
    }
}

fn check_mode(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o644, "{}", path.display());
}
