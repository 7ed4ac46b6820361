// qbh native addon: the syscalls Node.js lacks, and nothing else. Policy and parsing live in TypeScript.
//
// Contract: this code runs in processes holding CAP_NET_ADMIN, so every JavaScript value is checked
// here, at the boundary, before any syscall, and the function returns at once on a bad one
// (test/native-hostile.test.ts holds the addon to each item):
//  - fds are numbers that are integers in 0..2^31-1; other numeric arguments are integers in the range
//    their C type holds. Nothing is coerced (no valueOf/toString runs): a string, BigInt, undefined,
//    NaN, ±Infinity or a fraction is a TypeError (code ERR_INVALID_ARG_TYPE) or RangeError
//    (ERR_OUT_OF_RANGE), never fd 0. Timeouts are ms in 0..2^31-1, or Infinity for "wait for ever".
//  - Buffers are Uint8Arrays; a detached one has length 0. ioctl() issues only the requests in
//    kIoctls, on the kind of fd the request belongs to, with a buffer at least as long as the
//    structure the kernel reads or writes (their _IOC_SIZE may understate it: TUNSETIFF says int,
//    copies a struct ifreq); requests that carry a pointer (SIOCGIFCONF…) are refused.
//  - Sizes are capped before anything is allocated: recvFds maxBytes <= kMaxRecvBytes, maxFds and a
//    sendFds array <= SCM_MAX_FD. recvFds reports truncated when more fds arrived than maxFds.
//  - sendFds reads the fd array (which may run getters) before it takes the payload's pointer; no
//    JavaScript runs between taking any buffer's pointer and the syscall that uses it.
//  - watch(): the closed state lives beside the uv handle, so stop() may be called any number of
//    times; the handle is closed when the environment (a Worker) exits and when close() closes its fd;
//    an exception thrown by the callback goes to process 'uncaughtException'.
// So no value from JavaScript can make this file touch memory outside the buffers it was given.
// Errors are thrown as Error objects carrying errno, code ('EEXIST'…) and syscall. The checks
// live in qbh.h/namespace qbh so that every source file of the addon uses the same ones.

#include "qbh.h"

#include <uv.h>

#include <cerrno>
#include <climits>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>
#include <unordered_set>
#include <vector>

#include <fcntl.h>
#include <linux/capability.h>
#include <linux/if_tun.h>
#include <linux/netlink.h>
#include <linux/nsfs.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <unistd.h>

namespace qbh {

Napi::Error ErrnoError(Napi::Env env, int err, const char* syscall) {
  Napi::Error e = Napi::Error::New(env, std::string(syscall) + ": " + strerror(err));
  // strerrorname_np (glibc >= 2.32) knows every Linux errno; uv_err_name does not (EBADFD) and
  // leaks the string it makes for an unknown one.
  const char* name = strerrorname_np(err);
  e.Set("errno", Napi::Number::New(env, err));
  e.Set("code", Napi::String::New(env, name != nullptr ? name : "E" + std::to_string(err)));
  e.Set("syscall", Napi::String::New(env, syscall));
  return e;
}

// An argument error shaped like Node's own (code ERR_INVALID_ARG_TYPE, ERR_OUT_OF_RANGE…).
// Always returns false, so validators read `if (!Check(…)) return env.Undefined();`.
bool ArgError(Napi::Env env, bool range, const char* code, const std::string& msg) {
  Napi::Error e = range ? Napi::Error(Napi::RangeError::New(env, msg)) : Napi::Error(Napi::TypeError::New(env, msg));
  e.Set("code", Napi::String::New(env, code));
  e.ThrowAsJavaScriptException();
  return false;
}

// "Received type string" and the like, as Node words it; never runs JavaScript (no coercion).
static std::string Received(const Napi::Value& v) {
  switch (v.Type()) {
    case napi_undefined: return ". Received undefined";
    case napi_null: return ". Received null";
    case napi_string: return ". Received type string";
    case napi_bigint: return ". Received type bigint";
    case napi_boolean: return ". Received type boolean";
    case napi_number: return ". Received type number";
    case napi_symbol: return ". Received type symbol";
    case napi_function: return ". Received function";
    default: return ". Received an instance of Object";
  }
}

// An integer argument in [min, max]: a JS number only, never coerced.
bool IntArg(const Napi::CallbackInfo& info, size_t i, const char* name, int64_t min, int64_t max, int64_t* out) {
  Napi::Env env = info.Env();
  if (!info[i].IsNumber())
    return ArgError(env, false, "ERR_INVALID_ARG_TYPE", std::string("The \"") + name + "\" argument must be of type number" + Received(info[i]));
  double v = info[i].As<Napi::Number>().DoubleValue();
  if (!std::isfinite(v) || std::trunc(v) != v || v < static_cast<double>(min) || v > static_cast<double>(max))
    return ArgError(env, true, "ERR_OUT_OF_RANGE",
                    std::string("The value of \"") + name + "\" is out of range. It must be an integer >= " +
                        std::to_string(min) + " && <= " + std::to_string(max) + ". Received " +
                        info[i].ToString().Utf8Value());
  *out = static_cast<int64_t>(v);
  return true;
}

bool FdArg(const Napi::CallbackInfo& info, size_t i, const char* name, int* out) {
  int64_t v;
  if (!IntArg(info, i, name, 0, INT_MAX, &v)) return false;
  *out = static_cast<int>(v);
  return true;
}

bool Int32Arg(const Napi::CallbackInfo& info, size_t i, const char* name, int* out) {
  int64_t v;
  if (!IntArg(info, i, name, INT_MIN, INT_MAX, &v)) return false;
  *out = static_cast<int>(v);
  return true;
}

// A poll(2) timeout: ms in 0..2^31-1 (a fraction rounds up), Infinity (or undefined where
// `optional`) for -1, "wait for ever".
bool TimeoutArg(const Napi::CallbackInfo& info, size_t i, bool optional, int* out) {
  Napi::Env env = info.Env();
  if (optional && info[i].IsUndefined()) {
    *out = -1;
    return true;
  }
  if (!info[i].IsNumber())
    return ArgError(env, false, "ERR_INVALID_ARG_TYPE", "The \"timeoutMs\" argument must be of type number" + Received(info[i]));
  double v = info[i].As<Napi::Number>().DoubleValue();
  if (v == INFINITY) {
    *out = -1;
    return true;
  }
  if (!(v >= 0 && v <= INT_MAX))
    return ArgError(env, true, "ERR_OUT_OF_RANGE",
                    "The value of \"timeoutMs\" is out of range. It must be >= 0 && <= 2147483647, or Infinity. "
                    "Received " + info[i].ToString().Utf8Value());
  *out = static_cast<int>(std::ceil(v));
  return true;
}

// A Uint8Array (Buffer) argument. Its pointer stays valid only until JavaScript runs again.
bool BytesArg(const Napi::CallbackInfo& info, size_t i, const char* name, uint8_t** data, size_t* len) {
  Napi::Env env = info.Env();
  napi_typedarray_type type;
  void* p = nullptr;
  if (!info[i].IsTypedArray() ||
      napi_get_typedarray_info(env, info[i], &type, len, &p, nullptr, nullptr) != napi_ok ||
      type != napi_uint8_array)
    return ArgError(env, false, "ERR_INVALID_ARG_TYPE", std::string("The \"") + name + "\" argument must be a Uint8Array" + Received(info[i]));
  *data = static_cast<uint8_t*>(p);
  if (*data == nullptr) *len = 0;  // detached
  return true;
}

}  // namespace qbh

namespace {

using namespace qbh;

// The most fds one SCM_RIGHTS message may carry (include/net/scm.h SCM_MAX_FD).
constexpr uint32_t kScmMaxFd = 253;
// Largest recvFds payload: the library's messages are one byte (the hand-off QEMU expects,
// docs/qemu-bridge-helper.md, §2.2) or a small request; 64 KiB bounds what one call allocates
// whatever the caller asks.
constexpr uint32_t kMaxRecvBytes = 65536;

// Waits for fd to be readable: 1 if it is, 0 on timeout, -1 with errno on error.
int WaitReadable(int fd, int timeout) {
  pollfd p{fd, POLLIN, 0};
  int r;
  do r = poll(&p, 1, timeout); while (r < 0 && errno == EINTR);
  return r;
}

// What a thread of its own does for nlOpenIn: join the network namespace nsFd refers to, then
// make the socket there. setns(CLONE_NEWNET) changes only the calling thread's namespace, and a
// socket belongs for good to the namespace of the thread that called socket(): the process's
// other threads, the JavaScript one included, never leave their own.
struct SocketInNetns {
  int nsFd;
  int protocol;
  int fd = -1;
  int err = 0;
  const char* failed = nullptr;
};

void* MakeSocketInNetns(void* arg) {
  auto* job = static_cast<SocketInNetns*>(arg);
  if (setns(job->nsFd, CLONE_NEWNET) < 0) {
    job->err = errno;
    job->failed = "setns";
  } else if ((job->fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, job->protocol)) < 0) {
    job->err = errno;
    job->failed = "socket";
  }
  return nullptr;
}

// Binds fd to a kernel-chosen port id and returns { fd, portId }; on failure closes fd and throws.
Napi::Value BindNetlink(Napi::Env env, int fd) {
  sockaddr_nl addr{};
  addr.nl_family = AF_NETLINK;
  socklen_t len = sizeof addr;
  const char* failed = nullptr;
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) < 0) failed = "bind";
  else if (getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) < 0) failed = "getsockname";
  if (failed != nullptr) {
    int err = errno;
    close(fd);
    ErrnoError(env, err, failed).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  Napi::Object out = Napi::Object::New(env);
  out.Set("fd", fd);
  out.Set("portId", Napi::Number::New(env, addr.nl_pid));
  return out;
}

// nlOpen(protocol) -> { fd, portId }: a non-blocking, close-on-exec netlink socket bound to a
// kernel-chosen port id.
Napi::Value NlOpen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int protocol;
  CHECK_ARG(Int32Arg(info, 0, "protocol", &protocol));
  int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, protocol);
  if (fd < 0) THROW_ERRNO(env, "socket");
  return BindNetlink(env, fd);
}

// nlOpenIn(protocol, nsFd) -> { fd, portId }: nlOpen's socket, in the network namespace that nsFd
// (an open /run/netns/NAME or /proc/PID/ns/net) refers to. Made by a short-lived thread that joins
// that namespace (MakeSocketInNetns); the calling thread waits for it.
Napi::Value NlOpenIn(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  SocketInNetns job{};
  CHECK_ARG(Int32Arg(info, 0, "protocol", &job.protocol) && FdArg(info, 1, "nsFd", &job.nsFd));
  pthread_t thread;
  int err = pthread_create(&thread, nullptr, MakeSocketInNetns, &job);
  if (err != 0) {
    ErrnoError(env, err, "pthread_create").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  pthread_join(thread, nullptr);
  if (job.failed != nullptr) {
    ErrnoError(env, job.err, job.failed).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  return BindNetlink(env, job.fd);
}

// setsockoptInt(fd, level, name, value)
Napi::Value SetsockoptInt(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd, level, name, value;
  CHECK_ARG(FdArg(info, 0, "fd", &fd) && Int32Arg(info, 1, "level", &level) && Int32Arg(info, 2, "name", &name) &&
            Int32Arg(info, 3, "value", &value));
  if (setsockopt(fd, level, name, &value, sizeof value) < 0) THROW_ERRNO(env, "setsockopt");
  return env.Undefined();
}

// getsockoptInt(fd, level, name) -> number
Napi::Value GetsockoptInt(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd, level, name, value = 0;
  CHECK_ARG(FdArg(info, 0, "fd", &fd) && Int32Arg(info, 1, "level", &level) && Int32Arg(info, 2, "name", &name));
  socklen_t len = sizeof value;
  if (getsockopt(fd, level, name, &value, &len) < 0) THROW_ERRNO(env, "getsockopt");
  return Napi::Number::New(env, value);
}

// nlSend(fd, buffer) -> bytes sent, to the kernel (port 0).
Napi::Value NlSend(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd;
  uint8_t* data;
  size_t len;
  CHECK_ARG(FdArg(info, 0, "fd", &fd) && BytesArg(info, 1, "msg", &data, &len));
  sockaddr_nl addr{};
  addr.nl_family = AF_NETLINK;
  ssize_t n;
  do n = sendto(fd, data, len, 0, reinterpret_cast<sockaddr*>(&addr), sizeof addr); while (n < 0 && errno == EINTR);
  if (n < 0) THROW_ERRNO(env, "sendto");
  return Napi::Number::New(env, static_cast<double>(n));
}

// nlRecv(fd, timeoutMs) -> { data, portId, truncated } | null on timeout (timeoutMs 0: do not wait).
// The datagram is sized first with MSG_PEEK|MSG_TRUNC so it is always read whole. Both reads are
// MSG_DONTWAIT: a blocking fd never blocks past the timeout.
Napi::Value NlRecv(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd, timeout;
  CHECK_ARG(FdArg(info, 0, "fd", &fd) && TimeoutArg(info, 1, false, &timeout));
  sockaddr_nl addr{};
  iovec iov{nullptr, 0};
  msghdr msg{};
  msg.msg_name = &addr;
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  ssize_t size;
  for (;;) {
    if (timeout != 0) {
      int r = WaitReadable(fd, timeout);
      if (r < 0) THROW_ERRNO(env, "poll");
      if (r == 0) return env.Null();
    }
    msg.msg_namelen = sizeof addr;
    do size = recvmsg(fd, &msg, MSG_PEEK | MSG_TRUNC | MSG_DONTWAIT); while (size < 0 && errno == EINTR);
    if (size >= 0) break;
    if (errno != EAGAIN) THROW_ERRNO(env, "recvmsg");
    if (timeout >= 0) return env.Null();  // (a spurious wake-up while waiting for ever polls again)
  }
  // Read with at least 32 KiB of room, as iproute2 does: the kernel sizes later dump chunks
  // by the largest buffer user space has offered, so a tight buffer means one link per datagram.
  static thread_local std::vector<uint8_t> scratch;
  scratch.resize(size > 32768 ? static_cast<size_t>(size) : 32768);
  iov.iov_base = scratch.data();
  iov.iov_len = scratch.size();
  msg.msg_namelen = sizeof addr;
  ssize_t n;
  do n = recvmsg(fd, &msg, MSG_DONTWAIT); while (n < 0 && errno == EINTR);
  if (n < 0) {
    if (errno == EAGAIN) return env.Null();
    THROW_ERRNO(env, "recvmsg");
  }
  Napi::Object out = Napi::Object::New(env);
  out.Set("data", Napi::Buffer<uint8_t>::Copy(env, scratch.data(), static_cast<size_t>(n)));
  out.Set("portId", Napi::Number::New(env, addr.nl_pid));
  out.Set("truncated", Napi::Boolean::New(env, (msg.msg_flags & MSG_TRUNC) != 0));
  return out;
}

// A readability watcher on the event loop (uv_poll): the callback runs on the JS thread, so the
// library reads with nlRecv(fd, 0) and never blocks the loop or a threadpool slot.
// Lifetime: two owners, the uv handle (until its close callback) and the stop function (until it
// is garbage collected). `closed` lives in the Watch, which outlives the handle for as long as the
// stop function exists, so a stop() after the handle is gone reads live memory and does nothing.
struct Watch {
  uv_poll_t handle;
  Napi::FunctionReference callback;
  napi_env env;
  int fd;
  bool closed = false;
  int owners = 2;  // the handle and the stop function
  napi_async_cleanup_hook_handle cleanup = nullptr;
};

// Open watches of this thread's environment, so close(fd) can stop them first: a watcher left on a
// closed fd never fires, and libuv refuses (EEXIST) or aborts on the next watcher of that number.
thread_local std::unordered_set<Watch*> watches;

void Release(Watch* w) {
  if (--w->owners == 0) delete w;
}

void CloseWatch(Watch* w) {
  if (w->closed) return;
  w->closed = true;
  watches.erase(w);
  uv_poll_stop(&w->handle);
  w->callback.Reset();
  uv_close(reinterpret_cast<uv_handle_t*>(&w->handle), [](uv_handle_t* h) {
    Watch* w = static_cast<Watch*>(h->data);
    if (w->cleanup != nullptr) napi_remove_async_cleanup_hook(w->cleanup);
    Release(w);
  });
}

void OnReadable(uv_poll_t* handle, int status, int /*events*/) {
  Watch* w = static_cast<Watch*>(handle->data);
  if (w->closed) return;
  Napi::Env env(w->env);
  Napi::HandleScope scope(env);
  Napi::AsyncContext ctx(env, "qbh.watch");
  w->callback.MakeCallback(env.Global(), {Napi::Number::New(env, status)}, ctx);
  // An exception from the callback belongs to the process ('uncaughtException'), as one from any
  // event callback does; left pending it would surface from the next, unrelated, addon call.
  if (env.IsExceptionPending()) napi_fatal_exception(env, env.GetAndClearPendingException().Value());
}

Napi::Value WatchStop(const Napi::CallbackInfo& info) {
  CloseWatch(static_cast<Watch*>(info.Data()));
  return info.Env().Undefined();
}

// watch(fd, callback(status)) -> stop(): calls back whenever fd is readable, until stopped.
// libuv makes fd non-blocking and it stays so after stop(): restoring the flag later could hit an
// unrelated file that reused the fd number. This addon's reads wait with poll() either way.
Napi::Value WatchFd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd;
  CHECK_ARG(FdArg(info, 0, "fd", &fd));
  if (!info[1].IsFunction()) {
    ArgError(env, false, "ERR_INVALID_ARG_TYPE", "The \"onReadable\" argument must be of type function" + Received(info[1]));
    return env.Undefined();
  }
  uv_loop_t* loop = nullptr;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok) {
    Napi::Error::New(env, "no event loop").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  Watch* w = new Watch();
  w->env = env;
  w->fd = fd;
  int err = uv_poll_init(loop, &w->handle, fd);
  if (err != 0) {
    delete w;
    ErrnoError(env, -err, "uv_poll_init").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  w->handle.data = w;
  w->callback = Napi::Persistent(info[1].As<Napi::Function>());
  err = uv_poll_start(&w->handle, UV_READABLE, OnReadable);
  if (err != 0) {
    w->owners = 1;  // no stop function: the close callback frees it
    CloseWatch(w);
    ErrnoError(env, -err, "uv_poll_start").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  watches.insert(w);
  // A Worker that exits with the watch open closes it, instead of aborting in uv_loop_close.
  napi_add_async_cleanup_hook(
      env, [](napi_async_cleanup_hook_handle, void* arg) { CloseWatch(static_cast<Watch*>(arg)); }, w, &w->cleanup);
  Napi::Function stop = Napi::Function::New(env, WatchStop, "stop", w);
  napi_add_finalizer(env, stop, w, [](napi_env, void* data, void*) { Release(static_cast<Watch*>(data)); }, nullptr, nullptr);
  return stop;
}

// The ioctl requests the addon issues, the fd they belong to and the bytes the kernel copies in or
// out. A request outside this table may carry a pointer the kernel would follow, so it is refused.
struct IoctlSpec {
  unsigned long request;
  enum { kTun, kSocket } fd;
  size_t size;  // of the buffer for ioctl(); 0: the argument is a value (ioctlInt)
};
constexpr IoctlSpec kIoctls[] = {
    {TUNSETIFF, IoctlSpec::kTun, sizeof(ifreq)},
    {TUNGETIFF, IoctlSpec::kTun, sizeof(ifreq)},
    {TUNSETQUEUE, IoctlSpec::kTun, sizeof(ifreq)},
    {TUNGETFEATURES, IoctlSpec::kTun, sizeof(unsigned)},
    {TUNGETSNDBUF, IoctlSpec::kTun, sizeof(int)},
    {TUNSETSNDBUF, IoctlSpec::kTun, sizeof(int)},
    {TUNGETVNETHDRSZ, IoctlSpec::kTun, sizeof(int)},
    {TUNSETVNETHDRSZ, IoctlSpec::kTun, sizeof(int)},
    {TUNSETNOCSUM, IoctlSpec::kTun, 0},
    {TUNSETDEBUG, IoctlSpec::kTun, 0},
    {TUNSETPERSIST, IoctlSpec::kTun, 0},
    {TUNSETOWNER, IoctlSpec::kTun, 0},
    {TUNSETLINK, IoctlSpec::kTun, 0},
    {TUNSETGROUP, IoctlSpec::kTun, 0},
    {TUNSETOFFLOAD, IoctlSpec::kTun, 0},
    // struct ifreq requests on any socket (they carry no size of their own).
    {SIOCGIFNAME, IoctlSpec::kSocket, sizeof(ifreq)},
    {SIOCGIFFLAGS, IoctlSpec::kSocket, sizeof(ifreq)},
    {SIOCSIFFLAGS, IoctlSpec::kSocket, sizeof(ifreq)},
    {SIOCGIFMTU, IoctlSpec::kSocket, sizeof(ifreq)},
    {SIOCSIFMTU, IoctlSpec::kSocket, sizeof(ifreq)},
    {SIOCGIFHWADDR, IoctlSpec::kSocket, sizeof(ifreq)},
    {SIOCSIFHWADDR, IoctlSpec::kSocket, sizeof(ifreq)},
    {SIOCGIFINDEX, IoctlSpec::kSocket, sizeof(ifreq)},
    {SIOCGIFTXQLEN, IoctlSpec::kSocket, sizeof(ifreq)},
    {SIOCBRADDIF, IoctlSpec::kSocket, sizeof(ifreq)},
    {SIOCBRDELIF, IoctlSpec::kSocket, sizeof(ifreq)},
    // Bytes sent on a socket that its peer has not read yet (an int): qbhd's unread tap replies.
    {SIOCOUTQ, IoctlSpec::kSocket, sizeof(int)},
};
constexpr bool SizesCoverIoc() {
  for (const IoctlSpec& s : kIoctls)
    if (s.size != 0 && s.size < _IOC_SIZE(s.request)) return false;
  return true;
}
static_assert(SizesCoverIoc(), "an ioctl buffer must hold at least _IOC_SIZE(request) bytes");

std::string Hex(int64_t v) {
  char buf[24];
  snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(v));
  return buf;
}

// Checks fd, request (and the buffer length, for `byBuffer`) against kIoctls; throws and returns
// false if the ioctl must not be issued. An fd of the wrong kind gets the kernel's ENOTTY.
bool CheckIoctl(const Napi::CallbackInfo& info, int* fd, unsigned long* request, bool byBuffer) {
  Napi::Env env = info.Env();
  int64_t req;
  if (!FdArg(info, 0, "fd", fd) || !IntArg(info, 1, "request", 0, UINT32_MAX, &req)) return false;
  *request = static_cast<unsigned long>(req);
  const IoctlSpec* spec = nullptr;
  for (const IoctlSpec& s : kIoctls)
    if (s.request == *request && (s.size != 0) == byBuffer) spec = &s;
  if (spec == nullptr)
    return ArgError(env, false, "ERR_INVALID_ARG_VALUE",
                    "ioctl request " + Hex(req) + " is not one " +
                        (byBuffer ? "ioctl()" : "ioctlInt()") + " issues (native/qbh.cc kIoctls)");
  struct stat st;
  if (fstat(*fd, &st) < 0) {
    ErrnoError(env, errno, "ioctl").ThrowAsJavaScriptException();
    return false;
  }
  bool kindOk = spec->fd == IoctlSpec::kTun ? S_ISCHR(st.st_mode) && st.st_rdev == makedev(10, 200) : S_ISSOCK(st.st_mode);
  if (!kindOk) {
    ErrnoError(env, ENOTTY, "ioctl").ThrowAsJavaScriptException();
    return false;
  }
  if (byBuffer) {
    size_t len;
    uint8_t* data;
    if (!BytesArg(info, 2, "arg", &data, &len)) return false;
    if (len < spec->size)
      return ArgError(env, true, "ERR_OUT_OF_RANGE",
                      "The \"arg\" buffer is too short for ioctl request " + Hex(req) + ": it needs " +
                          std::to_string(spec->size) + " bytes, not " + std::to_string(len));
  }
  return true;
}

// ioctl(fd, request, buffer) -> return value; the buffer is read and written in place.
Napi::Value IoctlBuf(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd;
  unsigned long request;
  uint8_t* data;
  size_t len;
  CHECK_ARG(CheckIoctl(info, &fd, &request, true) && BytesArg(info, 2, "arg", &data, &len));
  int r = ioctl(fd, request, data);
  if (r < 0) THROW_ERRNO(env, "ioctl");
  return Napi::Number::New(env, r);
}

// ioctlInt(fd, request, value) -> return value; for requests that take their argument by value.
Napi::Value IoctlInt(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd;
  unsigned long request;
  int64_t value;
  CHECK_ARG(CheckIoctl(info, &fd, &request, false) && IntArg(info, 2, "value", INT_MIN, UINT32_MAX, &value));
  int r = ioctl(fd, request, static_cast<unsigned long>(value));
  if (r < 0) THROW_ERRNO(env, "ioctl");
  return Napi::Number::New(env, r);
}

// sendFds(sock, data, fds) -> bytes sent: one sendmsg with one SCM_RIGHTS cmsg.
// MSG_NOSIGNAL: a closed peer is an EPIPE error, not a fatal signal.
Napi::Value SendFds(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int sock;
  uint8_t* data;
  size_t len;
  CHECK_ARG(FdArg(info, 0, "sock", &sock) && BytesArg(info, 1, "data", &data, &len));
  if (!info[2].IsArray()) {
    ArgError(env, false, "ERR_INVALID_ARG_TYPE", "The \"fds\" argument must be an Array" + Received(info[2]));
    return env.Undefined();
  }
  Napi::Array arr = info[2].As<Napi::Array>();
  if (arr.Length() > kScmMaxFd) {
    ArgError(env, true, "ERR_OUT_OF_RANGE", "The \"fds\" array may hold at most 253 fds (SCM_MAX_FD), not " + std::to_string(arr.Length()));
    return env.Undefined();
  }
  // The elements first: reading them may run a getter, which may detach or resize the payload.
  std::vector<int> fds(arr.Length());
  for (uint32_t i = 0; i < fds.size(); i++) {
    Napi::Value v = arr.Get(i);
    if (env.IsExceptionPending()) return env.Undefined();
    double d = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : -1;
    if (!v.IsNumber() || !(d >= 0 && d <= INT_MAX && std::trunc(d) == d)) {
      ArgError(env, v.IsNumber(), v.IsNumber() ? "ERR_OUT_OF_RANGE" : "ERR_INVALID_ARG_TYPE",
               "fds[" + std::to_string(i) + "] must be a file descriptor (an integer 0..2147483647)");
      return env.Undefined();
    }
    fds[i] = static_cast<int>(d);
  }
  CHECK_ARG(BytesArg(info, 1, "data", &data, &len));  // again: only now is the pointer stable
  iovec iov{data, len};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  std::vector<char> control(CMSG_SPACE(sizeof(int) * fds.size()));
  if (!fds.empty()) {
    msg.msg_control = control.data();
    msg.msg_controllen = control.size();
    cmsghdr* cmsg = CMSG_FIRSTHDR(&msg);
    cmsg->cmsg_level = SOL_SOCKET;
    cmsg->cmsg_type = SCM_RIGHTS;
    cmsg->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
    memcpy(CMSG_DATA(cmsg), fds.data(), sizeof(int) * fds.size());
  }
  ssize_t n;
  do n = sendmsg(sock, &msg, MSG_NOSIGNAL); while (n < 0 && errno == EINTR);
  if (n < 0) THROW_ERRNO(env, "sendmsg");
  return Napi::Number::New(env, static_cast<double>(n));
}

// recvFds(sock, maxBytes, maxFds, timeoutMs?) -> { data, fds, truncated } | null on timeout.
// maxBytes 1..65536, maxFds 0..253. Received fds are close-on-exec (MSG_CMSG_CLOEXEC) and all of
// them are returned; truncated says the message had more bytes or more fds than asked for (the
// cmsg buffer, padded to 8 bytes, has room for one fd more when maxFds is odd). On a stream socket
// bytes beyond maxBytes are not "more": they stay queued for the next read.
Napi::Value RecvFds(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd, timeout;
  int64_t maxBytes, maxFds;
  CHECK_ARG(FdArg(info, 0, "sock", &fd) && IntArg(info, 1, "maxBytes", 1, kMaxRecvBytes, &maxBytes) &&
            IntArg(info, 2, "maxFds", 0, kScmMaxFd, &maxFds) && TimeoutArg(info, 3, true, &timeout));
  std::vector<uint8_t> data(static_cast<size_t>(maxBytes));
  std::vector<char> control(CMSG_SPACE(sizeof(int) * (maxFds > 0 ? maxFds : 1)));
  iovec iov{data.data(), data.size()};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  ssize_t n;
  for (;;) {
    int r = WaitReadable(fd, timeout);
    if (r < 0) THROW_ERRNO(env, "poll");
    if (r == 0) return env.Null();
    msg.msg_control = control.data();
    msg.msg_controllen = control.size();
    do n = recvmsg(fd, &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT); while (n < 0 && errno == EINTR);
    if (n >= 0) break;
    if (errno != EAGAIN) THROW_ERRNO(env, "recvmsg");
    if (timeout >= 0) return env.Null();
  }
  Napi::Array fds = Napi::Array::New(env);
  uint32_t k = 0;
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < count; i++) {
      int received;
      memcpy(&received, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
      fds.Set(k++, Napi::Number::New(env, received));
    }
  }
  bool truncated = (msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) != 0 || k > maxFds;
  Napi::Object out = Napi::Object::New(env);
  out.Set("data", Napi::Buffer<uint8_t>::Copy(env, data.data(), static_cast<size_t>(n)));
  out.Set("fds", fds);
  out.Set("truncated", Napi::Boolean::New(env, truncated));
  return out;
}

// peerCred(sock) -> { pid, uid, gid } of the process at the other end of a unix socket.
Napi::Value PeerCred(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd;
  CHECK_ARG(FdArg(info, 0, "sock", &fd));
  ucred cred{};
  socklen_t len = sizeof cred;
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) THROW_ERRNO(env, "getsockopt");
  Napi::Object out = Napi::Object::New(env);
  out.Set("pid", Napi::Number::New(env, cred.pid));
  out.Set("uid", Napi::Number::New(env, cred.uid));
  out.Set("gid", Napi::Number::New(env, cred.gid));
  return out;
}

// peerGroups(sock) -> supplementary gids of the peer, as they were at connect() (SO_PEERGROUPS).
Napi::Value PeerGroups(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd;
  CHECK_ARG(FdArg(info, 0, "sock", &fd));
  std::vector<gid_t> groups(64);
  socklen_t len = groups.size() * sizeof(gid_t);
  while (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups.data(), &len) < 0) {
    if (errno != ERANGE) THROW_ERRNO(env, "getsockopt");
    groups.resize(len / sizeof(gid_t) + 1);
    len = groups.size() * sizeof(gid_t);
  }
  Napi::Array out = Napi::Array::New(env);
  for (uint32_t i = 0; i < len / sizeof(gid_t); i++) out.Set(i, Napi::Number::New(env, groups[i]));
  return out;
}

// SO_PEERPIDFD (Linux 6.5) and PIDFD_GET_USER_NAMESPACE (Linux 6.11), which older headers lack.
#ifndef SO_PEERPIDFD
#define SO_PEERPIDFD 77
#endif
constexpr unsigned long kPidfdGetUserNamespace = _IO(0xFF, 9);
// The kernel nests user namespaces at most 32 deep (kernel/user_namespace.c); a longer walk is a bug.
constexpr int kMaxUsernsDepth = 32;

// What /proc/PID/uid_map and gid_map read in the initial user namespace: every id, mapped to itself.
constexpr char kIdentityMap[] = "         0          0 4294967295\n";
// An id map has at most 340 lines of 33 bytes (the kernel's limit on extents).
constexpr size_t kMaxIdMapBytes = 16384;

// Reads a /proc file of at most kMaxIdMapBytes whole, `name` relative to the directory `dir`
// (AT_FDCWD: the working directory); false (errno set) if it cannot.
bool ReadProcFile(int dir, const char* name, std::string* out) {
  int fd = openat(dir, name, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  char buf[kMaxIdMapBytes];
  size_t len = 0;
  ssize_t n;
  do {
    do n = read(fd, buf + len, sizeof buf - len); while (n < 0 && errno == EINTR);
    if (n > 0) len += static_cast<size_t>(n);
  } while (n > 0 && len < sizeof buf);
  int err = errno;
  close(fd);
  errno = err;
  if (n < 0) return false;
  out->assign(buf, len);
  return true;
}

// Whether this process is in the initial user namespace: its own maps map every id to itself.
bool SelfInitial() {
  std::string map;
  return ReadProcFile(AT_FDCWD, "/proc/self/uid_map", &map) && map == kIdentityMap &&
         ReadProcFile(AT_FDCWD, "/proc/self/gid_map", &map) && map == kIdentityMap;
}

// The uid_map and gid_map of the peer on `sock` (its pidfd: `pidfd`), read without ptrace access
// to it (anyone may read them; read from the initial user namespace, their outside ids are the
// kernel's). Race-free: /proc/PID of SO_PEERCRED's pid is opened as a directory and the maps are
// read relative to it (that fd stays bound to the process it was opened for), and the pidfd then
// shows the process still running, so that pid was the peer's, not a successor's, when it was
// opened. false with errno on failure (ESRCH: the peer has exited or its pid cannot be seen).
bool PeerIdMaps(int sock, int pidfd, std::string* uid, std::string* gid) {
  ucred cred{};
  socklen_t len = sizeof cred;
  if (getsockopt(sock, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) return false;
  if (cred.pid <= 0) {
    errno = ESRCH;
    return false;
  }
  int dir = open(("/proc/" + std::to_string(cred.pid)).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir < 0) return false;
  bool ok = ReadProcFile(dir, "uid_map", uid) && ReadProcFile(dir, "gid_map", gid);
  int err = errno;
  close(dir);
  if (!ok) {
    errno = err == ENOENT ? ESRCH : err;
    return false;
  }
  pollfd p{pidfd, POLLIN, 0};
  if (poll(&p, 1, 0) != 0) {  // readable: it has exited
    errno = ESRCH;
    return false;
  }
  return true;
}

// The user namespace of the peer on `sock` (its pidfd: `pidfd`) through /proc/PID/ns/user, for
// kernels with SO_PEERPIDFD but not PIDFD_GET_USER_NAMESPACE (Linux 6.5 to 6.10): opened through
// SO_PEERCRED's pid, then kept only if the pidfd shows the process still running, so the pid was not
// yet another process's when it was opened. -1 with errno on failure (ESRCH: the peer has exited).
int UsernsByProc(int sock, int pidfd) {
  ucred cred{};
  socklen_t len = sizeof cred;
  if (getsockopt(sock, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) return -1;
  if (cred.pid <= 0) {
    errno = ESRCH;
    return -1;
  }
  int ns = open(("/proc/" + std::to_string(cred.pid) + "/ns/user").c_str(), O_RDONLY | O_CLOEXEC);
  if (ns < 0) return -1;
  pollfd p{pidfd, POLLIN, 0};
  if (poll(&p, 1, 0) != 0) {
    close(ns);
    errno = ESRCH;
    return -1;
  }
  return ns;
}

// peerUserns(sock) -> { sameNs, owners }: where the process at the other end of a unix socket stands
// among user namespaces, relative to this process. Race-free: the peer is its pidfd (SO_PEERPIDFD,
// the process that called connect()), never a pid number another process could have taken over, and
// its namespace comes from that pidfd (PIDFD_GET_USER_NAMESPACE; before Linux 6.11, /proc/PID/ns/user
// checked against the pidfd: UsernsByProc); a peer that has exited fails with ESRCH. sameNs: the
// peer's user namespace is ours. Otherwise `owners` are the owner uids (NS_GET_OWNER_UID, in our
// namespace) of each namespace from the child of ours down to the peer's, outermost first
// (NS_GET_PARENT walks up; it fails with EPERM above our own, so a peer outside our subtree fails).
// The kernel lets us open another process's namespace only with ptrace read access to it
// (CAP_SYS_PTRACE for another uid's process). Without it, and only in the initial user namespace,
// the answer comes from the peer's id maps (PeerIdMaps): `sameNs` when both map every id to
// itself, which only a process with CAP_SETUID and CAP_SETGID over every id of the initial
// namespace could write into another; otherwise `owners` is null and `uidMap`/`gidMap` are the
// maps' text, for the caller to judge whose ids they are. Any other peer then fails with EACCES.
// Every fd this opens is closed before it returns, on every path.
Napi::Value PeerUserns(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int sock;
  CHECK_ARG(FdArg(info, 0, "sock", &sock));
  struct stat own;
  if (stat("/proc/self/ns/user", &own) < 0) THROW_ERRNO(env, "stat(/proc/self/ns/user)");
  int pidfd = -1;
  socklen_t len = sizeof pidfd;
  if (getsockopt(sock, SOL_SOCKET, SO_PEERPIDFD, &pidfd, &len) < 0) THROW_ERRNO(env, "getsockopt(SO_PEERPIDFD)");
  int ns = ioctl(pidfd, kPidfdGetUserNamespace, 0);
  if (ns < 0 && errno == ENOTTY) ns = UsernsByProc(sock, pidfd);
  int err = errno;
  if (ns < 0 && err == EACCES && SelfInitial()) {
    std::string uidMap, gidMap;
    bool read = PeerIdMaps(sock, pidfd, &uidMap, &gidMap);
    err = errno;
    close(pidfd);
    if (!read) {
      ErrnoError(env, err, "read /proc/PID/uid_map").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    bool initial = uidMap == kIdentityMap && gidMap == kIdentityMap;
    Napi::Object out = Napi::Object::New(env);
    out.Set("sameNs", Napi::Boolean::New(env, initial));
    if (initial) {
      out.Set("owners", Napi::Array::New(env));
    } else {
      out.Set("owners", env.Null());
      out.Set("uidMap", Napi::String::New(env, uidMap));
      out.Set("gidMap", Napi::String::New(env, gidMap));
    }
    return out;
  }
  close(pidfd);
  if (ns < 0) {
    errno = err;
    THROW_ERRNO(env, "ioctl(PIDFD_GET_USER_NAMESPACE)");
  }
  std::vector<uid_t> owners;  // innermost first while walking up
  const char* failed = nullptr;
  for (;;) {
    struct stat st;
    if (fstat(ns, &st) < 0) {
      failed = "fstat";
      break;
    }
    if (st.st_dev == own.st_dev && st.st_ino == own.st_ino) break;
    uid_t owner;
    if (owners.size() == kMaxUsernsDepth) {
      errno = ELOOP;
      failed = "ioctl(NS_GET_PARENT)";
      break;
    }
    if (ioctl(ns, NS_GET_OWNER_UID, &owner) < 0) {
      failed = "ioctl(NS_GET_OWNER_UID)";
      break;
    }
    owners.push_back(owner);
    int parent = ioctl(ns, NS_GET_PARENT);
    if (parent < 0) {
      failed = "ioctl(NS_GET_PARENT)";
      break;
    }
    close(ns);
    ns = parent;
  }
  err = errno;
  close(ns);
  if (failed != nullptr) {
    ErrnoError(env, err, failed).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  Napi::Object out = Napi::Object::New(env);
  out.Set("sameNs", Napi::Boolean::New(env, owners.empty()));
  Napi::Array list = Napi::Array::New(env, owners.size());
  for (uint32_t i = 0; i < owners.size(); i++) list.Set(i, Napi::Number::New(env, owners[owners.size() - 1 - i]));
  out.Set("owners", list);
  return out;
}

// socketpair(type) -> [fd, fd], AF_UNIX, close-on-exec.
Napi::Value SocketPair(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int type;
  CHECK_ARG(Int32Arg(info, 0, "type", &type));
  int sv[2];
  if (socketpair(AF_UNIX, type | SOCK_CLOEXEC, 0, sv) < 0) THROW_ERRNO(env, "socketpair");
  Napi::Array out = Napi::Array::New(env, 2);
  out.Set(0u, sv[0]);
  out.Set(1u, sv[1]);
  return out;
}

// capEffective() -> the calling thread's effective capability set, as a bigint.
Napi::Value CapEffective(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  __user_cap_header_struct hdr{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2]{};
  if (syscall(SYS_capget, &hdr, data) < 0) THROW_ERRNO(env, "capget");
  uint64_t eff = (static_cast<uint64_t>(data[1].effective) << 32) | data[0].effective;
  return Napi::BigInt::New(env, eff);
}

// close(fd), stopping this thread's watches of fd first.
Napi::Value Close(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd;
  CHECK_ARG(FdArg(info, 0, "fd", &fd));
  std::vector<Watch*> stale;
  for (Watch* w : watches)
    if (w->fd == fd) stale.push_back(w);
  for (Watch* w : stale) CloseWatch(w);
  if (close(fd) < 0 && errno != EINTR) THROW_ERRNO(env, "close");
  return env.Undefined();
}

}  // namespace

void InitUnix(Napi::Env env, Napi::Object exports);
void InitAccess(Napi::Env env, Napi::Object exports);

namespace {

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("nlOpen", Napi::Function::New(env, NlOpen));
  exports.Set("nlOpenIn", Napi::Function::New(env, NlOpenIn));
  exports.Set("setsockoptInt", Napi::Function::New(env, SetsockoptInt));
  exports.Set("getsockoptInt", Napi::Function::New(env, GetsockoptInt));
  exports.Set("nlSend", Napi::Function::New(env, NlSend));
  exports.Set("nlRecv", Napi::Function::New(env, NlRecv));
  exports.Set("watch", Napi::Function::New(env, WatchFd));
  exports.Set("ioctl", Napi::Function::New(env, IoctlBuf));
  exports.Set("ioctlInt", Napi::Function::New(env, IoctlInt));
  exports.Set("sendFds", Napi::Function::New(env, SendFds));
  exports.Set("recvFds", Napi::Function::New(env, RecvFds));
  exports.Set("peerCred", Napi::Function::New(env, PeerCred));
  exports.Set("peerGroups", Napi::Function::New(env, PeerGroups));
  exports.Set("peerUserns", Napi::Function::New(env, PeerUserns));
  exports.Set("socketpair", Napi::Function::New(env, SocketPair));
  exports.Set("capEffective", Napi::Function::New(env, CapEffective));
  exports.Set("close", Napi::Function::New(env, Close));
  InitUnix(env, exports);
  InitAccess(env, exports);
  return exports;
}

}  // namespace

NODE_API_MODULE(qbh, Init)
