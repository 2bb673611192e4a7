// SPDX-License-Identifier: MIT
// libkiln internals: kernel binary (kbin) parser. Pure functions over a byte
// span, bounds-checking every offset: safe on arbitrary input (fuzzable).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "kiln/module.hpp"

namespace kiln::detail {

struct KbinSegment {
  uint64_t vaddr = 0, memsz = 0;
  std::span<const std::byte> data;  // p_filesz bytes (view into the image)
};

struct KbinReloc {
  uint64_t offset = 0;  // r_offset
  int64_t addend = 0;   // r_addend
};

struct KbinImage {
  uint64_t load_size = 0;  // rounded up to 4 KiB
  std::vector<KbinSegment> segments;
  std::vector<KbinReloc> relocs;  // all R_RISCV_RELATIVE
  TargetInfo target;
  std::vector<KernelInfo> kernels;
};

/// Parse and validate. Throws Error(invalid_binary) for malformed input and
/// Error(binary_incompatible) for a binary built for another target; the
/// message names the offending field. `name` prefixes messages.
KbinImage parse_kbin(std::span<const std::byte> image, std::string_view name = "<memory>");

/// Copy segments into `dst` (load_size bytes, device base VA `base`) and
/// apply relocations.
void load_kbin(const KbinImage& img, std::span<std::byte> dst, uint64_t base);

}  // namespace kiln::detail
