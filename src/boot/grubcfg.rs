//! The GRUB configuration: one grub.cfg for BIOS and UEFI, a slot.cfg per
//! slot, and the initial A/B variables of the environment block.
//!
//! The same text is written to /EFI/debian/grub.cfg (read by Debian's signed
//! grubx64.efi, prefix (hd0,gpt1)/EFI/debian) and /grub/grub.cfg (read by
//! the BIOS core.img, prefix (,gpt1)/grub); the caller writes both. Both
//! prefixes name the ESP, so GRUB starts with `$root` set to the ESP and
//! every path below is relative to it. craton does not `search` for the ESP
//! by volume id: with two craton disks attached (a copy being flashed, a
//! test rig) a search could pick the other disk, while `$root` is always
//! the disk GRUB itself was loaded from.
//!
//! The PARTUUIDs on the kernel command line are read by GRUB (`probe
//! --part-uuid`) from that same disk at every boot, not written into the
//! ESP: a new disk's first boot gives it identifiers of its own (see
//! [`DISK_ID`]), and a command line from the disk itself always matches.
//!
//! Slot selection follows the scheme of RAUC's GRUB boot selection example
//! (ORDER plus per-slot OK and TRY flags), written anew, with the meaning
//! of `crate::update::state` (docs/updates.md): boot the first good slot in
//! ORDER; or, when ORDER's first slot is pending (neither good nor tried),
//! mark it tried and boot it once on trial. The OS confirms a slot (OK=1)
//! when its boot is healthy; an unconfirmed trial leaves the slot tried and
//! not good, and every later boot takes the other slot.

use std::fmt::Write as _;

// GRUB's script lexer quotes words as sh does (GRUB manual, "Shell-like
// scripting"), so the process wrapper's quoting serves.
use super::slot::{Slot, SlotEntry};
use crate::partition::PartKind;
use crate::platform::oem;
use crate::process::shell_quote;
use crate::profile::OEM_MOUNT;

/// How the booted system mounts the OEM partition (systemd.mount(5)).
pub const OEM_MOUNT_OPTIONS: &str = "ro,nosuid,nodev,noexec,nofail";

/// The environment block, relative to the ESP (`$root`).
pub const GRUBENV_PATH: &str = "/grub/grubenv";
/// Serial port settings for GRUB's `serial` command (GRUB manual "serial"):
/// COM1 at 115200 baud, matching the kernel's console=ttyS0,115200n8.
pub const GRUB_SERIAL: &str = "serial --unit=0 --speed=115200";
/// Variables GRUB reads from the block; `load_env` with a list (GRUB manual
/// "load_env") ignores anything else a tampered block might set.
const ENV_VARS: &str = "ORDER A_OK A_TRY B_OK B_TRY DISK_ID FIRST_BOOT";
/// The environment variable that records whether the disk still has the
/// image's identifiers. A new image says [`DiskId::Image`]; GRUB turns that
/// into [`DiskId::Claimed`] on the disk it booted from, before Linux runs,
/// which is what tells that disk apart from an identical copy attached
/// beside it; the initrd then gives the claimed disk a random disk GUID
/// and PARTUUIDs, sets [`DiskId::Machine`] and reboots once
/// (`crate::initrd::units`). GRUB passes the value on as
/// `craton.disk-id=`.
pub const DISK_ID: &str = "DISK_ID";
/// The kernel argument GRUB adds when it boots a pending slot on trial
/// (`crate::update::state`): failures reboot instead of stopping.
pub const TRIAL_ARG: &str = "craton.trial";
/// `panic=` of a trial boot: a kernel that panics (no init, a broken
/// initrd) reboots after this many seconds, into the other slot.
pub const TRIAL_PANIC_SECS: u32 = 10;
/// The environment variable that says the disk has not been provisioned
/// yet: a new image has `1`; GRUB then passes [`FIRST_BOOT_ARG`] and
/// Ignition runs in the initrd, which sets `0` once it succeeded
/// (`crate::initrd::ignition`, docs/provisioning.md).
pub const FIRST_BOOT: &str = "FIRST_BOOT";
/// The kernel argument of a first boot (Ignition's own, read by its
/// generator and its units' conditions).
pub const FIRST_BOOT_ARG: &str = "ignition.firstboot";
/// The kernel argument that carries [`DISK_ID`] to the initrd.
pub const DISK_ID_ARG: &str = "craton.disk-id";

/// The values of [`DISK_ID`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiskId {
    /// The image's own identifiers, the same on every copy.
    Image,
    /// Booted once by GRUB from this disk; the initrd has not yet given it
    /// identifiers of its own.
    Claimed,
    /// Identifiers of its own (also assumed for a block without the variable).
    Machine,
}

impl DiskId {
    pub fn name(self) -> &'static str {
        match self {
            DiskId::Image => "image",
            DiskId::Claimed => "claimed",
            DiskId::Machine => "machine",
        }
    }
}

/// What grub.cfg needs besides the slots' own facts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootConfig {
    /// GRUB menu timeout ([boot] timeout-secs).
    pub timeout_secs: u32,
    /// Profile kernel arguments ([boot] kernel-args). The platform's
    /// (console, `[platform.NAME] kernel-args`) come from the OEM
    /// partition's snippet (`crate::platform::oem`), after these.
    pub kernel_args: Vec<String>,
}

/// The ESP folder of a slot's kernel, initrd and slot.cfg.
pub fn slot_dir(slot: Slot) -> String {
    format!("/craton/{}", slot.dir_name())
}

/// The shared grub.cfg.
pub fn grub_cfg(cfg: &BootConfig) -> String {
    let mut s = String::new();
    s.push_str(
        "# craton: GRUB configuration, the same for BIOS (/grub/grub.cfg) and\n\
         # UEFI (/EFI/debian/grub.cfg). $root is the ESP, set by GRUB's prefix.\n",
    );
    let _ = writeln!(s, "{GRUB_SERIAL}");
    s.push_str("terminal_input serial console\nterminal_output serial console\n");
    let _ = writeln!(s, "set timeout={}", cfg.timeout_secs);
    s.push_str(
        "\n# A/B selection: defaults for a block without the variables.\n\
         set ORDER=\"A B\"\nset A_OK=0\nset A_TRY=0\nset B_OK=0\nset B_TRY=0\n",
    );
    let _ = writeln!(s, "set {DISK_ID}={}", DiskId::Machine.name());
    let _ = writeln!(s, "set {FIRST_BOOT}=0");
    let _ = writeln!(s, "load_env -f {GRUBENV_PATH} {ENV_VARS}");
    // The first good slot of ORDER, or ORDER's first when it is pending
    // (not good, not tried): `crate::update::state::AbState::next_boot`.
    s.push_str("set craton_slot=\"\"\nset craton_trial=0\nset first=1\n");
    s.push_str(&pick_loop());
    // No slot qualifies (a damaged block): booting slot A is better than
    // stopping at a prompt nobody sees.
    s.push_str("if [ -z \"$craton_slot\" ]; then\n  set craton_slot=A\nfi\n");
    for slot in Slot::ALL {
        let n = slot.env_name();
        let _ = writeln!(
            s,
            "if [ \"$craton_slot\" = {n} ]; then\n  set default={}\n  set fallback={}\n  \
             if [ \"$craton_trial\" = 1 ]; then\n    set {n}_TRY=1\n  fi\nfi",
            slot.menu_id(),
            menu_index(!slot)
        );
    }
    // A trial boot says so to the OS (a failure there reboots rather than
    // waiting at an emergency prompt) and to the kernel (a panic reboots).
    let _ = writeln!(
        s,
        "set craton_trial_args=\"\"\nif [ \"$craton_trial\" = 1 ]; then\n  \
         echo \"craton: slot $craton_slot on trial\"\n  \
         set craton_trial_args=\"{TRIAL_ARG}=1 panic={TRIAL_PANIC_SECS}\"\nfi"
    );
    // Not provisioned yet: Ignition runs in the initrd (see FIRST_BOOT).
    let _ = writeln!(
        s,
        "set craton_firstboot=\"\"\nif [ \"${FIRST_BOOT}\" = 1 ]; then\n  \
         set craton_firstboot=\"{FIRST_BOOT_ARG}=1\"\nfi"
    );
    // This disk's first boot: claim it (see DISK_ID), in the same write.
    let _ = writeln!(
        s,
        "if [ \"${DISK_ID}\" = {image} ]; then\n  set {DISK_ID}={claimed}\nfi",
        image = DiskId::Image.name(),
        claimed = DiskId::Claimed.name()
    );
    // Marked tried before the kernel runs: a kernel that hangs or panics
    // leaves TRY=1 and the next boot takes the other slot.
    let _ = writeln!(s, "save_env -f {GRUBENV_PATH} A_TRY B_TRY {DISK_ID}");
    // Only the two values the initrd knows reach the kernel, never the
    // block's text: the block is writable, the command line must not be.
    let _ = writeln!(
        s,
        "set craton_disk_id={machine}\nif [ \"${DISK_ID}\" = {claimed} ]; then\n  set craton_disk_id={claimed}\nfi",
        machine = DiskId::Machine.name(),
        claimed = DiskId::Claimed.name()
    );
    // The disk GRUB was loaded from: `$root` is its ESP ("hd0,gpt1").
    s.push_str("regexp --set=1:craton_disk '^([^,]*),' \"$root\"\n");
    // The platform's settings: the OEM partition of this same disk.
    let oem = PartKind::Oem.number();
    let _ = writeln!(
        s,
        "set {args}=\"\"\nif [ -f \"($craton_disk,gpt{oem})/{snippet}\" ]; then\n  \
         source \"($craton_disk,gpt{oem})/{snippet}\"\nfi",
        args = oem::ARGS_VAR,
        snippet = oem::GRUB_SNIPPET,
    );
    let _ = writeln!(
        s,
        "{}",
        probe_partuuid("craton_oem_partuuid", PartKind::Oem)
    );
    let _ = writeln!(
        s,
        "{}",
        probe_partuuid("craton_root_partuuid", PartKind::Root)
    );
    s.push_str("echo \"craton: booting slot $craton_slot\"\n");
    for slot in Slot::ALL {
        s.push('\n');
        s.push_str(&menuentry(cfg, slot));
    }
    s
}

/// The position of a slot's menu entry. GRUB 2.12 resolves `fallback`
/// by number only (an id gave "Failed to boot both default and fallback
/// entries" in the GRUB-level test), so the fallback is named by it.
fn menu_index(slot: Slot) -> usize {
    Slot::ALL.iter().position(|&s| s == slot).unwrap_or(0)
}

/// A `for` over ORDER that sets craton_slot to the first good slot, or to
/// the first slot when it is neither good nor tried (then craton_trial=1).
fn pick_loop() -> String {
    let mut s = String::from("for s in $ORDER; do\n  set ok=0\n  set try=1\n");
    for slot in Slot::ALL {
        let n = slot.env_name();
        let _ = writeln!(
            s,
            "  if [ \"$s\" = {n} ]; then\n    set ok=\"${n}_OK\"\n    set try=\"${n}_TRY\"\n  fi"
        );
    }
    s.push_str(
        "  if [ \"$ok\" = 1 ]; then\n    set craton_slot=\"$s\"\n    break\n  fi\n  \
         if [ \"$first\" = 1 -a \"$try\" = 0 ]; then\n    set craton_slot=\"$s\"\n    \
         set craton_trial=1\n    break\n  fi\n  set first=0\ndone\n",
    );
    s
}

fn indent(text: &str) -> String {
    text.lines().map(|l| format!("  {l}\n")).collect()
}

/// The device systemd-veritysetup-generator makes for `usrhash=` (it names
/// the mapping "usr"), which `mount.usr=` mounts.
pub const USR_VERITY_DEVICE: &str = "/dev/mapper/usr";

/// `probe` sets `var` to the PARTUUID of `part` on the booted disk (lower
/// case, as udev's /dev/disk/by-partuuid links); a failure says so on the
/// console rather than booting with an empty value unnoticed.
fn probe_partuuid(var: &str, part: PartKind) -> String {
    format!(
        "if ! probe --set={var} --part-uuid \"($craton_disk,gpt{n})\"; then\n  \
         echo \"craton: cannot read the PARTUUID of {label} on $craton_disk\"\nfi",
        n = part.number(),
        label = part.label(),
    )
}

fn menuentry(cfg: &BootConfig, slot: Slot) -> String {
    let dir = slot_dir(slot);
    let mut args = vec![
        format!("mount.usr={USR_VERITY_DEVICE}"),
        "mount.usrfstype=${craton_usrfstype}".to_owned(),
        "mount.usrflags=ro".to_owned(),
        "usrhash=${craton_usrhash}".to_owned(),
        "systemd.verity_usr_data=PARTUUID=${craton_usr_partuuid}".to_owned(),
        "systemd.verity_usr_hash=PARTUUID=${craton_usr_partuuid}".to_owned(),
        "systemd.verity_usr_options=hash-offset=${craton_hash_offset}".to_owned(),
        "root=PARTUUID=${craton_root_partuuid}".to_owned(),
        "rw".to_owned(),
        format!("{DISK_ID_ARG}=${{craton_disk_id}}"),
        // /oem, read-only, from the booted disk (crate::platform::units);
        // nofail: a disk without it still boots.
        format!(
            "systemd.mount-extra=PARTUUID=${{craton_oem_partuuid}}:{OEM_MOUNT}:ext4:{OEM_MOUNT_OPTIONS}"
        ),
        format!("craton.slot={}", slot.dir_name()),
        "$craton_firstboot".to_owned(),
    ];
    args.extend(cfg.kernel_args.iter().map(|a| shell_quote(a)));
    // Unquoted: GRUB splits the variable's value into arguments.
    args.push(format!("${}", oem::ARGS_VAR));
    // Last, so that no profile or OEM `panic=` overrides a trial's: the
    // kernel takes the last value. Empty, or the trial's arguments.
    args.push("$craton_trial_args".to_owned());
    format!(
        "menuentry \"craton slot {n}\" --id {id} {{\n  \
         source {dir}/slot.cfg\n{probe}\n  \
         echo \"craton: slot {n}, version $craton_version\"\n  \
         linux {dir}/vmlinuz {args}\n  \
         initrd {dir}/initrd\n}}\n",
        n = slot.env_name(),
        id = slot.menu_id(),
        probe = indent(&probe_partuuid("craton_usr_partuuid", PartKind::Usr(slot))).trim_end(),
        args = args.join(" "),
    )
}

/// A slot's slot.cfg: variables only, sourced by its menu entry. The values
/// were checked by [`SlotEntry::new`] and need no quoting.
pub fn slot_cfg(e: &SlotEntry) -> String {
    format!(
        "# craton slot {slot}: the /usr image in {label}.\n\
         set craton_version={version}\n\
         set craton_usrfstype={fs}\n\
         set craton_usrhash={hash}\n\
         set craton_hash_offset={offset}\n",
        slot = e.slot(),
        label = e.slot().partlabel(),
        version = e.version(),
        fs = e.usr_filesystem().name(),
        hash = e.usrhash(),
        offset = e.hash_offset(),
    )
}

/// The variables of a new image's environment block: slot A is good and
/// untried; slot B is good only when the build copied A into it; the disk
/// has the image's identifiers and has not been provisioned.
pub fn initial_grubenv_vars(b_is_copy: bool) -> Vec<(String, String)> {
    let b_ok = if b_is_copy { "1" } else { "0" };
    [
        ("ORDER", "A B"),
        ("A_OK", "1"),
        ("A_TRY", "0"),
        ("B_OK", b_ok),
        ("B_TRY", "0"),
        (DISK_ID, DiskId::Image.name()),
        (FIRST_BOOT, "1"),
    ]
    .iter()
    .map(|(n, v)| (n.to_string(), v.to_string()))
    .collect()
}

/// The initial block, ready to write to the ESP.
pub fn initial_grubenv(b_is_copy: bool) -> anyhow::Result<Vec<u8>> {
    super::grubenv::encode_grubenv(&initial_grubenv_vars(b_is_copy))
}
