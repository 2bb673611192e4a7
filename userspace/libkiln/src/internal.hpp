// SPDX-License-Identifier: MIT
// libkiln internals shared by the implementation files.
#pragma once

#include <fmt/core.h>

#include <atomic>
#include <chrono>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "driver.hpp"
#include "encoder.hpp"
#include "handle_access.hpp"
#include "kbin.hpp"
#include "kiln/kiln.hpp"

namespace kiln::detail {

// ---- errors ---------------------------------------------------------------
[[noreturn]] void throw_ioctl_error(std::string_view ioctl, int err, std::string_view what = {});
template <class... A>
[[noreturn]] void fail(Errc e, fmt::format_string<A...> f, A&&... a) {
  throw Error(e, fmt::format(f, std::forward<A>(a)...));
}

// ---- logging (KILN_LOG=error|warn|info|debug|trace) -----------------------
enum class Level { off = 0, error, warn, info, debug, trace };
Level log_level() noexcept;
void log_write(Level l, const std::string& msg);
template <class... A>
void log(Level l, fmt::format_string<A...> f, A&&... a) {
  if (l <= log_level()) log_write(l, fmt::format(f, std::forward<A>(a)...));
}

// ---- profiling (KILN_PROFILE=..., docs/profiling.md) ------------------------
struct ProfileOptions {
  bool enabled = false;    // every queue profiles its launches
  bool launches = false;   // print each launch's report as it completes
  bool pe_tracks = false;  // ask for per-PE timelines; KILN_TRACE draws them
  std::string out;         // report file (default stderr)
};
const ProfileOptions& profile_options();
/// A profile record the device wrote (kiln/hw/kiln_profile.h); nullopt if it did not.
std::optional<LaunchProfile> parse_profile(std::span<const std::byte> buf, std::string kernel,
                                           std::array<uint32_t, 3> grid, uint32_t clock_mhz);
/// Add a launch to the KILN_PROFILE summary printed at exit.
void profile_collect(const LaunchProfile& p);

// ---- tracing (KILN_TRACE=file.json) ----------------------------------------
struct TraceRecord {
  std::string name;      // "submit", "launch gemm_f32", ...
  std::string category;  // "copy", "launch", ...
  uint32_t ctx = 0;
  uint64_t seqno = 0;
  int64_t host_submit_ns = 0, host_complete_ns = 0;  // steady clock
  uint64_t cycles_start = 0;                          // device cycle counter at the start
  uint64_t cycles = 0;                                // modelled cycles of the job
  uint32_t clock_mhz = 0;
  uint64_t emulator_ns = 0, energy_pj = 0;
  uint32_t status = 0;
  std::string commands;  // summary
  std::vector<LaunchProfile> launches;  // with timelines: per-PE tracks
};
bool trace_enabled() noexcept;
void trace_record(TraceRecord r);
void trace_flush();

// ---- device ---------------------------------------------------------------
struct Bo;
inline constexpr uint32_t min_debug_bytes = 64, max_debug_bytes = 16u << 20;
/// $KILN_DEBUG_BYTES (a bad value is reported and ignored), else default_debug_bytes.
uint32_t debug_bytes_from_env() noexcept;

struct DeviceState : std::enable_shared_from_this<DeviceState> {
  std::shared_ptr<Driver> drv;
  DeviceInfo info;
  std::atomic<bool> lost{false};
  std::mutex mu;  // pools, lost_reason
  std::string lost_reason;
  // Free command/staging host BOs. Kept as plain records (not Bo objects,
  // which own a reference to this state) so there is no reference cycle.
  struct PoolEntry {
    uint32_t handle;
    uint64_t va, size, mmap_offset;
    std::byte* map;
  };
  std::vector<PoolEntry> cmd_pool;
  uint64_t cmd_pool_bytes = 0;
  // The pool is bounded by bytes, not by count: with a count limit (it was
  // 16), every submission beyond that many in flight (64 queues each with
  // one job, in the Scale benchmark) created and destroyed a BO, i.e. a VA
  // map and an unmap with a synchronous TLB invalidation: ~3 ms per job.
  static constexpr uint64_t cmd_pool_max_bytes = 64u << 20;
  static constexpr uint64_t cmd_pool_max_bo = 16u << 20;
  // Live BOs by GEM handle: a PRIME import of a BO this file already has
  // returns the same handle, which must not be closed twice.
  std::map<uint32_t, std::weak_ptr<Bo>> live;
  // Kernel debug output (Device::set_debug_output); under mu. Null sink: stderr.
  std::shared_ptr<const DebugSink> debug_sink;
  uint32_t debug_bytes = debug_bytes_from_env();
  void track(const std::shared_ptr<Bo>& bo);
  ~DeviceState();

  void check_lost() const;
  [[noreturn]] void mark_lost(const std::string& why, std::optional<JobFault> job = {});
  std::shared_ptr<Bo> create_bo(uint64_t size, Memory mem, BufferFlags flags);
  /// A mappable host BO of at least `size` bytes from the pool.
  std::shared_ptr<Bo> take_host_bo(uint64_t size);
  void give_back(std::shared_ptr<Bo>&& bo);
};

struct Bo {
  std::shared_ptr<DeviceState> dev;
  uint32_t handle = 0;
  uint64_t va = 0;
  uint64_t size = 0;
  uint32_t kflags = 0;  // DRM_KILN_BO_*
  Memory memory = Memory::host;
  BufferFlags flags = BufferFlags::none;
  uint64_t mmap_offset = 0;
  std::byte* map = nullptr;
  std::mutex map_mu;
  std::byte* mapping();  // maps on first use; nullptr if not mappable
  ~Bo();
};

// ---- modules --------------------------------------------------------------
struct ModuleState {
  std::shared_ptr<DeviceState> dev;
  std::string name;
  TargetInfo target;
  std::vector<KernelInfo> kernels;
  std::shared_ptr<Bo> code;  // EXEC BO holding the loaded segments
  uint64_t base = 0;         // device VA of load address 0
};

// ---- recording ------------------------------------------------------------
struct Cmd {
  enum Kind { copy, fill, launch, write, read, barrier } kind;
  explicit Cmd(Kind k) : kind(k) {}
  std::string label;
  std::shared_ptr<Bo> dst, src;
  uint64_t dst_off = 0, src_off = 0, size = 0;
  uint32_t pattern = 0;
  // launch
  std::string kernel;
  std::shared_ptr<ModuleState> module;
  uint64_t entry_va = 0;
  std::vector<std::byte> args;
  uint32_t args_align = 8;
  std::array<uint32_t, 3> grid{1, 1, 1};
  uint32_t local_mem = 0, watchdog = 0;
  bool cooperative = false;
  std::vector<std::pair<std::shared_ptr<Bo>, bool /*write*/>> refs;
  // host spans (write/read)
  std::span<const std::byte> host_src;
  std::span<std::byte> host_dst;
};

struct Recording {
  std::shared_ptr<DeviceState> dev;
  std::vector<Cmd> cmds;
};

// ---- submissions ----------------------------------------------------------
struct QueueState;

/// A context's job-status ring (docs/uapi.md, CTX_CREATE), mapped read-only:
/// how a job ended, read without an ioctl.
class StatusRing {
 public:
  /// Maps the ring CTX_CREATE described; an older driver (no ring) gives an
  /// empty StatusRing whose read() always misses.
  StatusRing(std::shared_ptr<Driver> drv, const drm_kiln_ctx_create& cc);
  StatusRing(const StatusRing&) = delete;
  StatusRing& operator=(const StatusRing&) = delete;
  ~StatusRing();
  /// Jobs the ring holds; 0 without one.
  [[nodiscard]] uint32_t records() const noexcept { return count_; }
  /// Job `seqno`'s outcome if its record is complete and still its own
  /// (drm_kiln_job_record's protocol), in JOB_STATUS form; else nullopt.
  [[nodiscard]] std::optional<drm_kiln_job_status> read(uint64_t seqno) const noexcept;

 private:
  std::shared_ptr<Driver> drv_;
  const std::byte* map_ = nullptr;
  size_t size_ = 0;
  uint32_t stride_ = 0, count_ = 0;
};

struct Submission {
  std::weak_ptr<QueueState> queue;
  std::shared_ptr<DeviceState> dev;
  std::shared_ptr<const StatusRing> ring;
  uint32_t ctx = 0;
  uint32_t syncobj = 0;
  uint64_t point = 0;
  uint64_t seqno = 0;
  std::shared_ptr<Bo> cmd;  // the command buffer (encoder.hpp)
  Encoded enc;              // what is in it, and the BOs the job uses
  std::vector<LaunchProfile> profiles;
  std::shared_ptr<const DebugSink> debug_sink;

  std::mutex mu;
  bool retired = false;
  std::optional<Error> error;  // failure, rethrown by every wait
  std::string error_msg;       // its message (what() without the category suffix)
  bool lost = false;
  Timing timing;
  uint64_t job_cycles = 0, job_elapsed_ns = 0, job_energy_pj = 0;
  uint32_t clock_mhz = 0;
  [[nodiscard]] Usage usage() const;

  /// Called once the syncobj point signalled: collect status, run readbacks,
  /// release resources. Idempotent. Never throws; stores the error.
  void retire() noexcept;
  /// Pass what the launches wrote to their debug buffers to the sink.
  void deliver_debug_output() noexcept;
  void rethrow() const;

 private:
  /// The job's outcome: from the status ring, else (record reused, old
  /// driver) JOB_STATUS, else the context's last error. nullopt: unknown.
  std::optional<drm_kiln_job_status> outcome() noexcept;
  void fail(const drm_kiln_job_status& js) noexcept;
};

struct QueueState : std::enable_shared_from_this<QueueState> {
  std::shared_ptr<DeviceState> dev;
  Device device;  // handle for Queue::device()
  uint32_t ctx = 0;
  uint32_t syncobj = 0;
  std::shared_ptr<const StatusRing> ring;
  std::mutex mu;
  uint64_t next_point = 0;
  std::deque<std::shared_ptr<Submission>> inflight;
  std::vector<Event> pending_waits;
  std::optional<Error> unreported;  // first failure seen while retiring in the background
  std::shared_ptr<Submission> unreported_sub;
  bool lost = false;
  std::string lost_reason;
  bool profiling = false;   // QueueDesc::profiling or KILN_PROFILE
  bool timestamps = false;  // QueueDesc::timestamps or KILN_TRACE
  // Jobs this queue may have unretired: the driver's MAX_QUEUED_JOBS, which
  // is also the ring's size, so a record is read before it can be reused.
  size_t max_inflight = 0;

  QueueState(std::shared_ptr<DeviceState> d, Device h) : dev(std::move(d)), device(std::move(h)) {}
  ~QueueState();
  Event submit(const Recording& rec, std::span<const Event> deps);
  /// Retire, in order, the submissions whose points are at most `done`.
  /// Caller holds mu.
  void retire_through(uint64_t done);
  /// Retire what completed; with `block`, wait for everything first.
  void retire_completed(bool block);
  /// Block until the queue's timeline reaches `point`.
  void wait_point(uint64_t point);
};

std::shared_ptr<QueueState> make_queue(const Device& dev, QueueDesc desc);
/// Submit `rec` on a temporary context and wait (blocking read/write of unmappable buffers).
void run_blocking(const std::shared_ptr<DeviceState>& dev, Recording& rec);

}  // namespace kiln::detail
