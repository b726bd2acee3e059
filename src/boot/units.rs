//! Files installed into the image for A/B boots and ROOT's growth: the
//! unit that confirms the booted slot (`craton mark-good --health`, the
//! image's own craton: `crate::update`), the unit that reboots a failed
//! trial into the other slot, and the systemd-repart definition that grows
//! ROOT on first boot. The rootfs stage installs them (it owns the tree);
//! the initrd's own files are the initrd stage's (`crate::initrd::units`).
//!
//! The initrd has no craton (and no coreutils), so when it must change the
//! environment block (a new disk's identity) it runs a POSIX sh script
//! whose block is made with sh builtins alone: it keeps the header line
//! and the variables in order, replaces or appends the given ones and pads
//! with `#` to 1024 bytes. Tests check it byte for byte against
//! [`super::grubenv::encode_grubenv`].
//!
//! The list holds (absolute path, content, mode).

/// Rewrites variables of a GRUB environment block: `grubenv-set FILE N=V...`.
pub const GRUBENV_SET_PATH: &str = "/usr/lib/craton/grubenv-set";
/// The image's craton (`crate::update::image`), which confirms the slot.
pub const CRATON_PATH: &str = "/usr/bin/craton";
pub const MARK_GOOD_UNIT: &str = "craton-mark-good.service";
/// The ESP's GPT partition label.
pub const ESP_PARTLABEL: &str = crate::partition::PartKind::Esp.label();

/// The script behind [`GRUBENV_SET_PATH`], in the image and in the initrd.
pub(crate) const GRUBENV_SET: &str = r#"#!/bin/sh
# grubenv-set [--in-place] FILE NAME=VALUE...: sets variables in a GRUB
# environment block (GRUB manual "Environment block": 1024 bytes, a header
# line, NAME=VALUE lines, '#' padding). Written by craton; the image has no
# grub-editenv. Only sh builtins make the new block, so the initrd (dash,
# without coreutils) runs it too.
#
# The block is written beside the old one and renamed over it, so a power
# cut leaves either; --in-place (the initrd, which has no mv) overwrites
# the block's own 1024 bytes instead, as GRUB's save_env does.
set -eu
inplace=
if [ "${1:-}" = --in-place ]; then
    inplace=1
    shift
fi
[ $# -ge 2 ] || { echo "usage: grubenv-set [--in-place] FILE NAME=VALUE..." >&2; exit 2; }
file=$1
shift
header='# GRUB Environment Block'
size=1024
nl='
'
for kv in "$@"; do
    case $kv in
        *=*) ;;
        *) echo "grubenv-set: $kv: expected NAME=VALUE" >&2; exit 2 ;;
    esac
    case ${kv%%=*} in
        '' | *[!A-Za-z0-9_]*) echo "grubenv-set: $kv: bad name" >&2; exit 2 ;;
    esac
done
first=
IFS= read -r first <"$file" || true
if [ "$first" != "$header" ]; then
    echo "grubenv-set: $file: not a GRUB environment block" >&2
    exit 1
fi
out=$header$nl
# The old variables in order (comment and padding lines dropped).
while IFS= read -r line || [ -n "$line" ]; do
    case $line in '#'* | '') continue ;; esac
    for kv in "$@"; do
        [ "${kv%%=*}" = "${line%%=*}" ] && line=$kv
    done
    out=$out$line$nl
done <"$file"
# New variables at the end.
for kv in "$@"; do
    case $nl$out in
        *"$nl${kv%%=*}="*) ;;
        *) out=$out$kv$nl ;;
    esac
done
used=${#out}
if [ "$used" -gt "$size" ]; then
    echo "grubenv-set: $file: $used bytes do not fit in $size" >&2
    exit 1
fi
pad=
while [ "${#pad}" -lt "$((size - used))" ]; do
    pad=$pad#
done
if [ -n "$inplace" ]; then
    printf '%s' "$out$pad" 1<>"$file"
    exit 0
fi
tmp="$file.new"
trap 'rm -f "$tmp"' EXIT
printf '%s' "$out$pad" >"$tmp"
sync "$tmp"
mv -f "$tmp" "$file"
sync "${file%/*}"
"#;

const MARK_GOOD_SERVICE: &str = "[Unit]
Description=Mark the booted craton slot good
Documentation=man:systemd.special(7)
# boot-complete.target: units that judge the boot order themselves before
# it; those that record success after it (systemd.special(7)). Wanted, not
# required: when the target fails, craton still runs, sees it and does not
# confirm the slot (a trial then reboots into the other slot). No default
# dependencies: multi-user.target
# wants this unit, and a target is otherwise ordered after what it wants,
# which with boot-complete.target after multi-user.target is a cycle (as
# systemd-bless-boot.service, which has the same place in the boot).
DefaultDependencies=no
Wants=boot-complete.target
After=local-fs.target boot-complete.target
Conflicts=shutdown.target
Before=shutdown.target
ConditionKernelCommandLine=craton.slot

# Type=simple: the slot is confirmed in the background, after the boot's
# transaction and the profile's grace period ([update] confirm-after-secs),
# as Flatcar's and ChromeOS's update engines confirm theirs: the host is up
# and docker.socket listens before the ESP is mounted and written, and
# `is-system-running` turns `degraded` if the boot is not healthy.
# RemainAfterExit keeps a successful run visible as active (exited).
[Service]
Type=simple
RemainAfterExit=yes
ExecStart=@CRATON@ mark-good --health
";

/// Reboots a trial boot that failed (`craton.trial=1`, set by GRUB for a
/// pending slot): GRUB then takes the other slot. Wanted by
/// emergency.target, in the initrd (a /usr that fails verity, a missing
/// ROOT) and in the booted system; `craton mark-good --health` reboots a
/// trial whose health check failed itself. A confirmed slot's failure
/// stops as before, at the emergency prompt: rebooting would start the
/// same slot again.
pub const TRIAL_FAILED_UNIT: &str = "craton-trial-failed.service";
pub(crate) const TRIAL_FAILED_SERVICE: &str = "[Unit]
Description=Reboot a failed trial boot into the other slot
DefaultDependencies=no
ConditionKernelCommandLine=@TRIAL@=1
SuccessAction=reboot-force
FailureAction=reboot-force

[Service]
Type=oneshot
ExecStart=/bin/sh -c 'echo craton: this trial boot of a new slot failed, rebooting into the other slot'
StandardOutput=journal+console

[Install]
WantedBy=emergency.target
";

/// The trial unit's text with the kernel argument filled in.
pub fn trial_failed_service() -> String {
    TRIAL_FAILED_SERVICE.replace("@TRIAL@", super::grubcfg::TRIAL_ARG)
}

const EMERGENCY_DROPIN: &str = "[Unit]
Wants=craton-trial-failed.service
";

/// boot-complete.target is reached right after sysinit.target unless a unit
/// orders itself before it; the boot counts as good once the default
/// target's units have started. (systemd-boot-check-no-failures.service
/// would also fail the boot for any failed unit: too strict as a default.)
const BOOT_COMPLETE_DROPIN: &str = "[Unit]
After=multi-user.target
";

const MULTI_USER_DROPIN: &str = "[Unit]
Wants=craton-mark-good.service
";

/// systemd's own systemd-growfs-root.service (After=systemd-repart.service)
/// grows the mounted ROOT ext4 online to its partition; nothing pulls it in
/// unless gpt-auto mounted the root, so local-fs.target does.
const GROWFS_DROPIN: &str = "[Unit]
Wants=systemd-growfs-root.service
";

/// Where the image's repart definition lives. In the initrd,
/// systemd-repart.service (systemd 257) reads repart.d from the image's
/// /usr mounted at /sysusr/usr (its ConditionDirectoryNotEmpty= names
/// /sysusr/usr/lib/repart.d); a definition in the initrd's own /usr was
/// not matched (tested: the table listing named no definition).
pub const REPART_ROOT_PATH: &str = "/usr/lib/repart.d/50-craton-root.conf";

/// repart.d (repart.d(5)): match the existing ROOT partition by its type
/// (root-x86-64, 4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709, docs/architecture.md
/// "Disk layout") and label, and grow it into the free space of a larger disk.
/// No Format=: the partition and its file system exist; the file system is
/// grown by systemd-growfs once mounted.
const REPART_ROOT: &str = "# craton: grow ROOT to fill the disk on first boot.
[Partition]
Type=root-x86-64
Label=ROOT
";

/// The files for the image's /usr (all under /usr: /etc is a factory copy).
pub fn image_files() -> Vec<(String, String, u32)> {
    let sd = "/usr/lib/systemd/system";
    vec![
        (
            format!("{sd}/{MARK_GOOD_UNIT}"),
            MARK_GOOD_SERVICE.replace("@CRATON@", CRATON_PATH),
            0o644,
        ),
        (
            format!("{sd}/boot-complete.target.d/craton.conf"),
            BOOT_COMPLETE_DROPIN.into(),
            0o644,
        ),
        (
            format!("{sd}/multi-user.target.d/craton-mark-good.conf"),
            MULTI_USER_DROPIN.into(),
            0o644,
        ),
        (
            format!("{sd}/{TRIAL_FAILED_UNIT}"),
            trial_failed_service(),
            0o644,
        ),
        (
            format!("{sd}/emergency.target.d/craton-trial.conf"),
            EMERGENCY_DROPIN.into(),
            0o644,
        ),
        (REPART_ROOT_PATH.into(), REPART_ROOT.into(), 0o644),
        (
            format!("{sd}/local-fs.target.d/craton-growfs.conf"),
            GROWFS_DROPIN.into(),
            0o644,
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt as _;

    use crate::boot::grubenv::encode_grubenv;
    use crate::process::Cmd;

    /// Runs the image's grubenv-set with /bin/sh (dash, as in the initrd)
    /// on `block`, both ways; they must give the same bytes.
    fn grubenv_set(block: &[u8], args: &[&str]) -> anyhow::Result<Vec<u8>> {
        let renamed = grubenv_set_with(block, args, false)?;
        let in_place = grubenv_set_with(block, args, true)?;
        assert_eq!(renamed, in_place);
        Ok(renamed)
    }

    fn grubenv_set_with(block: &[u8], args: &[&str], in_place: bool) -> anyhow::Result<Vec<u8>> {
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("grubenv-set");
        std::fs::write(&script, GRUBENV_SET).unwrap();
        let env = dir.path().join("grubenv");
        std::fs::write(&env, block).unwrap();
        let ino = std::fs::metadata(&env).unwrap().ino();
        let flag: &[&str] = if in_place { &["--in-place"] } else { &[] };
        Cmd::new("/bin/sh")
            .arg(&script)
            .args(flag)
            .arg(&env)
            .args(args)
            .run()?;
        // Nothing is left beside the block; in place means the same file.
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 2);
        let same = std::fs::metadata(&env).unwrap().ino() == ino;
        assert_eq!(same, in_place);
        Ok(std::fs::read(&env).unwrap())
    }

    #[test]
    fn confirm_rewrites_the_block_as_the_encoder_does() {
        let before = [
            ("ORDER", "B A"),
            ("A_OK", "1"),
            ("A_TRY", "0"),
            ("B_OK", "0"),
            ("B_TRY", "1"),
        ];
        let got = grubenv_set(&encode_grubenv(&before).unwrap(), &["B_OK=1", "B_TRY=0"]).unwrap();
        let want = [
            ("ORDER", "B A"),
            ("A_OK", "1"),
            ("A_TRY", "0"),
            ("B_OK", "1"),
            ("B_TRY", "0"),
        ];
        assert_eq!(got, encode_grubenv(&want).unwrap());
    }

    #[test]
    fn confirm_appends_missing_variables_and_drops_comments() {
        // A block as Debian's grub-editenv writes it, with its warning line.
        let mut block = b"# GRUB Environment Block\n\
            # WARNING: Do not edit this file by tools other than grub-editenv!!!\n\
            ORDER=A B\n"
            .to_vec();
        block.resize(1024, b'#');
        let got = grubenv_set(&block, &["A_OK=1", "A_TRY=0"]).unwrap();
        let want = [("ORDER", "A B"), ("A_OK", "1"), ("A_TRY", "0")];
        assert_eq!(got, encode_grubenv(&want).unwrap());
    }

    #[test]
    fn confirm_refuses_a_file_that_is_not_a_block() {
        let err = grubenv_set(b"hello\n", &["A_OK=1"]).unwrap_err();
        assert!(
            format!("{err:#}").contains("not a GRUB environment block"),
            "{err:#}"
        );
        assert!(grubenv_set(&encode_grubenv::<&str, &str>(&[]).unwrap(), &["A-OK=1"]).is_err());
        let big = format!("X={}", "y".repeat(1000));
        assert!(grubenv_set(&encode_grubenv::<&str, &str>(&[]).unwrap(), &[&big]).is_err());
    }

    /// systemd-analyze (the host's systemd) builds the boot transaction
    /// with these units over the host's own: no ordering cycle (the first
    /// version of the unit had one, multi-user -> boot-complete -> unit).
    #[test]
    fn units_make_no_ordering_cycle() {
        let verify = |files: Vec<(String, String, u32)>| {
            let dir = tempfile::tempdir().unwrap();
            let units = dir.path().join("system");
            for (path, text, _) in files {
                if let Some(rel) = path.strip_prefix("/usr/lib/systemd/system/") {
                    let f = units.join(rel);
                    std::fs::create_dir_all(f.parent().unwrap()).unwrap();
                    std::fs::write(f, text).unwrap();
                }
            }
            // The trailing colon keeps systemd's own unit folders after ours.
            Cmd::new("systemd-analyze")
                .env("SYSTEMD_UNIT_PATH", format!("{}:", units.display()))
                .args([
                    "verify",
                    "multi-user.target",
                    "emergency.target",
                    TRIAL_FAILED_UNIT,
                ])
                .output_all()
                .unwrap_or_else(|e| format!("{e:#}"))
        };
        let out = verify(image_files());
        assert!(!out.contains("ordering cycle"), "{out}");
        // Every key of craton's units is where systemd reads it (a
        // SuccessAction= under [Service] was once silently ignored).
        let ours: Vec<&str> = out.lines().filter(|l| l.contains("craton")).collect();
        assert!(
            !ours.iter().any(|l| l.contains("Unknown")),
            "{}",
            ours.join("\n")
        );
        // The check sees cycles: with default dependencies the unit has one.
        let cyclic = image_files()
            .into_iter()
            .map(|(p, t, m)| (p, t.replace("DefaultDependencies=no\n", ""), m))
            .collect();
        let out = verify(cyclic);
        assert!(out.contains("Found ordering cycle"), "{out}");
    }

    #[test]
    fn scripts_parse_and_files_are_complete() {
        for (path, text, mode) in image_files() {
            assert!(path.starts_with("/usr/"), "{path}");
            for p in ["@CRATON@", "@TRIAL@"] {
                assert!(!text.contains(p), "{path} has {p} unfilled");
            }
            if mode == 0o755 {
                Cmd::new("/bin/sh")
                    .arg("-n")
                    .arg("-c")
                    .arg(&text)
                    .run()
                    .unwrap();
            }
        }
        let files = image_files();
        let get = |name: &str| {
            &files
                .iter()
                .find(|f| f.0.ends_with(&format!("/{name}")))
                .unwrap()
                .1
        };
        assert!(get(MARK_GOOD_UNIT).contains("ExecStart=/usr/bin/craton mark-good --health\n"));
        let trial = get(TRIAL_FAILED_UNIT);
        assert!(trial.contains("ConditionKernelCommandLine=craton.trial=1\n"));
        assert!(trial.contains("SuccessAction=reboot-force\n"));
        let repart = &files.iter().find(|f| f.0 == REPART_ROOT_PATH).unwrap().1;
        assert!(repart.contains("Type=root-x86-64\n"));
    }
}
