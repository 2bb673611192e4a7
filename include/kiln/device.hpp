// SPDX-License-Identifier: MIT
// libkiln: devices. A Device is a cheap, copyable handle to an open Kiln
// accelerator (shared implementation owning the file descriptor); every
// object created from it keeps it alive.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace kiln {

namespace detail {
class Driver;
struct DeviceState;
/// libkiln's own way into the handles' state (userspace/libkiln/src/handle_access.hpp).
/// The handles below keep that state private: it is not part of the API.
struct HandleAccess;
}  // namespace detail

class Buffer;
class Module;
class Queue;

/// PCI placement of a device (from sysfs and libpci/pci.ids).
struct PciInfo {
  std::string address;  ///< "0000:01:00.0"
  uint16_t vendor_id = 0;
  uint16_t device_id = 0;
  uint16_t subsystem_vendor_id = 0;
  uint16_t subsystem_id = 0;
  uint8_t revision = 0;
  std::string vendor_name;  ///< from pci.ids, or the hex id
  std::string device_name;
  std::string link_speed;  ///< "32.0 GT/s PCIe" (current), empty if unknown
  int link_width = 0;      ///< current lanes, 0 if unknown
  std::string max_link_speed;
  int max_link_width = 0;
  std::optional<int> numa_node;
};

/// Everything libkiln knows about a device: identity, limits, memory.
struct DeviceInfo {
  uint32_t index = 0;          ///< N of /dev/accel/accelN
  std::string path;            ///< "/dev/accel/accel0"
  std::string driver_name;     ///< "kiln"
  std::string driver_version;  ///< DRM_IOCTL_VERSION major.minor.patch
  uint32_t uapi_major = 0, uapi_minor = 0;
  PciInfo pci;

  uint32_t device_id = 0, revision = 0;
  uint32_t fw_version = 0, iface_version = 0;
  uint32_t num_queues = 0;
  uint32_t pe_grid_width = 0, pe_grid_height = 0;
  uint32_t local_mem_size = 0;  ///< bytes per PE
  uint64_t dram_size = 0, dram_free = 0;
  uint64_t sram_size = 0, sram_free = 0;
  uint64_t va_start = 0, va_end = 0;
  uint32_t max_contexts = 0, contexts_in_use = 0;
  uint32_t features = 0;
  uint32_t job_timeout_ms = 0;
  uint32_t reset_count = 0;
  uint32_t clock_mhz = 0;
  uint32_t max_submit_bos = 0, max_submit_syncs = 0, max_cmd_size = 0;
  uint32_t max_queued_jobs = 0;  ///< jobs a Queue may have unfinished (the SDK waits beyond); 0: unknown

  uint32_t pe_count() const noexcept { return pe_grid_width * pe_grid_height; }
};

/// Live telemetry (DRM_KILN_QUERY_TELEMETRY). Power and energy are the
/// energy model's (docs/hardware.md, Telemetry).
struct Telemetry {
  double temperature_c = 0;
  double power_w = 0;   ///< modelled power of the work since the previous read (idle: 20 W)
  double energy_j = 0;  ///< modelled energy since power-on
  uint32_t pe_clock_mhz = 0, mem_clock_mhz = 0;
  uint64_t busy_ns = 0, dma_bytes = 0, packets = 0, launches = 0;
  uint64_t total_cycles = 0;      ///< modelled cycles of all work since power-on
  uint64_t emulator_time_ns = 0;  ///< QEMU virtual time since power-on
  /// Modelled time of all work since power-on.
  [[nodiscard]] std::chrono::nanoseconds device_time() const noexcept {
    return std::chrono::nanoseconds(pe_clock_mhz ? total_cycles * 1000 / pe_clock_mhz : 0);
  }
};

/// Where a buffer lives.
enum class Memory {
  device,  ///< device DRAM (CPU-mapped through the BAR window when possible)
  host,    ///< host memory the device reaches over PCIe; always CPU-mapped
  sram,    ///< on-chip SRAM
};

/// Extra buffer properties (bitmask).
enum class BufferFlags : uint32_t {
  none = 0,
  no_mmap = 1u << 0,         ///< never mapped by the CPU
  write_combined = 1u << 1,  ///< host memory: write-combined CPU mapping
  read_only = 1u << 2,       ///< device mapping read-only
  exec = 1u << 3,            ///< device mapping executable (kernel code)
};
constexpr BufferFlags operator|(BufferFlags a, BufferFlags b) {
  return BufferFlags(uint32_t(a) | uint32_t(b));
}
constexpr bool operator&(BufferFlags a, BufferFlags b) {
  return (uint32_t(a) & uint32_t(b)) != 0;
}

enum class Priority { low, normal, high, realtime };

struct QueueDesc {
  Priority priority = Priority::normal;
  uint32_t timeout_ms = 0;  ///< job timeout; 0 = driver default
  /// Every launch writes its profile (Event::profiles(), docs/profiling.md).
  /// KILN_PROFILE turns this on for every queue.
  bool profiling = false;
  /// TIMESTAMP packets around every submission, for Event::timing() and
  /// Event::elapsed_since() (the device's cycle counter at start and end).
  /// Off by default: Event::usage() has the job's own cycles from its status.
  /// KILN_TRACE turns this on for every queue.
  bool timestamps = false;
};

/// All Kiln devices this process can see. Never throws for "no device": an
/// empty vector means none is usable, and diagnose() says why.
std::vector<DeviceInfo> enumerate();

/// A human-readable explanation of why no device is usable (module not
/// loaded, no /dev/accel node, permission denied, UAPI version mismatch), or
/// a one-line summary of the usable devices.
std::string diagnose();

/// Directories searched for op-library binaries, in order: $KILN_OPS_PATH
/// (colon-separated), $KILN_OPS_DIR, share/kiln/ops of the prefix libkiln is installed
/// in (found from the library's own path), /usr/share/kiln/ops,
/// /usr/local/share/kiln/ops, and the build tree.
std::vector<std::filesystem::path> ops_search_path();
/// Full path of a kernel binary ("gemm.kbin" or "gemm") from ops_search_path();
/// throws Error(no such file) listing the directories searched.
std::filesystem::path find_kernel_binary(std::string_view name);

/// One line of kernel debug output: what a workgroup wrote with kiln_printf, kiln_puts,
/// kiln_putc or kiln_write on the device.
struct DebugLine {
  std::string_view kernel;  ///< name of the launched kernel
  uint32_t pe = 0;          ///< PE that ran the workgroup (y * grid width + x)
  uint32_t workgroup = 0;   ///< linear workgroup id
  std::string_view text;    ///< the line, without its '\n'
};
using DebugSink = std::function<void(const DebugLine&)>;
/// Debug buffer per launch unless KILN_DEBUG_BYTES or Device::set_debug_output say otherwise.
inline constexpr size_t default_debug_bytes = 4096;

class Device {
 public:
  /// Open the index-th device of enumerate() (/dev/accel/accelN order).
  [[nodiscard]] static Device open(int index = 0);
  /// Open by PCI address ("0000:01:00.0" or "01:00.0") or node path ("/dev/accel/accel0").
  [[nodiscard]] static Device open(std::string_view pci_address_or_path);
  /// Information captured at open (limits do not change).
  const DeviceInfo& info() const;
  /// Re-read changing values (free memory, contexts, reset count).
  DeviceInfo refresh() const;
  Telemetry telemetry() const;

  [[nodiscard]] Buffer alloc(size_t bytes, Memory memory = Memory::device, BufferFlags flags = BufferFlags::none);
  /// Import a dma-buf (PRIME) file descriptor; the fd stays owned by the caller.
  Buffer import_dmabuf(int fd);

  [[nodiscard]] Module load(std::span<const std::byte> image, std::string name = "<memory>");
  [[nodiscard]] Module load_file(const std::filesystem::path& path);
  /// Load an op-library binary by name via find_kernel_binary().
  [[nodiscard]] Module load_ops(std::string_view name);

  [[nodiscard]] Queue queue(QueueDesc desc = {});

  /// Kernel debug output. Every launch submitted afterwards gets a device-written buffer
  /// of `bytes_per_launch` bytes (64 B .. 16 MiB; 0 turns the channel off and kernels'
  /// output is discarded). When the launch's work completes (wait(), finish(), a later
  /// submission), each line its workgroups wrote, in workgroup order, goes to `sink` — or,
  /// if `sink` is empty, to stderr as "[kiln vadd pe 3 wg 11] text". What does not fit is
  /// counted in a warning. The sink runs on the thread that observes the completion and
  /// must not use the Queue. The initial size is $KILN_DEBUG_BYTES, else 4096.
  void set_debug_output(DebugSink sink = {}, size_t bytes_per_launch = default_debug_bytes);

  /// True after an unrecoverable error; every later call throws DeviceLost.
  bool lost() const noexcept;
  /// The DRM file descriptor (-1 for the fake driver).
  int fd() const noexcept;

  /// Handles to the same opened device (copies of one Device) compare equal.
  friend bool operator==(const Device& a, const Device& b) noexcept { return a.s_ == b.s_; }

 private:
  friend struct detail::HandleAccess;
  explicit Device(std::shared_ptr<detail::DeviceState> s) : s_(std::move(s)) {}
  static Device from_driver(std::shared_ptr<detail::Driver> driver, std::string path);
  std::shared_ptr<detail::DeviceState> s_;
};

}  // namespace kiln
