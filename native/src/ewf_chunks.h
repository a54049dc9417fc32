#pragma once
#include <napi.h>

namespace custos {

Napi::Value StoreChunks(const Napi::CallbackInfo& info);

}  // namespace custos
