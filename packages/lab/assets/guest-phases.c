/*
 * guest-phases: the guest's own account of each Xen suspend, by step.  Started by a lab
 * guest's init, it enables the suspend_resume tracepoint (the PM core's, and the Xen steps
 * that kernel patch 0005 adds: xen_suspend_request, xen_do_suspend, freeze_*, xs_suspend,
 * stop_machine, xen_suspend_hypercall, xs_resume) in tracefs, then sleeps until dom0 writes a
 * token to data/phases/request.  Then it reads the trace buffer, empties it, and prints one
 * line per suspend on its console (hvc0, which xenconsoled logs in dom0):
 *
 *   PHASES-BEGIN req=TOKEN seq=N clock=mono lost=0
 *   PHASES-CYC src=1 cancelled=1 restored=0 request_us=... suspend_us=... resume_us=...
 *              total_us=... freeze_processes=... dpm_suspend=... ...
 *   PHASES-END req=TOKEN seq=N count=K
 *
 * (one PHASES-CYC line each).  suspend_us: the request seen by the guest (the channel's
 * interrupt, or "suspend" read from control/shutdown; do_suspend()'s start if neither was
 * traced) until the suspend hypercall; resume_us: the hypercall's return until do_suspend()
 * ends, just after thaw_processes(); every other field is a step's time in us; "na" for a span
 * whose end was not traced (request_us on a kernel without 0005's request points).  A negative
 * time is printed as it is: the clock stepped back (seen in the lab, see below).  Nothing is
 * printed or written per suspend: the tracepoint writes to the kernel's ring buffer.
 *
 * The trace clock is "mono" (CLOCK_MONOTONIC's NMI-safe reader).  It stands still from
 * timekeeping_suspend() to timekeeping_resume() (syscore, around the hypercall), so the time
 * the domain spent suspended is in no span, and no hypercall time is reported: dom0 measures
 * that.  Neither it nor the default "local" clock (sched_clock) is monotonic in the nested lab:
 * both follow the xen clocksource, which stepped back by up to ~40 ms now and then after
 * cancelled suspends (TCG's emulated TSC under Xen's pvclock), giving negative steps; dom0
 * drops those suspends from its statistics and counts them.
 *
 * Options: --buffer-kb N (per-CPU ring buffer, default 4096).  Off the lab: --file PATH prints
 * the block for a saved trace (tracefs's text format) and exits.
 */
#define _GNU_SOURCE
#include <poll.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <sys/stat.h>

#include "guest-xsreq.h"

#define TRACEFS "/sys/kernel/tracing"
#define REQ_NODE "data/phases/request"
#define MAX_STEPS 24
#define STEP_NAME 32

struct step {
	char name[STEP_NAME];
	int64_t begin_ns; /* < 0: not open */
	int64_t total_ns;
};

struct cycle {
	int open;
	int64_t request_ns; /* < 0: none seen */
	int src;
	int64_t t0, hc_begin, hc_end;
	int cancelled;
	unsigned nsteps;
	struct step steps[MAX_STEPS];
};

static struct xsreq xs = { .node = REQ_NODE, .token = "phases", .tag = "PHASES", .fd = -1 };
static struct cycle cyc;
static int64_t pending_request_ns = -1;
static int pending_src;
static unsigned seq, count;
static char line[512];

static int write_file(const char *path, const char *val)
{
	int fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = write(fd, val, strlen(val));
	close(fd);
	return n == (ssize_t)strlen(val) ? 0 : -1;
}

static struct step *step_of(const char *name)
{
	unsigned i;

	for (i = 0; i < cyc.nsteps; i++)
		if (!strcmp(cyc.steps[i].name, name))
			return &cyc.steps[i];
	if (cyc.nsteps == MAX_STEPS)
		return NULL;
	snprintf(cyc.steps[cyc.nsteps].name, STEP_NAME, "%s", name);
	cyc.steps[cyc.nsteps].begin_ns = -1;
	cyc.steps[cyc.nsteps].total_ns = 0;
	return &cyc.steps[cyc.nsteps++];
}

static long us(int64_t ns)
{
	return (long)(ns / 1000);
}

/* A span in us, or "na" when one end was not traced (a kernel without 0005's points). */
static char *span(char *b, int64_t from, int64_t to)
{
	if (from < 0 || to < 0)
		strcpy(b, "na");
	else
		sprintf(b, "%ld", us(to - from));
	return b;
}

static void emit_cycle(int64_t t1, int restored)
{
	char buf[2048], a[24], b[24], c[24], d[24];
	int64_t from = cyc.request_ns >= 0 ? cyc.request_ns : cyc.t0;
	size_t n;
	unsigned i;

	n = snprintf(buf, sizeof(buf),
		     "PHASES-CYC src=%d cancelled=%d restored=%d request_us=%s suspend_us=%s resume_us=%s total_us=%s",
		     cyc.src, cyc.cancelled, restored, span(a, cyc.request_ns, cyc.t0),
		     span(b, from, cyc.hc_begin), span(c, cyc.hc_end, t1), span(d, from, t1));
	for (i = 0; i < cyc.nsteps && n < sizeof(buf) - 64; i++)
		n += snprintf(buf + n, sizeof(buf) - n, " %s=%ld", cyc.steps[i].name,
			      us(cyc.steps[i].total_ns));
	dprintf(1, "%s\n", buf);
	count++;
}

/*
 * One event: "<action>[<val>] begin|end" at t_ns.  A cycle is xen_do_suspend's begin .. end;
 * the request is the first xen_suspend_request after the previous cycle ended (the channel's
 * interrupt comes before the watch callback that the channel's work item runs).
 */
static void event(const char *action, long val, int begin, int64_t t_ns)
{
	struct step *s;

	if (!strcmp(action, "xen_suspend_request")) {
		if (pending_request_ns < 0) {
			pending_request_ns = t_ns;
			pending_src = (int)val;
		}
		return;
	}
	if (!strcmp(action, "xen_do_suspend")) {
		if (begin) {
			memset(&cyc, 0, sizeof(cyc));
			cyc.open = 1;
			cyc.t0 = t_ns;
			cyc.request_ns = pending_request_ns;
			cyc.src = pending_request_ns >= 0 ? pending_src : -1;
			cyc.hc_begin = cyc.hc_end = -1;
			pending_request_ns = -1;
		} else if (cyc.open) {
			emit_cycle(t_ns, (int)val);
			cyc.open = 0;
		}
		return;
	}
	if (!cyc.open)
		return; /* a PM step outside a Xen suspend, or the buffer began mid-suspend */
	if (!strcmp(action, "xen_suspend_hypercall")) {
		if (begin) {
			cyc.hc_begin = t_ns;
		} else {
			cyc.hc_end = t_ns;
			cyc.cancelled = (int)val;
		}
		return;
	}
	s = step_of(action);
	if (!s)
		return;
	if (begin) {
		s->begin_ns = t_ns;
	} else if (s->begin_ns >= 0) {
		s->total_ns += t_ns - s->begin_ns;
		s->begin_ns = -1;
	}
}

/*
 * A trace line: "  task-pid  [000] d..1.  1234.567890: suspend_resume: dpm_suspend[16] begin".
 * Returns 0 if it is not a suspend_resume event.
 */
static int parse(char *l)
{
	char *ev = strstr(l, ": suspend_resume: "), *p, *act, *br, *end;
	long sec, usec;
	long val;
	int begin;

	if (!ev)
		return 0;
	*ev = '\0';
	p = strrchr(l, ' ');
	p = p ? p + 1 : l;
	sec = strtol(p, &end, 10);
	if (*end != '.')
		return 0;
	usec = strtol(end + 1, &end, 10);
	act = ev + strlen(": suspend_resume: ");
	br = strchr(act, '[');
	if (!br)
		return 0;
	*br = '\0';
	val = strtol(br + 1, &end, 10);
	if (*end != ']')
		return 0;
	begin = !strncmp(end + 1, " begin", 6);
	event(act, val, begin, (int64_t)sec * 1000000000 + (int64_t)usec * 1000);
	return 1;
}

/* Reads the whole trace buffer as it is now (or a saved trace), then empties the buffer. */
static void dump(const char *req, const char *file)
{
	FILE *f = fopen(file ? file : TRACEFS "/trace", "re");
	char lost[32] = "0";
	int fd;

	seq++;
	count = 0;
	fd = open(TRACEFS "/per_cpu/cpu0/stats", O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		char st[512];
		ssize_t n = read(fd, st, sizeof(st) - 1);
		char *o;

		close(fd);
		if (n > 0) {
			st[n] = '\0';
			o = strstr(st, "overrun: ");
			if (o)
				snprintf(lost, sizeof(lost), "%ld", strtol(o + 9, NULL, 10));
		}
	}
	dprintf(1, "\nPHASES-BEGIN req=%s seq=%u clock=mono lost=%s\n", req, seq, lost);
	memset(&cyc, 0, sizeof(cyc));
	pending_request_ns = -1;
	if (f) {
		while (fgets(line, sizeof(line), f))
			if (line[0] != '#')
				parse(line);
		fclose(f);
	} else {
		dprintf(1, "PHASES-NOTE cannot read %s: %s\n", file ? file : TRACEFS "/trace", strerror(errno));
	}
	if (!file)
		write_file(TRACEFS "/trace", "");
	dprintf(1, "PHASES-END req=%s seq=%u count=%u\n", req, seq, count);
}

static int setup(long buffer_kb)
{
	char kb[32];
	struct stat st;

	if (stat(TRACEFS "/trace", &st) != 0)
		mount("nodev", TRACEFS, "tracefs", 0, NULL);
	snprintf(kb, sizeof(kb), "%ld", buffer_kb);
	if (write_file(TRACEFS "/buffer_size_kb", kb) ||
	    write_file(TRACEFS "/trace_clock", "mono") ||
	    write_file(TRACEFS "/trace", "") ||
	    write_file(TRACEFS "/events/power/suspend_resume/enable", "1") ||
	    write_file(TRACEFS "/tracing_on", "1")) {
		dprintf(1, "PHASES-NOTE no suspend_resume tracepoint in " TRACEFS ": %s\n", strerror(errno));
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	long buffer_kb = 4096;
	const char *file = NULL;
	int i;

	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--buffer-kb") && i + 1 < argc) {
			buffer_kb = strtol(argv[++i], NULL, 10);
		} else if (!strcmp(argv[i], "--file") && i + 1 < argc) {
			file = argv[++i];
		} else {
			dprintf(2, "usage: phases [--buffer-kb N] [--file TRACE]\n");
			return 2;
		}
	}
	if (buffer_kb < 64 || buffer_kb > 65536) {
		dprintf(2, "phases: --buffer-kb must be 64..65536\n");
		return 2;
	}
	if (file) {
		dump("file", file);
		return 0;
	}
	if (setup(buffer_kb))
		return 1;
	xsreq_open(&xs);
	dprintf(1, "PHASES-START pid=%d buffer_kb=%ld xenbus=%s\n", (int)getpid(), buffer_kb,
		xs.fd >= 0 ? "yes" : "no");
	for (;;) {
		struct pollfd pfd = { .fd = xs.fd, .events = POLLIN };
		int r = poll(&pfd, xs.fd >= 0 ? 1 : 0, xs.fd >= 0 ? -1 : 5000);

		if (xsreq_after_poll(&xs, r, pfd.revents))
			dump(xs.last, NULL);
	}
}
