// SPDX-License-Identifier: MIT
// libkiln internals: the one narrow interface every ioctl goes through.
// Implementations: DrmDriver (libdrm, the real device) and, outside the shipped
// library, FakeDriver (tests/support, for unit tests). Methods take the UAPI structs (the typed ioctl layer) and throw
// kiln::Error carrying the ioctl name and errno on failure.
#pragma once

#include <uapi/drm/kiln_accel.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>

namespace kiln::detail {

struct DriverVersion {
  std::string name;
  int major = 0, minor = 0, patch = 0;
};

class Driver {
 public:
  virtual ~Driver() = default;

  virtual DriverVersion version() = 0;                                       // DRM_IOCTL_VERSION
  virtual uint64_t get_param(uint32_t param) = 0;                            // DRM_IOCTL_KILN_GET_PARAM
  virtual uint32_t query_info(uint32_t type, std::span<std::byte> out) = 0;  // returns size known
  virtual void bo_create(drm_kiln_bo_create& a) = 0;
  virtual void bo_info(drm_kiln_bo_info& a) = 0;
  virtual bool bo_wait(drm_kiln_bo_wait& a) = 0;  // false on timeout
  virtual void gem_close(uint32_t handle) noexcept = 0;
  virtual void ctx_create(drm_kiln_ctx_create& a) = 0;
  virtual void ctx_destroy(uint32_t ctx_id) noexcept = 0;
  virtual void submit(drm_kiln_submit& a) = 0;
  virtual void ctx_status(drm_kiln_ctx_status& a) = 0;
  virtual void job_status(drm_kiln_job_status& a) = 0;

  virtual std::byte* mmap(uint64_t offset, size_t size) = 0;
  /// A read-only shared mapping (PROT_READ), e.g. a context's job-status ring.
  virtual const std::byte* mmap_readonly(uint64_t offset, size_t size) = 0;
  virtual void munmap(const std::byte* p, size_t size) noexcept = 0;

  virtual uint32_t syncobj_create() = 0;
  virtual void syncobj_destroy(uint32_t h) noexcept = 0;
  /// Wait until every (handle, point) is signalled (waits for submission too).
  /// abs_timeout_ns is CLOCK_MONOTONIC; false on timeout.
  virtual bool syncobj_wait(std::span<const uint32_t> handles, std::span<const uint64_t> points,
                            int64_t abs_timeout_ns) = 0;
  virtual void syncobj_signal(uint32_t h, uint64_t point) = 0;
  virtual void syncobj_transfer(uint32_t dst, uint64_t dst_point, uint32_t src, uint64_t src_point) = 0;
  virtual uint64_t syncobj_query(uint32_t h) = 0;  // last signalled point

  virtual int prime_export(uint32_t handle) = 0;  // dma-buf fd
  virtual uint32_t prime_import(int fd) = 0;      // GEM handle

  virtual int fd() const noexcept = 0;
};

/// Open a DRM accel node through libdrm. Throws Error.
std::shared_ptr<Driver> open_drm_driver(const std::string& path);

/// CLOCK_MONOTONIC now, ns.
int64_t monotonic_ns() noexcept;

}  // namespace kiln::detail
