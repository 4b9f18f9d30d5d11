#!/bin/busybox sh
# A lab guest's init: enough userspace to show it booted; the kernel does the suspend work.
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t sysfs sys /sys
# Privcmd through xenfs: the hypervisor probe checks, as this unprivileged guest, that Xen
# refuses it XEN_DOMCTL_suspend_notify on dom0 (see guest-hvprobe.c).
/bin/busybox mkdir -p /proc/xen
# The xenstore probe checks that xenstored enforces a guest's permissions (guest-xsprobe.c).
/bin/busybox mount -t xenfs xenfs /proc/xen && { /bin/hvprobe; /bin/xsprobe; }
# The blackout probe (guest-blackout.c): measures, in the background, how long user space could
# not run; dom0 asks for its results through data/blackout/request. Off unless the kernel command
# line says `fastsuspend.blackout=on` (its 1 ms loop costs CPU under TCG, and it has not yet been
# measured against the other lab tests and the benchmark); `fastsuspend.blackout_args=--threshold-us,5000`
# passes options (commas for spaces).
bo=off; bo_args=; ph=on; wr=off; wr_args=
for w in $(/bin/busybox cat /proc/cmdline); do
  case "$w" in
    fastsuspend.blackout=*) bo=${w#*=} ;;
    fastsuspend.blackout_args=*) bo_args=$(echo "${w#*=}" | /bin/busybox tr , ' ') ;;
    fastsuspend.phases=*) ph=${w#*=} ;;
    fastsuspend.writer=*) wr=${w#*=} ;;
    fastsuspend.writer_args=*) wr_args=$(echo "${w#*=}" | /bin/busybox tr , ' ') ;;
  esac
done
# ash starts a background command with stdin from /dev/null, which this initramfs lacks.
[ -e /dev/null ] || /bin/busybox mknod -m 666 /dev/null c 1 3
[ "$bo" = on ] && /bin/blackout $bo_args &
# The phases probe (guest-phases.c): the suspend_resume tracepoint on, in the kernel's ring
# buffer; dom0 asks for each suspend's steps through data/phases/request. Idle in between (it
# sleeps on xenbus), so on unless the command line says `fastsuspend.phases=off`.
[ "$ph" = off ] || /bin/phases &
# The data writer (guest-writer.c): O_DSYNC records on the vbd xvdb once dom0 attaches one; dom0
# asks how many were written through data/writer/request and checks them on the backing file.
[ "$wr" = on ] && /bin/writer $wr_args &
echo "FASTSUSPEND-GUEST-READY $(/bin/busybox uname -r)"
while :; do /bin/busybox sleep 3600; done
