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

namespace kiln {

namespace detail {
struct Submission;
struct QueueState;
struct Recording;
}  // namespace detail

inline constexpr size_t whole_size = ~size_t(0);

/// Device-side timing of one submission (TIMESTAMP packets around it).
struct Timing {
  uint64_t device_start_ns = 0, device_end_ns = 0;  ///< device clock
  uint64_t cycles_start = 0, cycles_end = 0;        ///< emulated PE cycles (device total)
  std::chrono::steady_clock::time_point host_submit, host_complete;
  std::chrono::nanoseconds device_time() const { return std::chrono::nanoseconds(device_end_ns - device_start_ns); }
  uint64_t cycles() const { return cycles_end - cycles_start; }
};

/// Completion of one submission: a point on its queue's timeline syncobj.
/// Copyable and thread-safe. A default-constructed Event is always ready.
class Event {
 public:
  Event() = default;
  /// True when the work finished. Throws Error/DeviceLost if it failed.
  bool ready() const;
  /// Waits up to `timeout`; false on timeout. Throws Error (with the job's
  /// fault: PE, PC, address) if the work failed, DeviceLost after a reset
  /// that lost the context.
  bool wait(std::chrono::nanoseconds timeout = std::chrono::nanoseconds::max()) const;
  /// Device timing; waits for completion first.
  Timing timing() const;
  /// Emulated cycles and device time of the work (from the job status).
  uint64_t cycles() const;
  std::chrono::nanoseconds device_time() const;
  /// Device time from the end of `earlier` to the end of this event
  /// (same device; both complete).
  std::chrono::nanoseconds elapsed_since(const Event& earlier) const;
  /// Per-context job number, 0 for a null event.
  uint64_t seqno() const noexcept;
  bool valid() const noexcept { return s_ != nullptr; }

  explicit Event(std::shared_ptr<detail::Submission> s) : s_(std::move(s)) {}
  const std::shared_ptr<detail::Submission>& submission() const noexcept { return s_; }

 private:
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

  const std::unique_ptr<detail::Recording>& recording() const noexcept { return r_; }

 private:
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

  explicit Queue(std::shared_ptr<detail::QueueState> s) : s_(std::move(s)) {}

 private:
  std::shared_ptr<detail::QueueState> s_;
};

}  // namespace kiln
