// E01 chunk storage for a whole block on the libuv thread pool: each chunk
// becomes a zlib stream when that is smaller, or stays raw with its Adler-32.
// Done here rather than with node:zlib in worker threads because
// deflateSync sets up a fresh 270 KiB deflate state per 32 KiB chunk, which
// V8 frees only when it collects: tens of MiB per worker, plus an isolate
// each. Here every pool thread keeps one deflate state per level and reuses
// it. The library is the zlib inside Node (exported by the node binary, as
// for adler32), so the streams are byte for byte those of node:zlib.
#include "ewf_chunks.h"

#include "errors.h"

#include <zlib.h>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace custos {

namespace {

enum Mode { kNone = 0, kEmpty = 1, kFast = 2, kBest = 3 };

// Fast mode's pre-test (docs/e01.md): order-0 entropy of every 4th byte;
// above this many bits a chunk is taken as compressed or encrypted and kept
// raw without trying.
constexpr double kIncompressibleBits = 7.95;
constexpr size_t kSampleStride = 4;

bool LooksIncompressible(const uint8_t* p, size_t n) {
  uint32_t counts[256] = {0};
  size_t samples = 0;
  for (size_t i = 0; i < n; i += kSampleStride) {
    counts[p[i]]++;
    samples++;
  }
  if (samples < 1024) return false;
  double bits = 0;
  for (uint32_t c : counts) {
    if (c > 0) bits -= c * std::log2(static_cast<double>(c) / static_cast<double>(samples));
  }
  return bits / static_cast<double>(samples) > kIncompressibleBits;
}

bool IsOneByte(const uint8_t* p, size_t n) {
  const uint8_t b = p[0];
  if (p[n - 1] != b || p[n >> 1] != b) return false;
  for (size_t i = 1; i < n; i++) {
    if (p[i] != b) return false;
  }
  return true;
}

// One deflate state per level per pool thread, reset for each chunk.
class Deflater {
 public:
  ~Deflater() {
    if (ready_) deflateEnd(&z_);
  }
  // Deflates [p, p+n) into out (room for n - 1 bytes). Returns the stream's
  // length, 0 if it is not smaller than the chunk, -1 (and *err) on a zlib error.
  long Deflate(int level, const uint8_t* p, size_t n, uint8_t* out, std::string* err) {
    if (!ready_) {
      std::memset(&z_, 0, sizeof z_);
      // As node:zlib's deflateSync: zlib format, 32 KiB window, memLevel 8, default strategy.
      if (deflateInit2(&z_, level, Z_DEFLATED, 15, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
        *err = "deflateInit2 failed";
        return -1;
      }
      ready_ = true;
    } else if (deflateReset(&z_) != Z_OK) {
      *err = "deflateReset failed";
      return -1;
    }
    z_.next_in = const_cast<Bytef*>(p);
    z_.avail_in = static_cast<uInt>(n);
    z_.next_out = out;
    z_.avail_out = static_cast<uInt>(n - 1);
    int rc = deflate(&z_, Z_FINISH);
    if (rc == Z_STREAM_END) return static_cast<long>(z_.total_out);
    if (rc == Z_OK || rc == Z_BUF_ERROR) return 0;  // out of room: the stream is not smaller
    *err = std::string("deflate failed: ") + (z_.msg ? z_.msg : std::to_string(rc));
    return -1;
  }

 private:
  z_stream z_;
  bool ready_ = false;
};

thread_local Deflater fastDeflater;
thread_local Deflater bestDeflater;

// The stream of a chunk of one repeated byte is the same every time: made
// once per byte value, length and level for the whole process.
std::mutex fillMutex;
std::map<uint64_t, std::vector<uint8_t>> fillStreams;

bool FillStream(int level, uint8_t b, size_t n, std::vector<uint8_t>* out, std::string* err) {
  const uint64_t key = (static_cast<uint64_t>(level) << 48) | (static_cast<uint64_t>(b) << 40) | n;
  {
    std::lock_guard<std::mutex> lock(fillMutex);
    auto it = fillStreams.find(key);
    if (it != fillStreams.end()) {
      *out = it->second;
      return true;
    }
  }
  std::vector<uint8_t> chunk(n, b);
  // A run of one byte always deflates far below its length; room for the
  // worst case anyway, so a tiny chunk still gets its stream.
  std::vector<uint8_t> z(deflateBound(nullptr, static_cast<uLong>(n)) + 1);
  Deflater d;
  long len = d.Deflate(level, chunk.data(), n, z.data(), err);
  if (len < 0) return false;
  if (len == 0) {
    // Only a chunk of a few bytes: deflate with unlimited room.
    uLongf size = static_cast<uLongf>(z.size());
    if (compress2(z.data(), &size, chunk.data(), static_cast<uLong>(n), level) != Z_OK) {
      *err = "compress2 failed";
      return false;
    }
    len = static_cast<long>(size);
  }
  z.resize(static_cast<size_t>(len));
  std::lock_guard<std::mutex> lock(fillMutex);
  fillStreams.emplace(key, z);
  *out = std::move(z);
  return true;
}

class StoreWorker : public Napi::AsyncWorker {
 public:
  StoreWorker(Napi::Env env, Mode mode, const uint8_t* block, size_t length, size_t chunkSize, uint32_t* sizes,
              uint32_t* adlers, std::vector<uint8_t> raw)
      : Napi::AsyncWorker(env),
        deferred_(Napi::Promise::Deferred::New(env)),
        mode_(mode),
        block_(block),
        length_(length),
        chunkSize_(chunkSize),
        sizes_(sizes),
        adlers_(adlers),
        raw_(std::move(raw)) {}

  Napi::Promise Promise() { return deferred_.Promise(); }
  void Keep(Napi::Object o) { keep_.push_back(Napi::Persistent(o)); }

  void Execute() override {
    const auto t0 = std::chrono::steady_clock::now();
    // One scratch per pool thread, kept: a block's worth allocated and freed per call made glibc
    // keep freed blocks in its arenas (see addon.cc on the mmap threshold).
    thread_local std::vector<uint8_t> scratch;
    std::vector<uint8_t>& packed = scratch;
    if (packed.size() < length_) packed.resize(length_);
    size_t at = 0;
    const size_t count = (length_ + chunkSize_ - 1) / chunkSize_;
    std::vector<uint8_t> fill;
    for (size_t i = 0; i < count; i++) {
      const uint8_t* p = block_ + i * chunkSize_;
      const size_t n = std::min(chunkSize_, length_ - i * chunkSize_);
      sizes_[i] = 0;
      adlers_[i] = 0;
      long stored = 0;
      if (mode_ != kNone && !raw_[i]) {
        if (IsOneByte(p, n)) {
          if (!FillStream(mode_ == kBest ? 9 : 1, p[0], n, &fill, &error_)) return SetError(error_);
          // The stream may exceed what is left of the scratch only for tiny chunks.
          if (at + fill.size() > packed.size()) packed.resize(at + fill.size());
          std::memcpy(packed.data() + at, fill.data(), fill.size());
          stored = static_cast<long>(fill.size());
        } else if (mode_ == kBest || (mode_ == kFast && !LooksIncompressible(p, n))) {
          if (packed.size() < at + n) packed.resize(at + n);
          stored = (mode_ == kBest ? bestDeflater : fastDeflater).Deflate(mode_ == kBest ? 9 : 1, p, n, packed.data() + at, &error_);
          if (stored < 0) return SetError(error_);
        }
      }
      if (stored > 0) {
        sizes_[i] = static_cast<uint32_t>(stored);
        at += static_cast<size_t>(stored);
      } else {
        adlers_[i] = static_cast<uint32_t>(adler32_z(1, p, n));
      }
    }
    used_ = at;
    result_.assign(packed.begin(), packed.begin() + static_cast<std::ptrdiff_t>(at));
    busyMs_ = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  }

  void OnOK() override {
    Napi::Env env = Env();
    Napi::Object result = Napi::Object::New(env);
    result.Set("packed", Napi::Buffer<uint8_t>::Copy(env, result_.data(), used_));
    result.Set("busyMs", Napi::Number::New(env, busyMs_));
    std::vector<uint8_t>().swap(result_);
    deferred_.Resolve(result);
    keep_.clear();
  }

  void OnError(const Napi::Error& e) override {
    deferred_.Reject(e.Value());
    keep_.clear();
  }

 private:
  Napi::Promise::Deferred deferred_;
  Mode mode_;
  const uint8_t* block_;
  size_t length_;
  size_t chunkSize_;
  uint32_t* sizes_;
  uint32_t* adlers_;
  std::vector<uint8_t> raw_;
  std::vector<Napi::ObjectReference> keep_;  // the block and the arrays outlive the work
  std::vector<uint8_t> result_;  // the streams, from the thread's scratch to the main thread
  size_t used_ = 0;
  double busyMs_ = 0;
  std::string error_;
};

}  // namespace

// storeChunks(block, length, chunkSize, mode, raw, sizes, adlers): stores the
// chunks of block[0, length). mode: 0 none, 1 empty-block, 2 fast, 3 best.
// raw[i] != 0 keeps chunk i raw whatever the mode. Fills sizes[i] (stream
// length, 0 for raw) and adlers[i] (raw chunks' checksum); resolves with
// { packed: the streams back to back, busyMs }.
Napi::Value StoreChunks(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!ExpectArgs(info, 7)) return env.Undefined();
  if (!info[0].IsTypedArray() || !info[1].IsNumber() || !info[2].IsNumber() || !info[3].IsNumber() ||
      !info[4].IsTypedArray() || !info[5].IsTypedArray() || !info[6].IsTypedArray()) {
    Napi::TypeError::New(env, "storeChunks(block, length, chunkSize, mode, raw, sizes, adlers)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  auto block = info[0].As<Napi::TypedArray>();
  auto raw = info[4].As<Napi::TypedArray>();
  auto sizes = info[5].As<Napi::TypedArray>();
  auto adlers = info[6].As<Napi::TypedArray>();
  if (block.TypedArrayType() != napi_uint8_array || raw.TypedArrayType() != napi_uint8_array ||
      sizes.TypedArrayType() != napi_uint32_array || adlers.TypedArrayType() != napi_uint32_array) {
    Napi::TypeError::New(env, "block and raw are Uint8Arrays, sizes and adlers Uint32Arrays").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  const double length = info[1].As<Napi::Number>().DoubleValue();
  const double chunkSize = info[2].As<Napi::Number>().DoubleValue();
  const int mode = info[3].As<Napi::Number>().Int32Value();
  if (!(chunkSize >= 1 && chunkSize <= 1 << 30 && length >= 0 && length <= static_cast<double>(block.ElementLength()) &&
        std::floor(length) == length && std::floor(chunkSize) == chunkSize) ||
      mode < kNone || mode > kBest) {
    Napi::RangeError::New(env, "length, chunkSize or mode out of range").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  const size_t count = (static_cast<size_t>(length) + static_cast<size_t>(chunkSize) - 1) / static_cast<size_t>(chunkSize);
  if (raw.ElementLength() < count || sizes.ElementLength() < count || adlers.ElementLength() < count) {
    Napi::RangeError::New(env, "raw, sizes and adlers need one entry per chunk").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  const uint8_t* rawFlags = raw.As<Napi::Uint8Array>().Data();
  auto* worker = new StoreWorker(env, static_cast<Mode>(mode), block.As<Napi::Uint8Array>().Data(), static_cast<size_t>(length),
                                 static_cast<size_t>(chunkSize), sizes.As<Napi::Uint32Array>().Data(),
                                 adlers.As<Napi::Uint32Array>().Data(), std::vector<uint8_t>(rawFlags, rawFlags + count));
  worker->Keep(block);
  worker->Keep(sizes);
  worker->Keep(adlers);
  Napi::Promise promise = worker->Promise();
  worker->Queue();
  return promise;
}

}  // namespace custos
