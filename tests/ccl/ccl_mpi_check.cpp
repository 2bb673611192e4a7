// SPDX-License-Identifier: MIT
// ccl_mpi_check: kiln::ccl over the ranks of an MPI job, one device per rank
// (rank % devices). Run by ccl_vm_test.cpp as
//   mpirun -np N ccl_mpi_check                 every collective/op/dtype/size vs the reference,
//                                              plus the C API
//   mpirun -np N ccl_mpi_check --expect-fault R  with KILN_CCL_INJECT_FAULT=R:K: every rank's
//                                              collective must fail, naming rank R
// Rank 0 prints PASS or FAIL; the exit status is 0 only on PASS on every rank.
#include <kiln/ccl.h>

#include <cstdio>
#include <cstring>
#include <string>

#include "ccl_test_common.hpp"

namespace {

bool c_api_check(int rank, int size) {
  kiln_ccl_comm* comm = nullptr;
  if (int rc = kiln_ccl_comm_init_mpi(MPI_COMM_WORLD, -1, &comm)) {
    std::fprintf(stderr, "rank %d: kiln_ccl_comm_init_mpi: %d %s\n", rank, rc, kiln_ccl_last_error());
    return false;
  }
  const size_t n = 4099;
  auto in = ccl_test::input(rank, n, kiln::ccl::DType::f32, 99);
  kiln_ccl_buffer *send = nullptr, *recv = nullptr;
  bool ok = kiln_ccl_buffer_alloc(comm, n * 4, &send) == 0 && kiln_ccl_buffer_alloc(comm, n * 4, &recv) == 0 &&
            kiln_ccl_buffer_write(send, in.data(), in.size(), 0) == 0 &&
            kiln_ccl_allreduce(comm, send, recv, n, KILN_CCL_F32, KILN_CCL_SUM) == 0;
  std::vector<std::byte> got(n * 4);
  ok = ok && kiln_ccl_buffer_read(recv, got.data(), got.size(), 0) == 0;
  if (!ok) std::fprintf(stderr, "rank %d: C API: %s\n", rank, kiln_ccl_last_error());
  ok = ok && ccl_test::first_diff(got, ccl_test::expected_allreduce(size, n, kiln::ccl::DType::f32,
                                                                       kiln::ccl::Op::sum, 99),
                                  kiln::ccl::DType::f32) < 0;
  // A bad argument is reported, not crashed on (on every rank alike: no collective runs).
  int rc = kiln_ccl_broadcast(comm, send, n, KILN_CCL_F32, size + 5);
  if (rc != KILN_CCL_EINVAL || !std::strstr(kiln_ccl_last_error(), "root")) {
    std::fprintf(stderr, "rank %d: C API: a bad root gave %d '%s'\n", rank, rc, kiln_ccl_last_error());
    ok = false;
  }
  kiln_ccl_buffer_free(send);
  kiln_ccl_buffer_free(recv);
  kiln_ccl_comm_destroy(comm);
  return ok;
}

}  // namespace

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  int rank = 0, size = 1, expect_fault = -1, expect_peer_dma = -1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  for (int i = 1; i < argc; i++)
    if (!std::strcmp(argv[i], "--expect-fault") && i + 1 < argc)
      expect_fault = std::atoi(argv[++i]);
    else if (!std::strcmp(argv[i], "--expect-peer-dma") && i + 1 < argc)
      expect_peer_dma = std::atoi(argv[++i]);
  int ok = 1;
  try {
    auto ndev = kiln::enumerate().size();
    if (ndev == 0) throw kiln::Error(kiln::Errc::no_device, "no Kiln device: " + kiln::diagnose());
    auto dev = kiln::Device::open(int(size_t(rank) % ndev));
    auto comm = kiln::ccl::Communicator::mpi(MPI_COMM_WORLD, dev, {.piece_bytes = 64 << 10});
    auto q = dev.queue();
    if (expect_peer_dma >= 0 && comm.peer_dma() != bool(expect_peer_dma)) {
      std::printf("rank %d: peer DMA is %s, expected %s\n", rank, comm.peer_dma() ? "on" : "off",
                  expect_peer_dma ? "on" : "off");
      ok = 0;
    }
    if (expect_fault >= 0) {
      auto a = dev.alloc(100003 * 4);
      try {
        comm.allreduce(q, a, a, 100003, kiln::ccl::DType::f32, kiln::ccl::Op::sum);
        std::printf("rank %d: the collective did not fail\n", rank);
        ok = 0;
      } catch (const kiln::Error& e) {
        std::string want = rank == expect_fault ? "this rank (" + std::to_string(rank) + ") failed"
                                                : "rank " + std::to_string(expect_fault) + " of";
        std::printf("rank %d: failed as it should: %s\n", rank, e.what());
        if (std::string(e.what()).find(want) == std::string::npos || !std::strstr(e.what(), "KERNEL_TRAP")) {
          std::printf("rank %d: the error does not name rank %d and the trap\n", rank, expect_fault);
          ok = 0;
        }
      }
    } else {
      size_t checks = 0;
      auto fails = ccl_test::check_all(comm, q, 5, ccl_test::counts(), checks);
      for (auto& f : fails) std::printf("rank %d: FAIL %s\n", rank, f.c_str());
      std::printf("rank %d (%s, %s): %zu checks, %zu failed; modelled copy %.1f us, reduce %.1f us\n", rank,
                  dev.info().path.c_str(), comm.peer_dma() ? "peer DMA" : "host staging", checks, fails.size(),
                  double(comm.stats().modelled_copy.count()) / 1e3, double(comm.stats().modelled_reduce.count()) / 1e3);
      if (!fails.empty()) ok = 0;
      if (!c_api_check(rank, size)) ok = 0;
    }
  } catch (const std::exception& e) {
    // Not a collective's error (those reach every rank): the peers may wait for this
    // rank in MPI, so end the job instead of hanging it.
    std::printf("rank %d: %s\n", rank, e.what());
    std::fflush(stdout);
    MPI_Abort(MPI_COMM_WORLD, 1);
  }
  int all = 0;
  MPI_Allreduce(&ok, &all, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
  if (rank == 0) std::printf("%s: kiln::ccl over %d MPI ranks\n", all ? "PASS" : "FAIL", size);
  MPI_Finalize();
  return all ? 0 : 1;
}
