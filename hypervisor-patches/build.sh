#!/usr/bin/env bash
# Build the Xen hypervisor (only the hypervisor, not the tools) with the
# fastsuspend series for one base:
#
#   4.17 (default)  Debian bookworm's source package
#                   xen=4.17.5+72-g01140da4e8-1, with Debian's own patches
#                   (debian/patches, applied by dpkg-source -x); series in
#                   this directory.  The lab's hypervisor today.
#   4.20            Xen 4.20.4 (upstream tag RELEASE-4.20.4, the base of
#                   Debian trixie's xen 4.20.4+63-g7abfd2bce2-0+deb13u1,
#                   whose source package is not served to these machines),
#                   configured with the .config Debian trixie ships in
#                   xen-hypervisor-4.20-amd64; series in 4.20/.  See
#                   "Base 4.20: the source" below.
#
# Usage: hypervisor-patches/build.sh [--base 4.17|4.20] [--stock] [--shadow]
#        hypervisor-patches/build.sh [--base 4.17|4.20] --source-only
#
#   --stock        build without the fastsuspend series (same source, same
#                  config): the baseline to compare against.
#   --shadow       with CONFIG_SHADOW_PAGING=y: PV guests get log-dirty, so
#                  `xl migrate` and `xl remus` of a PV guest work.  Debian
#                  ships it off in both bookworm (4.17.7) and trixie (4.20.4),
#                  where only HVM/PVH guests (HAP) can be migrated.
#   --source-only  only make sure the pristine extracted source tree exists
#                  and print its path (used by check.sh).
#
# The LAST line on stdout is the path of the uncompressed multiboot-loadable
# image (ELF32 "xen", what `zcat /boot/xen-4.17-amd64.gz` gives), suitable
# for QEMU's -kernel.  Progress goes to stderr.
#
# Cache: ${FASTSUSPEND_CACHE:-$HOME/.cache/fastsuspend}/hypervisor/
#   src/                   per base, the downloaded files and the extracted
#                          pristine tree (xen-<version>/)
#   <hash>/xen             the image; <hash> = sha256 of the base, the source
#                          version, --stock, series, every patch, this script
#                          and the config.  A cache hit returns immediately.
#   <hash>/xen-syms, .config, build.log, info
#   scratch/               temporary build trees (removed after a build)
#
# Base 4.20: the source.  Debian trixie's source package for the
# hypervisor it ships (xen 4.20.4+63-g7abfd2bce2-0+deb13u1) is listed in
# trixie's and trixie-security's Sources indices, but its files answer 404
# here (so does sid's 4.20.4+39); the binary packages are served.  So the
# 4.20 base is upstream Xen at the tag RELEASE-4.20.4 (commit
# 9611e26eff425be128d4b9c7b48f2bc6b5d3498e), taken from a clone of Xen's
# git repository named by $FASTSUSPEND_XEN_GIT on first use (git archive of
# that commit; the commit is checked, not the tag name) and then kept
# extracted in the cache.  Debian's 4.20.4+63 is that tag plus 63 commits
# of stable-4.20; its public headers (libxen-dev 4.20.4+63, domctl.h
# byte-identical to the tag's, XEN_DOMCTL_INTERFACE_VERSION 0x00000017) and
# its .config are used as the reference.  None of Debian's debian/patches
# is applied: in 4.17 the only one that reaches the hypervisor is the boot
# banner's Debian version.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CACHE="${FASTSUSPEND_CACHE:-$HOME/.cache/fastsuspend}"
HVCACHE="$CACHE/hypervisor"
SRCCACHE="$HVCACHE/src"

log() { echo "[hypervisor/build.sh +${SECONDS}s] $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

BASE=4.17
MODE=patched
SHADOW=0
while [ $# -gt 0 ]; do
    case "$1" in
        --base)
            [ $# -ge 2 ] || die "--base needs 4.17 or 4.20"
            BASE=$2
            shift
            ;;
        --base=*) BASE=${1#--base=} ;;
        --stock) MODE=stock ;;
        --shadow) SHADOW=1 ;;
        --source-only) MODE=source ;;
        -h|--help) sed -n '2,55p' "$0" >&2; exit 0 ;;
        *) die "unknown argument: $1 (usage: build.sh [--base 4.17|4.20] [--stock] [--shadow] | --source-only)" ;;
    esac
    shift
done

case "$BASE" in
4.17)
    SERIES_DIR=$HERE
    SRC_PKG=xen
    SRC_VERSION=4.17.5+72-g01140da4e8-1
    SRC_DIRNAME="xen-${SRC_VERSION}"
    # Hypervisor configuration: what debian/rules does (debian/xen-kconfig,
    # i.e. CONFIG_DEBUG=n, then olddefconfig), plus CONFIG_SHADOW_PAGING=n.
    # The latter makes the result identical to the .config Debian ships with
    # the 4.17.7 hypervisor the lab uses as its baseline
    # (/boot/xen-4.17-amd64.config in xen-hypervisor-4.17-amd64
    # 4.17.7+13-g2445b30a44-0+deb12u1): upstream deprecated shadow paging in
    # XSA-495 and 4.17.7 turns it off, while the 4.17.5 source would still
    # default it on.  PV dom0/domU, xl save -c and checkpoints do not need
    # it.  Part of the cache key.
    EXTRA_CONFIG=(CONFIG_SHADOW_PAGING=n)
    CONFIG_DESC="debian/xen-kconfig + ${EXTRA_CONFIG[*]} + make olddefconfig, XEN_TARGET_ARCH=x86_64"
    ;;
4.20)
    SERIES_DIR=$HERE/4.20
    SRC_PKG=xen-upstream
    SRC_VERSION=4.20.4
    SRC_DIRNAME="xen-${SRC_VERSION}"
    XEN_TAG=RELEASE-4.20.4
    XEN_COMMIT=9611e26eff425be128d4b9c7b48f2bc6b5d3498e
    # Committer date of $XEN_COMMIT: the build date shown in the banner.
    XEN_COMMIT_EPOCH=1785338332
    # Debian trixie's hypervisor package: its /boot/xen-4.20-amd64.config
    # is the configuration (then olddefconfig; CONFIG_SHADOW_PAGING and
    # CONFIG_XSM are already off in it, CONFIG_PV on).
    DEB_HV_PKG=xen-hypervisor-4.20-amd64
    DEB_HV_VERSION=4.20.4+63-g7abfd2bce2-0+deb13u1
    EXTRA_CONFIG=()
    CONFIG_DESC="Debian $DEB_HV_PKG=$DEB_HV_VERSION /boot/xen-4.20-amd64.config + make olddefconfig, XEN_TARGET_ARCH=x86_64"
    ;;
*) die "unknown --base '$BASE' (known: 4.17, 4.20)" ;;
esac
if [ "$SHADOW" = 1 ]; then
    # Shadow paging back on (Debian's configs have it off): PV log-dirty.
    # Part of the cache key through CONFIG_DESC.
    EXTRA_CONFIG=(CONFIG_SHADOW_PAGING=y)
    CONFIG_DESC="${CONFIG_DESC/CONFIG_SHADOW_PAGING=n/CONFIG_SHADOW_PAGING=y}"
    case "$CONFIG_DESC" in *CONFIG_SHADOW_PAGING=y*) ;; *) CONFIG_DESC="$CONFIG_DESC + CONFIG_SHADOW_PAGING=y" ;; esac
fi

# Read the series file: one patch name per line, '#' comments and blank
# lines ignored.
series_patches() {
    sed -e 's/#.*//' -e 's/[[:space:]]*$//' -e '/^$/d' "$SERIES_DIR/series"
}

cache_key() {
    {
        echo "base=$BASE"
        echo "source=$SRC_PKG=$SRC_VERSION"
        echo "mode=$MODE"
        echo "config=$CONFIG_DESC"
        echo "build.sh=$(sha256sum < "$HERE/build.sh" | cut -d' ' -f1)"
        if [ "$MODE" = patched ]; then
            echo "series=$(sha256sum < "$SERIES_DIR/series" | cut -d' ' -f1)"
            local p
            while read -r p; do
                [ -f "$SERIES_DIR/$p" ] || die "patch listed in series is missing: $p"
                echo "patch:$p=$(sha256sum < "$SERIES_DIR/$p" | cut -d' ' -f1)"
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

# --- apt for trixie (base 4.20) -------------------------------------------
# The project's own apt configuration for trixie, shared with kernel/build.sh
# --base 6.12 (same directory, same sources.list): its own sources.list,
# lists, archives and an empty dpkg status, passed with -o.  The host's
# /etc/apt is only read (apt.conf.d), never written.
APT_TRIXIE=$CACHE/apt-trixie
apt_trixie_opts=(
    -o "Dir::Etc::SourceList=$APT_TRIXIE/sources.list"
    -o "Dir::Etc::SourceParts=$APT_TRIXIE/sources.list.d"
    -o "Dir::Etc::Preferences=$APT_TRIXIE/preferences"
    -o "Dir::Etc::PreferencesParts=$APT_TRIXIE/preferences.d"
    -o "Dir::State=$APT_TRIXIE/state"
    -o "Dir::State::Lists=$APT_TRIXIE/state/lists"
    -o "Dir::State::status=$APT_TRIXIE/state/status"
    -o "Dir::Cache=$APT_TRIXIE/cache"
    -o "APT::Sandbox::User=root"
)

ensure_apt_trixie() {
    local keyring=/usr/share/keyrings/debian-archive-keyring.gpg
    [ -s "$keyring" ] || die "no $keyring: apt-get install debian-archive-keyring"
    mkdir -p "$APT_TRIXIE"/{sources.list.d,preferences.d} \
        "$APT_TRIXIE"/state/lists/partial "$APT_TRIXIE"/cache/archives/partial
    touch "$APT_TRIXIE/state/status"
    if [ ! -s "$APT_TRIXIE/sources.list" ]; then
        # The same lines kernel/build.sh --base 6.12 writes there.
        cat > "$APT_TRIXIE/sources.list" <<EOF
# written by fastsuspend kernel/build.sh --base 6.12; used only
# through its -o Dir::... options, never by the host's apt
deb [signed-by=$keyring] http://deb.debian.org/debian trixie main
deb [signed-by=$keyring] http://deb.debian.org/debian-security trixie-security main
EOF
    fi
    if ! apt-cache "${apt_trixie_opts[@]}" show \
            "$DEB_HV_PKG=$DEB_HV_VERSION" >/dev/null 2>&1; then
        log "apt-get update (trixie, $APT_TRIXIE)"
        apt-get "${apt_trixie_opts[@]}" -q update >&2 ||
            die "apt-get update of $APT_TRIXIE failed"
    fi
}

# Debian trixie's hypervisor .config (base 4.20), from its binary package.
ensure_deb_config() {
    local dir="$SRCCACHE/debs-$BASE"
    DEB_CONFIG="$dir/xen-4.20-amd64.config"
    [ -s "$DEB_CONFIG" ] && return 0
    mkdir -p "$dir"
    local deb
    deb="$dir/${DEB_HV_PKG}_$(printf '%s' "$DEB_HV_VERSION" | sed 's/:/%3a/')_amd64.deb"
    if [ ! -s "$deb" ]; then
        ensure_apt_trixie
        log "downloading $DEB_HV_PKG=$DEB_HV_VERSION (for its .config)"
        (cd "$dir" && apt-get "${apt_trixie_opts[@]}" download \
            "$DEB_HV_PKG=$DEB_HV_VERSION" >&2) ||
            die "cannot download $DEB_HV_PKG=$DEB_HV_VERSION"
        [ -s "$deb" ] || die "apt-get download did not produce $deb"
    fi
    dpkg-deb --fsys-tarfile "$deb" |
        tar -xO ./boot/xen-4.20-amd64.config > "$DEB_CONFIG.tmp" ||
        die "no /boot/xen-4.20-amd64.config in $deb"
    mv "$DEB_CONFIG.tmp" "$DEB_CONFIG"
}

# --- pristine source tree -------------------------------------------------
ensure_source() {
    if [ "$BASE" = 4.20 ]; then
        ensure_source_upstream
        return
    fi
    local dsc="$SRCCACHE/${SRC_PKG}_${SRC_VERSION}.dsc"
    mkdir -p "$SRCCACHE"
    if [ ! -f "$dsc" ]; then
        # Through an apt configuration of the project's own (the host may list no deb-src lines,
        # and its /etc/apt is not ours to change).
        log "downloading source package $SRC_PKG=$SRC_VERSION"
        "$HERE/../scripts/debian-source.sh" bookworm "$SRC_PKG=$SRC_VERSION" "$SRCCACHE" >&2
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

# Base 4.20: upstream $XEN_COMMIT from the git clone in $FASTSUSPEND_XEN_GIT
# (see "Base 4.20: the source" at the top), extracted once.
ensure_source_upstream() {
    PRISTINE="$SRCCACHE/$SRC_DIRNAME"
    local mark="$PRISTINE/.fastsuspend-pristine"
    if [ -f "$mark" ] && [ "$(cat "$mark")" = "$XEN_COMMIT" ]; then
        return 0
    fi
    local git_dir="${FASTSUSPEND_XEN_GIT-}"
    [ -n "$git_dir" ] || die "no pristine Xen $SRC_VERSION tree at $PRISTINE.
  Debian trixie's xen source package is not served here, so base 4.20 is
  upstream $XEN_TAG ($XEN_COMMIT): set FASTSUSPEND_XEN_GIT
  to a clone of Xen's git repository (xen-project/xen) that has that commit."
    git -C "$git_dir" cat-file -e "$XEN_COMMIT^{commit}" 2>/dev/null ||
        die "$git_dir does not have commit $XEN_COMMIT ($XEN_TAG)"
    log "extracting Xen $XEN_TAG ($XEN_COMMIT) from $git_dir"
    mkdir -p "$SRCCACHE"
    local tmp="$SRCCACHE/.extract.$$"
    rm -rf "$tmp" "$PRISTINE"
    mkdir -p "$tmp"
    git -C "$git_dir" archive --prefix="$SRC_DIRNAME/" "$XEN_COMMIT" |
        tar -x -C "$tmp" || die "git archive of $XEN_COMMIT failed"
    grep -q "^export XEN_SUBVERSION *= *20$" "$tmp/$SRC_DIRNAME/xen/Makefile" ||
        die "the extracted tree is not Xen 4.20"
    printf '%s\n' "$XEN_COMMIT" > "$tmp/$SRC_DIRNAME/.fastsuspend-pristine"
    mv "$tmp/$SRC_DIRNAME" "$PRISTINE"
    rm -rf "$tmp"
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
[ "$BASE" = 4.20 ] && ensure_deb_config

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
              --no-backup-if-mismatch < "$SERIES_DIR/$p" >&2 ||
            die "patch $p does not apply with --fuzz=0"
    done < <(series_patches)
else
    log "stock build: not applying the fastsuspend series"
fi

PYTHON_BIN=python3
[ -x /usr/bin/python3 ] && PYTHON_BIN=/usr/bin/python3

# As debian/rules: DEB_VERSION/DEB_MAINTAINER are shown in the boot banner
# (Debian patch 0003, base 4.17 only); build date from the changelog (4.17)
# or the commit (4.20) for reproducibility.
if [ "$MODE" = patched ]; then
    DEB_VERSION_STR="${SRC_VERSION}+fastsuspend.${KEY:0:12}"
else
    DEB_VERSION_STR="${SRC_VERSION}+stock.${KEY:0:12}"
fi
if [ "$BASE" = 4.20 ]; then
    SOURCE_DATE_EPOCH=$XEN_COMMIT_EPOCH
else
    SOURCE_DATE_EPOCH="$(cd "$SRC" && dpkg-parsechangelog -STimestamp)"
fi
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
if [ "$BASE" = 4.20 ]; then
    cp "$DEB_CONFIG" "$SRC/xen/.config"
else
    cp "$SRC/debian/xen-kconfig" "$SRC/xen/.config"
fi
if [ ${#EXTRA_CONFIG[@]} -gt 0 ]; then
    printf '%s\n' "${EXTRA_CONFIG[@]}" >> "$SRC/xen/.config"
fi
nice -n 10 make -C "$SRC/xen" olddefconfig "${MAKE_ARGS[@]}" \
    > "$BUILDLOG" 2>&1 || { tail -40 "$BUILDLOG" >&2; die "olddefconfig failed"; }
for c in ${EXTRA_CONFIG[@]+"${EXTRA_CONFIG[@]}"}; do
    case "$c" in
        *=n) grep -qx "# ${c%=n} is not set" "$SRC/xen/.config" ||
                 die "config: $c did not stick" ;;
        *)   grep -qx "$c" "$SRC/xen/.config" || die "config: $c did not stick" ;;
    esac
done

if [ "$BASE" = 4.20 ]; then
    # How far olddefconfig (this source, this compiler) moved Debian's
    # config; the compiler's own lines (CONFIG_GCC_VERSION, CONFIG_CC_HAS_*,
    # ...) are expected to differ (trixie builds with GCC 14).
    diff <(grep '^CONFIG_' "$DEB_CONFIG" | sort) \
         <(grep '^CONFIG_' "$SRC/xen/.config" | sort) \
        > "$WORK/config-vs-debian.diff" || true
    log "config vs Debian's: $(grep -c '^[<>]' "$WORK/config-vs-debian.diff" || true) line(s) differ (see config-vs-debian.diff)"
fi

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
if [ -f "$WORK/config-vs-debian.diff" ]; then
    cp "$WORK/config-vs-debian.diff" "$OUT.tmp.$$/config-vs-debian.diff"
fi
{
    echo "base=$BASE"
    echo "mode=$MODE"
    echo "source=$SRC_PKG=$SRC_VERSION"
    [ "$BASE" = 4.20 ] && echo "upstream_commit=$XEN_COMMIT ($XEN_TAG)"
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
