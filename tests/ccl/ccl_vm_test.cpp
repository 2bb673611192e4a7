// SPDX-License-Identifier: MIT
// kiln::ccl in the VM: communicators over this VM's devices (2 to 4 ranks; with fewer
// devices than ranks, ranks share a device through contexts of their own), every
// collective against the CPU reference bit for bit, a device fault in the middle of a
// collective, and the same over MPI ranks (mpirun of ccl_mpi_check).
#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <future>
#include <thread>

#include "ccl_test_common.hpp"
#include "module_param.hpp"

namespace {

using namespace std::chrono_literals;
namespace ccl = kiln::ccl;

std::vector<kiln::Device> open_ranks(int n) {
  auto ndev = kiln::enumerate().size();
  std::vector<kiln::Device> devs;
  for (int r = 0; r < n; r++) devs.push_back(kiln::Device::open(int(size_t(r) % ndev)));
  return devs;
}

// Runs f(rank's communicator, rank's queue) on one thread per rank; fails the test if a
// rank does not return within `limit` (a hang).
template <class F>
void run_ranks(std::vector<ccl::Communicator>& comms, F f, std::chrono::seconds limit = 300s) {
  std::vector<std::future<void>> done;
  for (auto& c : comms)
    done.push_back(std::async(std::launch::async, [&c, &f] {
      kiln::Device d = c.device();
      auto q = d.queue();
      f(c, q);
    }));
  for (size_t r = 0; r < done.size(); r++)
    ASSERT_EQ(done[r].wait_for(limit), std::future_status::ready) << "rank " << r << " hangs";
  for (auto& d : done) d.get();
}

class CclLocal : public ::testing::TestWithParam<int> {
 protected:
  void SetUp() override {
    if (kiln::enumerate().empty()) GTEST_SKIP() << kiln::diagnose();
  }
};

TEST_P(CclLocal, EveryCollectiveMatchesTheReference) {
  int n = GetParam();
  auto devs = open_ranks(n);
  // Small pieces: the 100003-element cases run in several pieces.
  auto comms = ccl::Communicator::local(devs, {.piece_bytes = 64 << 10});
  std::mutex mu;
  std::vector<std::string> fails;
  size_t total = 0;
  run_ranks(comms, [&](ccl::Communicator& c, kiln::Queue& q) {
    size_t checks = 0;
    auto f = ccl_test::check_all(c, q, 11, ccl_test::counts(), checks);
    std::lock_guard lk(mu);
    fails.insert(fails.end(), f.begin(), f.end());
    total += checks;
  });
  for (auto& f : fails) ADD_FAILURE() << f;
  EXPECT_EQ(total, size_t(n) * 2 * ccl_test::counts().size() * 6);
  EXPECT_GT(comms[0].stats().modelled_reduce.count(), 0) << "the reductions ran on the device";
  EXPECT_GT(comms[0].stats().bytes_sent, 0u);
}

INSTANTIATE_TEST_SUITE_P(Ranks, CclLocal, ::testing::Values(2, 3, 4));

// With peer DMA (kiln.p2p=2 in QEMU's q35) a local group stages in device DRAM and each
// device reads its peers' DRAM across PCIe; without it (kiln.p2p=0) in host memory. Both
// give the reference's bits, and peer DMA crosses the host link half as often.
TEST(CclPeerDma, StagesInDramWhenTheDevicesReachEachOther) {
  if (kiln::enumerate().size() < 2) GTEST_SKIP() << "needs two devices";
  kiln_test::ModuleParam p2p("p2p");
  if (!p2p.writable()) GTEST_SKIP() << "cannot write " << p2p.path();
  std::chrono::nanoseconds copy[2]{};
  for (bool peer : {true, false}) {
    ASSERT_TRUE(p2p.set(peer ? "2" : "0"));
    auto devs = open_ranks(2);
    auto comms = ccl::Communicator::local(devs, {.piece_bytes = 64 << 10});
    for (auto& c : comms) EXPECT_EQ(c.peer_dma(), peer);
    std::mutex mu;
    std::vector<std::string> fails;
    run_ranks(comms, [&](ccl::Communicator& c, kiln::Queue& q) {
      size_t checks = 0;
      auto f = ccl_test::check_all(c, q, 5, {100003}, checks);
      std::lock_guard lk(mu);
      fails.insert(fails.end(), f.begin(), f.end());
    });
    for (auto& f : fails) ADD_FAILURE() << (peer ? "peer DMA: " : "host staging: ") << f;
    copy[peer] = comms[0].stats().modelled_copy;
  }
  std::printf("modelled copy time of rank 0: %lld ns with peer DMA, %lld ns with host staging\n",
              static_cast<long long>(copy[true].count()), static_cast<long long>(copy[false].count()));
  EXPECT_LT(copy[true], copy[false]) << "staging in DRAM should cost less host-link time";
}

// Ring and tree at the same sizes give the same bits: both reduce in rank order.
TEST(CclAlgorithms, RingAndTreeAgreeWithTheReference) {
  if (kiln::enumerate().empty()) GTEST_SKIP() << kiln::diagnose();
  for (auto a : {ccl::Algorithm::ring, ccl::Algorithm::tree}) {
    auto devs = open_ranks(3);
    auto comms = ccl::Communicator::local(devs, {.algorithm = a, .piece_bytes = 16 << 10});
    run_ranks(comms, [&](ccl::Communicator& c, kiln::Queue& q) {
      for (size_t n : {size_t(5), size_t(4097), size_t(20011)})
        for (auto t : {ccl::DType::f32, ccl::DType::bf16}) {
          EXPECT_EQ(c.allreduce_algorithm(n, t), a);
          auto in = ccl_test::input(c.rank(), n, t, 3);
          auto b = c.device().alloc(n * ccl::dtype_size(t));
          b.write(std::span<const std::byte>(in));
          c.allreduce(q, b, b, n, t, ccl::Op::sum).wait();
          std::vector<std::byte> got(in.size());
          b.read(std::span(got));
          EXPECT_LT(ccl_test::first_diff(got, ccl_test::expected_allreduce(3, n, t, ccl::Op::sum, 3), t), 0)
              << ccl::to_string(a) << " " << ccl::to_string(t) << " n=" << n << " rank " << c.rank();
        }
    });
  }
}

TEST(CclErrors, BadArgumentsNameTheArgumentOnEveryRank) {
  if (kiln::enumerate().empty()) GTEST_SKIP() << kiln::diagnose();
  auto devs = open_ranks(2);
  auto comms = ccl::Communicator::local(devs);
  run_ranks(comms, [&](ccl::Communicator& c, kiln::Queue& q) {
    auto small = c.device().alloc(4096);
    // Only rank 1 passes a buffer that is too small: both ranks fail, neither hangs.
    size_t count = c.rank() == 1 ? 100000 : 1000;
    try {
      c.allreduce(q, small, small, count, ccl::DType::f32, ccl::Op::sum);
      ADD_FAILURE() << "rank " << c.rank() << ": no error";
    } catch (const kiln::Error& e) {
      std::string w = e.what();
      if (c.rank() == 1) {
        EXPECT_EQ(e.errc(), kiln::Errc::invalid_argument) << w;
        EXPECT_NE(w.find("send holds 4096 bytes"), std::string::npos) << w;
      } else {
        EXPECT_NE(w.find("rank 1 of 2 failed"), std::string::npos) << w;
      }
    }
    // The communicator is still usable afterwards.
    auto b = c.device().alloc(4096);
    q.fill(b, 0x3f800000u).wait();  // 1.0f
    c.allreduce(q, b, b, 1024, ccl::DType::f32, ccl::Op::sum).wait();
    std::array<float, 4> v{};
    b.read(std::span<float>(v));
    EXPECT_EQ(v[3], 2.0f);
  });
}

// A rank's device faults (a real KERNEL_TRAP, injected by KILN_CCL_INJECT_FAULT) in the
// middle of a ring allreduce: every rank's call fails with an error naming that rank
// and the fault; none hangs.
TEST(CclErrors, DeviceFaultMidCollectiveFailsEveryRank) {
  if (kiln::enumerate().empty()) GTEST_SKIP() << kiln::diagnose();
  auto devs = open_ranks(3);
  setenv("KILN_CCL_INJECT_FAULT", "1:2", 1);
  auto comms = ccl::Communicator::local(devs, {.piece_bytes = 64 << 10});
  unsetenv("KILN_CCL_INJECT_FAULT");
  run_ranks(comms, [&](ccl::Communicator& c, kiln::Queue& q) {
    auto b = c.device().alloc(100003 * 4);
    try {
      c.allreduce(q, b, b, 100003, ccl::DType::f32, ccl::Op::sum);
      ADD_FAILURE() << "rank " << c.rank() << ": the collective did not fail";
    } catch (const kiln::Error& e) {
      std::string w = e.what();
      EXPECT_NE(w.find("KERNEL_TRAP"), std::string::npos) << w;
      EXPECT_NE(w.find(c.rank() == 1 ? "this rank (1) failed" : "rank 1 of 3 failed"), std::string::npos) << w;
      EXPECT_EQ(e.errc(), c.rank() == 1 ? kiln::Errc::kernel_fault : kiln::Errc::job_failed) << w;
    }
  }, 120s);
}

// ---- MPI ------------------------------------------------------------------------------------

std::string helper() {
  auto self = std::filesystem::read_symlink("/proc/self/exe");
  return (self.parent_path().parent_path() / "ccl_mpi_check").string();
}

std::pair<int, std::string> run(const std::string& cmd) {
  std::string out;
  FILE* p = popen((cmd + " 2>&1").c_str(), "r");
  if (!p) return {-1, "popen failed"};
  std::array<char, 4096> buf;
  while (size_t n = fread(buf.data(), 1, buf.size(), p)) out.append(buf.data(), n);
  int st = pclose(p);
  return {WIFEXITED(st) ? WEXITSTATUS(st) : -1, out};
}

// As root (the VM's tests), Open MPI wants --allow-run-as-root; --oversubscribe lets
// 4 ranks run on the VM's CPUs. Ranks reach each other over loopback and shared memory.
std::string mpirun(int np, const std::string& extra = {}) {
  return "timeout 400 mpirun --allow-run-as-root --oversubscribe --mca btl self,vader --mca btl_vader_single_copy_mechanism none -np " + std::to_string(np) +
         " " + extra + " " + helper();
}

class CclMpi : public ::testing::TestWithParam<int> {
 protected:
  void SetUp() override {
    if (kiln::enumerate().empty()) GTEST_SKIP() << kiln::diagnose();
    if (std::system("command -v mpirun >/dev/null 2>&1") != 0) GTEST_SKIP() << "mpirun is not installed";
  }
};

// The ranks of one machine pass each other their DRAM staging (dma-buf over a Unix socket)
// and move the bytes by peer DMA when kiln.p2p allows it (2 and 4 ranks), else through MPI
// (2 ranks with kiln.p2p=0).
TEST_P(CclMpi, EveryCollectiveMatchesTheReference) {
  kiln_test::ModuleParam p2p("p2p");
  if (!p2p.writable()) GTEST_SKIP() << "cannot write " << p2p.path();
  for (const char* setting : {"2", "0"}) {
    if (GetParam() != 2 && *setting == '0') break;
    ASSERT_TRUE(p2p.set(setting));
    auto [rc, out] = run(mpirun(GetParam()) + " --expect-peer-dma " + (*setting == '2' ? "1" : "0"));
    EXPECT_EQ(rc, 0) << "kiln.p2p=" << setting << "\n" << out;
    EXPECT_NE(out.find("PASS: kiln::ccl over " + std::to_string(GetParam()) + " MPI ranks"), std::string::npos)
        << "kiln.p2p=" << setting << "\n" << out;
    std::printf("kiln.p2p=%s:\n%s", setting, out.c_str());
  }
}

INSTANTIATE_TEST_SUITE_P(Ranks, CclMpi, ::testing::Values(2, 4));

TEST_F(CclMpi, DeviceFaultOnOneRankFailsEveryRank) {
  auto [rc, out] = run(mpirun(3, "-x KILN_CCL_INJECT_FAULT=2:1") + " --expect-fault 2");
  EXPECT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("PASS"), std::string::npos) << out;
  for (int r = 0; r < 3; r++)
    EXPECT_NE(out.find("rank " + std::to_string(r) + ": failed as it should"), std::string::npos) << out;
}

}  // namespace

namespace {

// samples/dp_train under mpirun, one rank per device of the VM.
TEST_F(CclMpi, DpTrainSampleFollowsTheSingleDeviceCurve) {
  auto self = std::filesystem::read_symlink("/proc/self/exe");
  auto dp = (self.parent_path().parent_path() / "dp_train").string();
  int np = int(std::max<size_t>(2, kiln::enumerate().size()));
  auto [rc, out] = run("timeout 500 mpirun --allow-run-as-root --oversubscribe --mca btl self,vader "
                       "--mca btl_vader_single_copy_mechanism none -np " +
                       std::to_string(np) + " " + dp);
  EXPECT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("PASS: data-parallel training"), std::string::npos) << out;
  std::printf("%s", out.c_str());
}

}  // namespace
