//! `craton keygen` and `craton build --key` on the command line: the key
//! files and their modes, and a bad key refused as bad input (exit 2)
//! before anything is fetched or written.

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::{Command, Output};

fn craton(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_craton"))
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap()
}

#[test]
fn keygen_then_bad_keys_stop_the_build_before_it_starts() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let made = craton(&["keygen", "--out", "keys"], d);
    assert!(made.status.success(), "{made:?}");
    let mode = |p: &str| std::fs::metadata(d.join(p)).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode("keys/craton.key.pem"), 0o600);
    assert_eq!(mode("keys/craton.pub.pem"), 0o644);
    let again = craton(&["keygen", "--out", "keys"], d);
    assert_eq!(again.status.code(), Some(2), "{again:?}");

    let profile = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/container-host-test.toml");
    let profile = profile.to_str().unwrap();
    let build = |key: &str| craton(&["build", profile, "--out", "out", "--key", key], d);
    std::fs::set_permissions(
        d.join("keys/craton.key.pem"),
        std::fs::Permissions::from_mode(0o640),
    )
    .unwrap();
    for (key, says) in [
        ("keys/craton.key.pem", "mode 640 lets others read it"),
        ("keys/missing.pem", "keys/missing.pem"),
        ("keys/craton.pub.pem", "not an Ed25519 private key"),
    ] {
        if key.ends_with("pub.pem") {
            std::fs::set_permissions(d.join(key), std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        let o = build(key);
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{key}: {stderr}");
        assert!(stderr.contains(says), "{key}: {stderr}");
        assert!(
            !d.join("out").exists(),
            "{key}: the build made its output folder"
        );
    }
}
