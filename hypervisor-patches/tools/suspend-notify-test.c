/*
 * suspend-notify-test: minimal user of XEN_DOMCTL_suspend_notify (the
 * fastsuspend hypervisor series), issued through libxencall so that no
 * patched libxenctrl is needed.  See ../INTERFACE.md.
 *
 *   suspend-notify-test DOMID [SECONDS [MASK [FLAGS]]]
 *
 * Registers dom0 (the caller) for events of DOMID (default mask SUSPEND|
 * SHUTDOWN|CRASH|DYING), binds the returned port, prints each event with
 * the domain's state for SECONDS (default 30), then queries and
 * unregisters.  Exit status 0 on success.
 *
 * Build (in dom0, with libxen-dev):
 *   cc -O2 -Wall -o suspend-notify-test suspend-notify-test.c \
 *      -lxencall -lxenevtchn -lxenctrl
 */
#define __XEN_TOOLS__ 1
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <xencall.h>
#include <xenctrl.h>
#include <xenevtchn.h>

/* Mirrors xen/include/public/domctl.h of the series (ABI in INTERFACE.md). */
#define XEN_DOMCTL_suspend_notify               0x4653
#define XEN_DOMCTL_INTERFACE_VERSION_4_17       0x00000015
#define XEN_DOMCTL_SUSPEND_NOTIFY_OP_REGISTER    1
#define XEN_DOMCTL_SUSPEND_NOTIFY_OP_UNREGISTER  2
#define XEN_DOMCTL_SUSPEND_NOTIFY_OP_QUERY       3
#define XEN_DOMCTL_SUSPEND_NOTIFY_EV_SUSPEND     (1U << 0)
#define XEN_DOMCTL_SUSPEND_NOTIFY_EV_SHUTDOWN    (1U << 1)
#define XEN_DOMCTL_SUSPEND_NOTIFY_EV_CRASH       (1U << 2)
#define XEN_DOMCTL_SUSPEND_NOTIFY_EV_DYING       (1U << 3)
#define XEN_DOMCTL_SUSPEND_NOTIFY_F_NO_DOM_EXC   (1U << 0)
#define XEN_DOMCTL_SUSPEND_NOTIFY_MAX_REGS       8

struct sn_reg {
    uint16_t registrant;
    uint16_t flags;
    uint32_t port;
    uint32_t mask;
};

struct sn_op {
    uint32_t op;
    uint32_t mask;
    uint32_t flags;
    uint32_t port;
    uint32_t nr;
    uint32_t pad;
    struct sn_reg regs[XEN_DOMCTL_SUSPEND_NOTIFY_MAX_REGS];
    uint64_t cookie;       /* offset 120: OUT of REGISTER, IN of UNREGISTER */
};

struct sn_domctl {
    uint32_t cmd;
    uint32_t interface_version;
    uint16_t domain;
    uint16_t _pad[3];
    union {
        struct sn_op sn;
        uint8_t pad[128];
        uint64_t align;
    } u;
};

_Static_assert(sizeof(struct sn_op) == 128, "sn_op layout");
_Static_assert(__builtin_offsetof(struct sn_op, cookie) == 120, "cookie offset");
_Static_assert(sizeof(struct sn_domctl) == 144, "xen_domctl size");
_Static_assert(__builtin_offsetof(struct sn_domctl, u) == 16, "union offset");

static double now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* Returns 0 or -errno.  On success *op is updated with the OUT fields. */
static int sn_call(xencall_handle *xcall, uint16_t domid, struct sn_op *op)
{
    struct sn_domctl *buf = xencall_alloc_buffer(xcall, sizeof(*buf));
    int rc;

    if ( !buf )
        return -ENOMEM;
    memset(buf, 0, sizeof(*buf));
    buf->cmd = XEN_DOMCTL_suspend_notify;
    buf->interface_version = XEN_DOMCTL_INTERFACE_VERSION_4_17;
    buf->domain = domid;
    buf->u.sn = *op;

    rc = xencall1(xcall, __HYPERVISOR_domctl, (uint64_t)(uintptr_t)buf);
    if ( rc < 0 )
        rc = -errno;
    else
    {
        *op = buf->u.sn;
        rc = 0;
    }
    xencall_free_buffer(xcall, buf);
    return rc;
}

static void show_state(xc_interface *xch, uint32_t domid)
{
    xc_dominfo_t info;

    if ( xc_domain_getinfo(xch, domid, 1, &info) != 1 || info.domid != domid )
    {
        printf("  domain %u: gone\n", domid);
        return;
    }
    printf("  domain %u: dying=%u shutdown=%u reason=%u paused=%u\n",
           domid, info.dying, info.shutdown, info.shutdown_reason,
           info.paused);
}

int main(int argc, char **argv)
{
    uint32_t domid, mask, flags;
    int seconds, rc, fd, i;
    xencall_handle *xcall;
    xenevtchn_handle *xce;
    xc_interface *xch;
    struct sn_op op;
    xenevtchn_port_or_error_t local;
    double t0;

    if ( argc < 2 )
    {
        fprintf(stderr, "usage: %s DOMID [SECONDS [MASK [FLAGS]]]\n", argv[0]);
        return 2;
    }
    domid = strtoul(argv[1], NULL, 0);
    seconds = argc > 2 ? atoi(argv[2]) : 30;
    mask = argc > 3 ? strtoul(argv[3], NULL, 0) : 0xf;
    flags = argc > 4 ? strtoul(argv[4], NULL, 0) : 0;

    xcall = xencall_open(NULL, 0);
    xce = xenevtchn_open(NULL, 0);
    xch = xc_interface_open(NULL, NULL, 0);
    if ( !xcall || !xce || !xch )
    {
        perror("open");
        return 1;
    }

    memset(&op, 0, sizeof(op));
    op.op = XEN_DOMCTL_SUSPEND_NOTIFY_OP_REGISTER;
    op.mask = mask;
    op.flags = flags;
    rc = sn_call(xcall, domid, &op);
    if ( rc )
    {
        fprintf(stderr, "register: %s\n", strerror(-rc));
        return 1;
    }
    printf("registered: Xen-owned port %u in our table, cookie %llu\n",
           op.port, (unsigned long long)op.cookie);

    /* Our own domid is 0 in dom0; DOMID_SELF would work as well. */
    local = xenevtchn_bind_interdomain(xce, 0, op.port);
    if ( local < 0 )
    {
        perror("xenevtchn_bind_interdomain");
        return 1;
    }
    printf("bound: local port %d (expect one event from the bind itself)\n",
           local);

    fd = xenevtchn_fd(xce);
    t0 = now_ms();
    while ( now_ms() - t0 < seconds * 1e3 )
    {
        struct pollfd pfd = { .fd = fd, .events = POLLIN };
        int left = (int)(seconds * 1e3 - (now_ms() - t0));
        xenevtchn_port_or_error_t p;

        rc = poll(&pfd, 1, left > 0 ? left : 0);
        if ( rc <= 0 )
            continue;
        p = xenevtchn_pending(xce);
        if ( p < 0 )
            continue;
        printf("event on port %d at +%.3f ms\n", p, now_ms() - t0);
        show_state(xch, domid);
        xenevtchn_unmask(xce, p);
    }

    memset(&op.regs, 0, sizeof(op.regs));
    {
        struct sn_op q = { .op = XEN_DOMCTL_SUSPEND_NOTIFY_OP_QUERY };

        rc = sn_call(xcall, domid, &q);
        if ( rc )
            printf("query: %s\n", strerror(-rc));
        else
        {
            printf("query: %u registration(s)\n", q.nr);
            for ( i = 0; i < (int)q.nr && i < XEN_DOMCTL_SUSPEND_NOTIFY_MAX_REGS;
                  i++ )
                printf("  [%d] registrant %u port %u mask %#x flags %#x\n", i,
                       q.regs[i].registrant, q.regs[i].port, q.regs[i].mask,
                       q.regs[i].flags);
        }
    }

    /* op still holds the port and cookie that REGISTER returned. */
    op.op = XEN_DOMCTL_SUSPEND_NOTIFY_OP_UNREGISTER;
    rc = sn_call(xcall, domid, &op);
    printf("unregister: %s\n", rc ? strerror(-rc) : "ok");
    xenevtchn_unbind(xce, local);

    xc_interface_close(xch);
    xenevtchn_close(xce);
    xencall_close(xcall);
    return (rc && rc != -ENOENT && rc != -ESRCH) ? 1 : 0;
}
