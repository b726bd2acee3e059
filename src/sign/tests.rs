//! Keys and signatures against OpenSSL (the host's openssl 3, which a
//! consumer of craton's outputs would use): craton's keys and signatures
//! are accepted by `openssl pkeyutl -verify -rawin`, OpenSSL's keys are
//! read by craton, and bad keys are bad input.

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;

use super::*;
use crate::error::is_bad_input;
use crate::process::Cmd;

fn openssl_verifies(public: &Path, data: &Path, sig: &Path) -> bool {
    Cmd::new("openssl")
        .args(["pkeyutl", "-verify", "-pubin", "-inkey"])
        .arg(public)
        .arg("-rawin")
        .arg("-in")
        .arg(data)
        .arg("-sigfile")
        .arg(sig)
        .run()
        .is_ok()
}

#[test]
fn keygen_keys_sign_what_openssl_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let (private, public) = keygen(&dir.path().join("keys")).unwrap();
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!((mode(&private), mode(&public)), (0o600, 0o644));
    let pem = std::fs::read_to_string(&private).unwrap();
    assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----\n"), "{pem}");
    let key = PrivateKey::read(&private).unwrap();
    let pubkey = PublicKey::read(&public).unwrap();
    assert_eq!(key.public(), pubkey);
    assert_eq!(pubkey.id().unwrap().len(), 16);

    let data = dir.path().join("manifest.json");
    std::fs::write(&data, b"{\"schema\": 1}\n").unwrap();
    let sig = key.sign(&std::fs::read(&data).unwrap());
    assert_eq!(sig.len(), SIGNATURE_LEN);
    let sig_path = dir.path().join("manifest.json.sig");
    std::fs::write(&sig_path, sig).unwrap();
    assert!(pubkey.verifies(b"{\"schema\": 1}\n", &sig));
    assert!(openssl_verifies(&public, &data, &sig_path));
    // One byte more and neither accepts it.
    std::fs::write(&data, b"{\"schema\": 1} \n").unwrap();
    assert!(!pubkey.verifies(&std::fs::read(&data).unwrap(), &sig));
    assert!(!openssl_verifies(&public, &data, &sig_path));
    assert!(!pubkey.verifies(b"x", &sig[..63]));

    // keygen does not replace a key.
    let err = keygen(&dir.path().join("keys")).unwrap_err();
    assert!(
        is_bad_input(&err) && format!("{err:#}").contains("exists"),
        "{err:#}"
    );
}

#[test]
fn openssl_keys_are_read() {
    let dir = tempfile::tempdir().unwrap();
    let private = dir.path().join("k.pem");
    let public = dir.path().join("k.pub.pem");
    Cmd::new("openssl")
        .args(["genpkey", "-algorithm", "ed25519", "-out"])
        .arg(&private)
        .run()
        .unwrap();
    std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o600)).unwrap();
    Cmd::new("openssl")
        .args(["pkey", "-pubout", "-in"])
        .arg(&private)
        .arg("-out")
        .arg(&public)
        .run()
        .unwrap();
    let key = PrivateKey::read(&private).unwrap();
    assert_eq!(key.public(), PublicKey::read(&public).unwrap());
    let data = dir.path().join("d");
    std::fs::write(&data, b"craton").unwrap();
    let sig = dir.path().join("d.sig");
    std::fs::write(&sig, key.sign(b"craton")).unwrap();
    assert!(openssl_verifies(&public, &data, &sig));
}

#[test]
fn bad_keys_are_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let (private, public) = keygen(dir.path()).unwrap();
    let expect = |r: Result<PrivateKey>, want: &str| {
        let Err(err) = r else {
            panic!("accepted a key that should fail with {want:?}")
        };
        let msg = format!("{err:#}");
        assert!(is_bad_input(&err) && msg.contains(want), "{msg}");
    };
    expect(
        PrivateKey::read(&dir.path().join("missing.pem")),
        "missing.pem",
    );
    // Readable by others.
    std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o644)).unwrap();
    expect(PrivateKey::read(&private), "mode 644 lets others read it");
    // A public key where the private one belongs.
    std::fs::set_permissions(&public, std::fs::Permissions::from_mode(0o600)).unwrap();
    expect(PrivateKey::read(&public), "not an Ed25519 private key");
    // Another algorithm.
    let rsa = dir.path().join("rsa.pem");
    Cmd::new("openssl")
        .args([
            "genpkey",
            "-algorithm",
            "rsa",
            "-pkeyopt",
            "rsa_keygen_bits:1024",
            "-out",
        ])
        .arg(&rsa)
        .run()
        .unwrap();
    std::fs::set_permissions(&rsa, std::fs::Permissions::from_mode(0o600)).unwrap();
    expect(PrivateKey::read(&rsa), "not an Ed25519 private key");
    // A private key where the public one belongs.
    let err = PublicKey::read(&rsa).unwrap_err();
    assert!(is_bad_input(&err) && format!("{err:#}").contains("not an Ed25519 public key"));
}
