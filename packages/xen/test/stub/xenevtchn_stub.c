/* Test-only stand-in for libxenevtchn (LD_PRELOAD): a pipe per handle, notify(port) writes the
 * port into its own handle's pipe, so the addon's uv_poll + poll() + pending path can run on a
 * machine without Xen. Not a model of Xen: the fake in src/fake is. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

struct xenevtchn_handle { int rd, wr; int next; };
typedef struct xenevtchn_handle xenevtchn_handle;
struct xentoollog_logger;

xenevtchn_handle *xenevtchn_open(struct xentoollog_logger *l, unsigned int f) {
  (void)l; (void)f;
  int p[2];
  if (pipe(p) < 0) return NULL;
  xenevtchn_handle *h = calloc(1, sizeof *h);
  h->rd = p[0]; h->wr = p[1]; h->next = 1;
  return h;
}
int xenevtchn_close(xenevtchn_handle *h) { if (h) { close(h->rd); close(h->wr); free(h); } return 0; }
int xenevtchn_fd(xenevtchn_handle *h) { return h->rd; }
int xenevtchn_notify(xenevtchn_handle *h, uint32_t port) {
  if (port == 0) { errno = ENOTCONN; return -1; }
  return write(h->wr, &port, sizeof port) == sizeof port ? 0 : -1;
}
int xenevtchn_bind_unbound_port(xenevtchn_handle *h, uint32_t d) { (void)d; return h->next++; }
int xenevtchn_bind_interdomain(xenevtchn_handle *h, uint32_t d, uint32_t r) {
  (void)d; if (r == 0) { errno = EINVAL; return -1; } return h->next++;
}
int xenevtchn_bind_virq(xenevtchn_handle *h, unsigned int v) { (void)v; return h->next++; }
int xenevtchn_unbind(xenevtchn_handle *h, uint32_t p) { (void)h; (void)p; return 0; }
int xenevtchn_unmask(xenevtchn_handle *h, uint32_t p) { (void)h; (void)p; return 0; }
int xenevtchn_pending(xenevtchn_handle *h) {
  uint32_t port;
  return read(h->rd, &port, sizeof port) == sizeof port ? (int)port : -1;
}
