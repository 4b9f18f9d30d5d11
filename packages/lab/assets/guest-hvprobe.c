/*
 * guest-hvprobe: run once by a lab guest's init, as an *unprivileged* domain.
 *
 * It asks Xen, through the guest's own privcmd, to register for dom0's
 * suspend events (XEN_DOMCTL_suspend_notify, REGISTER, mask SUSPEND) and to
 * list dom0's registrations (QUERY), and prints the outcome on the console:
 *
 *   FASTSUSPEND-GUEST-HVPROBE register=EPERM query=EPERM
 *
 * The hypervisor series must refuse both to a guest that is not the
 * target's control domain or device model; the lab test reads this line
 * from the guest's console log.  Any other answer (OK, ENOSYS on a stock
 * hypervisor is also a refusal, but a different one) is printed as is.
 * The layout is hypervisor-patches/INTERFACE.md's.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#define HYPERVISOR_domctl 36
#define DOMCTL_SIZE 144
#define DOMCTL_SUSPEND_NOTIFY 0x4653
#define DOMCTL_INTERFACE_VERSION 0x15
#define OP_REGISTER 1
#define OP_QUERY 3
#define EV_SUSPEND 1

struct privcmd_hypercall {
	uint64_t op;
	uint64_t arg[5];
};

#define IOCTL_PRIVCMD_HYPERCALL \
	_IOC(_IOC_NONE, 'P', 0, sizeof(struct privcmd_hypercall))

static const char *errname(int e)
{
	switch (e) {
	case 0: return "OK";
	case EPERM: return "EPERM";
	case EACCES: return "EACCES";
	case ENOSYS: return "ENOSYS";
	case EINVAL: return "EINVAL";
	case ESRCH: return "ESRCH";
	case EFAULT: return "EFAULT";
	default: return "OTHER";
	}
}

/* One domctl on dom0 with sub-op op; returns 0 or the positive errno. */
static int suspend_notify(int fd, uint8_t *buf, uint32_t op)
{
	struct privcmd_hypercall call = {
		.op = HYPERVISOR_domctl,
		.arg = { (uint64_t)(uintptr_t)buf },
	};
	uint32_t v;

	memset(buf, 0, DOMCTL_SIZE);
	v = DOMCTL_SUSPEND_NOTIFY;
	memcpy(buf + 0, &v, 4);
	v = DOMCTL_INTERFACE_VERSION;
	memcpy(buf + 4, &v, 4);
	/* domain = 0 (dom0) at offset 8 */
	memcpy(buf + 16, &op, 4);
	v = EV_SUSPEND;
	memcpy(buf + 20, &v, 4);

	return ioctl(fd, IOCTL_PRIVCMD_HYPERCALL, &call) < 0 ? errno : 0;
}

int main(void)
{
	/* Page-aligned and locked: privcmd passes the address to Xen as is. */
	static uint8_t buf[4096] __attribute__((aligned(4096)));
	int fd = open("/proc/xen/privcmd", O_RDWR);
	int reg, query;

	if (fd < 0) {
		printf("FASTSUSPEND-GUEST-HVPROBE no-privcmd=%s\n", errname(errno));
		return 1;
	}
	if (mlock(buf, sizeof(buf)) < 0) {
		printf("FASTSUSPEND-GUEST-HVPROBE mlock=%s\n", errname(errno));
		return 1;
	}
	reg = suspend_notify(fd, buf, OP_REGISTER);
	query = suspend_notify(fd, buf, OP_QUERY);
	printf("FASTSUSPEND-GUEST-HVPROBE register=%s query=%s\n",
	       errname(reg), errname(query));
	close(fd);
	return 0;
}
