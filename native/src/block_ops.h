#pragma once
#include <napi.h>

namespace custos {
// Synchronous calls: open/close and ioctls that only read or set kernel state
// and never wait on the device.
Napi::Value OpenReadOnly(const Napi::CallbackInfo& info);
Napi::Value Close(const Napi::CallbackInfo& info);
Napi::Value DropCache(const Napi::CallbackInfo& info);
Napi::Value GetSize64(const Napi::CallbackInfo& info);
Napi::Value GetLogicalBlockSize(const Napi::CallbackInfo& info);
Napi::Value GetPhysicalBlockSize(const Napi::CallbackInfo& info);
Napi::Value GetReadOnly(const Napi::CallbackInfo& info);
Napi::Value SetReadOnly(const Napi::CallbackInfo& info);
Napi::Value AllocAligned(const Napi::CallbackInfo& info);
Napi::Value AddressAlignment(const Napi::CallbackInfo& info);
// flock(LOCK_EX) / flock(LOCK_UN) on a file of custos's own state (never a
// device): the kernel drops the lock when the process dies, so a killed
// custos cannot leave the write-block state locked.
Napi::Value LockExclusive(const Napi::CallbackInfo& info);
Napi::Value Unlock(const Napi::CallbackInfo& info);
}  // namespace custos
