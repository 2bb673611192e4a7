// SPDX-License-Identifier: MIT
// In-VM tests of kiln.ko: every ioctl's success and failure paths, jobs,
// syncobjs, MMU isolation, hang recovery, PRIME between processes.
#include <gtest/gtest.h>

#include <linux/sync_file.h>
#include <sys/wait.h>

#include <atomic>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "kiln_drv_util.h"
#include "module_param.hpp"

using namespace kt;

namespace {

constexpr uint64_t kSec = 1000000000ull;

// Counts that must return to their value once a test released everything.
struct Baseline {
  uint64_t bos, ctxs, host, dram, sram;
  explicit Baseline(Dev &d)
      : bos(d.param(DRM_KILN_PARAM_BO_COUNT)), ctxs(d.param(DRM_KILN_PARAM_CONTEXTS_IN_USE)),
        host(d.param(DRM_KILN_PARAM_HOST_BO_BYTES)), dram(d.param(DRM_KILN_PARAM_DRAM_FREE)),
        sram(d.param(DRM_KILN_PARAM_SRAM_FREE)) {}
};

class Kiln : public ::testing::Test {
 protected:
  void SetUp() override {
    if (access(accel_node().c_str(), F_OK) != 0) GTEST_SKIP() << "no /dev/accel/accel0";
    probe_ = std::make_unique<Dev>();
    ASSERT_TRUE(probe_->ok()) << strerror(errno);
    base_ = std::make_unique<Baseline>(*probe_);
    dev_ = std::make_unique<Dev>();
    ASSERT_TRUE(dev_->ok());
  }
  void TearDown() override {
    if (!probe_) return;
    dev_.reset();
    // Jobs drop their BO references shortly after they signalled.
    Baseline now(*probe_);
    for (int i = 0; i < 100 && (now.bos != base_->bos || now.host != base_->host ||
                                now.dram != base_->dram || now.sram != base_->sram);
         i++) {
      usleep(50000);
      now = Baseline(*probe_);
    }
    EXPECT_EQ(now.bos, base_->bos) << "BO leak";
    EXPECT_EQ(now.ctxs, base_->ctxs) << "context leak";
    EXPECT_EQ(now.host, base_->host) << "host BO bytes leak";
    EXPECT_EQ(now.dram, base_->dram) << "DRAM leak";
    EXPECT_EQ(now.sram, base_->sram) << "SRAM leak";
  }

  // Run @cmd on @ctx; returns the seqno, or 0 if SUBMIT failed (*err set).
  uint64_t run(Dev &d, uint32_t ctx, const Cmd &cmd, std::vector<Bo> bos, int *err = nullptr,
               uint64_t wait_ns = 20 * kSec) {
    Bo cb = d.bo(4096 + cmd.size());
    void *p = d.map(cb.handle, cb.size);
    EXPECT_NE(p, nullptr);
    memcpy(p, cmd.data(), cmd.size());
    munmap(p, cb.size);
    std::vector<drm_kiln_bo_ref> refs{ref(cb, false)};
    for (auto &b : bos) refs.push_back(ref(b));
    uint32_t so = d.syncobj();
    uint64_t seqno = 0;
    int r = d.submit(ctx, cb.va, cmd.size(), refs, {sig(so)}, &seqno);
    if (err) *err = r;
    if (!r) {
      EXPECT_EQ(d.syncobj_wait(so, wait_ns), 0);
    }
    d.syncobj_destroy(so);
    d.gem_close(cb.handle);
    return r ? 0 : seqno;
  }

  drm_kiln_job_status status(Dev &d, uint32_t ctx, uint64_t seqno) {
    drm_kiln_job_status st;
    EXPECT_EQ(d.job_status(ctx, seqno, &st), 0);
    return st;
  }

  // Exports `bo` of `from`, imports it into `to`, and fills [off, off + len) with `pattern`
  // through a job of `to`. Returns the job's KILN_STATUS_*, or kExportFailed,
  // kImportFailed, kBoInfoFailed; the import's handle is closed again.
  static constexpr uint32_t kExportFailed = ~0u, kImportFailed = ~1u, kBoInfoFailed = ~2u;
  uint32_t fill_through_import(Dev &from, const Bo &bo, Dev &to, uint64_t off, uint64_t len, uint32_t pattern) {
    int fd = -1;
    if (from.prime_export(bo.handle, &fd)) return kExportFailed;
    uint32_t h = 0;
    int rc = to.prime_import(fd, &h);
    close(fd);
    if (rc) return kImportFailed;
    drm_kiln_bo_info info;
    if (to.bo_info(h, &info) || info.size != bo.size) return kBoInfoFailed;
    uint32_t ctx = to.ctx();
    Cmd c;
    c.fill(info.va + off, len, pattern);
    uint32_t st = status(to, ctx, run(to, ctx, c, {Bo{h, bo.size, info.va, 0}})).status;
    to.gem_close(h);
    return st;
  }

  std::unique_ptr<Dev> probe_;
  std::unique_ptr<Baseline> base_;
  std::unique_ptr<Dev> dev_;
};

// ---------------------------------------------------------------- params

TEST_F(Kiln, GetParam) {
  Dev &d = *dev_;
  EXPECT_EQ(d.param(DRM_KILN_PARAM_DEVICE_ID), KILN_PCI_DEVICE_ID);
  EXPECT_EQ(d.param(DRM_KILN_PARAM_UAPI_VERSION) >> 16, KILN_UAPI_VERSION_MAJOR);
  EXPECT_EQ(KILN_VERSION_MAJOR(d.param(DRM_KILN_PARAM_IFACE_VERSION)), KILN_IFACE_VERSION_MAJOR);
  EXPECT_GE(d.param(DRM_KILN_PARAM_NUM_QUEUES), 1u);
  EXPECT_GT(d.param(DRM_KILN_PARAM_DRAM_SIZE), 0u);
  EXPECT_LT(d.param(DRM_KILN_PARAM_VA_START), d.param(DRM_KILN_PARAM_VA_END));
  EXPECT_EQ(d.param(DRM_KILN_PARAM_MAX_CMD_SIZE), KILN_INDIRECT_MAX_SIZE);
  EXPECT_GT(d.param(DRM_KILN_PARAM_MAX_CONTEXTS), 0u);
  uint64_t v;
  EXPECT_EQ(d.get_param(DRM_KILN_PARAM_NUM_PARAMS, &v), -EINVAL);
  EXPECT_EQ(d.get_param(0xffffffffu, &v), -EINVAL);
  EXPECT_EQ(d.get_param(DRM_KILN_PARAM_DEVICE_ID, &v, 1), -EINVAL) << "index MBZ";
}

TEST_F(Kiln, QueryInfoSizeNegotiation) {
  Dev &d = *dev_;
  drm_kiln_query_info q{};
  q.type = DRM_KILN_QUERY_DEVICE;
  ASSERT_EQ(xioctl(d.fd(), DRM_IOCTL_KILN_QUERY_INFO, &q), 0);
  EXPECT_EQ(q.size, sizeof(drm_kiln_device_info));

  drm_kiln_device_info info{};
  q.ptr = reinterpret_cast<uintptr_t>(&info);
  q.size = sizeof(info);
  ASSERT_EQ(xioctl(d.fd(), DRM_IOCTL_KILN_QUERY_INFO, &q), 0);
  EXPECT_EQ(info.device_id, KILN_PCI_DEVICE_ID);
  EXPECT_EQ(info.dram_size, d.param(DRM_KILN_PARAM_DRAM_SIZE));

  // Shorter: prefix only; longer: zero-filled tail.
  uint8_t small[8];
  memset(small, 0xaa, sizeof(small));
  q.ptr = reinterpret_cast<uintptr_t>(small);
  q.size = sizeof(small);
  ASSERT_EQ(xioctl(d.fd(), DRM_IOCTL_KILN_QUERY_INFO, &q), 0);
  EXPECT_EQ(memcmp(small, &info, 8), 0);
  std::vector<uint8_t> big(sizeof(info) + 64, 0xaa);
  q.ptr = reinterpret_cast<uintptr_t>(big.data());
  q.size = big.size();
  ASSERT_EQ(xioctl(d.fd(), DRM_IOCTL_KILN_QUERY_INFO, &q), 0);
  for (size_t i = sizeof(info); i < big.size(); i++) ASSERT_EQ(big[i], 0);

  q.type = 99;
  EXPECT_EQ(xioctl(d.fd(), DRM_IOCTL_KILN_QUERY_INFO, &q), -EINVAL);
  q.type = DRM_KILN_QUERY_DEVICE;
  q.ptr = 8;  // unmapped user pointer
  q.size = sizeof(info);
  EXPECT_EQ(xioctl(d.fd(), DRM_IOCTL_KILN_QUERY_INFO, &q), -EFAULT);
}

TEST_F(Kiln, Telemetry) {
  Dev &d = *dev_;
  drm_kiln_telemetry t{};
  drm_kiln_query_info q{};
  q.type = DRM_KILN_QUERY_TELEMETRY;
  q.ptr = reinterpret_cast<uintptr_t>(&t);
  q.size = sizeof(t);
  int r = xioctl(d.fd(), DRM_IOCTL_KILN_QUERY_INFO, &q);
  if (!(d.param(DRM_KILN_PARAM_FEATURES) & KILN_FEATURE_TELEMETRY)) {
    EXPECT_EQ(r, -EOPNOTSUPP);
    return;
  }
  ASSERT_EQ(r, 0);
  EXPECT_GT(t.device_time_ns, 0u);
}

// ---------------------------------------------------------------- BOs

TEST_F(Kiln, BoCreateHostMapReadWrite) {
  Dev &d = *dev_;
  Bo b = d.bo(10000);
  EXPECT_EQ(b.size, 12288u) << "rounded to pages";
  EXPECT_NE(b.handle, 0u);
  EXPECT_GE(b.va, d.param(DRM_KILN_PARAM_VA_START));
  EXPECT_EQ(b.va % 4096, 0u);
  auto *p = static_cast<uint32_t *>(d.map(b.handle, b.size));
  ASSERT_NE(p, nullptr);
  for (int i = 0; i < 3072; i++) p[i] = i;
  for (int i = 0; i < 3072; i++) ASSERT_EQ(p[i], uint32_t(i));
  munmap(p, b.size);
  drm_kiln_bo_info info;
  ASSERT_EQ(d.bo_info(b.handle, &info), 0);
  EXPECT_EQ(info.va, b.va);
  EXPECT_EQ(info.size, b.size);
  EXPECT_NE(info.mmap_offset, 0u);
  EXPECT_EQ(d.gem_close(b.handle), 0);
}

TEST_F(Kiln, BoCreateDramMapThroughBar) {
  Dev &d = *dev_;
  uint64_t free0 = d.param(DRM_KILN_PARAM_DRAM_FREE);
  Bo b = d.bo(2 << 20, DRM_KILN_BO_DRAM);
  EXPECT_EQ(d.param(DRM_KILN_PARAM_DRAM_FREE), free0 - (2 << 20));
  EXPECT_EQ(b.va % (2 << 20), 0u) << "2 MiB DRAM BOs get large-page aligned VAs";
  auto *p = static_cast<uint64_t *>(d.map(b.handle, b.size));
  ASSERT_NE(p, nullptr);
  for (size_t i = 0; i < b.size / 8; i += 4096) p[i] = i * 3;
  for (size_t i = 0; i < b.size / 8; i += 4096) ASSERT_EQ(p[i], i * 3);
  munmap(p, b.size);
  d.gem_close(b.handle);
  EXPECT_EQ(d.param(DRM_KILN_PARAM_DRAM_FREE), free0);
}

TEST_F(Kiln, BoCreateSramIsNoMmap) {
  Dev &d = *dev_;
  if (!d.param(DRM_KILN_PARAM_SRAM_SIZE)) GTEST_SKIP() << "no SRAM";
  Bo b = d.bo(65536, DRM_KILN_BO_SRAM);
  EXPECT_TRUE(b.flags & DRM_KILN_BO_NO_MMAP);
  drm_kiln_bo_info info;
  ASSERT_EQ(d.bo_info(b.handle, &info), 0);
  EXPECT_EQ(info.mmap_offset, 0u);
  d.gem_close(b.handle);
}

TEST_F(Kiln, BoCreateInvalid) {
  Dev &d = *dev_;
  Bo b;
  EXPECT_EQ(d.bo_create(0, 0, &b), -EINVAL) << "size 0";
  EXPECT_EQ(d.bo_create(4096, 1u << 31, &b), -EINVAL) << "unknown flag";
  EXPECT_EQ(d.bo_create(4096, DRM_KILN_BO_DRAM | DRM_KILN_BO_SRAM, &b), -EINVAL);
  EXPECT_EQ(d.bo_create(~0ull, 0, &b), -E2BIG) << "overflowing size";
  EXPECT_EQ(d.bo_create(~0ull - 100, DRM_KILN_BO_DRAM, &b), -E2BIG);
  EXPECT_EQ(d.bo_create(1ull << 46, 0, &b), -E2BIG) << "more than RAM";
  uint64_t dram = d.param(DRM_KILN_PARAM_DRAM_SIZE);
  EXPECT_EQ(d.bo_create(dram + 4096, DRM_KILN_BO_DRAM, &b), -E2BIG);
  // Out-of-range request is E2BIG; exhausting the pool is ENOSPC.
  Bo big;
  ASSERT_EQ(d.bo_create(d.param(DRM_KILN_PARAM_DRAM_FREE), DRM_KILN_BO_DRAM | DRM_KILN_BO_NO_MMAP, &big), 0);
  EXPECT_EQ(d.bo_create(1 << 20, DRM_KILN_BO_DRAM, &b), -ENOSPC);
  d.gem_close(big.handle);

  drm_kiln_bo_create c{};
  c.size = 4096;
  c.handle = 5;  // out fields must be zero on input
  EXPECT_EQ(xioctl(d.fd(), DRM_IOCTL_KILN_BO_CREATE, &c), -EINVAL);
}

TEST_F(Kiln, BoNoMmap) {
  Dev &d = *dev_;
  Bo b = d.bo(4096, DRM_KILN_BO_NO_MMAP);
  drm_kiln_bo_info info;
  ASSERT_EQ(d.bo_info(b.handle, &info), 0);
  EXPECT_EQ(info.mmap_offset, 0u);
  EXPECT_TRUE(info.flags & DRM_KILN_BO_NO_MMAP);
  d.gem_close(b.handle);
}

TEST_F(Kiln, BoBadAndClosedHandles) {
  Dev &d = *dev_;
  drm_kiln_bo_info info;
  EXPECT_EQ(d.bo_info(0, &info), -ENOENT);
  EXPECT_EQ(d.bo_info(12345, &info), -ENOENT);
  Bo b = d.bo(4096);
  EXPECT_EQ(d.gem_close(b.handle), 0);
  EXPECT_EQ(d.bo_info(b.handle, &info), -ENOENT);
  EXPECT_EQ(d.gem_close(b.handle), -EINVAL);
  EXPECT_EQ(d.bo_wait(b.handle, kSec), -ENOENT);

  // A handle of another file means nothing here.
  Dev other;
  Bo ob = other.bo(4096);
  Bo mine = d.bo(4096);
  if (ob.handle != mine.handle) {
    EXPECT_EQ(d.bo_info(ob.handle, &info), -ENOENT);
  }
  other.gem_close(ob.handle);
  d.gem_close(mine.handle);
}

TEST_F(Kiln, MmapAfterClose) {
  Dev &d = *dev_;
  Bo b = d.bo(8192);
  drm_kiln_bo_info info;
  ASSERT_EQ(d.bo_info(b.handle, &info), 0);
  auto *p = static_cast<uint32_t *>(
      mmap(nullptr, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, d.fd(), info.mmap_offset));
  ASSERT_NE(p, MAP_FAILED);
  d.gem_close(b.handle);
  p[0] = 42;  // the mapping keeps the pages alive
  EXPECT_EQ(p[0], 42u);
  munmap(p, 8192);
  void *q = mmap(nullptr, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, d.fd(), info.mmap_offset);
  EXPECT_EQ(q, MAP_FAILED) << "offset must be gone after GEM_CLOSE";
  // Bigger than the BO
  Bo c = d.bo(4096);
  ASSERT_EQ(d.bo_info(c.handle, &info), 0);
  q = mmap(nullptr, 8192, PROT_READ, MAP_SHARED, d.fd(), info.mmap_offset);
  EXPECT_EQ(q, MAP_FAILED);
  d.gem_close(c.handle);
}

TEST_F(Kiln, BoWait) {
  Dev &d = *dev_;
  Bo b = d.bo(4096);
  EXPECT_EQ(d.bo_wait(b.handle, kSec), 0) << "idle BO";
  drm_kiln_bo_wait w{};
  w.handle = b.handle;
  w.pad = 1;
  EXPECT_EQ(xioctl(d.fd(), DRM_IOCTL_KILN_BO_WAIT, &w), -EINVAL);
  d.gem_close(b.handle);
}

TEST_F(Kiln, ManyBosDistinctVas) {
  Dev &d = *dev_;
  std::vector<Bo> bos;
  for (int i = 0; i < 64; i++) bos.push_back(d.bo(4096 * (1 + i % 5), i % 3 == 0 ? DRM_KILN_BO_DRAM : 0));
  for (size_t i = 0; i < bos.size(); i++)
    for (size_t j = i + 1; j < bos.size(); j++)
      ASSERT_TRUE(bos[i].va + bos[i].size <= bos[j].va || bos[j].va + bos[j].size <= bos[i].va);
  for (auto &b : bos) d.gem_close(b.handle);
}

// ---------------------------------------------------------------- contexts

TEST_F(Kiln, ContextLifecycle) {
  Dev &d = *dev_;
  uint64_t in_use = d.param(DRM_KILN_PARAM_CONTEXTS_IN_USE);
  uint32_t a = d.ctx(DRM_KILN_PRIORITY_LOW), b = d.ctx(DRM_KILN_PRIORITY_HIGH);
  EXPECT_NE(a, 0u);
  EXPECT_NE(a, b);
  EXPECT_EQ(d.param(DRM_KILN_PARAM_CONTEXTS_IN_USE), in_use + 2);
  drm_kiln_ctx_status st;
  ASSERT_EQ(d.ctx_status(a, &st), 0);
  EXPECT_EQ(st.flags, 0u);
  EXPECT_EQ(st.submitted, 0u);
  EXPECT_EQ(d.ctx_destroy(a), 0);
  EXPECT_EQ(d.ctx_destroy(a), -ENOENT);
  EXPECT_EQ(d.ctx_status(a, &st), -ENOENT);
  EXPECT_EQ(d.ctx_destroy(b), 0);
  EXPECT_EQ(d.param(DRM_KILN_PARAM_CONTEXTS_IN_USE), in_use);
}

TEST_F(Kiln, ContextInvalid) {
  Dev &d = *dev_;
  uint32_t id;
  EXPECT_EQ(d.ctx_create(&id, 4), -EINVAL);
  drm_kiln_ctx_create c{};
  c.flags = 1;
  EXPECT_EQ(xioctl(d.fd(), DRM_IOCTL_KILN_CTX_CREATE, &c), -EINVAL);
  drm_kiln_ctx_destroy x{};
  x.ctx_id = d.ctx();
  x.pad = 1;
  EXPECT_EQ(xioctl(d.fd(), DRM_IOCTL_KILN_CTX_DESTROY, &x), -EINVAL);
  EXPECT_EQ(d.ctx_destroy(x.ctx_id), 0);
  // Another file's context is not visible.
  Dev other;
  uint32_t oc = other.ctx();
  drm_kiln_ctx_status st;
  uint32_t mine = d.ctx();
  if (oc != mine) {
    EXPECT_EQ(d.ctx_status(oc, &st), -ENOENT);
  }
  d.ctx_destroy(mine);
}

// The device-wide limit, reached from several files (one file may hold
// MAX_FILE_CONTEXTS), and the per-file one.
TEST_F(Kiln, ContextLimitIsEnospc) {
  Dev &d = *dev_;
  const uint64_t max = d.param(DRM_KILN_PARAM_MAX_CONTEXTS);
  const uint64_t per_file = d.param(DRM_KILN_PARAM_MAX_FILE_CONTEXTS);
  ASSERT_GT(per_file, 0u);
  ASSERT_LT(per_file, max);
  std::vector<std::unique_ptr<Dev>> files;
  uint64_t used = d.param(DRM_KILN_PARAM_CONTEXTS_IN_USE);
  uint32_t id;
  for (; used < max; used++) {
    if (files.empty() || files.back()->ctx_create(&id) == -ENOSPC) {
      files.push_back(std::make_unique<Dev>());
      ASSERT_EQ(files.back()->ctx_create(&id), 0) << "context " << used << " of " << max;
    }
  }
  EXPECT_EQ(d.ctx_create(&id), -ENOSPC) << "device full";
  files.clear();
  for (uint64_t i = 0; i < per_file; i++) ASSERT_EQ(d.ctx_create(&id), 0);
  EXPECT_EQ(d.ctx_create(&id), -ENOSPC) << "file full";
}

// ---------------------------------------------------------------- submit

TEST_F(Kiln, SubmitFillAndCopy) {
  Dev &d = *dev_;
  uint32_t ctx = d.ctx();
  Bo src = d.bo(65536), dram = d.bo(65536, DRM_KILN_BO_DRAM), dst = d.bo(65536);
  Cmd c;
  c.fill(src.va, 65536, 0xdeadbeef).copy(dram.va, src.va, 65536).copy(dst.va, dram.va, 65536);
  uint64_t s = run(d, ctx, c, {src, dram, dst});
  ASSERT_EQ(s, 1u);
  auto st = status(d, ctx, s);
  EXPECT_EQ(st.state, (uint32_t)DRM_KILN_JOB_DONE);
  EXPECT_EQ(st.status, (uint32_t)KILN_STATUS_OK);
  EXPECT_EQ(st.error, 0);
  auto *p = static_cast<uint32_t *>(d.map(dst.handle, dst.size));
  ASSERT_NE(p, nullptr);
  for (int i = 0; i < 16384; i++) ASSERT_EQ(p[i], 0xdeadbeefu) << i;
  munmap(p, dst.size);
  auto *q = static_cast<uint32_t *>(d.map(dram.handle, dram.size));
  ASSERT_NE(q, nullptr);
  EXPECT_EQ(q[100], 0xdeadbeefu) << "DRAM visible through BAR2";
  munmap(q, dram.size);
  drm_kiln_ctx_status cs;
  ASSERT_EQ(d.ctx_status(ctx, &cs), 0);
  EXPECT_EQ(cs.submitted, 1u);
  EXPECT_EQ(cs.completed, 1u);
  for (auto b : {src, dram, dst}) d.gem_close(b.handle);
}

TEST_F(Kiln, SubmitSramRoundTrip) {
  Dev &d = *dev_;
  if (!d.param(DRM_KILN_PARAM_SRAM_SIZE)) GTEST_SKIP();
  uint32_t ctx = d.ctx();
  Bo sram = d.bo(8192, DRM_KILN_BO_SRAM), dst = d.bo(8192);
  Cmd c;
  c.fill(sram.va, 8192, 0x5a5a5a5a).copy(dst.va, sram.va, 8192);
  uint64_t s = run(d, ctx, c, {sram, dst});
  EXPECT_EQ(status(d, ctx, s).status, (uint32_t)KILN_STATUS_OK);
  auto *p = static_cast<uint32_t *>(d.map(dst.handle, dst.size));
  EXPECT_EQ(p[2047], 0x5a5a5a5au);
  munmap(p, dst.size);
  d.gem_close(sram.handle);
  d.gem_close(dst.handle);
}

// A context may have MAX_QUEUED_JOBS jobs submitted and not completed; the
// next SUBMIT is -EBUSY (an unprivileged process cannot queue unbounded
// kernel memory). Other contexts are not affected, and the context takes
// jobs again once its oldest ones completed.
TEST_F(Kiln, SubmitLimitsQueuedJobsPerContext) {
  Dev &d = *dev_;
  const uint64_t max = d.param(DRM_KILN_PARAM_MAX_QUEUED_JOBS);
  ASSERT_GE(max, 16u);
  ASSERT_LT(max, 1u << 20);
  // Different priorities: other's jobs must not queue behind ctx's WAIT.
  uint32_t ctx = d.ctx(DRM_KILN_PRIORITY_LOW, 60000), other = d.ctx(DRM_KILN_PRIORITY_HIGH);
  Bo sem = d.bo(4096), cb = d.bo(4096);
  auto *p = static_cast<uint8_t *>(d.map(cb.handle, cb.size));
  Cmd blocker, nop;
  blocker.wait(sem.va, 1, KILN_WAIT_GEQUAL);
  nop.nop();
  memcpy(p, blocker.data(), 64);
  memcpy(p + 64, nop.data(), 64);
  munmap(p, cb.size);
  std::vector<drm_kiln_bo_ref> refs{ref(cb, false), ref(sem, false)};
  uint32_t so = d.syncobj();
  ASSERT_EQ(d.submit(ctx, cb.va, 64, refs), 0);
  for (uint64_t i = 1; i < max; i++) ASSERT_EQ(d.submit(ctx, cb.va + 64, 64, refs, {sig(so)}), 0) << i;
  EXPECT_EQ(d.submit(ctx, cb.va + 64, 64, refs), -EBUSY);
  EXPECT_EQ(d.submit(ctx, cb.va + 64, 64, refs), -EBUSY) << "still full";
  drm_kiln_ctx_status st{};
  ASSERT_EQ(d.ctx_status(ctx, &st), 0);
  EXPECT_EQ(st.submitted, max) << "a refused SUBMIT uses no seqno";
  EXPECT_FALSE(st.flags & DRM_KILN_CTX_BANNED);
  drm_kiln_job_status js{};
  ASSERT_EQ(d.job_status(ctx, 1, &js), 0);
  EXPECT_EQ(js.state, uint32_t(DRM_KILN_JOB_PENDING)) << "the oldest pending record is kept";
  uint32_t oso = d.syncobj();
  ASSERT_EQ(d.submit(other, cb.va + 64, 64, refs, {sig(oso)}), 0) << "another context is not limited";
  EXPECT_EQ(d.syncobj_wait(oso, 20 * kSec), 0);
  // Release the blocker: everything drains and the context takes jobs again.
  auto *s = static_cast<uint64_t *>(d.map(sem.handle, sem.size));
  ASSERT_NE(s, nullptr);
  s[0] = 1;
  munmap(s, sem.size);
  ASSERT_EQ(d.syncobj_wait(so, 60 * kSec), 0);
  ASSERT_EQ(d.submit(ctx, cb.va + 64, 64, refs, {sig(so)}), 0);
  EXPECT_EQ(d.syncobj_wait(so, 20 * kSec), 0);
  ASSERT_EQ(d.ctx_status(ctx, &st), 0);
  EXPECT_EQ(st.submitted, max + 1);
  EXPECT_EQ(st.error_seqno, 0u);
  for (uint32_t h : {so, oso}) d.syncobj_destroy(h);
  for (auto x : {sem, cb}) d.gem_close(x.handle);
}

// First line of a sysfs file, "" if unreadable; and writing one.
static std::string slurp_line(const char *path) {
  std::ifstream f(path);
  std::string s;
  std::getline(f, s);
  return s;
}
static bool write_line(const char *path, const std::string &v) {
  std::ofstream f(path);
  f << v << "\n";
  f.flush();
  return bool(f);
}

// Host BOs are pinned at creation: a device lets them take at most
// HOST_MEM_LIMIT bytes (module parameter host_mem_percent of RAM). Beyond
// that BO_CREATE is -ENOSPC, a single BO larger than the limit -E2BIG, and
// freeing BOs makes room again. The test lowers the share to 5 % so that it
// pins ~100 MB of the guest rather than half of it.
TEST_F(Kiln, HostBoMemoryIsBounded) {
  Dev &d = *dev_;
  const char *knob = "/sys/module/kiln/parameters/host_mem_percent";
  const uint64_t ram = uint64_t(sysconf(_SC_PHYS_PAGES)) * uint64_t(sysconf(_SC_PAGESIZE));
  const uint64_t def = d.param(DRM_KILN_PARAM_HOST_MEM_LIMIT);
  EXPECT_NEAR(double(def) / double(ram), 0.5, 0.05) << "default: half of RAM";
  std::string old = slurp_line(knob);
  if (old.empty() || !write_line(knob, "5")) GTEST_SKIP() << "needs root to lower host_mem_percent";
  struct Restore {
    const char *knob;
    std::string v;
    ~Restore() { write_line(knob, v); }
  } restore{knob, old};
  const uint64_t limit = d.param(DRM_KILN_PARAM_HOST_MEM_LIMIT);
  ASSERT_NEAR(double(limit) / double(ram), 0.05, 0.01);
  Bo b;
  EXPECT_EQ(d.bo_create(limit + 4096, 0, &b), -E2BIG) << "never fits";
  // Fill up to the limit with 64 MiB BOs; the one that does not fit fails.
  const uint64_t used = d.param(DRM_KILN_PARAM_HOST_BO_BYTES), chunk = 16ull << 20;
  ASSERT_LT(used + chunk, limit) << "other host BOs use most of the limit";
  std::vector<Bo> held;
  int r = 0;
  while ((r = d.bo_create(chunk, 0, &b)) == 0) held.push_back(b);
  EXPECT_EQ(r, -ENOSPC);
  EXPECT_GT(held.size(), 0u);
  EXPECT_GT(d.param(DRM_KILN_PARAM_HOST_BO_BYTES) + chunk, limit);
  EXPECT_LE(d.param(DRM_KILN_PARAM_HOST_BO_BYTES), limit);
  Bo dram;
  EXPECT_EQ(d.bo_create(4096, DRM_KILN_BO_DRAM, &dram), 0) << "device memory is not host memory";
  d.gem_close(dram.handle);
  d.gem_close(held.back().handle);
  held.pop_back();
  EXPECT_EQ(d.bo_create(chunk, 0, &b), 0) << "freed memory can be used again";
  held.push_back(b);
  for (auto &x : held) d.gem_close(x.handle);
  EXPECT_EQ(d.param(DRM_KILN_PARAM_HOST_BO_BYTES), used);
}

TEST_F(Kiln, SubmitInvalid) {
  Dev &d = *dev_;
  uint32_t ctx = d.ctx();
  Bo cb = d.bo(8192);
  auto *p = d.map(cb.handle, cb.size);
  Cmd c;
  c.nop();
  memcpy(p, c.data(), c.size());
  munmap(p, cb.size);
  std::vector<drm_kiln_bo_ref> refs{ref(cb)};
  EXPECT_EQ(d.submit(ctx, cb.va, 64, refs), 0);
  EXPECT_EQ(d.submit(ctx + 100, cb.va, 64, refs), -ENOENT) << "unknown context";
  EXPECT_EQ(d.submit(ctx, cb.va + 8, 64, refs), -EINVAL) << "misaligned cmd_va";
  EXPECT_EQ(d.submit(ctx, cb.va, 0, refs), -EINVAL) << "empty";
  EXPECT_EQ(d.submit(ctx, cb.va, 100, refs), -EINVAL) << "not a packet multiple";
  EXPECT_EQ(d.submit(ctx, cb.va, KILN_INDIRECT_MAX_SIZE + 64, refs), -E2BIG);
  EXPECT_EQ(d.submit(ctx, cb.va + 8192 - 64, 128, refs), -EINVAL) << "runs past the BO";
  EXPECT_EQ(d.submit(ctx, cb.va + 1 * 1024 * 1024 * 1024ull, 64, refs), -EINVAL) << "unmapped";
  EXPECT_EQ(d.submit(ctx, cb.va, 64, {}), -EINVAL) << "no BOs";
  EXPECT_EQ(d.submit(ctx, cb.va, 64, {ref(cb), ref(cb)}), -EINVAL) << "duplicate BO";
  drm_kiln_bo_ref bad{};
  bad.handle = 9999;
  EXPECT_EQ(d.submit(ctx, cb.va, 64, {ref(cb), bad}), -ENOENT);
  drm_kiln_bo_ref badflags = ref(cb);
  badflags.flags = 0x80;
  EXPECT_EQ(d.submit(ctx, cb.va, 64, {badflags}), -EINVAL);
  std::vector<drm_kiln_bo_ref> many(d.param(DRM_KILN_PARAM_MAX_SUBMIT_BOS) + 1, ref(cb));
  EXPECT_EQ(d.submit(ctx, cb.va, 64, many), -E2BIG);
  drm_kiln_sync s0{};
  s0.handle = 1;
  EXPECT_EQ(d.submit(ctx, cb.va, 64, refs, {s0}), -EINVAL) << "sync without flags";
  EXPECT_EQ(d.submit(ctx, cb.va, 64, refs, {sig(4242)}), -ENOENT) << "bad syncobj";
  EXPECT_EQ(d.submit(ctx, cb.va, 64, refs, {waitfor(4242)}), -ENOENT);

  drm_kiln_submit s{};
  s.ctx_id = ctx;
  s.cmd_va = cb.va;
  s.cmd_size = 64;
  s.bos.ptr = reinterpret_cast<uintptr_t>(refs.data());
  s.bos.count = 1;
  s.bos.stride = sizeof(drm_kiln_bo_ref);
  s.pad = 1;
  EXPECT_EQ(xioctl(d.fd(), DRM_IOCTL_KILN_SUBMIT, &s), -EINVAL) << "pad MBZ";
  s.pad = 0;
  s.flags = ~DRM_KILN_SUBMIT_FLAGS;
  EXPECT_EQ(xioctl(d.fd(), DRM_IOCTL_KILN_SUBMIT, &s), -EINVAL) << "unknown flags";
  s.flags = 0;
  s.bos.stride = 0;
  EXPECT_EQ(xioctl(d.fd(), DRM_IOCTL_KILN_SUBMIT, &s), -EINVAL) << "stride 0";
  s.bos.stride = sizeof(drm_kiln_bo_ref);
  s.bos.ptr = 16;
  EXPECT_EQ(xioctl(d.fd(), DRM_IOCTL_KILN_SUBMIT, &s), -EFAULT) << "bad user pointer";
  // A bigger element with non-zero tail is refused, a zero tail accepted.
  struct {
    drm_kiln_bo_ref r;
    uint64_t extra;
  } ext[1] = {{ref(cb), 0}};
  s.bos.ptr = reinterpret_cast<uintptr_t>(ext);
  s.bos.stride = sizeof(ext[0]);
  EXPECT_EQ(xioctl(d.fd(), DRM_IOCTL_KILN_SUBMIT, &s), 0);
  ext[0].extra = 1;
  s.seqno = 0;
  EXPECT_EQ(xioctl(d.fd(), DRM_IOCTL_KILN_SUBMIT, &s), -E2BIG);

  EXPECT_EQ(d.bo_wait(cb.handle, 10 * kSec), 0);
  d.gem_close(cb.handle);
}

TEST_F(Kiln, JobStatusInvalid) {
  Dev &d = *dev_;
  uint32_t ctx = d.ctx();
  drm_kiln_job_status st;
  EXPECT_EQ(d.job_status(ctx, 0, &st), -EINVAL);
  EXPECT_EQ(d.job_status(ctx, 1, &st), -EINVAL) << "not yet submitted";
  EXPECT_EQ(d.job_status(ctx + 77, 1, &st), -ENOENT);
  st = {};
  st.ctx_id = ctx;
  st.seqno = 1;
  st.pad = 1;
  EXPECT_EQ(xioctl(d.fd(), DRM_IOCTL_KILN_JOB_STATUS, &st), -EINVAL);
}

TEST_F(Kiln, JobHistoryExpires) {
  Dev &d = *dev_;
  uint32_t ctx = d.ctx();
  Bo cb = d.bo(4096);
  auto *p = d.map(cb.handle, cb.size);
  Cmd c;
  c.nop();
  memcpy(p, c.data(), 64);
  munmap(p, cb.size);
  uint64_t s = 0;
  for (int i = 0; i < 300; i++) ASSERT_EQ(d.submit_wait(ctx, cb.va, 64, {ref(cb, false)}, {}, &s), 0);
  EXPECT_EQ(s, 300u);
  ASSERT_EQ(d.bo_wait(cb.handle, 30 * kSec), 0);
  drm_kiln_job_status st;
  ASSERT_EQ(d.job_status(ctx, 300, &st), 0);
  EXPECT_EQ(st.state, (uint32_t)DRM_KILN_JOB_DONE);
  ASSERT_EQ(d.job_status(ctx, 1, &st), 0);
  EXPECT_EQ(st.state, (uint32_t)DRM_KILN_JOB_EXPIRED);
  d.gem_close(cb.handle);
}

TEST_F(Kiln, OrderingOnOneContext) {
  // Later jobs observe earlier jobs' writes; a full ring blocks, never EBUSY
  // (the per-context limit of queued jobs does: submit_wait() waits it out).
  Dev &d = *dev_;
  uint32_t ctx = d.ctx();
  Bo buf = d.bo(4096);
  const int n = 600;  // more than a ring holds
  Bo cb = d.bo(n * 128);
  auto *p = static_cast<uint8_t *>(d.map(cb.handle, cb.size));
  for (int i = 0; i < n; i++) {
    Cmd c;
    c.wait(buf.va, uint64_t(i), KILN_WAIT_EQUAL).fence(buf.va, uint64_t(i + 1));
    memcpy(p + i * 128, c.data(), 128);
  }
  munmap(p, cb.size);
  for (int i = 0; i < n; i++)
    ASSERT_EQ(d.submit_wait(ctx, cb.va + i * 128, 128, {ref(cb, false), ref(buf)}), 0) << i;
  ASSERT_EQ(d.bo_wait(buf.handle, 60 * kSec), 0);
  auto *v = static_cast<uint64_t *>(d.map(buf.handle, buf.size));
  EXPECT_EQ(v[0], uint64_t(n));
  munmap(v, buf.size);
  drm_kiln_ctx_status cs;
  ASSERT_EQ(d.ctx_status(ctx, &cs), 0);
  EXPECT_EQ(cs.completed, uint64_t(n));
  EXPECT_EQ(cs.error_seqno, 0u);
  d.gem_close(buf.handle);
  d.gem_close(cb.handle);
}

TEST_F(Kiln, SyncobjBinaryAcrossQueues) {
  // ctx A (low priority) fills, ctx B (high priority, other queue) copies after it.
  Dev &d = *dev_;
  uint32_t a = d.ctx(DRM_KILN_PRIORITY_LOW), b = d.ctx(DRM_KILN_PRIORITY_HIGH);
  Bo src = d.bo(1 << 20), dst = d.bo(1 << 20), cb = d.bo(4096);
  auto *p = static_cast<uint8_t *>(d.map(cb.handle, cb.size));
  Cmd ca, cbm;
  ca.fill(src.va, 1 << 20, 0x01020304);
  cbm.copy(dst.va, src.va, 1 << 20);
  memcpy(p, ca.data(), 64);
  memcpy(p + 64, cbm.data(), 64);
  munmap(p, cb.size);
  uint32_t so = d.syncobj(), done = d.syncobj();
  // Explicit sync only: no implicit BO dependency between the two jobs (read refs).
  ASSERT_EQ(d.submit(a, cb.va, 64, {ref(cb, false), ref(src, false)}, {sig(so)}), 0);
  ASSERT_EQ(d.submit(b, cb.va + 64, 64, {ref(cb, false), ref(src, false), ref(dst, false)},
                     {waitfor(so), sig(done)}),
            0);
  ASSERT_EQ(d.syncobj_wait(done, 20 * kSec), 0);
  auto *q = static_cast<uint32_t *>(d.map(dst.handle, dst.size));
  EXPECT_EQ(q[0], 0x01020304u);
  EXPECT_EQ(q[(1 << 18) - 1], 0x01020304u);
  munmap(q, dst.size);
  for (auto x : {src, dst, cb}) d.gem_close(x.handle);
  d.syncobj_destroy(so);
  d.syncobj_destroy(done);
}

TEST_F(Kiln, TimelineDependenciesAcrossContexts) {
  Dev &d = *dev_;
  uint32_t a = d.ctx(DRM_KILN_PRIORITY_NORMAL), b = d.ctx(DRM_KILN_PRIORITY_LOW);
  Bo buf = d.bo(4096), cb = d.bo(4096);
  auto *p = static_cast<uint8_t *>(d.map(cb.handle, cb.size));
  Cmd c1, c2, c3;
  c1.fence(buf.va, 1);
  c2.wait(buf.va, 1, KILN_WAIT_EQUAL).fence(buf.va, 2);
  c3.wait(buf.va, 2, KILN_WAIT_EQUAL).fence(buf.va, 3);
  memcpy(p, c1.data(), 64);
  memcpy(p + 64, c2.data(), 128);
  memcpy(p + 192, c3.data(), 128);
  munmap(p, cb.size);
  uint32_t tl = d.syncobj();
  std::vector<drm_kiln_bo_ref> refs{ref(cb, false), ref(buf, false)};
  ASSERT_EQ(d.submit(a, cb.va, 64, refs, {sig(tl, 1)}), 0);
  ASSERT_EQ(d.submit(b, cb.va + 64, 128, refs, {waitfor(tl, 1), sig(tl, 2)}), 0);
  ASSERT_EQ(d.submit(a, cb.va + 192, 128, refs, {waitfor(tl, 2), sig(tl, 3)}), 0);
  ASSERT_EQ(d.syncobj_wait(tl, 20 * kSec, 3), 0);
  uint64_t point = 0;
  ASSERT_EQ(d.syncobj_query(tl, &point), 0);
  EXPECT_EQ(point, 3u);
  auto *v = static_cast<uint64_t *>(d.map(buf.handle, buf.size));
  EXPECT_EQ(v[0], 3u);
  munmap(v, buf.size);
  // Waiting on a point nobody submitted is refused.
  EXPECT_EQ(d.submit(a, cb.va, 64, refs, {waitfor(tl, 10)}), -EINVAL);
  d.syncobj_destroy(tl);
  d.gem_close(buf.handle);
  d.gem_close(cb.handle);
}

TEST_F(Kiln, WaitPacketCrossContextDependency) {
  // ctx A blocks in a WAIT until ctx B (another queue) writes the semaphore.
  Dev &d = *dev_;
  uint32_t a = d.ctx(DRM_KILN_PRIORITY_LOW), b = d.ctx(DRM_KILN_PRIORITY_HIGH);
  Bo sem = d.bo(4096), out = d.bo(4096), cb = d.bo(4096);
  auto *p = static_cast<uint8_t *>(d.map(cb.handle, cb.size));
  Cmd ca, cbm;
  ca.wait(sem.va, 7, KILN_WAIT_GEQUAL).fill(out.va, 4096, 0x77777777);
  cbm.fence(sem.va, 7);
  memcpy(p, ca.data(), 128);
  memcpy(p + 128, cbm.data(), 64);
  munmap(p, cb.size);
  uint32_t so = d.syncobj();
  ASSERT_EQ(d.submit(a, cb.va, 128, {ref(cb, false), ref(sem, false), ref(out, false)}, {sig(so)}), 0);
  usleep(100000);
  EXPECT_EQ(d.syncobj_wait(so, 1000), -ETIME) << "A must still be waiting";
  ASSERT_EQ(d.submit(b, cb.va + 128, 64, {ref(cb, false), ref(sem, false)}), 0);
  ASSERT_EQ(d.syncobj_wait(so, 20 * kSec), 0);
  auto *v = static_cast<uint32_t *>(d.map(out.handle, out.size));
  EXPECT_EQ(v[1023], 0x77777777u);
  munmap(v, out.size);
  d.syncobj_destroy(so);
  for (auto x : {sem, out, cb}) d.gem_close(x.handle);
}

TEST_F(Kiln, ImplicitSyncThroughBos) {
  Dev &d = *dev_;
  uint32_t a = d.ctx(DRM_KILN_PRIORITY_LOW), b = d.ctx(DRM_KILN_PRIORITY_HIGH);
  Bo buf = d.bo(4 << 20), out = d.bo(4 << 20), cb = d.bo(4096);
  auto *p = static_cast<uint8_t *>(d.map(cb.handle, cb.size));
  Cmd ca, cbm;
  ca.fill(buf.va, 4 << 20, 0xabcdabcd);
  cbm.copy(out.va, buf.va, 4 << 20);
  memcpy(p, ca.data(), 64);
  memcpy(p + 64, cbm.data(), 64);
  munmap(p, cb.size);
  ASSERT_EQ(d.submit(a, cb.va, 64, {ref(cb, false), ref(buf, true)}), 0);
  ASSERT_EQ(d.submit(b, cb.va + 64, 64, {ref(cb, false), ref(buf, false), ref(out, true)}), 0);
  ASSERT_EQ(d.bo_wait(out.handle, 20 * kSec), 0);
  auto *v = static_cast<uint32_t *>(d.map(out.handle, out.size));
  EXPECT_EQ(v[(1 << 20) - 1], 0xabcdabcdu);
  munmap(v, out.size);
  for (auto x : {buf, out, cb}) d.gem_close(x.handle);
}

// ---------------------------------------------------------------- faults

TEST_F(Kiln, BadPacketFailsJobOnly) {
  Dev &d = *dev_;
  uint32_t ctx = d.ctx();
  Bo buf = d.bo(4096);
  kiln_pkt_ctx_setup priv{};
  priv.header = KILN_PKT_HEADER(KILN_OP_CTX_SETUP, 0);
  Cmd c1;
  c1.nop().raw(&priv);
  uint64_t s = run(d, ctx, c1, {buf});
  auto st = status(d, ctx, s);
  EXPECT_EQ(st.status, (uint32_t)KILN_STATUS_PRIVILEGED);
  EXPECT_EQ(st.packet_index, 1u);
  EXPECT_EQ(st.error, -EIO);
  kiln_pkt_generic junk{};
  junk.header = 0x7f;
  Cmd c2;
  c2.raw(&junk);
  s = run(d, ctx, c2, {buf});
  EXPECT_EQ(status(d, ctx, s).status, (uint32_t)KILN_STATUS_BAD_PACKET);
  // The context still works and is not banned.
  Cmd ok;
  ok.fill(buf.va, 4096, 1);
  s = run(d, ctx, ok, {buf});
  EXPECT_EQ(status(d, ctx, s).status, (uint32_t)KILN_STATUS_OK);
  drm_kiln_ctx_status cs;
  ASSERT_EQ(d.ctx_status(ctx, &cs), 0);
  EXPECT_EQ(cs.flags & DRM_KILN_CTX_BANNED, 0u);
  EXPECT_EQ(cs.error_status, (uint32_t)KILN_STATUS_BAD_PACKET);
  d.gem_close(buf.handle);
}

// uAPI 1.4: the context's job-status ring, mapped read-only, holds the
// outcome JOB_STATUS reports; it is the caller's own context only.
TEST_F(Kiln, JobStatusRingMappedReadOnly) {
  Dev &d = *dev_;
  drm_kiln_ctx_create cc{};
  ASSERT_EQ(xioctl(d.fd(), DRM_IOCTL_KILN_CTX_CREATE, &cc), 0);
  ASSERT_NE(cc.status_size, 0u);
  ASSERT_EQ(cc.status_stride, sizeof(drm_kiln_job_record));
  EXPECT_EQ(cc.status_size / cc.status_stride, 256u);
  EXPECT_EQ(mmap(nullptr, cc.status_size, PROT_READ | PROT_WRITE, MAP_SHARED, d.fd(), off_t(cc.status_offset)),
            MAP_FAILED);
  EXPECT_EQ(errno, EPERM);
  void *m = mmap(nullptr, cc.status_size, PROT_READ, MAP_SHARED, d.fd(), off_t(cc.status_offset));
  ASSERT_NE(m, MAP_FAILED);
  EXPECT_NE(mprotect(m, cc.status_size, PROT_READ | PROT_WRITE), 0);  // never writable later either
  auto *ring = static_cast<const drm_kiln_job_record *>(m);
  Bo buf = d.bo(4096);
  Cmd bad;
  bad.fill(buf.va + 4096, 64, 0);  // the guard page: an MMU fault
  uint64_t s = run(d, cc.ctx_id, bad, {buf});
  const drm_kiln_job_record &r = ring[s % 256];
  EXPECT_EQ(r.seqno, s);
  EXPECT_EQ(r.state, (uint32_t)DRM_KILN_JOB_DONE);
  EXPECT_EQ(r.status, (uint32_t)KILN_STATUS_MMU_FAULT);
  EXPECT_EQ(r.error, -EIO);
  EXPECT_EQ(r.fault_addr, status(d, cc.ctx_id, s).fault_addr);
  Cmd ok;
  ok.fill(buf.va, 4096, 1);
  s = run(d, cc.ctx_id, ok, {buf});
  EXPECT_EQ(ring[s % 256].status, (uint32_t)KILN_STATUS_OK);
  EXPECT_GT(ring[s % 256].cycles, 0u);
  // Another file cannot map this file's ring, and bad offsets are refused.
  Dev other;
  EXPECT_EQ(mmap(nullptr, 4096, PROT_READ, MAP_SHARED, other.fd(), off_t(cc.status_offset)), MAP_FAILED);
  EXPECT_EQ(mmap(nullptr, 4096, PROT_READ, MAP_SHARED, d.fd(), off_t(cc.status_offset + 4096)), MAP_FAILED);
  // The mapping outlives the context.
  EXPECT_EQ(d.ctx_destroy(cc.ctx_id), 0);
  EXPECT_EQ(ring[s % 256].seqno, s);
  munmap(m, cc.status_size);
  d.gem_close(buf.handle);
}

TEST_F(Kiln, MmuFaultReportsAddress) {
  Dev &d = *dev_;
  uint32_t ctx = d.ctx();
  Bo buf = d.bo(4096);
  uint64_t hole = buf.va + 4096;  // guard page after every BO
  Cmd c;
  c.fill(hole, 64, 0);
  uint64_t s = run(d, ctx, c, {buf});
  auto st = status(d, ctx, s);
  EXPECT_EQ(st.status, (uint32_t)KILN_STATUS_MMU_FAULT);
  EXPECT_EQ(st.fault_addr & ~0xfffull, hole);
  EXPECT_TRUE(st.fault_access & KILN_ACCESS_WRITE);
  EXPECT_EQ(st.fault_reason, (uint32_t)KILN_MMU_FAULT_NOT_PRESENT);
  drm_kiln_ctx_status cs;
  ASSERT_EQ(d.ctx_status(ctx, &cs), 0);
  EXPECT_EQ(cs.fault_addr & ~0xfffull, hole);
  EXPECT_EQ(cs.error_seqno, s);
  d.gem_close(buf.handle);
}

TEST_F(Kiln, ReadOnlyBoCannotBeWritten) {
  Dev &d = *dev_;
  uint32_t ctx = d.ctx();
  Bo ro = d.bo(4096, DRM_KILN_BO_READ_ONLY), rw = d.bo(4096);
  Cmd c;
  c.copy(rw.va, ro.va, 4096);
  EXPECT_EQ(status(d, ctx, run(d, ctx, c, {ro, rw})).status, (uint32_t)KILN_STATUS_OK);
  Cmd w;
  w.fill(ro.va, 4096, 5);
  auto st = status(d, ctx, run(d, ctx, w, {ro}));
  EXPECT_EQ(st.status, (uint32_t)KILN_STATUS_MMU_FAULT);
  EXPECT_EQ(st.fault_reason, (uint32_t)KILN_MMU_FAULT_PERMISSION);
  d.gem_close(ro.handle);
  d.gem_close(rw.handle);
}

TEST_F(Kiln, MmuIsolationBetweenFiles) {
  // File B's BO VA means nothing in file A's address space.
  Dev &a = *dev_;
  Dev b;
  Bo secret = b.bo(4096);
  auto *sp = static_cast<uint32_t *>(b.map(secret.handle, secret.size));
  sp[0] = 0x5ec7e7;
  Bo mine = a.bo(4096);
  uint32_t ctx = a.ctx();
  uint64_t target = secret.va;
  bool collides = target >= mine.va && target < mine.va + 8192;
  if (collides) target = mine.va + (1ull << 30);  // both files start at VA_START
  Cmd rd, wr;
  rd.copy(mine.va, target, 64);
  wr.fill(target, 64, 0xbad);
  auto st = status(a, ctx, run(a, ctx, rd, {mine}));
  EXPECT_EQ(st.status, (uint32_t)KILN_STATUS_MMU_FAULT);
  st = status(a, ctx, run(a, ctx, wr, {mine}));
  EXPECT_EQ(st.status, (uint32_t)KILN_STATUS_MMU_FAULT);
  EXPECT_EQ(sp[0], 0x5ec7e7u) << "B's memory untouched";
  munmap(sp, secret.size);
  b.gem_close(secret.handle);
  a.gem_close(mine.handle);
}

TEST_F(Kiln, UnmappedAfterCloseFaults) {
  Dev &d = *dev_;
  uint32_t ctx = d.ctx();
  Bo gone = d.bo(4096), buf = d.bo(4096);
  uint64_t va = gone.va;
  d.gem_close(gone.handle);
  Cmd c;
  c.copy(buf.va, va, 64);
  EXPECT_EQ(status(d, ctx, run(d, ctx, c, {buf})).status, (uint32_t)KILN_STATUS_MMU_FAULT);
  d.gem_close(buf.handle);
}

// ---------------------------------------------------------------- hangs

TEST_F(Kiln, HangRecoveryBansGuiltyOnly) {
  Dev &d = *dev_;
  uint32_t bad = d.ctx(DRM_KILN_PRIORITY_NORMAL, 300);
  uint32_t good = d.ctx(DRM_KILN_PRIORITY_NORMAL);
  uint32_t other_q = d.ctx(DRM_KILN_PRIORITY_HIGH);
  Bo sem = d.bo(4096), buf = d.bo(4096);
  Cmd hang;
  hang.wait(sem.va, 1, KILN_WAIT_EQUAL);  // nobody ever writes 1
  uint64_t s = run(d, bad, hang, {sem});
  ASSERT_EQ(s, 1u);
  auto st = status(d, bad, s);
  EXPECT_EQ(st.state, (uint32_t)DRM_KILN_JOB_DONE);
  EXPECT_EQ(st.error, -ETIMEDOUT);
  drm_kiln_ctx_status cs;
  ASSERT_EQ(d.ctx_status(bad, &cs), 0);
  EXPECT_TRUE(cs.flags & DRM_KILN_CTX_BANNED);
  // Banned context refuses work; the others keep going.
  int err = 0;
  Cmd ok;
  ok.fill(buf.va, 4096, 9);
  EXPECT_EQ(run(d, bad, ok, {buf}, &err), 0u);
  EXPECT_EQ(err, -EIO);
  EXPECT_EQ(status(d, good, run(d, good, ok, {buf})).status, (uint32_t)KILN_STATUS_OK);
  EXPECT_EQ(status(d, other_q, run(d, other_q, ok, {buf})).status, (uint32_t)KILN_STATUS_OK);
  uint32_t fresh = d.ctx(DRM_KILN_PRIORITY_NORMAL);
  EXPECT_EQ(status(d, fresh, run(d, fresh, ok, {buf})).status, (uint32_t)KILN_STATUS_OK);
  d.gem_close(sem.handle);
  d.gem_close(buf.handle);
}

TEST_F(Kiln, HangInnocentJobBehindItSurvives) {
  // A job of another context queued behind the hang on the same queue completes.
  Dev &d = *dev_;
  uint32_t bad = d.ctx(DRM_KILN_PRIORITY_LOW, 300);
  uint32_t innocent = d.ctx(DRM_KILN_PRIORITY_LOW);
  Bo sem = d.bo(4096), buf = d.bo(4096), cb = d.bo(4096);
  auto *p = static_cast<uint8_t *>(d.map(cb.handle, cb.size));
  Cmd hang, ok;
  hang.wait(sem.va, 1, KILN_WAIT_EQUAL);
  ok.fill(buf.va, 4096, 0x11111111);
  memcpy(p, hang.data(), 64);
  memcpy(p + 64, ok.data(), 64);
  munmap(p, cb.size);
  uint32_t s1 = d.syncobj(), s2 = d.syncobj();
  ASSERT_EQ(d.submit(bad, cb.va, 64, {ref(cb, false), ref(sem, false)}, {sig(s1)}), 0);
  ASSERT_EQ(d.submit(innocent, cb.va + 64, 64, {ref(cb, false), ref(buf, false)}, {sig(s2)}), 0);
  EXPECT_EQ(d.syncobj_wait(s2, 30 * kSec), 0);
  EXPECT_EQ(d.syncobj_wait(s1, 30 * kSec), 0);
  auto st = status(d, innocent, 1);
  EXPECT_EQ(st.status, (uint32_t)KILN_STATUS_OK);
  EXPECT_EQ(st.error, 0);
  EXPECT_EQ(status(d, bad, 1).error, -ETIMEDOUT);
  auto *v = static_cast<uint32_t *>(d.map(buf.handle, buf.size));
  EXPECT_EQ(v[0], 0x11111111u);
  munmap(v, buf.size);
  d.syncobj_destroy(s1);
  d.syncobj_destroy(s2);
  for (auto x : {sem, buf, cb}) d.gem_close(x.handle);
}

static std::string debugfs_dir() {
  char link[256];
  ssize_t n = readlink("/sys/class/accel/accel0/device", link, sizeof(link) - 1);
  if (n <= 0) return "";
  link[n] = 0;
  std::string s(link);
  return "/sys/kernel/debug/accel/" + s.substr(s.rfind('/') + 1);
}

TEST_F(Kiln, ForcedDeviceResetKeepsContextsUsable) {
  Dev &d = *dev_;
  std::string dir = debugfs_dir();
  if (access((dir + "/force_reset").c_str(), W_OK) != 0) GTEST_SKIP() << "no debugfs";
  uint32_t ctx = d.ctx();
  Bo buf = d.bo(4096);
  uint64_t resets = d.param(DRM_KILN_PARAM_RESET_COUNT);
  {
    std::ofstream f(dir + "/force_reset");
    f << "1";
  }
  EXPECT_EQ(d.param(DRM_KILN_PARAM_RESET_COUNT), resets + 1);
  std::ifstream rc("/sys/class/accel/accel0/device/kiln/reset_count");
  uint64_t sysfs_resets = 0;
  rc >> sysfs_resets;
  EXPECT_EQ(sysfs_resets, resets + 1);
  Cmd ok;
  ok.fill(buf.va, 4096, 3);
  EXPECT_EQ(status(d, ctx, run(d, ctx, ok, {buf})).status, (uint32_t)KILN_STATUS_OK);
  d.gem_close(buf.handle);
}

// ---------------------------------------------------------------- sharing

TEST_F(Kiln, PrimeSameDeviceTwoFiles) {
  Dev &a = *dev_;
  Dev b;
  Bo bo = a.bo(8192);
  EXPECT_EQ(fill_through_import(a, bo, b, 0, 8192, 0x600d600d), (uint32_t)KILN_STATUS_OK);
  auto *p = static_cast<uint32_t *>(a.map(bo.handle, bo.size));
  EXPECT_EQ(p[2047], 0x600d600du);
  munmap(p, bo.size);
  a.gem_close(bo.handle);
}

TEST_F(Kiln, PrimeTwoProcesses) {
  Dev &a = *dev_;
  Bo bo = a.bo(4096);
  auto *p = static_cast<uint32_t *>(a.map(bo.handle, bo.size));
  p[0] = 1234;
  int fd = -1;
  ASSERT_EQ(a.prime_export(bo.handle, &fd), 0);
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    int rc = 0;
    {
      Dev c;
      uint32_t h = 0;
      drm_kiln_bo_info info;
      if (!c.ok() || c.prime_import(fd, &h) || c.bo_info(h, &info)) _exit(10);
      auto *q = static_cast<uint32_t *>(c.map(h, 4096));
      if (!q || q[0] != 1234) rc = 11;
      uint32_t ctx = c.ctx();
      Cmd cmd;
      cmd.fill(info.va + 64, 64, 0xc0ffee);
      Bo cb = c.bo(4096);
      auto *cp = c.map(cb.handle, 4096);
      memcpy(cp, cmd.data(), 64);
      uint32_t so = c.syncobj();
      if (c.submit(ctx, cb.va, 64, {ref(cb, false), drm_kiln_bo_ref{h, DRM_KILN_BO_REF_WRITE}}, {sig(so)}) ||
          c.syncobj_wait(so, 20 * kSec))
        rc = 12;
      if (q && q[16] != 0xc0ffee) rc = 13;
    }
    _exit(rc);
  }
  int ws = 0;
  ASSERT_EQ(waitpid(pid, &ws, 0), pid);
  ASSERT_TRUE(WIFEXITED(ws));
  EXPECT_EQ(WEXITSTATUS(ws), 0);
  EXPECT_EQ(p[16], 0xc0ffeeu) << "child's device write visible to the parent";
  munmap(p, bo.size);
  close(fd);
  a.gem_close(bo.handle);
}

TEST_F(Kiln, PrimeAcrossDevices) {
  // Host BO of device 0 imported by device 1 (dma-buf attach, DMA-mapped for it).
  if (access(accel_node(1).c_str(), F_OK) != 0) GTEST_SKIP() << "needs two devices (--devices 2)";
  Dev &a = *dev_;
  Dev b(open_dev(1));
  ASSERT_TRUE(b.ok());
  Bo bo = a.bo(16384);
  EXPECT_EQ(fill_through_import(a, bo, b, 0, 16384, 0xd1d1d1d1), (uint32_t)KILN_STATUS_OK);
  auto *p = static_cast<uint32_t *>(a.map(bo.handle, bo.size));
  EXPECT_EQ(p[4095], 0xd1d1d1d1u);
  munmap(p, bo.size);
  // SRAM has no BAR: another device cannot attach it.
  Bo sram = a.bo(4096, DRM_KILN_BO_SRAM);
  EXPECT_EQ(fill_through_import(a, sram, b, 0, 4096, 0), kImportFailed);
  a.gem_close(sram.handle);
  a.gem_close(bo.handle);
}

TEST_F(Kiln, PrimePeerDram) {
  // Device 0's DRAM imported by device 1 (kiln.p2p=2: the guest's PCI core does not know
  // that q35 routes peer DMA); device 1's fill lands in device 0's DRAM through BAR2.
  if (access(accel_node(1).c_str(), F_OK) != 0) GTEST_SKIP() << "needs two devices (--devices 2)";
  kiln_test::ModuleParam p2p("p2p");
  if (!p2p.writable()) GTEST_SKIP() << "cannot write " << p2p.path();
  ASSERT_TRUE(p2p.set("2"));
  Dev &a = *dev_;
  Dev b(open_dev(1));
  ASSERT_TRUE(b.ok());
  Bo dram = a.bo(65536, DRM_KILN_BO_DRAM);
  EXPECT_EQ(fill_through_import(a, dram, b, 4096, 8192, 0xc0ffee11), (uint32_t)KILN_STATUS_OK);
  auto *p = static_cast<uint32_t *>(a.map(dram.handle, dram.size));
  EXPECT_EQ(p[1023], 0u);
  EXPECT_EQ(p[1024], 0xc0ffee11u);
  EXPECT_EQ(p[3071], 0xc0ffee11u);
  EXPECT_EQ(p[3072], 0u);
  munmap(p, dram.size);
  // kiln.p2p=0 refuses a new attachment.
  ASSERT_TRUE(p2p.set("0"));
  EXPECT_EQ(fill_through_import(a, dram, b, 0, 4096, 0), kImportFailed);
  a.gem_close(dram.handle);
}

TEST_F(Kiln, ManyFilesAndThreads) {
  std::vector<std::thread> ts;
  std::atomic<int> failures{0};
  for (int t = 0; t < 4; t++) {
    ts.emplace_back([&, t] {
      Dev d;
      uint32_t ctx = d.ctx(t % 4 == 3 ? DRM_KILN_PRIORITY_HIGH : t % 3);
      Bo buf = d.bo(16384);
      for (int i = 0; i < 20; i++) {
        Cmd c;
        c.fill(buf.va, 16384, uint32_t(t * 100 + i));
        if (status(d, ctx, run(d, ctx, c, {buf})).status != KILN_STATUS_OK) failures++;
      }
      auto *p = static_cast<uint32_t *>(d.map(buf.handle, buf.size));
      if (p[4095] != uint32_t(t * 100 + 19)) failures++;
      munmap(p, buf.size);
    });
  }
  for (auto &t : ts) t.join();
  EXPECT_EQ(failures.load(), 0);
}

TEST_F(Kiln, CloseWithJobsInFlight) {
  {
    Dev d;
    uint32_t ctx = d.ctx();
    Bo buf = d.bo(1 << 20), cb = d.bo(4096);
    auto *p = d.map(cb.handle, cb.size);
    Cmd c;
    c.fill(buf.va, 1 << 20, 7);
    memcpy(p, c.data(), 64);
    munmap(p, cb.size);
    for (int i = 0; i < 50; i++) ASSERT_EQ(d.submit(ctx, cb.va, 64, {ref(cb, false), ref(buf)}), 0);
  }  // closed without waiting: the driver drains
}

// A process killed with a long backlog gives its work up: its queued jobs are
// dropped and those in the ring fail, instead of all of them running in its
// exit path (GEM close waits for the BOs' fences before postclose).
TEST_F(Kiln, KilledProcessDoesNotRunItsBacklog) {
  auto packets = [&]() -> uint64_t {
    drm_kiln_telemetry t{};
    drm_kiln_query_info q{};
    q.type = DRM_KILN_QUERY_TELEMETRY;
    q.ptr = reinterpret_cast<uintptr_t>(&t);
    q.size = sizeof(t);
    return xioctl(probe_->fd(), DRM_IOCTL_KILN_QUERY_INFO, &q) ? ~0ull : t.packets;
  };
  if (packets() == ~0ull) GTEST_SKIP() << "no telemetry";
  // Spread over contexts: one context may queue only MAX_QUEUED_JOBS, one file MAX_FILE_JOBS.
  constexpr int kJobs = 1000, kFills = 8, kCtxs = 10;
  static_assert(kJobs / kCtxs <= 256);
  ASSERT_GE(probe_->param(DRM_KILN_PARAM_MAX_FILE_JOBS), uint64_t(kJobs));
  int pfd[2];
  ASSERT_EQ(pipe(pfd), 0);
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    Dev d;
    uint32_t ctx[kCtxs] = {};
    for (auto &c : ctx)
      if (!d.ok() || d.ctx_create(&c)) _exit(10);
    Bo buf, cb;
    if (d.bo_create(4 << 20, 0, &buf) || d.bo_create(4096, 0, &cb)) _exit(11);
    Cmd c;
    for (int i = 0; i < kFills; i++) c.fill(buf.va, 4 << 20, uint32_t(i));
    auto *p = d.map(cb.handle, cb.size);
    if (!p) _exit(12);
    memcpy(p, c.data(), c.size());
    munmap(p, cb.size);
    for (int i = 0; i < kJobs; i++)
      if (d.submit(ctx[i % kCtxs], cb.va, c.size(), {ref(cb, false), ref(buf)})) _exit(13);
    char x = 1;
    if (write(pfd[1], &x, 1) != 1) _exit(14);
    for (;;) pause();
  }
  close(pfd[1]);
  char x = 0;
  ASSERT_EQ(read(pfd[0], &x, 1), 1) << "child failed to queue its jobs";
  close(pfd[0]);
  uint64_t before = packets();
  uint64_t t0 = now_ns();
  kill(pid, SIGKILL);
  int ws = 0;
  ASSERT_EQ(waitpid(pid, &ws, 0), pid);
  double secs = double(now_ns() - t0) / 1e9;
  uint64_t ran = packets() - before;
  printf("killed with %d jobs queued: exit took %.2f s, %llu packets ran afterwards\n", kJobs, secs,
         (unsigned long long)ran);
  EXPECT_TRUE(WIFSIGNALED(ws));
  // Running the backlog would be kJobs * (kFills + 2) packets.
  EXPECT_LT(ran, uint64_t(kJobs) * (kFills + 2) / 4);
}

// ---------------------------------------------------------------- privileges

// ---------------------------------------------------------------- runtime PM

// Idle for the autosuspend delay, the device goes to D3hot; a job brings it
// back to D0 and runs correctly; then it sleeps again.
TEST_F(Kiln, RuntimeSuspendWhenIdleResumeOnSubmit) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root (power/autosuspend_delay_ms)";
  RuntimePm pm(50);
  ASSERT_TRUE(pm.ok()) << RuntimePm::dir() << ": no runtime PM";
  Dev &d = *dev_;
  uint32_t ctx = d.ctx();
  Bo dram = d.bo(65536, DRM_KILN_BO_DRAM | DRM_KILN_BO_NO_MMAP), host = d.bo(65536);
  ASSERT_TRUE(RuntimePm::wait_for("suspended", 5000)) << "still " << RuntimePm::status() << " after 5 s idle";
  EXPECT_EQ(RuntimePm::pci_power_state(), 3) << "runtime suspended but not in D3hot";
  const uint64_t slept0 = RuntimePm::suspended_ms();
  for (uint32_t round = 0; round < 3; round++) {
    ASSERT_TRUE(RuntimePm::wait_for("suspended", 5000)) << "round " << round;
    Cmd c;
    const uint32_t pat = 0x0d3d0000u + round;
    c.fill(dram.va, dram.size, pat).copy(host.va, dram.va, host.size);
    uint64_t s = run(d, ctx, c, {dram, host});
    ASSERT_NE(s, 0u);
    EXPECT_EQ(status(d, ctx, s).status, (uint32_t)KILN_STATUS_OK);
    auto *p = static_cast<uint32_t *>(d.map(host.handle, host.size));
    ASSERT_NE(p, nullptr);
    EXPECT_EQ(p[0], pat);
    EXPECT_EQ(p[host.size / 4 - 1], pat);
    munmap(p, host.size);
  }
  ASSERT_TRUE(RuntimePm::wait_for("suspended", 5000));
  EXPECT_GT(RuntimePm::suspended_ms(), slept0);
  d.gem_close(dram.handle);
  d.gem_close(host.handle);
}

// A CPU mapping of device DRAM goes through BAR2, which is off in D3hot: while
// one exists the device stays in D0, and what was written through it reads back.
TEST_F(Kiln, MappedDeviceMemoryKeepsDeviceAwake) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root (power/autosuspend_delay_ms)";
  RuntimePm pm(20);
  ASSERT_TRUE(pm.ok());
  Dev &d = *dev_;
  Bo dram = d.bo(1 << 20, DRM_KILN_BO_DRAM);
  ASSERT_TRUE(RuntimePm::wait_for("suspended", 5000));
  auto *p = static_cast<uint64_t *>(d.map(dram.handle, dram.size));
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(RuntimePm::status(), "active") << "mmap did not wake the device";
  for (uint64_t i = 0; i < dram.size / 8; i++) p[i] = i * 0x9e3779b97f4a7c15ull;
  usleep(300000);  // 15 delays
  EXPECT_EQ(RuntimePm::status(), "active") << "suspended under a live BAR mapping";
  // A child's copy of the mapping (vm_ops open) holds the device as well.
  pid_t pid = fork();
  if (pid == 0) {
    usleep(100000);
    _exit(p[12345] == 12345 * 0x9e3779b97f4a7c15ull ? 0 : 1);
  }
  munmap(p, dram.size);
  usleep(50000);
  EXPECT_EQ(RuntimePm::status(), "active") << "suspended under the child's mapping";
  int st = 0;
  ASSERT_EQ(waitpid(pid, &st, 0), pid);
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << "child read wrong data through its mapping";
  ASSERT_TRUE(RuntimePm::wait_for("suspended", 5000)) << "no suspend once the mappings were gone";
  p = static_cast<uint64_t *>(d.map(dram.handle, dram.size));
  ASSERT_NE(p, nullptr);
  bool same = true;
  for (uint64_t i = 0; i < dram.size / 8; i++) same &= p[i] == i * 0x9e3779b97f4a7c15ull;
  EXPECT_TRUE(same) << "device DRAM lost its contents in D3hot";
  munmap(p, dram.size);
  d.gem_close(dram.handle);
}

// Jobs submitted around the autosuspend delay, from two threads, with idle
// gaps on both sides of it: each one runs correctly, whether it found the
// device asleep, falling asleep, or awake.
TEST_F(Kiln, JobsAcrossRuntimeSuspend) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root (power/autosuspend_delay_ms)";
  RuntimePm pm(10);
  ASSERT_TRUE(pm.ok());
  std::atomic<uint32_t> wrong{0}, asleep{0};
  auto worker = [&](uint32_t seed) {
    Dev d;
    uint32_t ctx = d.ctx();
    Bo dram = d.bo(16384, DRM_KILN_BO_DRAM | DRM_KILN_BO_NO_MMAP), host = d.bo(16384);
    auto *p = static_cast<uint32_t *>(d.map(host.handle, host.size));
    uint32_t x = seed;
    for (int i = 0; i < 12; i++) {
      x = x * 1664525u + 1013904223u;
      usleep((x >> 8) % 40000);  // 0 to 4 delays
      if (RuntimePm::status() != "active") asleep++;
      Cmd c;
      c.fill(dram.va, dram.size, x).copy(host.va, dram.va, host.size);
      uint64_t s = run(d, ctx, c, {dram, host});
      if (!s || status(d, ctx, s).status != KILN_STATUS_OK || !p || p[0] != x || p[4095] != x) wrong++;
    }
    if (p) munmap(p, host.size);
    d.gem_close(dram.handle);
    d.gem_close(host.handle);
  };
  std::thread a(worker, 1), b(worker, 2);
  a.join();
  b.join();
  printf("24 jobs, %u found the device asleep or falling asleep\n", asleep.load());
  EXPECT_EQ(wrong.load(), 0u);
  EXPECT_GE(asleep.load(), 3u) << "the device hardly ever slept between jobs";
}

TEST(KilnUnprivileged, OpenThroughRenderGroup) {
  if (access(accel_node().c_str(), F_OK) != 0) GTEST_SKIP() << "no device";
  if (geteuid() == 0) GTEST_SKIP() << "run as root; the harness runs this as uid 1000";
  Dev d;
  ASSERT_TRUE(d.ok()) << strerror(errno);
  Bo b = d.bo(4096);
  uint32_t ctx = d.ctx();
  uint32_t rt = 0;
  EXPECT_EQ(d.ctx_create(&rt, DRM_KILN_PRIORITY_REALTIME), -EPERM);
  Cmd c;
  c.fill(b.va, 4096, 1);
  Bo cb = d.bo(4096);
  auto *p = d.map(cb.handle, cb.size);
  memcpy(p, c.data(), 64);
  munmap(p, 4096);
  uint32_t so = d.syncobj();
  ASSERT_EQ(d.submit(ctx, cb.va, 64, {ref(cb, false), ref(b)}, {sig(so)}), 0);
  EXPECT_EQ(d.syncobj_wait(so, 20 * kSec), 0);
  // debugfs and force_reset are root only
  EXPECT_NE(access((debugfs_dir() + "/force_reset").c_str(), W_OK), 0);
}

static std::string module_path() {
  std::ifstream f("/proc/sys/kernel/osrelease");
  std::string r;
  f >> r;
  return "/lib/modules/" + r + "/kiln.ko";
}

// kiln-vm loaded kiln.ko with the parameters in /etc/kiln/modules (e.g. p2p=2): reload it
// the same way, so the tests that run after a reload see the same driver.
static std::string insmod_command() {
  std::string path = module_path(), params;
  std::ifstream m("/etc/kiln/modules");
  for (std::string line; std::getline(m, line);)
    if (line.rfind(path, 0) == 0) params = line.substr(path.size());
  return "insmod " + path + params;
}

// rmmod, retried while the release work of the last jobs finishes.
static bool unload_module() {
  for (int i = 0; i < 50; i++, usleep(100000))
    if (system("rmmod kiln 2>/dev/null") == 0) return true;
  return false;
}

static bool load_module() {
  if (system(insmod_command().c_str()) != 0) return false;
  for (int i = 0; i < 50 && access(accel_node().c_str(), F_OK) != 0; i++) usleep(100000);
  return access(accel_node().c_str(), F_OK) == 0;
}

// Runs late (gtest keeps declaration order): a syncobj, a sync_file or a
// dma-buf of a finished job, held after the device file is closed, keeps
// the module loaded (their ops are its code), stays usable, and lets it go
// once closed.
TEST(KilnZModule, FencesPinTheModule) {
  if (access(accel_node().c_str(), F_OK) != 0) GTEST_SKIP() << "no device";
  if (geteuid() != 0) GTEST_SKIP() << "needs root";
  if (access(module_path().c_str(), R_OK) != 0) GTEST_SKIP() << module_path() << " missing";
  for (const char *what : {"syncobj", "sync_file", "dma-buf"}) {
    int held = -1;
    {
      Dev d;
      ASSERT_TRUE(d.ok());
      uint32_t ctx = d.ctx();
      Bo b = d.bo(4096), cb = d.bo(4096);
      Cmd c;
      c.fill(b.va, 4096, 0xf00d);
      auto *p = d.map(cb.handle, 4096);
      memcpy(p, c.data(), 64);
      munmap(p, 4096);
      uint32_t so = d.syncobj();
      ASSERT_EQ(d.submit(ctx, cb.va, 64, {ref(cb, false), ref(b)}, {sig(so)}), 0);
      ASSERT_EQ(d.syncobj_wait(so, 20 * kSec), 0);
      if (std::string(what) == "dma-buf") {
        ASSERT_EQ(d.prime_export(b.handle, &held), 0);
      } else {
        drm_syncobj_handle h{};
        h.handle = so;
        if (std::string(what) == "sync_file") h.flags = DRM_SYNCOBJ_HANDLE_TO_FD_FLAGS_EXPORT_SYNC_FILE;
        ASSERT_EQ(xioctl(d.fd(), DRM_IOCTL_SYNCOBJ_HANDLE_TO_FD, &h), 0);
        held = h.fd;
      }
    }
    usleep(500000);  // the jobs' own references are gone by now
    EXPECT_NE(system("rmmod kiln 2>/dev/null"), 0) << "rmmod succeeded while a " << what << " was held";
    if (std::string(what) == "sync_file") {
      sync_fence_info fi{};
      sync_file_info info{};
      info.num_fences = 1;
      info.sync_fence_info = reinterpret_cast<uintptr_t>(&fi);
      EXPECT_EQ(ioctl(held, SYNC_IOC_FILE_INFO, &info), 0);
      EXPECT_STREQ(fi.driver_name, "kiln");
      EXPECT_EQ(info.status, 1);
    }
    close(held);
    ASSERT_TRUE(unload_module()) << "module still referenced after the " << what << " was closed";
    ASSERT_TRUE(load_module());
  }
}

// Runs last: unload and reload the module.
TEST(KilnZModule, UnloadReload) {
  if (access(accel_node().c_str(), F_OK) != 0) GTEST_SKIP() << "no device";
  if (geteuid() != 0) GTEST_SKIP() << "needs root";
  std::string ko = module_path();
  if (access(ko.c_str(), R_OK) != 0) GTEST_SKIP() << ko << " missing";
  for (int round = 0; round < 2; round++) {
    ASSERT_EQ(system("rmmod kiln"), 0) << "module still referenced (leaked file, BO or dma-buf?)";
    ASSERT_NE(access(accel_node().c_str(), F_OK), 0);
    ASSERT_EQ(system(insmod_command().c_str()), 0);
    for (int i = 0; i < 50 && access(accel_node().c_str(), F_OK) != 0; i++) usleep(100000);
    Dev d;
    ASSERT_TRUE(d.ok());
    Bo b = d.bo(4096);
    uint32_t ctx = d.ctx();
    Bo cb = d.bo(4096);
    Cmd c;
    c.fill(b.va, 4096, 0x1eaf);
    auto *p = d.map(cb.handle, 4096);
    memcpy(p, c.data(), 64);
    munmap(p, 4096);
    uint32_t so = d.syncobj();
    ASSERT_EQ(d.submit(ctx, cb.va, 64, {ref(cb, false), ref(b)}, {sig(so)}), 0);
    ASSERT_EQ(d.syncobj_wait(so, 20 * kSec), 0);
    EXPECT_EQ(d.param(DRM_KILN_PARAM_BO_COUNT), 2u);
  }
}

}  // namespace
