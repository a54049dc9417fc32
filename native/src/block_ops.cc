#include "block_ops.h"

#include <fcntl.h>
#include <linux/fs.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cerrno>

#include "errors.h"

namespace custos {

namespace {

// Largest integer a JS number holds exactly; sizes beyond it would be silently rounded.
constexpr uint64_t kMaxSafeInteger = (1ULL << 53) - 1;

bool GetFd(const Napi::CallbackInfo& info, int* fd) {
  if (!ExpectArgs(info, 1)) return false;
  if (!info[0].IsNumber()) {
    Napi::TypeError::New(info.Env(), "fd must be a number").ThrowAsJavaScriptException();
    return false;
  }
  *fd = info[0].As<Napi::Number>().Int32Value();
  return true;
}

template <typename T>
Napi::Value IoctlGet(const Napi::CallbackInfo& info, unsigned long request, const char* name) {
  int fd;
  if (!GetFd(info, &fd)) return info.Env().Undefined();
  T value{};
  if (ioctl(fd, request, &value) != 0) {
    SysError(info.Env(), name, errno).ThrowAsJavaScriptException();
    return info.Env().Undefined();
  }
  return Napi::Number::New(info.Env(), static_cast<double>(value));
}

}  // namespace

// The addon can only open read-only: there is no code path here that could
// open a source for writing.
Napi::Value OpenReadOnly(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!ExpectArgs(info, 3)) return env.Undefined();
  if (!info[0].IsString()) {
    Napi::TypeError::New(env, "path must be a string").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  std::string path = info[0].As<Napi::String>().Utf8Value();
  int flags = O_RDONLY | O_CLOEXEC | O_LARGEFILE | O_NOCTTY;
  if (info[1].ToBoolean()) flags |= O_DIRECT;
  // On a block device O_EXCL without O_CREAT claims it exclusively: mounts and
  // other exclusive opens fail with EBUSY while we hold it.
  if (info[2].ToBoolean()) flags |= O_EXCL;
  int fd;
  do {
    fd = open(path.c_str(), flags);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) {
    SysError(env, "open", errno).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  return Napi::Number::New(env, fd);
}

// Drops a file's clean cached pages so a verification re-read comes from the
// medium even on file systems that refuse O_DIRECT. Dirty pages are not
// dropped, so callers fdatasync first.
Napi::Value DropCache(const Napi::CallbackInfo& info) {
  int fd;
  if (!GetFd(info, &fd)) return info.Env().Undefined();
  int err = posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
  if (err != 0) SysError(info.Env(), "posix_fadvise", err).ThrowAsJavaScriptException();
  return info.Env().Undefined();
}

Napi::Value Close(const Napi::CallbackInfo& info) {
  int fd;
  if (!GetFd(info, &fd)) return info.Env().Undefined();
  // Linux releases the descriptor even when close reports EINTR; never retry.
  if (close(fd) != 0 && errno != EINTR) {
    SysError(info.Env(), "close", errno).ThrowAsJavaScriptException();
  }
  return info.Env().Undefined();
}

Napi::Value GetSize64(const Napi::CallbackInfo& info) {
  int fd;
  if (!GetFd(info, &fd)) return info.Env().Undefined();
  uint64_t size = 0;
  if (ioctl(fd, BLKGETSIZE64, &size) != 0) {
    SysError(info.Env(), "ioctl(BLKGETSIZE64)", errno).ThrowAsJavaScriptException();
    return info.Env().Undefined();
  }
  if (size > kMaxSafeInteger) {
    SysError(info.Env(), "ioctl(BLKGETSIZE64)", EOVERFLOW).ThrowAsJavaScriptException();
    return info.Env().Undefined();
  }
  return Napi::Number::New(info.Env(), static_cast<double>(size));
}

Napi::Value GetLogicalBlockSize(const Napi::CallbackInfo& info) {
  return IoctlGet<int>(info, BLKSSZGET, "ioctl(BLKSSZGET)");
}

Napi::Value GetPhysicalBlockSize(const Napi::CallbackInfo& info) {
  return IoctlGet<unsigned int>(info, BLKPBSZGET, "ioctl(BLKPBSZGET)");
}

Napi::Value GetReadOnly(const Napi::CallbackInfo& info) {
  int fd;
  if (!GetFd(info, &fd)) return info.Env().Undefined();
  int ro = 0;
  if (ioctl(fd, BLKROGET, &ro) != 0) {
    SysError(info.Env(), "ioctl(BLKROGET)", errno).ThrowAsJavaScriptException();
    return info.Env().Undefined();
  }
  return Napi::Boolean::New(info.Env(), ro != 0);
}

Napi::Value SetReadOnly(const Napi::CallbackInfo& info) {
  int fd;
  if (!GetFd(info, &fd)) return info.Env().Undefined();
  if (info.Length() < 2 || !info[1].IsBoolean()) {
    Napi::TypeError::New(info.Env(), "readOnly must be a boolean").ThrowAsJavaScriptException();
    return info.Env().Undefined();
  }
  int ro = info[1].As<Napi::Boolean>().Value() ? 1 : 0;
  if (ioctl(fd, BLKROSET, &ro) != 0) {
    SysError(info.Env(), "ioctl(BLKROSET)", errno).ThrowAsJavaScriptException();
  }
  return info.Env().Undefined();
}

// Page-aligned memory for O_DIRECT, exposed as an ordinary Buffer whose
// finalizer frees it; V8 is told about the size so GC pressure is accurate.
Napi::Value AllocAligned(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!ExpectArgs(info, 2)) return env.Undefined();
  double sizeArg = info[0].As<Napi::Number>().DoubleValue();
  double alignArg = info[1].As<Napi::Number>().DoubleValue();
  if (!(sizeArg > 0) || sizeArg > static_cast<double>(1ULL << 31)) {
    Napi::RangeError::New(env, "size must be between 1 byte and 2 GiB").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  size_t size = static_cast<size_t>(sizeArg);
  size_t align = static_cast<size_t>(alignArg);
  if (align < sizeof(void*) || (align & (align - 1)) != 0 || align > (1u << 20)) {
    Napi::RangeError::New(env, "alignment must be a power of two").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  void* mem = nullptr;
  int rc = posix_memalign(&mem, align, size);
  if (rc != 0) {
    SysError(env, "posix_memalign", rc).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  memset(mem, 0, size);
  Napi::MemoryManagement::AdjustExternalMemory(env, static_cast<int64_t>(size));
  return Napi::Buffer<uint8_t>::New(
      env, static_cast<uint8_t*>(mem), size, [size](Napi::Env finalEnv, uint8_t* data) {
        free(data);
        Napi::MemoryManagement::AdjustExternalMemory(finalEnv, -static_cast<int64_t>(size));
      });
}

// addressAlignment(buffer, alignment): the buffer's start address modulo the
// alignment, so JavaScript can carve an aligned window out of memory it
// allocated itself (a SharedArrayBuffer that worker threads can see).
Napi::Value AddressAlignment(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!ExpectArgs(info, 2)) return env.Undefined();
  if (!info[0].IsTypedArray() || !info[1].IsNumber()) {
    Napi::TypeError::New(env, "addressAlignment(view, alignment)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  if (info[0].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) {
    Napi::TypeError::New(env, "view must be a Uint8Array").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  // Uint8Array::Data() comes from napi_get_typedarray_info, which (unlike the
  // ArrayBuffer accessors) also works for views over a SharedArrayBuffer.
  uint8_t* data = info[0].As<Napi::Uint8Array>().Data();
  uint32_t align = info[1].As<Napi::Number>().Uint32Value();
  if (align == 0 || (align & (align - 1)) != 0) {
    Napi::RangeError::New(env, "alignment must be a power of two").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  uintptr_t base = reinterpret_cast<uintptr_t>(data);
  return Napi::Number::New(env, static_cast<double>(base & (align - 1)));
}

Napi::Value LockExclusive(const Napi::CallbackInfo& info) {
  int fd;
  if (!GetFd(info, &fd)) return info.Env().Undefined();
  int rc;
  do rc = flock(fd, LOCK_EX);
  while (rc != 0 && errno == EINTR);
  if (rc != 0) SysError(info.Env(), "flock", errno).ThrowAsJavaScriptException();
  return info.Env().Undefined();
}

Napi::Value Unlock(const Napi::CallbackInfo& info) {
  int fd;
  if (!GetFd(info, &fd)) return info.Env().Undefined();
  if (flock(fd, LOCK_UN) != 0) SysError(info.Env(), "flock", errno).ThrowAsJavaScriptException();
  return info.Env().Undefined();
}

}  // namespace custos
