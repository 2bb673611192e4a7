#!/bin/bash
# SPDX-License-Identifier: MIT
# scripts/setup.sh — make a Debian 12 (bookworm) or 13 (trixie) machine ready to build
# and test Kiln.  Idempotent: when everything is present it only runs dpkg-query and exits.
#
#  * enables the apt suites Kiln needs, with the archive URI taken from the machine's own
#    apt configuration (deb822 *.sources or one-line sources.list):
#      - deb-src for trixie (the Debian release that carries QEMU 10.0),
#      - bookworm-backports (deb) on bookworm, for meson >= 1.5;
#  * installs every package listed in scripts/deps/*.txt (with their recommends, but never
#    a kernel image, initramfs-tools, udev or systemd).
#
# Deps file format (one entry per line, '#' starts a comment):
#     pkg                 a package
#     pkg >= VERSION      at least VERSION; taken from <codename>-backports if the
#                         release's own version is older
#     pkg-a | pkg-b       the first alternative that apt can install
#
# Usage: scripts/setup.sh [--check] [--quiet] [--print-archive]
#     --check          report what is missing and exit 1, change nothing
#     --quiet          print nothing when everything is already present
#     --print-archive  print the Debian archive URI of the apt configuration and exit
#                      (scripts/fresh-machine uses it for debootstrap)
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
QEMU_SRC_SUITE=trixie          # Debian release whose source package is QEMU 10.0.x
APT_ETC=${KILN_APT_ETC:-/etc/apt}   # overridable for testing the source parsing
EXTRA_SOURCES=$APT_ETC/sources.list.d/kiln-extra.sources
CHECK_ONLY=0 QUIET=0 PRINT_ARCHIVE=0
for a in "$@"; do
    case "$a" in
        --check) CHECK_ONLY=1 ;;
        --print-archive) PRINT_ARCHIVE=1 ;;
        --quiet) QUIET=1 ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "setup.sh: unknown option '$a' (try --help)" >&2; exit 2 ;;
    esac
done

say()  { echo "setup: $*"; }
die()  { echo "setup.sh: error: $*" >&2; exit 1; }

[ -r /etc/os-release ] || die "/etc/os-release not found; Kiln supports Debian 12 and 13"
# shellcheck disable=SC1091
. /etc/os-release
CODENAME=${VERSION_CODENAME:-}
[ "${ID:-}" = debian ] || [[ " ${ID_LIKE:-} " == *" debian "* ]] ||
    die "this is ${PRETTY_NAME:-an unknown OS}; Kiln's setup supports Debian 12 (bookworm) and 13 (trixie)"
case "$CODENAME" in
    bookworm) NEED_BACKPORTS=1 ;;
    trixie|forky|sid) NEED_BACKPORTS=0 ;;
    *) die "unsupported Debian release '${CODENAME:-?}' (need bookworm or trixie)" ;;
esac

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || die "not root and sudo is not installed; run as root"
    SUDO=(sudo)
fi
export DEBIAN_FRONTEND=noninteractive

# ---------------------------------------------------------------------------------------
# apt sources
# Print "TYPE URI SUITE" for every enabled entry of the apt configuration.
apt_entries() {
    local f
    for f in "$APT_ETC"/sources.list "$APT_ETC"/sources.list.d/*.list; do
        [ -r "$f" ] || continue
        # deb [opts] uri suite comp...
        sed -e 's/#.*//' -e 's/\[[^]]*\]//' "$f" |
            awk '($1=="deb"||$1=="deb-src") && NF>=3 {print $1, $2, $3}'
    done
    for f in "$APT_ETC"/sources.list.d/*.sources; do
        [ -r "$f" ] || continue
        awk '
            function flush(  i, j, k, nt, nu, ns, t, u, s) {
                if (enabled != "no" && types != "" && uris != "" && suites != "") {
                    nt = split(types, t, " "); nu = split(uris, u, " "); ns = split(suites, s, " ")
                    for (i = 1; i <= nt; i++) for (j = 1; j <= nu; j++) for (k = 1; k <= ns; k++)
                        print t[i], u[j], s[k]
                }
                types = uris = suites = ""; enabled = ""; last = ""
            }
            /^[ \t]*#/ { next }
            /^[ \t]*$/ { flush(); next }
            /^[ \t]/   { if (last == "uris") uris = uris " " $0    # continuation line
                         else if (last == "suites") suites = suites " " $0
                         else if (last == "types") types = types " " $0
                         next }
            {
                key = tolower($1); sub(/:.*/, "", key); val = $0; sub(/^[^:]*:[ \t]*/, "", val)
                last = key
                if (key == "types") types = val
                else if (key == "uris") uris = val
                else if (key == "suites") suites = val
                else if (key == "enabled") enabled = tolower(val)
            }
            END { flush() }' "$f"
    done
}

ENTRIES=$(apt_entries)
has_entry() { # TYPE SUITE
    awk -v t="$1" -v s="$2" '$1==t && $3==s {f=1} END {exit !f}' <<<"$ENTRIES"
}
archive_uri() {
    # The URI serving the release itself (not -security); fall back to -updates.
    local u
    u=$(awk -v s="$CODENAME" '$1=="deb" && $3==s {print $2; exit}' <<<"$ENTRIES")
    [ -n "$u" ] || u=$(awk -v s="$CODENAME-updates" '$1=="deb" && $3==s {print $2; exit}' <<<"$ENTRIES")
    [ -n "$u" ] || die "cannot find the Debian archive for '$CODENAME' in /etc/apt/sources.list{,.d/*.sources,.d/*.list}"
    echo "${u%/}"
}

if [ "$PRINT_ARCHIVE" = 1 ]; then archive_uri; exit 0; fi

SOURCES_WANTED=()
has_entry deb-src "$QEMU_SRC_SUITE" || SOURCES_WANTED+=("deb-src $QEMU_SRC_SUITE")
if [ "$NEED_BACKPORTS" = 1 ]; then
    has_entry deb "$CODENAME-backports" || SOURCES_WANTED+=("deb $CODENAME-backports")
fi

# ---------------------------------------------------------------------------------------
# packages
DEPS_FILES=("$REPO"/scripts/deps/*.txt)
[ -e "${DEPS_FILES[0]}" ] || die "no scripts/deps/*.txt found in $REPO"

# Each entry becomes one line "ALTS|MINVER" (ALTS space separated).
ENTRIES_PKG=$(sed -e 's/#.*//' "${DEPS_FILES[@]}" | awk '
    NF == 0 { next }
    {
        line = $0; minver = ""
        if (match(line, />=[ \t]*[^ \t|]+/)) {
            minver = substr(line, RSTART, RLENGTH); sub(/>=[ \t]*/, "", minver)
            line = substr(line, 1, RSTART - 1) substr(line, RSTART + RLENGTH)
        }
        gsub(/\|/, " ", line); gsub(/[ \t]+/, " ", line); sub(/^ /, "", line); sub(/ $/, "", line)
        print line "|" minver
    }' | sort -u)

ALL_NAMES=$(tr ' |' '\n\n' <<<"$ENTRIES_PKG" | grep -E '^[a-z0-9][a-z0-9.+:-]*$' | sort -u)
# Installed packages and versions, in one dpkg-query call.
INSTALLED=$(dpkg-query -W -f='${Package} ${Status} ${Version}\n' $ALL_NAMES 2>/dev/null |
            awk '$2=="install" && $3=="ok" && $4=="installed" {print $1, $5}' || true)
installed_version() { awk -v p="$1" '$1==p {print $2; exit}' <<<"$INSTALLED"; }

MISSING=()        # entries (alternatives as "a|b", minver as "pkg>=v") not satisfied
while IFS='|' read -r alts minver; do
    [ -n "$alts" ] || continue
    ok=0
    for p in $alts; do
        v=$(installed_version "$p")
        [ -n "$v" ] || continue
        if [ -z "$minver" ] || dpkg --compare-versions "$v" ge "$minver"; then ok=1; break; fi
    done
    [ "$ok" = 1 ] || MISSING+=("$(tr ' ' '|' <<<"$alts")${minver:+>=$minver}")
done <<<"$ENTRIES_PKG"

if [ ${#SOURCES_WANTED[@]} -eq 0 ] && [ ${#MISSING[@]} -eq 0 ]; then
    [ "$QUIET" = 1 ] || say "all $(wc -l <<<"$ENTRIES_PKG") dependencies from scripts/deps/*.txt present; apt sources OK"
    exit 0
fi

if [ "$CHECK_ONLY" = 1 ]; then
    for s in "${SOURCES_WANTED[@]}"; do echo "setup: missing apt source: $s (archive $(archive_uri))"; done
    for m in "${MISSING[@]}"; do echo "setup: missing package: $m"; done
    exit 1
fi

# ---------------------------------------------------------------------------------------
# make changes
APT_UPDATED=0
apt_update() {
    say "apt-get update"
    "${SUDO[@]}" apt-get update -q -o Dpkg::Use-Pty=0 || die "apt-get update failed"
    APT_UPDATED=1
}

if [ ${#SOURCES_WANTED[@]} -gt 0 ]; then
    URI=$(archive_uri)
    keyring=/usr/share/keyrings/debian-archive-keyring.gpg
    {
        echo "# Added by Kiln scripts/setup.sh: extra Debian suites Kiln needs"
        echo "# (URI copied from this machine's apt configuration)."
        # keep what an earlier run wrote, add what is missing
        if [ -r "$EXTRA_SOURCES" ]; then grep -v '^# ' "$EXTRA_SOURCES" | sed -e '/./,$!d'; echo; fi
        for s in "${SOURCES_WANTED[@]}"; do
            set -- $s
            echo "Types: $1"
            echo "URIs: $URI"
            echo "Suites: $2"
            echo "Components: main"
            [ -r "$keyring" ] && echo "Signed-By: $keyring"
            echo
        done
    } > /tmp/kiln-extra.sources.$$
    sed -i -e '${/^$/d}' /tmp/kiln-extra.sources.$$
    for s in "${SOURCES_WANTED[@]}"; do say "enabling apt source '$s' ($URI) in $EXTRA_SOURCES"; done
    "${SUDO[@]}" install -m 0644 /tmp/kiln-extra.sources.$$ "$EXTRA_SOURCES"
    rm -f /tmp/kiln-extra.sources.$$
    apt_update
fi

if [ ${#MISSING[@]} -gt 0 ]; then
    [ "$APT_UPDATED" = 1 ] || apt_update
    candidate() { apt-cache policy "$1" 2>/dev/null | awk '/Candidate:/ {print $2; exit}'; }
    # Resolve each missing entry into an apt-get argument.
    ARGS=() UNAVAILABLE=()
    for m in "${MISSING[@]}"; do
        minver=""; alts=$m
        if [[ "$m" == *">="* ]]; then minver=${m#*>=}; alts=${m%%>=*}; fi
        chosen=""
        for p in ${alts//|/ }; do
            c=$(candidate "$p")
            [ -n "$c" ] && [ "$c" != "(none)" ] || continue
            if [ -n "$minver" ] && ! dpkg --compare-versions "$c" ge "$minver"; then
                # try the backports suite of this release
                if apt-cache madison "$p" 2>/dev/null | awk -v s="$CODENAME-backports" '$0 ~ s {f=1} END {exit !f}'; then
                    chosen="$p/$CODENAME-backports"; break
                fi
                continue
            fi
            chosen=$p; break
        done
        if [ -n "$chosen" ]; then ARGS+=("$chosen"); else UNAVAILABLE+=("${alts//|/ or }${minver:+ (>= $minver)}"); fi
    done
    if [ ${#UNAVAILABLE[@]} -gt 0 ]; then
        for u in "${UNAVAILABLE[@]}"; do
            echo "setup.sh: error: package $u is not available from the configured apt sources" >&2
        done
        exit 1
    fi
    # Recommends are installed (the lists were written with them), but never a kernel, an
    # initramfs, udev or an init system: on Debian 13 clang's and qemu-user's recommends
    # ask for systemd. A pin of -1 in a preferences directory of this install only keeps
    # them out (it removes nothing already installed); a package that truly depends on
    # one of them then fails here instead of changing the host's boot.
    PREFS=$(mktemp -d)
    trap 'rm -rf "$PREFS"' EXIT
    cp "$APT_ETC"/preferences.d/* "$PREFS"/ 2>/dev/null || true
    printf 'Package: %s\nPin: version *\nPin-Priority: -1\n' \
        "systemd systemd-sysv udev initramfs-tools linux-image-*" >"$PREFS/zz-kiln-setup.pref"
    say "installing ${#ARGS[@]} package(s): ${ARGS[*]}"
    if ! "${SUDO[@]}" apt-get install -y -q -o Dpkg::Use-Pty=0 \
            -o Dir::Etc::PreferencesParts="$PREFS" "${ARGS[@]}"; then
        for a in "${ARGS[@]}"; do
            p=${a%%/*}
            dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q "install ok installed" ||
                echo "setup.sh: error: package '$a' could not be installed" >&2
        done
        die "apt-get install failed (see above)"
    fi
fi
say "done"
