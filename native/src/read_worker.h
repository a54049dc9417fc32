#pragma once
#include <napi.h>

namespace custos {
// Calls that wait on the device run on the libuv thread pool and return Promises,
// so a slow or failing drive never blocks the event loop.
Napi::Value ReadAt(const Napi::CallbackInfo& info);
Napi::Value Fdatasync(const Napi::CallbackInfo& info);
Napi::Value FlushBuffers(const Napi::CallbackInfo& info);
}  // namespace custos
