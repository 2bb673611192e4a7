// SPDX-License-Identifier: MIT
// libkiln: an in-process fake of the kiln driver and device for unit tests.
// It emulates BOs (host memory), the per-file VA space, contexts, timeline
// syncobjs and SUBMIT, executing DMA_COPY/DMA_FILL/FENCE/WAIT/TIMESTAMP
// packets in host memory; LAUNCH calls a test hook. Every address a command
// buffer touches must lie in a BO of the submit's BO list (else MMU_FAULT),
// so SDK bugs in residency tracking show up. Errors can be injected per ioctl.
#pragma once

#include <kiln/hw/kiln_packets.h>
#include <kiln/hw/kiln_status.h>

#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <vector>

#include "driver.hpp"
#include "handle_access.hpp"

namespace kiln::detail {

class FakeDriver : public Driver {
 public:
  struct Options {
    std::string name = "kiln";
    int major = 1, minor = 0;
    uint32_t grid_w = 2, grid_h = 2;
    uint32_t local_mem = 384 << 10;
    uint64_t dram_size = 256ull << 20;
    uint32_t max_cmd_size = 4u << 20;
    uint32_t max_submit_bos = 1024;
    uint32_t max_queued_jobs = 256;  // per context; also the job-status ring's records
    bool status_ring = true;         // false: a driver before uAPI 1.4
    bool ban_on_fault = false;  // a failed job bans its context
  };
  /// What a LAUNCH did (the hook's answer).
  struct LaunchResult {
    uint32_t status = KILN_STATUS_OK;
    uint32_t pe = KILN_JOB_STATUS_NO_PE;
    uint64_t pc = 0, fault_addr = 0;
    uint32_t fault_reason = 0, fault_access = 0;
    uint64_t cycles = 1000;
  };
  using LaunchHook = std::function<LaunchResult(const kiln_pkt_launch&, FakeDriver&)>;
  /// The fake's energy model: about the device's idle power (20 W at 1.35 GHz)
  static constexpr uint64_t kEnergyPerCyclePj = 15000;

  FakeDriver() : FakeDriver(Options{}) {}
  explicit FakeDriver(Options o);

  // ---- test controls (thread-safe) ----
  /// The next `count` calls of `ioctl` (e.g. "DRM_IOCTL_KILN_SUBMIT") fail with `err`.
  void inject_error(std::string ioctl, int err, int count = 1);
  /// While held, submitted jobs stay pending (waits time out) until release().
  void hold();
  void release();
  void set_launch_hook(LaunchHook h);
  /// The next job fails with this result (instead of running).
  void fail_next_job(LaunchResult r);
  /// Simulate a device reset that aborts pending jobs; bans their contexts if `ban`.
  void reset_device(bool ban);
  /// Host view of device memory [va, va + size) inside one BO (for launch hooks).
  std::span<std::byte> memory(uint64_t va, uint64_t size);

  size_t live_bos() const;
  size_t live_contexts() const;
  size_t live_syncobjs() const;
  size_t submits() const;
  size_t ioctl_count(const std::string& name) const;
  std::vector<kiln_pkt_generic> last_packets() const;
  std::vector<drm_kiln_bo_ref> last_bo_list() const;
  std::vector<drm_kiln_sync> last_syncs() const;

  // ---- Driver ----
  DriverVersion version() override;
  uint64_t get_param(uint32_t param) override;
  uint32_t query_info(uint32_t type, std::span<std::byte> out) override;
  void bo_create(drm_kiln_bo_create& a) override;
  void bo_info(drm_kiln_bo_info& a) override;
  bool bo_wait(drm_kiln_bo_wait& a) override;
  void gem_close(uint32_t handle) noexcept override;
  void ctx_create(drm_kiln_ctx_create& a) override;
  void ctx_destroy(uint32_t ctx_id) noexcept override;
  void submit(drm_kiln_submit& a) override;
  void ctx_status(drm_kiln_ctx_status& a) override;
  void job_status(drm_kiln_job_status& a) override;
  std::byte* mmap(uint64_t offset, size_t size) override;
  const std::byte* mmap_readonly(uint64_t offset, size_t size) override;
  void munmap(const std::byte* p, size_t size) noexcept override;
  uint32_t syncobj_create() override;
  void syncobj_destroy(uint32_t h) noexcept override;
  bool syncobj_wait(std::span<const uint32_t> handles, std::span<const uint64_t> points,
                    int64_t abs_timeout_ns) override;
  void syncobj_signal(uint32_t h, uint64_t point) override;
  void syncobj_transfer(uint32_t dst, uint64_t dst_point, uint32_t src, uint64_t src_point) override;
  uint64_t syncobj_query(uint32_t h) override;
  int prime_export(uint32_t handle) override;
  uint32_t prime_import(int fd) override;
  int fd() const noexcept override { return -1; }

 private:
  struct Storage {
    std::vector<std::byte> bytes;
  };
  struct FBo {
    std::shared_ptr<Storage> mem;
    uint64_t va = 0, size = 0;
    uint32_t flags = 0;
  };
  struct Ctx {
    uint64_t submitted = 0, completed = 0;
    bool banned = false;
    drm_kiln_ctx_status last_error{};
    std::map<uint64_t, drm_kiln_job_status> jobs;
    // The job-status ring as kiln.ko fills it; outlives the context while mapped.
    std::shared_ptr<std::vector<drm_kiln_job_record>> ring;
  };
  struct Job {
    uint32_t ctx;
    uint64_t seqno;
    uint64_t cmd_va;
    uint32_t cmd_size;
    std::vector<drm_kiln_bo_ref> bos;
    std::vector<drm_kiln_sync> signals;
  };
  void check_inject(const char* name);  // caller holds mu_
  void run(Job& j);                     // caller holds mu_
  void complete(Job& j, const drm_kiln_job_status& st);
  std::byte* translate(const Job& j, uint64_t va, uint64_t size, bool& ok);
  void write_profile(const Job& j, const kiln_pkt_launch& p, uint64_t cycles);

  Options o_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::map<uint32_t, FBo> bos_;
  std::map<uint32_t, Ctx> ctxs_;
  std::map<uint32_t, uint64_t> syncobjs_;
  std::map<std::string, std::pair<int, int>> inject_;  // ioctl -> (errno, count)
  std::map<std::string, size_t> calls_;
  std::vector<Job> held_;
  std::vector<std::shared_ptr<std::vector<drm_kiln_job_record>>> mapped_rings_;
  bool holding_ = false;
  LaunchHook hook_;
  std::optional<LaunchResult> fail_next_;
  uint32_t next_handle_ = 1, next_ctx_ = 1, next_sync_ = 1;
  uint64_t next_va_ = 0x100000000ull;
  uint64_t dram_used_ = 0;
  uint64_t device_ns_ = 1000, cycles_ = 0;
  size_t submits_ = 0;
  std::vector<kiln_pkt_generic> last_packets_;
  std::vector<drm_kiln_bo_ref> last_bos_;
  std::vector<drm_kiln_sync> last_syncs_;
};

}  // namespace kiln::detail
