// qbh native addon: the syscalls Node.js lacks, and nothing else.
// Every function is a thin wrapper; policy, parsing and validation live in TypeScript.
// Errors are thrown as Error objects carrying errno, code ('EEXIST'…) and syscall.

#include <napi.h>
#include <uv.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include <linux/capability.h>
#include <linux/netlink.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/un.h>
#include <unistd.h>

namespace {

Napi::Error ErrnoError(Napi::Env env, int err, const char* syscall) {
  Napi::Error e = Napi::Error::New(env, std::string(syscall) + ": " + strerror(err));
  e.Set("errno", Napi::Number::New(env, err));
  e.Set("code", Napi::String::New(env, uv_err_name(-err)));
  e.Set("syscall", Napi::String::New(env, syscall));
  return e;
}

#define THROW_ERRNO(env, name)                      \
  do {                                              \
    ErrnoError(env, errno, name).ThrowAsJavaScriptException(); \
    return env.Undefined();                          \
  } while (0)

int IntArg(const Napi::CallbackInfo& info, size_t i) {
  return info[i].As<Napi::Number>().Int32Value();
}

// nlOpen(protocol) -> { fd, portId }: a non-blocking, close-on-exec netlink socket bound to a
// kernel-chosen port id.
Napi::Value NlOpen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, IntArg(info, 0));
  if (fd < 0) THROW_ERRNO(env, "socket");
  sockaddr_nl addr{};
  addr.nl_family = AF_NETLINK;
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) < 0) {
    int err = errno;
    close(fd);
    ErrnoError(env, err, "bind").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  socklen_t len = sizeof addr;
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) < 0) {
    int err = errno;
    close(fd);
    ErrnoError(env, err, "getsockname").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  Napi::Object out = Napi::Object::New(env);
  out.Set("fd", fd);
  out.Set("portId", Napi::Number::New(env, addr.nl_pid));
  return out;
}

// setsockoptInt(fd, level, name, value)
Napi::Value SetsockoptInt(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int value = IntArg(info, 3);
  if (setsockopt(IntArg(info, 0), IntArg(info, 1), IntArg(info, 2), &value, sizeof value) < 0)
    THROW_ERRNO(env, "setsockopt");
  return env.Undefined();
}

// getsockoptInt(fd, level, name) -> number
Napi::Value GetsockoptInt(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int value = 0;
  socklen_t len = sizeof value;
  if (getsockopt(IntArg(info, 0), IntArg(info, 1), IntArg(info, 2), &value, &len) < 0)
    THROW_ERRNO(env, "getsockopt");
  return Napi::Number::New(env, value);
}

// nlSend(fd, buffer) -> bytes sent, to the kernel (port 0).
Napi::Value NlSend(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Buffer<uint8_t> buf = info[1].As<Napi::Buffer<uint8_t>>();
  sockaddr_nl addr{};
  addr.nl_family = AF_NETLINK;
  ssize_t n;
  do {
    n = sendto(IntArg(info, 0), buf.Data(), buf.Length(), 0, reinterpret_cast<sockaddr*>(&addr),
               sizeof addr);
  } while (n < 0 && errno == EINTR);
  if (n < 0) THROW_ERRNO(env, "sendto");
  return Napi::Number::New(env, static_cast<double>(n));
}

// nlRecv(fd, timeoutMs) -> { data, portId, truncated } | null on timeout (timeoutMs 0: do not wait).
// The datagram is sized first with MSG_PEEK|MSG_TRUNC so it is always read whole.
Napi::Value NlRecv(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = IntArg(info, 0);
  int timeout = IntArg(info, 1);
  if (timeout != 0) {
    pollfd p{fd, POLLIN, 0};
    int r;
    do r = poll(&p, 1, timeout); while (r < 0 && errno == EINTR);
    if (r < 0) THROW_ERRNO(env, "poll");
    if (r == 0) return env.Null();
  }
  sockaddr_nl addr{};
  iovec iov{nullptr, 0};
  msghdr msg{};
  msg.msg_name = &addr;
  msg.msg_namelen = sizeof addr;
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  ssize_t size;
  do size = recvmsg(fd, &msg, MSG_PEEK | MSG_TRUNC); while (size < 0 && errno == EINTR);
  if (size < 0) {
    if (errno == EAGAIN) return env.Null();
    THROW_ERRNO(env, "recvmsg");
  }
  // Read with at least 32 KiB of room, as iproute2 does: the kernel sizes later dump chunks
  // by the largest buffer user space has offered, so a tight buffer means one link per datagram.
  static thread_local std::vector<uint8_t> scratch;
  scratch.resize(size > 32768 ? static_cast<size_t>(size) : 32768);
  iov.iov_base = scratch.data();
  iov.iov_len = scratch.size();
  msg.msg_namelen = sizeof addr;
  ssize_t n;
  do n = recvmsg(fd, &msg, 0); while (n < 0 && errno == EINTR);
  if (n < 0) THROW_ERRNO(env, "recvmsg");
  Napi::Object out = Napi::Object::New(env);
  out.Set("data", Napi::Buffer<uint8_t>::Copy(env, scratch.data(), static_cast<size_t>(n)));
  out.Set("portId", Napi::Number::New(env, addr.nl_pid));
  out.Set("truncated", Napi::Boolean::New(env, (msg.msg_flags & MSG_TRUNC) != 0));
  return out;
}

// A readability watcher on the event loop (uv_poll): the callback runs on the JS thread, so the
// library reads with nlRecv(fd, 0) and never blocks the loop or a threadpool slot.
struct Watch {
  uv_poll_t handle;
  Napi::FunctionReference callback;
  napi_env env;
};

void OnReadable(uv_poll_t* handle, int status, int /*events*/) {
  Watch* w = static_cast<Watch*>(handle->data);
  Napi::Env env(w->env);
  Napi::HandleScope scope(env);
  napi_value resource;
  napi_create_object(w->env, &resource);
  Napi::AsyncContext ctx(env, "qbh.watch", Napi::Object(env, resource));
  w->callback.MakeCallback(env.Global(), {Napi::Number::New(env, status)}, ctx);
}

Napi::Value WatchStop(const Napi::CallbackInfo& info) {
  Watch* w = static_cast<Watch*>(info.Data());
  if (w->handle.data != nullptr) {
    uv_poll_stop(&w->handle);
    w->handle.data = nullptr;
    w->callback.Reset();
    uv_close(reinterpret_cast<uv_handle_t*>(&w->handle),
             [](uv_handle_t* h) { delete reinterpret_cast<Watch*>(h); });
  }
  return info.Env().Undefined();
}

// watch(fd, callback(status)) -> stop(): calls back whenever fd is readable, until stopped.
Napi::Value WatchFd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uv_loop_t* loop = nullptr;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok) {
    Napi::Error::New(env, "no event loop").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  Watch* w = new Watch();
  w->env = env;
  int err = uv_poll_init(loop, &w->handle, IntArg(info, 0));
  if (err != 0) {
    delete w;
    ErrnoError(env, -err, "uv_poll_init").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  w->handle.data = w;
  w->callback = Napi::Persistent(info[1].As<Napi::Function>());
  uv_poll_start(&w->handle, UV_READABLE, OnReadable);
  return Napi::Function::New(env, WatchStop, "stop", w);
}

// ioctl(fd, request, buffer) -> return value; the buffer is read and written in place.
Napi::Value IoctlBuf(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Buffer<uint8_t> buf = info[2].As<Napi::Buffer<uint8_t>>();
  int r = ioctl(IntArg(info, 0), static_cast<unsigned long>(info[1].As<Napi::Number>().Int64Value()),
                buf.Data());
  if (r < 0) THROW_ERRNO(env, "ioctl");
  return Napi::Number::New(env, r);
}

// ioctlInt(fd, request, value) -> return value; for requests that take their argument by value.
Napi::Value IoctlInt(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int r = ioctl(IntArg(info, 0), static_cast<unsigned long>(info[1].As<Napi::Number>().Int64Value()),
                static_cast<unsigned long>(info[2].As<Napi::Number>().Int64Value()));
  if (r < 0) THROW_ERRNO(env, "ioctl");
  return Napi::Number::New(env, r);
}

// sendFds(sock, data, fds) -> bytes sent: one sendmsg with one SCM_RIGHTS cmsg.
// MSG_NOSIGNAL: a closed peer is an EPIPE error, not a fatal signal.
Napi::Value SendFds(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Buffer<uint8_t> data = info[1].As<Napi::Buffer<uint8_t>>();
  Napi::Array arr = info[2].As<Napi::Array>();
  std::vector<int> fds(arr.Length());
  for (uint32_t i = 0; i < arr.Length(); i++) fds[i] = arr.Get(i).As<Napi::Number>().Int32Value();
  iovec iov{data.Data(), data.Length()};
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
  do n = sendmsg(IntArg(info, 0), &msg, MSG_NOSIGNAL); while (n < 0 && errno == EINTR);
  if (n < 0) THROW_ERRNO(env, "sendmsg");
  return Napi::Number::New(env, static_cast<double>(n));
}

// recvFds(sock, maxBytes, maxFds, timeoutMs) -> { data, fds, truncated } | null on timeout.
// Received fds are close-on-exec (MSG_CMSG_CLOEXEC); a truncated cmsg is reported, not hidden.
Napi::Value RecvFds(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = IntArg(info, 0);
  size_t maxBytes = static_cast<size_t>(IntArg(info, 1));
  size_t maxFds = static_cast<size_t>(IntArg(info, 2));
  int timeout = info.Length() > 3 ? IntArg(info, 3) : -1;
  if (timeout >= 0) {
    pollfd p{fd, POLLIN, 0};
    int r;
    do r = poll(&p, 1, timeout); while (r < 0 && errno == EINTR);
    if (r < 0) THROW_ERRNO(env, "poll");
    if (r == 0) return env.Null();
  }
  std::vector<uint8_t> data(maxBytes > 0 ? maxBytes : 1);
  std::vector<char> control(CMSG_SPACE(sizeof(int) * (maxFds > 0 ? maxFds : 1)));
  iovec iov{data.data(), data.size()};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control.data();
  msg.msg_controllen = control.size();
  ssize_t n;
  do n = recvmsg(fd, &msg, MSG_CMSG_CLOEXEC); while (n < 0 && errno == EINTR);
  if (n < 0) THROW_ERRNO(env, "recvmsg");
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
  Napi::Object out = Napi::Object::New(env);
  out.Set("data", Napi::Buffer<uint8_t>::Copy(env, data.data(), static_cast<size_t>(n)));
  out.Set("fds", fds);
  out.Set("truncated", Napi::Boolean::New(env, (msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) != 0));
  return out;
}

// peerCred(sock) -> { pid, uid, gid } of the process at the other end of a unix socket.
Napi::Value PeerCred(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ucred cred{};
  socklen_t len = sizeof cred;
  if (getsockopt(IntArg(info, 0), SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
    THROW_ERRNO(env, "getsockopt");
  Napi::Object out = Napi::Object::New(env);
  out.Set("pid", Napi::Number::New(env, cred.pid));
  out.Set("uid", Napi::Number::New(env, cred.uid));
  out.Set("gid", Napi::Number::New(env, cred.gid));
  return out;
}

// peerGroups(sock) -> supplementary gids of the peer, as they were at connect() (SO_PEERGROUPS).
Napi::Value PeerGroups(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::vector<gid_t> groups(64);
  socklen_t len = groups.size() * sizeof(gid_t);
  while (getsockopt(IntArg(info, 0), SOL_SOCKET, SO_PEERGROUPS, groups.data(), &len) < 0) {
    if (errno != ERANGE) THROW_ERRNO(env, "getsockopt");
    groups.resize(len / sizeof(gid_t) + 1);
    len = groups.size() * sizeof(gid_t);
  }
  Napi::Array out = Napi::Array::New(env);
  for (uint32_t i = 0; i < len / sizeof(gid_t); i++) out.Set(i, Napi::Number::New(env, groups[i]));
  return out;
}

// socketpair(type) -> [fd, fd], AF_UNIX, close-on-exec.
Napi::Value SocketPair(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int sv[2];
  if (socketpair(AF_UNIX, IntArg(info, 0) | SOCK_CLOEXEC, 0, sv) < 0) THROW_ERRNO(env, "socketpair");
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

// close(fd)
Napi::Value Close(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (close(IntArg(info, 0)) < 0 && errno != EINTR) THROW_ERRNO(env, "close");
  return env.Undefined();
}

}  // namespace

void InitUnix(Napi::Env env, Napi::Object exports);

namespace {

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("nlOpen", Napi::Function::New(env, NlOpen));
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
  exports.Set("socketpair", Napi::Function::New(env, SocketPair));
  exports.Set("capEffective", Napi::Function::New(env, CapEffective));
  exports.Set("close", Napi::Function::New(env, Close));
  InitUnix(env, exports);
  return exports;
}

}  // namespace

NODE_API_MODULE(qbh, Init)
