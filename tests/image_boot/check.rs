//! The check that runs inside each booted guest: its shell script (one
//! marker line of facts, or a failure line), the unit and credentials that
//! carry it to `craton qemu`, and flannel's configuration as provisioning
//! would write it.

use std::fs;
use std::path::Path;

use super::{CONTAINER_SAYS, FAIL_MARKER, MARKER};

/// The check unit's script: every fact the issue asks for, one marker line.
pub(crate) fn check_script(key: &str) -> String {
    format!(
        r#"fail() {{ echo "{FAIL_MARKER}: $*"; systemctl --failed --no-legend --plain; exit 1; }}
state=$(systemctl is-system-running --wait)
# Seconds since the kernel started (/proc/uptime), for the test's output.
up() {{ cut -d' ' -f1 /proc/uptime; }}
t_running=$(up)
case $state in running|degraded) ;; *) fail "system is $state" ;; esac
failed=$(systemctl --failed --no-legend --plain | awk '{{print $1}}' | tr '\n' ' ')
for u in $failed; do echo "failed unit $u:"; systemctl status --no-pager -n 20 "$u"; done
set -- $(findmnt -no SOURCE,FSTYPE,OPTIONS /usr)
[ "$1" = /dev/mapper/usr ] || fail "/usr is mounted from $1"
usrfs=$2
case ",$3," in *,ro,*) ;; *) fail "/usr options $3" ;; esac
st=$(dmsetup status usr)
case "$st" in *" verity V"*) ;; *) fail "dm-verity status: $st" ;; esac
# The PARTUUID GRUB read from the disk it booted (the test compares it
# with that disk's table afterwards), and the disk that holds it.
usrpart=$(tr ' ' '\n' </proc/cmdline | sed -n 's/^systemd.verity_usr_data=PARTUUID=//p')
diskid=$(tr ' ' '\n' </proc/cmdline | sed -n 's/^craton.disk-id=//p')
data=$(dmsetup table usr | awk '{{print $5}}')
want=$(lsblk -ndo MAJ:MIN /dev/disk/by-partuuid/$usrpart | tr -d ' ')
[ -n "$want" ] && [ "$data" = "$want" ] || fail "verity data device $data, USR-A (PARTUUID $usrpart) is $want"
usrdisk=$(lsblk -ndo PKNAME /dev/disk/by-partuuid/$usrpart)
# The firmware booted the image (QEMU serial craton-image), not a further
# disk attached ahead of it.
serial=$(lsblk -ndo SERIAL /dev/$usrdisk)
[ "$serial" = craton-image ] || fail "/usr is on $usrdisk, serial '$serial'"
touch /usr/craton-write-test 2>/dev/null && fail "/usr is writable"
set -- $(findmnt -no SOURCE,FSTYPE,OPTIONS /)
rootdev=$1
[ "$2" = ext4 ] || fail "/ is $2"
case ",$3," in *,rw,*) ;; *) fail "/ options $3" ;; esac
[ "$(lsblk -ndo PARTLABEL "$rootdev")" = ROOT ] || fail "/ is $rootdev, not ROOT"
[ "$(lsblk -ndo PKNAME "$rootdev")" = "$usrdisk" ] || fail "/ is $rootdev, not on $usrdisk"
rootpart=$(lsblk -ndo PARTUUID "$rootdev")
touch /var/craton-write-test || fail "/ is not writable"
part=$(lsblk -bndo SIZE "$rootdev")
fsbytes=$(df -B1 --output=size / | tail -n 1 | tr -d ' ')
# The platform: named by the OEM partition's GRUB snippet, which is on
# the booted disk and mounted read-only at /oem; its own package's units
# run there alone, and timesyncd asks gce's metadata server.
platform=$(tr ' ' '\n' </proc/cmdline | sed -n 's/^craton.platform=//p')
set -- $(findmnt -no SOURCE,OPTIONS /oem)
[ -n "$1" ] || fail "/oem is not mounted"
case ",$2," in *,ro,*) ;; *) fail "/oem options $2" ;; esac
[ "$(lsblk -ndo PARTLABEL "$1")" = OEM ] && [ "$(lsblk -ndo PKNAME "$1")" = "$usrdisk" ] || fail "/oem is $1, not OEM on $usrdisk"
oem=$(sed -n 's/^ID=//p' /oem/oem-release)
[ "$oem" = "$platform" ] || fail "/oem/oem-release says $oem, the command line $platform"
agent=$(systemctl show -p ConditionResult --value google-guest-agent.service)
ntp=$(timedatectl show-timesync -p SystemNTPServers --value)
# What provisioned the first boot (issue #14): the metal output's OEM
# default config or the gce metadata's user-data write this file.
provisioned=$(cat /etc/craton/provisioned-by 2>/dev/null || echo none)
case $platform in
gce) [ "$agent" = yes ] && [ "$ntp" = metadata.google.internal ] || fail "gce: agent condition '$agent', NTP '$ntp'" ;;
*) [ "$agent" = no ] && [ -z "$ntp" ] || fail "$platform: agent condition '$agent', NTP '$ntp'" ;;
esac
slot=$(tr ' ' '\n' </proc/cmdline | grep '^craton.slot=' | cut -d= -f2)
[ "$slot" = a ] || fail "craton.slot=$slot"
# craton-mark-good (Type=simple) confirms the slot after the boot's
# transaction: wait for its result (exited, or failed).
i=0
while [ "$(systemctl show -p SubState --value craton-mark-good.service)" = running ] && [ $i -lt 300 ]; do sleep 1; i=$((i + 1)); done
mg=$(systemctl show -p ActiveState --value craton-mark-good.service)/$(systemctl show -p SubState --value craton-mark-good.service)
[ "$mg" = active/exited ] || fail "craton-mark-good.service is $mg"
# mark-good found the ESP on the /usr disk from the partition table itself
# (partx), not through udev's links.
esp=$(journalctl -b -u craton-mark-good.service -o cat | sed -n 's/.*mark-good: the ESP is //p' | tail -n 1)
case $esp in /dev/disk/* | '') fail "mark-good used the ESP '$esp'" ;; esac
[ "$(lsblk -ndo PKNAME,PARTLABEL "$esp" | tr -s ' ')" = "$usrdisk EFI-SYSTEM" ] || fail "mark-good's ESP $esp: $(lsblk -ndo PKNAME,PARTLABEL "$esp")"
# networkd ran, and the kernel did not load cfg80211 for it (no Wi-Fi here;
# profiles/base.toml blacklists the module's own aliases).
systemctl is-active --quiet systemd-networkd.service || fail "systemd-networkd.service is not active"
if grep -q '^cfg80211 ' /proc/modules; then fail "cfg80211 is loaded on a machine without Wi-Fi"; fi
mkdir -p /run/esp-check
mount -o ro "$esp" /run/esp-check || fail "mounting the ESP $esp"
env=$(grep -E '^(ORDER|A_OK|A_TRY|B_OK|B_TRY|DISK_ID)=' /run/esp-check/grub/grubenv | tr '\n' ',')
umount /run/esp-check
case ",$env" in *,A_OK=1,A_TRY=0,*DISK_ID=machine,*) ;; *) fail "grubenv $env" ;; esac
grep -qxF "{key}" /root/.ssh/authorized_keys || fail "root's authorized_keys lacks the --ssh-key key"
# sshd is socket-activated: at boot only ssh.socket listens and sshd has
# not run; the first connection (ssh-keyscan here) starts ssh.service,
# which makes the host keys first (sshd-keygen.service, on the machine's
# first connection) and answers with the key it has on disk.
systemctl is-active --quiet ssh.socket || fail "ssh.socket is not active"
sshatboot=socket
for u in ssh.service sshd-keygen.service; do
    [ "$(systemctl show -P InactiveExitTimestampMonotonic $u)" = 0 ] && continue
    # On gce, google-guest-agent restarts sshd once it has read the
    # metadata (its OS Login setup writes sshd's configuration): the
    # platform's own agent, not the image's boot.
    if [ "$platform" = gce ] && systemctl is-active --quiet google-guest-agent.service; then
        sshatboot=agent
    else
        fail "$u ran before the first connection"
    fi
done
# The first connection, in the background while the checks below run (its
# RSA host key takes seconds of CPU under TCG); its answer is checked
# after docker's.
ssh-keyscan -T 300 -t ed25519 127.0.0.1 >/run/craton-check-scan 2>/dev/null &
scan=$!
machineid=$(cat /etc/machine-id)
case $machineid in *[!0-9a-f]* | '') fail "machine-id '$machineid'" ;; esac
[ ${{#machineid}} = 32 ] || fail "machine-id '$machineid'"
# The build's update stamps (/etc/.updated, /var/.updated): the first boot
# does not redo the build's ldconfig, sysusers and journal catalog.
for u in ldconfig.service systemd-sysusers.service systemd-journal-catalog-update.service; do
    [ "$(systemctl show -P ConditionResult $u)" = no ] || fail "$u ran: ConditionResult=$(systemctl show -P ConditionResult $u)"
done
# rkt (the stand-in binary, tests/fixtures/standins): its files, units,
# groups and folders as the container host lays them out.
rkt version | grep -q '^rkt Version: ' || fail "rkt version: $(rkt version 2>&1)"
for s in coreos fly kvm; do
    [ -f /usr/share/rkt/stage1-images/stage1-$s.aci ] || fail "no stage1-$s.aci through /usr/share/rkt"
done
systemctl is-active --quiet rkt-gc.timer || fail "rkt-gc.timer is not active"
systemctl is-active --quiet rkt-metadata.socket || fail "rkt-metadata.socket is not active"
[ -S /run/rkt/metadata-svc.sock ] || fail "no /run/rkt/metadata-svc.sock"
getent group rkt >/dev/null && getent group rkt-admin >/dev/null || fail "rkt's groups are missing"
[ "$(stat -c %a:%U:%G /var/lib/rkt)" = 2750:root:rkt ] || fail "/var/lib/rkt is $(stat -c %a:%U:%G /var/lib/rkt)"
[ "$(stat -c %a:%U:%G /etc/rkt)" = 2770:root:rkt-admin ] || fail "/etc/rkt is $(stat -c %a:%U:%G /etc/rkt)"
# docker is socket-activated: at boot only docker.socket listens, and
# neither daemon has run; the first client (docker info) starts dockerd,
# which wants containerd. Then their data on ROOT (overlay2 on ext4), the
# socket for the docker group (sysusers.d), and nothing waited for "online".
systemctl is-active --quiet docker.socket || fail "docker.socket is not active"
[ -S /run/docker.sock ] || fail "no /run/docker.sock"
for u in docker.service containerd.service; do
    [ "$(systemctl show -P ActiveState $u)" = inactive ] || fail "$u is $(systemctl show -P ActiveState $u) before docker's first use"
    [ "$(systemctl show -P InactiveExitTimestampMonotonic $u)" = 0 ] || fail "$u ran before docker's first use"
done
atboot=socket
t_docker=$(up)
info=$(docker info 2>/dev/null | awk -F': ' '/Storage Driver:/{{d=$2}} /Docker Root Dir:/{{r=$2}} END{{print d, r}}')
[ "$info" = "overlay2 /var/lib/docker" ] || fail "docker info: $info"
systemctl is-active --quiet docker.service || fail "docker.service is not active after docker info"
systemctl is-active --quiet containerd.service || fail "containerd.service is not active after docker info"
[ "$(findmnt -no FSTYPE -T /var/lib/docker)" = ext4 ] || fail "/var/lib/docker is on $(findmnt -no FSTYPE -T /var/lib/docker)"
grep -qx 'g docker -' /usr/lib/sysusers.d/craton-profile.conf || fail "no docker group in sysusers.d"
[ "$(stat -c %G /run/docker.sock)" = docker ] || fail "/run/docker.sock's group is $(stat -c %G /run/docker.sock)"
[ "$(systemctl is-enabled systemd-networkd-wait-online.service)" = disabled ] || fail "networkd-wait-online is $(systemctl is-enabled systemd-networkd-wait-online.service)"
[ "$(systemctl show -P ActiveState systemd-networkd-wait-online.service)" = inactive ] || fail "networkd-wait-online ran"
[ "$(networkctl list --no-legend docker0 | awk '{{print $5}}')" = unmanaged ] || fail "networkd manages docker0: $(networkctl list --no-legend docker0)"
# flannel: configured (an options file) or not.
if [ -e /run/flannel/options.env ] || [ -e /etc/flannel/options.env ]; then
    flannel=on
    systemctl is-active --quiet flanneld.service || fail "flanneld.service is not active"
    [ -s /run/flannel/subnet.env ] || fail "no /run/flannel/subnet.env"
    . /run/flannel/subnet.env
    up=$(systemctl show -P ActiveEnterTimestampMonotonic flanneld.service)
    dstart=$(systemctl show -P InactiveExitTimestampMonotonic docker.service)
    [ "$up" -gt 0 ] && [ "$dstart" -ge "$up" ] || fail "docker started at $dstart, flanneld was ready at $up"
    grep -qF -- "--bip=$FLANNEL_SUBNET --mtu=$FLANNEL_MTU --ip-masq=false" /run/flannel/docker.env || fail "docker.env: $(cat /run/flannel/docker.env)"
    [ "$(networkctl list --no-legend flannel.1 | awk '{{print $5}}')" = unmanaged ] || fail "networkd manages flannel.1: $(networkctl list --no-legend flannel.1)"
else
    flannel=off
    [ "$(systemctl show -P ConditionResult flanneld.service)" = no ] || fail "flanneld's condition: $(systemctl show -P ConditionResult flanneld.service)"
    [ "$(systemctl show -P ActiveState flanneld.service)" = inactive ] || fail "flanneld ran unconfigured"
    [ ! -e /run/flannel/docker.env ] || fail "docker got flannel options"
fi
# sshd's answer to the first connection (started above).
wait $scan
# OpenSSH 10's ssh-keyscan prints the server's banner as a comment line.
scanned=$(awk '!/^#/ {{print $2, $3}}' /run/craton-check-scan)
[ -n "$scanned" ] || fail "ssh-keyscan 127.0.0.1 got no key"
systemctl is-active --quiet ssh.service || fail "ssh.service is not active after a connection"
for t in rsa ecdsa ed25519; do
    [ -s /etc/ssh/ssh_host_${{t}}_key ] || fail "no $t host key"
done
[ "$scanned" = "$(awk '{{print $1, $2}}' /etc/ssh/ssh_host_ed25519_key.pub)" ] || fail "sshd answered with $scanned, not /etc/ssh/ssh_host_ed25519_key.pub"
hostkey=$(ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub | awk '{{print $2}}')
t_containers=$(up)
# docker's bridge as the guest's kernel has it, and as docker has it.
bridge=$(ip -j addr show dev docker0 | grep -o '"local":"[0-9.]*","prefixlen":[0-9]*' | head -n 1 | sed 's/"local":"\([0-9.]*\)","prefixlen":/\1\//')
netmtu=$(docker network inspect bridge | sed -n 's/.*"com.docker.network.driver.mtu": "\([0-9]*\)".*/\1/p')
# A container runs offline from a busybox rootfs tar on the data disk
# (docker import), and one on the bridge sees its MTU and address.
docker import - craton-busybox:test </dev/disk/by-id/virtio-data1 >/dev/null || fail "docker import"
said=$(docker run --rm --network none craton-busybox:test busybox echo {CONTAINER_SAYS}) || fail "docker run: $said"
[ "$said" = {CONTAINER_SAYS} ] || fail "docker run printed '$said'"
ctr=$(docker run --rm craton-busybox:test busybox sh -c 'busybox cat /sys/class/net/eth0/mtu; busybox ip -4 addr show eth0') || fail "docker run on the bridge: $ctr"
ctrmtu=$(echo "$ctr" | head -n 1)
ctraddr=$(echo "$ctr" | awk '$1 == "inet" {{print $2}}')
docker=ran
echo "{MARKER} uptime=running:$t_running,docker:$t_docker,containers:$t_containers,done:$(up) docker=$docker docker_at_boot=$atboot ssh_at_boot=$sshatboot flannel=$flannel bridge=$bridge netmtu=$netmtu ctraddr=$ctraddr ctrmtu=$ctrmtu hostkey=$hostkey machineid=$machineid state=$state platform=$platform oem=$oem agent=$agent ntp=$ntp provisioned=$provisioned slot=$slot usr=/dev/mapper/usr:$usrfs:verified:$usrpart disk_id=$diskid root=$rootdev root_partuuid=$rootpart root_part_bytes=$part root_fs_bytes=$fsbytes grubenv=$env failed=[$failed]"
# A boot that a test logs in to over ssh stays up until it is done.
if [ -e /run/credentials/@system/{WAIT_SSH_CREDENTIAL} ]; then
    for i in $(seq 600); do [ -e /run/craton-ssh-done ] && break; sleep 1; done
fi
"#
    )
}

/// The unit that runs the script (Type=simple, after multi-user.target,
/// output on the serial console, powers off when done: the form of
/// `craton::qemu::check_unit`) and `extra` credentials, written as files
/// for `craton qemu --credential-file`, and the public key for `--ssh-key`.
pub(crate) fn credential_files(
    dir: &Path,
    script: &str,
    key: &str,
    extra: &[(&str, &[u8])],
) -> Vec<String> {
    let key_file = dir.join("authorized.pub");
    fs::write(&key_file, format!("{key}\n")).unwrap();
    let mut args = vec!["--ssh-key".to_owned(), key_file.display().to_string()];
    let mut creds = craton::qemu::check_unit("craton-check", script);
    creds.extend(extra.iter().map(|(n, v)| ((*n).to_owned(), v.to_vec())));
    for (name, value) in creds {
        let file = dir.join(&name);
        fs::write(&file, value).unwrap();
        args.push("--credential-file".to_owned());
        args.push(format!("{name}={}", file.display()));
    }
    args
}

/// The credential whose presence keeps the check's guest up for ssh.
pub(crate) const WAIT_SSH_CREDENTIAL: &str = "craton-test.wait-ssh";
/// flannel configured as provisioning would: /run/flannel/options.env,
/// written at boot by systemd-tmpfiles from the `tmpfiles.extra`
/// credential (systemd.system-credentials(7); `f~`: base64 content).
pub(crate) fn flannel_options_credential() -> Vec<u8> {
    let options = "FLANNELD_ETCD_ENDPOINTS=http://127.0.0.1:2379\nFLANNELD_IFACE=eth0\n";
    format!(
        "d /run/flannel 0755 root root -\nf~ /run/flannel/options.env 0644 root root - {}\n",
        super::guest::base64(options.as_bytes())
    )
    .into_bytes()
}
