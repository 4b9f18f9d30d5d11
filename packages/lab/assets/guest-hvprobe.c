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
 *
 * With fastsuspend.hvprobe_dm=T on the kernel command line, the lab test
 * has made this guest the device model of domain T (XEN_DOMCTL_set_target,
 * with the guest paused before its init ran).  The probe then also tries,
 * on T: a REGISTER with F_NO_DOM_EXC, plain REGISTERs until one fails (at
 * most 9 in all: could it take all of T's 8 slots?) and a QUERY, and prints
 *
 *   FASTSUSPEND-GUEST-HVPROBE-DM target=T register_no_dom_exc=EPERM
 *     register=EPERM filled=0 then=EPERM query=EPERM
 *
 * (one line).  The series refuses all of it to a device model: only the
 * control domain may register.  It leaves whatever it registered in place;
 * the test destroys this guest, which must drop those registrations.
 *
 * Every domctl carries XEN_DOMCTL_INTERFACE_VERSION, which differs between
 * the lab's stacks: 0x15 on Xen 4.17 (bookworm), 0x17 on 4.20 (trixie).  Xen
 * answers any other value with EACCES before it looks at the operation, so
 * a wrong one would hide the refusal this probe is for.  Xen tells a guest
 * its version but not this one, and the guest image is the same whatever
 * hypervisor boots under it, so the lab test names it on the kernel command
 * line (fastsuspend.domctl_version=0x17, the stack's value in
 * packages/lab/src/stack-facts.ts); without that the probe passes 4.17's.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#define HYPERVISOR_domctl 36
#define DOMCTL_SIZE 144
#define DOMCTL_SUSPEND_NOTIFY 0x4653
#define DEFAULT_DOMCTL_INTERFACE_VERSION 0x15
#define OP_REGISTER 1
#define OP_QUERY 3
#define EV_SUSPEND 1
#define F_NO_DOM_EXC 1
#define MAX_REGS 8

struct privcmd_hypercall {
	uint64_t op;
	uint64_t arg[5];
};

#define IOCTL_PRIVCMD_HYPERCALL \
	_IOC(_IOC_NONE, 'P', 0, sizeof(struct privcmd_hypercall))

/* What every domctl passes: see the top of this file. */
static uint32_t domctl_interface_version = DEFAULT_DOMCTL_INTERFACE_VERSION;

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
	case EBUSY: return "EBUSY";
	default: return "OTHER";
	}
}

/* One domctl on domain dom with sub-op op; returns 0 or the positive errno. */
static int suspend_notify_on(int fd, uint8_t *buf, uint16_t dom, uint32_t op,
			     uint32_t flags)
{
	struct privcmd_hypercall call = {
		.op = HYPERVISOR_domctl,
		.arg = { (uint64_t)(uintptr_t)buf },
	};
	uint32_t v;

	memset(buf, 0, DOMCTL_SIZE);
	v = DOMCTL_SUSPEND_NOTIFY;
	memcpy(buf + 0, &v, 4);
	v = domctl_interface_version;
	memcpy(buf + 4, &v, 4);
	memcpy(buf + 8, &dom, 2);
	memcpy(buf + 16, &op, 4);
	v = EV_SUSPEND;
	memcpy(buf + 20, &v, 4);
	memcpy(buf + 24, &flags, 4);

	return ioctl(fd, IOCTL_PRIVCMD_HYPERCALL, &call) < 0 ? errno : 0;
}

static int suspend_notify(int fd, uint8_t *buf, uint32_t op)
{
	return suspend_notify_on(fd, buf, 0, op, 0);
}

/* The text after key (e.g. "fastsuspend.hvprobe_dm=") on the kernel command line, or NULL. */
static const char *cmdline_value(const char *key)
{
	static char line[4096];
	FILE *f = fopen("/proc/cmdline", "r");
	char *p;

	if (!f)
		return NULL;
	p = fgets(line, sizeof(line), f);
	fclose(f);
	if (!p || !(p = strstr(line, key)))
		return NULL;
	return p + strlen(key);
}

/* The domid after fastsuspend.hvprobe_dm= on the kernel command line, or -1. */
static long dm_target(void)
{
	const char *v = cmdline_value("fastsuspend.hvprobe_dm=");

	return v ? strtol(v, NULL, 10) : -1;
}

/*
 * fastsuspend.domctl_version=V from the kernel command line into
 * domctl_interface_version (C notation: 0x17 or 23); 0 if it is absent or
 * valid, -1 if it does not parse.
 */
static int read_domctl_version(void)
{
	const char *v = cmdline_value("fastsuspend.domctl_version=");
	char *end;
	unsigned long n;

	if (!v)
		return 0;
	n = strtoul(v, &end, 0);
	if (end == v || (*end && *end != ' ' && *end != '\n') || !n || n > UINT32_MAX)
		return -1;
	domctl_interface_version = (uint32_t)n;
	return 0;
}

/* As the device model of target: what may it do to target's registrations? */
static void dm_probe(int fd, uint8_t *buf, uint16_t target)
{
	int nodomexc, reg, then = 0, query, filled = 0, i;

	nodomexc = suspend_notify_on(fd, buf, target, OP_REGISTER, F_NO_DOM_EXC);
	if (!nodomexc)
		filled++;
	reg = suspend_notify_on(fd, buf, target, OP_REGISTER, 0);
	if (!reg) {
		filled++;
		for (i = filled; i <= MAX_REGS && !then; i++) {
			then = suspend_notify_on(fd, buf, target, OP_REGISTER, 0);
			if (!then)
				filled++;
		}
	} else
		then = reg;
	query = suspend_notify_on(fd, buf, target, OP_QUERY, 0);
	printf("FASTSUSPEND-GUEST-HVPROBE-DM target=%u register_no_dom_exc=%s "
	       "register=%s filled=%d then=%s query=%s\n", target,
	       errname(nodomexc), errname(reg), filled, errname(then),
	       errname(query));
}

int main(void)
{
	/* Page-aligned and locked: privcmd passes the address to Xen as is. */
	static uint8_t buf[4096] __attribute__((aligned(4096)));
	int fd = open("/proc/xen/privcmd", O_RDWR);
	int reg, query;
	long dm = dm_target();

	if (read_domctl_version() < 0) {
		const char *v = cmdline_value("fastsuspend.domctl_version=");

		printf("FASTSUSPEND-GUEST-HVPROBE bad-domctl-version=%.*s\n",
		       (int)strcspn(v, " \n"), v);
		return 1;
	}
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
	if (dm >= 0)
		dm_probe(fd, buf, (uint16_t)dm);
	close(fd);
	return 0;
}
