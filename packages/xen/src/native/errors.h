// Typed errors for the Xen addon: every failure names the call, its arguments and the errno.
#pragma once

#include <napi.h>

#include <string>

struct xentoollog_logger;

namespace fsxen {

// Per-addon-instance state (set with env.SetInstanceData).
struct AddonData {
  Napi::FunctionReference errorFactory;  // (call, args, errno, code, message, detail) => Error
  Napi::FunctionReference evtchnCtor;
  Napi::FunctionReference controlCtor;
};

// "ESRCH" for 3, "E123" when the name is unknown.
std::string ErrnoName(int errnum);

// Builds a XenError (through the JS factory when registered, else a plain Error with the same
// fields). message: "<call>(<args>): <CODE> (<strerror>)[: <libxc detail>]".
Napi::Value MakeXenError(Napi::Env env, const std::string& call, const std::string& args, int errnum,
                         const std::string& detail = std::string());

// Throws the error above as a C++ exception (node-addon-api turns it into a JS throw).
[[noreturn]] void ThrowXenError(Napi::Env env, const std::string& call, const std::string& args,
                                int errnum, const std::string& detail = std::string());

// Argument helpers: TypeError/RangeError on bad input.
uint32_t ArgU32(const Napi::CallbackInfo& info, size_t i, const char* name, uint32_t max = 0xffffffffu);
bool ArgBool(const Napi::CallbackInfo& info, size_t i, const char* name);

// A xentoollog logger that keeps the last error-level message of the calling thread, so a failed
// libxc call can attach what libxc said ("detail") instead of printing it to stderr.
// FASTSUSPEND_XEN_LOG=1 also forwards every message at or above WARN to stderr.
xentoollog_logger* CaptureLogger();
void ClearLastLog();
std::string TakeLastLog();

}  // namespace fsxen
