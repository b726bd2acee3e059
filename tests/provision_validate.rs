//! `craton provision validate` with the real ignition-validate: the tools
//! tree of tests/container-host-test.toml from the real trixie
//! repositories, in the default cache, with a lock kept in cargo's test
//! folder, so that a later run neither resolves nor downloads. The example
//! config passes; broken ones exit 2 with the validator's own words; a
//! missing file exits 2 before anything is resolved.

mod support;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use support::{Run, craton_real};

const PROFILE: &str = "tests/container-host-test.toml";
const EXAMPLE: &str = "docs/provisioning-example.ign";

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn cache() -> PathBuf {
    craton::cache::default_root().expect("the default cache's place")
}

/// `craton provision validate FILE ARGS...` in the checkout.
fn provision_validate(file: &Path, args: &[&str]) -> Run {
    let file = file.to_str().unwrap();
    let mut all = vec!["provision", "validate", file];
    all.extend(args);
    craton_real(&cache(), root(), &all)
}

/// Validates `file` with the test profile's tools tree. The first call
/// makes the tree (resolving the lock if the profile changed, fetching the
/// tools set); the tests run in parallel, so the others wait for it.
fn validate(file: &Path) -> Run {
    static LOCK: OnceLock<PathBuf> = OnceLock::new();
    let lock = LOCK.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("provision-validate");
        std::fs::create_dir_all(&dir).unwrap();
        let lock = dir.join("test.lock");
        let lock_s = lock.to_str().unwrap();
        let example = root().join(EXAMPLE);
        provision_validate(&example, &["--profile", PROFILE, "--lock", lock_s]).ok();
        lock
    });
    let lock = lock.to_str().unwrap();
    provision_validate(file, &["--profile", PROFILE, "--lock", lock, "--locked"])
}

/// `text` as FILE in a temporary folder.
fn config(dir: &tempfile::TempDir, name: &str, text: &str) -> PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn the_example_config_is_valid() {
    let run = validate(Path::new(EXAMPLE));
    run.ok();
    assert_eq!(
        run.stdout(),
        format!("{EXAMPLE}: valid Ignition config (spec 3.3.0)\n")
    );
    assert!(!run.stderr().contains("warning"), "{}", run.stderr());
}

#[test]
fn warnings_are_shown_and_the_config_passes() {
    let dir = tempfile::tempdir().unwrap();
    let file = config(
        &dir,
        "extra.ign",
        r#"{"ignition":{"version":"3.3.0"},"foo":1}"#,
    );
    let run = validate(&file);
    run.ok();
    let want = format!(
        "{}: warning at $.foo, line 1 col 33: Unused key foo",
        file.display()
    );
    assert!(run.stderr().contains(&want), "{}", run.stderr());
    assert!(
        run.stdout()
            .ends_with("valid Ignition config (spec 3.3.0, 1 warning)\n"),
        "{}",
        run.stdout()
    );
}

#[test]
fn broken_configs_exit_2_with_the_validators_words() {
    let dir = tempfile::tempdir().unwrap();
    let example = std::fs::read_to_string(root().join(EXAMPLE)).unwrap();
    let cases = [
        (
            "version.ign",
            example.replace("\"3.3.0\"", "\"3.3\""),
            "couldn't parse config: invalid config version (couldn't parse)",
        ),
        (
            // Newer than trixie's Ignition 2.14 reads.
            "unsupported.ign",
            example.replace("\"3.3.0\"", "\"3.4.0\""),
            "couldn't parse config: unsupported config version",
        ),
        (
            "relative.ign",
            r#"{"ignition":{"version":"3.3.0"},"storage":{"files":[{"path":"etc/foo","contents":{"source":"data:,x"}}]}}"#
                .to_owned(),
            "error at $.storage.files.0.path, line 1 col 61: path not absolute",
        ),
        (
            "comma.ign",
            r#"{"ignition": {"version": "3.3.0"},,}"#.to_owned(),
            "error at line 1 col 36: invalid character ','",
        ),
        (
            "truncated.ign",
            example[..example.len() / 2].to_owned(),
            "unexpected end of JSON input",
        ),
    ];
    for (name, text, needle) in cases {
        assert_ne!(text, example, "{name} is the example");
        let file = config(&dir, name, &text);
        let run = validate(&file);
        run.fails(2, needle);
        let head = format!("error: {}: not a valid Ignition config", file.display());
        assert!(run.stderr().contains(&head), "{name}: {}", run.stderr());
        assert!(run.stdout().is_empty(), "{name}: {}", run.stdout());
    }
}

#[test]
fn a_missing_file_exits_2_before_anything_is_resolved() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.ign");
    // --locked with no lock would be refused too: the file comes first.
    let no_lock = dir.path().join("none.lock");
    let run = provision_validate(
        &missing,
        &[
            "--profile",
            PROFILE,
            "--lock",
            no_lock.to_str().unwrap(),
            "--locked",
        ],
    );
    let want = format!("{}: cannot read the Ignition config", missing.display());
    run.fails(2, &want);
    assert!(!run.stderr().contains("--locked"), "{}", run.stderr());
}

#[test]
fn outside_a_checkout_the_profile_must_be_named() {
    let dir = tempfile::tempdir().unwrap();
    let example = root().join(EXAMPLE);
    let run = craton_real(
        &cache(),
        dir.path(),
        &["provision", "validate", example.to_str().unwrap()],
    );
    run.fails(2, "no --profile, and no profiles/container-host.toml here");
}

#[test]
fn a_tools_set_without_ignition_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let profile = dir.path().join("no-ignition.toml");
    std::fs::write(
        &profile,
        format!(
            "schema = 1\nextends = [{:?}]\n\n[tools]\npackages = []\n",
            root().join(PROFILE)
        ),
    )
    .unwrap();
    let lock = dir.path().join("no-ignition.lock");
    let run = provision_validate(
        &root().join(EXAMPLE),
        &[
            "--profile",
            profile.to_str().unwrap(),
            "--lock",
            lock.to_str().unwrap(),
        ],
    );
    run.fails(2, "the tools set has no `ignition` package");
    assert!(
        run.stderr().contains("[tools] packages"),
        "{}",
        run.stderr()
    );
}

/// `[provision] ignition` goes into the image, so `craton build` runs the
/// same check on it: a config ignition-validate refuses stops the build
/// with exit 2 before the rootfs is made, and leaves no output folder.
#[test]
fn a_build_refuses_a_profile_whose_config_ignition_refuses() {
    let dir = tempfile::tempdir().unwrap();
    config(
        &dir,
        "relative.ign",
        r#"{"ignition":{"version":"3.3.0"},"storage":{"files":[{"path":"etc/foo","contents":{"source":"data:,x"}}]}}"#,
    );
    let profile = config(
        &dir,
        "provisioned.toml",
        &format!(
            "schema = 1\nextends = [{:?}]\n[provision]\nignition = \"relative.ign\"\n",
            root().join(PROFILE).display().to_string()
        ),
    );
    let out = dir.path().join("out");
    let run = craton_real(
        &cache(),
        root(),
        &[
            "build",
            profile.to_str().unwrap(),
            "--platform",
            "metal",
            "--lock",
            dir.path().join("test.lock").to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ],
    );
    run.fails(2, "relative.ign: not a valid Ignition config")
        .fails(2, "path not absolute");
    assert!(!out.exists(), "a refused build left {}", out.display());
}
