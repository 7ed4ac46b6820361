// The argument checks and errors of the native addon, shared by its source files (qbh.cc; a new
// file such as unix.cc includes this too). Every function that takes a value from JavaScript checks
// it with these before any syscall, so the contract stated at the top of qbh.cc holds for all of
// them. A check that fails has thrown (TypeError/RangeError with a Node-style `code`) and returns
// false: `CHECK_ARG(FdArg(info, 0, "fd", &fd));` then returns undefined at once.
#pragma once

#include <napi.h>

#include <cstddef>
#include <cstdint>
#include <string>

namespace qbh {

// An Error with errno, code (strerrorname_np: 'EBADFD'…) and syscall.
Napi::Error ErrnoError(Napi::Env env, int err, const char* syscall);
// Throws a TypeError (or, if `range`, a RangeError) with `code`; returns false.
bool ArgError(Napi::Env env, bool range, const char* code, const std::string& msg);
// info[i] is a number and an integer in [min, max]; never coerced.
bool IntArg(const Napi::CallbackInfo& info, size_t i, const char* name, int64_t min, int64_t max, int64_t* out);
// info[i] is an fd: an integer 0..2^31-1.
bool FdArg(const Napi::CallbackInfo& info, size_t i, const char* name, int* out);
bool Int32Arg(const Napi::CallbackInfo& info, size_t i, const char* name, int* out);
// A poll(2) timeout in ms: 0..2^31-1 (a fraction rounds up); Infinity, or undefined if `optional`, is -1.
bool TimeoutArg(const Napi::CallbackInfo& info, size_t i, bool optional, int* out);
// info[i] is a Uint8Array (a detached one has length 0). The pointer is valid only until
// JavaScript runs again: take it after every check that may run a getter.
bool BytesArg(const Napi::CallbackInfo& info, size_t i, const char* name, uint8_t** data, size_t* len);

}  // namespace qbh

#define CHECK_ARG(expr)                  \
  do {                                   \
    if (!(expr)) return env.Undefined(); \
  } while (0)

#define THROW_ERRNO(env, name)                                      \
  do {                                                              \
    qbh::ErrnoError(env, errno, name).ThrowAsJavaScriptException(); \
    return env.Undefined();                                         \
  } while (0)
