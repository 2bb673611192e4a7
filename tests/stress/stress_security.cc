// SPDX-License-Identifier: MIT
// Multi-user safety of kiln.ko (docs/security.md), in the VM against the
// device: render-group users are mutually untrusted. Each test is the
// regression test of one defect class:
//   Security.FreedDeviceMemoryIsCleared       memory never crosses users
//   Security.CoreIoctlsSweptOnAccelNode       no core ioctl oopses the kernel
//   Security.SubmitRacesContextDestroy        an accepted job always completes
//   Security.RunawayKernelsAreStopped         the watchdog cap; destroy, exit
//                                             and reset end running kernels
//   Security.ResetDoesNotReplayStartedJobs    truthful status after a reset
//   Security.LimitsHold                       host BO count, one host-memory
//                                             budget, per-file jobs/contexts
//   Security.DestroyIsBounded                 CTX_DESTROY never waits for a
//                                             dependency that does not come
// Sizes come from KILN_STRESS_SECURITY_ROUNDS (1 in make test; scripts/stress
// runs more). Module unload with fences held is KilnZModule.FencesPinTheModule
// in the driver tests.
#include <gtest/gtest.h>

#include <sys/ioctl.h>

#include <atomic>
#include <thread>
#include <vector>

#include "stress_run.h"

using namespace ks;

namespace {

uint64_t rounds() { return env_u64("KILN_STRESS_SECURITY_ROUNDS", 1); }

class Security : public ::testing::Test {
 protected:
  void SetUp() override {
    if (access(accel_node().c_str(), F_OK) != 0) GTEST_SKIP() << "no device";
    probe_ = std::make_unique<Dev>();
    ASSERT_TRUE(probe_->ok());
    base_ = Accounting::read(*probe_);
    dev_ = std::make_unique<Dev>();
    ASSERT_TRUE(k_.load(*dev_)) << "stress kernels";
  }
  void TearDown() override {
    if (!probe_) return;
    if (dev_ && k_.code.handle) dev_->gem_close(k_.code.handle);
    dev_.reset();
    EXPECT_EQ(wait_back_to(*probe_, base_), "") << "accounting did not return to its baseline";
  }
  bool root() const { return geteuid() == 0; }

  std::unique_ptr<Dev> probe_, dev_;
  Accounting base_;
  Kernels k_;
};

// Lines in the kernel log, to check that user calls do not add any.
size_t kernel_log_lines() {
  FILE *p = popen("dmesg 2>/dev/null | wc -l", "r");
  size_t n = 0;
  if (p) {
    if (fscanf(p, "%zu", &n) != 1) n = 0;
    pclose(p);
  }
  return n;
}

std::string kernel_log() {
  FILE *p = popen("dmesg 2>/dev/null", "r");
  std::string s;
  char buf[4096];
  size_t n;
  while (p && (n = fread(buf, 1, sizeof(buf), p)) > 0) s.append(buf, n);
  if (p) pclose(p);
  return s;
}

// A module parameter set for the scope of a test (root only).
struct Knob {
  std::string path, old;
  bool ok = false;
  Knob(const char *name, const std::string &v) : path(std::string("/sys/module/kiln/parameters/") + name) {
    std::ifstream f(path);
    std::getline(f, old);
    if (old.empty()) return;
    std::ofstream w(path);
    w << v << "\n";
    w.flush();
    ok = bool(w);
  }
  ~Knob() {
    if (!ok) return;
    std::ofstream w(path);
    w << old << "\n";
  }
};

// Reads a BO back into host memory with a device copy (for BOs without a CPU mapping).
std::vector<uint64_t> read_back(Dev &d, uint32_t ctx, const Bo &bo, uint64_t bytes) {
  Bo host = d.bo(bytes);
  Cmd c;
  c.copy(host.va, bo.va, bytes);
  Outcome o = run_job(d, ctx, c.data(), c.size(), {bo, host});
  std::vector<uint64_t> v;
  if (!o.submit_err && o.finished && o.st.status == KILN_STATUS_OK) {
    auto *p = static_cast<uint64_t *>(d.map(host.handle, host.size));
    if (p) {
      v.assign(p, p + bytes / 8);
      munmap(p, host.size);
    }
  }
  d.gem_close(host.handle);
  return v;
}

// ------------------------------------------------------------------ memory reuse

// Root plants a secret in device memory and frees it; an unprivileged process
// then allocates the same sizes (the buddy allocator hands the same blocks
// back) and must read zeros, through the BAR mapping and through a device copy.
TEST_F(Security, FreedDeviceMemoryIsCleared) {
  struct Kind {
    const char *name;
    uint32_t flags;
    uint64_t size;
  };
  const Kind kinds[] = {{"dram", DRM_KILN_BO_DRAM, 2 << 20},
                        {"dram-odd", DRM_KILN_BO_DRAM, 3 * 4096},
                        {"dram-nommap", DRM_KILN_BO_DRAM | DRM_KILN_BO_NO_MMAP, 2 << 20},
                        {"sram", DRM_KILN_BO_SRAM, 64 << 10},
                        {"host", 0, 64 << 10}};
  const uint64_t secret = 0x5ec7e7'0000'0000ull | seed_from_env();
  for (uint64_t round = 0; round < rounds(); round++) {
    for (const Kind &k : kinds) {
      {
        Dev owner;
        uint32_t ctx = owner.ctx();
        Bo b;
        ASSERT_EQ(owner.bo_create(k.size, k.flags, &b), 0) << k.name;
        Cmd c;
        c.fill(b.va, b.size, uint32_t(secret));
        Outcome o = run_job(owner, ctx, c.data(), c.size(), {b});
        ASSERT_EQ(o.st.status, uint32_t(KILN_STATUS_OK)) << k.name;
        // Freed with the file.
      }
      pid_t pid = fork();
      ASSERT_GE(pid, 0);
      if (pid == 0) {
        if (!drop_to_user()) _exit(2);
        Dev d;
        if (!d.ok()) _exit(3);
        uint32_t ctx = 0;
        if (d.ctx_create(&ctx)) _exit(4);
        Bo b;
        if (d.bo_create(k.size, k.flags, &b)) _exit(5);
        uint64_t dirty = 0;
        if (!(b.flags & DRM_KILN_BO_NO_MMAP)) {
          auto *p = static_cast<uint64_t *>(d.map(b.handle, b.size));
          if (!p) _exit(6);
          for (uint64_t i = 0; i < b.size / 8; i++) dirty += p[i] != 0;
          munmap(p, b.size);
        }
        std::vector<uint64_t> v = read_back(d, ctx, b, b.size);
        if (v.size() != b.size / 8) _exit(7);
        for (uint64_t x : v) dirty += x != 0;
        _exit(dirty ? 1 : 0);
      }
      EXPECT_EQ(wait_child(pid), 0) << k.name << ": the next owner saw the previous owner's data (1) or failed";
    }
  }
}

// ------------------------------------------------------------------ core ioctls

// Every DRM core ioctl number on the accel node, as root and as a render-group
// user: the ones a render node refuses are refused (-EACCES) and none oopses
// (an oops fails the boot).
TEST_F(Security, CoreIoctlsSweptOnAccelNode) {
  // DRM_IOCTL_SYNCOBJ_EVENTFD (Linux 6.6) is newer than Debian 12's libdrm headers.
  constexpr unsigned kSyncobjEventfdNr = 0xCF;
  static const unsigned allowed[] = {
      _IOC_NR(DRM_IOCTL_VERSION),          _IOC_NR(DRM_IOCTL_GET_CAP),
      _IOC_NR(DRM_IOCTL_GEM_CLOSE),        _IOC_NR(DRM_IOCTL_PRIME_HANDLE_TO_FD),
      _IOC_NR(DRM_IOCTL_PRIME_FD_TO_HANDLE), _IOC_NR(DRM_IOCTL_SYNCOBJ_CREATE),
      _IOC_NR(DRM_IOCTL_SYNCOBJ_DESTROY),  _IOC_NR(DRM_IOCTL_SYNCOBJ_HANDLE_TO_FD),
      _IOC_NR(DRM_IOCTL_SYNCOBJ_FD_TO_HANDLE), _IOC_NR(DRM_IOCTL_SYNCOBJ_TRANSFER),
      _IOC_NR(DRM_IOCTL_SYNCOBJ_WAIT),     _IOC_NR(DRM_IOCTL_SYNCOBJ_TIMELINE_WAIT),
      kSyncobjEventfdNr,  _IOC_NR(DRM_IOCTL_SYNCOBJ_RESET),
      _IOC_NR(DRM_IOCTL_SYNCOBJ_SIGNAL),   _IOC_NR(DRM_IOCTL_SYNCOBJ_TIMELINE_SIGNAL),
      _IOC_NR(DRM_IOCTL_SYNCOBJ_QUERY)};
  auto sweep = [&](std::string *bad) {
    Dev d;
    if (!d.ok()) return *bad = "open failed", false;
    for (unsigned nr = 0; nr < 0x100; nr++) {
      if (nr >= DRM_COMMAND_BASE && nr < DRM_COMMAND_END) continue;  // Kiln's own
      if (std::find(std::begin(allowed), std::end(allowed), nr) != std::end(allowed)) continue;
      for (unsigned dir : {_IOC_NONE, _IOC_READ, _IOC_WRITE, _IOC_READ | _IOC_WRITE}) {
        alignas(8) uint8_t arg[256] = {};
        int r = ioctl(d.fd(), _IOC(dir, DRM_IOCTL_BASE, nr, dir == _IOC_NONE ? 0 : 64), arg);
        if (r != -1 || errno != EACCES) {
          *bad = "core ioctl nr " + std::to_string(nr) + " dir " + std::to_string(dir) + " returned " +
                 std::to_string(r) + " errno " + std::to_string(errno);
          return false;
        }
      }
    }
    return true;
  };
  std::string bad;
  EXPECT_TRUE(sweep(&bad)) << "root: " << bad;
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) _exit(drop_to_user() && sweep(&bad) ? 0 : 1);
  EXPECT_EQ(wait_child(pid), 0) << "render-group user";
  // The allowed ones still work.
  drm_version v{};
  EXPECT_EQ(xioctl(dev_->fd(), DRM_IOCTL_VERSION, &v), 0);
}

// ------------------------------------------------------------------ submit/destroy race

// One thread creates and destroys contexts while another submits to whichever
// exists: SUBMIT either fails with -ENOENT or returns a job that completes,
// nothing is logged per call, and accounting returns to its baseline.
TEST_F(Security, SubmitRacesContextDestroy) {
  const uint64_t ms = 1500 * rounds();
  Dev &d = *dev_;
  Bo buf = d.bo(4096);
  Cmd c;
  c.fill(buf.va, 4096, 0xace);
  Bo cb = cmd_bo(d, c.data(), c.size());
  size_t log0 = kernel_log_lines();
  std::atomic<uint32_t> current{d.ctx()};
  std::atomic<bool> stop{false};
  std::thread churn([&] {
    while (!stop) {
      uint32_t old = current.exchange(0);
      d.ctx_destroy(old);
      uint32_t id = 0;
      if (d.ctx_create(&id) == 0) current = id;
      usleep(200 + (id % 8) * 100);  // live long enough to take some jobs
    }
  });
  std::vector<uint32_t> accepted;
  uint64_t refused = 0, other = 0;
  uint64_t t0 = now_ns();
  while (now_ns() - t0 < ms * 1000000ull) {
    uint32_t so = d.syncobj();
    int r = d.submit(current.load(), cb.va, c.size(), {ref(cb, false), ref(buf)}, {sig(so)});
    if (r == 0) {
      accepted.push_back(so);
      continue;
    }
    d.syncobj_destroy(so);
    if (r == -EBUSY) {  // the file's or context's queued-job limit: wait, as a real submitter would
      usleep(1000);
      continue;
    }
    if (r == -ENOENT || r == -EIO)
      refused++;
    else if (!other++)
      printf("SUBMIT: unexpected errno %d\n", -r);
  }
  stop = true;
  churn.join();
  d.ctx_destroy(current.load());
  uint64_t unsignalled = 0;
  for (uint32_t so : accepted) {
    unsignalled += d.syncobj_wait(so, 10 * kSec) != 0;
    d.syncobj_destroy(so);
  }
  d.gem_close(cb.handle);
  d.gem_close(buf.handle);
  size_t log_lines = kernel_log_lines() - log0;
  printf("race: %zu accepted, %llu refused with ENOENT/EIO, %zu kernel log lines\n", accepted.size(),
         (unsigned long long)refused, log_lines);
  figure("security_race", {{"accepted", double(accepted.size())},
                           {"refused", double(refused)},
                           {"unsignalled", double(unsignalled)},
                           {"kernel_log_lines", double(log_lines)}});
  EXPECT_EQ(other, 0u) << "SUBMIT failed with an undocumented errno";
  EXPECT_EQ(unsignalled, 0u) << "an accepted job never completed";
  EXPECT_GT(accepted.size(), 0u);
  EXPECT_LT(log_lines, 5u) << "the kernel logs per user call";
  EXPECT_EQ(kernel_log().find("killed entity"), std::string::npos);
}

// ------------------------------------------------------------------ runaway kernels

// A spinning kernel of an unprivileged context ends at the watchdog cap, whatever
// its launch asks for; CTX_DESTROY, process exit and a device reset end a
// running kernel at once, and other contexts' jobs then run.
TEST_F(Security, RunawayKernelsAreStopped) {
  Dev &d = *dev_;
  Bo out = d.bo(4096), args = d.bo(4096);
  {
    auto *a = static_cast<uint64_t *>(d.map(args.handle, args.size));
    a[0] = out.va;
    munmap(a, args.size);
  }
  kiln_pkt_launch spin = launch_pkt(k_.entry("stress_spin"), args.va, 8, 1, 0xffffffffu);
  Bo spin_cb = cmd_bo(d, &spin, sizeof(spin));
  Cmd ok;
  ok.fill(out.va, 4096, 7);
  Bo ok_cb = cmd_bo(d, ok.data(), ok.size());

  // 1. The cap: as uid 1000, a launch asking for 2^32-1 M cycles ends WATCHDOG.
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    if (!drop_to_user()) _exit(2);
    Dev u;
    Kernels k;
    if (!u.ok() || !k.load(u)) _exit(3);
    if (u.param(DRM_KILN_PARAM_MAX_WATCHDOG_MCYCLES) != 1000) _exit(4);
    Bo o = u.bo(4096), a = u.bo(4096);
    auto *p = static_cast<uint64_t *>(u.map(a.handle, a.size));
    p[0] = o.va;
    munmap(p, a.size);
    kiln_pkt_launch l = launch_pkt(k.entry("stress_spin"), a.va, 8, 1, 0xffffffffu);
    uint32_t ctx = u.ctx();
    Outcome r = run_job(u, ctx, &l, sizeof(l), {o, a, k.code}, 120 * kSec);
    _exit(r.finished && r.st.status == KILN_STATUS_WATCHDOG ? 0 : 1);
  }
  EXPECT_EQ(wait_child(pid), 0) << "an unprivileged launch was not capped";

  if (!root()) return;
  EXPECT_EQ(d.param(DRM_KILN_PARAM_MAX_WATCHDOG_MCYCLES), 0u) << "CAP_SYS_ADMIN contexts are not capped";
  // Start root's uncapped spin on @ctx; returns its syncobj once it runs.
  auto start_spin = [&](Dev &on, uint32_t ctx, const Bo &cb, const std::vector<Bo> &bos) {
    uint32_t so = on.syncobj();
    std::vector<drm_kiln_bo_ref> refs{ref(cb, false)};
    for (auto &b : bos) refs.push_back(ref(b));
    EXPECT_EQ(on.submit(ctx, cb.va, 64, refs, {sig(so)}), 0);
    usleep(300000);
    EXPECT_EQ(on.syncobj_wait(so, 0), -ETIME) << "the spin ended by itself";
    return so;
  };
  auto ok_runs_within = [&](uint32_t ctx, uint64_t ns) {
    uint32_t so = d.syncobj();
    EXPECT_EQ(d.submit(ctx, ok_cb.va, 64, {ref(ok_cb, false), ref(out)}, {sig(so)}), 0);
    int r = d.syncobj_wait(so, ns);
    d.syncobj_destroy(so);
    return r == 0;
  };

  // 2. CTX_DESTROY ends it; a job of another context on the same priority then runs.
  for (uint64_t round = 0; round < rounds(); round++) {
    uint32_t bad = d.ctx(DRM_KILN_PRIORITY_LOW), good = d.ctx(DRM_KILN_PRIORITY_LOW);
    uint32_t so = start_spin(d, bad, spin_cb, {out, args, k_.code});
    uint64_t t0 = now_ns();
    ASSERT_EQ(d.ctx_destroy(bad), 0);
    double destroy_ms = double(now_ns() - t0) / 1e6;
    EXPECT_EQ(d.syncobj_wait(so, 5 * kSec), 0) << "the destroyed context's kernel still runs";
    EXPECT_TRUE(ok_runs_within(good, 5 * kSec));
    printf("destroy with a running kernel: %.1f ms, ended %.1f ms after\n", destroy_ms,
           double(now_ns() - t0) / 1e6);
    d.syncobj_destroy(so);
    d.ctx_destroy(good);
  }

  // 3. Process exit (a normal one) ends it.
  int pfd[2];
  ASSERT_EQ(pipe(pfd), 0);
  pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    Dev e;
    Kernels k;
    if (!e.ok() || !k.load(e)) _exit(3);
    Bo o = e.bo(4096), a = e.bo(4096);
    auto *p = static_cast<uint64_t *>(e.map(a.handle, a.size));
    p[0] = o.va;
    munmap(p, a.size);
    kiln_pkt_launch l = launch_pkt(k.entry("stress_spin"), a.va, 8, 1, 0xffffffffu);
    Bo cb = cmd_bo(e, &l, sizeof(l));
    uint32_t ctx = e.ctx(DRM_KILN_PRIORITY_LOW);
    if (e.submit(ctx, cb.va, 64, {ref(cb, false), ref(o), ref(a), ref(k.code)})) _exit(4);
    usleep(300000);
    char x = 1;
    if (write(pfd[1], &x, 1) != 1) _exit(5);
    exit(0);
  }
  close(pfd[1]);
  char x = 0;
  ASSERT_EQ(read(pfd[0], &x, 1), 1);
  close(pfd[0]);
  uint64_t t0 = now_ns();
  EXPECT_EQ(wait_child(pid), 0);
  printf("exit with a running kernel took %.1f ms\n", double(now_ns() - t0) / 1e6);
  uint32_t after = d.ctx(DRM_KILN_PRIORITY_LOW);
  EXPECT_TRUE(ok_runs_within(after, 5 * kSec)) << "the exited process's kernel still holds the device";

  // 4. A device reset ends it and does not run it again.
  std::string force = debugfs_dir() + "/force_reset";
  if (access(force.c_str(), W_OK) == 0) {
    uint32_t ctx = d.ctx(DRM_KILN_PRIORITY_LOW);
    uint32_t so = start_spin(d, ctx, spin_cb, {out, args, k_.code});
    {
      std::ofstream f(force);
      f << "1";
    }
    EXPECT_EQ(d.syncobj_wait(so, 5 * kSec), 0) << "the kernel survived a reset";
    drm_kiln_job_status st;
    ASSERT_EQ(d.job_status(ctx, 1, &st), 0);
    EXPECT_EQ(st.status, uint32_t(KILN_STATUS_INTERRUPTED));
    EXPECT_EQ(st.error, -EAGAIN);
    EXPECT_TRUE(ok_runs_within(after, 5 * kSec));
    d.syncobj_destroy(so);
    d.ctx_destroy(ctx);
  }
  d.ctx_destroy(after);
  for (auto b : {out, args, spin_cb, ok_cb}) d.gem_close(b.handle);
}

// ------------------------------------------------------------------ resets

// Jobs in flight at a device reset: the one that may have started is not run
// again unless its submitter marked it replayable (it ends INTERRUPTED with
// -EAGAIN), jobs that had not started run once, and a job that updates a
// buffer in place is never applied twice.
TEST_F(Security, ResetDoesNotReplayStartedJobs) {
  if (!root()) GTEST_SKIP() << "needs root (force_reset)";
  std::string force = debugfs_dir() + "/force_reset";
  if (access(force.c_str(), W_OK) != 0) GTEST_SKIP() << "no debugfs";
  Dev &d = *dev_;
  for (uint64_t round = 0; round < rounds(); round++) {
    Bo sem = d.bo(4096), data = d.bo(4096);
    auto *s = static_cast<uint64_t *>(d.map(sem.handle, sem.size));
    auto *v = static_cast<uint64_t *>(d.map(data.handle, data.size));
    ASSERT_TRUE(s && v);
    s[0] = s[1] = 0;
    v[0] = 1;
    v[1] = 0;
    // In place, not idempotent: data[1] = data[0]; data[0] = 2 — run twice, data[1] becomes 2.
    Cmd inplace;
    inplace.wait(sem.va, 1, KILN_WAIT_GEQUAL).copy(data.va + 8, data.va, 8).fill(data.va, 8, 2);
    Cmd replayable;
    replayable.wait(sem.va + 8, 1, KILN_WAIT_GEQUAL).fill(data.va + 16, 8, 5);
    Cmd behind;
    behind.fill(data.va + 24, 8, 6);
    uint32_t a = d.ctx(DRM_KILN_PRIORITY_LOW), b = d.ctx(DRM_KILN_PRIORITY_HIGH);
    Bo ca = cmd_bo(d, inplace.data(), inplace.size()), cr = cmd_bo(d, replayable.data(), replayable.size()),
       cbh = cmd_bo(d, behind.data(), behind.size());
    uint32_t s1 = d.syncobj(), s2 = d.syncobj(), s3 = d.syncobj();
    ASSERT_EQ(d.submit(a, ca.va, inplace.size(), {ref(ca, false), ref(sem, false), ref(data, false)}, {sig(s1)}), 0);
    ASSERT_EQ(d.submit(a, cbh.va, behind.size(), {ref(cbh, false), ref(data, false)}, {sig(s2)}), 0);
    ASSERT_EQ(d.submit(b, cr.va, replayable.size(), {ref(cr, false), ref(sem, false), ref(data, false)}, {sig(s3)},
                       nullptr, DRM_KILN_SUBMIT_REPLAYABLE),
              0);
    usleep(300000);  // both heads are blocked in their WAIT
    {
      std::ofstream f(force);
      f << "1";
    }
    EXPECT_EQ(d.syncobj_wait(s1, 5 * kSec), 0);
    drm_kiln_job_status st;
    ASSERT_EQ(d.job_status(a, 1, &st), 0);
    EXPECT_EQ(st.status, uint32_t(KILN_STATUS_INTERRUPTED)) << status_name(st.status);
    EXPECT_EQ(st.error, -EAGAIN);
    EXPECT_EQ(d.syncobj_wait(s2, 5 * kSec), 0) << "the job behind it did not run";
    ASSERT_EQ(d.job_status(a, 2, &st), 0);
    EXPECT_EQ(st.status, uint32_t(KILN_STATUS_OK));
    s[1] = 1;  // the replayed job may now finish
    s[0] = 1;  // would let an illegitimately replayed in-place job run
    EXPECT_EQ(d.syncobj_wait(s3, 5 * kSec), 0) << "the replayable job was not run again";
    ASSERT_EQ(d.job_status(b, 1, &st), 0);
    EXPECT_EQ(st.status, uint32_t(KILN_STATUS_OK));
    EXPECT_EQ(st.error, 0);
    usleep(100000);
    EXPECT_EQ(v[0], 1u) << "the interrupted in-place job ran after the reset";
    EXPECT_EQ(v[1], 0u);
    EXPECT_EQ(v[2], 0x500000005ull);
    EXPECT_EQ(v[3], 0x600000006ull);
    drm_kiln_ctx_status cs;
    ASSERT_EQ(d.ctx_status(b, &cs), 0);
    EXPECT_FALSE(cs.flags & DRM_KILN_CTX_BANNED) << "an innocent context was banned";
    munmap(s, sem.size);
    munmap(v, data.size);
    for (uint32_t h : {s1, s2, s3}) d.syncobj_destroy(h);
    for (uint32_t c : {a, b}) d.ctx_destroy(c);
    for (auto x : {sem, data, ca, cr, cbh}) d.gem_close(x.handle);
  }
}

// ------------------------------------------------------------------ limits

TEST_F(Security, LimitsHold) {
  if (!root()) GTEST_SKIP() << "needs root to set the limits";
  Dev &d = *dev_;
  // Host BOs by count, over all files.
  {
    const uint64_t extra = 64;
    // The count is global; other tests' BOs are gone by now (accounting baseline).
    uint64_t held_now = d.param(DRM_KILN_PARAM_BO_COUNT);
    Knob k("max_host_bos", std::to_string(held_now + extra));
    ASSERT_TRUE(k.ok);
    EXPECT_EQ(d.param(DRM_KILN_PARAM_MAX_HOST_BOS), held_now + extra);
    std::vector<Bo> held;
    Dev other;
    Bo b;
    int r = 0;
    while ((r = (held.size() % 2 ? d : other).bo_create(4096, 0, &b)) == 0 && held.size() < 10 * extra)
      held.push_back(b);
    EXPECT_EQ(r, -ENOSPC);
    EXPECT_LE(held.size(), extra);
    EXPECT_GE(held.size(), extra / 2);
    Bo dram;
    EXPECT_EQ(d.bo_create(4096, DRM_KILN_BO_DRAM, &dram), 0) << "device BOs are not host BOs";
    d.gem_close(dram.handle);
    for (size_t i = 0; i < held.size(); i++) (i % 2 ? d : other).gem_close(held[i].handle);
  }
  // One host-memory budget for all devices.
  if (access(accel_node(1).c_str(), F_OK) == 0) {
    Knob k("host_mem_percent", "3");
    ASSERT_TRUE(k.ok);
    const uint64_t limit = d.param(DRM_KILN_PARAM_HOST_MEM_LIMIT), chunk = 8 << 20;
    Dev d1(open_dev(1));
    std::vector<std::pair<Dev *, Bo>> held;
    Bo b;
    int r = 0;
    for (int i = 0; (r = (i % 2 ? d1 : d).bo_create(chunk, 0, &b)) == 0; i++) held.push_back({i % 2 ? &d1 : &d, b});
    EXPECT_EQ(r, -ENOSPC);
    EXPECT_LE(held.size() * chunk, limit) << "two devices pinned more than the one budget";
    for (auto &[dev, bo] : held) dev->gem_close(bo.handle);
  }
  // Jobs per file.
  {
    Knob k("max_file_jobs", "8");
    ASSERT_TRUE(k.ok);
    Bo sem = d.bo(4096);
    Cmd blocker;
    blocker.wait(sem.va, 1, KILN_WAIT_GEQUAL);
    Bo cb = cmd_bo(d, blocker.data(), blocker.size());
    uint32_t c1 = d.ctx(), c2 = d.ctx();
    int r = 0, n = 0;
    while ((r = d.submit(n % 2 ? c1 : c2, cb.va, 64, {ref(cb, false), ref(sem, false)})) == 0 && n < 100) n++;
    EXPECT_EQ(r, -EBUSY);
    EXPECT_EQ(n, 8) << "max_file_jobs spans the file's contexts";
    auto *s = static_cast<uint64_t *>(d.map(sem.handle, sem.size));
    s[0] = 1;
    munmap(s, sem.size);
    EXPECT_EQ(d.bo_wait(sem.handle, 10 * kSec), 0);
    for (uint32_t c : {c1, c2}) d.ctx_destroy(c);
    for (auto x : {sem, cb}) d.gem_close(x.handle);
  }
  // Contexts per file.
  {
    Knob k("max_file_contexts", "4");
    ASSERT_TRUE(k.ok);
    std::vector<uint32_t> ids;
    uint32_t id;
    int r;
    while ((r = d.ctx_create(&id)) == 0 && ids.size() < 100) ids.push_back(id);
    EXPECT_EQ(r, -ENOSPC);
    EXPECT_EQ(ids.size(), 4u);
    Dev other;
    EXPECT_EQ(other.ctx_create(&id), 0) << "the limit is per file";
    for (uint32_t c : ids) d.ctx_destroy(c);
  }
}

// ------------------------------------------------------------------ bounded destroy

// A context whose queued job depends on a job that does not end: CTX_DESTROY
// returns at once and the queued job's fence ends with an error; destroying
// the blocking context then ends its job too.
TEST_F(Security, DestroyIsBounded) {
  Dev &d = *dev_;
  for (uint64_t round = 0; round < rounds(); round++) {
    Bo sem = d.bo(4096), buf = d.bo(4096);
    Cmd blocker, dependent;
    blocker.wait(sem.va, 1, KILN_WAIT_EQUAL);  // nobody writes 1
    dependent.fill(buf.va, 4096, 3);
    Bo cb1 = cmd_bo(d, blocker.data(), blocker.size()), cb2 = cmd_bo(d, dependent.data(), dependent.size());
    uint32_t a = d.ctx(DRM_KILN_PRIORITY_NORMAL, 60000), b = d.ctx();
    uint32_t sa = d.syncobj(), sb = d.syncobj();
    ASSERT_EQ(d.submit(a, cb1.va, 64, {ref(cb1, false), ref(sem, false)}, {sig(sa)}), 0);
    drm_kiln_sync w{};
    w.handle = sa;
    w.flags = DRM_KILN_SYNC_WAIT;
    ASSERT_EQ(d.submit(b, cb2.va, 64, {ref(cb2, false), ref(buf)}, {w, sig(sb)}), 0);
    uint64_t t0 = now_ns();
    ASSERT_EQ(d.ctx_destroy(b), 0);
    double ms = double(now_ns() - t0) / 1e6;
    EXPECT_LT(ms, 1000.0) << "CTX_DESTROY waited for a dependency";
    EXPECT_EQ(d.syncobj_wait(sb, 2 * kSec), 0) << "the cancelled job's fence never ended";
    t0 = now_ns();
    ASSERT_EQ(d.ctx_destroy(a), 0);
    EXPECT_EQ(d.syncobj_wait(sa, 5 * kSec), 0) << "the blocking job was not cancelled";
    printf("destroy with a blocked dependency: %.1f ms; blocking job cancelled in %.1f ms\n", ms,
           double(now_ns() - t0) / 1e6);
    auto *p = static_cast<uint32_t *>(d.map(buf.handle, buf.size));
    EXPECT_EQ(p[0], 0u) << "a cancelled job ran";
    munmap(p, buf.size);
    for (uint32_t h : {sa, sb}) d.syncobj_destroy(h);
    for (auto x : {sem, buf, cb1, cb2}) d.gem_close(x.handle);
  }
}

}  // namespace
