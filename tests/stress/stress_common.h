// SPDX-License-Identifier: MIT
// Shared pieces of the Kiln stress suite: seeded RNG, knobs from the
// environment, accounting baselines, debugfs access and the figure lines
// that scripts/stress collects from the VM console.
#pragma once

#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <sys/wait.h>

#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>
#include <string>

#include "stress_util.h"

namespace ks {

constexpr uint64_t kSec = 1000000000ull;
constexpr uint64_t kMs = 1000000ull;

// xorshift64*: reproducible from the printed seed.
struct Rng {
  uint64_t s;
  explicit Rng(uint64_t seed) : s(seed ? seed : 0x9e3779b97f4a7c15ull) {}
  uint64_t next() {
    s ^= s >> 12;
    s ^= s << 25;
    s ^= s >> 27;
    return s * 0x2545f4914f6cdd1dull;
  }
  uint64_t below(uint64_t n) { return n ? next() % n : 0; }
  bool chance(uint32_t one_in) { return below(one_in) == 0; }
};

inline uint64_t env_u64(const char *name, uint64_t def) {
  const char *v = getenv(name);
  if (!v || !*v) return def;
  return strtoull(v, nullptr, 0);
}

inline uint64_t seed_from_env() { return env_u64("KILN_STRESS_SEED", 1); }

// One figure line: "KILN-STRESS {json}". scripts/stress greps these from
// the console; gtest output is unaffected.
inline void figure(const std::string &part, const std::map<std::string, double> &kv) {
  std::ostringstream o;
  o << "KILN-STRESS {\"part\":\"" << part << "\"";
  for (auto &[k, v] : kv) {
    o << ",\"" << k << "\":";
    if (v == (double)(int64_t)v)
      o << (int64_t)v;
    else
      o << v;
  }
  o << "}";
  printf("%s\n", o.str().c_str());
  fflush(stdout);
}

inline std::string debugfs_dir(int n = 0) {
  char link[256];
  std::string cls = "/sys/class/accel/accel" + std::to_string(n) + "/device";
  ssize_t r = readlink(cls.c_str(), link, sizeof(link) - 1);
  if (r <= 0) return "";
  link[r] = 0;
  std::string s(link);
  return "/sys/kernel/debug/accel/" + s.substr(s.rfind('/') + 1);
}

inline std::string slurp(const std::string &path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// "bos N host_bytes N contexts N ..." from debugfs info; -1 when unreadable.
inline long long debugfs_counter(const std::string &key) {
  std::string info = slurp(debugfs_dir() + "/info");
  size_t p = info.find(" " + key + " ");
  if (p == std::string::npos) p = info.find(key + " ");
  if (p == std::string::npos) return -1;
  p = info.find(' ', p + 1);
  return strtoll(info.c_str() + p + 1, nullptr, 10);
}

// Device-wide accounting that must return to its value after a stress part.
struct Accounting {
  uint64_t bos = 0, ctxs = 0, host = 0, dram = 0, sram = 0, files = 0;
  long long dbg_bos = -1, dbg_ctxs = -1, dbg_host = -1;
  static Accounting read(Dev &d) {
    Accounting a;
    a.bos = d.param(DRM_KILN_PARAM_BO_COUNT);
    a.ctxs = d.param(DRM_KILN_PARAM_CONTEXTS_IN_USE);
    a.host = d.param(DRM_KILN_PARAM_HOST_BO_BYTES);
    a.dram = d.param(DRM_KILN_PARAM_DRAM_FREE);
    a.sram = d.param(DRM_KILN_PARAM_SRAM_FREE);
    a.files = d.param(DRM_KILN_PARAM_FILES_IN_USE);
    if (geteuid() == 0) {
      a.dbg_bos = debugfs_counter("bos");
      a.dbg_ctxs = debugfs_counter("contexts");
      a.dbg_host = debugfs_counter("host_bytes");
    }
    return a;
  }
  std::string diff(const Accounting &o) const {
    std::ostringstream s;
    auto cmp = [&](const char *n, long long a, long long b) {
      if (a != b) s << n << " " << a << " -> " << b << "; ";
    };
    cmp("BO_COUNT", bos, o.bos);
    cmp("CONTEXTS_IN_USE", ctxs, o.ctxs);
    cmp("HOST_BO_BYTES", host, o.host);
    cmp("DRAM_FREE", dram, o.dram);
    cmp("SRAM_FREE", sram, o.sram);
    cmp("FILES_IN_USE", files, o.files);
    cmp("debugfs bos", dbg_bos, o.dbg_bos);
    cmp("debugfs contexts", dbg_ctxs, o.dbg_ctxs);
    cmp("debugfs host_bytes", dbg_host, o.dbg_host);
    return s.str();
  }
};

// Accounting settles synchronously on close, but a killed process's files are
// released by its exit path; give that a moment before comparing.
inline std::string wait_back_to(Dev &probe, const Accounting &base, int ms = 5000) {
  std::string d;
  for (int i = 0; i <= ms / 50; i++) {
    d = base.diff(Accounting::read(probe));
    if (d.empty()) return d;
    usleep(50000);
  }
  return d;
}

// Drop to the unprivileged user kiln (uid 1000, group render) when root.
inline bool drop_to_user() {
  if (geteuid() != 0) return true;
  gid_t render = 0;
  if (struct group *g = getgrnam("render")) render = g->gr_gid;
  uid_t uid = 1000;
  gid_t gid = 1000;
  if (struct passwd *p = getpwnam("kiln")) {
    uid = p->pw_uid;
    gid = p->pw_gid;
  }
  gid_t groups[1] = {render};
  if (setgroups(render ? 1 : 0, groups) != 0) return false;
  if (setgid(gid) != 0) return false;
  if (setuid(uid) != 0) return false;
  return geteuid() == uid;
}

inline int wait_child(pid_t pid) {
  int st = 0;
  while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(st)) return WEXITSTATUS(st);
  if (WIFSIGNALED(st)) return 128 + WTERMSIG(st);
  return 255;
}

// Writes a command buffer into a fresh mapped host BO.
inline Bo cmd_bo(Dev &d, const void *data, uint32_t size, uint64_t bo_size = 0) {
  Bo cb = d.bo(bo_size ? bo_size : ((size + 4095) & ~4095ull));
  void *p = d.map(cb.handle, cb.size);
  if (!p) throw std::runtime_error("mmap of command BO failed");
  memcpy(p, data, size);
  munmap(p, cb.size);
  return cb;
}

inline const char *status_name(uint32_t s) {
  static const char *n[] = {"OK", "BAD_PACKET", "PRIVILEGED", "BAD_ADDRESS", "MMU_FAULT", "DMA_ERROR",
                            "ILLEGAL_INSTRUCTION", "MISALIGNED", "LOCAL_MEM_BOUNDS", "KERNEL_TRAP",
                            "WATCHDOG", "BAD_LAUNCH", "ABORTED", "RING_OVERFLOW", "BAD_REGISTER",
                            "FATAL", "BAD_CONTEXT", "INTERRUPTED"};
  return s < sizeof(n) / sizeof(n[0]) ? n[s] : "UNKNOWN";
}

}  // namespace ks
