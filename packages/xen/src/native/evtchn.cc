#include "evtchn.h"

#include <poll.h>

#include <cerrno>
#include <string>
#include <vector>

#include "errors.h"
#include "xen_c.h"

namespace fsxen {

std::atomic<int> g_openEvtchnHandles{0};
std::atomic<int> g_boundPorts{0};

namespace {
// Ports handed to JS per readiness wakeup before yielding back to the loop (the poll is
// level-triggered, so anything left fires again on the next iteration).
constexpr int kMaxBatch = 64;
}  // namespace

Napi::Function EvtchnHandle::Init(Napi::Env env) {
  return DefineClass(env, "EvtchnHandle",
                     {
                         InstanceMethod<&EvtchnHandle::Fd>("fd"),
                         InstanceMethod<&EvtchnHandle::BindInterdomain>("bindInterdomain"),
                         InstanceMethod<&EvtchnHandle::BindUnboundPort>("bindUnboundPort"),
                         InstanceMethod<&EvtchnHandle::BindVirq>("bindVirq"),
                         InstanceMethod<&EvtchnHandle::Notify>("notify"),
                         InstanceMethod<&EvtchnHandle::Unbind>("unbind"),
                         InstanceMethod<&EvtchnHandle::Unmask>("unmask"),
                         InstanceMethod<&EvtchnHandle::Pending>("pending"),
                         InstanceMethod<&EvtchnHandle::StartPolling>("startPolling"),
                         InstanceMethod<&EvtchnHandle::StopPolling>("stopPolling"),
                         InstanceMethod<&EvtchnHandle::Ref>("ref"),
                         InstanceMethod<&EvtchnHandle::Unref>("unref"),
                         InstanceMethod<&EvtchnHandle::BoundPorts>("boundPorts"),
                         InstanceMethod<&EvtchnHandle::IsClosed>("isClosed"),
                         InstanceMethod<&EvtchnHandle::Close>("close"),
                     });
}

EvtchnHandle::EvtchnHandle(const Napi::CallbackInfo& info) : Napi::ObjectWrap<EvtchnHandle>(info) {
  xce_ = xenevtchn_open(CaptureLogger(), 0);
  if (xce_ == nullptr) {
    const int err = errno;  // first: the arguments below are built in unspecified order
    ThrowXenError(info.Env(), "xenevtchn_open", "", err);
  }
  fd_ = xenevtchn_fd(xce_);
  ++g_openEvtchnHandles;
}

EvtchnHandle::~EvtchnHandle() {
  // Finalizer: polling holds a strong reference, so we are never polling here.
  DoClose();
}

void EvtchnHandle::CheckOpen(Napi::Env env, const char* call) const {
  if (xce_ == nullptr) ThrowXenError(env, call, "handle closed", EBADF);
}

Napi::Value EvtchnHandle::Fd(const Napi::CallbackInfo& info) {
  CheckOpen(info.Env(), "xenevtchn_fd");
  return Napi::Number::New(info.Env(), fd_);
}

Napi::Value EvtchnHandle::BindInterdomain(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CheckOpen(env, "xenevtchn_bind_interdomain");
  uint32_t domid = ArgU32(info, 0, "domid", 0xffff);
  uint32_t remote = ArgU32(info, 1, "remotePort");
  int port = xenevtchn_bind_interdomain(xce_, domid, remote);
  if (port < 0) {
    const int err = errno;  // first: the arguments below are built in unspecified order
    ThrowXenError(env, "xenevtchn_bind_interdomain",
                  "dom=" + std::to_string(domid) + ", remote_port=" + std::to_string(remote), err);
  }
  if (ports_.insert(static_cast<uint32_t>(port)).second) ++g_boundPorts;
  return Napi::Number::New(env, port);
}

Napi::Value EvtchnHandle::BindUnboundPort(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CheckOpen(env, "xenevtchn_bind_unbound_port");
  uint32_t domid = ArgU32(info, 0, "remoteDomid", 0xffff);
  int port = xenevtchn_bind_unbound_port(xce_, domid);
  if (port < 0) {
    const int err = errno;  // first: the arguments below are built in unspecified order
    ThrowXenError(env, "xenevtchn_bind_unbound_port", "remote_dom=" + std::to_string(domid), err);
  }
  if (ports_.insert(static_cast<uint32_t>(port)).second) ++g_boundPorts;
  return Napi::Number::New(env, port);
}

Napi::Value EvtchnHandle::BindVirq(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CheckOpen(env, "xenevtchn_bind_virq");
  uint32_t virq = ArgU32(info, 0, "virq");
  int port = xenevtchn_bind_virq(xce_, virq);
  if (port < 0) {
    const int err = errno;  // first: the arguments below are built in unspecified order
    ThrowXenError(env, "xenevtchn_bind_virq", "virq=" + std::to_string(virq), err);
  }
  if (ports_.insert(static_cast<uint32_t>(port)).second) ++g_boundPorts;
  return Napi::Number::New(env, port);
}

Napi::Value EvtchnHandle::Notify(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CheckOpen(env, "xenevtchn_notify");
  uint32_t port = ArgU32(info, 0, "port");
  if (xenevtchn_notify(xce_, port) < 0) {
    const int err = errno;  // first: the arguments below are built in unspecified order
    ThrowXenError(env, "xenevtchn_notify", "port=" + std::to_string(port), err);
  }
  return env.Undefined();
}

Napi::Value EvtchnHandle::Unbind(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CheckOpen(env, "xenevtchn_unbind");
  uint32_t port = ArgU32(info, 0, "port");
  if (xenevtchn_unbind(xce_, port) < 0) {
    const int err = errno;  // first: the arguments below are built in unspecified order
    ThrowXenError(env, "xenevtchn_unbind", "port=" + std::to_string(port), err);
  }
  if (ports_.erase(port) > 0) --g_boundPorts;
  return env.Undefined();
}

Napi::Value EvtchnHandle::Unmask(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CheckOpen(env, "xenevtchn_unmask");
  uint32_t port = ArgU32(info, 0, "port");
  if (xenevtchn_unmask(xce_, port) < 0) {
    const int err = errno;  // first: the arguments below are built in unspecified order
    ThrowXenError(env, "xenevtchn_unmask", "port=" + std::to_string(port), err);
  }
  return env.Undefined();
}

bool EvtchnHandle::Readable() {
  for (;;) {
    struct pollfd p = {fd_, POLLIN, 0};
    int r = ::poll(&p, 1, 0);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return false;
    return r > 0 && (p.revents & POLLIN) != 0;
  }
}

// Non-blocking: xenevtchn.h says the fd cannot be trusted in O_NONBLOCK mode, so poll() it first
// and only then read one port. Returns -1 when nothing is pending. The port stays masked.
Napi::Value EvtchnHandle::Pending(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CheckOpen(env, "xenevtchn_pending");
  if (!Readable()) return Napi::Number::New(env, -1);
  int port = xenevtchn_pending(xce_);
  if (port < 0) {
    const int err = errno;  // first: the arguments below are built in unspecified order
    if (err == EAGAIN || err == EINTR) return Napi::Number::New(env, -1);
    ThrowXenError(env, "xenevtchn_pending", "", err);
  }
  return Napi::Number::New(env, port);
}

Napi::Value EvtchnHandle::StartPolling(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CheckOpen(env, "uv_poll_start");
  if (info.Length() < 1 || !info[0].IsFunction()) {
    throw Napi::TypeError::New(env, "callback must be a function");
  }
  if (polling_) throw Napi::Error::New(env, "EvtchnHandle is already polling");
  if (delivering_) throw Napi::Error::New(env, "cannot restart polling from its own callback");
  if (poll_ == nullptr) {
    uv_loop_t* loop = nullptr;
    if (napi_get_uv_event_loop(env, &loop) != napi_ok) throw Napi::Error::New(env, "no uv loop");
    poll_ = new uv_poll_t();
    int rc = uv_poll_init(loop, poll_, fd_);
    if (rc != 0) {
      delete poll_;
      poll_ = nullptr;
      ThrowXenError(env, "uv_poll_init", "fd=" + std::to_string(fd_), -rc);
    }
    poll_->data = this;
    if (!loopRef_) uv_unref(reinterpret_cast<uv_handle_t*>(poll_));
  }
  int rc = uv_poll_start(poll_, UV_READABLE, &EvtchnHandle::OnPoll);
  if (rc != 0) ThrowXenError(env, "uv_poll_start", "fd=" + std::to_string(fd_), -rc);
  callback_ = Napi::Persistent(info[0].As<Napi::Function>());
  asyncContext_ = std::make_unique<Napi::AsyncContext>(env, "XenEvtchnPoll", Value());
  polling_ = true;
  ObjectWrap::Ref();  // keep the wrapper (and the callback) alive while events can arrive
  return env.Undefined();
}

void EvtchnHandle::StopPoll() {
  if (!polling_) return;
  polling_ = false;
  uv_poll_stop(poll_);  // removes the fd from epoll synchronously
  if (!delivering_) {     // else Deliver() drops them once the JS callback has returned
    callback_.Reset();
    asyncContext_.reset();
  }
  ObjectWrap::Unref();
}

Napi::Value EvtchnHandle::StopPolling(const Napi::CallbackInfo& info) {
  StopPoll();
  return info.Env().Undefined();
}

Napi::Value EvtchnHandle::Ref(const Napi::CallbackInfo& info) {
  loopRef_ = true;
  if (poll_ != nullptr) uv_ref(reinterpret_cast<uv_handle_t*>(poll_));
  return info.Env().Undefined();
}

Napi::Value EvtchnHandle::Unref(const Napi::CallbackInfo& info) {
  loopRef_ = false;
  if (poll_ != nullptr) uv_unref(reinterpret_cast<uv_handle_t*>(poll_));
  return info.Env().Undefined();
}

Napi::Value EvtchnHandle::BoundPorts(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Array out = Napi::Array::New(env, ports_.size());
  uint32_t i = 0;
  for (uint32_t p : ports_) out.Set(i++, Napi::Number::New(env, p));
  return out;
}

Napi::Value EvtchnHandle::IsClosed(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), xce_ == nullptr);
}

void EvtchnHandle::DoClose() {
  if (polling_) StopPoll();
  if (poll_ != nullptr) {
    uv_close(reinterpret_cast<uv_handle_t*>(poll_),
             [](uv_handle_t* h) { delete reinterpret_cast<uv_poll_t*>(h); });
    poll_ = nullptr;
  }
  if (xce_ != nullptr) {
    xenevtchn_close(xce_);  // the driver unbinds every port still bound through this handle
    xce_ = nullptr;
    fd_ = -1;
    g_boundPorts -= static_cast<int>(ports_.size());
    ports_.clear();
    --g_openEvtchnHandles;
  }
}

Napi::Value EvtchnHandle::Close(const Napi::CallbackInfo& info) {
  DoClose();
  return info.Env().Undefined();
}

void EvtchnHandle::Deliver(Napi::Env env, Napi::Value err, int port) {
  delivering_ = true;
  try {
    callback_.MakeCallback(Value(), {err, Napi::Number::New(env, port)}, *asyncContext_);
  } catch (const Napi::Error& e) {
    // A listener threw: report it as an uncaught exception, as Node does for its own handles.
    napi_fatal_exception(env, e.Value());
  }
  delivering_ = false;
  if (!polling_) {
    callback_.Reset();
    asyncContext_.reset();
  }
}

void EvtchnHandle::OnPoll(uv_poll_t* handle, int status, int /*events*/) {
  auto* self = static_cast<EvtchnHandle*>(handle->data);
  if (!self->polling_) return;
  Napi::Env env = self->Env();
  Napi::HandleScope scope(env);
  Napi::Object keepAlive = self->Value();  // JS may stop/close us from inside the callback
  (void)keepAlive;

  if (status < 0) {
    Napi::Value err = MakeXenError(env, "uv_poll", "fd=" + std::to_string(self->fd_), -status);
    self->Deliver(env, err, -1);
    self->StopPoll();
    return;
  }
  // Drain: poll() before each xenevtchn_pending (it may block otherwise), at most kMaxBatch.
  for (int i = 0; i < kMaxBatch && self->polling_ && self->xce_ != nullptr; ++i) {
    if (!self->Readable()) break;
    int port = xenevtchn_pending(self->xce_);
    if (port < 0) {
      const int e = errno;
      if (e == EAGAIN || e == EINTR) break;
      self->Deliver(env, MakeXenError(env, "xenevtchn_pending", "", e), -1);
      self->StopPoll();
      break;
    }
    self->Deliver(env, env.Null(), port);
  }
}

}  // namespace fsxen
