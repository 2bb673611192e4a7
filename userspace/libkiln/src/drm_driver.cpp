// SPDX-License-Identifier: MIT
// libkiln: the libdrm implementation of the driver interface.
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>
#include <xf86drm.h>

#include <cerrno>
#include <ctime>

#include "driver.hpp"
#include "internal.hpp"

namespace kiln::detail {

int64_t monotonic_ns() noexcept {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

namespace {

class DrmDriver final : public Driver {
 public:
  DrmDriver(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
  ~DrmDriver() override { ::close(fd_); }

  DriverVersion version() override {
    drmVersionPtr v = drmGetVersion(fd_);
    if (!v) throw_errno("DRM_IOCTL_VERSION", errno);
    DriverVersion r{std::string(v->name, size_t(v->name_len)), v->version_major, v->version_minor,
                    v->version_patchlevel};
    drmFreeVersion(v);
    return r;
  }

  uint64_t get_param(uint32_t param) override {
    drm_kiln_get_param a{};
    a.param = param;
    io(DRM_IOCTL_KILN_GET_PARAM, &a, "DRM_IOCTL_KILN_GET_PARAM");
    return a.value;
  }

  uint32_t query_info(uint32_t type, std::span<std::byte> out) override {
    drm_kiln_query_info a{};
    a.type = type;
    a.size = uint32_t(out.size());
    a.ptr = reinterpret_cast<uintptr_t>(out.data());
    io(DRM_IOCTL_KILN_QUERY_INFO, &a, "DRM_IOCTL_KILN_QUERY_INFO");
    return a.size;
  }

  void bo_create(drm_kiln_bo_create& a) override { io(DRM_IOCTL_KILN_BO_CREATE, &a, "DRM_IOCTL_KILN_BO_CREATE"); }
  void bo_info(drm_kiln_bo_info& a) override { io(DRM_IOCTL_KILN_BO_INFO, &a, "DRM_IOCTL_KILN_BO_INFO"); }
  bool bo_wait(drm_kiln_bo_wait& a) override {
    if (drmIoctl(fd_, DRM_IOCTL_KILN_BO_WAIT, &a) == 0) return true;
    if (errno == ETIME || errno == ETIMEDOUT) return false;
    throw_errno("DRM_IOCTL_KILN_BO_WAIT", errno);
  }
  void gem_close(uint32_t handle) noexcept override {
    drm_gem_close a{};
    a.handle = handle;
    drmIoctl(fd_, DRM_IOCTL_GEM_CLOSE, &a);
  }
  void ctx_create(drm_kiln_ctx_create& a) override { io(DRM_IOCTL_KILN_CTX_CREATE, &a, "DRM_IOCTL_KILN_CTX_CREATE"); }
  void ctx_destroy(uint32_t ctx_id) noexcept override {
    drm_kiln_ctx_destroy a{};
    a.ctx_id = ctx_id;
    drmIoctl(fd_, DRM_IOCTL_KILN_CTX_DESTROY, &a);
  }
  void submit(drm_kiln_submit& a) override { io(DRM_IOCTL_KILN_SUBMIT, &a, "DRM_IOCTL_KILN_SUBMIT"); }
  void ctx_status(drm_kiln_ctx_status& a) override { io(DRM_IOCTL_KILN_CTX_STATUS, &a, "DRM_IOCTL_KILN_CTX_STATUS"); }
  void job_status(drm_kiln_job_status& a) override { io(DRM_IOCTL_KILN_JOB_STATUS, &a, "DRM_IOCTL_KILN_JOB_STATUS"); }

  std::byte* mmap(uint64_t offset, size_t size) override {
    void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd_, off_t(offset));
    if (p == MAP_FAILED) throw_errno("mmap", errno);
    return static_cast<std::byte*>(p);
  }
  const std::byte* mmap_readonly(uint64_t offset, size_t size) override {
    void* p = ::mmap(nullptr, size, PROT_READ, MAP_SHARED, fd_, off_t(offset));
    if (p == MAP_FAILED) throw_errno("mmap", errno);
    return static_cast<const std::byte*>(p);
  }
  void munmap(const std::byte* p, size_t size) noexcept override {
    ::munmap(const_cast<std::byte*>(p), size);  // munmap(2) takes a non-const pointer
  }

  uint32_t syncobj_create() override {
    uint32_t h = 0;
    if (int r = drmSyncobjCreate(fd_, 0, &h); r) throw_errno("DRM_IOCTL_SYNCOBJ_CREATE", ret_errno(r));
    return h;
  }
  void syncobj_destroy(uint32_t h) noexcept override { drmSyncobjDestroy(fd_, h); }
  bool syncobj_wait(std::span<const uint32_t> handles, std::span<const uint64_t> points,
                    int64_t abs_timeout_ns) override {
    // libdrm takes non-const arrays; it does not modify them.
    int r = drmSyncobjTimelineWait(fd_, const_cast<uint32_t*>(handles.data()), const_cast<uint64_t*>(points.data()),
                                   unsigned(handles.size()), abs_timeout_ns,
                                   DRM_SYNCOBJ_WAIT_FLAGS_WAIT_ALL | DRM_SYNCOBJ_WAIT_FLAGS_WAIT_FOR_SUBMIT, nullptr);
    if (r == 0) return true;
    int e = ret_errno(r);
    if (e == ETIME || e == ETIMEDOUT) return false;
    throw_errno("DRM_IOCTL_SYNCOBJ_TIMELINE_WAIT", e);
  }
  void syncobj_signal(uint32_t h, uint64_t point) override {
    if (int r = drmSyncobjTimelineSignal(fd_, &h, &point, 1); r)
      throw_errno("DRM_IOCTL_SYNCOBJ_TIMELINE_SIGNAL", ret_errno(r));
  }
  void syncobj_transfer(uint32_t dst, uint64_t dst_point, uint32_t src, uint64_t src_point) override {
    if (int r = drmSyncobjTransfer(fd_, dst, dst_point, src, src_point, 0); r)
      throw_errno("DRM_IOCTL_SYNCOBJ_TRANSFER", ret_errno(r));
  }
  uint64_t syncobj_query(uint32_t h) override {
    uint64_t p = 0;
    if (int r = drmSyncobjQuery(fd_, &h, &p, 1); r) throw_errno("DRM_IOCTL_SYNCOBJ_QUERY", ret_errno(r));
    return p;
  }
  int prime_export(uint32_t handle) override {
    int pfd = -1;
    if (int r = drmPrimeHandleToFD(fd_, handle, DRM_CLOEXEC | DRM_RDWR, &pfd); r)
      throw_errno("DRM_IOCTL_PRIME_HANDLE_TO_FD", ret_errno(r));
    return pfd;
  }
  uint32_t prime_import(int pfd) override {
    uint32_t h = 0;
    if (int r = drmPrimeFDToHandle(fd_, pfd, &h); r) throw_errno("DRM_IOCTL_PRIME_FD_TO_HANDLE", ret_errno(r));
    return h;
  }
  int fd() const noexcept override { return fd_; }

 private:
  // drmIoctl() restarts on EINTR and EAGAIN (errno is positive).
  void io(unsigned long req, void* arg, const char* name) {
    if (drmIoctl(fd_, req, arg) != 0) throw_errno(name, errno);
  }
  // libdrm helpers return either -1 with errno set or -errno.
  static int ret_errno(int r) { return r == -1 ? errno : -r; }
  [[noreturn]] void throw_errno(const char* name, int err) { throw_ioctl_error(name, err, path_); }
  int fd_;
  std::string path_;
};

}  // namespace

std::shared_ptr<Driver> open_drm_driver(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) {
    int e = errno;
    throw_ioctl_error("open", e, path);
  }
  return std::make_shared<DrmDriver>(fd, path);
}

}  // namespace kiln::detail
