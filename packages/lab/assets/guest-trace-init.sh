#!/bin/busybox sh
# guest-slowdown debug init: ftrace the cancelled-suspend path, aggregate per 100 cycles.
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null
T=/sys/kernel/tracing
BLK=$(sed -n 's/.*fsblk=\([0-9]*\).*/\1/p' /proc/cmdline); BLK=${BLK:-100}
# The function that ends a cycle (one call per suspend): a fast suspend (xen_manage.fast_suspend=1)
# thaws no processes, so it needs another, e.g. fsanchor=stop_machine.
ANCHOR=$(sed -n 's/.*fsanchor=\([A-Za-z0-9_]*\).*/\1/p' /proc/cmdline); ANCHOR=${ANCHOR:-thaw_processes}
FUNCS=$(sed -n 's/.*fsfuncs=\([^ ]*\).*/\1/p' /proc/cmdline | tr , ' ')
[ -n "$FUNCS" ] || FUNCS="freeze_processes freeze_kernel_threads dpm_suspend_start xs_suspend dpm_suspend_end xen_arch_suspend stop_machine syscore_suspend gnttab_suspend xen_manage_runstate_time xen_arch_pre_suspend xen_arch_post_suspend gnttab_resume syscore_resume xen_arch_resume dpm_resume_start xs_suspend_cancel dpm_resume_end thaw_processes timekeeping_resume timekeeping_suspend tick_resume dpm_resume dpm_complete dpm_resume_noirq dpm_resume_early tick_resume_local tick_setup_periodic tick_suspend_local tick_suspend"
if [ -d $T ]; then
  echo 0 > $T/tracing_on
  echo 8192 > $T/buffer_size_kb
  : > $T/set_ftrace_filter
  for f in $FUNCS; do echo $f >> $T/set_ftrace_filter 2>/dev/null || echo "FSDBG nofunc $f"; done
  echo "FSDBG filter: $(cat $T/set_ftrace_filter | tr '\n' ' ')"
  echo function_graph > $T/current_tracer
  echo 1 > $T/options/funcgraph-tail 2>/dev/null
  echo 0 > $T/options/funcgraph-irqs 2>/dev/null
  echo 1 > $T/tracing_on
  mkdir $T/instances/jj $T/instances/mm && echo uptime > $T/instances/jj/trace_clock && echo mono > $T/instances/mm/trace_clock
fi
cat > /bin/fsstats <<'EOS'
#!/bin/sh
m() { awk -v k="$1:" '$1==k{print $2}' /proc/meminfo; }
np=$(ls -d /proc/[0-9]* | wc -l)
J=/sys/kernel/tracing/instances
lag=na
if [ -d $J/jj ]; then
  echo m > $J/jj/trace_marker; echo m > $J/mm/trace_marker
  tj=$(sed -n 's/.* \([0-9.]*\): tracing_mark_write.*/\1/p' $J/jj/trace | tail -1)
  tm=$(sed -n 's/.* \([0-9.]*\): tracing_mark_write.*/\1/p' $J/mm/trace | tail -1)
  lag=$(awk -v j="$tj" -v m="$tm" 'BEGIN{printf "%.0f", m*1000 - j*10}')
  echo > $J/jj/trace; echo > $J/mm/trace
fi
echo "FSDBG stats blk=$1 jifflag_ms=$lag up=$(cut -d" " -f1 /proc/uptime) memfree=$(m MemFree) slab=$(m Slab) sunrec=$(m SUnreclaim) vmalloc=$(m VmallocUsed) ptab=$(m PageTables) kstack=$(m KernelStack) percpu=$(m Percpu) vmi=$(wc -l < /proc/vmallocinfo) irq=$(wc -l < /proc/interrupts) tl=$(wc -l < /proc/timer_list) tlt=$(grep -c '^ #' /proc/timer_list) ws=$(cat /sys/kernel/debug/wakeup_sources 2>/dev/null | wc -l) procs=$np xendev=$(ls /sys/bus/xen/devices 2>/dev/null | wc -l) wq=$(ls /sys/devices/virtual/workqueue 2>/dev/null | wc -l)"
EOS
chmod +x /bin/fsstats
echo "FASTSUSPEND-GUEST-READY $(uname -r)"
/bin/fsstats 0
if [ -d $T ]; then
  cat $T/trace_pipe | awk -v B=$BLK -v A=$ANCHOR '
  function flush(   k) { printf "FSDBG blk=%d", blk; for (k in n) printf " %s=%.0f/%.0f", k, s[k]/n[k], mx[k]; printf "\n"; fflush(); delete n; delete s; delete mx; system("/bin/fsstats " blk); }
  {
    if (!match($0, /[0-9.]+ us/)) next
    d = substr($0, RSTART, RLENGTH - 3) + 0
    nm = ""
    if (match($0, /\/\* [A-Za-z0-9_.]+ \*\//)) nm = substr($0, RSTART + 3, RLENGTH - 6)
    else if (match($0, /[A-Za-z0-9_.]+\(\);/)) nm = substr($0, RSTART, RLENGTH - 3)
    if (nm == "") next
    n[nm]++; s[nm] += d; if (d > mx[nm]) mx[nm] = d
    if (nm == A) { c++; if (c % B == 0) { blk = c / B; flush() } }
  }' &
fi
( while :; do sleep 30; /bin/fsstats "t$(cut -d. -f1 /proc/uptime)"; done ) &
while :; do sleep 3600; done
