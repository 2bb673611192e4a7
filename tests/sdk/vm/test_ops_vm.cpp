// SPDX-License-Identifier: MIT
// kiln::ops on the emulated device against CPU references.
#include <gtest/gtest.h>

#include <cmath>
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
    lib.run(q, lib.embedding_bag(T, 10, 4, I, O, 2, ops::BagMode::sum, Out)).wait(60s);
    FAIL() << "index 99 of 10 rows did not fault";
  } catch (const Error& e) {
    ASSERT_TRUE(e.job()) << e.what();
    EXPECT_EQ(e.errc(), Errc::kernel_fault) << e.what();
  }
}
