/*
 * guest-xsprobe: run once by a lab guest's init, as an unprivileged domain,
 * to show that xenstored enforces permissions on what a guest may touch.
 *
 * Over the guest's own xenbus device it writes a node under its home path
 * (data/xsprobe: allowed, and the node becomes the guest's), then tries to
 * write and to read nodes of dom0 (refused), and prints one line:
 *
 *   FASTSUSPEND-GUEST-XSPROBE own-write=OK dom0-write=EACCES dom0-read=EACCES
 *
 * The lab test reads that line from the guest's console log and checks from
 * dom0 that data/xsprobe is owned by the guest.  Wire format: xenstore's
 * struct xsd_sockmsg (four uint32: type, req_id, tx_id, len) + payload.
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define XS_READ 2
#define XS_WRITE 11
#define XS_ERROR 16

struct xsd_sockmsg {
	uint32_t type;
	uint32_t req_id;
	uint32_t tx_id;
	uint32_t len;
};

static char reply[4096];

/* One request; returns "OK" or xenstored's error name, with the reply in reply[]. */
static const char *request(int fd, uint32_t type, const char *a, const char *b)
{
	static uint32_t req_id;
	char msg[sizeof(struct xsd_sockmsg) + 512];
	struct xsd_sockmsg h = { .type = type, .req_id = ++req_id };
	/*
	 * The path is always sent with its NUL (oxenstored refuses a bare
	 * path with EINVAL); a written value follows it without one.
	 */
	size_t la = strlen(a) + 1, lb = b ? strlen(b) : 0;
	ssize_t n;

	h.len = la + lb;
	if (h.len + sizeof(h) > sizeof(msg))
		return "TOOBIG";
	memcpy(msg, &h, sizeof(h));
	memcpy(msg + sizeof(h), a, la);
	if (b)
		memcpy(msg + sizeof(h) + la, b, lb);
	if (write(fd, msg, sizeof(h) + h.len) != (ssize_t)(sizeof(h) + h.len))
		return "WRITE-FAILED";
	n = read(fd, msg, sizeof(msg));
	if (n < (ssize_t)sizeof(h))
		return "READ-FAILED";
	memcpy(&h, msg, sizeof(h));
	if (h.len >= sizeof(reply) || n < (ssize_t)(sizeof(h) + h.len))
		return "SHORT-REPLY";
	memcpy(reply, msg + sizeof(h), h.len);
	reply[h.len] = '\0';
	if (h.type == XS_ERROR)
		return reply;
	return "OK";
}

int main(void)
{
	int fd = open("/proc/xen/xenbus", O_RDWR);

	if (fd < 0) {
		printf("FASTSUSPEND-GUEST-XSPROBE no-xenbus\n");
		return 1;
	}
	/* A relative path is below the connection's home, /local/domain/<us>. */
	printf("FASTSUSPEND-GUEST-XSPROBE own-write=%s",
	       request(fd, XS_WRITE, "data/xsprobe", "guest"));
	printf(" dom0-write=%s",
	       request(fd, XS_WRITE, "/local/domain/0/xsprobe", "guest"));
	printf(" dom0-read=%s\n", request(fd, XS_READ, "/local/domain/0", NULL));
	close(fd);
	return 0;
}
