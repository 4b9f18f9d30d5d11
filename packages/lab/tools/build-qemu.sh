#!/bin/bash
# Builds the lab's QEMU with packages/lab/qemu-patches applied (issue 13: TCG's SVM delivered an
# injected interrupt twice, the second time with the guest's interrupts masked) and prints the
# binary's path. Debian bookworm's qemu 7.2 source package (the version the lab runs), the
# x86_64 system emulator only. Cached in ~/.cache/fastsuspend/qemu/HASH/ (HASH of the source
# package's version and the patches): a second run prints the path at once.
#
#   packages/lab/tools/build-qemu.sh            # build (or find) it; the path on the last line
#   FASTSUSPEND_QEMU_BINARY=$(packages/lab/tools/build-qemu.sh | tail -n 1) npm test
#
# Needs apt (root): dpkg-dev, meson, ninja-build, pkg-config, libglib2.0-dev, libpixman-1-dev, libfdt-dev
# (QEMU 7.2 needs libfdt for x86_64-softmmu and Debian's source has no dtc submodule), zlib1g-dev,
# libcap-ng-dev, libattr1-dev (VirtFS: the lab shares its run directory with dom0 over 9p). About 8 min
# on 2 cores.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
patches=(); while read -r p; do patches+=("$here/../qemu-patches/$p"); done < <(grep -v "^#" "$here/../qemu-patches/series")
version=1:7.2+dfsg-7+deb12u18
cache=${FASTSUSPEND_CACHE:-$HOME/.cache/fastsuspend}
hash=$( (echo "$version"; cat "$0" "${patches[@]}") | sha256sum | cut -c1-64)
out=$cache/qemu/$hash
if [ -x "$out/bin/qemu-system-x86_64" ]; then echo "$out/bin/qemu-system-x86_64"; exit 0; fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq > /dev/null
apt-get install -y -qq dpkg-dev meson ninja-build pkg-config libglib2.0-dev libpixman-1-dev libfdt-dev zlib1g-dev libcap-ng-dev libattr1-dev > /dev/null
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
# Through an apt configuration of the project's own: the host may list no deb-src lines.
dsc=$("$here/../../../scripts/debian-source.sh" bookworm "qemu=$version" "$work")
dpkg-source -x "$dsc" src > /dev/null
cd src
for p in "${patches[@]}"; do patch -p1 --fuzz=0 < "$p" > /dev/null; done
mkdir build && cd build
# --prefix=/usr and Debian's firmware path: QEMU looks for its data and firmware relative to its
# binary (bin/../share/qemu, ../share/seabios, ../lib/ipxe/qemu), linked below to Debian's.
../configure --prefix=/usr --firmwarepath=/usr/share/qemu:/usr/share/seabios:/usr/lib/ipxe/qemu --target-list=x86_64-softmmu --disable-docs --disable-werror --disable-user \
	--disable-tools --disable-guest-agent --disable-gtk --disable-sdl --disable-vnc --disable-opengl \
	--disable-spice --disable-virglrenderer --disable-xen --disable-kvm --disable-capstone --disable-slirp \
	--disable-curl --disable-libusb --disable-usb-redir --disable-libiscsi --disable-rbd --disable-glusterfs \
	--disable-smartcard --disable-seccomp --enable-virtfs > configure.log 2>&1 || { tail -n 30 configure.log >&2; exit 1; }
ninja -j"$(nproc)" qemu-system-x86_64 > ninja.log 2>&1 || { tail -n 30 ninja.log >&2; exit 1; }
mkdir -p "$out.tmp/bin" "$out.tmp/share" "$out.tmp/lib/ipxe"
cp qemu-system-x86_64 "$out.tmp/bin/"
ln -s /usr/share/qemu "$out.tmp/share/qemu"
ln -s /usr/share/seabios "$out.tmp/share/seabios"
ln -s /usr/lib/ipxe/qemu "$out.tmp/lib/ipxe/qemu"
# It must find the PC BIOS as Debian's does (QEMU exits 1 at once without it).
if timeout 20 "$out.tmp/bin/qemu-system-x86_64" -accel tcg -m 64 -display none -nodefaults -monitor none -S 2>&1 | grep -q "could not load"; then
	echo "the built QEMU does not find its firmware: $("$out.tmp/bin/qemu-system-x86_64" -L help | tr '\n' ' ')" >&2
	exit 1
fi
rm -rf "$out"
mv "$out.tmp" "$out"
echo "$out/bin/qemu-system-x86_64"
