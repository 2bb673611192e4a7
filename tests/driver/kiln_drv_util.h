// SPDX-License-Identifier: MIT
// Helpers for the in-VM driver and stress tests: raw ioctls on
// /dev/accel/accelN and command packets built from include/kiln/hw.
#pragma once

#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <drm.h>

#include "kiln/hw/kiln_mmu.h"
#include "kiln/hw/kiln_packets.h"
#include "kiln/hw/kiln_regs.h"
#include "kiln/hw/kiln_status.h"
#include "uapi/drm/kiln_accel.h"

namespace kt {

// ioctl returning 0 or -errno, retrying on EINTR/EAGAIN like drmIoctl.
inline int xioctl(int fd, unsigned long req, void *arg) {
  int r;
  do {
    r = ioctl(fd, req, arg);
  } while (r == -1 && (errno == EINTR || errno == EAGAIN));
  return r == 0 ? 0 : -errno;
}

// Device under test: /dev/accel/accel$KILN_TEST_DEVICE unless one is named (default 0).
inline std::string accel_node(int n = -1) {
  if (n < 0) {
    const char *e = getenv("KILN_TEST_DEVICE");
    n = e && *e ? atoi(e) : 0;
  }
  return "/dev/accel/accel" + std::to_string(n);
}

inline int open_dev(int n = -1) { return open(accel_node(n).c_str(), O_RDWR | O_CLOEXEC); }

// The PCI function behind the device under test, in sysfs.
inline std::string pci_sysfs_dir() {
  return "/sys/class/accel/" + accel_node().substr(strlen("/dev/accel/")) + "/device/";
}

inline std::string read_file(const std::string &path) {
  std::ifstream f(path);
  std::string s;
  std::getline(f, s, '\0');
  while (!s.empty() && s.back() == '\n') s.pop_back();
  return s;
}

// Runtime PM of the device under test through its sysfs power/ files: allows
// it (control = auto) with the given autosuspend delay, and restores both
// when it goes out of scope.
class RuntimePm {
 public:
  explicit RuntimePm(unsigned delay_ms)
      : saved_(read_file(dir() + "autosuspend_delay_ms")), saved_control_(read_file(dir() + "control")) {
    set_delay(delay_ms);
    write(dir() + "control", "auto");
  }
  ~RuntimePm() {
    if (!saved_control_.empty()) write(dir() + "control", saved_control_);
    if (!saved_.empty()) set_delay(unsigned(std::stoul(saved_)));
  }
  RuntimePm(const RuntimePm &) = delete;
  RuntimePm &operator=(const RuntimePm &) = delete;

  static std::string dir() { return pci_sysfs_dir() + "power/"; }
  bool ok() const { return !saved_.empty(); }
  // "active", "suspended", "resuming" or "suspending"
  static std::string status() { return read_file(dir() + "runtime_status"); }
  static uint64_t suspended_ms() { return std::stoull(read_file(dir() + "runtime_suspended_time")); }
  // Polls every millisecond; false if @state was not reached within @timeout_ms.
  static bool wait_for(const std::string &state, unsigned timeout_ms) {
    for (unsigned i = 0; i <= timeout_ms; i++) {
      if (status() == state) return true;
      usleep(1000);
    }
    return false;
  }
  // PowerState of the function's PM capability (0 = D0, 3 = D3hot), read
  // from config space, which stays readable in D3hot; -1 if there is none.
  static int pci_power_state() {
    std::ifstream f(pci_sysfs_dir() + "config", std::ios::binary);
    uint8_t cfg[256] = {};
    f.read(reinterpret_cast<char *>(cfg), sizeof(cfg));
    for (unsigned pos = cfg[0x34], hops = 0; pos >= 0x40 && pos < 0xff && hops < 48; pos = cfg[pos + 1], hops++)
      if (cfg[pos] == 0x01)  // PCI_CAP_ID_PM
        return cfg[pos + 4] & 3;
    return -1;
  }

 private:
  static void write(const std::string &path, const std::string &value) {
    std::ofstream f(path);
    f << value;
  }
  static void set_delay(unsigned ms) { write(dir() + "autosuspend_delay_ms", std::to_string(ms)); }
  std::string saved_, saved_control_;
};

inline uint64_t now_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return uint64_t(ts.tv_sec) * 1000000000ull + ts.tv_nsec;
}

struct Bo {
  uint32_t handle = 0;
  uint64_t size = 0;
  uint64_t va = 0;
  uint32_t flags = 0;
};

class Dev {
 public:
  Dev() : fd_(open_dev()) {}
  explicit Dev(int fd) : fd_(fd) {}
  ~Dev() { if (fd_ >= 0) close(fd_); }
  Dev(const Dev &) = delete;
  Dev &operator=(const Dev &) = delete;

  int fd() const { return fd_; }
  int release() { int f = fd_; fd_ = -1; return f; }
  bool ok() const { return fd_ >= 0; }

  int get_param(uint32_t param, uint64_t *value, uint32_t index = 0) {
    drm_kiln_get_param a{};
    a.param = param;
    a.index = index;
    int r = xioctl(fd_, DRM_IOCTL_KILN_GET_PARAM, &a);
    if (!r) *value = a.value;
    return r;
  }
  uint64_t param(uint32_t p) {
    uint64_t v = ~0ull;
    get_param(p, &v);
    return v;
  }

  int bo_create(uint64_t size, uint32_t flags, Bo *bo) {
    drm_kiln_bo_create a{};
    a.size = size;
    a.flags = flags;
    int r = xioctl(fd_, DRM_IOCTL_KILN_BO_CREATE, &a);
    if (!r) {
      bo->handle = a.handle;
      bo->size = a.size;
      bo->va = a.va;
      bo->flags = a.flags;
    }
    return r;
  }
  Bo bo(uint64_t size, uint32_t flags = 0) {
    Bo b;
    int r = bo_create(size, flags, &b);
    if (r) throw std::runtime_error("BO_CREATE failed: " + std::to_string(r));
    return b;
  }
  int bo_info(uint32_t handle, drm_kiln_bo_info *out) {
    *out = {};
    out->handle = handle;
    return xioctl(fd_, DRM_IOCTL_KILN_BO_INFO, out);
  }
  int gem_close(uint32_t handle) {
    drm_gem_close c{};
    c.handle = handle;
    return xioctl(fd_, DRM_IOCTL_GEM_CLOSE, &c);
  }
  void *map(uint32_t handle, uint64_t size) {
    drm_kiln_bo_info i;
    if (bo_info(handle, &i) || !i.mmap_offset) return nullptr;
    void *p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd_, i.mmap_offset);
    return p == MAP_FAILED ? nullptr : p;
  }
  int bo_wait(uint32_t handle, uint64_t rel_ns) {
    drm_kiln_bo_wait w{};
    w.handle = handle;
    w.timeout_ns = int64_t(now_ns() + rel_ns);
    return xioctl(fd_, DRM_IOCTL_KILN_BO_WAIT, &w);
  }

  int ctx_create(uint32_t *id, uint32_t prio = DRM_KILN_PRIORITY_NORMAL, uint32_t timeout_ms = 0) {
    drm_kiln_ctx_create a{};
    a.priority = prio;
    a.timeout_ms = timeout_ms;
    int r = xioctl(fd_, DRM_IOCTL_KILN_CTX_CREATE, &a);
    if (!r) *id = a.ctx_id;
    return r;
  }
  uint32_t ctx(uint32_t prio = DRM_KILN_PRIORITY_NORMAL, uint32_t timeout_ms = 0) {
    uint32_t id = 0;
    int r = ctx_create(&id, prio, timeout_ms);
    if (r) throw std::runtime_error("CTX_CREATE failed: " + std::to_string(r));
    return id;
  }
  int ctx_destroy(uint32_t id) {
    drm_kiln_ctx_destroy a{};
    a.ctx_id = id;
    return xioctl(fd_, DRM_IOCTL_KILN_CTX_DESTROY, &a);
  }
  int ctx_status(uint32_t id, drm_kiln_ctx_status *st) {
    *st = {};
    st->ctx_id = id;
    return xioctl(fd_, DRM_IOCTL_KILN_CTX_STATUS, st);
  }
  int job_status(uint32_t ctx, uint64_t seqno, drm_kiln_job_status *st) {
    *st = {};
    st->ctx_id = ctx;
    st->seqno = seqno;
    return xioctl(fd_, DRM_IOCTL_KILN_JOB_STATUS, st);
  }

  int submit(uint32_t ctx, uint64_t cmd_va, uint32_t cmd_size, const std::vector<drm_kiln_bo_ref> &bos,
             const std::vector<drm_kiln_sync> &syncs = {}, uint64_t *seqno = nullptr, uint32_t flags = 0) {
    drm_kiln_submit s{};
    s.ctx_id = ctx;
    s.flags = flags;
    s.cmd_va = cmd_va;
    s.cmd_size = cmd_size;
    s.bos.ptr = reinterpret_cast<uintptr_t>(bos.data());
    s.bos.count = bos.size();
    s.bos.stride = sizeof(drm_kiln_bo_ref);
    s.syncs.ptr = reinterpret_cast<uintptr_t>(syncs.data());
    s.syncs.count = syncs.size();
    s.syncs.stride = sizeof(drm_kiln_sync);
    int r = xioctl(fd_, DRM_IOCTL_KILN_SUBMIT, &s);
    if (!r && seqno) *seqno = s.seqno;
    return r;
  }
  // SUBMIT that waits (up to a minute) while the context has its maximum
  // of jobs queued (-EBUSY), as a real submitter would.
  int submit_wait(uint32_t ctx, uint64_t cmd_va, uint32_t cmd_size, const std::vector<drm_kiln_bo_ref> &bos,
                  const std::vector<drm_kiln_sync> &syncs = {}, uint64_t *seqno = nullptr) {
    for (int i = 0;; i++) {
      int r = submit(ctx, cmd_va, cmd_size, bos, syncs, seqno);
      if (r != -EBUSY || i >= 60000) return r;
      usleep(1000);
    }
  }

  // syncobjs
  uint32_t syncobj(bool signaled = false) {
    drm_syncobj_create c{};
    c.flags = signaled ? DRM_SYNCOBJ_CREATE_SIGNALED : 0;
    if (xioctl(fd_, DRM_IOCTL_SYNCOBJ_CREATE, &c)) return 0;
    return c.handle;
  }
  int syncobj_destroy(uint32_t h) {
    drm_syncobj_destroy d{};
    d.handle = h;
    return xioctl(fd_, DRM_IOCTL_SYNCOBJ_DESTROY, &d);
  }
  int syncobj_wait(uint32_t h, uint64_t rel_ns, uint64_t point = 0) {
    if (point) {
      drm_syncobj_timeline_wait w{};
      w.handles = reinterpret_cast<uintptr_t>(&h);
      w.points = reinterpret_cast<uintptr_t>(&point);
      w.count_handles = 1;
      w.timeout_nsec = int64_t(now_ns() + rel_ns);
      w.flags = DRM_SYNCOBJ_WAIT_FLAGS_WAIT_FOR_SUBMIT;
      return xioctl(fd_, DRM_IOCTL_SYNCOBJ_TIMELINE_WAIT, &w);
    }
    drm_syncobj_wait w{};
    w.handles = reinterpret_cast<uintptr_t>(&h);
    w.count_handles = 1;
    w.timeout_nsec = int64_t(now_ns() + rel_ns);
    w.flags = DRM_SYNCOBJ_WAIT_FLAGS_WAIT_FOR_SUBMIT;
    return xioctl(fd_, DRM_IOCTL_SYNCOBJ_WAIT, &w);
  }
  int syncobj_query(uint32_t h, uint64_t *point) {
    drm_syncobj_timeline_array a{};
    a.handles = reinterpret_cast<uintptr_t>(&h);
    a.points = reinterpret_cast<uintptr_t>(point);
    a.count_handles = 1;
    return xioctl(fd_, DRM_IOCTL_SYNCOBJ_QUERY, &a);
  }

  int prime_export(uint32_t handle, int *dmabuf) {
    drm_prime_handle p{};
    p.handle = handle;
    p.flags = DRM_CLOEXEC | DRM_RDWR;
    int r = xioctl(fd_, DRM_IOCTL_PRIME_HANDLE_TO_FD, &p);
    if (!r) *dmabuf = p.fd;
    return r;
  }
  int prime_import(int dmabuf, uint32_t *handle) {
    drm_prime_handle p{};
    p.fd = dmabuf;
    int r = xioctl(fd_, DRM_IOCTL_PRIME_FD_TO_HANDLE, &p);
    if (!r) *handle = p.handle;
    return r;
  }

 private:
  int fd_;
};

// A command buffer under construction.
class Cmd {
 public:
  Cmd &nop() {
    kiln_pkt_nop p{};
    p.header = KILN_PKT_HEADER(KILN_OP_NOP, 0);
    return add(&p);
  }
  Cmd &fill(uint64_t dst, uint64_t size, uint32_t pattern) {
    kiln_pkt_dma_fill p{};
    p.header = KILN_PKT_HEADER(KILN_OP_DMA_FILL, 0);
    p.dst = dst;
    p.size = size;
    p.pattern = pattern;
    return add(&p);
  }
  Cmd &copy(uint64_t dst, uint64_t src, uint64_t size) {
    kiln_pkt_dma_copy p{};
    p.header = KILN_PKT_HEADER(KILN_OP_DMA_COPY, 0);
    p.dst = dst;
    p.src = src;
    p.size = size;
    return add(&p);
  }
  Cmd &fence(uint64_t addr, uint64_t value) {
    kiln_pkt_fence p{};
    p.header = KILN_PKT_HEADER(KILN_OP_FENCE, KILN_FENCE_FLAG_64BIT);
    p.addr = addr;
    p.value = value;
    return add(&p);
  }
  Cmd &wait(uint64_t addr, uint64_t value, uint32_t op = KILN_WAIT_GEQUAL, uint64_t mask = ~0ull) {
    kiln_pkt_wait p{};
    p.header = KILN_PKT_HEADER(KILN_OP_WAIT, 0);
    p.addr = addr;
    p.value = value;
    p.mask = mask;
    p.op = op;
    return add(&p);
  }
  Cmd &raw(const void *pkt) { return add(pkt); }
  uint32_t size() const { return uint32_t(buf_.size()); }
  const uint8_t *data() const { return buf_.data(); }

 private:
  Cmd &add(const void *p) {
    auto b = static_cast<const uint8_t *>(p);
    buf_.insert(buf_.end(), b, b + KILN_PACKET_SIZE);
    return *this;
  }
  std::vector<uint8_t> buf_;
};

inline drm_kiln_bo_ref ref(const Bo &b, bool write = true) {
  drm_kiln_bo_ref r{};
  r.handle = b.handle;
  r.flags = write ? DRM_KILN_BO_REF_WRITE : 0;
  return r;
}

inline drm_kiln_sync sig(uint32_t h, uint64_t point = 0) {
  drm_kiln_sync s{};
  s.handle = h;
  s.flags = DRM_KILN_SYNC_SIGNAL;
  s.point = point;
  return s;
}

inline drm_kiln_sync waitfor(uint32_t h, uint64_t point = 0) {
  drm_kiln_sync s{};
  s.handle = h;
  s.flags = DRM_KILN_SYNC_WAIT;
  s.point = point;
  return s;
}

}  // namespace kt
