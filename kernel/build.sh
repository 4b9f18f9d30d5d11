#!/bin/bash
# Build a small Xen PV/PVH guest kernel from Debian's linux-source-6.1 (or,
# with --base 6.12, trixie's linux-source-6.12), with the fastsuspend
# suspend-event-channel series for that base applied (or without it: --stock).
#
#   kernel/build.sh [--base 6.1|6.12] [--stock] [--out FILE] [-j N]
#   kernel/build.sh [--base 6.1|6.12] --source-dir   # only fetch + extract, print the tree
#
# The LAST line on stdout is the path of the resulting bzImage (or of FILE
# with --out).  Progress goes to stderr, prefixed with elapsed seconds.
#
# Bases (default 6.1):
#   6.1    Debian bookworm's linux-source-6.1; series kernel/series, patches
#          in kernel/; downloaded with the host's apt configuration (bookworm)
#   6.12   Debian trixie's linux-source-6.12; series kernel/6.12/series,
#          patches in kernel/6.12/; downloaded with an apt configuration of
#          the project's own in $CACHE/apt-trixie (its own sources.list for
#          trixie + trixie-security, its own lists and archives), so the
#          host's apt sources and state are neither used nor changed
#
# -j N: make jobs (default 2, or $FASTSUSPEND_KERNEL_JOBS).  It does not
# change the image, so it is not part of the cache key.
#
# Cache: ${FASTSUSPEND_CACHE:-$HOME/.cache/fastsuspend}
#   debs/                       the downloaded linux-source-<base> .debs
#   src/<version>/linux-source-<base>/   pristine extracted tree (read-only use)
#   apt-trixie/                 apt configuration, lists and archives (6.12)
#   kernel/<sha256>/bzImage     built images, keyed by every input (below)
#   kernel/<sha256>/config      the .config it was built with
#   build/<base>/               the work tree (source farm + objects), kept
#                               between builds (see "One work tree" below)
#
# The key is a sha256 over: the base, the source package name and version,
# the --stock flag, build.sh itself, guest.config and, for a patched build,
# the base's series file and every patch it lists.  A --stock build does not
# depend on the patches, so editing the series does not invalidate the stock
# image.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CACHE=${FASTSUSPEND_CACHE:-$HOME/.cache/fastsuspend}
T0=$SECONDS

log() { printf '[build.sh %4ds] %s\n' $((SECONDS - T0)) "$*" >&2; }
die() { printf '[build.sh %4ds] ERROR: %s\n' $((SECONDS - T0)) "$*" >&2; exit 1; }

usage() {
	sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//' >&2
	exit "${1:-2}"
}

base=6.1
stock=0
out=
source_only=0
jobs=${FASTSUSPEND_KERNEL_JOBS:-2}
while [[ $# -gt 0 ]]; do
	case $1 in
	--base)
		[[ $# -ge 2 ]] || die "--base needs 6.1 or 6.12"
		base=$2
		shift
		;;
	--base=*) base=${1#--base=} ;;
	-j | --jobs)
		[[ $# -ge 2 ]] || die "$1 needs a number"
		jobs=$2
		shift
		;;
	-j[0-9]*) jobs=${1#-j} ;;
	--jobs=*) jobs=${1#--jobs=} ;;
	--stock) stock=1 ;;
	--out)
		[[ $# -ge 2 ]] || die "--out needs a FILE"
		out=$2
		shift
		;;
	--out=*) out=${1#--out=} ;;
	--source-dir) source_only=1 ;;
	-h | --help) usage 0 ;;
	*) log "unknown argument: $1"; usage ;;
	esac
	shift
done
[[ $jobs =~ ^[1-9][0-9]*$ ]] || die "-j wants a positive number, not '$jobs'"

# Per base: the source package and version, the series directory, and the
# apt configuration that downloads the package.  The package holds
# /usr/src/<package>.tar.xz, whose top directory is <package>.
case $base in
6.1)
	SRC_PKG=linux-source-6.1
	SRC_VER=6.1.192-3
	SERIES_DIR=$HERE
	APT_DIST=host	# bookworm(-security): the host's own apt sources
	;;
6.12)
	SRC_PKG=linux-source-6.12
	SRC_VER=6.12.118-1
	SERIES_DIR=$HERE/6.12
	APT_DIST=trixie	# trixie + trixie-security, through $CACHE/apt-trixie
	;;
*) die "unknown --base '$base' (known: 6.1, 6.12)" ;;
esac
SRC_TARBALL=/usr/src/$SRC_PKG.tar.xz
SRC_TOPDIR=$SRC_PKG

# Patches listed in the series file, in order (blank lines and # comments
# are ignored).
series_patches() {
	local line
	while IFS= read -r line || [[ -n $line ]]; do
		line=${line%%#*}
		line=${line//[[:space:]]/}
		[[ -n $line ]] && printf '%s\n' "$line"
	done <"$SERIES_DIR/series"
}

sha() { sha256sum "$1" | cut -d' ' -f1; }

cache_key() {
	{
		printf 'base %s\n' "$base"
		printf 'package %s %s\n' "$SRC_PKG" "$SRC_VER"
		printf 'stock %s\n' "$stock"
		printf 'build.sh %s\n' "$(sha "$HERE/build.sh")"
		printf 'guest.config %s\n' "$(sha "$HERE/guest.config")"
		if [[ $stock == 0 ]]; then
			local p
			printf 'series %s\n' "$(sha "$SERIES_DIR/series")"
			while IFS= read -r p; do
				[[ -f $SERIES_DIR/$p ]] || die "series lists $p, which does not exist in $SERIES_DIR"
				printf 'patch %s %s\n' "$p" "$(sha "$SERIES_DIR/$p")"
			done < <(series_patches)
		fi
	} | sha256sum | cut -d' ' -f1
}

emit() {
	local img=$1
	if [[ -n $out ]]; then
		mkdir -p "$(dirname "$out")"
		cp -f "$img" "$out"
		img=$(cd "$(dirname "$out")" && pwd)/$(basename "$out")
	fi
	printf '%s\n' "$img"
}

as_root() {
	if [[ $(id -u) == 0 ]]; then
		"$@"
	elif command -v sudo >/dev/null; then
		sudo "$@"
	else
		die "need root to run: $*"
	fi
}

ensure_build_deps() {
	local pkgs=(build-essential bc flex bison libelf-dev libssl-dev
		    xz-utils cpio perl python3 kmod patch)
	local missing=() p
	for p in "${pkgs[@]}"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' ||
			missing+=("$p")
	done
	[[ ${#missing[@]} == 0 ]] && return 0
	log "installing build dependencies: ${missing[*]}"
	as_root env DEBIAN_FRONTEND=noninteractive \
		apt-get install -y --no-install-recommends "${missing[@]}" >&2 ||
		die "apt-get install ${missing[*]} failed"
}

# apt-get/apt-cache for $APT_DIST: the host's configuration for bookworm,
# for trixie one of the project's own under $CACHE/apt-trixie: its own
# sources.list (deb.debian.org trixie main + trixie-security main, signed by
# the trixie keys in debian-archive-keyring), its own lists, archives and an
# empty dpkg status, passed with -o.  The host's /etc/apt is only read (for
# apt.conf.d, e.g. a proxy), never written.
APT_TRIXIE=$CACHE/apt-trixie
apt_opts() {
	[[ $APT_DIST == host ]] && return 0
	printf '%s\n' \
		-o "Dir::Etc::SourceList=$APT_TRIXIE/sources.list" \
		-o "Dir::Etc::SourceParts=$APT_TRIXIE/sources.list.d" \
		-o "Dir::Etc::Preferences=$APT_TRIXIE/preferences" \
		-o "Dir::Etc::PreferencesParts=$APT_TRIXIE/preferences.d" \
		-o "Dir::State=$APT_TRIXIE/state" \
		-o "Dir::State::Lists=$APT_TRIXIE/state/lists" \
		-o "Dir::State::status=$APT_TRIXIE/state/status" \
		-o "Dir::Cache=$APT_TRIXIE/cache" \
		-o "APT::Sandbox::User=root"
}
apt_get() { local o; mapfile -t o < <(apt_opts); apt-get "${o[@]}" "$@"; }
apt_cache() { local o; mapfile -t o < <(apt_opts); apt-cache "${o[@]}" "$@"; }

# Make the trixie apt configuration and fetch its package lists when it
# does not know $SRC_PKG=$SRC_VER yet (first use, or a newer SRC_VER).
ensure_apt() {
	[[ $APT_DIST == host ]] && return 0
	local keyring=/usr/share/keyrings/debian-archive-keyring.gpg
	[[ -s $keyring ]] || die "no $keyring: apt-get install debian-archive-keyring"
	mkdir -p "$APT_TRIXIE"/{sources.list.d,preferences.d} \
		"$APT_TRIXIE"/state/lists/partial "$APT_TRIXIE"/cache/archives/partial
	touch "$APT_TRIXIE/state/status"
	cat >"$APT_TRIXIE/sources.list.tmp" <<-EOF
		# written by fastsuspend kernel/build.sh --base 6.12; used only
		# through its -o Dir::... options, never by the host's apt
		deb [signed-by=$keyring] http://deb.debian.org/debian trixie main
		deb [signed-by=$keyring] http://deb.debian.org/debian-security trixie-security main
	EOF
	mv -f "$APT_TRIXIE/sources.list.tmp" "$APT_TRIXIE/sources.list"
	if ! apt_cache show "$SRC_PKG=$SRC_VER" >/dev/null 2>&1; then
		log "apt-get update (trixie, $APT_TRIXIE)"
		apt_get -q update >&2 || die "apt-get update of $APT_TRIXIE failed"
	fi
}

# Download (once) and extract (once) the pristine source tree; print its path.
ensure_source() {
	local deb=$CACHE/debs/${SRC_PKG}_${SRC_VER}_all.deb
	local srcroot=$CACHE/src/$SRC_VER
	local tree=$srcroot/$SRC_TOPDIR

	if [[ -f $srcroot/.extracted && -f $tree/Makefile ]]; then
		printf '%s\n' "$tree"
		return 0
	fi

	mkdir -p "$CACHE/debs"
	if [[ ! -s $deb ]]; then
		ensure_apt
		log "downloading $SRC_PKG=$SRC_VER"
		if ! (cd "$CACHE/debs" && apt_get download "$SRC_PKG=$SRC_VER" >&2); then
			die "cannot download $SRC_PKG=$SRC_VER (available: $(apt_cache madison "$SRC_PKG" 2>/dev/null |
				awk '{print $3}' | sort -uV | tr '\n' ' ')).
  Fix: run 'apt-get update' (for --base 6.12: remove $APT_TRIXIE/state/lists
  to refetch them); if $SRC_VER is gone from the archive, put the
  .deb at $deb by hand (e.g. from snapshot.debian.org), or move the series
  to an available version: refresh the patches against it (kernel/check.sh
  must pass) and update SRC_VER in kernel/build.sh, the base's series file
  and docs/kernel.md."
		fi
		[[ -s $deb ]] || die "apt-get download did not produce $deb"
	fi

	log "extracting $SRC_PKG $SRC_VER into $srcroot"
	local tmp=$CACHE/src/.tmp.$$
	rm -rf "$tmp"
	mkdir -p "$tmp"
	dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$tmp" ".$SRC_TARBALL"
	tar -xJf "$tmp$SRC_TARBALL" -C "$tmp"
	rm -f "$tmp$SRC_TARBALL"
	[[ -f $tmp/$SRC_TOPDIR/Makefile ]] || die "unexpected tarball layout in $deb"
	rm -rf "$srcroot"
	mkdir -p "$srcroot"
	mv "$tmp/$SRC_TOPDIR" "$tree"
	rm -rf "$tmp"
	printf '%s\n' "$SRC_VER" >"$srcroot/.extracted"
	printf '%s\n' "$tree"
}

if [[ $source_only == 1 ]]; then
	mkdir -p "$CACHE"
	exec 9>"$CACHE/.source.lock"
	flock 9
	ensure_source
	exit 0
fi

[[ -f $HERE/guest.config ]] || die "missing $HERE/guest.config"
[[ $stock == 1 || -f $SERIES_DIR/series ]] || die "missing $SERIES_DIR/series"

key=$(cache_key)
img=$CACHE/kernel/$key/bzImage
variant=$([[ $stock == 1 ]] && echo stock || echo fastsuspend)

if [[ -s $img ]]; then
	log "cache hit ($variant): $img"
	emit "$img"
	exit 0
fi

# Cold path.  One build at a time per cache (the machine has 2 cores).
mkdir -p "$CACHE/kernel" "$CACHE/build"
exec 9>"$CACHE/.build.lock"
if ! flock -n 9; then
	log "another build.sh holds $CACHE/.build.lock, waiting"
	flock 9
fi
if [[ -s $img ]]; then
	log "cache hit after waiting ($variant): $img"
	emit "$img"
	exit 0
fi

log "cache miss ($variant), key $key"
ensure_build_deps
exec 8>"$CACHE/.source.lock"
flock 8
pristine=$(ensure_source)
flock -u 8

# One work tree per base, kept between builds: the stock and the patched
# kernel share every object the series does not touch, so the second of
# them recompiles a few files instead of the whole kernel (a small kernel
# takes ~4 min on 2 cores; a cold CI builds four, two per base).  The source
# tree is made anew each time as a hard-link farm of the pristine tree
# (cheap: no data is copied); the build is out of tree (O=), so it never
# writes into the source.  Every file the series touches now or touched in
# the previous build of this tree gets a private copy with a new mtime, so
# that make rebuilds what depends on it in either direction (patched after
# stock, stock after patched); patching then cannot modify the pristine
# tree through a shared link.  A build that did not finish leaves its tree
# marked, and the next one starts from an empty object tree.
scratch=$CACHE/build/$base
stamp="$SRC_PKG $SRC_VER $pristine"
if [[ ! -f $scratch/.done || $(cat "$scratch/.done") != "$stamp" ]]; then
	log "no finished work tree for $base: building from scratch in $scratch"
	rm -rf "$scratch"
fi
mkdir -p "$scratch/obj"
rm -f "$scratch/.done"
rm -rf "$scratch/src"
log "linking source tree into $scratch/src"
cp -al "$pristine" "$scratch/src"
cd "$scratch/src"

# The files the series for this base touches (all of its patches).
series_files() {
	local p
	[[ -f $SERIES_DIR/series ]] || return 0
	while IFS= read -r p; do
		[[ -f $SERIES_DIR/$p ]] || continue
		sed -n 's|^+++ b/\([^[:space:]]*\).*|\1|p' "$SERIES_DIR/$p"
	done < <(series_patches)
}
touched=$scratch/.touched	# what differed from pristine in the last build
{ cat "$touched" 2>/dev/null || true; series_files; } | sort -u >"$scratch/.touch-now"
while IFS= read -r f; do
	[[ -e $f ]] || continue
	{ cp -p "$f" "$f.fs-unlink" && mv -f "$f.fs-unlink" "$f" && touch "$f"; } ||
		die "cannot make a private copy of $f"
done <"$scratch/.touch-now"
# Until this build finishes, the next one must treat all of them as changed.
cp "$scratch/.touch-now" "$touched"

if [[ $stock == 0 ]]; then
	while IFS= read -r p; do
		log "applying $p"
		# --fuzz=0: a patch that no longer applies exactly must fail,
		# not be silently fuzzed into the wrong place.
		patch -p1 --fuzz=0 --forward --batch --no-backup-if-mismatch \
			-i "$SERIES_DIR/$p" >&2 || die "$p does not apply cleanly to $SRC_PKG $SRC_VER"
	done < <(series_patches)
fi

mk() { nice -n 10 make -s -C "$scratch/src" O="$scratch/obj" ARCH=x86_64 KBUILD_BUILD_USER=fastsuspend \
	KBUILD_BUILD_HOST=build "$@"; }

log "configuring: tinyconfig + guest.config + olddefconfig"
mk tinyconfig >&2
scripts/kconfig/merge_config.sh -m -O "$scratch/obj" "$scratch/obj/.config" \
	"$HERE/guest.config" >"$scratch/merge.log" 2>&1 ||
	{ cat "$scratch/merge.log" >&2; die "merge_config.sh failed"; }
scripts/config --file "$scratch/obj/.config" --set-str LOCALVERSION "-$variant"
mk olddefconfig >&2
cd "$scratch/obj"

# Every option guest.config asks for must have survived olddefconfig.
bad=()
while IFS= read -r line; do
	grep -qxF "$line" .config || bad+=("$line")
done < <(grep -E '^CONFIG_[A-Za-z0-9_]+=y$' "$HERE/guest.config")
if [[ ${#bad[@]} -gt 0 ]]; then
	for line in "${bad[@]}"; do
		log "not set after olddefconfig: $line (have: $(grep -E "^(# )?${line%%=*}[= ]" .config || echo absent))"
	done
	die "${#bad[@]} option(s) from guest.config were dropped by olddefconfig"
fi
log "config ok: all $(grep -cE '^CONFIG_[A-Za-z0-9_]+=y$' "$HERE/guest.config") requested options set"

log "building bzImage (make -j$jobs, nice)"
if ! mk -j"$jobs" bzImage >"$scratch/make.log" 2>&1; then
	tail -n 60 "$scratch/make.log" >&2
	die "kernel build failed (log above)"
fi
if grep -E 'warning:' "$scratch/make.log" >&2; then
	log "note: the build printed warnings (above)"
fi

dest=$CACHE/kernel/$key
rm -rf "$dest.tmp"
mkdir -p "$dest.tmp"
cp arch/x86/boot/bzImage "$dest.tmp/bzImage"
cp .config "$dest.tmp/config"
{
	printf 'base %s\npackage %s %s\nvariant %s\nrelease %s\nbuilt %s\n' \
		"$base" "$SRC_PKG" "$SRC_VER" "$variant" "$(mk kernelrelease)" "$(date -u +%FT%TZ)"
	[[ $stock == 1 ]] || series_patches | sed 's/^/patch /'
} >"$dest.tmp/info"
rm -rf "$dest"
mv "$dest.tmp" "$dest"
# The tree now differs from pristine in the series' files (patched) or in
# none (stock); the next build rebuilds those and its own.
if [[ $stock == 0 ]]; then series_files | sort -u >"$touched"; else : >"$touched"; fi
printf '%s\n' "$stamp" >"$scratch/.done"
log "built $variant kernel $(mk kernelrelease), $(stat -c %s "$img") bytes"
emit "$img"
