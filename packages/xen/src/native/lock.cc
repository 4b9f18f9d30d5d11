#include "lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "errors.h"

namespace fsxen {

namespace {

std::string ArgPath(const Napi::CallbackInfo& info, size_t i) {
  if (info.Length() <= i || !info[i].IsString()) throw Napi::TypeError::New(info.Env(), "path must be a string");
  std::string path = info[i].As<Napi::String>().Utf8Value();
  if (path.empty() || path.find('\0') != std::string::npos) {
    throw Napi::TypeError::New(info.Env(), "path must be a non-empty string without NUL");
  }
  return path;
}

// One lock on an open fd, without waiting: 0, or the errno (EAGAIN when someone else holds it).
using LockFn = int (*)(int fd);

int FcntlWriteLock(int fd) {
  struct flock fl;
  std::memset(&fl, 0, sizeof(fl));
  fl.l_type = F_WRLCK;
  fl.l_whence = SEEK_SET;
  fl.l_start = 0;
  fl.l_len = 1;
  if (fcntl(fd, F_SETLK, &fl) == 0) return 0;
  // POSIX lets F_SETLK report a conflicting lock as EACCES or EAGAIN: one meaning, one code.
  return errno == EACCES ? EAGAIN : errno;
}

int FlockExclusive(int fd) {
  if (flock(fd, LOCK_EX | LOCK_NB) == 0) return 0;
  return errno == EWOULDBLOCK ? EAGAIN : errno;
}

// open (creating it with `mode`), lock with `lock`, and check that the file we locked is still the
// one at `path`: a releaser unlinks before it closes, so we may have locked an inode that is
// already gone (libxenguest and libxl__lock_file do the same check). Returns the fd.
Napi::Value AcquireLockFile(const Napi::CallbackInfo& info, mode_t mode, LockFn lock, const char* call) {
  Napi::Env env = info.Env();
  const std::string path = ArgPath(info, 0);
  const std::string args = "path=" + path;
  for (int attempt = 0; attempt < 100; attempt++) {
    int fd = open(path.c_str(), O_CREAT | O_RDWR | O_CLOEXEC, mode);
    if (fd < 0) {
      const int err = errno;  // first: the arguments below are built in unspecified order
      ThrowXenError(env, "open", args, err);
    }
    const int lockErr = lock(fd);
    if (lockErr != 0) {
      close(fd);
      ThrowXenError(env, call, args, lockErr, lockErr == EAGAIN ? "held by another process" : "");
    }
    struct stat ours, theirs;
    if (fstat(fd, &ours) != 0) {
      int err = errno;
      close(fd);
      ThrowXenError(env, "fstat", args, err);
    }
    if (stat(path.c_str(), &theirs) != 0) {
      int err = errno;
      close(fd);
      if (err == ENOENT) continue;
      ThrowXenError(env, "stat", args, err);
    }
    if (ours.st_ino != theirs.st_ino || ours.st_dev != theirs.st_dev) {
      close(fd);
      continue;
    }
    return Napi::Number::New(env, fd);
  }
  ThrowXenError(env, call, args, EAGAIN, "lock file kept being replaced");
}

}  // namespace

Napi::Value SuspendLockAcquire(const Napi::CallbackInfo& info) {
  return AcquireLockFile(info, 0600, FcntlWriteLock, "fcntl(F_SETLK)");
}

Napi::Value ToolstackLockAcquire(const Napi::CallbackInfo& info) {
  // libxl__lock_file's mode and lock; libxl waits for it, we never do.
  return AcquireLockFile(info, 0666, FlockExclusive, "flock(LOCK_EX|LOCK_NB)");
}

Napi::Value SuspendLockRelease(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const uint32_t fd = ArgU32(info, 0, "fd", 0x7fffffff);
  const std::string path = ArgPath(info, 1);
  const std::string args = "fd=" + std::to_string(fd) + ", path=" + path;
  // Unlink while still holding the lock, then close (which drops it): a waiter that locked the old
  // inode sees it is gone and retries on a fresh file.
  int unlinkErr = unlink(path.c_str()) != 0 ? errno : 0;
  int closeErr = close(static_cast<int>(fd)) != 0 ? errno : 0;
  if (closeErr != 0) ThrowXenError(env, "close", args, closeErr);
  if (unlinkErr != 0 && unlinkErr != ENOENT) ThrowXenError(env, "unlink", args, unlinkErr);
  return env.Undefined();
}

}  // namespace fsxen
