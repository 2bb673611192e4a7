// SPDX-License-Identifier: MIT
#include "counters.hpp"

#include <mutex>
#include <set>

#include <c10/util/Exception.h>

namespace kiln_torch {
namespace {

std::mutex mu;
std::map<std::string, int64_t> ops, fallbacks;
std::set<std::string> warned;   // not cleared by reset_counts(): one warning per op and process

}  // namespace

void note_op(const std::string& name) {
  std::lock_guard lk(mu);
  ops[name]++;
}

void note_fallback(const std::string& name) {
  bool first;
  {
    std::lock_guard lk(mu);
    fallbacks[name]++;
    first = warned.insert(name).second;
  }
  if (first)
    TORCH_WARN("kiln: ", name, " is not implemented on the Kiln device for these arguments; it runs on the CPU "
               "(operands copied to the host and results back). Further calls are counted in "
               "kiln_torch.fallback_counts() without this warning.");
}

std::map<std::string, int64_t> op_counts() {
  std::lock_guard lk(mu);
  return ops;
}

std::map<std::string, int64_t> fallback_counts() {
  std::lock_guard lk(mu);
  return fallbacks;
}

void reset_counts() {
  std::lock_guard lk(mu);
  ops.clear();
  fallbacks.clear();
}

}  // namespace kiln_torch
