// SPDX-License-Identifier: MIT
// gemm: C = A * B on the device's DPE matrix units through the op library
// (kiln::ops in <kiln/kiln.hpp>, docs/sdk.md), in fp32 and in bf16 (fp32 accumulate), checked
// against a CPU reference. Prints the wall-clock time of the launch and the
// emulated TFLOP/s: the launch's emulated cycles at the device clock, i.e.
// what the modelled chip would take.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <kiln/kiln.hpp>
#include <random>
#include <vector>

namespace {

// fp32 -> bf16, round to nearest even (the inputs here are finite: no NaN case).
uint16_t to_bf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return uint16_t((u + 0x7fff + ((u >> 16) & 1)) >> 16);
}
float from_bf16(uint16_t h) {
  uint32_t u = uint32_t(h) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// Runs C = A * B with A (M x K) and B (K x N) row-major, in `a` and `b` as the
// device will read them (float or bf16 bits); `fa`, `fb` are the same values
// as floats, for the reference.
template <class T>
bool run(kiln::Device& dev, kiln::Queue& q, kiln::ops::Library& lib, kiln::ops::DType dtype, const char* name,
         uint32_t M, uint32_t N, uint32_t K, const std::vector<T>& a, const std::vector<T>& b,
         const std::vector<float>& fa, const std::vector<float>& fb) {
  auto A = dev.alloc(a.size() * sizeof(T)), B = dev.alloc(b.size() * sizeof(T)), C = dev.alloc(size_t(M) * N * 4);
  q.upload(A, a);
  q.upload(B, b).wait();

  // The argument block is checked on the host (shapes vs buffer sizes); lib.run
  // launches it with one workgroup per PE.
  kiln::Args args = lib.gemm(A, B, C, {.m = M, .n = N, .k = K, .dtype = dtype});
  lib.run(q, args).wait();  // warm-up: first-use code load and page-table set-up
  auto t0 = std::chrono::steady_clock::now();
  kiln::Event done = lib.run(q, args);
  done.wait();
  double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::vector<float> c(size_t(M) * N);
  q.download(c, C).wait();

  // Reference in double from the same inputs. The DPE's products are exact and
  // it accumulates in fp32 in some order, so each entry may be off by at most
  // K * 2^-24 * sum_k |a_ik * b_kj| (the worst case of any summation order).
  double worst = 0;  // error / allowed error; > 1 is a mismatch
  for (uint32_t i = 0; i < M; i++)
    for (uint32_t j = 0; j < N; j++) {
      double ref = 0, mag = 0;
      for (uint32_t k = 0; k < K; k++) {
        double p = double(fa[size_t(i) * K + k]) * fb[size_t(k) * N + j];
        ref += p, mag += std::fabs(p);
      }
      double tol = K * std::ldexp(1.0, -24) * mag + 1e-30;
      worst = std::max(worst, std::fabs(c[size_t(i) * N + j] - ref) / tol);
    }

  // Device time and energy are modelled: the job's cycles at the K1 clock.
  double flops = 2.0 * M * N * K;
  kiln::Usage u = done.usage();
  double dev_s = double(u.device_time.count()) * 1e-9;
  std::printf("  %-4s %ux%ux%u  wall %7.2f ms  device %8.2f us = %6.2f TFLOP/s, %5.1f W, %5.2f TFLOPS/W"
              " (%llu cycles)  err/bound %.3f  %s\n",
              name, M, N, K, wall * 1e3, dev_s * 1e6, dev_s > 0 ? flops / dev_s / 1e12 : 0.0, u.power_w(),
              u.energy_pj ? flops / u.energy_j() / 1e12 : 0.0, (unsigned long long)u.cycles, worst,
              worst <= 1 ? "OK" : "MISMATCH");
  return worst <= 1;
}

}  // namespace

int main() try {
  auto dev = kiln::Device::open(0);
  auto q = dev.queue();
  kiln::ops::Library lib(dev);  // loads gemm.kbin from the op library on first use

  const uint32_t M = 192, N = 256, K = 320;  // any shape works; these are not multiples of the 128 tile
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> u(-1, 1);
  std::vector<float> a(size_t(M) * K), b(size_t(K) * N);
  for (auto& x : a) x = u(rng);
  for (auto& x : b) x = u(rng);
  // bf16 inputs are rounded on the host; the reference uses the rounded values.
  std::vector<uint16_t> ah(a.size()), bh(b.size());
  std::vector<float> ar(a.size()), br(b.size());
  for (size_t i = 0; i < a.size(); i++) ar[i] = from_bf16(ah[i] = to_bf16(a[i]));
  for (size_t i = 0; i < b.size(); i++) br[i] = from_bf16(bh[i] = to_bf16(b[i]));

  std::printf("gemm on %s: %ux%u PEs @ %u MHz\n", dev.info().path.c_str(), dev.info().pe_grid_width,
              dev.info().pe_grid_height, dev.info().clock_mhz);
  bool ok = run(dev, q, lib, kiln::ops::DType::f32, "fp32", M, N, K, a, b, a, b);
  ok &= run(dev, q, lib, kiln::ops::DType::bf16, "bf16", M, N, K, ah, bh, ar, br);
  return ok ? 0 : 1;
} catch (const kiln::Error& e) {
  std::fprintf(stderr, "gemm: %s\n", e.what());
  return 1;
}
