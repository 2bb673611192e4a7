// SPDX-License-Identifier: MIT
// Running jobs and the embedded stress kernels, shared by the stress suites.
#pragma once

#include <set>
#include <string>
#include <vector>

#include "stress_common.h"
#include "stress_kbin.h"

extern const unsigned char kiln_stress_kbin[];
extern const size_t kiln_stress_kbin_size;

namespace ks {

struct Outcome {
  int submit_err = 0;
  bool finished = false;
  drm_kiln_job_status st{};
  uint64_t seqno = 0;
};

// Runs @size bytes of packets on @ctx with @bos listed (SUBMIT @flags); waits up to @wait_ns.
inline Outcome run_job(Dev &d, uint32_t ctx, const void *cmd, uint32_t size, const std::vector<Bo> &bos,
                uint64_t wait_ns = 60 * kSec, uint32_t size_override = 0, uint32_t flags = 0) {
  Outcome o;
  Bo cb;
  if (int err = d.bo_create(std::max<uint64_t>(4096, (size + 4095) & ~4095ull), 0, &cb)) {
    o.submit_err = err;
    return o;
  }
  if (void *p = d.map(cb.handle, cb.size)) {
    memcpy(p, cmd, size);
    munmap(p, cb.size);
  }
  std::vector<drm_kiln_bo_ref> refs{ref(cb, false)};
  for (auto &b : bos) refs.push_back(ref(b));
  uint32_t so = d.syncobj();
  o.submit_err = d.submit(ctx, cb.va, size_override ? size_override : size, refs, {sig(so)}, &o.seqno, flags);
  if (!o.submit_err) {
    o.finished = d.syncobj_wait(so, wait_ns) == 0;
    // No status (the device was removed): the outcome is unknown, not OK.
    if (d.job_status(ctx, o.seqno, &o.st)) o.finished = false;
  }
  d.syncobj_destroy(so);
  d.gem_close(cb.handle);
  return o;
}

// "Each job fails with a clear status": a refused SUBMIT has a documented
// errno; a submitted job finishes; a failed job names its reason.
inline bool clear_outcome(const Outcome &o, std::string *why) {
  static const std::set<int> submit_errs{-EINVAL, -EFAULT, -ENOENT, -E2BIG, -ENOSPC, -EIO,
                                         -EPERM,  -EACCES, -ENOMEM, -ECANCELED};
  if (o.submit_err) {
    if (submit_errs.count(o.submit_err)) return true;
    *why = "SUBMIT returned unexpected " + std::to_string(o.submit_err);
    return false;
  }
  if (!o.finished) return *why = "job never finished", false;
  if (o.st.state != DRM_KILN_JOB_DONE) return *why = "job state " + std::to_string(o.st.state), false;
  if (o.st.status == KILN_STATUS_OK) {
    if (o.st.error == 0 || o.st.error == -ETIMEDOUT) return true;
    return *why = "status OK with error " + std::to_string(o.st.error), false;
  }
  if (o.st.status >= KILN_STATUS_COUNT) return *why = "unknown status " + std::to_string(o.st.status), false;
  if (o.st.error == 0) return *why = std::string("status ") + status_name(o.st.status) + " but fence error 0", false;
  return true;
}

// Loads the embedded stress kernels into an executable BO of @d.
struct Kernels {
  KbinImage img;
  Bo code;
  bool load(Dev &d) {
    img = parse_kbin(kiln_stress_kbin, kiln_stress_kbin_size);
    if (!img.error.empty()) return false;
    if (d.bo_create(img.image.size(), DRM_KILN_BO_EXEC, &code)) return false;
    void *p = d.map(code.handle, code.size);
    if (!p) return false;
    auto bytes = img.at(code.va);
    memcpy(p, bytes.data(), bytes.size());
    munmap(p, code.size);
    return true;
  }
  uint64_t entry(const char *name) const {
    auto it = img.entry.find(name);
    return it == img.entry.end() ? 0 : code.va + it->second;
  }
};

inline kiln_pkt_launch launch_pkt(uint64_t entry, uint64_t args_va, uint32_t args_size, uint32_t grid = 1,
                           uint32_t watchdog_mcycles = 0) {
  kiln_pkt_launch l{};
  l.header = KILN_PKT_HEADER(KILN_OP_LAUNCH, 0);
  l.entry_va = entry;
  l.args_va = args_va;
  l.args_size = args_size;
  l.grid_x = grid;
  l.grid_y = 1;
  l.grid_z = 1;
  l.watchdog_mcycles = watchdog_mcycles;
  return l;
}

// The hardware queue a context of this process was placed on (debugfs), -1 if unknown.
inline int ctx_queue(uint32_t ctx_id) {
  std::istringstream s(slurp(debugfs_dir() + "/contexts"));
  std::string line;
  std::string want = "ctx " + std::to_string(ctx_id) + " pid " + std::to_string(getpid()) + " ";
  while (std::getline(s, line))
    if (line.rfind(want, 0) == 0) {
      size_t p = line.find(" queue ");
      if (p != std::string::npos) return atoi(line.c_str() + p + 7);
    }
  return -1;
}

}  // namespace ks
