// SPDX-License-Identifier: MIT
// kiln_torch: the per-device state behind PyTorch's PrivateUse1 backend —
// the open device, its op library, one kiln::Queue per stream, a caching
// allocator on kiln::Buffer, and the counters users read from Python.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <c10/core/Allocator.h>
#include <c10/core/Device.h>

#include <kiln/kiln.hpp>
#include <kiln/ops.hpp>

namespace kiln_torch {

constexpr auto kDeviceType = c10::DeviceType::PrivateUse1;

/// A device buffer behind one torch storage. Tensors see its device address as
/// their data pointer, so pointer arithmetic on views works as on CUDA.
struct Block {
  kiln::Buffer buf;
  size_t size = 0;         ///< bytes usable (the buffer's size)
  int stream = 0;          ///< reused only by allocations on this stream (in-order queue)
  int device = 0;
};

/// A tensor's place on the device: the buffer and the byte offset of its data.
struct Ref {
  const kiln::Buffer* buf = nullptr;
  uint64_t offset = 0;
};

struct MemoryStats {
  int64_t allocated = 0, max_allocated = 0, reserved = 0, max_reserved = 0;
  int64_t allocations = 0, cache_hits = 0;
};

/// Modelled device figures of the submissions completed so far (docs/profiling.md).
struct DeviceStats {
  uint64_t submissions = 0, failed = 0, cycles = 0, energy_pj = 0;
  std::chrono::nanoseconds device_time{}, emulator_time{};
};

class Runtime {
 public:
  /// The runtime of device `index`, opened on first use.
  [[nodiscard]] static Runtime& get(int index);
  [[nodiscard]] static int device_count();

  Runtime(const Runtime&) = delete;
  Runtime& operator=(const Runtime&) = delete;

  [[nodiscard]] kiln::Device& device() noexcept { return dev_; }
  [[nodiscard]] kiln::ops::Library& lib() noexcept { return lib_; }
  [[nodiscard]] int index() const noexcept { return index_; }

  // Streams: stream 0 is the default queue; new_stream() adds one.
  [[nodiscard]] kiln::Queue& queue();
  [[nodiscard]] int new_stream();
  [[nodiscard]] int current_stream() const;
  void set_current_stream(int id);
  [[nodiscard]] int stream_count() const;

  // Caching allocator.
  [[nodiscard]] Block* allocate(size_t bytes);
  void release(Block* b) noexcept;
  void empty_cache();
  [[nodiscard]] MemoryStats memory_stats() const;
  void reset_peak();
  /// The buffer and offset of a device data pointer; throws for a pointer no block holds.
  [[nodiscard]] Ref find(const void* p) const;

  /// Launch op-library arguments on the current stream and account for them.
  void launch(const kiln::Args& a);
  /// Account for work submitted directly on a queue (copies, fills).
  void track(kiln::Event e);
  /// Wait for every stream; completed work is added to the device statistics.
  void synchronize();
  [[nodiscard]] DeviceStats device_stats();

 private:
  explicit Runtime(int index);
  void harvest(bool all);
  void account_front();   // mu_ held

  int index_;
  kiln::Device dev_;
  kiln::ops::Library lib_;
  mutable std::mutex mu_;
  std::vector<std::unique_ptr<kiln::Queue>> queues_;
  std::multimap<size_t, Block*> free_;          // cached blocks by size
  std::map<uint64_t, Block*> live_;            // device address -> block in use or cached
  MemoryStats mem_;
  std::deque<kiln::Event> pending_;
  DeviceStats stats_;
};

/// The torch allocator for PrivateUse1: Runtime::allocate on the current device.
[[nodiscard]] c10::Allocator* allocator();
[[nodiscard]] int current_device();
void set_current_device(int index);

}  // namespace kiln_torch
