// custos native addon: read-only block device access for the acquisition core.
#include <napi.h>

#include "block_ops.h"
#include "checksum.h"
#include "read_worker.h"

namespace {

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("openReadOnly", Napi::Function::New(env, custos::OpenReadOnly));
  exports.Set("close", Napi::Function::New(env, custos::Close));
  exports.Set("dropCache", Napi::Function::New(env, custos::DropCache));
  exports.Set("getSize64", Napi::Function::New(env, custos::GetSize64));
  exports.Set("getLogicalBlockSize", Napi::Function::New(env, custos::GetLogicalBlockSize));
  exports.Set("getPhysicalBlockSize", Napi::Function::New(env, custos::GetPhysicalBlockSize));
  exports.Set("getReadOnly", Napi::Function::New(env, custos::GetReadOnly));
  exports.Set("setReadOnly", Napi::Function::New(env, custos::SetReadOnly));
  exports.Set("allocAligned", Napi::Function::New(env, custos::AllocAligned));
  exports.Set("addressAlignment", Napi::Function::New(env, custos::AddressAlignment));
  exports.Set("readAt", Napi::Function::New(env, custos::ReadAt));
  exports.Set("fdatasync", Napi::Function::New(env, custos::Fdatasync));
  exports.Set("flushBuffers", Napi::Function::New(env, custos::FlushBuffers));
  exports.Set("adler32", Napi::Function::New(env, custos::Adler32));
  exports.Set("lockExclusive", Napi::Function::New(env, custos::LockExclusive));
  exports.Set("unlock", Napi::Function::New(env, custos::Unlock));
  return exports;
}

}  // namespace

NODE_API_MODULE(custos_native, Init)
