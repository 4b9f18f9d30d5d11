// XenControl: a libxenctrl interface (xc_interface_open) plus a lazily opened libxencall handle for
// raw domctls. libxenctrl handles are thread-safe unless opened NON_REENTRANT, which is what lets
// resumeAsync run xc_domain_resume on a worker thread while the JS thread keeps using the handle.
#pragma once

#include <napi.h>

#include <atomic>

struct xc_interface_core;
struct xencall_handle;

namespace fsxen {

extern std::atomic<int> g_openControlHandles;

class XenControl : public Napi::ObjectWrap<XenControl> {
 public:
  static Napi::Function Init(Napi::Env env);
  explicit XenControl(const Napi::CallbackInfo& info);
  ~XenControl() override;

  // Called by the resume worker when it completes (on the JS thread).
  void AsyncDone();

 private:
  Napi::Value GetInfo(const Napi::CallbackInfo& info);
  Napi::Value ListDomains(const Napi::CallbackInfo& info);
  Napi::Value Pause(const Napi::CallbackInfo& info);
  Napi::Value Unpause(const Napi::CallbackInfo& info);
  Napi::Value Shutdown(const Napi::CallbackInfo& info);
  Napi::Value Resume(const Napi::CallbackInfo& info);
  Napi::Value ResumeAsync(const Napi::CallbackInfo& info);
  Napi::Value AllocUnbound(const Napi::CallbackInfo& info);
  Napi::Value SubscribeForSuspend(const Napi::CallbackInfo& info);
  Napi::Value HvmCallbackIrq(const Napi::CallbackInfo& info);
  Napi::Value Domctl(const Napi::CallbackInfo& info);
  Napi::Value IsClosed(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);

  void CheckOpen(Napi::Env env, const char* call) const;
  void DoClose();

  xc_interface_core* xch_ = nullptr;
  xencall_handle* xcall_ = nullptr;
  bool closing_ = false;  // close() requested while async work was in flight
  int inflight_ = 0;
};

}  // namespace fsxen
