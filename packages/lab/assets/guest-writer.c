/*
 * guest-writer: an application's data through suspends.  Started by a lab guest's init when
 * the kernel command line says fastsuspend.writer=on, it waits for the vbd xvdb (attached by
 * dom0 later), then appends one 512-byte record every INTERVAL ms, each written with O_DSYNC:
 * when pwrite() returns, the record is on the backend's disk.  A record:
 *
 *   0   "FSREC001"
 *   8   seq (u64, little endian): record i is at byte offset i * 512
 *   16  CLOCK_BOOTTIME ns when it was written (u64)
 *   24  filler: byte k is (seq * 31 + k) & 0xff, up to 504
 *   504 FNV-1a 32 of bytes 0..503 (u32)
 *   508 zero
 *
 * dom0 asks through data/writer/request (guest-xsreq.h) and the writer prints
 *
 *   WRITER-BEGIN req=TOKEN seq=N
 *   WRITER-STATUS acked=A errors=E last_errno=X max_write_ms=M slow=S full=F size=BYTES
 *   WRITER-END req=TOKEN seq=N
 *
 * acked: records whose write returned (0 .. A-1 must all be on the disk, intact); max_write_ms:
 * the longest a write took (what an application saw of a suspend); slow: writes over 100 ms.
 * The writer stops writing when the disk is full and keeps answering.
 *
 * Options: --interval-ms N (default 10), --device PATH (default /dev/xvdb, created as block
 * 202:16 if missing: the guest has no udev).
 */
#define _GNU_SOURCE
#include <linux/fs.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "guest-xsreq.h"

#define REC 512

static struct xsreq xs = { .node = "data/writer/request", .token = "writer", .tag = "WRITER", .fd = -1 };

static uint32_t fnv1a(const unsigned char *p, size_t n)
{
	uint32_t h = 2166136261u;

	while (n--) {
		h ^= *p++;
		h *= 16777619u;
	}
	return h;
}

static void put64(unsigned char *p, uint64_t v)
{
	int i;

	for (i = 0; i < 8; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static void record(unsigned char *r, uint64_t seq, uint64_t boot_ns)
{
	uint32_t h;
	int k;

	memset(r, 0, REC);
	memcpy(r, "FSREC001", 8);
	put64(r + 8, seq);
	put64(r + 16, boot_ns);
	for (k = 24; k < 504; k++)
		r[k] = (unsigned char)((seq * 31 + k) & 0xff);
	h = fnv1a(r, 504);
	for (k = 0; k < 4; k++)
		r[504 + k] = (unsigned char)(h >> (8 * k));
}

static int64_t boot_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_BOOTTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int main(int argc, char **argv)
{
	const char *dev = "/dev/xvdb";
	long interval_ms = 10;
	unsigned char r[REC] __attribute__((aligned(512)));
	uint64_t acked = 0, errors = 0, slow = 0, size = 0;
	int64_t max_write = 0;
	int fd = -1, last_errno = 0, full = 0, i;
	unsigned seq = 0;

	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--interval-ms") && i + 1 < argc) {
			interval_ms = strtol(argv[++i], NULL, 10);
		} else if (!strcmp(argv[i], "--device") && i + 1 < argc) {
			dev = argv[++i];
		} else {
			dprintf(2, "usage: writer [--interval-ms N] [--device PATH]\n");
			return 2;
		}
	}
	if (interval_ms < 1 || interval_ms > 60000) {
		dprintf(2, "writer: --interval-ms must be 1..60000\n");
		return 2;
	}
	xsreq_open(&xs);
	dprintf(1, "WRITER-START pid=%d device=%s interval_ms=%ld xenbus=%s\n", (int)getpid(), dev,
		interval_ms, xs.fd >= 0 ? "yes" : "no");
	for (;;) {
		struct pollfd pfd = { .fd = xs.fd, .events = POLLIN };
		int rc = poll(&pfd, xs.fd >= 0 ? 1 : 0, (int)interval_ms);

		if (xsreq_after_poll(&xs, rc, pfd.revents)) {
			seq++;
			dprintf(1, "\nWRITER-BEGIN req=%s seq=%u\n"
				"WRITER-STATUS acked=%llu errors=%llu last_errno=%d max_write_ms=%.3f slow=%llu full=%d size=%llu\n"
				"WRITER-END req=%s seq=%u\n",
				xs.last, seq, (unsigned long long)acked, (unsigned long long)errors,
				last_errno, max_write / 1e6, (unsigned long long)slow, full,
				(unsigned long long)size, xs.last, seq);
		}
		if (fd < 0) {
			struct stat st;

			if (stat(dev, &st) != 0)
				mknod(dev, S_IFBLK | 0600, makedev(202, 16));
			fd = open(dev, O_RDWR | O_DSYNC | O_CLOEXEC);
			if (fd < 0)
				continue; /* not attached yet */
			if (ioctl(fd, BLKGETSIZE64, &size) != 0)
				size = fstat(fd, &st) == 0 ? (uint64_t)st.st_size : 0; /* a file: tests */
			dprintf(1, "WRITER-OPEN size=%llu\n", (unsigned long long)size);
		}
		if (!full && (acked + 1) * REC > size) {
			full = 1;
			dprintf(1, "WRITER-FULL acked=%llu\n", (unsigned long long)acked);
		}
		if (full)
			continue;
		{
			int64_t t0 = boot_ns(), d;
			ssize_t n;

			record(r, acked, (uint64_t)t0);
			n = pwrite(fd, r, REC, (off_t)(acked * REC));
			d = boot_ns() - t0;
			if (d > max_write)
				max_write = d;
			if (d > 100000000)
				slow++;
			if (n == REC) {
				acked++;
			} else {
				errors++;
				last_errno = n < 0 ? errno : EIO;
			}
		}
	}
}
