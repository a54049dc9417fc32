// Pass-through commands (SG_IO, NVMe admin) go around BLKROSET: the kernel
// sends a write-class command through a read-only fd. This file is the only
// place custos sends one, and it sends only what the allowlist below names,
// with data flowing from the device or not at all. Anything else is refused
// here, before any ioctl (docs/passthrough.md).
#include "passthrough.h"

#include <linux/nvme_ioctl.h>
#include <scsi/sg.h>
#include <stdint.h>
#include <string.h>
#include <sys/ioctl.h>

#include <cerrno>
#include <string>
#include <vector>

#include "errors.h"

namespace custos {

namespace {

constexpr size_t kMaxData = 64 * 1024;

// ATA commands inside ATA PASS-THROUGH(16), each with the protocol it must use.
// PIO data-in (4) or non-data (3) only: no DMA (a DMA command's direction is
// the drive's business) and no data-out.
struct AtaRule {
  uint8_t command;
  int feature;  // -1: any feature; else the feature register must be this
  uint8_t protocol;
  const char* name;
};
constexpr AtaRule kAtaRules[] = {
    {0xEC, -1, 4, "IDENTIFY DEVICE"},
    {0xA1, -1, 4, "IDENTIFY PACKET DEVICE"},
    {0xF8, -1, 3, "READ NATIVE MAX ADDRESS"},
    {0x27, -1, 3, "READ NATIVE MAX ADDRESS EXT"},
    // ACCESSIBLE MAX ADDRESS CONFIGURATION: feature 0 is GET NATIVE MAX ADDRESS EXT; 1 (SET) and 2 (FREEZE) change the drive.
    {0x78, 0x00, 3, "GET NATIVE MAX ADDRESS EXT"},
    // DEVICE CONFIGURATION OVERLAY: only C2h IDENTIFY; C0h RESTORE, C1h FREEZE LOCK and C3h SET change the drive.
    {0xB1, 0xC2, 4, "DEVICE CONFIGURATION IDENTIFY"},
    // SMART: D0h READ DATA, D1h READ THRESHOLDS, D5h READ LOG, DAh RETURN STATUS; not D4h (runs a self-test), D6h (WRITE LOG), D8h/D9h/DBh (settings).
    {0xB0, 0xD0, 4, "SMART READ DATA"},
    {0xB0, 0xD1, 4, "SMART READ THRESHOLDS"},
    {0xB0, 0xD5, 4, "SMART READ LOG"},
    {0xB0, 0xDA, 3, "SMART RETURN STATUS"},
    {0x2F, -1, 4, "READ LOG EXT"},
    {0x5C, -1, 4, "TRUSTED RECEIVE"},
    {0xE5, -1, 3, "CHECK POWER MODE"},
};

bool AtaAllowed(const uint8_t* cdb, size_t len, size_t dataIn, std::string* why) {
  // ATA PASS-THROUGH(16): byte 1 bits 4:1 protocol, bit 0 EXTEND; byte 2 bit 3 T_DIR (1: from the device);
  // byte 4 features 7:0 (byte 3 features 15:8 when EXTEND); byte 14 command.
  if (len != 16) {
    *why = "ATA PASS-THROUGH(16) is 16 bytes";
    return false;
  }
  const uint8_t protocol = (cdb[1] >> 1) & 0x0F;
  const bool extend = cdb[1] & 1;
  const int feature = cdb[4] | (extend ? cdb[3] << 8 : 0);
  const uint8_t command = cdb[14];
  for (const AtaRule& r : kAtaRules) {
    if (r.command != command || (r.feature >= 0 && r.feature != feature)) continue;
    if (protocol != r.protocol) {
      *why = std::string(r.name) + " must use protocol " + std::to_string(r.protocol) + ", not " + std::to_string(protocol);
      return false;
    }
    const bool fromDevice = cdb[2] & 0x08;
    if (protocol == 4 && (!fromDevice || dataIn == 0)) {
      *why = std::string(r.name) + " reads data from the device (T_DIR 1)";
      return false;
    }
    if (protocol == 3 && dataIn != 0) {
      *why = std::string(r.name) + " carries no data";
      return false;
    }
    return true;
  }
  char hex[64];
  snprintf(hex, sizeof hex, "ATA command %02Xh feature %04Xh", command, feature);
  *why = std::string(hex) + " is not on the read-only list";
  return false;
}

// The CDB length each opcode group has (SPC-4 4.2.5.1); -1: a group custos never sends.
int CdbLength(uint8_t opcode) {
  switch (opcode >> 5) {
    case 0: return 6;
    case 1: case 2: return 10;
    case 4: return 16;
    case 5: return 12;
    default: return -1;
  }
}

}  // namespace

bool ScsiAllowed(const uint8_t* cdb, size_t len, size_t dataIn, std::string* why) {
  if (len == 0 || len > 16) {
    *why = "a CDB is 1 to 16 bytes";
    return false;
  }
  const uint8_t op = cdb[0];
  if (CdbLength(op) != static_cast<int>(len)) {
    char hex[80];
    snprintf(hex, sizeof hex, "opcode %02Xh with a %zu-byte CDB", op, len);
    *why = std::string(hex) + " is not on the read-only list";
    return false;
  }
  switch (op) {
    case 0x00:  // TEST UNIT READY
      if (dataIn != 0) break;
      return true;
    case 0x03:  // REQUEST SENSE
    case 0x12:  // INQUIRY (standard data or a VPD page)
    case 0x1A:  // MODE SENSE(6)
    case 0x25:  // READ CAPACITY(10)
    case 0x5A:  // MODE SENSE(10)
    case 0xA0:  // REPORT LUNS
    case 0xA2:  // SECURITY PROTOCOL IN
      return true;
    case 0x4D:  // LOG SENSE, but not with SP (save parameters), which writes the drive's saved log parameters
      if (cdb[1] & 0x01) {
        *why = "LOG SENSE with SP set saves parameters on the drive";
        return false;
      }
      return true;
    case 0x9E:  // SERVICE ACTION IN(16): READ CAPACITY(16) (10h) and GET LBA STATUS (12h) only
      if ((cdb[1] & 0x1F) == 0x10 || (cdb[1] & 0x1F) == 0x12) return true;
      break;
    case 0x85:  // ATA PASS-THROUGH(16); not (12), whose opcode A1h is BLANK on an optical drive
      return AtaAllowed(cdb, len, dataIn, why);
    default:
      break;
  }
  char hex[96];
  snprintf(hex, sizeof hex, "SCSI opcode %02Xh (byte 1 %02Xh) is not on the read-only list", op, len > 1 ? cdb[1] : 0);
  *why = hex;
  return false;
}

bool NvmeAdminAllowed(uint8_t opcode, std::string* why) {
  switch (opcode) {
    case 0x02:  // Get Log Page
    case 0x06:  // Identify
    case 0x0A:  // Get Features
    case 0x82:  // Security Receive
      return true;
    default: {
      char hex[80];
      snprintf(hex, sizeof hex, "NVMe admin opcode %02Xh is not on the read-only list", opcode);
      *why = hex;
      return false;
    }
  }
}

namespace {

Napi::Error Refused(Napi::Env env, const std::string& why) {
  Napi::Error e = Napi::Error::New(env, "pass-through refused: " + why);
  e.Set("code", Napi::String::New(env, "PASSTHROUGH_REFUSED"));
  return e;
}

bool DataLength(const Napi::CallbackInfo& info, size_t index, size_t* out) {
  const double n = info[index].As<Napi::Number>().DoubleValue();
  if (!(n >= 0 && n <= static_cast<double>(kMaxData)) || n != static_cast<double>(static_cast<size_t>(n))) {
    Napi::RangeError::New(info.Env(), "data length is 0 to 65536").ThrowAsJavaScriptException();
    return false;
  }
  *out = static_cast<size_t>(n);
  return true;
}

// One pass-through command on the thread pool (a drive can take seconds to answer). It rejects with
// the ioctl's errno, or with PASSTHROUGH_REFUSED when the second check of the list refuses it.
class PassThroughWorker : public Napi::AsyncWorker {
 public:
  Napi::Promise Promise() { return deferred_.Promise(); }

 protected:
  PassThroughWorker(Napi::Env env, const char* syscall)
      : Napi::AsyncWorker(env), deferred_(Napi::Promise::Deferred::New(env)), syscall_(syscall) {}
  void Refuse(const std::string& why) { SetError("pass-through refused: " + why); }
  void Fail(int err) {
    errno_ = err;
    SetError(syscall_);
  }
  void OnError(const Napi::Error& e) override {
    Napi::Env env = Env();
    if (errno_ != 0) return deferred_.Reject(SysError(env, syscall_, errno_).Value());
    Napi::Error err = Napi::Error::New(env, e.Message());
    err.Set("code", Napi::String::New(env, "PASSTHROUGH_REFUSED"));
    deferred_.Reject(err.Value());
  }
  Napi::Promise::Deferred deferred_;

 private:
  const char* syscall_;
  int errno_ = 0;
};

class ScsiWorker : public PassThroughWorker {
 public:
  ScsiWorker(Napi::Env env, int fd, std::vector<uint8_t> cdb, size_t dataIn, unsigned timeoutMs)
      : PassThroughWorker(env, "SG_IO"), fd_(fd), cdb_(std::move(cdb)), data_(dataIn), timeoutMs_(timeoutMs) {}

  void Execute() override {
    // Checked again here, next to the ioctl: nothing reaches it that the list does not name.
    std::string why;
    if (!ScsiAllowed(cdb_.data(), cdb_.size(), data_.size(), &why)) return Refuse(why);
    sg_io_hdr_t h;
    memset(&h, 0, sizeof h);
    h.interface_id = 'S';
    h.dxfer_direction = data_.empty() ? SG_DXFER_NONE : SG_DXFER_FROM_DEV;
    h.cmd_len = static_cast<unsigned char>(cdb_.size());
    h.cmdp = cdb_.data();
    h.dxfer_len = static_cast<unsigned>(data_.size());
    h.dxferp = data_.empty() ? nullptr : data_.data();
    h.mx_sb_len = sizeof sense_;
    h.sbp = sense_;
    h.timeout = timeoutMs_;
    if (ioctl(fd_, SG_IO, &h) != 0) return Fail(errno);
    status_ = h.status;
    hostStatus_ = h.host_status;
    driverStatus_ = h.driver_status;
    senseLen_ = h.sb_len_wr;
    resid_ = h.resid;
  }

  void OnOK() override {
    Napi::Env env = Env();
    Napi::Object r = Napi::Object::New(env);
    const size_t got = resid_ > 0 && static_cast<size_t>(resid_) <= data_.size() ? data_.size() - static_cast<size_t>(resid_) : data_.size();
    r.Set("data", Napi::Buffer<uint8_t>::Copy(env, data_.data(), got));
    r.Set("sense", Napi::Buffer<uint8_t>::Copy(env, sense_, senseLen_));
    r.Set("status", Napi::Number::New(env, status_));
    r.Set("hostStatus", Napi::Number::New(env, hostStatus_));
    r.Set("driverStatus", Napi::Number::New(env, driverStatus_));
    deferred_.Resolve(r);
  }


 private:
  int fd_;
  std::vector<uint8_t> cdb_;
  std::vector<uint8_t> data_;
  unsigned timeoutMs_;
  uint8_t sense_[64] = {};
  int status_ = 0, hostStatus_ = 0, driverStatus_ = 0, senseLen_ = 0, resid_ = 0;
};

class NvmeWorker : public PassThroughWorker {
 public:
  NvmeWorker(Napi::Env env, int fd, nvme_admin_cmd cmd, size_t dataIn) : PassThroughWorker(env, "NVME_IOCTL_ADMIN_CMD"), fd_(fd), cmd_(cmd), data_(dataIn) {}

  void Execute() override {
    std::string why;
    if (!NvmeAdminAllowed(cmd_.opcode, &why)) return Refuse(why);
    cmd_.addr = reinterpret_cast<uint64_t>(data_.data());
    cmd_.data_len = static_cast<uint32_t>(data_.size());
    const int rc = ioctl(fd_, NVME_IOCTL_ADMIN_CMD, &cmd_);
    if (rc < 0) return Fail(errno);
    status_ = rc;  // > 0: the NVMe status field of the completion
  }

  void OnOK() override {
    Napi::Env env = Env();
    Napi::Object r = Napi::Object::New(env);
    r.Set("data", Napi::Buffer<uint8_t>::Copy(env, data_.data(), data_.size()));
    r.Set("status", Napi::Number::New(env, status_));
    r.Set("result", Napi::Number::New(env, cmd_.result));
    deferred_.Resolve(r);
  }


 private:
  int fd_;
  nvme_admin_cmd cmd_;
  std::vector<uint8_t> data_;
  int status_ = 0;
};

}  // namespace

// scsiRead(fd, cdb, dataIn, timeoutMs) -> Promise<{ data, sense, status, hostStatus, driverStatus }>
Napi::Value ScsiRead(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!ExpectArgs(info, 4)) return env.Undefined();
  if (!info[0].IsNumber() || !info[1].IsTypedArray() || !info[2].IsNumber() || !info[3].IsNumber()) {
    Napi::TypeError::New(env, "scsiRead(fd, cdb, dataIn, timeoutMs)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  auto cdb = info[1].As<Napi::Uint8Array>();
  size_t dataIn;
  if (!DataLength(info, 2, &dataIn)) return env.Undefined();
  std::string why;
  if (!ScsiAllowed(cdb.Data(), cdb.ElementLength(), dataIn, &why)) {
    Refused(env, why).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  auto* w = new ScsiWorker(env, info[0].As<Napi::Number>().Int32Value(), std::vector<uint8_t>(cdb.Data(), cdb.Data() + cdb.ElementLength()), dataIn,
                           info[3].As<Napi::Number>().Uint32Value());
  Napi::Promise p = w->Promise();
  w->Queue();
  return p;
}

// nvmeAdminRead(fd, opcode, nsid, cdw10..15 as a Uint32Array(6), dataIn, timeoutMs) -> Promise<{ data, status, result }>
Napi::Value NvmeAdminRead(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!ExpectArgs(info, 6)) return env.Undefined();
  if (!info[0].IsNumber() || !info[1].IsNumber() || !info[2].IsNumber() || !info[3].IsTypedArray() || !info[4].IsNumber() || !info[5].IsNumber()) {
    Napi::TypeError::New(env, "nvmeAdminRead(fd, opcode, nsid, cdw10to15, dataIn, timeoutMs)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  const uint32_t opcode = info[1].As<Napi::Number>().Uint32Value();
  auto dw = info[3].As<Napi::Uint32Array>();
  if (opcode > 0xFF || dw.ElementLength() != 6) {
    Napi::RangeError::New(env, "opcode is one byte, cdw10to15 six dwords").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  size_t dataIn;
  if (!DataLength(info, 4, &dataIn)) return env.Undefined();
  std::string why;
  if (!NvmeAdminAllowed(static_cast<uint8_t>(opcode), &why)) {
    Refused(env, why).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  nvme_admin_cmd cmd;
  memset(&cmd, 0, sizeof cmd);
  cmd.opcode = static_cast<uint8_t>(opcode);
  cmd.nsid = info[2].As<Napi::Number>().Uint32Value();
  cmd.cdw10 = dw[0];
  cmd.cdw11 = dw[1];
  cmd.cdw12 = dw[2];
  cmd.cdw13 = dw[3];
  cmd.cdw14 = dw[4];
  cmd.cdw15 = dw[5];
  cmd.timeout_ms = info[5].As<Napi::Number>().Uint32Value();
  auto* w = new NvmeWorker(env, info[0].As<Napi::Number>().Int32Value(), cmd, dataIn);
  Napi::Promise p = w->Promise();
  w->Queue();
  return p;
}

// passThroughAllowed(kind, command, dataIn) -> null or the reason it is refused: the list itself, for tests and for saying why.
Napi::Value PassThroughAllowed(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!ExpectArgs(info, 3) || !info[0].IsString() || !info[1].IsTypedArray() || !info[2].IsNumber()) {
    Napi::TypeError::New(env, "passThroughAllowed('scsi' | 'nvme-admin', command, dataIn)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  const std::string kind = info[0].As<Napi::String>().Utf8Value();
  auto cmd = info[1].As<Napi::Uint8Array>();
  size_t dataIn;
  if (!DataLength(info, 2, &dataIn)) return env.Undefined();
  std::string why;
  bool ok;
  if (kind == "scsi") {
    ok = ScsiAllowed(cmd.Data(), cmd.ElementLength(), dataIn, &why);
  } else if (kind == "nvme-admin" && cmd.ElementLength() == 1) {
    ok = NvmeAdminAllowed(cmd.Data()[0], &why);
  } else {
    Napi::TypeError::New(env, "kind is 'scsi' (a CDB) or 'nvme-admin' (one opcode byte)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  return ok ? env.Null() : Napi::String::New(env, why);
}

}  // namespace custos
