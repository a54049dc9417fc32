// custos native addon: read-only block device access for the acquisition core.
#include <malloc.h>
#include <napi.h>

#include "block_ops.h"
#include "checksum.h"
#include "ewf_chunks.h"
#include "passthrough.h"
#include "read_worker.h"

namespace {

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  // glibc raises its mmap threshold each time a large mmapped block is freed (up to 32 MiB), after
  // which blocks of that size come from its arenas and stay in the process when freed. With 4 MiB
  // buffers made and dropped all through a run that grew RSS by some 30 MiB over the first minutes
  // (docs/memory.md). A fixed threshold (the default's 128 KiB) gives large blocks back at once.
  mallopt(M_MMAP_THRESHOLD, 128 * 1024);
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
  exports.Set("storeChunks", Napi::Function::New(env, custos::StoreChunks));
  exports.Set("scsiRead", Napi::Function::New(env, custos::ScsiRead));
  exports.Set("nvmeAdminRead", Napi::Function::New(env, custos::NvmeAdminRead));
  exports.Set("passThroughAllowed", Napi::Function::New(env, custos::PassThroughAllowed));
  exports.Set("lockExclusive", Napi::Function::New(env, custos::LockExclusive));
  exports.Set("unlock", Napi::Function::New(env, custos::Unlock));
  return exports;
}

}  // namespace

NODE_API_MODULE(custos_native, Init)
