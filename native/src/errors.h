// Errors thrown to JavaScript carry errno and syscall as properties so the
// TypeScript layer can build typed errors (device, offset, errno) from them.
#pragma once
#include <napi.h>
#include <string>

namespace custos {

inline Napi::Error SysError(Napi::Env env, const std::string& syscall, int err) {
  Napi::Error e = Napi::Error::New(env, syscall + " failed: errno " + std::to_string(err));
  e.Set("errno", Napi::Number::New(env, err));
  e.Set("syscall", Napi::String::New(env, syscall));
  return e;
}

inline bool ExpectArgs(const Napi::CallbackInfo& info, size_t n) {
  if (info.Length() < n) {
    Napi::TypeError::New(info.Env(), "expected " + std::to_string(n) + " arguments")
        .ThrowAsJavaScriptException();
    return false;
  }
  return true;
}

}  // namespace custos
