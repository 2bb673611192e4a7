// SPDX-License-Identifier: MIT
// A kiln.ko parameter set for the length of an in-VM test and restored afterwards.
#pragma once

#include <unistd.h>

#include <cstdio>
#include <string>

namespace kiln_test {

class ModuleParam {
 public:
  explicit ModuleParam(const std::string& name) : path_("/sys/module/kiln/parameters/" + name) {
    if (FILE* f = std::fopen(path_.c_str(), "r")) {
      char buf[32] = {};
      saved_.assign(buf, std::fread(buf, 1, sizeof buf - 1, f));
      std::fclose(f);
    }
  }
  ~ModuleParam() {
    if (!saved_.empty()) (void)set(saved_);
  }
  ModuleParam(const ModuleParam&) = delete;
  ModuleParam& operator=(const ModuleParam&) = delete;

  /// False without the module or the right to change the parameter (not root).
  [[nodiscard]] bool writable() const { return !saved_.empty() && ::access(path_.c_str(), W_OK) == 0; }
  [[nodiscard]] const std::string& path() const { return path_; }
  [[nodiscard]] bool set(const std::string& value) const {
    FILE* f = std::fopen(path_.c_str(), "w");
    if (!f) return false;
    bool ok = std::fputs(value.c_str(), f) >= 0;
    return std::fclose(f) == 0 && ok;
  }

 private:
  std::string path_;
  std::string saved_;
};

}  // namespace kiln_test
