#pragma once
#include <napi.h>

namespace custos {

Napi::Value Adler32(const Napi::CallbackInfo& info);

}  // namespace custos
