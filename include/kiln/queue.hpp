// SPDX-License-Identifier: MIT
// libkiln: events, command lists and queues.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <ranges>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include "kiln/buffer.hpp"
#include "kiln/module.hpp"
#include "kiln/profile.hpp"

namespace kiln {

namespace detail {
struct Submission;
struct QueueState;
struct Recording;
}  // namespace detail

inline constexpr size_t whole_size = ~size_t(0);

/// Modelled cycles at a clock of `mhz` as time (rounded to the nanosecond).
[[nodiscard]] constexpr std::chrono::nanoseconds cycles_to_time(uint64_t cycles, uint32_t mhz) noexcept {
  return std::chrono::nanoseconds(mhz ? (cycles * 1000 + mhz / 2) / mhz : 0);
}

/// Timestamps around one submission (TIMESTAMP packets before and after it,
/// written only on queues created with QueueDesc::timestamps).
/// "Device" time is modelled time: the device's cycle counter (TOTAL_CYCLES,
/// the cost model's cycles of all work, all queues) at the K1 clock.
/// "Emulator" time is how long QEMU took (its virtual clock).
struct Timing {
  uint64_t cycles_start = 0, cycles_end = 0;              ///< device cycle counter
  uint64_t emulator_start_ns = 0, emulator_end_ns = 0;    ///< QEMU virtual clock
  uint32_t clock_mhz = 0;                                 ///< modelled PE clock
  std::chrono::steady_clock::time_point host_submit, host_complete;
  [[nodiscard]] uint64_t cycles() const noexcept { return cycles_end - cycles_start; }
  [[nodiscard]] std::chrono::nanoseconds device_time() const noexcept { return cycles_to_time(cycles(), clock_mhz); }
  [[nodiscard]] std::chrono::nanoseconds emulator_time() const noexcept {
    return std::chrono::nanoseconds(emulator_end_ns - emulator_start_ns);
  }
};

/// What one submission cost on the modelled chip, from its job status: exact
/// and deterministic (the same program gives the same figures on any host),
/// next to the emulator's own time, which is neither.
struct Usage {
  uint64_t cycles = 0;                      ///< modelled cycles of the job
  std::chrono::nanoseconds device_time{};   ///< those cycles at the modelled clock
  std::chrono::nanoseconds emulator_time{}; ///< QEMU virtual time the job took
  uint64_t energy_pj = 0;                   ///< modelled energy (idle power + the work's)
  [[nodiscard]] double energy_j() const noexcept { return double(energy_pj) * 1e-12; }
  /// Average modelled power over the job; 0 for a job of no modelled time.
  [[nodiscard]] double power_w() const noexcept {
    return device_time.count() ? energy_j() / (double(device_time.count()) * 1e-9) : 0;
  }
};

/// Completion of one submission: a point on its queue's timeline syncobj.
/// Copyable and thread-safe. A default-constructed Event is always ready.
class Event {
 public:
  Event() = default;
  /// True when the work finished. Throws Error/DeviceLost if it failed.
  [[nodiscard]] bool ready() const;
  /// Waits until the work finished. Throws Error (with the job's fault: PE,
  /// PC, address) if the work failed, DeviceLost after a reset that lost the
  /// context.
  void wait() const { static_cast<void>(wait(std::chrono::nanoseconds::max())); }
  /// Waits up to `timeout`; false on timeout (then the work still runs).
  /// Throws as wait() does.
  [[nodiscard]] bool wait(std::chrono::nanoseconds timeout) const;
  /// Timestamps around the work; waits for completion first. Only on a queue
  /// created with QueueDesc::timestamps (else Error, invalid_argument).
  [[nodiscard]] Timing timing() const;
  /// Modelled cycles, time and energy of the work, and the emulator's time
  /// (from the job status); waits for completion first.
  [[nodiscard]] Usage usage() const;
  [[nodiscard]] uint64_t cycles() const { return usage().cycles; }
  /// Modelled time of the work: its cycles at the modelled clock.
  [[nodiscard]] std::chrono::nanoseconds device_time() const { return usage().device_time; }
  /// How long the emulator took (QEMU virtual time): not a property of the chip.
  [[nodiscard]] std::chrono::nanoseconds emulator_time() const { return usage().emulator_time; }
  /// Modelled energy of the work, in joules.
  [[nodiscard]] double energy() const { return usage().energy_j(); }
  /// Modelled device time from the end of `earlier` to the end of this event
  /// (same device; both complete): the device's cycle counter, all queues.
  /// Both events need QueueDesc::timestamps, as timing().
  [[nodiscard]] std::chrono::nanoseconds elapsed_since(const Event& earlier) const;
  /// Profiles of the launches of this submission, in order, if its queue
  /// profiles (QueueDesc::profiling, KILN_PROFILE); else empty. Waits.
  [[nodiscard]] std::vector<LaunchProfile> profiles() const;
  /// Per-context job number, 0 for a null event.
  [[nodiscard]] uint64_t seqno() const noexcept;
  [[nodiscard]] bool valid() const noexcept { return s_ != nullptr; }

 private:
  friend struct detail::HandleAccess;
  explicit Event(std::shared_ptr<detail::Submission> s) : s_(std::move(s)) {}
  std::shared_ptr<detail::Submission> s_;
};

/// A recorded sequence of commands submitted with one SUBMIT ioctl, as often
/// as wanted. Host spans given to write()/read() are accessed at every
/// submission (write: copied into a staging buffer when submitted; read:
/// filled when the submission completes) and must stay valid for that long.
/// Not thread-safe while recording; submitting a finished list from several
/// queues is safe.
class CommandList {
 public:
  explicit CommandList(const Device& dev);
  CommandList(CommandList&&) noexcept;
  CommandList& operator=(CommandList&&) noexcept;
  ~CommandList();

  CommandList& copy(const Buffer& dst, const Buffer& src, size_t size = whole_size, size_t dst_off = 0,
                    size_t src_off = 0);
  CommandList& write(const Buffer& dst, std::span<const std::byte> src, size_t dst_off = 0);
  CommandList& read(std::span<std::byte> dst, const Buffer& src, size_t src_off = 0);
  /// Fill with a 32-bit pattern; size and offset multiples of 4.
  CommandList& fill(const Buffer& dst, uint32_t pattern, size_t size = whole_size, size_t off = 0);
  /// Arguments are validated now (all set, kinds and sizes checked).
  CommandList& launch(const Kernel& k, const Launch& l, const Args& args);
  /// Positional arguments, checked like Args::set().
  template <class... A>
  CommandList& launch_with(const Kernel& k, const Launch& l, A&&... a) {
    Args args(k);
    size_t i = 0;
    (args.set(i++, std::forward<A>(a)), ...);
    return launch(k, l, args);
  }
  /// Order point (packets of a queue already run in order; kept for clarity
  /// and for timestamps in traces).
  CommandList& barrier();

  size_t size() const noexcept;  ///< commands recorded
  bool empty() const noexcept { return size() == 0; }

 private:
  friend struct detail::HandleAccess;
  std::unique_ptr<detail::Recording> r_;
};

/// An in-order hardware queue (one driver context). All operations are
/// asynchronous and return an Event. Thread-safe (calls are serialised
/// internally). Buffers and host memory used by queued work stay alive until
/// it completes: host data handed to copy() is staged through a host buffer
/// at the call, so the caller may reuse it at once; device->host copies are
/// written to the destination span when the Event completes (wait()/finish()),
/// so that span must stay valid until then.
class Queue {
 public:
  Queue(Queue&&) noexcept = default;
  Queue& operator=(Queue&&) noexcept = default;
  Queue(const Queue&) = delete;
  Queue& operator=(const Queue&) = delete;
  ~Queue();

  using Deps = std::span<const Event>;

  Event copy(const Buffer& dst, std::span<const std::byte> src, size_t dst_off = 0, Deps deps = {});
  Event copy(std::span<std::byte> dst, const Buffer& src, size_t src_off = 0, Deps deps = {});
  Event copy(const Buffer& dst, const Buffer& src, size_t size = whole_size, size_t dst_off = 0, size_t src_off = 0,
             Deps deps = {});
  /// Typed host ranges (std::vector<float>, std::array, std::span<T>...).
  template <std::ranges::contiguous_range R>
  requires std::is_trivially_copyable_v<std::ranges::range_value_t<R>> Event upload(const Buffer& dst, const R& src,
                                                                                    size_t dst_off = 0,
                                                                                    Deps deps = {}) {
    return copy(dst, std::as_bytes(std::span(std::ranges::data(src), std::ranges::size(src))), dst_off, deps);
  }
  template <std::ranges::contiguous_range R>
  requires std::is_trivially_copyable_v<std::ranges::range_value_t<R>> Event download(R& dst, const Buffer& src,
                                                                                      size_t src_off = 0,
                                                                                      Deps deps = {}) {
    return copy(std::as_writable_bytes(std::span(std::ranges::data(dst), std::ranges::size(dst))), src, src_off, deps);
  }
  Event fill(const Buffer& dst, uint32_t pattern, size_t size = whole_size, size_t off = 0, Deps deps = {});
  Event launch(const Kernel& k, const Launch& l, const Args& args, Deps deps = {});
  template <class... A>
  Event launch_with(const Kernel& k, const Launch& l, A&&... a) {
    Args args(k);
    size_t i = 0;
    (args.set(i++, std::forward<A>(a)), ...);
    return launch(k, l, args);
  }
  /// Run a recorded command list with one submission.
  Event submit(const CommandList& cl, Deps deps = {});
  /// An event completing after all work submitted so far.
  Event barrier(Deps deps = {});
  /// Make the next submission on this queue wait for `e` (e.g. from another queue).
  void wait(const Event& e);
  /// Wait for everything submitted; throws the first failure not yet reported.
  void finish();

  uint32_t context_id() const noexcept;
  const Device& device() const noexcept;

 private:
  friend struct detail::HandleAccess;
  explicit Queue(std::shared_ptr<detail::QueueState> s) : s_(std::move(s)) {}
  std::shared_ptr<detail::QueueState> s_;
};

}  // namespace kiln
