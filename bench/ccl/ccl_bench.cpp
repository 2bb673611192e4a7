// SPDX-License-Identifier: MIT
// ccl_bench: allreduce bus bandwidth, nccl-tests definitions, of kiln::ccl on Kiln devices
// next to Open MPI's MPI_Allreduce on the same data in host memory. One rank per device:
//   mpirun -np N ccl_bench [--min BYTES] [--max BYTES] [--iters K]
// algbw = bytes / time; busbw = algbw * 2 (N - 1) / N. Kiln: wall time of the call (emulator
// included) and modelled time (the slowest rank's device work: copies over the host link and
// SE reductions, from the cost model; MPI's host transfer is not in it). fp32 sum.
#include <mpi.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <kiln/ccl.hpp>
#include <vector>

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  int rank = 0, size = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  size_t lo = 4 << 10, hi = 256 << 20;
  int iters = 3;
  for (int i = 1; i + 1 < argc; i++) {
    if (!std::strcmp(argv[i], "--min")) lo = std::strtoull(argv[++i], nullptr, 0);
    else if (!std::strcmp(argv[i], "--max")) hi = std::strtoull(argv[++i], nullptr, 0);
    else if (!std::strcmp(argv[i], "--iters")) iters = std::atoi(argv[++i]);
  }
  try {
    auto dev = kiln::Device::open(int(size_t(rank) % kiln::enumerate().size()));
    auto comm = kiln::ccl::Communicator::mpi(MPI_COMM_WORLD, dev);
    auto q = dev.queue();
    double f = 2.0 * (size - 1) / size;
    if (rank == 0)
      std::printf("ccl_bench: allreduce fp32 sum, %d ranks, %d iterations (nccl-tests algbw/busbw, GB/s)\n"
                  "%12s %6s %10s %10s %10s %12s %10s %10s %10s\n",
                  size, iters, "bytes", "algo", "kiln wall", "algbw", "busbw", "modelled us", "busbw(m)",
                  "mpi us", "mpi busbw");
    for (size_t bytes = lo; bytes <= hi; bytes *= 4) {
      size_t n = bytes / 4;
      auto buf = dev.alloc(bytes);
      q.fill(buf, 0x3f800000u).wait();
      comm.allreduce(q, buf, buf, n, kiln::ccl::DType::f32, kiln::ccl::Op::sum).wait();  // warm-up
      comm.reset_stats();
      MPI_Barrier(MPI_COMM_WORLD);
      auto t0 = std::chrono::steady_clock::now();
      for (int i = 0; i < iters; i++) comm.allreduce(q, buf, buf, n, kiln::ccl::DType::f32, kiln::ccl::Op::sum).wait();
      double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / iters, wmax;
      double model = double(comm.stats().modelled().count()) * 1e-9 / iters, mmax;
      MPI_Allreduce(&wall, &wmax, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
      MPI_Allreduce(&model, &mmax, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
      std::vector<float> h(n, 1.0f), o(n);
      MPI_Allreduce(h.data(), o.data(), int(n), MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
      MPI_Barrier(MPI_COMM_WORLD);
      t0 = std::chrono::steady_clock::now();
      for (int i = 0; i < iters; i++) MPI_Allreduce(h.data(), o.data(), int(n), MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
      double mpi = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / iters, mpimax;
      MPI_Allreduce(&mpi, &mpimax, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
      if (rank == 0)
        std::printf("%12zu %6s %8.2f ms %10.4f %10.4f %12.1f %10.2f %10.1f %10.3f\n", bytes,
                    std::string(kiln::ccl::to_string(comm.allreduce_algorithm(n, kiln::ccl::DType::f32))).c_str(),
                    wmax * 1e3, bytes / wmax * 1e-9, bytes / wmax * 1e-9 * f, mmax * 1e6, bytes / mmax * 1e-9 * f,
                    mpimax * 1e6, bytes / mpimax * 1e-9 * f);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "ccl_bench rank %d: %s\n", rank, e.what());
    MPI_Abort(MPI_COMM_WORLD, 1);
  }
  MPI_Finalize();
  return 0;
}
