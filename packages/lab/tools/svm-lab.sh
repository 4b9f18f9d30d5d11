# Sourced by the PVH tools (pvh-remus.sh, pvh-soak.sh): boots a nested lab NAME whose CPU offers
# Xen HVM with nested paging (PVH guests; TCG single-threaded unless FASTSUSPEND_QEMU_TCG_THREAD
# says otherwise), with the patched hypervisor and KERNEL (default: kernel/build.sh's patched
# guest kernel) as the guests' kernel; logs to OUT/up.log and OUT/info.log; takes it down on exit.
# Defines LAB, T0 and x TIMEOUT CMD (CMD in dom0).
# Usage: svm_lab_up OUT NAME [KERNEL]
svm_lab_up() {
	local out=$1 kernel repo hv
	NAME=$2
	repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
	export FASTSUSPEND_QEMU_CPU=${FASTSUSPEND_QEMU_CPU:-"Opteron_G3,+svm,+npt,-rdtscp"}
	LAB="node $repo/packages/lab/dist/cli.js"
	hv=$(bash "$repo/hypervisor-patches/build.sh" | tail -n 1)
	kernel=${3:-$(bash "$repo/kernel/build.sh" | tail -n 1)}
	T0=$SECONDS
	mkdir -p "$out"
	trap '$LAB down --name $NAME > /dev/null 2>&1' EXIT
	$LAB up --name "$NAME" --xenstored oxenstored --guest-kernel "$kernel" --hypervisor "$hv" > "$out/up.log" 2>&1 || { tail "$out/up.log"; exit 1; }
	echo "lab up after $((SECONDS - T0)) s (cpu $FASTSUSPEND_QEMU_CPU, tcg thread=${FASTSUSPEND_QEMU_TCG_THREAD:-single})"
	x 30 "xl info | grep -E 'virt_caps|xen_version'" | tee "$out/info.log"
}

x() { $LAB exec --name "$NAME" --timeout "$1" -- sh -c "$2"; }
