#!/bin/bash
# Downloads a Debian source package (.dsc and its files) into DESTDIR through an apt
# configuration of our own with DIST's deb-src lines, and prints the .dsc's path.
#
#   scripts/debian-source.sh bookworm qemu=1:7.2+dfsg-7+deb12u18 DESTDIR
#
# Why not the host's apt: a Debian host lists binary packages only by default (a fresh machine's
# debian.sources says `Types: deb`, and `apt-get source` fails with "You must put some 'deb-src'
# URIs in your sources.list"), and the host's configuration is not the project's to change. The
# lists live in $FASTSUSPEND_CACHE/apt-DIST-src (default ~/.cache/fastsuspend), refreshed on
# each call. Used by the patched QEMU's and Xen 4.17's builds.
set -euo pipefail
[ $# -eq 3 ] || { echo "usage: $0 DIST PKG=VERSION DESTDIR" >&2; exit 2; }
dist=$1 spec=$2 dest=$3
case $dist in bookworm | trixie) ;; *) echo "$0: unknown Debian release '$dist' (bookworm or trixie)" >&2; exit 2 ;; esac
case $spec in ?*=?*) ;; *) echo "$0: '$spec' is not PKG=VERSION" >&2; exit 2 ;; esac
cache=${FASTSUSPEND_CACHE:-$HOME/.cache/fastsuspend}
dir=$cache/apt-$dist-src
keyring=/usr/share/keyrings/debian-archive-keyring.gpg
[ -s "$keyring" ] || { echo "$0: no $keyring: apt-get install debian-archive-keyring" >&2; exit 1; }
mkdir -p "$dir/sources.list.d" "$dir/state/lists/partial" "$dir/cache/archives/partial" "$dest"
{
	echo "deb-src [signed-by=$keyring] http://deb.debian.org/debian $dist main"
	echo "deb-src [signed-by=$keyring] http://deb.debian.org/debian $dist-updates main"
	echo "deb-src [signed-by=$keyring] http://deb.debian.org/debian-security $dist-security main"
} > "$dir/sources.list"
# The lists sit in the caller's cache, which apt's _apt user may not open: download as the caller.
opts=(-o "Dir::Etc::SourceList=$dir/sources.list" -o "Dir::Etc::SourceParts=$dir/sources.list.d" -o "APT::Sandbox::User=$(id -un)"
	-o "Dir::State::Lists=$dir/state/lists" -o "Dir::Cache=$dir/cache")
apt-get "${opts[@]}" update -qq >&2
pkg=${spec%%=*} version=${spec#*=}
(cd "$dest" && apt-get "${opts[@]}" source -qq --download-only "$spec" >&2)
# The .dsc's name drops the version's epoch.
dsc=$dest/${pkg}_${version#*:}.dsc
[ -f "$dsc" ] || { echo "$0: apt-get source did not produce $dsc" >&2; exit 1; }
echo "$dsc"
