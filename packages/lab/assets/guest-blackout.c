/*
 * guest-blackout: started in the background by a lab guest's init, it measures how long user
 * space could not run.  A loop reads CLOCK_BOOTTIME and CLOCK_MONOTONIC, then sleeps SLEEP_US;
 * an interval between two reads longer than SLEEP_US + THRESHOLD_US is a gap, kept in a bounded
 * in-memory table.  Which clock: during a Xen suspend (drivers/xen/manage.c, xen_suspend ->
 * syscore_suspend/resume) Linux's timekeeping_suspend/timekeeping_resume rebase the clocksource
 * and add the suspended time (read from Xen's wallclock, the "persistent clock") to
 * CLOCK_BOOTTIME and CLOCK_REALTIME only: the xen clocksource is not SUSPEND_NONSTOP, so
 * CLOCK_MONOTONIC does not see the time between timekeeping_suspend and timekeeping_resume.
 * Gaps are detected on BOOTTIME; the MONOTONIC interval is reported beside each one.
 *
 * Results reach dom0 off the critical path: nothing is written per gap.  The probe watches
 * its own xenstore node data/blackout/request (over /proc/xen/xenbus, or /dev/xen/xenbus);
 * when dom0 writes a new value there, the probe prints one block on its console (hvc0, which
 * xenconsoled logs in dom0) and clears its table and its window histogram:
 *
 *   BLACKOUT-BEGIN req=TOKEN seq=N clocksource=xen sleep_us=1000 threshold_us=3000 ...
 *   BLACKOUT-GAP i=0 at_boot_ms=... at_real_ms=... boot_ms=1034.21 mono_ms=40.12
 *   BLACKOUT-HIST name=floor from_ms=... to_ms=... samples=... p50_us=... max_us=... over=...
 *   BLACKOUT-HIST name=window ...
 *   BLACKOUT-END req=TOKEN seq=N count=K
 *
 * boot_ms/mono_ms are the whole interval between two clock reads (the sleep included);
 * histograms are of the excess over the requested sleep.  "floor" covers the first FLOOR_S
 * seconds after start (no suspends expected then); "window" every sample since the last dump.
 *
 * Off the lab (any Linux): SIGUSR1 prints a block, and --run SEC prints one and exits.
 * Options: --sleep-us N --threshold-us N --floor-s N --run SEC.  No allocation after start.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "guest-xsreq.h"

#define MAX_GAPS 4096
#define HIST_STEP_US 10
#define HIST_BUCKETS 2000 /* 0 .. 20 ms of excess in 10 us steps, then one overflow bucket */
#define REQ_NODE "data/blackout/request"
#define WATCH_TOKEN "blackout"

struct gap {
	int64_t at_boot_ns; /* BOOTTIME at the read before the gap */
	int64_t at_real_ns; /* REALTIME at the read before the gap (derived at its end) */
	int64_t boot_ns;
	int64_t mono_ns;
};

struct hist {
	uint32_t b[HIST_BUCKETS + 1];
	uint64_t samples;
	uint64_t over; /* intervals over the threshold */
	int64_t max_ns;
	int64_t from_ns, to_ns; /* BOOTTIME span covered */
};

static long sleep_us = 1000, threshold_us = 3000, floor_s = 10, run_s;
static struct gap gaps[MAX_GAPS];
static unsigned ngaps;
static uint64_t dropped;
static struct hist floor_h, window_h;
static char clocksource[32] = "unknown";
static unsigned seq;
static volatile sig_atomic_t want_dump;

static struct xsreq xs = { .node = REQ_NODE, .token = WATCH_TOKEN, .tag = "BLACKOUT", .fd = -1 };

static char out[65536];
static size_t outlen;

static int64_t now_ns(clockid_t c)
{
	struct timespec ts;

	if (clock_gettime(c, &ts) != 0)
		return 0;
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void flush_out(void)
{
	size_t off = 0;

	while (off < outlen) {
		ssize_t n = write(1, out + off, outlen - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		off += n;
	}
	outlen = 0;
}

/* Appends a line to out[] (flushed when nearly full and at the end of a block). */
static void emit(const char *fmt, ...)
{
	va_list ap;
	int n;

	if (outlen > sizeof(out) - 512)
		flush_out();
	va_start(ap, fmt);
	n = vsnprintf(out + outlen, sizeof(out) - outlen, fmt, ap);
	va_end(ap);
	if (n > 0)
		outlen += (size_t)n < sizeof(out) - outlen ? (size_t)n : sizeof(out) - outlen - 1;
}

static void hist_reset(struct hist *h, int64_t at)
{
	memset(h, 0, sizeof(*h));
	h->from_ns = h->to_ns = at;
}

static void hist_add(struct hist *h, int64_t interval_ns, int64_t at)
{
	int64_t excess_us = (interval_ns / 1000) - sleep_us;
	size_t i;

	if (excess_us < 0)
		excess_us = 0;
	i = (size_t)(excess_us / HIST_STEP_US);
	if (i > HIST_BUCKETS)
		i = HIST_BUCKETS;
	h->b[i]++;
	h->samples++;
	if (excess_us > threshold_us)
		h->over++;
	if (interval_ns > h->max_ns)
		h->max_ns = interval_ns;
	h->to_ns = at;
}

/* Upper edge (us of excess) of the bucket holding the q-th quantile, q in per mille. */
static long hist_q(const struct hist *h, unsigned permille)
{
	uint64_t want, seen = 0;
	size_t i;

	if (!h->samples)
		return 0;
	want = (h->samples * permille + 999) / 1000;
	if (want == 0)
		want = 1;
	for (i = 0; i <= HIST_BUCKETS; i++) {
		seen += h->b[i];
		if (seen >= want)
			return (long)((i + 1) * HIST_STEP_US);
	}
	return (long)((HIST_BUCKETS + 1) * HIST_STEP_US);
}

static void emit_hist(const char *name, const struct hist *h)
{
	long max_excess = h->max_ns ? (long)(h->max_ns / 1000) - sleep_us : 0;

	emit("BLACKOUT-HIST name=%s from_ms=%.3f to_ms=%.3f samples=%llu p50_us=%ld p90_us=%ld p99_us=%ld p999_us=%ld max_us=%ld over=%llu\n",
	     name, h->from_ns / 1e6, h->to_ns / 1e6, (unsigned long long)h->samples,
	     hist_q(h, 500), hist_q(h, 900), hist_q(h, 990), hist_q(h, 999),
	     max_excess < 0 ? 0 : max_excess, (unsigned long long)h->over);
}

static void dump(const char *req)
{
	unsigned i;
	int64_t now = now_ns(CLOCK_BOOTTIME);

	seq++;
	emit("\nBLACKOUT-BEGIN req=%s seq=%u clock=boottime clocksource=%s sleep_us=%ld threshold_us=%ld floor_s=%ld now_boot_ms=%.3f count=%u dropped=%llu\n",
	     req, seq, clocksource, sleep_us, threshold_us, floor_s, now / 1e6, ngaps, (unsigned long long)dropped);
	for (i = 0; i < ngaps; i++)
		emit("BLACKOUT-GAP i=%u at_boot_ms=%.3f at_real_ms=%.3f boot_ms=%.3f mono_ms=%.3f\n",
		     i, gaps[i].at_boot_ns / 1e6, gaps[i].at_real_ns / 1e6,
		     gaps[i].boot_ns / 1e6, gaps[i].mono_ns / 1e6);
	emit_hist("floor", &floor_h);
	emit_hist("window", &window_h);
	emit("BLACKOUT-END req=%s seq=%u count=%u\n", req, seq, ngaps);
	flush_out();
	ngaps = 0;
	dropped = 0;
	hist_reset(&window_h, now_ns(CLOCK_BOOTTIME));
}

static void on_usr1(int sig)
{
	(void)sig;
	want_dump = 1;
}

static void read_clocksource(void)
{
	int fd = open("/sys/devices/system/clocksource/clocksource0/current_clocksource", O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return;
	n = read(fd, clocksource, sizeof(clocksource) - 1);
	close(fd);
	if (n <= 0) {
		strcpy(clocksource, "unknown");
		return;
	}
	clocksource[n] = '\0';
	clocksource[strcspn(clocksource, " \n")] = '\0';
}

static long arg_long(int argc, char **argv, int *i, long min, long max)
{
	long v;
	char *end;

	if (*i + 1 >= argc) {
		fprintf(stderr, "blackout: %s needs a value\n", argv[*i]);
		exit(2);
	}
	v = strtol(argv[++*i], &end, 10);
	if (*end || v < min || v > max) {
		fprintf(stderr, "blackout: bad value for %s\n", argv[*i - 1]);
		exit(2);
	}
	return v;
}

int main(int argc, char **argv)
{
	struct sigaction sa;
	struct timespec slp;
	int64_t prev_boot, prev_mono, start_boot, floor_end, run_end = 0;
	int i, floor_done = 0;

	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--sleep-us"))
			sleep_us = arg_long(argc, argv, &i, 100, 1000000);
		else if (!strcmp(argv[i], "--threshold-us"))
			threshold_us = arg_long(argc, argv, &i, 100, 10000000);
		else if (!strcmp(argv[i], "--floor-s"))
			floor_s = arg_long(argc, argv, &i, 0, 86400);
		else if (!strcmp(argv[i], "--run"))
			run_s = arg_long(argc, argv, &i, 1, 86400);
		else {
			fprintf(stderr, "usage: blackout [--sleep-us N] [--threshold-us N] [--floor-s N] [--run SEC]\n");
			return 2;
		}
	}
	setvbuf(stdout, NULL, _IONBF, 0);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_usr1;
	sigaction(SIGUSR1, &sa, NULL);
	read_clocksource();
	xsreq_open(&xs);

	slp.tv_sec = sleep_us / 1000000;
	slp.tv_nsec = (sleep_us % 1000000) * 1000;
	start_boot = prev_boot = now_ns(CLOCK_BOOTTIME);
	prev_mono = now_ns(CLOCK_MONOTONIC);
	floor_end = start_boot + (int64_t)floor_s * 1000000000;
	if (run_s)
		run_end = start_boot + (int64_t)run_s * 1000000000;
	hist_reset(&floor_h, start_boot);
	hist_reset(&window_h, start_boot);
	emit("BLACKOUT-START pid=%d clocksource=%s sleep_us=%ld threshold_us=%ld floor_s=%ld xenbus=%s\n",
	     (int)getpid(), clocksource, sleep_us, threshold_us, floor_s, xs.fd >= 0 ? "yes" : "no");
	flush_out();

	for (;;) {
		struct pollfd pfd = { .fd = xs.fd, .events = POLLIN };
		int64_t boot, mono, d;
		int r, full;

		/* The short sleep; the xenbus fd (if any) wakes it early for a request. */
		r = ppoll(&pfd, 1, &slp, NULL);
		mono = now_ns(CLOCK_MONOTONIC);
		boot = now_ns(CLOCK_BOOTTIME);
		d = boot - prev_boot;
		/*
		 * An interval shorter than the sleep was cut short (a request, a signal): it goes on
		 * until a full sleep completes.  Otherwise it is a sample, whatever woke us: after a
		 * resume the xenbus fd may already be readable when the probe is thawed.
		 */
		full = d >= sleep_us * 1000LL - 200000;
		if (full) {
			if (d > (sleep_us + threshold_us) * 1000LL) {
				if (ngaps < MAX_GAPS) {
					struct gap *g = &gaps[ngaps++];

					g->at_boot_ns = prev_boot;
					g->at_real_ns = now_ns(CLOCK_REALTIME) - (now_ns(CLOCK_BOOTTIME) - prev_boot);
					g->boot_ns = d;
					g->mono_ns = mono - prev_mono;
				} else {
					dropped++;
				}
			}
			hist_add(&window_h, d, boot);
			if (!floor_done) {
				if (boot <= floor_end)
					hist_add(&floor_h, d, boot);
				else
					floor_done = 1;
			}
			prev_boot = boot;
			prev_mono = mono;
		}
		if (xsreq_after_poll(&xs, r, pfd.revents))
			want_dump = 2; /* 2: asked through xenstore, token in xs.last */
		if (run_end && boot >= run_end)
			want_dump = 1;
		if (want_dump) {
			int from_xs = want_dump == 2;

			want_dump = 0;
			dump(from_xs ? xs.last : "signal");
			if (run_end && boot >= run_end)
				return 0;
			/* the dump's own time (a slow console) is not a gap */
			prev_mono = now_ns(CLOCK_MONOTONIC);
			prev_boot = now_ns(CLOCK_BOOTTIME);
		}
	}
}
