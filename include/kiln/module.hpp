// SPDX-License-Identifier: MIT
// libkiln: kernel binaries (modules), kernels and their arguments.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "kiln/buffer.hpp"
#include "kiln/error.hpp"

namespace kiln {

namespace detail {
struct ModuleState;
}

enum class ArgKind : uint32_t {
  buffer,  ///< a device pointer (8 bytes): pass a Buffer (optionally + byte offset)
  scalar,  ///< a value copied into the argument block
};

enum class Access : uint32_t { none = 0, read = 1, write = 2, read_write = 3 };

/// Element/scalar type tags from the binary's metadata (informational).
/// Values match enum kiln_meta_elem_type (include/kiln/hw/kiln_kbin.h).
enum class ScalarType : uint32_t {
  unknown = 0,
  i8,
  u8,
  i16,
  u16,
  i32,
  u32,
  i64,
  u64,
  f16,
  bf16,
  f32,
  f64,
};
std::string_view to_string(ArgKind) noexcept;
std::string_view to_string(ScalarType) noexcept;

struct ArgInfo {
  std::string name;
  ArgKind kind = ArgKind::scalar;
  uint32_t offset = 0;  ///< byte offset in the argument block
  uint32_t size = 0;    ///< bytes (8 for buffers)
  uint32_t align = 1;
  Access access = Access::read;
  ScalarType type = ScalarType::unknown;  ///< scalar type, or buffer element type
};

struct KernelInfo {
  std::string name;
  uint64_t entry = 0;      ///< entry offset from the module's load base
  uint32_t args_size = 0;  ///< argument block size
  uint32_t args_align = 8;
  uint32_t local_mem = 0;    ///< local memory per workgroup, 0 = device default
  bool cooperative = false;  ///< uses the barrier: launched cooperatively
  std::vector<ArgInfo> args;
};

/// Target requirements recorded in the binary's target note.
struct TargetInfo {
  uint32_t isa_version = 0;         ///< KILN_ISA_VERSION the kernel was built for
  uint32_t min_device_version = 0;  ///< lowest device (K1 = 1)
  uint64_t features = 0;            ///< KILN_FEATURE_* the kernel may use
};

class Kernel {
 public:
  const KernelInfo& info() const noexcept { return *info_; }
  std::string_view name() const noexcept { return info_->name; }
  std::span<const ArgInfo> args() const noexcept { return info_->args; }
  /// Index of argument `name`; throws Error(invalid_argument) naming the kernel's arguments.
  size_t arg_index(std::string_view name) const;
  /// Device VA of the entry point.
  uint64_t entry_address() const noexcept;
 private:
  friend struct detail::HandleAccess;
  Kernel(std::shared_ptr<detail::ModuleState> m, const KernelInfo* info) : m_(std::move(m)), info_(info) {}
  std::shared_ptr<detail::ModuleState> m_;
  const KernelInfo* info_;
};

/// A loaded kernel binary: code in one executable device buffer.
class Module {
 public:
  Module(Module&&) noexcept = default;
  Module& operator=(Module&&) noexcept = default;
  Module(const Module&) = default;
  Module& operator=(const Module&) = default;

  const std::string& name() const noexcept;
  const TargetInfo& target() const noexcept;
  std::span<const KernelInfo> kernels() const noexcept;
  /// Throws Error(invalid_argument) listing the available kernels if absent.
  Kernel kernel(std::string_view name) const;
  bool has_kernel(std::string_view name) const noexcept;

 private:
  friend struct detail::HandleAccess;
  explicit Module(std::shared_ptr<detail::ModuleState> s) : s_(std::move(s)) {}
  std::shared_ptr<detail::ModuleState> s_;
};

/// A kernel's argument block, validated against the kernel's metadata as it
/// is filled: wrong index/name, kind or size throw Error(invalid_argument)
/// immediately; a launch with unset arguments throws before submission.
class Args {
 public:
  explicit Args(const Kernel& k);

  Args& set(size_t idx, const Buffer& buf, uint64_t byte_offset = 0);
  Args& set(std::string_view name, const Buffer& buf, uint64_t byte_offset = 0) {
    return set(kernel_.arg_index(name), buf, byte_offset);
  }
  template <class T>
  requires(std::is_trivially_copyable_v<T> &&
           !std::is_same_v<std::remove_cvref_t<T>, Buffer>) Args& set(size_t idx, const T& value) {
    return set_scalar(idx, std::as_bytes(std::span(&value, 1)), typeid_of<T>());
  }
  template <class T>
  requires(std::is_trivially_copyable_v<T> &&
           !std::is_same_v<std::remove_cvref_t<T>, Buffer>) Args& set(std::string_view name, const T& value) {
    return set(kernel_.arg_index(name), value);
  }
  /// A null device pointer for an optional buffer argument ("or 0" in the docs).
  Args& set_null(size_t idx);
  /// Raw scalar bytes; size must equal the argument's size.
  Args& set_scalar(size_t idx, std::span<const std::byte> bytes, ScalarType type = ScalarType::unknown);

  /// Throws Error(invalid_argument) naming the first unset argument.
  void validate() const;
  const Kernel& kernel() const noexcept { return kernel_; }
  std::span<const std::byte> block() const noexcept { return block_; }
 private:
  friend struct detail::HandleAccess;
  template <class T>
  static constexpr ScalarType typeid_of() {
    using U = std::remove_cvref_t<T>;
    if constexpr (std::is_same_v<U, float>)
      return ScalarType::f32;
    else if constexpr (std::is_same_v<U, double>)
      return ScalarType::f64;
    else if constexpr (std::is_same_v<U, int32_t>)
      return ScalarType::i32;
    else if constexpr (std::is_same_v<U, uint32_t>)
      return ScalarType::u32;
    else if constexpr (std::is_same_v<U, int64_t>)
      return ScalarType::i64;
    else if constexpr (std::is_same_v<U, uint64_t>)
      return ScalarType::u64;
    else
      return ScalarType::unknown;
  }
  Kernel kernel_;
  std::vector<std::byte> block_;
  std::vector<bool> set_;
  std::vector<std::shared_ptr<detail::Bo>> bos_;
  std::vector<Access> bo_access_;
  friend class CommandList;
};

/// Launch geometry.
struct Launch {
  std::array<uint32_t, 3> grid{1, 1, 1};  ///< workgroups; each runs on one PE
  uint32_t local_mem = 0;                 ///< bytes per workgroup; 0 = kernel's metadata
  uint32_t watchdog_mcycles = 0;          ///< per-PE budget in million cycles; 0 = device default
  bool cooperative = false;               ///< all workgroups co-resident (barriers allowed)
};

}  // namespace kiln
