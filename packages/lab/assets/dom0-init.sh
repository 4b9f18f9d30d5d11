#!/bin/busybox sh
# dom0's init in the lab: mount what the Xen toolstack needs, load the Xen and virtio modules,
# start a xenstored (flavour from the kernel command line), xen-init-dom0 and xenconsoled,
# mount the host's shares over 9p, then run the agent that executes the host's commands.
/bin/busybox --install -s /bin
export PATH=/usr/lib/xen-4.17/bin:/usr/local/bin:/usr/bin:/usr/sbin:/bin:/sbin
export HOME=/root
say() { echo "FASTSUSPEND-INIT: $*"; }
fail() { echo "FASTSUSPEND-INIT-FAILED: $*"; exec sh; }

mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mkdir -p /dev/pts /dev/shm /run /tmp /var/run/xen /var/log/xen/console /var/lib/xen /var/lib/xenstored
mount -t devpts devpts /dev/pts   # xenconsoled needs ptys for guest consoles
mount -t tmpfs tmp /tmp
mount -t tmpfs shm /dev/shm

arg() { sed -n "s/.*\bfastsuspend\.$1=\([^ ]*\).*/\1/p" /proc/cmdline; }

# Modules in dependency order (the lab builder wrote this list).
while read -r m; do
  [ -n "$m" ] && { insmod "/lib/modules/$m" || fail "insmod $m"; }
done < /lib/modules/load-order

mount -t xenfs xenfs /proc/xen || fail "mount xenfs"
# /fastsuspend (the project's code) came in the appended initramfs archive; /lab is the host's
# per-lab share (guest kernels, configs, results): 9p is fine for a few large files.
mkdir -p /lab
mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144 lab /lab || fail "9p mount of the lab dir"

flavour=$(arg xenstored)
case "$flavour" in
  cxenstored) xenstored --pid-file /var/run/xenstored.pid || fail "cxenstored" ;;
  *) flavour=oxenstored; oxenstored --pid-file /var/run/xenstored.pid || fail "oxenstored" ;;
esac
echo "$flavour" > /var/run/xenstored.flavour
i=0
until xenstore-exists /local 2>/dev/null || xenstore-read / >/dev/null 2>&1; do
  i=$((i + 1)); [ $i -gt 100 ] && fail "xenstored did not answer"; sleep 0.1
done
xen-init-dom0 || fail "xen-init-dom0"
xenconsoled --pid-file=/var/run/xenconsoled.pid --log=guest --log-dir=/var/log/xen/console || fail "xenconsoled"
say "toolstack ready ($flavour)"

port=""
for p in /sys/class/virtio-ports/*; do
  [ "$(cat "$p/name" 2>/dev/null)" = "fastsuspend.agent" ] && port=/dev/$(basename "$p")
done
[ -n "$port" ] || fail "no agent port"
dmesg -n 7  # so a crashing process's "segfault at" line reaches the console
# The agent is restarted if it dies, so one crash does not take the lab down with it.
while :; do
  node /lab/agent.cjs "$port"
  echo "FASTSUSPEND-AGENT-EXITED: $? (restarting)"
  sleep 1
done
