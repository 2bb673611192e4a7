// SPDX-License-Identifier: MIT
// kiln_torch: what ran where — ops run on the device and ops that fell back to
// the CPU, by name, for kiln_torch.op_counts() / fallback_counts().
#pragma once

#include <cstdint>
#include <map>
#include <string>

namespace kiln_torch {

void note_op(const std::string& name);
/// Counts a CPU fallback; the first one of each op warns (a Python UserWarning).
void note_fallback(const std::string& name);
[[nodiscard]] std::map<std::string, int64_t> op_counts();
[[nodiscard]] std::map<std::string, int64_t> fallback_counts();
void reset_counts();

}  // namespace kiln_torch
