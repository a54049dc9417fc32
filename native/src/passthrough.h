#pragma once
#include <napi.h>

#include <cstddef>
#include <cstdint>
#include <string>

namespace custos {
// The read-only allowlist (passthrough.cc); false with the reason in *why.
bool ScsiAllowed(const uint8_t* cdb, size_t len, size_t dataIn, std::string* why);
bool NvmeAdminAllowed(uint8_t opcode, std::string* why);
// Asynchronous (thread pool): a drive may take seconds to answer.
Napi::Value ScsiRead(const Napi::CallbackInfo& info);
Napi::Value NvmeAdminRead(const Napi::CallbackInfo& info);
Napi::Value PassThroughAllowed(const Napi::CallbackInfo& info);
}  // namespace custos
