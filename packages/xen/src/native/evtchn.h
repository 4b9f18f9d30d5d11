// EvtchnHandle: one libxenevtchn handle (one open of /dev/xen/evtchn) plus a uv_poll_t on its fd.
// All calls happen on the JS thread: xenevtchn.h forbids sharing a handle between threads.
#pragma once

#include <napi.h>
#include <uv.h>

#include <atomic>
#include <memory>
#include <set>

struct xenevtchn_handle;

namespace fsxen {

// Process-wide counters, for leak checks (stats()).
extern std::atomic<int> g_openEvtchnHandles;
extern std::atomic<int> g_boundPorts;

class EvtchnHandle : public Napi::ObjectWrap<EvtchnHandle> {
 public:
  static Napi::Function Init(Napi::Env env);
  explicit EvtchnHandle(const Napi::CallbackInfo& info);
  ~EvtchnHandle() override;

 private:
  Napi::Value Fd(const Napi::CallbackInfo& info);
  Napi::Value BindInterdomain(const Napi::CallbackInfo& info);
  Napi::Value BindUnboundPort(const Napi::CallbackInfo& info);
  Napi::Value BindVirq(const Napi::CallbackInfo& info);
  Napi::Value Notify(const Napi::CallbackInfo& info);
  Napi::Value Unbind(const Napi::CallbackInfo& info);
  Napi::Value Unmask(const Napi::CallbackInfo& info);
  Napi::Value Pending(const Napi::CallbackInfo& info);
  Napi::Value StartPolling(const Napi::CallbackInfo& info);
  Napi::Value StopPolling(const Napi::CallbackInfo& info);
  Napi::Value Ref(const Napi::CallbackInfo& info);
  Napi::Value Unref(const Napi::CallbackInfo& info);
  Napi::Value BoundPorts(const Napi::CallbackInfo& info);
  Napi::Value IsClosed(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);

  void CheckOpen(Napi::Env env, const char* call) const;
  bool Readable();  // poll(fd, POLLIN, 0)
  void StopPoll();
  void DoClose();
  void Deliver(Napi::Env env, Napi::Value err, int port);
  static void OnPoll(uv_poll_t* handle, int status, int events);

  xenevtchn_handle* xce_ = nullptr;
  int fd_ = -1;
  std::set<uint32_t> ports_;  // ports bound through this handle
  uv_poll_t* poll_ = nullptr;  // owned by libuv once initialised; freed in the close callback
  bool polling_ = false;       // JS object is Ref()'d while polling
  bool delivering_ = false;    // inside the JS callback
  bool loopRef_ = true;        // whether the poll keeps the event loop alive
  Napi::FunctionReference callback_;
  std::unique_ptr<Napi::AsyncContext> asyncContext_;
};

}  // namespace fsxen
