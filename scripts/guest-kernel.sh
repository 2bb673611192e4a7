#!/bin/bash
# SPDX-License-Identifier: MIT
# scripts/guest-kernel.sh — provide the guest kernel and its headers in build/guest/.
#
# The guest runs Debian's 6.12 "amd64" kernel: the one apt's meta package names
# (linux-headers-6.12-amd64 on Debian 12, linux-headers-amd64 on Debian 13).  Its packages
# are downloaded with apt-get download and unpacked with dpkg-deb -x — never installed, so
# set-up does not put a kernel, initramfs-tools, udev or systemd on the host (the headers
# package depends on the image package, which pulls those in):
#     build/guest/boot/vmlinuz-$KVER                     linux-image-$KVER
#     build/guest/lib/modules/$KVER/...
#     build/guest/usr/src/linux-headers-$KVER/           linux-headers-$KVER (+ -common)
#     build/guest/usr/lib/linux-kbuild-<ver>/            linux-kbuild-<ver> (scripts, tools)
#     build/guest/KVER                                   the version (`make print-KVER`)
# kiln.ko and test modules are built with KDIR=build/guest/usr/src/linux-headers-$KVER.
# The host needs only what building against it runs: the compiler the headers name (gcc-12
# on Debian 12, gcc-14 on Debian 13: the release's default gcc) and pahole.
#
# Usage: scripts/guest-kernel.sh [--print-kver] [--build-dir DIR]
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${KILN_BUILD_DIR:-$REPO/build}
PRINT_ONLY=0
while [ $# -gt 0 ]; do
    case "$1" in
        --print-kver) PRINT_ONLY=1 ;;
        --build-dir) BUILD=$2; shift ;;
        *) echo "guest-kernel.sh: unknown option '$1'" >&2; exit 2 ;;
    esac
    shift
done
die() { echo "guest-kernel.sh: error: $*" >&2; exit 1; }
GUEST=$BUILD/guest

# The headers package of the 6.12 amd64 kernel apt offers, and its version.
resolve() {
    local meta dep
    for meta in linux-headers-6.12-amd64 linux-headers-amd64; do
        dep=$(apt-cache depends "$meta" 2>/dev/null |
              awk '/Depends: linux-headers-6\.12\.[^ ]*-amd64$/ {print $2; exit}')
        if [ -n "$dep" ]; then
            HDR_PKG=$dep
            HDR_VER=$(apt-cache policy "$dep" | awk '/Candidate:/ {print $2; exit}')
            [ -n "$HDR_VER" ] && [ "$HDR_VER" != "(none)" ] && return 0
        fi
    done
    return 1
}

if [ "$PRINT_ONLY" = 1 ]; then
    # what is unpacked is what kiln.ko is built for
    if [ -f "$GUEST/KVER" ]; then cat "$GUEST/KVER"; exit 0; fi
    resolve || die "apt knows no linux-headers-6.12.*-amd64 package — run scripts/setup.sh"
    echo "${HDR_PKG#linux-headers-}"
    exit 0
fi

resolve || die "apt knows no linux-headers-6.12.*-amd64 package (through linux-headers-6.12-amd64 or linux-headers-amd64) — run scripts/setup.sh, or apt-get update"
KVER=${HDR_PKG#linux-headers-}
KDIR=$GUEST/usr/src/linux-headers-$KVER
# The stamp names the directory too: the headers' Makefile is rewritten to point into it.
STAMP="$KVER $HDR_VER $GUEST"
if [ -f "$GUEST/.stamp" ] && [ "$(cat "$GUEST/.stamp")" = "$STAMP" ] &&
   [ -f "$GUEST/boot/vmlinuz-$KVER" ] && [ -f "$GUEST/lib/modules/$KVER/modules.dep" ] &&
   [ -f "$KDIR/Makefile" ]; then
    exit 0
fi

mkdir -p "$GUEST/debs"
cd "$GUEST/debs"
# fetch PKG: the .deb of PKG at version $HDR_VER, from build/guest/debs, apt's cache or the
# archive; prints its file name.
fetch() {
    local pkg=$1 f
    f=$(ls "${pkg}_${HDR_VER//:/%3a}_"*.deb 2>/dev/null | head -n1 || true)
    if [ -z "$f" ]; then
        f=$(ls /var/cache/apt/archives/"${pkg}_${HDR_VER//:/%3a}_"*.deb 2>/dev/null | head -n1 || true)
        [ -n "$f" ] && cp "$f" . && f=$(basename "$f")
    fi
    if [ -z "$f" ] && apt-get download -q -o APT::Sandbox::User=root "$pkg=$HDR_VER" >&2 2>/dev/null; then
        f=$(ls "${pkg}_${HDR_VER//:/%3a}_"*.deb 2>/dev/null | head -n1 || true)
    fi
    echo "$f"
}

echo "guest-kernel: fetching the $KVER kernel and headers ($HDR_VER) for the guest"
# On Debian 13 the default image is the signed one with the same name; else -unsigned.
image=$(fetch "linux-image-$KVER")
[ -n "$image" ] || image=$(fetch "linux-image-$KVER-unsigned")
[ -n "$image" ] || die "cannot download linux-image-$KVER version $HDR_VER (try 'apt-get update')"
headers=$(fetch "$HDR_PKG")
[ -n "$headers" ] || die "cannot download $HDR_PKG version $HDR_VER (try 'apt-get update')"
# linux-headers-<ver>-common and linux-kbuild-<ver>, as the headers package names them
deps=$(dpkg-deb -f "$headers" Depends)
common=$(grep -o 'linux-headers-6\.12\.[^ ,]*-common' <<<"$deps" | head -n1)
kbuild=$(grep -o 'linux-kbuild-6\.12\.[^ ,]*' <<<"$deps" | head -n1)
cc=$(grep -o 'gcc-[0-9][0-9]*' <<<"$deps" | head -n1)
[ -n "$common" ] && [ -n "$kbuild" ] || die "$headers does not name its -common and linux-kbuild packages (Depends: $deps)"
debs=("$image" "$headers")
for p in "$common" "$kbuild"; do
    f=$(fetch "$p")
    [ -n "$f" ] || die "cannot download $p version $HDR_VER (try 'apt-get update')"
    debs+=("$f")
done
if [ -n "$cc" ] && ! command -v "$cc" >/dev/null; then
    die "the $KVER headers build modules with $cc, which is not installed — run scripts/setup.sh (or apt-get install $cc)"
fi

echo "guest-kernel: unpacking ${debs[*]} into $GUEST"
rm -rf "$GUEST/boot" "$GUEST/lib" "$GUEST/usr" "$GUEST/etc" "$GUEST/.stamp"
for d in "${debs[@]}"; do dpkg-deb -x "$d" "$GUEST"; done
# Debian 12 packages install to /lib, Debian 13 to /usr/lib; expose both as lib/.
if [ ! -d "$GUEST/lib/modules/$KVER" ] && [ -d "$GUEST/usr/lib/modules/$KVER" ]; then
    mkdir -p "$GUEST/lib/modules"
    ln -s "../../usr/lib/modules/$KVER" "$GUEST/lib/modules/$KVER"
fi
[ -f "$GUEST/boot/vmlinuz-$KVER" ] || die "$image has no boot/vmlinuz-$KVER"
[ -f "$GUEST/lib/modules/$KVER/modules.dep" ] || {
    # the package does not ship modules.dep (generated by depmod at install time)
    depmod -b "$GUEST" "$KVER" || die "depmod for $KVER failed"
}
# The flavour's Makefile includes the -common one by its absolute installed path
# (everything else is relative): point it at the unpacked copy.
[ -f "$KDIR/Makefile" ] || die "$headers has no usr/src/linux-headers-$KVER/Makefile"
sed -i "s|^include /usr/src/|include $GUEST/usr/src/|" "$KDIR/Makefile"
kr=$(make -s -C "$KDIR" kernelrelease 2>/dev/null) || true
[ "$kr" = "$KVER" ] || die "the unpacked headers in $KDIR say kernelrelease '$kr', not $KVER"
echo "$KVER" > "$GUEST/KVER"
echo "$STAMP" > "$GUEST/.stamp"
echo "guest-kernel: guest kernel $KVER and its headers ready"
