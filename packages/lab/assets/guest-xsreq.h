/*
 * guest-xsreq.h: how a lab guest's probe learns that dom0 wants its results, without a
 * xenstore client library (the guest's initramfs is busybox and static probes).  The probe
 * creates its own node (XS_MKDIR, so that the guest owns it), watches it over
 * /proc/xen/xenbus (or /dev/xen/xenbus), and reads it when the watch fires; a new value
 * (a token dom0 chose) is a request, which the probe answers on its console, tagged with the
 * token.  One header for every probe (guest-blackout.c, guest-phases.c): static functions,
 * no allocation, no library.
 */
#ifndef GUEST_XSREQ_H
#define GUEST_XSREQ_H

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define XS_READ 2
#define XS_WATCH 4
#define XS_MKDIR 9
#define XS_WATCH_EVENT 15

struct xsd_sockmsg {
	uint32_t type;
	uint32_t req_id;
	uint32_t tx_id;
	uint32_t len;
};

struct xsreq {
	const char *node;  /* relative to the guest's home, e.g. "data/blackout/request" */
	const char *token; /* the watch's token */
	const char *tag;   /* prefix of the probe's console lines, e.g. "BLACKOUT" */
	int fd;            /* < 0: not connected */
	uint32_t req_id;
	uint32_t mkdir_req; /* req_id of our XS_MKDIR in flight, 0: none */
	uint32_t read_req; /* req_id of our XS_READ in flight, 0: none */
	unsigned char buf[8192];
	size_t len;
	char last[128];    /* the last request's token */
	int pending;       /* a request came: its token is in last[] */
	int64_t retry_at;  /* CLOCK_MONOTONIC ns of the next xsreq_open() after a close */
};

static int64_t xsreq_now(void)
{
	struct timespec ts;

	if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0)
		return 0;
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void xsreq_close(struct xsreq *x, const char *why)
{
	if (x->fd >= 0) {
		dprintf(1, "%s-NOTE xenbus closed: %s\n", x->tag, why);
		close(x->fd);
	}
	x->fd = -1;
	x->len = 0;
	x->mkdir_req = 0;
	x->read_req = 0;
	x->retry_at = xsreq_now() + 5000000000LL;
}

/* Sends one request; returns its req_id, 0 on failure. */
static uint32_t xsreq_send(struct xsreq *x, uint32_t type, const char *a, const char *b)
{
	char msg[sizeof(struct xsd_sockmsg) + 256];
	struct xsd_sockmsg h = { .type = type };
	size_t la = strlen(a) + 1, lb = b ? strlen(b) + (type == XS_WATCH) : 0;

	if (++x->req_id == 0)
		x->req_id = 1;
	h.req_id = x->req_id;
	h.len = la + lb;
	if (sizeof(h) + h.len > sizeof(msg))
		return 0;
	memcpy(msg, &h, sizeof(h));
	memcpy(msg + sizeof(h), a, la);
	if (b)
		memcpy(msg + sizeof(h) + la, b, lb);
	if (write(x->fd, msg, sizeof(h) + h.len) != (ssize_t)(sizeof(h) + h.len)) {
		xsreq_close(x, "write failed");
		return 0;
	}
	return h.req_id;
}

static void xsreq_open(struct xsreq *x)
{
	static const char *const paths[] = { "/proc/xen/xenbus", "/dev/xen/xenbus" };
	unsigned i;

	x->fd = -1;
	for (i = 0; i < 2 && x->fd < 0; i++)
		x->fd = open(paths[i], O_RDWR | O_CLOEXEC | O_NONBLOCK);
	if (x->fd < 0) {
		x->retry_at = INT64_MAX; /* not a Xen guest (or no xenfs): no requests */
		return;
	}
	x->len = 0;
	/*
	 * Create the node ourselves (empty if it is new, left alone if dom0 was quicker), then,
	 * once xenstored has answered, watch it: Linux 6.1's xenbus device keeps a request's
	 * payload in the file's write buffer until the reply, so a second write before it
	 * corrupts the first (the lab saw the probe hang in D state writing its XS_WATCH).  The
	 * watch fires once at once: that first read finds the empty value and is ignored, or
	 * dom0's early request and answers it.
	 */
	x->mkdir_req = xsreq_send(x, XS_MKDIR, x->node, NULL);
}

/* Handles one complete message from xenstored. */
static void xsreq_message(struct xsreq *x, const struct xsd_sockmsg *h, const char *body)
{
	char val[sizeof(x->last)];
	size_t n, i;

	if (h->type == XS_WATCH_EVENT) {
		if (!x->read_req && !x->mkdir_req)
			x->read_req = xsreq_send(x, XS_READ, x->node, NULL);
		return;
	}
	if (x->mkdir_req && h->req_id == x->mkdir_req) {
		x->mkdir_req = 0;
		xsreq_send(x, XS_WATCH, x->node, x->token);
		return;
	}
	if (!x->read_req || h->req_id != x->read_req)
		return; /* the reply to our WATCH */
	x->read_req = 0;
	if (h->type != XS_READ)
		return; /* XS_ERROR, e.g. ENOENT: nothing asked */
	n = h->len < sizeof(val) - 1 ? h->len : sizeof(val) - 1;
	memcpy(val, body, n);
	val[n] = '\0';
	/* Only a token-like value (no spaces or controls) ends up in the output. */
	for (i = 0; i < n; i++)
		if (val[i] <= ' ' || val[i] > '~')
			val[i] = '_';
	if (n == 0 || strcmp(val, x->last) == 0)
		return; /* the watch's first fire, or a re-fire (resume) of a request already done */
	memcpy(x->last, val, n + 1);
	x->pending = 1;
}

/* Reads what xenstored sent; sets x->pending when a new request arrived. */
static void xsreq_readable(struct xsreq *x)
{
	for (;;) {
		ssize_t n;

		if (x->len == sizeof(x->buf)) {
			xsreq_close(x, "message too big");
			return;
		}
		n = read(x->fd, x->buf + x->len, sizeof(x->buf) - x->len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			break;
		if (n <= 0) {
			xsreq_close(x, n == 0 ? "end of file" : strerror(errno));
			return;
		}
		x->len += n;
		/* one read may carry several messages, or part of one */
		for (;;) {
			struct xsd_sockmsg h;
			size_t whole;

			if (x->len < sizeof(h))
				break;
			memcpy(&h, x->buf, sizeof(h));
			if (h.len > sizeof(x->buf) - sizeof(h)) {
				xsreq_close(x, "bad length");
				return;
			}
			whole = sizeof(h) + h.len;
			if (x->len < whole)
				break;
			xsreq_message(x, &h, (const char *)x->buf + sizeof(h));
			if (x->fd < 0)
				return;
			memmove(x->buf, x->buf + whole, x->len - whole);
			x->len -= whole;
		}
	}
}

/*
 * After a poll() that watched x->fd (for POLLIN): reads what came or closes on an error, and
 * reopens once the retry time has come.  Returns 1 if a new request came (token in x->last).
 */
static int xsreq_after_poll(struct xsreq *x, int rc, short revents)
{
	if (rc > 0 && (revents & POLLIN))
		xsreq_readable(x);
	else if (rc > 0 && (revents & (POLLERR | POLLHUP | POLLNVAL)))
		xsreq_close(x, "poll error");
	if (x->fd < 0 && xsreq_now() >= x->retry_at)
		xsreq_open(x);
	if (!x->pending)
		return 0;
	x->pending = 0;
	return 1;
}

#endif /* GUEST_XSREQ_H */
