// Adler-32 for E01 chunks, from the zlib inside Node itself (its SIMD
// version, exported by the node binary for addons): several times faster
// than the JavaScript loop on the raw chunks that make up most of an image.
#include "checksum.h"

#include <zlib.h>

namespace custos {

Napi::Value Adler32(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 4 || !info[0].IsTypedArray() || !info[1].IsNumber() || !info[2].IsNumber() || !info[3].IsNumber()) {
    Napi::TypeError::New(env, "adler32(view, start, end, seed)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  auto view = info[0].As<Napi::TypedArray>();
  if (view.TypedArrayType() != napi_uint8_array) {
    Napi::TypeError::New(env, "view must be a Uint8Array").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  const double start = info[1].As<Napi::Number>().DoubleValue();
  const double end = info[2].As<Napi::Number>().DoubleValue();
  const size_t length = view.ElementLength();
  if (!(start >= 0 && end >= start && end <= static_cast<double>(length))) {
    Napi::RangeError::New(env, "start and end must lie within the view").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  // Works for views over a SharedArrayBuffer too (napi_get_typedarray_info).
  const uint8_t* data = info[0].As<Napi::Uint8Array>().Data();
  const uLong seed = info[3].As<Napi::Number>().Uint32Value();
  const uLong sum = adler32_z(seed, data + static_cast<size_t>(start), static_cast<size_t>(end - start));
  return Napi::Number::New(env, static_cast<double>(sum));
}

}  // namespace custos
