#!/bin/bash
# Do PVH guests survive long runs of cancelled suspends on every path? (issue 13's triple faults)
#
#   packages/lab/tools/pvh-soak.sh OUTDIR COUNT OTHERS [KERNEL]
#
# Boots one nested lab with an SVM CPU model and the patched hypervisor, creates one 128 MB PVH
# guest (KERNEL, default the patched guest kernel from kernel/build.sh) booted with
# xen_manage.fast_suspend=1, and runs on that one guest, back to back: COUNT checkpoints on the
# default path, then OTHERS on each other path (evtchn+evtchn, xenstore+evtchn, xenstore+watch,
# xenstore+poll, xenstore+virq). After each loop it reads Xen's log for a triple fault and stops
# at the first. FASTSUSPEND_QEMU_TCG_THREAD=single|multi chooses QEMU's TCG threading. Prints
# per loop: ok/failed, cycles/s, the per-100 median first and last. Run nothing else meanwhile.
set -u
[ $# -ge 3 ] || { sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
OUT=$1 COUNT=$2 OTHERS=$3
. "$(dirname "$0")/svm-lab.sh"
svm_lab_up "$OUT" "pvhsoak-$$" ${4:+"$4"}
$LAB guest create soak --name $NAME --type pvh --extra xen_manage.fast_suspend=1 | tee "$OUT/create.log" || exit 1
D=$(sed -n 's/.* is domain \([0-9]*\) .*/\1/p' "$OUT/create.log")
echo "feature/fast-suspend: $(x 30 "xenstore-read /local/domain/$D/feature/fast-suspend 2>&1")"
total=0
for spec in "default:$COUNT" "evtchn+evtchn:$OTHERS" "xenstore+evtchn:$OTHERS" "xenstore+watch:$OTHERS" "xenstore+poll:$OTHERS" "xenstore+virq:$OTHERS"; do
	P=${spec%%:*} N=${spec##*:}
	[ "$N" -gt 0 ] || continue
	path=; [ "$P" = default ] || path="--path $P"
	x $((N + 600)) "node /fastsuspend/packages/cli/dist/main.js checkpoint $D --interval 0 --count $N --timeout 20000 --json --no-daemon $path" > "$OUT/$P.json" 2> "$OUT/$P.err"
	x 60 "xl dmesg | tail -n 40" > "$OUT/$P-xen.log" 2>&1
	ok=$(grep -o '"ok":[0-9]*' "$OUT/$P.json" | head -n 1 | cut -d: -f2)
	total=$((total + ${ok:-0}))
	med=$(grep -o '"totalMsPerHundred":\[[^]]*\]' "$OUT/$P.json" | cut -d: -f2 | tr -d '[]' | awk -F, '{printf "%s -> %s", $1, $NF}')
	echo "$P: $(grep -o '"ok":[0-9]*\|"failed":[0-9]*\|"cyclesPerSecond":[0-9.]*' "$OUT/$P.json" | head -n 3 | tr '\n' ' ')per-100 median $med ms; $((SECONDS - T0)) s"
	if grep -q "Triple fault" "$OUT/$P-xen.log"; then echo "$P: Xen reports a triple fault (see $OUT/$P-xen.log)"; break; fi
done
x 60 "cat /var/log/xen/console/guest-soak.log | tail -n 200; xl list" > "$OUT/console.log" 2>&1
echo "total: $total cancelled suspends on one PVH guest, after $((SECONDS - T0)) s"
