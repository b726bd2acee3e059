//! Tests of InRelease verification with keys generated at test time, and of
//! a real InRelease when CRATON_REAL_INRELEASE names one.

use super::*;
use crate::repo::testkeys::{clearsign, stranger, trusted};

/// 2026-11-22 00:00:00 UTC, between Date and Valid-Until of [`RELEASE`].
const NOW: i64 = 1_795_305_600;

const RELEASE: &str = "\
Origin: Test
Label: Test
Suite: stable
Codename: trixie
Date: Sat, 21 Nov 2026 09:15:44 UTC
Valid-Until: Sat, 28 Nov 2026 09:15:44 UTC
Architectures: all amd64
Components: main contrib
No-Support-for-Architecture-all: Packages
SHA256:
 b1c50654852dadc629f97cf1d56c83bbf9e3e537b4a66549039de0a5b3f3bb27 24089534 main/binary-all/Packages
 ee81302a1d5b7434762b6e784a572854d4b6cf6235e33e2d104ad4e1cae71ab4      123 main/binary-amd64/Packages.xz
";

fn verify(signed: &str, keyring: &Keyring) -> Result<Release> {
    verify_inrelease_at(signed.as_bytes(), keyring, "test/trixie", NOW)
}

#[test]
fn good_signature_by_primary_key() {
    let k = trusted();
    let r = verify(&clearsign(RELEASE, &[k.primary()]), &k.keyring()).unwrap();
    assert_eq!(r.signed_by, vec![k.fingerprint()]);
    assert_eq!(r.suite.as_deref(), Some("stable"));
    assert_eq!(r.codename.as_deref(), Some("trixie"));
    assert_eq!(r.date, Some(1_795_252_544));
    assert_eq!(r.components, ["main", "contrib"]);
    assert_eq!(r.architectures, ["all", "amd64"]);
    assert_eq!(
        r.no_support_for_architecture_all.as_deref(),
        Some(ARCH_ALL_IN_PACKAGES)
    );
    let xz = r.sha256["main/binary-amd64/Packages.xz"];
    assert_eq!(xz.size, 123);
    assert_eq!(
        xz.sha256.to_hex(),
        "ee81302a1d5b7434762b6e784a572854d4b6cf6235e33e2d104ad4e1cae71ab4"
    );
    assert_eq!(r.sha256.len(), 2);
}

#[test]
fn good_signature_by_signing_subkey_counts_for_its_primary() {
    let k = trusted();
    let r = verify(&clearsign(RELEASE, &[k.subkey()]), &k.keyring()).unwrap();
    assert_eq!(r.signed_by, vec![k.fingerprint()]);
}

#[test]
fn one_good_signature_among_unknown_ones_suffices() {
    let signed = clearsign(RELEASE, &[stranger().primary(), trusted().subkey()]);
    let r = verify(&signed, &trusted().keyring()).unwrap();
    assert_eq!(r.signed_by, vec![trusted().fingerprint()]);
}

#[test]
fn changed_line_is_tampering() {
    let k = trusted();
    let signed = clearsign(RELEASE, &[k.primary(), k.subkey()]);
    let tampered = signed.replace("Codename: trixie", "Codename: forky");
    assert_ne!(signed, tampered);
    let err = verify(&tampered, &k.keyring()).unwrap_err().to_string();
    assert!(
        err.starts_with("InRelease of test/trixie: signatures by keys "),
        "{err}"
    );
    assert!(err.contains("do not verify (file tampered?)"), "{err}");
    let one = clearsign(RELEASE, &[k.primary()]).replace("Suite: stable", "Suite: stablE");
    let err = verify(&one, &k.keyring()).unwrap_err().to_string();
    assert_eq!(
        err,
        format!(
            "InRelease of test/trixie: signature by key {} does not verify (file tampered?)",
            k.fingerprint()
        )
    );
    // A changed SHA256 entry is just as fatal.
    let tampered = signed.replace("      123 main", "      124 main");
    assert!(verify(&tampered, &k.keyring()).is_err());
}

#[test]
fn unknown_key_is_named_with_the_trusted_ones() {
    let signed = clearsign(RELEASE, &[stranger().primary()]);
    let err = verify(&signed, &trusted().keyring())
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("InRelease of test/trixie is signed by unknown key(s) "),
        "{err}"
    );
    assert!(err.contains(&stranger().fingerprint()), "{err}");
    assert!(
        err.contains(&format!("trusted keys: {}", trusted().fingerprint())),
        "{err}"
    );
}

#[test]
fn unsigned_garbled_or_padded_files_are_rejected() {
    let k = trusted();
    let signed = clearsign(RELEASE, &[k.primary()]);
    let garbled_sig = {
        let i = signed.find("-----BEGIN PGP SIGNATURE-----").unwrap();
        let (head, tail) = signed.split_at(i + 40);
        format!("{head}AAAA{}", &tail[4..])
    };
    for bad in [
        RELEASE.to_owned(),
        format!("Origin: Evil\n{signed}"),
        format!("{signed}\nSHA256:\n extra"),
        signed[..signed.len() / 2].to_owned(),
        garbled_sig,
    ] {
        let err = format!("{:#}", verify(&bad, &k.keyring()).unwrap_err());
        assert!(
            err.contains("not an OpenPGP cleartext-signed message")
                || err.contains("(file tampered?)"),
            "{err}"
        );
    }
    assert!(verify_inrelease_at(&[0xff, 0xfe], &k.keyring(), "x", NOW).is_err());
}

#[test]
fn expired_valid_until_is_rejected() {
    let k = trusted();
    let signed = clearsign(RELEASE, &[k.primary()]);
    let a_week_later = NOW + 7 * 86_400;
    let err = verify_inrelease_at(signed.as_bytes(), &k.keyring(), "test/trixie", a_week_later)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("expired") && err.contains("Valid-Until"),
        "{err}"
    );
}

/// Issue #11: Date was never checked, only Valid-Until, which trixie's
/// main suite does not have. A Release dated ahead of the clock is now
/// refused, with a few minutes' allowance.
#[test]
fn a_release_dated_in_the_future_is_rejected() {
    let k = trusted();
    let signed = clearsign(RELEASE, &[k.primary()]);
    let date = 1_795_252_544;
    let err = verify_inrelease_at(
        signed.as_bytes(),
        &k.keyring(),
        "test/trixie",
        date - 86_400,
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("not valid yet") && err.contains("86400 seconds ahead"),
        "{err}"
    );
    verify_inrelease_at(signed.as_bytes(), &k.keyring(), "test/trixie", date - 60).unwrap();
}

#[test]
fn malformed_release_fields_are_errors() {
    assert!(parse_release("SHA256:\n abc 12 main/x\n").is_err());
    assert!(parse_release("SHA256:\n onlytwo 12\n").is_err());
    let e = format!("{:#}", parse_release("Date: yesterday\n").unwrap_err());
    assert!(e.contains("field Date"), "{e}");
    assert!(parse_release("").is_err());
}

/// Verifies a real InRelease (e.g. trixie's) with the builtin keyring when
/// CRATON_REAL_INRELEASE names the file; a changed header line must fail.
#[test]
fn real_inrelease() {
    let Some(path) = std::env::var_os("CRATON_REAL_INRELEASE") else {
        eprintln!("CRATON_REAL_INRELEASE not set; skipping");
        return;
    };
    let data = std::fs::read(&path).unwrap();
    let keyring = Keyring::builtin().unwrap();
    let r = verify_inrelease(&data, &keyring, "real").unwrap();
    eprintln!(
        "suite {:?} codename {:?}: good signatures by {:?}",
        r.suite, r.codename, r.signed_by
    );
    assert!(!r.signed_by.is_empty());
    assert!(
        r.sha256
            .keys()
            .any(|k| k.starts_with("main/binary-amd64/Packages"))
    );
    let text = String::from_utf8(data).unwrap();
    let origin = text.find("\nOrigin: ").unwrap() + 1;
    let tampered = format!("{}Origin: Debiam{}", &text[..origin], &text[origin + 14..]);
    let err = verify_inrelease(tampered.as_bytes(), &keyring, "real").unwrap_err();
    eprintln!("tampered: {err}");
    assert!(err.to_string().contains("(file tampered?)"));
    // In 2060 every signing key of today's archive has expired.
    let err = verify_inrelease_at(text.as_bytes(), &keyring, "real", 2_840_000_000).unwrap_err();
    eprintln!("in 2060: {err}");
    assert!(err.to_string().contains("signed only by expired key(s)"));
    let err = verify_inrelease(text.as_bytes(), &trusted().keyring(), "real").unwrap_err();
    eprintln!("other keyring: {err}");
    assert!(err.to_string().contains("signed by unknown key(s)"));
}
