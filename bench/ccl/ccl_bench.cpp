// SPDX-License-Identifier: MIT
// ccl_bench: allreduce bus bandwidth, nccl-tests definitions, of kiln::ccl on Kiln devices
// next to Open MPI's MPI_Allreduce on the same data in host memory. One rank per device:
//   mpirun -np N ccl_bench [--min BYTES] [--max BYTES] [--factor F] [--iters K] [--budget BYTES]
// Sizes go from --min to --max, times --factor (default 4). Each size runs one warm-up call,
// then K timed calls, fewer for large sizes: at most max(1, budget / bytes) (--budget, default
// 256 MiB, keeps the 256 MiB point to a single call).
// algbw = bytes / time; busbw = algbw * 2 (N - 1) / N. Kiln: wall time of the call (emulator
// included) and modelled time (the slowest rank's device work: copies over the host link and
// SE reductions, from the cost model; MPI's host transfer is not in it). fp32 sum; the result
// is checked (every element must be N). Rank 0 prints a table and one machine-readable line
// per size, `BENCH {"bench":"ccl_allreduce",...}` (scripts/bench's ccl group reads them).
#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <kiln/ccl.hpp>
#include <set>
#include <span>
#include <string>
#include <vector>

namespace {

double max_over_ranks(double v) {
  double m = 0;
  MPI_Allreduce(&v, &m, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
  return m;
}

// The number of distinct hosts (MPI processor names) in the job.
int count_nodes(int rank, int size) {
  char name[MPI_MAX_PROCESSOR_NAME] = {};
  int len = 0;
  MPI_Get_processor_name(name, &len);
  std::vector<char> all(size_t(size) * MPI_MAX_PROCESSOR_NAME);
  MPI_Gather(name, MPI_MAX_PROCESSOR_NAME, MPI_CHAR, all.data(), MPI_MAX_PROCESSOR_NAME, MPI_CHAR, 0,
             MPI_COMM_WORLD);
  int nodes = 0;
  if (rank == 0) {
    std::set<std::string> names;
    for (int r = 0; r < size; r++) names.insert(std::string(&all[size_t(r) * MPI_MAX_PROCESSOR_NAME]));
    nodes = int(names.size());
  }
  MPI_Bcast(&nodes, 1, MPI_INT, 0, MPI_COMM_WORLD);
  return nodes;
}

}  // namespace

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  int rank = 0, size = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  size_t lo = 4 << 10, hi = 256 << 20, factor = 4, budget = 256 << 20;
  int iters = 3;
  for (int i = 1; i < argc; i++) {
    bool has = i + 1 < argc;
    if (has && !std::strcmp(argv[i], "--min")) lo = std::strtoull(argv[++i], nullptr, 0);
    else if (has && !std::strcmp(argv[i], "--max")) hi = std::strtoull(argv[++i], nullptr, 0);
    else if (has && !std::strcmp(argv[i], "--factor")) factor = std::strtoull(argv[++i], nullptr, 0);
    else if (has && !std::strcmp(argv[i], "--iters")) iters = std::atoi(argv[++i]);
    else if (has && !std::strcmp(argv[i], "--budget")) budget = std::strtoull(argv[++i], nullptr, 0);
    else {
      if (rank == 0)
        std::fprintf(stderr, "usage: ccl_bench [--min BYTES] [--max BYTES] [--factor F] [--iters K] "
                             "[--budget BYTES]\n");
      MPI_Finalize();
      return 2;
    }
  }
  if (lo < 4 || factor < 2 || iters < 1) {
    if (rank == 0) std::fprintf(stderr, "ccl_bench: need --min >= 4, --factor >= 2, --iters >= 1\n");
    MPI_Finalize();
    return 2;
  }
  int status = 0;
  try {
    int nodes = count_nodes(rank, size);
    int ndev = int(kiln::enumerate().size());
    auto dev = kiln::Device::open(rank % ndev);
    auto comm = kiln::ccl::Communicator::mpi(MPI_COMM_WORLD, dev);
    auto q = dev.queue();
    double f = 2.0 * (size - 1) / size;
    if (rank == 0)
      std::printf("ccl_bench: allreduce fp32 sum, %d ranks on %d node(s), up to %d iterations "
                  "(nccl-tests algbw/busbw, GB/s)\n"
                  "%12s %6s %5s %10s %10s %10s %12s %10s %10s %10s\n",
                  size, nodes, iters, "bytes", "algo", "iters", "kiln wall", "algbw", "busbw", "modelled us",
                  "busbw(m)", "mpi us", "mpi busbw");
    for (size_t bytes = lo; bytes <= hi; bytes *= factor) {
      size_t n = bytes / 4;
      int k = int(std::clamp<size_t>(budget / bytes, 1, size_t(iters)));
      auto buf = dev.alloc(n * 4);
      q.fill(buf, 0x3f800000u).wait();  // 1.0f
      comm.allreduce(q, buf, buf, n, kiln::ccl::DType::f32, kiln::ccl::Op::sum).wait();  // warm-up
      comm.reset_stats();
      MPI_Barrier(MPI_COMM_WORLD);
      auto t0 = std::chrono::steady_clock::now();
      for (int i = 0; i < k; i++) comm.allreduce(q, buf, buf, n, kiln::ccl::DType::f32, kiln::ccl::Op::sum).wait();
      double wall = max_over_ranks(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / k);
      double model = max_over_ranks(double(comm.stats().modelled().count()) * 1e-9 / k);
      // 1 + k + 1 allreduces of ones (the fill, the warm-up, k timed): every element is size^(k+1).
      std::vector<float> h(n);
      buf.read(std::span<float>(h));
      double want = 1;
      for (int i = 0; i < k + 1; i++) want *= size;
      size_t bad = size_t(std::count_if(h.begin(), h.end(), [&](float x) { return double(x) != want; }));
      double bad_any = max_over_ranks(double(bad));
      std::fill(h.begin(), h.end(), 1.0f);
      std::vector<float> o(n);
      MPI_Allreduce(h.data(), o.data(), int(n), MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
      MPI_Barrier(MPI_COMM_WORLD);
      t0 = std::chrono::steady_clock::now();
      for (int i = 0; i < k; i++) MPI_Allreduce(h.data(), o.data(), int(n), MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
      double mpi = max_over_ranks(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / k);
      std::string algo(kiln::ccl::to_string(comm.allreduce_algorithm(n, kiln::ccl::DType::f32)));
      if (rank == 0) {
        std::printf("%12zu %6s %5d %8.2f ms %10.4f %10.4f %12.1f %10.2f %10.1f %10.3f%s\n", bytes, algo.c_str(), k,
                    wall * 1e3, bytes / wall * 1e-9, bytes / wall * 1e-9 * f, model * 1e6,
                    bytes / model * 1e-9 * f, mpi * 1e6, bytes / mpi * 1e-9 * f, bad_any > 0 ? "  WRONG RESULT" : "");
        std::printf("BENCH {\"bench\":\"ccl_allreduce\",\"ranks\":%d,\"nodes\":%d,\"devices\":%d,\"bytes\":%zu,"
                    "\"algorithm\":\"%s\",\"iters\":%d,\"wall_s\":%.9g,\"modelled_s\":%.9g,\"mpi_s\":%.9g,"
                    "\"busbw_factor\":%.9g,\"correct\":%s}\n",
                    size, nodes, ndev, bytes, algo.c_str(), k, wall, model, mpi, f, bad_any > 0 ? "false" : "true");
        std::fflush(stdout);
      }
      if (bad_any > 0) status = 1;
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "ccl_bench rank %d: %s\n", rank, e.what());
    MPI_Abort(MPI_COMM_WORLD, 1);
  }
  MPI_Finalize();
  return status;
}
