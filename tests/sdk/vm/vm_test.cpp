// SPDX-License-Identifier: MIT
// libkiln end to end on the emulated device, through the real driver.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <kiln/hw/kiln_isa.h>
#include <kiln/hw/kiln_status.h>
#include <unistd.h>

#include <array>
#include <cstring>
#include <kiln/kiln.hpp>
#include <numeric>
#include <thread>

#include "module_param.hpp"

using namespace kiln;
using namespace std::chrono_literals;

extern const unsigned char kiln_test_kernels[];
extern const std::size_t kiln_test_kernels_size;

namespace {

std::span<const std::byte> image() {
  return std::as_bytes(std::span(kiln_test_kernels, kiln_test_kernels_size));
}

struct Vm : ::testing::Test {
  Device dev = Device::open(0);
};

}  // namespace

TEST_F(Vm, EnumerateAndInfo) {
  auto devs = enumerate();
  ASSERT_GE(devs.size(), 1u);
  const auto& i = dev.info();
  EXPECT_EQ(i.driver_name, "kiln");
  EXPECT_EQ(i.uapi_major, 1u);
  EXPECT_GT(i.pe_count(), 0u);
  EXPECT_GT(i.dram_size, 0u);
  EXPECT_GT(i.local_mem_size, 0u);
  EXPECT_EQ(i.pci.vendor_id, 0x1234);
  EXPECT_EQ(i.pci.device_id, 0x4b31);
  EXPECT_FALSE(i.pci.address.empty());
  EXPECT_NE(diagnose().find("usable Kiln device"), std::string::npos);
  auto t = dev.telemetry();
  EXPECT_GT(t.pe_clock_mhz, 0u);
}

TEST_F(Vm, OpenByPathAndPciAddress) {
  auto by_path = Device::open(std::string_view(dev.info().path));
  auto by_pci = Device::open(std::string_view(dev.info().pci.address));
  EXPECT_EQ(by_path.info().pci.address, dev.info().pci.address);
  EXPECT_EQ(by_pci.info().path, dev.info().path);
  EXPECT_THROW(Device::open(std::string_view("ffff:ff:1f.7")), Error);
}

TEST_F(Vm, HostAndDeviceBuffersMapReadWrite) {
  for (auto mem : {Memory::host, Memory::device}) {
    auto b = dev.alloc(1 << 20, mem);
    std::vector<uint32_t> v(1 << 18), r(1 << 18);
    std::iota(v.begin(), v.end(), 7u);
    b.write(std::span<const uint32_t>(v));
    b.read(std::span(r));
    EXPECT_EQ(v, r) << int(mem);
  }
}

TEST_F(Vm, UnmappableBufferThroughDeviceCopies) {
  auto b = dev.alloc(1 << 16, Memory::device, BufferFlags::no_mmap);
  EXPECT_FALSE(b.mappable());
  EXPECT_THROW(b.map(), Error);
  std::vector<float> v(1000, 1.25f), r(1000);
  b.write(std::span<const float>(v), 4096);
  b.read(std::span(r), 4096);
  EXPECT_EQ(v, r);
}

TEST_F(Vm, QueueUploadFillCopyDownload) {
  auto q = dev.queue();
  constexpr size_t n = 1 << 18;
  auto a = dev.alloc(n * 4), b = dev.alloc(n * 4);
  std::vector<uint32_t> in(n), out(n);
  std::iota(in.begin(), in.end(), 0u);
  q.upload(a, in);
  std::fill(in.begin(), in.end(), 0);  // staged: the device still gets 0..n-1
  q.copy(b, a);
  q.fill(b, 0xffffffff, 64, 0);
  q.download(out, b);
  q.finish();
  EXPECT_EQ(out[0], 0xffffffffu);
  EXPECT_EQ(out[15], 0xffffffffu);
  EXPECT_EQ(out[16], 16u);
  EXPECT_EQ(out[n - 1], uint32_t(n - 1));
}

TEST_F(Vm, CommandListReplay) {
  auto q = dev.queue();
  auto a = dev.alloc(4096), b = dev.alloc(4096);
  std::vector<uint32_t> in(256), out(256);
  CommandList cl(dev);
  cl.write(a, std::as_bytes(std::span(in))).copy(b, a).read(std::as_writable_bytes(std::span(out)), b);
  for (uint32_t it = 0; it < 5; it++) {
    std::fill(in.begin(), in.end(), it * 3 + 1);
    ASSERT_TRUE(q.submit(cl).wait(30s));
    EXPECT_EQ(out[255], it * 3 + 1);
  }
}

TEST_F(Vm, CrossQueueEventsAndTimestamps) {
  auto q1 = dev.queue({.timestamps = true}), q2 = dev.queue({.timestamps = true});
  auto a = dev.alloc(1 << 20), b = dev.alloc(1 << 20);
  auto e1 = q1.fill(a, 0x01020304);
  q2.wait(e1);
  auto e2 = q2.copy(b, a);
  std::vector<uint32_t> r(4);
  q2.download(r, b, 4096);
  q2.finish();
  EXPECT_EQ(r[3], 0x01020304u);
  auto t = e2.timing();
  EXPECT_GE(t.emulator_end_ns, t.emulator_start_ns);
  EXPECT_GT(t.cycles(), 0u);
  EXPECT_EQ(e2.elapsed_since(e2).count(), 0);
  EXPECT_GT(e2.elapsed_since(e1).count(), 0);
  EXPECT_TRUE(e1.ready());
}

namespace {
// docs/pe-isa.md section 4: idle power over the modelled time, in pJ
uint64_t idle_pj(uint64_t cycles) {
  return (cycles * KILN_POWER_IDLE_MW * 1000 + KILN_PE_CLOCK_MHZ / 2) / KILN_PE_CLOCK_MHZ;
}
}  // namespace

// "Device time" is modelled time, from the job status: a DMA_FILL of a
// 4 KiB page of DRAM costs its cycles at DRAM's 152 bytes/cycle (plus one),
// whatever the emulator took, and its energy is the idle power over that
// time plus 32 pJ per DRAM byte written.
TEST_F(Vm, DeviceTimeAndEnergyAreModelled) {
  auto q = dev.queue();
  auto b = dev.alloc(4096, Memory::device);
  auto e = q.fill(b, 7);
  Usage u = e.usage();
  const uint64_t cycles = 4096 / 152 + 1;
  EXPECT_EQ(u.cycles, cycles);
  EXPECT_EQ(e.cycles(), cycles);
  EXPECT_EQ(u.device_time, cycles_to_time(cycles, dev.info().clock_mhz));
  EXPECT_EQ(e.device_time(), u.device_time);
  EXPECT_GT(e.emulator_time().count(), 0);  // the emulator's own, not asserted further
  EXPECT_EQ(u.energy_pj, idle_pj(cycles) + 4096ull * KILN_ENERGY_DRAM_BYTE_FJ / 1000);
  EXPECT_DOUBLE_EQ(e.energy(), u.energy_j());
  EXPECT_GT(u.power_w(), KILN_POWER_IDLE_MW / 1000.0);
}

// A no-op launch of 64 workgroups costs its dispatch plus a few cycles of
// each workgroup: under 1 us (MTIA 2i: job launch < 1 us).
TEST_F(Vm, NoopLaunchCostsUnderOneMicrosecond) {
  auto k = dev.load(image()).kernel("noop");
  auto q = dev.queue();
  auto e = q.launch_with(k, {.grid = {64, 1, 1}});
  EXPECT_GE(e.cycles(), uint64_t(KILN_COST_LAUNCH));
  EXPECT_LE(e.device_time(), 1us) << e.cycles() << " cycles";
}

// A profiling queue gets the device's own counters for every launch: each
// PE's cycles split by activity add up to the launch's; 64 PEs streaming
// 1 MiB each from DRAM wait on the shared fabric, and the roofline says so.
TEST_F(Vm, ProfileOfADramBoundLaunch) {
  auto k = dev.load(image()).kernel("stream");
  const uint32_t pes = dev.info().pe_count(), bytes = 1 << 20;
  auto src = dev.alloc(bytes, Memory::device);
  auto q = dev.queue({.profiling = true});
  auto e = q.launch_with(k, {.grid = {pes, 1, 1}}, src, bytes);
  auto ps = e.profiles();
  ASSERT_EQ(ps.size(), 1u);
  const LaunchProfile& p = ps[0];
  EXPECT_EQ(p.kernel, "stream");
  EXPECT_EQ(p.cycles, e.cycles());  // the job is this launch (timestamps cost nothing)
  EXPECT_EQ(p.waves, 1u);
  EXPECT_EQ(p.bytes[size_t(Fabric::dram)], uint64_t(pes) * bytes);
  EXPECT_EQ(p.bytes[size_t(Fabric::local)], uint64_t(pes) * bytes);
  ASSERT_EQ(p.pes.size(), pes);
  for (const auto& pe : p.pes) {
    uint64_t sum = 0;
    for (uint64_t c : pe.cycles) sum += c;
    EXPECT_EQ(sum, p.cycles);
    EXPECT_EQ(pe.workgroups, 1u);
    EXPECT_EQ(pe[Activity::launch], uint64_t(KILN_COST_LAUNCH));
    EXPECT_GT(pe[Activity::fabric], pe[Activity::scalar]);
  }
  // DRAM time for all of it, plus the dispatch: the launch is at its roofline
  const uint64_t dram = (uint64_t(pes) * bytes * KILN_PE_CLOCK_HZ + KILN_COST_DRAM_BPS - 1) / KILN_COST_DRAM_BPS;
  Roofline r = p.roofline();
  EXPECT_EQ(r.bound, "DRAM");
  EXPECT_EQ(r.bound_cycles, KILN_COST_LAUNCH + dram);
  EXPECT_EQ(p.cycles, KILN_COST_LAUNCH + dram);
  EXPECT_DOUBLE_EQ(r.fraction, 1.0);
  EXPECT_LE(p.energy_pj, e.usage().energy_pj);
  EXPECT_NE(p.report().find("DRAM-bound"), std::string::npos) << p.report();
}

// hwmon energy1_input (uJ) and the telemetry's energy grow with the work.
TEST_F(Vm, EnergyCounterGrows) {
  auto before = dev.telemetry();
  auto q = dev.queue();
  auto b = dev.alloc(4 << 20, Memory::device);
  auto e = q.fill(b, 1);
  e.wait();
  auto after = dev.telemetry();
  EXPECT_GE(after.energy_j - before.energy_j, e.energy() - 1e-6);
  EXPECT_GE(after.total_cycles - before.total_cycles, e.cycles());
  EXPECT_GT(after.power_w, KILN_POWER_IDLE_MW / 1000.0);  // the fill's modelled power
  bool found = false;
  for (int h = 0; h < 64 && !found; h++) {
    auto dir = "/sys/class/hwmon/hwmon" + std::to_string(h);
    FILE* f = std::fopen((dir + "/name").c_str(), "r");
    if (!f) continue;
    char name[32] = {};
    bool kiln = std::fgets(name, sizeof name, f) && std::string(name) == "kiln\n";
    std::fclose(f);
    if (!kiln) continue;
    f = std::fopen((dir + "/energy1_input").c_str(), "r");
    ASSERT_NE(f, nullptr) << dir;
    unsigned long long uj = 0;
    EXPECT_EQ(std::fscanf(f, "%llu", &uj), 1);
    std::fclose(f);
    EXPECT_GE(uj, uint64_t(after.energy_j * 1e6) - 1);
    found = true;
  }
  EXPECT_TRUE(found) << "no hwmon device named kiln";
}

TEST_F(Vm, VaddKernelMatchesCpu) {
  auto m = dev.load(image(), "test_kernels.kbin");
  auto k = m.kernel("vadd");
  auto q = dev.queue();
  const uint32_t n = 4096;
  std::vector<float> a(n), b(n), c(n);
  for (uint32_t i = 0; i < n; i++) a[i] = float(i) * 0.5f, b[i] = 3.0f - float(i);
  auto A = dev.alloc(n * 4), B = dev.alloc(n * 4), C = dev.alloc(n * 4);
  q.upload(A, a);
  q.upload(B, b);
  auto done = q.launch_with(k, {.grid = {dev.info().pe_count(), 1, 1}}, A, B, C, n);
  q.download(c, C);
  q.finish();
  for (uint32_t i = 0; i < n; i++) ASSERT_EQ(c[i], a[i] + b[i]) << i;
  EXPECT_GT(done.cycles(), 0u);
}

TEST_F(Vm, LaunchWithWrongArgumentsFailsBeforeSubmission) {
  auto m = dev.load(image());
  auto k = m.kernel("vadd");
  auto q = dev.queue();
  auto A = dev.alloc(4096);
  EXPECT_THROW(q.launch_with(k, {}, A, A, A), Error);               // scalar n given a buffer
  EXPECT_THROW(q.launch_with(k, {}, A, A, A, uint64_t(4)), Error);  // n is 4 bytes
  EXPECT_THROW(q.launch_with(k, {}, A, A), Error);                  // missing
  EXPECT_THROW(q.launch_with(k, {.grid = {0, 1, 1}}, A, A, A, 4u), Error);
  EXPECT_NO_THROW(q.launch_with(k, {}, A, A, A, 4u).wait());
}

TEST_F(Vm, InvalidOrWrongTargetBinary) {
  std::vector<std::byte> img(image().begin(), image().end());
  auto wrong = img;
  uint16_t x86 = 62;
  std::memcpy(wrong.data() + 18, &x86, 2);  // e_machine
  try {
    static_cast<void>(dev.load(wrong, "x86.kbin"));
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.errc(), Errc::binary_incompatible);
    EXPECT_NE(std::string(e.what()).find("e_machine"), std::string::npos);
  }
  try {
    static_cast<void>(dev.load(std::span(img).first(img.size() / 2), "half.kbin"));
    FAIL();
  } catch (const Error& e) {
    EXPECT_TRUE(e.errc() == Errc::invalid_binary || e.errc() == Errc::binary_incompatible) << e.what();
  }
}

TEST_F(Vm, KernelFaultReportsPePcAndAddress) {
  auto m = dev.load(image());
  auto k = m.kernel("bad_store");
  auto q = dev.queue();
  auto out = dev.alloc(4096);
  const uint64_t bad = 0xdead0000ull;
  try {
    static_cast<void>(q.launch_with(k, {}, out, bad).wait(60s));
    FAIL() << "no fault";
  } catch (const Error& e) {
    ASSERT_TRUE(e.job()) << e.what();
    EXPECT_EQ(e.job()->status, uint32_t(KILN_STATUS_MMU_FAULT)) << e.what();
    EXPECT_TRUE(e.job()->pe.has_value()) << e.what();
    EXPECT_NE(e.job()->pc, 0u) << e.what();
    EXPECT_EQ(e.job()->fault_addr & ~0xfffull, bad) << e.what();
    // the PC placed in the module, as kiln-cc --disassemble numbers it
    EXPECT_EQ(e.job()->module_base, k.entry_address() - k.info().entry) << e.what();
    EXPECT_NE(std::string(e.what()).find(fmt::format("(offset {:#x} in <memory>, loaded at {:#x})",
                                                     e.job()->pc - e.job()->module_base, e.job()->module_base)),
              std::string::npos)
        << e.what();
    EXPECT_NE(std::string(e.what()).find("write of address"), std::string::npos) << e.what();
    std::cout << "reported: " << e.what() << "\n";
  }
  // The device stays usable (a new queue if the driver banned this context).
  auto q2 = dev.queue();
  EXPECT_TRUE(q2.fill(out, 0).wait(30s));
}

TEST_F(Vm, KernelTrap) {
  auto m = dev.load(image());
  auto q = dev.queue();
  try {
    static_cast<void>(q.launch_with(m.kernel("trap"), {}, uint64_t(42)).wait(60s));
    FAIL();
  } catch (const Error& e) {
    ASSERT_TRUE(e.job()) << e.what();
    EXPECT_EQ(e.job()->status, uint32_t(KILN_STATUS_KERNEL_TRAP)) << e.what();
    EXPECT_EQ(e.errc(), Errc::kernel_fault);
    EXPECT_NE(std::string(e.what()).find("trap code 42"), std::string::npos) << e.what();
    EXPECT_EQ(std::string(e.what()).find("of address"), std::string::npos) << e.what();
  }
}

TEST_F(Vm, WaitTimesOutThenCompletes) {
  auto m = dev.load(image());
  auto q = dev.queue();
  auto release = dev.alloc(4096, Memory::host), out = dev.alloc(4096);
  release.write(std::span<const uint32_t>(std::array{0u}));
  // The job polls @release, so it is still running however fast the PEs are; the watchdog
  // bounds it if the host's store never reached the device.
  Args a(m.kernel("hold"));
  a.set("release", release).set("out", out);
  auto e = q.launch(m.kernel("hold"), {.watchdog_mcycles = 100'000}, a);
  EXPECT_FALSE(e.wait(1ms));
  release.write(std::span<const uint32_t>(std::array{1u}));
  EXPECT_TRUE(e.wait(120s));
}

TEST_F(Vm, WatchdogStopsRunawayKernel) {
  auto m = dev.load(image());
  auto q = dev.queue();
  auto out = dev.alloc(4096);
  Args a(m.kernel("spin"));
  a.set("iters", uint64_t(1) << 40).set("out", out);
  try {
    static_cast<void>(q.launch(m.kernel("spin"), {.watchdog_mcycles = 1}, a).wait(120s));
    FAIL();
  } catch (const Error& e) {
    ASSERT_TRUE(e.job()) << e.what();
    EXPECT_EQ(e.job()->status, uint32_t(KILN_STATUS_WATCHDOG)) << e.what();
    EXPECT_GE(e.job()->fault_addr, 1'000'000u) << e.what();  // the cycles it ran
    EXPECT_NE(std::string(e.what()).find(fmt::format("stopped after {} emulated cycles", e.job()->fault_addr)),
              std::string::npos)
        << e.what();
  }
}

TEST_F(Vm, KernelPrintfReachesTheUserWithPeAndWorkgroup) {
  auto m = dev.load(image());
  auto q = dev.queue();
  std::vector<std::tuple<uint32_t, uint32_t, std::string>> got;
  dev.set_debug_output([&](const DebugLine& l) {
    EXPECT_EQ(l.kernel, "hello");
    got.emplace_back(l.pe, l.workgroup, std::string(l.text));
  });
  // more workgroups than PEs: the second wave reuses PEs 0..2
  const uint32_t pes = dev.info().pe_count(), n = pes + 3;
  ASSERT_TRUE(q.launch_with(m.kernel("hello"), {.grid = {n, 1, 1}}, uint32_t(7)).wait(60s));
  ASSERT_EQ(got.size(), n);
  for (uint32_t wg = 0; wg < n; wg++) {
    EXPECT_EQ(std::get<0>(got[wg]), wg % pes);
    EXPECT_EQ(std::get<1>(got[wg]), wg);
    EXPECT_EQ(std::get<2>(got[wg]), fmt::format("hello from wg {} of {} on pe {}, x=7", wg, n, wg % pes));
  }
  // by default, to stderr with the PE and workgroup
  dev.set_debug_output();
  testing::internal::CaptureStderr();
  ASSERT_TRUE(q.launch_with(m.kernel("hello"), {.grid = {2, 1, 1}}, uint32_t(9)).wait(60s));
  std::string err = testing::internal::GetCapturedStderr();
  EXPECT_NE(err.find("[kiln hello pe 1 wg 1] hello from wg 1 of 2 on pe 1, x=9\n"), std::string::npos) << err;
  // a buffer too small (header, one record, 32 text bytes): what fits is shown, the
  // rest is counted in a warning: 4 lines of 34 bytes, 32 shown
  dev.set_debug_output({}, 64);
  testing::internal::CaptureStderr();
  ASSERT_TRUE(q.launch_with(m.kernel("hello"), {.grid = {4, 1, 1}}, uint32_t(9)).wait(60s));
  err = testing::internal::GetCapturedStderr();
  EXPECT_NE(err.find("[kiln hello pe 0 wg 0] hello from wg 0 of 4 on pe 0, x=\n"), std::string::npos) << err;
  EXPECT_EQ(err.find("wg 1]"), std::string::npos) << err;
  EXPECT_NE(err.find("hello: 104 bytes of kernel debug output did not fit in the 64-byte debug buffer"),
            std::string::npos)
      << err;
  dev.set_debug_output({}, 0);
  testing::internal::CaptureStderr();
  ASSERT_TRUE(q.launch_with(m.kernel("hello"), {.grid = {1, 1, 1}}, uint32_t(9)).wait(60s));
  EXPECT_EQ(testing::internal::GetCapturedStderr(), "");
}

TEST_F(Vm, HangIsRecoveredOrDeviceLost) {
  auto m = dev.load(image());
  auto q = dev.queue({.timeout_ms = 300});
  auto out = dev.alloc(4096);
  Args a(m.kernel("spin"));
  a.set("iters", uint64_t(1) << 40).set("out", out);
  try {
    // The driver's 300 ms job timeout should stop it; the device watchdog
    // (2 G cycles) bounds the test if it does not.
    auto e = q.launch(m.kernel("spin"), {.watchdog_mcycles = 2000}, a);
    ASSERT_TRUE(e.wait(120s)) << "a hang was not stopped";
    FAIL() << "a hang completed successfully";
  } catch (const DeviceLost& e) {
    std::cout << "device lost: " << e.what() << "\n";
  } catch (const Error& e) {
    std::cout << "recovered: " << e.what() << "\n";
  }
  // Either way, a fresh device handle works (recovery after reset).
  auto d2 = Device::open(0);
  auto q2 = d2.queue();
  auto b = d2.alloc(4096);
  EXPECT_TRUE(q2.fill(b, 1).wait(60s));
}

TEST_F(Vm, PrimeShareBetweenFiles) {
  auto other = Device::open(0);  // a second file on the same device
  auto a = dev.alloc(1 << 16, Memory::host);
  a.map<uint32_t>()[5] = 0xfeedf00d;
  int fd = a.export_dmabuf();
  auto b = other.import_dmabuf(fd);
  ::close(fd);
  EXPECT_EQ(b.size(), a.size());
  // The other file's device copy reads it.
  auto q = other.queue();
  std::vector<uint32_t> r(8);
  ASSERT_TRUE(q.download(r, b).wait(30s));
  EXPECT_EQ(r[5], 0xfeedf00du);
}

TEST_F(Vm, ThreadsWithOwnQueues) {
  auto m = dev.load(image());
  auto k = m.kernel("vadd");
  std::atomic<int> bad{0};
  std::vector<std::thread> ts;
  for (int t = 0; t < 3; t++)
    ts.emplace_back([&, t] {
      auto q = dev.queue();
      const uint32_t n = 512;
      std::vector<float> a(n, float(t)), c(n);
      auto A = dev.alloc(n * 4), C = dev.alloc(n * 4);
      for (int it = 0; it < 4; it++) {
        q.upload(A, a);
        q.launch_with(k, {.grid = {2, 1, 1}}, A, A, C, n);
        q.download(c, C);
        q.finish();
        if (c[n - 1] != 2.0f * float(t)) bad++;
      }
    });
  for (auto& t : ts) t.join();
  EXPECT_EQ(bad.load(), 0);
}

TEST(VmUnprivileged, RenderGroupUserCanRunWork) {
  auto dev = Device::open(0);
  auto q = dev.queue();
  auto b = dev.alloc(4096);
  std::vector<uint32_t> r(4);
  q.fill(b, 9);
  ASSERT_TRUE(q.download(r, b).wait(30s));
  EXPECT_EQ(r[0], 9u);
  std::cout << "uid " << getuid() << " ok\n";
}

// Peer-to-peer DMA (docs/collectives.md "Peer DMA"): a DRAM buffer of device 0 imported by
// device 1, whose DMA engine reads and writes it through device 0's BAR. The guest's PCI core
// does not know that QEMU's q35 routes peer DMA, so the tests set kiln.p2p themselves (a test
// that reloads kiln.ko may have reset kiln-vm's p2p=2) and restore it afterwards.

TEST_F(Vm, PeerDmaReadsAndWritesAnotherDevicesDram) {
  if (enumerate().size() < 2) GTEST_SKIP() << "needs two devices (kiln-vm --devices 2)";
  kiln_test::ModuleParam p2p("p2p");
  if (!p2p.writable()) GTEST_SKIP() << "cannot write " << p2p.path();
  ASSERT_TRUE(p2p.set("2"));
  auto peer = Device::open(1);
  // 3 MiB + 4 KiB: several buddy blocks, so several DMA ranges.
  const size_t words = ((3u << 20) + 4096) / 4;
  std::vector<uint32_t> pattern(words), r(words);
  std::iota(pattern.begin(), pattern.end(), 0x1000u);
  auto a = dev.alloc(words * 4, Memory::device, BufferFlags::no_mmap);
  auto q = dev.queue();
  ASSERT_TRUE(q.upload(a, pattern).wait(60s));

  int fd = a.export_dmabuf();
  auto b = peer.import_dmabuf(fd);
  ::close(fd);
  ASSERT_EQ(b.size(), a.size());
  auto pq = peer.queue();
  ASSERT_TRUE(pq.download(r, b).wait(60s));
  EXPECT_EQ(r, pattern);

  // Writes land in device 0's DRAM, at the right offsets.
  ASSERT_TRUE(pq.fill(b, 0x5a5a5a5au, 8192, 4096).wait(60s));
  ASSERT_TRUE(q.download(r, a).wait(60s));
  for (size_t i = 1024; i < 3072; i++) pattern[i] = 0x5a5a5a5au;
  EXPECT_EQ(r, pattern);
}

TEST_F(Vm, PeerDmaRefusesSramAndObeysTheP2pParameter) {
  if (enumerate().size() < 2) GTEST_SKIP() << "needs two devices (kiln-vm --devices 2)";
  kiln_test::ModuleParam p2p("p2p");
  if (!p2p.writable()) GTEST_SKIP() << "cannot write " << p2p.path();
  ASSERT_TRUE(p2p.set("2"));
  auto peer = Device::open(1);
  auto s = dev.alloc(4096, Memory::sram);
  int fd = s.export_dmabuf();
  EXPECT_THROW((void)peer.import_dmabuf(fd), Error);  // no BAR covers SRAM
  ::close(fd);
  // Within one device an SRAM buffer is still shared between files.
  auto other = Device::open(0);
  fd = s.export_dmabuf();
  EXPECT_EQ(other.import_dmabuf(fd).size(), s.size());
  ::close(fd);

  auto d = dev.alloc(4096, Memory::device);
  fd = d.export_dmabuf();
  for (const char* refused : {"0", "1"}) {  // 1: the guest kernel has no CONFIG_PCI_P2PDMA
    ASSERT_TRUE(p2p.set(refused));
    try {
      (void)peer.import_dmabuf(fd);
      ADD_FAILURE() << "kiln.p2p=" << refused << " and the import succeeded";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("PRIME_FD_TO_HANDLE"), std::string::npos) << e.what();
    }
  }
  ASSERT_TRUE(p2p.set("2"));
  EXPECT_EQ(peer.import_dmabuf(fd).size(), d.size());
  ::close(fd);
}
