// SPDX-License-Identifier: MIT
// kiln::ops wrappers against the real op-library binaries (fake driver):
// every wrapper must produce a complete, type-correct argument block.
#include <gtest/gtest.h>

#include <cstdlib>
#include <kiln/kiln.hpp>

#include "fake_driver.hpp"

using namespace kiln;

namespace {
struct OpsHost : ::testing::Test {
  void SetUp() override {
#ifdef KILN_TEST_OPS_DIR
    setenv("KILN_OPS_PATH", KILN_TEST_OPS_DIR, 1);
#endif
    try {
      find_kernel_binary("gemm");
    } catch (const Error&) {
      GTEST_SKIP() << "op library not built";
    }
  }
  Device dev = detail::HandleAccess::device(std::make_shared<detail::FakeDriver>());
};
}  // namespace

TEST_F(OpsHost, EveryWrapperBuildsValidArgs) {
  ops::Library lib(dev);
  auto f = [&](size_t n) { return dev.alloc(n * 4); };
  auto A = f(64 * 64), B = f(64 * 64), C = f(64 * 64), bias = f(64), I = f(64), O = f(64);
  std::vector<Args> all;
  for (auto dt : {ops::DType::f32, ops::DType::bf16, ops::DType::f16, ops::DType::i8})
    all.push_back(lib.gemm(A, B, C, {.m = 64, .n = 64, .k = 64, .epilogue = ops::Epilogue::relu, .dtype = dt}, &bias));
  all.push_back(lib.gemm(A, B, C, {.m = 16, .n = 16, .k = 16, .trans_a = true}));
  all.push_back(lib.eltwise(ops::Binary::add, A, &B, C, 100));
  all.push_back(lib.eltwise(ops::Binary::mul_scalar, A, nullptr, C, 100, 2.f));
  all.push_back(lib.activation(ops::Unary::gelu, A, C, 100));
  all.push_back(lib.softmax(A, C, 64, 64));
  all.push_back(lib.layernorm(A, &bias, nullptr, C, 64, 64));
  all.push_back(lib.cross_entropy(A, I, O, &C, 16, 4, 1.f / 16));
  all.push_back(lib.embedding_bag(A, 64, 64, I, O, 8, ops::BagMode::mean, C));
  all.push_back(lib.transpose(A, C, 64, 64));
  all.push_back(lib.sgd(A, B, 100, 0.1f));
  all.push_back(lib.adam(A, B, C, O, 16, 1e-3f, 1));
  for (auto& a : all) EXPECT_NO_THROW(a.validate()) << a.kernel().name();
  // recording them all works and the launch count matches
  CommandList cl(dev);
  for (auto& a : all) lib.record(cl, a);
  EXPECT_EQ(cl.size(), all.size());
}

TEST_F(OpsHost, ShapeChecks) {
  ops::Library lib(dev);
  auto small = dev.alloc(64);
  auto big = dev.alloc(1 << 16);
  EXPECT_THROW(lib.gemm(small, big, big, {.m = 64, .n = 64, .k = 64}), Error);
  EXPECT_THROW(lib.gemm(big, big, big, {.m = 0, .n = 1, .k = 1}), Error);
  EXPECT_THROW(lib.softmax(big, big, 1, 20000), Error);
  EXPECT_THROW(lib.adam(big, big, big, big, 4, 0.1f, 0), Error);
  EXPECT_THROW(lib.kernel("gemm", "no_such_kernel"), Error);
  // leading dimensions shorter than a row: rows would overlap
  for (ops::Gemm g : {ops::Gemm{.m = 8, .n = 8, .k = 16, .lda = 8}, ops::Gemm{.m = 8, .n = 8, .k = 16, .ldb = 4},
                      ops::Gemm{.m = 8, .n = 8, .k = 16, .ldc = 7},
                      ops::Gemm{.m = 8, .n = 8, .k = 16, .lda = 7, .trans_a = true}}) {
    try {
      lib.gemm(big, big, big, g);
      ADD_FAILURE() << "lda " << g.lda << " ldb " << g.ldb << " ldc " << g.ldc << " accepted";
    } catch (const Error& e) {
      EXPECT_EQ(e.errc(), Errc::invalid_argument);
      EXPECT_NE(std::string(e.what()).find("is less than"), std::string::npos) << e.what();
    }
  }
  EXPECT_NO_THROW(lib.gemm(big, big, big, {.m = 8, .n = 8, .k = 16, .lda = 16, .ldb = 8, .ldc = 8}));
  EXPECT_NO_THROW(lib.gemm(big, big, big, {.m = 8, .n = 8, .k = 16, .lda = 8, .trans_a = true}));
}
