#!/bin/bash
# Does a guest's checkpoint cycle stay flat over a long loop? (docs/guest-slowdown.md)
#
#   packages/lab/tools/drift.sh OUTDIR COUNT SECONDS TAG:TYPE:KERNEL[:EXTRA] [...]
#
# Boots one nested lab (patched hypervisor from hypervisor-patches/build.sh, an SVM CPU model so
# that PVH guests run beside PV ones), then for each guest in turn: create it (128 MB, 1 vCPU,
# TYPE pv or pvh) with packages/lab/assets/guest-trace-init.sh as its /init, run
# `fastsuspend checkpoint DOM --interval 0 --count COUNT --for SECONDS`, keep its console (with a
# debug kernel, kernel/debug.config: per-block ftrace means of the suspend/resume steps and the
# jiffies lag) and Xen's log, destroy it. One lab, one guest after the other: compare kernels as
# ratios within one run. Takes about SECONDS + 80 s per guest; run nothing else meanwhile.
# EXTRA: more boot arguments, '+' for a space (xen_manage.fast_suspend=1+fsanchor=stop_machine).
# FASTSUSPEND_STACK=trixie: Xen 4.20 and Linux 6.12 (bookworm's 4.17 and 6.1 when unset).
set -u
[ $# -ge 4 ] || { sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
OUT=$1 COUNT=$2 FOR=$3; shift 3
REPO=$(cd "$(dirname "$0")/../../.." && pwd)
export FASTSUSPEND_QEMU_CPU=${FASTSUSPEND_QEMU_CPU:-"Opteron_G3,+svm,+npt,-rdtscp"}
LAB="node $REPO/packages/lab/dist/cli.js"
NAME=drift-$$
STACK=${FASTSUSPEND_STACK:-bookworm}
case $STACK in
bookworm) HV_BASE=() K_BASE=() ;;
trixie) HV_BASE=(--base 4.20) K_BASE=(--base 6.12) ;;
*) echo "FASTSUSPEND_STACK: unknown stack $STACK (bookworm or trixie)" >&2; exit 2 ;;
esac
HV=$(bash "$REPO/hypervisor-patches/build.sh" "${HV_BASE[@]}" | tail -n 1)
STOCK=$(bash "$REPO/kernel/build.sh" "${K_BASE[@]}" --stock | tail -n 1)
# Debian's QEMU delivers an injected interrupt twice and PVH guests die of it (issue 13).
export FASTSUSPEND_QEMU_BINARY=${FASTSUSPEND_QEMU_BINARY:-$(bash "$REPO/packages/lab/tools/build-qemu.sh" | tail -n 1)}
T0=$SECONDS
mkdir -p "$OUT"
trap '$LAB down --name $NAME > /dev/null 2>&1' EXIT
$LAB up --name $NAME --stack "$STACK" --xenstored oxenstored --guest-kernel "$STOCK" --hypervisor "$HV" > "$OUT/up.log" 2>&1 || { tail "$OUT/up.log"; exit 1; }
echo "lab up after $((SECONDS - T0)) s"
SH=${FASTSUSPEND_CACHE:-$HOME/.cache/fastsuspend}/runs/$NAME/share
ov=$(mktemp -d)
cp "$REPO/packages/lab/assets/guest-trace-init.sh" "$ov/init" && chmod +x "$ov/init" && mkdir "$ov/bin"
{ zcat "$SH/guest-initrd.gz"; (cd "$ov" && find . | cpio -o -H newc 2> /dev/null); } | gzip -6 > "$SH/guest-initrd-trace.gz"
rm -rf "$ov"
mkdir -p "$SH/guests"
for spec in "$@"; do
	IFS=: read -r TAG TYPE K EXTRA <<< "$spec"
	D_OUT=$OUT/$TAG
	mkdir -p "$D_OUT"
	cp "$K" "$SH/k-$TAG"
	cat > "$SH/guests/$TAG.cfg" <<EOC
name = "$TAG"
type = "$TYPE"
kernel = "/lab/k-$TAG"
ramdisk = "/lab/guest-initrd-trace.gz"
memory = 128
vcpus = 1
extra = "console=hvc0 fsblk=250 ${EXTRA//+/ }"
on_crash = "preserve"
on_poweroff = "destroy"
on_reboot = "destroy"
EOC
	$LAB exec --name $NAME --timeout 400 -- sh -c "xl create /lab/guests/$TAG.cfg && i=0; until grep -q FASTSUSPEND-GUEST-READY /var/log/xen/console/guest-$TAG.log 2>/dev/null; do i=\$((i+1)); [ \$i -gt 3500 ] && exit 1; sleep 0.1; done; sleep 5; xl domid $TAG" > "$D_OUT/create.log" 2>&1
	D=$(tail -n 1 "$D_OUT/create.log")
	case $D in '' | *[!0-9]*) echo "$TAG: not created (see $D_OUT/create.log)"; continue ;; esac
	echo "$TAG ($TYPE): domain $D after $((SECONDS - T0)) s"
	$LAB exec --name $NAME --timeout $((FOR + 200)) -- sh -c "node /fastsuspend/packages/cli/dist/main.js checkpoint $D --interval 0 --count $COUNT --for $FOR --timeout 20000 --json --no-daemon" > "$D_OUT/ck.json" 2> "$D_OUT/ck.err"
	$LAB exec --name $NAME --timeout 60 -- sh -c "sleep 3; cat /var/log/xen/console/guest-$TAG.log; xl destroy $TAG" > "$D_OUT/console.log" 2>&1
	$LAB exec --name $NAME --timeout 60 -- sh -c "xl dmesg | tail -n 30" > "$D_OUT/xen.log" 2>&1
	echo "$TAG: $(grep -o '"ok":[0-9]*\|"failed":[0-9]*\|"stoppedBy":"[a-z]*"' "$D_OUT/ck.json" | tr '\n' ' ')"
	echo "$TAG: median ms per 100 cycles $(grep -o '"totalMsPerHundred":[^]]*]' "$D_OUT/ck.json" | cut -d: -f2)"
	grep -q "Triple fault" "$D_OUT/xen.log" && echo "$TAG: Xen reports a triple fault (see $D_OUT/xen.log)"
done
echo "done after $((SECONDS - T0)) s"
