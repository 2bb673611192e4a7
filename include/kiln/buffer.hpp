// SPDX-License-Identifier: MIT
// libkiln: buffers (GEM buffer objects with a device virtual address).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <type_traits>

#include "kiln/device.hpp"

namespace kiln {

namespace detail {
struct Bo;
}

/// A device-visible allocation. Move-only; the memory is released when the
/// Buffer is destroyed and no queued command uses it any more (in-flight
/// commands keep it alive).
class Buffer {
 public:
  Buffer() = default;
  Buffer(Buffer&&) noexcept = default;
  Buffer& operator=(Buffer&&) noexcept = default;
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  ~Buffer();

  explicit operator bool() const noexcept { return bo_ != nullptr; }
  size_t size() const noexcept;
  uint64_t device_address() const noexcept;
  Memory memory() const noexcept;
  BufferFlags flags() const noexcept;
  uint32_t handle() const noexcept;
  /// True if map() works (host memory, or DRAM reachable through the BAR window).
  bool mappable() const noexcept;

  /// CPU view of the whole buffer. Throws Error(not_supported) if !mappable().
  /// The caller orders CPU access against device work (wait on the Event).
  std::span<std::byte> map() const;
  template <class T>
  requires std::is_trivially_copyable_v<T> std::span<T> map()
  const {
    auto b = map();
    return {reinterpret_cast<T*>(b.data()), b.size() / sizeof(T)};
  }

  /// Blocking write/read at byte offset `off` (through the mapping, or a
  /// device copy for unmappable buffers). Bounds-checked.
  void write(std::span<const std::byte> src, size_t off = 0);
  void read(std::span<std::byte> dst, size_t off = 0) const;
  template <class T>
  requires std::is_trivially_copyable_v<T>
  void write(std::span<const T> src, size_t off = 0) { write(std::as_bytes(src), off); }
  template <class T>
  requires std::is_trivially_copyable_v<T>
  void read(std::span<T> dst, size_t off = 0) const { read(std::as_writable_bytes(dst), off); }

  /// Export as a dma-buf file descriptor (caller closes it).
  int export_dmabuf() const;

 private:
  friend struct detail::HandleAccess;
  explicit Buffer(std::shared_ptr<detail::Bo> bo) : bo_(std::move(bo)) {}
  std::shared_ptr<detail::Bo> bo_;
};

}  // namespace kiln
