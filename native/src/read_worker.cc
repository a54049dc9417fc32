#include "read_worker.h"

#include <linux/fs.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cerrno>
#include <functional>
#include <string>

#include "errors.h"

namespace custos {

namespace {

// Runs one blocking call off the main thread and settles a Promise with its
// numeric result, or rejects with errno and the syscall name.
class SyscallWorker : public Napi::AsyncWorker {
 public:
  SyscallWorker(Napi::Env env, std::string syscall, std::function<long(int*)> call)
      : Napi::AsyncWorker(env), deferred_(Napi::Promise::Deferred::New(env)),
        syscall_(std::move(syscall)), call_(std::move(call)) {}

  Napi::Promise Promise() { return deferred_.Promise(); }
  void KeepAlive(Napi::Object obj) { keep_ = Napi::Persistent(obj); }

  void Execute() override { result_ = call_(&errno_); }

  void OnOK() override {
    Napi::Env env = Env();
    if (errno_ != 0) {
      deferred_.Reject(SysError(env, syscall_, errno_).Value());
    } else {
      deferred_.Resolve(Napi::Number::New(env, static_cast<double>(result_)));
    }
    keep_.Reset();
  }

 private:
  Napi::Promise::Deferred deferred_;
  std::string syscall_;
  std::function<long(int*)> call_;
  Napi::ObjectReference keep_;  // the target Buffer must outlive the read
  long result_ = 0;
  int errno_ = 0;
};

}  // namespace

// readAt(fd, buffer, length, offset): reads until length bytes, end of device,
// or the first error. Bytes read before an error are returned as a short
// count, so the caller's next read reports the error at its exact offset.
Napi::Value ReadAt(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!ExpectArgs(info, 4)) return env.Undefined();
  if (!info[0].IsNumber() || !info[1].IsBuffer() || !info[2].IsNumber() || !info[3].IsNumber()) {
    Napi::TypeError::New(env, "readAt(fd, buffer, length, offset)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  int fd = info[0].As<Napi::Number>().Int32Value();
  Napi::Buffer<uint8_t> buf = info[1].As<Napi::Buffer<uint8_t>>();
  double lengthArg = info[2].As<Napi::Number>().DoubleValue();
  double offsetArg = info[3].As<Napi::Number>().DoubleValue();
  if (lengthArg < 0 || lengthArg > static_cast<double>(buf.Length()) || offsetArg < 0 ||
      offsetArg > 9007199254740991.0) {
    Napi::RangeError::New(env, "length or offset out of range").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  uint8_t* data = buf.Data();
  size_t length = static_cast<size_t>(lengthArg);
  off_t offset = static_cast<off_t>(offsetArg);
  auto* worker = new SyscallWorker(env, "pread", [fd, data, length, offset](int* err) -> long {
    size_t done = 0;
    while (done < length) {
      ssize_t n = pread(fd, data + done, length - done, offset + static_cast<off_t>(done));
      if (n < 0) {
        if (errno == EINTR) continue;
        if (done == 0) *err = errno;
        break;
      }
      if (n == 0) break;  // end of device
      done += static_cast<size_t>(n);
    }
    return static_cast<long>(done);
  });
  worker->KeepAlive(buf);
  Napi::Promise promise = worker->Promise();
  worker->Queue();
  return promise;
}

Napi::Value Fdatasync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!ExpectArgs(info, 1)) return env.Undefined();
  int fd = info[0].As<Napi::Number>().Int32Value();
  auto* worker = new SyscallWorker(env, "fdatasync", [fd](int* err) -> long {
    if (fdatasync(fd) != 0) *err = errno;
    return 0;
  });
  Napi::Promise promise = worker->Promise();
  worker->Queue();
  return promise;
}

// BLKFLSBUF writes back nothing on a read-only source (it has no dirty pages)
// and drops its page cache, so later reads come from the device itself.
Napi::Value FlushBuffers(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!ExpectArgs(info, 1)) return env.Undefined();
  int fd = info[0].As<Napi::Number>().Int32Value();
  auto* worker = new SyscallWorker(env, "ioctl(BLKFLSBUF)", [fd](int* err) -> long {
    if (ioctl(fd, BLKFLSBUF, 0) != 0) *err = errno;
    return 0;
  });
  Napi::Promise promise = worker->Promise();
  worker->Queue();
  return promise;
}

}  // namespace custos
