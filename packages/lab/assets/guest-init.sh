#!/bin/busybox sh
# A lab guest's init: enough userspace to show it booted; the kernel does the suspend work.
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t sysfs sys /sys
# Privcmd through xenfs: the hypervisor probe checks, as this unprivileged guest, that Xen
# refuses it XEN_DOMCTL_suspend_notify on dom0 (see guest-hvprobe.c).
/bin/busybox mkdir -p /proc/xen
# The xenstore probe checks that xenstored enforces a guest's permissions (guest-xsprobe.c).
/bin/busybox mount -t xenfs xenfs /proc/xen && { /bin/hvprobe; /bin/xsprobe; }
echo "FASTSUSPEND-GUEST-READY $(/bin/busybox uname -r)"
while :; do /bin/busybox sleep 3600; done
