#!/bin/bash
# SPDX-License-Identifier: MIT
# scripts/build-qemu.sh — build QEMU 10.0 (Debian's source package) with the Kiln device.
#
#   build/qemu-src/qemu-<ver>/   Debian's qemu source (apt-get source qemu/trixie), with
#                                qemu-device/patches/*.patch applied and
#                                  hw/misc/kiln                 -> <repo>/qemu-device
#                                  tests/qtest/kiln-test.c      -> <repo>/qemu-device/tests/
#                                  tests/qtest/kiln-fuzz-test.c -> <repo>/qemu-device/tests/
#   build/qemu/                  the build: qemu-system-x86_64, tests/qtest/kiln-*test
#   build/qemu-sanitize/         with --sanitize: the same, built with AddressSanitizer and
#                                UBSan (make stress's device_fuzz_sanitized part)
#
# Re-running is incremental: configure runs again only when the patches, the configure
# flags or the set of Kiln files meson needs to know about change (stamp with a hash);
# otherwise only ninja runs, so edits in qemu-device/ rebuild just what they touch.
#
# Usage: scripts/build-qemu.sh [--sanitize] [--force-configure] [--jobs N]
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${KILN_BUILD_DIR:-$REPO/build}
SRC_PARENT=$BUILD/qemu-src
OBJ=$BUILD/qemu
QEMU_SUITE=trixie
QEMU_SERIES=10.0
JOBS=$(nproc)
FORCE=0
SANITIZE=0
while [ $# -gt 0 ]; do
    case "$1" in
        --force-configure) FORCE=1 ;;
        --sanitize) SANITIZE=1; OBJ=$BUILD/qemu-sanitize ;;
        --jobs|-j) JOBS=$2; shift ;;
        *) echo "build-qemu.sh: unknown option '$1'" >&2; exit 2 ;;
    esac
    shift
done
die() { echo "build-qemu.sh: error: $*" >&2; exit 1; }
say() { echo "build-qemu: $*"; }

# --- prerequisites ----------------------------------------------------------------------
command -v ninja >/dev/null || die "ninja not found — run scripts/setup.sh"
MESON_VER=$(meson --version 2>/dev/null || true)
[ -n "$MESON_VER" ] && dpkg --compare-versions "$MESON_VER" ge 1.5 ||
    die "meson >= 1.5 not found (have '${MESON_VER:-none}') — run scripts/setup.sh"

DEV=$REPO/qemu-device
WITH_DEVICE=0
if [ -f "$DEV/meson.build" ]; then
    WITH_DEVICE=1
elif [ -n "$(find "$DEV" -maxdepth 1 -name '*.c' 2>/dev/null)" ]; then
    die "qemu-device/meson.build missing (qemu-device/ has sources but no meson.build that adds them: system_ss.add(when: 'CONFIG_KILN', if_true: files(...)))"
else
    say "warning: qemu-device/meson.build missing — building QEMU without the kiln device"
fi
if [ "$WITH_DEVICE" = 1 ] && grep -q '#include "trace.h"' "$DEV"/*.c 2>/dev/null && [ ! -f "$DEV/trace.h" ]; then
    die "qemu-device/trace.h missing (it must contain: #include \"trace/trace-hw_misc_kiln.h\")"
fi

# --- source -------------------------------------------------------------------------------
find_src() { { find "$SRC_PARENT" -mindepth 1 -maxdepth 1 -type d -name "qemu-$QEMU_SERIES.*" 2>/dev/null || true; } | sort -V | tail -n1; }
SRC=$(find_src)
if [ -z "$SRC" ]; then
    mkdir -p "$SRC_PARENT"
    say "fetching Debian's QEMU source (apt-get source qemu/$QEMU_SUITE) into $SRC_PARENT"
    ( cd "$SRC_PARENT" && apt-get source -q -o APT::Sandbox::User=root "qemu/$QEMU_SUITE" ) ||
        die "apt-get source qemu/$QEMU_SUITE failed — is deb-src for $QEMU_SUITE enabled? run scripts/setup.sh"
    SRC=$(find_src)
    [ -n "$SRC" ] || die "apt-get source did not produce qemu-$QEMU_SERIES.* (the $QEMU_SUITE package is $(ls "$SRC_PARENT" | grep -m1 '^qemu-' || echo '?'), need $QEMU_SERIES.x)"
fi
UPSTREAM=$(cat "$SRC/VERSION")
case "$UPSTREAM" in
    "$QEMU_SERIES".*) ;;
    *) die "$SRC is QEMU $UPSTREAM, need $QEMU_SERIES.x" ;;
esac

# --- patches ------------------------------------------------------------------------------
# build/qemu-src/.kiln-applied.patch holds exactly what is applied; a changed patch set
# is reversed and re-applied.
PATCHES=("$REPO"/qemu-device/patches/*.patch)
[ -e "${PATCHES[0]}" ] || die "no qemu-device/patches/*.patch"
WANT=$(cat "${PATCHES[@]}")
APPLIED_FILE=$SRC/.kiln-applied.patch
if [ ! -f "$APPLIED_FILE" ] || [ "$(cat "$APPLIED_FILE")" != "$WANT" ]; then
    if [ -f "$APPLIED_FILE" ]; then
        say "patches changed; reverting the previously applied Kiln patch"
        patch -d "$SRC" -p1 -R -s --no-backup-if-mismatch < "$APPLIED_FILE" ||
            die "cannot revert the old Kiln patch in $SRC; delete $SRC_PARENT and re-run"
        rm -f "$APPLIED_FILE"
    fi
    for p in "${PATCHES[@]}"; do
        say "applying $(basename "$p")"
        patch -d "$SRC" -p1 -s -N --no-backup-if-mismatch < "$p" ||
            die "$(basename "$p") does not apply to QEMU $UPSTREAM; delete $SRC_PARENT and re-run"
    done
    printf '%s' "$WANT" > "$APPLIED_FILE"
fi

# --- links into the repository ------------------------------------------------------------
link() { # target linkname
    if [ -e "$1" ]; then
        [ "$(readlink "$2" 2>/dev/null)" = "$1" ] || ln -sfn "$1" "$2"
    else
        rm -f "$2"
    fi
}
if [ "$WITH_DEVICE" = 1 ]; then link "$DEV" "$SRC/hw/misc/kiln"; else rm -f "$SRC/hw/misc/kiln"; fi
QTESTS=()
for t in kiln-test kiln-fuzz-test; do
    if [ "$WITH_DEVICE" = 1 ] && [ -f "$DEV/tests/$t.c" ]; then
        link "$DEV/tests/$t.c" "$SRC/tests/qtest/$t.c"
        QTESTS+=("tests/qtest/$t")
    else
        rm -f "$SRC/tests/qtest/$t.c"
    fi
done

# --- configure ----------------------------------------------------------------------------
# Firmware comes from Debian's seabios and qemu-system-data packages (the +ds source has no
# blobs); compiled in as the firmware search path so that qtests find it too.
fwdir() { # package file
    local d
    d=$(dpkg -L "$1" 2>/dev/null | grep -m1 "/$2\$" || true)
    [ -n "$d" ] || die "$2 not found (package $1) — run scripts/setup.sh"
    dirname "$d"
}
FWPATH=$(fwdir seabios bios-256k.bin):$(fwdir qemu-system-data linuxboot_dma.bin)
CONFIGURE=(
    --target-list=x86_64-softmmu
    --python=/usr/bin/python3
    --extra-cflags="-I$REPO/include"
    --enable-fdt=system
    --disable-install-blobs
    --firmwarepath="$FWPATH"
    --disable-docs
    --disable-werror
    # everything optional off, then what Kiln needs back on
    --without-default-features
    --enable-tcg
    --enable-trace-backends=log
    # virtio-9p: kiln-vm shares the host's root (read-only) and a writable directory with
    # the guest.  Needs only glibc's <sys/xattr.h>, no new package (docs/platform.md §4).
    --enable-virtfs
    --enable-attr
)
[ "$SANITIZE" = 0 ] || CONFIGURE+=(--enable-asan --enable-ubsan)
# meson evaluates fs.exists() at configure time: reconfigure when the set of Kiln files it
# looks for changes (meson.build files, trace-events, qtests), not when their contents
# change (ninja re-runs meson itself when a meson.build it read changes).
KEY=$( { printf '%s\n' "$WANT" "${CONFIGURE[@]}" "$SRC" "$WITH_DEVICE" "${QTESTS[@]+${QTESTS[@]}}";
         [ "$WITH_DEVICE" = 0 ] || (cd "$DEV" && find . -name meson.build -o -name trace-events | sort); } |
       sha256sum | cut -c1-16)
STAMP=$OBJ/.kiln-configure-stamp
if [ "$FORCE" = 1 ] || [ ! -f "$OBJ/build.ninja" ] || [ "$(cat "$STAMP" 2>/dev/null)" != "$KEY" ]; then
    say "configuring QEMU $UPSTREAM in $OBJ"
    rm -f "$STAMP"
    mkdir -p "$OBJ"
    if [ -f "$OBJ/build.ninja" ]; then
        # reuse the objects, rerun configure with the new options
        (cd "$OBJ" && "$SRC/configure" "${CONFIGURE[@]}") > "$OBJ/configure.log" 2>&1 ||
            { rm -rf "$OBJ"; mkdir -p "$OBJ"; (cd "$OBJ" && "$SRC/configure" "${CONFIGURE[@]}") > "$OBJ/configure.log" 2>&1; } ||
            { tail -n 30 "$OBJ/configure.log"; die "QEMU configure failed (full log: $OBJ/configure.log)"; }
    else
        (cd "$OBJ" && "$SRC/configure" "${CONFIGURE[@]}") > "$OBJ/configure.log" 2>&1 ||
            { tail -n 30 "$OBJ/configure.log"; die "QEMU configure failed (full log: $OBJ/configure.log)"; }
    fi
    grep -q '^CONFIG_Q35=y' "$OBJ/x86_64-softmmu-config-devices.mak" &&
    grep -q '^CONFIG_PCIE_PORT=y' "$OBJ/x86_64-softmmu-config-devices.mak" ||
        die "QEMU configuration lacks q35 or pcie-root-port (see $OBJ/x86_64-softmmu-config-devices.mak)"
    if [ "$WITH_DEVICE" = 1 ]; then
        grep -q '^CONFIG_KILN=y' "$OBJ/x86_64-softmmu-config-devices.mak" ||
            die "CONFIG_KILN is not enabled in $OBJ/x86_64-softmmu-config-devices.mak"
    fi
    echo "$KEY" > "$STAMP"
fi

# Run from the build tree, QEMU relocates its firmware path into build/qemu/qemu-bundle/:
# point those entries at the Debian firmware directories (qtests rely on this).
for d in ${FWPATH//:/ }; do
    if [ ! -e "$OBJ/qemu-bundle$d" ]; then
        mkdir -p "$OBJ/qemu-bundle$(dirname "$d")"
        ln -sfn "$d" "$OBJ/qemu-bundle$d"
    fi
done

# --- build --------------------------------------------------------------------------------
TARGETS=(qemu-system-x86_64 "${QTESTS[@]+${QTESTS[@]}}")
# qemu-version.h is always stale (ninja then finds nothing else changed): a handful of
# steps means "up to date", so only announce real builds.
STEPS=$(ninja -C "$OBJ" -n "${TARGETS[@]}" 2>/dev/null | grep -c '^\[[0-9]' || true)
[ "$STEPS" -le 8 ] || say "building ${TARGETS[*]}: $STEPS steps with $JOBS job(s) (a clean build takes ~6 min on 2 cores)"
if [ -t 1 ] || [ "$STEPS" -le 8 ]; then
    ninja -C "$OBJ" -j "$JOBS" "${TARGETS[@]}" > >(grep -v -e '^ninja: Entering' -e 'Generating qemu-version.h' || true) ||
        die "QEMU build failed"
else
    # not a terminal: log to a file, print ninja's [n/total] every 15 s
    ninja -C "$OBJ" -j "$JOBS" "${TARGETS[@]}" > "$OBJ/build.log" 2>&1 &
    pid=$! t=0
    while kill -0 $pid 2>/dev/null; do
        sleep 1
        t=$((t + 1))
        if [ $((t % 15)) = 0 ]; then
            l=$(grep -o '^\[[0-9]*/[0-9]*\]' "$OBJ/build.log" | tail -n1 || true)
            [ -n "$l" ] && say "  $l ${t}s"
        fi
    done
    wait $pid || { grep -A20 -m3 '^FAILED' "$OBJ/build.log" || tail -n 40 "$OBJ/build.log"; die "QEMU build failed (log: $OBJ/build.log)"; }
fi
[ -x "$OBJ/qemu-system-x86_64" ] || die "$OBJ/qemu-system-x86_64 was not built"
say "ok: $OBJ/qemu-system-x86_64 (QEMU $UPSTREAM$([ "$WITH_DEVICE" = 1 ] && echo ', kiln device' || echo ', no kiln device')${QTESTS[*]:+, qtests: ${QTESTS[*]##*/}})"
