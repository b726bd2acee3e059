//! Issue #14's acceptance for the qemu platform: Ignition in the initrd on
//! the first boot only, from QEMU's fw_cfg (`craton qemu --ignition`). One
//! copy of the qemu output (qcow2), four `craton qemu` runs, in order:
//!
//! 1. An invalid config (a relative path): the first boot (after the new
//!    disk's identity reboot) stops in the initrd, and the console has
//!    craton's line with Ignition's own error.
//! 2. A config that passes validation but fails in the files stage (a
//!    file whose content does not match its hash) after it created a user
//!    and wrote a file: the boot stops again, with that error.
//! 3. docs/provisioning-example.ign, merged (Ignition's own
//!    `ignition.config.merge`) under a config of the test's that adds its
//!    ssh key for `core` and points the example's container unit at the
//!    busybox tar on a data disk (no registry is reachable here). Checked
//!    from inside: `core` logs in over ssh with the key, the options file
//!    has its mode and owner, hello.service is enabled and active,
//!    flanneld runs; and nothing of run 2 is left on ROOT (its user, file
//!    and folder: ROOT was reset before this attempt). The first-boot flag
//!    is cleared in the ESP's grubenv.
//! 4. The same disk, no config: Ignition does not run (no
//!    `ignition.firstboot` on the command line, no Ignition unit started),
//!    and all of run 3's result is still there.

use std::fs;
use std::path::Path;
use std::process::Stdio;

use craton::initrd::ignition::{FAILED_LINE, STOPPED_LINE};

use super::guest::{Guest, base64, boot, free_port, one_guest, qemu_command, ssh_as, ssh_keygen};
use super::*;

/// docs/provisioning-example.ign, the example of docs/provisioning.md.
const EXAMPLE: &str = "docs/provisioning-example.ign";
/// What the example's container prints (its unit's command).
const HELLO_SAYS: &str = "hello from a container";

/// `data:` URL of `text` (RFC 2397, base64), as Ignition reads sources.
fn data_url(text: &str) -> String {
    format!("data:;base64,{}", base64(text.as_bytes()))
}

/// The test's config: the example merged in, the test's key for `core`,
/// and a drop-in that makes hello.service run the busybox tar's image.
fn good_config(public_key: &str) -> String {
    let example = fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(EXAMPLE)).unwrap();
    let dropin = "[Service]\n\
        Environment=IMAGE=craton-busybox:test\n\
        ExecStartPre=/bin/sh -c 'docker image inspect craton-busybox:test >/dev/null 2>&1 || \
        docker import - craton-busybox:test </dev/disk/by-id/virtio-data1'\n";
    serde_json::json!({
        "ignition": {
            "version": "3.3.0",
            "config": {"merge": [{"source": data_url(&example)}]}
        },
        "passwd": {"users": [{"name": "core", "sshAuthorizedKeys": [public_key]}]},
        "systemd": {"units": [{
            "name": "hello.service",
            "dropins": [{"name": "50-test-image.conf", "contents": dropin}]
        }]}
    })
    .to_string()
}

/// Passes validation; the files stage creates the user and the first file,
/// then fails on the second (sha512 of nothing like its content).
fn partial_config() -> String {
    serde_json::json!({
        "ignition": {"version": "3.3.0"},
        "passwd": {"users": [{"name": "partial"}]},
        "storage": {
            "directories": [{"path": "/var/lib/craton-partial"}],
            "files": [
                {"path": "/etc/craton-partial", "contents": {"source": "data:,written"}},
                {
                    "path": "/var/lib/craton-partial/deep/bad",
                    "contents": {
                        "source": "data:,x",
                        "verification": {"hash": format!("sha512-{}", "0".repeat(128))}
                    }
                }
            ]
        }
    })
    .to_string()
}

/// One run that must stop in the initrd with craton's failure line;
/// returns that line and the ones after it.
fn stops_in_initrd(disk: &Path, config: &Path, log: &Path, data: &Path) -> String {
    let args: Vec<String> = vec![
        "--ignition".into(),
        config.display().to_string(),
        "--data-disk".into(),
        data.display().to_string(),
    ];
    let (serial, secs, ok) = boot(disk, "uefi", STOPPED_LINE, log, &args);
    let plain = strip_ansi(&serial);
    assert!(
        ok,
        "no {STOPPED_LINE:?} line; serial log {}:\n{}",
        log.display(),
        tail(&plain)
    );
    let at = plain.find(FAILED_LINE).unwrap();
    let lines: String = plain[at..].lines().take(3).collect::<Vec<_>>().join("\n");
    eprintln!("provision: stopped in the initrd after {secs:.1}s: {lines}");
    // Not booted past the initrd: the real root never started.
    assert!(
        !plain.contains("Reached target multi-user.target"),
        "{}",
        tail(&plain)
    );
    lines
}

#[test]
fn ignition_provisions_the_first_boot_only() {
    if !support::have_program(craton::qemu::QEMU) {
        return;
    }
    let b = built();
    let work = work_dir().join("provision");
    let _ = fs::remove_dir_all(&work);
    fs::create_dir_all(&work).unwrap();
    let disk = work.join("disk.qcow2");
    fs::copy(b.out_dir.join("container-host-test-qemu.qcow2"), &disk).unwrap();
    let key = work.join("id");
    let public = ssh_keygen(&key, "core@craton-test");
    let data = busybox_tar(b);
    let write = |name: &str, text: &str| {
        let p = work.join(name);
        fs::write(&p, text).unwrap();
        p
    };
    let invalid = write(
        "invalid.ign",
        r#"{"ignition":{"version":"3.3.0"},"storage":{"files":[{"path":"etc/relative","contents":{"source":"data:,x"}}]}}"#,
    );
    let partial = write("partial.ign", &partial_config());
    let good = write("good.ign", &good_config(&public));

    // 1: invalid. Ignition's validation error, then its summary.
    let said = stops_in_initrd(&disk, &invalid, &work.join("serial-1.log"), &data);
    assert!(
        said.contains("error at $.storage.files.0.path") && said.contains("path not absolute"),
        "{said}"
    );
    assert!(
        said.contains("Ignition failed: config is not valid"),
        "{said}"
    );
    assert_eq!(
        grubenv_value(&disk, "FIRST_BOOT").as_deref(),
        Some("1"),
        "a failed provisioning keeps the first-boot flag"
    );

    // 2: fails halfway through the files stage.
    let said = stops_in_initrd(&disk, &partial, &work.join("serial-2.log"), &data);
    assert!(said.contains("hash verification failed"), "{said}");

    // 3: the example.
    let _one = one_guest();
    let port = free_port();
    let log = work.join("serial-3.log");
    let mut cmd = qemu_command(&disk, "uefi", &log, &[]);
    cmd.arg("--ignition")
        .arg(&good)
        .arg("--data-disk")
        .arg(&data)
        .arg("--ssh-key")
        .arg(key.with_extension("pub"))
        .args(["--ssh-port", &port.to_string()])
        .args(["--timeout", "1800"])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut g = Guest::spawn(cmd, log.clone(), key.clone(), port);
    g.next_boot("provisioned boot", "a");
    let serial = g.serial();
    assert!(
        serial.contains("ignition.firstboot=1")
            && serial
                .contains("craton-provision: an earlier first boot stopped while provisioning"),
        "{}",
        tail(&serial)
    );
    let as_core = ssh_as("core", &key, port, "id -un; id -Gn", 120, 30);
    assert!(
        as_core.status.success(),
        "ssh core@: {}",
        String::from_utf8_lossy(&as_core.stderr)
    );
    let who = String::from_utf8_lossy(&as_core.stdout).into_owned();
    assert!(
        who.starts_with("core\n") && who.contains("docker"),
        "core's ids: {who}"
    );
    let facts = provisioned_facts(&mut g);
    assert_eq!(
        facts,
        [
            "options: 600 root root FLANNELD_ETCD_ENDPOINTS=http://127.0.0.1:2379",
            "hello: enabled active",
            "flanneld: enabled active",
            "said: yes",
            "partial: gone",
            "result: userConfigProvided",
        ],
        "serial log {}",
        log.display()
    );
    let _ = g.sh("systemctl poweroff");
    let _ = g.child.wait();
    assert_eq!(
        grubenv_value(&disk, "FIRST_BOOT").as_deref(),
        Some("0"),
        "provisioning cleared the first-boot flag"
    );

    // 4: the same disk again, no config.
    let log = work.join("serial-4.log");
    let mut cmd = qemu_command(&disk, "uefi", &log, &[]);
    cmd.arg("--data-disk")
        .arg(&data)
        .arg("--ssh-key")
        .arg(key.with_extension("pub"))
        .args(["--ssh-port", &port.to_string()])
        .args(["--reboots", "0", "--timeout", "1200"])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    g.child = cmd.spawn().expect("running craton qemu");
    g.log = log;
    g.next_boot("the next boot", "a");
    let serial = g.serial();
    assert!(
        !serial.contains("ignition.firstboot") && !serial.contains("Ignition (fetch-offline)"),
        "Ignition ran again: {}",
        tail(&serial)
    );
    let again = provisioned_facts(&mut g);
    assert_eq!(again, facts, "the second boot kept what the first made");
    let as_core = ssh_as("core", &key, port, "id -un", 120, 30);
    assert!(as_core.status.success(), "ssh core@ on the second boot");
    let _ = g.sh("systemctl poweroff");
    let _ = g.child.wait();
    eprintln!(
        "provision: runs 3 and 4 took {:.0}s",
        g.started.elapsed().as_secs_f64()
    );
}

/// What run 3 must have made, one line per fact, read in the guest.
fn provisioned_facts(g: &mut Guest) -> Vec<String> {
    let out = g.sh(&format!(
        "f=/etc/flannel/options.env; echo \"options: $(stat -c '%a %U %G' $f) $(head -n 1 $f)\"; \
         for u in hello flanneld; do \
           for i in $(seq 60); do systemctl is-active -q $u.service && break; sleep 2; done; \
           echo \"$u: $(systemctl is-enabled $u.service) $(systemctl is-active $u.service)\"; done; \
         journalctl -b -u hello.service -o cat | grep -q '{HELLO_SAYS}' && echo 'said: yes' || echo 'said: no'; \
         if getent passwd partial || [ -e /etc/craton-partial ] || [ -e /var/lib/craton-partial ] || [ -e /home/partial ]; \
           then echo 'partial: left'; else echo 'partial: gone'; fi; \
         grep -q '\"userConfigProvided\": true' /etc/.ignition-result.json && echo 'result: userConfigProvided' || cat /etc/.ignition-result.json"
    ));
    out.lines().map(str::to_owned).collect()
}

/// A variable of the ESP's environment block, read on the host by
/// `craton inspect` (its own qcow2 reader).
fn grubenv_value(disk: &Path, name: &str) -> Option<String> {
    inspect_json(disk)["grubenv"][name]
        .as_str()
        .map(str::to_owned)
}
