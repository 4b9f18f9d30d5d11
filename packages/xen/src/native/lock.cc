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

}  // namespace

Napi::Value SuspendLockAcquire(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const std::string path = ArgPath(info, 0);
  const std::string args = "path=" + path;
  // Retry while the file we locked is not the one at `path` any more: a releaser unlinks before it
  // closes, so we may have locked an inode that is already gone (libxenguest does the same check).
  for (int attempt = 0; attempt < 100; attempt++) {
    int fd = open(path.c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0600);
    if (fd < 0) {
      const int err = errno;  // first: the arguments below are built in unspecified order
      ThrowXenError(env, "open", args, err);
    }
    struct flock fl;
    std::memset(&fl, 0, sizeof(fl));
    fl.l_type = F_WRLCK;
    fl.l_whence = SEEK_SET;
    fl.l_start = 0;
    fl.l_len = 1;
    if (fcntl(fd, F_SETLK, &fl) != 0) {
      int err = errno;
      close(fd);
      // POSIX lets F_SETLK report a conflicting lock as EACCES or EAGAIN: one meaning, one code.
      if (err == EACCES) err = EAGAIN;
      ThrowXenError(env, "fcntl(F_SETLK)", args, err, err == EAGAIN ? "held by another process" : "");
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
  ThrowXenError(env, "fcntl(F_SETLK)", args, EAGAIN, "lock file kept being replaced");
}

Napi::Value ToolstackLockAcquire(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const std::string path = ArgPath(info, 0);
  const std::string args = "path=" + path;
  // libxl__lock_file's discipline (mode 0666, flock, the same inode check), but LOCK_NB: libxl
  // waits, we never do.
  for (int attempt = 0; attempt < 100; attempt++) {
    int fd = open(path.c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0666);
    if (fd < 0) {
      const int err = errno;
      ThrowXenError(env, "open", args, err);
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
      int err = errno;
      close(fd);
      if (err == EWOULDBLOCK) err = EAGAIN;
      ThrowXenError(env, "flock(LOCK_EX|LOCK_NB)", args, err, err == EAGAIN ? "held by another process" : "");
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
  ThrowXenError(env, "flock(LOCK_EX|LOCK_NB)", args, EAGAIN, "lock file kept being replaced");
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
