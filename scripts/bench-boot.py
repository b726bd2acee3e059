#!/usr/bin/env python3
"""Boots disk images under QEMU (TCG, fixed arguments) and reads systemd's
own boot figures from inside each guest. Called by scripts/bench-boot.sh,
which documents it; see there.

A probe unit reaches the guest as two systemd credentials (SMBIOS type 11,
systemd.system-credentials(7)): the unit (systemd.extra-unit.*) and a
multi-user.target drop-in that wants it. It is Type=simple, so it never
holds up the boot it measures; it waits for `systemctl is-system-running
--wait`, then prints `systemd-analyze time`, `blame`, `critical-chain` and
CPU time by unit between marker lines on the second serial port (a file on
the host) and powers the guest off.

Usage: bench-boot.py ROUNDS TIMEOUT LOGDIR NAME=IMAGE [NAME=IMAGE ...]
Images are booted alternately, ROUNDS times each."""
import base64
import os
import re
import select
import shutil
import statistics
import subprocess
import sys
import time

OVMF_CODE = "/usr/share/OVMF/OVMF_CODE_4M.fd"
OVMF_VARS = "/usr/share/OVMF/OVMF_VARS_4M.fd"
# The same machine as ../shared/peers/mkosi/boot.py (peer.sh boot), so the
# figures compare: TCG, q35, -cpu max, 2 GiB, 2 vCPUs, virtio disk and net,
# -snapshot (every boot is a first boot of a pristine image).
QEMU = ["qemu-system-x86_64", "-accel", "tcg", "-machine", "q35", "-cpu", "max",
        "-m", "2048", "-smp", "2", "-nographic", "-no-reboot", "-snapshot"]

# The probe's script reaches the guest as a credential of its own, so it
# needs no quoting for a unit file. Per-unit CPU time (cgroup accounting)
# says where a CPU-bound TCG boot spends its two vCPUs; /proc/stat's first
# line against the uptime says how busy they were.
PROBE_SCRIPT = r"""state=$(systemctl is-system-running --wait)
echo "BENCH-RUNNING $state"
echo BENCH-TIME-BEGIN; systemd-analyze time; echo BENCH-TIME-END
echo BENCH-BLAME-BEGIN; systemd-analyze blame --no-pager | grep -v '[.]device$' | head -n 25; echo BENCH-BLAME-END
echo BENCH-CHAIN-BEGIN; systemd-analyze critical-chain --no-pager; echo BENCH-CHAIN-END
echo BENCH-CPU-BEGIN
systemctl show -p Id -p CPUUsageNSec '*' | awk -F= '/^CPUUsageNSec=/ && $2 ~ /^[0-9]+$/ {c=$2} /^Id=/ {id=$2} /^$/ {if (c>0) printf "%8.2fs %s\n", c/1e9, id; c=0}' | sort -rn | head -n 25
echo "uptime $(cut -d' ' -f1 /proc/uptime)s; $(head -n1 /proc/stat)"
echo BENCH-CPU-END
echo BENCH-MODULES-BEGIN
awk '{n++; b+=$2} END {printf "%d modules loaded, %.1f MB in memory\n", n, b/1e6}' /proc/modules
sort -k2 -rn /proc/modules | awk 'NR<=12 {printf "%8.0f kB %s\n", $2/1e3, $1}'
echo BENCH-MODULES-END
echo BENCH-FAILED-BEGIN
for u in $(systemctl --failed --no-legend --plain | awk '{print $1}'); do
    echo "failed: $u"; journalctl -b -u "$u" --no-pager -n 20 -o cat
done
echo BENCH-FAILED-END
echo BENCH-DONE
"""

PROBE = r"""[Unit]
Description=craton boot benchmark probe
After=multi-user.target

[Service]
Type=simple
StandardOutput=tty
StandardError=inherit
TTYPath=/dev/ttyS1
ImportCredential=craton-bench.sh
ExecStart=/bin/sh ${CREDENTIALS_DIRECTORY}/craton-bench.sh
ExecStopPost=/bin/systemctl poweroff --no-block
"""


def credential(name, value):
    b64 = base64.b64encode(value.encode()).decode()
    return ["-smbios", f"type=11,value=io.systemd.credential.binary:{name}={b64}"]


def seconds(text):
    """systemd's time span ("1min 24.512s", "543ms", "2.1s") in seconds."""
    total = 0.0
    for num, unit in re.findall(r"([\d.]+)(min|ms|us|s|h)", text):
        total += float(num) * {"h": 3600, "min": 60, "s": 1, "ms": 1e-3, "us": 1e-6}[unit]
    return total


def phases(time_line):
    """{phase: seconds} from `systemd-analyze time`'s first line."""
    out = {}
    for span, phase in re.findall(r"((?:[\d.]+(?:min|ms|us|s|h)\s*)+)\((\w+)\)", time_line):
        out[phase] = seconds(span)
    return out


def section(text, name):
    m = re.search(rf"BENCH-{name}-BEGIN\r?\n(.*?)BENCH-{name}-END", text, re.S)
    return m.group(1).replace("\r", "") if m else ""


def boot(name, image, timeout, log):
    vars_copy = log + ".vars.fd"
    shutil.copy(OVMF_VARS, vars_copy)
    probe_log = log + ".probe"
    # The probe writes to a second serial port of its own: on the console
    # (ttyS0) agetty's vhangup() at its start cuts off a writer that opened
    # the tty before it, and the console's messages would interleave.
    cmd = QEMU + ["-serial", "mon:stdio", "-serial", f"file:{probe_log}",
        "-drive", f"if=pflash,format=raw,readonly=on,file={OVMF_CODE}",
        "-drive", f"if=pflash,format=raw,file={vars_copy}",
        "-drive", f"file={image},format=raw,if=virtio",
        "-netdev", "user,id=n0", "-device", "virtio-net-pci,netdev=n0",
    ]
    cmd += credential("craton-bench.sh", PROBE_SCRIPT)
    cmd += credential("systemd.extra-unit.craton-bench.service", PROBE)
    cmd += credential("systemd.unit-dropin.multi-user.target", "[Unit]\nWants=craton-bench.service\n")
    t0 = time.monotonic()
    running_at = None
    text = ""
    p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    with open(log, "w") as f:
        f.write("CMD: " + " ".join(c if len(c) < 200 else c[:60] + "..." for c in cmd) + "\n")
        while time.monotonic() - t0 < timeout:
            r, _, _ = select.select([p.stdout], [], [], 0.2)
            if r:
                d = os.read(p.stdout.fileno(), 65536)
                if d:
                    f.write(f"[{time.monotonic() - t0:8.2f}] " + d.decode("utf-8", "replace"))
                    f.flush()
            if os.path.exists(probe_log):
                with open(probe_log, errors="replace") as pl:
                    text = pl.read()
            if running_at is None and re.search(r"^BENCH-RUNNING ", text, re.M):
                running_at = time.monotonic() - t0
            if "BENCH-DONE" in text or p.poll() is not None:
                break
    p.kill()
    p.wait()
    os.remove(vars_copy)
    state = re.search(r"^BENCH-RUNNING (\S+)", text, re.M)
    timing = section(text, "TIME").strip().splitlines()
    result = {
        "name": name,
        "log": log,
        "running": running_at,
        "state": state.group(1) if state else "timeout",
        "phases": phases(timing[0]) if timing else {},
        "blame": section(text, "BLAME"),
        "chain": section(text, "CHAIN"),
        "cpu": section(text, "CPU"),
        "modules": section(text, "MODULES"),
        "failed": section(text, "FAILED").strip(),
    }
    return result


def report(r):
    ph = r["phases"]
    fields = " ".join(f"{k}={ph[k]:.1f}s" for k in ("firmware", "loader", "kernel", "initrd", "userspace") if k in ph)
    running = f"{r['running']:.1f}s" if r["running"] is not None else "none"
    print(f"{r['name']}: qemu start -> {r['state']} {running}; systemd-analyze: {fields}", flush=True)
    if r["failed"]:
        print(f"{r['name']}: failed units and their journal:\n{r['failed']}", flush=True)


def main():
    rounds, timeout, logdir = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
    images = [a.split("=", 1) for a in sys.argv[4:]]
    os.makedirs(logdir, exist_ok=True)
    results = {name: [] for name, _ in images}
    for n in range(rounds):
        for name, image in images:
            r = boot(name, image, timeout, os.path.join(logdir, f"{name}-{n + 1}.log"))
            report(r)
            results[name].append(r)
    print()
    ok = True
    medians = {}
    for name, rs in results.items():
        times = [r["running"] for r in rs if r["running"] is not None]
        if len(times) < len(rs):
            ok = False
            print(f"{name}: {len(rs) - len(times)} boot(s) did not reach running (logs in {logdir})")
        if not times:
            continue
        medians[name] = statistics.median(times)
        ph = {k: statistics.median([r["phases"].get(k, 0) for r in rs]) for k in ("kernel", "initrd", "userspace")}
        print(f"{name}: median to running {medians[name]:.1f}s over {len(times)} boot(s) "
              f"(kernel {ph['kernel']:.1f}s, initrd {ph['initrd']:.1f}s, userspace {ph['userspace']:.1f}s)")
        last = rs[-1]
        print(f"{name}: critical chain of its last boot:\n{last['chain'].rstrip()}")
        print(f"{name}: slowest units of its last boot (devices left out):\n{last['blame'].rstrip()}")
        print(f"{name}: CPU time by unit in its last boot:\n{last['cpu'].rstrip()}")
        print(f"{name}: kernel modules after its last boot:\n{last['modules'].rstrip()}\n")
    if len(images) == 2 and len(medians) == 2:
        a, b = images[0][0], images[1][0]
        print(f"ratio {a}/{b} (time to running, medians): {medians[a] / medians[b]:.2f}")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
