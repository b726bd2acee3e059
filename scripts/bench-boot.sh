#!/usr/bin/env bash
# Boot time of a disk image under QEMU TCG, as systemd measures it inside
# the guest, and its ratio to a peer image booted alternately in the same
# run (lower is better; issue #10's target: craton at most half of mkosi's
# time from QEMU start to `running`).
#
# Usage (as root, qemu-system-x86 and ovmf installed):
#   scripts/bench-boot.sh IMAGE [PEER_IMAGE]
# Environment: BENCH_ROUNDS (boots of each image, default 2), BENCH_TIMEOUT
# (seconds per boot, default 900), BENCH_LOGS (serial logs, default a new
# folder under /var/tmp, kept).
#
# Every boot uses the QEMU arguments of ../shared/peers/mkosi/peer.sh boot
# (TCG, q35, -cpu max, 2 GiB, 2 vCPUs, OVMF, virtio disk and net,
# -snapshot: each boot is the first boot of the pristine image), plus a
# second serial port for the probe. A probe unit passed as systemd
# credentials waits for `systemctl is-system-running --wait` and prints
# `systemd-analyze time`, `blame` (devices left out), `critical-chain` and
# each unit's CPU time (cgroup accounting) and the loaded kernel modules
# on that port; the host notes when its line arrives. Printed per boot: the seconds from QEMU's start to
# `running`, and firmware / loader / kernel / initrd / userspace as
# systemd-analyze has them; then medians, the last boot's critical chain,
# slowest units and CPU time by unit, and the ratio.
#
# The peer: ../shared/peers/mkosi/peer.sh setup && peer.sh build makes
# mkosi's image of the same package set (/var/tmp/craton-peer/out/peer.raw).
# TCG speed differs between machines by 3x: quote ratios from one run,
# never absolute times from different runs.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
[ $# -ge 1 ] && [ $# -le 2 ] || { sed -n '2,12p' "$0" >&2; exit 2; }
for f in "$@"; do
    [ -f "$f" ] || { echo "bench-boot: $f: no such image file" >&2; exit 2; }
done
command -v qemu-system-x86_64 >/dev/null || { echo "bench-boot: apt-get install qemu-system-x86 ovmf" >&2; exit 1; }
logs=${BENCH_LOGS:-$(mktemp -d /var/tmp/bench-boot.XXXXXX)}
args=("craton=$1")
[ $# -eq 2 ] && args+=("peer=$2")
echo "bench-boot: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), logs in $logs"
exec python3 "$here/bench-boot.py" "${BENCH_ROUNDS:-2}" "${BENCH_TIMEOUT:-900}" "$logs" "${args[@]}"
