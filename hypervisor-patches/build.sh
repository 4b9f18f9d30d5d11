#!/usr/bin/env bash
# Build the Xen hypervisor (only the hypervisor, not the tools) from Debian
# bookworm's source package xen=4.17.5+72-g01140da4e8-1, with Debian's own
# patches (debian/patches, applied by dpkg-source -x) and then the
# fastsuspend series in this directory.
#
# Usage: hypervisor-patches/build.sh [--stock]
#        hypervisor-patches/build.sh --source-only
#
#   --stock        build without the fastsuspend series (same source, same
#                  config): the baseline to compare against.
#   --source-only  only make sure the pristine extracted source tree exists
#                  and print its path (used by check.sh).
#
# The LAST line on stdout is the path of the uncompressed multiboot-loadable
# image (ELF32 "xen", what `zcat /boot/xen-4.17-amd64.gz` gives), suitable
# for QEMU's -kernel.  Progress goes to stderr.
#
# Cache: ${FASTSUSPEND_CACHE:-$HOME/.cache/fastsuspend}/hypervisor/
#   src/                   the .dsc and tarballs, and the extracted pristine tree
#   <hash>/xen             the image; <hash> = sha256 of the source version,
#                          --stock, series, every patch, this script and the
#                          config.  A cache hit returns immediately.
#   <hash>/xen-syms, .config, build.log, info
#   scratch/               temporary build trees (removed after a build)
set -euo pipefail

SRC_PKG=xen
SRC_VERSION=4.17.5+72-g01140da4e8-1
SRC_DIRNAME="xen-${SRC_VERSION}"
# Hypervisor configuration: what debian/rules does (debian/xen-kconfig, i.e.
# CONFIG_DEBUG=n, then olddefconfig), plus CONFIG_SHADOW_PAGING=n.  The
# latter makes the result identical to the .config Debian ships with the
# 4.17.7 hypervisor the lab uses as its baseline (/boot/xen-4.17-amd64.config
# in xen-hypervisor-4.17-amd64 4.17.7+13-g2445b30a44-0+deb12u1): upstream
# deprecated shadow paging in XSA-495 and 4.17.7 turns it off, while the
# 4.17.5 source would still default it on.  PV dom0/domU, xl save -c and
# checkpoints do not need it.  Part of the cache key.
EXTRA_CONFIG=(CONFIG_SHADOW_PAGING=n)
CONFIG_DESC="debian/xen-kconfig + ${EXTRA_CONFIG[*]} + make olddefconfig, XEN_TARGET_ARCH=x86_64"

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CACHE="${FASTSUSPEND_CACHE:-$HOME/.cache/fastsuspend}"
HVCACHE="$CACHE/hypervisor"
SRCCACHE="$HVCACHE/src"

log() { echo "[hypervisor/build.sh +${SECONDS}s] $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

MODE=patched
case "${1-}" in
    "") ;;
    --stock) MODE=stock ;;
    --source-only) MODE=source ;;
    -h|--help) sed -n '2,27p' "$0" >&2; exit 0 ;;
    *) die "unknown argument: $1 (usage: build.sh [--stock|--source-only])" ;;
esac
[ $# -le 1 ] || die "too many arguments"

# Read the series file: one patch name per line, '#' comments and blank
# lines ignored.
series_patches() {
    sed -e 's/#.*//' -e 's/[[:space:]]*$//' -e '/^$/d' "$HERE/series"
}

cache_key() {
    {
        echo "source=$SRC_PKG=$SRC_VERSION"
        echo "mode=$MODE"
        echo "config=$CONFIG_DESC"
        echo "build.sh=$(sha256sum < "$HERE/build.sh" | cut -d' ' -f1)"
        if [ "$MODE" = patched ]; then
            echo "series=$(sha256sum < "$HERE/series" | cut -d' ' -f1)"
            local p
            while read -r p; do
                [ -f "$HERE/$p" ] || die "patch listed in series is missing: $p"
                echo "patch:$p=$(sha256sum < "$HERE/$p" | cut -d' ' -f1)"
            done < <(series_patches)
        fi
    } | sha256sum | cut -d' ' -f1
}

# --- fast path: cache hit -------------------------------------------------
if [ "$MODE" != source ]; then
    KEY="$(cache_key)"
    OUT="$HVCACHE/$KEY"
    if [ -s "$OUT/xen" ]; then
        log "cache hit ($MODE): $OUT/xen"
        echo "$OUT/xen"
        exit 0
    fi
fi

# --- build dependencies ---------------------------------------------------
ensure_deps() {
    # lsb-release: Debian's patch 0003 runs lsb_release at build time.
    local pkgs=(build-essential flex bison python3 dpkg-dev lsb-release
                xz-utils patch)
    local missing=() p
    for p in "${pkgs[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null |
            grep -q "install ok installed" || missing+=("$p")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        log "installing build dependencies: ${missing[*]}"
        DEBIAN_FRONTEND=noninteractive apt-get install -y \
            --no-install-recommends "${missing[@]}" >&2
    fi
}

# --- pristine source tree -------------------------------------------------
ensure_source() {
    local dsc="$SRCCACHE/${SRC_PKG}_${SRC_VERSION}.dsc"
    mkdir -p "$SRCCACHE"
    if [ ! -f "$dsc" ]; then
        local list=/etc/apt/sources.list.d/fastsuspend-src.sources
        if [ ! -f "$list" ]; then
            log "adding deb-src entry for bookworm main: $list"
            cat > "$list" <<'EOF'
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
        fi
        log "apt-get update (for the deb-src entry)"
        apt-get update >&2
        log "downloading source package $SRC_PKG=$SRC_VERSION"
        (cd "$SRCCACHE" && apt-get source --download-only \
            "$SRC_PKG=$SRC_VERSION" >&2)
        [ -f "$dsc" ] || die "apt-get source did not produce $dsc"
    fi
    if [ ! -f "$SRCCACHE/$SRC_DIRNAME/.fastsuspend-pristine" ]; then
        log "extracting $dsc (dpkg-source -x applies debian/patches)"
        local tmp="$SRCCACHE/.extract.$$"
        rm -rf "$tmp" "$SRCCACHE/$SRC_DIRNAME"
        mkdir -p "$tmp"
        dpkg-source -x "$dsc" "$tmp/$SRC_DIRNAME" >&2
        # dpkg-source -x applies the quilt series of a 3.0 (quilt) package;
        # check that it did, since we rely on Debian's patches being present.
        [ -f "$tmp/$SRC_DIRNAME/.pc/applied-patches" ] ||
            die "debian/patches were not applied by dpkg-source -x"
        touch "$tmp/$SRC_DIRNAME/.fastsuspend-pristine"
        mv "$tmp/$SRC_DIRNAME" "$SRCCACHE/$SRC_DIRNAME"
        # dpkg-source also copies the orig tarball next to the tree.
        rm -rf "$tmp"
    fi
    PRISTINE="$SRCCACHE/$SRC_DIRNAME"
}

if [ "$MODE" = source ]; then
    mkdir -p "$HVCACHE"
    exec 9>"$HVCACHE/.source.lock"
    flock 9
    ensure_deps
    ensure_source
    echo "$PRISTINE"
    exit 0
fi

# --- build ----------------------------------------------------------------
mkdir -p "$HVCACHE/scratch"
exec 9>"$HVCACHE/.build.lock"
log "waiting for the build lock" && flock 9
if [ -s "$OUT/xen" ]; then           # built meanwhile by someone else
    log "cache hit after waiting ($MODE): $OUT/xen"
    echo "$OUT/xen"
    exit 0
fi

ensure_deps
ensure_source

WORK="$HVCACHE/scratch/$KEY.$$"
cleanup() { rm -rf "$WORK"; }
trap cleanup EXIT
rm -rf "$WORK"
mkdir -p "$WORK"
log "copying the pristine tree to $WORK"
cp -a "$PRISTINE" "$WORK/src"
SRC="$WORK/src"

if [ "$MODE" = patched ]; then
    while read -r p; do
        log "applying $p"
        patch -d "$SRC" -p1 --fuzz=0 --batch --forward \
              --no-backup-if-mismatch < "$HERE/$p" >&2 ||
            die "patch $p does not apply with --fuzz=0"
    done < <(series_patches)
else
    log "stock build: not applying the fastsuspend series"
fi

PYTHON_BIN=python3
[ -x /usr/bin/python3 ] && PYTHON_BIN=/usr/bin/python3

# As debian/rules: DEB_VERSION/DEB_MAINTAINER are shown in the boot banner
# (Debian patch 0003); build date from the changelog for reproducibility.
if [ "$MODE" = patched ]; then
    DEB_VERSION_STR="${SRC_VERSION}+fastsuspend.${KEY:0:12}"
else
    DEB_VERSION_STR="${SRC_VERSION}+stock.${KEY:0:12}"
fi
SOURCE_DATE_EPOCH="$(cd "$SRC" && dpkg-parsechangelog -STimestamp)"
MAKE_ARGS=(XEN_TARGET_ARCH=x86_64 PYTHON="$PYTHON_BIN" V=0)
export SOURCE_DATE_EPOCH
export XEN_BUILD_DATE="$(LC_ALL=C date -u -d "@$SOURCE_DATE_EPOCH")"
export XEN_BUILD_TIME="$(LC_ALL=C date -u -d "@$SOURCE_DATE_EPOCH" +%T)"
export DEB_VERSION="$DEB_VERSION_STR"
export DEB_MAINTAINER="fastsuspend developers <dev@fastsuspend.invalid>"
export WGET=/bin/false GIT=/bin/false
unset CFLAGS CXXFLAGS CPPFLAGS LDFLAGS

BUILDLOG="$WORK/build.log"
log "configuring: $CONFIG_DESC"
cp "$SRC/debian/xen-kconfig" "$SRC/xen/.config"
printf '%s\n' "${EXTRA_CONFIG[@]}" >> "$SRC/xen/.config"
nice -n 10 make -C "$SRC/xen" olddefconfig "${MAKE_ARGS[@]}" \
    > "$BUILDLOG" 2>&1 || { tail -40 "$BUILDLOG" >&2; die "olddefconfig failed"; }
for c in "${EXTRA_CONFIG[@]}"; do
    case "$c" in
        *=n) grep -qx "# ${c%=n} is not set" "$SRC/xen/.config" ||
                 die "config: $c did not stick" ;;
        *)   grep -qx "$c" "$SRC/xen/.config" || die "config: $c did not stick" ;;
    esac
done

log "building the hypervisor (nice -n 10, -j2); log: $BUILDLOG"
T0=$SECONDS
nice -n 10 make -C "$SRC/xen" -j2 "${MAKE_ARGS[@]}" >> "$BUILDLOG" 2>&1 || {
    tail -60 "$BUILDLOG" >&2
    die "hypervisor build failed"
}
log "hypervisor built in $((SECONDS - T0))s"

IMG="$SRC/xen/xen"
[ -s "$IMG" ] || die "no $IMG after the build"
# QEMU's multiboot loader wants an ELF32 image with a multiboot (v1)
# header in its first 8 KiB; that is what Debian ships gzipped in /boot.
"$PYTHON_BIN" - "$IMG" <<'EOF' || die "$IMG is not an ELF32 multiboot image"
import struct, sys
data = open(sys.argv[1], "rb").read(8192)
assert data[:4] == b"\x7fELF", "not ELF"
assert data[4] == 1, "not ELF32 (EI_CLASS=%d)" % data[4]
for off in range(0, len(data) - 12 + 1, 4):
    magic, flags, csum = struct.unpack_from("<III", data, off)
    if magic == 0x1BADB002 and (magic + flags + csum) & 0xffffffff == 0:
        break
else:
    raise SystemExit("no multiboot header in the first 8 KiB")
EOF

mkdir -p "$OUT.tmp.$$"
cp "$IMG" "$OUT.tmp.$$/xen"
cp "$SRC/xen/xen-syms" "$OUT.tmp.$$/xen-syms"
cp "$SRC/xen/.config" "$OUT.tmp.$$/.config"
cp "$BUILDLOG" "$OUT.tmp.$$/build.log"
{
    echo "mode=$MODE"
    echo "source=$SRC_PKG=$SRC_VERSION"
    echo "deb_version=$DEB_VERSION_STR"
    echo "config=$CONFIG_DESC"
    echo "interface_version=$(sed -n 's/^#define XEN_DOMCTL_INTERFACE_VERSION //p' \
        "$SRC/xen/include/public/domctl.h")"
    if [ "$MODE" = patched ]; then
        series_patches | sed 's/^/patch=/'
    fi
    echo "build_seconds=$((SECONDS - T0))"
    echo "built=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
} > "$OUT.tmp.$$/info"
rm -rf "$OUT"
mv "$OUT.tmp.$$" "$OUT"
log "done ($MODE): $OUT/xen"
echo "$OUT/xen"
