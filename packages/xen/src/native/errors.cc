#include "errors.h"
#include "xen_c.h"


#include <cerrno>
#include <cmath>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace fsxen {

std::string ErrnoName(int errnum) {
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 32))
  const char* name = strerrorname_np(errnum);
  if (name != nullptr) return name;
#endif
  return "E" + std::to_string(errnum);
}

Napi::Value MakeXenError(Napi::Env env, const std::string& call, const std::string& args, int errnum,
                         const std::string& detail) {
  std::string code = ErrnoName(errnum);
  std::string message = call + "(" + args + "): " + code + " (" + std::strerror(errnum) + ")";
  if (!detail.empty()) message += ": " + detail;

  AddonData* data = env.GetInstanceData<AddonData>();
  if (data != nullptr && !data->errorFactory.IsEmpty()) {
    return data->errorFactory.Call({Napi::String::New(env, call), Napi::String::New(env, args),
                                    Napi::Number::New(env, errnum), Napi::String::New(env, code),
                                    Napi::String::New(env, message), Napi::String::New(env, detail)});
  }
  Napi::Error err = Napi::Error::New(env, message);
  Napi::Object obj = err.Value();
  obj.Set("call", call);
  obj.Set("args", args);
  obj.Set("errno", errnum);
  obj.Set("code", code);
  if (!detail.empty()) obj.Set("detail", detail);
  return obj;
}

void ThrowXenError(Napi::Env env, const std::string& call, const std::string& args, int errnum,
                   const std::string& detail) {
  throw Napi::Error(env, MakeXenError(env, call, args, errnum, detail));
}

uint32_t ArgU32(const Napi::CallbackInfo& info, size_t i, const char* name, uint32_t max) {
  Napi::Env env = info.Env();
  if (info.Length() <= i || !info[i].IsNumber()) {
    throw Napi::TypeError::New(env, std::string(name) + " must be a number");
  }
  double v = info[i].As<Napi::Number>().DoubleValue();
  if (!(v >= 0) || v > max || std::floor(v) != v) {
    throw Napi::RangeError::New(env, std::string(name) + " must be an integer in [0, " +
                                         std::to_string(max) + "], got " + std::to_string(v));
  }
  return static_cast<uint32_t>(v);
}

bool ArgBool(const Napi::CallbackInfo& info, size_t i, const char* name) {
  if (info.Length() <= i || !info[i].IsBoolean()) {
    throw Napi::TypeError::New(info.Env(), std::string(name) + " must be a boolean");
  }
  return info[i].As<Napi::Boolean>().Value();
}

namespace {

thread_local std::string g_lastLog;

void CaptureVmessage(xentoollog_logger* /*logger*/, xentoollog_level level, int errnoval,
                     const char* context, const char* format, va_list al) {
  if (level < XTL_WARN) return;
  char buf[512];
  va_list copy;
  va_copy(copy, al);
  std::vsnprintf(buf, sizeof buf, format, copy);
  va_end(copy);
  std::string line = buf;
  if (context != nullptr) line = std::string(context) + ": " + line;
  if (errnoval >= 0) line += std::string(" (") + std::strerror(errnoval) + ")";
  if (level >= XTL_ERROR) g_lastLog = line;
  static const bool forward = std::getenv("FASTSUSPEND_XEN_LOG") != nullptr;
  if (forward) std::fprintf(stderr, "fastsuspend-xen: %s\n", line.c_str());
}

void CaptureDestroy(xentoollog_logger* /*logger*/) {}

xentoollog_logger g_logger = {CaptureVmessage, nullptr, CaptureDestroy};

}  // namespace

xentoollog_logger* CaptureLogger() { return &g_logger; }
void ClearLastLog() { g_lastLog.clear(); }
std::string TakeLastLog() {
  std::string s;
  s.swap(g_lastLog);
  return s;
}

}  // namespace fsxen
