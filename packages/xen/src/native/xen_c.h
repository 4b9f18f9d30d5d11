// The Xen tool headers (4.17) are C and not all of them carry extern "C" guards
// (xenevtchn.h and xentoollog.h do not): include them only through this file.
// xenguest.h pulls in xen/foreign/*.h and hvm/save.h, which need GNU extensions: the addon
// is built with -std=gnu++17 for that reason.
#pragma once

extern "C" {
// xenctrl.h first: it sets __XEN_TOOLS__ and includes xen/xen.h, domctl.h, event_channel.h,
// sched.h in the order the public headers expect.
#include <xenctrl.h>
#include <xenguest.h>
#include <xentoollog.h>
#include <xenevtchn.h>
#include <xencall.h>
}
