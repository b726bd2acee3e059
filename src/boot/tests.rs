//! Unit tests of the boot module that need the tools tree (GRUB's own
//! script checker and environment editor), plus shared helpers.

use super::grubcfg::{BootConfig, grub_cfg, initial_grubenv_vars, slot_cfg};
use super::slot::{Slot, SlotEntry};
use crate::partition::PartKind;
use crate::profile::UsrFilesystem;
use crate::tools::ToolsTree;

/// The tools tree the tests use (built through the library if needed).
pub(crate) fn tools() -> ToolsTree {
    crate::build::test_tools().clone()
}

pub(crate) fn sample_config() -> BootConfig {
    BootConfig {
        timeout_secs: 1,
        kernel_args: vec!["quiet".into(), "x=it's".into()],
    }
}

pub(crate) fn sample_entry(slot: Slot) -> SlotEntry {
    SlotEntry::new(
        slot,
        "2026.11.27",
        &"5a".repeat(32),
        1_048_576,
        UsrFilesystem::Erofs,
    )
    .unwrap()
}

fn script_check(text: &str) {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("grub.cfg");
    std::fs::write(&f, text).unwrap();
    tools()
        .cmd("grub-script-check")
        .unwrap()
        .arg(&f)
        .run()
        .unwrap_or_else(|e| panic!("{e:#}\n{text}"));
}

#[test]
fn grub_accepts_the_scripts() {
    script_check(&grub_cfg(&sample_config()));
    script_check(&slot_cfg(&sample_entry(Slot::B)));
}

#[test]
fn grub_script_check_catches_errors() {
    // The checker is not a no-op: an unclosed block fails.
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("bad.cfg");
    std::fs::write(&f, "if [ 1 = 1 ]; then\n echo x\n").unwrap();
    assert!(
        tools()
            .cmd("grub-script-check")
            .unwrap()
            .arg(&f)
            .run()
            .is_err()
    );
}

#[test]
fn grub_cfg_has_both_slots_and_the_command_line() {
    let cfg = grub_cfg(&sample_config());
    assert!(
        cfg.contains("load_env -f /grub/grubenv ORDER A_OK A_TRY B_OK B_TRY DISK_ID FIRST_BOOT\n")
    );
    assert!(cfg.contains("save_env -f /grub/grubenv A_TRY B_TRY DISK_ID\n"));
    // A new disk is claimed by the GRUB that booted from it.
    assert!(cfg.contains("if [ \"$DISK_ID\" = image ]; then\n  set DISK_ID=claimed\nfi\nsave_env"));
    // The PARTUUIDs come from the disk GRUB booted from.
    assert!(cfg.contains("regexp --set=1:craton_disk '^([^,]*),' \"$root\"\n"));
    assert!(cfg.contains("probe --set=craton_root_partuuid --part-uuid \"($craton_disk,gpt6)\""));
    assert!(cfg.contains("set timeout=1\n"));
    // A pending slot boots on trial; a failure of its entry falls back.
    assert!(cfg.contains("set craton_trial_args=\"craton.trial=1 panic=10\"\n"));
    assert!(cfg.contains("  set default=craton-b\n  set fallback=0\n"));
    for (slot, dir) in [(Slot::A, "a"), (Slot::B, "b")] {
        assert!(cfg.contains(&format!("--id {} {{", slot.menu_id())));
        assert!(cfg.contains(&format!("source /craton/{dir}/slot.cfg\n")));
        assert!(cfg.contains(&format!("initrd /craton/{dir}/initrd\n")));
        let n = PartKind::Usr(slot).number();
        assert!(cfg.contains(&format!(
            "probe --set=craton_usr_partuuid --part-uuid \"($craton_disk,gpt{n})\""
        )));
        let linux = cfg
            .lines()
            .find(|l| {
                l.trim_start()
                    .starts_with(&format!("linux /craton/{dir}/vmlinuz "))
            })
            .unwrap();
        for want in [
            "mount.usr=/dev/mapper/usr",
            "mount.usrfstype=${craton_usrfstype}",
            "usrhash=${craton_usrhash}",
            "systemd.verity_usr_data=PARTUUID=${craton_usr_partuuid}",
            "systemd.verity_usr_options=hash-offset=${craton_hash_offset}",
            "root=PARTUUID=${craton_root_partuuid} rw craton.disk-id=${craton_disk_id}",
            "systemd.mount-extra=PARTUUID=${craton_oem_partuuid}:/oem:ext4:ro,nosuid,nodev,noexec,nofail",
            &format!(
                "craton.slot={dir} $craton_firstboot quiet 'x=it'\\''s' $craton_platform_args $craton_trial_args"
            ),
        ] {
            assert!(linux.contains(want), "{want} not in {linux}");
        }
    }
}

#[test]
fn slot_cfg_sets_the_variables() {
    let text = slot_cfg(&sample_entry(Slot::A));
    assert!(text.contains("set craton_usrfstype=erofs\n"));
    assert!(text.contains(&format!("set craton_usrhash={}\n", "5a".repeat(32))));
    assert!(!text.contains("partuuid"), "{text}");
    assert!(text.contains("set craton_hash_offset=1048576\n"));
    assert!(text.contains("set craton_version=2026.11.27\n"));
}

#[test]
fn initial_variables() {
    let v = initial_grubenv_vars(false);
    let get = |n: &str| v.iter().find(|(k, _)| k == n).unwrap().1.clone();
    assert_eq!(get("ORDER"), "A B");
    assert_eq!((get("A_OK"), get("A_TRY")), ("1".into(), "0".into()));
    assert_eq!((get("B_OK"), get("B_TRY")), ("0".into(), "0".into()));
    assert_eq!(get("DISK_ID"), "image");
    let v = initial_grubenv_vars(true);
    assert!(v.contains(&("B_OK".into(), "1".into())));
}
