// SPDX-License-Identifier: MIT
// libkiln: errors. Every failure throws kiln::Error (a std::system_error);
// timeouts are not errors (Event::wait returns false).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>

namespace kiln {

/// What went wrong, independent of the layer that noticed it.
enum class Errc {
  ok = 0,
  invalid_argument,     ///< bad call from the application (caught before any ioctl where possible)
  out_of_memory,        ///< device or host memory exhausted (ENOMEM/ENOSPC)
  not_supported,        ///< operation not available (e.g. mapping a NO_MMAP buffer)
  permission_denied,    ///< EACCES/EPERM: not in the render group, or a privileged request
  timeout,              ///< only thrown where a timeout cannot be returned as a value
  device_lost,          ///< the device or context is unusable after a reset/ban (sticky)
  kernel_fault,         ///< a PE kernel faulted (MMU fault, illegal instruction, trap, watchdog)
  job_failed,           ///< a job failed on the device for another reason (bad packet, DMA error)
  binary_incompatible,  ///< kernel binary is not for this device (ELF machine, target note)
  invalid_binary,       ///< kernel binary is malformed (truncated, bad offsets, bad metadata)
  no_device,            ///< no usable Kiln device (see kiln::diagnose())
  version_mismatch,     ///< driver UAPI version not supported by this libkiln
  io_error,             ///< any other OS error
  not_found,            ///< a file (kernel binary) does not exist
};

const std::error_category& category() noexcept;
inline std::error_code make_error_code(Errc e) noexcept {
  return {static_cast<int>(e), category()};
}

/// Outcome of a failed device job (DRM_KILN_JOB_STATUS / struct kiln_job_status).
struct JobFault {
  uint64_t seqno = 0;                     ///< per-context job number
  uint32_t status = 0;                    ///< enum kiln_status (include/kiln/hw/kiln_status.h)
  uint32_t packet_index = 0;              ///< failing packet within the command buffer
  std::optional<uint32_t> pe;             ///< failing PE (y * width + x), if a kernel faulted
  uint64_t pc = 0;                        ///< PE program counter of the fault
  uint64_t module_base = 0;               ///< where the faulting launch's kernel binary is loaded:
                                          ///< pc - module_base is the address `kiln-cc --disassemble` shows
  uint64_t fault_addr = 0;                ///< by status: faulting VA, instruction bits (ILLEGAL_INSTRUCTION),
                                          ///< trap code (KERNEL_TRAP), cycles run (WATCHDOG)
  uint32_t fault_access = 0;              ///< KILN_ACCESS_*
  uint32_t fault_reason = 0;              ///< MMU fault reason or RISC-V cause
  int32_t fence_error = 0;                ///< 0, -EIO, -ETIMEDOUT, -ECANCELED
  std::optional<uint32_t> command_index;  ///< index of the failing command as recorded
};

/// Name of a kiln_status value ("MMU_FAULT", ...).
std::string_view status_name(uint32_t status) noexcept;

class Error : public std::system_error {
 public:
  Error(Errc code, const std::string& what, std::string_view ioctl = {}, int os_errno = 0,
        std::optional<JobFault> job = std::nullopt);

  Errc errc() const noexcept { return static_cast<Errc>(code().value()); }
  /// Name of the ioctl that failed ("DRM_IOCTL_KILN_SUBMIT"), empty if none.
  std::string_view ioctl() const noexcept { return ioctl_; }
  /// errno of the failing system call, 0 if none.
  int os_errno() const noexcept { return errno_; }
  /// Device job status if the error came from a job.
  const std::optional<JobFault>& job() const noexcept { return job_; }

 private:
  std::string ioctl_;
  int errno_;
  std::optional<JobFault> job_;
};

/// The device (or the queue's context) cannot run work any more: after an
/// unrecoverable reset, or the context was banned. Sticky: every later call on
/// the same object throws it again. Recover by opening the device again.
class DeviceLost : public Error {
 public:
  using Error::Error;
};

/// Map an errno from an ioctl to an Errc.
Errc errc_from_errno(int err) noexcept;

}  // namespace kiln

template <>
struct std::is_error_code_enum<kiln::Errc> : std::true_type {};
