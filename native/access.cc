// qbh native addon, file-access part: opening a file as another user, so that the kernel (mode bits,
// POSIX ACLs, security modules) decides what a daemon's peer may read, and reading a file's access
// ACL for a process that cannot take on a peer's credentials. No policy lives here: which path, whose
// credentials and what an answer means are decided in TypeScript (src/acl/read.ts).
//
// Arguments are checked as qbh.cc's header states (qbh.h), before any syscall.

#include "qbh.h"

#include <cerrno>
#include <climits>
#include <cstring>
#include <string>
#include <vector>

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/xattr.h>
#include <unistd.h>

namespace {

using namespace qbh;

// The most supplementary groups a credential holds (NGROUPS_MAX, linux/limits.h).
constexpr uint32_t kMaxGroups = 65536;
// The open flags a caller may add to O_RDONLY (O_CLOEXEC is always set): enough to read a file
// without blocking on a FIFO or taking a terminal, nothing that writes or creates.
constexpr int kOpenAsFlags = O_NONBLOCK | O_NOCTTY | O_NOFOLLOW | O_DIRECTORY;
// The opening thread's stack: it makes five system calls and nothing else.
constexpr size_t kOpenAsStack = 64 * 1024;
// Largest access ACL read: 4 + 8 * 8191 entries is far beyond what file systems store (ext4: one block).
constexpr size_t kMaxXattr = 65536;

struct OpenAsJob {
  std::string path;
  uid_t uid;
  gid_t gid;
  std::vector<gid_t> groups;
  int flags;
  int fd = -1;
  int err = 0;
  const char* syscall = "open";
};

// Runs on its own thread and ends with it. Credentials are per thread in the kernel; the raw system
// calls change this thread's only (glibc's setgroups() would signal every thread of the process to
// change theirs too, setxid broadcast). setfsuid/setfsgid report failure by not changing, so each is
// read back. A non-root fsuid also drops this thread's file capabilities (CAP_DAC_OVERRIDE, …), so
// the open below is checked exactly as it would be for the peer. No other thread ever runs with
// these credentials, and this one runs no other code.
void* OpenAsThread(void* arg) {
  OpenAsJob* j = static_cast<OpenAsJob*>(arg);
  if (syscall(SYS_setgroups, j->groups.size(), j->groups.data()) != 0) {
    j->err = errno;
    j->syscall = "setgroups";
    return nullptr;
  }
  syscall(SYS_setfsgid, j->gid);
  if (static_cast<gid_t>(syscall(SYS_setfsgid, -1)) != j->gid) {
    j->err = EPERM;
    j->syscall = "setfsgid";
    return nullptr;
  }
  syscall(SYS_setfsuid, j->uid);
  if (static_cast<uid_t>(syscall(SYS_setfsuid, -1)) != j->uid) {
    j->err = EPERM;
    j->syscall = "setfsuid";
    return nullptr;
  }
  int fd;
  do fd = open(j->path.c_str(), O_RDONLY | O_CLOEXEC | j->flags); while (fd < 0 && errno == EINTR);
  if (fd < 0) j->err = errno;
  j->fd = fd;
  return nullptr;
}

// Reads a path argument given as bytes (a byte string from the ACL): 1..PATH_MAX-1 bytes, no NUL.
bool PathArg(const Napi::CallbackInfo& info, size_t i, std::string* out) {
  Napi::Env env = info.Env();
  uint8_t* data;
  size_t len;
  if (!BytesArg(info, i, "path", &data, &len)) return false;
  if (len == 0 || len >= PATH_MAX || memchr(data, 0, len) != nullptr)
    return ArgError(env, true, "ERR_OUT_OF_RANGE", "The \"path\" argument must be 1 to 4095 bytes without NUL");
  out->assign(reinterpret_cast<const char*>(data), len);
  return true;
}

// openAs(path, uid, gid, groups, flags) -> fd: opens `path` O_RDONLY|O_CLOEXEC|flags with fsuid
// `uid`, fsgid `gid` and supplementary `groups`, in a thread made for it that exits right after.
// Throws the open's errno, or EPERM with syscall setgroups/setfsgid/setfsuid when this process may
// not take on those credentials (no CAP_SETUID/CAP_SETGID, or a seccomp filter refusing them).
Napi::Value OpenAs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  OpenAsJob job;
  int64_t uid, gid, flags;
  CHECK_ARG(PathArg(info, 0, &job.path));
  CHECK_ARG(IntArg(info, 1, "uid", 0, UINT32_MAX - 1, &uid));
  CHECK_ARG(IntArg(info, 2, "gid", 0, UINT32_MAX - 1, &gid));
  if (!info[3].IsArray()) {
    ArgError(env, false, "ERR_INVALID_ARG_TYPE", "The \"groups\" argument must be an array of numbers");
    return env.Undefined();
  }
  Napi::Array groups = info[3].As<Napi::Array>();
  if (groups.Length() > kMaxGroups) {
    ArgError(env, true, "ERR_OUT_OF_RANGE", "The \"groups\" argument must hold at most 65536 gids");
    return env.Undefined();
  }
  for (uint32_t k = 0; k < groups.Length(); k++) {
    Napi::Value v = groups.Get(k);
    if (!v.IsNumber()) {
      ArgError(env, false, "ERR_INVALID_ARG_TYPE", "The \"groups\" argument must be an array of numbers");
      return env.Undefined();
    }
    double d = v.As<Napi::Number>().DoubleValue();
    if (!(d >= 0 && d <= UINT32_MAX - 1) || static_cast<double>(static_cast<gid_t>(d)) != d) {
      ArgError(env, true, "ERR_OUT_OF_RANGE", "The \"groups\" argument must hold gids (integers 0 to 4294967294)");
      return env.Undefined();
    }
    job.groups.push_back(static_cast<gid_t>(d));
  }
  CHECK_ARG(IntArg(info, 4, "flags", 0, INT_MAX, &flags));
  if ((flags & ~kOpenAsFlags) != 0) {
    ArgError(env, true, "ERR_OUT_OF_RANGE", "The \"flags\" argument may hold only O_NONBLOCK, O_NOCTTY, O_NOFOLLOW and O_DIRECTORY");
    return env.Undefined();
  }
  job.uid = static_cast<uid_t>(uid);
  job.gid = static_cast<gid_t>(gid);
  job.flags = static_cast<int>(flags);

  // Every signal blocked in the new thread (it inherits this mask): the process's handlers run on
  // Node's own threads, never on one holding another user's credentials.
  sigset_t all, old;
  sigfillset(&all);
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, kOpenAsStack);
  pthread_t thread;
  pthread_sigmask(SIG_SETMASK, &all, &old);
  int made = pthread_create(&thread, &attr, OpenAsThread, &job);
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  pthread_attr_destroy(&attr);
  if (made != 0) {
    ErrnoError(env, made, "pthread_create").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  pthread_join(thread, nullptr);
  if (job.fd < 0) {
    ErrnoError(env, job.err, job.syscall).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  return Napi::Number::New(env, job.fd);
}

// lgetxattr(path, name) -> Buffer, or null when the file has no such attribute (ENODATA). Does not
// follow a symlink at the end of `path`. Names are limited to the two POSIX ACL attributes.
Napi::Value Lgetxattr(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path;
  CHECK_ARG(PathArg(info, 0, &path));
  if (!info[1].IsString()) {
    ArgError(env, false, "ERR_INVALID_ARG_TYPE", "The \"name\" argument must be of type string");
    return env.Undefined();
  }
  std::string name = info[1].As<Napi::String>().Utf8Value();
  if (name != "system.posix_acl_access" && name != "system.posix_acl_default") {
    ArgError(env, true, "ERR_OUT_OF_RANGE", "The \"name\" argument must be system.posix_acl_access or system.posix_acl_default");
    return env.Undefined();
  }
  std::vector<uint8_t> buf(kMaxXattr);
  ssize_t n = lgetxattr(path.c_str(), name.c_str(), buf.data(), buf.size());
  if (n < 0) {
    if (errno == ENODATA || errno == EOPNOTSUPP) return env.Null();
    THROW_ERRNO(env, "lgetxattr");
  }
  return Napi::Buffer<uint8_t>::Copy(env, buf.data(), static_cast<size_t>(n));
}

}  // namespace

void InitAccess(Napi::Env env, Napi::Object exports) {
  exports.Set("openAs", Napi::Function::New(env, OpenAs));
  exports.Set("lgetxattr", Napi::Function::New(env, Lgetxattr));
}
