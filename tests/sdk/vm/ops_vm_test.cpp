// SPDX-License-Identifier: MIT
// kiln::ops on the emulated device against CPU references.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <kiln/kiln.hpp>
#include <random>

using namespace kiln;
using namespace std::chrono_literals;

namespace {
struct OpsVm : ::testing::Test {
  void SetUp() override {
    try {
      find_kernel_binary("gemm");
    } catch (const Error& e) {
      GTEST_SKIP() << e.what();
    }
  }
  Device dev = Device::open(0);
  ops::Library lib{dev};
  Queue q = dev.queue();
};
std::vector<float> randv(size_t n, int seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-1, 1);
  std::vector<float> v(n);
  for (auto& x : v) x = u(rng);
  return v;
}
}  // namespace

TEST_F(OpsVm, GemmF32WithBiasAndRelu) {
  const uint32_t M = 48, N = 40, K = 56;
  auto a = randv(M * K, 1), b = randv(K * N, 2), bias = randv(N, 3);
  auto A = dev.alloc(a.size() * 4), B = dev.alloc(b.size() * 4), C = dev.alloc(M * N * 4), Bi = dev.alloc(N * 4);
  q.upload(A, a);
  q.upload(B, b);
  q.upload(Bi, bias);
  lib.run(q, lib.gemm(A, B, C, {.m = M, .n = N, .k = K, .epilogue = ops::Epilogue::relu}, &Bi));
  std::vector<float> c(M * N);
  q.download(c, C);
  q.finish();
  double err = 0;
  for (uint32_t i = 0; i < M; i++)
    for (uint32_t j = 0; j < N; j++) {
      float r = bias[j];
      for (uint32_t k = 0; k < K; k++) r += a[i * K + k] * b[k * N + j];
      err = std::max(err, double(std::fabs(std::max(r, 0.f) - c[i * N + j])));
    }
  EXPECT_LT(err, 1e-3);
}

TEST_F(OpsVm, SoftmaxRowsSumToOne) {
  const uint32_t R = 8, Cc = 33;
  auto x = randv(R * Cc, 4);
  auto X = dev.alloc(x.size() * 4), Y = dev.alloc(x.size() * 4);
  q.upload(X, x);
  lib.run(q, lib.softmax(X, Y, R, Cc));
  std::vector<float> y(x.size());
  q.download(y, Y);
  q.finish();
  for (uint32_t r = 0; r < R; r++) {
    double s = 0;
    for (uint32_t c = 0; c < Cc; c++) s += y[r * Cc + c];
    EXPECT_NEAR(s, 1.0, 1e-4);
  }
}

TEST_F(OpsVm, SgdStep) {
  std::vector<float> w(100, 1.f), g(100, 0.5f);
  auto W = dev.alloc(400), G = dev.alloc(400);
  q.upload(W, w);
  q.upload(G, g);
  lib.run(q, lib.sgd(W, G, 100, 0.1f));
  q.download(w, W);
  q.finish();
  EXPECT_NEAR(w[99], 0.95f, 1e-6);
}

TEST_F(OpsVm, EmbeddingBagBadIndexTraps) {
  std::vector<float> table(10 * 4, 1.f);
  std::vector<int32_t> idx{1, 2, 99}, off{0, 2, 3};
  auto T = dev.alloc(160), I = dev.alloc(12), O = dev.alloc(8), Out = dev.alloc(32);
  q.upload(T, table);
  q.upload(I, idx);
  q.upload(O, off);
  try {
    static_cast<void>(lib.run(q, lib.embedding_bag(T, 10, 4, I, O, 2, ops::BagMode::sum, Out)).wait(60s));
    FAIL() << "index 99 of 10 rows did not fault";
  } catch (const Error& e) {
    ASSERT_TRUE(e.job()) << e.what();
    EXPECT_EQ(e.errc(), Errc::kernel_fault) << e.what();
  }
}

TEST_F(OpsVm, GemmI8WithInt32BiasAndRelu) {
  const uint32_t M = 40, N = 36, K = 50;
  std::mt19937 rng(5);
  std::vector<int8_t> a(M * K), b(K * N);
  std::vector<int32_t> bias(N);
  for (auto& x : a) x = int8_t(rng() % 255 - 127);
  for (auto& x : b) x = int8_t(rng() % 255 - 127);
  for (uint32_t j = 0; j < N; j++) bias[j] = j == 5 ? INT32_MAX : int32_t(rng() % 200001) - 100000;
  auto A = dev.alloc(a.size()), B = dev.alloc(b.size()), C = dev.alloc(M * N * 4), Bi = dev.alloc(N * 4);
  q.upload(A, a);
  q.upload(B, b);
  q.upload(Bi, bias);
  lib.run(q, lib.gemm(A, B, C, {.m = M, .n = N, .k = K, .epilogue = ops::Epilogue::relu, .dtype = ops::DType::i8},
                      &Bi));
  std::vector<int32_t> c(M * N);
  q.download(c, C);
  q.finish();
  for (uint32_t i = 0; i < M; i++)
    for (uint32_t j = 0; j < N; j++) {
      uint32_t r = uint32_t(bias[j]);  // int32 arithmetic wraps
      for (uint32_t k = 0; k < K; k++) r += uint32_t(int32_t(a[i * K + k]) * b[k * N + j]);
      ASSERT_EQ(c[i * N + j], int32_t(r) < 0 ? 0 : int32_t(r)) << i << "," << j;
    }
  EXPECT_THROW(lib.gemm(A, B, C, {.m = M, .n = N, .k = K, .epilogue = ops::Epilogue::gelu, .dtype = ops::DType::i8}),
               Error);
}

TEST_F(OpsVm, LayernormAndCrossEntropy) {
  const uint32_t R = 70, Cc = 600;  // several row blocks per workgroup
  auto x = randv(R * Cc, 6), gamma = randv(Cc, 7), beta = randv(Cc, 8);
  std::vector<int32_t> labels(R);
  for (uint32_t r = 0; r < R; r++) labels[r] = int32_t((r * 13) % Cc);
  auto X = dev.alloc(x.size() * 4), Y = dev.alloc(x.size() * 4), G = dev.alloc(Cc * 4), Bt = dev.alloc(Cc * 4),
       L = dev.alloc(R * 4), Loss = dev.alloc(R * 4), Grad = dev.alloc(x.size() * 4);
  q.upload(X, x);
  q.upload(G, gamma);
  q.upload(Bt, beta);
  q.upload(L, labels);
  lib.run(q, lib.layernorm(X, &G, &Bt, Y, R, Cc));
  lib.run(q, lib.cross_entropy(X, L, Loss, &Grad, R, Cc, 0.5f));
  std::vector<float> y(x.size()), loss(R), grad(x.size());
  q.download(y, Y);
  q.download(loss, Loss);
  q.download(grad, Grad);
  q.finish();
  for (uint32_t r = 0; r < R; r++) {
    double mean = 0, var = 0, mx = -1e30, s = 0;
    for (uint32_t c = 0; c < Cc; c++) mean += x[r * Cc + c] / double(Cc);
    for (uint32_t c = 0; c < Cc; c++) var += (x[r * Cc + c] - mean) * (x[r * Cc + c] - mean) / Cc;
    for (uint32_t c = 0; c < Cc; c++) mx = std::max(mx, double(x[r * Cc + c]));
    for (uint32_t c = 0; c < Cc; c++) s += std::exp(x[r * Cc + c] - mx);
    for (uint32_t c = 0; c < Cc; c++) {
      double ln = (x[r * Cc + c] - mean) / std::sqrt(var + 1e-5) * gamma[c] + beta[c];
      ASSERT_NEAR(y[r * Cc + c], ln, 1e-4) << r << "," << c;
      double p = std::exp(x[r * Cc + c] - mx) / s - (int32_t(c) == labels[r] ? 1 : 0);
      ASSERT_NEAR(grad[r * Cc + c], 0.5 * p, 1e-6) << r << "," << c;
    }
    ASSERT_NEAR(loss[r], -(x[r * Cc + labels[r]] - mx - std::log(s)), 1e-4) << r;
  }
}

TEST_F(OpsVm, TransposeEmbeddingBagAdam) {
  const uint32_t R = 300, Cc = 520;  // 12 tiles
  auto x = randv(R * Cc, 9);
  auto X = dev.alloc(x.size() * 4), Y = dev.alloc(x.size() * 4);
  q.upload(X, x);
  lib.run(q, lib.transpose(X, Y, R, Cc));
  std::vector<float> y(x.size());
  q.download(y, Y);

  const uint32_t rows = 200, dim = 48, bags = 150;  // several bags per workgroup
  auto table = randv(rows * dim, 10);
  std::vector<int32_t> idx, off{0};
  std::mt19937 rng(11);
  for (uint32_t b = 0; b < bags; b++) {
    for (uint32_t i = 0; i < b % 6; i++) idx.push_back(int32_t(rng() % rows));
    off.push_back(int32_t(idx.size()));
  }
  auto T = dev.alloc(table.size() * 4), I = dev.alloc(idx.size() * 4 + 4), O = dev.alloc(off.size() * 4),
       Out = dev.alloc(bags * dim * 4);
  q.upload(T, table);
  q.upload(I, idx);
  q.upload(O, off);
  lib.run(q, lib.embedding_bag(T, rows, dim, I, O, bags, ops::BagMode::mean, Out));
  std::vector<float> out(bags * dim);
  q.download(out, Out);

  const uint32_t n = 100000;  // several chunks per workgroup
  auto w = randv(n, 12), g = randv(n, 13), m = randv(n, 14), v = randv(n, 15);
  for (auto& e : v) e = std::fabs(e);
  auto W = dev.alloc(n * 4), Gr = dev.alloc(n * 4), Mm = dev.alloc(n * 4), V = dev.alloc(n * 4);
  q.upload(W, w);
  q.upload(Gr, g);
  q.upload(Mm, m);
  q.upload(V, v);
  lib.run(q, lib.adam(W, Gr, Mm, V, n, 1e-3f, 2));
  std::vector<float> w2(n), m2(n), v2(n);
  q.download(w2, W);
  q.download(m2, Mm);
  q.download(v2, V);
  q.finish();

  for (uint32_t r = 0; r < R; r++)
    for (uint32_t c = 0; c < Cc; c++) ASSERT_EQ(y[c * R + r], x[r * Cc + c]);
  for (uint32_t b = 0; b < bags; b++)
    for (uint32_t d = 0; d < dim; d++) {
      double s = 0;
      for (int32_t i = off[b]; i < off[b + 1]; i++) s += table[idx[i] * dim + d];
      if (off[b + 1] > off[b]) s /= off[b + 1] - off[b];
      ASSERT_NEAR(out[b * dim + d], s, 1e-5) << b;
    }
  for (uint32_t i = 0; i < n; i++) {
    double m1 = 0.9 * m[i] + 0.1 * g[i], v1 = 0.999 * v[i] + 0.001 * g[i] * g[i];
    double mh = m1 / (1 - 0.9 * 0.9), vh = v1 / (1 - 0.999 * 0.999);
    ASSERT_NEAR(m2[i], m1, 1e-6);
    ASSERT_NEAR(v2[i], v1, 1e-6);
    ASSERT_NEAR(w2[i], w[i] - 1e-3 * mh / (std::sqrt(vh) + 1e-8), 1e-5) << i;
  }
}

// Placement end to end (docs/sdk.md, "Placement"): a bf16 2048^3 GEMM on DRAM buffers
// runs the SRAM-staged kernel at >= 90 % of its DRAM roofline, on Library::alloc
// buffers (SRAM) at >= 90 % of the 177 TFLOPS peak; modelled cycles, from the job.
TEST_F(OpsVm, GemmBf16ReachesTheRooflineOfItsPlacement) {
  const uint32_t N = 2048;
  std::mt19937 rng(5);
  std::vector<uint16_t> a(size_t(N) * N), b(size_t(N) * N);
  std::vector<int> ai(a.size()), bi(b.size());
  auto fill = [&](std::vector<uint16_t>& h, std::vector<int>& v) {
    for (size_t i = 0; i < h.size(); i++) {
      v[i] = int(rng() % 7) - 3;   // small integers: exact in bf16 and in the fp32 sums
      float f = float(v[i]);
      uint32_t u;
      std::memcpy(&u, &f, 4);
      h[i] = uint16_t(u >> 16);
    }
  };
  fill(a, ai);
  fill(b, bi);
  const double compute = double(N) * N * N / (1024.0 * dev.info().pe_count());
  const double dram = (2.0 * N * N * 2 + 4.0 * N * N) * 1.35e9 / 204.8e9;
  for (bool on_chip : {false, true}) {
    auto alloc = [&](size_t bytes) { return on_chip ? lib.alloc(bytes) : dev.alloc(bytes); };
    auto A = alloc(a.size() * 2), B = alloc(b.size() * 2), C = alloc(size_t(N) * N * 4);
    ASSERT_EQ(A.memory(), on_chip ? Memory::sram : Memory::device);
    q.upload(A, a);
    q.upload(B, b);
    auto e = lib.run(q, lib.gemm(A, B, C, {.m = N, .n = N, .k = N, .dtype = ops::DType::bf16}));
    std::vector<float> c(size_t(N) * N);
    q.download(c, C);
    q.finish();
    double bound = on_chip ? compute : std::max(compute, dram);
    EXPECT_GE(bound / double(e.cycles()), 0.90) << (on_chip ? "SRAM" : "DRAM") << ": " << e.cycles() << " cycles";
    for (int s = 0; s < 64; s++) {
      uint32_t i = rng() % N, j = rng() % N;
      int64_t r = 0;
      for (uint32_t p = 0; p < N; p++) r += int64_t(ai[size_t(i) * N + p]) * bi[size_t(p) * N + j];
      ASSERT_EQ(c[size_t(i) * N + j], float(r)) << i << "," << j;
    }
  }
}
