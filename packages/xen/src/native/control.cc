#include "control.h"


#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "errors.h"
#include "xen_c.h"

namespace fsxen {

std::atomic<int> g_openControlHandles{0};

namespace {

constexpr uint32_t kMaxDomid = DOMID_FIRST_RESERVED - 1;

const char* ShutdownName(unsigned code) {
  switch (code) {
    case SHUTDOWN_poweroff: return "poweroff";
    case SHUTDOWN_reboot: return "reboot";
    case SHUTDOWN_suspend: return "suspend";
    case SHUTDOWN_crash: return "crash";
    case SHUTDOWN_watchdog: return "watchdog";
#ifdef SHUTDOWN_soft_reset
    case SHUTDOWN_soft_reset: return "soft_reset";
#endif
    default: return nullptr;
  }
}

Napi::Object InfoToObject(Napi::Env env, const xc_domaininfo_t& d) {
  Napi::Object o = Napi::Object::New(env);
  const uint32_t f = d.flags;
  const bool shutdown = (f & XEN_DOMINF_shutdown) != 0;
  const unsigned reason = (f >> XEN_DOMINF_shutdownshift) & XEN_DOMINF_shutdownmask;
  o.Set("domid", Napi::Number::New(env, d.domain));
  o.Set("shutdown", Napi::Boolean::New(env, shutdown));
  if (shutdown) {
    o.Set("shutdownReason", Napi::Number::New(env, reason));
    const char* name = ShutdownName(reason);
    o.Set("shutdownReasonName", name != nullptr ? Napi::Value(Napi::String::New(env, name))
                                                : Napi::Value(env.Null()));
  } else {
    o.Set("shutdownReason", env.Null());
    o.Set("shutdownReasonName", env.Null());
  }
  o.Set("paused", Napi::Boolean::New(env, (f & XEN_DOMINF_paused) != 0));
  o.Set("dying", Napi::Boolean::New(env, (f & XEN_DOMINF_dying) != 0));
  o.Set("running", Napi::Boolean::New(env, (f & XEN_DOMINF_running) != 0));
  o.Set("blocked", Napi::Boolean::New(env, (f & XEN_DOMINF_blocked) != 0));
  o.Set("hvm", Napi::Boolean::New(env, (f & XEN_DOMINF_hvm_guest) != 0));
  o.Set("xenstoreDomain", Napi::Boolean::New(env, (f & XEN_DOMINF_xs_domain) != 0));
  o.Set("maxVcpuId", Napi::Number::New(env, d.max_vcpu_id == XEN_INVALID_MAX_VCPU_ID
                                                ? -1.0
                                                : static_cast<double>(d.max_vcpu_id)));
  o.Set("onlineVcpus", Napi::Number::New(env, d.nr_online_vcpus));
  o.Set("nrPages", Napi::Number::New(env, static_cast<double>(d.tot_pages)));
  o.Set("maxPages", Napi::Number::New(env, static_cast<double>(d.max_pages)));
  o.Set("cpuTimeNs", Napi::Number::New(env, static_cast<double>(d.cpu_time)));
  o.Set("ssidref", Napi::Number::New(env, d.ssidref));
  // The domain handle, formatted as libxl formats it (LIBXL_UUID_FMT): part of libxl's file names.
  char uuid[37];
  const uint8_t* h = d.handle;
  snprintf(uuid, sizeof(uuid),
           "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
           h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7],
           h[8], h[9], h[10], h[11], h[12], h[13], h[14], h[15]);
  o.Set("uuid", Napi::String::New(env, uuid));
  return o;
}

std::string Dom(uint32_t domid) { return "dom=" + std::to_string(domid); }

class ResumeWorker : public Napi::AsyncWorker {
 public:
  ResumeWorker(Napi::Env env, XenControl* owner, Napi::Object ownerObj, xc_interface* xch,
               uint32_t domid, bool fast)
      : Napi::AsyncWorker(env, "XenResume"),
        deferred_(Napi::Promise::Deferred::New(env)),
        owner_(owner),
        ownerRef_(Napi::Persistent(ownerObj)),
        xch_(xch),
        domid_(domid),
        fast_(fast) {}

  Napi::Promise Promise() { return deferred_.Promise(); }

  void Execute() override {
    ClearLastLog();
    rc_ = xc_domain_resume(xch_, domid_, fast_ ? 1 : 0);
    err_ = errno;
    detail_ = TakeLastLog();
  }

  void OnOK() override {
    Napi::Env env = Env();
    Napi::HandleScope scope(env);
    owner_->AsyncDone();
    if (rc_ == 0) {
      deferred_.Resolve(env.Undefined());
    } else {
      deferred_.Reject(MakeXenError(env, "xc_domain_resume",
                                    Dom(domid_) + ", fast=" + (fast_ ? "1" : "0"), err_, detail_));
    }
  }

 private:
  Napi::Promise::Deferred deferred_;
  XenControl* owner_;
  Napi::ObjectReference ownerRef_;  // keeps the XenControl (and its xc handle) alive
  xc_interface* xch_;
  uint32_t domid_;
  bool fast_;
  int rc_ = 0;
  int err_ = 0;
  std::string detail_;
};

}  // namespace

Napi::Function XenControl::Init(Napi::Env env) {
  return DefineClass(env, "XenControl",
                     {
                         InstanceMethod<&XenControl::GetInfo>("getInfo"),
                         InstanceMethod<&XenControl::ListDomains>("listDomains"),
                         InstanceMethod<&XenControl::Pause>("pause"),
                         InstanceMethod<&XenControl::Unpause>("unpause"),
                         InstanceMethod<&XenControl::Shutdown>("shutdown"),
                         InstanceMethod<&XenControl::Resume>("resume"),
                         InstanceMethod<&XenControl::ResumeAsync>("resumeAsync"),
                         InstanceMethod<&XenControl::AllocUnbound>("allocUnbound"),
                         InstanceMethod<&XenControl::SubscribeForSuspend>("subscribeForSuspend"),
                         InstanceMethod<&XenControl::HvmCallbackIrq>("hvmCallbackIrq"),
                         InstanceMethod<&XenControl::Domctl>("domctl"),
                         InstanceMethod<&XenControl::IsClosed>("isClosed"),
                         InstanceMethod<&XenControl::Close>("close"),
                     });
}

XenControl::XenControl(const Napi::CallbackInfo& info) : Napi::ObjectWrap<XenControl>(info) {
  ClearLastLog();
  xch_ = xc_interface_open(CaptureLogger(), CaptureLogger(), 0);
  if (xch_ == nullptr) {
    const int err = errno;  // first: the arguments below are built in unspecified order
    ThrowXenError(info.Env(), "xc_interface_open", "", err, TakeLastLog());
  }
  ++g_openControlHandles;
}

XenControl::~XenControl() { DoClose(); }

void XenControl::CheckOpen(Napi::Env env, const char* call) const {
  if (xch_ == nullptr || closing_) ThrowXenError(env, call, "handle closed", EBADF);
}

void XenControl::DoClose() {
  if (xcall_ != nullptr) {
    xencall_close(xcall_);
    xcall_ = nullptr;
  }
  if (xch_ != nullptr) {
    xc_interface_close(xch_);
    xch_ = nullptr;
    --g_openControlHandles;
  }
}

void XenControl::AsyncDone() {
  if (--inflight_ == 0 && closing_) DoClose();
}

Napi::Value XenControl::GetInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CheckOpen(env, "xc_domain_getinfolist");
  uint32_t domid = ArgU32(info, 0, "domid", kMaxDomid);
  xc_domaininfo_t d;
  std::memset(&d, 0, sizeof d);
  ClearLastLog();
  // 4.17 has no xc_domain_getinfo_single: getinfolist returns the first domain >= domid,
  // so a different domid back means the asked one does not exist.
  int n = xc_domain_getinfolist(xch_, domid, 1, &d);
  if (n < 0) {
    const int err = errno;  // first: the arguments below are built in unspecified order
    ThrowXenError(env, "xc_domain_getinfo", Dom(domid), err, TakeLastLog());
  }
  if (n == 0 || d.domain != domid) ThrowXenError(env, "xc_domain_getinfo", Dom(domid), ESRCH);
  return InfoToObject(env, d);
}

Napi::Value XenControl::ListDomains(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CheckOpen(env, "xc_domain_getinfolist");
  constexpr unsigned kBatch = 256;
  std::vector<xc_domaininfo_t> buf(kBatch);
  Napi::Array out = Napi::Array::New(env);
  uint32_t next = 0;
  uint32_t idx = 0;
  for (;;) {
    ClearLastLog();
    int n = xc_domain_getinfolist(xch_, next, kBatch, buf.data());
    if (n < 0) {
      const int err = errno;  // first: the arguments below are built in unspecified order
      ThrowXenError(env, "xc_domain_getinfolist", "first=" + std::to_string(next), err,
                    TakeLastLog());
    }
    for (int i = 0; i < n; ++i) out.Set(idx++, InfoToObject(env, buf[static_cast<size_t>(i)]));
    if (n < static_cast<int>(kBatch)) break;
    next = static_cast<uint32_t>(buf[kBatch - 1].domain) + 1;
    if (next > kMaxDomid) break;
  }
  return out;
}

Napi::Value XenControl::Pause(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CheckOpen(env, "xc_domain_pause");
  uint32_t domid = ArgU32(info, 0, "domid", kMaxDomid);
  ClearLastLog();
  if (xc_domain_pause(xch_, domid) < 0) {
    const int err = errno;  // first: the arguments below are built in unspecified order
    ThrowXenError(env, "xc_domain_pause", Dom(domid), err, TakeLastLog());
  }
  return env.Undefined();
}

Napi::Value XenControl::Unpause(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CheckOpen(env, "xc_domain_unpause");
  uint32_t domid = ArgU32(info, 0, "domid", kMaxDomid);
  ClearLastLog();
  if (xc_domain_unpause(xch_, domid) < 0) {
    const int err = errno;  // first: the arguments below are built in unspecified order
    ThrowXenError(env, "xc_domain_unpause", Dom(domid), err, TakeLastLog());
  }
  return env.Undefined();
}

Napi::Value XenControl::Shutdown(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CheckOpen(env, "xc_domain_shutdown");
  uint32_t domid = ArgU32(info, 0, "domid", kMaxDomid);
  uint32_t reason = ArgU32(info, 1, "reason", XEN_DOMINF_shutdownmask);
  ClearLastLog();
  if (xc_domain_shutdown(xch_, domid, static_cast<int>(reason)) < 0) {
    const int err = errno;  // first: the arguments below are built in unspecified order
    ThrowXenError(env, "xc_domain_shutdown", Dom(domid) + ", reason=" + std::to_string(reason),
                  err, TakeLastLog());
  }
  return env.Undefined();
}

Napi::Value XenControl::Resume(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CheckOpen(env, "xc_domain_resume");
  uint32_t domid = ArgU32(info, 0, "domid", kMaxDomid);
  bool fast = ArgBool(info, 1, "fast");
  ClearLastLog();
  if (xc_domain_resume(xch_, domid, fast ? 1 : 0) < 0) {
    const int err = errno;  // first: the arguments below are built in unspecified order
    ThrowXenError(env, "xc_domain_resume", Dom(domid) + ", fast=" + (fast ? "1" : "0"), err,
                  TakeLastLog());
  }
  return env.Undefined();
}

Napi::Value XenControl::ResumeAsync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CheckOpen(env, "xc_domain_resume");
  uint32_t domid = ArgU32(info, 0, "domid", kMaxDomid);
  bool fast = ArgBool(info, 1, "fast");
  auto* worker = new ResumeWorker(env, this, Value(), xch_, domid, fast);
  Napi::Promise promise = worker->Promise();
  ++inflight_;
  worker->Queue();
  return promise;
}

Napi::Value XenControl::AllocUnbound(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CheckOpen(env, "xc_evtchn_alloc_unbound");
  uint32_t domid = ArgU32(info, 0, "domid", kMaxDomid);
  uint32_t remote = ArgU32(info, 1, "remoteDomid", kMaxDomid);
  ClearLastLog();
  int port = xc_evtchn_alloc_unbound(xch_, domid, remote);
  if (port < 0) {
    const int err = errno;  // first: the arguments below are built in unspecified order
    ThrowXenError(env, "xc_evtchn_alloc_unbound",
                  Dom(domid) + ", remote_dom=" + std::to_string(remote), err, TakeLastLog());
  }
  return Napi::Number::New(env, port);
}

Napi::Value XenControl::SubscribeForSuspend(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CheckOpen(env, "xc_domain_subscribe_for_suspend");
  uint32_t domid = ArgU32(info, 0, "domid", kMaxDomid);
  uint32_t port = ArgU32(info, 1, "port");
  ClearLastLog();
  if (xc_domain_subscribe_for_suspend(xch_, domid, port) < 0) {
    const int err = errno;  // first: the arguments below are built in unspecified order
    ThrowXenError(env, "xc_domain_subscribe_for_suspend",
                  Dom(domid) + ", port=" + std::to_string(port), err, TakeLastLog());
  }
  return env.Undefined();
}

// hvmCallbackIrq(domid) -> bigint: HVM_PARAM_CALLBACK_IRQ, which an HVM guest's PV drivers set
// when they start and Xen keeps across save/restore and migration. libxl
// (libxl__domain_pvcontrol_available, domain_suspend_callback_common) decides by it whether the
// guest can be asked through xenstore's control/shutdown; EINVAL for a PV domain.
Napi::Value XenControl::HvmCallbackIrq(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CheckOpen(env, "xc_hvm_param_get");
  uint32_t domid = ArgU32(info, 0, "domid", kMaxDomid);
  uint64_t value = 0;
  ClearLastLog();
  if (xc_hvm_param_get(xch_, domid, HVM_PARAM_CALLBACK_IRQ, &value) < 0) {
    const int err = errno;  // first: the arguments below are built in unspecified order
    ThrowXenError(env, "xc_hvm_param_get", Dom(domid) + ", param=HVM_PARAM_CALLBACK_IRQ", err,
                  TakeLastLog());
  }
  return Napi::BigInt::New(env, value);
}

// domctl(cmd, domid, payload: Buffer) -> Buffer (the whole union after the call).
// The payload is copied to the start of xen_domctl.u and zero-padded; the hypervisor may write
// back into it (OUT fields), so the full union is returned.
Napi::Value XenControl::Domctl(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CheckOpen(env, "xencall1(domctl)");
  uint32_t cmd = ArgU32(info, 0, "cmd");
  uint32_t domid = ArgU32(info, 1, "domid", 0xffff);
  if (info.Length() < 3 || !info[2].IsBuffer()) throw Napi::TypeError::New(env, "payload must be a Buffer");
  Napi::Buffer<uint8_t> payload = info[2].As<Napi::Buffer<uint8_t>>();
  constexpr size_t kUnion = sizeof(static_cast<struct xen_domctl*>(nullptr)->u);
  const std::string args = "cmd=" + std::to_string(cmd) + ", " + Dom(domid);
  if (payload.Length() > kUnion) {
    throw Napi::RangeError::New(env, "domctl payload is " + std::to_string(payload.Length()) +
                                         " bytes; the union holds " + std::to_string(kUnion));
  }
  if (xcall_ == nullptr) {
    xcall_ = xencall_open(CaptureLogger(), 0);
    if (xcall_ == nullptr) {
      const int err = errno;  // first: the arguments below are built in unspecified order
      ThrowXenError(env, "xencall_open", "", err, TakeLastLog());
    }
  }
  auto* dc = static_cast<struct xen_domctl*>(xencall_alloc_buffer(xcall_, sizeof(struct xen_domctl)));
  if (dc == nullptr) {
    const int err = errno;  // first: the arguments below are built in unspecified order
    ThrowXenError(env, "xencall_alloc_buffer", args, err);
  }
  std::memset(dc, 0, sizeof *dc);
  dc->cmd = cmd;
  dc->interface_version = XEN_DOMCTL_INTERFACE_VERSION;
  dc->domain = static_cast<domid_t>(domid);
  std::memcpy(&dc->u, payload.Data(), payload.Length());
  ClearLastLog();
  int rc = xencall1(xcall_, __HYPERVISOR_domctl, reinterpret_cast<uint64_t>(dc));
  int err = errno;
  if (rc < 0) {
    xencall_free_buffer(xcall_, dc);
    ThrowXenError(env, "xencall1(domctl)", args, err, TakeLastLog());
  }
  Napi::Buffer<uint8_t> out =
      Napi::Buffer<uint8_t>::Copy(env, reinterpret_cast<const uint8_t*>(&dc->u), kUnion);
  xencall_free_buffer(xcall_, dc);
  return out;
}

Napi::Value XenControl::IsClosed(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), xch_ == nullptr || closing_);
}

Napi::Value XenControl::Close(const Napi::CallbackInfo& info) {
  if (inflight_ > 0) {
    closing_ = true;  // the last worker closes the handles
  } else {
    DoClose();
  }
  return info.Env().Undefined();
}

}  // namespace fsxen
