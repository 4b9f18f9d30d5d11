#!/bin/busybox sh
# A lab guest's init: enough userspace to show it booted; the kernel does the suspend work.
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t sysfs sys /sys
echo "FASTSUSPEND-GUEST-READY $(/bin/busybox uname -r)"
while :; do /bin/busybox sleep 3600; done
