// @fastsuspend/xen native addon: module init, constants, stats and the async-hop probe.
#include <napi.h>


#include <cstddef>

#include "control.h"
#include "errors.h"
#include "xen_c.h"
#include "evtchn.h"
#include "lock.h"

namespace fsxen {
namespace {

// setErrorFactory(fn): fn(call, args, errno, code, message, detail) returns the Error to throw.
Napi::Value SetErrorFactory(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsFunction()) throw Napi::TypeError::New(env, "factory must be a function");
  env.GetInstanceData<AddonData>()->errorFactory = Napi::Persistent(info[0].As<Napi::Function>());
  return env.Undefined();
}

Napi::Value ErrnoNameJs(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), ErrnoName(static_cast<int>(ArgU32(info, 0, "errno", 4095))));
}

Napi::Value Stats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  o.Set("evtchnHandles", g_openEvtchnHandles.load());
  o.Set("boundPorts", g_boundPorts.load());
  o.Set("controlHandles", g_openControlHandles.load());
  return o;
}

// Probes for the bench: the cost of a call into the addon, and of an AsyncWorker round trip
// (queue on the libuv pool, run nothing, resolve back on the JS thread).
Napi::Value Noop(const Napi::CallbackInfo& info) { return info.Env().Undefined(); }

class NoopWorker : public Napi::AsyncWorker {
 public:
  explicit NoopWorker(Napi::Env env)
      : Napi::AsyncWorker(env, "XenNoop"), deferred_(Napi::Promise::Deferred::New(env)) {}
  Napi::Promise Promise() { return deferred_.Promise(); }
  void Execute() override {}
  void OnOK() override { deferred_.Resolve(Env().Undefined()); }

 private:
  Napi::Promise::Deferred deferred_;
};

Napi::Value NoopAsync(const Napi::CallbackInfo& info) {
  auto* w = new NoopWorker(info.Env());
  Napi::Promise p = w->Promise();
  w->Queue();
  return p;
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  auto* data = new AddonData();
  env.SetInstanceData<AddonData>(data);

  Napi::Function evtchn = EvtchnHandle::Init(env);
  data->evtchnCtor = Napi::Persistent(evtchn);
  exports.Set("EvtchnHandle", evtchn);
  Napi::Function control = XenControl::Init(env);
  data->controlCtor = Napi::Persistent(control);
  exports.Set("XenControl", control);

  exports.Set("setErrorFactory", Napi::Function::New(env, SetErrorFactory, "setErrorFactory"));
  exports.Set("errnoName", Napi::Function::New(env, ErrnoNameJs, "errnoName"));
  exports.Set("stats", Napi::Function::New(env, Stats, "stats"));
  exports.Set("suspendLockAcquire", Napi::Function::New(env, SuspendLockAcquire, "suspendLockAcquire"));
  exports.Set("toolstackLockAcquire", Napi::Function::New(env, ToolstackLockAcquire, "toolstackLockAcquire"));
  exports.Set("suspendLockRelease", Napi::Function::New(env, SuspendLockRelease, "suspendLockRelease"));
  exports.Set("noop", Napi::Function::New(env, Noop, "noop"));
  exports.Set("noopAsync", Napi::Function::New(env, NoopAsync, "noopAsync"));

  Napi::Object c = Napi::Object::New(env);
  c.Set("domctlInterfaceVersion", Napi::Number::New(env, XEN_DOMCTL_INTERFACE_VERSION));
  c.Set("domctlSize", Napi::Number::New(env, sizeof(struct xen_domctl)));
  c.Set("domctlPayloadOffset", Napi::Number::New(env, offsetof(struct xen_domctl, u)));
  c.Set("domctlPayloadSize", Napi::Number::New(env, sizeof(static_cast<struct xen_domctl*>(nullptr)->u)));
  c.Set("hypervisorDomctl", Napi::Number::New(env, __HYPERVISOR_domctl));
  c.Set("domidFirstReserved", Napi::Number::New(env, DOMID_FIRST_RESERVED));
  c.Set("domidSelf", Napi::Number::New(env, DOMID_SELF));
  c.Set("virqDomExc", Napi::Number::New(env, VIRQ_DOM_EXC));
  c.Set("domctlSubscribe", Napi::Number::New(env, XEN_DOMCTL_subscribe));
  exports.Set("constants", c);
  return exports;
}

}  // namespace
}  // namespace fsxen

static Napi::Object InitXen(Napi::Env env, Napi::Object exports) { return fsxen::Init(env, exports); }

NODE_API_MODULE(xen, InitXen)
