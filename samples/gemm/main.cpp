// SPDX-License-Identifier: MIT
// gemm: C = A * B in fp32 and bf16 (fp32 accumulate) on the device, checked
// against a CPU reference. Prints wall-clock time and the emulated TFLOP/s
// (from the device's cycle counter at its nominal clock).
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <kiln/kiln.hpp>
#include <random>
#include <vector>

extern const unsigned char gemm_kbin[];
extern const std::size_t gemm_kbin_size;

namespace {

uint16_t to_bf16(float f) {  // round to nearest even
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

template <class T>
bool run(kiln::Device& dev, kiln::Queue& q, const kiln::Kernel& k, const char* name, uint32_t M, uint32_t N, uint32_t K,
         const std::vector<T>& a, const std::vector<T>& b, const std::vector<float>& ref, double tol) {
  auto A = dev.alloc(a.size() * sizeof(T)), B = dev.alloc(b.size() * sizeof(T)), C = dev.alloc(size_t(M) * N * 4);
  q.upload(A, a);
  q.upload(B, b).wait();
  std::vector<float> c(size_t(M) * N);
  auto t0 = std::chrono::steady_clock::now();
  auto done = q.launch_with(k, {.grid = {dev.info().pe_count(), 1, 1}}, A, B, C, M, N, K);
  done.wait();
  double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  q.download(c, C).wait();

  double max_err = 0;
  for (size_t i = 0; i < c.size(); i++) max_err = std::max(max_err, double(std::fabs(c[i] - ref[i])));
  double flops = 2.0 * M * N * K;
  // Cycles are summed over the PEs that ran; at the device clock that gives
  // the time the emulated chip would take (per PE, they run in parallel).
  double clock_hz = double(dev.info().clock_mhz ? dev.info().clock_mhz : 1350) * 1e6;
  double cycles_per_pe = double(done.cycles()) / std::max(1u, std::min(dev.info().pe_count(), M));
  double emu_s = cycles_per_pe / clock_hz;
  std::printf(
      "  %-5s %4ux%4ux%4u  max|err| %.2e  wall %8.2f ms  %6.3f GFLOP/s host-emulated   emulated %.4f TFLOP/s (%llu "
      "cycles)  %s\n",
      name, M, N, K, max_err, wall * 1e3, flops / wall / 1e9, emu_s > 0 ? flops / emu_s / 1e12 : 0.0,
      (unsigned long long)done.cycles(), max_err <= tol ? "OK" : "WRONG");
  return max_err <= tol;
}

}  // namespace

int main() try {
  auto dev = kiln::Device::open(0);
  auto q = dev.queue();
  auto mod = dev.load(std::as_bytes(std::span(gemm_kbin, gemm_kbin_size)), "gemm.kbin");
  const uint32_t M = 64, N = 64, K = 64;
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> u(-1, 1);
  std::vector<float> a(M * K), b(K * N);
  for (auto& x : a) x = u(rng);
  for (auto& x : b) x = u(rng);
  std::vector<uint16_t> ah(a.size()), bh(b.size());
  for (size_t i = 0; i < a.size(); i++) ah[i] = to_bf16(a[i]);
  for (size_t i = 0; i < b.size(); i++) bh[i] = to_bf16(b[i]);

  auto reference = [&](auto getA, auto getB) {
    std::vector<float> c(size_t(M) * N, 0.f);
    for (uint32_t i = 0; i < M; i++)
      for (uint32_t k = 0; k < K; k++)
        for (uint32_t j = 0; j < N; j++) c[i * N + j] += getA(i * K + k) * getB(k * N + j);
    return c;
  };
  auto ref32 = reference([&](size_t i) { return a[i]; }, [&](size_t i) { return b[i]; });
  auto ref16 = reference([&](size_t i) { return from_bf16(ah[i]); }, [&](size_t i) { return from_bf16(bh[i]); });

  std::printf("gemm on %s: %ux%u PEs @ %u MHz\n", dev.info().path.c_str(), dev.info().pe_grid_width,
              dev.info().pe_grid_height, dev.info().clock_mhz);
  bool ok = run(dev, q, mod.kernel("gemm_f32"), "fp32", M, N, K, a, b, ref32, 1e-3);
  ok &= run(dev, q, mod.kernel("gemm_bf16"), "bf16", M, N, K, ah, bh, ref16, 1e-2);
  return ok ? 0 : 1;
} catch (const kiln::Error& e) {
  std::fprintf(stderr, "gemm: %s\n", e.what());
  return 1;
}
