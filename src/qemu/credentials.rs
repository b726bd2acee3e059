//! systemd credentials for a QEMU guest: SMBIOS type 11 OEM strings
//! (systemd.system-credentials(7)) and the pair that runs a test unit.
//! docs/architecture.md "Platforms" has the tested form.

use anyhow::{Result, bail};

/// SMBIOS structure type of OEM strings (DMTF DSP0134, 7.12 "OEM Strings
/// (Type 11)"), where systemd looks for credentials.
const SMBIOS_TYPE_OEM_STRINGS: u8 = 11;
/// The type 11 structure's formatted area: the 4-byte header (type,
/// length, handle) and the string count (DSP0134 7.12, 6.1.2).
const OEM_STRINGS_LENGTH: u8 = 5;
/// The structure's handle: QEMU numbers its own structures from 0x0000 by
/// type (0xB00 for its type 11, hw/smbios); 0xFEFF and above are reserved
/// (DSP0134 6.1.2). Ours sits clear of both.
const OEM_STRINGS_HANDLE: u16 = 0xC000;

/// A credential as an SMBIOS OEM string (systemd's
/// `io.systemd.credential.binary:NAME=BASE64`, systemd.system-credentials(7)).
pub fn credential_string(name: &str, value: &[u8]) -> Result<String> {
    // Names stay plain words: systemd takes them as file names in
    // $CREDENTIALS_DIRECTORY.
    let ok = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-@~".contains(&b));
    if !ok {
        bail!("credential name {name:?}: expected letters, digits and ._-@~");
    }
    Ok(format!(
        "io.systemd.credential.binary:{name}={}",
        base64(value)
    ))
}

/// One SMBIOS type 11 structure holding every credential, for QEMU's
/// `-smbios file=`: the credentials reach the guest through a file the
/// caller keeps private, never QEMU's command line (which any local user
/// reads in /proc/PID/cmdline, and craton logs).
pub fn oem_strings_structure(creds: &[(String, Vec<u8>)]) -> Result<Vec<u8>> {
    let count = u8::try_from(creds.len())
        .map_err(|_| anyhow::anyhow!("{} credentials: at most 255 fit", creds.len()))?;
    let mut out = vec![SMBIOS_TYPE_OEM_STRINGS, OEM_STRINGS_LENGTH];
    out.extend_from_slice(&OEM_STRINGS_HANDLE.to_le_bytes());
    out.push(count);
    for (name, value) in creds {
        out.extend_from_slice(credential_string(name, value)?.as_bytes());
        out.push(0);
    }
    // The string set ends with a second NUL; a structure without strings
    // still ends with two (DSP0134 6.1.3).
    if creds.is_empty() {
        out.push(0);
    }
    out.push(0);
    Ok(out)
}

/// The two credentials that make systemd run a test unit `NAME.service`:
/// the unit itself (systemd.extra-unit.*) and a multi-user.target drop-in
/// that wants it (systemd.unit-dropin.*), as docs/architecture.md
/// "Platforms" describes. The unit is Type=simple so it never holds up the boot transaction, prints on the
/// serial console, and powers the guest off when the script ends
/// (ExecStopPost runs after the main process, whatever its result).
/// It writes to /dev/console, not /dev/ttyS0: agetty's vhangup() when the
/// serial getty starts cuts off every writer that opened ttyS0 before it,
/// and a check that starts first would lose its output; the kernel does not
/// hang up files opened through /dev/console (tty_io.c, __tty_hangup).
pub fn check_unit(name: &str, script: &str) -> Vec<(String, Vec<u8>)> {
    let unit = format!(
        "[Unit]\n\
         Description=craton check {name}\n\
         After=multi-user.target\n\n\
         [Service]\n\
         Type=simple\n\
         ExecStart=/bin/sh -c \"{script}\"\n\
         ExecStopPost=/bin/systemctl poweroff --no-block\n\
         StandardOutput=tty\n\
         StandardError=inherit\n\
         TTYPath=/dev/console\n",
        script = unit_quote(script),
    );
    vec![
        (
            format!("systemd.extra-unit.{name}.service"),
            unit.into_bytes(),
        ),
        (
            "systemd.unit-dropin.multi-user.target".to_owned(),
            format!("[Unit]\nWants={name}.service\n").into_bytes(),
        ),
    ]
}

/// Escapes text for a double-quoted systemd command-line word
/// (systemd.service(5) "COMMAND LINES"): C escapes, `%` specifiers and `$`
/// variable expansion.
fn unit_quote(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '%' => out.push_str("%%"),
            '$' => out.push_str("$$"),
            c => out.push(c),
        }
    }
    out
}

/// Standard base64 with padding (RFC 4648 section 4).
fn base64(data: &[u8]) -> String {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ABC[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648_vectors() {
        for (i, o) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(i.as_bytes()), o);
        }
    }

    #[test]
    fn credentials_and_unit() {
        let creds = check_unit("check", "echo \"100%\" $HOME\necho done");
        assert_eq!(creds[0].0, "systemd.extra-unit.check.service");
        let unit = String::from_utf8(creds[0].1.clone()).unwrap();
        assert!(
            unit.contains(r#"ExecStart=/bin/sh -c "echo \"100%%\" $$HOME\necho done""#),
            "{unit}"
        );
        assert!(unit.contains("Type=simple\n"));
        assert!(unit.contains("TTYPath=/dev/console\n"));
        assert_eq!(creds[1].0, "systemd.unit-dropin.multi-user.target");
        assert_eq!(creds[1].1, b"[Unit]\nWants=check.service\n");
        let opt = credential_string("a.b", b"hi").unwrap();
        assert_eq!(opt, "io.systemd.credential.binary:a.b=aGk=");
        assert!(credential_string("a/b", b"").is_err());
    }

    /// The structure as DSP0134 lays it out: header, count, the strings
    /// each ending in NUL, and one more NUL.
    #[test]
    fn oem_strings_structure_layout() {
        let creds = vec![("a".to_owned(), b"hi".to_vec()), ("b".to_owned(), vec![])];
        let s = oem_strings_structure(&creds).unwrap();
        assert_eq!(&s[..5], &[11, 5, 0x00, 0xC0, 2]);
        assert_eq!(
            &s[5..],
            b"io.systemd.credential.binary:a=aGk=\0io.systemd.credential.binary:b=\0\0"
        );
        assert_eq!(
            oem_strings_structure(&[]).unwrap(),
            [11, 5, 0x00, 0xC0, 0, 0, 0]
        );
        let many: Vec<_> = (0..256).map(|i| (format!("c{i}"), vec![])).collect();
        assert!(oem_strings_structure(&many).is_err());
    }

    /// systemd (the host's) parses the test unit without complaint.
    #[test]
    fn systemd_accepts_the_test_unit() {
        let script = "echo \"50%\" $HOME; echo 'a\\b'";
        let creds = check_unit("craton-check", script);
        let dir = tempfile::tempdir().unwrap();
        let unit = dir.path().join("craton-check.service");
        std::fs::write(&unit, &creds[0].1).unwrap();
        let verify = || {
            crate::process::Cmd::new("systemd-analyze")
                .arg("verify")
                .arg(&unit)
                .output_all()
                .unwrap_or_else(|e| format!("{e:#}"))
        };
        let out = verify();
        assert!(!out.contains("craton-check.service:"), "{out}");
        // The check is not blind: an unclosed quote is reported.
        let unit_text = String::from_utf8(creds[0].1.clone()).unwrap();
        std::fs::write(&unit, unit_text.replace("\"\n", "\n")).unwrap();
        let out = verify();
        assert!(out.contains("craton-check.service:"), "{out}");
    }
}
