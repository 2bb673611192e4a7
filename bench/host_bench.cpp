// SPDX-License-Identifier: MIT
// kiln_host_bench: the host peer of the GEMM benchmark — OpenBLAS cblas_sgemm
// (Debian's libopenblas, the host's default core type and cache settings) on
// row-major n x n x n fp32 matrices with a given number of threads.
//
//   kiln_host_bench --threads T --sizes 256,512,... [--min-time S]
//
// Prints one line per size: BENCH {"bench":"blas_sgemm",...}. Not a test.
#include <cblas.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

extern "C" {
void openblas_set_num_threads(int);
char* openblas_get_corename(void);
char* openblas_get_config(void);
}

static double now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

int main(int argc, char** argv) {
  int threads = 1;
  double min_time = 1.0;
  std::vector<int> sizes{256, 512, 1024, 2048};
  for (int i = 1; i < argc; i++) {
    std::string a = argv[i];
    if (a == "--threads" && i + 1 < argc) threads = std::atoi(argv[++i]);
    else if (a == "--min-time" && i + 1 < argc) min_time = std::atof(argv[++i]);
    else if (a == "--sizes" && i + 1 < argc) {
      sizes.clear();
      for (char* p = std::strtok(argv[++i], ","); p; p = std::strtok(nullptr, ",")) sizes.push_back(std::atoi(p));
    } else {
      std::fprintf(stderr, "usage: %s [--threads T] [--sizes a,b,..] [--min-time S]\n", argv[0]);
      return 2;
    }
  }
  openblas_set_num_threads(threads);
  const char* ct = std::getenv("OPENBLAS_CORETYPE");
  const char* l2 = std::getenv("OPENBLAS_L2_SIZE");
  std::printf("BENCH {\"bench\":\"blas_info\",\"threads\":%d,\"core\":\"%s\",\"config\":\"%s\","
              "\"OPENBLAS_CORETYPE\":\"%s\",\"OPENBLAS_L2_SIZE\":\"%s\"}\n",
              threads, openblas_get_corename(), openblas_get_config(), ct ? ct : "", l2 ? l2 : "");
  for (int n : sizes) {
    std::vector<float> a(size_t(n) * n), b(size_t(n) * n), c(size_t(n) * n);
    for (size_t i = 0; i < a.size(); i++) a[i] = float((i * 7) % 13) / 13.0f, b[i] = float((i * 5) % 11) / 11.0f;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a.data(), n, b.data(), n, 0.0f, c.data(), n);
    std::vector<double> ts;
    double total = 0;
    while (total < min_time || ts.size() < 3) {
      double t0 = now();
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a.data(), n, b.data(), n, 0.0f, c.data(), n);
      double t = now() - t0;
      ts.push_back(t);
      total += t;
    }
    std::sort(ts.begin(), ts.end());
    double flops = 2.0 * n * n * n, med = ts[ts.size() / 2], best = ts[0];
    std::printf("BENCH {\"bench\":\"blas_sgemm\",\"threads\":%d,\"n\":%d,\"reps\":%zu,\"median_s\":%.6g,\"best_s\":%.6g,"
                "\"gflops\":%.4g,\"gflops_best\":%.4g}\n",
                threads, n, ts.size(), med, best, flops / med / 1e9, flops / best / 1e9);
    std::fflush(stdout);
  }
  return 0;
}
