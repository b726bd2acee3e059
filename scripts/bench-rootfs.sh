#!/usr/bin/env bash
# Times `craton rootfs` against mmdebstrap (Debian's package) for the same
# package list, both with warm download caches, in one run, and prints the
# ratio craton/mmdebstrap (lower is better; target at most 0.5), then the
# time of a rebuild that reuses craton's cached base tree (what an
# overlay-only change costs; target under 5 s).
#
# Usage (from the repository root, as root, after `cargo build --release`):
#   scripts/bench-rootfs.sh [PROFILE]     default: tests/container-host-test.toml
# Environment: CRATON (binary, default target/release/craton), CRATON_MIRROR
# and CRATON_SECURITY_MIRROR (default: the host's apt sources).
#
# Both tools install the same set: craton's lock (Priority: required, the
# profile's include list and their Depends, no Recommends) and mmdebstrap's
# --variant=required with the same --include list (it does not install
# Recommends either). craton's .debs come from a private cache filled from the
# default one; its base tree is built from scratch (cold). mmdebstrap gets
# its .debs from a first, untimed run (the sync-in/sync-out hooks of its
# manual). Neither time includes resolving.
set -euo pipefail

profile=${1:-tests/container-host-test.toml}
craton=${CRATON:-target/release/craton}
keys=$PWD/keys/debian-archive-keyring
command -v mmdebstrap >/dev/null || { echo "bench-rootfs: apt-get install mmdebstrap" >&2; exit 1; }

# Disk, not tmpfs: both tools write a full system.
work=$(mktemp -d /var/tmp/bench-rootfs.XXXXXX)
trap 'rm -rf "$work"' EXIT

# The Debian mirrors: as craton finds them (flags/env, else apt sources).
host_uri() { # $1: the folder name the URI ends in (debian, debian-security)
    { grep -hs '^URIs:' /etc/apt/sources.list.d/*.sources | sed 's/^URIs://' | tr ' ' '\n'
      grep -hs '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list | sed 's/\[[^]]*\]//' | awk '{print $2}'
    } | sed 's:/*$::' | grep -m1 "/$1\$" || true
}
mirror=${CRATON_MIRROR:-$(host_uri debian)}
security=${CRATON_SECURITY_MIRROR:-$(host_uri debian-security)}
[ -n "$mirror" ] && [ -n "$security" ] || { echo "bench-rootfs: no mirror found" >&2; exit 1; }

export CRATON_CACHE=$work/craton-cache
"$craton" lock "$profile" --lock "$work/craton.lock" >/dev/null 2>&1
default_cache=${HOME}/.cache/craton/sha256
if [ -d "$default_cache" ]; then
    cp -al "$default_cache/." "$CRATON_CACHE/sha256/" 2>/dev/null || true
fi
"$craton" fetch "$profile" --lock "$work/craton.lock" --locked >/dev/null 2>&1
include=$(python3 -c 'import sys, tomllib; print(",".join(tomllib.load(open(sys.argv[1], "rb"))["inputs"]["include"]))' "$work/craton.lock")
packages=$(grep -c '^\[\[package\]\]' "$work/craton.lock")

now() { date +%s.%N; }

echo "craton rootfs (cold base tree, warm .debs)..." >&2
t0=$(now)
"$craton" rootfs "$profile" --lock "$work/craton.lock" --locked --out "$work/craton-tree" >/dev/null 2>"$work/craton.log"
t1=$(now)
"$craton" rootfs "$profile" --lock "$work/craton.lock" --locked --out "$work/craton-tree" >/dev/null 2>>"$work/craton.log"
t2=$(now)
grep -q 'reusing the cached base tree' "$work/craton.log"

sources=(
    "deb $mirror trixie main"
    "deb $mirror trixie-updates main"
    "deb $security trixie-security main"
)
mkdir -p "$work/apt-cache"
mmd() {
    mmdebstrap --quiet --mode=root --variant=required --keyring="$keys" \
        --include="$include" \
        --setup-hook='mkdir -p "$1"/var/cache/apt/archives/' \
        --setup-hook="sync-in $work/apt-cache /var/cache/apt/archives/" \
        --customize-hook="sync-out /var/cache/apt/archives $work/apt-cache" \
        trixie "$1" "${sources[@]}" >/dev/null 2>>"$work/mmdebstrap.log"
}
echo "mmdebstrap, first run to fill its cache (not timed)..." >&2
mmd "$work/mmd-warmup"
rm -rf "$work/mmd-warmup"
echo "mmdebstrap (warm .debs)..." >&2
t3=$(now)
mmd "$work/mmd-tree"
t4=$(now)
mmd_packages=$(dpkg-query --root "$work/mmd-tree" -W | wc -l)

awk -v c="$(echo "$t1 - $t0" | bc)" -v r="$(echo "$t2 - $t1" | bc)" -v m="$(echo "$t4 - $t3" | bc)" \
    -v p="$packages" -v mp="$mmd_packages" 'BEGIN {
    printf "packages: craton %d, mmdebstrap %d\n", p, mp
    printf "craton rootfs:      %6.1fs\n", c
    printf "mmdebstrap:         %6.1fs\n", m
    printf "ratio craton/mmdebstrap: %.2f (target <= 0.5)\n", c / m
    printf "rebuild on the cached base (overlay-only change): %.1fs (target < 5s)\n", r
}'
