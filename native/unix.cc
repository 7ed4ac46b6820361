// qbh native addon, unix-socket part: what Node's `net` cannot do for a process that must read
// SCM_RIGHTS itself (a net.Socket reading the fd would swallow the ancillary data).
// Every argument is checked for type and range before any syscall. No policy lives here.

#include <napi.h>
#include <uv.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <string>

#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

namespace {

// The longest wait a caller may ask for (10 minutes): a bound, so a typo cannot block for ever.
constexpr int64_t kMaxTimeoutMs = 600000;

Napi::Value Fail(Napi::Env env, int err, const char* syscall) {
  Napi::Error e = Napi::Error::New(env, std::string(syscall) + ": " + strerror(err));
  e.Set("errno", Napi::Number::New(env, err));
  e.Set("code", Napi::String::New(env, uv_err_name(-err)));
  e.Set("syscall", Napi::String::New(env, syscall));
  e.ThrowAsJavaScriptException();
  return env.Undefined();
}

Napi::Value TypeFail(Napi::Env env, const char* message) {
  Napi::TypeError::New(env, message).ThrowAsJavaScriptException();
  return env.Undefined();
}

// unixConnect(path, timeoutMs) -> fd: a blocking, close-on-exec AF_UNIX stream socket connected
// to `path`. connect() waits at most timeoutMs when the listener's backlog is full (SO_SNDTIMEO
// bounds a unix connect), then fails with EAGAIN; sends and receives are bounded the same way.
Napi::Value UnixConnect(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 2 || !info[0].IsString() || !info[1].IsNumber())
    return TypeFail(env, "unixConnect(path: string, timeoutMs: number)");
  std::string path = info[0].As<Napi::String>().Utf8Value();
  sockaddr_un addr{};
  if (path.empty() || path.size() >= sizeof addr.sun_path || path.find('\0') != std::string::npos)
    return TypeFail(env, "unixConnect: path must be 1-107 bytes without NUL");
  double t = info[1].As<Napi::Number>().DoubleValue();
  if (!(t >= 1 && t <= kMaxTimeoutMs) || t != static_cast<double>(static_cast<int64_t>(t)))
    return TypeFail(env, "unixConnect: timeoutMs must be an integer from 1 to 600000");
  int64_t ms = static_cast<int64_t>(t);
  addr.sun_family = AF_UNIX;
  memcpy(addr.sun_path, path.data(), path.size());
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Fail(env, errno, "socket");
  timeval tv{static_cast<time_t>(ms / 1000), static_cast<suseconds_t>((ms % 1000) * 1000)};
  if (setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) < 0 ||
      setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) < 0) {
    int err = errno;
    close(fd);
    return Fail(env, err, "setsockopt");
  }
  int r;
  do r = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr); while (r < 0 && errno == EINTR);
  if (r < 0) {
    int err = errno;
    close(fd);
    return Fail(env, err, "connect");
  }
  return Napi::Number::New(env, fd);
}

// unixListen(path, backlog) -> fd: a non-blocking, close-on-exec AF_UNIX stream socket bound to
// `path` (created with the caller's umask) and listening with `backlog`. The caller accepts with
// unixAccept, at the pace it chooses (libuv's own accept loop runs until the queue is empty, and a
// client that refills it as fast keeps it running).
Napi::Value UnixListen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 2 || !info[0].IsString() || !info[1].IsNumber())
    return TypeFail(env, "unixListen(path: string, backlog: number)");
  std::string path = info[0].As<Napi::String>().Utf8Value();
  sockaddr_un addr{};
  if (path.empty() || path.size() >= sizeof addr.sun_path || path.find('\0') != std::string::npos)
    return TypeFail(env, "unixListen: path must be 1-107 bytes without NUL");
  double b = info[1].As<Napi::Number>().DoubleValue();
  if (!(b >= 1 && b <= 65535) || b != static_cast<double>(static_cast<int>(b)))
    return TypeFail(env, "unixListen: backlog must be an integer from 1 to 65535");
  addr.sun_family = AF_UNIX;
  memcpy(addr.sun_path, path.data(), path.size());
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return Fail(env, errno, "socket");
  const char* step = "bind";
  int r = bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  if (r == 0) {
    step = "listen";
    r = listen(fd, static_cast<int>(b));
  }
  if (r < 0) {
    int err = errno;
    close(fd);
    return Fail(env, err, step);
  }
  return Napi::Number::New(env, fd);
}

// unixAccept(fd) -> fd | null: one pending connection of a listening socket, non-blocking and
// close-on-exec; null when none is pending (or the one pending was aborted by its client).
Napi::Value UnixAccept(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 1 || !info[0].IsNumber()) return TypeFail(env, "unixAccept(fd: number)");
  double d = info[0].As<Napi::Number>().DoubleValue();
  if (!(d >= 0 && d <= INT32_MAX) || d != static_cast<double>(static_cast<int>(d)))
    return TypeFail(env, "unixAccept: fd must be an integer from 0 to 2147483647");
  int fd;
  do fd = accept4(static_cast<int>(d), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
  while (fd < 0 && errno == EINTR);
  if (fd < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == ECONNABORTED)) return env.Null();
  if (fd < 0) return Fail(env, errno, "accept4");
  return Napi::Number::New(env, fd);
}

}  // namespace

void InitUnix(Napi::Env env, Napi::Object exports) {
  exports.Set("unixConnect", Napi::Function::New(env, UnixConnect));
  exports.Set("unixListen", Napi::Function::New(env, UnixListen));
  exports.Set("unixAccept", Napi::Function::New(env, UnixAccept));
}
