// SPDX-License-Identifier: MIT
// libkiln: modules, kernels and argument blocks.
#include <fmt/format.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "internal.hpp"

namespace kiln {

std::string_view to_string(ArgKind k) noexcept {
  return k == ArgKind::buffer ? "buffer" : "scalar";
}
std::string_view to_string(ScalarType t) noexcept {
  static constexpr std::string_view n[] = {"void", "i8",  "u8",  "i16",  "u16", "i32", "u32",
                                           "i64",  "u64", "f16", "bf16", "f32", "f64"};
  return uint32_t(t) < std::size(n) ? n[uint32_t(t)] : "?";
}

Module Device::load(std::span<const std::byte> image, std::string name) {
  s_->check_lost();
  auto img = detail::parse_kbin(image, name);
  auto m = std::make_shared<detail::ModuleState>();
  m->dev = s_;
  m->name = std::move(name);
  m->target = img.target;
  m->kernels = std::move(img.kernels);
  m->code = s_->create_bo(img.load_size, Memory::host, BufferFlags::exec);
  std::byte* p = m->code->mapping();
  if (!p) throw Error(Errc::not_supported, "kernel code buffer is not CPU-mappable");
  m->base = m->code->va;
  detail::load_kbin(img, {p, size_t(m->code->size)}, m->base);
  detail::log(detail::Level::debug, "loaded {}: {} kernel(s), {} bytes at {:#x}", m->name, m->kernels.size(),
              img.load_size, m->base);
  return detail::HandleAccess::module(std::move(m));
}

Module Device::load_file(const std::filesystem::path& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) {
    int err = errno;
    std::string where = path.is_relative() ? fmt::format(" (relative to {})", std::filesystem::current_path().string()) : "";
    throw Error(err == ENOENT ? Errc::not_found : err == EACCES ? Errc::permission_denied : Errc::io_error,
                fmt::format("cannot open kernel binary {}{}: {}", path.string(), where, std::strerror(err)));
  }
  std::vector<char> data((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  return load(std::as_bytes(std::span(data)), path.string());
}

Module Device::load_ops(std::string_view name) {
  return load_file(find_kernel_binary(name));
}

const std::string& Module::name() const noexcept {
  return s_->name;
}
const TargetInfo& Module::target() const noexcept {
  return s_->target;
}
std::span<const KernelInfo> Module::kernels() const noexcept {
  return s_->kernels;
}
bool Module::has_kernel(std::string_view name) const noexcept {
  for (const auto& k : s_->kernels)
    if (k.name == name) return true;
  return false;
}
Kernel Module::kernel(std::string_view name) const {
  for (const auto& k : s_->kernels)
    if (k.name == name) return detail::HandleAccess::kernel(s_, &k);
  std::vector<std::string_view> names;
  for (const auto& k : s_->kernels) names.push_back(k.name);
  throw Error(Errc::invalid_argument,
              fmt::format("{} has no kernel '{}' (it has: {})", s_->name, name, fmt::join(names, ", ")));
}

size_t Kernel::arg_index(std::string_view name) const {
  for (size_t i = 0; i < info_->args.size(); i++)
    if (info_->args[i].name == name) return i;
  std::vector<std::string_view> names;
  for (const auto& a : info_->args) names.push_back(a.name);
  throw Error(Errc::invalid_argument, fmt::format("kernel '{}' has no argument '{}' (arguments: {})", info_->name, name,
                                                  fmt::join(names, ", ")));
}
uint64_t Kernel::entry_address() const noexcept {
  return m_->base + info_->entry;
}

Args::Args(const Kernel& k)
    : kernel_(k),
      block_(k.info().args_size),
      set_(k.args().size(), false),
      bos_(k.args().size()),
      bo_access_(k.args().size()) {}

namespace {
[[noreturn]] void arg_error(const Kernel& k, size_t idx, const std::string& why) {
  std::string sig;
  for (size_t i = 0; i < k.args().size(); i++) {
    const auto& a = k.args()[i];
    sig +=
        fmt::format("{}{} {}{}", i ? ", " : "",
                    a.kind == ArgKind::buffer ? fmt::format("{}*", to_string(a.type)) : std::string(to_string(a.type)),
                    a.name, a.kind == ArgKind::scalar ? fmt::format(" ({} bytes)", a.size) : "");
  }
  throw Error(Errc::invalid_argument,
              fmt::format("kernel '{}' argument {}: {} [signature: {}({})]", k.name(), idx, why, k.name(), sig));
}
}  // namespace

Args& Args::set(size_t idx, const Buffer& buf, uint64_t off) {
  if (idx >= kernel_.args().size())
    arg_error(kernel_, idx, fmt::format("index out of range (the kernel takes {} arguments)", kernel_.args().size()));
  const auto& a = kernel_.args()[idx];
  if (a.kind != ArgKind::buffer)
    arg_error(kernel_, idx, fmt::format("'{}' is a {}-byte scalar, got a Buffer", a.name, a.size));
  if (!buf) arg_error(kernel_, idx, fmt::format("'{}': empty Buffer", a.name));
  if (detail::HandleAccess::bo(buf)->dev != detail::HandleAccess::module(kernel_)->dev)
    arg_error(kernel_, idx, fmt::format("'{}': Buffer belongs to another device", a.name));
  if (off >= buf.size())
    arg_error(kernel_, idx, fmt::format("'{}': offset {} outside the {}-byte buffer", a.name, off, buf.size()));
  uint64_t va = buf.device_address() + off;
  std::memcpy(block_.data() + a.offset, &va, 8);
  set_[idx] = true;
  bos_[idx] = detail::HandleAccess::bo(buf);
  bo_access_[idx] = a.access;
  return *this;
}

Args& Args::set_null(size_t idx) {
  if (idx >= kernel_.args().size())
    arg_error(kernel_, idx, fmt::format("index out of range (the kernel takes {} arguments)", kernel_.args().size()));
  const auto& a = kernel_.args()[idx];
  if (a.kind != ArgKind::buffer) arg_error(kernel_, idx, fmt::format("'{}' is a scalar, not a buffer", a.name));
  std::memset(block_.data() + a.offset, 0, 8);
  set_[idx] = true;
  bos_[idx].reset();
  return *this;
}

Args& Args::set_scalar(size_t idx, std::span<const std::byte> bytes, ScalarType type) {
  if (idx >= kernel_.args().size())
    arg_error(kernel_, idx, fmt::format("index out of range (the kernel takes {} arguments)", kernel_.args().size()));
  const auto& a = kernel_.args()[idx];
  if (a.kind != ArgKind::scalar)
    arg_error(kernel_, idx, fmt::format("'{}' is a buffer, got a {}-byte value", a.name, bytes.size()));
  if (bytes.size() != a.size)
    arg_error(kernel_, idx,
              fmt::format("'{}' is {} bytes ({}), got {} bytes", a.name, a.size, to_string(a.type), bytes.size()));
  // Same-size int/float confusion is a classic bug: reject when both types are known.
  if (type != ScalarType::unknown && a.type != ScalarType::unknown && type != a.type) {
    bool a_float = a.type >= ScalarType::f16, t_float = type >= ScalarType::f16;
    if (a_float != t_float)
      arg_error(kernel_, idx, fmt::format("'{}' is {}, got {}", a.name, to_string(a.type), to_string(type)));
  }
  std::memcpy(block_.data() + a.offset, bytes.data(), bytes.size());
  set_[idx] = true;
  bos_[idx].reset();
  return *this;
}

void Args::validate() const {
  for (size_t i = 0; i < set_.size(); i++)
    if (!set_[i]) arg_error(kernel_, i, fmt::format("'{}' was not set", kernel_.args()[i].name));
}

}  // namespace kiln
