// SPDX-License-Identifier: MIT
// Part 1 of the stress suite: a handle-aware ioctl fuzzer for kiln.ko.
//
// Worker processes (dropped to uid 1000 / group render when started as root)
// issue random and mutated-from-valid calls of every kiln ioctl plus
// GEM_CLOSE, PRIME, SYNCOBJ_* and a few core DRM ioctls, on two files of the
// device, keeping pools of live and dead BO handles, contexts, syncobjs,
// dma-bufs and job seqnos. Afterwards the device accounting
// (DRM_KILN_GET_PARAM BO_COUNT / CONTEXTS_IN_USE / HOST_BO_BYTES / DRAM_FREE /
// SRAM_FREE / FILES_IN_USE, and debugfs "info" as root) must be back to its
// baseline and the device must still run a job correctly. The harness fails
// the boot on any oops/WARN the kernel logs.
//
//   KILN_STRESS_IOCTL_CALLS   total calls (default 20000: the make test subset)
//   KILN_STRESS_SEED          seed (default 1)
//   KILN_STRESS_WORKERS       concurrent worker processes (default 2)
#include <gtest/gtest.h>

#include <sys/eventfd.h>

#include <atomic>
#include <vector>

#include "stress_common.h"

using namespace ks;

namespace {

#ifndef DRM_IOCTL_SYNCOBJ_EVENTFD
struct drm_syncobj_eventfd {
  __u32 handle;
  __u32 flags;
  __u64 point;
  __s32 fd;
  __u32 pad;
};
#define DRM_IOCTL_SYNCOBJ_EVENTFD DRM_IOWR(0xCF, struct drm_syncobj_eventfd)
#endif

enum Op {
  OP_GET_PARAM, OP_QUERY_INFO, OP_BO_CREATE, OP_BO_INFO, OP_BO_WAIT, OP_CTX_CREATE, OP_CTX_DESTROY,
  OP_SUBMIT, OP_CTX_STATUS, OP_JOB_STATUS, OP_GEM_CLOSE, OP_PRIME_EXPORT, OP_PRIME_IMPORT,
  OP_SYNC_CREATE, OP_SYNC_DESTROY, OP_SYNC_WAIT, OP_SYNC_TL_WAIT, OP_SYNC_RESET, OP_SYNC_SIGNAL,
  OP_SYNC_TL_SIGNAL, OP_SYNC_QUERY, OP_SYNC_TRANSFER, OP_SYNC_TO_FD, OP_SYNC_FROM_FD, OP_SYNC_EVENTFD,
  OP_CORE, OP_RANDOM_NR, OP_MMAP, OP_COUNT
};
const char *const kOpNames[OP_COUNT] = {
    "get_param", "query_info", "bo_create", "bo_info", "bo_wait", "ctx_create", "ctx_destroy", "submit",
    "ctx_status", "job_status", "gem_close", "prime_export", "prime_import", "syncobj_create",
    "syncobj_destroy", "syncobj_wait", "syncobj_timeline_wait", "syncobj_reset", "syncobj_signal",
    "syncobj_timeline_signal", "syncobj_query", "syncobj_transfer", "syncobj_handle_to_fd",
    "syncobj_fd_to_handle", "syncobj_eventfd", "core_drm", "random_nr", "mmap"};

constexpr int kErrnos = 140;

// Shared with the parent: progress and per-op counters.
struct Shared {
  std::atomic<uint64_t> calls;
  std::atomic<uint64_t> ok;
  std::atomic<uint64_t> per_op[OP_COUNT];
  std::atomic<uint64_t> submits_ok;
  std::atomic<uint64_t> submit_errno[kErrnos];  // [0]: accepted
  std::atomic<uint64_t> heartbeat;
};

class Fuzzer {
 public:
  Fuzzer(Rng &r, Shared *sh) : r_(r), sh_(sh) {
    for (auto &f : files_) f = open_dev();
    efd_ = eventfd(0, EFD_CLOEXEC);
    // Scratch memory for out-pointers; a mutated pointer may still land
    // anywhere in this process, which is why workers are disposable.
    // It sits alone far from everything else, so that bit flips of a pointer
    // into it mostly land on unmapped addresses.
    scratch_ = static_cast<uint8_t *>(mmap(reinterpret_cast<void *>(0x300000000000ull), kScratch,
                                           PROT_READ | PROT_WRITE,
                                           MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0));
  }
  ~Fuzzer() {
    for (auto &x : fds_) close(x.fd);
    for (int f : files_) close(f);
    close(efd_);
  }
  bool ok() const { return files_[0] >= 0 && files_[1] >= 0 && scratch_ != MAP_FAILED; }

  void step() {
    int f = r_.chance(5) ? 1 : 0;
    Op op = Op(r_.below(OP_COUNT));
    int ret = one(f, op);
    sh_->calls++;
    sh_->per_op[op]++;
    if (ret == 0) sh_->ok++;
    trim(f);
  }

 private:
  static constexpr size_t kScratch = 1 << 16;
  struct Pool {
    std::vector<uint64_t> live, dead;
  };
  // Host memory a worker may keep pinned through its live BO handles: the
  // driver pins host BOs at creation, so without a budget the workers
  // once held ~1.9 GB and ran the 2 GiB guest out of memory (seed 202).
  static constexpr uint64_t kLiveBytes = 64ull << 20;
  // Bigger sizes are still probed, but only where they must fail (> the
  // VA space), so that one call cannot take a large part of guest RAM.
  static constexpr uint64_t kMaxBo = 8ull << 20;

  uint64_t pick(Pool &p) {
    uint64_t k = r_.below(100);
    if (k < 65 && !p.live.empty()) return p.live[r_.below(p.live.size())];
    if (k < 80 && !p.dead.empty()) return p.dead[r_.below(p.dead.size())];
    if (k < 88) return 0;
    if (k < 94) return r_.below(64);
    return r_.next() & 0xffffffff;
  }
  // A handle enters a pool once: PRIME import and GEM_OPEN of a BO the file
  // already has return the handle it has. Duplicates used to pile up until
  // trim() looped forever looking for a closable one (seed 101, 200k calls).
  static void adopt(Pool &p, uint64_t v) {
    if (std::find(p.live.begin(), p.live.end(), v) != p.live.end()) return;
    p.live.push_back(v);
    auto d = std::find(p.dead.begin(), p.dead.end(), v);
    if (d != p.dead.end()) p.dead.erase(d);
  }
  static void forget(Pool &p, uint64_t v) {
    for (size_t i = 0; i < p.live.size(); i++)
      if (p.live[i] == v) {
        p.live[i] = p.live.back();
        p.live.pop_back();
        if (p.dead.size() < 64) p.dead.push_back(v);
        return;
      }
  }
  int any_fd() { return fds_.empty() || r_.chance(6) ? int(r_.below(64)) - 1 : fds_[r_.below(fds_.size())].fd; }
  // A BO handle of file f went away (GEM_CLOSE or trim).
  void closed(int f, uint64_t h) {
    forget(bos_[f], h);
    host_[f].erase(uint32_t(h));
    // Closing the submit BOs is a fine probe, but submits then need new ones.
    if (h == cmd_[f].handle || h == data_[f].handle) {
      if (cmd_map_[f]) munmap(cmd_map_[f], cmd_[f].size);
      cmd_map_[f] = nullptr;
      Dev d(files_[f]);
      d.gem_close(h == cmd_[f].handle ? data_[f].handle : cmd_[f].handle);
      d.release();
      forget(bos_[f], cmd_[f].handle);
      forget(bos_[f], data_[f].handle);
      host_[f].erase(cmd_[f].handle);
      host_[f].erase(data_[f].handle);
      cmd_[f] = Bo{};
      data_[f] = Bo{};
    }
  }
  uint64_t held() const {
    uint64_t n = 0;
    for (auto &m : host_)
      for (auto &[h, sz] : m) n += sz;
    for (auto &x : fds_) n += x.bytes;
    return n;
  }
  // Close exported fds and BOs (never the submit BOs) until `need` more fits.
  void make_room(uint64_t need) {
    while (held() + need > kLiveBytes) {
      if (!fds_.empty()) {
        close(fds_.front().fd);
        fds_.erase(fds_.begin());
        continue;
      }
      int f = host_[0].size() > 2 ? 0 : 1;
      uint32_t victim = 0;
      for (auto &[h, sz] : host_[f])
        if (h != cmd_[f].handle && h != data_[f].handle) victim = h;
      if (!victim) return;
      Dev d(files_[f]);
      d.gem_close(victim);
      d.release();
      closed(f, victim);
    }
  }
  uint64_t interesting() {
    static const uint64_t v[] = {0, 1, 2, 3, 4, 7, 8, 63, 64, 65, 4095, 4096, 4097, 0x7fffffff, 0x80000000,
                                 0xffffffff, 0x100000000ull, 1ull << 40, 1ull << 48, ~0ull, ~0ull - 63,
                                 0x8000000000000000ull};
    return r_.chance(3) ? r_.next() : v[r_.below(sizeof(v) / sizeof(v[0]))];
  }
  // Mutates a valid argument struct: bit flips, interesting values.
  void mutate(void *arg, size_t size) {
    auto *b = static_cast<uint8_t *>(arg);
    int n = 1 + r_.below(3);
    for (int i = 0; i < n; i++) {
      switch (r_.below(4)) {
        case 0:
          b[r_.below(size)] ^= uint8_t(1u << r_.below(8));
          break;
        case 1: {
          size_t off = r_.below(size / 4) * 4;
          uint32_t v = uint32_t(interesting());
          memcpy(b + off, &v, 4);
          break;
        }
        case 2:
          if (size >= 8) {
            size_t off = r_.below(size / 8) * 8;
            uint64_t v = interesting();
            memcpy(b + off, &v, 8);
          }
          break;
        default:
          b[r_.below(size)] = uint8_t(r_.next());
      }
    }
  }
  bool mutating() { return r_.below(100) < 45; }
  // A pointer for an array argument: mostly our scratch area.
  uint64_t ptr_for(const void *valid) {
    uint64_t k = r_.below(20);
    if (k == 0) return 0;
    if (k == 1) return 0x1000;                  // unmapped
    if (k == 2) return 0xffff800000000000ull;   // kernel
    if (k == 3) return reinterpret_cast<uintptr_t>(scratch_) + kScratch - 4;  // straddles the end
    return reinterpret_cast<uintptr_t>(valid);
  }
  // DRM core (not kiln) kmalloc_array()s count_handles without __GFP_NOWARN, so a
  // huge count WARNs in the page allocator and the harness fails the boot: see
  // docs/reliability.md, Known failures, and the disabled test below.
  uint32_t cap_count(uint32_t n) { return n > 65536 ? uint32_t(r_.below(65536)) : n; }
  int64_t short_deadline() {
    switch (r_.below(4)) {
      case 0: return 0;
      case 1: return -1;
      case 2: return int64_t(now_ns() - kMs);
      default: return int64_t(now_ns() + r_.below(2 * kMs));
    }
  }
  int io(int f, unsigned long req, void *arg) {
    int r = ioctl(files_[f], req, arg);
    return r == 0 ? 0 : -errno;
  }

  int one(int f, Op op) {
    Dev d(files_[f]);
    struct Release {
      Dev &d;
      ~Release() { d.release(); }
    } rel{d};
    Pool &bos = bos_[f], &ctxs = ctxs_[f], &syncs = syncs_[f];
    switch (op) {
      case OP_GET_PARAM: {
        drm_kiln_get_param a{};
        a.param = uint32_t(r_.below(DRM_KILN_PARAM_NUM_PARAMS + 3));
        if (mutating()) mutate(&a, sizeof(a));
        return io(f, DRM_IOCTL_KILN_GET_PARAM, &a);
      }
      case OP_QUERY_INFO: {
        drm_kiln_query_info a{};
        a.type = uint32_t(r_.below(3));
        a.size = uint32_t(r_.below(2) ? r_.below(256) : 0);
        a.ptr = r_.chance(4) ? 0 : ptr_for(scratch_);
        if (a.ptr == reinterpret_cast<uintptr_t>(scratch_) && a.size > kScratch) a.size = kScratch;
        if (mutating()) {
          mutate(&a, sizeof(a));
          if (a.ptr >= reinterpret_cast<uintptr_t>(scratch_) &&
              a.ptr < reinterpret_cast<uintptr_t>(scratch_) + kScratch)
            a.size = std::min<uint32_t>(a.size, uint32_t(reinterpret_cast<uintptr_t>(scratch_) + kScratch - a.ptr));
        }
        return io(f, DRM_IOCTL_KILN_QUERY_INFO, &a);
      }
      case OP_BO_CREATE: {
        drm_kiln_bo_create a{};
        static const uint64_t sizes[] = {1, 4096, 8192, 65536, 1 << 20, 2 << 20, 4 << 20};
        a.size = sizes[r_.below(7)];
        a.flags = uint32_t(r_.below(64)) & DRM_KILN_BO_FLAGS;
        if (mutating()) mutate(&a, sizeof(a));
        bool host = !(a.flags & (DRM_KILN_BO_DRAM | DRM_KILN_BO_SRAM));
        if (host && a.size > kMaxBo && a.size <= (1ull << 48)) a.size |= 1ull << 62;
        if (host && a.size <= kMaxBo) make_room((a.size + 4095) & ~4095ull);
        int ret = io(f, DRM_IOCTL_KILN_BO_CREATE, &a);
        if (!ret) {
          adopt(bos, a.handle);
          if (host) host_[f][a.handle] = a.size;
        }
        return ret;
      }
      case OP_BO_INFO: {
        drm_kiln_bo_info a{};
        a.handle = uint32_t(pick(bos));
        if (mutating()) mutate(&a, sizeof(a));
        return io(f, DRM_IOCTL_KILN_BO_INFO, &a);
      }
      case OP_BO_WAIT: {
        drm_kiln_bo_wait a{};
        a.handle = uint32_t(pick(bos));
        if (mutating()) mutate(&a, sizeof(a));
        a.timeout_ns = short_deadline();
        return io(f, DRM_IOCTL_KILN_BO_WAIT, &a);
      }
      case OP_CTX_CREATE: {
        drm_kiln_ctx_create a{};
        a.priority = uint32_t(r_.below(4));
        a.timeout_ms = uint32_t(50 + r_.below(200));
        if (mutating()) {
          mutate(&a, sizeof(a));
          if (!r_.chance(20)) a.timeout_ms = uint32_t(50 + r_.below(200));
        }
        int ret = io(f, DRM_IOCTL_KILN_CTX_CREATE, &a);
        if (!ret) adopt(ctxs, a.ctx_id);
        return ret;
      }
      case OP_CTX_DESTROY: {
        drm_kiln_ctx_destroy a{};
        a.ctx_id = uint32_t(pick(ctxs));
        if (mutating()) mutate(&a, sizeof(a));
        int ret = io(f, DRM_IOCTL_KILN_CTX_DESTROY, &a);
        if (!ret) forget(ctxs, a.ctx_id);
        return ret;
      }
      case OP_SUBMIT:
        return submit(f, d);
      case OP_CTX_STATUS: {
        drm_kiln_ctx_status a{};
        a.ctx_id = uint32_t(pick(ctxs));
        if (mutating()) mutate(&a, sizeof(a));
        return io(f, DRM_IOCTL_KILN_CTX_STATUS, &a);
      }
      case OP_JOB_STATUS: {
        drm_kiln_job_status a{};
        if (!jobs_[f].empty() && !r_.chance(4)) {
          auto &j = jobs_[f][r_.below(jobs_[f].size())];
          a.ctx_id = j.first;
          a.seqno = j.second + (r_.chance(4) ? r_.below(3) : 0);
        } else {
          a.ctx_id = uint32_t(pick(ctxs));
          a.seqno = r_.below(1000);
        }
        if (mutating()) mutate(&a, sizeof(a));
        return io(f, DRM_IOCTL_KILN_JOB_STATUS, &a);
      }
      case OP_GEM_CLOSE: {
        drm_gem_close a{};
        a.handle = uint32_t(pick(bos));
        if (mutating()) mutate(&a, sizeof(a));
        int ret = io(f, DRM_IOCTL_GEM_CLOSE, &a);
        if (!ret) closed(f, a.handle);
        return ret;
      }
      case OP_PRIME_EXPORT: {
        drm_prime_handle a{};
        a.handle = uint32_t(pick(bos));
        a.flags = DRM_CLOEXEC | (r_.chance(2) ? DRM_RDWR : 0);
        if (mutating()) mutate(&a, sizeof(a));
        int ret = io(f, DRM_IOCTL_PRIME_HANDLE_TO_FD, &a);
        if (!ret) {
          auto it = host_[f].find(a.handle);
          fds_.push_back({a.fd, it == host_[f].end() ? 0 : it->second});
        }
        return ret;
      }
      case OP_PRIME_IMPORT: {
        drm_prime_handle a{};
        a.fd = any_fd();
        if (mutating()) mutate(&a, sizeof(a));
        int ret = io(f, DRM_IOCTL_PRIME_FD_TO_HANDLE, &a);
        if (!ret) adopt(bos, a.handle);
        return ret;
      }
      case OP_SYNC_CREATE: {
        drm_syncobj_create a{};
        a.flags = r_.chance(2) ? DRM_SYNCOBJ_CREATE_SIGNALED : 0;
        if (mutating()) mutate(&a, sizeof(a));
        int ret = io(f, DRM_IOCTL_SYNCOBJ_CREATE, &a);
        if (!ret) {
          adopt(syncs, a.handle);
          if (a.flags & DRM_SYNCOBJ_CREATE_SIGNALED) adopt(fenced_[f], a.handle);
        }
        return ret;
      }
      case OP_SYNC_DESTROY: {
        drm_syncobj_destroy a{};
        a.handle = uint32_t(pick(syncs));
        if (mutating()) mutate(&a, sizeof(a));
        int ret = io(f, DRM_IOCTL_SYNCOBJ_DESTROY, &a);
        if (!ret) {
          forget(syncs, a.handle);
          forget(fenced_[f], a.handle);
        }
        return ret;
      }
      case OP_SYNC_WAIT:
      case OP_SYNC_TL_WAIT: {
        uint32_t *h = reinterpret_cast<uint32_t *>(scratch_);
        uint64_t *pts = reinterpret_cast<uint64_t *>(scratch_ + 1024);
        uint32_t n = uint32_t(1 + r_.below(4));
        for (uint32_t i = 0; i < n; i++) {
          h[i] = uint32_t(pick(syncs));
          pts[i] = r_.below(8);
        }
        if (op == OP_SYNC_WAIT) {
          drm_syncobj_wait a{};
          a.handles = ptr_for(h);
          a.count_handles = n;
          a.flags = uint32_t(r_.below(8));
          if (mutating()) mutate(&a, sizeof(a));
          a.count_handles = cap_count(a.count_handles);
          a.timeout_nsec = short_deadline();
          return io(f, DRM_IOCTL_SYNCOBJ_WAIT, &a);
        }
        drm_syncobj_timeline_wait a{};
        a.handles = ptr_for(h);
        a.points = ptr_for(pts);
        a.count_handles = n;
        a.flags = uint32_t(r_.below(8));
        if (mutating()) mutate(&a, sizeof(a));
        a.count_handles = cap_count(a.count_handles);
        a.timeout_nsec = short_deadline();
        return io(f, DRM_IOCTL_SYNCOBJ_TIMELINE_WAIT, &a);
      }
      case OP_SYNC_RESET:
      case OP_SYNC_SIGNAL: {
        uint32_t *h = reinterpret_cast<uint32_t *>(scratch_ + 2048);
        uint32_t n = uint32_t(1 + r_.below(3));
        for (uint32_t i = 0; i < n; i++) h[i] = uint32_t(pick(syncs));
        drm_syncobj_array a{};
        a.handles = ptr_for(h);
        a.count_handles = n;
        if (mutating()) mutate(&a, sizeof(a));
        a.count_handles = cap_count(a.count_handles);
        return io(f, op == OP_SYNC_RESET ? DRM_IOCTL_SYNCOBJ_RESET : DRM_IOCTL_SYNCOBJ_SIGNAL, &a);
      }
      case OP_SYNC_TL_SIGNAL:
      case OP_SYNC_QUERY: {
        uint32_t *h = reinterpret_cast<uint32_t *>(scratch_ + 3072);
        uint64_t *pts = reinterpret_cast<uint64_t *>(scratch_ + 4096);
        uint32_t n = uint32_t(1 + r_.below(3));
        for (uint32_t i = 0; i < n; i++) {
          h[i] = uint32_t(pick(syncs));
          pts[i] = 1 + r_.below(16);
        }
        drm_syncobj_timeline_array a{};
        a.handles = ptr_for(h);
        a.points = ptr_for(pts);
        a.count_handles = n;
        a.flags = op == OP_SYNC_QUERY && r_.chance(2) ? DRM_SYNCOBJ_QUERY_FLAGS_LAST_SUBMITTED : 0;
        if (mutating()) mutate(&a, sizeof(a));
        a.count_handles = cap_count(a.count_handles);
        return io(f, op == OP_SYNC_QUERY ? DRM_IOCTL_SYNCOBJ_QUERY : DRM_IOCTL_SYNCOBJ_TIMELINE_SIGNAL, &a);
      }
      case OP_SYNC_TRANSFER: {
        drm_syncobj_transfer a{};
        a.src_handle = uint32_t(pick(syncs));
        a.dst_handle = uint32_t(pick(syncs));
        a.src_point = r_.below(8);
        a.dst_point = r_.below(8);
        if (mutating()) mutate(&a, sizeof(a));
        return io(f, DRM_IOCTL_SYNCOBJ_TRANSFER, &a);
      }
      case OP_SYNC_TO_FD: {
        drm_syncobj_handle a{};
        a.handle = uint32_t(pick(syncs));
        a.flags = r_.chance(2) ? DRM_SYNCOBJ_HANDLE_TO_FD_FLAGS_EXPORT_SYNC_FILE : 0;
        if (mutating()) mutate(&a, sizeof(a));
        int ret = io(f, DRM_IOCTL_SYNCOBJ_HANDLE_TO_FD, &a);
        if (!ret) fds_.push_back({a.fd, 0});
        return ret;
      }
      case OP_SYNC_FROM_FD: {
        drm_syncobj_handle a{};
        a.fd = any_fd();
        a.flags = r_.chance(2) ? DRM_SYNCOBJ_FD_TO_HANDLE_FLAGS_IMPORT_SYNC_FILE : 0;
        a.handle = a.flags ? uint32_t(pick(syncs)) : 0;
        if (mutating()) mutate(&a, sizeof(a));
        int ret = io(f, DRM_IOCTL_SYNCOBJ_FD_TO_HANDLE, &a);
        if (!ret && !(a.flags & DRM_SYNCOBJ_FD_TO_HANDLE_FLAGS_IMPORT_SYNC_FILE)) adopt(syncs, a.handle);
        return ret;
      }
      case OP_SYNC_EVENTFD: {
        drm_syncobj_eventfd a{};
        a.handle = uint32_t(pick(syncs));
        a.point = r_.below(4);
        a.fd = efd_;
        a.flags = r_.chance(2) ? DRM_SYNCOBJ_WAIT_FLAGS_WAIT_AVAILABLE : 0;
        if (mutating()) mutate(&a, sizeof(a));
        return io(f, DRM_IOCTL_SYNCOBJ_EVENTFD, &a);
      }
      case OP_CORE: {
        // Core DRM ioctls an accel file can see, and PRIME/GEM ones it may not support.
        uint8_t *arg = scratch_ + 8192;
        memset(arg, 0, 256);
        switch (r_.below(5)) {
          case 0: {
            auto *v = reinterpret_cast<drm_version *>(arg);
            v->name_len = r_.below(64);
            v->name = reinterpret_cast<char *>(ptr_for(scratch_ + 16384));
            v->date_len = r_.below(64);
            v->date = reinterpret_cast<char *>(ptr_for(scratch_ + 16512));
            v->desc_len = r_.below(64);
            v->desc = reinterpret_cast<char *>(ptr_for(scratch_ + 16640));
            return io(f, DRM_IOCTL_VERSION, v);
          }
          case 1: {
            auto *c = reinterpret_cast<drm_get_cap *>(arg);
            c->capability = r_.below(0x20);
            return io(f, DRM_IOCTL_GET_CAP, c);
          }
          case 2: {
            auto *c = reinterpret_cast<drm_set_client_cap *>(arg);
            c->capability = r_.below(8);
            c->value = r_.below(3);
            return io(f, DRM_IOCTL_SET_CLIENT_CAP, c);
          }
          case 3: {
            auto *fl = reinterpret_cast<drm_gem_flink *>(arg);
            fl->handle = uint32_t(pick(bos));
            return io(f, DRM_IOCTL_GEM_FLINK, fl);
          }
          default: {
            auto *o = reinterpret_cast<drm_gem_open *>(arg);
            o->name = uint32_t(r_.below(16));
            int ret = io(f, DRM_IOCTL_GEM_OPEN, o);
            if (!ret) adopt(bos, o->handle);
            return ret;
          }
        }
      }
      case OP_RANDOM_NR: {
        // Any number in the driver range (and just past it), any size and direction.
        uint32_t nr = DRM_COMMAND_BASE + uint32_t(r_.below(0x14));
        uint32_t size = uint32_t(r_.below(4) ? r_.below(160) : r_.below(4096));
        static const uint32_t dirs[] = {_IOC_NONE, _IOC_READ, _IOC_WRITE, _IOC_READ | _IOC_WRITE};
        unsigned long req = _IOC(dirs[r_.below(4)], DRM_IOCTL_BASE, nr, size);
        uint8_t *arg = scratch_ + 32768;
        for (uint32_t i = 0; i < size; i += 8) {
          uint64_t v = r_.chance(3) ? interesting() : pick(r_.chance(2) ? bos : ctxs);
          memcpy(arg + i, &v, std::min<uint32_t>(8, size - i));
        }
        // Never let a random call block: random ioctls don't include waits with
        // far deadlines except BO_WAIT, whose deadline sits at offset 8.
        if (nr == DRM_COMMAND_BASE + DRM_KILN_BO_WAIT && size >= 16) {
          int64_t dl = short_deadline();
          memcpy(arg + 8, &dl, 8);
        }
        return io(f, req, arg);
      }
      case OP_MMAP: {
        drm_kiln_bo_info a{};
        a.handle = uint32_t(pick(bos));
        uint64_t off = 0, size = 4096;
        if (io(f, DRM_IOCTL_KILN_BO_INFO, &a) == 0) {
          off = a.mmap_offset;
          size = a.size;
        }
        if (mutating()) {
          if (r_.chance(2)) off += 4096 * r_.below(4);
          if (r_.chance(2)) size = 4096 * (1 + r_.below(1024));
        }
        size = std::min<uint64_t>(size, 8 << 20);
        void *p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, files_[f], off);
        if (p == MAP_FAILED) return -errno;
        // Touch only what the BO really has (past it is SIGBUS by design).
        uint64_t touch = std::min<uint64_t>(size, a.size);
        for (uint64_t i = 0; i < touch; i += 4096) {
          volatile uint8_t *q = static_cast<volatile uint8_t *>(p) + i;
          *q = uint8_t(*q + 0);
        }
        munmap(p, size);
        return 0;
      }
      default:
        return 0;
    }
  }

  // SUBMIT: a valid job (fill + fence into a data BO) or a mutation of it.
  int submit(int f, Dev &d) {
    Pool &ctxs = ctxs_[f], &syncs = syncs_[f];
    if (!cmd_[f].handle) {
      make_room(8192 + 65536);
      if (d.bo_create(8192, 0, &cmd_[f])) return -ENOMEM;
      adopt(bos_[f], cmd_[f].handle);
      host_[f][cmd_[f].handle] = cmd_[f].size;
      if (d.bo_create(65536, 0, &data_[f])) return -ENOMEM;
      adopt(bos_[f], data_[f].handle);
      host_[f][data_[f].handle] = data_[f].size;
      void *p = d.map(cmd_[f].handle, cmd_[f].size);
      if (!p) return -ENOMEM;
      cmd_map_[f] = static_cast<uint8_t *>(p);
    }
    if (!cmd_map_[f]) return -ENOMEM;
    if (ctxs.live.empty()) {
      uint32_t id = 0;
      if (d.ctx_create(&id, DRM_KILN_PRIORITY_NORMAL, 100) == 0) adopt(ctxs, id);
    }
    // Most submits are built to pass the argument checks, so that the
    // scheduler, the rings and the device see them (an earlier version got
    // 42 of ~700 through); the rest probe the checks with mutated arguments.
    const bool valid = r_.below(100) < 70;
    // Refresh the command buffer: valid packets, sometimes mutated ones.
    Cmd c;
    c.fill(data_[f].va + 64 * r_.below(16), 64 * (1 + r_.below(16)), uint32_t(r_.next()));
    c.copy(data_[f].va + 32768, data_[f].va, 4096);
    c.fence(data_[f].va + 65536 - 8, r_.next());
    memcpy(cmd_map_[f], c.data(), c.size());
    if (r_.chance(4)) {
      uint8_t *pk = cmd_map_[f] + 64 * r_.below(3);
      // Keep WAIT out: a WAIT that never completes only costs the context's timeout.
      for (int i = 0; i < 1 + int(r_.below(3)); i++) pk[r_.below(64)] ^= uint8_t(1u << r_.below(8));
    }
    auto live_or_pick = [&](Pool &p) {
      return valid && !p.live.empty() ? p.live[r_.below(p.live.size())] : pick(p);
    };
    std::vector<drm_kiln_bo_ref> refs{ref(cmd_[f], false), ref(data_[f])};
    if (r_.chance(4)) {
      drm_kiln_bo_ref x{};
      x.handle = uint32_t(live_or_pick(bos_[f]));
      if (!valid || (x.handle != cmd_[f].handle && x.handle != data_[f].handle)) refs.push_back(x);
    }
    std::vector<drm_kiln_sync> sy;
    uint32_t so = 0;
    bool binary = false;
    if (r_.chance(2) && (!valid || !syncs.live.empty())) {
      so = uint32_t(live_or_pick(syncs));
      binary = valid ? !r_.chance(3) : r_.chance(2);
      sy.push_back(sig(so, binary ? 0 : 1 + r_.below(8)));
    }
    if (r_.chance(4)) {
      if (valid && !fenced_[f].live.empty())
        sy.push_back(waitfor(uint32_t(fenced_[f].live[r_.below(fenced_[f].live.size())]), 0));
      else if (!valid)
        sy.push_back(waitfor(uint32_t(pick(syncs)), r_.below(3)));
    }
    drm_kiln_submit s{};
    s.ctx_id = uint32_t(live_or_pick(ctxs));
    s.cmd_va = cmd_[f].va;
    s.cmd_size = c.size();
    s.bos.ptr = valid ? reinterpret_cast<uintptr_t>(refs.data()) : ptr_for(refs.data());
    s.bos.count = uint32_t(refs.size());
    s.bos.stride = sizeof(drm_kiln_bo_ref);
    s.syncs.ptr = sy.empty() ? 0 : valid ? reinterpret_cast<uintptr_t>(sy.data()) : ptr_for(sy.data());
    s.syncs.count = uint32_t(sy.size());
    s.syncs.stride = sizeof(drm_kiln_sync);
    // A huge count with a valid pointer is still a legitimate probe of the limits.
    if (!valid && mutating()) mutate(&s, sizeof(s));
    int ret = io(f, DRM_IOCTL_KILN_SUBMIT, &s);
    sh_->submit_errno[std::min<int>(-ret, kErrnos - 1)]++;
    if (!ret) {
      sh_->submits_ok++;
      jobs_[f].push_back({s.ctx_id, s.seqno});
      if (jobs_[f].size() > 64) jobs_[f].erase(jobs_[f].begin());
      if (so && binary) adopt(fenced_[f], so);
    } else if (ret == -EIO) {
      // Banned (one of its jobs hung): a new context serves the next submits.
      drm_kiln_ctx_destroy a{};
      a.ctx_id = s.ctx_id;
      if (io(f, DRM_IOCTL_KILN_CTX_DESTROY, &a) == 0) forget(ctxs, s.ctx_id);
    }
    return ret;
  }

  // Keep the pools bounded so memory use stays flat over a million calls.
  void trim(int f) {
    Dev d(files_[f]);
    while (bos_[f].live.size() > 48) {
      uint32_t h = uint32_t(bos_[f].live[r_.below(bos_[f].live.size())]);
      if (h == cmd_[f].handle || h == data_[f].handle) continue;
      d.gem_close(h);
      closed(f, h);
    }
    while (ctxs_[f].live.size() > 8) {
      uint32_t c = uint32_t(ctxs_[f].live[0]);
      d.ctx_destroy(c);
      forget(ctxs_[f], c);
    }
    while (syncs_[f].live.size() > 32) {
      uint32_t s = uint32_t(syncs_[f].live[0]);
      d.syncobj_destroy(s);
      forget(syncs_[f], s);
      forget(fenced_[f], s);
    }
    while (fds_.size() > 24) {
      close(fds_.front().fd);
      fds_.erase(fds_.begin());
    }
    d.release();
  }

  Rng &r_;
  Shared *sh_;
  int files_[2] = {-1, -1};
  int efd_ = -1;
  uint8_t *scratch_ = nullptr;
  Pool bos_[2], ctxs_[2], syncs_[2];
  struct Fd {
    int fd;
    uint64_t bytes;  // host memory the fd keeps alive (a dma-buf)
  };
  std::vector<Fd> fds_;
  std::map<uint32_t, uint64_t> host_[2];  // live host BO handle -> bytes
  Pool fenced_[2];                        // syncobjs known to have a fence
  std::vector<std::pair<uint32_t, uint64_t>> jobs_[2];
  Bo cmd_[2], data_[2];
  uint8_t *cmd_map_[2] = {nullptr, nullptr};
};

// The device still runs a job correctly (after the fuzzing).
bool device_still_works(std::string *why) {
  Dev d;
  if (!d.ok()) return *why = "open failed", false;
  uint32_t ctx = 0;
  if (d.ctx_create(&ctx)) return *why = "CTX_CREATE failed", false;
  Bo buf = d.bo(65536);
  Cmd c;
  c.fill(buf.va, 65536, 0x5eed5eed);
  Bo cb = cmd_bo(d, c.data(), c.size());
  uint32_t so = d.syncobj();
  if (d.submit(ctx, cb.va, c.size(), {ref(cb, false), ref(buf)}, {sig(so)})) return *why = "SUBMIT failed", false;
  if (d.syncobj_wait(so, 30 * kSec)) return *why = "job did not finish", false;
  auto *p = static_cast<uint32_t *>(d.map(buf.handle, buf.size));
  bool ok = p && p[0] == 0x5eed5eed && p[16383] == 0x5eed5eed;
  if (p) munmap(p, buf.size);
  if (!ok) *why = "wrong data";
  return ok;
}

// The parent keeps restarting disposable workers until the call budget is spent.
TEST(StressIoctl, FuzzAsUnprivilegedUserAccountingBackToBaseline) {
  if (access(accel_node().c_str(), F_OK) != 0) GTEST_SKIP() << "no /dev/accel/accel0";
  const uint64_t total = env_u64("KILN_STRESS_IOCTL_CALLS", 20000);
  const uint64_t seed = seed_from_env();
  const int workers = int(env_u64("KILN_STRESS_WORKERS", 2));
  const uint64_t chunk = std::max<uint64_t>(2000, std::min<uint64_t>(50000, total / (workers * 4) + 1));
  printf("ioctl fuzzer: %llu calls, seed %llu, %d workers, %llu calls per worker process\n",
         (unsigned long long)total, (unsigned long long)seed, workers, (unsigned long long)chunk);

  Dev probe;
  ASSERT_TRUE(probe.ok()) << strerror(errno);
  Accounting base = Accounting::read(probe);
  auto *sh = static_cast<Shared *>(
      mmap(nullptr, sizeof(Shared), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0));
  ASSERT_NE(sh, MAP_FAILED);
  new (sh) Shared();

  uint64_t t0 = now_ns();
  uint64_t spawned = 0, self_crashes = 0, budget = 0, worker_idx = 0;
  std::map<pid_t, uint64_t> running;
  while (budget < total || !running.empty()) {
    while (budget < total && int(running.size()) < workers) {
      uint64_t n = std::min(chunk, total - budget);
      budget += n;
      uint64_t wseed = seed * 1000003 + worker_idx++;
      pid_t pid = fork();
      if (pid == 0) {
        if (!drop_to_user()) _exit(3);
        Rng r(wseed);
        Fuzzer fz(r, sh);
        if (!fz.ok()) _exit(4);
        for (uint64_t i = 0; i < n; i++) fz.step();
        _exit(0);
      }
      ASSERT_GT(pid, 0);
      running[pid] = wseed;
      spawned++;
    }
    int st = 0;
    pid_t pid = wait(&st);
    if (pid < 0) break;
    uint64_t wseed = running[pid];
    running.erase(pid);
    if (WIFEXITED(st) && (WEXITSTATUS(st) == 3 || WEXITSTATUS(st) == 4))
      FAIL() << "worker could not " << (WEXITSTATUS(st) == 3 ? "drop privileges" : "open the device");
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
      // A mutated out-pointer may hit the worker's own memory: not a kernel bug,
      // but counted and reported with the seed to replay.
      self_crashes++;
      printf("worker seed %llu ended with status 0x%x (self-inflicted; replay with this seed)\n",
             (unsigned long long)wseed, st);
    }
  }
  double secs = double(now_ns() - t0) / 1e9;
  uint64_t calls = sh->calls.load();
  printf("ioctl fuzzer: %llu calls (%llu succeeded, %llu jobs submitted) in %.1f s, %llu workers, %llu self-crashes\n",
         (unsigned long long)calls, (unsigned long long)sh->ok.load(), (unsigned long long)sh->submits_ok.load(),
         secs, (unsigned long long)spawned, (unsigned long long)self_crashes);
  for (int i = 0; i < OP_COUNT; i++) printf("  %-24s %llu\n", kOpNames[i], (unsigned long long)sh->per_op[i].load());
  printf("  submit outcomes:");
  for (int e = 0; e < kErrnos; e++)
    if (uint64_t n = sh->submit_errno[e].load()) printf(" %s %llu", e ? strerrorname_np(e) : "accepted", (unsigned long long)n);
  printf("\n");

  std::string leak = wait_back_to(probe, base, 20000);
  EXPECT_EQ(leak, "") << "accounting not back to baseline after the fuzzer";
  std::string why;
  bool works = device_still_works(&why);
  EXPECT_TRUE(works) << why;
  EXPECT_GE(calls, total * 9 / 10) << "workers died early";
  EXPECT_LE(self_crashes, spawned / 4 + 1);
  std::map<std::string, double> fig{{"calls", double(calls)},
                                    {"succeeded", double(sh->ok.load())},
                                    {"jobs_submitted", double(sh->submits_ok.load())},
                                    {"submit_calls", double(sh->per_op[OP_SUBMIT].load())},
                                    {"seconds", secs},
                                    {"calls_per_s", calls / std::max(secs, 1e-9)},
                                    {"worker_processes", double(spawned)},
                                    {"worker_self_crashes", double(self_crashes)},
                                    {"accounting_back_to_baseline", leak.empty() ? 1.0 : 0.0},
                                    {"device_works_after", works ? 1.0 : 0.0},
                                    {"seed", double(seed)}};
  figure("ioctl_fuzz", fig);
  munmap(sh, sizeof(Shared));
}

// Known failure outside Kiln (upstream DRM core, seen on Debian 6.12.117): an
// unprivileged SYNCOBJ_WAIT with a huge count_handles makes
// drm_syncobj_array_find() kmalloc_array() gigabytes without __GFP_NOWARN, and
// the page allocator WARNs (mm/page_alloc.c, order > MAX_PAGE_ORDER). The call
// itself fails cleanly with -ENOMEM. Disabled because the WARN fails the whole
// VM boot and the fix belongs upstream (add __GFP_NOWARN or bound the count);
// run it alone with --gtest_also_run_disabled_tests to reproduce.
TEST(StressIoctl, DISABLED_UpstreamSyncobjWaitHugeCountWarns) {
  Dev d;
  if (!d.ok()) GTEST_SKIP() << "no device";
  uint32_t h = d.syncobj(true);
  drm_syncobj_wait w{};
  w.handles = reinterpret_cast<uintptr_t>(&h);
  w.count_handles = 0x40000000;
  w.timeout_nsec = 0;
  int r = xioctl(d.fd(), DRM_IOCTL_SYNCOBJ_WAIT, &w);
  EXPECT_NE(r, 0);
  d.syncobj_destroy(h);
}

}  // namespace
