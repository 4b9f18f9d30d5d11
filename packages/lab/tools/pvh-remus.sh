#!/bin/bash
# Do PVH guests survive `xl remus` in the nested lab? (issue 13's triple faults; docs/results.md)
#
#   packages/lab/tools/pvh-remus.sh OUTDIR SECONDS RUNS [KERNEL]
#
# Boots one nested lab with an SVM CPU model (PVH needs HVM with nested paging) and the patched
# hypervisor, then RUNS times in turn: creates a 128 MB PVH guest (KERNEL, default the patched
# guest kernel from kernel/build.sh), runs `xl -vvv remus -F -b -n -d -i 100` on it for SECONDS
# (blackhole: memory copied every checkpoint, sent nowhere), stops it with SIGTERM, and reads
# Xen's log for a triple fault. Prints per run: checkpoints libxl issued, whether the guest
# triple-faulted, and the guest's state. FASTSUSPEND_QEMU_TCG_THREAD=single|multi chooses
# QEMU's TCG threading (single is the lab's default with an SVM CPU), to tell an emulator race from a guest or
# Xen bug. Takes about RUNS x (SECONDS + 40) s plus the boot; run nothing else meanwhile.
set -u
[ $# -ge 3 ] || { sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
OUT=$1 FOR=$2 RUNS=$3
. "$(dirname "$0")/svm-lab.sh"
svm_lab_up "$OUT" "pvhremus-$$" ${4:+"$4"}
total=0 faults=0
for i in $(seq 1 "$RUNS"); do
	G=pr$i
	$LAB guest create $G --name $NAME --type pvh > "$OUT/$G-create.log" 2>&1 || { echo "$G: not created (see $OUT/$G-create.log)"; continue; }
	x $((FOR + 60)) "timeout -s TERM $FOR xl -vvv remus -F -b -n -d -i 100 $G dummy > /tmp/$G-remus.log 2>&1; echo remus exit \$?; grep -c 'issuing PVH/HVM suspend request' /tmp/$G-remus.log; xl list $G | tail -n 1" > "$OUT/$G-remus.out" 2>&1
	x 60 "cat /tmp/$G-remus.log" > "$OUT/$G-remus.log" 2>&1
	x 60 "xl dmesg | tail -n 60" > "$OUT/$G-xen.log" 2>&1
	x 60 "cat /var/log/xen/console/guest-$G.log; xl destroy $G" > "$OUT/$G-console.log" 2>&1
	n=$(sed -n 2p "$OUT/$G-remus.out")
	case $n in '' | *[!0-9]*) n=0 ;; esac
	total=$((total + n))
	tf=no
	grep -q "Triple fault" "$OUT/$G-xen.log" && { tf=yes; faults=$((faults + 1)); }
	echo "$G: $n checkpoints issued in $FOR s, triple fault: $tf, $(sed -n 1p "$OUT/$G-remus.out"), state: $(sed -n 3p "$OUT/$G-remus.out" | awk '{print $5}')"
	# A faulted guest's domain id is reused in Xen's log by the next one: start the next clean.
	x 30 "xl dmesg -c > /dev/null" > /dev/null 2>&1
done
echo "total: $total checkpoints over $RUNS guests, $faults triple faults, after $((SECONDS - T0)) s"
