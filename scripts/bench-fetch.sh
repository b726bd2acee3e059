#!/usr/bin/env bash
# Compares a cold `craton fetch` with `apt-get download` of the same package
# list, in one run on one network, and prints both times and the ratio
# craton/apt (lower is better). The lock's artifacts (rkt, flannel) are put
# into craton's cache beforehand, so that both tools fetch the same files.
#
# Usage (from the repository root, after `cargo build --release`):
#   scripts/bench-fetch.sh [PROFILE]        default: profiles/container-host.toml
# Environment:
#   CRATON          the craton binary (default: target/release/craton)
#   CRATON_MIRROR   the Debian mirror for both tools (default: the host's apt
#                   sources); the security archive always comes from the
#                   host's sources, or <mirror>-security when they have none.
#   BENCH_APT_ONLY  a file of `name` or `name=version` lines: skip craton and
#                   time only apt-get for these (to check the apt half on its
#                   own), with the suites in BENCH_SUITES (default: trixie
#                   trixie-updates trixie-security) and component main.
#
# apt-get runs with a private configuration in a temporary folder (sources,
# lists, cache, status), so the host's own apt state is not touched and the
# host's release (bookworm here) does not matter: the suites are the ones the
# lock names. The host's apt.conf.d is kept on purpose: it holds how this host
# reaches its mirror (proxies, Check-Valid-Until for snapshot mirrors).
# Release files are checked against the Debian archive keys in keys/ of this
# repository (Signed-By), not [trusted=yes]; the host's keyring may predate
# the release being benchmarked.
set -euo pipefail

profile=${1:-profiles/container-host.toml}
craton=${CRATON:-target/release/craton}
keys_dir=keys/debian-archive-keyring

work=$(mktemp -d "${TMPDIR:-/tmp}/bench-fetch.XXXXXX")
# apt drops privileges to _apt for downloads; it must be able to enter the
# private folders (mktemp makes them 0700).
chmod 755 "$work"
trap 'rm -rf "$work"' EXIT

die() {
    echo "bench-fetch: $*" >&2
    exit 1
}

now() { date +%s.%N; }

# Prints "URI SUITE..." for each enabled binary (deb) source of the host, in
# deb822 (*.sources) and one-line (*.list) formats.
host_sources() {
    local f
    for f in /etc/apt/sources.list.d/*.sources; do
        [[ -f $f ]] || continue
        awk '
            function flush() {
                if (types ~ /(^| )deb( |$)/ && enabled != "no" && uris != "")
                    { n = split(uris, u, " "); for (i = 1; i <= n; i++) print u[i], suites }
                types = ""; uris = ""; suites = ""; enabled = ""
            }
            /^#/ { next }
            /^[ \t]*$/ { flush(); next }
            tolower($1) == "types:" { $1 = ""; types = substr($0, 2) }
            tolower($1) == "uris:" { $1 = ""; uris = substr($0, 2) }
            tolower($1) == "suites:" { $1 = ""; suites = substr($0, 2) }
            tolower($1) == "enabled:" { enabled = tolower($2) }
            END { flush() }
        ' "$f"
    done
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [[ -f $f ]] || continue
        # deb [options] URI SUITE COMPONENT...
        sed -e 's/#.*//' -e 's/\[[^]]*\]//' "$f" | awk '$1 == "deb" { print $2, $3 }'
    done
}

# The host's main and security mirror URIs (first match wins).
find_mirrors() {
    local sources
    sources=$(host_sources)
    main_uri=${CRATON_MIRROR:-$(awk '{ for (i = 2; i <= NF; i++) if ($i !~ /-security$/) { print $1; exit } }' <<<"$sources")}
    security_uri=$(awk '{ for (i = 2; i <= NF; i++) if ($i ~ /-security$/) { print $1; exit } }' <<<"$sources")
    [[ -n $main_uri ]] || die "no mirror: set CRATON_MIRROR or add a Debian source to /etc/apt/sources.list.d"
    main_uri=${main_uri%/}
    if [[ -z $security_uri ]]; then
        # The usual layout: .../debian and .../debian-security side by side.
        security_uri=${main_uri}-security
    fi
    security_uri=${security_uri%/}
}

# Reads the lock's [[package]] entries into $work/packages.tsv:
# name, version, arch, suite, size (one package a line).
read_lock() {
    awk '
        function flush() { if (name != "") print name "\t" version "\t" arch "\t" suite "\t" size; name = "" }
        /^\[\[package\]\]/ { flush(); inpkg = 1; next }
        /^\[/ { flush(); inpkg = 0; next }
        !inpkg { next }
        {
            key = $1; val = $0
            sub(/^[^=]*=[ \t]*/, "", val); gsub(/"/, "", val)
            if (key == "name") name = val
            else if (key == "version") version = val
            else if (key == "arch") arch = val
            else if (key == "suite") suite = val
            else if (key == "size") size = val
        }
        END { flush() }
    ' "$1" >"$work/packages.tsv"
    [[ -s $work/packages.tsv ]] || die "no [[package]] entries in $1"
}

# Puts the lock's [[artifact]] files into the craton cache ($1) before the
# timed run: apt-get has no counterpart for them, so they would only add
# another host's speed to craton's time. Digests are checked here too.
seed_artifacts() {
    local cache=$1 url sha got
    mkdir -p "$cache/sha256"
    awk '
        /^\[\[artifact\]\]/ { if (url != "") print url, sha; inart = 1; url = ""; sha = ""; next }
        /^\[/ { if (url != "") print url, sha; inart = 0; url = ""; next }
        inart && $1 == "url" { v = $0; sub(/^[^=]*=[ \t]*/, "", v); gsub(/"/, "", v); url = v }
        inart && $1 == "sha256" { v = $0; sub(/^[^=]*=[ \t]*/, "", v); gsub(/"/, "", v); sha = v }
        END { if (url != "") print url, sha }
    ' "$2" | while read -r url sha; do
        echo "seeding artifact $url (not timed)..." >&2
        curl -fsSL --retry 3 -o "$cache/sha256/$sha.part" "$url" || die "cannot download $url"
        got=$(sha256sum "$cache/sha256/$sha.part" | cut -d' ' -f1)
        [[ $got == "$sha" ]] || die "sha256 mismatch for $url: expected $sha, got $got"
        mv "$cache/sha256/$sha.part" "$cache/sha256/$sha"
    done
}

# The components the lock was resolved with ("suites / components" values in
# [inputs.repositories]); main when none are found.
lock_components() {
    awk '
        /^\[inputs\.repositories\]/ { on = 1; next }
        /^\[/ { on = 0 }
        on && /\// { sub(/.*\/[ \t]*/, ""); gsub(/"/, ""); print }
    ' "$1" | tr ' ' '\n' | sed '/^$/d' | sort -u | tr '\n' ' '
}

# Writes a private apt configuration for the lock's suites into $work/apt and
# exports APT_CONFIG. Signed-By takes a list of keyring files; .asc works.
setup_apt() {
    local lock=$1 suites=$2 apt=$work/apt main_suites security_suites components keys k
    mkdir -p "$apt"/{etc/sources.list.d,etc/preferences.d,etc/trusted.gpg.d,lists/partial,cache/archives/partial}
    : >"$apt/status"
    suites=$(tr ' ' '\n' <<<"$suites" | sed '/^$/d')
    main_suites=$(grep -v -- '-security$' <<<"$suites" | tr '\n' ' ' || true)
    security_suites=$(grep -- '-security$' <<<"$suites" | tr '\n' ' ' || true)
    components=$(lock_components "$lock")
    components=${components:-main}
    keys=""
    for k in "$PWD/$keys_dir"/*.asc; do
        [[ -f $k ]] && keys+="$k "
    done
    [[ -n $keys ]] || die "no Debian archive keys in $keys_dir (run from the repository root)"
    {
        if [[ -n ${main_suites// /} ]]; then
            printf 'Types: deb\nURIs: %s\nSuites: %s\nComponents: %s\nSigned-By: %s\n\n' \
                "$main_uri" "$main_suites" "$components" "$keys"
        fi
        if [[ -n ${security_suites// /} ]]; then
            printf 'Types: deb\nURIs: %s\nSuites: %s\nComponents: %s\nSigned-By: %s\n' \
                "$security_uri" "$security_suites" "$components" "$keys"
        fi
    } >"$apt/etc/sources.list.d/bench.sources"
    cat >"$apt/apt.conf" <<EOF
Dir::Etc::sourcelist "$apt/etc/sources.list";
Dir::Etc::sourceparts "$apt/etc/sources.list.d";
Dir::Etc::preferences "$apt/etc/preferences";
Dir::Etc::preferencesparts "$apt/etc/preferences.d";
Dir::Etc::trusted "$apt/etc/trusted.gpg";
Dir::Etc::trustedparts "$apt/etc/trusted.gpg.d";
Dir::State::Lists "$apt/lists";
Dir::State::status "$apt/status";
Dir::Cache "$apt/cache";
Dir::Cache::archives "$apt/cache/archives";
EOF
    export APT_CONFIG=$apt/apt.conf
}

# apt-get download arguments: name=version, with :arch for a foreign one.
apt_args() {
    awk -F'\t' -v native="$(dpkg --print-architecture)" '{
        arg = $1
        if ($3 != "" && $3 != "all" && $3 != native) arg = arg ":" $3
        if ($2 != "") arg = arg "=" $2
        print arg
    }' "$work/packages.tsv"
}

mib() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1048576 }'; }

main() {
    local lock=$work/craton.lock craton_s="" apt_s t0 t1 count bytes suites
    if [[ -n ${BENCH_APT_ONLY:-} ]]; then
        # name[=version] lines -> the TSV layout (arch, suite and size unused).
        awk -F= 'NF >= 1 && $1 != "" { print $1 "\t" $2 "\t\t\t0" }' "$BENCH_APT_ONLY" >"$work/packages.tsv"
        printf '[inputs.repositories]\ndebian = "x / main"\n' >"$lock"
        suites=${BENCH_SUITES:-trixie trixie-updates trixie-security}
    else
        [[ -x $craton ]] || die "$craton is not an executable (cargo build --release, or set CRATON)"
        [[ -f $profile ]] || die "no profile at $profile"
        "$craton" lock "$profile" --lock "$lock"
        read_lock "$lock"
        suites=$(cut -f4 "$work/packages.tsv" | sort -u | tr '\n' ' ')
        seed_artifacts "$work/craton-cache" "$lock"
        echo "cold craton fetch of $(wc -l <"$work/packages.tsv") packages..." >&2
        t0=$(now)
        CRATON_CACHE=$work/craton-cache "$craton" fetch "$profile" --lock "$lock"
        t1=$(now)
        craton_s=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')
    fi

    find_mirrors
    setup_apt "$lock" "$suites"
    echo "apt-get update (not timed) from $main_uri and $security_uri..." >&2
    apt-get -q update >"$work/apt-update.log" 2>&1 || {
        cat "$work/apt-update.log" >&2
        die "apt-get update failed with the private configuration above"
    }
    mkdir -p "$work/apt-download"
    chown _apt "$work/apt-download" 2>/dev/null || true
    rm -f "$work/apt/cache/archives/"*.deb
    mapfile -t args < <(apt_args)
    echo "cold apt-get download of ${#args[@]} packages..." >&2
    t0=$(now)
    (cd "$work/apt-download" && apt-get -q download "${args[@]}" >"$work/apt-download.log" 2>&1) || {
        tail -n 20 "$work/apt-download.log" >&2
        die "apt-get download failed"
    }
    t1=$(now)
    apt_s=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')

    count=$(find "$work/apt-download" -name '*.deb' | wc -l)
    bytes=$(find "$work/apt-download" -name '*.deb' -printf '%s\n' | awk '{ s += $1 } END { print s + 0 }')
    echo "packages: $count ($(mib "$bytes") MiB, $bytes bytes)"
    if [[ -n $craton_s ]]; then
        echo "craton fetch:     ${craton_s}s"
    fi
    echo "apt-get download: ${apt_s}s"
    if [[ -n $craton_s ]]; then
        awk -v c="$craton_s" -v a="$apt_s" 'BEGIN { printf "ratio craton/apt: %.2f (lower is better)\n", c / a }'
    fi
}

main "$@"
