// SPDX-License-Identifier: MIT
// libkiln against the fake driver: argument validation, lifetimes, error
// mapping, queues, events, command lists, thread safety.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <kiln/hw/kiln_isa.h>
#include <kiln/hw/kiln_mmu.h>

#include <atomic>
#include <cerrno>
#include <kiln/hw/kiln_isa.h>
#include <kiln/kiln.hpp>
#include <numeric>
#include <thread>

#include "encoder.hpp"
#include "fake_driver.hpp"
#include "internal.hpp"
#include "kbin_builder.hpp"

using namespace kiln;
using namespace std::chrono_literals;
using kiln::detail::FakeDriver;

namespace {

struct Fx : ::testing::Test {
  std::shared_ptr<FakeDriver> drv = std::make_shared<FakeDriver>();
  Device dev = detail::HandleAccess::device(drv);

  Module vadd_module() {
    test::KbinBuilder b;
    auto img = b.build();
    return dev.load(img, "vadd.kbin");
  }
  // LAUNCH hook for the builder's vadd(a, b, n): b[i] = 2 * a[i].
  void install_vadd() {
    drv->set_launch_hook([](const kiln_pkt_launch& p, FakeDriver& d) {
      auto args = d.memory(p.args_va, p.args_size);
      uint64_t a, b;
      uint32_t n;
      std::memcpy(&a, args.data(), 8);
      std::memcpy(&b, args.data() + 8, 8);
      std::memcpy(&n, args.data() + 16, 4);
      auto A = d.memory(a, n * 4ull), B = d.memory(b, n * 4ull);
      FakeDriver::LaunchResult r;
      if (A.empty() || B.empty()) {
        r.status = KILN_STATUS_MMU_FAULT;
        r.pe = 0;
        r.fault_addr = A.empty() ? a : b;
        return r;
      }
      for (uint32_t i = 0; i < n; i++) {
        float x;
        std::memcpy(&x, A.data() + i * 4, 4);
        x *= 2;
        std::memcpy(B.data() + i * 4, &x, 4);
      }
      r.cycles = n;
      return r;
    });
  }
};

}  // namespace

// ---- device -------------------------------------------------------------------
TEST_F(Fx, DeviceInfoFromQuery) {
  EXPECT_EQ(dev.info().driver_name, "kiln");
  EXPECT_EQ(dev.info().pe_grid_width, 2u);
  EXPECT_EQ(dev.info().pe_count(), 4u);
  EXPECT_EQ(dev.info().uapi_major, 1u);
  EXPECT_EQ(dev.info().max_cmd_size, 4u << 20);
  EXPECT_EQ(dev.info().local_mem_size, 384u << 10);
  EXPECT_EQ(dev.fd(), -1);
  EXPECT_FALSE(dev.lost());
}

TEST(Device, WrongDriverNameIsVersionMismatch) {
  FakeDriver::Options o;
  o.name = "ivpu";
  try {
    static_cast<void>(detail::HandleAccess::device(std::make_shared<FakeDriver>(o)));
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.errc(), Errc::version_mismatch);
    EXPECT_NE(std::string(e.what()).find("ivpu"), std::string::npos);
  }
}

TEST(Device, NewerUapiMajorIsVersionMismatch) {
  FakeDriver::Options o;
  o.major = 2;
  try {
    static_cast<void>(detail::HandleAccess::device(std::make_shared<FakeDriver>(o)));
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.errc(), Errc::version_mismatch);
    EXPECT_NE(std::string(e.what()).find("UAPI 2.0"), std::string::npos) << e.what();
  }
}

TEST(Device, NullDriverRejected) {
  EXPECT_THROW(detail::HandleAccess::device(std::shared_ptr<detail::Driver>{}), Error);
}

TEST(Device, EnumerateNeverThrowsAndDiagnoseExplains) {
  std::vector<DeviceInfo> v;
  EXPECT_NO_THROW(v = enumerate());
  auto d = diagnose();
  EXPECT_FALSE(d.empty());
  if (v.empty()) {
    EXPECT_NE(d.find("no usable Kiln device"), std::string::npos) << d;
  }
}

TEST(Device, OpenMissingIndexIsNoDevice) {
  try {
    static_cast<void>(Device::open(999));
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.errc(), Errc::no_device);
  }
}

TEST(Device, OpenMissingPathMapsErrno) {
  try {
    static_cast<void>(Device::open("/dev/accel/accel-does-not-exist"));
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.os_errno(), ENOENT);
    EXPECT_EQ(e.ioctl(), "open");
  }
}

TEST_F(Fx, TelemetryAndRefresh) {
  auto t = dev.telemetry();
  EXPECT_DOUBLE_EQ(t.temperature_c, 45.0);
  auto b = dev.alloc(1 << 20);
  EXPECT_EQ(dev.refresh().dram_free, dev.info().dram_size - (1 << 20));
}

TEST(Ops, SearchPathHonoursEnv) {
  setenv("KILN_OPS_PATH", "/tmp/a:/tmp/b", 1);
  auto p = ops_search_path();
  ASSERT_GE(p.size(), 2u);
  EXPECT_EQ(p[0], "/tmp/a");
  EXPECT_EQ(p[1], "/tmp/b");
  try {
    find_kernel_binary("no_such_op");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("/tmp/a:/tmp/b"), std::string::npos) << e.what();
  }
  unsetenv("KILN_OPS_PATH");
}

// ---- buffers --------------------------------------------------------------------
TEST_F(Fx, AllocMapReadWrite) {
  auto b = dev.alloc(1000, Memory::host);
  EXPECT_EQ(b.size(), 4096u);  // rounded by the driver
  EXPECT_NE(b.device_address(), 0u);
  EXPECT_TRUE(b.mappable());
  std::vector<uint32_t> v(250);
  std::iota(v.begin(), v.end(), 0);
  b.write(std::span<const uint32_t>(v), 8);
  std::vector<uint32_t> r(250);
  b.read(std::span(r), 8);
  EXPECT_EQ(r, v);
  EXPECT_EQ(b.map<uint32_t>()[2], 0u);
  EXPECT_EQ(b.map<uint32_t>()[3], 1u);
}

TEST_F(Fx, ReadWriteBoundsChecked) {
  auto b = dev.alloc(4096);
  std::vector<std::byte> big(4097);
  EXPECT_THROW(b.write(big), Error);
  EXPECT_THROW(b.read(std::span(big).first(10), 4090), Error);
  EXPECT_THROW(b.write(std::span(big).first(1), ~size_t(0)), Error);
}

TEST_F(Fx, UnmappableBufferUsesDeviceCopies) {
  auto b = dev.alloc(8192, Memory::device, BufferFlags::no_mmap);
  EXPECT_FALSE(b.mappable());
  EXPECT_THROW(b.map(), Error);
  try {
    b.map();
  } catch (const Error& e) {
    EXPECT_EQ(e.errc(), Errc::not_supported);
  }
  std::vector<float> v(100, 3.5f), r(100);
  b.write(std::span<const float>(v), 64);
  b.read(std::span(r), 64);
  EXPECT_EQ(r, v);
  EXPECT_EQ(drv->live_contexts(), 0u);  // temporary contexts released
}

TEST_F(Fx, ZeroSizeAllocRejectedBeforeIoctl) {
  size_t before = drv->ioctl_count("DRM_IOCTL_KILN_BO_CREATE");
  EXPECT_THROW(dev.alloc(0), Error);
  EXPECT_EQ(drv->ioctl_count("DRM_IOCTL_KILN_BO_CREATE"), before);
}

TEST_F(Fx, WriteCombinedOnlyForHost) {
  EXPECT_THROW(dev.alloc(4096, Memory::device, BufferFlags::write_combined), Error);
  EXPECT_NO_THROW(dev.alloc(4096, Memory::host, BufferFlags::write_combined));
}

TEST_F(Fx, AllocationLargerThanDramSaysSo) {
  try {
    static_cast<void>(dev.alloc(size_t(1) << 30));  // the fake device has 256 MiB
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.errc(), Errc::out_of_memory);
    EXPECT_EQ(e.os_errno(), E2BIG);
    EXPECT_NE(std::string(e.what()).find("cannot allocate 1 GiB of device DRAM: the device has 256 MiB of DRAM"),
              std::string::npos)
        << e.what();
  }
}

TEST_F(Fx, OutOfDeviceMemoryMapsToOutOfMemory) {
  auto hold = dev.alloc(size_t(200) << 20);
  try {
    static_cast<void>(dev.alloc(size_t(100) << 20));
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.errc(), Errc::out_of_memory);
    EXPECT_EQ(e.ioctl(), "DRM_IOCTL_KILN_BO_CREATE");
    EXPECT_EQ(e.os_errno(), ENOSPC);
    EXPECT_EQ(e.code(), make_error_code(Errc::out_of_memory));
  }
}

TEST_F(Fx, ErrnoMapping) {
  struct C {
    int err;
    Errc want;
  } cases[] = {{EACCES, Errc::permission_denied}, {EPERM, Errc::permission_denied}, {EINVAL, Errc::invalid_argument},
               {ENOMEM, Errc::out_of_memory},     {ENOTTY, Errc::not_supported},    {EIO, Errc::io_error}};
  for (auto c : cases) {
    drv->inject_error("DRM_IOCTL_KILN_BO_CREATE", c.err);
    try {
      static_cast<void>(dev.alloc(4096));
      ADD_FAILURE() << c.err;
    } catch (const Error& e) {
      EXPECT_EQ(e.errc(), c.want) << c.err;
      EXPECT_EQ(e.os_errno(), c.err);
      EXPECT_NE(std::string(e.what()).find("DRM_IOCTL_KILN_BO_CREATE"), std::string::npos);
    }
  }
}

TEST_F(Fx, EnodevIsDeviceLost) {
  drv->inject_error("DRM_IOCTL_KILN_BO_CREATE", ENODEV);
  EXPECT_THROW(dev.alloc(4096), DeviceLost);
}

TEST_F(Fx, BufferReleasedOnDestruction) {
  size_t base = drv->live_bos();
  {
    auto a = dev.alloc(4096), b = dev.alloc(4096);
    EXPECT_EQ(drv->live_bos(), base + 2);
    Buffer moved = std::move(a);
    EXPECT_FALSE(a);  // NOLINT: moved-from is empty
    EXPECT_TRUE(moved);
  }
  EXPECT_EQ(drv->live_bos(), base);
}

TEST_F(Fx, MappingFailureLeavesNoLeak) {
  size_t base = drv->live_bos();
  drv->inject_error("DRM_IOCTL_KILN_BO_INFO", EIO);
  EXPECT_THROW(dev.alloc(4096), Error);
  EXPECT_EQ(drv->live_bos(), base);
}

TEST_F(Fx, BufferOutlivesDeviceHandle) {
  Buffer b;
  {
    auto d2 = detail::HandleAccess::device(std::make_shared<FakeDriver>());
    b = d2.alloc(4096, Memory::host);
  }
  b.map<uint32_t>()[0] = 7;  // device state still alive through the buffer
  EXPECT_EQ(b.map<uint32_t>()[0], 7u);
}

TEST_F(Fx, PrimeRoundTripSameDeviceSharesHandle) {
  auto a = dev.alloc(4096, Memory::host);
  a.map<uint32_t>()[0] = 0x1234;
  int fd = a.export_dmabuf();
  auto b = dev.import_dmabuf(fd);
  EXPECT_EQ(a.handle(), b.handle());
  EXPECT_EQ(b.map<uint32_t>()[0], 0x1234u);
  size_t closes = drv->ioctl_count("DRM_IOCTL_GEM_CLOSE");
  { Buffer tmp = std::move(b); }
  EXPECT_EQ(drv->ioctl_count("DRM_IOCTL_GEM_CLOSE"), closes);  // still used by a
  EXPECT_EQ(a.map<uint32_t>()[0], 0x1234u);
}

TEST_F(Fx, PrimeShareBetweenDevices) {
  auto other = detail::HandleAccess::device(std::make_shared<FakeDriver>());
  auto a = dev.alloc(4096, Memory::host);
  a.map<uint32_t>()[1] = 99;
  auto b = other.import_dmabuf(a.export_dmabuf());
  EXPECT_EQ(b.size(), 4096u);
  EXPECT_EQ(b.map<uint32_t>()[1], 99u);
}

TEST_F(Fx, PrimeImportBadFd) {
  try {
    dev.import_dmabuf(-5);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.ioctl(), "DRM_IOCTL_PRIME_FD_TO_HANDLE");
  }
}

// ---- modules and arguments ------------------------------------------------------
TEST_F(Fx, LoadModuleExposesMetadata) {
  auto m = vadd_module();
  EXPECT_EQ(m.kernels().size(), 1u);
  auto k = m.kernel("vadd");
  EXPECT_EQ(k.args().size(), 3u);
  EXPECT_EQ(k.arg_index("n"), 2u);
  EXPECT_NE(k.entry_address(), 0u);
  EXPECT_TRUE(m.has_kernel("vadd"));
  EXPECT_FALSE(m.has_kernel("vsub"));
}

TEST_F(Fx, UnknownKernelListsAvailable) {
  auto m = vadd_module();
  try {
    m.kernel("vsub");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.errc(), Errc::invalid_argument);
    EXPECT_NE(std::string(e.what()).find("vadd"), std::string::npos);
  }
}

TEST_F(Fx, LoadInvalidBinaryGivesClearError) {
  std::vector<std::byte> junk(100, std::byte{1});
  try {
    static_cast<void>(dev.load(junk, "junk.kbin"));
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.errc(), Errc::invalid_binary);
    EXPECT_NE(std::string(e.what()).find("junk.kbin"), std::string::npos);
  }
  try {
    static_cast<void>(dev.load_file("/nonexistent/x.kbin"));
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_EQ(e.errc(), Errc::not_found);
    EXPECT_EQ(std::string(e.what()),
              "cannot open kernel binary /nonexistent/x.kbin: No such file or directory: not found");
  }
}

TEST_F(Fx, LoadedCodeIsRelocated) {
  auto m = vadd_module();
  auto k = m.kernel("vadd");
  auto mem = drv->memory(k.entry_address() + 128, 8);
  uint64_t v;
  std::memcpy(&v, mem.data(), 8);
  EXPECT_EQ(v, k.entry_address() + 16);
}

TEST_F(Fx, ArgsValidation) {
  auto m = vadd_module();
  auto k = m.kernel("vadd");
  auto buf = dev.alloc(4096);
  Args a(k);
  EXPECT_THROW(a.set(3, buf), Error);               // index out of range
  EXPECT_THROW(a.set(2, buf), Error);               // scalar given a buffer
  EXPECT_THROW(a.set(0, uint32_t(5)), Error);       // buffer given a scalar
  EXPECT_THROW(a.set(2, uint64_t(5)), Error);       // wrong size
  EXPECT_THROW(a.set(2, 5.0f), Error);              // float for an integer
  EXPECT_THROW(a.set("nope", uint32_t(1)), Error);  // unknown name
  EXPECT_THROW(a.set(0, Buffer{}), Error);          // empty buffer
  EXPECT_THROW(a.set(0, buf, 4096), Error);         // offset outside
  a.set("a", buf).set(2, uint32_t(7));
  try {
    a.validate();
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'b' was not set"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("signature"), std::string::npos);
  }
  a.set("b", buf, 64);
  EXPECT_NO_THROW(a.validate());
  uint64_t va;
  std::memcpy(&va, a.block().data() + 8, 8);
  EXPECT_EQ(va, buf.device_address() + 64);
}

TEST_F(Fx, ArgsFromOtherDeviceRejected) {
  auto other = detail::HandleAccess::device(std::make_shared<FakeDriver>());
  auto m = vadd_module();
  Args a(m.kernel("vadd"));
  auto ob = other.alloc(4096);
  EXPECT_THROW(a.set(0, ob), Error);
}

TEST_F(Fx, LaunchWithWrongArgumentsFailsBeforeSubmission) {
  auto m = vadd_module();
  auto k = m.kernel("vadd");
  auto q = dev.queue();
  size_t before = drv->submits();
  Args a(k);
  EXPECT_THROW(q.launch(k, {}, a), Error);  // unset args
  auto buf = dev.alloc(4096);
  EXPECT_THROW(q.launch_with(k, {}, buf, buf), Error);                       // too few
  EXPECT_THROW(q.launch_with(k, {}, buf, buf, uint32_t(1), 1), Error);       // too many
  EXPECT_THROW(q.launch_with(k, {}, buf, uint32_t(1), uint32_t(1)), Error);  // kind
  a.set(0, buf).set(1, buf).set(2, uint32_t(4));
  EXPECT_THROW(q.launch(k, {.grid = {0, 1, 1}}, a), Error);  // grid
  EXPECT_THROW(q.launch(k, {.grid = {70000, 1, 1}}, a), Error);
  EXPECT_THROW(q.launch(k, {.local_mem = 1 << 20}, a), Error);                    // local memory
  EXPECT_THROW(q.launch(k, {.grid = {5, 1, 1}, .cooperative = true}, a), Error);  // > PEs
  EXPECT_EQ(drv->submits(), before);
}

// ---- queues -----------------------------------------------------------------------
TEST_F(Fx, UploadDownloadRoundTrip) {
  auto q = dev.queue();
  auto b = dev.alloc(1 << 16);
  std::vector<float> in(1000), out(1000);
  std::iota(in.begin(), in.end(), 1.0f);
  q.upload(b, in);
  auto e = q.download(out, b);
  EXPECT_TRUE(e.wait(1s));
  EXPECT_EQ(in, out);
  EXPECT_GT(e.seqno(), 0u);
}

TEST_F(Fx, HostSourceMayBeReusedImmediately) {
  auto q = dev.queue();
  auto b = dev.alloc(4096);
  drv->hold();
  std::vector<uint32_t> v(16, 1);
  q.upload(b, v);
  std::fill(v.begin(), v.end(), 2);  // staged at call time: must not matter
  drv->release();
  std::vector<uint32_t> r(16);
  q.download(r, b).wait();
  EXPECT_EQ(r[0], 1u);
}

TEST_F(Fx, DownloadLandsOnlyAfterCompletion) {
  auto q = dev.queue();
  auto b = dev.alloc(4096);
  q.fill(b, 0xabcdabcd).wait();
  drv->hold();
  std::vector<uint32_t> r(4, 0);
  auto e = q.download(r, b);
  EXPECT_FALSE(e.ready());
  EXPECT_EQ(r[0], 0u);
  drv->release();
  EXPECT_NO_THROW(e.wait());
  EXPECT_EQ(r[0], 0xabcdabcdu);
}

TEST_F(Fx, FillAndDeviceCopy) {
  auto q = dev.queue();
  auto a = dev.alloc(8192), b = dev.alloc(8192);
  q.fill(a, 0x11111111);
  q.fill(a, 0x22222222, 16, 4096);
  q.copy(b, a);
  std::vector<uint32_t> r(2048);
  q.download(r, b);
  q.finish();
  EXPECT_EQ(r[0], 0x11111111u);
  EXPECT_EQ(r[1024], 0x22222222u);
  EXPECT_EQ(r[1028], 0x11111111u);
}

TEST_F(Fx, CopyValidation) {
  auto q = dev.queue();
  auto a = dev.alloc(4096), b = dev.alloc(8192);
  EXPECT_THROW(q.copy(a, b, 8192), Error);
  EXPECT_THROW(q.copy(a, a, 100, 0, 50), Error);  // overlap
  EXPECT_THROW(q.fill(a, 0, 6), Error);           // not multiple of 4
  EXPECT_THROW(q.fill(a, 0, 4, 2), Error);
  EXPECT_THROW(q.fill(a, 0, 8192), Error);
  std::vector<std::byte> big(5000);
  EXPECT_THROW(q.copy(a, big), Error);
  EXPECT_THROW(q.copy(std::span(big), a), Error);
  auto other = detail::HandleAccess::device(std::make_shared<FakeDriver>());
  auto ob = other.alloc(4096);
  EXPECT_THROW(q.copy(a, ob), Error);
  EXPECT_NO_THROW(q.copy(b, a));  // whole_size = min of both
}

TEST_F(Fx, SubmissionListsEveryBufferAndTimestamps) {
  auto q = dev.queue();
  auto a = dev.alloc(4096), b = dev.alloc(4096);
  q.copy(b, a).wait();
  auto bos = drv->last_bo_list();
  auto has = [&](uint32_t h, bool w) {
    for (auto& r : bos)
      if (r.handle == h) return ((r.flags & DRM_KILN_BO_REF_WRITE) != 0) == w;
    return false;
  };
  EXPECT_TRUE(has(a.handle(), false));
  EXPECT_TRUE(has(b.handle(), true));
  // Timestamps are opt-in: a plain queue's job is its commands alone.
  auto pk = drv->last_packets();
  ASSERT_EQ(pk.size(), 1u);
  EXPECT_EQ(KILN_PKT_OPCODE(pk[0].header), KILN_OP_DMA_COPY);
  auto tq = dev.queue({.timestamps = true});
  tq.copy(b, a).wait();
  pk = drv->last_packets();
  ASSERT_EQ(pk.size(), 3u);
  EXPECT_EQ(KILN_PKT_OPCODE(pk[0].header), KILN_OP_TIMESTAMP);
  EXPECT_EQ(KILN_PKT_OPCODE(pk[1].header), KILN_OP_DMA_COPY);
  EXPECT_EQ(KILN_PKT_OPCODE(pk[2].header), KILN_OP_TIMESTAMP);
  EXPECT_THROW((void)q.barrier().timing(), Error);  // no timestamps on q
}

// Item 2 of issue 15: a job that succeeds costs SUBMIT and the wait, nothing
// else: its outcome comes from the mapped job-status ring.
TEST_F(Fx, SuccessfulJobCostsNoStatusIoctl) {
  auto q = dev.queue();
  auto a = dev.alloc(4096);
  for (int i = 0; i < 10; i++) q.fill(a, uint32_t(i)).wait();
  EXPECT_EQ(q.fill(a, 1).usage().cycles, 64u);  // the fake's cycles for a 4 KiB fill, from the ring
  EXPECT_EQ(drv->ioctl_count("DRM_IOCTL_KILN_JOB_STATUS"), 0u);
  EXPECT_EQ(drv->ioctl_count("DRM_IOCTL_KILN_CTX_STATUS"), 0u);
}

// Without a ring (a driver before uAPI 1.4) the outcome still arrives, by JOB_STATUS.
TEST(FakeDriverOld, JobStatusWithoutRing) {
  auto drv = std::make_shared<FakeDriver>(FakeDriver::Options{.status_ring = false});
  Device dev = detail::HandleAccess::device(drv);
  auto q = dev.queue();
  auto a = dev.alloc(4096);
  EXPECT_EQ(q.fill(a, 1).usage().cycles, 64u);
  EXPECT_EQ(drv->ioctl_count("DRM_IOCTL_KILN_JOB_STATUS"), 1u);
}

// The queue throttles against MAX_QUEUED_JOBS before SUBMIT instead of
// having it refused: fire-and-forget past the limit never sees -EBUSY.
TEST(FakeDriverLimit, ThrottlesBeforeSubmit) {
  auto drv = std::make_shared<FakeDriver>(FakeDriver::Options{.max_queued_jobs = 4});
  Device dev = detail::HandleAccess::device(drv);
  auto q = dev.queue();
  auto a = dev.alloc(4096);
  drv->hold();
  std::thread t([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    drv->release();
  });
  std::vector<Event> es;
  for (int i = 0; i < 12; i++) es.push_back(q.fill(a, uint32_t(i)));
  t.join();
  for (auto& e : es) EXPECT_NO_THROW(e.wait());
  EXPECT_EQ(drv->ioctl_count("DRM_IOCTL_KILN_SUBMIT"), 12u);  // not one refused and retried
}

TEST_F(Fx, InFlightBufferKeptAliveUntilDone) {
  auto q = dev.queue();
  size_t base = drv->live_bos();
  drv->hold();
  Event e;
  {
    auto a = dev.alloc(4096), b = dev.alloc(4096);
    e = q.copy(b, a);
  }
  EXPECT_GE(drv->live_bos(), base + 2);  // still referenced by the job
  drv->release();
  e.wait();
  q.finish();
  EXPECT_LE(drv->live_bos(), base + 1);  // only pooled command buffers remain
}

TEST_F(Fx, WaitTimesOutReturnsFalse) {
  auto q = dev.queue();
  auto b = dev.alloc(4096);
  drv->hold();
  auto e = q.fill(b, 1);
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_FALSE(e.wait(20ms));
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 15ms);
  EXPECT_FALSE(e.ready());
  drv->release();
  EXPECT_TRUE(e.wait(1s));
  EXPECT_TRUE(e.ready());
}

TEST_F(Fx, NullEventIsReady) {
  Event e;
  EXPECT_TRUE(e.ready());
  EXPECT_TRUE(e.wait(0ns));
  EXPECT_EQ(e.seqno(), 0u);
}

TEST_F(Fx, EventTiming) {
  install_vadd();
  auto q = dev.queue({.timestamps = true});
  auto b = dev.alloc(4096);
  auto e1 = q.fill(b, 1);
  auto e2 = q.fill(b, 2);
  auto t = e2.timing();
  EXPECT_GT(t.emulator_end_ns, t.emulator_start_ns);
  // device time is modelled time: the fake charges a fill one cycle per 64 bytes
  EXPECT_EQ(t.cycles(), 64u);
  EXPECT_EQ(t.device_time(), cycles_to_time(64, 1350));
  EXPECT_EQ(e2.cycles(), 64u);
  EXPECT_EQ(e2.device_time(), 47ns);  // 64 cycles at 1.35 GHz
  EXPECT_EQ(e2.elapsed_since(e1), cycles_to_time(128, 1350) - cycles_to_time(64, 1350));
  // emulator time is the emulator's, and the energy the model's
  EXPECT_GT(e2.emulator_time().count(), 0);
  Usage u = e2.usage();
  EXPECT_EQ(u.cycles, 64u);
  EXPECT_EQ(u.energy_pj, 64 * kiln::detail::FakeDriver::kEnergyPerCyclePj);
  EXPECT_DOUBLE_EQ(e2.energy(), 64 * 15000 * 1e-12);
  EXPECT_NEAR(u.power_w(), 64 * 15000e-12 / 47e-9, 1e-9);
  EXPECT_EQ(Usage{}.power_w(), 0.0);
}

TEST_F(Fx, ProfilingQueueReturnsLaunchProfiles) {
  install_vadd();
  auto k = vadd_module().kernel("vadd");
  auto A = dev.alloc(1024), B = dev.alloc(1024);
  // off by default: no profile buffer, no profiles
  auto plain = dev.queue();
  auto e0 = plain.launch_with(k, {.grid = {2, 1, 1}}, A, B, 256u);
  EXPECT_TRUE(e0.profiles().empty());
  kiln_pkt_launch lp;
  std::memcpy(&lp, &drv->last_packets()[0], sizeof lp);
  EXPECT_EQ(lp.profile_va, 0u);

  auto q = dev.queue({.profiling = true});
  CommandList cl(dev);
  cl.launch_with(k, {.grid = {2, 1, 1}}, A, B, 256u).launch_with(k, {.grid = {4, 1, 1}}, A, B, 128u);
  auto e = q.submit(cl);
  auto ps = e.profiles();
  ASSERT_EQ(ps.size(), 2u);
  std::memcpy(&lp, &drv->last_packets()[1], sizeof lp);
  EXPECT_NE(lp.profile_va, 0u);
  EXPECT_EQ(lp.profile_va % 8, 0u);
  const LaunchProfile& p = ps[1];
  EXPECT_EQ(p.kernel, "vadd");
  EXPECT_EQ(p.grid, (std::array<uint32_t, 3>{4, 1, 1}));
  EXPECT_EQ(p.cycles, 128u);  // the fake's launch costs its n
  EXPECT_EQ(p.clock_mhz, 1350u);
  ASSERT_EQ(p.pes.size(), 4u);  // the fake's 2x2 grid
  EXPECT_EQ(p.pes[3][Activity::scalar], 128u);
  EXPECT_EQ(p.total(Activity::scalar), 4 * 128u);
  EXPECT_EQ(p.energy_pj, 128 * kiln::detail::FakeDriver::kEnergyPerCyclePj);
  // no work at all: bound by the launch's fixed cost
  Roofline r = p.roofline();
  EXPECT_EQ(r.bound, "launch");
  EXPECT_EQ(r.bound_cycles, uint64_t(KILN_COST_LAUNCH));
  auto rep = p.report();
  EXPECT_NE(rep.find("vadd [4x1x1]"), std::string::npos) << rep;
  EXPECT_NE(rep.find("scalar 100.0%"), std::string::npos) << rep;
  EXPECT_NE(rep.find("launch-bound"), std::string::npos) << rep;
}

// The roofline names the resource the work needs most time on.
TEST(Profile, RooflineFindsTheBound) {
  LaunchProfile p;
  p.clock_mhz = 1350;
  p.waves = 1;
  p.launches = 1;
  p.pes.resize(64);
  p.macs[KILN_DTYPE_BF16] = 2048ull * 2048 * 2048;  // 2K^3: 131,072 cycles on 64 DPEs
  p.bytes[size_t(Fabric::dram)] = 3 * 2048 * 2048 * 2;  // A, B and C once: 165,888 cycles of DRAM
  p.cycles = 200000;
  Roofline r = p.roofline();
  EXPECT_EQ(r.bound, "DRAM");
  EXPECT_EQ(r.bound_cycles, KILN_COST_LAUNCH + 165888u);
  EXPECT_DOUBLE_EQ(r.fraction, (KILN_COST_LAUNCH + 165888.0) / 200000);
  p.bytes[size_t(Fabric::dram)] = 0;
  r = p.roofline();
  EXPECT_EQ(r.bound, "DPE");
  EXPECT_EQ(r.bound_cycles, KILN_COST_LAUNCH + 131072u);
  EXPECT_EQ(p.flops(), 2ull * 2048 * 2048 * 2048);
  // two such launches back to back: twice the bound, dispatch included
  LaunchProfile two;
  two += p;
  two += p;
  EXPECT_EQ(two.launches, 2u);
  EXPECT_EQ(two.roofline().bound_cycles, 2 * (KILN_COST_LAUNCH + 131072u));
  EXPECT_EQ(to_string(Activity::dma_wait), "DMA wait");
  EXPECT_EQ(to_string(Fabric::sram), "SRAM");
}

TEST_F(Fx, CrossQueueWaitAddsInSync) {
  auto q1 = dev.queue(), q2 = dev.queue();
  auto b = dev.alloc(4096);
  auto e = q1.fill(b, 5);
  q2.wait(e);
  q2.barrier().wait();
  auto s = drv->last_syncs();
  ASSERT_EQ(s.size(), 2u);
  EXPECT_EQ(s[0].flags, DRM_KILN_SYNC_WAIT);
  EXPECT_EQ(s[0].point, 1u);
  EXPECT_EQ(s[1].flags, DRM_KILN_SYNC_SIGNAL);
  // explicit deps too; same-queue deps are implicit
  auto e2 = q1.fill(b, 6);
  q2.barrier(std::span(&e2, 1)).wait();
  EXPECT_EQ(drv->last_syncs().size(), 2u);
  q1.barrier(std::span(&e2, 1)).wait();
  EXPECT_EQ(drv->last_syncs().size(), 1u);
}

TEST_F(Fx, CommandListReplaysWithOneSubmitEach) {
  auto q = dev.queue();
  auto a = dev.alloc(4096), b = dev.alloc(4096);
  std::vector<uint32_t> in(16), out(16);
  CommandList cl(dev);
  cl.write(a, std::as_bytes(std::span(in))).copy(b, a).barrier().read(std::as_writable_bytes(std::span(out)), b);
  EXPECT_EQ(cl.size(), 4u);
  for (uint32_t i = 0; i < 3; i++) {
    std::fill(in.begin(), in.end(), i + 10);
    size_t before = drv->submits();
    q.submit(cl).wait();
    EXPECT_EQ(drv->submits(), before + 1);
    EXPECT_EQ(out[15], i + 10);
  }
}

TEST_F(Fx, LaunchPacksArgumentsAndRuns) {
  install_vadd();
  auto m = vadd_module();
  auto k = m.kernel("vadd");
  auto q = dev.queue();
  const uint32_t n = 256;
  auto A = dev.alloc(n * 4), B = dev.alloc(n * 4);
  std::vector<float> a(n), b(n);
  std::iota(a.begin(), a.end(), 0.f);
  q.upload(A, a);
  auto e = q.launch_with(k, {.grid = {2, 1, 1}}, A, B, n);
  q.download(b, B);
  q.finish();
  EXPECT_EQ(b[100], 200.f);
  EXPECT_EQ(e.cycles(), n);
  // the launch packet
  Args args(k);
  args.set("a", A).set("b", B).set("n", n);
  q.launch(k, {.grid = {3, 2, 1}, .watchdog_mcycles = 7}, args).wait();
  auto pk = drv->last_packets();
  kiln_pkt_launch lp;
  std::memcpy(&lp, &pk[0], sizeof lp);
  EXPECT_EQ(KILN_PKT_OPCODE(lp.header), KILN_OP_LAUNCH);
  EXPECT_EQ(lp.entry_va, k.entry_address());
  EXPECT_EQ(lp.grid_x, 3u);
  EXPECT_EQ(lp.grid_y, 2u);
  EXPECT_EQ(lp.args_size, 24u);
  EXPECT_EQ(lp.watchdog_mcycles, 7u);
  EXPECT_EQ(lp.args_va % 64, 0u);
}

TEST_F(Fx, ModuleKeptAliveByKernel) {
  install_vadd();
  auto q = dev.queue();
  std::optional<Kernel> k;
  { k = vadd_module().kernel("vadd"); }
  auto A = dev.alloc(4096), B = dev.alloc(4096);
  EXPECT_NO_THROW(q.launch_with(*k, {}, A, B, uint32_t(4)).wait());
}

TEST_F(Fx, KernelFaultCarriesPePcAddress) {
  auto m = vadd_module();
  auto k = m.kernel("vadd");
  auto q = dev.queue();
  auto A = dev.alloc(4096), B = dev.alloc(4096);
  FakeDriver::LaunchResult r;
  r.status = KILN_STATUS_MMU_FAULT;
  r.pe = 3;
  r.pc = 0x1234;
  r.fault_addr = 0xdead000;
  r.fault_access = 2;
  drv->fail_next_job(r);
  q.fill(A, 0);
  auto e = q.launch_with(k, {}, A, B, uint32_t(4));
  try {
    e.wait();
    FAIL();
  } catch (const Error& err) {
    EXPECT_EQ(err.errc(), Errc::kernel_fault);
    ASSERT_TRUE(err.job());
    EXPECT_EQ(err.job()->pe, 3u);
    EXPECT_EQ(err.job()->pc, 0x1234u);
    EXPECT_EQ(err.job()->fault_addr, 0xdead000u);
    EXPECT_EQ(err.job()->status, uint32_t(KILN_STATUS_MMU_FAULT));
    EXPECT_EQ(err.job()->command_index, 0u);
    std::string w = err.what();
    EXPECT_NE(w.find("PE 3 (1,1)"), std::string::npos) << w;
    EXPECT_NE(w.find("0x1234"), std::string::npos) << w;
    EXPECT_NE(w.find("0xdead000"), std::string::npos) << w;
    EXPECT_NE(w.find("launch vadd"), std::string::npos) << w;
  }
  EXPECT_THROW(e.wait(), Error);         // every wait reports it
  EXPECT_NO_THROW(q.finish());           // already reported
  EXPECT_NO_THROW(q.fill(A, 0).wait());  // the queue still works
}

TEST_F(Fx, FaultPcIsPlacedInTheModule) {
  auto m = vadd_module();
  auto k = m.kernel("vadd");
  auto q = dev.queue();
  auto A = dev.alloc(4096);
  const uint64_t base = k.entry_address() - k.info().entry;
  FakeDriver::LaunchResult r;
  r.status = KILN_STATUS_MMU_FAULT;
  r.pe = 0;
  r.pc = k.entry_address() + 8;
  r.fault_addr = 0xdead000;
  r.fault_access = KILN_ACCESS_WRITE;
  r.fault_reason = KILN_MMU_FAULT_NOT_PRESENT;
  drv->fail_next_job(r);
  try {
    q.launch_with(k, {}, A, A, uint32_t(1)).wait();
    FAIL();
  } catch (const Error& e) {
    ASSERT_TRUE(e.job());
    EXPECT_EQ(e.job()->module_base, base);
    std::string w = e.what();
    EXPECT_NE(w.find(fmt::format("at pc {:#x} (offset {:#x} in vadd.kbin, loaded at {:#x})", r.pc,
                                 k.info().entry + 8, base)),
              std::string::npos)
        << w;
    EXPECT_NE(w.find("write of address 0xdead000 (not mapped)"), std::string::npos) << w;
  }
}

// fault_addr is an address, instruction bits, a trap code or a cycle count, by status.
TEST_F(Fx, FaultFieldsAreLabelledByStatus) {
  auto m = vadd_module();
  auto q = dev.queue();
  auto A = dev.alloc(4096);
  struct Case {
    uint32_t status;
    uint64_t addr;
    uint32_t access, reason;
    std::string want;
  };
  for (const auto& c : std::vector<Case>{
           {KILN_STATUS_ILLEGAL_INSTRUCTION, 0x0000300b, 0, 2, "ILLEGAL_INSTRUCTION on PE 2 (0,1) at pc 0x100000040 (offset 0x40 in vadd.kbin, loaded at 0x100000000), instruction bits 0x0000300b"},
           {KILN_STATUS_ILLEGAL_INSTRUCTION, (1ull << 48) + 0x100, 0, 2, "invalid unit descriptor at 0x1000000000100"},
           {KILN_STATUS_KERNEL_TRAP, 42, 0, 3, "trap code 42 (kiln_trap or ebreak)"},
           {KILN_STATUS_KERNEL_TRAP, 0, 0, 8, "0x100000000), ecall"},
           {KILN_STATUS_KERNEL_TRAP, 77, KILN_ACCESS_READ, 0, "gather index 77 out of range"},
           {KILN_STATUS_WATCHDOG, 1000003, 0, 0, "stopped after 1000003 emulated cycles"},
           {KILN_STATUS_MISALIGNED, 0x1002, KILN_ACCESS_WRITE, 6, "misaligned write of address 0x1002"},
           {KILN_STATUS_LOCAL_MEM_BOUNDS, (1ull << 48) + 0x60000, KILN_ACCESS_READ, 0,
            "read of address 0x1000000060000, outside the PE's local memory"},
       }) {
    FakeDriver::LaunchResult r;
    r.status = c.status;
    r.pe = 2;
    r.pc = m.kernel("vadd").entry_address() - m.kernel("vadd").info().entry + 0x40;
    r.fault_addr = c.addr;
    r.fault_access = c.access;
    r.fault_reason = c.reason;
    drv->fail_next_job(r);
    try {
      q.launch_with(m.kernel("vadd"), {}, A, A, uint32_t(1)).wait();
      ADD_FAILURE() << c.want;
    } catch (const Error& e) {
      std::string w = e.what();
      EXPECT_NE(w.find(c.want), std::string::npos) << w;
      if (c.status != KILN_STATUS_MISALIGNED && c.status != KILN_STATUS_LOCAL_MEM_BOUNDS) {
        EXPECT_EQ(w.find("of address"), std::string::npos) << w;
      }
    }
  }
}

namespace {
// The device's side of the debug channel (docs/pe-isa.md section 3): records after
// the header, each padded to 8 bytes.
void put_debug(FakeDriver& d, const kiln_pkt_launch& p, uint32_t wg, uint32_t pe, std::string_view text,
               uint32_t dropped = 0) {
  auto buf = d.memory(p.debug_va, p.debug_size);
  ASSERT_FALSE(buf.empty());
  kiln_debug_header h;
  std::memcpy(&h, buf.data(), sizeof h);
  kiln_debug_record r{wg, pe, uint32_t(text.size()), dropped};
  std::memcpy(buf.data() + sizeof h + h.used, &r, sizeof r);
  std::memcpy(buf.data() + sizeof h + h.used + sizeof r, text.data(), text.size());
  h.used += (sizeof r + text.size() + 7) & ~size_t(7);
  h.dropped += dropped;
  std::memcpy(buf.data(), &h, sizeof h);
}
using Lines = std::vector<std::tuple<std::string, uint32_t, uint32_t, std::string>>;
}  // namespace

TEST_F(Fx, KernelDebugOutputGoesToTheSinkLineByLine) {
  auto m = vadd_module();
  auto q = dev.queue();
  auto A = dev.alloc(4096);
  uint32_t seen_size = 0;
  drv->set_launch_hook([&](const kiln_pkt_launch& p, FakeDriver& d) {
    seen_size = p.debug_size;
    put_debug(d, p, 0, 0, "hello from wg 0\nsecond line\n");
    put_debug(d, p, 5, 1, "no newline");
    put_debug(d, p, 6, 2, "", 7);
    return FakeDriver::LaunchResult{};
  });
  Lines got;
  dev.set_debug_output([&](const DebugLine& l) { got.emplace_back(l.kernel, l.pe, l.workgroup, l.text); }, 1024);
  q.launch_with(m.kernel("vadd"), {}, A, A, uint32_t(1)).wait();
  EXPECT_EQ(seen_size, 1024u);
  EXPECT_EQ(got, (Lines{{"vadd", 0, 0, "hello from wg 0"}, {"vadd", 0, 0, "second line"}, {"vadd", 1, 5, "no newline"}}));

  // a launch that faults still shows what it printed
  got.clear();
  drv->set_launch_hook([&](const kiln_pkt_launch& p, FakeDriver& d) {
    put_debug(d, p, 3, 3, "about to fault\n");
    FakeDriver::LaunchResult r;
    r.status = KILN_STATUS_KERNEL_TRAP, r.pe = 3, r.fault_reason = 3;
    return r;
  });
  EXPECT_THROW(q.launch_with(m.kernel("vadd"), {}, A, A, uint32_t(1)).wait(), Error);
  EXPECT_EQ(got, (Lines{{"vadd", 3, 3, "about to fault"}}));

  // off: no buffer
  dev.set_debug_output({}, 0);
  drv->set_launch_hook([&](const kiln_pkt_launch& p, FakeDriver&) {
    seen_size = p.debug_size | uint32_t(p.debug_va);
    return FakeDriver::LaunchResult{};
  });
  q.launch_with(m.kernel("vadd"), {}, A, A, uint32_t(1)).wait();
  EXPECT_EQ(seen_size, 0u);
  EXPECT_THROW(dev.set_debug_output({}, 16), Error);
  EXPECT_THROW(dev.set_debug_output({}, size_t(1) << 30), Error);
}

TEST_F(Fx, KernelDebugOutputDefaultsToStderrAndSurvivesBadRecords) {
  auto m = vadd_module();
  auto q = dev.queue();
  auto A = dev.alloc(4096);
  drv->set_launch_hook([&](const kiln_pkt_launch& p, FakeDriver& d) {
    EXPECT_EQ(p.debug_size, default_debug_bytes);
    put_debug(d, p, 9, 4, "x=1.5\n");
    // a record claiming more text than the buffer holds is cut at the buffer's end
    auto buf = d.memory(p.debug_va, p.debug_size);
    kiln_debug_header h;
    std::memcpy(&h, buf.data(), sizeof h);
    kiln_debug_record r{10, 5, 0xffffffffu, 0};
    std::memcpy(buf.data() + sizeof h + h.used, &r, sizeof r);
    h.used = ~0ull;
    std::memcpy(buf.data(), &h, sizeof h);
    return FakeDriver::LaunchResult{};
  });
  testing::internal::CaptureStderr();
  q.launch_with(m.kernel("vadd"), {}, A, A, uint32_t(1)).wait();
  std::string err = testing::internal::GetCapturedStderr();
  EXPECT_NE(err.find("[kiln vadd pe 4 wg 9] x=1.5\n"), std::string::npos) << err;
  EXPECT_NE(err.find("[kiln vadd pe 5 wg 10] "), std::string::npos) << err;
}

TEST_F(Fx, UnwaitedFailureReportedByFinish) {
  auto m = vadd_module();
  auto q = dev.queue();
  auto A = dev.alloc(4096);
  FakeDriver::LaunchResult r;
  r.status = KILN_STATUS_KERNEL_TRAP;
  r.pe = 1;
  drv->fail_next_job(r);
  q.launch_with(m.kernel("vadd"), {}, A, A, uint32_t(1));
  q.fill(A, 0);
  try {
    q.finish();
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.errc(), Errc::kernel_fault);
    EXPECT_NE(std::string(e.what()).find("KERNEL_TRAP"), std::string::npos);
  }
  EXPECT_NO_THROW(q.finish());
}

TEST_F(Fx, BannedContextIsStickyDeviceLost) {
  FakeDriver::Options o;
  o.ban_on_fault = true;
  auto d = std::make_shared<FakeDriver>(o);
  auto dv = detail::HandleAccess::device(d);
  auto q = dv.queue();
  auto A = dv.alloc(4096);
  FakeDriver::LaunchResult r;
  r.status = KILN_STATUS_WATCHDOG;
  r.pe = 0;
  d->fail_next_job(r);
  test::KbinBuilder b;
  auto m = dv.load(b.build());
  EXPECT_THROW(q.launch_with(m.kernel("vadd"), {}, A, A, uint32_t(1)).wait(), DeviceLost);
  EXPECT_THROW(q.fill(A, 0), DeviceLost);  // sticky for the queue
  EXPECT_THROW(q.finish(), DeviceLost);
  auto q2 = dv.queue();  // a new context works
  EXPECT_NO_THROW(q2.fill(A, 0).wait());
}

TEST_F(Fx, ResetAbortsJobRecoverable) {
  auto q = dev.queue();
  auto A = dev.alloc(4096);
  drv->hold();
  auto e = q.fill(A, 1);
  drv->reset_device(false);
  try {
    e.wait();
    FAIL();
  } catch (const DeviceLost&) {
    FAIL() << "not lost";
  } catch (const Error& err) {
    EXPECT_NE(std::string(err.what()).find("ABORTED"), std::string::npos);
    EXPECT_NE(std::string(err.what()).find("resubmit"), std::string::npos);
  }
  EXPECT_NO_THROW(q.fill(A, 1).wait());
}

TEST_F(Fx, ResetWithBanIsDeviceLost) {
  auto q = dev.queue();
  auto A = dev.alloc(4096);
  drv->hold();
  auto e = q.fill(A, 1);
  drv->reset_device(true);
  EXPECT_THROW(e.wait(), DeviceLost);
  EXPECT_THROW(q.fill(A, 1), DeviceLost);
}

TEST_F(Fx, FatalStatusLosesDevice) {
  auto m = vadd_module();
  auto q = dev.queue();
  auto A = dev.alloc(4096);
  FakeDriver::LaunchResult r;
  r.status = KILN_STATUS_FATAL;
  drv->fail_next_job(r);
  EXPECT_THROW(q.launch_with(m.kernel("vadd"), {}, A, A, uint32_t(1)).wait(), DeviceLost);
  EXPECT_TRUE(dev.lost());
  EXPECT_THROW(dev.alloc(4096), DeviceLost);
  EXPECT_THROW(dev.queue(), DeviceLost);
}

TEST_F(Fx, SubmitIoctlErrorsMapped) {
  auto q = dev.queue();
  auto A = dev.alloc(4096);
  drv->inject_error("DRM_IOCTL_KILN_SUBMIT", E2BIG);
  try {
    q.fill(A, 0);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.ioctl(), "DRM_IOCTL_KILN_SUBMIT");
    EXPECT_EQ(e.os_errno(), E2BIG);
  }
  EXPECT_NO_THROW(q.fill(A, 0).wait());  // the failed submit consumed no point
  drv->inject_error("DRM_IOCTL_KILN_SUBMIT", ECANCELED);
  EXPECT_THROW(q.fill(A, 0), DeviceLost);
}

// kiln.ko answers -EBUSY when a context has its maximum of jobs queued: the
// queue waits for its oldest job and submits again.
TEST_F(Fx, SubmitWaitsWhenTheContextHasTooManyJobsQueued) {
  auto q = dev.queue();
  auto A = dev.alloc(4096);
  drv->hold();
  auto first = q.fill(A, 1);
  drv->inject_error("DRM_IOCTL_KILN_SUBMIT", EBUSY);
  std::thread t([&] {
    std::this_thread::sleep_for(50ms);
    drv->release();
  });
  auto second = q.fill(A, 2);  // blocks until `first` completed
  EXPECT_TRUE(first.ready());
  EXPECT_NO_THROW(second.wait());
  t.join();
  // With nothing of its own in flight, waiting cannot help: the error surfaces.
  drv->inject_error("DRM_IOCTL_KILN_SUBMIT", EBUSY);
  try {
    q.fill(A, 3);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.os_errno(), EBUSY);
  }
}

TEST_F(Fx, WaitIoctlFailureThrows) {
  auto q = dev.queue();
  auto A = dev.alloc(4096);
  drv->hold();
  auto e = q.fill(A, 0);
  drv->inject_error("DRM_IOCTL_SYNCOBJ_TIMELINE_WAIT", EINVAL);
  EXPECT_THROW(static_cast<void>(e.wait(1ms)), Error);
  drv->release();
  EXPECT_NO_THROW(e.wait());
}

TEST_F(Fx, CommandListTooLongForDriver) {
  FakeDriver::Options o;
  o.max_cmd_size = 64 * 8;
  auto d = std::make_shared<FakeDriver>(o);
  auto dv = detail::HandleAccess::device(d);
  auto q = dv.queue();
  auto A = dv.alloc(4096);
  CommandList cl(dv);
  for (int i = 0; i < 10; i++) cl.fill(A, i);
  EXPECT_THROW(q.submit(cl), Error);
  CommandList other(dev);
  EXPECT_THROW(q.submit(other), Error);  // list of another device
}

TEST_F(Fx, QueueAndDeviceResourcesReleased) {
  {
    auto d = std::make_shared<FakeDriver>();
    {
      auto dv = detail::HandleAccess::device(d);
      auto q = dv.queue();
      auto A = dv.alloc(4096);
      q.fill(A, 0);
      q.fill(A, 1);
      EXPECT_EQ(d->live_contexts(), 1u);
    }
    EXPECT_EQ(d->live_contexts(), 0u);
    EXPECT_EQ(d->live_syncobjs(), 0u);
    EXPECT_EQ(d->live_bos(), 0u);  // pooled command buffers freed with the device
  }
}

TEST_F(Fx, QueueDestructorWaitsForWork) {
  auto A = dev.alloc(4096, Memory::host);
  std::thread t;
  {
    auto q = dev.queue();
    drv->hold();
    q.fill(A, 0x5a5a5a5a);
    t = std::thread([&] {
      std::this_thread::sleep_for(20ms);
      drv->release();
    });
  }
  t.join();
  EXPECT_EQ(A.map<uint32_t>()[0], 0x5a5a5a5au);
}

// ---- thread safety ------------------------------------------------------------------
TEST_F(Fx, ConcurrentSubmitsOnOneQueue) {
  auto q = dev.queue();
  constexpr int threads = 4, iters = 50;
  std::vector<Buffer> bufs;
  for (int i = 0; i < threads; i++) bufs.push_back(dev.alloc(4096));
  std::vector<std::thread> ts;
  std::atomic<int> bad{0};
  for (int t = 0; t < threads; t++)
    ts.emplace_back([&, t] {
      for (int i = 0; i < iters; i++) {
        std::vector<uint32_t> in(8, uint32_t(t * 1000 + i)), out(8);
        q.upload(bufs[t], in);
        q.download(out, bufs[t]).wait();
        if (out[7] != in[7]) bad++;
      }
    });
  for (auto& t : ts) t.join();
  q.finish();
  EXPECT_EQ(bad.load(), 0);
  EXPECT_EQ(drv->submits(), size_t(threads * iters * 2));
}

TEST_F(Fx, ConcurrentQueuesAndEventWaiters) {
  constexpr int threads = 4;
  std::vector<std::thread> ts;
  std::atomic<int> bad{0};
  for (int t = 0; t < threads; t++)
    ts.emplace_back([&, t] {
      auto q = dev.queue();
      auto b = dev.alloc(4096);
      for (int i = 0; i < 30; i++) {
        auto e = q.fill(b, uint32_t(t));
        std::thread w([&] { e.wait(); });  // a second waiter on the same event
        e.wait();
        w.join();
      }
      std::vector<uint32_t> r(1);
      q.download(r, b).wait();
      if (r[0] != uint32_t(t)) bad++;
    });
  for (auto& t : ts) t.join();
  EXPECT_EQ(bad.load(), 0);
}

TEST(ErrorCategory, NamesAndCodes) {
  EXPECT_STREQ(category().name(), "kiln");
  std::error_code ec = Errc::kernel_fault;
  EXPECT_EQ(ec.message(), "kernel fault");
  EXPECT_EQ(status_name(KILN_STATUS_MMU_FAULT), "MMU_FAULT");
  EXPECT_EQ(status_name(999), "UNKNOWN");
  Error e(Errc::timeout, "x", "DRM_IOCTL_FOO", ETIME);
  EXPECT_EQ(e.ioctl(), "DRM_IOCTL_FOO");
  EXPECT_EQ(e.os_errno(), ETIME);
  EXPECT_FALSE(e.job());
  DeviceLost l(Errc::device_lost, "gone");
  const std::system_error& se = l;
  EXPECT_EQ(se.code(), make_error_code(Errc::device_lost));
}

// The encoder runs on plain memory, without a driver: packets, staging and
// the BO list of a small command list.
TEST(Encoder, LaysOutPacketsAndBoRefsWithoutADriver) {
  using namespace kiln::detail;
  auto mk = [](uint32_t h, uint64_t va) {
    auto b = std::make_shared<Bo>();
    b->handle = h, b->va = va, b->size = 4096;
    return b;
  };
  auto self = mk(1, 0x10000), dst = mk(2, 0x20000), src = mk(3, 0x30000);
  Recording rec;
  std::vector<std::byte> host(128, std::byte{7}), back(64);
  Cmd fill(Cmd::fill);
  fill.dst = dst, fill.size = 256, fill.pattern = 0xabcd, fill.label = "fill";
  Cmd up(Cmd::write);
  up.dst = dst, up.dst_off = 512, up.size = host.size(), up.host_src = host, up.label = "upload";
  Cmd down(Cmd::read);
  down.src = src, down.size = back.size(), down.host_dst = back, down.label = "download";
  rec.cmds.push_back(fill), rec.cmds.push_back(Cmd(Cmd::barrier)), rec.cmds.push_back(up), rec.cmds.push_back(down);
  Encoder enc(rec, EncodeOptions{});
  std::vector<std::byte> buf(enc.size());
  Encoded e = enc.encode(buf, self->va, self);
  ASSERT_EQ(e.cmd_size, 3u * KILN_PACKET_SIZE);  // no timestamps, a barrier takes no packet
  kiln_pkt_dma_fill f;
  std::memcpy(&f, buf.data(), sizeof f);
  EXPECT_EQ(KILN_PKT_OPCODE(f.header), KILN_OP_DMA_FILL);
  EXPECT_EQ(f.dst, 0x20000u);
  kiln_pkt_dma_copy c;
  std::memcpy(&c, buf.data() + 64, sizeof c);
  EXPECT_EQ(c.dst, 0x20000u + 512);
  EXPECT_EQ(buf[c.src - self->va], std::byte{7});  // staged in the command buffer
  ASSERT_EQ(e.readbacks.size(), 1u);
  ASSERT_EQ(e.bos.size(), 3u);  // sorted by handle, one entry each
  EXPECT_EQ(e.bos[0].handle, 1u);
  EXPECT_EQ(e.bos[1].flags, DRM_KILN_BO_REF_WRITE);
  EXPECT_EQ(e.bos[2].flags, 0u);
  EXPECT_EQ(e.packet_map[2].first, 1u);  // the upload is packet 1
  Encoder tenc(rec, EncodeOptions{.timestamps = true});
  std::vector<std::byte> tbuf(tenc.size());
  Encoded t = tenc.encode(tbuf, 0, self);
  EXPECT_EQ(t.cmd_size, 5u * KILN_PACKET_SIZE);
  EXPECT_NE(t.ts_offset, 0u);
}
