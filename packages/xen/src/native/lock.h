// libxl-compatible per-domain suspend lock: the same file and the same one-byte fcntl write lock
// that libxenguest's xc_suspend_evtchn_init_* take, so whoever holds a domain's suspend channel
// (libxl, xl save, us) excludes the others. Node has no fcntl locks, hence native code.
#pragma once

#include <napi.h>

namespace fsxen {

// suspendLockAcquire(path) -> fd. Throws XenError: EAGAIN when another process holds it
// (F_SETLK answers EAGAIN or EACCES for that; both are reported as EAGAIN).
Napi::Value SuspendLockAcquire(const Napi::CallbackInfo& info);
// toolstackLockAcquire(path) -> fd: libxl's per-domain userdata lock (libxl__lock_file: flock on
// XEN_LIB_DIR/userdata-l.<domid>.<uuid>.domain-userdata-lock), taken without waiting. EAGAIN when
// another process holds it. Released with suspendLockRelease (the same unlink-then-close).
Napi::Value ToolstackLockAcquire(const Napi::CallbackInfo& info);
// suspendLockRelease(fd, path): unlink then close, like libxenguest's unlock.
Napi::Value SuspendLockRelease(const Napi::CallbackInfo& info);

}  // namespace fsxen
